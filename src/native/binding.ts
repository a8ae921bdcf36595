// Loads the C++ addon: a source build (build/Release, made by `npm ci` in a clone) or the prebuilt
// one the package carries (prebuilds/linux-x64), found by node-gyp-build. When none fits or loads,
// the error says why and the one command that builds it here, instead of a stack trace.
import * as path from 'node:path';

/** The raw native functions. Callers use src/engine, which validates arguments first. */
export interface NativeBinding {
  backends(): { name: string; library: string; kernel: string; reason: string; threads: number; precision: string; threadCap: boolean }[];
  setThreads(backend: string, threads: number): void;
  /** Limits the threads of the operations dispatched until it is set to 0 again (engine/threads.h). */
  setCallThreads(threads: number): void;
  setPrecision(backend: string, precision: string): boolean;
  cudaStatus(): { available: boolean; reason: string };
  /** Asks for transparent huge pages behind the array's whole 2 MiB pages (native/napi/memory.cc). */
  adviseHugePages(array: FloatArr): boolean;
  blasStatus(): { available: boolean; reason: string };
  gemm(
    backend: string, A: FloatArr, aRows: number, aCols: number, transA: boolean,
    B: FloatArr, bRows: number, bCols: number, transB: boolean, bias: FloatArr | null,
    C: FloatArr, async: boolean,
  ): number | Promise<number>;
  cholesky(backend: string, A: FloatArr, n: number, async: boolean): number | Promise<number>;
  cholSolve(backend: string, L: FloatArr, n: number, B: FloatArr, nrhs: number, async: boolean): number | Promise<number>;
  lstsq(
    backend: string, A: FloatArr, m: number, n: number, B: FloatArr, nrhs: number, X: FloatArr,
    rcond: number, async: boolean,
  ): number | Promise<number>;
  eigh(backend: string, A: FloatArr, n: number, w: FloatArr, V: FloatArr, async: boolean): number | Promise<number>;
  svd(
    backend: string, A: FloatArr, m: number, n: number, U: FloatArr, S: FloatArr, Vt: FloatArr,
    async: boolean,
  ): number | Promise<number>;
  /** index: which of X's `rows` rows to add, in order (null: all of them). */
  statsUpdate(
    backend: string, X: FloatArr, Y: FloatArr | null, index: Int32Array | null, rows: number, p: number, q: number,
    n: Float64Array, sumX: Float64Array, sumY: Float64Array | null, sqY: Float64Array | null, xtx: Float64Array,
    xty: Float64Array | null, yty: Float64Array | null, shiftX: Float64Array | null, shiftY: Float64Array | null,
    workspace: Float64Array | null, f64Products: boolean, async: boolean,
  ): number | Promise<number>;
  /** Length of the workspace statsUpdate uses for `rows` rows. */
  statsWorkspace(p: number, q: number, rows: number): number;
  /** out = [out +] sa A [+ sb B] + sum_k U_k V_k^T over r rank-one terms, synchronously (native/ops/ops.h combineMoments); whether out is all finite. */
  statsCombine(
    out: Float64Array, accumulate: boolean, sa: number, A: Float64Array, sb: number, B: Float64Array | null, U: Float64Array, V: Float64Array, r: number,
  ): boolean;
  /** Per column, the sum over the statistics' rows of (x M + bias - y)^2 into out (native/ops/ops.h statsResidualSquares). */
  statsResidual(
    backend: string, p: number, q: number, n: Float64Array, sumX: Float64Array, sumY: Float64Array, sqY: Float64Array, xtx: Float64Array,
    xty: Float64Array, shiftX: Float64Array, shiftY: Float64Array, M: Float64Array, bias: Float64Array, out: Float64Array, async: boolean,
  ): number | Promise<number>;
  normalizeRows(A: FloatArr, rows: number, cols: number, out: FloatArr, async: boolean): number | Promise<number>;
  cosineTopK(
    backend: string, Q: FloatArr, nq: number, G: FloatArr, ng: number, d: number, k: number,
    self: boolean, topIdx: Int32Array | null, topScore: FloatArr | null, lo: number, hi: number,
    counts: Float64Array | null, async: boolean,
  ): number | Promise<number>;
}

type FloatArr = Float32Array | Float64Array;

export const packageRoot = path.resolve(__dirname, '..', '..', '..');

let cached: NativeBinding | undefined;

export function binding(): NativeBinding {
  if (cached) return cached;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const nodeGypBuild = require('node-gyp-build') as { path(dir: string): string };
  let file: string | undefined;
  try {
    file = nodeGypBuild.path(packageRoot);
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    cached = require(file) as NativeBinding;
    return cached;
  } catch (err) {
    const reason = ((err instanceof Error ? err.message : String(err)).split('\n')[0]);
    const found = file ? `${file} did not load: ${reason}` : `no addon built or prebuilt for ${process.platform}-${process.arch} (the package carries linux-x64 glibc >= 2.35)`;
    throw new Error(
      `embmap: the native addon could not be loaded: ${found}. ` +
        `Build it from source (cmake and g++ needed; BLAS is found at run time): node ${path.join(packageRoot, 'scripts', 'build-addon.js')}`,
    );
  }
}