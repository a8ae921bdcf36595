// Seeded, reproducible row splits (train/test, folds).
import { assertInteger, assertNumber } from '../core/validate';

/** mulberry32: small, fast, good enough for shuffling. */
export function makeRng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A uniformly random permutation of 0..n-1 (Fisher-Yates). */
export function permutation(n: number, rng: () => number): Int32Array {
  const p = Int32Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    const t = p[i];
    p[i] = p[j];
    p[j] = t;
  }
  return p;
}

/**
 * Seeded k-fold assignment of n rows (the fit's cross-fit and ridge's lambda 'cv' alike): the
 * rows in a seeded random order dealt round-robin, so fold sizes differ by at most one.
 */
export function foldOf(n: number, k: number, seed: number): Uint16Array {
  assertInteger('n', n, 0);
  assertInteger('k', k, 1, 65535);
  assertInteger('seed', seed, 0);
  const order = permutation(n, makeRng(seed));
  const fold = new Uint16Array(n);
  for (let i = 0; i < n; i++) fold[order[i]] = i % k;
  return fold;
}

/** Rows start .. end of a fold assignment, grouped by fold: offsets from start, ascending. */
export function rowsByFold(fold: ArrayLike<number>, k: number, start = 0, end = fold.length): Int32Array[] {
  const count = new Int32Array(k);
  for (let i = start; i < end; i++) count[fold[i]]++;
  const out = Array.from(count, (c) => new Int32Array(c));
  count.fill(0);
  for (let i = start; i < end; i++) out[fold[i]][count[fold[i]]++] = i - start;
  return out;
}

export interface Split {
  train: Int32Array;
  test: Int32Array;
}

/** Seeded train/test split of n rows; test gets round(n * testFraction) rows, both sorted. */
export function trainTestSplit(n: number, opts: { testFraction?: number; seed?: number } = {}): Split {
  assertInteger('n', n, 0);
  const frac = opts.testFraction ?? 0.2;
  assertNumber('testFraction', frac, 0, 1);
  const seed = opts.seed ?? 0;
  assertInteger('seed', seed, 0);
  const perm = permutation(n, makeRng(seed));
  const nt = Math.round(n * frac);
  return { test: perm.slice(0, nt).sort(), train: perm.slice(nt).sort() };
}
