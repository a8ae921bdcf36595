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
// the prior; the grid then reaches 1e6 x the mean eigenvalue, and ends with lambda = Infinity, the
// prior itself ("prior kept"), so a map chosen by any rule is never worse than its prior by that
// rule's own score.
// A prior with a bias b0 (the head-only map's, a map file's): the bias is shrunk with the weight,
//   min ||X M + 1 b - Y||^2 + lambda (||M - M0||^2 + ||b - b0||^2),
// as ridge without intercept on rows [x, 1] toward [M0; b0] (affineProblem), so every rule, the
// folds and the grid work unchanged and lambda = Infinity is the prior map itself, bias included.
// Refitting the bias from the pairs' means instead carries the fitting pool's shift into the map
// (measured: 1.9-2.9 points of top-1 lost by the prior kept on full-resolution tests of a 64-px
// pool, docs/MAPS.md). Why not the equivalent centred form (S_xx + lambda I + g m m^T, g =
// n lambda / (n + lambda), m = meanX): g changes with lambda, so GCV's and the folds' whole grid
// from one eigendecomposition would need a rank-one update per candidate in every closed form; the
// price of [x, 1] is an uncentred matrix (its conditioning: docs/MAPS.md, "Precision"). A prior
// without a bias (a bare weight) keeps the centred problem, the bias refitted from the means.
// lambda 'cv-logits': k-fold CV scored where the task is, in the target head's (class-centred)
// logits: ||(X M - Y) W^T||^2 = tr(R^T R G) with the metric G = W^T W, from the same fold
// statistics (see foldErrors). Embedding error weighs every direction of Y alike; the head reads
// few of them, so GCV on embeddings chose too small a lambda for top-1 (bench/RESULTS.md).
// lambda 'cv-top1': k-fold CV on the fraction of held-out rows whose top-1 class through the
// target head agrees with the target's own top-1 on the same image (no labels needed). It needs
// the held-out rows (fit(X, Y), or fitFolds with each fold's sample of rows): with V, w the
// training eigenvectors and Z = V^T X^T Y, the rows' logits at every lambda are
// L0 + (Xf~ V) diag(d) (Z W^T), one gemm per candidate. Chosen: the largest lambda whose rate
// is within one standard error of the best (the one-standard-error rule of Hastie et al.). With
// groups (e.g. the views of one image) the standard error is counted over groups, not rows
// (cluster-robust: var = sum_g (d_g - rate n_g)^2 / n^2, d_g the group's disagreements at the best
// lambda): views of one photo mostly agree, so counting them as independent rows understates it.
// Without groups every row is its own group, and this is the binomial sqrt(rate (1 - rate) / n).
import { Matrix, type FloatArray } from '../core/matrix';
import { assertFinite, assertInteger, assertMatrix, assertNumber, describe, fail } from '../core/validate';
import type { EighResult } from '../engine/engine';
import { SufficientStats } from '../engine/stats';
import { PairedEstimator, type EstimatorOptions, type Fitted, type PairedParams } from './estimator';
import { centred, checkHead, type Head } from './weights';
import { affineMoments, affineProblem, interceptFor, normalProblem, residualStats, scaleRows, solveSymmetric, statsEpsilon, type NormalProblem } from './normal-equations';
import { foldOf, groupsOf, rowsByFold } from '../evaluate/split';
import { logits, topIndices } from '../evaluate/classification';

/**
 * How lambda is chosen from the grid: GCV or k-fold CV on the embeddings; k-fold CV on the target
 * head's logits (squared error) or on its top-1 (agreement with the target's own top-1 class).
 */
export const LAMBDA_RULES = ['gcv', 'cv', 'cv-logits', 'cv-top1'] as const;
export type LambdaRule = (typeof LAMBDA_RULES)[number];

/**
 * The lambda a ridge fit uses: the one given, else 'cv-top1' when the target head is known (it
 * met issue 17's numbers on the demo where 'cv-logits' and 'gcv' did not: bench/RESULTS.md), else 'gcv'.
 */
export function lambdaRule(params: { lambda?: unknown; targetHead?: unknown }): unknown {
  return params.lambda ?? (params.targetHead !== undefined ? 'cv-top1' : 'gcv');
}

/** Rules that cross-validate on folds, and those scored through the target head. */
export const crossValidates = (rule: unknown): boolean => rule === 'cv' || scoresHead(rule);
export const scoresHead = (rule: unknown): boolean => rule === 'cv-logits' || rule === 'cv-top1';

export interface RidgeParams extends PairedParams {
  /**
   * A fixed lambda >= 0 (Infinity with a prior: the prior itself), or a rule choosing it from the
   * grid (LAMBDA_RULES; default lambdaRule's).
   */
  lambda?: number | LambdaRule;
  /** Candidate lambdas (absolute). Default: 25 values, 1e-6 .. 1e2 times the mean eigenvalue of X^T X. */
  grid?: number[];
  /** Folds for the k-fold rules with fit(X, Y) (default 5). */
  folds?: number;
  /** Seed of the fold assignment for the k-fold rules with fit(X, Y) (default 0). */
  seed?: number;
  /** Shrink toward this map instead of toward zero (fit-map.ts resolves files and 'weights'). */
  prior?: Prior;
  /** The target network's classifier head: the metric of 'cv-logits' and 'cv-top1'. */
  targetHead?: Head;
}

export interface Prior {
  /** p x q. */
  weight: Matrix;
  /**
   * q values: the bias is shrunk toward it with the weight (lambda = Infinity: the prior map, bias
   * included). Absent: the bias is refitted from the means (b = meanY - meanX^T M).
   */
  bias?: FloatArray;
  /** Where it came from, recorded in the map file instead of its values. */
  provenance: Record<string, unknown>;
}

export interface ValidationPoint {
  lambda: number;
  /**
   * GCV score; for 'cv', the mean squared validation error per target value; for 'cv-logits',
   * the mean squared validation error per logit MINUS the prior's (< 0: better than the prior);
   * for 'cv-top1', the fraction of held-out rows whose top-1 differs from the target's own.
   */
  score: number;
}

export class RidgeEstimator extends PairedEstimator<RidgeParams> {
  readonly method = 'ridge' as const;

  constructor(params: RidgeParams = {}, opts?: EstimatorOptions) {
    const l = lambdaRule(params);
    if (typeof l === 'number') {
      if (l === Infinity && !params.prior) throw new RangeError('lambda: Infinity only toward a prior (it keeps the prior map); without one give a finite number >= 0, received Infinity');
      if (l !== Infinity) assertNumber('lambda', l, 0);
    } else if (l === 'task') {
      // 'task' needs the task (identities, a metric): the face experiment resolves it to a number first.
      throw new TypeError("lambda: 'task' is chosen by an experiment on its own metric (embmap experiment faces --method ridge --lambda task); here give a number or one of " + LAMBDA_RULES.join(', '));
    } else if (!(LAMBDA_RULES as readonly unknown[]).includes(l)) {
      fail(TypeError, 'lambda', `a number >= 0 or one of ${LAMBDA_RULES.join(', ')}`, l);
    }
    if (params.targetHead !== undefined) checkHead('targetHead', params.targetHead);
    else if (scoresHead(l)) throw new TypeError(`targetHead: required by lambda '${l}' (the metric is its logits), received undefined`);
    if (params.grid !== undefined) {
      if (!Array.isArray(params.grid) || params.grid.length < 1) fail(TypeError, 'grid', 'a non-empty array of numbers > 0', params.grid);
      params.grid.forEach((g, i) => assertNumber(`grid[${i}]`, g, Number.MIN_VALUE));
    }
    if (params.folds !== undefined) assertInteger('folds', params.folds, 2, 1000);
    if (params.seed !== undefined) assertInteger('seed', params.seed, 0);
    for (const k of ['folds', 'seed'] as const) {
      if (params[k] !== undefined && !crossValidates(l)) throw new RangeError(`${k}: only with a k-fold lambda rule ('cv', 'cv-logits', 'cv-top1': the folds that choose lambda), received lambda ${describe(l)}`);
    }
    if (params.prior !== undefined) {
      if (params.prior === null || typeof params.prior !== 'object') fail(TypeError, 'prior', '{ weight: Matrix, bias?, provenance }', params.prior);
      const { weight, bias } = params.prior;
      assertMatrix('prior.weight', weight);
      assertFinite('prior.weight', weight);
      if (bias !== undefined) {
        if (!(bias instanceof Float32Array || bias instanceof Float64Array)) fail(TypeError, 'prior.bias', `a Float32Array or Float64Array of ${weight.cols} values (one per target dimension)`, bias);
        if (bias.length !== weight.cols) throw new RangeError(`prior.bias: expected ${weight.cols} values (one per target dimension, as prior.weight has columns), received ${bias.length}`);
        assertFinite('prior.bias', new Matrix(bias, 1, bias.length));
        if (params.intercept === false) throw new RangeError('intercept: false leaves no bias to shrink toward prior.bias: give a prior without a bias, or the intercept (default true), received intercept false');
      }
    }
    super({ ...params, lambda: l as number | LambdaRule }, opts);
  }

  /** Whether lambda is chosen by k-fold cross-validation (fit from rows or fold statistics, not one total). */
  get crossValidates(): boolean {
    return crossValidates(this.params.lambda);
  }

  protected override recordedParams(): Record<string, unknown> {
    const { prior, targetHead, ...rest } = this.params;
    const bias = prior?.bias ? "shrunk toward the prior's bias with the weight" : "refitted from the pairs' means (the prior has none)";
    return { ...rest, ...(prior ? { prior: { ...prior.provenance, bias } } : {}), ...(targetHead ? { targetHead: { classes: targetHead.W.rows } } : {}) };
  }

  /** The normal equations of the statistics: of rows [x, 1] toward a prior with a bias (see the header), else centred. */
  private problem(stats: SufficientStats): NormalProblem {
    return this.params.prior?.bias ? affineProblem(stats) : normalProblem(stats, this.intercept);
  }

  /** The problem on the residual Y - X M0 (unchanged without a prior). */
  private async towardPrior(prob: NormalProblem): Promise<NormalProblem> {
    const M0 = this.priorFor(prob);
    if (!M0) return prob;
    const r = await residualStats(this.engine, prob.Sxx, prob.Sxy, prob.ssY, M0);
    return { ...prob, Sxy: r.xy, ssY: r.sqY };
  }

  /** The prior as the problem's unknowns: M0, or [M0; b0] (weight over bias) for rows [x, 1]. */
  private priorFor(prob: Pick<NormalProblem, 'p' | 'q' | 'affine'>): Matrix<'float64'> | undefined {
    const prior = this.params.prior;
    if (!prior) return undefined;
    const w = prior.weight, p = prob.affine ? prob.p - 1 : prob.p, q = prob.q;
    if (w.rows !== p || w.cols !== q) {
      throw new RangeError(`prior: expected a ${p}x${q} map (source dim x target dim of the pairs), received a ${w.rows}x${w.cols} map`);
    }
    if (!prob.affine) return w.astype('float64');
    const out = Matrix.zeros(p + 1, q, 'float64');
    out.data.set(w.data);
    out.data.set(prior.bias!, p * q);
    return out;
  }

  /** M0 + the residual's map, and the bias: the last row for rows [x, 1], else the one that goes with the means. */
  private async withPrior(D: Matrix<'float64'>, prob: NormalProblem): Promise<{ weight: Matrix<'float64'>; bias: Float64Array }> {
    const M0 = this.priorFor(prob);
    if (M0) for (let i = 0; i < D.data.length; i++) D.data[i] += M0.data[i];
    if (!prob.affine) return { weight: D, bias: interceptFor(D, prob.meanX, prob.meanY) };
    const p = prob.p - 1, q = prob.q;
    return { weight: new Matrix<'float64'>(D.data.slice(0, p * q), p, q), bias: D.data.slice(p * q) };
  }

  /** The candidates: toward a prior, the last is Infinity (the prior kept). */
  private gridFor(prob: NormalProblem): number[] {
    const grid = this.params.grid ?? defaultGrid(prob, this.params.prior ? 6 : 2);
    return this.params.prior ? [...grid, Infinity] : grid;
  }

  /** G = W^T W of the target head centred over classes (softmax ignores a shift common to all logits); 'cv-logits' only. */
  private async logitMetric(): Promise<Matrix<'float64'> | undefined> {
    if (this.params.lambda !== 'cv-logits') return undefined;
    const W = centred(this.params.targetHead!.W, true);
    return this.engine.gemm(W, W, { transA: true });
  }

  /**
   * k-fold CV needs the rows themselves: folds are assigned here (seeded; whole groups with
   * `opts.groups`, one id per row, e.g. the views of an image), then fitted from their statistics.
   */
  override async fit(X: Matrix, Y: Matrix, opts: { groups?: ArrayLike<number | string> } = {}): Promise<this> {
    if (!this.crossValidates) {
      if (opts.groups !== undefined) throw new RangeError(`groups: only with a k-fold lambda rule ('cv', 'cv-logits', 'cv-top1': the folds they group), received lambda ${describe(this.params.lambda)}`);
      return super.fit(X, Y);
    }
    if (X.rows !== Y.rows) throw new RangeError(`Y: expected ${X.rows} rows to pair with X's rows, received ${Y.rows}`);
    const k = this.params.folds ?? 5;
    const groups = opts.groups === undefined ? undefined : groupsOf('groups', opts.groups, X.rows);
    if ((groups?.count ?? X.rows) < k) {
      throw new RangeError(groups ? `groups: expected at least folds = ${k} groups for cross-validation, received ${groups.count}` : `X: expected at least folds = ${k} rows for cross-validation, received ${X.rows}`);
    }
    const Yx = Y.dtype === X.dtype ? Y : Y.astype(X.dtype);
    const folds: SufficientStats[] = [], samples: FoldRows[] = [];
    const byFold = rowsByFold(foldOf(X.rows, k, this.params.seed ?? 0, groups), k);
    const workspace = SufficientStats.workspace(X.cols, Y.cols, Math.max(...byFold.map((r) => r.length)));
    // 'cv-top1' scores each fold's held-out rows; the other rules need only the statistics.
    const keepRows = this.params.lambda === 'cv-top1';
    for (const rows of byFold) {
      const stats = new SufficientStats(X.cols, Y.cols, { engine: this.engine, precision: this.params.precision });
      folds.push(await stats.update(X, Yx, { rows, workspace }));
      if (keepRows) samples.push({ X: X.takeRows(rows), Y: Yx.takeRows(rows), ...(groups ? { groups: Array.from(rows, (r) => groups.group[r]) } : {}) });
    }
    return this.fitFolds(folds, samples);
  }

  override async fitStats(stats: SufficientStats): Promise<this> {
    if (this.crossValidates) {
      throw new RangeError(`lambda: '${this.params.lambda}' needs fold statistics: use fit(X, Y) or fitFolds(folds), or lambda 'gcv' with fitStats`);
    }
    return super.fitStats(stats);
  }

  /**
   * Cross-validated fit from per-fold statistics (e.g. shards): each fold validates the others' fit.
   * 'cv-top1' also needs rows of each fold (`samples[f]`: all of them or a sample).
   */
  async fitFolds(folds: SufficientStats[], samples?: FoldRows[]): Promise<this> {
    if (!Array.isArray(folds) || folds.length < 2) fail(TypeError, 'folds', 'an array of at least 2 SufficientStats', folds);
    const top1 = this.params.lambda === 'cv-top1';
    if (top1 && !(Array.isArray(samples) && samples.length === folds.length && samples.every((s) => s.X.rows > 0))) {
      fail(TypeError, 'samples', `rows of each of the ${folds.length} folds (lambda 'cv-top1' scores held-out rows)`, samples);
    }
    samples?.forEach((s, f) => {
      if (s.groups !== undefined && s.groups.length !== s.X.rows) throw new RangeError(`samples[${f}].groups: expected ${s.X.rows} group ids (one per row), received ${s.groups.length}`);
    });
    const total = SufficientStats.sum(folds);
    const totalProb = await this.towardPrior(this.problem(total));
    const grid = this.gridFor(totalProb);
    const G = await this.logitMetric();
    const err = new Float64Array(grid.length);
    const missed: Uint8Array[] = []; // 'cv-top1': per fold, grid x rows, 1 where a row's top-1 disagrees
    for (const [f, fold] of folds.entries()) {
      const train = await this.towardPrior(this.problem(SufficientStats.difference(total, fold, undefined, { lend: true })));
      if (top1) missed.push(await this.foldDisagreements(train, samples![f], grid));
      const e = top1 ? rowSums(missed[f], grid.length) : await this.foldErrors(train, fold, grid, G);
      for (let g = 0; g < grid.length; g++) err[g] += e[g];
    }
    const values = top1 ? samples!.reduce((a, s) => a + s.X.rows, 0) : total.count * (G ? this.params.targetHead!.W.rows : total.q);
    const curve = grid.map((lambda, g) => ({ lambda, score: err[g] / values }));
    const info = { selection: this.params.lambda, folds: folds.length, validationCurve: curve };
    if (!top1) return this.setFitted(await this.fixed(totalProb, best(curve), info));
    // Top-1 over a few hundred rows is noisy: the largest lambda within one standard error of the
    // best rate (the one-standard-error rule), so the prior stays unless the data clearly beat it.
    const low = Math.min(...curve.map((c) => c.score)), bestAt = curve.findIndex((c) => c.score === low);
    const { se, groups } = standardError(missed, samples!, grid.length, bestAt, low, values);
    const lambda = curve.filter((c) => c.score <= low + se).reduce((a, b) => (b.lambda > a.lambda ? b : a)).lambda;
    return this.setFitted(await this.fixed(totalProb, lambda, { ...info, standardError: se, ...(groups ? { standardErrorGroups: groups } : {}) }));
  }

  protected async solve(stats: SufficientStats): Promise<Fitted> {
    const prob = await this.towardPrior(this.problem(stats));
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
    // The centred problem's intercept is one unpenalised degree of freedom; rows [x, 1] count the bias in w.
    const dfBase = this.intercept && !prob.affine ? 1 : 0;
    const grid = this.gridFor(prob);
    const curve = grid.map((lambda) => {
      let rss = rss0, df = dfBase;
      for (let i = 0; i < w.length; i++) {
        if (w[i] <= tol) continue;
        const shrink = lambda === Infinity ? 1 : lambda / (w[i] + lambda);
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
      info: { pairs: prob.n, lambda, ...priorKept(lambda), selection: 'gcv', validationCurve: curve, solver: 'eigen' },
    };
  }

  private async fixed(prob: NormalProblem, lambda: number, info: Record<string, unknown>): Promise<Fitted> {
    if (lambda === Infinity) {
      return { ...(await this.withPrior(Matrix.zeros(prob.p, prob.q, 'float64'), prob)), info: { pairs: prob.n, lambda, ...priorKept(lambda), ...info } };
    }
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
  // C = (V^T A V) o (Z Z^T), all built once per fold. In a metric G (errors tr(R^T R G)), Z G
  // replaces Z in u and Z G Z^T replaces Z Z^T; c = tr(G Yf~^T Yf~) would need Y^T Y, and as
  // the error at l = Infinity (d = 0) it is common to every candidate: left out, so the scores
  // are relative to the prior's.
  private async foldErrors(train: NormalProblem, fold: SufficientStats, grid: number[], G?: Matrix<'float64'>): Promise<Float64Array> {
    const { p, q, meanX: mx, meanY: my } = train;
    const f = train.affine ? affineMoments(fold) : fold.about(mx, my);
    const M0 = this.priorFor(train);
    const A = f.xx, { xy: B, sqY } = M0 ? await residualStats(this.engine, f.xx, f.xy, f.sqY, M0) : { xy: f.xy, sqY: f.sqY };
    const c = G ? 0 : sqY.reduce((a, b) => a + b, 0);
    const eig = await this.engine.eigh(train.Sxx);
    const w = clampEigen(eig);
    const V = eig.vectors;
    const Z = await this.engine.gemm(V, train.Sxy);
    const ZG = G ? await this.engine.gemm(Z, G) : Z;
    const VB = await this.engine.gemm(V, B);
    const VAVt = await this.engine.gemm(await this.engine.gemm(V, A), V, { transB: true });
    const ZZt = await this.engine.gemm(ZG, Z, { transB: true });
    const u = new Float64Array(p);
    for (let i = 0; i < p; i++) for (let j = 0; j < q; j++) u[i] += ZG.data[i * q + j] * VB.data[i * q + j];
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

  // Held-out rows of one fold whose top-1 through the target head differs from the target's own
  // top-1 on the same image, for every grid lambda (grid x rows, 1: differs), the model fitted on
  // `train` (see the header).
  private async foldDisagreements(train: NormalProblem, rows: FoldRows, grid: number[]): Promise<Uint8Array> {
    const head = this.params.targetHead!;
    const n = rows.X.rows, p = train.p;
    const own = topIndices(await logits(rows.Y.astype('float64'), head, this.engine), 1);
    // The rows centred with the training means, or [x, 1] for the affine problem (whose means are zero).
    const X = Matrix.zeros(n, p, 'float64');
    for (let i = 0; i < n; i++) {
      const x = rows.X.row(i);
      for (let j = 0; j < x.length; j++) X.data[i * p + j] = x[j] - train.meanX[j];
      if (train.affine) X.data[i * p + p - 1] = 1;
    }
    // lambda = Infinity: the prior (or zero) plus the training mean of the target.
    const M0 = this.priorFor(train) ?? Matrix.zeros(train.p, train.q, 'float64');
    const L0 = await logits(await this.engine.gemm(X, M0, { bias: train.meanY }), head, this.engine);
    const eig = await this.engine.eigh(train.Sxx);
    const w = clampEigen(eig);
    const P = await this.engine.gemm(X, eig.vectors, { transB: true }); // Xf~ V
    const Q = await this.engine.gemm(await this.engine.gemm(eig.vectors, train.Sxy), head.W.astype('float64'), { transB: true }); // Z W^T
    const out = new Uint8Array(grid.length * n);
    for (const [g, lambda] of grid.entries()) {
      const Pd = P.clone();
      for (let i = 0; i < n; i++) for (let k = 0; k < train.p; k++) Pd.data[i * train.p + k] /= w[k] + lambda;
      const L = await this.engine.gemm(Pd, Q);
      for (let i = 0; i < L.data.length; i++) L.data[i] += L0.data[i];
      const top = topIndices(L, 1);
      for (let i = 0; i < n; i++) if (top[i] !== own[i]) out[g * n + i] = 1;
    }
    return out;
  }
}

/** Rows of one fold (all of them or a sample), for 'cv-top1'. */
export interface FoldRows {
  X: Matrix;
  Y: Matrix;
  /** Each row's group (folds hold whole groups): the standard error is counted over groups. */
  groups?: ArrayLike<number>;
}

/** Per grid point, the sum of a grid x rows table's row. */
function rowSums(t: Uint8Array, gridLength: number): Float64Array {
  const n = t.length / gridLength, out = new Float64Array(gridLength);
  for (let g = 0; g < gridLength; g++) for (let i = 0; i < n; i++) out[g] += t[g * n + i];
  return out;
}

/**
 * The standard error of the disagreement rate `rate` at grid point g over all folds' rows (see the
 * header): over groups when the rows have them (each group's rows are in one fold), else rows.
 */
function standardError(missed: Uint8Array[], samples: FoldRows[], gridLength: number, g: number, rate: number, n: number): { se: number; groups?: number } {
  const byGroup = new Map<number, [number, number]>(); // group -> [disagreements, rows]
  let sum = 0, grouped = true;
  for (const [f, t] of missed.entries()) {
    const rows = t.length / gridLength, ids = samples[f].groups;
    grouped &&= ids !== undefined;
    for (let i = 0; i < rows; i++) {
      const z = t[g * rows + i];
      if (!ids) {
        sum += (z - rate) ** 2;
        continue;
      }
      const c = byGroup.get(ids[i]) ?? [0, 0];
      c[0] += z;
      c[1] += 1;
      byGroup.set(ids[i], c);
    }
  }
  for (const [d, m] of byGroup.values()) sum += (d - rate * m) ** 2;
  return { se: Math.sqrt(sum) / n, ...(grouped ? { groups: byGroup.size } : {}) };
}

/** lambda = Infinity toward a prior: the fit is the prior (its weight; its bias, or without one the bias from the means), said so in the map file. */
function priorKept(lambda: number): { priorKept?: true } {
  return lambda === Infinity ? { priorKept: true } : {};
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

/**
 * 25 values from 1e-6 to 10^top x the mean eigenvalue of X^T X, centred when there is an intercept:
 * for rows [x, 1], sum_i (xx_ii - (1^T x_i)^2 / n) over the p weight rows, so that the grid is the
 * one the centred problem gets whether or not the prior has a bias.
 */
function defaultGrid(prob: NormalProblem, top: number): number[] {
  const { Sxx: S, p: a } = prob, p = prob.affine ? a - 1 : a;
  let trace = 0;
  for (let i = 0; i < p; i++) trace += S.data[i * a + i] - (prob.affine ? S.data[i * a + p] ** 2 / prob.n : 0);
  const mean = Math.max(trace / p, Number.MIN_VALUE);
  return Array.from({ length: 25 }, (_, i) => mean * 10 ** (-6 + ((top + 6) * i) / 24));
}

/** The lambda of the lowest score; of equal scores the largest lambda (the nearest the prior). */
function best(curve: { lambda: number; score: number }[]): number {
  return curve.reduceRight((a, b) => (b.score < a.score ? b : a)).lambda;
}
