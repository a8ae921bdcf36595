// Loads the C++ addon (built by cmake-js into build/Release during `npm ci`). When it cannot
// load, the error says why and how to rebuild, instead of a bare "module not found".
import * as path from 'node:path';

/** The raw native functions. Callers use src/engine, which validates arguments first. */
export interface NativeBinding {
  backends(): { name: string; library: string; kernel: string; reason: string; threads: number; precision: string }[];
  setThreads(backend: string, threads: number): void;
  setPrecision(backend: string, precision: string): boolean;
  cudaStatus(): { available: boolean; reason: string };
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
  statsUpdate(
    backend: string, X: FloatArr, Y: FloatArr | null, rows: number, p: number, q: number,
    n: Float64Array, sumX: Float64Array, sumY: Float64Array | null, sqY: Float64Array | null, xtx: Float64Array,
    xty: Float64Array | null, yty: Float64Array | null, shiftX: Float64Array | null, shiftY: Float64Array | null,
    f64Products: boolean, async: boolean,
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
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const load = require('node-gyp-build') as (dir: string) => NativeBinding;
    cached = load(packageRoot);
    return cached;
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new Error(
      `embmap: the native addon could not be loaded.\n  reason: ${reason}\n` +
        `  The addon is compiled by cmake-js when the package installs. To rebuild it:\n` +
        `    apt-get install cmake g++ libblis-dev liblapack-dev   # BLAS/LAPACK optional: without them the portable backend is built\n` +
        `    cd ${packageRoot} && npx cmake-js compile\n` +
        `  A Node.js version change needs no rebuild (N-API 8); a different CPU architecture or libc does.`,
    );
  }
}
