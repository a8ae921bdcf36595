// Ridge shrunk toward a prior map M0: against a float64 reference of the closed form
// (Sxx + lambda I) M = Sxy + lambda M0 on centred data, its limits (lambda -> infinity: the prior;
// lambda = 0: lstsq), the choice of lambda on noise and on informative data, fitMap's
// resolution of the prior (map, file, 'weights' from heads) and its bad input; lambda chosen on
// the target head's metric ('cv-logits', 'cv-top1') on planted heads, its validation curves
// against a float64 refit per fold, and the prior kept (lambda = Infinity) when nothing beats it.
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { test } from 'node:test';
import { Matrix } from '../src/core/matrix';
import { LstsqEstimator, RidgeEstimator, WeightsEstimator, fitMap } from '../src/estimators';
import { LinearMap } from '../src/maps/linear-map';
import { SufficientStats } from '../src/engine/stats';
import { foldOf, rowsByFold } from '../src/evaluate/split';
import { tempDir } from './helpers/io';
import { gaussian, makeRng, randn } from './helpers/random';
import { matmul, relErr, solve, toF64, transpose, type M64 } from './helpers/reference';

/** Columns minus their means, and the means. */
function centre(m: Matrix): { c: M64; mean: Float64Array } {
  const c = toF64(m), mean = new Float64Array(m.cols);
  for (let i = 0; i < m.rows; i++) for (let j = 0; j < m.cols; j++) mean[j] += c.data[i * m.cols + j] / m.rows;
  for (let i = 0; i < m.rows; i++) for (let j = 0; j < m.cols; j++) c.data[i * m.cols + j] -= mean[j];
  return { c, mean };
}

/** The closed form, computed independently in float64. */
function reference(X: Matrix, Y: Matrix, M0: Matrix, lambda: number): { M: M64; b: Float64Array } {
  const x = centre(X), y = centre(Y), xt = transpose(x.c);
  const S = matmul(xt, x.c), R = matmul(xt, y.c), m0 = toF64(M0);
  for (let i = 0; i < S.rows; i++) S.data[i * S.rows + i] += lambda;
  for (let i = 0; i < R.data.length; i++) R.data[i] += lambda * m0.data[i];
  const M = solve(S, R);
  const b = Float64Array.from(y.mean, (my, j) => my - x.mean.reduce((s, mx, i) => s + mx * M.data[i * M.cols + j], 0));
  return { M, b };
}

/** Y = X Mtrue + c + noise * N(0, 1). */
function pairs(rng: () => number, n: number, p: number, q: number, Mtrue: Matrix, noise: number): { X: Matrix; Y: Matrix } {
  const X = randn(rng, n, p, 'float64');
  const XM = matmul(toF64(X), toF64(Mtrue));
  for (let i = 0; i < XM.data.length; i++) XM.data[i] += 0.5 + noise * gaussian(rng);
  return { X, Y: new Matrix(XM.data, n, q) };
}

const prior = (weight: Matrix) => ({ weight, provenance: { from: 'test' } });

test('ridge toward a prior without a bias: the closed form (Sxx + lambda I) M = Sxy + lambda M0, bias from the means', async () => {
  const rng = makeRng('ridge-prior closed form');
  const n = 60, p = 8, q = 5;
  const M0 = randn(rng, p, q, 'float64');
  const { X, Y } = pairs(rng, n, p, q, randn(rng, p, q, 'float64'), 0.3);
  for (const lambda of [0.1, 7, 300]) {
    const est = await new RidgeEstimator({ lambda, prior: prior(M0) }).fit(X, Y);
    const ref = reference(X, Y, M0, lambda);
    assert.ok(relErr(est.fitted.weight.data, ref.M.data) < 1e-10, `lambda ${lambda}: weight ${relErr(est.fitted.weight.data, ref.M.data)}`);
    assert.ok(relErr(est.fitted.bias, ref.b) < 1e-10, `lambda ${lambda}: bias`);
  }
});

test('ridge toward a prior: lambda -> infinity gives the prior, lambda = 0 gives lstsq', async () => {
  const rng = makeRng('ridge-prior limits');
  const n = 50, p = 6, q = 4;
  const M0 = randn(rng, p, q, 'float64');
  const { X, Y } = pairs(rng, n, p, q, randn(rng, p, q, 'float64'), 0.2);
  const far = await new RidgeEstimator({ lambda: 1e13, prior: prior(M0) }).fit(X, Y);
  assert.ok(relErr(far.fitted.weight.data, M0.data) < 1e-9, `far: ${relErr(far.fitted.weight.data, M0.data)}`);
  const zero = await new RidgeEstimator({ lambda: 0, prior: prior(M0) }).fit(X, Y);
  const ls = await new LstsqEstimator().fit(X, Y);
  assert.ok(relErr(zero.fitted.weight.data, ls.fitted.weight.data) < 1e-10);
  assert.ok(relErr(zero.fitted.bias, ls.fitted.bias) < 1e-10);
});

for (const selection of ['gcv', 'cv'] as const) {
  test(`ridge toward a prior, lambda by ${selection}: large on noise (the map stays at the prior), small on informative data`, async () => {
    const rng = makeRng(`ridge-prior ${selection}`);
    const p = 12, q = 6;
    const M0 = randn(rng, p, q, 'float64');
    // Noise: the data say nothing beyond the prior (Y = X M0 + heavy noise, few pairs).
    const noisy = pairs(rng, 40, p, q, M0, 20);
    const a = await new RidgeEstimator({ lambda: selection, prior: prior(M0) }).fit(noisy.X, noisy.Y);
    const meanEig = 40; // E[x^T x] per dimension for N(0, 1) rows
    // At least the mean eigenvalue: every typical direction shrunk halfway or more to the prior.
    assert.ok((a.fitted.info.lambda as number) >= meanEig, `noise: lambda ${a.fitted.info.lambda}`);
    const ls = await new LstsqEstimator().fit(noisy.X, noisy.Y);
    const toPrior = relErr(a.fitted.weight.data, M0.data), lsToPrior = relErr(ls.fitted.weight.data, M0.data);
    assert.ok(toPrior < 0.5 * lsToPrior, `noise: the fit must stay near M0 (${toPrior} vs lstsq ${lsToPrior})`);
    // Informative: a different true map, little noise, many pairs.
    const Mtrue = randn(rng, p, q, 'float64');
    const clean = pairs(rng, 400, p, q, Mtrue, 0.01);
    const b = await new RidgeEstimator({ lambda: selection, prior: prior(M0) }).fit(clean.X, clean.Y);
    assert.ok((b.fitted.info.lambda as number) <= 1e-2 * 400, `informative: lambda ${b.fitted.info.lambda}`);
    assert.ok(relErr(b.fitted.weight.data, Mtrue.data) < 1e-2, `informative: ${relErr(b.fitted.weight.data, Mtrue.data)}`);
  });
}

test('fitMap: prior as a map file and as weights from heads, provenance in the metadata, bad input named', async () => {
  const rng = makeRng('ridge-prior fitMap');
  const p = 8, q = 6, C = 5, n = 80;
  const head = (d: number) => ({ W: randn(rng, C, d, 'float64'), c: Float64Array.from({ length: C }, () => gaussian(rng)) });
  const hA = head(p), hB = head(q);
  const W = (await new WeightsEstimator().fitHeads(hA, hB)).fitted.weight;
  const { X, Y } = pairs(rng, n, p, q, W, 0.5);
  const { map } = await fitMap(X, Y, { method: 'ridge', lambda: 1e13, prior: 'weights', sourceHead: hA, targetHead: hB, validation: 'none' });
  // Maps are stored in float32 by default: equal to rounding.
  assert.ok(relErr(map.weight().data, W.data) < 1e-6, `lambda -> infinity: the head-only map, ${relErr(map.weight().data, W.data)}`);
  const recorded = map.metadata.params.prior as Record<string, unknown>;
  assert.equal(recorded.from, 'weights');
  assert.equal(recorded.classes, C);

  const dir = tempDir();
  const file = path.join(dir, 'prior.safetensors');
  LinearMap.create(W, new Float64Array(q), { estimator: 'weights' }, { dtype: 'float64' }).save(file);
  // A map file has a bias (here zero): the same as that bias in memory.
  const fromFile = await fitMap(X, Y, { method: 'ridge', lambda: 3, prior: file });
  const inMemory = await fitMap(X, Y, { method: 'ridge', lambda: 3, prior: { weight: W, bias: new Float64Array(q) } });
  assert.ok(relErr(fromFile.map.weight().data, inMemory.map.weight().data) < 1e-12);
  assert.ok(relErr(fromFile.map.bias(), inMemory.map.bias()) < 1e-12);
  const saved = path.join(dir, 'fitted.safetensors');
  fromFile.map.save(saved);
  assert.equal((LinearMap.load(saved).metadata.params.prior as Record<string, unknown>).from, file);

  await assert.rejects(fitMap(X, Y, { method: 'ridge', prior: { weight: Matrix.zeros(p + 1, q, 'float64') } }), /^RangeError: prior: expected a 8x6 map .* received a 9x6 map/);
  await assert.rejects(fitMap(X, Y, { method: 'ridge', prior: 'weights', sourceHead: hA }), /^TypeError: targetHead: required by prior 'weights'/);
  await assert.rejects(fitMap(X, Y, { method: 'ridge', prior: 'weights', sourceHead: hA, targetHead: { W: randn(rng, C + 1, q, 'float64'), c: new Float64Array(C + 1) } }),
    /^RangeError: targetHead: expected 5 classes like sourceHead/);
  await assert.rejects(fitMap(X, Y, { method: 'ridge', prior: 'weights', sourceHead: hB, targetHead: hB }), /^RangeError: sourceHead: expected a head over the source's 8-dimensional/);
  await assert.rejects(fitMap(X, Y, { method: 'ridge', sourceHead: hA }), /^RangeError: sourceHead: only with prior 'weights'/);
  await assert.rejects(fitMap(X, Y, { method: 'ridge', prior: 'heads' }), /^TypeError: prior: expected a LinearMap, \{ weight: Matrix, bias\? \}, a map file/);
  await assert.rejects(fitMap(X, Y, { method: 'lstsq', prior: file }), /prior: not a parameter of method 'lstsq'/);
});

// ---- lambda chosen on the target head's metric (issue 17 item 2) ----

/** Planted heads: B's head W_B (C x q) over C > q classes, A's head W_A = W_B M*^T, so the head-only map is M*. */
function plantedHeads(rng: () => number, p: number, q: number, C: number) {
  const Mtrue = randn(rng, p, q, 'float64');
  const WB = randn(rng, C, q, 'float64');
  const WA = transpose(matmul(toF64(Mtrue), transpose(toF64(WB))));
  const c = () => Float64Array.from({ length: C }, () => gaussian(rng));
  return { Mtrue, hA: { W: new Matrix(WA.data, C, p), c: c() }, hB: { W: WB, c: c() } };
}

/** Top-1 class of each row of E W^T + c, in float64, independently of the library. */
function top1(E: Matrix, h: { W: Matrix; c: Float64Array }): Int32Array {
  const L = matmul(toF64(E), transpose(toF64(h.W)));
  return Int32Array.from({ length: E.rows }, (_, i) => {
    let best = 0;
    for (let k = 1; k < h.c.length; k++) if (L.data[i * h.c.length + k] + h.c[k] > L.data[i * h.c.length + best] + h.c[best]) best = k;
    return best;
  });
}

/** Agreement of B's top-1 on X mapped by (weight, bias) with B's top-1 on Y. */
function agreementOf(weight: Matrix, bias: Float64Array, X: Matrix, Y: Matrix, hB: { W: Matrix; c: Float64Array }): number {
  const XM = matmul(toF64(X), toF64(weight));
  for (let i = 0; i < X.rows; i++) for (let j = 0; j < weight.cols; j++) XM.data[i * weight.cols + j] += bias[j];
  const a = top1(new Matrix(XM.data, X.rows, weight.cols), hB), b = top1(Y, hB);
  return a.reduce((s, v, i) => s + (v === b[i] ? 1 : 0), 0) / a.length;
}

// The top-1 margin: cv-top1 scores top-1 itself (and keeps the prior within one standard error);
// cv-logits scores the logits' squared error, which on few pairs lets top-1 slip by up to ~5%.
for (const [rule, eps] of [['cv-logits', 0.1], ['cv-top1', 0.02]] as const) {
  test(`lambda '${rule}': few noisy pairs stay at the head prior (top-1 agreement within ${eps} of its own); many pairs improve on a perturbed prior`, async () => {
    const rng = makeRng(`ridge-prior ${rule}`);
    const p = 24, q = 16, C = 40;
    const { Mtrue, hA, hB } = plantedHeads(rng, p, q, C);
    const W = (await new WeightsEstimator().fitHeads(hA, hB)).fitted.weight;
    assert.ok(relErr(W.data, Mtrue.data) < 1e-8, 'planted: the head-only map is the true map');
    const fresh = pairs(rng, 3000, p, q, Mtrue, 0);
    // Few pairs, heavy noise: nothing to learn beyond the prior (lstsq here agrees far less: see below).
    const few = pairs(rng, 30, p, q, Mtrue, 3);
    const a = await new RidgeEstimator({ lambda: rule, prior: prior(W), targetHead: hB }).fit(few.X, few.Y);
    assert.equal(a.fitted.info.selection, rule);
    assert.ok((a.fitted.info.lambda as number) >= 30, `few pairs: lambda ${a.fitted.info.lambda} (mean eigenvalue about 30)`);
    const priorFit = await new RidgeEstimator({ lambda: Infinity, prior: prior(W) }).fit(few.X, few.Y);
    const accPrior = agreementOf(priorFit.fitted.weight, priorFit.fitted.bias, fresh.X, fresh.Y, hB);
    const accFew = agreementOf(a.fitted.weight, a.fitted.bias, fresh.X, fresh.Y, hB);
    assert.ok(accFew >= accPrior - eps, `few pairs: ${accFew} vs the prior's ${accPrior}`);
    const ls = await new LstsqEstimator().fit(few.X, few.Y);
    assert.ok(agreementOf(ls.fitted.weight, ls.fitted.bias, fresh.X, fresh.Y, hB) < accPrior - 2 * eps, 'the margin tells a kept prior from a fit on the pairs alone');
    // Many clean pairs, a deliberately perturbed prior: the data must win.
    const bad = W.clone();
    for (let i = 0; i < bad.data.length; i++) bad.data[i] += 0.7 * gaussian(rng);
    const many = pairs(rng, 600, p, q, Mtrue, 0.05);
    const b = await new RidgeEstimator({ lambda: rule, prior: prior(bad), targetHead: hB }).fit(many.X, many.Y);
    const perturbed = await new RidgeEstimator({ lambda: Infinity, prior: prior(bad) }).fit(many.X, many.Y);
    const accBad = agreementOf(perturbed.fitted.weight, perturbed.fitted.bias, fresh.X, fresh.Y, hB);
    const accMany = agreementOf(b.fitted.weight, b.fitted.bias, fresh.X, fresh.Y, hB);
    assert.ok(Number.isFinite(b.fitted.info.lambda as number), `many pairs: lambda ${b.fitted.info.lambda}`);
    assert.ok(accMany > accBad + 0.1 && accMany > 0.95, `many pairs: ${accMany} vs the perturbed prior's ${accBad}`);
  });
}

test("lambda 'cv-logits' and 'cv-top1': validation curves equal a float64 refit on each fold's rows", async () => {
  const rng = makeRng('ridge-prior cv scores');
  const p = 10, q = 7, C = 12, n = 90, k = 5;
  const { Mtrue, hA, hB } = plantedHeads(rng, p, q, C);
  const W = (await new WeightsEstimator().fitHeads(hA, hB)).fitted.weight;
  const M0 = W.clone();
  for (let i = 0; i < M0.data.length; i++) M0.data[i] += 0.3 * gaussian(rng);
  const { X, Y } = pairs(rng, n, p, q, Mtrue, 1);
  // The folds as ridge deals them (the shared fold assignment, seed 0).
  const foldRows = rowsByFold(foldOf(n, k, 0), k).map((r) => Array.from(r));
  // Class-centred head: the metric of 'cv-logits'.
  const Wc = toF64(hB.W);
  for (let j = 0; j < q; j++) {
    let s = 0;
    for (let c = 0; c < C; c++) s += Wc.data[c * q + j] / C;
    for (let c = 0; c < C; c++) Wc.data[c * q + j] -= s;
  }
  const logitErr = (weight: M64 | Matrix, bias: Float64Array, rows: number[]) => {
    let e = 0;
    for (const r of rows) {
      const res = Float64Array.from({ length: q }, (_, j) => bias[j] - Y.data[r * q + j] + Array.from(X.data.slice(r * p, r * p + p)).reduce((s: number, x: number, i: number) => s + x * weight.data[i * q + j], 0));
      for (let c = 0; c < C; c++) e += res.reduce((s, v, j) => s + v * Wc.data[c * q + j], 0) ** 2;
    }
    return e;
  };
  for (const rule of ['cv-logits', 'cv-top1'] as const) {
    const est = await new RidgeEstimator({ lambda: rule, prior: prior(M0), targetHead: hB }).fit(X, Y);
    const curve = est.fitted.info.validationCurve as { lambda: number; score: number }[];
    for (const g of [3, 12, 20]) {
      let ref = 0;
      for (const rows of foldRows) {
        const train = Array.from({ length: n }, (_, r) => r).filter((r) => !rows.includes(r));
        const fit = reference(X.takeRows(train), Y.takeRows(train), M0, curve[g].lambda);
        if (rule === 'cv-logits') {
          const keep = await new RidgeEstimator({ lambda: Infinity, prior: prior(M0) }).fit(X.takeRows(train), Y.takeRows(train));
          ref += logitErr(fit.M, fit.b, rows) - logitErr(keep.fitted.weight, keep.fitted.bias, rows);
        } else {
          ref += (1 - agreementOf(new Matrix(fit.M.data, p, q), fit.b, X.takeRows(rows), Y.takeRows(rows), hB)) * rows.length;
        }
      }
      ref /= rule === 'cv-logits' ? n * C : n;
      const tol = rule === 'cv-logits' ? 1e-8 * (Math.abs(ref) + 1e-3) : 1e-12;
      assert.ok(Math.abs(curve[g].score - ref) <= tol, `${rule} lambda ${curve[g].lambda}: ${curve[g].score} vs float64 ${ref}`);
    }
  }
});

test('toward a prior, a map is never worse than its prior on the held-out folds: lambda = Infinity ("prior kept") recorded in the map file', async () => {
  const rng = makeRng('ridge-prior kept');
  const p = 12, q = 8, C = 20;
  const { Mtrue, hA, hB } = plantedHeads(rng, p, q, C);
  const W = (await new WeightsEstimator().fitHeads(hA, hB)).fitted.weight;
  // Pure noise around the exact prior: no lambda can beat it.
  const { X, Y } = pairs(rng, 40, p, q, Mtrue, 10);
  for (const rule of ['gcv', 'cv', 'cv-logits', 'cv-top1'] as const) {
    const est = await new RidgeEstimator({ lambda: rule, prior: prior(W), targetHead: hB }).fit(X, Y);
    const curve = est.fitted.info.validationCurve as { lambda: number; score: number }[];
    const chosen = curve.find((c) => c.lambda === est.fitted.info.lambda)!;
    assert.equal(curve[curve.length - 1].lambda, Infinity, `${rule}: the prior is the last candidate`);
    assert.ok(chosen.score <= curve[curve.length - 1].score, `${rule}: chosen ${chosen.score} vs the prior's ${curve[curve.length - 1].score}`);
  }
  const { map } = await fitMap(X, Y, { method: 'ridge', prior: 'weights', sourceHead: hA, targetHead: hB, lambda: 'cv-top1', validation: 'none' });
  const file = path.join(tempDir(), 'kept.safetensors');
  map.save(file);
  const d = LinearMap.load(file).metadata.diagnostics;
  assert.equal(d.selection, 'cv-top1');
  if (d.priorKept === true) {
    assert.equal(d.lambda, 'Infinity');
    assert.ok(relErr(map.weight().data, W.data) < 1e-6, 'prior kept: the weight is the prior');
  } else {
    assert.equal(typeof d.lambda, 'number');
  }
});

test('fitMap: a target head makes cv-top1 the default (also without a prior); the rules that read a head name it when it is missing or wrong', async () => {
  const rng = makeRng('ridge-prior heads');
  const p = 9, q = 6, C = 15;
  const { Mtrue, hA, hB } = plantedHeads(rng, p, q, C);
  const { X, Y } = pairs(rng, 80, p, q, Mtrue, 0.5);
  const byDefault = await fitMap(X, Y, { method: 'ridge', prior: 'weights', sourceHead: hA, targetHead: hB });
  assert.equal(byDefault.map.metadata.diagnostics.selection, 'cv-top1');
  assert.deepEqual(byDefault.map.metadata.params.targetHead, { classes: C });
  const towardZero = await fitMap(X, Y, { method: 'ridge', targetHead: hB, validation: 'none' });
  assert.equal(towardZero.map.metadata.diagnostics.selection, 'cv-top1');
  assert.equal((await fitMap(X, Y, { method: 'ridge' })).map.metadata.diagnostics.selection, 'gcv');

  await assert.rejects(fitMap(X, Y, { method: 'ridge', lambda: 'cv-logits' }), /^TypeError: targetHead: required by lambda 'cv-logits' \(the target network's classifier head\)/);
  await assert.rejects(fitMap(X, Y, { method: 'ridge', lambda: 'cv-top1', targetHead: hA }), /^RangeError: targetHead: expected a head over the target's 6-dimensional embeddings \(classes x 6\), received classes x 9/);
  await assert.rejects(fitMap(X, Y, { method: 'ridge', prior: 'weights', targetHead: hB }), /^TypeError: sourceHead: required by prior 'weights' \(the source network's classifier head\)/);
  await assert.rejects(fitMap(X, Y, { method: 'ridge', targetHead: hB, testFraction: 0.2 }), /^RangeError: lambda: 'cv-top1' needs folds/);
  await assert.rejects(fitMap(X, Y, { method: 'ridge', lambda: 'gcv', targetHead: hB }), /^RangeError: targetHead: only with prior 'weights' or lambda 'cv-logits' or 'cv-top1' \(what reads it\), received lambda string "gcv"/);
  await assert.rejects(fitMap(X, Y, { method: 'ridge', targetHead: { W: hB.W } }), /^TypeError: targetHead\.c: expected a Float32Array or Float64Array/);
  assert.throws(() => new RidgeEstimator({ lambda: Infinity }), /^RangeError: lambda: Infinity only toward a prior/);
  await assert.rejects(fitMap(X, Y, { method: 'ridge', lambda: Infinity }), /^RangeError: lambda: Infinity only toward a prior/);
  assert.throws(() => new RidgeEstimator({ lambda: 'cv-top1' }), /^TypeError: targetHead: required by lambda 'cv-top1'/);
  await assert.rejects(new RidgeEstimator({ lambda: 'cv-top1', targetHead: hB }).fitFolds([new SufficientStats(p, q), new SufficientStats(p, q)]),
    /^TypeError: samples: expected rows of each of the 2 folds/);
});
