// Input validation in one place (after sharp's lib/is.js): every message names the argument,
// what was expected and what was received.
import type { DType, FloatArray, Matrix } from './matrix';

type ErrorCtor = new (message: string) => Error;

export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (typeof value === 'number' || typeof value === 'boolean') return `${typeof value} ${value}`;
  if (typeof value === 'string') return `string ${JSON.stringify(value.length > 40 ? value.slice(0, 40) + '...' : value)}`;
  if (ArrayBuffer.isView(value)) {
    const v = value as unknown as { length?: number };
    return `${value.constructor.name}(${v.length ?? value.byteLength})`;
  }
  if (Array.isArray(value)) return `Array(${value.length})`;
  if (typeof value === 'object') {
    const m = value as Partial<Matrix>;
    if (typeof m.rows === 'number' && typeof m.cols === 'number' && m.data) {
      return `${m.rows}x${m.cols} ${(m.data as FloatArray).constructor.name} matrix`;
    }
    return value.constructor?.name ?? 'object';
  }
  return typeof value;
}

export function fail(ctor: ErrorCtor, name: string, expected: string, received: unknown): never {
  throw new ctor(`${name}: expected ${expected}, received ${describe(received)}`);
}

export function assertInteger(name: string, value: unknown, min = -Infinity, max = Infinity): asserts value is number {
  if (typeof value !== 'number' || !Number.isInteger(value)) fail(TypeError, name, 'an integer', value);
  if (value < min || value > max) {
    const range = max === Infinity ? `an integer >= ${min}` : `an integer in [${min}, ${max}]`;
    fail(RangeError, name, range, value);
  }
}

export function assertNumber(name: string, value: unknown, min = -Infinity, max = Infinity): asserts value is number {
  if (typeof value !== 'number' || !Number.isFinite(value)) fail(TypeError, name, 'a finite number', value);
  if (value < min || value > max) fail(RangeError, name, `a number in [${min}, ${max}]`, value);
}

export function assertBoolean(name: string, value: unknown): asserts value is boolean {
  if (typeof value !== 'boolean') fail(TypeError, name, 'a boolean', value);
}

export function assertDType(name: string, value: unknown): asserts value is DType {
  if (value !== 'float32' && value !== 'float64') fail(TypeError, name, "'float32' or 'float64'", value);
}

export function assertOneOf<T extends string>(name: string, value: unknown, allowed: readonly T[]): asserts value is T {
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    fail(TypeError, name, `one of ${allowed.map((a) => `'${a}'`).join(', ')}`, value);
  }
}

export function isMatrix(value: unknown): value is Matrix {
  if (typeof value !== 'object' || value === null) return false;
  const m = value as Matrix;
  return (
    (m.data instanceof Float32Array || m.data instanceof Float64Array) &&
    Number.isInteger(m.rows) &&
    Number.isInteger(m.cols) &&
    m.data.length === m.rows * m.cols
  );
}

export interface MatrixSpec {
  rows?: number;
  cols?: number;
  dtype?: DType;
  minRows?: number;
}

const dim = (n: number | undefined) => (n === undefined ? '?' : String(n));

/** Checks a matrix argument's type, shape and dtype; the message shows expected and received shapes. */
export function assertMatrix(name: string, value: unknown, spec: MatrixSpec = {}): asserts value is Matrix {
  if (!isMatrix(value)) fail(TypeError, name, 'a Matrix (Float32Array/Float64Array, rows, cols)', value);
  const expectedShape = `${dim(spec.rows)}x${dim(spec.cols)}${spec.dtype ? ' ' + spec.dtype : ''} matrix`;
  if (spec.dtype !== undefined && value.dtype !== spec.dtype) {
    throw new TypeError(`${name}: expected a ${expectedShape}, received ${describe(value)}`);
  }
  if ((spec.rows !== undefined && value.rows !== spec.rows) || (spec.cols !== undefined && value.cols !== spec.cols)) {
    throw new RangeError(`${name}: expected a ${expectedShape}, received ${describe(value)}`);
  }
  if (spec.minRows !== undefined && value.rows < spec.minRows) {
    throw new RangeError(`${name}: expected at least ${spec.minRows} row(s), received ${describe(value)}`);
  }
}

/**
 * Optional NaN/Inf check: names the first offending row, counted from `rowOffset` (the number
 * of m's first row in a larger set read in chunks).
 */
export function assertFinite(name: string, m: Matrix, opts: { rowOffset?: number } = {}): void {
  const d = m.data;
  for (let i = 0; i < d.length; i++) {
    if (!Number.isFinite(d[i])) {
      const row = Math.floor(i / m.cols) + (opts.rowOffset ?? 0);
      const col = i % m.cols;
      throw new RangeError(`${name}: expected finite values, received ${d[i]} at row ${row}, column ${col}`);
    }
  }
}

/** Whether every value is finite: one multiply-add per value (x * 0 is NaN exactly when x is not finite). */
export function allFinite(a: ArrayLike<number>): boolean {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * 0;
  return s === 0;
}
