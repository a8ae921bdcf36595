// Affine least squares: min ||X M + 1 b - Y||. Exact for well-posed data; when X^T X is
// (numerically) singular, e.g. fewer pairs than dimensions, the minimum-norm solution, flagged
// as rank-deficient instead of silently returning garbage.
import { assertNumber } from '../core/validate';
import type { SufficientStats } from '../engine/stats';
import { PairedEstimator, type EstimatorOptions, type Fitted, type PairedParams } from './estimator';
import { interceptFor, normalProblem, solveSymmetric, statsEpsilon } from './normal-equations';

export interface LstsqParams extends PairedParams {
  /** Eigenvalues of X^T X below rcond * the largest count as zero; default p * epsilon of the products. */
  rcond?: number;
}

export class LstsqEstimator extends PairedEstimator<LstsqParams> {
  readonly method = 'lstsq' as const;

  constructor(params: LstsqParams = {}, opts?: EstimatorOptions) {
    if (params.rcond !== undefined) assertNumber('rcond', params.rcond, 0, 1);
    super(params, opts);
  }

  protected async solve(stats: SufficientStats): Promise<Fitted> {
    const prob = normalProblem(stats, this.intercept);
    const rcond = this.params.rcond ?? prob.p * statsEpsilon(stats);
    // prob's matrices are this solve's own: factored and solved in place.
    const s = await solveSymmetric(this.engine, prob.Sxx, prob.Sxy, rcond, { rebuild: () => normalProblem(stats, this.intercept).Sxx });
    return {
      weight: s.M,
      bias: interceptFor(s.M, prob.meanX, prob.meanY),
      info: { pairs: prob.n, rank: s.rank, rankDeficient: s.rankDeficient, solver: s.solver },
    };
  }
}
