// Engine: one interface over every native backend (after faiss's IndexFlat / GpuIndexFlat):
// `Engine.get('portable')`, `Engine.get('cpu-blas')` and `Engine.get('cuda')` expose the same
// methods with the same results to rounding, so callers switch backends without code changes.
// Without a name the best available one is used: the GPU where the CUDA libraries and a GPU
// are present, else BLIS/LAPACK, else the portable C++.
//
// Every operation has an async form (runs on the libuv thread pool, returns a Promise, keeps
// its input arrays alive until done) and a *Sync form for tiny inputs (microseconds overhead).
// Arguments are validated here, before they reach C++.
import { Matrix, type DType, type FloatArray } from '../core/matrix';
import { assertFinite, assertInteger, assertMatrix, assertNumber, assertOneOf, fail } from '../core/validate';
import { binding } from '../native/binding';

export type BackendName = 'cuda' | 'cpu-blas' | 'portable';
export const BACKEND_NAMES: readonly BackendName[] = ['cuda', 'cpu-blas', 'portable'];

/**
 * Precision of float32 products. 'float32' everywhere (the default); on the GPU also 'tf32'
 * (tensor cores, ~1e-3 relative error), '3xtf32' (three TF32 products of split operands:
 * float32-class error at tensor-core speed) and 'bf16'. Float64 data always runs in float64.
 */
export type Precision = 'float32' | 'tf32' | '3xtf32' | 'bf16';
export const PRECISIONS: readonly Precision[] = ['float32', 'tf32', '3xtf32', 'bf16'];

export interface BackendInfo {
  name: BackendName;
  library: string;
  kernel: string;
  reason: string;
  threads: number;
  precision: Precision;
  /** Whether one operation can be limited to fewer threads (Engine.withThreads); false where the library has one count for all calls. */
  threadCap: boolean;
}

export interface CheckOptions {
  /** Reject NaN/Inf in the inputs (costs one pass over them). */
  checkFinite?: boolean;
}

export interface InPlaceOptions extends CheckOptions {
  /** Overwrite the input with the result instead of copying it first (a p x p copy saved). */
  inPlace?: boolean;
}

export interface GemmOptions extends CheckOptions {
  transA?: boolean;
  transB?: boolean;
  /** Row vector (length = result columns) added to every row of the result. */
  bias?: FloatArray | null;
}

export interface LstsqResult<D extends DType = DType> {
  x: Matrix<D>;
  rank: number;
  /** rank < min(rows, cols) of A: the answer is the minimum-norm one. */
  rankDeficient: boolean;
}

export interface EighResult<D extends DType = DType> {
  /** Ascending. */
  values: Matrix<D>;
  /** Row i is the unit eigenvector of values[i]. */
  vectors: Matrix<D>;
}

export interface SvdResult<D extends DType = DType> {
  U: Matrix<D>;
  /** Descending singular values, 1 x min(m, n). */
  S: Matrix<D>;
  Vt: Matrix<D>;
}

export interface CosineOptions extends CheckOptions {
  /** Best k gallery rows per query (0: none). */
  k?: number;
  /** Streaming consumer: a histogram of every score, without storing the score matrix. */
  histogram?: { lo: number; hi: number; bins: number };
}

export interface CosineResult<D extends DType = DType> {
  /** nq x k gallery row indices, best first; -1 pads when the gallery has fewer than k rows. */
  indices: Int32Array;
  /** nq x k cosine scores matching `indices`. */
  scores: Matrix<D>;
  /** Histogram counts when asked for (each unordered pair once when scoring a set against itself). */
  counts?: Float64Array;
}

/** A native call prepared and validated once, runnable on either path. */
interface Plan<R> {
  call(async: boolean): number | Promise<number>;
  finish(ret: number): R;
}

/** The call with each operation it dispatches limited to `cap` threads (0: no limit; see Engine.withThreads). */
function capped<T>(cap: number, call: () => T): T {
  if (cap === 0) return call();
  binding().setCallThreads(cap);
  try {
    return call();
  } finally {
    binding().setCallThreads(0);
  }
}

const like = <D extends DType>(m: Matrix<D>, rows: number, cols: number) => Matrix.zeros<D>(rows, cols, m.dtype);

function sameDType(name: string, m: Matrix, ref: Matrix, refName: string): void {
  if (m.dtype !== ref.dtype) {
    throw new TypeError(`${name}: expected a ${ref.dtype} matrix like ${refName}, received a ${m.dtype} matrix`);
  }
}

function square(name: string, A: unknown): asserts A is Matrix {
  assertMatrix(name, A);
  if (A.rows !== A.cols) throw new RangeError(`${name}: expected a square matrix, received ${A.rows}x${A.cols}`);
}

function check(opts: CheckOptions | undefined, ...named: [string, Matrix][]): void {
  if (opts?.checkFinite) for (const [n, m] of named) assertFinite(n, m);
}

export class Engine {
  private static cache = new Map<string, Engine>();

  /** @param cap threads each operation may use (0: the backend's count), or a function read as each is dispatched (see withThreads). */
  private constructor(readonly name: BackendName, private readonly cap: number | (() => number) = 0) {}

  /** Backends this build and machine offer, best first. */
  static available(): BackendInfo[] {
    return binding().backends() as BackendInfo[];
  }

  /**
   * An engine by name; without a name, EMBMAP_BACKEND if set, else the best available.
   * An unavailable name is an error that lists the available ones.
   */
  static get(name?: string): Engine {
    const cached = Engine.cache.get(name ?? process.env.EMBMAP_BACKEND ?? '');
    if (cached) return cached; // every estimator, map and statistics object asks: skip the native query
    const wanted = name ?? process.env.EMBMAP_BACKEND ?? Engine.available()[0].name;
    assertOneOf(name === undefined && process.env.EMBMAP_BACKEND ? 'EMBMAP_BACKEND' : 'backend', wanted, BACKEND_NAMES);
    const avail = Engine.available().map((b) => b.name);
    if (!avail.includes(wanted)) {
      const why = wanted === 'cuda'
        ? `cuda unavailable: ${Engine.cudaStatus().reason}`
        : wanted === 'cpu-blas' ? `cpu-blas unavailable: ${Engine.blasStatus().reason}` : 'not built into this addon';
      throw new RangeError(
        `backend: expected one of the available backends ${avail.map((a) => `'${a}'`).join(', ')}, received '${wanted}' (${why})`,
      );
    }
    const e = Engine.cache.get(wanted) ?? new Engine(wanted);
    Engine.cache.set(wanted, e);
    if (name === undefined && !process.env.EMBMAP_BACKEND) Engine.cache.set('', e); // the default
    return e;
  }

  /** Whether the GPU backend is available here, and if not, what is missing. */
  static cudaStatus(): { available: boolean; reason: string } {
    return binding().cudaStatus();
  }

  /** Whether a BLAS/LAPACK library (BLIS, OpenBLAS, MKL) loaded for cpu-blas, and if not, why and how to get one. */
  static blasStatus(): { available: boolean; reason: string } {
    return binding().blasStatus();
  }

  info(): BackendInfo {
    return Engine.available().find((b) => b.name === this.name)!;
  }

  setThreads(threads: number): void {
    assertInteger('threads', threads, 1, 1024);
    binding().setThreads(this.name, threads);
  }

  /**
   * This backend with each of its operations limited to `threads` threads (no more than the
   * backend's own count), where the backend honours a per-call limit (info().threadCap): e.g. two
   * small factorisations at once, each on half the cores. Other users of the backend are unaffected.
   * A function is read as each operation is dispatched: a limit that follows the work beside it
   * (a cross-fit lane takes every thread once the other lane is done).
   */
  withThreads(threads: number | (() => number)): Engine {
    if (typeof threads !== 'function') assertInteger('threads', threads, 1, 1024);
    return new Engine(this.name, threads);
  }

  private limit(): number {
    if (typeof this.cap === 'number') return this.cap;
    const t = this.cap();
    assertInteger('threads', t, 1, 1024);
    return t;
  }

  /**
   * A native operation defined beside its data (SufficientStats'), called with this backend's
   * name and async set, off the event loop and under this engine's thread limit.
   */
  run(call: (backend: BackendName, async: true) => number | Promise<number>): Promise<number> {
    return this.runAsync({ call: () => call(this.name, true), finish: (ret) => ret });
  }

  private runSync<R>(p: Plan<R>): R {
    return p.finish(capped(this.limit(), () => p.call(false)) as number);
  }

  private async runAsync<R>(p: Plan<R>): Promise<R> {
    return p.finish(await capped(this.limit(), () => p.call(true)));
  }

  /** Precision of this backend's float32 products from now on (a backend-wide setting). */
  setPrecision(precision: Precision): void {
    assertOneOf('precision', precision, PRECISIONS);
    if (!binding().setPrecision(this.name, precision)) {
      throw new RangeError(
        `precision: expected 'float32' on the ${this.name} backend ('tf32', '3xtf32' and 'bf16' are GPU modes), received '${precision}'`,
      );
    }
  }

  // ---- GEMM: op(A) op(B) + bias
  gemm<D extends DType>(A: Matrix<D>, B: Matrix<D>, opts?: GemmOptions): Promise<Matrix<D>> {
    return this.runAsync(this.gemmPlan(A, B, opts));
  }
  gemmSync<D extends DType>(A: Matrix<D>, B: Matrix<D>, opts?: GemmOptions): Matrix<D> {
    return this.runSync(this.gemmPlan(A, B, opts));
  }
  private gemmPlan<D extends DType>(A: Matrix<D>, B: Matrix<D>, opts: GemmOptions = {}): Plan<Matrix<D>> {
    assertMatrix('A', A);
    assertMatrix('B', B, { dtype: A.dtype });
    const ta = opts.transA ?? false, tb = opts.transB ?? false;
    const m = ta ? A.cols : A.rows, k = ta ? A.rows : A.cols;
    const kb = tb ? B.cols : B.rows, n = tb ? B.rows : B.cols;
    if (k !== kb) {
      throw new RangeError(`B: expected op(B) with ${k} rows to match op(A) (${m}x${k}), received op(B) ${kb}x${n}`);
    }
    const bias = opts.bias ?? null;
    if (bias !== null) {
      if (!(bias instanceof (A.dtype === 'float32' ? Float32Array : Float64Array))) {
        fail(TypeError, 'bias', `a ${A.dtype === 'float32' ? 'Float32Array' : 'Float64Array'} like A`, bias);
      }
      if (bias.length !== n) throw new RangeError(`bias: expected length ${n} (columns of the result), received ${bias.length}`);
    }
    check(opts, ['A', A], ['B', B]);
    const C = like(A, m, n);
    return {
      call: (async) => binding().gemm(this.name, A.data, A.rows, A.cols, ta, B.data, B.rows, B.cols, tb, bias, C.data, async),
      finish: () => C,
    };
  }

  // ---- Cholesky: A = L L^T
  /** L (lower triangle; the strict upper is zeroed): in A itself with `inPlace`. */
  cholesky<D extends DType>(A: Matrix<D>, opts?: InPlaceOptions): Promise<Matrix<D>> {
    return this.runAsync(this.choleskyPlan(A, opts));
  }
  choleskySync<D extends DType>(A: Matrix<D>, opts?: InPlaceOptions): Matrix<D> {
    return this.runSync(this.choleskyPlan(A, opts));
  }
  private choleskyPlan<D extends DType>(A: Matrix<D>, opts?: InPlaceOptions): Plan<Matrix<D>> {
    square('A', A);
    check(opts, ['A', A]);
    const L = opts?.inPlace ? A : A.clone();
    return {
      call: (async) => binding().cholesky(this.name, L.data, L.rows, async),
      finish: (info) => {
        if (info !== 0) {
          throw new RangeError(
            `A: expected a symmetric positive definite matrix, received one whose leading minor of order ${info} is not positive definite`,
          );
        }
        return L;
      },
    };
  }

  /** Solves (L L^T) X = B given the Cholesky factor L; X in B itself with `inPlace`. */
  cholSolve<D extends DType>(L: Matrix<D>, B: Matrix<D>, opts?: InPlaceOptions): Promise<Matrix<D>> {
    return this.runAsync(this.cholSolvePlan(L, B, opts));
  }
  cholSolveSync<D extends DType>(L: Matrix<D>, B: Matrix<D>, opts?: InPlaceOptions): Matrix<D> {
    return this.runSync(this.cholSolvePlan(L, B, opts));
  }
  private cholSolvePlan<D extends DType>(L: Matrix<D>, B: Matrix<D>, opts?: InPlaceOptions): Plan<Matrix<D>> {
    square('L', L);
    assertMatrix('B', B, { rows: L.rows });
    sameDType('B', B, L, 'L');
    check(opts, ['L', L], ['B', B]);
    const X = opts?.inPlace ? B : B.clone();
    return {
      call: (async) => binding().cholSolve(this.name, L.data, L.rows, X.data, X.cols, async),
      finish: () => X,
    };
  }

  // ---- Least squares, minimum norm, rank-revealing (SVD based)
  lstsq<D extends DType>(A: Matrix<D>, B: Matrix<D>, opts?: { rcond?: number } & CheckOptions): Promise<LstsqResult<D>> {
    return this.runAsync(this.lstsqPlan(A, B, opts));
  }
  lstsqSync<D extends DType>(A: Matrix<D>, B: Matrix<D>, opts?: { rcond?: number } & CheckOptions): LstsqResult<D> {
    return this.runSync(this.lstsqPlan(A, B, opts));
  }
  private lstsqPlan<D extends DType>(A: Matrix<D>, B: Matrix<D>, opts: { rcond?: number } & CheckOptions = {}): Plan<LstsqResult<D>> {
    assertMatrix('A', A);
    assertMatrix('B', B, { rows: A.rows });
    sameDType('B', B, A, 'A');
    const eps = A.dtype === 'float32' ? 1.2e-7 : 2.3e-16;
    const rcond = opts.rcond ?? eps * Math.max(A.rows, A.cols);
    assertNumber('rcond', rcond, 0, 1 - Number.EPSILON);
    check(opts, ['A', A], ['B', B]);
    const x = like(A, A.cols, B.cols);
    return {
      call: (async) => binding().lstsq(this.name, A.data, A.rows, A.cols, B.data, B.cols, x.data, rcond, async),
      finish: (rank) => ({ x, rank, rankDeficient: rank < Math.min(A.rows, A.cols) }),
    };
  }

  // ---- Symmetric eigendecomposition
  eigh<D extends DType>(A: Matrix<D>, opts?: CheckOptions): Promise<EighResult<D>> {
    return this.runAsync(this.eighPlan(A, opts));
  }
  eighSync<D extends DType>(A: Matrix<D>, opts?: CheckOptions): EighResult<D> {
    return this.runSync(this.eighPlan(A, opts));
  }
  private eighPlan<D extends DType>(A: Matrix<D>, opts?: CheckOptions): Plan<EighResult<D>> {
    square('A', A);
    check(opts, ['A', A]);
    const values = like(A, 1, A.rows), vectors = like(A, A.rows, A.rows);
    return {
      call: (async) => binding().eigh(this.name, A.data, A.rows, values.data, vectors.data, async),
      finish: (info) => {
        if (info !== 0) throw new RangeError(`A: the eigensolver did not converge (code ${info})`);
        return { values, vectors };
      },
    };
  }

  // ---- Thin SVD
  svd<D extends DType>(A: Matrix<D>, opts?: CheckOptions): Promise<SvdResult<D>> {
    return this.runAsync(this.svdPlan(A, opts));
  }
  svdSync<D extends DType>(A: Matrix<D>, opts?: CheckOptions): SvdResult<D> {
    return this.runSync(this.svdPlan(A, opts));
  }
  private svdPlan<D extends DType>(A: Matrix<D>, opts?: CheckOptions): Plan<SvdResult<D>> {
    assertMatrix('A', A);
    check(opts, ['A', A]);
    const r = Math.min(A.rows, A.cols);
    const U = like(A, A.rows, r), S = like(A, 1, r), Vt = like(A, r, A.cols);
    return {
      call: (async) => binding().svd(this.name, A.data, A.rows, A.cols, U.data, S.data, Vt.data, async),
      finish: (info) => {
        if (info !== 0) throw new RangeError(`A: the SVD did not converge (code ${info})`);
        return { U, S, Vt };
      },
    };
  }

  // ---- Row L2 normalisation (zero rows stay zero)
  normalizeRows<D extends DType>(A: Matrix<D>, opts?: { inPlace?: boolean }): Promise<Matrix<D>> {
    return this.runAsync(this.normalizePlan(A, opts));
  }
  normalizeRowsSync<D extends DType>(A: Matrix<D>, opts?: { inPlace?: boolean }): Matrix<D> {
    return this.runSync(this.normalizePlan(A, opts));
  }
  private normalizePlan<D extends DType>(A: Matrix<D>, opts: { inPlace?: boolean } = {}): Plan<Matrix<D>> {
    assertMatrix('A', A);
    const out = opts.inPlace ? A : like(A, A.rows, A.cols);
    return {
      call: (async) => binding().normalizeRows(A.data, A.rows, A.cols, out.data, async),
      finish: () => out,
    };
  }

  // ---- Blocked all-pairs cosine scores with per-row top-k and a histogram
  /** Scores every row of Q against every row of G (G omitted: Q against itself, self-pairs skipped). */
  cosineTopK<D extends DType>(Q: Matrix<D>, G: Matrix<D> | null, opts?: CosineOptions): Promise<CosineResult<D>> {
    return this.runAsync(this.cosinePlan(Q, G, opts));
  }
  cosineTopKSync<D extends DType>(Q: Matrix<D>, G: Matrix<D> | null, opts?: CosineOptions): CosineResult<D> {
    return this.runSync(this.cosinePlan(Q, G, opts));
  }
  private cosinePlan<D extends DType>(Q: Matrix<D>, G: Matrix<D> | null, opts: CosineOptions = {}): Plan<CosineResult<D>> {
    assertMatrix('Q', Q, { minRows: 0 });
    if (Q.cols < 1) throw new RangeError(`Q: expected at least one column, received ${Q.rows}x${Q.cols}`);
    const self = G === null || G === undefined;
    const gallery = self ? Q : G;
    if (!self) {
      assertMatrix('G', G, { cols: Q.cols });
      sameDType('G', G, Q, 'Q');
    }
    const k = opts.k ?? 0;
    assertInteger('k', k, 0, 1 << 20);
    check(opts, ['Q', Q], ['G', gallery]);
    let counts: Float64Array | null = null;
    let lo = -1, hi = 1;
    if (opts.histogram) {
      ({ lo, hi } = opts.histogram);
      assertNumber('histogram.lo', lo);
      assertNumber('histogram.hi', hi, lo + Number.EPSILON);
      assertInteger('histogram.bins', opts.histogram.bins, 1, 1 << 24);
      counts = new Float64Array(opts.histogram.bins);
    }
    const indices = new Int32Array(Q.rows * k);
    const scores = like(Q, Q.rows, k);
    return {
      call: (async) =>
        binding().cosineTopK(this.name, Q.data, Q.rows, gallery.data, gallery.rows, Q.cols, k, self,
          k > 0 ? indices : null, k > 0 ? scores.data : null, lo, hi, counts, async),
      finish: () => ({ indices, scores, ...(counts ? { counts } : {}) }),
    };
  }
}
