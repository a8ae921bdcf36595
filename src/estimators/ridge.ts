// Ridge (Tikhonov) regression: min ||X M + 1 b - Y||^2 + lambda ||M||^2.
// lambda fixed: one Cholesky of X^T X + lambda I. lambda 'gcv' (default): generalised
// cross-validation over a grid, the whole grid from ONE eigendecomposition X^T X = V W V^T:
// with Z = V^T X^T Y and z_i = sum_j Z_ij^2,
//   RSS(l) = RSS(0) + sum_i (z_i/w_i) (l/(w_i+l))^2,  RSS(0) = sum ssY - sum_i z_i/w_i,
//   df(l) = sum_i w_i/(w_i+l),  GCV(l) = n RSS(l) / (n - df(l))^2,
// so each grid point costs O(p). (Written this way, RSS stays accurate as l -> 0 when there are
// fewer pairs than dimensions and RSS(0) = 0; the expanded form cancels to noise there, and
// GCV then picked the smallest l and an interpolating, useless map.) lambda 'cv': k-fold cross-validation, one eigendecomposition
// per fold, each grid point O(p^2) (see foldErrors).
// prior M0: min ||X M + 1 b - Y||^2 + lambda ||M - M0||^2, i.e. (Sxx + lambda I) M = Sxy + lambda M0,
// solved as ridge on the residual Y - X M0 (residualStats), so GCV and 'cv' choose lambda toward
// the prior; the grid then reaches 1e6 x the mean eigenvalue, where the map is the prior.
import { Matrix } from '../core/matrix';
import { assertFinite, assertInteger, assertMatrix, assertNumber, describe, fail } from '../core/validate';
import type { EighResult } from '../engine/engine';
import { SufficientStats } from '../engine/stats';
import { PairedEstimator, type EstimatorOptions, type Fitted, type PairedParams } from './estimator';
import { interceptFor, normalProblem, residualStats, scaleRows, solveSymmetric, statsEpsilon, type NormalProblem } from './normal-equations';
import { foldOf, rowsByFold } from '../evaluate/split';

export interface RidgeParams extends PairedParams {
  /** A fixed lambda >= 0, or 'gcv' (default) / 'cv' to choose it from the grid. */
  lambda?: number | 'gcv' | 'cv';
  /** Candidate lambdas (absolute). Default: 25 values, 1e-6 .. 1e2 times the mean eigenvalue of X^T X. */
  grid?: number[];
  /** Folds for 'cv' (default 5). */
  folds?: number;
  /** Seed of the fold assignment for 'cv' (default 0). */
  seed?: number;
  /** Shrink toward this map instead of toward zero (fit-map.ts resolves files and 'weights'). */
  prior?: Prior;
}

export interface Prior {
  /** p x q. Only the weight: the bias is refitted from the means (b = meanY - meanX^T M). */
  weight: Matrix;
  /** Where it came from, recorded in the map file instead of its values. */
  provenance: Record<string, unknown>;
}

export interface ValidationPoint {
  lambda: number;
  /** GCV score, or mean squared validation error per target value for 'cv'. */
  score: number;
}

export class RidgeEstimator extends PairedEstimator<RidgeParams> {
  readonly method = 'ridge' as const;

  constructor(params: RidgeParams = {}, opts?: EstimatorOptions) {
    const l = params.lambda ?? 'gcv';
    if (typeof l === 'number') assertNumber('lambda', l, 0);
    else if (l !== 'gcv' && l !== 'cv') fail(TypeError, 'lambda', "a number >= 0, 'gcv' or 'cv'", l);
    if (params.grid !== undefined) {
      if (!Array.isArray(params.grid) || params.grid.length < 1) fail(TypeError, 'grid', 'a non-empty array of numbers > 0', params.grid);
      params.grid.forEach((g, i) => assertNumber(`grid[${i}]`, g, Number.MIN_VALUE));
    }
    if (params.folds !== undefined) assertInteger('folds', params.folds, 2, 1000);
    if (params.seed !== undefined) assertInteger('seed', params.seed, 0);
    for (const k of ['folds', 'seed'] as const) {
      if (params[k] !== undefined && l !== 'cv') throw new RangeError(`${k}: only with lambda 'cv' (the folds that choose lambda), received lambda ${describe(l)}`);
    }
    if (params.prior !== undefined) {
      if (params.prior === null || typeof params.prior !== 'object') fail(TypeError, 'prior', '{ weight: Matrix, provenance }', params.prior);
      assertMatrix('prior.weight', params.prior.weight);
      assertFinite('prior.weight', params.prior.weight);
    }
    super({ ...params, lambda: l }, opts);
  }

  protected override recordedParams(): Record<string, unknown> {
    const { prior, ...rest } = this.params;
    return prior ? { ...rest, prior: prior.provenance } : rest;
  }

  /** The problem on the residual Y - X M0 (unchanged without a prior). */
  private async towardPrior(prob: NormalProblem): Promise<NormalProblem> {
    const M0 = this.priorFor(prob.p, prob.q);
    if (!M0) return prob;
    const r = await residualStats(this.engine, prob.Sxx, prob.Sxy, prob.ssY, M0);
    return { ...prob, Sxy: r.xy, ssY: r.sqY };
  }

  private priorFor(p: number, q: number): Matrix<'float64'> | undefined {
    const w = this.params.prior?.weight;
    if (!w) return undefined;
    if (w.rows !== p || w.cols !== q) {
      throw new RangeError(`prior: expected a ${p}x${q} map (source dim x target dim of the pairs), received a ${w.rows}x${w.cols} map`);
    }
    return w.astype('float64');
  }

  /** M0 + the residual's map, and the bias that goes with it. */
  private async withPrior(D: Matrix<'float64'>, prob: NormalProblem): Promise<{ weight: Matrix<'float64'>; bias: Float64Array }> {
    const M0 = this.priorFor(prob.p, prob.q);
    if (M0) for (let i = 0; i < D.data.length; i++) D.data[i] += M0.data[i];
    return { weight: D, bias: interceptFor(D, prob.meanX, prob.meanY) };
  }

  private gridFor(prob: NormalProblem): number[] {
    return this.params.grid ?? defaultGrid(prob, this.params.prior ? 6 : 2);
  }

  /** k-fold CV needs the rows themselves: folds are assigned here (seeded), then fitted from their statistics. */
  override async fit(X: Matrix, Y: Matrix): Promise<this> {
    if (this.params.lambda !== 'cv') return super.fit(X, Y);
    if (X.rows !== Y.rows) throw new RangeError(`Y: expected ${X.rows} rows to pair with X's rows, received ${Y.rows}`);
    const k = this.params.folds ?? 5;
    if (X.rows < k) throw new RangeError(`X: expected at least folds = ${k} rows for cross-validation, received ${X.rows}`);
    const Yx = Y.dtype === X.dtype ? Y : Y.astype(X.dtype);
    const folds: SufficientStats[] = [];
    const byFold = rowsByFold(foldOf(X.rows, k, this.params.seed ?? 0), k);
    const workspace = SufficientStats.workspace(X.cols, Y.cols, byFold[0].length);
    for (const rows of byFold) {
      const stats = new SufficientStats(X.cols, Y.cols, { engine: this.engine, precision: this.params.precision });
      folds.push(await stats.update(X, Yx, { rows, workspace }));
    }
    return this.fitFolds(folds);
  }

  override async fitStats(stats: SufficientStats): Promise<this> {
    if (this.params.lambda === 'cv') {
      throw new RangeError("lambda: 'cv' needs fold statistics: use fit(X, Y) or fitFolds(folds), or lambda 'gcv' with fitStats");
    }
    return super.fitStats(stats);
  }

  /** Cross-validated fit from per-fold statistics (e.g. shards): each fold validates the others' fit. */
  async fitFolds(folds: SufficientStats[]): Promise<this> {
    if (!Array.isArray(folds) || folds.length < 2) fail(TypeError, 'folds', 'an array of at least 2 SufficientStats', folds);
    const total = folds[0].clone();
    for (let f = 1; f < folds.length; f++) total.merge(folds[f]);
    const totalProb = await this.towardPrior(normalProblem(total, this.intercept));
    const grid = this.gridFor(totalProb);
    const err = new Float64Array(grid.length);
    for (const fold of folds) {
      const train = total.clone().subtract(fold);
      const e = await this.foldErrors(await this.towardPrior(normalProblem(train, this.intercept)), fold, grid);
      for (let g = 0; g < grid.length; g++) err[g] += e[g];
    }
    const values = total.count * total.q;
    const curve = grid.map((lambda, g) => ({ lambda, score: err[g] / values }));
    return this.setFitted(await this.fixed(totalProb, best(curve), { selection: 'cv', folds: folds.length, validationCurve: curve }));
  }

  protected async solve(stats: SufficientStats): Promise<Fitted> {
    const prob = await this.towardPrior(normalProblem(stats, this.intercept));
    if (typeof this.params.lambda === 'number') return this.fixed(prob, this.params.lambda, { selection: 'fixed' });
    const eig = await this.engine.eigh(prob.Sxx);
    const Z = await this.engine.gemm(eig.vectors, prob.Sxy); // V^T X^T Y
    const w = clampEigen(eig);
    const z = rowSumsOfSquares(Z);
    // Directions X^T X does not resolve (rounding-level eigenvalues) carry no signal: left out.
    const tol = Math.max(...w) * prob.p * statsEpsilon(stats);
    let rss0 = prob.ssY.reduce((a, b) => a + b, 0);
    for (let i = 0; i < w.length; i++) if (w[i] > tol) rss0 -= z[i] / w[i];
    rss0 = Math.max(rss0, 0);
    const dfBase = this.intercept ? 1 : 0;
    const grid = this.gridFor(prob);
    const curve = grid.map((lambda) => {
      let rss = rss0, df = dfBase;
      for (let i = 0; i < w.length; i++) {
        if (w[i] <= tol) continue;
        const shrink = lambda / (w[i] + lambda);
        rss += (z[i] / w[i]) * shrink * shrink;
        df += w[i] / (w[i] + lambda);
      }
      // Less than one residual degree of freedom left means the fit (nearly) interpolates the
      // pairs: GCV's 0/0 there says nothing, so such lambdas are not candidates.
      const dof = prob.n - df;
      return { lambda, score: dof >= 1 ? (prob.n * rss) / (dof * dof) : Infinity };
    });
    const lambda = best(curve);
    scaleRows(Z, w, lambda, tol);
    const D = await this.engine.gemm(eig.vectors, Z, { transA: true });
    return {
      ...(await this.withPrior(D, prob)),
      info: { pairs: prob.n, lambda, selection: 'gcv', validationCurve: curve, solver: 'eigen' },
    };
  }

  private async fixed(prob: NormalProblem, lambda: number, info: Record<string, unknown>): Promise<Fitted> {
    const S = prob.Sxx.clone();
    for (let i = 0; i < prob.p; i++) S.data[i * prob.p + i] += lambda;
    // Cholesky; with lambda = 0 on singular data, the pseudo-inverse (minimum-norm) instead.
    const { M, solver } = await solveSymmetric(this.engine, S, prob.Sxy, prob.p * 2.2e-16);
    return { ...(await this.withPrior(M, prob)), info: { pairs: prob.n, lambda, solver, ...info } };
  }

  // Squared validation error of every grid lambda on one fold, the model fitted on `train`.
  // Residuals of the fold's rows, centred with the TRAINING means mx, my:
  //   err(l) = c - 2 sum_i d_i u_i + d^T C d,  d_i = 1/(w_i + l),
  // with A = Xf~^T Xf~, B = Xf~^T Yf~, c = tr(Yf~^T Yf~), u_i = sum_j Z_ij (V^T B)_ij and
  // C = (V^T A V) o (Z Z^T), all built once per fold.
  private async foldErrors(train: NormalProblem, fold: SufficientStats, grid: number[]): Promise<Float64Array> {
    const { p, q, meanX: mx, meanY: my } = train;
    const f = fold.about(mx, my);
    const M0 = this.priorFor(p, q);
    const A = f.xx, { xy: B, sqY } = M0 ? await residualStats(this.engine, f.xx, f.xy, f.sqY, M0) : { xy: f.xy, sqY: f.sqY };
    const c = sqY.reduce((a, b) => a + b, 0);
    const eig = await this.engine.eigh(train.Sxx);
    const w = clampEigen(eig);
    const V = eig.vectors;
    const Z = await this.engine.gemm(V, train.Sxy);
    const VB = await this.engine.gemm(V, B);
    const VAVt = await this.engine.gemm(await this.engine.gemm(V, A), V, { transB: true });
    const ZZt = await this.engine.gemm(Z, Z, { transB: true });
    const u = new Float64Array(p);
    for (let i = 0; i < p; i++) for (let j = 0; j < q; j++) u[i] += Z.data[i * q + j] * VB.data[i * q + j];
    const C = VAVt.data.map((v, i) => v * ZZt.data[i]);
    const d = new Float64Array(p);
    return Float64Array.from(grid, (lambda) => {
      for (let i = 0; i < p; i++) d[i] = 1 / (w[i] + lambda);
      let e = c;
      for (let i = 0; i < p; i++) {
        e -= 2 * d[i] * u[i];
        let s = 0;
        for (let k = 0; k < p; k++) s += C[i * p + k] * d[k];
        e += d[i] * s;
      }
      return e;
    });
  }
}

/** Eigenvalues of a PSD matrix, rounding noise below zero clamped to zero. */
function clampEigen(eig: EighResult<'float64'>): Float64Array {
  return eig.values.data.map((v) => Math.max(v, 0));
}

function rowSumsOfSquares(Z: Matrix<'float64'>): Float64Array {
  const z = new Float64Array(Z.rows);
  for (let i = 0; i < Z.rows; i++) for (const v of Z.row(i)) z[i] += v * v;
  return z;
}

/** 25 values from 1e-6 to 10^top x the mean eigenvalue of X^T X. */
function defaultGrid(prob: NormalProblem, top: number): number[] {
  let trace = 0;
  for (let i = 0; i < prob.p; i++) trace += prob.Sxx.data[i * prob.p + i];
  const mean = Math.max(trace / prob.p, Number.MIN_VALUE);
  return Array.from({ length: 25 }, (_, i) => mean * 10 ** (-6 + ((top + 6) * i) / 24));
}

function best(curve: { lambda: number; score: number }[]): number {
  return curve.reduce((a, b) => (b.score < a.score ? b : a)).lambda;
}
