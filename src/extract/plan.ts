// Planning an extraction: a dataset x models x options turned into what any runner needs (the models
// opened once as handles, their distinct input specs, the output sizes, the images to decode, the
// checkpoint fingerprint) and cut into shards. Running a range of it is embed.ts; the single-process
// pass is pipeline.ts, the cluster's coordinator and workers src/cluster.
import * as os from 'node:os';
import * as path from 'node:path';
import { Matrix } from '../core/matrix';
import { assertBoolean, assertInteger, fail } from '../core/validate';
import type { Dataset } from '../datasets';
import { type AlignOptions, type AlignSummary, alignImages } from '../faces/stage';
import { inputSize, specKey } from '../images/preprocess';
import type { InputSpec } from '../images/types';
import { type ViewOptions, type ViewParams, checkViews, expandViews } from '../images/views';
import { saveEmbeddings, sidecarPath } from '../io/embeddings';
import { checkOutputs } from '../io/outputs';
import { openHandle } from '../models/handle';
import type { LoadedCard } from '../models/load';
import { type RuntimeOptions, checkRuntimeOptions } from '../onnx/session-options';
import { type Fingerprint, type SkippedImage, datasetHash } from './checkpoint';
import type { ProgressStream } from './progress';
import { PreparedModel } from './runner';

export interface ExtractTarget {
  /** A loaded card, or a card (.json) / model (.onnx) path. */
  model: LoadedCard | string;
  /** Embeddings file (.npy or .safetensors; the ids go to its .ids.tsv sidecar). */
  out: string;
  /** Logits file, from the same inference run. */
  logits?: string;
}

export interface ExtractOptions extends RuntimeOptions {
  dataset: Dataset;
  targets: ExtractTarget[];
  /** Images per inference batch (default 32). */
  batch?: number;
  /** Decode worker threads (default: half the cores, 1 to 4). */
  workers?: number;
  /** Batches decoded ahead of inference (default workers + 1). */
  prefetch?: number;
  /** Abort on the first unreadable image instead of skipping it. */
  strict?: boolean;
  /** Discard an existing checkpoint instead of resuming it. */
  restart?: boolean;
  /** Where the progress bar (TTY) or progress lines go; null for none. Default none. */
  progress?: ProgressStream | null;
  /** Progress line interval (default 100 ms on a TTY, 5 s otherwise). */
  progressIntervalMs?: number;
  /** Images of more pixels are skipped as unreadable, before decoding (default MAX_PIXELS, 40 MP). */
  maxPixels?: number;
  /** Detect and align faces first: the models embed the aligned crops (docs/EXTRACT.md). */
  align?: Omit<AlignOptions, 'progress'>;
  /** Embed `count` augmented views of each image (src/images/views.ts): rows `id#v0` (the plain image) .. `id#v{count-1}`. */
  views?: ViewOptions;
}

/** An image to decode; `unreadable` when it is known to be skipped before decoding (no aligned face). */
export interface DecodeItem {
  id: string;
  path: string;
  unreadable?: string;
  /** The augmentation applied to the decoded image before every model's preprocessing. */
  view?: ViewParams;
}

/** The models of a pass: each distinct input spec decoded once, the outputs in target order. */
export interface ModelPlan {
  prepared: PreparedModel[];
  specs: InputSpec[];
  /** The spec index of each model. */
  specOf: number[];
  /** Values per image of each spec. */
  sizes: number[];
  /** Values per row of each output: a model's embedding, then its logits when fetched. */
  dims: number[];
}

export interface ExtractPlan extends ModelPlan {
  dataset: Dataset;
  targets: ExtractTarget[];
  /** What is decoded for each dataset item (the aligned crop with --align; each view with views). */
  items: DecodeItem[];
  fingerprint: Fingerprint;
  batch: number;
  workers: number;
  prefetch: number;
  strict: boolean;
  maxPixels?: number;
  align?: AlignSummary;
}

export interface ShardRange {
  index: number;
  /** Dataset positions [start, end). */
  start: number;
  end: number;
}

/** Models with the same input spec share one preprocessed buffer. */
export function planModels(prepared: PreparedModel[]): ModelPlan {
  const specs: InputSpec[] = [];
  const specOf = prepared.map((p) => {
    const key = specKey(p.spec);
    let k = specs.findIndex((s) => specKey(s) === key);
    if (k < 0) k = specs.push(p.spec) - 1;
    return k;
  });
  const dims = prepared.flatMap((p) => [p.embeddingDim, ...(p.classes !== undefined ? [p.classes] : [])]);
  return { prepared, specs, specOf, sizes: specs.map(inputSize), dims };
}

/** Checks `options`, opens every model once and (with align) aligns the faces; see the file comment. */
export async function planExtraction(options: ExtractOptions): Promise<ExtractPlan> {
  const { dataset, targets } = options;
  const batch = options.batch ?? 32;
  const workers = options.workers ?? Math.max(1, Math.min(4, Math.floor(os.cpus().length / 2)));
  const prefetch = options.prefetch ?? workers + 1;
  assertInteger('batch', batch, 1, 65536);
  assertInteger('workers', workers, 1, 64);
  assertInteger('prefetch', prefetch, 1, 64);
  if (options.maxPixels !== undefined) assertInteger('maxPixels', options.maxPixels, 1);
  if (options.strict !== undefined) assertBoolean('strict', options.strict);
  if (options.restart !== undefined) assertBoolean('restart', options.restart);
  checkRuntimeOptions('options', options);
  if (options.views !== undefined) checkViews('views', options.views);
  if (!dataset || !Array.isArray(dataset.items)) fail(TypeError, 'dataset', 'a Dataset (openDataset)', dataset);
  if (!Array.isArray(targets) || targets.length === 0) fail(TypeError, 'targets', 'at least one { model, out }', targets);
  const files = targets.flatMap((t) => [t.out, ...(t.logits ? [t.logits] : [])]).map((f) => path.resolve(f));
  const dup = files.find((f, i) => files.indexOf(f) !== i);
  if (dup) throw new RangeError(`targets: expected distinct output files, received ${dup} twice`);
  checkOutputs(
    targets.flatMap((t, i) => [t.out, ...(t.logits ? [t.logits] : [])].map((file) => ({ name: `targets[${i}]`, file, extensions: ['.npy', '.safetensors'], companions: [sidecarPath(file)] }))),
    [...targets.map((t, i) => (typeof t.model === 'string' ? { name: `targets[${i}].model`, file: t.model } : undefined)), ...(dataset.kind === 'manifest' ? [{ name: 'images', file: dataset.source }] : [])],
  );

  const prepared: PreparedModel[] = [];
  for (const t of targets) prepared.push(PreparedModel.prepare(await openHandle(t.model), { logits: !!t.logits }));
  const models = planModels(prepared);
  // Alignment first: what is decoded is then each image's crop, and an image without one is skipped.
  let items: DecodeItem[] = dataset.items;
  let align: AlignSummary | undefined;
  if (options.align) {
    const { images, summary } = await alignImages(dataset.items.map((i) => i.path), { maxPixels: options.maxPixels, ...options.align, progress: options.progress ?? null });
    items = dataset.items.map((it, i) => (images[i].crop ? { id: it.id, path: images[i].crop! } : { id: it.id, path: '', unreadable: `alignment: ${images[i].failure!.reason}` }));
    align = summary;
  }
  // Views after alignment: a view augments the aligned crop; the rows and their ids are the views'.
  let expanded = dataset;
  if (options.views !== undefined) {
    expanded = { ...dataset, items: expandViews(dataset.items, options.views) };
    items = expandViews(items, options.views);
  }
  const fingerprint = {
    dataset: datasetHash(items),
    outputs: prepared.flatMap((p) => {
      const base = `${p.sha256} ${JSON.stringify(p.loaded.card.input)}`;
      return [`${base} ${p.loaded.card.embedding.tensor}`, ...(p.classes !== undefined ? [`${base} ${p.loaded.card.logits!.tensor}`] : [])];
    }),
  };
  return { ...models, dataset: expanded, targets, items, fingerprint, batch, workers, prefetch, strict: !!options.strict, maxPixels: options.maxPixels, ...(align ? { align } : {}) };
}

/** [from, total) cut into shards of `size` images (the last one shorter). */
export function shardRanges(total: number, size: number, from = 0): ShardRange[] {
  assertInteger('shard size', size, 1);
  const out: ShardRange[] = [];
  for (let start = from; start < total; start += size) out.push({ index: out.length, start, end: Math.min(start + size, total) });
  return out;
}

/**
 * Writes every target's output files: rows (in dataset order, skipped images left out) named by
 * the ids (and labels) of the images not skipped. `read(k)` gives output k's rows.
 */
export function writeOutputs(plan: ExtractPlan, skipped: readonly SkippedImage[], rows: number, read: (k: number) => Float32Array, where: string): void {
  const skippedAt = new Set(skipped.map((s) => s.index));
  const kept = plan.dataset.items.filter((_, i) => !skippedAt.has(i));
  const ids = kept.map((i) => i.id);
  const labels = plan.dataset.labelled ? kept.map((i) => i.label!) : undefined;
  if (rows !== ids.length) throw new Error(`${where}: expected ${ids.length} rows, found ${rows}; pass --restart`);
  let k = 0;
  for (const t of plan.targets) {
    for (const file of [t.out, ...(t.logits ? [t.logits] : [])]) {
      const matrix = new Matrix(read(k), rows, plan.dims[k]);
      saveEmbeddings(file, labels ? { matrix, ids, labels } : { matrix, ids });
      k++;
    }
  }
}
