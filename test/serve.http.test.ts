// The map service over real HTTP on 127.0.0.1 (ephemeral port): JSON and binary bodies against a
// float64 reference, many concurrent requests each getting its own rows back, every bad input
// answered with a 4xx JSON error while the service keeps serving, /healthz, /maps and /metrics.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Matrix } from '../src/core/matrix';
import { Engine } from '../src/engine/engine';
import { LinearMap } from '../src/maps/linear-map';
import { createMapServer, type MapServer } from '../src/serve';
import { makeRng, randn } from './helpers/random';
import { matmul, relErr, toF64 } from './helpers/reference';

const rng = makeRng('serve.http.test');
// As `embmap serve` does (see its --threads): multi-threaded BLAS calls for tiny GEMMs stall for
// whole scheduler slices when the machine's cores are busy.
Engine.get().setThreads(1);
const P = 48, Q = 20, P2 = 16, Q2 = 64;

function sampleMap(p: number, q: number) {
  const W = randn(rng, p, q, 'float64'), b = randn(rng, 1, q, 'float64').data;
  return { W, b, map: LinearMap.create(W, b, { estimator: 'lstsq' }) };
}
const A = sampleMap(P, Q), B = sampleMap(P2, Q2);

/** x . W + b in float64. */
function reference(X: Matrix, m: { W: Matrix; b: Float64Array }): Float64Array {
  const Y = matmul(toF64(X), toF64(m.W));
  for (let i = 0; i < X.rows; i++) for (let j = 0; j < m.W.cols; j++) Y.data[i * m.W.cols + j] += m.b[j];
  return Y.data;
}

let server: MapServer;
let url: string;
before(async () => {
  server = createMapServer({ maps: { a: A.map, b: B.map }, port: 0, limits: { bodyBytes: 64 * 1024, maxRows: 64 } });
  url = await server.listen();
  assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/);
});
after(() => server.close());

const postJson = (name: string, body: unknown) =>
  fetch(`${url}/map/${name}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: typeof body === 'string' ? body : JSON.stringify(body) });
const postBinary = (name: string, bytes: Uint8Array) =>
  fetch(`${url}/map/${name}`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: bytes });
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const json = (res: Response): Promise<any> => res.json();
const bytesOf = (m: Matrix<'float32'>) => new Uint8Array(m.data.buffer, m.data.byteOffset, m.data.byteLength);

async function binaryRows(res: Response): Promise<Float32Array> {
  assert.equal(res.status, 200, await res.clone().text());
  assert.equal(res.headers.get('content-type'), 'application/octet-stream');
  return new Float32Array(await res.arrayBuffer());
}

async function assertMapsOk(): Promise<void> {
  const X = randn(rng, 1, P, 'float32');
  const res = await postJson('a', { vector: Array.from(X.data) });
  assert.equal(res.status, 200);
  assert.ok(relErr((await json(res)).vector, reference(X, A)) < 1e-5);
}

test('JSON single and batch answers match x.W + b in float64, under the same key', async () => {
  const X = randn(rng, 7, P, 'float32');
  const one = await postJson('a', { vector: Array.from(X.row(0)) });
  assert.equal(one.status, 200);
  assert.match(one.headers.get('content-type')!, /^application\/json/);
  const oneBody = await json(one);
  assert.deepEqual(Object.keys(oneBody), ['vector']);
  assert.equal(oneBody.vector.length, Q);
  assert.ok(relErr(oneBody.vector, reference(X.rowSlice(0, 1), A)) < 1e-5);

  const batch = await postJson('a', { vectors: X.toArray() });
  const body = await json(batch);
  assert.deepEqual(Object.keys(body), ['vectors']);
  assert.equal(body.vectors.length, 7);
  assert.ok(body.vectors.every((r: number[]) => r.length === Q));
  assert.ok(relErr(body.vectors.flat(), reference(X, A)) < 1e-5);
});

test('binary single and batch: little-endian float32 rows in, the same out', async () => {
  const X = randn(rng, 9, P2, 'float32');
  const one = await binaryRows(await postBinary('b', bytesOf(X.rowSlice(3, 4))));
  assert.equal(one.length, Q2);
  assert.ok(relErr(one, reference(X.rowSlice(3, 4), B)) < 1e-5);
  const all = await binaryRows(await postBinary('b', bytesOf(X)));
  assert.equal(all.length, 9 * Q2);
  assert.ok(relErr(all, reference(X, B)) < 1e-5);
  // JSON and binary give the same float32 values for the same rows.
  const viaJson = await json(await postJson('b', { vectors: X.toArray() }));
  assert.deepEqual(Float32Array.from(viaJson.vectors.flat()), all);
});

test('concurrent requests are batched without mixing rows: each answer is its own input mapped', async () => {
  const family = (text: string, name: string) => Number(new RegExp(`^${name}\\{map="a"\\} (\\d+)$`, 'm').exec(text)?.[1] ?? 0);
  // Bursts until GEMMs served two requests each on average (the first burst also opens connections).
  for (let burst = 1; ; burst++) {
    const before = server.metrics.registry.render();
    const jobs = Array.from({ length: 120 }, (_, i) => {
      const useB = i % 3 === 0;
      const X = randn(rng, 1 + Math.floor(rng() * 6), useB ? P2 : P, 'float32');
      const form = (['vector', 'vectors', 'binary'] as const)[i % 3 === 1 ? 0 : i % 2 === 0 ? 1 : 2];
      return { i, m: useB ? B : A, name: useB ? 'b' : 'a', X: form === 'vector' ? X.rowSlice(0, 1) : X, form };
    });
    const results = await Promise.all(
      jobs.map(async (j) => {
        if (j.form === 'binary') return binaryRows(await postBinary(j.name, bytesOf(j.X)));
        if (j.form === 'vector') return Float64Array.from((await json(await postJson(j.name, { vector: Array.from(j.X.data) }))).vector);
        return Float64Array.from((await json(await postJson(j.name, { vectors: j.X.toArray() }))).vectors.flat());
      }),
    );
    for (const [k, j] of jobs.entries()) {
      assert.ok(relErr(results[k], reference(j.X, j.m)) < 1e-5, `request ${j.i} (${j.form} on map ${j.name}) got rows that are not its own`);
    }
    const after = server.metrics.registry.render();
    const delta = (name: string) => family(after, name) - family(before, name);
    const jobsA = jobs.filter((j) => j.name === 'a');
    assert.equal(delta('embmap_vectors_mapped_total'), jobsA.reduce((s, j) => s + j.X.rows, 0));
    assert.equal(delta('embmap_batch_requests_sum'), jobsA.length);
    const gemms = delta('embmap_batch_requests_count');
    console.log(`# burst ${burst}: ${jobsA.length} requests to map a served by ${gemms} GEMM(s)`);
    if (gemms <= jobsA.length / 2) break;
    assert.ok(burst < 5, 'concurrent requests were hardly ever batched together');
  }
});

test('every bad input gets a 4xx JSON error naming the problem, and the service keeps serving', async () => {
  const good = Array.from(randn(rng, 1, P, 'float32').data);
  const nan = randn(rng, 2, P, 'float32');
  nan.data[P + 5] = NaN;
  const cases: [string, () => Promise<Response>, number, string, RegExp][] = [
    ['wrong dimension (JSON)', () => postJson('a', { vector: good.slice(1) }), 400, 'bad_dimension', /^vector: expected 48 numbers \(the map's source dimension\), received 47$/],
    ['wrong dimension in a batch row', () => postJson('a', { vectors: [good, good.slice(2)] }), 400, 'bad_dimension', /^vectors\[1\]: expected 48 numbers/],
    ['wrong dimension (binary)', () => postBinary('a', bytesOf(randn(rng, 5, P2, 'float32'))), 400, 'truncated', /expected a whole number of rows of 48 little-endian float32 values \(192 bytes each\), received 320 bytes = 1 row\(s\) \+ 128 bytes/],
    // 3 rows of 16 values are as many bytes as 1 row of 48: the optional header tells them apart.
    ['wrong declared dimension (binary)', () => fetch(`${url}/map/a`, { method: 'POST', headers: { 'content-type': 'application/octet-stream', 'x-embmap-dim': '16' }, body: bytesOf(randn(rng, 3, P2, 'float32')) }), 400, 'bad_dimension', /^x-embmap-dim: expected 48 \(the map's source dimension\), received "16"$/],
    ['NaN (binary)', () => postBinary('a', bytesOf(nan)), 400, 'not_finite', /^body: expected finite values, received NaN at row 1, column 5$/],
    ['NaN literal (JSON)', () => postJson('a', `{"vector": [NaN${',0'.repeat(P - 1)}]}`), 400, 'invalid_json', /^body: expected valid JSON, received .*Unexpected token/],
    ['Infinity via 1e999', () => postJson('a', `{"vector": [0, 1e999${',0'.repeat(P - 2)}]}`), 400, 'not_finite', /^vector\[1\]: expected a finite float32 number .* received number Infinity$/],
    ['beyond float32', () => postJson('a', { vector: [...good.slice(0, 3), -1e39, ...good.slice(4)] }), 400, 'not_finite', /^vector\[3\]: .*received number -1e\+39$/],
    ['non-numeric value', () => postJson('a', { vectors: [good, [...good.slice(0, 10), 'x', ...good.slice(11)]] }), 400, 'not_numeric', /^vectors\[1\]\[10\]: expected a number, received string "x"$/],
    ['null value', () => postJson('a', { vector: [null, ...good.slice(1)] }), 400, 'not_numeric', /^vector\[0\]: expected a number, received null$/],
    ['vector not an array', () => postJson('a', { vector: 'abc' }), 400, 'bad_body', /^vector: expected an array of 48 numbers, received string "abc"$/],
    ['wrong key', () => postJson('a', { vectorz: [good] }), 400, 'bad_body', /received the keys "vectorz"$/],
    ['both keys', () => postJson('a', { vector: good, vectors: [good] }), 400, 'bad_body', /received the keys "vector", "vectors"$/],
    ['empty batch', () => postJson('a', { vectors: [] }), 400, 'bad_body', /^vectors: expected a non-empty array/],
    ['body is an array', () => postJson('a', [good]), 400, 'bad_body', /^body: expected \{"vector": \[48 numbers\]\} .* received Array\(1\)$/],
    ['invalid JSON', () => postJson('a', '{"vector": [1, 2'), 400, 'invalid_json', /^body: expected valid JSON/],
    ['truncated binary body', () => postBinary('a', bytesOf(randn(rng, 2, P, 'float32')).subarray(0, 2 * 4 * P - 3)), 400, 'truncated', /received 381 bytes = 1 row\(s\) \+ 189 bytes/],
    ['empty binary body', () => postBinary('a', new Uint8Array(0)), 400, 'bad_body', /received 0 bytes$/],
    ['unknown map', () => postJson('nope', { vector: good }), 404, 'unknown_map', /^map: expected one of "a", "b", received "nope"$/],
    ['oversize body', () => postBinary('a', new Uint8Array(65 * 1024)), 413, 'too_large', /^body: expected at most 65536 bytes, received 66560 bytes$/],
    ['too many rows', () => postBinary('a', bytesOf(randn(rng, 65, P, 'float32'))), 413, 'too_many_rows', /^body: expected at most 64 vectors per request, received 65$/],
    ['unsupported content-type', () => fetch(`${url}/map/a`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'hello' }), 415, 'unsupported_media_type', /^content-type: expected application\/json or application\/octet-stream, received "text\/plain"$/],
    ['no body', () => fetch(`${url}/map/a`, { method: 'POST' }), 400, 'bad_body', /received no body$/],
    ['unknown route', () => fetch(`${url}/mapz/a`), 404, 'not_found', /^route: expected POST \/map\/NAME.* received GET \/mapz\/a$/],
  ];
  for (const [what, send, status, code, message] of cases) {
    const res = await send();
    assert.equal(res.status, status, `${what}: status`);
    assert.match(res.headers.get('content-type')!, /^application\/json/, `${what}: content-type`);
    const body = await json(res);
    assert.equal(body.code, code, `${what}: ${JSON.stringify(body)}`);
    assert.equal(body.statusCode, status);
    assert.match(body.error, message, `${what}: message`);
    await assertMapsOk();
  }
});

test('a result that overflows float32: JSON answers 422 naming the row, binary carries Infinity', async () => {
  const big = LinearMap.create(Matrix.from([[1e30, 1], [1e30, 1]], 'float64'), new Float64Array(2));
  const s = createMapServer({ maps: { big }, port: 0 });
  const u = await s.listen();
  try {
    const res = await fetch(`${u}/map/big`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ vectors: [[1, 1], [1e9, 1e9]] }) });
    assert.equal(res.status, 422);
    const body = await json(res);
    assert.equal(body.code, 'overflow');
    assert.match(body.error, /^mapped values: expected finite values, received Infinity at row 1, column 0/);
    const ok = await json(await fetch(`${u}/map/big`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"vector":[1,2]}' }));
    assert.deepEqual(ok.vector, [Math.fround(3 * Math.fround(1e30)), 3]);
    const bin = await fetch(`${u}/map/big`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: new Uint8Array(Float32Array.from([1e9, 1e9]).buffer) });
    assert.equal(bin.headers.get('x-embmap-dim'), '2');
    assert.deepEqual(await binaryRows(bin), Float32Array.from([Infinity, 2e9]));
  } finally {
    await s.close();
  }
});

/** Prometheus text exposition: every sample line parsed, HELP/TYPE before each family's samples. */
function parseProm(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  const typed = new Set<string>();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const meta = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.+)$/.exec(line);
    if (meta) {
      if (meta[1] === 'TYPE') {
        assert.match(meta[3], /^(counter|gauge|histogram)$/);
        typed.add(meta[2]);
      }
      continue;
    }
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*",?)*\})? (\S+)$/.exec(line);
    assert.ok(m, `not a Prometheus sample line: ${line}`);
    const family = m[1].replace(/_(bucket|sum|count)$/, '');
    assert.ok(typed.has(m[1]) || typed.has(family), `sample before its # TYPE: ${line}`);
    const value = Number(m[3]);
    assert.ok(!Number.isNaN(value), line);
    samples.set(m[1] + (m[2] ?? ''), value);
  }
  return samples;
}

test('/healthz, /maps and /metrics: counts match the requests made', async () => {
  const s = createMapServer({ maps: { a: A.map }, port: 0 });
  const u = await s.listen();
  try {
    const health = await fetch(`${u}/healthz`);
    assert.equal(health.status, 200);
    assert.deepEqual(await json(health), { status: 'ok', maps: 1 });
    const maps = await json(await fetch(`${u}/maps`));
    assert.deepEqual(maps.maps.map((m: { name: string; source: { dim: number }; target: { dim: number } }) => [m.name, m.source.dim, m.target.dim]), [['a', P, Q]]);
    const X = randn(rng, 5, P, 'float32');
    for (let i = 0; i < 3; i++) assert.equal((await fetch(`${u}/map/a`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ vector: Array.from(X.row(i)) }) })).status, 200);
    assert.equal((await fetch(`${u}/map/a`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: bytesOf(X) })).status, 200);
    assert.equal((await fetch(`${u}/map/a`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"vector":[1]}' })).status, 400);
    assert.equal((await fetch(`${u}/map/zz`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })).status, 404);

    const res = await fetch(`${u}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type')!, /^text\/plain; version=0\.0\.4/);
    const m = parseProm(await res.text());
    const route = 'route="/map/:name",method="POST"';
    assert.equal(m.get(`embmap_http_requests_total{${route},code="200"}`), 4);
    assert.equal(m.get(`embmap_http_requests_total{${route},code="400"}`), 1);
    assert.equal(m.get(`embmap_http_requests_total{${route},code="404"}`), 1);
    assert.equal(m.get('embmap_http_requests_total{route="/healthz",method="GET",code="200"}'), 1);
    assert.equal(m.get('embmap_http_requests_total{route="/maps",method="GET",code="200"}'), 1);
    assert.equal(m.get('embmap_http_request_duration_seconds_count{route="/map/:name"}'), 6);
    assert.equal(m.get('embmap_http_request_duration_seconds_bucket{route="/map/:name",le="+Inf"}'), 6);
    // Cumulative buckets never decrease.
    const buckets = [...m].filter(([k]) => k.startsWith('embmap_http_request_duration_seconds_bucket{route="/map/:name"')).map(([, v]) => v);
    assert.ok(buckets.every((v, i) => i === 0 || v >= buckets[i - 1]));
    assert.ok(m.get('embmap_http_request_duration_seconds_sum{route="/map/:name"}')! > 0);
    assert.equal(m.get('embmap_vectors_mapped_total{map="a"}'), 3 + 5);
    // Sequential requests: one GEMM each, of 1, 1, 1 and 5 rows.
    assert.equal(m.get('embmap_batch_rows_count{map="a"}'), 4);
    assert.equal(m.get('embmap_batch_rows_sum{map="a"}'), 8);
    assert.equal(m.get('embmap_batch_rows_bucket{map="a",le="1"}'), 3);
    assert.equal(m.get('embmap_batch_requests_sum{map="a"}'), 4);
    assert.equal(m.get('embmap_http_requests_in_flight'), 1); // this /metrics request
    assert.ok(m.get('process_resident_memory_bytes')! > 1e6);
  } finally {
    await s.close();
  }
});

test('createMapServer rejects bad options with messages naming them', () => {
  assert.throws(() => createMapServer({ maps: {} }), /^RangeError: maps: expected at least one map, received none$/);
  assert.throws(() => createMapServer({ maps: { 'a/b': A.map } }), /maps: expected names of 1-64 letters, digits, "\.", "_" or "-", received string "a\/b"/);
  assert.throws(() => createMapServer({ maps: { a: 3 as unknown as string } }), /maps\.a: expected a LinearMap or a \.safetensors path, received number 3/);
  assert.throws(() => createMapServer({ maps: { a: A.map }, port: 70000 }), /port: expected an integer in \[0, 65535\], received number 70000/);
  assert.throws(() => createMapServer({ maps: { a: A.map }, limits: { maxRows: 0 } }), /limits\.maxRows: expected an integer >= 1, received number 0/);
  assert.throws(() => createMapServer({ maps: { a: '/nonexistent/map.safetensors' } }), /nonexistent\/map\.safetensors/);
});
