// A worker process: takes shard jobs from the queue, embeds each shard (the models opened once per
// process and kept), writes its statistics and then its rows atomically to the shared folder, and
// reports the shard done. A job it cannot do (another embmap version, a model file that differs
// from the coordinator's or does not load, a shared folder it cannot write) fails with the reason,
// which the coordinator shows; BullMQ retries it, possibly on another worker.
import * as os from 'node:os';
import * as path from 'node:path';
import { assertInteger } from '../core/validate';
import { allocate, Matrix } from '../core/matrix';
import { SufficientStats } from '../engine/stats';
import type { SkippedImage } from '../extract/checkpoint';
import { DecodePool } from '../extract/decode-pool';
import { RangeEmbedder } from '../extract/embed';
import { planModels } from '../extract/plan';
import { type ModelRunner, PreparedModel } from '../extract/runner';
import { modelHandle } from '../models/handle';
import type { RuntimeOptions } from '../onnx/session-options';
import { VERSION } from '../version';
import type { JobModel, ShardJob, ShardResult } from './job';
import { QUEUE_NAME, assertReachable, bullmq, connectionOptions, parseRedisUrl } from './queue';
import { assertWritable, shardFile, shardsDir, writeShard } from './shard-files';
import { writeStats } from './stats-files';

export interface WorkerOptions extends RuntimeOptions {
  /** redis://HOST:PORT/DB */
  queue: string;
  /** Decode worker threads (default: half the cores, 1 to 4). */
  workers?: number;
  /** How long a job's lock lasts without renewal: a worker silent for this long (killed) loses its shard (default 30 s). */
  lockMs?: number;
  /** How often stalled jobs are looked for (default 30 s). */
  stalledMs?: number;
  /** One line per shard done or failed; null for none. */
  log?: { write(text: string): unknown } | null;
}

export interface RunningWorker {
  /** Stops taking jobs and waits for the current one to finish. */
  close(): Promise<void>;
}

/** Connects to the queue and starts taking jobs; see the file comment. */
export async function startWorker(options: WorkerOptions): Promise<RunningWorker> {
  const target = parseRedisUrl('queue', options.queue);
  const decodeWorkers = options.workers ?? Math.max(1, Math.min(4, Math.floor(os.cpus().length / 2)));
  assertInteger('workers', decodeWorkers, 1, 64);
  const lockDuration = options.lockMs ?? 30000;
  const stalledInterval = options.stalledMs ?? 30000;
  assertInteger('lockMs', lockDuration, 100);
  assertInteger('stalledMs', stalledInterval, 100);
  await assertReachable(target);

  const me = `${os.hostname()}:${process.pid}`;
  const log = (line: string) => options.log?.write(`${new Date().toISOString()} ${me} ${line}\n`);
  const runners = new Map<string, Promise<ModelRunner>>();
  const pool = new DecodePool(decodeWorkers);
  const runtime: RuntimeOptions = { device: options.device, threads: options.threads };

  /** Each model opened once per process; a failure is not kept, so a fixed file is picked up by the next job. */
  const runnerFor = (m: JobModel): Promise<ModelRunner> => {
    const key = `${m.loaded.onnxPath}\0${JSON.stringify(m.loaded.card)}\0${m.sha256}\0${m.logits}`;
    let r = runners.get(key);
    if (!r) {
      r = (async () => {
        const handle = modelHandle(m.loaded);
        if (handle.sha256 !== m.sha256) {
          throw new Error(`${handle.loaded.onnxPath}: this worker's model file differs from the coordinator's (sha256 ${handle.sha256.slice(0, 12)}…, expected ${m.sha256.slice(0, 12)}…)`);
        }
        return PreparedModel.prepare(handle, { logits: m.logits }).open(runtime);
      })();
      runners.set(key, r);
      r.catch(() => runners.delete(key));
    }
    return r;
  };

  const embedShard = async (job: { data: ShardJob }): Promise<ShardResult> => {
    const t0 = Date.now();
    const d = job.data;
    if (d.version !== VERSION) throw new Error(`shard ${d.shard.index} of run ${d.run}: planned by embmap ${d.version}, this worker runs ${VERSION}`);
    assertWritable(shardsDir(d.shared), 'shared folder');
    const opened = await Promise.all(d.models.map(runnerFor));
    const models = planModels(opened.map((r) => r.prepared));
    const { start, end } = d.shard;
    const n = end - start;
    const outputs = models.dims.map((dim) => allocate('float32', n * dim) as Float32Array);
    const skipped: SkippedImage[] = [];
    let rows = 0;
    const range = new RangeEmbedder({ ...models, dataset: { items: d.items }, items: d.items, batch: d.batch, prefetch: decodeWorkers + 1, strict: d.strict, maxPixels: d.maxPixels }, pool, 0, n);
    await range.run(opened, (b) => {
      b.outputs.forEach((o, k) => outputs[k].set(o, rows * models.dims[k]));
      rows += b.n;
      skipped.push(...b.skipped.map((s) => ({ ...s, index: s.index + start })));
    });
    const out = outputs.map((o, k) => o.subarray(0, rows * models.dims[k]));
    // Output k of model m: its embedding comes first among its outputs.
    const embeddingOutput = d.models.map((_, m) => d.models.slice(0, m).reduce((k, mm) => k + (mm.logits ? 2 : 1), 0));
    for (const s of d.stats) {
      const [ks, kt] = [embeddingOutput[s.source], embeddingOutput[s.target]];
      const stats = new SufficientStats(models.dims[ks], models.dims[kt]);
      if (rows > 0) await stats.update(new Matrix(out[ks], rows, models.dims[ks]), new Matrix(out[kt], rows, models.dims[kt]));
      const dir = path.join(d.shared, 'stats', s.name);
      assertWritable(dir, 'shared folder');
      writeStats(path.join(dir, path.basename(shardFile(d.shared, d.shard.index))), stats, {
        run: d.run, shard: d.shard.index, shards: d.shards, source: d.models[s.source].id, target: d.models[s.target].id,
      });
    }
    writeShard(shardFile(d.shared, d.shard.index), d.run, d.shard, models.dims, { rows, outputs: out, skipped });
    const seconds = (Date.now() - t0) / 1000;
    log(`shard ${d.shard.index} of run ${d.run}: ${n} images in ${seconds.toFixed(2)} s (${(n / seconds).toFixed(1)} img/s)`);
    return { rows, images: n, seconds, worker: me };
  };

  const { Worker } = bullmq();
  const worker = new Worker(QUEUE_NAME, embedShard, {
    connection: connectionOptions(target),
    concurrency: 1,
    lockDuration,
    stalledInterval,
    maxStalledCount: 2,
  });
  worker.on('failed', (job, err) => log(`shard ${job?.data.shard.index} of run ${job?.data.run} failed: ${err.message}`));
  worker.on('error', (err) => log(`queue: ${err.message}`));
  await worker.waitUntilReady();
  log(`taking shards from ${target.url}`);
  return {
    async close() {
      await worker.close();
      await pool.close();
      for (const r of runners.values()) await (await r.catch(() => undefined))?.close();
    },
  };
}
