// Ridge toward a prior that has a bias (issue 17): min ||X M + 1 b - Y||^2 + lambda (||M - M0||^2
// + ||b - b0||^2). Against float64 references formed here in plain loops (the augmented normal
// equations of rows [x, 1], and the equivalent centred form with the rank-one term), on pools whose
// means are far from zero and shifted away from the prior's: lambda = Infinity is the prior map
// itself, weight and bias; every lambda rule's validation curve equals a float64 refit per fold;
// no rule returns a map worse than the prior by its own score; the map file says what was shrunk;
// a bias of the wrong length or kind is an error naming it.
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { test } from 'node:test';
import { Matrix } from '../src/core/matrix';
import { RidgeEstimator, WeightsEstimator, fitMap } from '../src/estimators';
import { foldOf, rowsByFold } from '../src/evaluate/split';
import { LinearMap } from '../src/maps/linear-map';
import { tempDir } from './helpers/io';
import { gaussian, makeRng, randn } from './helpers/random';
import { matmul, relErr, solve, toF64, transpose, type M64 } from './helpers/reference';

type Affine = { M: M64; b: Float64Array };

/** Rows x ~ shift + N(0, 1) per column (means far from zero next to the spread, as after a ReLU), y = x Mtrue + bTrue + noise. */
function shiftedPairs(rng: () => number, n: number, shift: Float64Array, Mtrue: M64, bTrue: Float64Array, noise: number): { X: Matrix<'float64'>; Y: Matrix<'float64'> } {
  const p = shift.length, q = Mtrue.cols;
  const X = Matrix.zeros(n, p, 'float64');
  for (let i = 0; i < n; i++) for (let j = 0; j < p; j++) X.data[i * p + j] = shift[j] + gaussian(rng);
  const Y = matmul(toF64(X), Mtrue);
  for (let i = 0; i < n; i++) for (let j = 0; j < q; j++) Y.data[i * q + j] += bTrue[j] + noise * gaussian(rng);
  return { X, Y: new Matrix(Y.data, n, q) };
}

/** [X, 1] in float64. */
function ones(X: Matrix): M64 {
  const p = X.cols, A = new Float64Array(X.rows * (p + 1));
  for (let i = 0; i < X.rows; i++) {
    for (let j = 0; j < p; j++) A[i * (p + 1) + j] = X.data[i * p + j];
    A[i * (p + 1) + p] = 1;
  }
  return { rows: X.rows, cols: p + 1, data: A };
}

/** The penalised problem by its augmented normal equations ([X,1]^T [X,1] + lambda I) theta = [X,1]^T Y + lambda [M0; b0]. */
function augmentedReference(X: Matrix, Y: Matrix, M0: Matrix, b0: Float64Array, lambda: number): Affine {
  const p = X.cols, q = Y.cols, A = ones(X), At = transpose(A);
  const G = matmul(At, A), R = matmul(At, toF64(Y));
  for (let i = 0; i <= p; i++) G.data[i * (p + 1) + i] += lambda;
  for (let i = 0; i < p * q; i++) R.data[i] += lambda * M0.data[i];
  for (let j = 0; j < q; j++) R.data[p * q + j] += lambda * b0[j];
  const theta = solve(G, R);
  return { M: { rows: p, cols: q, data: theta.data.slice(0, p * q) }, b: theta.data.slice(p * q) };
}

/**
 * The same problem in the centred form of docs/MAPS.md: minimising over b first,
 * (Sxx + lambda I + g m m^T) M = Sxy + lambda M0 + g m (meanY - b0)^T with g = n lambda / (n + lambda),
 * then b = (n (meanY - M^T m) + lambda b0) / (n + lambda).
 */
function centredReference(X: Matrix, Y: Matrix, M0: Matrix, b0: Float64Array, lambda: number): Affine {
  const n = X.rows, p = X.cols, q = Y.cols;
  const mx = new Float64Array(p), my = new Float64Array(q);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < p; j++) mx[j] += X.data[i * p + j] / n;
    for (let j = 0; j < q; j++) my[j] += Y.data[i * q + j] / n;
  }
  const Xc = toF64(X), Yc = toF64(Y);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < p; j++) Xc.data[i * p + j] -= mx[j];
    for (let j = 0; j < q; j++) Yc.data[i * q + j] -= my[j];
  }
  const g = (n * lambda) / (n + lambda);
  const S = matmul(transpose(Xc), Xc), R = matmul(transpose(Xc), Yc);
  for (let i = 0; i < p; i++) {
    S.data[i * p + i] += lambda;
    for (let k = 0; k < p; k++) S.data[i * p + k] += g * mx[i] * mx[k];
    for (let j = 0; j < q; j++) R.data[i * q + j] += lambda * M0.data[i * q + j] + g * mx[i] * (my[j] - b0[j]);
  }
  const M = solve(S, R);
  const b = Float64Array.from(my, (v, j) => {
    let mean = v;
    for (let i = 0; i < p; i++) mean -= mx[i] * M.data[i * q + j];
    return (n * mean + lambda * b0[j]) / (n + lambda);
  });
  return { M, b };
}

/** Rows of X mapped by (M, b), in float64. */
function apply(X: Matrix, f: Affine): M64 {
  const out = matmul(toF64(X), f.M);
  for (let i = 0; i < X.rows; i++) for (let j = 0; j < f.M.cols; j++) out.data[i * f.M.cols + j] += f.b[j];
  return out;
}

/** Top-1 class of each row of E W^T + c. */
function top1(E: M64, h: { W: Matrix; c: Float64Array }): Int32Array {
  const L = matmul(E, transpose(toF64(h.W))), C = h.c.length;
  return Int32Array.from({ length: E.rows }, (_, i) => {
    let best = 0;
    for (let k = 1; k < C; k++) if (L.data[i * C + k] + h.c[k] > L.data[i * C + best] + h.c[best]) best = k;
    return best;
  });
}

/** A planted pair of heads over C > q classes whose head-only map is (Mtrue, some bias). */
async function plantedPrior(rng: () => number, p: number, q: number, C: number) {
  const Mtrue = randn(rng, p, q, 'float64');
  const hB = { W: randn(rng, C, q, 'float64'), c: Float64Array.from({ length: C }, () => gaussian(rng)) };
  const WA = transpose(matmul(toF64(Mtrue), transpose(toF64(hB.W))));
  const hA = { W: new Matrix(WA.data, C, p), c: Float64Array.from({ length: C }, () => gaussian(rng)) };
  const heads = (await new WeightsEstimator().fitHeads(hA, hB)).fitted;
  return { hA, hB, M0: heads.weight, b0: heads.bias };
}

const withBias = (weight: Matrix, bias: Float64Array) => ({ weight, bias, provenance: { from: 'test' } });

test('a prior with a bias: a fixed lambda equals the float64 augmented solve and the centred form; lambda = Infinity is the prior, weight and bias', async () => {
  const rng = makeRng('ridge prior bias fixed');
  const n = 70, p = 9, q = 5;
  const shift = Float64Array.from({ length: p }, () => 4 + gaussian(rng));
  const M0 = randn(rng, p, q, 'float64'), b0 = Float64Array.from({ length: q }, () => gaussian(rng));
  const { X, Y } = shiftedPairs(rng, n, shift, toF64(randn(rng, p, q, 'float64')), Float64Array.from({ length: q }, () => 3 * gaussian(rng)), 0.5);
  for (const lambda of [0.05, 4, 90, 5000]) {
    const est = await new RidgeEstimator({ lambda, prior: withBias(M0, b0) }).fit(X, Y);
    const aug = augmentedReference(X, Y, M0, b0, lambda), cen = centredReference(X, Y, M0, b0, lambda);
    assert.ok(relErr(aug.M.data, cen.M.data) < 1e-9 && relErr(aug.b, cen.b) < 1e-9, `lambda ${lambda}: the two references agree`);
    assert.ok(relErr(est.fitted.weight.data, aug.M.data) < 1e-10, `lambda ${lambda}: weight ${relErr(est.fitted.weight.data, aug.M.data)}`);
    assert.ok(relErr(est.fitted.bias, aug.b) < 1e-10, `lambda ${lambda}: bias ${relErr(est.fitted.bias, aug.b)}`);
    // Shrunk: the bias moves toward b0 as lambda grows, unlike one refitted from the means.
    assert.equal(est.fitted.info.lambda, lambda);
  }
  const kept = await new RidgeEstimator({ lambda: Infinity, prior: withBias(M0, b0) }).fit(X, Y);
  assert.ok(relErr(kept.fitted.weight.data, M0.data) < 1e-12 && relErr(kept.fitted.bias, b0) < 1e-12, 'lambda = Infinity: the prior itself');
  assert.equal(kept.fitted.info.priorKept, true);
});

test("the pool's means shifted away from the prior's: lambda = Infinity keeps the prior's bias; a weight-only prior refits it from the pool", async () => {
  const rng = makeRng('ridge prior bias shifted pool');
  const p = 10, q = 6, C = 24;
  const { hA, hB, M0, b0 } = await plantedPrior(rng, p, q, C);
  // The pool: the prior's map plus a shift of the target (another domain, e.g. 64-px photos).
  const offset = Float64Array.from(b0, (v) => v + 2);
  const pool = shiftedPairs(rng, 200, Float64Array.from({ length: p }, () => 5), toF64(M0), offset, 0.2);
  const { map } = await fitMap(pool.X, pool.Y, { method: 'ridge', lambda: Infinity, prior: 'weights', sourceHead: hA, targetHead: hB });
  const est = await new RidgeEstimator({ lambda: Infinity, prior: withBias(M0, b0) }).fit(pool.X, pool.Y);
  assert.ok(relErr(est.fitted.weight.data, M0.data) < 1e-12 && relErr(est.fitted.bias, b0) < 1e-12, 'the prior map, weight and bias');
  // fitMap stores float32 by default: equal to its rounding; the cross-fit ran on the same problem.
  assert.ok(relErr(map.weight().data, M0.data) < 1e-6 && relErr(map.bias(), b0) < 1e-6, 'fitMap: the head-only map');
  assert.equal((map.metadata.params.prior as Record<string, unknown>).bias, "shrunk toward the prior's bias with the weight");
  assert.ok(typeof (map.metadata.diagnostics.heldOut as Record<string, unknown>).r2Mean === 'number', 'cross-fit diagnostics ran');
  const weightOnly = await new RidgeEstimator({ lambda: Infinity, prior: { weight: M0, provenance: { from: 'test' } } }).fit(pool.X, pool.Y);
  assert.ok(relErr(weightOnly.fitted.bias, offset) < 0.05, "weight-only prior: the bias comes from the pool's means");
  assert.ok(relErr(weightOnly.fitted.bias, b0) > 0.3, 'the planted shift is large enough to tell the two apart');
  const recorded = weightOnly.toMap().metadata.params.prior as Record<string, unknown>;
  assert.equal(recorded.bias, "refitted from the pairs' means (the prior has none)");
});

test('a prior with a bias: every lambda rule\'s validation curve equals a float64 refit of the augmented problem per fold, and no rule beats its own prior score by choosing worse', async () => {
  const rng = makeRng('ridge prior bias rules');
  const p = 8, q = 6, C = 14, n = 100, k = 5;
  const { hB, M0, b0 } = await plantedPrior(rng, p, q, C);
  // A perturbed prior (the data can improve on it), rows with means far from zero.
  const Mp = M0.clone(), bp = Float64Array.from(b0, (v) => v + 0.5 * gaussian(rng));
  for (let i = 0; i < Mp.data.length; i++) Mp.data[i] += 0.3 * gaussian(rng);
  const { X, Y } = shiftedPairs(rng, n, Float64Array.from({ length: p }, () => 3 + gaussian(rng)), toF64(M0), b0, 1);
  const foldRows = rowsByFold(foldOf(n, k, 0), k).map((r) => Array.from(r));
  const all = Array.from({ length: n }, (_, r) => r);
  const Wc = toF64(hB.W); // class-centred: the metric of 'cv-logits'
  for (let j = 0; j < q; j++) {
    let s = 0;
    for (let c = 0; c < C; c++) s += Wc.data[c * q + j] / C;
    for (let c = 0; c < C; c++) Wc.data[c * q + j] -= s;
  }
  const sq = (E: M64, rows: number[], metric?: M64) => {
    let e = 0;
    for (const [i, r] of rows.entries()) {
      const res = Float64Array.from({ length: q }, (_, j) => E.data[i * q + j] - Y.data[r * q + j]);
      if (!metric) for (const v of res) e += v * v;
      else for (let c = 0; c < C; c++) e += res.reduce((s, v, j) => s + v * metric.data[c * q + j], 0) ** 2;
    }
    return e;
  };
  const prior = { M: toF64(Mp), b: bp };
  for (const rule of ['gcv', 'cv', 'cv-logits', 'cv-top1'] as const) {
    const est = await new RidgeEstimator({ lambda: rule, prior: withBias(Mp, bp), ...(rule.startsWith('cv-') ? { targetHead: hB } : {}) }).fit(X, Y);
    const curve = est.fitted.info.validationCurve as { lambda: number; score: number }[];
    for (const g of [2, 11, 19, curve.length - 1]) {
      const lambda = curve[g].lambda;
      let ref = 0;
      if (rule === 'gcv') {
        // n RSS / (n - df)^2, df = tr((A^T A + lambda I)^{-1} A^T A) of A = [X, 1] (the bias penalised: no free degree).
        const f = lambda === Infinity ? prior : augmentedReference(X, Y, Mp, bp, lambda);
        const A = ones(X), AtA = matmul(transpose(A), A), G = { ...AtA, data: Float64Array.from(AtA.data) };
        let df = 0;
        if (lambda !== Infinity) {
          for (let i = 0; i <= p; i++) G.data[i * (p + 1) + i] += lambda;
          const H = solve(G, AtA);
          for (let i = 0; i <= p; i++) df += H.data[i * (p + 1) + i];
        }
        ref = (n * sq(apply(X, f), all)) / (n - df) ** 2;
      } else {
        for (const rows of foldRows) {
          const train = all.filter((r) => !rows.includes(r));
          const f = lambda === Infinity ? prior : augmentedReference(X.takeRows(train), Y.takeRows(train), Mp, bp, lambda);
          const E = apply(X.takeRows(rows), f);
          if (rule === 'cv') ref += sq(E, rows);
          else if (rule === 'cv-logits') ref += sq(E, rows, Wc) - sq(apply(X.takeRows(rows), prior), rows, Wc);
          else {
            const mine = top1(E, hB), own = top1(toF64(Y.takeRows(rows)), hB);
            ref += mine.reduce((s, v, i) => s + (v === own[i] ? 0 : 1), 0);
          }
        }
        ref /= rule === 'cv' ? n * q : rule === 'cv-logits' ? n * C : n;
      }
      const tol = rule === 'cv-top1' ? 1e-12 : 1e-8 * (Math.abs(ref) + 1e-3);
      assert.ok(Math.abs(curve[g].score - ref) <= tol, `${rule} lambda ${lambda}: ${curve[g].score} vs float64 ${ref}`);
    }
    assert.equal(curve[curve.length - 1].lambda, Infinity, `${rule}: the prior is the last candidate`);
    const chosen = curve.find((c) => c.lambda === est.fitted.info.lambda)!;
    assert.ok(chosen.score <= curve[curve.length - 1].score, `${rule}: chosen ${chosen.score} vs the prior's ${curve[curve.length - 1].score}`);
    // The fitted map is the fixed-lambda solve at the chosen lambda.
    const at = est.fitted.info.lambda as number;
    const f = at === Infinity ? prior : augmentedReference(X, Y, Mp, bp, at);
    assert.ok(relErr(est.fitted.weight.data, f.M.data) < 1e-9 && relErr(est.fitted.bias, f.b) < 1e-9, `${rule}: the map at lambda ${at}`);
  }
});

test('fitMap with a prior bias: every rule runs with the cross-fit, the default grid is the centred one, the map file says what was shrunk', async () => {
  const rng = makeRng('ridge prior bias fitMap');
  const p = 7, q = 5, C = 12;
  const { hA, hB, M0, b0 } = await plantedPrior(rng, p, q, C);
  const { X, Y } = shiftedPairs(rng, 120, Float64Array.from({ length: p }, () => 6), toF64(M0), b0, 0.5);
  const grids: number[][] = [];
  for (const lambda of ['gcv', 'cv', 'cv-logits', 'cv-top1', 2.5] as const) {
    const { map } = await fitMap(X, Y, { method: 'ridge', lambda, prior: 'weights', sourceHead: hA, targetHead: hB });
    const d = map.metadata.diagnostics as Record<string, unknown>;
    assert.equal((d.fit as Record<string, unknown>).protocol, 'crossfit', `${lambda}: cross-fit`);
    assert.ok(Number.isFinite((d.heldOut as Record<string, number>).relativeResidual), `${lambda}: held-out residual`);
    if (Array.isArray(d.validationCurve)) grids.push((d.validationCurve as { lambda: number | string }[]).map((c) => Number(c.lambda)));
  }
  // The grid toward a biased prior is the centred problem's (a weight-only prior's), not shifted by the means.
  const { map } = await fitMap(X, Y, { method: 'ridge', lambda: 'gcv', prior: { weight: M0 }, validation: 'none' });
  const centred = (map.metadata.diagnostics.validationCurve as { lambda: number | string }[]).map((c) => Number(c.lambda));
  for (const g of grids) assert.ok(relErr(g.slice(0, -1), centred.slice(0, -1)) < 1e-9, 'same grid');
  const file = path.join(tempDir(), 'fitted.safetensors');
  map.save(file);
  assert.equal((LinearMap.load(file).metadata.params.prior as Record<string, unknown>).bias, "refitted from the pairs' means (the prior has none)");
});

test('a prior bias of the wrong length or kind, non-finite, or with intercept false: errors naming it', async () => {
  const rng = makeRng('ridge prior bias errors');
  const p = 4, q = 3;
  const M0 = randn(rng, p, q, 'float64');
  const { X, Y } = shiftedPairs(rng, 30, new Float64Array(p).fill(2), toF64(M0), new Float64Array(q), 0.1);
  assert.throws(() => new RidgeEstimator({ lambda: 1, prior: withBias(M0, new Float64Array(q + 1)) }), /^RangeError: prior\.bias: expected 3 values \(one per target dimension, as prior\.weight has columns\), received 4$/);
  assert.throws(() => new RidgeEstimator({ lambda: 1, prior: { weight: M0, bias: [0, 0, 0] as never, provenance: {} } }), /^TypeError: prior\.bias: expected a Float32Array or Float64Array of 3 values/);
  assert.throws(() => new RidgeEstimator({ lambda: 1, prior: withBias(M0, Float64Array.of(0, NaN, 0)) }), /^RangeError: prior\.bias: expected finite values, received NaN at row 0, column 1/);
  assert.throws(() => new RidgeEstimator({ lambda: 1, intercept: false, prior: withBias(M0, new Float64Array(q)) }), /^RangeError: intercept: false leaves no bias to shrink toward prior\.bias/);
  await assert.rejects(fitMap(X, Y, { method: 'ridge', lambda: 1, prior: { weight: M0, bias: new Float32Array(q - 1) } }), /^RangeError: prior\.bias: expected 3 values/);
  await assert.rejects(fitMap(X, Y, { method: 'ridge', lambda: 1, prior: { weight: Matrix.zeros(p, q + 1, 'float64'), bias: new Float64Array(q + 1) } }), /^RangeError: prior: expected a 4x3 map .* received a 4x4 map/);
});
