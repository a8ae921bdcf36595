// The micro-batcher alone: jobs queued in one event-loop turn share a GEMM, jobs arriving while
// a GEMM runs share the next one, maxRows splits the queue, and every job gets its own rows.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Matrix } from '../src/core/matrix';
import { LinearMap } from '../src/maps/linear-map';
import { MicroBatcher } from '../src/serve/batcher';
import { makeRng, randn } from './helpers/random';
import { matmul, relErr, toF64 } from './helpers/reference';

const rng = makeRng('serve.batcher.test');
const P = 40, Q = 24;
const W = randn(rng, P, Q, 'float64'), b = randn(rng, 1, Q, 'float64').data;
const map = LinearMap.create(W, b);

function reference(X: Matrix): Float64Array {
  const Y = matmul(toF64(X), toF64(W));
  for (let i = 0; i < X.rows; i++) for (let j = 0; j < Q; j++) Y.data[i * Q + j] += b[j];
  return Y.data;
}

const jobs = (n: number) => Array.from({ length: n }, () => randn(rng, 1 + Math.floor(rng() * 5), P, 'float32'));

test('jobs submitted in one turn share one GEMM and each gets its own rows', async () => {
  const batches: [number, number][] = [];
  const batcher = new MicroBatcher(map, { onBatch: (rows, requests) => batches.push([rows, requests]) });
  const xs = jobs(30);
  const ys = await Promise.all(xs.map((X) => batcher.submit(X.data, X.rows)));
  const rows = xs.reduce((s, X) => s + X.rows, 0);
  assert.deepEqual(batches, [[rows, 30]]);
  xs.forEach((X, i) => {
    assert.equal(ys[i].length, X.rows * Q);
    assert.ok(relErr(ys[i], reference(X)) < 1e-5, `job ${i}`);
  });
  assert.equal(batcher.queued, 0);
});

test('jobs arriving while a thread-pool GEMM runs are served together by the next GEMM', async () => {
  const batches: [number, number][] = [];
  let late: Promise<Float32Array>[] = [];
  const lateX = jobs(12);
  // syncWork 0: every GEMM on the thread pool. The late jobs are submitted as the first GEMM starts.
  const batcher = new MicroBatcher(map, {
    syncWork: 0,
    onBatch: (rows, requests) => {
      batches.push([rows, requests]);
      if (batches.length === 1) late = lateX.map((X) => batcher.submit(X.data, X.rows));
    },
  });
  const first = randn(rng, 3, P, 'float32');
  const y0 = await batcher.submit(first.data, 3);
  const ys = await Promise.all(late);
  assert.deepEqual(batches, [[3, 1], [lateX.reduce((s, X) => s + X.rows, 0), 12]]);
  assert.ok(relErr(y0, reference(first)) < 1e-5);
  lateX.forEach((X, i) => assert.ok(relErr(ys[i], reference(X)) < 1e-5, `late job ${i}`));
});

test('maxRows splits the queue into consecutive GEMMs; a larger job runs alone', async () => {
  const batches: [number, number][] = [];
  const batcher = new MicroBatcher(map, { maxRows: 8, onBatch: (rows, requests) => batches.push([rows, requests]) });
  const sizes = [3, 4, 2, 20, 5, 5];
  const xs = sizes.map((n) => randn(rng, n, P, 'float32'));
  const ys = await Promise.all(xs.map((X) => batcher.submit(X.data, X.rows)));
  assert.deepEqual(batches, [[7, 2], [2, 1], [20, 1], [5, 1], [5, 1]]);
  xs.forEach((X, i) => assert.ok(relErr(ys[i], reference(X)) < 1e-5, `job ${i}`));
});

test('submit checks its arguments', () => {
  const batcher = new MicroBatcher(map);
  assert.throws(() => batcher.submit(new Float64Array(P) as unknown as Float32Array, 1), /^TypeError: x: expected a Float32Array, received Float64Array\(40\)$/);
  assert.throws(() => batcher.submit(new Float32Array(P), 0), /^RangeError: rows: expected an integer >= 1, received number 0$/);
  assert.throws(() => batcher.submit(new Float32Array(P + 1), 1), /^RangeError: x: expected rows\*p = 1\*40 = 40 values, received 41$/);
  assert.throws(() => new MicroBatcher(map, { maxRows: 0 }), /maxRows: expected an integer >= 1, received number 0/);
});
