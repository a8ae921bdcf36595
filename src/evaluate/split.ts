// Seeded, reproducible row splits (train/test, folds), of single rows or of groups of rows.
import { assertInteger, assertNumber, fail } from '../core/validate';

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

/** Rows grouped: group[r] is row r's group, numbered 0 .. count - 1 in order of first appearance. */
export interface Groups {
  group: Int32Array;
  count: number;
}

/**
 * Checks `values` (named `name` in errors: one group id, a finite number or a string, per each of
 * the n rows) and numbers the groups.
 */
export function groupsOf(name: string, values: unknown, n: number): Groups {
  const arrayLike = Array.isArray(values) || (ArrayBuffer.isView(values) && !(values instanceof DataView));
  if (!arrayLike) fail(TypeError, name, `an array of ${n} group ids (numbers or strings, one per row)`, values);
  const list = values as ArrayLike<unknown>;
  if (list.length !== n) fail(RangeError, name, `${n} group ids (one per row)`, values);
  const index = new Map<unknown, number>();
  const group = new Int32Array(n);
  for (let r = 0; r < n; r++) {
    const v = list[r];
    if (!(typeof v === 'string' || (typeof v === 'number' && Number.isFinite(v)))) fail(TypeError, `${name}[${r}]`, 'a group id (a finite number or a string)', v);
    let g = index.get(v);
    if (g === undefined) index.set(v, (g = index.size));
    group[r] = g;
  }
  return { group, count: index.size };
}

/**
 * Seeded k-fold assignment of n rows (the fit's cross-fit and ridge's k-fold lambda rules alike).
 * With `groups`, every row of a group goes to one fold (the views of an image: a held-out score on
 * a view whose image was fitted on would be optimistic); without, each row is its own group. The
 * groups in a seeded random order, the larger first (a stable sort), each to the fold with the
 * fewest rows so far (ties: the lower fold): single rows are dealt round-robin, fold sizes then
 * differ by at most one, and by at most the largest group otherwise. k is kept small (folds).
 */
export function foldOf(n: number, k: number, seed: number, groups?: Groups): Uint16Array {
  assertInteger('n', n, 0);
  assertInteger('k', k, 1, 65535);
  assertInteger('seed', seed, 0);
  const fold = new Uint16Array(n);
  const order = permutation(groups ? groups.count : n, makeRng(seed));
  if (!groups) {
    for (let i = 0; i < n; i++) fold[order[i]] = i % k;
    return fold;
  }
  const members = rowsByFold(groups.group, groups.count);
  const sorted = Array.from(order).sort((a, b) => members[b].length - members[a].length);
  const load = new Float64Array(k);
  for (const g of sorted) {
    let f = 0;
    for (let j = 1; j < k; j++) if (load[j] < load[f]) f = j;
    for (const r of members[g]) fold[r] = f;
    load[f] += members[g].length;
  }
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

/**
 * Seeded train/test split of n rows; test gets round(n * testFraction) rows, both sorted. With
 * `groups`, whole groups in a seeded order go to test until it has at least that many rows.
 */
export function trainTestSplit(n: number, opts: { testFraction?: number; seed?: number; groups?: Groups } = {}): Split {
  assertInteger('n', n, 0);
  const frac = opts.testFraction ?? 0.2;
  assertNumber('testFraction', frac, 0, 1);
  const seed = opts.seed ?? 0;
  assertInteger('seed', seed, 0);
  const nt = Math.round(n * frac);
  if (!opts.groups) {
    const perm = permutation(n, makeRng(seed));
    return { test: perm.slice(0, nt).sort(), train: perm.slice(nt).sort() };
  }
  const members = rowsByFold(opts.groups.group, opts.groups.count);
  const inTest = new Uint8Array(n);
  let taken = 0;
  for (const g of permutation(opts.groups.count, makeRng(seed))) {
    if (taken >= nt) break;
    for (const r of members[g]) inTest[r] = 1;
    taken += members[g].length;
  }
  const rows = Int32Array.from({ length: n }, (_, r) => r);
  return { test: rows.filter((r) => inTest[r] === 1), train: rows.filter((r) => inTest[r] === 0) };
}
