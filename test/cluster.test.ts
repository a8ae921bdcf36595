// Extraction as BullMQ jobs on a real redis-server (started here on a loopback port, data in a temp
// folder): outputs byte-identical to the single-process pass, shard statistics merged equal to one
// pass and the maps fitted from them equal, and the faults: a worker SIGKILLed mid-shard, a model
// that fails to load or differs, Redis restarted mid-run, the coordinator killed and started again,
// two runs on one Redis, a shared folder a worker cannot write, and bad input. Every process
// started here is stopped here.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { extractOnQueue } from '../src/cluster/coordinator';
import { mergeStatsDir } from '../src/cluster/stats-files';
import { folderDataset } from '../src/datasets';
import { pairedEstimator } from '../src/estimators';
import { statsFromNpy } from '../src/estimators/streaming';
import { makeRng as seeded } from '../src/evaluate/split';
import { extract } from '../src/extract/pipeline';
import { LinearMap } from '../src/maps/linear-map';
import type { ModelCard } from '../src/models/card';
import { convNet, type LayerSpec } from './helpers/cnn';
import { writeModel } from '../src/onnx/proto';
import { tempDir } from './helpers/io';
import { makeRng } from './helpers/random';
import { RedisServer, freePort, redisSkip } from './helpers/redis';
import { relErr } from './helpers/reference';

const skip = redisSkip();
if (skip) console.log(`# cluster tests skipped: ${skip}`);

const rng = makeRng('cluster.test');
const FIXTURES = path.join(__dirname, '..', '..', 'test', 'fixtures', 'images');
const CLI = path.join(__dirname, '..', 'src', 'cli', 'main.js');
const dir = tempDir();
const children = new Set<ChildProcess>();
after(() => {
  for (const c of children) c.kill('SIGKILL');
});

function writeCard(name: string, size: number, layers: LayerSpec[], classes: number): string {
  const net = convNet({ input: { size: [size, size], layout: 'NCHW' }, layers, head: { classes, op: 'gemm' }, rng: seeded((rng() * 2 ** 32) >>> 0) });
  writeModel(path.join(dir, `${name}.onnx`), net.model);
  const card: ModelCard = {
    id: name, onnx: `${name}.onnx`,
    input: { name: 'input', size: [size, size], layout: 'NCHW', channels: 'RGB', scale: 1 / 255, mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25], resize: 'crop' },
    embedding: { tensor: 'embedding', dim: 16 }, logits: { tensor: 'logits', classes },
  };
  const file = path.join(dir, `${name}.json`);
  fs.writeFileSync(file, JSON.stringify(card));
  return file;
}
const light: LayerSpec[] = [{ op: 'conv', out: 16, kernel: 3, stride: 2 }, { op: 'gap' }];
const cardA = writeCard('a', 32, light, 5);
const cardB = writeCard('b', 40, light, 3);
// Slow enough (about 20 ms an image here) that a kill or a restart lands in the middle of the run.
const heavy: LayerSpec[] = [{ op: 'conv', out: 32, kernel: 3, stride: 1 }, { op: 'residual', layers: [{ op: 'conv', out: 32, kernel: 3 }] }, { op: 'conv', out: 16, kernel: 3, stride: 2 }, { op: 'gap' }];
const cardH = writeCard('h', 160, heavy, 4);
writeCard('h2', 160, heavy, 4); // the same shapes, other weights: h2.onnx stands in for a worker's different copy of h.onnx

// 6 class folders of the 9 fixture images, and one truncated JPEG: 55 images, one skipped.
const images = path.join(dir, 'images');
for (let c = 0; c < 6; c++) {
  fs.mkdirSync(path.join(images, `c${c}`), { recursive: true });
  for (const f of ['orl/s1/1.pgm', 'orl/s2/2.pgm', 'photos/tiny-val_0.jpg', 'photos/tiny-val_1.jpg', 'photos/tiny-val_2-rgba.png', 'photos/lfw-Aaron_Eckhart_0001.jpg', 'photos/imagenet-n01443537.jpg', 'orl/s1/2.pgm', 'orl/s2/1.pgm']) {
    fs.copyFileSync(path.join(FIXTURES, f), path.join(images, `c${c}`, f.replace(/\//g, '_')));
  }
}
fs.writeFileSync(path.join(images, 'c3', 'truncated.jpg'), fs.readFileSync(path.join(FIXTURES, 'photos', 'lfw-Aaron_Eckhart_0001.jpg')).subarray(0, 3000));
const TOTAL = 55;

/** The single-process pass: the reference every cluster run must reproduce byte for byte. */
const references = new Map<string, string>();
async function reference(models: string[]): Promise<string> {
  const key = models.join();
  if (!references.has(key)) {
    const out = path.join(dir, `ref-${references.size}`);
    fs.mkdirSync(out);
    await extract({ dataset: folderDataset(images), targets: models.map((m, i) => ({ model: m, out: path.join(out, `${i}.npy`), ...(i === 0 ? { logits: path.join(out, `${i}.logits.npy`) } : {}) })), batch: 4 });
    references.set(key, out);
  }
  return references.get(key)!;
}

function outputs(n: number): string[] {
  return Array.from({ length: n }, (_, i) => [`${i}.npy`, `${i}.npy.ids.tsv`, ...(i === 0 ? ['0.logits.npy', '0.logits.npy.ids.tsv'] : [])]).flat();
}

async function assertSameAsReference(out: string, models: string[]): Promise<void> {
  const ref = await reference(models);
  for (const f of outputs(models.length)) assert.ok(fs.readFileSync(path.join(out, f)).equals(fs.readFileSync(path.join(ref, f))), `${f}: byte-identical to the single-process pass`);
}

function extractArgs(url: string, out: string, models: string[], extra: string[] = []): string[] {
  fs.mkdirSync(out, { recursive: true });
  return ['extract', '--images', images, '--queue', url, '--batch', '4', '--shard-size', '8',
    ...models.flatMap((m, i) => ['--model', m, '--out', path.join(out, `${i}.npy`), '--logits', i === 0 ? path.join(out, `${i}.logits.npy`) : '-']), ...extra];
}

interface Proc {
  child: ChildProcess;
  output: () => string;
  exit: Promise<number | null>;
}

function run(args: string[]): Proc {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let text = '';
  child.stdout!.on('data', (d) => (text += d));
  child.stderr!.on('data', (d) => (text += d));
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => {
    children.delete(child);
    resolve(code);
  }));
  return { child, output: () => text, exit };
}

async function until(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 30000): Promise<void> {
  const t0 = Date.now();
  while (!(await cond())) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function startWorker(url: string): Promise<Proc> {
  const w = run(['worker', '--queue', url, '--lock-ms', '1500', '--stalled-ms', '500', '--workers', '1', '--threads', '1']);
  await until('a worker to connect', () => w.output().includes('taking shards') || w.child.exitCode !== null);
  assert.ok(w.output().includes('taking shards'), w.output());
  return w;
}

async function stopWorker(w: Proc): Promise<void> {
  w.child.kill('SIGTERM');
  await w.exit;
}

const shardFiles = (out: string) => {
  try {
    return fs.readdirSync(path.join(out, '0.npy.shards', 'shards')).filter((f) => f.endsWith('.safetensors')).length;
  } catch {
    return 0;
  }
};

describe('cluster extraction on BullMQ and Redis', { skip, timeout: 240_000 }, () => {
  let redis: RedisServer;
  let workers: Proc[] = [];
  before(async () => {
    redis = await RedisServer.start(fs.mkdtempSync(path.join(dir, 'redis-')));
    workers = await Promise.all([startWorker(redis.url()), startWorker(redis.url())]);
  });
  after(async () => {
    await Promise.all(workers.map(stopWorker));
    await redis.stop();
  });

  test('two workers: outputs byte-identical to one process; shard statistics merge to one pass; the maps are equal', async () => {
    const out = path.join(dir, 'happy');
    const c = run(extractArgs(redis.url(), out, [cardA, cardB], ['--stats', 'a:b']));
    assert.equal(await c.exit, 0, c.output());
    assert.match(c.output(), /shards 7\/7 done, 0 running, 0 failed; 55\/55 images/);
    await assertSameAsReference(out, [cardA, cardB]);
    assert.ok(!fs.existsSync(path.join(out, '0.npy.shards', 'shards')), 'shard rows removed once assembled');

    // Statistics: every shard once (a shard counted twice or lost is refused by the merge), equal to a single pass over the rows.
    const ref = await reference([cardA, cardB]);
    const { stats, meta } = mergeStatsDir(path.join(out, '0.npy.shards', 'stats', 'a--b'));
    assert.deepEqual([meta.source, meta.target, stats.count], ['a', 'b', TOTAL - 1]);
    const single = await statsFromNpy(path.join(ref, '0.npy'), path.join(ref, '1.npy'));
    // Shards take their moments about their own shifts: compare the centred moments.
    const [merged, one] = [stats.centred(), single.centred()];
    assert.deepEqual([...merged.sumX, ...merged.sumY].map(Math.abs).every((v) => v < 1e-6), true, 'centred sums vanish');
    for (const k of ['sqY'] as const) assert.ok(relErr(merged[k], one[k]) < 1e-13, `${k}: ${relErr(merged[k], one[k])}`);
    for (const k of ['xx', 'xy'] as const) assert.ok(relErr(merged[k].data, one[k].data) < 1e-13, `${k}: ${relErr(merged[k].data, one[k].data)}`);
    assert.ok(relErr(stats.meanX(), single.meanX()) < 1e-13 && relErr(stats.meanY(), single.meanY()) < 1e-13, 'means');

    // embmap fit --stats: the map equals the one fitted from the single pass's statistics.
    const mapFile = path.join(out, 'map.safetensors');
    const f = run(['fit', '--stats', path.join(out, '0.npy.shards', 'stats', 'a--b'), '--method', 'ridge', '--lambda', '0.5', '--out', mapFile]);
    assert.equal(await f.exit, 0, f.output());
    const est = pairedEstimator('ridge', { lambda: 0.5 });
    await est.fitStats(single);
    const expected = est.toMap();
    const got = LinearMap.load(mapFile);
    assert.ok(relErr(got.weight().data, expected.weight().data) < 1e-10, `weight: ${relErr(got.weight().data, expected.weight().data)}`);
    assert.ok(relErr(got.bias(), expected.bias()) < 1e-10);
  });

  test('--views through the queue: each shard job carries its views; outputs byte-identical to the single-process pass with the same views', async () => {
    const out = path.join(dir, 'views');
    const c = run(extractArgs(redis.url(), out, [cardA, cardB], ['--views', '2', '--seed', '9']));
    assert.equal(await c.exit, 0, c.output());
    assert.match(c.output(), /shards 14\/14 done, 0 running, 0 failed; 110\/110 images/);
    const ref = path.join(dir, 'ref-views');
    fs.mkdirSync(ref);
    await extract({
      dataset: folderDataset(images), batch: 4, views: { count: 2, seed: 9 },
      targets: [cardA, cardB].map((m, i) => ({ model: m, out: path.join(ref, `${i}.npy`), ...(i === 0 ? { logits: path.join(ref, `${i}.logits.npy`) } : {}) })),
    });
    for (const f of outputs(2)) assert.ok(fs.readFileSync(path.join(out, f)).equals(fs.readFileSync(path.join(ref, f))), `${f}: byte-identical to the single-process pass`);
    assert.match(fs.readFileSync(path.join(out, '0.npy.ids.tsv'), 'utf8'), /\tc0\nc0\/[^\n]*#v1\tc0\n/);
  });

  test('--max-pixels reaches the workers\' decodes: the same images skipped as by the single-process pass with that limit', async () => {
    const out = path.join(dir, 'max-pixels');
    // 20000 pixels: the 92 x 112 PGMs and the small photos pass; the 250 x 250 and 366 x 256 JPEGs
    // do not, nor the truncated copy of the 250 x 250 one (refused from its header).
    const c = run(extractArgs(redis.url(), out, [cardA], ['--max-pixels', '20000', '--json', '--quiet']));
    assert.equal(await c.exit, 0, c.output());
    const summary = JSON.parse(c.output().slice(c.output().indexOf('{\n')));
    const tooLarge = summary.skipped.filter((s: { reason: string }) => /at most 20000 pixels \(the decode limit, --max-pixels\)/.test(s.reason));
    assert.equal(tooLarge.length, 13, JSON.stringify(summary.skipped));
    assert.equal(summary.rows, TOTAL - 13);
    const ref = path.join(dir, 'ref-max-pixels');
    fs.mkdirSync(ref);
    await extract({ dataset: folderDataset(images), targets: [{ model: cardA, out: path.join(ref, '0.npy'), logits: path.join(ref, '0.logits.npy') }], batch: 4, maxPixels: 20000 });
    for (const f of outputs(1)) assert.ok(fs.readFileSync(path.join(out, f)).equals(fs.readFileSync(path.join(ref, f))), `${f}: byte-identical to the single-process pass`);
  });

  test('the coordinator killed mid-run and started again with the same arguments picks up the queue and the finished shards', async () => {
    const out = path.join(dir, 'coordinator');
    const first = run(extractArgs(redis.url(), out, [cardH]));
    await until('a first shard', () => shardFiles(out) > 0);
    first.child.kill('SIGKILL');
    await first.exit;
    const second = run(extractArgs(redis.url(), out, [cardH]));
    assert.equal(await second.exit, 0, second.output());
    const resumed = Number(/\((\d+) already done\)/.exec(second.output())?.[1]);
    assert.ok(resumed >= 1, second.output());
    await assertSameAsReference(out, [cardH]);
  });

  test('a worker SIGKILLed mid-shard: BullMQ finds the shard stalled and another worker does it; nothing lost or counted twice', async () => {
    const out = path.join(dir, 'kill');
    for (const w of workers) await stopWorker(w);
    const victim = await startWorker(redis.url());
    const c = run(extractArgs(redis.url(), out, [cardH], ['--stats', 'h:h']));
    await until('the victim to start a shard', () => c.output().includes('run '));
    await new Promise((r) => setTimeout(r, 300)); // inside its first shard: opening the model or running it
    assert.equal(shardFiles(out), 0, 'no shard finished yet');
    victim.child.kill('SIGKILL');
    await victim.exit;
    workers = [await startWorker(redis.url()), await startWorker(redis.url())];
    assert.equal(await c.exit, 0, c.output());
    await assertSameAsReference(out, [cardH]);
    const { stats } = mergeStatsDir(path.join(out, '0.npy.shards', 'stats', 'h--h'));
    assert.equal(stats.count, TOTAL - 1);
  });

  test('Redis restarted mid-run: workers and coordinator reconnect and the run completes', async () => {
    const out = path.join(dir, 'redis-restart');
    const c = run(extractArgs(redis.url(), out, [cardH]));
    await until('a first shard', () => shardFiles(out) > 0);
    await redis.stop();
    assert.ok(shardFiles(out) < 7, 'Redis stopped before the run was done');
    await new Promise((r) => setTimeout(r, 1500));
    await redis.restart();
    assert.equal(await c.exit, 0, c.output());
    await assertSameAsReference(out, [cardH]);
  });

  test('two runs on one Redis at once are kept apart by their fingerprint', async () => {
    const [o1, o2] = [path.join(dir, 'two-1'), path.join(dir, 'two-2')];
    const c1 = run(extractArgs(redis.url(), o1, [cardA]));
    const c2 = run(extractArgs(redis.url(), o2, [cardB, cardA]));
    assert.equal(await c1.exit, 0, c1.output());
    assert.equal(await c2.exit, 0, c2.output());
    const runOf = (p: Proc) => /run ([0-9a-f]{16})/.exec(p.output())?.[1];
    assert.notEqual(runOf(c1), runOf(c2));
    await assertSameAsReference(o1, [cardA]);
    await assertSameAsReference(o2, [cardB, cardA]);
  });

  test('a model that fails to load, or differs from the coordinator\'s, on a worker: its tries fail with the reason, shown by the coordinator; the run goes on once the file is fixed', async () => {
    const out = path.join(dir, 'bad-model');
    const onnx = path.join(dir, 'h.onnx');
    const good = fs.readFileSync(onnx);
    const other = fs.readFileSync(path.join(dir, 'h2.onnx'));
    for (const w of workers.splice(0)) await stopWorker(w);
    const coordinator = run(extractArgs(redis.url(), out, [cardH]));
    try {
      await until('the coordinator to plan', () => coordinator.output().includes('run ') || coordinator.child.exitCode !== null);
      // The coordinator read the good model; the file breaks now, under the only worker, which must read it.
      fs.writeFileSync(onnx, good.subarray(0, 100));
      workers.push(await startWorker(redis.url()));
      await until('a failed try', () => /try 1 of 3 failed/.test(coordinator.output()) || coordinator.child.exitCode !== null);
      assert.match(coordinator.output(), /shard \d+: try 1 of 3 failed \(.*h\.onnx: expected an ONNX model.*\); retrying/);
      // Then a valid model of the same shape with other weights: refused by its SHA-256.
      fs.writeFileSync(onnx, other);
      await until('a refused model', () => /differs from the coordinator's/.test(coordinator.output()) || coordinator.child.exitCode !== null);
      assert.match(coordinator.output(), /shard \d+: try \d of 3 failed \(.*h\.onnx: this worker's model file differs from the coordinator's \(sha256 [0-9a-f]{12}…, expected [0-9a-f]{12}…\)\); retrying/);
      fs.writeFileSync(onnx, good);
      workers.push(await startWorker(redis.url()));
      const code = await coordinator.exit;
      if (code !== 0) {
        // Every try of some shard failed before the fix: the coordinator says which and why; run again.
        assert.match(coordinator.output(), /shards failed for good \(shard \d+ \(images \d+-\d+\): .*h\.onnx.*; the queue keeps them: run the same command again/);
        const again = run(extractArgs(redis.url(), out, [cardH]));
        assert.equal(await again.exit, 0, again.output());
      }
      await assertSameAsReference(out, [cardH]);
    } finally {
      fs.writeFileSync(onnx, good);
    }
  });

  test('a shared folder a worker cannot write: the tries fail naming the folder; once it can, the run completes', async () => {
    const out = path.join(dir, 'unwritable');
    for (const w of workers.splice(0)) await stopWorker(w);
    const coordinator = run(extractArgs(redis.url(), out, [cardA, cardB], ['--stats', 'a:b']));
    const blocker = path.join(out, '0.npy.shards', 'stats');
    try {
      await until('the coordinator to queue the shards', () => coordinator.output().includes('run ') || coordinator.child.exitCode !== null);
      fs.writeFileSync(blocker, 'a file where the statistics folder should be');
      workers.push(await startWorker(redis.url()));
      await until('a failed try', () => /try 1 of 3 failed/.test(coordinator.output()) || coordinator.child.exitCode !== null);
      assert.match(coordinator.output(), /shard \d+: try 1 of 3 failed \(.*0\.npy\.shards\/stats\/a--b: expected a shared folder this process can write.*\); retrying/);
      assert.equal(shardFiles(out), 0, 'no shard marked done without its statistics');
    } finally {
      fs.rmSync(blocker, { force: true });
    }
    workers.push(await startWorker(redis.url()));
    const code = await coordinator.exit;
    if (code !== 0) {
      const again = run(extractArgs(redis.url(), out, [cardA, cardB], ['--stats', 'a:b']));
      assert.equal(await again.exit, 0, again.output());
    }
    await assertSameAsReference(out, [cardA, cardB]);
    assert.equal(mergeStatsDir(path.join(out, '0.npy.shards', 'stats', 'a--b')).stats.count, TOTAL - 1);
  });

  test('bad input: a wrong or unreachable Redis URL, a shared folder that cannot be written; errors name them', async () => {
    const dataset = folderDataset(images);
    const targets = [{ model: cardA, out: path.join(dir, 'bad', 'a.npy') }];
    fs.mkdirSync(path.join(dir, 'bad'), { recursive: true });
    await assert.rejects(extractOnQueue({ dataset, targets, queue: 'http://127.0.0.1:6379' }), /queue: expected a Redis URL redis:\/\/HOST:PORT\/DB \(or rediss:\/\/ for TLS\), received string "http:\/\/127\.0\.0\.1:6379"/);
    const port = await freePort();
    await assert.rejects(extractOnQueue({ dataset, targets, queue: `redis://127.0.0.1:${port}/0` }), new RegExp(`redis://127\\.0\\.0\\.1:${port}/0: cannot reach Redis \\(.*ECONNREFUSED`));
    const shared = path.join(dir, 'bad', 'shared');
    fs.mkdirSync(shared);
    fs.writeFileSync(path.join(shared, 'shards'), 'a file where the shards folder should be');
    await assert.rejects(extractOnQueue({ dataset, targets, queue: redis.url(), shared }), /bad\/shared\/shards: expected a shared folder this process can write/);
    await assert.rejects(extractOnQueue({ dataset, targets, queue: redis.url(), shardSize: 10 }), /shardSize: expected a multiple of the batch size 32/);
    const w = run(['worker', '--queue', `redis://127.0.0.1:${port}/0`]);
    assert.equal(await w.exit, 1);
    assert.match(w.output(), new RegExp(`embmap worker: redis://127\\.0\\.0\\.1:${port}/0: cannot reach Redis`));
  });
});
