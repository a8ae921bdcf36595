// Ridge's penalty chosen by verification on held-out identities (lambda 'task'): identity folds,
// the held-out curve against a float64 reference, and a planted case where the penalty matters.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Matrix } from '../src/core/matrix';
import { fitMap } from '../src/estimators/fit-map';
import { lambdaByVerification } from '../src/estimators/ridge-task';
import { identityFolds, identityPairs } from '../src/evaluate/identity-pairs';
import { cosine } from '../src/evaluate/verification';
import { gaussian, makeRng } from './helpers/random';
import { matmul, solve, toF64, transpose, type M64 } from './helpers/reference';

test('identity folds: every identity in one fold, every fold with matched pairs; too few identities named', () => {
  const rng = makeRng('identity folds');
  const labels = Array.from({ length: 90 }, () => `id${Math.floor(rng() * 30)}`);
  const fold = identityFolds(labels, 4, 3);
  const of = new Map<string, number>();
  labels.forEach((l, r) => {
    if (of.has(l)) assert.equal(fold[r], of.get(l), `${l} split across folds`);
    of.set(l, fold[r]);
  });
  for (let f = 0; f < 4; f++) {
    const rows = [...fold.keys()].filter((r) => fold[r] === f);
    assert.ok(identityPairs(rows, labels).some((p) => p.same), `fold ${f} has no matched pair`);
  }
  assert.throws(() => identityFolds(['a', 'a', 'b', 'c'], 2), /labels: expected at least folds = 2 identities with two or more images/);
});

/** Identities live in 4 low-variance dimensions of X; 4 more carry large nuisance variance. Y = the identity dims rotated. */
function planted(rng: () => number, ids: number, per: number) {
  const p = 8, q = 4, n = ids * per;
  const centres = Array.from({ length: ids }, () => Array.from({ length: q }, () => 0.3 * gaussian(rng)));
  const R = Array.from({ length: q * q }, () => gaussian(rng));
  const X = Matrix.zeros(n, p, 'float64'), Y = Matrix.zeros(n, q, 'float64');
  const labels: string[] = [];
  for (let r = 0; r < n; r++) {
    const id = r % ids;
    labels.push(`person${id}`);
    for (let j = 0; j < q; j++) X.set(r, j, centres[id][j] + 0.08 * gaussian(rng));
    for (let j = q; j < p; j++) X.set(r, j, 3 * gaussian(rng));
    for (let k = 0; k < q; k++) {
      let s = 0;
      for (let j = 0; j < q; j++) s += X.get(r, j) * R[j * q + k];
      Y.set(r, k, s + 0.01 * gaussian(rng));
    }
  }
  return { X, Y, labels };
}

/** Balanced accuracy at the best threshold, by brute force over every score as the threshold. */
function balancedAccuracy(s: { score: number; same: boolean }[]): number {
  const P = s.filter((x) => x.same).length, N = s.length - P;
  let best = 0.5;
  for (const t of s) {
    const tar = s.filter((x) => x.same && x.score >= t.score).length / P;
    const tnr = s.filter((x) => !x.same && x.score < t.score).length / N;
    best = Math.max(best, (tar + tnr) / 2);
  }
  return best;
}

/**
 * Held-out verification of each lambda with float64 ridge (centred normal equations) and the same folds and pairs.
 * With `imageOf`, the folds are dealt over images (each image's first row) and only first rows are paired when held out.
 */
function referenceCurve(X: Matrix, Y: Matrix, labels: string[], grid: number[], k: number, seed: number, imageOf?: number[]): number[] {
  const images = imageOf ?? labels.map((_, r) => r);
  const heads = images.flatMap((img, r) => (images.indexOf(img) === r ? [r] : []));
  const byImage = identityFolds(heads.map((r) => labels[r]), k, seed);
  const fold = images.map((img) => byImage[heads.indexOf(images.indexOf(img))]);
  const scored = grid.map(() => [] as { score: number; same: boolean }[]);
  const centred = (m: M64, mean: Float64Array) => ({ ...m, data: m.data.map((v, i) => v - mean[i % m.cols]) });
  const means = (m: M64) => {
    const mu = new Float64Array(m.cols);
    for (let i = 0; i < m.data.length; i++) mu[i % m.cols] += m.data[i] / m.rows;
    return mu;
  };
  for (let f = 0; f < k; f++) {
    const train = [...fold.keys()].filter((r) => fold[r] !== f), held = heads.filter((r) => fold[r] === f);
    const Xt = toF64(X.takeRows(train)), Yt = toF64(Y.takeRows(train));
    const mx = means(Xt), my = means(Yt);
    const Xc = centred(Xt, mx), Yc = centred(Yt, my);
    const A = matmul(transpose(Xc), Xc), B = matmul(transpose(Xc), Yc);
    const pairs = identityPairs(held.map((_, i) => i), held.map((r) => labels[r]), { maxMismatched: 5000, seed: seed + f });
    grid.forEach((lambda, g) => {
      const Al = { ...A, data: A.data.map((v, i) => (i % (A.cols + 1) === 0 ? v + lambda : v)) };
      const W = solve(Al, B);
      const mapped = matmul(centred(toF64(X.takeRows(held)), mx), W);
      const row = (i: number) => mapped.data.subarray(i * W.cols, (i + 1) * W.cols).map((v, j) => v + my[j]);
      for (const p of pairs) scored[g].push({ score: cosine(row(p.a), Y.row(held[p.b])), same: p.same });
    });
  }
  return scored.map(balancedAccuracy);
}

test("lambda 'task': the held-out verification curve matches a float64 reference and the best lambda is chosen", async () => {
  const rng = makeRng('ridge task');
  const { X, Y, labels } = planted(rng, 24, 4);
  const grid = [1e-3, 1, 10, 100, 1e3, 1e4, 1e5];
  const r = await lambdaByVerification(X, Y, labels, { folds: 4, seed: 7, grid });
  assert.deepEqual(r.curve.map((c) => c.lambda), grid);
  const ref = referenceCurve(X, Y, labels, grid, 4, 7);
  r.curve.forEach((c, g) => assert.ok(Math.abs(c.accuracy - ref[g]) < 1e-9, `lambda ${grid[g]}: ${c.accuracy} against the reference ${ref[g]}`));
  const bestRef = Math.max(...ref);
  assert.equal(ref[grid.indexOf(r.lambda)], bestRef, `chose ${r.lambda} (${ref[grid.indexOf(r.lambda)]}) where the best held-out accuracy is ${bestRef}`);
  // Planted: the identity lives in X's low-variance directions, which a large penalty erases.
  assert.ok(bestRef > 0.8 && ref[ref.length - 1] < bestRef - 0.2, `planted case not informative: ${ref.join(', ')}`);
  assert.ok(r.lambda < 1e4, `chose ${r.lambda}, a penalty that erases the identity directions`);
});

test("lambda 'task': default grid holds 0 and GCV's choice; bad input named; fitMap refuses it without a task", async () => {
  const rng = makeRng('ridge task grid');
  const { X, Y, labels } = planted(rng, 15, 3);
  const r = await lambdaByVerification(X, Y, labels, { folds: 3 });
  assert.ok(r.curve.some((c) => c.lambda === 0) && r.curve.some((c) => c.lambda === r.gcvLambda));
  assert.ok(r.curve.some((c) => c.lambda === r.lambda));
  await assert.rejects(lambdaByVerification(X, Y, labels.slice(1)), /labels: expected an identity for each of the 45 rows/);
  await assert.rejects(lambdaByVerification(X, Y, labels, { grid: [-1] }), /grid\[0\]: expected a number >= 0/);
  await assert.rejects(fitMap(X, Y, { method: 'ridge', lambda: 'task' } as never), /lambda: 'task' is chosen by an experiment/);
});

test("lambda 'task' with views: an image's rows share its fold and only its plain row is held out (float64 reference); one row per image is the default", async () => {
  const rng = makeRng('ridge task views');
  const { X, Y, labels } = planted(rng, 18, 3);
  // Each image as V rows: itself (the plain view), then V - 1 perturbed copies, as augmented views are.
  const V = 3, rows = X.rows * V;
  const Xv = Matrix.zeros(rows, X.cols, 'float64'), Yv = Matrix.zeros(rows, Y.cols, 'float64');
  const imageOf = Array.from({ length: rows }, (_, r) => Math.floor(r / V)), labelsV = imageOf.map((i) => labels[i]);
  for (let r = 0; r < rows; r++) {
    const i = imageOf[r], noise = r % V === 0 ? 0 : 0.05;
    for (let j = 0; j < X.cols; j++) Xv.set(r, j, X.get(i, j) + noise * gaussian(rng));
    for (let j = 0; j < Y.cols; j++) Yv.set(r, j, Y.get(i, j) + noise * gaussian(rng));
  }
  const grid = [1e-3, 1, 100, 1e4];
  const r = await lambdaByVerification(Xv, Yv, labelsV, { folds: 3, seed: 5, grid, imageOf });
  const ref = referenceCurve(Xv, Yv, labelsV, grid, 3, 5, imageOf);
  r.curve.forEach((c, g) => assert.ok(Math.abs(c.accuracy - ref[g]) < 1e-9, `lambda ${grid[g]}: ${c.accuracy} against the reference ${ref[g]}`));
  // Held out: the plain rows' pairs only, as many as without views.
  const plain = await lambdaByVerification(X, Y, labels, { folds: 3, seed: 5, grid });
  assert.equal(r.curve[0].matched + r.curve[0].mismatched, plain.curve[0].matched + plain.curve[0].mismatched);
  // Each row its own image: the same as no imageOf.
  assert.deepEqual(await lambdaByVerification(X, Y, labels, { folds: 3, seed: 5, grid, imageOf: labels.map((_, i) => i) }), plain);
  await assert.rejects(lambdaByVerification(Xv, Yv, labelsV, { imageOf: imageOf.slice(1) }), /imageOf\.length: expected 162 \(an image index for each row\), received number 161/);
  const relabelled = labelsV.map((l, i) => (i === 4 ? 'someone else' : l));
  await assert.rejects(lambdaByVerification(Xv, Yv, relabelled, { imageOf }), /labels\[4\]: expected the identity of the other rows of image 1 \('person1'\), received string "someone else"/);
});
