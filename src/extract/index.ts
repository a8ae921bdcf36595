// Public surface of embedding extraction.
export { type ExtractOptions, type ExtractSummary, type ExtractTarget, extract } from './pipeline';
export { type ExtractPlan, type ModelPlan, type ShardRange, planExtraction, planModels, shardRanges } from './plan';
export { type EmbeddedBatch, RangeEmbedder } from './embed';
export { ModelRunner, PreparedModel, type RunResult } from './runner';
export { Checkpoint, type Fingerprint, type ProgressRecord, type SkippedImage } from './checkpoint';
export { DecodePool, type DecodedBatch } from './decode-pool';
export { Progress, type ProgressStream, formatDuration } from './progress';
