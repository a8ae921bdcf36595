// Reading ONNX tensors (initializers, Constant values) as float32: float32/float64/float16/bfloat16
// and integer storage, from raw_data or the typed repeated fields. Quantised weights are read as the
// integers they store; DequantizeLinear is applied by readWeight in graph.ts.
import { type onnx, onnxSchema } from './proto';
import type { Int64, OnnxTensor } from './types';

type DataTypes = typeof onnx.TensorProto.DataType;

/** ONNX's data type enum, read from the schema on first use. */
function dataTypes(): DataTypes {
  return onnxSchema().TensorProto.DataType;
}

/** protobufjs decodes int64 as Long when the long package is present; dims and attributes are small. */
export function toInt(value: Int64 | null | undefined): number {
  if (value === null || value === undefined) return 0;
  return typeof value === 'number' ? value : value.toNumber();
}

export function dimsOf(t: OnnxTensor): number[] {
  return (t.dims ?? []).map(toInt);
}

/** ONNX's name for a data type, e.g. 'float16'; the number itself when unknown. */
export function dataTypeName(type: number): string {
  const name = (dataTypes() as unknown as Record<number, string | undefined>)[type];
  return name === undefined ? String(type) : name.toLowerCase();
}

/** A decoded tensor: float32 values in row-major order. */
export interface FloatTensor {
  name: string;
  dims: number[];
  data: Float32Array;
}

// Element sizes of the raw_data encodings handled below.
function rawBytes(DT: DataTypes): Partial<Record<number, number>> {
  return {
    [DT.FLOAT]: 4, [DT.DOUBLE]: 8, [DT.FLOAT16]: 2, [DT.BFLOAT16]: 2,
    [DT.INT8]: 1, [DT.UINT8]: 1, [DT.INT16]: 2, [DT.UINT16]: 2, [DT.INT32]: 4, [DT.INT64]: 8,
  };
}

/**
 * The values of `t` as float32. `where` names the tensor in errors (e.g. "model.onnx: initializer 'fc.weight'").
 * External data (tensors stored beside the .onnx file) is not supported.
 */
export function tensorToFloat32(t: OnnxTensor, where: string): Float32Array {
  const DT = dataTypes();
  const type = t.dataType ?? DT.UNDEFINED;
  const count = dimsOf(t).reduce((a, b) => a * b, 1);
  if (t.dataLocation === onnxSchema().TensorProto.DataLocation.EXTERNAL) {
    throw new RangeError(`${where}: expected the values inside the .onnx file, found external data (not supported; re-save the model without external data)`);
  }
  const bytesPer = rawBytes(DT)[type];
  if (bytesPer === undefined) {
    throw new TypeError(`${where}: expected a float or integer tensor, found data type ${dataTypeName(type)}`);
  }
  const out = new Float32Array(count);
  const raw = t.rawData;
  if (raw && raw.byteLength > 0) {
    if (raw.byteLength !== count * bytesPer) {
      throw new RangeError(`${where}: expected ${count * bytesPer} bytes of raw_data for dims [${dimsOf(t)}] ${dataTypeName(type)}, found ${raw.byteLength}`);
    }
    // raw_data is little-endian and may sit at any offset inside the decoded buffer.
    const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    for (let i = 0; i < count; i++) out[i] = readRaw(DT, view, type, i);
    return out;
  }
  const field = typedField(DT, t, type);
  if (field.length !== count) {
    throw new RangeError(`${where}: expected ${count} values for dims [${dimsOf(t)}], found ${field.length}`);
  }
  for (let i = 0; i < count; i++) {
    const v = toInt(field[i] as number);
    out[i] = type === DT.FLOAT16 ? halfToFloat(v) : type === DT.BFLOAT16 ? bfloat16ToFloat(v) : v;
  }
  return out;
}

function readRaw(DT: DataTypes, view: DataView, type: number, i: number): number {
  switch (type) {
    case DT.FLOAT: return view.getFloat32(i * 4, true);
    case DT.DOUBLE: return view.getFloat64(i * 8, true);
    case DT.FLOAT16: return halfToFloat(view.getUint16(i * 2, true));
    case DT.BFLOAT16: return bfloat16ToFloat(view.getUint16(i * 2, true));
    case DT.INT8: return view.getInt8(i);
    case DT.UINT8: return view.getUint8(i);
    case DT.INT16: return view.getInt16(i * 2, true);
    case DT.UINT16: return view.getUint16(i * 2, true);
    case DT.INT32: return view.getInt32(i * 4, true);
    default: return Number(view.getBigInt64(i * 8, true));
  }
}

/** The repeated field ONNX uses for each type when raw_data is absent (onnx.proto, TensorProto). */
function typedField(DT: DataTypes, t: OnnxTensor, type: number): ArrayLike<unknown> {
  if (type === DT.FLOAT) return t.floatData ?? [];
  if (type === DT.DOUBLE) return t.doubleData ?? [];
  if (type === DT.INT64) return t.int64Data ?? [];
  // float16/bfloat16 bit patterns and all narrower integers live in int32_data.
  return t.int32Data ?? [];
}

export function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 0x1f) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

const bf16 = new DataView(new ArrayBuffer(4));
function bfloat16ToFloat(b: number): number {
  bf16.setUint32(0, b << 16);
  return bf16.getFloat32(0);
}
