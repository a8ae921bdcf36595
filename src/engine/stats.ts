// Streaming sufficient statistics of paired embeddings (X: N x p, Y: N x q): n, column sums,
// X^T X, X^T Y and optionally Y^T Y, all float64. Feed row chunks in any order; statistics of
// shards merge by addition, so a set larger than memory, or shards processed on different
// machines, give the same result as one pass (to rounding).
import { Matrix } from '../core/matrix';
import { assertBoolean, assertInteger, assertMatrix } from '../core/validate';
import { binding } from '../native/binding';
import { Engine } from './engine';

export interface StatsOptions {
  /** Also accumulate Y^T Y (needed for residuals and CKA from statistics alone). */
  yty?: boolean;
  /**
   * float32 input: form products in float64 too (half the speed). By default products are
   * formed in float32 within blocks of 16384 rows and summed across blocks in float64.
   */
  exactF64?: boolean;
  engine?: Engine;
}

export class SufficientStats {
  readonly p: number;
  readonly q: number;
  readonly exactF64: boolean;
  /** The least precise dtype fed so far (decides the rounding level of the products). */
  inputDType: 'float32' | 'float64' | undefined;
  readonly n = new Float64Array(1);
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

  constructor(p: number, q: number, opts: StatsOptions = {}) {
    assertInteger('p', p, 1);
    assertInteger('q', q, 0);
    if (opts.yty !== undefined) assertBoolean('yty', opts.yty);
    if (opts.exactF64 !== undefined) assertBoolean('exactF64', opts.exactF64);
    this.p = p;
    this.q = q;
    this.exactF64 = opts.exactF64 ?? false;
    this.engine = opts.engine ?? Engine.get();
    this.sumX = new Float64Array(p);
    this.sumY = new Float64Array(q);
    this.sqY = new Float64Array(q);
    this.xtx = new Float64Array(p * p);
    this.xty = new Float64Array(p * q);
    this.yty = opts.yty ? new Float64Array(q * q) : null;
  }

  /** Rows seen so far. */
  get count(): number {
    return this.n[0];
  }

  /** Adds a chunk of paired rows on the thread pool. Chunks may be fed concurrently only if awaited in turn. */
  async update(X: Matrix, Y: Matrix | null = null): Promise<this> {
    await this.call(X, Y, true);
    return this;
  }

  updateSync(X: Matrix, Y: Matrix | null = null): this {
    this.call(X, Y, false);
    return this;
  }

  private call(X: Matrix, Y: Matrix | null, async: boolean): number | Promise<number> {
    assertMatrix('X', X, { cols: this.p });
    if (this.q > 0) {
      assertMatrix('Y', Y, { rows: X.rows, cols: this.q, dtype: X.dtype });
    } else if (Y !== null) {
      throw new TypeError(`Y: expected null for statistics with q = 0, received a matrix`);
    }
    if (X.rows > 0) this.inputDType = this.inputDType === 'float32' || X.dtype === 'float32' ? 'float32' : 'float64';
    return binding().statsUpdate(
      this.engine.name, X.data, Y?.data ?? null, X.rows, this.p, this.q, this.n, this.sumX,
      this.q > 0 ? this.sumY : null, this.q > 0 ? this.sqY : null, this.xtx, this.q > 0 ? this.xty : null, this.yty,
      this.exactF64, async,
    );
  }

  /** Adds another shard's statistics into these. */
  merge(other: SufficientStats): this {
    return this.combine(other, 1, 'other');
  }

  /** Removes a part (e.g. a validation fold) previously merged or fed into these. */
  subtract(part: SufficientStats): this {
    return this.combine(part, -1, 'part');
  }

  clone(): SufficientStats {
    const c = new SufficientStats(this.p, this.q, { yty: this.yty !== null, exactF64: this.exactF64, engine: this.engine });
    return c.merge(this);
  }

  private combine(other: SufficientStats, sign: 1 | -1, name: string): this {
    if (!(other instanceof SufficientStats)) throw new TypeError(`${name}: expected SufficientStats`);
    if (other.p !== this.p || other.q !== this.q) {
      throw new RangeError(`${name}: expected statistics of p=${this.p}, q=${this.q}, received p=${other.p}, q=${other.q}`);
    }
    if ((this.yty === null) !== (other.yty === null)) {
      throw new RangeError(`${name}: expected ${this.yty ? 'with' : 'without'} Y^T Y like these statistics`);
    }
    if (other.inputDType === 'float32') this.inputDType = 'float32';
    else this.inputDType ??= other.inputDType;
    const add = (a: Float64Array, b: Float64Array) => {
      for (let i = 0; i < a.length; i++) a[i] += sign * b[i];
    };
    add(this.n, other.n);
    add(this.sumX, other.sumX);
    add(this.sumY, other.sumY);
    add(this.sqY, other.sqY);
    add(this.xtx, other.xtx);
    add(this.xty, other.xty);
    if (this.yty && other.yty) add(this.yty, other.yty);
    return this;
  }

  meanX(): Float64Array {
    return this.sumX.map((s) => s / this.count);
  }

  meanY(): Float64Array {
    return this.sumY.map((s) => s / this.count);
  }

  /** Centred cross-products (X - 1 mean_X)^T (X - 1 mean_X), p x p float64. */
  centredXtX(): Matrix<'float64'> {
    return this.centred(this.xtx, this.sumX, this.sumX);
  }

  /** Centred cross-products (X - 1 mean_X)^T (Y - 1 mean_Y), p x q float64. */
  centredXtY(): Matrix<'float64'> {
    return this.centred(this.xty, this.sumX, this.sumY);
  }

  /** Centred (Y - 1 mean_Y)^T (Y - 1 mean_Y), q x q; needs the `yty` option. */
  centredYtY(): Matrix<'float64'> {
    if (!this.yty) throw new RangeError('yty: these statistics were created without { yty: true }');
    return this.centred(this.yty, this.sumY, this.sumY);
  }

  private centred(m: Float64Array, a: Float64Array, b: Float64Array): Matrix<'float64'> {
    const out = new Matrix<'float64'>(m.slice(), a.length, b.length);
    const n = this.count;
    if (n === 0) return out;
    for (let i = 0; i < a.length; i++) {
      const ai = a[i] / n;
      for (let j = 0; j < b.length; j++) out.data[i * b.length + j] -= ai * b[j];
    }
    return out;
  }
}
