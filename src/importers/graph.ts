// Builds an ONNX graph from TensorFlow-style operations (TF.js graphs, TFLite, the face-api
// ResNet). Every value carries its TensorFlow (NHWC) shape; 4-D activations are stored NCHW in
// the ONNX graph, because ONNX convolutions are NCHW, and converted to NHWC only where an
// operation depends on the element order (reshape, squeeze, softmax over channels...). The graph
// input is NCHW, the batch dimension symbolic. Shapes are inferred op by op, so SAME padding is
// written out explicitly and a mismatch surfaces at import, naming the node.
import { product } from '../io/binary';
import { floatTensor, int64Tensor, model, node, valueInfo } from '../onnx/proto';
import type { OnnxModel, OnnxNode, OnnxTensor, OnnxValueInfo } from '../onnx/types';

export class ImportError extends Error {}

/** An operation the importer does not know: names the op and the node, never a wrong model. */
export class UnsupportedOpError extends ImportError {
  constructor(readonly op: string, readonly nodeName: string, where: string, supported: readonly string[]) {
    super(`${where}: node "${nodeName}" uses op ${op}, which the importer does not support (supported: ${supported.join(', ')})`);
  }
}

export type Padding = 'SAME' | 'VALID' | { top: number; left: number; bottom: number; right: number };
export type Activation = 'NONE' | 'RELU' | 'RELU6' | 'RELU_N1_TO_1' | 'TANH' | 'SIGMOID';

export interface Value {
  /** Name in the source model (activations) or of the constant. */
  readonly tf: string;
  /** NHWC (TensorFlow) shape; -1 is the symbolic batch or an unknown size. */
  readonly shape: number[];
  /** A constant's data, row-major over `shape`. */
  readonly data?: Float32Array | Int32Array;
  /** ONNX value names of the forms computed so far. */
  readonly forms: { plain?: string; nchw?: string };
  /** Set on a dense layer's output: its input and weight/bias initializers (classifier heads). */
  readonly dense?: { input: Value; weight: string; bias?: string };
  /** Set when this value holds the same numbers as another in a different shape (reshape, squeeze). */
  readonly sameAs?: Value;
}

export const EMBEDDING_OUTPUT = 'embedding';
export const LOGITS_OUTPUT = 'logits';
const OUTPUT_NAMES = [EMBEDDING_OUTPUT, LOGITS_OUTPUT];

const NHWC_TO_NCHW = [0, 3, 1, 2];
const NCHW_TO_NHWC = [0, 2, 3, 1];

/** Copies a row-major array of `shape` into the axis order `perm` (out axis i = in axis perm[i]). */
export function transposeData<T extends Float32Array | Int32Array>(data: T, shape: readonly number[], perm: readonly number[]): T {
  const rank = shape.length;
  const outShape = perm.map((p) => shape[p]);
  const inStrides = new Array<number>(rank);
  for (let i = rank - 1, s = 1; i >= 0; s *= shape[i], i--) inStrides[i] = s;
  const strides = perm.map((p) => inStrides[p]);
  const out = new (data.constructor as new (n: number) => T)(data.length);
  const idx = new Array<number>(rank).fill(0);
  let src = 0;
  for (let o = 0; o < out.length; o++) {
    out[o] = data[src];
    for (let a = rank - 1; a >= 0; a--) {
      idx[a]++;
      src += strides[a];
      if (idx[a] < outShape[a]) break;
      src -= strides[a] * outShape[a];
      idx[a] = 0;
    }
  }
  return out;
}

/** TensorFlow's SAME padding, written out: the extra pixel goes at the end, as TF does. */
export function samePadding(size: number, kernel: number, stride: number, dilation: number): [number, number] {
  const effective = (kernel - 1) * dilation + 1;
  const out = Math.ceil(size / stride);
  const total = Math.max((out - 1) * stride + effective - size, 0);
  return [Math.floor(total / 2), total - Math.floor(total / 2)];
}

function broadcast(a: readonly number[], b: readonly number[], where: string): number[] {
  const rank = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < rank; i++) {
    const x = a[a.length - rank + i] ?? 1, y = b[b.length - rank + i] ?? 1;
    if (x === y || y === 1) out.push(x);
    else if (x === 1) out.push(y);
    else if (x === -1 || y === -1) out.push(Math.max(x, y));
    else throw new ImportError(`${where}: shapes [${a}] and [${b}] do not broadcast`);
  }
  return out;
}

export class GraphBuilder {
  private readonly nodes: OnnxNode<number>[] = [];
  private readonly initializers = new Map<string, OnnxTensor<number>>();
  private readonly names = new Set<string>();
  private readonly inputs: OnnxValueInfo<number>[] = [];
  private readonly outputs: OnnxValueInfo<number>[] = [];
  private readonly scalars = new Map<number, string>();
  private readonly outputNames: readonly string[];

  /** `where` (the source file) starts every error message; `outputNames` replace "embedding" and "logits" (multi-output models). */
  constructor(readonly where: string, outputNames: readonly string[] = OUTPUT_NAMES) {
    this.outputNames = outputNames;
    // Kept free so that a source tensor of the same name cannot take them.
    for (const n of outputNames) this.names.add(n);
  }

  private fresh(base: string): string {
    let name = base;
    for (let i = 1; this.names.has(name); i++) name = `${base}_${i}`;
    this.names.add(name);
    return name;
  }

  private fail(tf: string, message: string): never {
    throw new ImportError(`${this.where}: node "${tf}": ${message}`);
  }

  private add(opType: string, inputs: string[], output: string, attrs: Parameters<typeof node>[3] = {}): string {
    this.nodes.push(node(opType, inputs, [output], attrs));
    return output;
  }

  private init(base: string, tensor: (name: string) => OnnxTensor<number>): string {
    const name = this.fresh(base);
    this.initializers.set(name, tensor(name));
    return name;
  }

  private ints(base: string, values: readonly number[]): string {
    return this.init(base, (n) => int64Tensor(n, [values.length], values));
  }

  private scalar(value: number): string {
    let name = this.scalars.get(value);
    if (!name) this.scalars.set(value, (name = this.init(`const/${value}`, (n) => floatTensor(n, [], Float32Array.of(value)))));
    return name;
  }

  /** The graph input, NCHW in ONNX; `shape` is NHWC with -1 for the batch. */
  input(name: string, shape: number[]): Value {
    if (shape.length !== 4 || shape.slice(1).some((d) => !(d > 0))) {
      this.fail(name, `expected an input of static NHWC shape [batch, height, width, channels], received [${shape}]`);
    }
    const onnxName = this.fresh(name);
    this.inputs.push(valueInfo(onnxName, [null, shape[3], shape[1], shape[2]]));
    return { tf: name, shape: [-1, ...shape.slice(1)], forms: { nchw: onnxName } };
  }

  constant(tf: string, shape: number[], data: Float32Array | Int32Array): Value {
    if (product(shape) !== data.length) this.fail(tf, `constant of shape [${shape}] needs ${product(shape)} values, has ${data.length}`);
    return { tf, shape, data, forms: {} };
  }

  /** An activation already computed in NCHW order: layout-free ops keep it there. */
  private isNchw(v: Value): boolean {
    return v.data === undefined && v.shape.length === 4 && v.forms.nchw !== undefined;
  }

  /** The value in NHWC (TensorFlow) element order. */
  plain(v: Value): string {
    const f = v.forms;
    if (f.plain) return f.plain;
    if (v.data) {
      const data = v.data instanceof Float32Array ? v.data : Float32Array.from(v.data);
      return (f.plain = this.init(v.tf, (n) => floatTensor(n, v.shape, data)));
    }
    return (f.plain = this.add('Transpose', [f.nchw!], this.fresh(`${v.tf}/nhwc`), { perm: NCHW_TO_NHWC }));
  }

  /** A 4-D value (or a constant broadcastable against one) in NCHW order. */
  nchw(v: Value): string {
    const f = v.forms;
    if (f.nchw) return f.nchw;
    if (v.data) {
      if (v.shape.length > 4) this.fail(v.tf, `cannot broadcast a rank-${v.shape.length} constant against a 4-D activation`);
      const shape4 = [...new Array(4 - v.shape.length).fill(1), ...v.shape];
      const data = v.data instanceof Float32Array ? v.data : Float32Array.from(v.data);
      const permuted = transposeData(data, shape4, NHWC_TO_NCHW);
      return (f.nchw = this.init(`${v.tf}/nchw`, (n) => floatTensor(n, NHWC_TO_NCHW.map((p) => shape4[p]), permuted)));
    }
    if (v.shape.length !== 4) this.fail(v.tf, `expected a 4-D tensor, received shape [${v.shape}]`);
    return (f.nchw = this.add('Transpose', [f.plain!], this.fresh(`${v.tf}/nchw`), { perm: NHWC_TO_NCHW }));
  }

  private spatial(v: Value, what: string): [number, number, number] {
    if (v.shape.length !== 4) this.fail(what, `expected a 4-D NHWC input, received shape [${v.shape}]`);
    const [, h, w, c] = v.shape;
    if (!(h > 0 && w > 0 && c > 0)) this.fail(what, `needs static height, width and channels, received shape [${v.shape}]`);
    return [h, w, c];
  }

  private windowPads(tf: string, x: Value, kernel: [number, number], strides: [number, number], dilations: [number, number], padding: Padding) {
    const [h, w] = this.spatial(x, tf);
    let pads: [number, number, number, number];
    if (padding === 'SAME') {
      const [t, b] = samePadding(h, kernel[0], strides[0], dilations[0]);
      const [l, r] = samePadding(w, kernel[1], strides[1], dilations[1]);
      pads = [t, l, b, r];
    } else if (padding === 'VALID') pads = [0, 0, 0, 0];
    else pads = [padding.top, padding.left, padding.bottom, padding.right];
    const out = (n: number, k: number, s: number, d: number, before: number, after: number) =>
      Math.floor((n + before + after - ((k - 1) * d + 1)) / s) + 1;
    const oh = out(h, kernel[0], strides[0], dilations[0], pads[0], pads[2]);
    const ow = out(w, kernel[1], strides[1], dilations[1], pads[1], pads[3]);
    if (!(oh > 0 && ow > 0)) this.fail(tf, `a ${kernel[0]}x${kernel[1]} window does not fit the ${h}x${w} input`);
    return { pads, oh, ow };
  }

  /**
   * A 2-D convolution. `weight` is OIHW ([out, in/group, kh, kw]); the output is `bias` added and
   * `activation` applied. A 1x1 convolution over a 1x1 map becomes a dense layer (so a classifier
   * head is a 2-D weight matrix).
   */
  conv(tf: string, x: Value, weight: Float32Array, wShape: [number, number, number, number], bias: Float32Array | null,
    opts: { strides: [number, number]; dilations?: [number, number]; padding: Padding; group?: number; activation?: Activation }): Value {
    const [h, w, c] = this.spatial(x, tf);
    const [o, i, kh, kw] = wShape;
    const group = opts.group ?? 1;
    if (i * group !== c || o % group !== 0) {
      this.fail(tf, `filter [${wShape}] with ${group} group(s) does not match ${c} input channels`);
    }
    if (bias && bias.length !== o) this.fail(tf, `bias has ${bias.length} values for ${o} output channels`);
    const dilations = opts.dilations ?? [1, 1];
    const { pads, oh, ow } = this.windowPads(tf, x, [kh, kw], opts.strides, dilations, opts.padding);
    if (h === 1 && w === 1 && kh === 1 && kw === 1 && group === 1 && pads.every((p) => p === 0)) {
      const flat: Value = { tf: `${tf}/flatten`, shape: [x.shape[0], c], forms: { plain: this.flatten(x) }, sameAs: origin(x) };
      const dense = this.dense(tf, flat, weight, [o, c], bias, opts.activation);
      return this.reshape(`${tf}/reshape`, dense, [0, 1, 1, o]);
    }
    const wName = this.init(`${tf}/weight`, (n) => floatTensor(n, wShape, weight));
    const inputs = [this.nchw(x), wName];
    if (bias) inputs.push(this.init(`${tf}/bias`, (n) => floatTensor(n, [o], bias)));
    const out = this.add('Conv', inputs, this.fresh(tf), {
      kernel_shape: [kh, kw], strides: [...opts.strides], dilations: [...dilations], pads: [pads[0], pads[1], pads[2], pads[3]], group,
    });
    return this.activate(tf, { tf, shape: [x.shape[0], oh, ow, o], forms: { nchw: out } }, opts.activation ?? 'NONE');
  }

  pool(tf: string, kind: 'avg' | 'max', x: Value, opts: { kernel: [number, number]; strides: [number, number]; padding: Padding; activation?: Activation }): Value {
    const [, , c] = this.spatial(x, tf);
    const { pads, oh, ow } = this.windowPads(tf, x, opts.kernel, opts.strides, [1, 1], opts.padding);
    // TensorFlow averages over the valid pixels only.
    const attrs: Record<string, number[] | number> = { kernel_shape: [...opts.kernel], strides: [...opts.strides], pads: [...pads] };
    if (kind === 'avg') attrs.count_include_pad = 0;
    const out = this.add(kind === 'avg' ? 'AveragePool' : 'MaxPool', [this.nchw(x)], this.fresh(tf), attrs);
    return this.activate(tf, { tf, shape: [x.shape[0], oh, ow, c], forms: { nchw: out } }, opts.activation ?? 'NONE');
  }

  /** y = x W^T + b for a 2-D x; `weight` is [out, in]. */
  dense(tf: string, x: Value, weight: Float32Array, wShape: [number, number], bias: Float32Array | null, activation: Activation = 'NONE'): Value {
    if (x.shape.length !== 2) this.fail(tf, `expected a 2-D input to a dense layer, received shape [${x.shape}]`);
    const [o, i] = wShape;
    if (x.shape[1] !== i) this.fail(tf, `weight [${o}, ${i}] does not match input shape [${x.shape}]`);
    if (bias && bias.length !== o) this.fail(tf, `bias has ${bias.length} values for ${o} outputs`);
    const wName = this.init(`${tf}/weight`, (n) => floatTensor(n, wShape, weight));
    const inputs = [this.plain(x), wName];
    const bName = bias ? this.init(`${tf}/bias`, (n) => floatTensor(n, [o], bias)) : undefined;
    if (bName) inputs.push(bName);
    const out = this.add('Gemm', inputs, this.fresh(tf), { transB: 1 });
    const y: Value = { tf, shape: [x.shape[0], o], forms: { plain: out }, dense: { input: x, weight: wName, bias: bName } };
    return this.activate(tf, y, activation);
  }

  activate(tf: string, x: Value, act: Activation): Value {
    switch (act) {
      case 'NONE': return x;
      case 'RELU': return this.unary(`${tf}/relu`, 'Relu', x);
      case 'RELU6': return this.clip(`${tf}/relu6`, x, 0, 6);
      case 'RELU_N1_TO_1': return this.clip(`${tf}/relu1`, x, -1, 1);
      case 'TANH': return this.unary(`${tf}/tanh`, 'Tanh', x);
      case 'SIGMOID': return this.unary(`${tf}/sigmoid`, 'Sigmoid', x);
    }
  }

  clip(tf: string, x: Value, min: number, max: number): Value {
    return this.layoutPreserving(tf, x, (input, out) => this.add('Clip', [input, this.scalar(min), this.scalar(max)], out));
  }

  /** An elementwise ONNX op of one input (Relu, Sigmoid, Tanh, Exp, Sqrt, Neg, Abs, Reciprocal...). */
  unary(tf: string, op: string, x: Value): Value {
    if (x.data) this.fail(tf, `op ${op} on a constant is not supported (no constant folding)`);
    return this.layoutPreserving(tf, x, (input, out) => this.add(op, [input], out));
  }

  private layoutPreserving(tf: string, x: Value, emit: (input: string, out: string) => string): Value {
    if (this.isNchw(x)) {
      return { tf, shape: x.shape, forms: { nchw: emit(this.nchw(x), this.fresh(tf)) } };
    }
    return { tf, shape: x.shape, forms: { plain: emit(this.plain(x), this.fresh(tf)) } };
  }

  /** Add, Sub, Mul, Div, Max, Min, PRelu with numpy broadcasting over the NHWC shapes. */
  binary(tf: string, op: 'Add' | 'Sub' | 'Mul' | 'Div' | 'Max' | 'Min' | 'PRelu', a: Value, b: Value): Value {
    if (a.data && b.data) this.fail(tf, `op ${op} of two constants is not supported (no constant folding)`);
    const shape = broadcast(a.shape, b.shape, `${this.where}: node "${tf}"`);
    // NCHW when a 4-D activation is NCHW and the other operand can follow it there.
    const four = (v: Value) => v.shape.length === 4 && !v.data;
    const canNchw = (v: Value) => (v.data ? v.shape.length <= 4 : four(v) || product(v.shape) === 1);
    const useNchw = shape.length === 4 && (this.isNchw(a) || this.isNchw(b)) && canNchw(a) && canNchw(b);
    const operand = (v: Value) => (useNchw && (v.data || four(v)) ? this.nchw(v) : this.plain(v));
    const out = this.add(op, [operand(a), operand(b)], this.fresh(tf));
    return { tf, shape, forms: useNchw ? { nchw: out } : { plain: out } };
  }

  /** ReduceMean/ReduceSum/ReduceMax over TensorFlow axes. */
  reduce(tf: string, op: 'ReduceMean' | 'ReduceSum' | 'ReduceMax', x: Value, axes: number[], keepDims: boolean): Value {
    const rank = x.shape.length;
    const ax = [...new Set(axes.map((a) => (a < 0 ? a + rank : a)))].sort();
    if (ax.some((a) => a < 0 || a >= rank)) this.fail(tf, `axes [${axes}] out of range for shape [${x.shape}]`);
    const shape = keepDims ? x.shape.map((d, i) => (ax.includes(i) ? 1 : d)) : x.shape.filter((_, i) => !ax.includes(i));
    // Stay NCHW when the kept axes come out in the same order either way ({N, C}, or keep_dims).
    const kept = [0, 1, 2, 3].filter((a) => !ax.includes(a));
    const sameOrder = keepDims || !(kept.includes(3) && (kept.includes(1) || kept.includes(2)));
    const useNchw = rank === 4 && this.isNchw(x) && sameOrder;
    const onnxAxes = useNchw ? ax.map((a) => NHWC_TO_NCHW.indexOf(a)).sort() : ax;
    const input = useNchw ? this.nchw(x) : this.plain(x);
    const attrs = { keepdims: keepDims ? 1 : 0 };
    const out = op === 'ReduceSum'
      ? this.add(op, [input, this.ints(`${tf}/axes`, onnxAxes)], this.fresh(tf), attrs) // axes is an input from opset 13
      : this.add(op, [input], this.fresh(tf), { ...attrs, axes: onnxAxes });
    return { tf, shape, forms: useNchw && shape.length === 4 ? { nchw: out } : { plain: out } };
  }

  /** Constant padding; `paddings` is TensorFlow's [[before, after] per NHWC axis]. */
  pad(tf: string, x: Value, paddings: [number, number][], value = 0): Value {
    if (paddings.length !== x.shape.length) this.fail(tf, `paddings for ${paddings.length} axes, input has shape [${x.shape}]`);
    const shape = x.shape.map((d, i) => (d < 0 ? d : d + paddings[i][0] + paddings[i][1]));
    const useNchw = this.isNchw(x);
    const order = useNchw ? NHWC_TO_NCHW.map((a) => paddings[a]) : paddings;
    const pads = [...order.map((p) => p[0]), ...order.map((p) => p[1])];
    const out = this.add('Pad', [useNchw ? this.nchw(x) : this.plain(x), this.ints(`${tf}/pads`, pads), this.scalar(value)], this.fresh(tf), { mode: 'constant' });
    return { tf, shape, forms: useNchw ? { nchw: out } : { plain: out } };
  }

  /** Reshape in NHWC order. A leading 0 or the source's static batch keeps the (symbolic) batch. */
  reshape(tf: string, x: Value, target: number[]): Value {
    if (target.slice(1).some((d) => d === 0 || d < -1)) this.fail(tf, `reshape to [${target}] is not supported (empty or invalid sizes)`);
    const perItem = x.shape.slice(1).every((d) => d > 0) ? product(x.shape.slice(1)) : -1;
    const keepsBatch = (d: number) => d === 0 || d === 1 || (d === -1 && product(target.slice(1)) === perItem);
    const t = target.map((d, i) => (i === 0 && x.shape[0] === -1 && keepsBatch(d) ? 0 : d));
    const fixed = t.map((d, i) => (d === 0 ? x.shape[i] : d));
    let shape = fixed;
    // With the batch kept, the other axes must hold exactly one item's values.
    if (t[0] === 0 && perItem > 0) {
      const known = product(fixed.slice(1).filter((d) => d !== -1));
      shape = fixed.map((d, i) => (i > 0 && d === -1 ? perItem / known : d));
      if (product(shape.slice(1)) !== perItem || !shape.every(Number.isInteger)) this.fail(tf, `cannot reshape [${x.shape}] to [${target}]`);
    }
    const out = this.add('Reshape', [this.plain(x), this.ints(`${tf}/shape`, t)], this.fresh(tf));
    return { tf, shape, forms: { plain: out }, sameAs: origin(x) };
  }

  /** Removes the given size-1 axes (all size-1 axes but the batch when none are given). */
  squeeze(tf: string, x: Value, axes: number[]): Value {
    const rank = x.shape.length;
    const ax = axes.length ? axes.map((a) => (a < 0 ? a + rank : a)) : x.shape.map((d, i) => (i > 0 && d === 1 ? i : -1)).filter((i) => i >= 0);
    if (ax.some((a) => x.shape[a] !== 1)) this.fail(tf, `cannot squeeze axes [${axes}] of shape [${x.shape}]`);
    const out = this.add('Squeeze', [this.plain(x), this.ints(`${tf}/axes`, ax)], this.fresh(tf));
    return { tf, shape: x.shape.filter((_, i) => !ax.includes(i)), forms: { plain: out }, sameAs: origin(x) };
  }

  softmax(tf: string, x: Value, beta = 1): Value {
    const input = beta === 1 ? x : this.binary(`${tf}/beta`, 'Mul', x, this.constant(`${tf}/beta`, [], Float32Array.of(beta)));
    const out = this.add('Softmax', [this.plain(input)], this.fresh(tf), { axis: -1 });
    return { tf, shape: x.shape, forms: { plain: out } };
  }

  /** [batch, rest...] -> [batch, product(rest)] in NHWC order. */
  flatten(x: Value): string {
    if (x.shape.length === 2) return this.plain(x);
    return this.add('Flatten', [this.plain(x)], this.fresh(`${x.tf}/flatten`), { axis: 1 });
  }

  /** Declares a 2-D graph output [batch, dim] named `name`, flattening in NHWC order; returns dim. */
  output(name: string, x: Value): number {
    const dim = product(x.shape.slice(1));
    if (!(dim > 0) || x.shape.slice(1).some((d) => d < 0)) this.fail(x.tf, `an output needs a static shape, received [${x.shape}]`);
    if (!this.outputNames.includes(name) || this.outputs.some((o) => o.name === name)) this.fail(x.tf, `"${name}" is not a free output name`);
    this.add('Identity', [this.flatten(x)], name);
    this.outputs.push(valueInfo(name, [null, dim]));
    return dim;
  }

  /** The model, keeping only the nodes and initializers that the outputs depend on. */
  build(graphName: string): OnnxModel<number> {
    const producer = new Map<string, OnnxNode<number>>();
    for (const n of this.nodes) for (const o of n.output ?? []) producer.set(o, n);
    const needed = new Set<string>();
    const keep = new Set<OnnxNode<number>>();
    const stack = this.outputs.map((o) => o.name!);
    while (stack.length) {
      const v = stack.pop()!;
      if (needed.has(v)) continue;
      needed.add(v);
      const n = producer.get(v);
      if (n && !keep.has(n)) {
        keep.add(n);
        stack.push(...(n.input ?? []));
      }
    }
    return model({
      name: graphName,
      node: this.nodes.filter((n) => keep.has(n)),
      initializer: [...this.initializers.values()].filter((t) => needed.has(t.name!)),
      input: this.inputs,
      output: this.outputs,
    });
  }
}

/** Follows reshape/squeeze aliases back to the value that holds the numbers. */
export function origin(v: Value): Value {
  return v.sameAs ?? v;
}

/** A classifier head logits = W e + c, when `logits` is a dense layer applied to `embedding`. */
export function findHead(embedding: Value, logits: Value): { weight: string; bias?: string } | undefined {
  const d = origin(logits).dense;
  if (!d || origin(d.input) !== origin(embedding)) return undefined;
  return { weight: d.weight, bias: d.bias };
}

/** What a converter hands back: the ONNX model with outputs "embedding" (and "logits"). */
export interface Converted {
  model: OnnxModel<number>;
  input: { name: string; size: [number, number]; channels: number };
  embedding: { tensor: string; dim: number; source: string };
  logits?: { tensor: string; classes: number; head?: { weight: string; bias?: string }; source: string };
  /** Normalisation the model itself declares (a quantised input's zero point and 1/scale). */
  normalisation?: { mean: number; std: number };
}

/** Declares the outputs and builds; the head is recorded when the logits are a dense layer on the embedding. */
export function finish(b: GraphBuilder, name: string, input: { name: string; shape: number[] }, embedding: Value, logits?: Value): Converted {
  const dim = b.output(EMBEDDING_OUTPUT, embedding);
  const classes = logits ? b.output(LOGITS_OUTPUT, logits) : 0;
  return {
    model: b.build(name),
    input: { name: input.name, size: [input.shape[1], input.shape[2]], channels: input.shape[3] },
    embedding: { tensor: EMBEDDING_OUTPUT, dim, source: embedding.tf },
    logits: logits && { tensor: LOGITS_OUTPUT, classes, head: findHead(embedding, logits), source: logits.tf },
  };
}
