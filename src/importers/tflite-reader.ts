// A minimal, bounds-checked reader for TFLite flatbuffers (schema.fbs of tensorflow/lite): only
// the tables an importer needs (Model, SubGraph, Tensor, Buffer, Operator, OperatorCode,
// QuantizationParameters and the builtin options tables, read field by field). Field slots are
// those of schema.fbs; the flatbuffers runtime does the little-endian reads, every offset is
// checked here because the runtime reads past the end of a truncated file without complaint.
import * as fs from 'node:fs';
import type * as Flatbuffers from 'flatbuffers';
import { optional } from '../core/optional';
import { FileFormatError } from '../io/binary';

export type TensorType = 'float32' | 'float16' | 'int32' | 'uint8' | 'int64' | 'string' | 'bool' | 'int16' | 'complex64' | 'int8' | 'float64';
const TENSOR_TYPES: TensorType[] = ['float32', 'float16', 'int32', 'uint8', 'int64', 'string', 'bool', 'int16', 'complex64', 'int8', 'float64'];

/** BuiltinOperator names by code, for messages and dispatch. */
export const BUILTIN_OPS = [
  'ADD', 'AVERAGE_POOL_2D', 'CONCATENATION', 'CONV_2D', 'DEPTHWISE_CONV_2D', 'DEPTH_TO_SPACE', 'DEQUANTIZE',
  'EMBEDDING_LOOKUP', 'FLOOR', 'FULLY_CONNECTED', 'HASHTABLE_LOOKUP', 'L2_NORMALIZATION', 'L2_POOL_2D',
  'LOCAL_RESPONSE_NORMALIZATION', 'LOGISTIC', 'LSH_PROJECTION', 'LSTM', 'MAX_POOL_2D', 'MUL', 'RELU', 'RELU_N1_TO_1',
  'RELU6', 'RESHAPE', 'RESIZE_BILINEAR', 'RNN', 'SOFTMAX', 'SPACE_TO_DEPTH', 'SVDF', 'TANH', 'CONCAT_EMBEDDINGS',
  'SKIP_GRAM', 'CALL', 'CUSTOM', 'EMBEDDING_LOOKUP_SPARSE', 'PAD', 'UNIDIRECTIONAL_SEQUENCE_RNN', 'GATHER',
  'BATCH_TO_SPACE_ND', 'SPACE_TO_BATCH_ND', 'TRANSPOSE', 'MEAN', 'SUB', 'DIV', 'SQUEEZE', 'UNIDIRECTIONAL_SEQUENCE_LSTM',
  'STRIDED_SLICE', 'BIDIRECTIONAL_SEQUENCE_RNN', 'EXP', 'TOPK_V2', 'SPLIT', 'LOG_SOFTMAX', 'DELEGATE',
  'BIDIRECTIONAL_SEQUENCE_LSTM', 'CAST', 'PRELU', 'MAXIMUM', 'ARG_MAX', 'MINIMUM', 'LESS', 'NEG', 'PADV2', 'GREATER',
  'GREATER_EQUAL', 'LESS_EQUAL', 'SELECT', 'SLICE', 'SIN', 'TRANSPOSE_CONV', 'SPARSE_TO_DENSE', 'TILE', 'EXPAND_DIMS',
  'EQUAL', 'NOT_EQUAL', 'LOG', 'SUM', 'SQRT', 'RSQRT', 'SHAPE', 'POW', 'ARG_MIN', 'FAKE_QUANT', 'REDUCE_PROD',
  'REDUCE_MAX', 'PACK', 'LOGICAL_OR', 'ONE_HOT', 'LOGICAL_AND', 'LOGICAL_NOT', 'UNPACK', 'REDUCE_MIN', 'FLOOR_DIV',
  'REDUCE_ANY', 'SQUARE', 'ZEROS_LIKE', 'FILL', 'FLOOR_MOD', 'RANGE', 'RESIZE_NEAREST_NEIGHBOR', 'LEAKY_RELU',
  'SQUARED_DIFFERENCE', 'MIRROR_PAD', 'ABS', 'SPLIT_V', 'UNIQUE', 'CEIL', 'REVERSE_V2', 'ADD_N', 'GATHER_ND', 'COS',
  'WHERE', 'RANK', 'ELU', 'REVERSE_SEQUENCE', 'MATRIX_DIAG', 'QUANTIZE', 'MATRIX_SET_DIAG', 'ROUND', 'HARD_SWISH',
  'IF', 'WHILE', 'NON_MAX_SUPPRESSION_V4', 'NON_MAX_SUPPRESSION_V5', 'SCATTER_ND', 'SELECT_V2', 'DENSIFY',
  'SEGMENT_SUM', 'BATCH_MATMUL',
];

export interface Quantization {
  /** One scale per slice along `dimension` (one for per-tensor quantisation). */
  scale: Float32Array;
  zeroPoint: number[];
  dimension: number;
}

export interface TfliteTensor {
  index: number;
  name: string;
  shape: number[];
  type: TensorType;
  /** The constant's bytes, or null for an activation. */
  data: Uint8Array | null;
  quantization: Quantization | null;
}

/** Accessors for one builtin options table (absent fields read as their schema default). */
export interface Options {
  int(slot: number, fallback?: number): number;
  byte(slot: number, fallback?: number): number;
  bool(slot: number): boolean;
  float(slot: number, fallback?: number): number;
  ints(slot: number): number[] | null;
}

export interface TfliteOperator {
  index: number;
  op: string;
  inputs: number[];
  outputs: number[];
  options: Options;
}

export interface TfliteModel {
  path: string;
  version: number;
  description: string;
  tensors: TfliteTensor[];
  inputs: number[];
  outputs: number[];
  operators: TfliteOperator[];
}

/** Bounds-checked access to one flatbuffer table; `where` names it in errors. */
class Table {
  constructor(private readonly r: Reader, readonly pos: number, private readonly where: string) {
    r.check(pos, 4, where);
    const vtable = pos - r.bb.readInt32(pos);
    r.check(vtable, 4, `${where} vtable`);
    r.check(vtable, r.bb.readInt16(vtable), `${where} vtable`);
  }

  /** Absolute position of a field, or 0 when absent. */
  private field(slot: number, size: number): number {
    const rel = this.r.bb.__offset(this.pos, 4 + 2 * slot);
    if (!rel) return 0;
    this.r.check(this.pos + rel, size, `${this.where} field ${slot}`);
    return this.pos + rel;
  }

  int(slot: number, fallback = 0): number {
    const p = this.field(slot, 4);
    return p ? this.r.bb.readInt32(p) : fallback;
  }

  uint(slot: number, fallback = 0): number {
    const p = this.field(slot, 4);
    return p ? this.r.bb.readUint32(p) : fallback;
  }

  byte(slot: number, fallback = 0): number {
    const p = this.field(slot, 1);
    return p ? this.r.bb.readInt8(p) : fallback;
  }

  ubyte(slot: number, fallback = 0): number {
    const p = this.field(slot, 1);
    return p ? this.r.bb.readUint8(p) : fallback;
  }

  bool(slot: number): boolean {
    return this.ubyte(slot) !== 0;
  }

  float(slot: number, fallback = 0): number {
    const p = this.field(slot, 4);
    return p ? this.r.bb.readFloat32(p) : fallback;
  }

  uint64(slot: number): number {
    const p = this.field(slot, 8);
    return p ? Number(this.r.bb.readUint64(p)) : 0;
  }

  table(slot: number): Table | null {
    const p = this.field(slot, 4);
    return p ? new Table(this.r, this.r.bb.__indirect(p), `${this.where} field ${slot}`) : null;
  }

  string(slot: number): string {
    const v = this.vector(slot, 1);
    return v ? new TextDecoder().decode(this.r.bytes.subarray(v.start, v.start + v.length)) : '';
  }

  /** A vector's data start and element count, checked to lie inside the file. */
  vector(slot: number, elementSize: number): { start: number; length: number } | null {
    const p = this.field(slot, 4);
    if (!p) return null;
    const at = this.r.bb.__indirect(p);
    this.r.check(at, 4, `${this.where} field ${slot} length`);
    const length = this.r.bb.readUint32(at);
    this.r.check(at + 4, length * elementSize, `${this.where} field ${slot} (${length} elements)`);
    return { start: at + 4, length };
  }

  ints(slot: number): number[] | null {
    const v = this.vector(slot, 4);
    return v ? Array.from({ length: v.length }, (_, i) => this.r.bb.readInt32(v.start + 4 * i)) : null;
  }

  int64s(slot: number): number[] | null {
    const v = this.vector(slot, 8);
    return v ? Array.from({ length: v.length }, (_, i) => Number(this.r.bb.readInt64(v.start + 8 * i))) : null;
  }

  floats(slot: number): Float32Array | null {
    const v = this.vector(slot, 4);
    return v ? Float32Array.from({ length: v.length }, (_, i) => this.r.bb.readFloat32(v.start + 4 * i)) : null;
  }

  tables(slot: number): Table[] {
    const v = this.vector(slot, 4);
    if (!v) return [];
    return Array.from({ length: v.length }, (_, i) => {
      const p = v.start + 4 * i;
      return new Table(this.r, this.r.bb.__indirect(p), `${this.where} field ${slot}[${i}]`);
    });
  }
}

class Reader {
  readonly bb: Flatbuffers.ByteBuffer;

  constructor(readonly path: string, readonly bytes: Uint8Array) {
    this.bb = new (optional<typeof Flatbuffers>('flatbuffers', 'reading TFLite models').ByteBuffer)(bytes);
  }

  check(pos: number, size: number, what: string): void {
    if (!(pos >= 0 && size >= 0 && pos + size <= this.bytes.length)) {
      throw new FileFormatError(this.path, `${what} lies at bytes ${pos}..${pos + size}, past the end of the ${this.bytes.length}-byte file (truncated or not a TFLite model)`);
    }
  }
}

const EMPTY_OPTIONS: Options = {
  int: (_slot, fallback = 0) => fallback,
  byte: (_slot, fallback = 0) => fallback,
  bool: () => false,
  float: (_slot, fallback = 0) => fallback,
  ints: () => null,
};

/** Reads the main subgraph of a .tflite file. */
export function readTflite(path: string): TfliteModel {
  const bytes = fs.readFileSync(path);
  if (bytes.length < 8 || bytes.toString('latin1', 4, 8) !== 'TFL3') {
    throw new FileFormatError(path, `expected a TFLite flatbuffer (identifier "TFL3" at byte 4), received ${bytes.length < 8 ? `${bytes.length} bytes` : JSON.stringify(bytes.toString('latin1', 4, 8))}`);
  }
  const r = new Reader(path, new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  r.check(0, 4, 'root offset');
  const model = new Table(r, r.bb.readUint32(0), 'Model');
  // Model: version 0, operator_codes 1, subgraphs 2, description 3, buffers 4.
  const version = model.uint(0);
  const opNames = model.tables(1).map((code, i) => {
    // OperatorCode: deprecated_builtin_code (byte) 0, custom_code 1, version 2, builtin_code (int) 3.
    const builtin = Math.max(code.byte(0), code.int(3));
    if (builtin === 32) return `CUSTOM(${code.string(1) || `operator_codes[${i}]`})`;
    return BUILTIN_OPS[builtin] ?? `BUILTIN_${builtin}`;
  });
  const buffers = model.tables(4).map((buffer, i) => {
    // Buffer: data 0, offset 1, size 2 (offset/size locate data outside the flatbuffer, for > 2 GB models).
    const v = buffer.vector(0, 1);
    if (v && v.length) return r.bytes.subarray(v.start, v.start + v.length);
    const offset = buffer.uint64(1), size = buffer.uint64(2);
    if (offset > 1) {
      r.check(offset, size, `buffers[${i}] data`);
      return r.bytes.subarray(offset, offset + size);
    }
    return null;
  });
  const subgraphs = model.tables(2);
  if (subgraphs.length === 0) throw new FileFormatError(path, 'expected at least one subgraph, found none');
  // SubGraph: tensors 0, inputs 1, outputs 2, operators 3, name 4.
  const sg = subgraphs[0];
  const tensors = sg.tables(0).map((t, index): TfliteTensor => {
    // Tensor: shape 0, type 1, buffer 2, name 3, quantization 4.
    const typeCode = t.byte(1);
    const type = TENSOR_TYPES[typeCode];
    const name = t.string(3) || `tensor ${index}`;
    if (!type) throw new FileFormatError(path, `tensor ${index} (${name}): unknown TensorType ${typeCode}`);
    const bufferIndex = t.uint(2);
    if (bufferIndex >= buffers.length) {
      throw new FileFormatError(path, `tensor ${index} (${name}): buffer index ${bufferIndex} is out of range (${buffers.length} buffers)`);
    }
    return { index, name, shape: t.ints(0) ?? [], type, data: buffers[bufferIndex], quantization: readQuantization(t.table(4)) };
  });
  const checkIndex = (i: number, what: string) => {
    if (!(i >= -1 && i < tensors.length)) throw new FileFormatError(path, `${what}: tensor index ${i} is out of range (${tensors.length} tensors)`);
    return i;
  };
  const operators = sg.tables(3).map((op, index): TfliteOperator => {
    // Operator: opcode_index 0, inputs 1, outputs 2, builtin_options_type 3, builtin_options 4.
    const code = op.uint(0);
    if (code >= opNames.length) throw new FileFormatError(path, `operator ${index}: opcode index ${code} is out of range (${opNames.length} operator codes)`);
    const options = op.table(4);
    return {
      index,
      op: opNames[code],
      inputs: (op.ints(1) ?? []).map((i) => checkIndex(i, `operator ${index} (${opNames[code]}) input`)),
      outputs: (op.ints(2) ?? []).map((i) => checkIndex(i, `operator ${index} (${opNames[code]}) output`)),
      options: options ?? EMPTY_OPTIONS,
    };
  });
  return {
    path,
    version,
    description: model.string(3),
    tensors,
    inputs: (sg.ints(1) ?? []).map((i) => checkIndex(i, 'subgraph input')),
    outputs: (sg.ints(2) ?? []).map((i) => checkIndex(i, 'subgraph output')),
    operators,
  };
}

function readQuantization(q: Table | null): Quantization | null {
  // QuantizationParameters: min 0, max 1, scale 2, zero_point 3, details 4/5, quantized_dimension 6.
  const scale = q?.floats(2);
  if (!q || !scale || scale.length === 0) return null;
  const zeroPoint = q.int64s(3) ?? [];
  return { scale, zeroPoint: zeroPoint.length ? zeroPoint : new Array(scale.length).fill(0), dimension: q.int(6) };
}
