// Plumbing shared by the .npy and safetensors codecs: the corrupt-file error, exact positional reads
// straight into the buffer that will back a typed array (so a payload is copied once), and the
// mapping between the library's matrices and flat tensors.
import * as fs from 'node:fs';
import * as os from 'node:os';
import { allocate, type DType, type FloatArray } from '../core/matrix';
import { fail, isMatrix } from '../core/validate';

/** A file whose content does not match its format. The message starts with the file's path. */
export class FileFormatError extends Error {
  readonly path: string;

  constructor(path: string, message: string) {
    super(`${path}: ${message}`);
    this.name = 'FileFormatError';
    this.path = path;
  }
}

// Node's fs bindings take int32 lengths, so multi-GB transfers are split into pieces of this size.
export const MAX_IO_BYTES = 1 << 30;

export const ITEM_SIZE: Record<DType, number> = { float32: 4, float64: 8 };

const LITTLE_ENDIAN_HOST = os.endianness() === 'LE';

/** Both formats are little-endian and typed arrays use host byte order: viewing the bytes in place needs an LE host. */
export function assertLittleEndianHost(path: string): void {
  if (!LITTLE_ENDIAN_HOST) {
    throw new Error(`${path}: expected a little-endian host to view float data in place, this host is big-endian`);
  }
}

export function assertPath(name: string, value: unknown): asserts value is string {
  if (typeof value !== 'string' || value === '') fail(TypeError, name, 'a non-empty path string', value);
}

/** Opens a file for reading; a folder, or a file that cannot be opened, is an error naming the path. */
export function openForReading(path: string): number {
  let fd: number;
  try {
    fd = fs.openSync(path, 'r');
  } catch (err) {
    throw new Error(`${path}: cannot open the file: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  if (fs.fstatSync(fd).isDirectory()) {
    fs.closeSync(fd);
    throw new FileFormatError(path, 'expected a file, found a folder');
  }
  return fd;
}

export function bytesOf(view: ArrayBufferView): Uint8Array {
  return new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
}

/** Fills `target` from byte `position` of `fd`; hitting end of file is a FileFormatError giving both byte counts. */
export function readExact(fd: number, target: Uint8Array, position: number, path: string, what: string): void {
  let done = 0;
  while (done < target.byteLength) {
    const n = fs.readSync(fd, target, done, Math.min(target.byteLength - done, MAX_IO_BYTES), position + done);
    if (n === 0) {
      throw new FileFormatError(
        path,
        `truncated ${what}: expected ${target.byteLength} bytes at offset ${position}, found ${done}`,
      );
    }
    done += n;
  }
}

/** Reads `count` elements of `dtype` at `position` into a freshly allocated typed array. */
export function readFloats(fd: number, dtype: DType, count: number, position: number, path: string, what: string): FloatArray {
  const out = allocate(dtype, count);
  readExact(fd, bytesOf(out), position, path, what);
  return out;
}

export interface FlatTensor {
  data: FloatArray;
  shape: number[];
}

/** A Matrix is stored as a 2-D tensor (rows, cols), a bare typed array as a 1-D tensor (length,). */
export function toTensor(name: string, value: unknown): FlatTensor {
  if (isMatrix(value)) return { data: value.data, shape: [value.rows, value.cols] };
  if (value instanceof Float32Array || value instanceof Float64Array) return { data: value, shape: [value.length] };
  fail(TypeError, name, 'a Matrix, Float32Array or Float64Array', value);
}

/** The matrix shape a tensor is read as: 1-D of length n -> 1 x n, 2-D as is, other ranks undefined. */
export function matrixShape(shape: readonly number[]): [number, number] | undefined {
  if (shape.length === 1) return [1, shape[0]];
  if (shape.length === 2) return [shape[0], shape[1]];
  return undefined;
}

export function product(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}
