// Orthogonal Procrustes: the rotation-only baseline. Maximises tr(M^T X^T Y) over M with
// orthonormal rows or columns: with X^T Y = U S V^T (thin SVD), M = U V^T.
// p != q: M is p x q semi-orthogonal (orthonormal columns when p > q, rows when p < q). This is
// the same map as zero-padding the smaller space to max(p, q) dimensions, solving the square
// problem and dropping the padded coordinates. Optional isotropic scale s = tr(S) / tr(X^T X).
import { assertBoolean } from '../core/validate';
import type { SufficientStats } from '../engine/stats';
import { PairedEstimator, type EstimatorOptions, type Fitted, type PairedParams } from './estimator';
import { interceptFor, normalProblem } from './normal-equations';

export interface ProcrustesParams extends PairedParams {
  /** Also fit an isotropic scale (default false). */
  scale?: boolean;
}

export class ProcrustesEstimator extends PairedEstimator<ProcrustesParams> {
  readonly method = 'procrustes' as const;

  constructor(params: ProcrustesParams = {}, opts?: EstimatorOptions) {
    if (params.scale !== undefined) assertBoolean('scale', params.scale);
    super(params, opts);
  }

  protected async solve(stats: SufficientStats): Promise<Fitted> {
    const prob = normalProblem(stats, this.intercept);
    const { U, S, Vt } = await this.engine.svd(prob.Sxy);
    const M = await this.engine.gemm(U, Vt);
    let s = 1;
    if (this.params.scale) {
      let trace = 0;
      for (let i = 0; i < prob.p; i++) trace += prob.Sxx.data[i * prob.p + i];
      s = trace > 0 ? S.data.reduce((a, b) => a + b, 0) / trace : 1;
      for (let i = 0; i < M.data.length; i++) M.data[i] *= s;
    }
    return {
      weight: M,
      bias: interceptFor(M, prob.meanX, prob.meanY),
      info: { pairs: prob.n, scale: s, shape: prob.p === prob.q ? 'orthogonal' : 'semi-orthogonal' },
    };
  }
}
