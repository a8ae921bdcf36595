// Matrix: a row-major view over a Float32Array or Float64Array. The typed array IS the storage:
// native calls read and write it in place, so no copy happens at the JS/C++ boundary.
import { binding } from '../native/binding';
import { assertDType, assertInteger, fail } from './validate';

export type DType = 'float32' | 'float64';
export type FloatArray = Float32Array | Float64Array;
export type ArrayFor<D extends DType> = D extends 'float32' ? Float32Array : Float64Array;

export function dtypeOf(data: FloatArray): DType {
  return data instanceof Float32Array ? 'float32' : 'float64';
}

// Arrays from this size up ask for transparent huge pages before their first touch: on virtual
// machines a fresh page's fault is slow (a new 32 MiB p x p matrix took ~95 ms to fill, ~12 ms
// advised; native/napi/memory.cc). Advice only: without the addon the array is still returned.
const HUGE_ADVICE_BYTES = 4 << 20;
let advise: ((a: FloatArray) => boolean) | null | undefined;

/** A zeroed array of `length` elements; large ones are backed by huge pages where the system allows. */
export function allocate(dtype: DType, length: number): FloatArray {
  const out = dtype === 'float32' ? new Float32Array(length) : new Float64Array(length);
  if (out.byteLength >= HUGE_ADVICE_BYTES) {
    if (advise === undefined) {
      try {
        advise = binding().adviseHugePages;
      } catch {
        advise = null; // no addon: nothing to advise with, and every engine call says why
      }
    }
    advise?.(out);
  }
  return out;
}

export class Matrix<D extends DType = DType> {
  readonly rows: number;
  readonly cols: number;
  readonly data: ArrayFor<D>;

  /** Wraps `data` (not copied) as a rows x cols row-major matrix. */
  constructor(data: ArrayFor<D>, rows: number, cols: number) {
    if (!(data instanceof Float32Array) && !(data instanceof Float64Array)) {
      fail(TypeError, 'data', 'a Float32Array or Float64Array', data);
    }
    assertInteger('rows', rows, 0);
    assertInteger('cols', cols, 0);
    if (data.length !== rows * cols) {
      throw new RangeError(
        `data: expected length rows*cols = ${rows}*${cols} = ${rows * cols}, received length ${data.length}`,
      );
    }
    this.data = data;
    this.rows = rows;
    this.cols = cols;
  }

  get dtype(): D {
    return dtypeOf(this.data) as D;
  }

  get shape(): [number, number] {
    return [this.rows, this.cols];
  }

  static zeros<D extends DType = 'float32'>(rows: number, cols: number, dtype?: D): Matrix<D> {
    const dt = (dtype ?? 'float32') as D;
    assertDType('dtype', dt);
    assertInteger('rows', rows, 0);
    assertInteger('cols', cols, 0);
    return new Matrix<D>(allocate(dt, rows * cols) as ArrayFor<D>, rows, cols);
  }

  /** Builds a matrix from nested arrays (copies). */
  static from<D extends DType = 'float32'>(values: ArrayLike<ArrayLike<number>>, dtype?: D): Matrix<D> {
    const rows = values.length;
    const cols = rows > 0 ? values[0].length : 0;
    const m = Matrix.zeros<D>(rows, cols, dtype);
    for (let i = 0; i < rows; i++) {
      if (values[i].length !== cols) {
        throw new RangeError(`values[${i}]: expected ${cols} columns like values[0], received ${values[i].length}`);
      }
      m.data.set(values[i], i * cols);
    }
    return m;
  }

  /** The rows of `parts` (same columns), one under another, in the first part's dtype (copies). */
  static stack<D extends DType>(parts: readonly Matrix<D>[]): Matrix<D> {
    if (parts.length === 0) throw new RangeError('parts: expected at least one matrix, received none');
    const cols = parts[0].cols;
    parts.forEach((m, i) => {
      if (m.cols !== cols) throw new RangeError(`parts[${i}]: expected ${cols} columns like parts[0], received ${m.cols}`);
    });
    const out = Matrix.zeros<D>(parts.reduce((s, m) => s + m.rows, 0), cols, parts[0].dtype);
    let at = 0;
    for (const m of parts) {
      out.data.set(m.data, at);
      at += m.data.length;
    }
    return out;
  }

  get(i: number, j: number): number {
    return this.data[i * this.cols + j];
  }

  set(i: number, j: number, v: number): void {
    this.data[i * this.cols + j] = v;
  }

  /** A view of rows [start, end) sharing storage. */
  rowSlice(start: number, end: number): Matrix<D> {
    assertInteger('start', start, 0, this.rows);
    assertInteger('end', end, start, this.rows);
    const sub = this.data.subarray(start * this.cols, end * this.cols) as ArrayFor<D>;
    return new Matrix<D>(sub, end - start, this.cols);
  }

  /** One row as a typed-array view (no copy). */
  row(i: number): ArrayFor<D> {
    assertInteger('i', i, 0, this.rows - 1);
    return this.data.subarray(i * this.cols, (i + 1) * this.cols) as ArrayFor<D>;
  }

  /** A new matrix of the given rows, in the given order (copies). */
  takeRows(rows: ArrayLike<number>): Matrix<D> {
    const out = Matrix.zeros<D>(rows.length, this.cols, this.dtype);
    for (let k = 0; k < rows.length; k++) {
      assertInteger(`rows[${k}]`, rows[k], 0, this.rows - 1);
      out.data.set(this.data.subarray(rows[k] * this.cols, (rows[k] + 1) * this.cols), k * this.cols);
    }
    return out;
  }

  clone(): Matrix<D> {
    const out = allocate(this.dtype, this.data.length) as ArrayFor<D>;
    out.set(this.data);
    return new Matrix<D>(out, this.rows, this.cols);
  }

  astype<E extends DType>(dtype: E): Matrix<E> {
    assertDType('dtype', dtype);
    const out = allocate(dtype, this.data.length);
    out.set(this.data);
    return new Matrix<E>(out as ArrayFor<E>, this.rows, this.cols);
  }

  /** The cols x rows transpose, in cache-sized tiles (large Fortran-order .npy files go through it). */
  transpose(): Matrix<D> {
    const { rows, cols } = this;
    const t = Matrix.zeros<D>(cols, rows, this.dtype);
    const tile = 32;
    for (let i0 = 0; i0 < rows; i0 += tile) {
      for (let j0 = 0; j0 < cols; j0 += tile) {
        const iEnd = Math.min(i0 + tile, rows), jEnd = Math.min(j0 + tile, cols);
        for (let i = i0; i < iEnd; i++) for (let j = j0; j < jEnd; j++) t.data[j * rows + i] = this.data[i * cols + j];
      }
    }
    return t;
  }

  toArray(): number[][] {
    const out: number[][] = [];
    for (let i = 0; i < this.rows; i++) out.push(Array.from(this.row(i)));
    return out;
  }
}
