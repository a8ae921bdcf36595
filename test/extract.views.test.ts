// Augmented views (src/images/views.ts) through the extraction pass: a view's pixels are the
// augmentation of the decoded image, the same for every network (whatever its size, layout and
// normalisation), every run, batch size and image order; different views differ; K views x N
// images rows named id#vK; bad counts refused naming the argument.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { manifestDataset } from '../src/datasets';
import { extract } from '../src/extract/pipeline';
import { ModelRunner } from '../src/extract/runner';
import { decodeImage, inputSize, preprocessInto } from '../src/images/preprocess';
import type { DecodedImage } from '../src/images/types';
import { applyView, expandViews, imageOfViewId, viewId, viewParams } from '../src/images/views';
import { loadEmbeddings } from '../src/io/embeddings';
import type { ModelCard } from '../src/models/card';
import { loadCard } from '../src/models/load';
import { writeSmallCard } from './helpers/cnn';
import { tempDir } from './helpers/io';
import { makeRng } from './helpers/random';
import { relErr } from './helpers/reference';

const rng = makeRng('extract.views.test');
const FIXTURES = path.join(__dirname, '..', '..', 'test', 'fixtures', 'images');
const CLI = path.join(__dirname, '..', 'src', 'cli', 'main.js');
const dir = tempDir();
const IDS = ['photos/tiny-val_0.jpg', 'photos/tiny-val_1.jpg', 'photos/lfw-Aaron_Eckhart_0001.jpg', 'photos/imagenet-n01443537.jpg', 'orl/s1/1.pgm'];
const K = 3;
const seed = (rng() * 2 ** 32) >>> 0;

const writeCard = (name: string, input: Omit<ModelCard['input'], 'name'>) => writeSmallCard(dir, name, input, rng, 4);

const cardA = writeCard('a', { size: [32, 32], layout: 'NCHW', channels: 'RGB', scale: 1 / 255, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], resize: 'crop' });
const cardB = writeCard('b', { size: [40, 48], layout: 'NHWC', channels: 'BGR', scale: 1, mean: [104, 117, 123], std: [58, 57, 57], resize: 'pad', crop: 0.875 });

function manifest(name: string, ids: string[]): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, ids.map((id) => `${id}\t${id.split('/')[1]}`).join('\n') + '\n');
  return file;
}

async function run(name: string, ids: string[], batch: number, workers: number, viewSeed = seed) {
  const out = path.join(dir, name);
  fs.mkdirSync(out, { recursive: true });
  const summary = await extract({
    dataset: manifestDataset(manifest(`${name}.tsv`, ids), { root: FIXTURES }),
    targets: [{ model: cardA, out: path.join(out, 'a.npy') }, { model: cardB, out: path.join(out, 'b.npy') }],
    batch, workers, prefetch: 1, views: { count: K, seed: viewSeed },
  });
  return { summary, a: loadEmbeddings(path.join(out, 'a.npy')), b: loadEmbeddings(path.join(out, 'b.npy')) };
}

/** The row of view k of `id` through `card`: the view applied to the decoded image here, then the model's own preprocessing. */
async function reference(card: string, id: string, k: number, viewSeed = seed): Promise<Float32Array> {
  const runner = await ModelRunner.open(loadCard(card));
  try {
    let image: DecodedImage = await decodeImage(path.join(FIXTURES, id));
    const v = viewParams(viewSeed, id, k);
    if (v) image = applyView(image, v);
    const input = new Float32Array(inputSize(runner.spec));
    await preprocessInto(image, runner.spec, input, 0);
    return (await runner.run(input, 1)).embeddings.slice();
  } finally {
    await runner.close();
  }
}

test('every network sees the view\'s pixels: rows equal the view applied by hand then each model\'s own preprocessing; K x N rows named id#vK', async () => {
  const { summary, a, b } = await run('first', IDS, 4, 2);
  assert.equal(summary.total, IDS.length * K);
  assert.equal(a.matrix.rows, IDS.length * K);
  const ids = IDS.flatMap((id) => Array.from({ length: K }, (_, k) => viewId(id, k)));
  assert.deepEqual(a.ids, ids);
  assert.deepEqual(b.ids, ids);
  assert.deepEqual(a.labels, IDS.flatMap((id) => Array(K).fill(id.split('/')[1])));
  for (const [r, rowId] of ids.entries()) {
    const id = imageOfViewId(rowId), k = Number(rowId.slice(rowId.lastIndexOf('#v') + 2));
    assert.ok(relErr(a.matrix.row(r), await reference(cardA, id, k)) < 1e-5, `a: ${rowId}`);
    assert.ok(relErr(b.matrix.row(r), await reference(cardB, id, k)) < 1e-5, `b: ${rowId}`);
  }
  // Different views of one image differ (view 0 is the plain image, the others augmented).
  for (let i = 0; i < IDS.length; i++) {
    for (let k = 1; k < K; k++) assert.ok(relErr(a.matrix.row(i * K + k), a.matrix.row(i * K)) > 1e-3, `${IDS[i]} view ${k} differs from view 0`);
  }
});

test('a view is the same in another run, batch size, worker count and image order; another seed gives other views', async () => {
  const first = await run('again', IDS, 4, 2);
  const reordered = [...IDS].reverse();
  const other = await run('reordered', reordered, 1, 1);
  for (const [r, id] of first.a.ids.entries()) {
    const s = other.a.ids.indexOf(id);
    assert.ok(s >= 0, id);
    assert.deepEqual(other.a.matrix.row(s), first.a.matrix.row(r), `a: ${id} in another order and batch`);
    assert.deepEqual(other.b.matrix.row(s), first.b.matrix.row(r), `b: ${id} in another order and batch`);
  }
  const reseeded = await run('reseeded', IDS, 4, 2, (seed ^ 1) >>> 0);
  assert.deepEqual(reseeded.a.matrix.row(0), first.a.matrix.row(0), 'view 0 is the plain image under any seed');
  assert.ok(relErr(reseeded.a.matrix.row(1), first.a.matrix.row(1)) > 1e-3, 'another seed, another view 1');
});

test('applyView: crop, flip and jitter against a float64 reference on a random image', () => {
  const W = 13 + Math.floor(rng() * 20), H = 9 + Math.floor(rng() * 20);
  const image = { data: Uint8Array.from({ length: W * H * 3 }, () => Math.floor(rng() * 256)), width: W, height: H };
  for (let k = 1; k <= 20; k++) {
    const v = viewParams(seed, `img${k}`, k)!;
    assert.deepEqual(viewParams(seed, `img${k}`, k), v, 'drawn from (seed, id, view) alone');
    const out = applyView(image, v);
    const w = out.width, h = out.height;
    assert.ok(Math.abs(w * h - v.scale * W * H) <= W + H + 1 || w === W || h === H, 'area about scale x the image');
    const left = Math.min(W - w, Math.floor(v.x * (W - w + 1))), top = Math.min(H - h, Math.floor(v.y * (H - h + 1)));
    const clamp = (x: number) => Math.min(255, Math.max(0, x));
    const px: number[] = [];
    for (let r = 0; r < h; r++) for (let c = 0; c < w; c++) for (let ch = 0; ch < 3; ch++) {
      px.push(clamp(image.data[((top + r) * W + left + (v.flip ? w - 1 - c : c)) * 3 + ch] * v.brightness));
    }
    let grey = 0;
    for (let p = 0; p < px.length; p += 3) grey += 0.299 * px[p] + 0.587 * px[p + 1] + 0.114 * px[p + 2];
    const mean = grey / (w * h);
    for (let p = 0; p < px.length; p += 3) {
      const c3 = [0, 1, 2].map((ch) => clamp(mean + v.contrast * (px[p + ch] - mean)));
      const l = 0.299 * c3[0] + 0.587 * c3[1] + 0.114 * c3[2];
      for (let ch = 0; ch < 3; ch++) {
        const want = clamp(l + v.saturation * (c3[ch] - l));
        assert.ok(Math.abs(out.data[p + ch] - want) <= 0.5 + 1e-3, `view ${k} pixel ${p / 3} channel ${ch}: ${out.data[p + ch]} vs ${want}`);
      }
    }
  }
});

test('bad view counts are refused naming the argument', async () => {
  for (const count of [0, -1, 1.5, 1001, NaN]) {
    assert.throws(() => expandViews([{ id: 'x' }], { count }), /views\.count: expected an (integer|integer in \[1, 1000\]), received number/);
    await assert.rejects(extract({ dataset: manifestDataset(manifest('bad.tsv', IDS), { root: FIXTURES }), targets: [{ model: cardA, out: path.join(dir, 'bad.npy') }], views: { count } }), /views\.count: expected/);
  }
  const cli = (...a: string[]) => spawnSync(process.execPath, [CLI, 'extract', '--model', cardA, '--images', manifest('cli.tsv', IDS), '--root', FIXTURES, '--out', path.join(dir, 'cli.npy'), ...a], { encoding: 'utf8' });
  for (const v of ['0', '-2', '2.5', '100000']) {
    const r = cli('--views', v);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, new RegExp(`--views: expected a whole number of views per image from 1 to 1000, received ${v.replace('.', '\\.')}`));
  }
  assert.match(cli('--seed', '3').stderr, /--seed: only applies with --views/);
  assert.ok(!fs.existsSync(path.join(dir, 'cli.npy')));
});
