// The classification experiment's fit pool and sample-size curve: the trend against a float64
// reference on fresh random points, nested curve subsets that keep an image's views together, and
// fit and test sets that never share an image (views included), checked on a real run on demo/.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { CLASSIFIERS } from '../src/cli/commands/demo';
import { runClassification } from '../src/experiments/classification';
import { IMAGENET_TRAIN_IMAGES, curveSizes, fitLogTrend, nestedRows, trendAt } from '../src/experiments/curve';
import { imageOfViewId } from '../src/images/views';
import { loadEmbeddings } from '../src/io/embeddings';
import { gaussian, makeRng } from './helpers/random';

const rng = makeRng('experiments.pool.test');
const DEMO = path.join(__dirname, '..', '..', 'demo');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'embmap-pool-'));
process.on('exit', () => fs.rmSync(work, { recursive: true, force: true }));
const ids = Object.keys(CLASSIFIERS).slice(0, 2);
const from = Object.fromEntries(ids.map((id) => [id, path.join(DEMO, 'models', CLASSIFIERS[id])]));

test('trend linear in ln n: least squares against a float64 reference (normal equations), exact on a line, refused on one size', () => {
  const a = 30 * rng(), b = -5 * rng();
  const pts = Array.from({ length: 4 + Math.floor(rng() * 6) }, () => Math.floor(10 + rng() * 1e5)).map((n) => ({ n, y: a + b * Math.log(n) + gaussian(rng) }));
  if (new Set(pts.map((p) => p.n)).size < 2) pts.push({ n: pts[0].n * 2, y: a + b * Math.log(pts[0].n * 2) });
  const t = fitLogTrend(pts);
  // Reference: [k, Σx; Σx, Σx²] [c; s] = [Σy; Σxy].
  let sx = 0, sxx = 0, sy = 0, sxy = 0;
  for (const p of pts) {
    const x = Math.log(p.n);
    sx += x; sxx += x * x; sy += p.y; sxy += x * p.y;
  }
  const det = pts.length * sxx - sx * sx;
  const slope = (pts.length * sxy - sx * sy) / det, intercept = (sy * sxx - sx * sxy) / det;
  assert.ok(Math.abs(t.slope - slope) <= 1e-9 * (1 + Math.abs(slope)), `slope ${t.slope} vs ${slope}`);
  assert.ok(Math.abs(t.intercept - intercept) <= 1e-9 * (1 + Math.abs(intercept)), `intercept ${t.intercept} vs ${intercept}`);
  assert.ok(t.r2 >= 0 && t.r2 <= 1);
  const exact = fitLogTrend([100, 1000, 10000].map((n) => ({ n, y: a + b * Math.log(n) })));
  assert.ok(Math.abs(trendAt(exact, IMAGENET_TRAIN_IMAGES) - (a + b * Math.log(IMAGENET_TRAIN_IMAGES))) < 1e-9);
  assert.ok(Math.abs(exact.r2 - 1) < 1e-12);
  assert.throws(() => fitLogTrend([{ n: 50, y: 1 }, { n: 50, y: 2 }]), /points: expected at least two distinct sizes/);
});

test('curve sizes are sorted, distinct, capped and end at every image; subsets are nested and keep an image\'s views together', () => {
  assert.deepEqual(curveSizes([500, 50, 50, 20000, 150], 10500), [50, 150, 500, 10500]);
  assert.throws(() => curveSizes([1], 10), /curve\[0\]: expected an integer >= 2/);
  const images = 30 + Math.floor(rng() * 50), k = 1 + Math.floor(rng() * 4);
  const imageOf = Int32Array.from({ length: images * k }, (_, r) => Math.floor(r / k));
  const sizes = curveSizes([5, 10, 20], images);
  const subsets = nestedRows(imageOf, images, sizes, Math.floor(rng() * 1000));
  sizes.forEach((n, i) => {
    const chosen = new Set(Array.from(subsets[i], (r) => imageOf[r]));
    assert.equal(chosen.size, n, `${n} distinct images`);
    assert.equal(subsets[i].length, n * k, 'every view of a chosen image, no other row');
    if (i > 0) for (const r of subsets[i - 1]) assert.ok(subsets[i].includes(r), 'nested');
  });
});

test('views for fit rows only: no test image among the fit rows (sidecar ids read back), K rows per fit image, a curve with a trend', async () => {
  const images = path.join(DEMO, 'imagenet');
  const r = await runClassification({
    images: [images], testImages: images, views: 3, curve: [6, 12], methods: ['lstsq', 'ridge-prior'], limit: 40, models: ids, work, from,
  });
  assert.equal(r.fitImages + r.testImages, 40);
  assert.equal(r.fitRows, 3 * r.fitImages);
  assert.deepEqual(r.sources.map((s) => s.views), [3]);
  const viewFiles = fs.readdirSync(path.join(work, 'embeddings')).filter((d) => d.includes('-views3-'));
  assert.equal(viewFiles.length, 1);
  const plain = loadEmbeddings(path.join(work, 'embeddings', 'imagenet-40', fs.readdirSync(path.join(work, 'embeddings', 'imagenet-40')).find((f) => /-[0-9a-f]{8}\.npy$/.test(f))!));
  const viewed = fs.readdirSync(path.join(work, 'embeddings', viewFiles[0])).filter((f) => /-[0-9a-f]{8}\.npy$/.test(f));
  assert.equal(viewed.length, ids.length);
  for (const f of viewed) {
    const set = loadEmbeddings(path.join(work, 'embeddings', viewFiles[0], f));
    assert.equal(set.matrix.rows, 3 * r.fitImages);
    const fitIds = new Set(set.ids.map(imageOfViewId));
    assert.equal(fitIds.size, r.fitImages);
    const testIds = plain.ids.filter((id) => !fitIds.has(id));
    assert.equal(testIds.length, r.testImages, 'the test images are the rest of the source');
  }
  assert.deepEqual(r.methods.map((m) => m.label), ['lstsq', 'ridge-prior']);
  assert.deepEqual(r.curve!.map((p) => [p.images, p.rows]), [[6, 18], [12, 36], [r.fitImages, 3 * r.fitImages]]);
  for (const m of r.methods) {
    for (const p of m.pairs) {
      const weaker = Math.min(...[p.source, p.target].map((id) => r.models.find((x) => x.id === id)!.test.top1));
      assert.ok(Math.abs(p.weakerDropPoints - 100 * (weaker - p.mapped.top1)) < 1e-9);
    }
    assert.equal(r.curve!.at(-1)!.medians[m.label].dropPoints, m.medianDropPoints, 'the last point is the full fit');
  }
  assert.deepEqual(r.trends!.map((t) => [t.label, t.kind, t.extrapolation.images]), [['lstsq', 'linear in ln(images)', IMAGENET_TRAIN_IMAGES], ['ridge-prior', 'linear in ln(images)', IMAGENET_TRAIN_IMAGES]]);
});

test('bad views, fit fraction and curve are refused naming the argument, before any work', async () => {
  const images = path.join(DEMO, 'imagenet');
  for (const [bad, message] of [
    [{ views: 0 }, /views: expected an integer in \[1, 1000\], received number 0/],
    [{ views: 2.5 }, /views: expected an integer, received number 2\.5/],
    [{ fitFraction: 1.5 }, /fitFraction: expected a number in \[0, 1\], received number 1\.5/],
    [{ curve: [100, 1] }, /curve\[1\]: expected an integer >= 2, received number 1/],
    [{ curve: '100' }, /curve: expected a list of numbers of images, received string "100"/],
    [{ methods: ['pca'] }, /methods\[0\]: expected one of/],
  ] as const) {
    await assert.rejects(runClassification({ images, models: ids, work: path.join(work, 'never'), from, ...(bad as object) }), message);
  }
  assert.ok(!fs.existsSync(path.join(work, 'never')), 'nothing written');
});

test('a fit source that holds a test image (here through a link) is refused before anything is embedded', async () => {
  const images = path.join(DEMO, 'imagenet');
  const copy = path.join(work, 'copy');
  fs.mkdirSync(copy, { recursive: true });
  fs.symlinkSync(path.join(images, 'images'), path.join(copy, 'images'));
  fs.copyFileSync(path.join(images, 'labels.tsv'), path.join(copy, 'labels.tsv'));
  const before = fs.existsSync(path.join(work, 'embeddings')) ? fs.readdirSync(path.join(work, 'embeddings')).length : 0;
  await assert.rejects(
    runClassification({ images: [copy, images], testImages: images, limit: 40, models: ids, work, from }),
    /test images: expected none among the fit rows, found val_\d+\.JPEG \(.*\) in both/,
  );
  assert.equal(fs.existsSync(path.join(work, 'embeddings')) ? fs.readdirSync(path.join(work, 'embeddings')).length : 0, before, 'nothing embedded');
});
