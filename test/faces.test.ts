// Face detection and alignment: the similarity fit against a float64 reference on random
// transforms, the warp, the face choice among several, BlazeFace on a real LFW photo (aligned
// crop's eyes on the template), images with no usable face or unreadable reported with reasons
// and counted, the cache (content-keyed, reused without running the detector), the --align
// extraction path end to end and from the CLI, and the detection rate on the real LFW.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import sharp from 'sharp';
import { lfwDataset, manifestDataset } from '../src/datasets';
import { extract } from '../src/extract/pipeline';
import { ModelRunner } from '../src/extract/runner';
import { CANVAS, TEMPLATE, alignFace, checkPolicy } from '../src/faces/align';
import { FaceDetector, type Face } from '../src/faces/detector';
import { type Point, type Similarity, applySimilarity, fitSimilarity, invertSimilarity, residualRms } from '../src/faces/similarity';
import { alignImages } from '../src/faces/stage';
import { warpSimilarity } from '../src/faces/warp';
import { decodeImage, decodeImageBytes, imageToTensor } from '../src/images/preprocess';
import { loadEmbeddings } from '../src/io/embeddings';
import type { ModelCard } from '../src/models/card';
import { loadCard } from '../src/models/load';
import { writeSmallCard } from './helpers/cnn';
import { tempDir, tempFiles } from './helpers/io';
import { gaussian, makeRng } from './helpers/random';
import { relErr, solve } from './helpers/reference';

const rng = makeRng('faces.test');
const FIXTURES = path.join(__dirname, '..', '..', 'test', 'fixtures', 'images');
const FACE = path.join(FIXTURES, 'photos', 'lfw-Aaron_Eckhart_0001.jpg');
const CLI = path.join(__dirname, '..', 'src', 'cli', 'main.js');
const SHARED_LFW = path.join(__dirname, '..', '..', '..', 'shared', 'data', 'lfw');
const dir = tempDir();

/** The least-squares similarity by the normal equations over (a, b, tx, ty), in float64: an independent reference. */
function referenceFit(src: Point[], dst: Point[]): Similarity {
  const A = new Float64Array(16), y = new Float64Array(4);
  src.forEach(([x, v], i) => {
    // Rows [x, -v, 1, 0] -> dst x and [v, x, 0, 1] -> dst y.
    for (const [row, target] of [[[x, -v, 1, 0], dst[i][0]], [[v, x, 0, 1], dst[i][1]]] as [number[], number][]) {
      for (let r = 0; r < 4; r++) {
        y[r] += row[r] * target;
        for (let c = 0; c < 4; c++) A[r * 4 + c] += row[r] * row[c];
      }
    }
  });
  const s = solve({ rows: 4, cols: 4, data: A }, { rows: 4, cols: 1, data: y }).data;
  return { a: s[0], b: s[1], tx: s[2], ty: s[3] };
}

describe('similarity transform', () => {
  test('recovers random rotations, scales and translations; agrees with a float64 reference under noise', () => {
    for (let trial = 0; trial < 50; trial++) {
      const angle = (rng() * 2 - 1) * Math.PI, scale = 0.2 + rng() * 5;
      const truth: Similarity = { a: scale * Math.cos(angle), b: scale * Math.sin(angle), tx: gaussian(rng) * 100, ty: gaussian(rng) * 100 };
      const n = 3 + Math.floor(rng() * 6);
      const src: Point[] = Array.from({ length: n }, () => [gaussian(rng) * 50, gaussian(rng) * 50]);
      const exact = src.map((p) => applySimilarity(truth, p));
      const t = fitSimilarity(src, exact);
      assert.ok(relErr(Float64Array.of(t.a, t.b, t.tx, t.ty), Float64Array.of(truth.a, truth.b, truth.tx, truth.ty)) < 1e-9, `trial ${trial}: exact recovery`);
      assert.ok(residualRms(t, src, exact) < 1e-9 * scale * 50);
      const noise = 0.5;
      const noisy = exact.map(([x, y]): Point => [x + gaussian(rng) * noise, y + gaussian(rng) * noise]);
      const fit = fitSimilarity(src, noisy), ref = referenceFit(src, noisy);
      assert.ok(relErr(Float64Array.of(fit.a, fit.b, fit.tx, fit.ty), Float64Array.of(ref.a, ref.b, ref.tx, ref.ty)) < 1e-9, `trial ${trial}: reference`);
      // Near the truth: the mapped points move by about the noise, not more.
      const moved = Math.max(...src.map((p) => Math.hypot(applySimilarity(fit, p)[0] - applySimilarity(truth, p)[0], applySimilarity(fit, p)[1] - applySimilarity(truth, p)[1])));
      assert.ok(moved < 6 * noise, `trial ${trial}: moved ${moved}`);
      const back = applySimilarity(invertSimilarity(fit), applySimilarity(fit, src[0]));
      assert.ok(Math.hypot(back[0] - src[0][0], back[1] - src[0][1]) < 1e-9 * (1 + Math.hypot(...src[0])));
    }
  });

  test('bad input names the argument', () => {
    assert.throws(() => fitSimilarity([[1, 1], [1, 1]], [[0, 0], [1, 0]]), /src: expected at least two distinct points/);
    assert.throws(() => fitSimilarity([[0, 0], [1, 0]], [[0, 0]]), /dst: expected 2 points to match src, received Array\(1\)/);
    assert.throws(() => fitSimilarity([[0, NaN], [1, 0]], [[0, 0], [1, 0]]), /src: expected an array of \[x, y\] pairs of finite numbers/);
  });
});

describe('warp', () => {
  test('an integer translation moves pixels exactly; outside the image is black', () => {
    const w = 7, h = 5;
    const data = new Uint8Array(w * h * 3).map((_, i) => (i * 37) % 251);
    const out = warpSimilarity({ data, width: w, height: h }, { a: 1, b: 0, tx: 2, ty: 1 }, 6);
    for (let v = 0; v < 6; v++) {
      for (let u = 0; u < 6; u++) {
        const x = u - 2, y = v - 1;
        for (let c = 0; c < 3; c++) {
          const want = x >= 0 && y >= 0 && x < w && y < h ? data[(y * w + x) * 3 + c] : 0;
          assert.equal(out.data[(v * 6 + u) * 3 + c], want, `(${u}, ${v}, ${c})`);
        }
      }
    }
  });

  test('a half-pixel shift interpolates between neighbours', () => {
    const data = Uint8Array.of(0, 0, 0, 100, 100, 100, 200, 200, 200);
    const out = warpSimilarity({ data, width: 3, height: 1 }, { a: 1, b: 0, tx: -0.5, ty: 0 }, 2);
    assert.deepEqual(Array.from(out.data.subarray(0, 6)), [50, 50, 50, 150, 150, 150]);
  });
});

describe('which face', () => {
  // A face whose keypoints are the template moved by `t^-1`: aligned with no residual.
  const face = (score: number, scale: number, cx: number, cy: number): Face => {
    const t: Similarity = { a: 1 / scale, b: 0, tx: -cx / scale + CANVAS / 2, ty: -cy / scale + CANVAS / 2 };
    const inv = invertSimilarity(t);
    const keypoints = [...TEMPLATE.map((p) => applySimilarity(inv, p)), [0, 0] as Point, [0, 0] as Point];
    const side = 100 * scale;
    return { score, box: { x: cx - side / 2, y: cy - side / 2, width: side, height: side }, keypoints };
  };
  const big = face(0.8, 1.0, 80, 80), central = face(0.85, 0.8, 250, 250), tiny = face(0.99, 0.3, 255, 255);
  const pick = (p: 'central' | 'largest' | 'confident') => {
    const a = alignFace([big, central, tiny], 500, 500, checkPolicy('policy', { pick: p, minFace: 10 }));
    assert.ok(a.ok);
    assert.equal(a.faces, 3);
    return a.face;
  };

  test("'central' takes the most central of the large ones, 'largest' and 'confident' what they say", () => {
    assert.equal(pick('central'), central);
    assert.equal(pick('largest'), big);
    assert.equal(pick('confident'), tiny);
  });

  test('no face, too small, extreme pose: each a reason', () => {
    const policy = checkPolicy('policy', {});
    assert.deepEqual(alignFace([], 100, 100, policy), { ok: false, kind: 'no face', reason: 'no face found', faces: 0 });
    const small = alignFace([face(0.9, 0.2, 50, 50)], 100, 100, policy);
    assert.ok(!small.ok && small.kind === 'face too small' && /20 px wide \(minimum 32\)/.test(small.reason));
    const twisted = face(0.9, 1, 50, 50);
    twisted.keypoints[2] = [twisted.keypoints[2][0] + 40, twisted.keypoints[2][1]]; // nose far to the side
    const pose = alignFace([twisted], 100, 100, policy);
    assert.ok(!pose.ok && pose.kind === 'extreme pose' && /off the template by 0\.\d\d eye distances \(maximum 0\.35\)/.test(pose.reason), JSON.stringify(pose));
    assert.throws(() => checkPolicy('align', { pick: 'nearest' as 'central' }), /align\.pick: expected one of 'central', 'largest', 'confident', received string "nearest"/);
    assert.throws(() => checkPolicy('align', { minFace: 0 }), /align\.minFace: expected a number in \[1, Infinity\], received number 0/);
  });
});

describe('BlazeFace on a real face', () => {
  test('one face, box and keypoints in place; the aligned crop puts the eyes on the template', async () => {
    const detector = await FaceDetector.open();
    try {
      const image = await decodeImage(FACE);
      const [faces] = await detector.detect([image]);
      assert.equal(faces.length, 1);
      const f = faces[0];
      assert.ok(f.score > 0.8, `score ${f.score}`);
      // LFW centres the face: a box of 80-140 px around the middle of the 250x250 photo.
      assert.ok(f.box.width > 80 && f.box.width < 140 && Math.abs(f.box.x + f.box.width / 2 - 125) < 20 && Math.abs(f.box.y + f.box.height / 2 - 125) < 25, JSON.stringify(f.box));
      const [le, re, nose, mouth] = f.keypoints;
      assert.ok(le[0] < nose[0] && nose[0] < re[0], 'nose between the eyes');
      assert.ok(Math.max(le[1], re[1]) < nose[1] && nose[1] < mouth[1], 'eyes above the nose above the mouth');
      const eyes = Math.hypot(re[0] - le[0], re[1] - le[1]);
      assert.ok(eyes > 30 && eyes < 60, `eye distance ${eyes}`);
      for (const p of f.keypoints.slice(0, 4)) assert.ok(p[0] > f.box.x && p[0] < f.box.x + f.box.width && p[1] > f.box.y && p[1] < f.box.y + f.box.height);

      const a = alignFace(faces, image.width, image.height, checkPolicy('policy', {}));
      assert.ok(a.ok);
      const crop = warpSimilarity(image, a.transform, CANVAS);
      const [again] = await detector.detect([crop]);
      assert.equal(again.length, 1);
      // Detected afresh on the crop: within 4 px of the template on a 224 canvas (eyes 35 px apart).
      for (let k = 0; k < 2; k++) {
        const d = Math.hypot(again[0].keypoints[k][0] - TEMPLATE[k][0], again[0].keypoints[k][1] - TEMPLATE[k][1]);
        assert.ok(d < 4, `eye ${k}: ${d.toFixed(1)} px from the template`);
      }
      // Letterboxed input: the same photo 30 px from the left of a 500x250 image gives the same keypoints moved by 30 px.
      const wide = await sharp({ create: { width: 500, height: 250, channels: 3, background: '#000' } }).composite([{ input: FACE, left: 30, top: 0 }]).png().toBuffer();
      const [[moved]] = await detector.detect([await decodeImageBytes(wide, 'wide.png')]);
      moved.keypoints.slice(0, 4).forEach((p, k) => assert.ok(Math.hypot(p[0] - 30 - f.keypoints[k][0], p[1] - f.keypoints[k][1]) < 3, `keypoint ${k} in the wide image`));
      const [none] = await detector.detect([await decodeImage(path.join(FIXTURES, 'photos', 'imagenet-n01443537.jpg'))]);
      assert.deepEqual(none, [], 'a goldfish is no face');
    } finally {
      await detector.close();
    }
  });
});

// Images for the stage and the pipeline: two faces, two photos without one, a corrupt file.
const imagesDir = path.join(dir, 'images');
fs.mkdirSync(imagesDir);
for (const f of ['photos/lfw-Aaron_Eckhart_0001.jpg', 'orl/s1/1.pgm', 'photos/tiny-val_0.jpg', 'photos/imagenet-n01443537.jpg']) fs.copyFileSync(path.join(FIXTURES, f), path.join(imagesDir, path.basename(f)));
fs.writeFileSync(path.join(imagesDir, 'corrupt.jpg'), fs.readFileSync(FACE).subarray(0, 3000));
const IDS = ['lfw-Aaron_Eckhart_0001.jpg', 'tiny-val_0.jpg', 'corrupt.jpg', '1.pgm', 'imagenet-n01443537.jpg'];
const list = path.join(dir, 'list.tsv');
fs.writeFileSync(list, IDS.join('\n') + '\n');
const files = IDS.map((id) => path.join(imagesDir, id));

describe('alignment stage', () => {
  test('no face and corrupt files reported with reasons and counted; a second pass runs no detector, whatever its fallback; changed images and settings are not reused', async () => {
    const cache = path.join(dir, 'cache-stage');
    const first = await alignImages(files, { cache });
    assert.deepEqual([first.summary.aligned, first.summary.skipped, first.summary.fallback, first.summary.detected, first.summary.fromCache], [2, 3, 0, 4, 0]);
    assert.deepEqual(first.summary.failures, { 'no face': 2, unreadable: 1 });
    assert.deepEqual(first.summary.reports.map((r) => [r.index, r.kind, r.fallback]), [[1, 'no face', false], [2, 'unreadable', false], [4, 'no face', false]]);
    assert.equal(first.summary.reports[0].file, files[1]);
    assert.match(first.summary.reports[1].reason, /cannot decode the image: .*(premature end|damaged or truncated)/i);
    assert.equal(first.images[1].crop, undefined);
    const crop = await decodeImage(first.images[0].crop!);
    assert.deepEqual([crop.width, crop.height], [CANVAS, CANVAS]);

    const second = await alignImages(files, { cache });
    assert.deepEqual([second.summary.detected, second.summary.fromCache], [0, 4], 'the unreadable file is not cached, the rest are');
    // libvips words the same truncated JPEG differently from one decode to the next.
    const sameButWording = (imgs: typeof first.images) =>
      imgs.map((i) => (i.failure?.kind === 'unreadable' ? { ...i, failure: { ...i.failure, reason: 'cannot decode' } } : i));
    assert.deepEqual(sameButWording(second.images), sameButWording(first.images));
    assert.match(second.images[2].failure!.reason, /cannot decode the image: /);

    // The same file name with other content: detected again. Other settings: another folder.
    const moved = path.join(dir, 'moved.jpg');
    fs.writeFileSync(moved, await sharp(FACE).flop().jpeg().toBuffer());
    const edited = await alignImages([files[0], moved], { cache });
    assert.deepEqual([edited.summary.detected, edited.summary.fromCache], [1, 1]);
    fs.writeFileSync(moved, await sharp(FACE).rotate(10).jpeg().toBuffer());
    assert.equal((await alignImages([moved], { cache })).summary.detected, 1);
    const other = await alignImages([files[0]], { cache, pick: 'largest' });
    assert.deepEqual([other.summary.detected, other.summary.cache !== first.summary.cache], [1, true]);

    // The fallback setting is not part of the key: the first pass's detections serve it.
    const fallback = await alignImages(files, { cache, fallback: 'centre' });
    assert.deepEqual([fallback.summary.aligned, fallback.summary.fallback, fallback.summary.skipped], [2, 2, 1]);
    assert.deepEqual([fallback.summary.detected, fallback.summary.cache], [0, first.summary.cache]);
    assert.ok(fallback.images[1].crop && fallback.images[1].failure?.kind === 'no face', 'centred crop, flagged');
    assert.deepEqual(tempFiles(path.dirname(fallback.images[0].crop!)), []);
  });

  test('bad options name the argument', async () => {
    await assert.rejects(alignImages(files, { cache: path.join(dir, 'c'), fallback: 'guess' as 'skip' }), /align\.fallback: expected one of 'skip', 'centre', received string "guess"/);
    await assert.rejects(alignImages(files, {} as { cache: string }), /align\.cache: expected a folder path for the aligned crops, received undefined/);
    await assert.rejects(alignImages(files, { cache: path.join(dir, 'c'), minScore: 2 }), /minScore: expected a number in \[0, 1\], received number 2/);
  });
});

/** A small random network and its card; returns the card path. */
const writeCard = (name: string, input: Omit<ModelCard['input'], 'name'>) => writeSmallCard(dir, name, input, rng);

describe('--align extraction', () => {
  const cardA = writeCard('arc', { size: [32, 32], layout: 'NCHW', channels: 'RGB', scale: 1 / 255, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5], resize: 'stretch', crop: 0.5 });
  const cardB = writeCard('dlib', { size: [24, 24], layout: 'NHWC', channels: 'BGR', scale: 1, mean: [120, 117, 104], std: [255, 255, 255], resize: 'pad', crop: 0.5, cropCentre: [0.5, 0.58] });
  const cache = path.join(dir, 'cache-extract');

  test('rows are the aligned crops through each network; no-face and corrupt images skipped with reasons; a second network reuses the detection pass', async () => {
    const dataset = manifestDataset(list, { root: imagesDir });
    const out = path.join(dir, 'arc.npy');
    const first = await extract({ dataset, targets: [{ model: cardA, out }], batch: 2, workers: 1, align: { cache } });
    assert.deepEqual([first.total, first.rows], [5, 2]);
    assert.deepEqual(first.skipped.map((s) => [s.index, s.id]), [[1, 'tiny-val_0.jpg'], [2, 'corrupt.jpg'], [4, 'imagenet-n01443537.jpg']]);
    assert.equal(first.skipped[0].reason, 'alignment: no face found');
    assert.match(first.skipped[1].reason, /^alignment: cannot decode the image/);
    assert.deepEqual([first.align!.aligned, first.align!.detected, first.align!.failures], [2, 4, { 'no face': 2, unreadable: 1 }]);
    const set = loadEmbeddings(out);
    assert.deepEqual(set.ids, ['lfw-Aaron_Eckhart_0001.jpg', '1.pgm']);

    // The second network: every image from the cache, the detector never opened.
    const outB = path.join(dir, 'dlib.npy');
    const second = await extract({ dataset, targets: [{ model: cardB, out: outB }], batch: 2, workers: 1, align: { cache } });
    assert.deepEqual([second.align!.detected, second.align!.fromCache, second.rows], [0, 4, 2]);

    const { images } = await alignImages(files, { cache });
    for (const [card, file] of [[cardA, out], [cardB, outB]]) {
      const runner = await ModelRunner.open(loadCard(card));
      try {
        const rows = loadEmbeddings(file).matrix;
        for (const [row, k] of [[0, 0], [1, 3]]) {
          const ref = (await runner.run(await imageToTensor(images[k].crop!, runner.spec), 1)).embeddings;
          assert.ok(relErr(rows.row(row), ref) < 1e-5, `${path.basename(file)} row ${row}`);
        }
      } finally {
        await runner.close();
      }
    }
  });

  test('the CLI: --align reports the images without a face; misused flags name themselves', () => {
    const out = path.join(dir, 'cli', 'arc.npy');
    fs.mkdirSync(path.dirname(out));
    const run = spawnSync(process.execPath, [CLI, 'extract', '--model', cardA, '--images', list, '--root', imagesDir, '--out', out, '--align', '--quiet'], { encoding: 'utf8' });
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stdout, /aligned 2 of 5 images \(0 from the cache .*\.embmap-align.*, 4 detected now/);
    assert.match(run.stdout, /3 without a usable face \(1 unreadable, 2 no face\): 0 embedded from a centred crop, 3 skipped:/);
    assert.match(run.stdout, /tiny-val_0\.jpg: no face found\n/);
    assert.ok(fs.existsSync(path.join(dir, 'cli', '.embmap-align')), 'cache beside the output by default');
    const bad = spawnSync(process.execPath, [CLI, 'extract', '--model', cardA, '--images', list, '--out', out, '--align', '--align-fallback', 'blur'], { encoding: 'utf8' });
    assert.notEqual(bad.status, 0);
    assert.match(bad.stderr, /--align-fallback: expected one of skip, centre, received 'blur'/);
    const without = spawnSync(process.execPath, [CLI, 'extract', '--model', cardA, '--images', list, '--out', out, '--align-pick', 'largest'], { encoding: 'utf8' });
    assert.match(without.stderr, /--align-pick: only applies with --align/);
  });
});

describe('real LFW (../shared)', () => {
  test('BlazeFace aligns at least 98% of the first 300 images; the rest are reported', async (t) => {
    if (!fs.existsSync(path.join(SHARED_LFW, 'pairs.txt'))) return t.skip(`../shared LFW not present at ${SHARED_LFW}`);
    const items = lfwDataset(SHARED_LFW).items.slice(0, 300);
    const { summary } = await alignImages(items.map((i) => i.path), { cache: path.join(dir, 'cache-lfw') });
    assert.ok(summary.aligned >= 294, JSON.stringify(summary.failures));
    assert.equal(summary.aligned + summary.skipped, 300);
    assert.equal(summary.reports.length, summary.skipped);
  });
});
