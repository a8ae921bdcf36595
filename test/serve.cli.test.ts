// `embmap serve` as a real child process: its usage errors, and graceful shutdown on SIGTERM
// with requests in flight (they finish, new connections are refused, exit status 0), and the
// grace period cutting off a request that never finishes (exit status 1). And `embmap bench
// --quick` end to end on whatever this machine has.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { LinearMap } from '../src/maps/linear-map';
import { makeRng, randn } from './helpers/random';
import { matmul, relErr, toF64 } from './helpers/reference';

const rng = makeRng('serve.cli.test');
const cli = path.join(__dirname, '..', 'src', 'cli', 'main.js');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'embmap-serve-'));
process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));

const P = 32, Q = 12;
const W = randn(rng, P, Q, 'float64'), bias = randn(rng, 1, Q, 'float64').data;
const mapFile = path.join(dir, 'a2b.safetensors');
LinearMap.create(W, bias, { estimator: 'ridge' }).save(mapFile);

interface Served {
  child: ChildProcess;
  url: URL;
  stdout: () => string;
  exited: Promise<{ code: number | null; stderr: string }>;
}

async function serve(...extra: string[]): Promise<Served> {
  const child = spawn(process.execPath, [cli, 'serve', '--map', `a=${mapFile}`, '--port', '0', ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '', err = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (err += d));
  const exited = new Promise<{ code: number | null; stderr: string }>((resolve) => child.on('exit', (code) => resolve({ code, stderr: err })));
  const url = await waitFor(() => /listening on (http:\/\/\S+)/.exec(out)?.[1], () => `server did not start: ${out} ${err}`);
  return { child, url: new URL(url), stdout: () => out, exited };
}

async function waitFor<T>(probe: () => T | undefined | Promise<T | undefined>, what: () => string, ms = 15000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out: ${what()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A binary request whose body is sent in two parts: `finish()` sends the rest and resolves to the answer. */
function partialRequest(url: URL, rows: Float32Array) {
  const bytes = Buffer.from(rows.buffer, rows.byteOffset, rows.byteLength);
  const req = http.request({
    host: url.hostname, port: url.port, path: '/map/a', method: 'POST', agent: false,
    headers: { 'content-type': 'application/octet-stream', 'content-length': bytes.length },
  });
  const answer = new Promise<{ status: number; body: Buffer }>((resolve, reject) => {
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c) => chunks.push(c)).on('end', () => resolve({ status: res.statusCode!, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
  });
  req.write(bytes.subarray(0, 100));
  return { answer, finish: () => (req.end(bytes.subarray(100)), answer) };
}

async function inflight(url: URL): Promise<number> {
  const text = await (await fetch(new URL('/metrics', url))).text();
  return Number(/^embmap_http_requests_in_flight (\d+)$/m.exec(text)![1]) - 1; // less this request
}

const refused = (url: URL) =>
  new Promise<boolean>((resolve) => {
    const s = net.connect(Number(url.port), url.hostname);
    s.on('connect', () => (s.destroy(), resolve(false))).on('error', (e: NodeJS.ErrnoException) => resolve(e.code === 'ECONNREFUSED'));
  });

test('usage errors name the flag; a missing map file names the file', () => {
  const run = (...args: string[]) => spawnSync(process.execPath, [cli, 'serve', ...args], { encoding: 'utf8' });
  let r = run();
  assert.equal(r.status, 2);
  assert.match(r.stderr, /--map: expected a NAME=FILE pair .*at least once, received nothing/);
  r = run('--map', 'nofile');
  assert.equal(r.status, 2);
  assert.match(r.stderr, /--map: expected NAME=FILE, received 'nofile'/);
  r = run('--map', `a=${mapFile}`, '--map', `a=${mapFile}`);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /--map: expected distinct names, received 'a' twice/);
  r = run('--map', `a=${path.join(dir, 'missing.safetensors')}`, '--port', '0');
  assert.equal(r.status, 1);
  assert.match(r.stderr, /missing\.safetensors/);
});

test('SIGTERM: new connections are refused, in-flight requests finish, exit status 0', async () => {
  const s = await serve();
  assert.match(s.stdout(), /map a: 32 -> 12 \(ridge, unknown -> unknown\) from .*a2b\.safetensors/);
  const X = randn(rng, 3, P, 'float32');
  const pending = [0, 1, 2].map((i) => partialRequest(s.url, X.row(i)));
  await waitFor(async () => ((await inflight(s.url)) === 3 ? true : undefined), () => 'the three requests never reached the server');

  s.child.kill('SIGTERM');
  await waitFor(() => (/SIGTERM: closing, 3 request\(s\) in flight/.test(s.stdout()) ? true : undefined), s.stdout);
  await waitFor(async () => ((await refused(s.url)) ? true : undefined), () => 'the port still accepts connections after SIGTERM');

  const answers = await Promise.all(pending.map((p) => p.finish()));
  const ref = matmul(toF64(X), W);
  answers.forEach((a, i) => {
    assert.equal(a.status, 200, a.body.toString());
    const y = new Float32Array(a.body.buffer, a.body.byteOffset, Q);
    const want = ref.data.subarray(i * Q, (i + 1) * Q).map((v, j) => v + bias[j]);
    assert.ok(relErr(y, want) < 1e-5, `request ${i}`);
  });
  const { code, stderr } = await s.exited;
  assert.equal(code, 0, stderr);
  assert.match(s.stdout(), /\nclosed\n$/);
});

test('past --grace, a request that never finishes is cut off and the exit status is 1', async () => {
  const s = await serve('--grace', '0.3');
  const stuck = partialRequest(s.url, randn(rng, 1, P, 'float32').data);
  stuck.answer.catch(() => undefined); // its connection is cut: an error, expected
  await waitFor(async () => ((await inflight(s.url)) === 1 ? true : undefined), () => 'the request never reached the server');
  s.child.kill('SIGTERM');
  const { code, stderr } = await s.exited;
  assert.equal(code, 1);
  assert.match(stderr, /embmap serve: grace period of 0\.3 s over: 1 request\(s\) cut off unfinished/);
});

test('embmap bench --quick --json: figures for the backend asked, GPU status, extraction, comparators or why not', () => {
  const out = path.join(dir, 'bench.json');
  const r = spawnSync(process.execPath, [cli, 'bench', '--quick', '--backend', 'portable', '--json', '--out', out], { encoding: 'utf8', timeout: 300_000 });
  assert.equal(r.status, 0, r.stderr);
  const res = JSON.parse(r.stdout);
  assert.deepEqual(JSON.parse(fs.readFileSync(out, 'utf8')), res);
  assert.deepEqual(Object.keys(res.embmap), ['portable']);
  const p = res.embmap.portable;
  for (const k of ['fit_s', 'apply_vps', 'apply256_vps', 'apply1_p50_us', 'apply1_p99_us', 'cosine_mpairs']) assert.ok(p[k] > 0, `${k}: ${p[k]}`);
  assert.ok(p.apply1_p99_us >= p.apply1_p50_us);
  assert.ok(res.gpu.backend === null ? /./.test(res.gpu.device) : typeof res.gpu.backend === 'string');
  assert.ok(res.extraction.imagesPerSecond > 0 && res.extraction.images === 32, JSON.stringify(res.extraction));
  // NumPy: figures (and the fit's agreement with its float64 solution), or the reason it is missing.
  if ('unavailable' in res.numpy) assert.match(res.numpy.unavailable, /./);
  else assert.ok(res.numpy.fit_s > 0 && p.fit_relerr < 1e-4, JSON.stringify({ numpy: res.numpy, relerr: p.fit_relerr }));
  assert.ok('unavailable' in res.mlMatrix || res.mlMatrix.apply_vps > 0);
  const bad = spawnSync(process.execPath, [cli, 'bench', '--backend', 'nope'], { encoding: 'utf8' });
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /^embmap bench: backend: expected one of 'cuda', 'cpu-blas', .*received string "nope"$/m);
});
