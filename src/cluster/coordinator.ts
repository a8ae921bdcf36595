// The coordinator of a cluster extraction: plans the pass like the single-process one, enqueues one
// job per shard not yet in the shared folder, shows cluster-wide progress until every shard is done
// or has failed for good, then assembles the same .npy/.safetensors + .ids.tsv files as
// the single-process pass, in the same order. Started again with the same arguments (after a crash,
// or to retry failed shards) it picks up the queue and the finished shards instead of starting over.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { allocate } from '../core/matrix';
import { assertInteger, fail } from '../core/validate';
import type { SkippedImage } from '../extract/checkpoint';
import { type ExtractOptions, type ShardRange, planExtraction, shardRanges, writeOutputs } from '../extract/plan';
import { formatDuration } from '../extract/progress';
import { writeFileAtomic } from '../io/atomic';
import { VERSION } from '../version';
import type { JobStats, ShardJob } from './job';
import { QUEUE_NAME, assertReachable, bullmq, connectionOptions, jobId, parseRedisUrl } from './queue';
import { assertWritable, readShard, shardFile, shardsDir, shardsPresent } from './shard-files';

export interface ClusterExtractOptions extends Omit<ExtractOptions, 'align' | 'restart' | 'workers' | 'prefetch' | 'device' | 'threads'> {
  /** redis://HOST:PORT/DB */
  queue: string;
  /** Images per shard (default 256; a multiple of batch, so batches are the single-process pass's). */
  shardSize?: number;
  /** The folder every worker writes (default: beside the first output, <out>.shards). */
  shared?: string;
  /** Statistics to accumulate per shard, as [source model id, target model id]. */
  stats?: [string, string][];
  /** Tries per shard before it counts as failed (default 3). */
  attempts?: number;
  /** How often the coordinator looks at the queue (default 500 ms). */
  pollMs?: number;
}

export interface ClusterSummary {
  run: string;
  total: number;
  rows: number;
  skipped: SkippedImage[];
  shards: number;
  /** Shards already in the shared folder when this coordinator started. */
  resumedShards: number;
  seconds: number;
  /** Images of the shards done during this call, per second of it. */
  imagesPerSecond: number;
  models: { id: string; out: string; logits?: string; dim: number; classes?: number }[];
  shared: string;
  /** Statistics folders, one per asked pair (for `embmap fit --stats`). */
  stats: { source: string; target: string; dir: string }[];
}

/** Runs the pass on the queue; see the file comment. Throws, naming each failed shard and why, when some shards failed for good. */
export async function extractOnQueue(options: ClusterExtractOptions): Promise<ClusterSummary> {
  if ('align' in options && (options as ExtractOptions).align) fail(RangeError, 'align', 'no face alignment with a queue (align in a single-process pass first)', 'align');
  const target = parseRedisUrl('queue', options.queue);
  const batch = options.batch ?? 32;
  const shardSize = options.shardSize ?? Math.max(256, batch);
  assertInteger('shardSize', shardSize, 1);
  if (shardSize % batch !== 0) throw new RangeError(`shardSize: expected a multiple of the batch size ${batch} (so the batches are the single-process pass's), received ${shardSize}`);
  const attempts = options.attempts ?? 3;
  const pollMs = options.pollMs ?? 500;
  assertInteger('attempts', attempts, 1, 100);
  assertInteger('pollMs', pollMs, 10);
  const t0 = Date.now();
  const plan = await planExtraction({ ...options, batch, workers: 1 });
  const total = plan.dataset.items.length;
  const shared = path.resolve(options.shared ?? `${plan.targets[0].out}.shards`);
  const ids = plan.prepared.map((p) => p.loaded.card.id);
  const stats: JobStats[] = (options.stats ?? []).map(([s, t], i) => {
    const source = ids.indexOf(s), tgt = ids.indexOf(t);
    if (source < 0 || tgt < 0) throw new RangeError(`stats[${i}]: expected two of the models ${ids.join(', ')}, received ${s}:${t}`);
    return { source, target: tgt, name: `${s}--${t}`.replace(/[^\w.+-]/g, '_') };
  });
  // The run: what is computed, by which embmap; two runs on one Redis differ here and stay apart.
  const run = createHash('sha256').update(JSON.stringify({ VERSION, fingerprint: plan.fingerprint, dims: plan.dims, batch, shardSize, strict: plan.strict, maxPixels: plan.maxPixels, stats })).digest('hex').slice(0, 16);
  const ranges = shardRanges(total, shardSize);

  await assertReachable(target);
  assertWritable(shardsDir(shared), 'shared folder');
  const runFile = path.join(shared, 'run.json');
  if (fs.existsSync(runFile)) {
    const other = JSON.parse(fs.readFileSync(runFile, 'utf8')).run;
    if (other !== run) throw new Error(`${shared}: the shared folder holds shards of another run (${other}, this one is ${run}: other models, images or options); remove it or pass another shared folder`);
  }
  writeFileAtomic(runFile, [Buffer.from(JSON.stringify({ run, embmap: VERSION, total, shards: ranges.length, shardSize, models: plan.prepared.map((p, m) => ({ id: ids[m], source: p.loaded.source, sha256: p.sha256 })) }, null, 1) + '\n')]);

  const { Queue } = bullmq();
  const queue = new Queue<ShardJob>(QUEUE_NAME, { connection: connectionOptions(target) });
  queue.on('error', () => undefined); // Redis away: the calls below fail and are retried
  const jobOf = (r: ShardRange): { name: string; data: ShardJob; opts: object } => ({
    name: 'shard',
    data: {
      version: VERSION, run, shared, shard: r, shards: ranges.length, batch, strict: plan.strict, maxPixels: plan.maxPixels, stats,
      models: plan.prepared.map((p, m) => ({ loaded: p.loaded, sha256: p.sha256, id: ids[m], logits: p.classes !== undefined })),
      items: plan.items.slice(r.start, r.end),
    },
    opts: { jobId: jobId(run, r.index), attempts, backoff: { type: 'fixed', delay: 1000 }, removeOnComplete: true, removeOnFail: false },
  });
  const log = (line: string) => options.progress?.write(`${line}\n`);
  const isOurs = (id: string) => id.startsWith(`${run}-`);
  const shardOf = (id: string) => Number(id.slice(run.length + 1));

  /** Queues every shard not done; shards already queued are left as they are, failed ones are tried again. */
  const enqueue = async (done: Set<number>) => {
    for (const id of (await queue.getRanges(['failed'], 0, -1)).filter(isOurs)) {
      if (!done.has(shardOf(id))) await (await queue.getJob(id))?.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true });
    }
    const missing = ranges.filter((r) => !done.has(r.index));
    for (let i = 0; i < missing.length; i += 500) await queue.addBulk(missing.slice(i, i + 500).map(jobOf));
  };

  try {
    const resumed = shardsPresent(shared);
    const resumedShards = ranges.filter((r) => resumed.has(r.index)).length;
    await enqueue(resumed);
    log(`run ${run}: ${ranges.length} shards of ${shardSize} images on ${target.url} (${resumedShards} already done), shared folder ${shared}`);

    // Cluster-wide progress until every shard is done or failed for good.
    const tStart = Date.now();
    const imagesAtStart = ranges.filter((r) => resumed.has(r.index)).reduce((a, r) => a + r.end - r.start, 0);
    let failed = new Map<number, string>();
    const retried = new Set<string>();
    let lastLine = 0, redisDown = false;
    for (;;) {
      const present = shardsPresent(shared);
      const done = ranges.filter((r) => present.has(r.index));
      let running = 0;
      try {
        if (redisDown) await enqueue(present); // Redis came back, perhaps empty: every shard not done is queued again
        redisDown = false;
        running = (await queue.getRanges(['active'], 0, -1)).filter(isOurs).length;
        const nowFailed = new Map<number, string>();
        for (const id of (await queue.getRanges(['failed'], 0, -1)).filter(isOurs)) {
          if (present.has(shardOf(id))) continue;
          nowFailed.set(shardOf(id), failed.get(shardOf(id)) ?? (await queue.getJob(id))?.failedReason ?? 'unknown');
        }
        for (const [shard, reason] of nowFailed) if (!failed.has(shard)) log(`shard ${shard} failed after ${attempts} tries: ${reason}`);
        failed = nowFailed;
        // A try that failed and waits for its retry: shown once, with its reason.
        for (const id of (await queue.getRanges(['delayed'], 0, -1)).filter(isOurs)) {
          const job = await queue.getJob(id);
          const key = `${id} ${job?.attemptsMade}`;
          if (!job || retried.has(key)) continue;
          retried.add(key);
          log(`shard ${shardOf(id)}: try ${job.attemptsMade} of ${attempts} failed (${job.failedReason}); retrying`);
        }
      } catch (err) {
        if (!redisDown) log(`${target.url}: ${(err as Error).message}; waiting for Redis`);
        redisDown = true;
      }
      const images = done.reduce((a, r) => a + r.end - r.start, 0);
      const finished = done.length + failed.size === ranges.length;
      if (options.progress && (finished || Date.now() - lastLine >= (options.progressIntervalMs ?? 5000))) {
        lastLine = Date.now();
        const rate = (images - imagesAtStart) / ((Date.now() - tStart) / 1000);
        const eta = rate > 0 ? `ETA ${formatDuration((total - images) / rate)}` : 'ETA ?';
        log(`shards ${done.length}/${ranges.length} done, ${running} running, ${failed.size} failed; ${images}/${total} images ${rate.toFixed(1)} img/s ${finished ? `in ${formatDuration((Date.now() - tStart) / 1000)}` : eta}`);
      }
      if (finished) break;
      await new Promise((resolve) => setTimeout(resolve, pollMs));
    }
    if (failed.size > 0) {
      const list = [...failed].sort((a, b) => a[0] - b[0]).slice(0, 5).map(([s, reason]) => `shard ${s} (images ${ranges[s].start}-${ranges[s].end - 1}): ${reason}`);
      throw new Error(`${failed.size} of ${ranges.length} shards failed for good (${list.join('; ')}${failed.size > 5 ? '; ...' : ''}); the queue keeps them: run the same command again to retry them`);
    }

    // Assemble, in shard order: the same files as the single-process pass, one output in memory at a time.
    const shards = ranges.map((r) => readShard(shardFile(shared, r.index), run, r, plan.dims, -1));
    const rows = shards.reduce((a, s) => a + s.rows, 0);
    const skipped = shards.flatMap((s) => s.skipped);
    writeOutputs(plan, skipped, rows, (k) => {
      const out = allocate('float32', rows * plan.dims[k]) as Float32Array;
      let at = 0;
      for (const r of ranges) {
        const [rowsOfK] = readShard(shardFile(shared, r.index), run, r, plan.dims, k).outputs;
        out.set(rowsOfK, at);
        at += rowsOfK.length;
      }
      return out;
    }, shared);
    fs.rmSync(shardsDir(shared), { recursive: true, force: true });
    fs.rmSync(runFile, { force: true });
    try {
      fs.rmdirSync(shared); // only when empty: no statistics kept, nothing else put there
    } catch {}
    const seconds = (Date.now() - t0) / 1000;
    return {
      run, total, rows, skipped, shards: ranges.length, resumedShards, seconds,
      imagesPerSecond: (total - imagesAtStart) / ((Date.now() - tStart) / 1000),
      models: plan.prepared.map((p, m) => ({
        id: ids[m], out: plan.targets[m].out, ...(plan.targets[m].logits ? { logits: plan.targets[m].logits } : {}),
        dim: p.embeddingDim, ...(p.classes !== undefined ? { classes: p.classes } : {}),
      })),
      shared,
      stats: stats.map((s) => ({ source: ids[s.source], target: ids[s.target], dir: path.join(shared, 'stats', s.name) })),
    };
  } finally {
    await queue.close();
  }
}
