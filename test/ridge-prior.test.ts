// Ridge shrunk toward a prior map M0: against a float64 reference of the closed form
// (Sxx + lambda I) M = Sxy + lambda M0 on centred data, its limits (lambda -> infinity: the prior;
// lambda = 0: lstsq), the choice of lambda on noise and on informative data, fitMap's
// resolution of the prior (map, file, 'weights' from heads) and its bad input.
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { test } from 'node:test';
import { Matrix } from '../src/core/matrix';
import { LstsqEstimator, RidgeEstimator, WeightsEstimator, fitMap } from '../src/estimators';
import { LinearMap } from '../src/maps/linear-map';
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

test('ridge toward a prior: the closed form (Sxx + lambda I) M = Sxy + lambda M0, bias from the means', async () => {
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
  const fromFile = await fitMap(X, Y, { method: 'ridge', lambda: 3, prior: file });
  const inMemory = await fitMap(X, Y, { method: 'ridge', lambda: 3, prior: { weight: W } });
  assert.ok(relErr(fromFile.map.weight().data, inMemory.map.weight().data) < 1e-12);
  const saved = path.join(dir, 'fitted.safetensors');
  fromFile.map.save(saved);
  assert.equal((LinearMap.load(saved).metadata.params.prior as Record<string, unknown>).from, file);

  await assert.rejects(fitMap(X, Y, { method: 'ridge', prior: { weight: Matrix.zeros(p + 1, q, 'float64') } }), /^RangeError: prior: expected a 8x6 map .* received a 9x6 map/);
  await assert.rejects(fitMap(X, Y, { method: 'ridge', prior: 'weights', sourceHead: hA }), /^TypeError: targetHead: required by prior 'weights'/);
  await assert.rejects(fitMap(X, Y, { method: 'ridge', prior: 'weights', sourceHead: hA, targetHead: { W: randn(rng, C + 1, q, 'float64'), c: new Float64Array(C + 1) } }),
    /^RangeError: targetHead: expected 5 classes like sourceHead/);
  await assert.rejects(fitMap(X, Y, { method: 'ridge', prior: 'weights', sourceHead: hB, targetHead: hB }), /^RangeError: sourceHead: expected a head over the source's 8-dimensional/);
  await assert.rejects(fitMap(X, Y, { method: 'ridge', sourceHead: hA }), /^RangeError: sourceHead: only with prior 'weights'/);
  await assert.rejects(fitMap(X, Y, { method: 'ridge', prior: 'heads' }), /^TypeError: prior: expected a LinearMap, \{ weight: Matrix \}, a map file/);
  await assert.rejects(fitMap(X, Y, { method: 'lstsq', prior: file }), /prior: not a parameter of method 'lstsq'/);
});
