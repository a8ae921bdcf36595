// fitMap: parameters checked against their declaration, the map fitted on every pair, cross-fit
// diagnostics equal to explicit refits, the intercept convention, under-determined warnings and
// the refusal of non-finite inputs and results.
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { test } from 'node:test';
import { Matrix } from '../src/core/matrix';
import { Engine } from '../src/engine/engine';
import { LstsqEstimator, PARAMETERS, RidgeEstimator, checkParams, fitMap, pairedEstimator } from '../src/estimators';
import { FoldDealer, fitFromFolds, splitOptions } from '../src/estimators/fit-map';
import { fitMapFromNpy } from '../src/estimators/streaming';
import { foldOf, makeRng as splitRng, permutation, rowsByFold } from '../src/evaluate/split';
import { writeNpy } from '../src/io/npy';
import { writeSafetensors } from '../src/io/safetensors';
import { LinearMap } from '../src/maps/linear-map';
import { tempDir } from './helpers/io';
import { makeRng, randn } from './helpers/random';
import { centredLstsq, matmul, relErr, toF64 } from './helpers/reference';

const rng = makeRng('fit-map.test');

function planted(n: number, p: number, q: number, sigma: number) {
  const X = randn(rng, n, p, 'float64');
  for (let i = 0; i < X.data.length; i++) X.data[i] += 3;
  const M = randn(rng, p, q, 'float64');
  const XM = matmul(toF64(X), toF64(M));
  const Y = Matrix.zeros(n, q, 'float64');
  for (let i = 0; i < n * q; i++) Y.data[i] = XM.data[i] + 1 + sigma * (rng() - 0.5);
  return { X, Y };
}

test('an irrelevant or unknown parameter is an error naming the method and what it takes', async () => {
  const { X, Y } = planted(50, 4, 3, 0.1);
  await assert.rejects(fitMap(X, Y, { method: 'lstsq', rank: 5 }), /rank: not a parameter of method 'lstsq', which takes intercept, precision, rcond/);
  await assert.rejects(fitMap(X, Y, { method: 'lstsq', lambda: 3 }), /lambda: not a parameter of method 'lstsq'/);
  await assert.rejects(fitMap(X, Y, { method: 'lowrank', rank: 2, lambda: 'gcv' }), /lambda: expected a number >= 0, received string "gcv"/);
  await assert.rejects(fitMap(X, Y, { method: 'lowrank' }), /rank: required by method 'lowrank'/);
  await assert.rejects(fitMap(X, Y, { method: 'ridge', lamda: 1 }), /lamda: unknown parameter for method 'ridge', which takes intercept, precision, lambda, grid/);
  await assert.rejects(fitMap(X, Y, { method: 'pca' as never }), /method: expected one of lstsq, ridge, procrustes, lowrank, weights/);
  await assert.rejects(fitMap(X, Y, { method: 'lstsq', testFraction: 1 }), /testFraction: expected a number in \(0, 1\), received number 1/);
  await assert.rejects(fitMap(X, Y, { method: 'lstsq', testFraction: 0.001 }), /leaves 50 to fit and 0 held out/);
  await assert.rejects(fitMap(X.rowSlice(0, 1), Y.rowSlice(0, 1), { method: 'lstsq' }), /at least 2 pairs/);
  assert.throws(() => pairedEstimator('lstsq', { rank: 5 }), /rank: not a parameter of method 'lstsq'/);
  // Every declared parameter has a type, the methods that take it and a doc line.
  for (const s of PARAMETERS) assert.ok(s.methods.length > 0 && s.doc.length > 0, s.name);
  assert.deepEqual(checkParams('procrustes', {}), { intercept: true, precision: 'float64', scale: false });
});

test('the map uses every pair; cross-fit diagnostics equal explicit refits on the folds', async () => {
  const { X, Y } = planted(203, 6, 4, 2);
  const { map } = await fitMap(X, Y, { method: 'lstsq', folds: 4, seed: 9 });
  const ref = centredLstsq(X, Y);
  assert.ok(relErr(map.weight().data, ref.W.data) < 1e-6); // float32 storage
  assert.equal(map.metadata.pairs, 203);
  const d = map.metadata.diagnostics as { fit: Record<string, unknown>; heldOut: Record<string, number> };
  assert.deepEqual(d.fit, { protocol: 'crossfit', folds: 4, seed: 9, mapPairs: 203 });
  const want = explicitCrossFit(X, Y, 4, 9, 4);
  assert.ok(Math.abs(d.heldOut.relativeResidual - want.relativeResidual) < 1e-9 * want.relativeResidual, `${d.heldOut.relativeResidual} vs ${want.relativeResidual}`);
  assert.ok(Math.abs(d.heldOut.r2Mean - want.r2Mean) < 1e-9, `${d.heldOut.r2Mean} vs ${want.r2Mean}`);
  assert.equal(d.heldOut.rows, 203);
  assert.equal(d.heldOut.sampleRows, 203);
  // Every row is in the sample here: the mean cosine of each row's held-out prediction.
  assert.ok(Math.abs(d.heldOut.cosineMean - want.cosineMean) < 1e-9, `${d.heldOut.cosineMean} vs ${want.cosineMean}`);
  // Streaming the same pairs from files gives the same map and the same diagnostics.
  const dir = tempDir();
  writeNpy(path.join(dir, 'x.npy'), X);
  writeNpy(path.join(dir, 'y.npy'), Y);
  const s = await fitMapFromNpy(path.join(dir, 'x.npy'), path.join(dir, 'y.npy'), { method: 'lstsq', folds: 4, seed: 9 }, 50);
  assert.ok(relErr(s.map.weight().data, map.weight().data) < 1e-6);
  const sd = s.map.metadata.diagnostics as { heldOut: Record<string, number> };
  assert.ok(Math.abs(sd.heldOut.relativeResidual - d.heldOut.relativeResidual) < 1e-9);
  await assert.rejects(fitMapFromNpy(path.join(dir, 'x.npy'), path.join(dir, 'y.npy'), { method: 'lstsq', testFraction: 0.2 }), /a 'split' \(testFraction\) needs the rows in memory/);
});

/** The cross-fit by hand on the first `scored` of `k` seeded folds: fit on the other rows (all the other folds), score this fold's rows. */
function explicitCrossFit(X: Matrix, Y: Matrix, k: number, seed: number, scored: number) {
  const n = X.rows, p = X.cols, q = Y.cols;
  const order = permutation(n, splitRng(seed));
  const fold = new Int32Array(n);
  order.forEach((row, i) => (fold[row] = i % k));
  let res = 0, tot = 0, cosSum = 0, rows = 0;
  const ssRes = new Float64Array(q), sq = new Float64Array(q);
  for (let f = 0; f < scored; f++) {
    const train = [...fold.keys()].filter((i) => fold[i] !== f), test = [...fold.keys()].filter((i) => fold[i] === f);
    const r = centredLstsq(X.takeRows(train), Y.takeRows(train));
    const my = new Float64Array(q);
    for (const i of test) for (let j = 0; j < q; j++) my[j] += Y.get(i, j) / test.length;
    for (const i of test) {
      let dot = 0, pp = 0, yy = 0;
      for (let j = 0; j < q; j++) {
        let pred = r.b[j];
        for (let c = 0; c < p; c++) pred += X.get(i, c) * r.W.data[c * q + j];
        dot += pred * Y.get(i, j);
        pp += pred * pred;
        yy += Y.get(i, j) ** 2;
        res += (pred - Y.get(i, j)) ** 2;
        ssRes[j] += (pred - Y.get(i, j)) ** 2;
        tot += Y.get(i, j) ** 2;
        sq[j] += (Y.get(i, j) - my[j]) ** 2;
      }
      cosSum += dot / Math.sqrt(pp * yy);
      rows++;
    }
  }
  return { relativeResidual: Math.sqrt(res / tot), r2Mean: Array.from(ssRes, (r, j) => 1 - r / sq[j]).reduce((a, b) => a + b, 0) / q, cosineMean: cosSum / rows, rows };
}

test('the cross-fit scores folds in turn until they hold scorePairs pairs; the unscored folds share one set of statistics; the map is every pair\'s', async () => {
  const { X, Y } = planted(203, 6, 4, 2);
  const all = (await fitMap(X, Y, { method: 'lstsq', folds: 4, seed: 9 })).map;
  for (const [scorePairs, scored, stats] of [[60, 2, 3], [1, 1, 2], [51, 1, 2], [110, 3, 4], [203, 4, 4]] as const) {
    const { map } = await fitMap(X, Y, { method: 'lstsq', folds: 4, seed: 9, scorePairs });
    assert.deepEqual(map.weight().data, all.weight().data, 'the map does not depend on the folds scored');
    const d = map.metadata.diagnostics as { fit: Record<string, unknown>; heldOut: Record<string, number> };
    assert.deepEqual(d.fit, { protocol: 'crossfit', folds: 4, ...(scored < 4 ? { scoredFolds: scored, scorePairs } : {}), seed: 9, mapPairs: 203 });
    const want = explicitCrossFit(X, Y, 4, 9, scored);
    assert.equal(d.heldOut.rows, want.rows);
    assert.equal(d.heldOut.folds, scored);
    assert.ok(Math.abs(d.heldOut.relativeResidual - want.relativeResidual) < 1e-9 * want.relativeResidual, `${scorePairs}: ${d.heldOut.relativeResidual} vs ${want.relativeResidual}`);
    assert.ok(Math.abs(d.heldOut.r2Mean - want.r2Mean) < 1e-9, `${scorePairs}: ${d.heldOut.r2Mean} vs ${want.r2Mean}`);
    assert.ok(Math.abs(d.heldOut.cosineMean! - want.cosineMean) < 1e-9, `${scorePairs}: ${d.heldOut.cosineMean} vs ${want.cosineMean}`);
    const { params, protocol } = splitOptions({ method: 'lstsq', folds: 4, seed: 9, scorePairs });
    assert.equal(new FoldDealer(203, 6, 4, params, protocol).folds.length, stats);
  }
  // The dealer's block buffer goes to the fit (its total and training statistics live there): no rows after.
  const { params: p0, protocol: pr0 } = splitOptions({ method: 'lstsq', folds: 4, seed: 9 });
  const used = new FoldDealer(203, 6, 4, p0, pr0);
  await used.add(X, Y, 0);
  const again = await fitFromFolds('lstsq', p0, used, pr0);
  assert.deepEqual(again.map.weight().data, all.weight().data);
  assert.deepEqual(again.map.metadata.diagnostics, all.metadata.diagnostics);
  await assert.rejects(used.add(X, Y, 0), /add: these folds were already handed to a fit \(release\): deal the rows into a new FoldDealer/);
  // Ridge's k-fold lambda rules keep every fold's statistics.
  const { params, protocol } = splitOptions({ method: 'ridge', lambda: 'cv', folds: 4, seed: 9, scorePairs: 1 });
  const dealer = new FoldDealer(203, 6, 4, params, protocol);
  assert.deepEqual([dealer.folds.length, dealer.scored], [4, 1]);
  // Rows are kept from the scored fold only (2000 asked: all its 51), from every fold for cv-top1, which scores them.
  assert.deepEqual(dealer.samples.map((s) => s.X.rows), [51]);
  const top1 = splitOptions({ method: 'ridge', lambda: 'cv-top1', targetHead: { W: randn(rng, 3, 4, 'float64'), c: new Float64Array(3) }, folds: 4, seed: 9, scorePairs: 1 });
  assert.deepEqual(new FoldDealer(203, 6, 4, top1.params, top1.protocol).samples.map((s) => s.X.rows), [51, 51, 51, 50]);
  assert.throws(() => splitOptions({ method: 'lstsq', scorePairs: 0 }), /scorePairs: expected an integer >= 1, received number 0/);
  assert.throws(() => splitOptions({ method: 'lstsq', scorePairs: 10, testFraction: 0.2 }), /scorePairs: only with validation 'crossfit' \(the pairs the cross-fit scores\), received validation 'split'/);
});

test('the cross-fit refits folds two at a time (each on half the threads) where the backend allows it, with the same diagnostics as one at a time', async () => {
  const { X, Y } = planted(1500, 40, 12, 2);
  const engine = Engine.get(), threads = engine.info().threads;
  const heldOut = async (t: number) => {
    engine.setThreads(t);
    const { map } = await fitMap(X, Y, { method: 'lstsq', folds: 5, seed: 3, engine });
    return (map.metadata.diagnostics as { heldOut: Record<string, number> }).heldOut;
  };
  try {
    const one = await heldOut(1), two = await heldOut(2); // 2 threads: two lanes of 1 (threadCap backends)
    // The map on all the pairs, solved in a lane beside the folds' (two lanes) or alone, is the map without diagnostics.
    const plain = (await fitMap(X, Y, { method: 'lstsq', validation: 'none', engine })).map.weight().data;
    for (const t of [1, 2]) {
      engine.setThreads(t);
      assert.deepEqual((await fitMap(X, Y, { method: 'lstsq', folds: 5, seed: 3, engine })).map.weight().data, plain, `${t} threads`);
    }
    for (const k of ['relativeResidual', 'r2Mean', 'cosineMean', 'cosineMedian', 'ckaSourceTarget']) {
      assert.ok(Math.abs(one[k] - two[k]) <= 1e-12 * Math.abs(one[k]), `${k}: ${one[k]} vs ${two[k]}`);
    }
    assert.equal(one.rows, two.rows);
  } finally {
    engine.setThreads(threads);
  }
  assert.throws(() => engine.withThreads(0), /threads: expected an integer in \[1, 1024\], received number 0/);
  const A = randn(rng, 300, 200, 'float64'), B = randn(rng, 200, 100, 'float64');
  assert.ok(relErr((await engine.withThreads(1).gemm(A, B)).data, matmul(A, B).data) < 1e-13);
  // A limit read at each operation (a lane's, which widens when the other lane is done).
  let limit = 1;
  const follows = engine.withThreads(() => limit);
  assert.ok(relErr((await follows.gemm(A, B)).data, matmul(A, B).data) < 1e-13);
  limit = 0;
  await assert.rejects(follows.gemm(A, B), /threads: expected an integer in \[1, 1024\], received number 0/);
});

test('one seeded fold assignment: the cross-fit and ridge lambda \'cv\' (fitMap or an estimator on rows) share it', async () => {
  const fold = foldOf(150, 4, 7);
  const sizes = rowsByFold(fold, 4).map((r) => r.length);
  assert.deepEqual(sizes, [38, 38, 37, 37]);
  assert.deepEqual(foldOf(150, 4, 7), fold);
  assert.notDeepEqual(foldOf(150, 4, 8), fold);
  // The chunk of rows 100..150, by fold, as offsets from 100.
  const part = rowsByFold(fold, 4, 100, 150);
  assert.equal(part.reduce((a, r) => a + r.length, 0), 50);
  for (const [f, r] of part.entries()) for (const i of r) assert.equal(fold[100 + i], f);
  const { X, Y } = planted(150, 5, 3, 4);
  const grid = [0.01, 1, 100, 1e4];
  const est = await pairedEstimator('ridge', { lambda: 'cv', folds: 4, seed: 7, grid }).fit(X, Y);
  const { map } = await fitMap(X, Y, { method: 'ridge', lambda: 'cv', folds: 4, seed: 7, grid });
  const curve = (est.fitted.info.validationCurve as { score: number }[]).map((c) => c.score);
  const fromMap = ((map.metadata.diagnostics as { validationCurve: { score: number }[] }).validationCurve).map((c) => c.score);
  assert.deepEqual(fromMap, curve);
  // The same folds by hand: each validates a float64 ridge fit on the other three.
  for (const [g, lambda] of grid.entries()) {
    let err = 0;
    for (let f = 0; f < 4; f++) {
      const train = [...fold.keys()].filter((i) => fold[i] !== f), test = [...fold.keys()].filter((i) => fold[i] === f);
      const r = await new RidgeEstimator({ lambda }).fit(X.takeRows(train), Y.takeRows(train));
      const P = await r.transform(X.takeRows(test));
      const T = Y.takeRows(test);
      for (let i = 0; i < P.data.length; i++) err += (P.data[i] - T.data[i]) ** 2;
    }
    assert.ok(Math.abs(curve[g] - err / 450) < 1e-6 * (err / 450), `${curve[g]} vs ${err / 450}`);
  }
  assert.throws(() => pairedEstimator('ridge', { lambda: 0.5, folds: 4 }), /folds: only with a k-fold lambda rule \('cv', 'cv-logits', 'cv-top1': the folds that choose lambda\), received lambda number 0.5/);
  assert.throws(() => pairedEstimator('ridge', { lambda: 'cv', folds: 1 }), /folds: expected an integer in \[2, 1000\], received number 1/);
});

test('intercept convention: centring; rank-deficient data give the minimum-norm map of the centred problem', async () => {
  // Column 2 duplicates column 0 and column 3 is constant: the centred problem has rank 2 of 4.
  const n = 300;
  const X = Matrix.zeros(n, 4, 'float64');
  for (let i = 0; i < n; i++) {
    const a = rng() * 4 + 10, b = rng() * 2 - 5;
    X.data.set([a, b, a, 7], i * 4);
  }
  const Y = Matrix.zeros(n, 2, 'float64');
  for (let i = 0; i < n; i++) {
    Y.data[i * 2] = 2 * X.get(i, 0) - X.get(i, 1) + 3 + 0.01 * (rng() - 0.5);
    Y.data[i * 2 + 1] = X.get(i, 1) + 0.01 * (rng() - 0.5);
  }
  const f = (await new LstsqEstimator().fit(X, Y)).fitted;
  // Minimum norm splits column 0's coefficient equally over its duplicate and gives the
  // constant column nothing (its centred values are zero); b = mean(Y) - mean(X) M.
  const w = f.weight;
  assert.equal(f.info.rankDeficient, true);
  assert.ok(Math.abs(w.get(0, 0) - w.get(2, 0)) < 1e-9 && Math.abs(w.get(0, 0) - 1) < 1e-3, `${w.get(0, 0)} ${w.get(2, 0)}`);
  assert.ok(Math.abs(w.get(3, 0)) < 1e-12 && Math.abs(w.get(3, 1)) < 1e-12);
  const my = [0, 1].map((j) => Array.from({ length: n }, (_, i) => Y.get(i, j)).reduce((a, b) => a + b, 0) / n);
  const mx = [0, 1, 2, 3].map((k) => Array.from({ length: n }, (_, i) => X.get(i, k)).reduce((a, b) => a + b, 0) / n);
  for (let j = 0; j < 2; j++) {
    const b = my[j] - mx.reduce((s, m, k) => s + m * w.get(k, j), 0);
    assert.ok(Math.abs(f.bias[j] - b) < 1e-9 * Math.max(1, Math.abs(b)));
  }
  // Without an intercept nothing is centred: the constant column now carries the offset.
  const g = (await new LstsqEstimator({ intercept: false }).fit(X, Y)).fitted;
  assert.ok(Math.abs(g.weight.get(3, 0)) > 0.1);
  assert.deepEqual(Array.from(g.bias), [0, 0]);
});

test("float32 products on an ill-conditioned source: the rank-deficient warning names precision 'float32' as a cause; float64 products fit it whole", async () => {
  // Columns scaled 1 .. 1e-4: cond(X) ~1e4, cond(X^T X) ~1e8, past float32 products' ~p * 1.2e-7.
  const n = 2000, p = 16;
  const X = randn(rng, n, p, 'float32'), Y = randn(rng, n, 3, 'float32');
  for (let i = 0; i < n; i++) for (let k = 0; k < p; k++) X.data[i * p + k] *= 10 ** (-4 * k / (p - 1));
  const fast = await fitMap(X, Y, { method: 'lstsq', precision: 'float32', validation: 'none' });
  assert.equal(fast.warnings.length, 1);
  assert.match(fast.warnings[0], /^rank-deficient: the source spans \d+ of 16 dimensions \(or, with precision 'float32', ill-conditioned beyond what float32 products resolve: the default float64 products give the full-rank map\)/);
  assert.deepEqual((await fitMap(X, Y, { method: 'lstsq', validation: 'none' })).warnings, []);
});

test('fewer pairs than source dimensions: an under-determined warning in the result and the map file', async () => {
  const X = randn(rng, 4, 128, 'float32'), Y = randn(rng, 4, 128, 'float32');
  const { map, warnings } = await fitMap(X, Y, { method: 'ridge' });
  assert.equal(warnings.length, 1);
  assert.match(warnings[0], /^under-determined: 4 pairs for a 128-dimensional source \(129 needed to determine the map\): the regularisation chose lambda = [0-9.e+-]+ \(gcv\)/);
  const dir = tempDir();
  map.save(path.join(dir, 'm.safetensors'));
  assert.deepEqual(LinearMap.load(path.join(dir, 'm.safetensors')).metadata.diagnostics.warnings, warnings);
  const l = await fitMap(X, Y, { method: 'lstsq', validation: 'none' });
  assert.match(l.warnings[0], /under-determined: .* the minimum-norm solution was returned \(rank 3\)/);
});

test('NaN/Inf inputs are named by row; overflowing results and non-finite maps are refused', async () => {
  const { X, Y } = planted(40, 5, 3, 0.1);
  const bad = X.clone();
  bad.data[17 * 5 + 2] = NaN;
  await assert.rejects(fitMap(bad, Y, { method: 'lstsq' }), /source: expected finite values, received NaN at row 17, column 2/);
  const badY = Y.clone();
  badY.data[33 * 3] = -Infinity;
  await assert.rejects(fitMap(X, badY, { method: 'ridge', validation: 'none' }), /target: expected finite values, received -Infinity at row 33, column 0/);
  // Finite but extreme. Scaled by 1e-25 (all-Inf maps before float64 products): now just right.
  const scaled = (f: number) => { const m = X.clone(); for (let i = 0; i < m.data.length; i++) m.data[i] *= f; return m; };
  const ref = (await fitMap(X, Y, { method: 'lstsq', validation: 'none' })).map.weight().data;
  const small = (await fitMap(scaled(1e-25), Y, { method: 'lstsq', validation: 'none' })).map.weight().data;
  assert.ok(relErr(Float64Array.from(small, (v) => v * 1e-25), ref) < 1e-6);
  // Weights beyond float32's range cannot be stored as a float32 map.
  await assert.rejects(fitMap(scaled(1e-40), Y, { method: 'lstsq' }), /weight: expected values within float32's range, received magnitudes up to .*rescale/);
  // float32 products overflow at ~1e19: the opt-in fast mode says so instead of writing infinities.
  await assert.rejects(fitMap(scaled(1e20).astype('float32'), Y.astype('float32'), { method: 'lstsq', precision: 'float32' }), /stats: the cross-products overflowed \(float32 products of finite inputs\): rescale the inputs .* or use precision 'float64'/);
  // A map file with a NaN weight is refused at load (so apply and serve refuse it too).
  const dir = tempDir();
  const w = Matrix.zeros(5, 3, 'float32');
  w.data[4] = NaN;
  writeSafetensors(path.join(dir, 'nan.safetensors'), { weight: w, bias: new Float32Array(3) });
  assert.throws(() => LinearMap.load(path.join(dir, 'nan.safetensors')), /expected finite values in "weight", found NaN at index 4/);
  assert.throws(() => LinearMap.create(w, new Float32Array(3)), /weight: expected finite values, received NaN at index 4/);
});

test("each fold's sample of rows (cv-top1's scored rows, the cosine diagnostics) is drawn from the whole fold, not its first rows", async () => {
  // Rows ordered by source: the first 600 have x[0] = 0, the last 400 x[0] = 1.
  const n = 1000, X = randn(rng, n, 3, 'float64'), Y = randn(rng, n, 2, 'float64');
  for (let r = 0; r < n; r++) X.data[r * 3] = r < 600 ? 0 : 1;
  const { params, protocol } = splitOptions({ method: 'lstsq', folds: 4, sampleRows: 200, seed: 3 });
  const dealer = new FoldDealer(n, 3, 2, params, protocol);
  for (let r = 0; r < n; r += 128) await dealer.add(X.rowSlice(r, Math.min(n, r + 128)), Y.rowSlice(r, Math.min(n, r + 128)), r);
  for (const [f, s] of dealer.samples.entries()) {
    assert.equal(s.X.rows, 50);
    const late = Array.from({ length: s.X.rows }, (_, r) => s.X.row(r)[0]).filter((x0) => x0 === 1).length;
    assert.ok(late >= 8 && late <= 35, `fold ${f}: ${late} of 50 sampled rows from the last 40% of the file`);
  }
});
