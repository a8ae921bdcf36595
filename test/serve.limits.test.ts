// The service under hostile or careless clients, over raw sockets on 127.0.0.1: refused requests
// close the connection instead of reading their body, a memory budget and a connection cap,
// timeouts for stalled clients, large JSON off the event loop with the same answers and errors,
// /maps without server paths, and the bearer token.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, test } from 'node:test';
import { Engine } from '../src/engine/engine';
import { LinearMap } from '../src/maps/linear-map';
import { createMapServer, type MapServer, type MapServerOptions } from '../src/serve';
import { makeRng, randn } from './helpers/random';
import { matmul, relErr, toF64 } from './helpers/reference';

Engine.get().setThreads(1);
const rng = makeRng('serve.limits.test');
const P = 32, Q = 8;
const W = randn(rng, P, Q, 'float64');
const map = LinearMap.create(W, new Float64Array(Q), { estimator: 'lstsq', source: { model: '/srv/secret/models/a.npy', dim: P }, target: { model: 'B', dim: Q } });

const servers: MapServer[] = [];
after(() => Promise.all(servers.map((s) => s.close())));
async function start(options: Partial<MapServerOptions> = {}): Promise<{ url: string; port: number; server: MapServer }> {
  const server = createMapServer({ maps: { a: map }, port: 0, ...options });
  servers.push(server);
  const url = await server.listen();
  return { url, port: Number(new URL(url).port), server };
}

interface RawClient {
  socket: net.Socket;
  /** Everything the server sent so far. */
  received(): string;
  /** Resolves when the server closes the connection, with the milliseconds it took from `since`. */
  closed: Promise<number>;
}

/** Opens a socket, sends `head` (request line and headers) and `body`, and keeps it open. */
function rawRequest(port: number, head: string, body: Uint8Array = new Uint8Array(0)): RawClient {
  const socket = net.connect(port, '127.0.0.1');
  let text = '';
  const since = Date.now();
  socket.on('data', (b) => (text += b.toString('latin1')));
  socket.on('error', () => undefined);
  const closed = new Promise<number>((resolve) => socket.on('close', () => resolve(Date.now() - since)));
  socket.write(head + '\r\n\r\n');
  if (body.length) socket.write(body);
  return { socket, received: () => text, closed };
}

const within = <T>(ms: number, p: Promise<T>, what: string) =>
  Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms))]);

test('a POST to an unknown map is answered 404 and its connection closed without reading the 100 MB body', async () => {
  const { port } = await start();
  const c = rawRequest(port, `POST /map/nope HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: ${100 * 2 ** 20}`, new Uint8Array(65536));
  await within(3000, c.closed, 'the server closing the connection');
  assert.match(c.received(), /^HTTP\/1\.1 404 .*connection: close/is);
  assert.match(c.received(), /"code":"unknown_map"/);
  assert.ok(c.socket.bytesWritten < 2 ** 20, 'the client sent only what it wrote before the answer');
});

test('large bodies beyond the memory budget are refused at once with 503, small ones still served; stalled bodies are cut at the request timeout', async () => {
  const { port, url } = await start({ limits: { bodyBytes: 256 * 1024, bodyBudgetBytes: 512 * 1024, requestTimeoutMs: 1500, headersTimeoutMs: 1000 } });
  const head = `POST /map/a HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: ${256 * 1024}`;
  const stalled = [rawRequest(port, head, new Uint8Array(1000)), rawRequest(port, head, new Uint8Array(1000))];
  await new Promise((r) => setTimeout(r, 200));
  const third = rawRequest(port, head, new Uint8Array(1000));
  await within(2000, third.closed, 'the refused request closing');
  assert.match(third.received(), /^HTTP\/1\.1 503 /);
  assert.match(third.received(), /"code":"busy"/);
  const one = randn(rng, 1, P, 'float32');
  const small = await fetch(`${url}/map/a`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: new Uint8Array(one.data.buffer) });
  assert.equal(small.status, 200, 'a single vector is served while the budget is taken');
  // The stalled ones are cut by the request timeout (1.5 s, checked every second).
  for (const s of stalled) assert.ok((await within(5000, s.closed, 'a stalled request closing')) < 4500);
  // The budget is free again: a well-behaved request is answered.
  const x = randn(rng, 2, P, 'float32');
  const res = await fetch(`${url}/map/a`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: new Uint8Array(x.data.buffer) });
  assert.equal(res.status, 200);
});

test('a client that never finishes its headers is disconnected; connections beyond the cap are closed on arrival', async () => {
  const { port } = await start({ limits: { maxConnections: 3, headersTimeoutMs: 1000, requestTimeoutMs: 1500 } });
  const slow = net.connect(port, '127.0.0.1');
  slow.on('error', () => undefined);
  slow.resume(); // read, so that the server's close is seen
  slow.write('POST /map/a HTTP/1.1\r\nHost: x\r\n');
  const slowClosed = new Promise((r) => slow.on('close', r));
  const open = [0, 1].map(() => rawRequest(port, 'GET /healthz HTTP/1.1\r\nHost: x'));
  await new Promise((r) => setTimeout(r, 200));
  const fourth = rawRequest(port, 'GET /healthz HTTP/1.1\r\nHost: x');
  await within(2000, fourth.closed, 'the connection beyond the cap closing');
  assert.equal(fourth.received(), '');
  for (const c of open) assert.match(c.received(), /^HTTP\/1\.1 200 /);
  await within(4000, slowClosed, 'the slow-headers client being disconnected');
  for (const c of open) c.socket.destroy();
});

test('large JSON bodies go through the worker thread with the same answers and the same errors', async () => {
  const { url } = await start({ limits: { jsonInlineBytes: 0 } });
  const X = randn(rng, 50, P, 'float32');
  const rows = Array.from({ length: 50 }, (_, i) => Array.from(X.row(i)));
  const res = await fetch(`${url}/map/a`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ vectors: rows }) });
  assert.equal(res.status, 200);
  const got = (await res.json()) as { vectors: number[][] };
  assert.ok(relErr(got.vectors.flat(), matmul(toF64(X), W).data) < 1e-5);
  const bad = await fetch(`${url}/map/a`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"vectors": [[1, 2' });
  assert.equal(bad.status, 400);
  assert.match(((await bad.json()) as { error: string }).error, /^body: expected valid JSON, received /);
  const short = await fetch(`${url}/map/a`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ vectors: [rows[0], rows[1].slice(1)] }) });
  assert.equal(short.status, 400);
  assert.match(((await short.json()) as { error: string }).error, /^vectors\[1\]: expected 32 numbers/);
});

test('/maps names models without the server\'s folders', async () => {
  const { url } = await start();
  const body = (await (await fetch(`${url}/maps`)).json()) as { maps: { source: { model: string } }[] };
  assert.equal(body.maps[0].source.model, 'a.npy');
  assert.doesNotMatch(JSON.stringify(body), /secret/);
});

test('with a token, every route but /healthz needs it; beyond loopback without one, a warning', async () => {
  const token = 'correct-horse-battery-staple';
  const { url } = await start({ token });
  assert.equal((await fetch(`${url}/healthz`)).status, 200);
  for (const auth of [undefined, 'Bearer wrong', `Bearer ${token}x`, token]) {
    const res = await fetch(`${url}/maps`, { headers: auth ? { authorization: auth } : {} });
    assert.equal(res.status, 401, String(auth));
    assert.equal(res.headers.get('www-authenticate'), 'Bearer');
  }
  assert.equal((await fetch(`${url}/maps`, { headers: { authorization: `Bearer ${token}` } })).status, 200);
  assert.throws(() => createMapServer({ maps: { a: map }, token: 'short' }), /token: expected a string of 16 or more characters/);

  const written: string[] = [];
  const write = process.stderr.write;
  process.stderr.write = ((chunk: string) => written.push(String(chunk)) > 0) as typeof process.stderr.write;
  try {
    await start({ host: '0.0.0.0' });
    await start({ host: '0.0.0.0', token });
  } finally {
    process.stderr.write = write;
  }
  assert.equal(written.length, 1);
  assert.match(written[0], /^warning: serving on 0\.0\.0\.0 beyond this machine without a token/);
});

test('embmap serve --token-file: a short token or a missing file is a usage error naming the file', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'embmap-token-'));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const mapFile = path.join(dir, 'a.safetensors');
  map.save(mapFile);
  fs.writeFileSync(path.join(dir, 'short'), 'abc\n');
  const cli = path.join(__dirname, '..', 'src', 'cli', 'main.js');
  const run = (...args: string[]) => spawnSync(process.execPath, [cli, 'serve', '--map', `a=${mapFile}`, '--port', '0', ...args], { encoding: 'utf8', timeout: 30_000 });
  const short = run('--token-file', path.join(dir, 'short'));
  assert.equal(short.status, 2);
  assert.match(short.stderr, new RegExp(`--token-file: expected a token of 16 or more characters without spaces on the first line of ${path.join(dir, 'short')}, found 3 character\\(s\\)`));
  const missing = run('--token-file', path.join(dir, 'none'));
  assert.match(missing.stderr, /--token-file: cannot read .*none: ENOENT/);
});

test('the partial body of a client gone midway is freed at once, not at the next full garbage collection', async () => {
  const { port } = await start({ limits: { bodyBytes: 32 * 2 ** 20 } });
  const before = process.memoryUsage().arrayBuffers;
  const clients = [0, 1, 2].map(() => rawRequest(port, `POST /map/a HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: ${24 * 2 ** 20}`, new Uint8Array(20 * 2 ** 20)));
  await new Promise((r) => setTimeout(r, 1500));
  const held = process.memoryUsage().arrayBuffers - before;
  assert.ok(held > 40 * 2 ** 20, `the bodies are being held: ${(held / 2 ** 20).toFixed(1)} MiB`);
  for (const c of clients) c.socket.destroy();
  await new Promise((r) => setTimeout(r, 500));
  const left = process.memoryUsage().arrayBuffers - before;
  // Two 24 MiB bodies fit the 64 MiB budget (the third gets 503): their buffers go at once; what
  // remains is the socket's read chunks, garbage until the next collection.
  console.log(`# held ${(held / 2 ** 20).toFixed(1)} MiB while the clients stalled, ${(left / 2 ** 20).toFixed(1)} MiB after they left`);
  assert.ok(held - left > 40 * 2 ** 20, `only ${((held - left) / 2 ** 20).toFixed(1)} MiB freed when the clients left`);
});
