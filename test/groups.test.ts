// Grouped folds: rows of one group (the views of an image) are never split across folds, so
// held-out scores are on images the fit never saw. A planted case shows why: with per-row folds
// over views the cross-fit residual is optimistic, with grouped folds it matches the error on
// fresh images; bad `groups` are errors naming them.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { test } from 'node:test';
import { Matrix } from '../src/core/matrix';
import { RidgeEstimator, fitMap } from '../src/estimators';
import { fitMapFromNpy } from '../src/estimators/streaming';
import { fitPairMap, type PairData } from '../src/experiments/classification';
import { foldOf, groupsOf, rowsByFold, trainTestSplit } from '../src/evaluate/split';
import { SufficientStats } from '../src/engine/stats';
import { saveEmbeddings } from '../src/io/embeddings';
import { LinearMap } from '../src/maps/linear-map';
import { tempDir } from './helpers/io';
import { gaussian, makeRng, randn } from './helpers/random';
import { centredLstsq } from './helpers/reference';

const rng = makeRng('groups.test');

test('grouped folds: every group in one fold, folds balanced by rows, seeded; single rows dealt as before', () => {
  const n = 400;
  // Groups of 1..12 rows, ids as strings in a shuffled row order.
  const ids: string[] = [];
  for (let g = 0; ids.length < n; g++) for (let r = 1 + Math.floor(rng() * 12); r > 0 && ids.length < n; r--) ids.push(`img${g}`);
  for (let i = n - 1; i > 0; i--) { const j = Math.floor(rng() * (i + 1)); [ids[i], ids[j]] = [ids[j], ids[i]]; }
  const groups = groupsOf('groups', ids, n);
  const fold = foldOf(n, 5, 3, groups);
  const of = new Map<string, number>();
  ids.forEach((id, r) => {
    if (of.has(id)) assert.equal(fold[r], of.get(id), `${id} split across folds`);
    of.set(id, fold[r]);
  });
  const sizes = rowsByFold(fold, 5).map((r) => r.length);
  assert.ok(Math.max(...sizes) - Math.min(...sizes) <= 12, `fold sizes ${sizes} differ by more than the largest group`);
  assert.deepEqual(foldOf(n, 5, 3, groups), fold);
  assert.notDeepEqual(foldOf(n, 5, 4, groups), fold);
  // Each row its own group: the same folds as without groups.
  assert.deepEqual(foldOf(n, 5, 3, groupsOf('groups', Array.from({ length: n }, (_, i) => i), n)), foldOf(n, 5, 3));
  // A grouped split keeps groups whole too, and without groups is the plain split.
  const split = trainTestSplit(n, { testFraction: 0.25, seed: 2, groups });
  const inTest = new Set(Array.from(split.test, (r) => ids[r]));
  for (const r of split.train) assert.ok(!inTest.has(ids[r]), `${ids[r]} both in train and test`);
  assert.ok(split.test.length >= 100 && split.test.length < 112 && split.train.length + split.test.length === n);
});

test('bad groups are errors naming groups, what was expected and what was received', async () => {
  const X = Matrix.zeros(6, 2, 'float64'), Y = Matrix.zeros(6, 2, 'float64');
  for (let i = 0; i < 12; i++) { X.data[i] = gaussian(rng); Y.data[i] = gaussian(rng); }
  await assert.rejects(fitMap(X, Y, { method: 'lstsq', groups: [1, 2, 3] }), /groups: expected 6 group ids \(one per row\), received Array\(3\)/);
  await assert.rejects(fitMap(X, Y, { method: 'lstsq', groups: 'abcdef' as never }), /groups: expected an array of 6 group ids/);
  await assert.rejects(fitMap(X, Y, { method: 'lstsq', groups: [1, 1, 2, NaN, 3, 3] }), /groups\[3\]: expected a group id \(a finite number or a string\), received number NaN/);
  await assert.rejects(fitMap(X, Y, { method: 'lstsq', groups: ['a', 'a', 'a', 'a', 'a', 'a'] }), /groups: expected at least 2 groups \(folds hold whole groups out\), received 1 \(every pair in one group\)/);
  await assert.rejects(fitMap(X, Y, { method: 'lstsq', groups: [1, 1, 2, 2, 3, 3], groupedBy: 7 as never }), /groupedBy: expected a string/);
  const head = { W: Matrix.zeros(3, 2, 'float64'), c: new Float64Array(3) };
  await assert.rejects(fitMap(head, head, { method: 'weights', groups: [1, 2] }), /groups: method 'weights' fits from classifier heads, not pairs/);
  await assert.rejects(new RidgeEstimator({ lambda: 'cv', folds: 3 }).fit(X, Y, { groups: [1, 1, 1, 2, 2, 2] }), /groups: expected at least folds = 3 groups for cross-validation, received 2/);
  await assert.rejects(new RidgeEstimator({ lambda: 1 }).fit(X, Y, { groups: [1, 1, 1, 2, 2, 2] }), /groups: only with a k-fold lambda rule/);
});

/**
 * `images` images, each `views` rows: x = the image's point plus a little view noise, y = x M plus
 * noise of the image (the same in all its views: what a network adds for that photo).
 */
function viewsOf(images: number, views: number, M: Float64Array, p: number, q: number) {
  const X = Matrix.zeros(images * views, p, 'float64'), Y = Matrix.zeros(images * views, q, 'float64');
  const ids: string[] = [];
  for (let i = 0; i < images; i++) {
    const x = Array.from({ length: p }, () => gaussian(rng)), e = Array.from({ length: q }, () => gaussian(rng));
    for (let v = 0; v < views; v++) {
      const r = i * views + v;
      ids.push(`photo${i}#v${v}`);
      for (let j = 0; j < p; j++) X.data[r * p + j] = x[j] + 0.05 * gaussian(rng);
      for (let k = 0; k < q; k++) {
        let s = e[k];
        for (let j = 0; j < p; j++) s += X.data[r * p + j] * M[j * q + k];
        Y.data[r * q + k] = s;
      }
    }
  }
  return { X, Y, ids, images: ids.map((id) => id.replace(/#v\d+$/, '')) };
}

/** Float64 reference: for each fold, centred least squares on the other folds' rows, scored on the fold's rows and on fresh rows. */
function referenceCrossFit(X: Matrix, Y: Matrix, fold: ArrayLike<number>, k: number, fresh: { X: Matrix; Y: Matrix }) {
  const byFold = rowsByFold(fold, k);
  const residual = (W: { data: Float64Array }, b: Float64Array, A: Matrix, B: Matrix, rows: ArrayLike<number>) => {
    let res = 0, yy = 0;
    for (const r of Array.from(rows)) {
      for (let c = 0; c < B.cols; c++) {
        let s = b[c];
        for (let j = 0; j < A.cols; j++) s += A.data[r * A.cols + j] * W.data[j * B.cols + c];
        res += (s - B.data[r * B.cols + c]) ** 2;
        yy += B.data[r * B.cols + c] ** 2;
      }
    }
    return { res, yy };
  };
  let res = 0, yy = 0, freshRes = 0, freshYy = 0;
  const all = Array.from({ length: fresh.X.rows }, (_, i) => i);
  for (let f = 0; f < k; f++) {
    const train = byFold.flatMap((rows, g) => (g === f ? [] : Array.from(rows)));
    const { W, b } = centredLstsq(X.takeRows(train), Y.takeRows(train));
    const h = residual(W, b, X, Y, byFold[f]), o = residual(W, b, fresh.X, fresh.Y, all);
    res += h.res; yy += h.yy; freshRes += o.res; freshYy += o.yy;
  }
  return { heldOut: Math.sqrt(res / yy), fresh: Math.sqrt(freshRes / freshYy) };
}

test('planted views: per-row folds give an optimistic held-out residual, grouped folds the error on fresh images', async () => {
  const p = 40, q = 4, images = 60, views = 8, k = 5, seed = 1;
  const M = Float64Array.from({ length: p * q }, () => 0.3 * gaussian(rng));
  const data = viewsOf(images, views, M, p, q);
  const fresh = viewsOf(2000, 1, M, p, q);
  const n = data.X.rows;
  const heldOut = async (groups?: string[]) => {
    const { map } = await fitMap(data.X, data.Y, { method: 'lstsq', folds: k, seed, ...(groups ? { groups, groupedBy: 'image' } : {}) });
    const fit = (map.metadata.diagnostics as { fit: Record<string, unknown>; heldOut: { relativeResidual: number } });
    return { fit: fit.fit, residual: fit.heldOut.relativeResidual };
  };
  const perRow = await heldOut(), grouped = await heldOut(data.images);
  const refRow = referenceCrossFit(data.X, data.Y, foldOf(n, k, seed), k, fresh);
  const refGrouped = referenceCrossFit(data.X, data.Y, foldOf(n, k, seed, groupsOf('groups', data.images, n)), k, fresh);
  // The cross-fit equals explicit float64 refits on the same folds.
  assert.ok(Math.abs(perRow.residual - refRow.heldOut) < 1e-8 * refRow.heldOut, `per-row ${perRow.residual} vs reference ${refRow.heldOut}`);
  assert.ok(Math.abs(grouped.residual - refGrouped.heldOut) < 1e-8 * refGrouped.heldOut, `grouped ${grouped.residual} vs reference ${refGrouped.heldOut}`);
  // Per-row folds score views of images the fit saw: far below the same maps' error on fresh images.
  assert.ok(perRow.residual < 0.6 * refRow.fresh, `per-row held-out ${perRow.residual} not optimistic against fresh ${refRow.fresh}`);
  // Grouped folds: the held-out residual estimates the fresh-image error.
  assert.ok(Math.abs(grouped.residual / refGrouped.fresh - 1) < 0.3, `grouped held-out ${grouped.residual} vs fresh ${refGrouped.fresh}`);
  assert.deepEqual([grouped.fit.groupedBy, grouped.fit.groups, grouped.fit.folds], ['image', images, k]);
  assert.equal(perRow.fit.groupedBy, undefined);
});

test('ridge k-fold lambda with groups: fitMap and the estimator share the grouped folds; fewer groups than folds is leave-one-group-out', async () => {
  const p = 12, q = 3;
  const M = Float64Array.from({ length: p * q }, () => 0.3 * gaussian(rng));
  const data = viewsOf(30, 4, M, p, q);
  const grid = [1e-3, 1, 30, 1e3];
  const est = await new RidgeEstimator({ lambda: 'cv', folds: 5, seed: 2, grid }).fit(data.X, data.Y, { groups: data.images });
  const { map } = await fitMap(data.X, data.Y, { method: 'ridge', lambda: 'cv', folds: 5, seed: 2, grid, groups: data.images, validation: 'none' });
  const curve = (c: unknown) => (c as { score: number }[]).map((x) => x.score);
  const fromMap = curve((map.metadata.diagnostics as { validationCurve: unknown }).validationCurve);
  const fromEst = curve(est.fitted.info.validationCurve);
  fromMap.forEach((s, i) => assert.ok(Math.abs(s - fromEst[i]) <= 1e-9 * Math.abs(fromEst[i]), `grid ${i}: ${s} vs ${fromEst[i]}`));
  // Per-row folds score other views of fitted images: a lower (optimistic) error at the smallest lambda.
  const perRow = await new RidgeEstimator({ lambda: 'cv', folds: 5, seed: 2, grid }).fit(data.X, data.Y);
  assert.ok(curve(perRow.fitted.info.validationCurve)[0] < fromEst[0], 'per-row CV not optimistic at the smallest lambda');
  // 3 images, 5 folds asked: one image per fold, said so.
  const few = viewsOf(3, 4, M, p, q);
  const { map: loo } = await fitMap(few.X, few.Y, { method: 'lstsq', folds: 5, groups: few.images, groupedBy: 'image' });
  const fit = (loo.metadata.diagnostics as { fit: Record<string, unknown> }).fit;
  assert.deepEqual([fit.folds, fit.groups, fit.leaveOneGroupOut], [3, 3, true]);
});

test('streamed fits group by image from the sidecar ids (id#vK), as fitMap does with groups', async () => {
  const p = 6, q = 2;
  const M = Float64Array.from({ length: p * q }, () => gaussian(rng));
  const data = viewsOf(20, 3, M, p, q);
  const dir = tempDir();
  const a = path.join(dir, 'a.npy'), b = path.join(dir, 'b.npy');
  saveEmbeddings(a, { matrix: data.X.astype('float32'), ids: data.ids });
  saveEmbeddings(b, { matrix: data.Y.astype('float32'), ids: data.ids });
  const streamed = await fitMapFromNpy(a, b, { method: 'lstsq', folds: 4, seed: 5 }, 7);
  const inMemory = await fitMap(data.X.astype('float32'), data.Y.astype('float32'), { method: 'lstsq', folds: 4, seed: 5, groups: data.images, groupedBy: 'image' });
  const d = (m: typeof streamed) => m.map.metadata.diagnostics as { fit: Record<string, unknown>; heldOut: { relativeResidual: number } };
  assert.deepEqual([d(streamed).fit.groupedBy, d(streamed).fit.groups], ['image', 20]);
  assert.ok(Math.abs(d(streamed).heldOut.relativeResidual - d(inMemory).heldOut.relativeResidual) < 1e-6);
});

test("the classification experiment's ridge toward the head prior (cv-top1) keeps each image's views in one fold, at every curve size", async () => {
  const p = 8, q = 6, classes = 5;
  const M = Float64Array.from({ length: p * q }, () => gaussian(rng));
  const data = viewsOf(40, 4, M, p, q);
  const fitImageOf = Int32Array.from(data.images, (id) => Number(id.slice('photo'.length)));
  const d = {
    source: 'A', target: 'B', fitA: data.X, fitB: data.Y, fitImageOf,
    headA: { W: randn(rng, classes, p, 'float64'), c: new Float64Array(classes) }, headB: { W: randn(rng, classes, q, 'float64'), c: new Float64Array(classes) },
  } as unknown as PairData;
  const fitOf = (map: Awaited<ReturnType<typeof fitPairMap>>) => (map.metadata.diagnostics as { fit: Record<string, unknown>; selection: string }).fit;
  const all = await fitPairMap(d, { params: { prior: 'weights' } });
  assert.deepEqual([fitOf(all).groupedBy, fitOf(all).groups], ['image', 40]);
  // A curve size: the rows of the first 10 images.
  const rows = Int32Array.from({ length: 40 }, (_, r) => r);
  const part = await fitPairMap(d, { params: { prior: 'weights' } }, { stats: undefined as never, rows });
  assert.deepEqual([fitOf(part).groupedBy, fitOf(part).groups], ['image', 10]);
});

test('embmap fit groups rows by image when the ids name views, and says so', () => {
  const p = 5, q = 3;
  const M = Float64Array.from({ length: p * q }, () => gaussian(rng));
  const data = viewsOf(12, 3, M, p, q);
  const dir = tempDir();
  const f = (name: string) => path.join(dir, name);
  saveEmbeddings(f('a.npy'), { matrix: data.X.astype('float32'), ids: data.ids });
  saveEmbeddings(f('b.npy'), { matrix: data.Y.astype('float32'), ids: data.ids });
  const cli = path.join(__dirname, '..', 'src', 'cli', 'main.js');
  for (const stream of [[], ['--stream']]) {
    const r = spawnSync(process.execPath, [cli, 'fit', '--source', f('a.npy'), '--target', f('b.npy'), '--folds', '4', ...stream, '--out', f('m.safetensors')], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /folds grouped by image: 12 groups, each kept whole/);
    const fit = (LinearMap.load(f('m.safetensors')).metadata.diagnostics as { fit: Record<string, unknown> }).fit;
    assert.deepEqual([fit.groupedBy, fit.groups, fit.folds], ['image', 12, 4]);
  }
});

test("cv-top1's one-standard-error rule counts groups, not rows: identical views widen it by the square root of their number", async () => {
  const p = 6, q = 5, C = 9, images = 60, views = 5;
  const M = randn(rng, p, q, 'float64');
  const head = { W: randn(rng, C, q, 'float64'), c: new Float64Array(C) };
  // Each image's rows repeated `views` times exactly (views that change nothing), noisy targets.
  const X1 = randn(rng, images, p, 'float64');
  const Y1 = Matrix.zeros(images, q, 'float64');
  for (let i = 0; i < images; i++) for (let j = 0; j < q; j++) {
    let s = 2 * gaussian(rng);
    for (let k = 0; k < p; k++) s += X1.data[i * p + k] * M.data[k * q + j];
    Y1.data[i * q + j] = s;
  }
  const rows = Int32Array.from({ length: images * views }, (_, r) => Math.floor(r / views));
  const X = X1.takeRows(rows), Y = Y1.takeRows(rows);
  const prior = { weight: M, bias: new Float64Array(q), provenance: { from: 'test' } };
  const fitted = async (groups?: Int32Array) => (await new RidgeEstimator({ lambda: 'cv-top1', prior, targetHead: head }).fit(X, Y, groups ? { groups } : {})).fitted.info;
  const byRow = await fitted(), byImage = await fitted(rows);
  const binomial = (info: typeof byRow, n: number) => {
    const low = Math.min(...(info.validationCurve as { score: number }[]).map((c) => c.score));
    return Math.sqrt((low * (1 - low)) / n);
  };
  // Rows as their own groups: the binomial standard error over rows.
  assert.ok(Math.abs((byRow.standardError as number) - binomial(byRow, images * views)) < 1e-15, 'rows: binomial');
  assert.equal(byRow.standardErrorGroups, undefined);
  // Grouped: every group's rows agree, so it is the binomial one over images.
  assert.equal(byImage.standardErrorGroups, images);
  assert.ok(binomial(byImage, images) > 0, 'some disagreement to measure');
  assert.ok(Math.abs((byImage.standardError as number) - binomial(byImage, images)) < 1e-12, `grouped: ${byImage.standardError} vs ${binomial(byImage, images)}`);
  // Bad input: group ids that do not match the rows.
  const est = new RidgeEstimator({ lambda: 'cv-top1', prior, targetHead: head });
  const fold = () => ({ X: X.takeRows(Int32Array.of(0, 1)), Y: Y.takeRows(Int32Array.of(0, 1)), groups: [0] });
  const stats = await new SufficientStats(p, q).update(X, Y);
  await assert.rejects(est.fitFolds([stats, stats], [fold(), fold()]), /^RangeError: samples\[0\]\.groups: expected 2 group ids \(one per row\), received 1$/);
});
