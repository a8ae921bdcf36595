// The cuda backend: what doctor and the engine say where it cannot run, and on a GPU, CPU and GPU
// agreement beyond the sizes engine.test.ts covers (several staging chunks and score tiles),
// the precision modes' measured error, and failures that leave the process usable.
// (engine.test.ts runs every operation on every available backend, cuda included.)
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import { Engine, type Precision } from '../src/engine/engine';
import { SufficientStats } from '../src/engine/stats';
import { doctor, formatDoctor } from '../src/engine/doctor';
import { makeRng, randn } from './helpers/random';
import { matmul, relErr, toF64 } from './helpers/reference';

const rng = makeRng('engine.cuda.test');
const status = Engine.cudaStatus();
const cpu = Engine.get(Engine.available().find((b) => b.name !== 'cuda')!.name);
const gpuSkip = status.available ? false : `no GPU here (${status.reason})`;
const distRoot = path.resolve(__dirname, '..');

/** Runs a snippet in a fresh Node process with the given environment; returns its stdout lines. */
function child(env: Record<string, string>, code: string): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['-e', code], { env: { ...process.env, ...env }, encoding: 'utf8', cwd: distRoot });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('availability is reported consistently; an unavailable GPU is explained and the CPU runs', () => {
  assert.equal(status.available, Engine.available().some((b) => b.name === 'cuda'));
  const report = formatDoctor(doctor());
  if (status.available) {
    assert.equal(Engine.get().name, 'cuda', 'the best available backend is the default');
    assert.match(report, /backend {3}cuda\n {4}library cuBLAS .*\n {4}kernel .*\(sm_\d+/);
  } else {
    assert.match(status.reason, /not found: .*\(lib\w+\.so\.\d+|no GPU|no usable GPU|disabled by EMBMAP_CUDA/);
    assert.match(report, /cuda {6}unavailable, the CPU backend runs: /);
    assert.notEqual(Engine.get().name, 'cuda');
    assert.throws(() => Engine.get('cuda'), (e: Error) => e instanceof RangeError && e.message.includes(`(cuda unavailable: ${status.reason})`));
  }
  const off = child({ EMBMAP_CUDA: 'off' }, `const { Engine } = require('./src/engine/engine'); console.log(JSON.stringify([Engine.cudaStatus(), Engine.get().name]))`);
  assert.equal(off.status, 0, off.stderr);
  const [st, name] = JSON.parse(off.stdout);
  assert.deepEqual(st, { available: false, reason: 'disabled by EMBMAP_CUDA=off' });
  assert.notEqual(name, 'cuda');
});

test('reduced-precision modes are GPU-only; float32 is accepted everywhere', () => {
  assert.throws(() => cpu.setPrecision('tf32'), new RegExp(`precision: expected 'float32' on the ${cpu.name} backend .*received 'tf32'`));
  assert.throws(() => cpu.setPrecision('fp8' as Precision), /precision: expected one of 'float32', 'tf32', '3xtf32', 'bf16', received string "fp8"/);
  cpu.setPrecision('float32');
  assert.equal(cpu.info().precision, 'float32');
});

describe('cuda backend on the GPU', { skip: gpuSkip }, () => {
  const gpu = status.available ? Engine.get('cuda') : cpu;

  test('precision modes: measured GEMM error against float64 within the documented bounds', () => {
    const A = randn(rng, 512, 1024, 'float32'), B = randn(rng, 1024, 384, 'float32');
    const ref = matmul(toF64(A), toF64(B));
    // Bounds in docs/GPU.md: float32-class for float32 and 3xTF32, 2^-11 and 2^-8 class for
    // TF32 and BF16 inputs (relative Frobenius error of a product with k = 1024 terms).
    const bounds: Record<Precision, number> = { float32: 2e-6, '3xtf32': 4e-6, tf32: 3e-3, bf16: 2e-2 };
    const errors: Record<string, number> = {};
    try {
      for (const p of Object.keys(bounds) as Precision[]) {
        gpu.setPrecision(p);
        assert.equal(gpu.info().precision, p);
        errors[p] = relErr(gpu.gemmSync(A, B).data, ref.data);
      }
    } finally {
      gpu.setPrecision('float32');
    }
    console.log(`# gemm 512x1024x384 relative error by precision: ${JSON.stringify(errors)}`);
    for (const p of Object.keys(bounds) as Precision[]) assert.ok(errors[p] <= bounds[p], `${p}: ${errors[p]} > ${bounds[p]}`);
    assert.ok(errors.tf32 > 10 * errors.float32, 'tf32 really ran on tensor cores (its error is larger)');
  });

  test('streaming statistics over several staging chunks: GPU equals CPU, in each precision', async () => {
    const p = 256, q = 256, N = 300_000; // the GPU stages 131,072 rows of 512 floats per chunk
    const X = randn(rng, N, p, 'float32'), Y = randn(rng, N, q, 'float32');
    const ref = await new SufficientStats(p, q, { yty: true, engine: cpu }).update(X, Y);
    // 3xTF32's statistics: ~1e-5 (its tensor-core accumulation; docs/GPU.md), float32's ~1e-6.
    for (const [prec, precision, tol] of [['float32', 'float32', 1e-5], ['3xtf32', 'float32', 3e-5], ['float32', 'float64', 1e-12]] as const) {
      gpu.setPrecision(prec);
      try {
        const s = await new SufficientStats(p, q, { yty: true, precision, engine: gpu }).update(X.rowSlice(0, 1000), Y.rowSlice(0, 1000));
        await s.update(X.rowSlice(1000, N), Y.rowSlice(1000, N));
        assert.equal(s.count, N);
        // Both about the CPU's shift, so that the two are comparable entry by entry.
        const g = s.about(ref.shiftX, ref.shiftY), c = ref.about(ref.shiftX, ref.shiftY);
        for (const k of ['sumX', 'sumY', 'sqY', 'xx', 'xy', 'yy'] as const) {
          const [ge, ce] = [g[k]!, c[k]!].map((v) => (v instanceof Float64Array ? v : v.data));
          const e = relErr(ge, ce);
          assert.ok(e <= tol, `${prec} ${precision} ${k}: ${e} > ${tol}`);
        }
        for (let i = 0; i < p; i++) for (let j = 0; j < i; j++) assert.equal(s.xtx[i * p + j], s.xtx[j * p + i]);
      } finally {
        gpu.setPrecision('float32');
      }
    }
  });

  test('cosine top-k over several tiles (row and column passes) agrees with the CPU, for every list size', async () => {
    const X = randn(rng, 20_000, 32, 'float32'); // 2 tile rows of 16384: the column pass runs
    const bins = 50;
    const [g, c] = await Promise.all([
      gpu.cosineTopK(X, null, { k: 5, histogram: { lo: -1, hi: 1, bins } }),
      cpu.cosineTopK(X, null, { k: 5, histogram: { lo: -1, hi: 1, bins } }),
    ]);
    let same = 0;
    for (let i = 0; i < g.indices.length; i++) {
      same += g.indices[i] === c.indices[i] ? 1 : 0;
      assert.ok(Math.abs(g.scores.data[i] - c.scores.data[i]) < 1e-5, `score ${i}: ${g.scores.data[i]} vs ${c.scores.data[i]}`);
    }
    assert.ok(same >= 0.999 * g.indices.length, `indices agree ${same}/${g.indices.length} (near-ties may swap)`);
    const total = (a: Float64Array) => a.reduce((s, v) => s + v, 0);
    assert.equal(total(g.counts!), (20_000 * 19_999) / 2);
    assert.equal(total(c.counts!), total(g.counts!));
    assert.ok(relErr(g.counts!, c.counts!) < 1e-3, 'histograms agree up to scores on bin edges');
    for (const k of [40, 100]) { // the 64-slot kernel, then the generic path beyond it
      const wide = await gpu.cosineTopK(X.rowSlice(0, 300), X, { k });
      const wideCpu = await cpu.cosineTopK(X.rowSlice(0, 300), X, { k });
      assert.ok(relErr(wide.scores.data, wideCpu.scores.data) < 1e-6, `k = ${k}`);
    }
  });

  test('GEMM with bias over rows larger than one staging chunk, float64 too', async () => {
    for (const dtype of ['float32', 'float64'] as const) {
      const X = randn(rng, 70_000, 600, dtype), M = randn(rng, 600, 400, dtype), b = randn(rng, 1, 400, dtype).data;
      const [g, c] = await Promise.all([gpu.gemm(X, M, { bias: b }), cpu.gemm(X, M, { bias: b })]);
      assert.ok(relErr(g.data, c.data) < (dtype === 'float32' ? 1e-6 : 1e-14), `${dtype}: ${relErr(g.data, c.data)}`);
    }
  });

  test('out of device memory mid-operation: a clear error, the statistics untouched, the process usable', () => {
    const code = `
      const { Engine } = require('./src/engine/engine');
      const { SufficientStats } = require('./src/engine/stats');
      const { Matrix } = require('./src/core/matrix');
      const gpu = Engine.get('cuda');
      const out = {};
      try { gpu.gemmSync(Matrix.zeros(1024, 1024, 'float32'), Matrix.zeros(1024, 1024, 'float32')); } catch (e) { out.gemm = e.message; }
      const s = new SufficientStats(512, 512, { engine: gpu });
      try { s.updateSync(Matrix.zeros(40000, 512, 'float32'), Matrix.zeros(40000, 512, 'float32')); } catch (e) { out.stats = e.message; }
      out.count = s.count;
      out.after = Array.from(gpu.gemmSync(Matrix.from([[1, 2], [0, 1]]).astype('float32'), Matrix.from([[3], [4]]).astype('float32')).data);
      console.log(JSON.stringify(out));`;
    const r = child({ EMBMAP_CUDA_MEMORY_LIMIT: '8' }, code);
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.match(out.gemm, /^cuda: out of device memory allocating 4 MiB \(\d+ MiB held of the 8 MiB EMBMAP_CUDA_MEMORY_LIMIT allows\)$/);
    assert.match(out.stats, /^cuda: out of device memory allocating \d+ MiB/);
    assert.equal(out.count, 0);
    assert.deepEqual(out.after, [11, 4]);
  });
});

