// Ridge's penalty chosen on the task's own metric (lambda 'task'), for verification tasks: GCV and
// k-fold 'cv' minimise the embedding error, which is not what a verification map is judged by
// (on LFW GCV picked lambda = 730 where lambda -> 0 verified better). Here the fitting set is cut
// into k folds by identity; for each fold the map of every candidate lambda is fitted on the
// other folds' statistics, the fold's own images are mapped and paired among themselves (every
// matched pair, a seeded sample of mismatched ones), and each pair is scored as the experiment
// scores it: cosine(source mapped, target). The lambda of the best balanced verification accuracy
// over all folds' pairs wins (ties: higher AUC, then the larger lambda, the more stable map).
// Rows that are augmented views of one image (imageOf) share its fold, and only each image's first
// row (its plain view) is paired when held out: views add fitting rows, never held-out pairs.
import type { Matrix } from '../core/matrix';
import { assertInteger, fail } from '../core/validate';
import type { Engine } from '../engine/engine';
import { SufficientStats, type StatsPrecision } from '../engine/stats';
import { identityFolds, identityPairs, scorePairs, type PairScore } from '../evaluate/identity-pairs';
import { rowsByFold } from '../evaluate/split';
import { cosine } from '../evaluate/verification';
import { normalProblem } from './normal-equations';
import { RidgeEstimator } from './ridge';

export interface TaskLambdaOptions {
  /** Identity folds (default 5). */
  folds?: number;
  seed?: number;
  /** Candidate lambdas (default: 0, the GCV choice, and 17 values 1e-6..1e2 x the mean eigenvalue of X^T X). */
  grid?: number[];
  /** Mismatched pairs sampled per fold (default 5000; every matched pair is kept). */
  maxMismatched?: number;
  precision?: StatsPrecision;
  engine?: Engine;
  /** The image of each row, when several rows are views of one image (default: each row its own image); an image's first row is its plain view. */
  imageOf?: ArrayLike<number>;
}

export interface TaskLambdaPoint extends PairScore {
  lambda: number;
}

export interface TaskLambdaResult {
  lambda: number;
  /** What GCV would have chosen on the same set (a point of the grid). */
  gcvLambda: number;
  folds: number;
  curve: TaskLambdaPoint[];
}

/** See the file comment. `labels[r]`: the identity of row r of X and Y. */
export async function lambdaByVerification(X: Matrix, Y: Matrix, labels: readonly string[], opts: TaskLambdaOptions = {}): Promise<TaskLambdaResult> {
  if (X.rows !== Y.rows) fail(RangeError, 'Y', `${X.rows} rows to pair with X's rows`, `${Y.rows} rows`);
  if (!Array.isArray(labels) || labels.length !== X.rows) fail(RangeError, 'labels', `an identity for each of the ${X.rows} rows`, Array.isArray(labels) ? `${labels.length} labels` : labels);
  const k = opts.folds ?? 5;
  assertInteger('folds', k, 2, 100);
  const { fold, paired } = imageFolds(labels, k, opts.seed ?? 0, opts.imageOf);
  const statsOpts = { engine: opts.engine, precision: opts.precision };
  const Yx = Y.dtype === X.dtype ? Y : Y.astype(X.dtype);
  const rowsOf = rowsByFold(fold, k);
  const parts: SufficientStats[] = [];
  for (const rows of rowsOf) parts.push(await new SufficientStats(X.cols, Y.cols, statsOpts).update(X, Yx, { rows }));
  const total = SufficientStats.sum(parts);
  const est = (lambda: number | 'gcv') => new RidgeEstimator({ lambda, precision: opts.precision }, { engine: opts.engine });
  const gcvLambda = Number((await est('gcv').fitStats(total)).fitted.info.lambda);
  const grid = [...new Set(opts.grid ?? [0, gcvLambda, ...defaultTaskGrid(total)])].sort((a, b) => a - b);
  grid.forEach((l, i) => { if (!(Number.isFinite(l) && l >= 0)) fail(RangeError, `grid[${i}]`, 'a number >= 0', l); });
  const scored = grid.map(() => [] as { score: number; same: boolean }[]);
  for (let f = 0; f < k; f++) {
    const train = SufficientStats.difference(total, parts[f]);
    const rows = rowsOf[f];
    const pairs = identityPairs(Array.from(rows.keys()).filter((i) => paired[rows[i]]), Array.from(rows, (r) => labels[r]), { maxMismatched: opts.maxMismatched ?? 5000, seed: (opts.seed ?? 0) + f });
    const source = X.takeRows(rows), target = Y.takeRows(rows);
    for (const [g, lambda] of grid.entries()) {
      const mapped = await (await est(lambda).fitStats(train)).transform(source);
      for (const p of pairs) scored[g].push({ score: cosine(mapped.row(p.a), target.row(p.b)), same: p.same });
    }
  }
  const curve = grid.map((lambda, g) => ({ lambda, ...scorePairs(scored[g]) }));
  const best = curve.reduce((a, b) => (b.accuracy > a.accuracy || (b.accuracy === a.accuracy && b.auc >= a.auc) ? b : a));
  return { lambda: best.lambda, gcvLambda, folds: k, curve };
}

/** Identity folds dealt over images (each row in its image's fold) and which rows are paired when held out: each image's first. */
function imageFolds(labels: readonly string[], k: number, seed: number, imageOf?: ArrayLike<number>): { fold: ArrayLike<number>; paired: Uint8Array } {
  const n = labels.length;
  if (imageOf === undefined) return { fold: identityFolds(labels, k, seed), paired: new Uint8Array(n).fill(1) };
  if (imageOf.length !== n) fail(RangeError, 'imageOf.length', `${n} (an image index for each row)`, imageOf.length);
  const first = new Map<number, number>();
  for (let r = 0; r < n; r++) {
    const image = imageOf[r];
    if (!Number.isInteger(image)) fail(TypeError, `imageOf[${r}]`, 'an integer image index', image);
    const head = first.get(image);
    if (head === undefined) first.set(image, r);
    else if (labels[head] !== labels[r]) fail(RangeError, `labels[${r}]`, `the identity of the other rows of image ${image} ('${labels[head]}')`, labels[r]);
  }
  const heads = [...first.values()];
  const byImage = identityFolds(heads.map((r) => labels[r]), k, seed);
  const foldOf = new Map(heads.map((r, i) => [imageOf[r], byImage[i]]));
  const paired = new Uint8Array(n);
  for (const r of heads) paired[r] = 1;
  return { fold: Int32Array.from({ length: n }, (_, r) => foldOf.get(imageOf[r])!), paired };
}

/** 17 values from 1e-6 to 1e2 x the mean eigenvalue of the centred X^T X (half-decade steps). */
function defaultTaskGrid(stats: SufficientStats): number[] {
  const { Sxx, p } = normalProblem(stats, true);
  let trace = 0;
  for (let i = 0; i < p; i++) trace += Sxx.data[i * p + i];
  const mean = Math.max(trace / p, Number.MIN_VALUE);
  return Array.from({ length: 17 }, (_, i) => mean * 10 ** (-6 + i / 2));
}
