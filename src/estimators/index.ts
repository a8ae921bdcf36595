// The estimators by name, for the CLI and for callers choosing a method at run time.
import { fail } from '../core/validate';
import type { EstimatorOptions, EstimatorName, PairedEstimator } from './estimator';
import { LowRankEstimator, type LowRankParams } from './lowrank';
import { LstsqEstimator, type LstsqParams } from './lstsq';
import { ProcrustesEstimator, type ProcrustesParams } from './procrustes';
import { RidgeEstimator, type RidgeParams } from './ridge';

export const ESTIMATORS: readonly EstimatorName[] = ['lstsq', 'ridge', 'procrustes', 'lowrank', 'weights'];

export type PairedParamsFor = LstsqParams & RidgeParams & ProcrustesParams & Partial<Omit<LowRankParams, 'lambda'>>;

/** A paired-row estimator by name ('weights' fits from classifier heads: use WeightsEstimator). */
export function pairedEstimator(method: string, params: PairedParamsFor = {}, opts?: EstimatorOptions): PairedEstimator {
  switch (method) {
    case 'lstsq':
      return new LstsqEstimator({ intercept: params.intercept, exactF64: params.exactF64, rcond: params.rcond }, opts);
    case 'ridge':
      return new RidgeEstimator(
        { intercept: params.intercept, exactF64: params.exactF64, lambda: params.lambda, grid: params.grid, folds: params.folds, seed: params.seed },
        opts,
      );
    case 'procrustes':
      return new ProcrustesEstimator({ intercept: params.intercept, exactF64: params.exactF64, scale: params.scale }, opts);
    case 'lowrank':
      if (params.rank === undefined) throw new TypeError('rank: expected an integer >= 1 for lowrank, received undefined');
      return new LowRankEstimator({ intercept: params.intercept, exactF64: params.exactF64, rank: params.rank, lambda: typeof params.lambda === 'number' ? params.lambda : undefined }, opts);
    default:
      return fail(TypeError, 'method', `one of 'lstsq', 'ridge', 'procrustes', 'lowrank'`, method);
  }
}

export { Estimator, PairedEstimator, type Fitted, type FitInfo, type EstimatorName } from './estimator';
export { LstsqEstimator, type LstsqParams } from './lstsq';
export { RidgeEstimator, type RidgeParams, type ValidationPoint } from './ridge';
export { ProcrustesEstimator, type ProcrustesParams } from './procrustes';
export { LowRankEstimator, type LowRankParams } from './lowrank';
export { WeightsEstimator, type Head, type WeightsParams } from './weights';
