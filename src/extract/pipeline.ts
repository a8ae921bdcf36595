// The extraction pass: images decoded by worker threads a few batches ahead of inference, each
// image decoded once for all models (and preprocessed once per distinct input spec), every model's
// embeddings and logits captured from the same run, batches checkpointed as they finish, and the
// final .npy + .ids.tsv outputs written atomically only when every image is done. With `align`,
// faces are detected and aligned first (src/faces, cached) and the networks see the aligned crops.
import * as os from 'node:os';
import * as path from 'node:path';
import { Matrix } from '../core/matrix';
import { assertBoolean, assertInteger, fail } from '../core/validate';
import type { Dataset } from '../datasets';
import { type AlignOptions, type AlignSummary, type AlignedImage, alignImages } from '../faces/stage';
import { type InputSpec, inputSize, specKey } from '../images/preprocess';
import { saveEmbeddings } from '../io/embeddings';
import { type LoadedCard, resolveModel } from '../models/load';
import { type Provider, type RuntimeOptions, checkRuntimeOptions } from '../onnx/runtime';
import { Checkpoint, type SkippedImage, datasetHash } from './checkpoint';
import { DecodePool } from './decode-pool';
import { Progress, type ProgressStream } from './progress';
import { type ModelRunner, PreparedModel } from './runner';

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
  /** Detect and align faces first: the models embed the aligned crops (docs/EXTRACT.md). */
  align?: Omit<AlignOptions, 'progress'>;
}

export interface ExtractSummary {
  /** Images in the dataset. */
  total: number;
  /** Rows in each output (total minus skipped). */
  rows: number;
  /** Every image skipped, this run and earlier ones. */
  skipped: SkippedImage[];
  /** Items already done by earlier runs when this one started (0 when not resumed). */
  resumedFrom: number;
  /** Items this run decoded and ran, and in how many batches. */
  computed: number;
  batches: number;
  /** Wall time of the whole call, and the part spent before the first image (models loaded and checked, checkpoint opened). */
  seconds: number;
  setupSeconds: number;
  /** computed / (seconds - setupSeconds): the processing rate. */
  imagesPerSecond: number;
  models: { id: string; source: string; provider: Provider; fallback?: string; origins: Record<string, string>; out: string; logits?: string; dim: number; classes?: number }[];
  checkpoint: string;
  /** With align: the alignment stage's counts and every image without a usable face. */
  align?: AlignSummary;
}

/** Runs the pass described by `options`; see the file comment. Resumes a matching checkpoint. */
export async function extract(options: ExtractOptions): Promise<ExtractSummary> {
  const { dataset, targets } = options;
  const batch = options.batch ?? 32;
  const workers = options.workers ?? Math.max(1, Math.min(4, Math.floor(os.cpus().length / 2)));
  const prefetch = options.prefetch ?? workers + 1;
  assertInteger('batch', batch, 1, 65536);
  assertInteger('workers', workers, 1, 64);
  assertInteger('prefetch', prefetch, 1, 64);
  if (options.strict !== undefined) assertBoolean('strict', options.strict);
  if (options.restart !== undefined) assertBoolean('restart', options.restart);
  checkRuntimeOptions('options', options);
  if (!dataset || !Array.isArray(dataset.items)) fail(TypeError, 'dataset', 'a Dataset (openDataset)', dataset);
  if (!Array.isArray(targets) || targets.length === 0) fail(TypeError, 'targets', 'at least one { model, out }', targets);
  const files = targets.flatMap((t) => [t.out, ...(t.logits ? [t.logits] : [])]).map((f) => path.resolve(f));
  const dup = files.find((f, i) => files.indexOf(f) !== i);
  if (dup) throw new RangeError(`targets: expected distinct output files, received ${dup} twice`);

  const t0 = Date.now();
  const runners: ModelRunner[] = [];
  let pool: DecodePool | undefined;
  let checkpoint: Checkpoint | undefined;
  try {
    const prepared: PreparedModel[] = [];
    for (const t of targets) {
      const loaded = typeof t.model === 'string' ? await resolveModel(t.model) : t.model;
      prepared.push(PreparedModel.prepare(loaded, { logits: !!t.logits }));
    }
    // Models with the same input spec share one preprocessed buffer.
    const specs: InputSpec[] = [];
    const specOf = prepared.map((p) => {
      const key = specKey(p.spec);
      let k = specs.findIndex((s) => specKey(s) === key);
      if (k < 0) k = specs.push(p.spec) - 1;
      return k;
    });
    // Alignment first: what is decoded is then each image's crop, and an image without one is skipped.
    let aligned: AlignedImage[] | undefined, alignSummary: AlignSummary | undefined;
    if (options.align) ({ images: aligned, summary: alignSummary } = await alignImages(dataset.items.map((i) => i.path), { ...options.align, progress: options.progress ?? null }));
    const decodeItems = aligned ? dataset.items.map((it, i) => ({ id: it.id, path: aligned![i].crop ?? '' })) : dataset.items;
    const dims = prepared.flatMap((p) => [p.embeddingDim, ...(p.classes !== undefined ? [p.classes] : [])]);
    const fingerprint = {
      dataset: datasetHash(decodeItems),
      outputs: prepared.flatMap((p) => {
        const base = `${p.sha256} ${JSON.stringify(p.loaded.card.input)}`;
        return [`${base} ${p.loaded.card.embedding.tensor}`, ...(p.classes !== undefined ? [`${base} ${p.loaded.card.logits!.tensor}`] : [])];
      }),
    };
    const total = dataset.items.length;
    const checkpointDir = `${path.resolve(targets[0].out)}.partial`;

    // The first batches decode while the sessions are created: from where the checkpoint says, if it holds.
    const from = options.restart ? 0 : Checkpoint.recordedDone(checkpointDir);
    const sizes = specs.map(inputSize);
    const spare: ArrayBuffer[][] = [];
    const starts: number[] = [];
    for (let s = from; s < total; s += batch) starts.push(s);
    const decoding = new Map<number, ReturnType<DecodePool['decode']>>();
    if (starts.length) pool = new DecodePool(workers);
    const submit = (k: number) => {
      const items = decodeItems.slice(starts[k], Math.min(starts[k] + batch, total));
      const buffers = spare.pop() ?? sizes.map((n) => new ArrayBuffer(batch * n * 4));
      // Images without an aligned crop are not decoded; they come back as failures with alignment's reason.
      const wanted = items.flatMap((it, j) => (it.path ? [j] : []));
      const unaligned = items.flatMap((it, j) => (it.path ? [] : [{ index: j, reason: `alignment: ${aligned![starts[k] + j].failure!.reason}` }]));
      decoding.set(k, pool!.decode(wanted.map((j) => items[j].path), specs, buffers).then((d) => ({
        ...d,
        failures: [...d.failures.map((f) => ({ index: wanted[f.index], reason: f.reason })), ...unaligned].sort((a, b) => a.index - b.index),
      })));
    };
    let submitted = 0;
    while (submitted < starts.length && submitted <= prefetch) submit(submitted++);

    for (const p of prepared) runners.push(await p.open({ device: options.device, threads: options.threads }));
    checkpoint = Checkpoint.open(checkpointDir, fingerprint, dims, total, { restart: options.restart });
    const resumedFrom = checkpoint.progress.done;
    if (resumedFrom !== from) throw new Error(`${checkpointDir}: the checkpoint changed while this run started (another process writing it?); run again`);
    const setupSeconds = (Date.now() - t0) / 1000;
    const progress = options.progress ? new Progress(options.progress, total, resumedFrom, { intervalMs: options.progressIntervalMs }) : undefined;

    for (let k = 0; k < starts.length; k++) {
      // Keep `prefetch` batches decoding while this one runs.
      while (submitted < starts.length && submitted <= k + prefetch) submit(submitted++);
      const decoded = await decoding.get(k)!;
      decoding.delete(k);
      const start = starts[k];
      const end = Math.min(start + batch, total);
      const skipped = decoded.failures.map(({ index, reason }) => {
        const item = dataset.items[start + index];
        return { index: start + index, id: item.id, path: item.path, reason };
      });
      if (options.strict && skipped.length) {
        throw new Error(`${skipped[0].path}: ${skipped[0].reason} (--strict: stopping; ${start} images done are kept in the checkpoint)`);
      }
      const n = decoded.kept.length;
      const outputs: Float32Array[] = [];
      if (n > 0) {
        for (let m = 0; m < runners.length; m++) {
          const input = new Float32Array(decoded.buffers[specOf[m]], 0, n * sizes[specOf[m]]);
          const result = await runners[m].run(input, n);
          outputs.push(result.embeddings, ...(result.logits ? [result.logits] : []));
        }
      } else {
        dims.forEach(() => outputs.push(new Float32Array(0)));
      }
      checkpoint.append(end, n, outputs, skipped);
      spare.push(decoded.buffers);
      progress?.update(end);
    }
    await checkpoint.flush();
    progress?.finish();

    // Assemble: the checkpoint's rows, named by the ids of the images not skipped.
    const record = checkpoint.progress;
    const skippedAt = new Set(record.skipped.map((s) => s.index));
    const kept = dataset.items.filter((_, i) => !skippedAt.has(i));
    const ids = kept.map((i) => i.id);
    const labels = dataset.labelled ? kept.map((i) => i.label!) : undefined;
    if (record.rows !== ids.length) throw new Error(`${checkpoint.dir}: expected ${ids.length} rows, the checkpoint holds ${record.rows}; pass --restart`);
    let k = 0;
    for (const t of targets) {
      for (const file of [t.out, ...(t.logits ? [t.logits] : [])]) {
        const matrix = new Matrix(checkpoint.read(k), record.rows, dims[k]);
        saveEmbeddings(file, labels ? { matrix, ids, labels } : { matrix, ids });
        k++;
      }
    }
    const run = record.runs[record.runs.length - 1];
    const seconds = (Date.now() - t0) / 1000;
    const summary: ExtractSummary = {
      total,
      rows: record.rows,
      skipped: record.skipped,
      resumedFrom,
      computed: run.computed,
      batches: run.batches,
      seconds,
      setupSeconds,
      imagesPerSecond: seconds > setupSeconds ? run.computed / (seconds - setupSeconds) : 0,
      models: runners.map((r, m) => ({
        id: r.loaded.card.id,
        source: r.loaded.source,
        provider: r.provider,
        ...(r.fallback ? { fallback: r.fallback } : {}),
        origins: r.loaded.origins,
        out: targets[m].out,
        ...(targets[m].logits ? { logits: targets[m].logits } : {}),
        dim: r.embeddingDim,
        ...(r.classes !== undefined ? { classes: r.classes } : {}),
      })),
      checkpoint: checkpoint.dir,
      ...(alignSummary ? { align: alignSummary } : {}),
    };
    await checkpoint.remove();
    checkpoint = undefined;
    return summary;
  } finally {
    await pool?.close();
    await checkpoint?.close();
    for (const r of runners) await r.close();
  }
}
