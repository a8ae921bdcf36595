// Held-out diagnostics by cross-fit on statistics: for each fold, the map solved on the other
// folds is scored on this fold. The training statistics (total minus the fold, about their own
// means) are formed in one pass into a buffer reused fold after fold and lent to the solve
// (SufficientStats.difference); residual and R^2 come from the fold's statistics alone
// (SufficientStats.residualSquares: half a product with its p x p matrix), so no pass over the
// data. Cosine and CKA need rows: they use a bounded sample of each fold's rows kept while the
// statistics were accumulated.
import { Matrix } from '../core/matrix';
import { Engine } from '../engine/engine';
import { SufficientStats } from '../engine/stats';
import type { Fitted } from '../estimators/estimator';
import { linearCKA } from './diagnostics';
import { cosine } from './verification';

const CKA_ROWS = 500;

/** Rows of one fold kept for the row-based diagnostics. */
export interface FoldSample {
  X: Matrix<'float64'>;
  Y: Matrix<'float64'>;
  /** With groups: each row's group (ridge's 'cv-top1' counts its standard error over groups). */
  groups?: number[];
}

export interface CrossFitDiagnostics {
  /** Pairs scored (those of the scored folds, each by the map fitted without its fold). */
  rows: number;
  /** Folds scored. */
  folds: number;
  /** sqrt(sum ||x M + b - y||^2 / sum ||y||^2) over all held-out pairs. */
  relativeResidual: number;
  /** Mean over target dimensions of the pooled held-out R^2. */
  r2Mean: number;
  /** Held-out rows behind the cosine and CKA values. */
  sampleRows: number;
  cosineMean?: number;
  cosineMedian?: number;
  ckaSourceTarget?: number;
}

/** Columns up to which two folds are refitted at once: past them one factorisation keeps the cores busy, and a second training copy (p x p float64) costs real memory. */
const TWO_LANES_MAX_P = 4096;

/**
 * Scores each of `folds` (all, or some, of the parts of `total`) by the map fitted on total minus
 * the fold. `refit(train, engine)` solves the same estimator on training statistics, on the engine
 * given (two folds are refitted at once, each on half the threads, where the backend can limit one
 * call's threads: small factorisations scale poorly across threads, and two fill the cores better;
 * the last of an odd number of jobs waits for the other lane, then takes every thread; a lane
 * whose partner is done takes every thread from its next operation on).
 * `memory`: room nothing else reads, where the lanes' training statistics are placed as far as
 * it holds them (StatsOptions.memory). `alongside(engine)`: one more solve (the map on all the
 * pairs) that takes a lane's turn after the folds.
 */
export async function crossFitDiagnostics(
  total: SufficientStats, folds: SufficientStats[], samples: FoldSample[],
  refit: (train: SufficientStats, engine: Engine) => Promise<{ fitted: Fitted }>,
  opts: { engine?: Engine; memory?: Float64Array; alongside?: (engine: Engine) => Promise<void> } = {},
): Promise<CrossFitDiagnostics> {
  const { p, q } = total, engine = opts.engine ?? Engine.get();
  const laneRoom = SufficientStats.matrixLength(p, q, total.yty !== null);
  const { threads, threadCap } = engine.info();
  const lanes = threadCap && threads >= 2 && p <= TWO_LANES_MAX_P ? 2 : 1;
  const scored: ({ res: Float64Array; cos: number[] } | undefined)[] = [];
  // Jobs: the folds, then `alongside` if given (last: its synchronous set-up then runs while the
  // first fold's solve works off the event loop, not before it).
  const jobs = folds.length + (opts.alongside ? 1 : 0);
  let next = 0, running = lanes;
  // A lane's share of the threads while the other lane works, all of them once it is done.
  const laneEngine = lanes > 1 ? engine.withThreads(() => (running > 1 ? Math.floor(threads / lanes) : threads)) : engine;
  let wake: (() => void) | undefined;
  const alone = lanes > 1 && jobs % 2 === 1 ? jobs - 1 : -1;
  // Each lane reuses its own training buffer (in its share of `memory` where that holds one),
  // made when it takes its first fold; jobs are taken in turn, the folds' scores kept by fold.
  const lane = async (own: number): Promise<void> => {
    const room = opts.memory?.subarray(own * laneRoom, (own + 1) * laneRoom);
    let train: SufficientStats | undefined;
    try {
      for (let f = next++; f < jobs; f = next++) {
        if (f < folds.length && folds[f].count === 0) continue;
        if (f === alone && running > 1) await new Promise<void>((resolve) => (wake = resolve));
        const e = f === alone ? engine : laneEngine;
        if (f === folds.length) {
          await opts.alongside!(e);
          continue;
        }
        train ??= room?.length === laneRoom ? total.emptyLike(room) : undefined;
        train = SufficientStats.difference(total, folds[f], train, { lend: true });
        const { weight: M, bias } = (await refit(train, e)).fitted;
        const res = await folds[f].residualSquares(M, bias, e);
        const { X, Y } = samples[f];
        const P = X.rows > 0 ? await e.gemm(X, M, { bias }) : X;
        scored[f] = { res, cos: Array.from({ length: X.rows }, (_, r) => cosine(P.row(r), Y.row(r))) };
      }
    } catch (err) {
      next = jobs; // the other lane takes no new job
      throw err;
    } finally {
      if (--running === 1) wake?.();
    }
  };
  // Every lane ends before an error is passed on: none is left working on the buffers.
  const ended = await Promise.allSettled(Array.from({ length: lanes }, (_, own) => lane(own)));
  const failed = ended.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
  // Summed in fold order, whichever lane finished first.
  const ssRes = new Float64Array(q), ssTot = new Float64Array(q);
  let yy = 0;
  const cos: number[] = [];
  // CKA's rows: the first CKA_ROWS of the scored folds' samples, in fold order.
  const sx: Matrix<'float64'>[] = [], sy: Matrix<'float64'>[] = [];
  let ckaRows = 0;
  for (let f = 0; f < folds.length; f++) {
    const fold = folds[f], s = scored[f];
    if (!s) continue;
    for (let j = 0; j < q; j++) ssRes[j] += s.res[j];
    const own = fold.sqYAbout(fold.meanY());
    for (let j = 0; j < q; j++) ssTot[j] += own[j];
    yy += fold.sqYAbout(new Float64Array(q)).reduce((a, b) => a + b, 0);
    for (const c of s.cos) cos.push(c); // not push(...): a large sampleRows would overflow the argument stack
    const take = Math.min(samples[f].X.rows, CKA_ROWS - ckaRows);
    if (take === 0) continue;
    sx.push(samples[f].X.rowSlice(0, take));
    sy.push(samples[f].Y.rowSlice(0, take));
    ckaRows += take;
  }
  const res = ssRes.reduce((a, b) => a + b, 0);
  const out: CrossFitDiagnostics = {
    rows: folds.reduce((n, f) => n + f.count, 0),
    folds: folds.length,
    relativeResidual: yy > 0 ? Math.sqrt(res / yy) : 0,
    r2Mean: Array.from(ssRes, (r, j) => (ssTot[j] > 0 ? 1 - r / ssTot[j] : 0)).reduce((a, b) => a + b, 0) / q,
    sampleRows: cos.length,
  };
  if (cos.length > 0) {
    cos.sort((a, b) => a - b);
    const n = cos.length;
    out.cosineMean = cos.reduce((a, b) => a + b, 0) / n;
    out.cosineMedian = n % 2 ? cos[(n - 1) / 2] : (cos[n / 2 - 1] + cos[n / 2]) / 2;
    // CKA describes the two spaces, not the map: 500 rows estimate it well enough and keep its
    // Gram matrices small next to the fold solves.
    if (ckaRows > 1) out.ckaSourceTarget = await linearCKA(Matrix.stack(sx), Matrix.stack(sy), engine);
  }
  return out;
}
