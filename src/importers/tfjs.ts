// TensorFlow.js graph models (model.json + weight shards) -> float32 ONNX. Only the nodes that
// the embedding (and logits) depend on are converted; an op outside the supported set among them
// is an error naming the op and the node.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { FileFormatError } from '../io/binary';
import type { OnnxModel } from '../onnx/types';
import { type Activation, type Converted, GraphBuilder, ImportError, type Padding, UnsupportedOpError, type Value, finish, transposeData } from './graph';
import { readWeights } from './tfjs-weights';

export interface TfjsOptions {
  /** Node whose output is the embedding. Default: the first output in the model's signature. */
  embedding?: string;
  /** Node whose output is the pre-softmax logits (classifiers). */
  logits?: string;
}

interface AttrValue {
  s?: string;
  i?: string | number;
  f?: number;
  b?: boolean;
  type?: string;
  list?: { i?: (string | number)[]; s?: string[]; f?: number[] };
  shape?: { dim?: { size: string | number }[]; unknownRank?: boolean };
}

interface TfNode {
  name: string;
  op: string;
  input?: string[];
  attr?: Record<string, AttrValue>;
}

const text = (s: string | undefined) => (s === undefined ? undefined : Buffer.from(s, 'base64').toString('utf8'));

/** Splits "name:k" / "^name" references; k > 0 (a second output) is not used by the supported ops. */
function ref(input: string): { name: string; index: number; control: boolean } {
  const control = input.startsWith('^');
  const m = /^(.*?)(?::(\d+))?$/.exec(control ? input.slice(1) : input)!;
  return { name: m[1], index: Number(m[2] ?? 0), control };
}

class Converter {
  private readonly values = new Map<string, Value>();
  private readonly nodes = new Map<string, TfNode>();
  input: { name: string; shape: number[] } | undefined;

  constructor(readonly file: string, nodes: TfNode[], private readonly weights: Map<string, { shape: number[]; data: Float32Array | Int32Array }>, readonly b: GraphBuilder) {
    for (const n of nodes) this.nodes.set(n.name, n);
  }

  fail(n: TfNode, message: string): never {
    throw new ImportError(`${this.file}: node "${n.name}" (${n.op}): ${message}`);
  }

  /** The value of a node, converting it and (depth first, iteratively) everything it depends on. */
  value(name: string): Value {
    const order: TfNode[] = [];
    const state = new Map<string, 'open' | 'done'>();
    const stack: { node: TfNode; expanded: boolean }[] = [{ node: this.node(name), expanded: false }];
    while (stack.length) {
      const top = stack[stack.length - 1];
      if (this.values.has(top.node.name) || state.get(top.node.name) === 'done') {
        stack.pop();
        continue;
      }
      if (top.expanded) {
        stack.pop();
        state.set(top.node.name, 'done');
        order.push(top.node);
        continue;
      }
      top.expanded = true;
      state.set(top.node.name, 'open');
      for (const input of top.node.input ?? []) {
        const r = ref(input);
        if (r.control) continue;
        if (r.index !== 0) this.fail(top.node, `uses output ${r.index} of "${r.name}"; only first outputs are supported`);
        if (state.get(r.name) === 'open') this.fail(top.node, `is part of a cycle through "${r.name}"`);
        stack.push({ node: this.node(r.name, top.node), expanded: false });
      }
    }
    for (const n of order) this.values.set(n.name, this.convert(n));
    return this.values.get(name)!;
  }

  private node(name: string, from?: TfNode): TfNode {
    const n = this.nodes.get(ref(name).name);
    if (!n) throw new ImportError(`${this.file}: ${from ? `node "${from.name}" refers to` : 'expected'} a node "${name}", which the graph does not have`);
    return n;
  }

  inputs(n: TfNode): Value[] {
    return (n.input ?? []).filter((i) => !ref(i).control).map((i) => this.values.get(ref(i).name)!);
  }

  private constInts(n: TfNode, v: Value, what: string): number[] {
    if (!v.data) this.fail(n, `expected ${what} to be a constant`);
    return Array.from(v.data);
  }

  private constFloats(n: TfNode, v: Value, what: string): Float32Array {
    if (!v.data) this.fail(n, `expected ${what} to be a constant`);
    return v.data instanceof Float32Array ? v.data : Float32Array.from(v.data);
  }

  private ints(n: TfNode, attr: string): number[] {
    return (n.attr?.[attr]?.list?.i ?? []).map(Number);
  }

  private nhwc(n: TfNode): void {
    const format = text(n.attr?.data_format?.s) ?? 'NHWC';
    if (format !== 'NHWC') this.fail(n, `data_format ${format} is not supported (NHWC only)`);
  }

  private window(n: TfNode, attr: 'strides' | 'dilations' | 'ksize'): [number, number] {
    const v = this.ints(n, attr);
    if (v.length === 0) return [1, 1];
    if (v.length !== 4 || v[0] !== 1 || v[3] !== 1) this.fail(n, `${attr} [${v}] must be [1, h, w, 1]`);
    return [v[1], v[2]];
  }

  private padding(n: TfNode): Padding {
    const p = text(n.attr?.padding?.s);
    if (p === 'SAME' || p === 'VALID') return p;
    if (p === 'EXPLICIT') {
      const e = this.ints(n, 'explicit_paddings');
      if (e.length !== 8 || e[0] || e[1] || e[6] || e[7]) this.fail(n, `explicit_paddings [${e}] must pad height and width only`);
      return { top: e[2], bottom: e[3], left: e[4], right: e[5] };
    }
    return this.fail(n, `padding ${p} is not supported`);
  }

  /** BiasAdd then at most one activation, as TF.js fuses them; returns the bias and activation. */
  private fused(n: TfNode, args: Value[]): { bias: Float32Array | null; post: (v: Value) => Value } {
    const ops = (n.attr?.fused_ops?.list?.s ?? []).map((s) => text(s)!);
    const [first, act, ...rest] = ops;
    if (first !== 'BiasAdd' || rest.length) this.fail(n, `fused ops [${ops}] are not supported (BiasAdd followed by at most one activation)`);
    const bias = this.constFloats(n, args[0], 'the bias');
    const post = (v: Value): Value => {
      if (act === undefined) return v;
      if (act === 'Prelu') return this.b.binary(`${n.name}/prelu`, 'PRelu', v, args[1] ?? this.fail(n, 'Prelu needs an alpha input'));
      if (act === 'LeakyRelu') return this.leakyRelu(`${n.name}/leakyrelu`, v, n.attr?.leakyrelu_alpha?.f);
      if (act === 'Elu') return this.b.unary(`${n.name}/elu`, 'Elu', v);
      const a = ({ Relu: 'RELU', Relu6: 'RELU6', Sigmoid: 'SIGMOID', Tanh: 'TANH' } as Record<string, Activation>)[act];
      return a ? this.b.activate(n.name, v, a) : this.fail(n, `fused activation ${act} is not supported`);
    };
    return { bias, post };
  }

  private conv(n: TfNode, depthwise: boolean, fusedArgs?: Value[]): Value {
    this.nhwc(n);
    const [x, filter] = this.inputs(n);
    const w = this.constFloats(n, filter, 'the filter');
    if (filter.shape.length !== 4) this.fail(n, `expected a 4-D filter, received shape [${filter.shape}]`);
    const [kh, kw, ci, m] = filter.shape; // HWIO, or [kh, kw, C, multiplier] for depthwise
    const fused = fusedArgs ? this.fused(n, fusedArgs) : undefined;
    const opts = { strides: this.window(n, 'strides'), dilations: this.window(n, 'dilations'), padding: this.padding(n) };
    const y = depthwise
      // Output channel c*M + m reads input channel c: ONNX groups of M filters, one group per channel.
      ? this.b.conv(n.name, x, transposeData(w, filter.shape, [2, 3, 0, 1]), [ci * m, 1, kh, kw], fused?.bias ?? null, { ...opts, group: ci })
      : this.b.conv(n.name, x, transposeData(w, filter.shape, [3, 2, 0, 1]), [m, ci, kh, kw], fused?.bias ?? null, { ...opts, group: x.shape[3] / ci });
    return fused ? fused.post(y) : y;
  }

  private matmul(n: TfNode, fusedArgs?: Value[]): Value {
    const [a, bv] = this.inputs(n);
    if (n.attr?.transpose_a?.b) this.fail(n, 'transpose_a is not supported');
    const w = this.constFloats(n, bv, 'the second operand');
    if (bv.shape.length !== 2) this.fail(n, `expected a 2-D weight, received shape [${bv.shape}]`);
    // Stored [out, in] so that a classifier head reads as W (classes x dim).
    const transposed = n.attr?.transpose_b?.b ?? false;
    const [o, i] = transposed ? bv.shape : [bv.shape[1], bv.shape[0]];
    const weight = transposed ? w : transposeData(w, bv.shape, [1, 0]);
    const fused = fusedArgs ? this.fused(n, fusedArgs) : undefined;
    const y = this.b.dense(n.name, a, weight, [o, i], fused?.bias ?? null);
    return fused ? fused.post(y) : y;
  }

  /** As PRelu with a scalar slope (an integral alpha would not survive as a float attribute). */
  private leakyRelu(name: string, x: Value, alpha = 0.2): Value {
    return this.b.binary(name, 'PRelu', x, this.b.constant(`${name}/alpha`, [], Float32Array.of(alpha)));
  }

  private reduce(n: TfNode, op: 'ReduceMean' | 'ReduceSum' | 'ReduceMax'): Value {
    const [x, axes] = this.inputs(n);
    return this.b.reduce(n.name, op, x, this.constInts(n, axes, 'the reduction axes'), n.attr?.keep_dims?.b ?? false);
  }

  private convert(n: TfNode): Value {
    const b = this.b;
    const handler = HANDLERS[n.op];
    if (!handler) throw new UnsupportedOpError(n.op, n.name, this.file, TFJS_OPS);
    return handler.call(this, n, b);
  }

  placeholder(n: TfNode): Value {
    const dtype = n.attr?.dtype?.type ?? 'DT_FLOAT';
    if (dtype !== 'DT_FLOAT') this.fail(n, `input of ${dtype} is not supported (DT_FLOAT only)`);
    if (this.input) this.fail(n, `is a second input after "${this.input.name}"; only single-input models are supported`);
    const dims = (n.attr?.shape?.shape?.dim ?? []).map((d) => Number(d.size));
    if (dims.length !== 4 || dims.slice(1).some((d) => !(d > 0))) this.fail(n, `expected a static NHWC image input, received shape [${dims}]`);
    const v = this.b.input(n.name, dims);
    this.input = { name: v.forms.nchw!, shape: dims };
    return v;
  }

  constant(n: TfNode): Value {
    const w = this.weights.get(n.name);
    if (!w) this.fail(n, 'has no values in the weights manifest');
    return this.b.constant(n.name, w.shape, w.data);
  }

  static handlers(): Record<string, (this: Converter, n: TfNode, b: GraphBuilder) => Value> {
    const binary = (op: 'Add' | 'Sub' | 'Mul' | 'Div' | 'Max' | 'Min' | 'PRelu') => function (this: Converter, n: TfNode, b: GraphBuilder) {
      const [x, y] = this.inputs(n);
      return b.binary(n.name, op, x, y);
    };
    const unary = (op: string) => function (this: Converter, n: TfNode, b: GraphBuilder) {
      return b.unary(n.name, op, this.inputs(n)[0]);
    };
    const pool = (kind: 'avg' | 'max') => function (this: Converter, n: TfNode, b: GraphBuilder) {
      this.nhwc(n);
      return b.pool(n.name, kind, this.inputs(n)[0], { kernel: this.window(n, 'ksize'), strides: this.window(n, 'strides'), padding: this.padding(n) });
    };
    return {
      Placeholder(n) { return this.placeholder(n); },
      Const(n) { return this.constant(n); },
      Identity(n) { return this.inputs(n)[0]; },
      Conv2D(n) { return this.conv(n, false); },
      DepthwiseConv2dNative(n) { return this.conv(n, true); },
      _FusedConv2D(n) { return this.conv(n, false, this.inputs(n).slice(2)); },
      FusedDepthwiseConv2dNative(n) { return this.conv(n, true, this.inputs(n).slice(2)); },
      MatMul(n) { return this.matmul(n); },
      _FusedMatMul(n) { return this.matmul(n, this.inputs(n).slice(2)); },
      BiasAdd: binary('Add'),
      Add: binary('Add'),
      AddV2: binary('Add'),
      Sub: binary('Sub'),
      Mul: binary('Mul'),
      RealDiv: binary('Div'),
      Maximum: binary('Max'),
      Minimum: binary('Min'),
      Prelu: binary('PRelu'),
      Relu: unary('Relu'),
      Sigmoid: unary('Sigmoid'),
      Tanh: unary('Tanh'),
      Elu: unary('Elu'),
      Exp: unary('Exp'),
      Sqrt: unary('Sqrt'),
      Neg: unary('Neg'),
      Abs: unary('Abs'),
      Relu6(n, b) { return b.clip(n.name, this.inputs(n)[0], 0, 6); },
      Rsqrt(n, b) { return b.unary(n.name, 'Reciprocal', b.unary(`${n.name}/sqrt`, 'Sqrt', this.inputs(n)[0])); },
      Square(n, b) {
        const x = this.inputs(n)[0];
        return b.binary(n.name, 'Mul', x, x);
      },
      LeakyRelu(n) { return this.leakyRelu(n.name, this.inputs(n)[0], n.attr?.alpha?.f); },
      Mean(n) { return this.reduce(n, 'ReduceMean'); },
      Sum(n) { return this.reduce(n, 'ReduceSum'); },
      Max(n) { return this.reduce(n, 'ReduceMax'); },
      AvgPool: pool('avg'),
      MaxPool: pool('max'),
      Pad(n, b) { return padNode(this, n, b); },
      PadV2(n, b) { return padNode(this, n, b); },
      Reshape(n, b) {
        const [x, shape] = this.inputs(n);
        return b.reshape(n.name, x, this.constInts(n, shape, 'the shape'));
      },
      Squeeze(n, b) { return b.squeeze(n.name, this.inputs(n)[0], this.ints(n, 'squeeze_dims')); },
      Softmax(n, b) { return b.softmax(n.name, this.inputs(n)[0]); },
    };
  }
}

function padNode(c: Converter, n: TfNode, b: GraphBuilder): Value {
  const [x, paddings, value] = c.inputs(n);
  if (!paddings.data || paddings.shape.length !== 2 || paddings.shape[1] !== 2) c.fail(n, `expected constant [rank, 2] paddings, received shape [${paddings.shape}]`);
  const p = Array.from(paddings.data);
  const pairs = Array.from({ length: paddings.shape[0] }, (_, i) => [p[2 * i], p[2 * i + 1]] as [number, number]);
  if (value && (!value.data || value.data.length !== 1)) c.fail(n, 'expected a scalar constant padding value');
  return b.pad(n.name, x, pairs, value ? value.data![0] : 0);
}

const HANDLERS = Converter.handlers();
export const TFJS_OPS = Object.keys(HANDLERS);

interface ModelJson {
  format?: string;
  modelTopology?: { node?: TfNode[]; model_config?: unknown };
  weightsManifest?: unknown;
  signature?: { outputs?: Record<string, unknown> };
}

/** Reads model.json and its weight shards into a converter writing to a builder with the given output names. */
function open(modelJson: string, outputNames?: readonly string[]): { json: ModelJson; c: Converter; b: GraphBuilder } {
  let json: ModelJson;
  try {
    json = JSON.parse(fs.readFileSync(modelJson, 'utf8')) as ModelJson;
  } catch (err) {
    throw new FileFormatError(modelJson, `expected a TensorFlow.js model.json: ${(err as Error).message}`);
  }
  if (json?.modelTopology?.model_config || json?.format === 'layers-model') {
    throw new FileFormatError(modelJson, 'is a TensorFlow.js layers model; only graph models are supported (face-api weights: use the faceapi importer)');
  }
  const nodes = json?.modelTopology?.node;
  if (!Array.isArray(nodes)) throw new FileFormatError(modelJson, 'expected a TensorFlow.js graph model (modelTopology.node)');
  const weights = readWeights(modelJson, json.weightsManifest, path.dirname(modelJson));
  const b = new GraphBuilder(modelJson, outputNames);
  return { json, c: new Converter(modelJson, nodes, weights, b), b };
}

/** Reads model.json and its weight shards, and converts the graph up to the embedding (and logits). */
export function convertTfjs(modelJson: string, options: TfjsOptions = {}): Converted {
  const { json, c, b } = open(modelJson);
  const outputs = Object.keys(json.signature?.outputs ?? {});
  const embeddingName = options.embedding ?? outputs[0];
  if (!embeddingName) throw new ImportError(`${modelJson}: the model's signature names no outputs: give the embedding node`);
  const embedding = c.value(ref(embeddingName).name);
  const logits = options.logits ? c.value(ref(options.logits).name) : undefined;
  if (!c.input) throw new ImportError(`${modelJson}: the embedding "${embeddingName}" does not depend on any Placeholder input`);
  return finish(b, path.basename(modelJson, '.json'), c.input, embedding, logits);
}

/** A model with several outputs (a detector's scores and boxes per scale), each flattened to [batch, size]. */
export interface ConvertedOutputs {
  model: OnnxModel<number>;
  input: { name: string; size: [number, number] };
  /** Values per image of each output, by output name. */
  sizes: Record<string, number>;
}

/** Converts the graph up to each source node of `outputs` (output name -> node), exposed under the output name. */
export function convertTfjsOutputs(modelJson: string, outputs: Record<string, string>): ConvertedOutputs {
  const names = Object.keys(outputs);
  const { c, b } = open(modelJson, names);
  const values = names.map((n) => c.value(ref(outputs[n]).name));
  if (!c.input) throw new ImportError(`${modelJson}: the outputs [${names}] do not depend on any Placeholder input`);
  const sizes = Object.fromEntries(names.map((n, i) => [n, b.output(n, values[i])]));
  return { model: b.build(path.basename(modelJson, '.json')), input: { name: c.input.name, size: [c.input.shape[1], c.input.shape[2]] }, sizes };
}
