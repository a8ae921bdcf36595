// Load test of `embmap serve` with autocannon over loopback (127.0.0.1), 512 -> 512 map. The
// server runs in a child process, so that its memory is its own; autocannon runs here, on the
// same cores (2 on the reference machine), which is what a sidecar client sees.
//   1. warm-up: 4 s of every scenario below (the heap reaches its working size), then the
//      server's memory;
//   2. 60 s of load: single vectors at a fixed 1,000 requests/s (JSON, then binary), single JSON
//      vectors flat out, 256-vector binary and JSON batches flat out; then the memory again.
// Memory is read at rest, 10 s after the last request, both times.
// Every phase is bounded in time and in request count. Latencies are recorded per response in
// microseconds here (autocannon's own histogram has 1 ms resolution).
// Writes bench/results/serve.json and the "serve" section of bench/RESULTS.md.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { EventEmitter } from 'node:events';
import { LinearMap } from '../src/maps/linear-map';
import { writeFileAtomic } from '../src/io/atomic';
import { REPO, startServe, uniform } from './common';
import { describeMachine } from './machine';
import { machineLines, updateResultsFile } from './report';

interface AutocannonOptions {
  url: string;
  method: 'POST';
  headers: Record<string, string>;
  body: string | Buffer;
  connections: number;
  duration: number;
  maxOverallRequests: number;
  overallRate?: number;
}
interface AutocannonResult {
  requests: { total: number; average: number };
  non2xx: number;
  errors: number;
  timeouts: number;
  duration: number;
}
type Instance = EventEmitter & PromiseLike<AutocannonResult>;
// autocannon ships no types; this is the part of its API used here.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const autocannon = require('autocannon') as (opts: AutocannonOptions) => Instance;
// autocannon 8 appends every response body chunk to a string (Buffer#toString) for its
// expectBody/verifyBody/onResponse options, none of which is used here. For 512 KB binary
// answers that cost the client ~10 ms of CPU per response on the reference machine, 2-3x what
// the server spends on the request, so on 2 shared cores the client, not the server, set the
// pace. The bodies' bytes are still received and counted; only the string is skipped.
// eslint-disable-next-line @typescript-eslint/no-require-imports
(require('autocannon/lib/pipelinedRequestsQueue') as { prototype: { addBody(data: Buffer): void } }).prototype.addBody = () => undefined;

const P = 512, Q = 512, BATCH = 256;
// BENCH_SCALE=0.1 for a quick try: every phase 10x shorter (the figures recorded use 1).
const SCALE = Number(process.env.BENCH_SCALE ?? 1);

interface Scenario {
  name: string;
  body: string | Buffer;
  type: 'application/json' | 'application/octet-stream';
  rows: number;
  connections: number;
  seconds: number;
  rate?: number;
}

interface Measured {
  name: string;
  connections: number;
  rate: number | null;
  seconds: number;
  requests: number;
  requestsPerSecond: number;
  vectorsPerSecond: number;
  p50_ms: number;
  p99_ms: number;
  p999_ms: number;
  max_ms: number;
  non2xx: number;
  errors: number;
  /** The server process's CPU time (user + system, all its threads) per request, when /proc has it. */
  serverCpuMsPerRequest: number | null;
  /** The bound of the server's latency histogram bucket holding its p99 (request start to response end, server side). */
  serverP99AtMost_ms: number;
}

/** The server's cumulative latency histogram for /map/:name: bucket bound (s) -> count. */
async function serverHistogram(url: string): Promise<Map<number, number>> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const out = new Map<number, number>();
  for (const m of text.matchAll(/^embmap_http_request_duration_seconds_bucket\{route="\/map\/:name",le="([^"]+)"\} (\d+)$/gm)) {
    out.set(m[1] === '+Inf' ? Infinity : Number(m[1]), Number(m[2]));
  }
  return out;
}

/** The smallest bucket bound (ms) under which 99% of the requests between two histograms fell. */
function p99Bound(before: Map<number, number>, after: Map<number, number>): number {
  const total = after.get(Infinity)! - (before.get(Infinity) ?? 0);
  for (const [le, n] of after) if (n - (before.get(le) ?? 0) >= 0.99 * total) return le * 1000;
  return Infinity;
}

/** CPU milliseconds used so far by process `pid` (Linux /proc; null elsewhere). */
function cpuMs(pid: number): number | null {
  try {
    const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // utime + stime, in USER_HZ = 100 ticks/s
  } catch {
    return null;
  }
}

async function load(url: string, pid: number, s: Scenario, seconds: number): Promise<Measured> {
  const lat: number[] = [];
  const hist0 = await serverHistogram(url);
  const cpu0 = cpuMs(pid);
  const inst = autocannon({
    url: `${url}/map/m`,
    method: 'POST',
    headers: { 'content-type': s.type },
    body: s.body,
    connections: s.connections,
    duration: seconds,
    // The count bound: what the rate (or an unreachable 50,000/s) allows in the time.
    maxOverallRequests: Math.ceil((s.rate ?? 50000) * seconds),
    ...(s.rate ? { overallRate: s.rate } : {}),
  });
  inst.on('response', (_client: unknown, status: number, _bytes: number, ms: number) => {
    if (status === 200) lat.push(ms);
  });
  const r = await inst;
  const cpu1 = cpuMs(pid);
  const hist1 = await serverHistogram(url);
  lat.sort((a, b) => a - b);
  const q = (f: number) => lat[Math.min(lat.length - 1, Math.floor(lat.length * f))];
  return {
    name: s.name,
    connections: s.connections,
    rate: s.rate ?? null,
    seconds: r.duration,
    requests: r.requests.total,
    requestsPerSecond: r.requests.total / r.duration,
    vectorsPerSecond: (lat.length * s.rows) / r.duration,
    p50_ms: q(0.5),
    p99_ms: q(0.99),
    p999_ms: q(0.999),
    max_ms: lat[lat.length - 1],
    non2xx: r.non2xx,
    errors: r.errors + r.timeouts,
    serverCpuMsPerRequest: cpu0 === null || cpu1 === null ? null : (cpu1 - cpu0) / r.requests.total,
    serverP99AtMost_ms: p99Bound(hist0, hist1),
  };
}

/** The server's memory at rest: after 10 s without requests, when V8's memory reducer has run. */
async function serverMemory(url: string): Promise<{ rss: number; heapUsed: number }> {
  await new Promise((r) => setTimeout(r, 10_000));
  const text = await (await fetch(`${url}/metrics`)).text();
  const get = (name: string) => Number(new RegExp(`^${name} (\\d+)$`, 'm').exec(text)![1]);
  return { rss: get('process_resident_memory_bytes'), heapUsed: get('nodejs_heap_used_bytes') };
}

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'embmap-serve-load-'));
  const mapFile = path.join(dir, 'm.safetensors');
  LinearMap.create(uniform(P, Q), uniform(1, Q).data, { estimator: 'lstsq' }).save(mapFile);
  const one = uniform(1, P), batch = uniform(BATCH, P);
  const bin = (m: { data: Float32Array }) => Buffer.from(m.data.buffer, m.data.byteOffset, m.data.byteLength);
  const scenarios: Scenario[] = [
    { name: '1 vector, JSON, 1,000 req/s', body: JSON.stringify({ vector: Array.from(one.data) }), type: 'application/json', rows: 1, connections: 4, seconds: 20, rate: 1000 },
    { name: '1 vector, binary, 1,000 req/s', body: bin(one), type: 'application/octet-stream', rows: 1, connections: 4, seconds: 10, rate: 1000 },
    { name: '1 vector, JSON, flat out', body: JSON.stringify({ vector: Array.from(one.data) }), type: 'application/json', rows: 1, connections: 10, seconds: 5 },
    { name: '256 vectors, binary, flat out', body: bin(batch), type: 'application/octet-stream', rows: BATCH, connections: 8, seconds: 15 },
    { name: '256 vectors, JSON, flat out', body: JSON.stringify({ vectors: batch.toArray() }), type: 'application/json', rows: BATCH, connections: 4, seconds: 10 },
  ];

  const { child, url, exited } = await startServe(mapFile);
  try {
    console.error(`server at ${url} (pid ${child.pid})`);
    for (const s of scenarios) await load(url, child.pid!, s, Math.max(1, 4 * SCALE));
    const warm = await serverMemory(url);
    console.error(`after warm-up: rss ${(warm.rss / 2 ** 20).toFixed(1)} MiB`);
    const results: Measured[] = [];
    for (const s of scenarios) {
      console.error(`${s.name}...`);
      results.push(await load(url, child.pid!, s, Math.max(1, s.seconds * SCALE)));
      console.error(JSON.stringify(results[results.length - 1]));
    }
    const loaded = await serverMemory(url);
    child.kill('SIGTERM');
    const code = await exited;
    const out = {
      machine: describeMachine(),
      date: new Date().toISOString(),
      map: `${P} -> ${Q}, float32`,
      scenarios: results,
      memory: { afterWarmup: warm, afterLoad: loaded, loadSeconds: results.reduce((s, x) => s + x.seconds, 0) },
      shutdownExitCode: code,
    };
    const outDir = path.join(REPO, 'bench', 'results');
    fs.mkdirSync(outDir, { recursive: true });
    writeFileAtomic(path.join(outDir, 'serve.json'), [Buffer.from(JSON.stringify(out, null, 2) + '\n')]);
    const md = render(out);
    updateResultsFile(path.join(REPO, 'bench', 'RESULTS.md'), 'serve', md);
    process.stdout.write(md);
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const f = (v: number, d = 2) => v.toFixed(d);
const mib = (b: number) => (b / 2 ** 20).toFixed(1);

function render(r: { machine: ReturnType<typeof describeMachine>; date: string; scenarios: Measured[]; memory: { afterWarmup: { rss: number; heapUsed: number }; afterLoad: { rss: number; heapUsed: number }; loadSeconds: number }; shutdownExitCode: number | null }): string {
  const by = (name: string) => r.scenarios.find((s) => s.name.startsWith(name))!;
  const single = by('1 vector, JSON, 1,000'), batch = by('256 vectors, binary');
  const growth = r.memory.afterLoad.rss / r.memory.afterWarmup.rss - 1;
  return [
    `## Serving (${r.date.slice(0, 10)}, 512 → 512 map, \`embmap serve\` over loopback)`,
    '',
    ...machineLines(r.machine),
    '- command: `node dist/bench/serve.load.js` (autocannon 8 in this process, minus its response-body-to-string copy (see the source); the server in a child process, 1 BLAS thread per GEMM, the `embmap serve` default)',
    '- server CPU ms/request: the server process\'s user + system time over the phase / requests: what one request costs the server, whoever else shares the cores; server-side p99: the bucket of the server\'s own latency histogram (request start to response end) that holds its p99',
    '- latencies: client side, per response, sent to last byte received; "1,000 req/s" is autocannon\'s `overallRate`, which sends each connection\'s share of a second back to back, then waits for the next second (bursts of up to 4 concurrent requests here)',
    '',
    '| scenario | connections | requests | req/s | vectors/s | p50 ms | p99 ms | p99.9 ms | max ms | non-2xx | errors | server CPU ms/request | server-side p99 ≤ ms |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|',
    ...r.scenarios.map((s) => `| ${s.name} | ${s.connections} | ${s.requests} | ${f(s.requestsPerSecond, 0)} | ${f(s.vectorsPerSecond, 0)} | ${f(s.p50_ms)} | ${f(s.p99_ms)} | ${f(s.p999_ms)} | ${f(s.max_ms)} | ${s.non2xx} | ${s.errors} | ${s.serverCpuMsPerRequest === null ? 'n/a' : f(s.serverCpuMsPerRequest, 3)} | ${s.serverP99AtMost_ms} |`),
    '',
    `Server memory at rest (10 s after the last request; RSS / V8 heap used): ${mib(r.memory.afterWarmup.rss)} / ${mib(r.memory.afterWarmup.heapUsed)} MiB after warm-up, ${mib(r.memory.afterLoad.rss)} / ${mib(r.memory.afterLoad.heapUsed)} MiB after ${f(r.memory.loadSeconds, 0)} s of load. SIGTERM afterwards: exit status ${r.shutdownExitCode}.`,
    '',
    'Against the targets:',
    `- one 512-d vector (JSON) at 1,000 req/s, p99 ≤ 2 ms: **${f(single.p99_ms)} ms** client side (p50 ${f(single.p50_ms)} ms, ${f(single.requestsPerSecond, 0)} req/s achieved; server side p99 ≤ ${single.serverP99AtMost_ms} ms).`,
    `- batched ≥ 100,000 vectors/s: **${f(batch.vectorsPerSecond, 0)} vectors/s** with 256-vector binary requests${batch.serverCpuMsPerRequest ? ` (server CPU ${f(batch.serverCpuMsPerRequest)} ms per request: ${f((BATCH * 1000) / batch.serverCpuMsPerRequest, 0)} vectors/s per fully used core)` : ''}.`,
    `- memory after the load within 10% of after warm-up: **${growth >= 0 ? '+' : ''}${f(100 * growth, 1)}%** RSS.`,
    '',
  ].join('\n');
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
