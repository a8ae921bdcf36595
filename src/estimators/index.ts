// The estimators by name, for the CLI and for callers choosing a method at run time.
import { fail } from '../core/validate';
import type { EstimatorOptions, EstimatorName, PairedEstimator } from './estimator';
import { makeEstimator } from './fit-map';
import { checkParams } from './params';

export { ESTIMATORS, PARAMETERS, checkParams, paramsOf, type ParamSpec } from './params';
export { fitMap, makeEstimator, type FitMapOptions, type FitMapResult, type ProtocolOptions } from './fit-map';
export { fitMapFromNpy, statsFromNpy } from './streaming';

/**
 * A paired-row estimator by name, its parameters checked against the declaration in params.ts
 * (one the method does not take is an error). Prefer `fitMap`, which also runs the fit protocol.
 */
export function pairedEstimator(method: string, params: Record<string, unknown> = {}, opts?: EstimatorOptions): PairedEstimator {
  if (method === 'weights') fail(TypeError, 'method', "one of 'lstsq', 'ridge', 'procrustes', 'lowrank' (weights fits from heads: use WeightsEstimator)", method);
  return makeEstimator(method as EstimatorName, checkParams(method, params), opts?.engine);
}

export { Estimator, PairedEstimator, type Fitted, type FitInfo, type EstimatorName } from './estimator';
export { LstsqEstimator, type LstsqParams } from './lstsq';
export { RidgeEstimator, type RidgeParams, type ValidationPoint } from './ridge';
export { ProcrustesEstimator, type ProcrustesParams } from './procrustes';
export { LowRankEstimator, type LowRankParams } from './lowrank';
export { WeightsEstimator, type Head, type WeightsParams } from './weights';
