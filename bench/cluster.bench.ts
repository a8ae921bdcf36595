// Cluster extraction (issue 16) on this machine, against a redis-server started here:
//  (1) coordination cost: no-op shard jobs (each carrying a 256-image item list like a real shard)
//      enqueued, taken, reported and completed through BullMQ with 1, 2, 8 and 32 worker processes,
//      the worker counts interleaved in two rounds (1 2 8 32, then 32 8 2 1);
//  (2) real shards: the single-process extract() against `embmap worker` x 2 (one ONNX Runtime
//      thread each, the model already open) fed by the coordinator, on the same images and model,
//      in ABBA order.
// Writes bench/results/cluster.json and the "cluster" section of bench/RESULTS.md.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { extractOnQueue } from '../src/cluster/coordinator';
import { bullmq, connectionOptions, parseRedisUrl } from '../src/cluster/queue';
import { makeRng } from '../src/evaluate/split';
import { extract } from '../src/extract/pipeline';
import { writeFileAtomic } from '../src/io/atomic';
import { cardFromOnnx } from '../src/models/load';
import { convNet } from '../test/helpers/cnn';
import { writeModel } from '../src/onnx/proto';
import { RedisServer } from '../test/helpers/redis';
import { REPO } from './common';
import { benchImages, resnet18Like } from './extract-inputs';
import { describeMachine, type Machine } from './machine';
import { machineLines, updateResultsFile } from './report';

const NOOP_QUEUE = 'embmap-bench-noop';
const NOOP_JOBS = Number(process.env.BENCH_NOOP_JOBS ?? 1000);
const WORKER_COUNTS = [1, 2, 8, 32];
const IMAGES = Number(process.env.BENCH_IMAGES ?? 384);
const BATCH = 16;
const SHARD = 64;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 2);
const CLI = path.join(REPO, 'dist', 'src', 'cli', 'main.js');

/** A no-op worker process: takes jobs and completes them at once. */
async function noopWorker(url: string): Promise<void> {
  const { Worker } = bullmq();
  const worker = new Worker(NOOP_QUEUE, async () => ({ rows: 0 }), { connection: connectionOptions(parseRedisUrl('url', url)), concurrency: 1 });
  await worker.waitUntilReady();
  process.stdout.write('ready\n');
  process.once('SIGTERM', () => void worker.close().then(() => process.exit(0)));
}

function spawnReady(args: string[], ready: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  return new Promise((resolve, reject) => {
    let text = '';
    const look = (d: Buffer) => {
      text += d;
      if (text.includes(ready)) resolve(child);
    };
    child.stdout!.on('data', look);
    child.stderr!.on('data', look);
    child.once('exit', (code) => reject(new Error(`${args.join(' ')} exited (${code}): ${text}`)));
  });
}

async function stopAll(children: ChildProcess[]): Promise<void> {
  await Promise.all(children.map((c) => new Promise<void>((resolve) => {
    if (c.exitCode !== null) return resolve();
    c.removeAllListeners('exit');
    c.once('exit', () => resolve());
    c.kill('SIGTERM');
  })));
}

/** CPU time (user + system) a process has used so far, from /proc (10 ms ticks). */
function cpuMsOf(pid: number): number {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
}

/**
 * Per job, with `workers` no-op processes: the wall time from the first enqueue to the last
 * completion, and the CPU time Redis, the workers and this process spent on it (what the queue
 * costs whatever else runs on the machine).
 */
async function coordination(url: string, workers: number, redisPid: number): Promise<{ wallMs: number; cpuMs: number }> {
  const children = await Promise.all(Array.from({ length: workers }, () => spawnReady([__filename, 'noop-worker', url], 'ready')));
  const { Queue } = bullmq();
  const queue = new Queue(NOOP_QUEUE, { connection: connectionOptions(parseRedisUrl('url', url)) });
  try {
    const items = Array.from({ length: 256 }, (_, i) => ({ id: `n01440764/ILSVRC2012_val_${String(i).padStart(8, '0')}.JPEG`, path: `/mnt/imagenet/val/n01440764/ILSVRC2012_val_${String(i).padStart(8, '0')}.JPEG` }));
    const pids = [redisPid, process.pid, ...children.map((c) => c.pid!)];
    const cpu0 = pids.map(cpuMsOf);
    const t = process.hrtime.bigint();
    for (let i = 0; i < NOOP_JOBS; i += 500) {
      await queue.addBulk(Array.from({ length: Math.min(500, NOOP_JOBS - i) }, (_, k) => ({
        name: 'shard', data: { items }, opts: { jobId: `bench-${workers}-${i + k}`, attempts: 3, removeOnComplete: true, removeOnFail: false },
      })));
    }
    for (;;) {
      const c = await queue.getJobCounts('wait', 'active', 'delayed', 'prioritized');
      if (Object.values(c).every((v) => v === 0)) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    const wallMs = Number(process.hrtime.bigint() - t) / 1e6 / NOOP_JOBS;
    const cpuMs = pids.map(cpuMsOf).reduce((a, c, i) => a + c - cpu0[i], 0) / NOOP_JOBS;
    return { wallMs, cpuMs };
  } finally {
    await queue.close();
    await stopAll(children);
  }
}

async function main(): Promise<void> {
  const machine = describeMachine();
  const loadBefore = os.loadavg()[0];
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'embmap-cluster-bench-'));
  const redis = await RedisServer.start(fs.mkdtempSync(path.join(dir, 'redis-')));
  try {
    const url = redis.url();
    // (1) coordination cost per shard.
    const perShardMs: Record<number, number[]> = Object.fromEntries(WORKER_COUNTS.map((w) => [w, []]));
    const cpuPerShardMs: Record<number, number[]> = Object.fromEntries(WORKER_COUNTS.map((w) => [w, []]));
    for (const order of [WORKER_COUNTS, [...WORKER_COUNTS].reverse()]) {
      for (const w of order) {
        const { wallMs, cpuMs } = await coordination(url, w, redis.pid);
        perShardMs[w].push(wallMs);
        cpuPerShardMs[w].push(cpuMs);
        console.error(`no-op shards, ${w} worker process(es): ${wallMs.toFixed(3)} ms per shard, ${cpuMs.toFixed(3)} ms of CPU`);
      }
    }

    // (2) real shards: one process against two workers.
    const net = convNet({ input: { size: [224, 224] }, layers: resnet18Like(), head: { classes: 1000 }, rng: makeRng(2020) });
    const model = path.join(dir, 'resnet18like.onnx');
    writeModel(model, net.model);
    // A bare ONNX file says nothing of its preprocessing: the ImageNet preset completes its card.
    const card = await cardFromOnnx(model, { preset: 'imagenet' });
    const { dataset, source } = benchImages(IMAGES);
    const n = dataset.items.length;
    // Rates after model loading on both sides (the single process's own figure; the cluster from the
    // queued shards to the assembled files, with workers that opened the model in a warm-up run, as
    // long-lived workers have), and end to end.
    const single: number[] = [], cluster: number[] = [], singleE2e: number[] = [], clusterE2e: number[] = [];
    const singleRun = async () => {
      const t = process.hrtime.bigint();
      const s = await extract({ dataset, batch: BATCH, workers: 1, restart: true, targets: [{ model: card, out: path.join(dir, 'single.npy') }] });
      singleE2e.push(n / (Number(process.hrtime.bigint() - t) / 1e9));
      single.push(s.imagesPerSecond);
    };
    const clusterRun = async () => {
      const workers = await Promise.all([0, 1].map(() => spawnReady([CLI, 'worker', '--queue', url, '--threads', '1', '--workers', '1'], 'taking shards')));
      try {
        const warm = { ...dataset, items: dataset.items.slice(0, 2 * SHARD) };
        await extractOnQueue({ dataset: warm, batch: BATCH, shardSize: SHARD, queue: url, targets: [{ model: card, out: path.join(dir, 'warm.npy') }], pollMs: 50 });
        const t = process.hrtime.bigint();
        const s = await extractOnQueue({ dataset, batch: BATCH, shardSize: SHARD, queue: url, targets: [{ model: card, out: path.join(dir, 'cluster.npy') }], pollMs: 50 });
        clusterE2e.push(n / (Number(process.hrtime.bigint() - t) / 1e9));
        cluster.push(s.imagesPerSecond);
      } finally {
        await stopAll(workers);
      }
    };
    for (let round = 0; round < ROUNDS; round++) {
      if (round % 2 === 0) await singleRun().then(clusterRun);
      else await clusterRun().then(singleRun);
      console.error(`round ${round + 1}: single process ${single[round].toFixed(1)} img/s (${singleE2e[round].toFixed(1)} end to end), 2 workers ${cluster[round].toFixed(1)} img/s (${clusterE2e[round].toFixed(1)})`);
    }
    if (!fs.readFileSync(path.join(dir, 'single.npy')).equals(fs.readFileSync(path.join(dir, 'cluster.npy')))) throw new Error('the cluster run wrote other embeddings than the single process');

    const overall = (rates: number[]) => rates.length / rates.reduce((s, r) => s + 1 / r, 0);
    const results = {
      date: new Date().toISOString(),
      machine,
      redis: spawnSync('redis-server', ['--version'], { encoding: 'utf8' }).stdout.trim().split(' ').slice(0, 3).join(' '),
      noop: {
        jobs: NOOP_JOBS, itemsPerJob: 256, perShardMs, cpuPerShardMs,
        best: Object.fromEntries(WORKER_COUNTS.map((w) => [w, Math.min(...perShardMs[w])])),
        cpu: Object.fromEntries(WORKER_COUNTS.map((w) => [w, cpuPerShardMs[w].reduce((a, b) => a + b, 0) / cpuPerShardMs[w].length])),
      },
      real: {
        model: 'ResNet-18-like CNN, random weights, 224x224 (bench/extract-inputs.ts)', images: { count: n, source }, batch: BATCH, shardSize: SHARD,
        single, cluster, singleE2e, clusterE2e,
        overall: { single: overall(single), cluster: overall(cluster), ratio: overall(cluster) / overall(single), singleE2e: overall(singleE2e), clusterE2e: overall(clusterE2e), ratioE2e: overall(clusterE2e) / overall(singleE2e) },
        perRoundRatio: cluster.map((c, i) => c / single[i]),
      },
      loadAverage: { before: loadBefore, after: os.loadavg()[0] },
    };
    const outDir = path.join(REPO, 'bench', 'results');
    fs.mkdirSync(outDir, { recursive: true });
    writeFileAtomic(path.join(outDir, 'cluster.json'), [Buffer.from(JSON.stringify(results, null, 2) + '\n')]);
    updateResultsFile(path.join(REPO, 'bench', 'RESULTS.md'), 'cluster', render(results));
    console.log(JSON.stringify({ noop: results.noop.best, real: results.real.overall }));
  } finally {
    await redis.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function render(r: {
  date: string; machine: Machine; redis: string; noop: { jobs: number; itemsPerJob: number; perShardMs: Record<number, number[]>; cpuPerShardMs: Record<number, number[]>; best: Record<number, number>; cpu: Record<number, number> };
  real: { model: string; images: { count: number; source: string }; batch: number; shardSize: number; single: number[]; cluster: number[]; singleE2e: number[]; clusterE2e: number[]; overall: { single: number; cluster: number; ratio: number; singleE2e: number; clusterE2e: number; ratioE2e: number }; perRoundRatio: number[] };
  loadAverage: { before: number; after: number };
}): string {
  const g = (xs: number[], d = 2) => xs.map((x) => x.toFixed(d)).join(', ');
  const perImage = r.real.overall.single > 0 ? 1000 / r.real.overall.single : NaN;
  return [
    `## Cluster extraction on BullMQ + Redis (${r.date.slice(0, 10)})`,
    '',
    ...machineLines(r.machine),
    `- command: \`node dist/bench/cluster.bench.js\`; ${r.redis} on loopback, started by the benchmark; 1-minute load average ${r.loadAverage.before.toFixed(1)} before, ${r.loadAverage.after.toFixed(1)} after (other engineers' jobs shared the 2 cores)`,
    '',
    `Coordination: ${r.noop.jobs} no-op shard jobs (each carrying ${r.noop.itemsPerJob} image ids and paths, like a real shard) enqueued, taken, reported and completed. Wall time from the first enqueue to the last completion, per shard; and the CPU time Redis, the worker processes and the enqueuing process spent, per shard (from /proc, 10 ms ticks over all jobs): what the queue costs, which the wall time hides under the other jobs on these cores. Two rounds, worker counts interleaved (1 2 8 32, then 32 8 2 1); every worker process and Redis on the same 2 cores.`,
    '',
    '| worker processes | wall ms per shard (best) | per round | CPU ms per shard (mean) | per round |',
    '|---|---|---|---|---|',
    ...Object.keys(r.noop.perShardMs).map((w) => `| ${w} | ${r.noop.best[Number(w)].toFixed(2)} | ${g(r.noop.perShardMs[Number(w)])} | ${r.noop.cpu[Number(w)].toFixed(2)} | ${g(r.noop.cpuPerShardMs[Number(w)])} |`),
    '',
    `Real shards: ${r.real.images.count} images from ${r.real.images.source}, ${r.real.model}, batch ${r.real.batch}, shards of ${r.real.shardSize}, contenders in ABBA order. Single process: \`extract()\` (ONNX Runtime's default threads, 1 decode worker); its images/s after model loading (its own figure) and end to end. Cluster: two \`embmap worker --threads 1 --workers 1\` processes that opened the model in an untimed warm-up run of 2 shards (as long-lived workers have), then \`extractOnQueue\`: images/s from the shards queued to the assembled .npy, and end to end (planning included: the coordinator reads and hashes the model). The outputs were compared byte for byte after the runs (identical).`,
    '',
    '| contender | images/s after model loading (all rounds) | per round | end to end | per round |',
    '|---|---|---|---|---|',
    `| single process | ${r.real.overall.single.toFixed(1)} | ${g(r.real.single, 1)} | ${r.real.overall.singleE2e.toFixed(1)} | ${g(r.real.singleE2e, 1)} |`,
    `| 2 worker processes + coordinator | ${r.real.overall.cluster.toFixed(1)} | ${g(r.real.cluster, 1)} | ${r.real.overall.clusterE2e.toFixed(1)} | ${g(r.real.clusterE2e, 1)} |`,
    '',
    `Ratio 2 workers / single process after model loading: **${r.real.overall.ratio.toFixed(2)}** (per round ${g(r.real.perRoundRatio)}; end to end ${r.real.overall.ratioE2e.toFixed(2)}). Target ≥ 0.9. Per image ${perImage.toFixed(1)} ms of this 2-core machine; a shard of ${r.real.shardSize} takes ${(r.real.shardSize * perImage).toFixed(0)} ms; the queue's CPU per shard (${r.noop.cpu[2].toFixed(2)} ms with 2 workers) is ${((100 * r.noop.cpu[2]) / (r.real.shardSize * perImage)).toFixed(2)}% of it, its wall time (${r.noop.best[2].toFixed(2)} ms) ${((100 * r.noop.best[2]) / (r.real.shardSize * perImage)).toFixed(2)}%.`,
  ].join('\n');
}

if (process.argv[2] === 'noop-worker') void noopWorker(process.argv[3]);
else main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
