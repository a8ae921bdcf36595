// Open-set verification (LFW View 2 style): pairs of embeddings scored by cosine similarity,
// 10-fold accuracy with the threshold chosen on the other nine folds, ROC, AUC, EER and TAR at
// fixed FAR.
import { assertInteger } from '../core/validate';

export interface ScoredPair {
  score: number;
  same: boolean;
  fold: number;
}

export interface RocPoint {
  far: number;
  tar: number;
  threshold: number;
}

export interface VerificationResult {
  pairs: number;
  /** Pairs of different people: the smallest FAR the ROC resolves is 1 / impostors. */
  impostors: number;
  folds: number;
  /** Mean and standard deviation of the per-fold accuracy (threshold chosen on the other folds). */
  accuracy: number;
  accuracyStd: number;
  foldAccuracies: number[];
  auc: number;
  eer: number;
  /** TAR at FAR 1e-1, 1e-2, 1e-3 (the largest TAR whose FAR does not exceed the target). */
  tarAtFar: Record<string, number>;
  /** The ROC, thinned to at most ~200 points for reports. */
  roc: RocPoint[];
}

/** Cosine similarity of two vectors (0 when either is zero). */
export function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let dot = 0, na = 0, nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  return na > 0 && nb > 0 ? dot / Math.sqrt(na * nb) : 0;
}

/** The threshold maximising accuracy on these pairs (midpoint between neighbouring scores). */
export function bestThreshold(pairs: readonly ScoredPair[]): number {
  const sorted = [...pairs].sort((a, b) => a.score - b.score);
  const positives = sorted.filter((p) => p.same).length;
  // Threshold below sorted[i] accepts i..end: correct = positives at/above + negatives below.
  let correct = positives, bestCorrect = correct, best = sorted.length ? sorted[0].score - 1e-9 : 0;
  for (let i = 0; i < sorted.length; i++) {
    correct += sorted[i].same ? -1 : 1;
    if (i + 1 < sorted.length && sorted[i + 1].score === sorted[i].score) continue;
    if (correct > bestCorrect) {
      bestCorrect = correct;
      best = i + 1 < sorted.length ? (sorted[i].score + sorted[i + 1].score) / 2 : sorted[i].score + 1e-9;
    }
  }
  return best;
}

export function roc(pairs: readonly ScoredPair[]): RocPoint[] {
  const sorted = [...pairs].sort((a, b) => b.score - a.score);
  const P = sorted.filter((p) => p.same).length, N = sorted.length - P;
  const out: RocPoint[] = [{ far: 0, tar: 0, threshold: Infinity }];
  let tp = 0, fp = 0;
  for (let i = 0; i < sorted.length; i++) {
    if (sorted[i].same) tp++;
    else fp++;
    if (i + 1 < sorted.length && sorted[i + 1].score === sorted[i].score) continue;
    out.push({ far: N ? fp / N : 0, tar: P ? tp / P : 0, threshold: sorted[i].score });
  }
  return out;
}

/** The area under a ROC (trapezoids): the chance that a matched pair scores above a mismatched one. */
export function areaUnder(curve: readonly RocPoint[]): number {
  let auc = 0;
  for (let i = 1; i < curve.length; i++) auc += ((curve[i].far - curve[i - 1].far) * (curve[i].tar + curve[i - 1].tar)) / 2;
  return auc;
}

export function evaluateVerification(pairs: readonly ScoredPair[]): VerificationResult {
  if (pairs.length === 0) throw new RangeError('pairs: expected at least one scored pair, received 0');
  const folds = [...new Set(pairs.map((p) => p.fold))].sort((a, b) => a - b);
  folds.forEach((f) => assertInteger('fold', f, 0));
  // Each fold's threshold is learnt on the other folds, which need matched and mismatched pairs.
  if (folds.length < 2) throw new RangeError(`pairs: expected pairs from at least 2 folds (each fold's threshold is learnt on the others), received ${pairs.length} pairs in 1 fold (${folds[0]})`);
  for (const f of folds) {
    const rest = pairs.filter((p) => p.fold !== f);
    if (!rest.some((p) => p.same) || rest.every((p) => p.same)) {
      throw new RangeError(`pairs: expected the folds other than ${f} to hold matched and mismatched pairs to learn fold ${f}'s threshold on, they hold ${rest.filter((p) => p.same).length} matched and ${rest.filter((p) => !p.same).length} mismatched`);
    }
  }
  const foldAccuracies = folds.map((f) => {
    const t = bestThreshold(pairs.filter((p) => p.fold !== f));
    const test = pairs.filter((p) => p.fold === f);
    return test.filter((p) => (p.score > t) === p.same).length / test.length;
  });
  const mean = foldAccuracies.reduce((a, b) => a + b, 0) / foldAccuracies.length;
  const std = Math.sqrt(foldAccuracies.reduce((a, b) => a + (b - mean) ** 2, 0) / foldAccuracies.length);
  const curve = roc(pairs);
  const auc = areaUnder(curve);
  // EER: where FAR meets the false-reject rate; on a step ROC, the smallest max(FAR, FRR).
  const eer = curve.reduce((e, p) => Math.min(e, Math.max(p.far, 1 - p.tar)), 1);
  const tarAtFar: Record<string, number> = {};
  for (const far of [1e-1, 1e-2, 1e-3]) {
    tarAtFar[far.toExponential(0)] = curve.filter((p) => p.far <= far).reduce((a, p) => Math.max(a, p.tar), 0);
  }
  const step = Math.max(1, Math.floor(curve.length / 200));
  return {
    pairs: pairs.length,
    impostors: pairs.filter((p) => !p.same).length,
    folds: folds.length,
    accuracy: mean,
    accuracyStd: std,
    foldAccuracies,
    auc,
    eer,
    tarAtFar,
    roc: curve.filter((_, i) => i % step === 0 || i === curve.length - 1),
  };
}
