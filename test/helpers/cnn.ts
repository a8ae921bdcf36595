// A small convolutional-network writer: a sequence of layers in, an ONNX model with seeded random
// weights out. Used for tests with known weights (the weights are returned), for the shapes of
// third-party networks (an embedding projection, heads with and without Softmax, several outputs)
// and for throughput benchmarks with realistic shapes (e.g. a ResNet-like net at 224 x 224).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { makeRng } from '../../src/evaluate/split';
import type { Layout, ModelCard } from '../../src/models/card';
import { floatTensor, model, node, valueInfo, writeModel } from '../../src/onnx/proto';
import type { OnnxGraph, OnnxModel, OnnxNode } from '../../src/onnx/types';

export type LayerSpec =
  | { op: 'conv'; out: number; kernel: number; stride?: number; pad?: number; groups?: number; relu?: boolean }
  /** y = relu(x + layers(x)); the layers must keep x's shape. */
  | { op: 'residual'; layers: LayerSpec[] }
  | { op: 'maxpool'; kernel: number; stride: number; pad?: number }
  /** GlobalAveragePool: the tensor 'pool' (N x C x 1 x 1). */
  | { op: 'gap' };

export interface ConvNetSpec {
  input: { name?: string; size: [number, number]; layout?: Layout };
  layers: LayerSpec[];
  /**
   * After 'gap': a linear embedding projection to `out` dims, no activation: a 1x1 Conv on the pooled
   * tensor then Flatten (MobileFaceNet's last layer), or Flatten then Gemm. Its output is 'embedding'.
   */
  projection?: { out: number; op?: 'conv' | 'gemm' };
  /** Ends with a classifier after 'gap' (or the projection): Gemm (default), MatMul + Add, or a 1x1 Conv + Flatten (no projection). */
  head?: { classes: number; op?: 'gemm' | 'matmul' | 'conv'; softmax?: boolean };
  /** The graph's outputs, in order (default: the last tensor: the softmax, the logits or the embedding). */
  outputs?: ('embedding' | 'features' | 'logits' | 'prob')[];
  /** Uniform [0, 1) source for the weights (e.g. makeRng(seed) from evaluate/split). */
  rng: () => number;
}

export interface ConvNet {
  model: OnnxModel;
  /** Every weight by initializer name, as stored (conv W: out x in/groups x k x k). */
  weights: Map<string, { dims: number[]; data: Float32Array }>;
  /** The pooled, flattened features or the projection ('embedding'; 'pool' for a Conv head, which reads the unflattened tensor). */
  embedding: string;
  logits?: string;
  /** The graph's output (the logits, their softmax, or the embedding without a head). */
  output: string;
  embeddingDim: number;
}

export function convNet(spec: ConvNetSpec): ConvNet {
  const inputName = spec.input.name ?? 'input';
  const [H, W] = spec.input.size;
  const nodes: OnnxNode[] = [];
  const weights = new Map<string, { dims: number[]; data: Float32Array }>();
  let counter = 0;
  const fresh = (prefix: string) => `${prefix}${counter++}`;
  // He-normal weights keep activations at a stable scale through depth, as in a trained net.
  const gaussian = () => Math.sqrt(-2 * Math.log(spec.rng() || 1e-12)) * Math.cos(2 * Math.PI * spec.rng());
  const weight = (name: string, dims: number[], fanIn: number) => {
    const data = new Float32Array(dims.reduce((a, b) => a * b, 1));
    const s = Math.sqrt(2 / fanIn);
    for (let i = 0; i < data.length; i++) data[i] = gaussian() * s;
    weights.set(name, { dims, data });
    return name;
  };
  const bias = (name: string, n: number) => {
    const data = Float32Array.from({ length: n }, () => 0.1 * gaussian());
    weights.set(name, { dims: [n], data });
    return name;
  };

  let x = inputName;
  if (spec.input.layout === 'NHWC') {
    nodes.push(node('Transpose', [x], ['nchw'], { perm: [0, 3, 1, 2] }));
    x = 'nchw';
  }
  let shape: [number, number, number] = [3, H, W];

  const add = (layer: LayerSpec, from: string): string => {
    const [c, h, w] = shape;
    if (layer.op === 'conv') {
      const { out, kernel: k, stride = 1, pad = Math.floor(k / 2), groups = 1, relu = true } = layer;
      const id = fresh('conv');
      const Wn = weight(`${id}.weight`, [out, c / groups, k, k], (c / groups) * k * k);
      const Bn = bias(`${id}.bias`, out);
      nodes.push(node('Conv', [from, Wn, Bn], [id], { kernel_shape: [k, k], strides: [stride, stride], pads: [pad, pad, pad, pad], group: groups }));
      shape = [out, Math.floor((h + 2 * pad - k) / stride) + 1, Math.floor((w + 2 * pad - k) / stride) + 1];
      if (!relu) return id;
      nodes.push(node('Relu', [id], [`${id}.relu`]));
      return `${id}.relu`;
    }
    if (layer.op === 'residual') {
      const before = shape;
      let y = from;
      for (const l of layer.layers) y = add(l, y);
      if (shape.join() !== before.join()) throw new RangeError(`residual: expected its layers to keep the shape [${before}], they give [${shape}]`);
      const id = fresh('res');
      nodes.push(node('Add', [from, y], [id]), node('Relu', [id], [`${id}.relu`]));
      return `${id}.relu`;
    }
    if (layer.op === 'maxpool') {
      const { kernel: k, stride, pad = 0 } = layer;
      const id = fresh('pool');
      nodes.push(node('MaxPool', [from], [id], { kernel_shape: [k, k], strides: [stride, stride], pads: [pad, pad, pad, pad] }));
      shape = [c, Math.floor((h + 2 * pad - k) / stride) + 1, Math.floor((w + 2 * pad - k) / stride) + 1];
      return id;
    }
    nodes.push(node('GlobalAveragePool', [from], ['pool']));
    shape = [c, 1, 1];
    return 'pool';
  };
  for (const layer of spec.layers) x = add(layer, x);

  let dim = shape[0];
  const head = spec.head;
  const proj = spec.projection;
  let embedding = x;
  let logits: string | undefined;
  if ((head || proj) && x !== 'pool') throw new RangeError(`head, projection: expected the layers to end with { op: 'gap' }, they end with '${x}'`);
  if (proj && head?.op === 'conv') throw new RangeError("head: a 1x1 Conv head reads the pooled tensor, so it cannot follow a projection");
  if (proj) {
    const P = proj.out;
    if (proj.op === 'gemm') {
      nodes.push(node('Flatten', ['pool'], ['features']));
      weight('proj.weight', [P, dim], dim);
      nodes.push(node('Gemm', ['features', 'proj.weight', bias('proj.bias', P)], ['embedding'], { transB: 1 }));
    } else {
      weight('proj.weight', [P, dim, 1, 1], dim);
      nodes.push(node('Conv', ['pool', 'proj.weight', bias('proj.bias', P)], ['proj'], { kernel_shape: [1, 1] }));
      nodes.push(node('Flatten', ['proj'], ['embedding']), node('Flatten', ['pool'], ['features']));
    }
    embedding = 'embedding';
    dim = P;
  } else if (x === 'pool' && head?.op !== 'conv') {
    nodes.push(node('Flatten', ['pool'], ['embedding']));
    embedding = 'embedding';
  }
  if (head) {
    const C = head.classes;
    if (head.op === 'conv') {
      weight('fc.weight', [C, dim, 1, 1], dim);
      nodes.push(node('Conv', ['pool', 'fc.weight', bias('fc.bias', C)], ['logits_map'], { kernel_shape: [1, 1] }));
      nodes.push(node('Flatten', ['logits_map'], ['logits']));
    } else if (head.op === 'matmul') {
      weight('fc.weight', [dim, C], dim);
      nodes.push(node('MatMul', ['embedding', 'fc.weight'], ['fc.mm']), node('Add', ['fc.mm', bias('fc.bias', C)], ['logits']));
    } else {
      weight('fc.weight', [C, dim], dim);
      nodes.push(node('Gemm', ['embedding', 'fc.weight', bias('fc.bias', C)], ['logits'], { transB: 1 }));
    }
    logits = 'logits';
    if (head.softmax) nodes.push(node('Softmax', ['logits'], ['prob'], { axis: 1 }));
  }
  const last = head?.softmax ? 'prob' : (logits ?? embedding);
  const embeddingDim = embedding === 'embedding' || embedding === 'pool' ? dim : shape.reduce((a, b) => a * b, 1);
  const outDims: Record<string, (number | null)[]> = {
    embedding: [null, embeddingDim], features: [null, shape[0]], logits: [null, head?.classes ?? 0], prob: [null, head?.classes ?? 0],
  };
  const outputs = spec.outputs ?? [last];
  for (const o of outputs) if (!nodes.some((n) => n.output?.includes(o))) throw new RangeError(`outputs: '${o}' is not computed by this network`);
  const inDims = spec.input.layout === 'NHWC' ? [null, H, W, 3] : [null, 3, H, W];
  const graph: OnnxGraph = {
    name: 'convnet',
    node: nodes,
    initializer: [...weights].map(([name, w]) => floatTensor(name, w.dims, w.data)),
    input: [valueInfo(inputName, inDims)],
    output: outputs.map((o) => valueInfo(o, outDims[o] ?? [null, ...shape])),
  };
  return { model: model(graph), weights, embedding, logits, output: outputs[0], embeddingDim };
}

/** A small random network (one strided conv, pooled to 8 dims, a classifier head) and its embedding card in `dir`; returns the card's path. */
export function writeSmallCard(dir: string, name: string, input: Omit<ModelCard['input'], 'name'>, rng: () => number, classes = 3): string {
  const net = convNet({
    input: { size: input.size, layout: input.layout },
    layers: [{ op: 'conv', out: 8, kernel: 3, stride: 2 }, { op: 'gap' }],
    head: { classes, op: 'gemm' },
    rng: makeRng((rng() * 2 ** 32) >>> 0),
  });
  writeModel(path.join(dir, `${name}.onnx`), net.model);
  const card: ModelCard = { id: name, onnx: `${name}.onnx`, input: { name: 'input', ...input }, embedding: { tensor: 'embedding', dim: 8 } };
  const file = path.join(dir, `${name}.json`);
  fs.writeFileSync(file, JSON.stringify(card));
  return file;
}
