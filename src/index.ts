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
export type { StatsOptions, StatsPrecision, Moments, UpdateOptions } from './engine/stats';
export type { DoctorReport } from './engine/doctor';

// Storing and applying maps; the estimators and evaluation load on first access (below).
export { LinearMap, MAP_FORMAT, type MapMetadata } from './maps/linear-map';
export type * from './estimators';
export type { Diagnostics } from './evaluate/diagnostics';
export type { VerificationResult } from './evaluate/verification';
export type { IdentificationResult } from './evaluate/identification';

// Files (loaded on first access, below).
export type * from './io';

// The micro-batcher, for any server; embmap's own HTTP service is createMapServer below.
export { MicroBatcher, type BatcherOptions } from './serve/batcher';
export { HttpError } from './serve/codec';

// Small pieces of the model and image areas (loaded on first access, below).
export type { CatalogueEntry } from './importers/catalogue';
export type { ChannelOrder, Layout, ModelCard, ResizePolicy } from './models/card';
export type { Preset } from './models/presets';
export type { Face } from './faces/detector';

// Import, extraction, alignment and the experiments load their modules (and packages such as
// ONNX Runtime and sharp) on first call, so that the map API loads none of them.
export type { MapServer, MapServerOptions, ServerLimits } from './serve/server';
export type { Dataset } from './datasets';
export type { ImportOptions, ImportResult } from './importers';
export type { LoadedCard } from './models/load';
export type { Draft, DraftOptions } from './models/draft';
export type { OnnxModel } from './onnx/types';
export type { ModelDescription } from './models/describe';
export type { ProbeOptions, ProbeResult } from './probe/probe';
export type { ExtractOptions, ExtractSummary } from './extract/pipeline';
export type { AlignOptions, AlignSummary } from './faces/stage';
export type { FacesConfig, FacesResult } from './experiments/faces';
export type { ClassificationConfig, ClassificationResult } from './experiments/classification';

/** A module's exports, the module loaded on first access of one of them. */
function onAccess<M extends object>(load: () => M): M {
  let loaded: M | undefined;
  return new Proxy({} as M, { get: (_, key) => (loaded ??= load())[key as keyof M] });
}
// Classes and values that load their module on first access, so that require('embmap') loads the
// map API (matrices, engine, maps, batcher) and nothing else: the estimators and evaluation alone
// were 28 of its 39 modules and most of its time, which a server applying maps never uses.
// Each getter's body is `return MODULE.NAME`, the form Node's CommonJS export detection
// recognises, so that the ES module entry exports the names too (test/package.test.ts checks
// that every export of src/estimators and src/io is here).
/* eslint-disable @typescript-eslint/no-require-imports */
const stats = onAccess(() => require('./engine/stats') as typeof import('./engine/stats'));
const doctoring = onAccess(() => require('./engine/doctor') as typeof import('./engine/doctor'));
const io = onAccess(() => require('./io') as typeof import('./io'));
const catalogue = onAccess(() => require('./importers/catalogue') as typeof import('./importers/catalogue'));
const presets = onAccess(() => require('./models/presets') as typeof import('./models/presets'));
const similarity = onAccess(() => require('./faces/similarity') as typeof import('./faces/similarity'));
const warp = onAccess(() => require('./faces/warp') as typeof import('./faces/warp'));
const est = onAccess(() => require('./estimators') as typeof import('./estimators'));
const diagnostics = onAccess(() => require('./evaluate/diagnostics') as typeof import('./evaluate/diagnostics'));
const split = onAccess(() => require('./evaluate/split') as typeof import('./evaluate/split'));
const verification = onAccess(() => require('./evaluate/verification') as typeof import('./evaluate/verification'));
const identification = onAccess(() => require('./evaluate/identification') as typeof import('./evaluate/identification'));
const classifying = onAccess(() => require('./evaluate/classification') as typeof import('./evaluate/classification'));
const detector = onAccess(() => require('./faces/detector') as typeof import('./faces/detector'));
const cards = onAccess(() => require('./models/load') as typeof import('./models/load'));
const drafting = onAccess(() => require('./models/draft') as typeof import('./models/draft'));
/* eslint-enable @typescript-eslint/no-require-imports */
export declare const SufficientStats: typeof import('./engine/stats').SufficientStats;
export type SufficientStats = import('./engine/stats').SufficientStats;
export declare const doctor: typeof import('./engine/doctor').doctor;
export declare const writeFileAtomic: typeof import('./io').writeFileAtomic;
export declare const FileFormatError: typeof import('./io').FileFormatError;
export type FileFormatError = import('./io').FileFormatError;
export declare const openNpy: typeof import('./io').openNpy;
export declare const readNpy: typeof import('./io').readNpy;
export declare const writeNpy: typeof import('./io').writeNpy;
export declare const readSafetensors: typeof import('./io').readSafetensors;
export declare const writeSafetensors: typeof import('./io').writeSafetensors;
export declare const EMBEDDINGS_TENSOR: typeof import('./io').EMBEDDINGS_TENSOR;
export declare const assertEmbeddingSet: typeof import('./io').assertEmbeddingSet;
export declare const assertFiniteRows: typeof import('./io').assertFiniteRows;
export declare const loadEmbeddings: typeof import('./io').loadEmbeddings;
export declare const pairById: typeof import('./io').pairById;
export declare const readSidecar: typeof import('./io').readSidecar;
export declare const readableSidecarPath: typeof import('./io').readableSidecarPath;
export declare const saveEmbeddings: typeof import('./io').saveEmbeddings;
export declare const sidecarPath: typeof import('./io').sidecarPath;
export declare const CATALOGUE: typeof import('./importers/catalogue').CATALOGUE;
export declare const PRESETS: typeof import('./models/presets').PRESETS;
export declare const PRESET_NAMES: typeof import('./models/presets').PRESET_NAMES;
export declare const preset: typeof import('./models/presets').preset;
export declare const fitSimilarity: typeof import('./faces/similarity').fitSimilarity;
export declare const warpSimilarity: typeof import('./faces/warp').warpSimilarity;
type Est = typeof import('./estimators');
export declare const ESTIMATORS: Est['ESTIMATORS'];
export declare const PARAMETERS: Est['PARAMETERS'];
export declare const checkParams: Est['checkParams'];
export declare const paramsOf: Est['paramsOf'];
export declare const fitMap: Est['fitMap'];
export declare const makeEstimator: Est['makeEstimator'];
export declare const fitMapFromNpy: Est['fitMapFromNpy'];
export declare const statsFromNpy: Est['statsFromNpy'];
export declare const pairedEstimator: Est['pairedEstimator'];
export declare const Estimator: Est['Estimator'];
export type Estimator<P extends object = object> = import('./estimators').Estimator<P>;
export declare const PairedEstimator: Est['PairedEstimator'];
export type PairedEstimator<P extends import('./estimators/estimator').PairedParams = import('./estimators/estimator').PairedParams> = import('./estimators').PairedEstimator<P>;
export declare const LstsqEstimator: Est['LstsqEstimator'];
export type LstsqEstimator = import('./estimators').LstsqEstimator;
export declare const RidgeEstimator: Est['RidgeEstimator'];
export type RidgeEstimator = import('./estimators').RidgeEstimator;
export declare const ProcrustesEstimator: Est['ProcrustesEstimator'];
export type ProcrustesEstimator = import('./estimators').ProcrustesEstimator;
export declare const LowRankEstimator: Est['LowRankEstimator'];
export type LowRankEstimator = import('./estimators').LowRankEstimator;
export declare const WeightsEstimator: Est['WeightsEstimator'];
export type WeightsEstimator = import('./estimators').WeightsEstimator;
export declare const diagnose: typeof import('./evaluate/diagnostics').diagnose;
export declare const linearCKA: typeof import('./evaluate/diagnostics').linearCKA;
export declare const trainTestSplit: typeof import('./evaluate/split').trainTestSplit;
export declare const makeRng: typeof import('./evaluate/split').makeRng;
export declare const permutation: typeof import('./evaluate/split').permutation;
export declare const evaluateVerification: typeof import('./evaluate/verification').evaluateVerification;
export declare const identify: typeof import('./evaluate/identification').identify;
export declare const accuracy: typeof import('./evaluate/classification').accuracy;
export declare const agreement: typeof import('./evaluate/classification').agreement;
export declare const logits: typeof import('./evaluate/classification').logits;
export declare const FaceDetector: typeof import('./faces/detector').FaceDetector;
export type FaceDetector = import('./faces/detector').FaceDetector;
export declare const CHANNEL_ORDERS: typeof import('./models/load').CHANNEL_ORDERS;
export declare const LAYOUTS: typeof import('./models/load').LAYOUTS;
export declare const RESIZE_POLICIES: typeof import('./models/load').RESIZE_POLICIES;
export declare const METADATA_KEY: typeof import('./models/draft').METADATA_KEY;
Object.defineProperty(exports, 'SufficientStats', { enumerable: true, get: function () { return stats.SufficientStats; } });
Object.defineProperty(exports, 'doctor', { enumerable: true, get: function () { return doctoring.doctor; } });
Object.defineProperty(exports, 'writeFileAtomic', { enumerable: true, get: function () { return io.writeFileAtomic; } });
Object.defineProperty(exports, 'FileFormatError', { enumerable: true, get: function () { return io.FileFormatError; } });
Object.defineProperty(exports, 'openNpy', { enumerable: true, get: function () { return io.openNpy; } });
Object.defineProperty(exports, 'readNpy', { enumerable: true, get: function () { return io.readNpy; } });
Object.defineProperty(exports, 'writeNpy', { enumerable: true, get: function () { return io.writeNpy; } });
Object.defineProperty(exports, 'readSafetensors', { enumerable: true, get: function () { return io.readSafetensors; } });
Object.defineProperty(exports, 'writeSafetensors', { enumerable: true, get: function () { return io.writeSafetensors; } });
Object.defineProperty(exports, 'EMBEDDINGS_TENSOR', { enumerable: true, get: function () { return io.EMBEDDINGS_TENSOR; } });
Object.defineProperty(exports, 'assertEmbeddingSet', { enumerable: true, get: function () { return io.assertEmbeddingSet; } });
Object.defineProperty(exports, 'assertFiniteRows', { enumerable: true, get: function () { return io.assertFiniteRows; } });
Object.defineProperty(exports, 'loadEmbeddings', { enumerable: true, get: function () { return io.loadEmbeddings; } });
Object.defineProperty(exports, 'pairById', { enumerable: true, get: function () { return io.pairById; } });
Object.defineProperty(exports, 'readSidecar', { enumerable: true, get: function () { return io.readSidecar; } });
Object.defineProperty(exports, 'readableSidecarPath', { enumerable: true, get: function () { return io.readableSidecarPath; } });
Object.defineProperty(exports, 'saveEmbeddings', { enumerable: true, get: function () { return io.saveEmbeddings; } });
Object.defineProperty(exports, 'sidecarPath', { enumerable: true, get: function () { return io.sidecarPath; } });
Object.defineProperty(exports, 'CATALOGUE', { enumerable: true, get: function () { return catalogue.CATALOGUE; } });
Object.defineProperty(exports, 'PRESETS', { enumerable: true, get: function () { return presets.PRESETS; } });
Object.defineProperty(exports, 'PRESET_NAMES', { enumerable: true, get: function () { return presets.PRESET_NAMES; } });
Object.defineProperty(exports, 'preset', { enumerable: true, get: function () { return presets.preset; } });
Object.defineProperty(exports, 'fitSimilarity', { enumerable: true, get: function () { return similarity.fitSimilarity; } });
Object.defineProperty(exports, 'warpSimilarity', { enumerable: true, get: function () { return warp.warpSimilarity; } });
Object.defineProperty(exports, 'ESTIMATORS', { enumerable: true, get: function () { return est.ESTIMATORS; } });
Object.defineProperty(exports, 'PARAMETERS', { enumerable: true, get: function () { return est.PARAMETERS; } });
Object.defineProperty(exports, 'checkParams', { enumerable: true, get: function () { return est.checkParams; } });
Object.defineProperty(exports, 'paramsOf', { enumerable: true, get: function () { return est.paramsOf; } });
Object.defineProperty(exports, 'fitMap', { enumerable: true, get: function () { return est.fitMap; } });
Object.defineProperty(exports, 'makeEstimator', { enumerable: true, get: function () { return est.makeEstimator; } });
Object.defineProperty(exports, 'fitMapFromNpy', { enumerable: true, get: function () { return est.fitMapFromNpy; } });
Object.defineProperty(exports, 'statsFromNpy', { enumerable: true, get: function () { return est.statsFromNpy; } });
Object.defineProperty(exports, 'pairedEstimator', { enumerable: true, get: function () { return est.pairedEstimator; } });
Object.defineProperty(exports, 'Estimator', { enumerable: true, get: function () { return est.Estimator; } });
Object.defineProperty(exports, 'PairedEstimator', { enumerable: true, get: function () { return est.PairedEstimator; } });
Object.defineProperty(exports, 'LstsqEstimator', { enumerable: true, get: function () { return est.LstsqEstimator; } });
Object.defineProperty(exports, 'RidgeEstimator', { enumerable: true, get: function () { return est.RidgeEstimator; } });
Object.defineProperty(exports, 'ProcrustesEstimator', { enumerable: true, get: function () { return est.ProcrustesEstimator; } });
Object.defineProperty(exports, 'LowRankEstimator', { enumerable: true, get: function () { return est.LowRankEstimator; } });
Object.defineProperty(exports, 'WeightsEstimator', { enumerable: true, get: function () { return est.WeightsEstimator; } });
Object.defineProperty(exports, 'diagnose', { enumerable: true, get: function () { return diagnostics.diagnose; } });
Object.defineProperty(exports, 'linearCKA', { enumerable: true, get: function () { return diagnostics.linearCKA; } });
Object.defineProperty(exports, 'trainTestSplit', { enumerable: true, get: function () { return split.trainTestSplit; } });
Object.defineProperty(exports, 'makeRng', { enumerable: true, get: function () { return split.makeRng; } });
Object.defineProperty(exports, 'permutation', { enumerable: true, get: function () { return split.permutation; } });
Object.defineProperty(exports, 'evaluateVerification', { enumerable: true, get: function () { return verification.evaluateVerification; } });
Object.defineProperty(exports, 'identify', { enumerable: true, get: function () { return identification.identify; } });
Object.defineProperty(exports, 'accuracy', { enumerable: true, get: function () { return classifying.accuracy; } });
Object.defineProperty(exports, 'agreement', { enumerable: true, get: function () { return classifying.agreement; } });
Object.defineProperty(exports, 'logits', { enumerable: true, get: function () { return classifying.logits; } });
Object.defineProperty(exports, 'FaceDetector', { enumerable: true, get: function () { return detector.FaceDetector; } });
Object.defineProperty(exports, 'CHANNEL_ORDERS', { enumerable: true, get: function () { return cards.CHANNEL_ORDERS; } });
Object.defineProperty(exports, 'LAYOUTS', { enumerable: true, get: function () { return cards.LAYOUTS; } });
Object.defineProperty(exports, 'RESIZE_POLICIES', { enumerable: true, get: function () { return cards.RESIZE_POLICIES; } });
Object.defineProperty(exports, 'METADATA_KEY', { enumerable: true, get: function () { return drafting.METADATA_KEY; } });

/** `m[key]` as a function that loads the module on its first call (not on access, as a getter would). */
function onCall<M, K extends keyof M>(m: M, key: K): M[K] {
  return ((...args: unknown[]) => (m[key] as (...a: unknown[]) => unknown)(...args)) as M[K];
}
/* eslint-disable @typescript-eslint/no-require-imports */
const server = onAccess(() => require('./serve/server') as typeof import('./serve/server'));
const datasets = onAccess(() => require('./datasets') as typeof import('./datasets'));
const importers = onAccess(() => require('./importers') as typeof import('./importers'));
const describing = onAccess(() => require('./models/describe') as typeof import('./models/describe'));
const opening = onAccess(() => require('./models/resolve') as typeof import('./models/resolve'));
const probing = onAccess(() => require('./probe/probe') as typeof import('./probe/probe'));
const extraction = onAccess(() => require('./extract/pipeline') as typeof import('./extract/pipeline'));
const alignment = onAccess(() => require('./faces/stage') as typeof import('./faces/stage'));
const faces = onAccess(() => require('./experiments/faces') as typeof import('./experiments/faces'));
const classification = onAccess(() => require('./experiments/classification') as typeof import('./experiments/classification'));
const report = onAccess(() => require('./experiments/report') as typeof import('./experiments/report'));
/* eslint-enable @typescript-eslint/no-require-imports */

export const createMapServer = onCall(server, 'createMapServer');
export const openDataset = onCall(datasets, 'openDataset');
export const lfwDataset = onCall(datasets, 'lfwDataset');
export const folderDataset = onCall(datasets, 'folderDataset');
export const manifestDataset = onCall(datasets, 'manifestDataset');
export const imagenetDataset = onCall(datasets, 'imagenetDataset');
export const readLfwPairs = onCall(datasets, 'readLfwPairs');
export const importModel = onCall(importers, 'importModel');
export const convertTfjs = onCall(importers, 'convertTfjs');
export const convertTflite = onCall(importers, 'convertTflite');
export const convertFaceapi = onCall(importers, 'convertFaceapi');
export const loadCard = onCall(cards, 'loadCard');
export const validateCard = onCall(cards, 'validateCard');
export const resolveModel = onCall(cards, 'resolveModel');
export const cardFromOnnx = onCall(cards, 'cardFromOnnx');
export const checkCardAgainstModel = onCall(cards, 'checkCardAgainstModel');
export const draftCard = onCall(drafting, 'draftCard');
export const describeOnnx = onCall(describing, 'describeOnnx');
export const openModel = onCall(opening, 'openModel');
export const probeCard = onCall(probing, 'probeCard');
export const extract = onCall(extraction, 'extract');
export const alignImages = onCall(alignment, 'alignImages');
export const runFaces = onCall(faces, 'runFaces');
export const runClassification = onCall(classification, 'runClassification');
export const writeReport = onCall(report, 'writeReport');
