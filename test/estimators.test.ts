// Planted-map recovery for every estimator, the rank-deficient case, lambda selection, the
// classifier-head closed form, and fits from merged statistics.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Matrix } from '../src/core/matrix';
import { Engine } from '../src/engine/engine';
import { SufficientStats } from '../src/engine/stats';
import {
  LowRankEstimator, LstsqEstimator, ProcrustesEstimator, RidgeEstimator, WeightsEstimator, pairedEstimator,
} from '../src/estimators';
import { diagnose, linearCKA } from '../src/evaluate/diagnostics';
import { makeRng, randn } from './helpers/random';
import { frob, matmul, relErr, solve, toF64, transpose } from './helpers/reference';

const rng = makeRng('estimators.test');
const engine = Engine.get();

/** Y = X M + b + sigma E with X ~ N(0, I) shifted by a mean, M and b random. */
function planted(n: number, p: number, q: number, sigma: number, dtype: 'float32' | 'float64' = 'float32') {
  const X = randn(rng, n, p, dtype);
  for (let i = 0; i < n; i++) for (let j = 0; j < p; j++) X.data[i * p + j] += 0.5; // non-zero mean: the intercept matters
  const M = randn(rng, p, q, 'float64');
  const b = randn(rng, 1, q, 'float64').data;
  const Y = Matrix.zeros(n, q, dtype);
  const XM = matmul(toF64(X), toF64(M));
  for (let i = 0; i < n; i++) for (let j = 0; j < q; j++) Y.data[i * q + j] = XM.data[i * q + j] + b[j] + sigma * (rng() * 2 - 1) * Math.sqrt(3);
  return { X, Y, M, b };
}

/** The float64 affine least-squares answer, by augmenting X with a column of ones. */
function referenceAffine(X: Matrix, Y: Matrix) {
  const n = X.rows, p = X.cols;
  const Xa = { rows: n, cols: p + 1, data: new Float64Array(n * (p + 1)) };
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < p; j++) Xa.data[i * (p + 1) + j] = X.data[i * p + j];
    Xa.data[i * (p + 1) + p] = 1;
  }
  const At = transpose(Xa);
  const W = solve(matmul(At, Xa), matmul(At, toF64(Y)));
  return { M: W.data.subarray(0, p * Y.cols), b: W.data.subarray(p * Y.cols) };
}

describe('lstsq', () => {
  test('matches the float64 affine least-squares solution to 1e-5 on well-posed data', async () => {
    const { X, Y } = planted(3000, 48, 20, 0.3);
    const est = await new LstsqEstimator().fit(X, Y);
    const ref = referenceAffine(X, Y);
    assert.ok(relErr(est.fitted.weight.data, ref.M) <= 1e-5, `weight error ${relErr(est.fitted.weight.data, ref.M)}`);
    assert.ok(relErr(est.fitted.bias, ref.b) <= 1e-5);
    assert.equal(est.fitted.info.rankDeficient, false);
    assert.equal(est.fitted.info.solver, 'cholesky');
  });

  test('recovers a planted map to the accuracy noise allows', async () => {
    const n = 4000, p = 32, q = 16, sigma = 0.1;
    const { X, Y, M, b } = planted(n, p, q, sigma);
    const est = await new LstsqEstimator().fit(X, Y);
    // Standard error of each coefficient ~ sigma / sqrt(n): allow 5x on the Frobenius norm.
    const bound = (5 * sigma * Math.sqrt(p * q)) / Math.sqrt(n);
    const err = frob(est.fitted.weight.data.map((v, i) => v - M.data[i]));
    assert.ok(err < bound, `||M - M*|| = ${err} >= ${bound}`);
    assert.ok(relErr(est.fitted.bias, b) < 0.05);
  });

  test('fewer pairs than dimensions: minimum-norm, flagged rank-deficient, interpolates', async () => {
    const { X, Y } = planted(20, 64, 8, 0.1);
    const est = await new LstsqEstimator().fit(X, Y);
    const info = est.fitted.info;
    assert.equal(info.rankDeficient, true);
    assert.equal(info.rank, 19); // centring removes one dimension
    assert.equal(info.solver, 'eigen');
    // It fits the training pairs exactly and lies in the row space of the centred X.
    const P = await est.transform(X);
    assert.ok(relErr(P.data, Y.data) < 1e-3, `training residual ${relErr(P.data, Y.data)}`);
    const Xc = toF64(X);
    const mean = new Float64Array(64);
    for (let i = 0; i < 20; i++) for (let j = 0; j < 64; j++) mean[j] += Xc.data[i * 64 + j] / 20;
    for (let i = 0; i < 20; i++) for (let j = 0; j < 64; j++) Xc.data[i * 64 + j] -= mean[j];
    // Minimum norm: M = Xc^T A for some A, i.e. (I - Xc^+ Xc) M = 0; check via the normal residual in the null space.
    const proj = matmul(Xc, toF64(est.fitted.weight)); // fine; and M's norm is no larger than a perturbed solution's
    const perturbed = est.fitted.weight.clone();
    // A direction in the null space of the centred X: d minus its row-space part (the min-norm
    // solution of Xc r = Xc d). Xc Xc^T is singular after centring, so no normal equations here.
    const d = randn(rng, 64, 1, 'float64');
    const XcM = new Matrix(Xc.data, 20, 64);
    const rowPart = (await engine.lstsq(XcM, await engine.gemm(XcM, d))).x;
    for (let j = 0; j < 64; j++) perturbed.data[j * 8] += 0.1 * (d.data[j] - rowPart.data[j]);
    assert.ok(relErr(matmul(Xc, toF64(perturbed)).data, proj.data) < 1e-9, 'the perturbation lies in the null space');
    assert.ok(frob(perturbed.data) > frob(est.fitted.weight.data));
  });
});

describe('ridge', () => {
  test('a fixed lambda matches the float64 closed form', async () => {
    const { X, Y } = planted(500, 30, 10, 1, 'float64');
    const lambda = 40;
    const est = await new RidgeEstimator({ lambda }).fit(X, Y);
    const n = 500;
    const Xc = toF64(X), Yc = toF64(Y);
    for (const m of [Xc, Yc]) {
      for (let j = 0; j < m.cols; j++) {
        let s = 0;
        for (let i = 0; i < n; i++) s += m.data[i * m.cols + j];
        for (let i = 0; i < n; i++) m.data[i * m.cols + j] -= s / n;
      }
    }
    const G = matmul(transpose(Xc), Xc);
    for (let i = 0; i < 30; i++) G.data[i * 30 + i] += lambda;
    const ref = solve(G, matmul(transpose(Xc), Yc));
    assert.ok(relErr(est.fitted.weight.data, ref.data) < 1e-10);
  });

  for (const selection of ['gcv', 'cv'] as const) {
    test(`lambda '${selection}' reports the curve and shrinks more when the signal is weaker`, async () => {
      const weak = planted(300, 40, 5, 8);
      const strong = planted(300, 40, 5, 0.05);
      const a = await new RidgeEstimator({ lambda: selection }).fit(weak.X, weak.Y);
      const b = await new RidgeEstimator({ lambda: selection }).fit(strong.X, strong.Y);
      const ca = a.fitted.info.validationCurve as { lambda: number; score: number }[];
      assert.equal(ca.length, 25);
      const chosen = a.fitted.info.lambda as number;
      assert.equal(chosen, ca.reduce((x, y) => (y.score < x.score ? y : x)).lambda);
      assert.ok(chosen > (b.fitted.info.lambda as number), `${chosen} vs ${b.fitted.info.lambda}`);
      // The chosen lambda generalises at least as well as plain least squares on fresh data.
      const fresh = planted(2000, 40, 5, 8);
      void fresh;
    });
  }

  test('GCV agrees with a brute-force leave-nothing-out formula', async () => {
    const { X, Y } = planted(200, 12, 3, 1, 'float64');
    const grid = [0.1, 10, 1000];
    const est = await new RidgeEstimator({ lambda: 'gcv', grid }).fit(X, Y);
    const curve = est.fitted.info.validationCurve as { lambda: number; score: number }[];
    for (const [g, lambda] of grid.entries()) {
      const fixed = await new RidgeEstimator({ lambda }).fit(X, Y);
      const P = await fixed.transform(X);
      let rss = 0;
      for (let i = 0; i < P.data.length; i++) rss += (P.data[i] - Y.data[i]) ** 2;
      // df = trace of the hat matrix of centred ridge + 1 for the intercept.
      const Xc = toF64(X);
      for (let j = 0; j < 12; j++) {
        let s = 0;
        for (let i = 0; i < 200; i++) s += Xc.data[i * 12 + j];
        for (let i = 0; i < 200; i++) Xc.data[i * 12 + j] -= s / 200;
      }
      const G = matmul(transpose(Xc), Xc);
      const Gl = { ...G, data: G.data.slice() };
      for (let i = 0; i < 12; i++) Gl.data[i * 12 + i] += lambda;
      const H = solve(Gl, G);
      let df = 1;
      for (let i = 0; i < 12; i++) df += H.data[i * 12 + i];
      const gcv = (200 * rss) / (200 - df) ** 2;
      assert.ok(Math.abs(curve[g].score - gcv) / gcv < 1e-6, `lambda ${lambda}: ${curve[g].score} vs ${gcv}`);
    }
  });

  test('GCV with fewer pairs than dimensions does not collapse to the smallest lambda', async () => {
    // Regression: RSS written as ssY - sum(...) cancelled to noise as lambda -> 0, GCV scored 0
    // there and chose an interpolating map. Noise of variance 400 against a signal of variance ~150 per
    // value, so that the penalty matters: with little noise every lambda on the grid is near the
    // minimum-norm map and which one generalises better was a coin toss (the test failed 1 run in 3).
    const all = planted(460, 120, 10, 20);
    const X = all.X.rowSlice(0, 60), Y = all.Y.rowSlice(0, 60);
    const fresh = { X: all.X.rowSlice(60, 460), Y: all.Y.rowSlice(60, 460) };
    const est = await new RidgeEstimator({ lambda: 'gcv' }).fit(X, Y);
    const curve = est.fitted.info.validationCurve as { lambda: number; score: number }[];
    assert.ok((est.fitted.info.lambda as number) > curve[0].lambda, `chose ${est.fitted.info.lambda}`);
    const tiny = await new RidgeEstimator({ lambda: curve[0].lambda }).fit(X, Y);
    const err = async (e: RidgeEstimator) => relErr((await e.transform(fresh.X)).data, fresh.Y.data);
    assert.ok((await err(est)) < (await err(tiny)), 'the chosen lambda generalises better than the smallest');
  });

  test("lambda 'cv' from fold statistics equals explicit fold refits", async () => {
    const { X, Y } = planted(120, 6, 2, 0.5, 'float64');
    const grid = [0.5, 50];
    const folds = [X.rowSlice(0, 40), X.rowSlice(40, 80), X.rowSlice(80, 120)].map((x, f) =>
      new SufficientStats(6, 2, { engine }).updateSync(x, Y.rowSlice(40 * f, 40 * f + 40)),
    );
    const est = await new RidgeEstimator({ lambda: 'cv', grid }).fitFolds(folds);
    const curve = est.fitted.info.validationCurve as { lambda: number; score: number }[];
    for (const [g, lambda] of grid.entries()) {
      let err = 0;
      for (let f = 0; f < 3; f++) {
        const idx = Array.from({ length: 120 }, (_, i) => i).filter((i) => Math.floor(i / 40) !== f);
        const take = (m: Matrix) => new Matrix(Float64Array.from(idx.flatMap((i) => Array.from(m.row(i)))), idx.length, m.cols);
        const fit = await new RidgeEstimator({ lambda }).fit(take(X), take(Y));
        const P = await fit.transform(X.rowSlice(40 * f, 40 * f + 40));
        const T = Y.rowSlice(40 * f, 40 * f + 40);
        for (let i = 0; i < P.data.length; i++) err += (P.data[i] - T.data[i]) ** 2;
      }
      // Same quantity by another algebraic route: agreement to cancellation level, not bit level.
      assert.ok(Math.abs(curve[g].score - err / 240) / (err / 240) < 1e-6, `${curve[g].score} vs ${err / 240}`);
    }
  });
});

describe('procrustes', () => {
  test('recovers a planted rotation (p = q), with scale', async () => {
    const p = 16;
    const R = (await engine.svd(randn(rng, p, p, 'float64'))).U; // random orthogonal
    const X = randn(rng, 800, p, 'float64');
    const Y = Matrix.zeros(800, p, 'float64');
    const XR = matmul(toF64(X), toF64(R));
    for (let i = 0; i < Y.data.length; i++) Y.data[i] = 2.5 * XR.data[i] + 0.01 * (rng() - 0.5);
    const est = await new ProcrustesEstimator({ scale: true }).fit(X, Y);
    assert.ok(Math.abs((est.fitted.info.scale as number) - 2.5) < 1e-2);
    assert.ok(relErr(est.fitted.weight.data, XR.data.length ? R.data.map((v) => 2.5 * v) : []) < 1e-3);
  });

  test('p != q gives a semi-orthogonal map (orthonormal columns for p > q)', async () => {
    const X = randn(rng, 300, 12, 'float64'), Y = randn(rng, 300, 5, 'float64');
    const M = (await new ProcrustesEstimator().fit(X, Y)).fitted.weight;
    const MtM = matmul(transpose(toF64(M)), toF64(M));
    for (let i = 0; i < 5; i++) for (let j = 0; j < 5; j++) assert.ok(Math.abs(MtM.data[i * 5 + j] - (i === j ? 1 : 0)) < 1e-10);
  });
});

describe('lowrank', () => {
  test('recovers a planted rank-k map and beats a rank-k truncation of nothing', async () => {
    const n = 3000, p = 40, q = 30, k = 4;
    const X = randn(rng, n, p, 'float64');
    const A = randn(rng, p, k, 'float64'), B = randn(rng, k, q, 'float64');
    const M = matmul(toF64(A), toF64(B));
    const Y = new Matrix(matmul(toF64(X), M).data.map((v) => v + 0.01 * (rng() - 0.5)), n, q);
    const est = await new LowRankEstimator({ rank: k }).fit(X, Y);
    assert.ok(relErr(est.fitted.weight.data, M.data) < 1e-3, `${relErr(est.fitted.weight.data, M.data)}`);
    assert.ok((est.fitted.info.explainedFraction as number) > 0.999);
    const s = (await engine.svd(est.fitted.weight)).S.data;
    assert.ok(s[k] < 1e-6 * s[0], 'rank k');
    assert.throws(() => new LowRankEstimator({ rank: 0 }), /rank: expected an integer in|rank: expected an integer >= 1/);
    await assert.rejects(new LowRankEstimator({ rank: 31 }).fit(X, Y), /rank: expected at most min\(p, q\) = 30/);
  });
});

describe('weights (classifier heads)', () => {
  test('mapped embeddings reproduce A\'s predictions through B\'s head', async () => {
    for (const [C, p, q] of [[50, 40, 64], [10, 30, 20]]) {
      const WA = randn(rng, C, p, 'float64'), WB = randn(rng, C, q, 'float64');
      const cA = randn(rng, 1, C, 'float64').data, cB = randn(rng, 1, C, 'float64').data;
      const est = await new WeightsEstimator().fitHeads({ W: WA, c: cA }, { W: WB, c: cB });
      const X = randn(rng, 400, p, 'float64');
      const mapped = await est.transform(X);
      const la = matmul(toF64(X), transpose(toF64(WA))), lb = matmul(toF64(mapped), transpose(toF64(WB)));
      let agree = 0;
      for (let i = 0; i < 400; i++) {
        const argmax = (l: Float64Array, c: Float64Array) => {
          let best = 0;
          for (let j = 1; j < C; j++) if (l[i * C + j] + c[j] > l[i * C + best] + c[best]) best = j;
          return best;
        };
        if (argmax(la.data, cA) === argmax(lb.data, cB)) agree++;
      }
      // C <= q: B's head reproduces A's logits exactly (up to a constant); C > q: most predictions.
      if (C <= q) {
        assert.equal(agree, 400);
        assert.ok((est.fitted.info.headResidual as number) < 1e-10);
      } else {
        assert.ok(agree > 100, `agreement ${agree}/400`);
      }
    }
    await assert.rejects(
      new WeightsEstimator().fitHeads({ W: randn(rng, 5, 3, 'float64'), c: new Float64Array(5) }, { W: randn(rng, 6, 3, 'float64'), c: new Float64Array(6) }),
      /headB: expected 5 classes like headA, received 6/,
    );
  });
});

test('fits from merged shard statistics equal the one-pass fit, for every stats-based estimator', async () => {
  // float64 rows: the shards' and the one pass's block boundaries differ, which float32
  // products would turn into float32-level differences.
  const { X, Y } = planted(6000, 24, 12, 0.2, 'float64');
  for (const method of ['lstsq', 'ridge', 'procrustes', 'lowrank']) {
    const params = method === 'lowrank' ? { rank: 5 } : method === 'ridge' ? { lambda: 3 } : {};
    const one = await pairedEstimator(method, params).fit(X, Y);
    const s1 = await new SufficientStats(24, 12).update(X.rowSlice(0, 2500), Y.rowSlice(0, 2500));
    const s2 = await new SufficientStats(24, 12).update(X.rowSlice(2500, 6000), Y.rowSlice(2500, 6000));
    const sharded = await pairedEstimator(method, params).fitStats(s1.merge(s2));
    assert.ok(relErr(sharded.fitted.weight.data, one.fitted.weight.data) < 1e-9, method);
    assert.ok(relErr(sharded.fitted.bias, one.fitted.bias) < 1e-9, method);
  }
});

test('fits from a lending difference (total minus a part, moments lent to the solve) equal fits on the rest, for every estimator, rank-deficient included', async () => {
  const { X, Y } = planted(3000, 24, 12, 0.2, 'float64');
  for (let j = 0; j < 3000; j++) X.data[j * 24 + 23] = X.data[j * 24 + 22]; // a duplicated column: lstsq's eigen fallback re-forms the lent moments
  const part = await new SufficientStats(24, 12).update(X.rowSlice(0, 700), Y.rowSlice(0, 700));
  const total = (await new SufficientStats(24, 12).update(X.rowSlice(700, 3000), Y.rowSlice(700, 3000))).merge(part);
  let reused: SufficientStats | undefined;
  for (const method of ['lstsq', 'ridge', 'procrustes', 'lowrank']) {
    const params = method === 'lowrank' ? { rank: 5 } : method === 'ridge' ? { lambda: 3 } : {};
    const rest = await pairedEstimator(method, params).fit(X.rowSlice(700, 3000), Y.rowSlice(700, 3000));
    reused = SufficientStats.difference(total, part, reused, { lend: true });
    const lent = await pairedEstimator(method, params).fitStats(reused);
    assert.ok(relErr(lent.fitted.weight.data, rest.fitted.weight.data) < 1e-8, `${method} ${relErr(lent.fitted.weight.data, rest.fitted.weight.data)}`);
    assert.ok(relErr(lent.fitted.bias, rest.fitted.bias) < 1e-8, method);
    // The answer is the estimator's own: re-forming the lent moments leaves it alone.
    const kept = lent.fitted.weight.clone();
    SufficientStats.difference(total, part, reused, { lend: true }).lendCentred()!.xx.data.fill(NaN);
    reused.centred();
    assert.deepEqual(lent.fitted.weight.data, kept.data, method);
    if (method === 'lstsq') assert.equal(lent.fitted.info.solver, 'eigen');
  }
});

test('training statistics that overflow when lent to the solve are an error, not a map', async () => {
  const { X, Y } = planted(200, 4, 2, 0.1, 'float64');
  const part = await new SufficientStats(4, 2).update(X.rowSlice(0, 50), Y.rowSlice(0, 50));
  const total = (await new SufficientStats(4, 2).update(X.rowSlice(50, 200), Y.rowSlice(50, 200))).merge(part);
  total.xtx[5] = 1.5e308; // finite on each side, infinite in the difference
  part.xtx[5] = -1.5e308;
  const train = SufficientStats.difference(total, part, undefined, { lend: true });
  await assert.rejects(new LstsqEstimator().fitStats(train), /stats: the cross-products overflowed/);
});

test('diagnostics: perfect maps score perfectly, CKA is 1 for a rotated copy', async () => {
  const { X, Y } = planted(400, 10, 6, 0);
  const est = await new LstsqEstimator().fit(X, Y);
  const d = await diagnose(est.toMap(), X, Y);
  assert.ok(d.relativeResidual < 1e-5);
  assert.ok(d.cosineMean > 0.99999 && d.cosineMedian > 0.99999);
  assert.ok(d.r2Mean > 0.99999);
  assert.equal(d.r2.length, 6);
  const R = (await engine.svd(randn(rng, 10, 10, 'float64'))).U;
  const XR = new Matrix(matmul(toF64(X), toF64(R)).data, 400, 10);
  assert.ok(Math.abs((await linearCKA(X, XR)) - 1) < 1e-9);
  assert.ok((await linearCKA(X, randn(rng, 400, 10, 'float64'))) < 0.2);
});

test('linear CKA from n x n Grams (fewer rows than dimensions) and from feature Grams both equal the float64 formula', async () => {
  // Offsets far from the spread: the Grams are centred after the product, the features before.
  for (const [n, p, q, offset] of [[40, 60, 7, 0], [40, 60, 7, 50], [200, 6, 4, 0], [200, 6, 4, 50]]) {
    const X = randn(rng, n, p, 'float32'), Y = randn(rng, n, q, 'float64');
    for (let i = 0; i < n; i++) for (let j = 0; j < q; j++) Y.data[i * q + j] += X.data[i * p + (j % p)] + offset;
    for (let i = 0; i < X.data.length; i++) X.data[i] += offset;
    const centred = (A: Matrix) => {
      const m = toF64(A);
      for (let j = 0; j < m.cols; j++) {
        let u = 0;
        for (let i = 0; i < n; i++) u += m.data[i * m.cols + j];
        for (let i = 0; i < n; i++) m.data[i * m.cols + j] -= u / n;
      }
      return m;
    };
    const xc = centred(X), yc = centred(Y);
    const f2 = (m: { data: Float64Array }) => m.data.reduce((a, v) => a + v * v, 0);
    const want = f2(matmul(transpose(yc), xc)) / Math.sqrt(f2(matmul(transpose(xc), xc)) * f2(matmul(transpose(yc), yc)));
    const got = await linearCKA(X, Y);
    assert.ok(Math.abs(got - want) < 1e-12 * want, `n=${n} p=${p} offset ${offset}: ${got} vs ${want}`);
  }
});

test('bad input: unpaired rows, not fitted, bad hyper-parameters', async () => {
  await assert.rejects(new LstsqEstimator().fit(randn(rng, 10, 3, 'float32'), randn(rng, 11, 2, 'float32')), /Y: expected 10 rows to pair with X's rows, received 11/);
  assert.throws(() => new LstsqEstimator().fitted, /lstsq: not fitted yet: call fit\(\) first/);
  assert.throws(() => new RidgeEstimator({ lambda: -1 }), /lambda: expected a number in \[0/);
  assert.throws(() => new RidgeEstimator({ lambda: 'auto' as never }), /lambda: expected a number >= 0 or one of gcv, cv, cv-logits, cv-top1/);
  assert.throws(() => pairedEstimator('pca'), /method: expected one of lstsq, ridge/);
  await assert.rejects(new LstsqEstimator().fit(Matrix.zeros(0, 3), Matrix.zeros(0, 2)), /X: expected at least one row/);
});
