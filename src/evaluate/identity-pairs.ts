// Verification pairs formed from labelled images (no protocol file): every matched pair of an
// identity's images and mismatched pairs between identities, scored by the balanced accuracy of
// the best threshold. Used where choices must be made on a fitting set of identities rather than
// on a protocol's test pairs (the face crops, the task-metric ridge penalty).
import { assertInteger, fail } from '../core/validate';
import { foldOf, groupsOf, makeRng, permutation } from './split';
import { areaUnder, roc, type ScoredPair } from './verification';

export interface IndexPair {
  /** Rows of the images. */
  a: number;
  b: number;
  same: boolean;
}

/**
 * Pairs among `rows` by `labels[row]`: every matched pair, and mismatched pairs (all of them, or a
 * seeded sample of `maxMismatched`), in row order within each pair.
 */
export function identityPairs(rows: readonly number[], labels: readonly string[], opts: { maxMismatched?: number; seed?: number } = {}): IndexPair[] {
  const matched: IndexPair[] = [];
  let mismatched: IndexPair[] = [];
  for (let i = 0; i < rows.length; i++) {
    for (let j = i + 1; j < rows.length; j++) {
      const same = labels[rows[i]] === labels[rows[j]];
      (same ? matched : mismatched).push({ a: rows[i], b: rows[j], same });
    }
  }
  const cap = opts.maxMismatched;
  if (cap !== undefined) {
    assertInteger('maxMismatched', cap, 1);
    if (mismatched.length > cap) {
      const order = permutation(mismatched.length, makeRng(opts.seed ?? 0));
      mismatched = Array.from(order.subarray(0, cap), (k) => mismatched[k]);
    }
  }
  return [...matched, ...mismatched];
}

/** How many identities have two or more images: identityFolds needs at least one per fold. */
export function identitiesWithPairs(labels: readonly string[]): number {
  const count = new Map<string, number>();
  for (const l of labels) count.set(l, (count.get(l) ?? 0) + 1);
  return [...count.values()].filter((c) => c > 1).length;
}

/**
 * Identity folds: fold of each row, all images of an identity in one fold (split.ts's grouped
 * folds). Larger groups are dealt first, so with at least k identities of two or more images every
 * fold gets matched pairs.
 */
export function identityFolds(labels: readonly string[], k: number, seed = 0): Uint16Array {
  assertInteger('folds', k, 2);
  const multi = identitiesWithPairs(labels);
  if (multi < k) fail(RangeError, 'labels', `at least folds = ${k} identities with two or more images (each fold needs matched pairs)`, `${multi}`);
  return foldOf(labels.length, k, seed, groupsOf('labels', labels, labels.length));
}

export interface PairScore {
  /** Balanced verification accuracy ((TAR + TNR) / 2) at the threshold that maximises it. */
  accuracy: number;
  auc: number;
  matched: number;
  mismatched: number;
}

/** Balanced accuracy at the best threshold, and AUC, of scored pairs (both kinds needed). */
export function scorePairs(pairs: readonly Pick<ScoredPair, 'score' | 'same'>[]): PairScore {
  const P = pairs.filter((p) => p.same).length, N = pairs.length - P;
  if (P === 0 || N === 0) fail(RangeError, 'pairs', 'matched and mismatched pairs', `${P} matched and ${N} mismatched`);
  const sorted = [...pairs].sort((x, y) => y.score - x.score);
  // Accepting the first i+1 (scores >= sorted[i]): TAR = tp / P, TNR = 1 - fp / N.
  let tp = 0, fp = 0, best = 0.5;
  for (let i = 0; i < sorted.length; i++) {
    if (sorted[i].same) tp++;
    else fp++;
    if (i + 1 < sorted.length && sorted[i + 1].score === sorted[i].score) continue;
    best = Math.max(best, (tp / P + 1 - fp / N) / 2);
  }
  return { accuracy: best, auc: areaUnder(roc(pairs.map((p) => ({ ...p, fold: 0 })))), matched: P, mismatched: N };
}
