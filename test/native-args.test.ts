// Deliberately wrong arguments to every exported native function: each must throw a TypeError
// or RangeError naming the argument, and the process must carry on.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { binding, type NativeBinding } from '../src/native/binding';
import { Engine } from '../src/engine/engine';
import { Matrix } from '../src/core/matrix';

const f32 = (n: number) => new Float32Array(n);
const f64 = (n: number) => new Float64Array(n);
const be = Engine.available()[0].name;

type Case = [string, () => unknown, RegExp];
const cases: Record<keyof NativeBinding, Case[]> = {
  backends: [['extra argument', () => (binding().backends as (x: number) => unknown)(1), /expected 0 arguments/]],
  setThreads: [
    ['unknown backend', () => binding().setThreads('tpu', 2), /backend: expected one of .*received 'tpu'/],
    ['zero threads', () => binding().setThreads(be, 0), /threads: expected an integer in \[1, 1024\]/],
  ],
  setCallThreads: [['negative', () => binding().setCallThreads(-1), /threads: expected an integer in \[0, 1024\]/]],
  setPrecision: [
    ['unknown backend', () => binding().setPrecision('tpu', 'tf32'), /backend: expected one of .*received 'tpu'/],
    ['mode not a string', () => binding().setPrecision(be, 32 as unknown as string), /precision: expected a string, received number 32/],
  ],
  cudaStatus: [['extra argument', () => (binding().cudaStatus as (x: number) => unknown)(1), /expected 0 arguments/]],
  adviseHugePages: [
    ['no array', () => (binding().adviseHugePages as () => unknown)(), /adviseHugePages: expected 1 arguments?, received 0/],
    ['Int32Array', () => binding().adviseHugePages(new Int32Array(4) as unknown as Float64Array), /array: expected a Float32Array or Float64Array, received Int32Array/],
  ],
  blasStatus: [['extra argument', () => (binding().blasStatus as (x: number) => unknown)(1), /expected 0 arguments/]],
  gemm: [
    ['too few arguments', () => (binding().gemm as (...a: unknown[]) => unknown)(be, f32(4)), /gemm: expected 12 arguments, received 2/],
    ['A not a typed array', () => binding().gemm(be, [1, 2] as unknown as Float32Array, 1, 2, false, f32(2), 2, 1, false, null, f32(1), false), /A: expected a Float32Array or Float64Array, received Array/],
    ['A length vs shape', () => binding().gemm(be, f32(5), 2, 3, false, f32(6), 3, 2, false, null, f32(4), false), /A: expected length 6 \(2x3\), received length 5/],
    ['inner dimensions', () => binding().gemm(be, f32(6), 2, 3, false, f32(8), 4, 2, false, null, f32(4), false), /B: expected op\(B\) with 3 rows/],
    ['mixed dtypes', () => binding().gemm(be, f32(6), 2, 3, false, f64(6), 3, 2, false, null, f32(4), false), /B: expected a Float32Array like the first matrix, received a Float64Array/],
    ['bias length', () => binding().gemm(be, f32(6), 2, 3, false, f32(6), 3, 2, false, f32(3), f32(4), false), /bias: expected length 2/],
    ['output aliases input', () => { const a = f32(4); return binding().gemm(be, a, 2, 2, false, f32(4), 2, 2, false, null, a, false); }, /C: expected memory separate from A/],
    ['negative rows', () => binding().gemm(be, f32(0), -1, 0, false, f32(0), 0, 0, false, null, f32(0), false), /aRows: expected an integer in \[0/],
    ['fractional size', () => binding().gemm(be, f32(6), 2.5, 3, false, f32(6), 3, 2, false, null, f32(4), false), /aRows: expected an integer, received number 2.5/],
    ['async not boolean', () => binding().gemm(be, f32(6), 2, 3, false, f32(6), 3, 2, false, null, f32(4), 'yes' as unknown as boolean), /async: expected a boolean/],
  ],
  cholesky: [
    ['not square length', () => binding().cholesky(be, f64(5), 2, false), /A: expected length 4 \(2x2\)/],
    ['Int32Array', () => binding().cholesky(be, new Int32Array(4) as unknown as Float64Array, 2, false), /A: expected a Float32Array or Float64Array, received Int32Array/],
  ],
  cholSolve: [['B rows', () => binding().cholSolve(be, f64(4), 2, f64(3), 2, false), /B: expected length 4 \(2x2\)/]],
  lstsq: [
    ['X shape', () => binding().lstsq(be, f64(6), 3, 2, f64(3), 1, f64(3), 0, false), /X: expected length 2 \(2x1\)/],
    ['rcond', () => binding().lstsq(be, f64(6), 3, 2, f64(3), 1, f64(2), 2, false), /rcond: expected a number in \[0, 1\)/],
  ],
  eigh: [['w length', () => binding().eigh(be, f64(9), 3, f64(2), f64(9), false), /w: expected length 3/]],
  svd: [['S length', () => binding().svd(be, f64(6), 3, 2, f64(6), f64(3), f64(4), false), /S: expected length 2/]],
  statsUpdate: [
    ['xtx length', () => binding().statsUpdate(be, f32(6), f32(3), null, 3, 2, 1, f64(1), f64(2), f64(1), f64(1), f64(3), f64(2), null, null, null, null, false, false), /xtx: expected length 4 \(2x2\)/],
    ['accumulator dtype', () => binding().statsUpdate(be, f32(6), f32(3), null, 3, 2, 1, f64(1), f32(2) as unknown as Float64Array, f64(1), f64(1), f64(4), f64(2), null, null, null, null, false, false), /sumX: expected a Float64Array/],
    ['index type', () => binding().statsUpdate(be, f32(6), f32(3), new Uint32Array(1) as unknown as Int32Array, 3, 2, 1, f64(1), f64(2), f64(1), f64(1), f64(4), f64(2), null, null, null, null, false, false), /index: expected an Int32Array/],
    ['index out of range', () => binding().statsUpdate(be, f32(6), f32(3), Int32Array.of(0, 3), 3, 2, 1, f64(1), f64(2), f64(1), f64(1), f64(4), f64(2), null, null, null, null, false, false), /index: expected row numbers in \[0, 3\), received 3 at position 1/],
    ['Y missing', () => binding().statsUpdate(be, f32(6), null, null, 3, 2, 1, f64(1), f64(2), f64(1), f64(1), f64(4), f64(2), null, null, null, null, false, false), /Y: expected a Float32Array or Float64Array since q > 0/],
  ],
  statsWorkspace: [['negative rows', () => binding().statsWorkspace(4, 2, -1), /rows: expected an integer in \[0/]],
  statsCombine: [
    ['A length', () => binding().statsCombine(f64(4), false, 1, f64(3), 0, null, f64(2), f64(2), 1), /A: expected length 4 \(2x2\)/],
    ['U not whole rows', () => binding().statsCombine(f64(4), false, 1, f64(4), 0, null, f64(3), f64(4), 2), /U: expected length 2 \(2x1\)/],
    ['B length', () => binding().statsCombine(f64(4), false, 1, f64(4), -1, f64(2), f64(2), f64(2), 1), /B: expected length 4 \(2x2\)/],
    ['no terms', () => binding().statsCombine(f64(4), false, 1, f64(4), 0, null, f64(0), f64(0), 0), /r: expected at least one rank-one term/],
    ['sa not a number', () => binding().statsCombine(f64(4), false, '1' as unknown as number, f64(4), 0, null, f64(2), f64(2), 1), /sa: expected a number/],
  ],
  statsResidual: [
    ['xtx length', () => binding().statsResidual(be, 2, 1, f64(1), f64(2), f64(1), f64(1), f64(3), f64(2), f64(2), f64(1), f64(2), f64(1), f64(1), false), /xtx: expected length 4 \(2x2\)/],
    ['M length', () => binding().statsResidual(be, 2, 1, f64(1), f64(2), f64(1), f64(1), f64(4), f64(2), f64(2), f64(1), f64(3), f64(1), f64(1), false), /M: expected length 2 \(2x1\)/],
    ['out length', () => binding().statsResidual(be, 2, 1, f64(1), f64(2), f64(1), f64(1), f64(4), f64(2), f64(2), f64(1), f64(2), f64(1), f64(2), false), /out: expected length 1/],
    ['q of zero', () => binding().statsResidual(be, 2, 0, f64(1), f64(2), f64(0), f64(0), f64(4), f64(0), f64(2), f64(0), f64(0), f64(0), f64(0), false), /q: expected an integer/],
    ['bias dtype', () => binding().statsResidual(be, 2, 1, f64(1), f64(2), f64(1), f64(1), f64(4), f64(2), f64(2), f64(1), f64(2), f32(1) as unknown as Float64Array, f64(1), false), /bias: expected a Float64Array/],
  ],
  normalizeRows: [['out length', () => binding().normalizeRows(f32(6), 2, 3, f32(5), false), /out: expected length 6/]],
  cosineTopK: [
    ['topIdx type', () => binding().cosineTopK(be, f32(6), 2, f32(6), 2, 3, 1, false, new Uint32Array(2) as unknown as Int32Array, f32(2), -1, 1, null, false), /topIdx: expected an Int32Array, received Uint32Array/],
    ['histogram range', () => binding().cosineTopK(be, f32(6), 2, f32(6), 2, 3, 0, false, null, null, 1, 1, f64(4), false), /hi: expected a number greater than lo/],
    ['self with another array', () => binding().cosineTopK(be, f32(6), 2, f32(6), 2, 3, 0, true, null, null, -1, 1, null, false), /G: expected the same array as Q/],
  ],
};

test('every exported native function has bad-input cases', () => {
  assert.deepEqual(Object.keys(binding()).sort(), Object.keys(cases).sort());
});

for (const [fn, list] of Object.entries(cases)) {
  for (const [name, call, message] of list) {
    test(`${fn}: ${name}`, () => {
      assert.throws(call, (err: unknown) => {
        assert.ok(err instanceof TypeError || err instanceof RangeError, `expected TypeError/RangeError, got ${String(err)}`);
        assert.match((err as Error).message, message);
        return true;
      });
    });
  }
}

test('the TypeScript layer names arguments and shapes before native code runs', () => {
  const e = Engine.get();
  const A = Matrix.zeros(3, 4, 'float32');
  assert.throws(() => e.gemmSync(A, Matrix.zeros(5, 2, 'float32')), /B: expected op\(B\) with 4 rows to match op\(A\) \(3x4\), received op\(B\) 5x2/);
  assert.throws(() => e.gemmSync(A, Matrix.zeros(4, 2, 'float64') as unknown as Matrix<'float32'>), /B: expected a \?x\? float32 matrix, received 4x2 Float64Array matrix/);
  assert.throws(() => new Matrix(new Float32Array(5), 2, 3), /data: expected length rows\*cols = 2\*3 = 6, received length 5/);
  assert.throws(() => e.choleskySync(A), /A: expected a square matrix, received 3x4/);
  assert.throws(() => A.takeRows([0, 3]), /rows\[1\]: expected an integer in \[0, 2\], received number 3/);
  assert.deepEqual(Matrix.from([[1, 2], [3, 4], [5, 6]]).takeRows([2, 0]).toArray(), [[5, 6], [1, 2]]);
  const bad = Matrix.zeros(2, 2, 'float64');
  bad.set(1, 0, NaN);
  assert.throws(() => e.gemmSync(bad, bad, { checkFinite: true }), /A: expected finite values, received NaN at row 1, column 0/);
  assert.throws(() => Engine.get('tpu'), /backend: expected one of 'cuda', 'cpu-blas', 'portable', received string "tpu"/);
});
