import * as path from 'node:path';
import { openDataset } from '../../datasets';
import { extractOnQueue } from '../../cluster/coordinator';
import { extract } from '../../extract/pipeline';
import { PICKS } from '../../faces/align';
import { FALLBACKS } from '../../faces/stage';
import { DEVICES, type Device } from '../../onnx/runtime';
import { UsageError, type Command } from '../command';

const USAGE =
  'embmap extract --model CARD.json|MODEL.onnx --images DIR|MANIFEST --out emb.npy [--logits logits.npy] [--batch N]\n' +
  '    [--device cpu|cuda|auto] [--workers N] [--threads N] [--strict] [--restart] [--root DIR] [--subset all|pairs] [--quiet]\n' +
  '    [--align [--align-cache DIR] [--align-fallback skip|centre] [--align-pick central|largest|confident]]\n' +
  '  Several models in one pass (images decoded once): repeat --model and --out in the same order, and\n' +
  '  --logits once per model ("-" for none). A killed run resumes from <out>.partial when run again.\n' +
  '  --align: detect and align faces first (BlazeFace, ArcFace template), cached in --align-cache (default:\n' +
  '  .embmap-align beside the first --out) so other networks reuse the detection pass; an image without a\n' +
  '  usable face is reported and skipped, or embedded from a centred crop with --align-fallback centre.\n' +
  '  --queue redis://HOST:PORT/DB [--shard-size N] [--shared DIR] [--stats SRC:TGT]: run the pass as BullMQ jobs\n' +
  '  taken by `embmap worker` processes on any machines (docs/CLUSTER.md); shards go to --shared (default\n' +
  '  <out>.shards, a folder every worker mounts), --stats keeps each shard\'s statistics for `embmap fit --stats`.';

export const extractCommand: Command = {
  name: 'extract',
  summary: 'embeddings (and logits) of images through ONNX models, resumable',
  usage: USAGE,
  flags: {
    model: 'strings', images: 'string', out: 'strings', logits: 'strings', batch: 'number', workers: 'number',
    threads: 'number', device: 'string', strict: 'boolean', restart: 'boolean', root: 'string', subset: 'string', quiet: 'boolean',
    align: 'boolean', 'align-cache': 'string', 'align-fallback': 'string', 'align-pick': 'string',
    queue: 'string', 'shard-size': 'number', shared: 'string', stats: 'strings',
  },
  async run(args) {
    const models = (args.model as string[] | undefined) ?? [];
    const outs = (args.out as string[] | undefined) ?? [];
    const logits = (args.logits as string[] | undefined) ?? [];
    if (models.length === 0) throw new UsageError(`--model: expected a card (.json) or model (.onnx)\nusage: ${USAGE}`);
    if (typeof args.images !== 'string') throw new UsageError(`--images: expected a folder or manifest\nusage: ${USAGE}`);
    if (outs.length !== models.length) throw new UsageError(`--out: expected one per --model (${models.length}), received ${outs.length}`);
    if (logits.length !== 0 && logits.length !== models.length) {
      throw new UsageError(`--logits: expected one per --model (${models.length}; "-" for none), received ${logits.length}`);
    }
    const device = (args.device as string | undefined) ?? 'cpu';
    if (!(DEVICES as readonly string[]).includes(device)) throw new UsageError(`--device: expected one of ${DEVICES.join(', ')}, received '${device}'`);
    const subset = args.subset as string | undefined;
    if (subset !== undefined && subset !== 'all' && subset !== 'pairs') throw new UsageError(`--subset: expected 'all' or 'pairs', received '${subset}'`);
    const fallback = (args['align-fallback'] as string | undefined) ?? 'skip';
    if (!(FALLBACKS as readonly string[]).includes(fallback)) throw new UsageError(`--align-fallback: expected one of ${FALLBACKS.join(', ')}, received '${fallback}'`);
    const pick = (args['align-pick'] as string | undefined) ?? 'central';
    if (!(PICKS as readonly string[]).includes(pick)) throw new UsageError(`--align-pick: expected one of ${PICKS.join(', ')}, received '${pick}'`);
    const alignOnly = ['align-cache', 'align-fallback', 'align-pick'].find((f) => args[f] !== undefined);
    if (alignOnly && !args.align) throw new UsageError(`--${alignOnly}: only applies with --align`);
    const integer = (flag: string) => {
      const v = args[flag];
      if (v !== undefined && (!Number.isInteger(v) || (v as number) < 1)) throw new UsageError(`--${flag}: expected an integer >= 1, received ${v}`);
      return v as number | undefined;
    };

    const clusterOnly = ['shard-size', 'shared', 'stats'].find((f) => args[f] !== undefined);
    if (clusterOnly && args.queue === undefined) throw new UsageError(`--${clusterOnly}: only applies with --queue`);
    const dataset = openDataset(args.images, { root: args.root as string | undefined, subset: subset as 'all' | 'pairs' | undefined });
    const targets = models.map((model, i) => ({ model, out: outs[i], ...(logits[i] && logits[i] !== '-' ? { logits: logits[i] } : {}) }));
    const say = (line: string) => process.stdout.write(line + '\n');
    if (args.queue !== undefined) {
      const unsupported = ['align', 'restart', 'workers', 'threads', 'device'].find((f) => args[f] !== undefined);
      if (unsupported) throw new UsageError(`--${unsupported}: not with --queue (${unsupported === 'align' ? 'align in a single-process pass first' : 'set it on each `embmap worker`'})`);
      const stats = ((args.stats as string[] | undefined) ?? []).map((p) => {
        const pair = p.split(':');
        if (pair.length !== 2 || !pair[0] || !pair[1]) throw new UsageError(`--stats: expected SOURCE_ID:TARGET_ID (two model ids), received '${p}'`);
        return pair as [string, string];
      });
      const s = await extractOnQueue({
        dataset, targets, queue: args.queue as string, batch: integer('batch'), shardSize: integer('shard-size'),
        shared: args.shared as string | undefined, stats, strict: !!args.strict, progress: args.quiet ? null : process.stderr,
      });
      for (const m of s.models) {
        say(`wrote ${m.out}: ${s.rows} x ${m.dim} float32 embeddings of ${m.id}`);
        if (m.logits) say(`wrote ${m.logits}: ${s.rows} x ${m.classes} float32 logits of ${m.id}`);
      }
      for (const st of s.stats) say(`statistics ${st.source} -> ${st.target} of every shard in ${st.dir} (embmap fit --stats ${st.dir})`);
      say(`${dataset.kind} ${args.images}: ${s.total} images, ${s.rows} rows in ${s.shards} shards (${s.resumedShards} done by an earlier run), run ${s.run}`);
      say(`${s.imagesPerSecond.toFixed(1)} images/s across the workers; ${s.seconds.toFixed(1)} s in all`);
      for (const k of s.skipped) say(`  skipped ${k.path}: ${k.reason}`);
      return;
    }
    const summary = await extract({
      dataset,
      targets,
      batch: integer('batch'),
      workers: integer('workers'),
      threads: integer('threads'),
      device: device as Device,
      strict: !!args.strict,
      restart: !!args.restart,
      progress: args.quiet ? null : process.stderr,
      ...(args.align ? {
        align: {
          cache: (args['align-cache'] as string | undefined) ?? path.join(path.dirname(outs[0]), '.embmap-align'),
          fallback: fallback as (typeof FALLBACKS)[number],
          pick: pick as (typeof PICKS)[number],
          device: device as Device,
        },
      } : {}),
    });

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
      if (m.assumed.length) say(`${m.id}: not in the card or graph, assumed defaults for ${m.assumed.join(', ')} (write a card to set them)`);
      say(`wrote ${m.out}: ${summary.rows} x ${m.dim} float32 embeddings of ${m.id} (${m.provider})`);
      if (m.logits) say(`wrote ${m.logits}: ${summary.rows} x ${m.classes} float32 logits of ${m.id}`);
    }
    const labelled = dataset.labelled ? `, ids and labels in the .ids.tsv sidecars` : ', ids in the .ids.tsv sidecars';
    say(`${dataset.kind} ${args.images}: ${summary.total} images, ${summary.rows} rows${labelled}`);
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
