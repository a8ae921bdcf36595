// TFLite -> float32 ONNX. Constant tensors are dequantised ((q - zero_point) * scale, per tensor or
// per channel); activations are computed in float, so QUANTIZE/DEQUANTIZE become no-ops and the
// quantised input's zero point and scale become the card's normalisation.
import { dequantize, halfsToFloat } from './dequantize';
import { type Activation, type Converted, GraphBuilder, ImportError, type Padding, UnsupportedOpError, type Value, finish, origin, transposeData } from './graph';
import { type Options, type TfliteModel, type TfliteOperator, type TfliteTensor, readTflite } from './tflite-reader';

export interface TfliteOptions {
  /** Tensor whose values are the embedding (full name or its first ';'-separated part). Default: see `convertTflite`. */
  embedding?: string;
  /** Pre-softmax logits tensor. Default: the input of a final SOFTMAX. */
  logits?: string;
}

const ACTIVATIONS: Activation[] = ['NONE', 'RELU', 'RELU_N1_TO_1', 'RELU6', 'TANH'];

type Handler = (c: Context, op: TfliteOperator) => Value;

/** Operators' tensors and the builder, with the error context of the operator being converted. */
class Context {
  readonly values = new Map<number, Value>();

  constructor(readonly m: TfliteModel, readonly b: GraphBuilder) {}

  nodeName(op: TfliteOperator): string {
    const out = this.m.tensors[op.outputs[0]];
    return out ? shortName(out) : `operator ${op.index}`;
  }

  fail(op: TfliteOperator, message: string): never {
    throw new ImportError(`${this.m.path}: operator ${op.index} (${op.op}, output "${this.nodeName(op)}"): ${message}`);
  }

  tensor(op: TfliteOperator, k: number): TfliteTensor | undefined {
    const i = op.inputs[k];
    return i === undefined || i < 0 ? undefined : this.m.tensors[i];
  }

  /** Input k as a value: a computed activation, or a constant dequantised to float32. */
  input(op: TfliteOperator, k: number): Value {
    const t = this.tensor(op, k);
    if (!t) this.fail(op, `expected input ${k}`);
    const v = this.values.get(t.index);
    if (v) return v;
    if (!t.data) this.fail(op, `input ${k} "${t.name}" is used before any operator computes it`);
    const c = this.b.constant(shortName(t), t.shape, constantData(this.m.path, t));
    this.values.set(t.index, c);
    return c;
  }

  /** A constant input's float data, or null when the input is absent (optional bias). */
  floats(op: TfliteOperator, k: number): Float32Array | null {
    const t = this.tensor(op, k);
    if (!t) return null;
    const v = this.input(op, k);
    if (!v.data) this.fail(op, `expected input ${k} "${t.name}" to be a constant`);
    return v.data instanceof Float32Array ? v.data : Float32Array.from(v.data);
  }

  ints(op: TfliteOperator, k: number): number[] {
    const v = this.input(op, k);
    if (!v.data) this.fail(op, `expected input ${k} to be a constant`);
    return Array.from(v.data);
  }
}

function shortName(t: TfliteTensor): string {
  return t.name.split(';')[0];
}

function constantData(path: string, t: TfliteTensor): Float32Array | Int32Array {
  const bytes = t.data!;
  const count = t.shape.reduce((a, b) => a * b, 1);
  const size = { float32: 4, float16: 2, int32: 4, uint8: 1, int8: 1, int16: 2, int64: 8 }[t.type as string];
  if (size === undefined) throw new ImportError(`${path}: tensor "${t.name}": constant of type ${t.type} is not supported`);
  if (bytes.length !== count * size) {
    throw new ImportError(`${path}: tensor "${t.name}": expected ${count * size} bytes for shape [${t.shape}] of ${t.type}, buffer has ${bytes.length}`);
  }
  // Copied so typed arrays are aligned whatever the buffer's offset in the file.
  const copy = bytes.slice().buffer;
  const raw: ArrayLike<number> = {
    float32: () => new Float32Array(copy),
    float16: () => halfsToFloat(new Uint16Array(copy)),
    int32: () => new Int32Array(copy),
    uint8: () => new Uint8Array(copy),
    int8: () => new Int8Array(copy),
    int16: () => new Int16Array(copy),
    int64: () => Int32Array.from(new BigInt64Array(copy), (v) => Number(v)),
  }[t.type as 'float32']();
  const q = t.quantization;
  if (q && t.type !== 'float32' && t.type !== 'float16') {
    const channels = q.scale.length;
    if (channels > 1 && t.shape[q.dimension] !== channels) {
      throw new ImportError(`${path}: tensor "${t.name}": ${channels} per-channel scales along axis ${q.dimension} of shape [${t.shape}]`);
    }
    return dequantize(raw, t.shape, q.scale, q.zeroPoint, q.dimension);
  }
  return raw instanceof Float32Array || raw instanceof Int32Array ? raw : Float32Array.from(raw);
}

function padding(c: Context, op: TfliteOperator, code: number): Padding {
  if (code === 0) return 'SAME';
  if (code === 1) return 'VALID';
  return c.fail(op, `unknown padding ${code}`);
}

function activation(c: Context, op: TfliteOperator, code: number): Activation {
  return ACTIVATIONS[code] ?? c.fail(op, `fused activation ${code} is not supported`);
}

const elementwise = (onnxOp: 'Add' | 'Sub' | 'Mul' | 'Div' | 'Max' | 'Min', fused: boolean): Handler => (c, op) => {
  const name = c.nodeName(op);
  const y = c.b.binary(name, onnxOp, c.input(op, 0), c.input(op, 1));
  return fused ? c.b.activate(name, y, activation(c, op, op.options.byte(0))) : y;
};

const unary = (onnxOp: string): Handler => (c, op) => c.b.unary(c.nodeName(op), onnxOp, c.input(op, 0));

const reducer = (onnxOp: 'ReduceMean' | 'ReduceSum' | 'ReduceMax'): Handler => (c, op) =>
  c.b.reduce(c.nodeName(op), onnxOp, c.input(op, 0), c.ints(op, 1), op.options.bool(0));

const pool = (kind: 'avg' | 'max'): Handler => (c, op) => {
  const o: Options = op.options; // Pool2DOptions: padding, stride_w, stride_h, filter_width, filter_height, activation
  return c.b.pool(c.nodeName(op), kind, c.input(op, 0), {
    padding: padding(c, op, o.byte(0)), strides: [o.int(2), o.int(1)], kernel: [o.int(4), o.int(3)], activation: activation(c, op, o.byte(5)),
  });
};

const HANDLERS: Record<string, Handler> = {
  CONV_2D(c, op) {
    const o = op.options; // Conv2DOptions: padding, stride_w, stride_h, activation, dilation_w, dilation_h
    const x = c.input(op, 0);
    const w = c.input(op, 1); // OHWI
    if (w.shape.length !== 4 || !w.data) c.fail(op, `expected a constant OHWI filter, received shape [${w.shape}]`);
    const [oc, kh, kw, ic] = w.shape;
    const weight = transposeData(c.floats(op, 1)!, w.shape, [0, 3, 1, 2]);
    return c.b.conv(c.nodeName(op), x, weight, [oc, ic, kh, kw], c.floats(op, 2), {
      padding: padding(c, op, o.byte(0)), strides: [o.int(2), o.int(1)], dilations: [o.int(5, 1), o.int(4, 1)],
      group: x.shape[3] / ic, activation: activation(c, op, o.byte(3)),
    });
  },
  DEPTHWISE_CONV_2D(c, op) {
    const o = op.options; // DepthwiseConv2DOptions: padding, stride_w, stride_h, depth_multiplier, activation, dilation_w, dilation_h
    const x = c.input(op, 0);
    const w = c.input(op, 1); // [1, kh, kw, channels * multiplier]
    if (w.shape.length !== 4 || w.shape[0] !== 1 || !w.data) c.fail(op, `expected a constant [1, kh, kw, C*M] filter, received shape [${w.shape}]`);
    const [, kh, kw, oc] = w.shape;
    const weight = transposeData(c.floats(op, 1)!, w.shape, [3, 0, 1, 2]);
    return c.b.conv(c.nodeName(op), x, weight, [oc, 1, kh, kw], c.floats(op, 2), {
      padding: padding(c, op, o.byte(0)), strides: [o.int(2), o.int(1)], dilations: [o.int(6, 1), o.int(5, 1)],
      group: x.shape[3], activation: activation(c, op, o.byte(4)),
    });
  },
  FULLY_CONNECTED(c, op) {
    const o = op.options; // FullyConnectedOptions: activation, weights_format, keep_num_dims
    if (o.byte(1) !== 0) c.fail(op, `shuffled weights format ${o.byte(1)} is not supported`);
    let x = c.input(op, 0);
    const w = c.input(op, 1); // [out, in]
    if (w.shape.length !== 2 || !w.data) c.fail(op, `expected a constant [out, in] weight, received shape [${w.shape}]`);
    const name = c.nodeName(op);
    if (x.shape.length !== 2) x = c.b.reshape(`${name}/flatten`, x, [0, w.shape[1]]);
    return c.b.dense(name, x, c.floats(op, 1)!, [w.shape[0], w.shape[1]], c.floats(op, 2), activation(c, op, o.byte(0)));
  },
  AVERAGE_POOL_2D: pool('avg'),
  MAX_POOL_2D: pool('max'),
  ADD: elementwise('Add', true),
  SUB: elementwise('Sub', true),
  MUL: elementwise('Mul', true),
  DIV: elementwise('Div', true),
  MAXIMUM: elementwise('Max', false),
  MINIMUM: elementwise('Min', false),
  RELU: unary('Relu'),
  LOGISTIC: unary('Sigmoid'),
  TANH: unary('Tanh'),
  RELU6: (c, op) => c.b.clip(c.nodeName(op), c.input(op, 0), 0, 6),
  RELU_N1_TO_1: (c, op) => c.b.clip(c.nodeName(op), c.input(op, 0), -1, 1),
  MEAN: reducer('ReduceMean'),
  SUM: reducer('ReduceSum'),
  REDUCE_MAX: reducer('ReduceMax'),
  RESHAPE(c, op) {
    // The new shape is input 1 (a constant) or, in older files, ReshapeOptions.new_shape.
    const target = (c.tensor(op, 1) ? c.ints(op, 1) : op.options.ints(0)) ?? c.fail(op, 'expected a new shape (input 1 or ReshapeOptions)');
    return c.b.reshape(c.nodeName(op), c.input(op, 0), target);
  },
  SQUEEZE: (c, op) => c.b.squeeze(c.nodeName(op), c.input(op, 0), op.options.ints(0) ?? []),
  SOFTMAX: (c, op) => c.b.softmax(c.nodeName(op), c.input(op, 0), op.options.float(0, 1)),
  PAD(c, op) {
    const p = c.ints(op, 1);
    return c.b.pad(c.nodeName(op), c.input(op, 0), Array.from({ length: p.length / 2 }, (_, i) => [p[2 * i], p[2 * i + 1]] as [number, number]));
  },
  // Float inference: quantising and dequantising leave the (real) values unchanged.
  QUANTIZE: (c, op) => c.input(op, 0),
  DEQUANTIZE: (c, op) => c.input(op, 0),
};

export const TFLITE_OPS = Object.keys(HANDLERS);

/**
 * Converts a .tflite file's main subgraph. Defaults: the logits are the input of a final SOFTMAX;
 * the embedding is the input of the dense (or 1x1-convolution) layer that computes them, else the
 * model's first output.
 */
export function convertTflite(path: string, options: TfliteOptions = {}): Converted {
  const m = readTflite(path);
  if (m.inputs.length !== 1) throw new ImportError(`${path}: expected one input tensor, found ${m.inputs.length}`);
  const inT = m.tensors[m.inputs[0]];
  const b = new GraphBuilder(path);
  const c = new Context(m, b);
  const input = b.input(shortName(inT), inT.shape);
  c.values.set(inT.index, input);
  for (const op of m.operators) {
    const handler = HANDLERS[op.op];
    if (!handler) throw new UnsupportedOpError(op.op, `${c.nodeName(op)} (operator ${op.index})`, path, TFLITE_OPS);
    if (op.outputs.length !== 1) c.fail(op, `expected one output, found ${op.outputs.length}`);
    const y = handler(c, op);
    const out = m.tensors[op.outputs[0]];
    // The file records every tensor's shape: a disagreement means a conversion bug, not a model to write.
    const declared = out.shape.slice(1), inferred = y.shape.slice(1);
    if (out.shape.length && (declared.length !== inferred.length || declared.some((d, i) => d !== inferred[i]))) {
      c.fail(op, `inferred shape [${y.shape}] but the file declares [${out.shape}]`);
    }
    c.values.set(out.index, y);
  }
  const find = (name: string, what: string) => {
    const t = m.tensors.find((x) => x.name === name || shortName(x) === name);
    const v = t && c.values.get(t.index);
    if (!v) throw new ImportError(`${path}: ${what} tensor "${name}" is not ${t ? 'computed by any operator' : 'in the model'}`);
    return v;
  };
  const output = c.values.get(m.outputs[0]) ?? find(m.tensors[m.outputs[0]].name, 'output');
  let logits = options.logits ? find(options.logits, 'logits') : undefined;
  if (!logits) {
    // The softmax that computes the output, looking through (de)quantisation.
    let producer = m.operators.find((op) => op.outputs[0] === m.outputs[0]);
    while (producer && (producer.op === 'QUANTIZE' || producer.op === 'DEQUANTIZE')) {
      const t = producer.inputs[0];
      producer = m.operators.find((op) => op.outputs[0] === t);
    }
    if (producer?.op === 'SOFTMAX') logits = c.values.get(producer.inputs[0]);
  }
  const head = logits && origin(logits).dense;
  const embedding = options.embedding ? find(options.embedding, 'embedding') : (head && origin(head.input)) || logits || output;
  const converted = finish(b, shortName(inT), { name: input.forms.nchw!, shape: inT.shape }, embedding, logits === embedding ? undefined : logits);
  const q = inT.quantization;
  if (q && q.scale.length === 1 && (inT.type === 'uint8' || inT.type === 'int8')) {
    // value = (q - zero_point) * scale, with q the pixel (uint8) or the pixel - 128 (int8).
    converted.normalisation = { mean: q.zeroPoint[0] + (inT.type === 'int8' ? 128 : 0), std: 1 / q.scale[0] };
  }
  return converted;
}
