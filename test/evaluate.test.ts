// Evaluation protocols against brute-force definitions on fresh random data.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Matrix } from '../src/core/matrix';
import { accuracy, agreement, logits, topIndices } from '../src/evaluate/classification';
import { identify } from '../src/evaluate/identification';
import { bestThreshold, cosine, evaluateVerification, type ScoredPair } from '../src/evaluate/verification';
import { gaussian, makeRng, randn } from './helpers/random';
import { matmul, toF64, transpose } from './helpers/reference';

const rng = makeRng('evaluate.test');

function scoredPairs(n: number, separation: number): ScoredPair[] {
  return Array.from({ length: n }, (_, i) => {
    const same = i % 2 === 0;
    return { same, score: gaussian(rng) + (same ? separation : 0), fold: Math.floor((i / n) * 10) };
  });
}

test('verification: AUC equals the Mann-Whitney statistic, accuracy the brute-force threshold search', () => {
  const pairs = scoredPairs(600, 1.5);
  const r = evaluateVerification(pairs);
  const pos = pairs.filter((p) => p.same), neg = pairs.filter((p) => !p.same);
  let wins = 0;
  for (const p of pos) for (const q of neg) wins += p.score > q.score ? 1 : p.score === q.score ? 0.5 : 0;
  assert.ok(Math.abs(r.auc - wins / (pos.length * neg.length)) < 1e-12);
  // Per fold: the best threshold on the other folds, by trying every candidate.
  const accs = Array.from({ length: 10 }, (_, f) => {
    const train = pairs.filter((p) => p.fold !== f), testSet = pairs.filter((p) => p.fold === f);
    const acc = (t: number, set: ScoredPair[]) => set.filter((p) => (p.score > t) === p.same).length / set.length;
    const cands = [...train.map((p) => p.score), -Infinity];
    const bestAcc = Math.max(...cands.map((t) => acc(t, train)));
    assert.ok(Math.abs(acc(bestThreshold(train), train) - bestAcc) < 1e-12, 'threshold optimal on its folds');
    return acc(bestThreshold(train), testSet);
  });
  assert.deepEqual(r.foldAccuracies, accs);
  assert.equal(r.folds, 10);
  assert.equal(r.impostors, neg.length);
  // TAR at FAR: brute force over thresholds.
  for (const far of [0.1, 0.01]) {
    let best = 0;
    for (const t of pairs.map((p) => p.score)) {
      const fa = neg.filter((p) => p.score >= t).length / neg.length;
      if (fa <= far) best = Math.max(best, pos.filter((p) => p.score >= t).length / pos.length);
    }
    assert.ok(Math.abs(r.tarAtFar[far.toExponential(0)] - best) < 1e-12);
  }
  assert.ok(r.eer > 0.1 && r.eer < 0.35);
  const perfect = evaluateVerification(scoredPairs(200, 100));
  assert.equal(perfect.accuracy, 1);
  assert.equal(perfect.auc, 1);
  assert.equal(perfect.eer, 0);
  assert.throws(() => evaluateVerification([]), /pairs: expected at least one scored pair/);
  // One fold leaves no pairs to learn its threshold on: an error naming the minimum, never 0%.
  const one = scoredPairs(40, 1).map((p) => ({ ...p, fold: 3 }));
  assert.throws(() => evaluateVerification(one), /pairs: expected pairs from at least 2 folds \(each fold's threshold is learnt on the others\), received 40 pairs in 1 fold \(3\)/);
  // Folds whose complement lacks mismatched pairs cannot learn a threshold either.
  const lopsided = [{ score: 1, same: true, fold: 0 }, { score: 0, same: false, fold: 1 }, { score: 0.9, same: true, fold: 1 }];
  assert.throws(() => evaluateVerification(lopsided), /the folds other than 1 to hold matched and mismatched pairs to learn fold 1's threshold on, they hold 1 matched and 0 mismatched/);
});

test('cosine', () => {
  assert.ok(Math.abs(cosine([1, 0], [1, 1]) - Math.SQRT1_2) < 1e-15);
  assert.equal(cosine([0, 0], [1, 1]), 0);
});

test('classification: logits through a head, top-k, accuracy and agreement', async () => {
  const E = randn(rng, 300, 12, 'float64'), W = randn(rng, 20, 12, 'float64'), c = randn(rng, 1, 20, 'float64').data;
  const L = await logits(E, { W, c });
  const ref = matmul(toF64(E), transpose(toF64(W)));
  for (let i = 0; i < 300; i++) for (let j = 0; j < 20; j++) assert.ok(Math.abs(L.get(i, j) - ref.data[i * 20 + j] - c[j]) < 1e-9);
  const top = topIndices(L, 5);
  const labels = new Int32Array(300);
  let t1 = 0, t5 = 0;
  for (let i = 0; i < 300; i++) {
    const order = Array.from(L.row(i)).map((v, j) => [v, j]).sort((a, b) => b[0] - a[0]).map((x) => x[1]);
    assert.deepEqual(Array.from(top.subarray(i * 5, i * 5 + 5)), order.slice(0, 5));
    labels[i] = Math.floor(rng() * 20);
    if (order[0] === labels[i]) t1++;
    if (order.slice(0, 5).includes(labels[i])) t5++;
  }
  assert.deepEqual(accuracy(L, labels), { top1: t1 / 300, top5: t5 / 300 });
  assert.equal(agreement(L, L), 1);
  await assert.rejects(logits(randn(rng, 3, 5, 'float64'), { W, c }), /E: expected 12-d embeddings for this head, received 3x5/);
});

test('identification: rank-1, CMC and recall against brute force', async () => {
  const ids = 30;
  const centres = randn(rng, ids, 16, 'float32');
  const noisy = (i: number, s: number) => Array.from(centres.row(i), (v) => v + s * gaussian(rng));
  const gallery = Matrix.from(Array.from({ length: ids * 2 }, (_, r) => noisy(r % ids, 0.3)));
  const gLabels = Array.from({ length: ids * 2 }, (_, r) => `p${r % ids}`);
  const queries = Matrix.from(Array.from({ length: 90 }, (_, r) => noisy(r % ids, 0.8)));
  const qLabels = Array.from({ length: 90 }, (_, r) => `p${r % ids}`);
  const res = await identify(queries, qLabels, gallery, gLabels, { maxRank: 10 });
  let r1 = 0, r5 = 0;
  for (let i = 0; i < 90; i++) {
    const order = Array.from({ length: gallery.rows }, (_, j) => [cosine(queries.row(i), gallery.row(j)), j]).sort((a, b) => b[0] - a[0]);
    const first = order.findIndex(([, j]) => gLabels[j] === qLabels[i]);
    if (first === 0) r1++;
    if (first < 5) r5++;
  }
  assert.equal(res.queries, 90);
  assert.ok(Math.abs(res.rank1 - r1 / 90) < 1e-12);
  assert.ok(Math.abs(res.rank5 - r5 / 90) < 1e-12);
  assert.ok(res.cmc.every((v, i) => i === 0 || v >= res.cmc[i - 1]));
  assert.ok(res.recallAt['@10'] >= res.recallAt['@1']);
});
