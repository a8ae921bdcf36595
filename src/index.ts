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

// The micro-batcher, for any server; embmap's own HTTP service is createMapServer below.
export { MicroBatcher, type BatcherOptions } from './serve/batcher';
export { HttpError } from './serve/codec';

// Small pieces of the model and image areas.
export { CATALOGUE, type CatalogueEntry } from './importers/catalogue';
export type { ChannelOrder, Layout, ModelCard, ResizePolicy } from './models/card';
export { PRESETS, PRESET_NAMES, type Preset, preset } from './models/presets';
export { fitSimilarity } from './faces/similarity';
export { warpSimilarity } from './faces/warp';
export type { Face } from './faces/detector';

// Import, extraction, alignment and the experiments load their modules (and packages such as
// ONNX Runtime and sharp) on first call, so that the map API loads none of them.
export type { MapServer, MapServerOptions, ServerLimits } from './serve/server';
export type { Dataset } from './datasets';
export type { ImportOptions, ImportResult } from './importers';
export type { LoadedCard } from './models/load';
export type { Draft, DraftOptions } from './models/draft';
export type { ModelDescription } from './models/describe';
export type { ProbeOptions, ProbeResult } from './probe/probe';
export type { ExtractOptions, ExtractSummary } from './extract/pipeline';
export type { AlignOptions, AlignSummary } from './faces/stage';
export type { FacesConfig, FacesResult } from './experiments/faces';
export type { ClassificationConfig, ClassificationResult } from './experiments/classification';

/** A function of module `load()` that loads the module on its first call. */
function onCall<M, K extends keyof M>(load: () => M, key: K): M[K] {
  return ((...args: unknown[]) => (load()[key] as (...a: unknown[]) => unknown)(...args)) as M[K];
}
/* eslint-disable @typescript-eslint/no-require-imports */
const server = () => require('./serve/server') as typeof import('./serve/server');
const datasets = () => require('./datasets') as typeof import('./datasets');
const importers = () => require('./importers') as typeof import('./importers');
const models = () => require('./models/load') as typeof import('./models/load');
const drafts = () => require('./models/draft') as typeof import('./models/draft');
const describing = () => require('./models/describe') as typeof import('./models/describe');
const opening = () => require('./models/resolve') as typeof import('./models/resolve');
const probing = () => require('./probe/probe') as typeof import('./probe/probe');
const extraction = () => require('./extract/pipeline') as typeof import('./extract/pipeline');
const alignment = () => require('./faces/stage') as typeof import('./faces/stage');
const faces = () => require('./experiments/faces') as typeof import('./experiments/faces');
const classification = () => require('./experiments/classification') as typeof import('./experiments/classification');
const report = () => require('./experiments/report') as typeof import('./experiments/report');
/* eslint-enable @typescript-eslint/no-require-imports */

export const createMapServer = onCall(server, 'createMapServer');
export const openDataset = onCall(datasets, 'openDataset');
export const lfwDataset = onCall(datasets, 'lfwDataset');
export const folderDataset = onCall(datasets, 'folderDataset');
export const manifestDataset = onCall(datasets, 'manifestDataset');
export const imagenetDataset = onCall(datasets, 'imagenetDataset');
export const readLfwPairs = onCall(datasets, 'readLfwPairs');
// A class and constants load on first access: getters whose body is a member expression, the
// form Node's CommonJS export detection recognises, so that the ES module entry exports them too.
import type { FaceDetector as FaceDetectorClass } from './faces/detector';
export type FaceDetector = FaceDetectorClass;
export declare const FaceDetector: typeof FaceDetectorClass;
export declare const CHANNEL_ORDERS: typeof import('./models/load').CHANNEL_ORDERS;
export declare const LAYOUTS: typeof import('./models/load').LAYOUTS;
export declare const RESIZE_POLICIES: typeof import('./models/load').RESIZE_POLICIES;
export declare const METADATA_KEY: typeof import('./models/draft').METADATA_KEY;
const onAccess = {
  get FaceDetector() {
    return (require('./faces/detector') as typeof import('./faces/detector')).FaceDetector; // eslint-disable-line @typescript-eslint/no-require-imports
  },
  get CHANNEL_ORDERS() { return models().CHANNEL_ORDERS; },
  get LAYOUTS() { return models().LAYOUTS; },
  get RESIZE_POLICIES() { return models().RESIZE_POLICIES; },
  get METADATA_KEY() { return drafts().METADATA_KEY; },
};
Object.defineProperty(exports, 'FaceDetector', { enumerable: true, get: function () { return onAccess.FaceDetector; } });
Object.defineProperty(exports, 'CHANNEL_ORDERS', { enumerable: true, get: function () { return onAccess.CHANNEL_ORDERS; } });
Object.defineProperty(exports, 'LAYOUTS', { enumerable: true, get: function () { return onAccess.LAYOUTS; } });
Object.defineProperty(exports, 'RESIZE_POLICIES', { enumerable: true, get: function () { return onAccess.RESIZE_POLICIES; } });
Object.defineProperty(exports, 'METADATA_KEY', { enumerable: true, get: function () { return onAccess.METADATA_KEY; } });

export const importModel = onCall(importers, 'importModel');
export const convertTfjs = onCall(importers, 'convertTfjs');
export const convertTflite = onCall(importers, 'convertTflite');
export const convertFaceapi = onCall(importers, 'convertFaceapi');
export const loadCard = onCall(models, 'loadCard');
export const validateCard = onCall(models, 'validateCard');
export const resolveModel = onCall(models, 'resolveModel');
export const cardFromOnnx = onCall(models, 'cardFromOnnx');
export const checkCardAgainstModel = onCall(models, 'checkCardAgainstModel');
export const draftCard = onCall(drafts, 'draftCard');
export const describeOnnx = onCall(describing, 'describeOnnx');
export const openModel = onCall(opening, 'openModel');
export const probeCard = onCall(probing, 'probeCard');
export const extract = onCall(extraction, 'extract');
export const alignImages = onCall(alignment, 'alignImages');
export const runFaces = onCall(faces, 'runFaces');
export const runClassification = onCall(classification, 'runClassification');
export const writeReport = onCall(report, 'writeReport');
