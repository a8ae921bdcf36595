// NumPy .npy files: format versions 1.0, 2.0 and 3.0, dtypes '<f4' and '<f8', 1-D or 2-D, C or
// Fortran order (NumPy writes the latter for transposed arrays, e.g. np.save(f, X.T)).
// A 1-D array of length n is read as a 1 x n matrix; a bare typed array is written as a 1-D array.
// The data is read with positional reads straight into the buffer backing the returned matrix;
// Fortran order is transposed on read, except where both orders are the same bytes (a vector).
import * as fs from 'node:fs';
import { type DType, Matrix, allocate, dtypeOf } from '../core/matrix';
import { assertInteger } from '../core/validate';
import { writeFileAtomic } from './atomic';
import {
  FileFormatError,
  ITEM_SIZE,
  assertLittleEndianHost,
  assertPath,
  matrixShape,
  openForReading,
  product,
  readExact,
  readFloats,
  toTensor,
} from './binary';
import { type PyValue, parsePyLiteral } from './pyliteral';

const MAGIC = Uint8Array.of(0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59); // "\x93NUMPY"
const DESCR: Record<DType, string> = { float32: '<f4', float64: '<f8' };
// NumPy starts the data on a multiple of this (numpy.lib.format.ARRAY_ALIGN).
const ARRAY_ALIGN = 64;

/** Row-range access to a .npy file that need not fit in memory. */
export interface NpyReader {
  readonly path: string;
  readonly dtype: DType;
  /** The shape stored in the file: [n] or [rows, cols]. */
  readonly shape: readonly number[];
  /** The matrix shape the data reads as (a 1-D array is one row). */
  readonly rows: number;
  readonly cols: number;
  /** Reads rows [start, end) into a freshly allocated matrix. */
  readRows(start: number, end: number): Matrix;
  close(): void;
}

/** Opens a .npy file and validates its header and data length; the data is read on demand. */
export function openNpy(path: string): NpyReader {
  assertPath('path', path);
  assertLittleEndianHost(path);
  const fd = openForReading(path);
  let header: NpyHeader;
  try {
    header = readHeader(fd, fs.fstatSync(fd).size, path);
  } catch (err) {
    fs.closeSync(fd);
    throw err;
  }
  const { dtype, shape, rows, cols, dataOffset } = header;
  const columnMajor = header.fortranOrder && rows > 1 && cols > 1;
  let open = true;
  return {
    path,
    dtype,
    shape,
    rows,
    cols,
    readRows(start: number, end: number): Matrix {
      if (!open) throw new Error(`${path}: readRows: expected an open reader, received one already closed`);
      assertInteger('start', start, 0, rows);
      assertInteger('end', end, start, rows);
      const size = ITEM_SIZE[dtype];
      if (!columnMajor) {
        return new Matrix(readFloats(fd, dtype, (end - start) * cols, dataOffset + start * cols * size, path, 'data'), end - start, cols);
      }
      // Column j holds rows [0, rows) at dataOffset + j * rows; a full read is one contiguous block.
      const n = end - start;
      const columns = n === rows
        ? readFloats(fd, dtype, rows * cols, dataOffset, path, 'data')
        : allocate(dtype, n * cols);
      if (n !== rows) {
        const bytes = new Uint8Array(columns.buffer);
        for (let j = 0; j < cols; j++) {
          readExact(fd, bytes.subarray(j * n * size, (j + 1) * n * size), dataOffset + (j * rows + start) * size, path, 'data');
        }
      }
      return new Matrix(columns, cols, n).transpose();
    },
    close(): void {
      if (open) fs.closeSync(fd);
      open = false;
    },
  };
}

/** Reads a whole .npy file as a matrix (a 1-D array of length n becomes 1 x n). */
export function readNpy(path: string): Matrix {
  const reader = openNpy(path);
  try {
    return reader.readRows(0, reader.rows);
  } finally {
    reader.close();
  }
}

/** Writes a Matrix as a 2-D array, or a typed array as a 1-D array, atomically. */
export function writeNpy(path: string, array: Matrix | Float32Array | Float64Array): void {
  assertPath('path', path);
  const { data, shape } = toTensor('array', array);
  assertLittleEndianHost(path);
  writeFileAtomic(path, [npyHeader(dtypeOf(data), shape), data]);
}

/** Magic, version, header length and the header dict, space-padded and '\n'-terminated as NumPy does. */
function npyHeader(dtype: DType, shape: readonly number[]): Uint8Array {
  const dict = `{'descr': '${DESCR[dtype]}', 'fortran_order': False, 'shape': ${pyRepr(shape)}, }`;
  const alignedLength = (prefix: number) => Math.ceil((prefix + dict.length + 1) / ARRAY_ALIGN) * ARRAY_ALIGN;
  // Version 1.0 stores the header length in a u16; 2.0 only when that overflows.
  const v1 = alignedLength(10) - 10 <= 0xffff;
  const prefixLength = v1 ? 10 : 12;
  const total = alignedLength(prefixLength);
  const out = new Uint8Array(total).fill(0x20);
  out.set(MAGIC);
  out[6] = v1 ? 1 : 2;
  out[7] = 0;
  const view = new DataView(out.buffer);
  if (v1) view.setUint16(8, total - prefixLength, true);
  else view.setUint32(8, total - prefixLength, true);
  out.set(Buffer.from(dict, 'latin1'), prefixLength);
  out[total - 1] = 0x0a;
  return out;
}

interface NpyHeader {
  dtype: DType;
  shape: number[];
  rows: number;
  cols: number;
  fortranOrder: boolean;
  dataOffset: number;
}

function readHeader(fd: number, size: number, path: string): NpyHeader {
  const bad = (message: string) => new FileFormatError(path, message);
  const prefix = new Uint8Array(Math.min(size, 12));
  readExact(fd, prefix, 0, path, 'header');
  if (size < MAGIC.length || !MAGIC.every((b, i) => prefix[i] === b)) {
    throw bad(`not a .npy file: expected the magic string "\\x93NUMPY", found ${showBytes(prefix.subarray(0, 6))}`);
  }
  if (size < 10) throw bad(`truncated header: expected at least 10 bytes (magic, version, header length), found ${size}`);
  const [major, minor] = [prefix[6], prefix[7]];
  if (major < 1 || major > 3 || minor !== 0) {
    throw bad(`unsupported .npy format version: expected 1.0, 2.0 or 3.0, found ${major}.${minor}`);
  }
  // 1.0 has a u16 header length and a latin1 header; 2.0 a u32 length; 3.0 a u32 length and utf8.
  const prefixLength = major === 1 ? 10 : 12;
  if (size < prefixLength) {
    throw bad(`truncated header: expected at least ${prefixLength} bytes (magic, version, header length), found ${size}`);
  }
  const lengths = new DataView(prefix.buffer);
  const headerLength = major === 1 ? lengths.getUint16(8, true) : lengths.getUint32(8, true);
  const dataOffset = prefixLength + headerLength;
  if (dataOffset > size) {
    throw bad(`truncated header: expected ${headerLength} header bytes after offset ${prefixLength}, found ${size - prefixLength}`);
  }
  const raw = Buffer.alloc(headerLength);
  readExact(fd, raw, prefixLength, path, 'header');
  let text: string;
  try {
    text = major === 3 ? new TextDecoder('utf-8', { fatal: true }).decode(raw) : raw.toString('latin1');
  } catch {
    throw bad('invalid header: expected UTF-8 text (format 3.0), found invalid byte sequences');
  }
  const shown = JSON.stringify(text.length > 200 ? text.slice(0, 200) + '...' : text);
  let dict: PyValue;
  try {
    dict = parsePyLiteral(text);
  } catch (err) {
    throw bad(`invalid header dict ${shown}: ${(err as Error).message}`);
  }
  if (!(dict instanceof Map)) throw bad(`invalid header: expected a dict, found ${shown}`);
  const keys = [...dict.keys()].sort();
  if (keys.join() !== 'descr,fortran_order,shape') {
    throw bad(`invalid header: expected the keys 'descr', 'fortran_order', 'shape', found ${keys.map((k) => pyRepr(k)).join(', ') || 'none'}`);
  }

  const descr = dict.get('descr')!;
  const dtype = descr === DESCR.float32 ? 'float32' : descr === DESCR.float64 ? 'float64' : undefined;
  if (dtype === undefined) {
    const hint = descr === '>f4' || descr === '>f8' ? ` (big-endian; convert with array.astype('<${descr.slice(1)}'))` : '';
    throw bad(`unsupported dtype: expected '<f4' (float32) or '<f8' (float64), found ${pyRepr(descr)}${hint}`);
  }
  const fortranOrder = dict.get('fortran_order');
  if (typeof fortranOrder !== 'boolean') {
    throw bad(`invalid fortran_order: expected True or False, found ${pyRepr(fortranOrder!)}`);
  }
  const shape = dict.get('shape')!;
  if (!Array.isArray(shape) || !shape.every((d) => typeof d === 'number' && Number.isSafeInteger(d) && d >= 0)) {
    throw bad(`invalid shape: expected a tuple of non-negative integers, found ${pyRepr(shape)}`);
  }
  const dims = shape as number[];
  const matrix = matrixShape(dims);
  if (matrix === undefined) throw bad(`unsupported shape: expected a 1-D or 2-D array, found shape ${pyRepr(dims)}`);

  const expected = product(dims) * ITEM_SIZE[dtype];
  const found = size - dataOffset;
  if (!Number.isSafeInteger(expected) || found !== expected) {
    const what = found < expected ? 'truncated data' : 'trailing bytes after the data';
    throw bad(`${what}: expected ${expected} data bytes for shape ${pyRepr(dims)} ${pyRepr(descr)}, found ${found}`);
  }
  return { dtype, shape: dims, rows: matrix[0], cols: matrix[1], fortranOrder, dataOffset };
}

/** Python's repr(), sequences shown as tuples: used for header text and messages. */
function pyRepr(value: PyValue | readonly PyValue[]): string {
  if (typeof value === 'string') return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
  if (typeof value === 'boolean') return value ? 'True' : 'False';
  if (value === null) return 'None';
  if (Array.isArray(value)) return value.length === 1 ? `(${pyRepr(value[0])},)` : `(${value.map(pyRepr).join(', ')})`;
  if (value instanceof Map) return `{${[...value].map(([k, v]) => `${pyRepr(k)}: ${pyRepr(v)}`).join(', ')}}`;
  return String(value);
}

function showBytes(bytes: Uint8Array): string {
  if (bytes.length === 0) return 'an empty file';
  const text = Array.from(bytes, (b) => (b >= 0x20 && b < 0x7f && b !== 0x22 && b !== 0x5c ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, '0')}`));
  return `"${text.join('')}"`;
}
