// The experiments end to end at small scale on the data that ships in demo/: numbers in range,
// the protocol's bookkeeping right, the report written in its three forms.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { CLASSIFIERS } from '../src/cli/commands/demo';
import { Matrix } from '../src/core/matrix';
import type { Head } from '../src/estimators/weights';
import { accuracy, logits } from '../src/evaluate/classification';
import { evaluatePair, median, runClassification, scoreMap } from '../src/experiments/classification';
import { LinearMap } from '../src/maps/linear-map';
import { gaussian, makeRng, randn } from './helpers/random';
import { matmul, toF64 } from './helpers/reference';
import { runFaces } from '../src/experiments/faces';
import { writeReport } from '../src/experiments/report';

const DEMO = path.join(__dirname, '..', '..', 'demo');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'embmap-exp-'));
process.on('exit', () => fs.rmSync(work, { recursive: true, force: true }));

test('classification: every ordered pair, retention and the median drop, the rule of each lambda, the sample-size curve', async () => {
  const ids = Object.keys(CLASSIFIERS).slice(0, 2);
  const cfg = {
    images: path.join(DEMO, 'imagenet'), models: ids, work, method: 'ridge', params: { prior: 'weights' }, limit: 160, curve: [20, 80],
    from: Object.fromEntries(ids.map((id) => [id, path.join(DEMO, 'models', CLASSIFIERS[id])])),
  };
  await assert.rejects(runClassification({ ...cfg, curve: [20, 1] }), /^RangeError: curve\[1\]: expected an integer >= 2/);
  const r = await runClassification(cfg);
  assert.equal(r.images, 160);
  assert.equal(r.fitImages + r.testImages, 160);
  assert.equal(r.pairs.length, 2);
  for (const m of r.models) assert.ok(m.test.top1 >= 0 && m.test.top1 <= m.test.top5 && m.test.top5 <= 1);
  for (const p of r.pairs) {
    const native = r.models.find((m) => m.id === p.target)!.test.top1;
    assert.ok(Math.abs(p.dropPoints - 100 * (native - p.mapped.top1)) < 1e-9);
    assert.ok(p.agreement >= 0 && p.agreement <= 1);
    // The head-only closed form keeps most of B's accuracy (the paper's central claim).
    assert.ok(p.weights.top1 >= 0.5 * native, `${p.source}->${p.target}: head-only ${p.weights.top1} vs native ${native}`);
  }
  assert.equal(r.medianDropPoints, median(r.pairs.map((p) => p.dropPoints)));
  // Toward the head prior the lambda rule defaults to cv-top1, and each map says so.
  for (const p of r.pairs) assert.ok(p.selection === 'cv-top1' && typeof p.lambda === 'number' && p.lambda > 0, `${p.source}->${p.target}: ${p.selection} ${p.lambda}`);
  assert.deepEqual(r.curve!.map((c) => c.images), [20, 80]);
  // The largest size is every fitting image: the main result.
  assert.deepEqual(r.curve![1].pairs.map((p) => p.dropPoints), r.pairs.map((p) => p.dropPoints));
  for (const c of r.curve!) {
    assert.equal(c.medianDropPoints, median(c.pairs.map((p) => p.dropPoints)));
    assert.equal(c.worstOverWeightsPoints, Math.max(...c.pairs.map((p) => p.dropPoints - p.weightsDropPoints)));
  }
});

test('faces: LFW protocol on the demo pairs, maps from disjoint identities, curves, report', async () => {
  const r = await runFaces({ lfw: path.join(DEMO, 'lfw'), models: ['mobileface', 'faceapi-resnet'], work, fitImages: 120, pairCurve: [25, 120], rankCurve: [4, 16] });
  assert.equal(r.pairs, 160);
  assert.equal(r.fitPairs, 120);
  assert.equal(r.crosses.length, 2);
  const faceapi = r.models.find((m) => m.id === 'faceapi-resnet')!;
  assert.ok(faceapi.verification.accuracy > 0.75, `faceapi-resnet native accuracy ${faceapi.verification.accuracy}`);
  assert.equal(faceapi.verification.folds, 4);
  for (const c of r.crosses) {
    assert.ok(c.cross.accuracy > 0.5 && c.cross.accuracy <= 1);
    assert.ok(Math.abs(c.penaltyPoints - 100 * (c.native.accuracy - c.cross.accuracy)) < 1e-9);
    assert.ok(c.identification.mapped.queries > 0);
    // The rule that chose each map's lambda is reported; the bound (fitted on the evaluated images) is at least as good as fitting elsewhere, within noise.
    assert.equal(c.lambdaRule, 'gcv');
    assert.ok(c.lambda! > 0);
    assert.ok(c.fittedOnTest >= c.cross.accuracy - 0.02, `${c.source}->${c.target}: bound ${c.fittedOnTest} below ${c.cross.accuracy}`);
  }
  // Without --choose-crops the windows are ALIGNED_CROP's, reported.
  assert.deepEqual(r.windows!['faceapi-resnet'], { crop: 0.36, centre: [0.5, 0.58], channels: 'RGB' });
  assert.deepEqual(r.curves.pairs.map(([n]) => n), [25, 120]);
  assert.deepEqual(r.curves.rank.map(([k]) => k), [4, 16]);
  const files = await writeReport({ faces: r }, path.join(work, 'report'), 'test');
  const json = JSON.parse(fs.readFileSync(files.json, 'utf8'));
  assert.equal(json.faces.crosses.length, 2);
  assert.match(fs.readFileSync(files.md, 'utf8'), /\| mobileface \| faceapi-resnet \|/);
  assert.equal((fs.readFileSync(files.html, 'utf8').match(/<svg /g) ?? []).length, 3);
});

// A planted map between synthetic embedding sets: B = A M + b + small noise, C classes with
// Gaussian clusters, each network's head the linear classifier of its own class means. The
// experiment's core must recover the map (drop within EPS points of B's own accuracy), and a
// broken map (M with its columns permuted, or pure noise) must show as a large drop.
const EPS_POINTS = 2;
test('classification core: a planted map is recovered, a broken map is caught', async () => {
  const rng = makeRng('experiments planted map');
  const C = 12, p = 24, q = 16, n = 1200, fit = 800;
  const labels = Int32Array.from({ length: n }, (_, i) => i % C);
  const means = randn(rng, C, p, 'float64');
  const A = randn(rng, n, p, 'float64');
  for (let i = 0; i < n; i++) for (let j = 0; j < p; j++) A.data[i * p + j] = 3 * means.data[labels[i] * p + j] + 0.8 * A.data[i * p + j];
  const M = randn(rng, p, q, 'float64');
  const B = new Matrix(Float64Array.from(matmul(toF64(A), toF64(M)).data, (v) => v + 0.5 + 0.01 * gaussian(rng)), n, q);
  // Head of a set: logits_c = mu_c . e - |mu_c|^2 / 2 (nearest class mean).
  const headOf = (E: Matrix): Head => {
    const d = E.cols, W = Matrix.zeros(C, d, 'float64'), c = new Float64Array(C), count = new Float64Array(C);
    for (let i = 0; i < fit; i++) { count[labels[i]]++; for (let j = 0; j < d; j++) W.data[labels[i] * d + j] += E.data[i * d + j]; }
    for (let k = 0; k < C; k++) for (let j = 0; j < d; j++) { W.data[k * d + j] /= count[k]; c[k] -= W.data[k * d + j] ** 2 / 2; }
    return { W, c };
  };
  const rows = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);
  const testA = A.takeRows(rows(fit, n)), testB = B.takeRows(rows(fit, n));
  const headB = headOf(B), testLabels = labels.slice(fit);
  const nativeLogits = await logits(testB, headB);
  const native = accuracy(nativeLogits, testLabels);
  assert.ok(native.top1 > 0.9, `B's own top-1 ${native.top1}: the synthetic task must be learnable for the test to mean anything`);
  const data = {
    source: 'A', target: 'B', fitA: A.takeRows(rows(0, fit)), fitB: B.takeRows(rows(0, fit)), testA,
    headA: headOf(A), headB, labels: testLabels, native, nativeLogits,
  };
  for (const cfg of [{ method: 'lstsq' }, { method: 'ridge' }, { params: { prior: 'weights' } }]) {
    const r = await evaluatePair(data, cfg);
    assert.ok(Math.abs(r.dropPoints) <= EPS_POINTS, `${JSON.stringify(cfg)}: planted map recovered within ${EPS_POINTS} points, drop ${r.dropPoints}`);
    assert.ok(r.agreement > 0.95, `${JSON.stringify(cfg)}: agreement ${r.agreement}`);
  }
  // Broken maps: the planted one with its output columns permuted, and pure noise.
  const perm = Array.from({ length: q }, (_, j) => (j + 1) % q);
  const permuted = Matrix.zeros(p, q, 'float64');
  for (let i = 0; i < p; i++) for (let j = 0; j < q; j++) permuted.data[i * q + perm[j]] = M.data[i * q + j];
  for (const [name, W] of [['permuted', permuted], ['noise', randn(rng, p, q, 'float64')]] as const) {
    const broken = LinearMap.create(W, new Float64Array(q).fill(0.5), {}, { dtype: 'float64' });
    const r = await scoreMap(broken, data);
    assert.ok(r.dropPoints > 40, `${name} map: drop ${r.dropPoints} points must be large (B's own top-1 ${100 * native.top1})`);
  }
});
