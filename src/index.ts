// embmap's public API.
export { Matrix, type DType, type FloatArray } from './core/matrix';
export {
  Engine,
  BACKEND_NAMES,
  type BackendName,
  type BackendInfo,
  type GemmOptions,
  type LstsqResult,
  type EighResult,
  type SvdResult,
  type CosineOptions,
  type CosineResult,
} from './engine/engine';
export { SufficientStats, type StatsOptions } from './engine/stats';
export { doctor, type DoctorReport } from './engine/doctor';
