// ONNX protobuf I/O and the small constructors every graph writer shares (importers, graph
// surgery, test fixtures). The schema comes from onnx-proto (generated from onnx.proto); models
// are typed with embmap's own interfaces (types.ts), which onnx-proto's messages fit.
import * as fs from 'node:fs';
import type { onnx } from 'onnx-proto';
import { optional } from '../core/optional';
import { writeFileAtomic } from '../io/atomic';
import { FileFormatError } from '../io/binary';
import type { Int64, OnnxAttribute, OnnxGraph, OnnxModel, OnnxNode, OnnxTensor, OnnxValueInfo } from './types';

export type { onnx };

/** The ONNX schema (onnx-proto, an optional peer dependency), loaded on first use. */
export function onnxSchema(): typeof onnx {
  return optional<typeof import('onnx-proto')>('onnx-proto', 'reading and writing ONNX models').onnx;
}

export const OPSET = 13;

/** Reads and decodes a model; errors name the file (unreadable: the system error; undecodable: FileFormatError). */
export function readModel(path: string): OnnxModel {
  return decodeModel(readModelBytes(path), path);
}

export function readModelBytes(path: string): Buffer {
  try {
    return fs.readFileSync(path);
  } catch (err) {
    throw new Error(`${path}: cannot read the ONNX model: ${(err as Error).message}`);
  }
}

/** Decodes a model's bytes; `path` names it in the FileFormatError thrown for bytes that are not one. */
export function decodeModel(bytes: Uint8Array, path: string): OnnxModel {
  const { ModelProto } = onnxSchema();
  try {
    return ModelProto.decode(bytes);
  } catch (err) {
    throw new FileFormatError(path, `expected an ONNX model (protobuf ModelProto): ${(err as Error).message}`);
  }
}

export function encodeModel(model: OnnxModel): Uint8Array {
  const { ModelProto } = onnxSchema();
  return ModelProto.encode(ModelProto.create(model)).finish();
}

/** Writes atomically, so a crash never leaves a truncated model that looks whole. */
export function writeModel(path: string, model: OnnxModel): void {
  writeFileAtomic(path, [encodeModel(model)]);
}

export function floatTensor(name: string, dims: readonly number[], data: Float32Array): OnnxTensor<number> {
  const count = dims.reduce((a, b) => a * b, 1);
  if (count !== data.length) throw new RangeError(`${name}: expected ${count} values for dims [${dims}], received ${data.length}`);
  return {
    name,
    dims: [...dims],
    dataType: onnxSchema().TensorProto.DataType.FLOAT,
    rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
  };
}

export function int64Tensor(name: string, dims: readonly number[], values: readonly number[]): OnnxTensor<number> {
  return { name, dims: [...dims], dataType: onnxSchema().TensorProto.DataType.INT64, int64Data: [...values] };
}

export type AttrValue = number | string | number[] | OnnxTensor<number> | { ints: number[] } | { floats: number[] } | { float: number };

/** An attribute; plain numbers are INT when integral, FLOAT otherwise. Use {float}/{floats}/{ints} to force. */
export function attribute(name: string, value: AttrValue): OnnxAttribute<number> {
  const A = onnxSchema().AttributeProto.AttributeType;
  if (typeof value === 'string') return { name, type: A.STRING, s: new TextEncoder().encode(value) };
  if (typeof value === 'number') return Number.isInteger(value) ? { name, type: A.INT, i: value } : { name, type: A.FLOAT, f: value };
  if (Array.isArray(value)) return { name, type: A.INTS, ints: value };
  if ('ints' in value) return { name, type: A.INTS, ints: value.ints };
  if ('floats' in value) return { name, type: A.FLOATS, floats: value.floats };
  if ('float' in value) return { name, type: A.FLOAT, f: value.float };
  return { name, type: A.TENSOR, t: value };
}

export function node(
  opType: string, inputs: string[], outputs: string[], attrs: Record<string, AttrValue> = {}, name?: string,
): OnnxNode<number> {
  return {
    opType,
    input: inputs,
    output: outputs,
    name: name ?? outputs[0],
    attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
  };
}

/** A float32 graph input/output; null dims are symbolic (e.g. the batch). */
export function valueInfo(name: string, dims: readonly (number | string | null)[]): OnnxValueInfo<number> {
  return {
    name,
    type: {
      tensorType: {
        elemType: onnxSchema().TensorProto.DataType.FLOAT,
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d ?? 'N' })) },
      },
    },
  };
}

export function model<I extends Int64>(graph: OnnxGraph<I>, producer = 'embmap'): OnnxModel<I | number> {
  return {
    irVersion: 7,
    producerName: producer,
    opsetImport: [{ domain: '', version: OPSET }],
    graph,
  };
}
