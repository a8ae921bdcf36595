// Hostile clients against `embmap serve` (default limits, 512 -> 512 map) over loopback, with a
// well-behaved client beside them sending one binary vector every 5 ms on a kept-alive
// connection and timing each answer:
//   1. baseline: the well-behaved client alone;
//   2. slow-body attack: 80 sockets each declare a 16 MiB body, send 15 MiB of it and stall;
//      the server's RSS (from /proc) sampled every 100 ms; the well-behaved client is timed once
//      the attackers' bytes are sent (or refused); then the sockets are dropped and RSS read
//      again after 5 s, and once more at the end, after phase 3's traffic;
//   3. a 14 MB JSON batch kept in flight (sent again as soon as it is answered), against the
//      well-behaved client alone just before (interleaved: baseline, batch, baseline, batch).
// Every phase is bounded in time. Writes bench/results/serve-attack.json and the
// "serve-attack" section of bench/RESULTS.md. BENCH_SCALE=0.2 for a quick try.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { writeFileAtomic } from '../src/io/atomic';
import { LinearMap } from '../src/maps/linear-map';
import { REPO, startServe, uniform } from './common';
import { describeMachine } from './machine';
import { machineLines, updateResultsFile } from './report';

const P = 512;
const SCALE = Number(process.env.BENCH_SCALE ?? 1);
const MiB = 2 ** 20;

function rssOf(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : NaN;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function percentile(values: number[], q: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor(q * s.length))] : NaN;
}

/** One binary vector every `everyMs` for `seconds`; latencies in ms and failures. */
async function wellBehaved(port: number, seconds: number, everyMs = 5): Promise<{ latencies: number[]; failed: number }> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const body = Buffer.from(uniform(1, P).data.buffer);
  const latencies: number[] = [];
  let failed = 0;
  const end = Date.now() + seconds * 1000;
  while (Date.now() < end) {
    const t0 = process.hrtime.bigint();
    const ok = await new Promise<boolean>((resolve) => {
      const req = http.request({ port, host: '127.0.0.1', path: '/map/m', method: 'POST', agent, headers: { 'content-type': 'application/octet-stream', 'content-length': body.length } }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode === 200));
      });
      req.on('error', () => resolve(false));
      req.end(body);
    });
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    if (ok) latencies.push(ms);
    else failed++;
    await sleep(Math.max(0, everyMs - ms));
  }
  agent.destroy();
  return { latencies, failed };
}

/**
 * The attackers, in a child process of their own (so that pushing 1.2 GB into sockets does not
 * stall the well-behaved client's event loop): `count` sockets declaring `declared` bytes and
 * sending `sent` of them, then stalling. Prints "ready" once the writes are flushed or refused, and
 * the status codes received as JSON when its stdin closes, then drops every socket.
 */
function attackerMain(port: number, count: number, declared: number, sent: number): void {
  const answers: Record<string, number> = {};
  const chunk = Buffer.alloc(MiB, 0x41);
  let settled = 0;
  const settle = () => ++settled === count && process.stdout.write('ready\n');
  const sockets = Array.from({ length: count }, () => {
    const s = net.connect(port, '127.0.0.1');
    let done = false;
    const once = () => !done && (done = true) && settle();
    s.on('error', once).on('close', once);
    s.on('data', (d) => {
      const status = /^HTTP\/1\.1 (\d+)/.exec(d.toString('latin1'))?.[1];
      if (status) answers[status] = (answers[status] ?? 0) + 1;
    });
    s.write(`POST /map/m HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: ${declared}\r\n\r\n`);
    for (let off = 0; off < sent; off += chunk.length) s.write(chunk.subarray(0, Math.min(chunk.length, sent - off)), off + chunk.length >= sent ? once : undefined);
    return s;
  });
  process.stdin.resume().on('end', () => {
    const open = sockets.filter((s) => !s.destroyed).length;
    for (const s of sockets) s.destroy();
    process.stdout.write(JSON.stringify({ answers, open }) + '\n', () => process.exit(0));
  });
}

/** Sends `body` (JSON) again and again until `stop()`; the answers are drained, not parsed. */
function jsonBatches(port: number, body: Buffer): { stop(): Promise<number> } {
  let running = true, sent = 0;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const loop = (async () => {
    while (running) {
      await new Promise<void>((resolve) => {
        const req = http.request({ port, host: '127.0.0.1', path: '/map/m', method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': body.length } }, (res) => {
          res.resume();
          res.on('end', () => resolve());
        });
        req.on('error', () => resolve());
        req.end(body);
      });
      sent++;
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      agent.destroy();
      return sent;
    },
  };
}

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'embmap-serve-attack-'));
  const mapFile = path.join(dir, 'm.safetensors');
  LinearMap.create(uniform(P, P), uniform(1, P).data, { estimator: 'lstsq' }).save(mapFile);
  const { child, url, exited } = await startServe(mapFile);
  try {
    const port = Number(new URL(url).port);
    const pid = child.pid!;
    await wellBehaved(port, 2); // warm-up
    await sleep(1000);
    const idleRss = rssOf(pid);
    const seconds = Math.max(2, 10 * SCALE);
    console.error(`idle rss ${(idleRss / MiB).toFixed(1)} MiB; baseline ${seconds} s...`);
    const baseline = await wellBehaved(port, seconds);

    // 2. The slow-body attack.
    console.error('slow-body attack...');
    let peakRss = idleRss;
    const sampler = setInterval(() => (peakRss = Math.max(peakRss, rssOf(pid))), 100);
    const attacker = spawn(process.execPath, [__filename, 'attacker', String(port), '80', String(16 * MiB), String(15 * MiB)], { stdio: ['pipe', 'pipe', 'inherit'] });
    let attackOut = '';
    attacker.stdout!.on('data', (d) => (attackOut += d));
    const t0 = Date.now();
    while (!attackOut.includes('ready') && Date.now() - t0 < 20_000) await sleep(50);
    const settleSeconds = (Date.now() - t0) / 1000;
    const during = await wellBehaved(port, seconds);
    clearInterval(sampler);
    peakRss = Math.max(peakRss, rssOf(pid));
    const attackerDone = new Promise((r) => attacker.on('exit', r));
    attacker.stdin!.end();
    await attackerDone;
    const attack = JSON.parse(attackOut.split('\n').find((l) => l.startsWith('{')) ?? '{"answers":{},"open":null}') as { answers: Record<string, number>; open: number | null };
    await sleep(5000);
    const afterRss = rssOf(pid);
    console.error(`peak rss ${(peakRss / MiB).toFixed(1)} MiB, after ${(afterRss / MiB).toFixed(1)} MiB`);

    // 3. A 14 MB JSON batch in flight, interleaved with baselines.
    const rows = 1400;
    const json = Buffer.from(JSON.stringify({ vectors: uniform(rows, P).toArray() }));
    console.error(`JSON batch of ${rows} rows, ${(json.length / 1e6).toFixed(1)} MB...`);
    const alone: number[] = [], withBatch: number[] = [];
    let batches = 0;
    for (let round = 0; round < 4; round++) {
      alone.push(...(await wellBehaved(port, seconds / 4)).latencies);
      const b = jsonBatches(port, json);
      await sleep(300); // the first batch is being read
      withBatch.push(...(await wellBehaved(port, seconds / 4)).latencies);
      batches += await b.stop();
    }

    await sleep(5000);
    const finalRss = rssOf(pid);
    const ms = (v: number) => +v.toFixed(2);
    const result = {
      machine: describeMachine(),
      date: new Date().toISOString(),
      scale: SCALE,
      loadAverage: os.loadavg().map((v) => +v.toFixed(1)).join(', '),
      idleRssMiB: ms(idleRss / MiB),
      slowBody: {
        sockets: 80,
        declaredMiB: 16,
        sentMiB: 15,
        peakRssMiB: ms(peakRss / MiB),
        peakOverIdleMiB: ms((peakRss - idleRss) / MiB),
        rssAfterDropMiB: ms(afterRss / MiB),
        rssAfterLaterTrafficMiB: ms(finalRss / MiB),
        attackerAnswers: attack.answers,
        attackerSocketsOpenAtEnd: attack.open,
        secondsToSendOrBeRefused: ms(settleSeconds),
        wellBehaved: { requests: during.latencies.length, failed: during.failed, p50: ms(percentile(during.latencies, 0.5)), p99: ms(percentile(during.latencies, 0.99)), max: ms(Math.max(...during.latencies)) },
        baseline: { requests: baseline.latencies.length, failed: baseline.failed, p50: ms(percentile(baseline.latencies, 0.5)), p99: ms(percentile(baseline.latencies, 0.99)) },
      },
      jsonBatch: {
        megabytes: ms(json.length / 1e6),
        rows,
        batchesAnswered: batches,
        alone: { requests: alone.length, p50: ms(percentile(alone, 0.5)), p99: ms(percentile(alone, 0.99)) },
        withBatch: { requests: withBatch.length, p50: ms(percentile(withBatch, 0.5)), p99: ms(percentile(withBatch, 0.99)), max: ms(Math.max(...withBatch)) },
      },
    };
    console.log(JSON.stringify(result, null, 2));
    if (SCALE === 1) {
      writeFileAtomic(path.join(REPO, 'bench', 'results', 'serve-attack.json'), [Buffer.from(JSON.stringify(result, null, 2) + '\n')]);
      updateResultsFile(path.join(REPO, 'bench', 'RESULTS.md'), 'serve-attack', render(result));
    }
  } finally {
    child.kill('SIGTERM');
    await exited;
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

export function render(r: any): string { // eslint-disable-line @typescript-eslint/no-explicit-any
  const s = r.slowBody, j = r.jsonBatch;
  return [
    `## Serving under attack (${r.date.slice(0, 10)}, \`node dist/bench/serve.attack.js\`, default limits)`,
    '',
    ...machineLines(r.machine),
    '',
    `Server RSS at rest: ${s && r.idleRssMiB} MiB. A well-behaved client sends one 512-d binary vector every 5 ms.`,
    '',
    '| phase | well-behaved p50 ms | p99 ms | requests (failed) | server RSS |',
    '|---|---|---|---|---|',
    `| alone | ${s.baseline.p50} | ${s.baseline.p99} | ${s.baseline.requests} (${s.baseline.failed}) | ${r.idleRssMiB} MiB |`,
    `| 80 sockets stalling at 15 of 16 MiB | ${s.wellBehaved.p50} | ${s.wellBehaved.p99} | ${s.wellBehaved.requests} (${s.wellBehaved.failed}) | peak ${s.peakRssMiB} MiB (+${s.peakOverIdleMiB}); ${s.rssAfterDropMiB} MiB 5 s after the sockets dropped, ${s.rssAfterLaterTrafficMiB} MiB after the next phase's traffic |`,
    `| alone (interleaved with the next row) | ${j.alone.p50} | ${j.alone.p99} | ${j.alone.requests} | |`,
    `| a ${j.megabytes} MB JSON batch (${j.rows} rows) always in flight | ${j.withBatch.p50} | ${j.withBatch.p99} | ${j.withBatch.requests} | ${j.batchesAnswered} batches answered |`,
    '',
    `The attackers' answers: ${Object.entries(s.attackerAnswers).map(([k, v]) => `${v} × ${k}`).join(', ') || 'none'} (503: beyond the 64 MiB body budget, refused before reading; 408: cut by the 30 s request timeout); ${s.attackerSocketsOpenAtEnd} of 80 sockets still open when the attack phase ended.`,
    `Targets: RSS within 200 MiB of idle (+${s.peakOverIdleMiB} MiB); memory returned after the sockets are dropped (${(s.rssAfterDropMiB - r.idleRssMiB).toFixed(1)} MiB above idle 5 s later: a dropped upload's buffer is freed at once, not left to V8's next full collection); well-behaved p99 ≤ 10 ms during the attack (${s.wellBehaved.p99} ms, against ${s.baseline.p99} ms alone); the JSON batch adds ≤ 20 ms to p99 (${(j.withBatch.p99 - j.alone.p99).toFixed(2)} ms).`,
    `The machine was shared (load average ${r.loadAverage} at the end of the run, on 2 cores): the well-behaved client's p99 is set by other processes' scheduling even alone, so compare each row with its "alone" row. RSS after the JSON phase (${s.rssAfterLaterTrafficMiB} MiB) also holds the JSON worker thread's heap after 14 MB parses (not broken down further).`,
    'Before these limits (issue 14, same machine): 80 such sockets took RSS from 116 MiB to 1.3 GiB, held after they closed, and single vectors waited up to 3.8 s behind a 14 MB JSON batch.',
    '',
  ].join('\n');
}

if (require.main !== module) {
  // Imported (to re-render saved results): nothing runs.
} else if (process.argv[2] === 'attacker') {
  const [port, count, declared, sent] = process.argv.slice(3).map(Number);
  attackerMain(port, count, declared, sent);
} else {
  main().catch((err) => {
    console.error(err);
    process.exitCode = 1;
  });
}
