// Held-out diagnostics by cross-fit on statistics: for each fold, the map solved on the other
// folds (total minus this fold's statistics) is scored on this fold. Residual and R^2 come from
// the fold's statistics alone: with the fold's rows centred at cx (the training means) and
// cy = cx M + b, the residual of column j is
//   SS_res_j = (M^T A M)_jj - 2 (M^T B)_jj + sum (y_j - cy_j)^2,   A = sum dx dx^T, B = sum dx dy^T,
// (residualFrom in estimators/normal-equations.ts), with A M formed from the fold's stored
// products (SufficientStats.xxAboutTimes), so no pass over the data and no re-centred p x p copy
// is needed. Cosine and CKA need rows: they use a bounded sample of each fold's rows kept while
// the statistics were accumulated.
import { Matrix } from '../core/matrix';
import { Engine } from '../engine/engine';
import type { SufficientStats } from '../engine/stats';
import type { Fitted } from '../estimators/estimator';
import { residualFrom } from '../estimators/normal-equations';
import { linearCKA } from './diagnostics';
import { cosine } from './verification';

const CKA_ROWS = 500;

/** Rows of one fold kept for the row-based diagnostics. */
export interface FoldSample {
  X: ArrayLike<number>[];
  Y: ArrayLike<number>[];
  /** With groups: each row's group (ridge's 'cv-top1' counts its standard error over groups). */
  groups?: number[];
}

export interface CrossFitDiagnostics {
  /** Pairs scored (every pair, each by the map fitted without its fold). */
  rows: number;
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

/** `refit(train)` solves the same estimator on training statistics. */
export async function crossFitDiagnostics(
  total: SufficientStats, folds: SufficientStats[], samples: FoldSample[],
  refit: (train: SufficientStats) => Promise<{ fitted: Fitted }>, engine: Engine = Engine.get(),
): Promise<CrossFitDiagnostics> {
  const { p, q } = total;
  const ssRes = new Float64Array(q), ssTot = new Float64Array(q);
  let yy = 0;
  const cos: number[] = [];
  const sx: Matrix<'float64'>[] = [], sy: Matrix<'float64'>[] = [];
  // One copy of the total, each fold taken out and put back in turn (no O(p^2) copy per fold).
  const train = total.clone();
  for (let f = 0; f < folds.length; f++) {
    const fold = folds[f];
    if (fold.count === 0) continue;
    train.subtract(fold);
    const { weight: M, bias } = (await refit(train)).fitted;
    const cx = train.meanX();
    const cy = Float64Array.from(bias);
    for (let i = 0; i < p; i++) for (let j = 0; j < q; j++) cy[j] += cx[i] * M.data[i * q + j];
    const res = residualFrom(await fold.xxAboutTimes(cx, M), fold.xyAbout(cx, cy), fold.sqYAbout(cy), M).sqY;
    for (let j = 0; j < q; j++) ssRes[j] += res[j];
    const own = fold.sqYAbout(fold.meanY());
    for (let j = 0; j < q; j++) ssTot[j] += own[j];
    yy += fold.sqYAbout(new Float64Array(q)).reduce((a, b) => a + b, 0);
    train.merge(fold);
    const rows = samples[f].X.length;
    if (rows === 0) continue;
    const Xs = Matrix.from(samples[f].X, 'float64'), Ys = Matrix.from(samples[f].Y, 'float64');
    const P = await engine.gemm(Xs, M, { bias });
    for (let r = 0; r < rows; r++) cos.push(cosine(P.row(r), Ys.row(r)));
    sx.push(Xs);
    sy.push(Ys);
  }
  const res = ssRes.reduce((a, b) => a + b, 0);
  const out: CrossFitDiagnostics = {
    rows: total.count,
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
    // p x p Gram matrix (2 n p^2 flops) small next to the fold solves.
    const X = Matrix.stack(sx), Y = Matrix.stack(sy), m = Math.min(n, CKA_ROWS);
    if (m > 1) out.ckaSourceTarget = await linearCKA(X.rowSlice(0, m), Y.rowSlice(0, m), engine);
  }
  return out;
}
