// The linear algebra every paired-row estimator shares: turning streaming statistics into a
// (centred) normal-equation problem, and solving symmetric systems robustly (Cholesky when the
// matrix is safely positive definite, otherwise an eigen pseudo-inverse giving the
// minimum-norm answer). All in float64 on the native engine.
import { Matrix } from '../core/matrix';
import { allFinite } from '../core/validate';
import type { Engine, EighResult } from '../engine/engine';
import type { SufficientStats } from '../engine/stats';

export interface NormalProblem {
  n: number;
  p: number;
  q: number;
  /** Zero vectors when the problem is not centred (no intercept). */
  meanX: Float64Array;
  meanY: Float64Array;
  /** X^T X (centred when fitting an intercept), p x p. */
  Sxx: Matrix<'float64'>;
  /** X^T Y (centred likewise), p x q. */
  Sxy: Matrix<'float64'>;
  /** Per target column, sum of squares of Y (centred likewise). */
  ssY: Float64Array;
  /** Rows [x, 1] about zero (affineProblem): the last of the p unknowns' rows is the bias. */
  affine?: true;
}

export function normalProblem(stats: SufficientStats, intercept: boolean): NormalProblem {
  expectRows(stats);
  const meanX = intercept ? stats.meanX() : new Float64Array(stats.p);
  const meanY = intercept ? stats.meanY() : new Float64Array(stats.q);
  // A cross-fit's training statistics lend their centred X^T X (no p x p copy, checked finite as
  // it was formed); otherwise copies about the means.
  const lent = intercept ? stats.lendCentred() : undefined;
  const m = lent ? { xx: lent.xx, xy: stats.xyAbout(meanX, meanY), sqY: stats.sqYAbout(meanY) } : stats.about(meanX, meanY);
  expectFinite(stats, [...(lent ? [] : [m.xx.data]), m.xy.data, m.sqY], lent?.finite ?? true);
  return { n: stats.count, p: stats.p, q: stats.q, meanX, meanY, Sxx: m.xx, Sxy: m.xy, ssY: m.sqY.map((v) => Math.max(v, 0)) };
}

function expectRows(stats: SufficientStats): void {
  if (stats.count < 1) throw new RangeError('stats: expected at least one row of paired embeddings, received 0');
  if (stats.q < 1) throw new RangeError('stats: expected statistics with target columns (q >= 1), received q = 0');
}

// The rows were checked finite as they were fed: a non-finite product is an overflow.
function expectFinite(stats: SufficientStats, products: Float64Array[], othersFinite = true): void {
  if (othersFinite && products.every(allFinite)) return;
  throw new RangeError(
    `stats: the cross-products overflowed (${stats.precision} products of finite inputs): ` +
      "rescale the inputs (e.g. divide each set by its largest absolute value)" + (stats.precision === 'float32' ? " or use precision 'float64'" : ''),
  );
}

/**
 * The uncentred problem of rows [x, 1] (p + 1 unknowns' rows: the weight over the bias), for ridge
 * toward a prior that has a bias: penalising the last row shrinks the bias with the weight.
 * From the moments about zero (SufficientStats.about(0): the shift identity, so the sums are as
 * accurate as the data); the matrix itself is uncentred, with an eigenvalue of about
 * n (1 + |meanX|^2) for the mean (docs/MAPS.md, "Precision").
 */
export function affineProblem(stats: SufficientStats): NormalProblem {
  expectRows(stats);
  const { xx, xy, sqY } = affineMoments(stats);
  expectFinite(stats, [xx.data, xy.data, sqY]);
  return { n: stats.count, p: xx.rows, q: stats.q, meanX: new Float64Array(xx.rows), meanY: new Float64Array(stats.q), Sxx: xx, Sxy: xy, ssY: sqY, affine: true };
}

/** Moments of rows [x, 1] and y about zero: [[X^T X, X^T 1], [1^T X, n]], [X^T Y; 1^T Y], sum y^2. */
export function affineMoments(stats: SufficientStats): { xx: Matrix<'float64'>; xy: Matrix<'float64'>; sqY: Float64Array } {
  const { p, q } = stats, a = p + 1;
  const m = stats.about(new Float64Array(p), new Float64Array(q));
  const xx = Matrix.zeros(a, a, 'float64'), xy = Matrix.zeros(a, q, 'float64');
  for (let i = 0; i < p; i++) {
    xx.data.set(m.xx.data.subarray(i * p, (i + 1) * p), i * a);
    xx.data[i * a + p] = xx.data[p * a + i] = m.sumX[i];
  }
  xx.data[p * a + p] = m.n;
  xy.data.set(m.xy.data);
  xy.data.set(m.sumY, p * q);
  return { xx, xy, sqY: m.sqY };
}

/** Machine epsilon of the products behind the statistics (float32 only in the opt-in fast mode). */
export function statsEpsilon(stats: SufficientStats): number {
  return stats.inputDType === 'float32' && stats.precision === 'float32' ? 1.2e-7 : 2.2e-16;
}

/** Eigenvalues at or below this are treated as zero: rcond relative to the largest. */
export function eigenTolerance(values: Float64Array, rcond: number): number {
  const max = values.length ? Math.max(0, values[values.length - 1]) : 0;
  return max * rcond;
}

export interface SymmetricSolve {
  M: Matrix<'float64'>;
  rank: number;
  rankDeficient: boolean;
  solver: 'cholesky' | 'eigen';
}

/**
 * Solves S M = B for symmetric positive semi-definite S. Cholesky first (fast); if it fails or
 * a pivot falls below rcond * max(diag S), the system is (numerically) rank-deficient and the
 * eigen pseudo-inverse gives the minimum-norm solution instead. `scratch`: S and B are the
 * caller's temporaries, factored and solved in place (no p x p and p x q copies, which cost
 * more than the solve where fresh memory faults slowly); `rebuild` forms S again for the
 * eigen fallback.
 */
export async function solveSymmetric(
  engine: Engine, S: Matrix<'float64'>, B: Matrix<'float64'>, rcond: number, scratch?: { rebuild: () => Matrix<'float64'> },
): Promise<SymmetricSolve> {
  const p = S.rows;
  let maxDiag = 0;
  for (let i = 0; i < p; i++) maxDiag = Math.max(maxDiag, S.data[i * p + i]);
  const inPlace = scratch !== undefined;
  try {
    const L = await engine.cholesky(S, { inPlace });
    let minPivot = Infinity;
    for (let i = 0; i < p; i++) minPivot = Math.min(minPivot, L.data[i * p + i] ** 2);
    if (minPivot > rcond * maxDiag) {
      return { M: await engine.cholSolve(L, B, { inPlace }), rank: p, rankDeficient: false, solver: 'cholesky' };
    }
  } catch (err) {
    if (!(err instanceof RangeError)) throw err; // not positive definite: fall through
  }
  if (scratch) S = scratch.rebuild();
  const eig = await engine.eigh(S);
  const tol = eigenTolerance(eig.values.data, rcond);
  const M = await eigenSolve(engine, eig, B, 0, tol);
  const rank = eig.values.data.filter((v) => v > tol).length;
  return { M, rank, rankDeficient: rank < p, solver: 'eigen' };
}

/** V diag(1/(w_i + shift)) V^T B, dropping eigenvalues w_i <= tol: ridge and pseudo-inverse. */
export async function eigenSolve(
  engine: Engine, eig: EighResult<'float64'>, B: Matrix<'float64'>, shift: number, tol: number,
): Promise<Matrix<'float64'>> {
  const Z = await engine.gemm(eig.vectors, B); // rows of `vectors` are eigenvectors: Z = V^T B
  scaleRows(Z, eig.values.data, shift, tol);
  return engine.gemm(eig.vectors, Z, { transA: true });
}

export function scaleRows(Z: Matrix<'float64'>, w: Float64Array, shift: number, tol: number): void {
  for (let i = 0; i < Z.rows; i++) {
    const f = w[i] > tol ? 1 / (w[i] + shift) : 0;
    const row = Z.row(i);
    for (let j = 0; j < row.length; j++) row[j] *= f;
  }
}

/** b = meanY - meanX^T M: the intercept that goes with a centred fit. */
export function interceptFor(M: Matrix<'float64'>, meanX: Float64Array, meanY: Float64Array): Float64Array {
  const b = Float64Array.from(meanY);
  for (let i = 0; i < M.rows; i++) {
    const mx = meanX[i];
    if (mx === 0) continue;
    const row = M.row(i);
    for (let j = 0; j < M.cols; j++) b[j] -= mx * row[j];
  }
  return b;
}

/**
 * Ridge toward a prior M0 is ridge on the residual Y - X M0 (M = M0 + the residual's map), so
 * the statistics about some means become those of the residual:
 *   X^T (Y - X M0) = xy - xx M0,  ||y_j - X m0_j||^2 = sqY_j - 2 (M0^T xy)_jj + (M0^T xx M0)_jj.
 */
export async function residualStats(
  engine: Engine, xx: Matrix<'float64'>, xy: Matrix<'float64'>, sqY: Float64Array, M0: Matrix<'float64'>,
): Promise<{ xy: Matrix<'float64'>; sqY: Float64Array }> {
  const XXM = await engine.gemm(xx, M0);
  const q = M0.cols;
  const out = xy.clone();
  const ss = Float64Array.from(sqY);
  for (let i = 0; i < M0.rows; i++) {
    for (let j = 0; j < q; j++) {
      const k = i * q + j, m = M0.data[k];
      out.data[k] -= XXM.data[k];
      ss[j] += m * (XXM.data[k] - 2 * xy.data[k]);
    }
  }
  return { xy: out, sqY: ss.map((v) => Math.max(v, 0)) };
}
