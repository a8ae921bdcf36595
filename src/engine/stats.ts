// Streaming sufficient statistics of paired embeddings (X: N x p, Y: N x q): n, column sums,
// X^T X, X^T Y, column sums of squares of Y and optionally Y^T Y, all float64. Feed row chunks in
// any order; statistics of shards merge by addition, so a set larger than memory, or shards
// processed on different machines, give the same result as one pass (to rounding).
//
// Accuracy: the moments are kept about a fixed shift (the first rows' column means), not about
// zero. Centring uncentred sums (X^T X - n m m^T) cancels catastrophically when the means are
// large next to the spread (ReLU embeddings); about a shift near the mean nothing cancels. By
// default the products are formed in float64 (`precision: 'float64'`), so the statistics are as
// accurate as the data; `precision: 'float32'` forms them in float32 within row blocks (about
// twice the speed; the map then carries relative error ~ cond(X)^2 * 1e-7, see docs/MAPS.md).
import { allocate, Matrix } from '../core/matrix';
import { allFinite, assertBoolean, assertFinite, assertInteger, assertMatrix, assertOneOf, fail } from '../core/validate';
import { binding } from '../native/binding';
import { Engine } from './engine';

export type StatsPrecision = 'float64' | 'float32';
export const STATS_PRECISIONS: readonly StatsPrecision[] = ['float64', 'float32'];

export interface StatsOptions {
  /** Also accumulate Y^T Y (needed for residuals and CKA from statistics alone). */
  yty?: boolean;
  /** Products in float64 (default, accurate) or float32 (opt-in speed; float32 input only). */
  precision?: StatsPrecision;
  engine?: Engine;
  /**
   * Memory for the matrices (X^T X, X^T Y, then Y^T Y: SufficientStats.matrixLength values),
   * zeroed here, e.g. a workspace nothing reads any more: on virtual machines touching fresh pages
   * costs more than the arithmetic (bench/RESULTS.md). Without it they are allocated.
   */
  memory?: Float64Array;
}

export interface UpdateOptions {
  /** Add only these rows of X and Y, in this order (e.g. one fold's rows of a chunk): taken as the products are formed, not copied first. */
  rows?: Int32Array;
  /** How a NaN or infinity names X and Y (default 'X', 'Y') ... */
  names?: readonly [string, string];
  /** ... and the number of X's first row in the whole set (default 0). */
  rowOffset?: number;
  /**
   * Room for the row blocks (SufficientStats.workspace), shared by statistics fed in turn, e.g.
   * a cross-fit's folds: each update otherwise allocates its own, and fresh memory costs a page
   * fault per 4 KiB. Without it, or too short, the update allocates.
   */
  workspace?: Float64Array;
}

/** Moments of the rows about given centres cx, cy (d = x - cx, e = y - cy). */
export interface Moments {
  n: number;
  /** sum d (p), sum e (q), sum e^2 per column (q). */
  sumX: Float64Array;
  sumY: Float64Array;
  sqY: Float64Array;
  /** sum d d^T (p x p), sum d e^T (p x q), sum e e^T (q x q, when kept). */
  xx: Matrix<'float64'>;
  xy: Matrix<'float64'>;
  yy: Matrix<'float64'> | null;
}

/** Rows used to pick the shift: enough to land near the mean, few enough to cost nothing. */
const SHIFT_ROWS = 1024;

export class SufficientStats {
  readonly p: number;
  readonly q: number;
  readonly precision: StatsPrecision;
  /** The least precise dtype fed so far (decides the rounding level of the products). */
  inputDType: 'float32' | 'float64' | undefined;
  readonly n = new Float64Array(1);
  /** The centres the moments below are taken about (set by the first rows fed or merged). */
  readonly shiftX: Float64Array;
  readonly shiftY: Float64Array;
  readonly sumX: Float64Array;
  readonly sumY: Float64Array;
  /** Column sums of squares of Y (residuals, R^2 and GCV from statistics alone). */
  readonly sqY: Float64Array;
  /** p x p, row-major. */
  readonly xtx: Float64Array;
  /** p x q, row-major. */
  readonly xty: Float64Array;
  /** q x q when asked for. */
  readonly yty: Float64Array | null;
  private readonly engine: Engine;
  /** A lending difference's total and part (see difference), whether a solve holds its moments, and whether its X^T X came out finite. */
  private recipe: { total: SufficientStats; part: SufficientStats } | undefined;
  private lent = false;
  private xtxFinite = true;

  constructor(p: number, q: number, opts: StatsOptions = {}) {
    assertInteger('p', p, 1);
    assertInteger('q', q, 0);
    if (opts.yty !== undefined) assertBoolean('yty', opts.yty);
    if (opts.precision !== undefined) assertOneOf('precision', opts.precision, STATS_PRECISIONS);
    this.p = p;
    this.q = q;
    this.precision = opts.precision ?? 'float64';
    this.engine = opts.engine ?? Engine.get();
    this.shiftX = new Float64Array(p);
    this.shiftY = new Float64Array(q);
    this.sumX = new Float64Array(p);
    this.sumY = new Float64Array(q);
    this.sqY = new Float64Array(q);
    const need = SufficientStats.matrixLength(p, q, opts.yty);
    if (opts.memory !== undefined && !(opts.memory instanceof Float64Array && opts.memory.length >= need)) {
      fail(TypeError, 'memory', `a Float64Array of at least ${need} values (p^2 + pq${opts.yty ? ' + q^2' : ''})`, opts.memory);
    }
    const m = opts.memory?.subarray(0, need).fill(0) ?? (allocate('float64', need) as Float64Array);
    this.xtx = m.subarray(0, p * p);
    this.xty = m.subarray(p * p, p * p + p * q);
    this.yty = opts.yty ? m.subarray(p * p + p * q, need) : null;
  }

  /** Values of the matrices of statistics of p and q columns (StatsOptions.memory). */
  static matrixLength(p: number, q: number, yty = false): number {
    return p * p + p * q + (yty ? q * q : 0);
  }

  /** A workspace for updates of up to `rows` rows (UpdateOptions.workspace). */
  static workspace(p: number, q: number, rows: number): Float64Array {
    return allocate('float64', SufficientStats.workspaceLength(p, q, rows)) as Float64Array;
  }

  /** The length of that workspace: one as long or longer serves those updates. */
  static workspaceLength(p: number, q: number, rows: number): number {
    return binding().statsWorkspace(p, q, rows);
  }

  /** Rows seen so far. */
  get count(): number {
    return this.n[0];
  }

  /**
   * Adds a chunk of paired rows (or the chunk's `opts.rows`) on the thread pool. Chunks may be
   * fed concurrently only if awaited in turn. A NaN or infinity in the chunk is a RangeError
   * naming its row (the statistics then hold the bad chunk: discard them).
   */
  async update(X: Matrix, Y: Matrix | null = null, opts: UpdateOptions = {}): Promise<this> {
    this.check(X, Y, opts);
    await binding().statsUpdate(...this.args(X, Y, opts), true);
    return this.checkFinite(X, Y, opts);
  }

  updateSync(X: Matrix, Y: Matrix | null = null, opts: UpdateOptions = {}): this {
    this.check(X, Y, opts);
    binding().statsUpdate(...this.args(X, Y, opts), false);
    return this.checkFinite(X, Y, opts);
  }

  private check(X: Matrix, Y: Matrix | null, opts: UpdateOptions): void {
    this.own();
    assertMatrix('X', X, { cols: this.p });
    if (this.q > 0) {
      assertMatrix('Y', Y, { rows: X.rows, cols: this.q, dtype: X.dtype });
    } else if (Y !== null) {
      throw new TypeError(`Y: expected null for statistics with q = 0, received a matrix`);
    }
    if (opts.rows !== undefined && !(opts.rows instanceof Int32Array)) fail(TypeError, 'rows', 'an Int32Array of row numbers', opts.rows);
    if (opts.rowOffset !== undefined) assertInteger('rowOffset', opts.rowOffset, 0);
    if (opts.workspace !== undefined && !(opts.workspace instanceof Float64Array)) fail(TypeError, 'workspace', 'a Float64Array (SufficientStats.workspace)', opts.workspace);
    const taken = opts.rows?.length ?? X.rows;
    if (taken === 0) return;
    this.inputDType = this.inputDType === 'float32' || X.dtype === 'float32' ? 'float32' : 'float64';
    if (this.count === 0) {
      const first = (opts.rows ?? Int32Array.from({ length: Math.min(taken, SHIFT_ROWS) }, (_, i) => i)).subarray(0, SHIFT_ROWS);
      columnMeans(X, first, this.shiftX);
      if (Y) columnMeans(Y, first, this.shiftY);
    }
  }

  private args(X: Matrix, Y: Matrix | null, opts: UpdateOptions) {
    const q = this.q > 0;
    return [
      this.engine.name, X.data, Y?.data ?? null, opts.rows ?? null, X.rows, this.p, this.q, this.n, this.sumX,
      q ? this.sumY : null, q ? this.sqY : null, this.xtx, q ? this.xty : null, this.yty,
      this.shiftX, q ? this.shiftY : null, opts.workspace ?? null, this.precision === 'float64' || X.dtype === 'float64',
    ] as const;
  }

  // The column sums see every value, so a NaN or infinity anywhere shows in them: only then
  // are the rows scanned, to name the first bad one.
  private checkFinite(X: Matrix, Y: Matrix | null, opts: UpdateOptions): this {
    const [nx, ny] = opts.names ?? ['X', 'Y'];
    if (!allFinite(this.sumX)) assertFinite(nx, X, opts);
    if (Y && !allFinite(this.sumY)) assertFinite(ny, Y, opts);
    return this;
  }

  /** Adds another shard's statistics into these (whatever its shift). */
  merge(other: SufficientStats): this {
    return this.combine(other, 1, 'other');
  }

  /** Removes a part (e.g. a validation fold) previously merged or fed into these. */
  subtract(part: SufficientStats): this {
    return this.combine(part, -1, 'part');
  }

  /** New statistics holding the sum of `parts` (e.g. a cross-fit's folds: their total), in `memory` when given (StatsOptions.memory). */
  static sum(parts: readonly SufficientStats[], opts: { memory?: Float64Array } = {}): SufficientStats {
    if (!Array.isArray(parts) || parts.length < 1) fail(TypeError, 'parts', 'a non-empty array of SufficientStats', parts);
    return parts.slice(1).reduce((t, s) => t.merge(s), parts[0].clone(opts));
  }

  clone(opts: { memory?: Float64Array } = {}): SufficientStats {
    return this.emptyLike(opts.memory).merge(this);
  }

  /** Empty statistics of the same shape and settings, in `memory` when given. */
  emptyLike(memory?: Float64Array): SufficientStats {
    return new SufficientStats(this.p, this.q, { yty: this.yty !== null, precision: this.precision, engine: this.engine, memory });
  }

  /**
   * total minus part (rows of total, e.g. a cross-fit's fold), as statistics about their own means:
   * one pass per matrix, written into `into` when given (a previous difference of the same shape,
   * reused fold after fold), where subtract, re-centre and merge back would take three plus a copy.
   * `lend`: a solve may then take its centred X^T X as scratch instead of a copy (lendCentred);
   * its methods re-form it from total and part when next needed, so those must not change
   * meanwhile, and its xtx field is not to be read directly.
   */
  static difference(total: SufficientStats, part: SufficientStats, into?: SufficientStats, opts: { lend?: boolean } = {}): SufficientStats {
    if (!(total instanceof SufficientStats)) throw new TypeError('total: expected SufficientStats');
    total.compatible(part, 'part');
    total.ready();
    part.ready();
    const n = total.count - part.count;
    if (!(n > 0)) throw new RangeError(`part: expected fewer rows than the total's ${total.count}, received ${part.count}`);
    if (into === total || into === part) throw new RangeError('into: expected statistics other than total and part (it is overwritten)');
    const out = into ?? total.emptyLike();
    total.compatible(out, 'into');
    const nT = total.count, nF = part.count;
    // The difference's means, from the sums about total's shift; then each side about them.
    const centre = (sT: Float64Array, sF: Float64Array, hT: Float64Array, hF: Float64Array) =>
      hT.map((h, i) => h + (sT[i] - sF[i] - nF * (hF[i] - h)) / n);
    const cx = centre(total.sumX, part.sumX, total.shiftX, part.shiftX);
    const cy = centre(total.sumY, part.sumY, total.shiftY, part.shiftY);
    const dxT = total.shiftX.map((h, i) => h - cx[i]), dxF = part.shiftX.map((h, i) => h - cx[i]);
    const dyT = total.shiftY.map((h, j) => h - cy[j]), dyF = part.shiftY.map((h, j) => h - cy[j]);
    // Each side's moments about the new centre (the shift-change identity of about()), total minus part.
    const terms = (sa: 'sumX' | 'sumY', da: [Float64Array, Float64Array], sb: 'sumX' | 'sumY', db: [Float64Array, Float64Array]) => {
      const t = moved(1, total[sa], da[0], total[sb], db[0], nT), f = moved(-1, part[sa], da[1], part[sb], db[1], nF);
      return { u: [...t.u, ...f.u], v: [...t.v, ...f.v] };
    };
    const dx: [Float64Array, Float64Array] = [dxT, dxF], dy: [Float64Array, Float64Array] = [dyT, dyF];
    out.xtxFinite = combineInto(out.xtx, total.xtx, part.xtx, terms('sumX', dx, 'sumX', dx));
    if (out.q > 0) combineInto(out.xty, total.xty, part.xty, terms('sumX', dx, 'sumY', dy));
    if (out.yty) combineInto(out.yty, total.yty!, part.yty!, terms('sumY', dy, 'sumY', dy));
    const sq = (st: SufficientStats, d: Float64Array, j: number) => st.sqY[j] + 2 * d[j] * st.sumY[j] + st.count * d[j] * d[j];
    for (let j = 0; j < out.q; j++) out.sqY[j] = sq(total, dyT, j) - sq(part, dyF, j);
    out.shiftX.set(cx);
    out.shiftY.set(cy);
    out.sumX.fill(0);
    out.sumY.fill(0);
    out.n[0] = n;
    out.inputDType = total.inputDType === 'float32' || part.inputDType === 'float32' ? 'float32' : (total.inputDType ?? part.inputDType);
    out.recipe = opts.lend ? { total, part } : undefined;
    out.lent = false;
    return out;
  }

  /**
   * The centred X^T X of a lending difference, as a view of its own buffer, for a solve to factor
   * in place (a p x p copy per cross-fit fold saved), and whether it is all finite (checked as it
   * was formed); undefined for other statistics. Only X^T X: a solve's answer is formed in its
   * right-hand side, which must not alias statistics that are re-formed later. Its moments are
   * re-formed when next read through its methods.
   */
  lendCentred(): { xx: Matrix<'float64'>; finite: boolean } | undefined {
    if (!this.recipe) return undefined;
    this.ready();
    this.lent = true;
    return { xx: new Matrix<'float64'>(this.xtx, this.p, this.p), finite: this.xtxFinite };
  }

  /** Re-forms moments lent to a solve before they are read. */
  private ready(): void {
    if (this.lent) SufficientStats.difference(this.recipe!.total, this.recipe!.part, this, { lend: true });
  }

  /** Before the moments change: from then on they are no longer total minus part. */
  private own(): void {
    this.ready();
    this.recipe = undefined;
  }

  private compatible(other: SufficientStats, name: string): void {
    if (!(other instanceof SufficientStats)) throw new TypeError(`${name}: expected SufficientStats`);
    if (other.p !== this.p || other.q !== this.q) {
      throw new RangeError(`${name}: expected statistics of p=${this.p}, q=${this.q}, received p=${other.p}, q=${other.q}`);
    }
    if ((this.yty === null) !== (other.yty === null)) {
      throw new RangeError(`${name}: expected ${this.yty ? 'with' : 'without'} Y^T Y like these statistics`);
    }
  }

  private combine(other: SufficientStats, sign: 1 | -1, name: string): this {
    this.compatible(other, name);
    this.own();
    other.ready();
    if (other.inputDType === 'float32') this.inputDType = 'float32';
    else this.inputDType ??= other.inputDType;
    if (this.count === 0 && sign === 1) {
      this.shiftX.set(other.shiftX);
      this.shiftY.set(other.shiftY);
    }
    // The other's moments re-expressed about this shift and added in place (no O(p^2)
    // temporaries): exact in real arithmetic, so shards merge in any order to the same centred
    // statistics, to rounding.
    const n = other.count;
    const dx = other.shiftX.map((v, i) => v - this.shiftX[i]);
    const dy = other.shiftY.map((v, j) => v - this.shiftY[j]);
    this.sqY.set(this.sqY.map((v, j) => v + sign * (other.sqY[j] + 2 * dy[j] * other.sumY[j] + n * dy[j] * dy[j])));
    addShifted(this.xtx, sign, other.xtx, other.sumX, dx, other.sumX, dx, n);
    addShifted(this.xty, sign, other.xty, other.sumX, dx, other.sumY, dy, n);
    if (this.yty && other.yty) addShifted(this.yty, sign, other.yty, other.sumY, dy, other.sumY, dy, n);
    for (let i = 0; i < this.p; i++) this.sumX[i] += sign * (other.sumX[i] + n * dx[i]);
    for (let j = 0; j < this.q; j++) this.sumY[j] += sign * (other.sumY[j] + n * dy[j]);
    this.n[0] += sign * n;
    return this;
  }

  meanX(): Float64Array {
    return this.shiftX.map((s, i) => s + this.sumX[i] / this.count);
  }

  meanY(): Float64Array {
    return this.shiftY.map((s, j) => s + this.sumY[j] / this.count);
  }

  /** Moments about the column means: the centred cross-products. */
  centred(): Moments {
    return this.about(this.meanX(), this.meanY());
  }

  /**
   * Moments about any centres cx (p), cy (q): zeros give the uncentred X^T X, X^T Y; a training
   * set's means give a held-out fold's residual terms. With d = x - shift and delta = shift - c:
   * sum (d + delta)(d + delta)^T = sum d d^T + delta (sum d)^T + (sum d) delta^T + n delta delta^T.
   */
  about(cx: Float64Array, cy: Float64Array): Moments {
    this.ready();
    const n = this.count;
    const dx = this.shiftX.map((s, i) => s - cx[i]);
    const dy = this.shiftY.map((s, j) => s - cy[j]);
    return {
      n,
      sumX: this.sumX.map((s, i) => s + n * dx[i]),
      sumY: this.sumY.map((s, j) => s + n * dy[j]),
      sqY: this.sqYAbout(cy),
      xx: shifted(this.xtx, this.sumX, dx, this.sumX, dx, n),
      xy: this.xyAbout(cx, cy),
      yy: this.yty && shifted(this.yty, this.sumY, dy, this.sumY, dy, n),
    };
  }

  /** The `xy` of about(cx, cy), without the p x p part. */
  xyAbout(cx: Float64Array, cy: Float64Array): Matrix<'float64'> {
    this.ready();
    const dx = this.shiftX.map((s, i) => s - cx[i]);
    const dy = this.shiftY.map((s, j) => s - cy[j]);
    return shifted(this.xty, this.sumX, dx, this.sumY, dy, this.count);
  }

  /**
   * Per target column, the sum over these rows of (x M + b - y)^2: a map scored on statistics
   * alone (a cross-fit's held-out fold), on `engine` (default these statistics'), off the event
   * loop: one pass of half a product with the stored p x p matrix (it is symmetric) and one over
   * p x q, no re-centred copies (native/ops/stats.cc statsResidualSquares gives the identity).
   */
  async residualSquares(M: Matrix<'float64'>, bias: Float64Array, engine: Engine = this.engine): Promise<Float64Array> {
    assertMatrix('M', M, { rows: this.p, cols: this.q, dtype: 'float64' });
    if (!(bias instanceof Float64Array) || bias.length !== this.q) fail(TypeError, 'bias', `a Float64Array of length ${this.q}`, bias);
    this.ready();
    const out = new Float64Array(this.q);
    if (this.q === 0) return out;
    await engine.run((backend, async) => binding().statsResidual(
      backend, this.p, this.q, this.n, this.sumX, this.sumY, this.sqY, this.xtx, this.xty, this.shiftX, this.shiftY, M.data, bias, out, async,
    ));
    return out;
  }

  /** Column sums of squares of Y about cy: the `sqY` of about(), without the O(p^2) parts. */
  sqYAbout(cy: Float64Array): Float64Array {
    const n = this.count;
    return this.sqY.map((s, j) => {
      const d = this.shiftY[j] - cy[j];
      return s + 2 * d * this.sumY[j] + n * d * d;
    });
  }
}

// The terms that re-express moments with sums sa, sb of n rows about a centre moved by da, db
// (the shift-change identity of `about`): sign (da sb^T + (sa + n da) db^T), as rank-one pairs.
function moved(sign: number, sa: Float64Array, da: Float64Array, sb: Float64Array, db: Float64Array, n: number): { u: Float64Array[]; v: Float64Array[] } {
  return { u: [da.map((v) => sign * v), sa.map((v, i) => sign * (v + n * da[i]))], v: [sb, db] };
}

// out = [out +] sign (m + the moved terms): one native pass.
function addShifted(out: Float64Array, sign: number, m: Float64Array, sa: Float64Array, da: Float64Array, sb: Float64Array, db: Float64Array, n: number, accumulate = true): void {
  const t = moved(sign, sa, da, sb, db, n);
  binding().statsCombine(out, accumulate, sign, m, 0, null, stackRows(t.u), stackRows(t.v), 2);
}

function shifted(m: Float64Array, sa: Float64Array, da: Float64Array, sb: Float64Array, db: Float64Array, n: number): Matrix<'float64'> {
  const out = allocate('float64', m.length) as Float64Array;
  addShifted(out, 1, m, sa, da, sb, db, n, false);
  return new Matrix<'float64'>(out, sa.length, sb.length);
}

// out = A - B + the terms (difference's one pass); whether out is all finite.
function combineInto(out: Float64Array, A: Float64Array, B: Float64Array, t: { u: Float64Array[]; v: Float64Array[] }): boolean {
  return binding().statsCombine(out, false, 1, A, -1, B, stackRows(t.u), stackRows(t.v), t.u.length);
}

function stackRows(rows: Float64Array[]): Float64Array {
  const out = new Float64Array(rows.reduce((a, r) => a + r.length, 0));
  let o = 0;
  for (const r of rows) {
    out.set(r, o);
    o += r.length;
  }
  return out;
}

// Means of the given rows, summed in their order.
function columnMeans(M: Matrix, rows: Int32Array, out: Float64Array): void {
  out.fill(0);
  const c = M.cols;
  for (const i of rows) for (let j = 0; j < c; j++) out[j] += M.data[i * c + j];
  for (let j = 0; j < c; j++) out[j] /= rows.length;
}
