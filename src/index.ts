// embmap's public API.
export { Matrix, type DType, type FloatArray } from './core/matrix';
export {
  Engine,
  BACKEND_NAMES,
  PRECISIONS,
  type BackendName,
  type Precision,
  type BackendInfo,
  type GemmOptions,
  type LstsqResult,
  type EighResult,
  type SvdResult,
  type CosineOptions,
  type CosineResult,
} from './engine/engine';
export { SufficientStats, type StatsOptions, type StatsPrecision, type Moments } from './engine/stats';
export { doctor, type DoctorReport } from './engine/doctor';

// Estimating, storing and applying maps.
export * from './estimators';
export { LinearMap, MAP_FORMAT, type MapMetadata } from './maps/linear-map';
export { diagnose, linearCKA, type Diagnostics } from './evaluate/diagnostics';
export { trainTestSplit, makeRng, permutation } from './evaluate/split';
export { evaluateVerification, type VerificationResult } from './evaluate/verification';
export { identify, type IdentificationResult } from './evaluate/identification';
export { accuracy, agreement, logits } from './evaluate/classification';

// Files.
export * from './io';

// Models and images: importers, cards, extraction. (The HTTP service is in 'embmap/dist/src/serve'
// so that library users do not load fastify.)
export { importModel, CATALOGUE, type ImportOptions, type ImportResult } from './importers';
export * from './models';
export { extract, type ExtractOptions, type ExtractSummary } from './extract';
export { alignImages, FaceDetector, fitSimilarity, warpSimilarity, type AlignOptions, type AlignSummary, type Face } from './faces';
export { openDataset, lfwDataset, folderDataset, manifestDataset, imagenetDataset, readLfwPairs, type Dataset } from './datasets';
export { runFaces, type FacesConfig, type FacesResult } from './experiments/faces';
export { runClassification, type ClassificationConfig, type ClassificationResult } from './experiments/classification';
export { writeReport } from './experiments/report';
