// safetensors files: a u64 little-endian header length N, N bytes of JSON, then the data buffer.
// The header maps each tensor name to {dtype, shape, data_offsets: [begin, end]} (offsets relative
// to the data buffer) plus an optional "__metadata__" of string values. Only F32 and F64 are
// supported. The writer pads the header with spaces to a multiple of 8 bytes, as the format allows,
// so the data buffer starts 8-aligned in the file.
import * as fs from 'node:fs';
import { type DType, type FloatArray, Matrix, dtypeOf } from '../core/matrix';
import { fail } from '../core/validate';
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
  type FlatTensor,
} from './binary';

export interface Tensor {
  dtype: DType;
  shape: number[];
  data: FloatArray;
}

export interface SafetensorsFile {
  readonly path: string;
  /** Tensors in data-buffer order. */
  readonly tensors: Map<string, Tensor>;
  readonly metadata: Record<string, string>;
  /** A 1-D or 2-D tensor as a matrix sharing its data (a 1-D tensor of length n is 1 x n). */
  tensorAsMatrix(name: string): Matrix;
}

export type TensorInput = Matrix | Float32Array | Float64Array;

const METADATA_KEY = '__metadata__';
const CODE: Record<DType, string> = { float32: 'F32', float64: 'F64' };
const DTYPE_OF_CODE: Record<string, DType> = { F32: 'float32', F64: 'float64' };

/**
 * Writes tensors (Matrix -> 2-D, typed array -> 1-D) in the Map's or object's iteration order,
 * contiguously, atomically. Metadata values must be strings.
 */
export function writeSafetensors(
  path: string,
  tensors: Record<string, TensorInput> | ReadonlyMap<string, TensorInput>,
  metadata?: Record<string, string>,
): void {
  assertPath('path', path);
  if (tensors === null || typeof tensors !== 'object' || Array.isArray(tensors)) {
    fail(TypeError, 'tensors', 'a Map or object of name -> Matrix/Float32Array/Float64Array', tensors);
  }
  const entries: [string, FlatTensor][] = [];
  for (const [name, value] of tensors instanceof Map ? tensors : Object.entries(tensors)) {
    if (typeof name !== 'string') fail(TypeError, 'tensor name', 'a string', name);
    if (name === '' || name === METADATA_KEY) fail(RangeError, 'tensor name', `a non-empty name other than "${METADATA_KEY}"`, name);
    entries.push([name, toTensor(`tensors[${JSON.stringify(name)}]`, value)]);
  }
  const fields: string[] = [];
  if (metadata !== undefined) {
    if (metadata === null || typeof metadata !== 'object' || Array.isArray(metadata)) {
      fail(TypeError, 'metadata', 'an object of string values', metadata);
    }
    for (const [key, value] of Object.entries(metadata)) {
      if (typeof value !== 'string') fail(TypeError, `metadata[${JSON.stringify(key)}]`, 'a string', value);
    }
    fields.push(`${JSON.stringify(METADATA_KEY)}:${JSON.stringify(metadata)}`);
  }
  // Built by hand so the order is exactly the caller's and a name like "__proto__" stays a plain key.
  let offset = 0;
  for (const [name, { data, shape }] of entries) {
    const info = { dtype: CODE[dtypeOf(data)], shape, data_offsets: [offset, offset + data.byteLength] };
    fields.push(`${JSON.stringify(name)}:${JSON.stringify(info)}`);
    offset += data.byteLength;
  }
  const json = Buffer.from(`{${fields.join(',')}}`, 'utf8');
  const headerLength = Math.ceil(json.length / 8) * 8;
  const header = new Uint8Array(8 + headerLength).fill(0x20);
  new DataView(header.buffer).setBigUint64(0, BigInt(headerLength), true);
  header.set(json, 8);
  assertLittleEndianHost(path);
  writeFileAtomic(path, [header, ...entries.map(([, t]) => t.data)]);
}

/**
 * Reads and validates a safetensors file. With `names`, only those tensors' data are read (the
 * whole header is still validated).
 */
export function readSafetensors(path: string, options: { names?: readonly string[] } = {}): SafetensorsFile {
  assertPath('path', path);
  const names = options.names;
  if (names !== undefined && (!Array.isArray(names) || !names.every((n) => typeof n === 'string'))) {
    fail(TypeError, 'options.names', 'an array of tensor names', names);
  }
  assertLittleEndianHost(path);
  const fd = openForReading(path);
  try {
    const size = fs.fstatSync(fd).size;
    const { entries, metadata, dataStart } = readHeader(fd, size, path);
    const available = new Map(entries.map((e) => [e.name, e]));
    const tensors = new Map<string, Tensor>();
    const wanted = names ?? entries.map((e) => e.name);
    for (const name of wanted) {
      const entry = available.get(name);
      if (entry === undefined) throw new RangeError(missingTensor(path, name, entries.map((e) => e.name)));
      const { dtype, shape, begin } = entry;
      const data = readFloats(fd, dtype, product(shape), dataStart + begin, path, `data of tensor "${name}"`);
      tensors.set(name, { dtype, shape, data });
    }
    return {
      path,
      tensors,
      metadata,
      tensorAsMatrix(name: string): Matrix {
        const tensor = tensors.get(name);
        if (tensor === undefined) throw new RangeError(missingTensor(path, name, [...tensors.keys()]));
        const dims = matrixShape(tensor.shape);
        if (dims === undefined) {
          throw new RangeError(`${path}: tensor "${name}": expected a 1-D or 2-D tensor, found shape [${tensor.shape.join(', ')}]`);
        }
        return new Matrix(tensor.data, dims[0], dims[1]);
      },
    };
  } finally {
    fs.closeSync(fd);
  }
}

function missingTensor(path: string, name: string, available: string[]): string {
  const found = available.length > 0 ? `only ${available.map((n) => JSON.stringify(n)).join(', ')}` : 'no tensors';
  return `${path}: expected a tensor named ${JSON.stringify(name)}, found ${found}`;
}

interface Entry {
  name: string;
  dtype: DType;
  shape: number[];
  begin: number;
  end: number;
}

function readHeader(fd: number, size: number, path: string) {
  const bad = (message: string) => new FileFormatError(path, message);
  if (size < 8) throw bad(`truncated file: expected at least 8 bytes (the header length), found ${size}`);
  const prefix = new Uint8Array(8);
  readExact(fd, prefix, 0, path, 'header length');
  const declared = new DataView(prefix.buffer).getBigUint64(0, true);
  if (declared > BigInt(size - 8)) {
    throw bad(`header length ${declared} extends past the end of the file: expected at most ${size - 8} bytes`);
  }
  const headerLength = Number(declared);
  const raw = Buffer.alloc(headerLength);
  readExact(fd, raw, 8, path, 'header');
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(raw));
  } catch (err) {
    throw bad(`invalid header: expected UTF-8 JSON, found text that does not parse (${(err as Error).message})`);
  }
  if (!isPlainObject(header)) throw bad(`invalid header: expected a JSON object, found ${jsonKind(header)}`);

  let metadata: Record<string, string> = {};
  const entries: Entry[] = [];
  for (const [name, info] of Object.entries(header)) {
    if (name === METADATA_KEY) {
      if (!isPlainObject(info)) throw bad(`invalid ${METADATA_KEY}: expected an object of strings, found ${jsonKind(info)}`);
      for (const [key, value] of Object.entries(info)) {
        if (typeof value !== 'string') {
          throw bad(`invalid ${METADATA_KEY}[${JSON.stringify(key)}]: expected a string, found ${jsonKind(value)}`);
        }
      }
      metadata = info as Record<string, string>;
      continue;
    }
    entries.push(parseEntry(path, name, info));
  }

  // The tensors must tile the data buffer exactly: no overlap, no gap, nothing past or after the end.
  const bufferLength = size - 8 - headerLength;
  const label = (e: Entry) => `tensor ${JSON.stringify(e.name)} (data_offsets [${e.begin}, ${e.end}])`;
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let previous: Entry | undefined;
  for (const e of entries) {
    if (e.end > bufferLength) {
      throw bad(`truncated data: ${label(e)} expected a data buffer of at least ${e.end} bytes, found ${bufferLength}`);
    }
    const expectedBegin = previous ? previous.end : 0;
    if (e.begin < expectedBegin) throw bad(`${label(e)} overlaps ${label(previous!)}`);
    if (e.begin > expectedBegin) {
      throw bad(`${label(e)}: expected data to begin at byte ${expectedBegin} (contiguous tensors), found ${e.begin}`);
    }
    previous = e;
  }
  const used = previous ? previous.end : 0;
  if (used !== bufferLength) {
    throw bad(`trailing bytes: expected a data buffer of ${used} bytes (the tensors' extent), found ${bufferLength}`);
  }
  return { entries, metadata, dataStart: 8 + headerLength };
}

function parseEntry(path: string, name: string, info: unknown): Entry {
  const bad = (message: string) => new FileFormatError(path, `tensor ${JSON.stringify(name)}: ${message}`);
  if (!isPlainObject(info)) throw bad(`expected an object {dtype, shape, data_offsets}, found ${jsonKind(info)}`);
  const { dtype: code, shape, data_offsets: offsets } = info;
  const dtype = typeof code === 'string' && Object.hasOwn(DTYPE_OF_CODE, code) ? DTYPE_OF_CODE[code] : undefined;
  if (dtype === undefined) throw bad(`unsupported dtype: expected "F32" or "F64", found ${jsonKind(code)}`);
  if (!isIndexArray(shape)) throw bad(`invalid shape: expected an array of non-negative integers, found ${jsonKind(shape)}`);
  if (!isIndexArray(offsets) || offsets.length !== 2 || offsets[0] > offsets[1]) {
    throw bad(`invalid data_offsets: expected [begin, end] with 0 <= begin <= end, found ${jsonKind(offsets)}`);
  }
  const [begin, end] = offsets;
  const expected = product(shape) * ITEM_SIZE[dtype];
  if (end - begin !== expected) {
    throw bad(`data_offsets [${begin}, ${end}] span ${end - begin} bytes, expected ${expected} for shape [${shape.join(', ')}] ${code}`);
  }
  return { name, dtype, shape, begin, end };
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isIndexArray(value: unknown): value is number[] {
  return Array.isArray(value) && value.every((v) => Number.isSafeInteger(v) && v >= 0);
}

function jsonKind(value: unknown): string {
  if (value === undefined) return 'nothing';
  const text = JSON.stringify(value);
  return text.length > 60 ? text.slice(0, 60) + '...' : text;
}
