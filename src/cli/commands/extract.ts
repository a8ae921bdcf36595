import * as path from 'node:path';
import { openDataset } from '../../datasets';
import { extractOnQueue } from '../../cluster/coordinator';
import { extract } from '../../extract/pipeline';
import { openModel } from '../../models/resolve';
import { PICKS } from '../../faces/align';
import { FALLBACKS } from '../../faces/stage';
import { MAX_VIEWS, type ViewOptions } from '../../images/views';
import { DEVICES, type Device } from '../../onnx/session-options';
import type { Dataset } from '../../datasets';
import type { ExtractTarget } from '../../extract/plan';
import { UsageError, type Command, type ParsedArgs } from '../command';

export const extractCommand: Command = {
  name: 'extract',
  summary: 'embeddings (and logits) of images through ONNX models, resumable',
  notes:
    'Several models in one pass (images decoded once): repeat --model and --out in the same order, and\n' +
    '--logits, --preset and --embedding once per model ("-" for none) or once for all. A killed run resumes\n' +
    'from <out>.partial when run again. A bare .onnx runs only when its graph or metadata, --preset or\n' +
    '--embedding settle its card (embmap inspect MODEL.onnx says what is missing; docs/YOUR-MODEL.md).\n' +
    'Catalogue ids are imported once into .embmap-models beside the first --out.\n' +
    '--align: detect and align faces first (BlazeFace, ArcFace template), cached in --align-cache so other\n' +
    'networks reuse the detection pass; an image without a usable face is reported and skipped, or\n' +
    'embedded from a centred crop with --align-fallback centre.\n' +
    '--queue: run the pass as BullMQ jobs, one per shard of images, taken by `embmap worker` processes on any\n' +
    'machines (docs/CLUSTER.md); shards go to --shared, a folder every worker mounts; --stats keeps each\n' +
    'shard\'s statistics for `embmap fit --stats`. --workers, --threads and --device are set on each worker.\n' +
    '--views K: K rows per image, ids <id>#v0 (the plain image) to <id>#v{K-1} (random resized crop, flip, mild\n' +
    'colour jitter, drawn from --seed and the image id: the same pixels for every model, run and shard).',
  flags: {
    model: { type: 'string', value: 'ID|CARD.json|MODEL.onnx', repeatable: true, required: true, description: 'a catalogue id, a card (.json) or a model (.onnx)' },
    images: { type: 'string', value: 'DIR|MANIFEST', required: true, description: 'a folder or manifest' },
    out: { type: 'string', short: 'o', value: 'emb.npy', repeatable: true, required: true, description: 'the embeddings file, one per --model' },
    logits: { type: 'string', value: 'logits.npy', repeatable: true, description: 'the logits file, one per --model ("-" for none)' },
    preset: { type: 'string', value: 'NAME', repeatable: true, description: 'complete a card or bare .onnx with a preset (src/models/presets.ts), once for all or once per --model ("-" for none)' },
    embedding: { type: 'string', value: 'TENSOR', repeatable: true, description: 'the embedding tensor, once for all or once per --model ("-" for none)' },
    batch: { type: 'number', value: 'N', description: 'images per inference batch (default 32)' },
    workers: { type: 'number', value: 'N', description: 'image-decoding worker threads (default: half the cores, 1 to 4)' },
    threads: { type: 'number', value: 'N', description: "ONNX Runtime's threads per model" },
    device: { type: 'string', choices: DEVICES, default: 'cpu', description: 'where the models run' },
    strict: { type: 'boolean', description: 'abort on an unreadable image instead of skipping it' },
    restart: { type: 'boolean', description: 'ignore a checkpoint (<out>.partial) and start over' },
    root: { type: 'string', value: 'DIR', description: "the folder a manifest's paths are relative to" },
    subset: { type: 'string', choices: ['all', 'pairs'], description: "LFW: every image, or only those in pairs.txt's pairs" },
    'max-pixels': { type: 'number', value: 'N', description: 'larger images are skipped as unreadable before decoding (default 40000000)' },
    quiet: { type: 'boolean', short: 'q', description: 'no progress lines' },
    align: { type: 'boolean', description: 'detect and align faces first' },
    'align-cache': { type: 'string', value: 'DIR', description: 'the alignment cache (default: .embmap-align beside the first --out)' },
    'align-fallback': { type: 'string', choices: FALLBACKS, description: 'an image without a usable face is skipped or embedded from a centred crop (default skip)' },
    'align-pick': { type: 'string', choices: PICKS, description: 'which face of several (default central)' },
    views: { type: 'number', value: 'K', description: `embed K views of each image: the plain one and K - 1 augmentations (1 to ${MAX_VIEWS})` },
    seed: { type: 'number', value: 'S', description: 'with --views: the seed of the augmentations (default 0)' },
    json: { type: 'boolean', description: 'print the summary as JSON' },
    queue: { type: 'string', value: 'redis://HOST:PORT/DB', description: 'run on a BullMQ queue in Redis (docs/CLUSTER.md)' },
    'shard-size': { type: 'number', value: 'N', description: 'with --queue: images per shard, a multiple of --batch (default 256)' },
    shared: { type: 'string', value: 'DIR', description: 'with --queue: the folder every worker writes (default <first --out>.shards)' },
    stats: { type: 'string', value: 'SRC:TGT', repeatable: true, description: "with --queue: keep each shard's statistics between two models' embeddings (model ids)" },
  },
  async run(args) {
    const models = args.model as string[], outs = args.out as string[];
    const logits = (args.logits as string[] | undefined) ?? [];
    if (outs.length !== models.length) throw new UsageError(`--out: expected one per --model (${models.length}), received ${outs.length}`);
    if (logits.length !== 0 && logits.length !== models.length) {
      throw new UsageError(`--logits: expected one per --model (${models.length}; "-" for none), received ${logits.length}`);
    }
    // Once for all models or once per model, "-" for none.
    const perModel = (flag: string) => {
      const v = (args[flag] as string[] | undefined) ?? [];
      if (v.length > 1 && v.length !== models.length) throw new UsageError(`--${flag}: expected one per --model (${models.length}; "-" for none) or one for all, received ${v.length}`);
      return models.map((_, i) => (v.length > 1 ? v[i] : v[0]) ?? '-');
    };
    const presets = perModel('preset'), embeddings = perModel('embedding');
    const device = args.device as Device;
    const subset = args.subset as 'all' | 'pairs' | undefined;
    const fallback = (args['align-fallback'] as (typeof FALLBACKS)[number] | undefined) ?? 'skip';
    const pick = (args['align-pick'] as (typeof PICKS)[number] | undefined) ?? 'central';
    // No spec defaults for these three: given without --align they are an error.
    const alignOnly = ['align-cache', 'align-fallback', 'align-pick'].find((f) => args[f] !== undefined);
    if (alignOnly && !args.align) throw new UsageError(`--${alignOnly}: only applies with --align`);
    const integer = (flag: string) => {
      const v = args[flag];
      if (v !== undefined && (!Number.isInteger(v) || (v as number) < 1)) throw new UsageError(`--${flag}: expected an integer >= 1, received ${v}`);
      return v as number | undefined;
    };

    const sizes = { batch: integer('batch'), workers: integer('workers'), threads: integer('threads') };
    const maxPixels = integer('max-pixels');
    const views = viewOptions(args);
    const clusterOnly = ['shard-size', 'shared', 'stats'].find((f) => args[f] !== undefined);
    if (clusterOnly && args.queue === undefined) throw new UsageError(`--${clusterOnly}: only applies with --queue`);
    if (args.queue !== undefined) {
      const unsupported = ['align', 'restart', 'workers', 'threads'].find((f) => args[f] !== undefined) ?? (device !== 'cpu' ? 'device' : undefined);
      if (unsupported) throw new UsageError(`--${unsupported}: not with --queue (${unsupported === 'align' ? 'align in a single-process pass first' : 'set it on each `embmap worker`'})`);
      integer('shard-size');
    }
    const dataset = openDataset(args.images as string, { root: args.root as string | undefined, subset });
    const loaded = [];
    for (const [i, model] of models.entries()) {
      loaded.push(await openModel(model, path.join(path.dirname(outs[0]), '.embmap-models'), {
        ...(presets[i] !== '-' ? { preset: presets[i] } : {}), ...(embeddings[i] !== '-' ? { embedding: embeddings[i] } : {}),
      }));
    }
    const targets = loaded.map((model, i) => ({ model, out: outs[i], ...(logits[i] && logits[i] !== '-' ? { logits: logits[i] } : {}) }));
    if (args.queue !== undefined) return runOnQueue(args, dataset, targets, sizes.batch, maxPixels, views);
    const summary = await extract({
      dataset,
      targets,
      ...sizes,
      maxPixels,
      device,
      strict: !!args.strict,
      restart: !!args.restart,
      ...(views ? { views } : {}),
      progress: args.quiet ? null : process.stderr,
      ...(args.align ? {
        align: {
          cache: (args['align-cache'] as string | undefined) ?? path.join(path.dirname(outs[0]), '.embmap-align'),
          fallback,
          pick,
          device,
        },
      } : {}),
    });

    if (args.json) {
      process.stdout.write(JSON.stringify({ dataset: { kind: dataset.kind, path: args.images, labelled: dataset.labelled }, ...summary }, null, 2) + '\n');
      return;
    }
    const say = (line: string) => process.stdout.write(line + '\n');
    const a = summary.align;
    if (a) {
      const kinds = Object.entries(a.failures).map(([kind, n]) => `${n} ${kind}`).join(', ');
      say(`aligned ${a.aligned} of ${a.images} images (${a.fromCache} from the cache ${a.cache}, ${a.detected} detected now, ${a.severalFaces} with several faces: the most central large one used)`);
      if (a.reports.length) {
        say(`${a.reports.length} without a usable face (${kinds}): ${a.fallback} embedded from a centred crop, ${a.skipped} skipped:`);
        for (const r of a.reports) say(`  ${r.file}: ${r.reason}${r.fallback ? ' (centred crop used)' : ''}`);
      }
    }
    for (const m of summary.models) {
      if (m.fallback) say(`${m.id}: CUDA unavailable (${m.fallback}), ran on the CPU`);
      const from = Object.entries(m.origins).filter(([, o]) => o !== 'card' && o !== 'graph');
      if (from.length) say(`${m.id}: ${from.map(([field, o]) => `${field} from ${o}`).join(', ')}`);
      say(`wrote ${m.out}: ${summary.rows} x ${m.dim} float32 embeddings of ${m.id} (${m.provider})`);
      if (m.logits) say(`wrote ${m.logits}: ${summary.rows} x ${m.classes} float32 logits of ${m.id}`);
    }
    const labelled = dataset.labelled ? `, ids and labels in the .ids.tsv sidecars` : ', ids in the .ids.tsv sidecars';
    const of = views ? `${dataset.items.length} images x ${views.count} views = ${summary.total} items` : `${summary.total} images`;
    say(`${dataset.kind} ${args.images}: ${of}, ${summary.rows} rows${labelled}`);
    if (summary.resumedFrom > 0) say(`resumed: ${summary.resumedFrom} images were already done; this run computed ${summary.computed} in ${summary.batches} batches`);
    else say(`computed ${summary.computed} images in ${summary.batches} batches`);
    say(`${summary.imagesPerSecond.toFixed(1)} images/s; ${summary.seconds.toFixed(1)} s in all, ${summary.setupSeconds.toFixed(1)} s of it loading the model(s)`);
    const unreadable = summary.skipped.filter((s) => !s.reason.startsWith('alignment: '));
    if (unreadable.length) {
      say(`skipped ${unreadable.length} unreadable image(s) (--strict aborts instead):`);
      for (const s of unreadable) say(`  ${s.path}: ${s.reason}`);
    }
  },
};

/** extract --queue: the coordinator of a cluster run (docs/CLUSTER.md). */
async function runOnQueue(args: ParsedArgs, dataset: Dataset, targets: ExtractTarget[], batch: number | undefined, maxPixels: number | undefined, views: ViewOptions | undefined): Promise<void> {
  const stats = ((args.stats as string[] | undefined) ?? []).map((p) => {
    const pair = p.split(':');
    if (pair.length !== 2 || !pair[0] || !pair[1]) throw new UsageError(`--stats: expected SOURCE_ID:TARGET_ID (two model ids), received '${p}'`);
    return pair as [string, string];
  });
  const s = await extractOnQueue({
    dataset, targets, queue: args.queue as string, batch, shardSize: args['shard-size'] as number | undefined,
    shared: args.shared as string | undefined, stats, strict: !!args.strict, maxPixels, progress: args.quiet ? null : process.stderr, ...(views ? { views } : {}),
  });
  if (args.json) {
    process.stdout.write(JSON.stringify({ dataset: { kind: dataset.kind, path: args.images, labelled: dataset.labelled }, ...s }, null, 2) + '\n');
    return;
  }
  const say = (line: string) => process.stdout.write(line + '\n');
  for (const m of s.models) {
    say(`wrote ${m.out}: ${s.rows} x ${m.dim} float32 embeddings of ${m.id}`);
    if (m.logits) say(`wrote ${m.logits}: ${s.rows} x ${m.classes} float32 logits of ${m.id}`);
  }
  for (const st of s.stats) say(`statistics ${st.source} -> ${st.target} of every shard in ${st.dir} (embmap fit --stats ${st.dir})`);
  say(`${dataset.kind} ${args.images}: ${s.total} images, ${s.rows} rows in ${s.shards} shards (${s.resumedShards} done by an earlier run), run ${s.run}`);
  say(`${s.imagesPerSecond.toFixed(1)} images/s across the workers; ${s.seconds.toFixed(1)} s in all`);
  for (const k of s.skipped) say(`  skipped ${k.path}: ${k.reason}`);
}

/** --views and --seed: a whole number of views in [1, MAX_VIEWS]; --seed only with --views. */
function viewOptions(args: ParsedArgs): ViewOptions | undefined {
  const { views, seed } = args;
  if (views === undefined) {
    if (seed !== undefined) throw new UsageError('--seed: only applies with --views');
    return undefined;
  }
  const count = viewCount(views, 'image');
  if (seed !== undefined && (!Number.isInteger(seed) || (seed as number) < 0 || (seed as number) > 2 ** 32 - 1)) {
    throw new UsageError(`--seed: expected an integer from 0 to ${2 ** 32 - 1}, received ${seed}`);
  }
  return { count, ...(seed !== undefined ? { seed: seed as number } : {}) };
}

/** --views's value (extract's and the experiment's): a whole number of views per `what` in [1, MAX_VIEWS]. */
export function viewCount(views: unknown, what: string): number {
  if (!Number.isInteger(views) || (views as number) < 1 || (views as number) > MAX_VIEWS) {
    throw new UsageError(`--views: expected a whole number of views per ${what} from 1 to ${MAX_VIEWS}, received ${views}`);
  }
  return views as number;
}
