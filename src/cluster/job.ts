// A shard job as it travels through the queue: everything a worker needs to embed one shard with
// nothing but the shared folder and the model files, and to refuse it when it would compute
// something else than the coordinator planned (another embmap version, another model file).
import type { DecodeItem, ShardRange } from '../extract/plan';
import type { LoadedCard } from '../models/load';

export interface JobModel {
  /** The card as the coordinator resolved it (presets and flags applied), with the ONNX file's absolute path: workers do not resolve it again. */
  loaded: LoadedCard;
  /** SHA-256 of the ONNX file the coordinator read: a worker's copy must be the same. */
  sha256: string;
  id: string;
  logits: boolean;
}

/** Statistics asked for: between the embeddings of models[source] and models[target]. */
export interface JobStats {
  source: number;
  target: number;
  /** Folder under <shared>/stats. */
  name: string;
}

export interface ShardJob {
  /** The coordinator's embmap version. */
  version: string;
  run: string;
  /** The shared output folder, absolute. */
  shared: string;
  models: JobModel[];
  shard: ShardRange;
  /** Shards in the run. */
  shards: number;
  /** The shard's images, in dataset order. */
  items: DecodeItem[];
  batch: number;
  strict: boolean;
  /** The coordinator's decode limit (--max-pixels; default MAX_PIXELS). */
  maxPixels?: number;
  stats: JobStats[];
}

export interface ShardResult {
  rows: number;
  images: number;
  /** Time to embed and write the shard. */
  seconds: number;
  /** host:pid of the worker. */
  worker: string;
}
