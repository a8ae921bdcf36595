// Graph lookups and surgery over a decoded ONNX model: who produces and consumes a tensor, what
// shape a tensor is declared with, weights (initializers, Constants, DequantizeLinear of int8/uint8
// initializers) as float32, and a copy of the model with intermediate tensors exposed as outputs.
import { type FloatTensor, dimsOf, tensorToFloat32, toInt } from './tensor';
import { onnxSchema } from './proto';
import type { OnnxGraph, OnnxModel, OnnxNode, OnnxTensor, OnnxValueInfo } from './types';

export type Dim = number | string | null;

/** A tensor name that is not in the graph; the message lists the names that are. */
export class UnknownTensorError extends RangeError {
  readonly tensor: string;
  readonly candidates: string[];

  constructor(where: string, what: string, tensor: string, candidates: string[], outputs: string[]) {
    const list = (names: string[]) => names.map((n) => `'${n}'`).join(', ');
    // Small graphs: every name; large ones: the nearest few and the graph outputs.
    const known = candidates.length <= 20
      ? `the graph's tensors are ${list(candidates)}`
      : `closest names: ${list(closest(tensor, candidates, 8))}; graph outputs: ${list(outputs)}; ${candidates.length} tensors in all`;
    super(`${where}: ${what}: expected a tensor of the graph, received '${tensor}'; ${known}`);
    this.name = 'UnknownTensorError';
    this.tensor = tensor;
    this.candidates = candidates;
  }
}

export class GraphIndex {
  readonly graph: OnnxGraph;
  /** Names errors with, e.g. the model's path. */
  readonly where: string;
  private readonly producers = new Map<string, OnnxNode>();
  private readonly consumerMap = new Map<string, OnnxNode[]>();
  private readonly initializers = new Map<string, OnnxTensor>();
  private readonly declared = new Map<string, OnnxValueInfo>();

  constructor(graph: OnnxGraph | null | undefined, where: string) {
    if (!graph) throw new RangeError(`${where}: expected an ONNX model with a graph, found none`);
    this.graph = graph;
    this.where = where;
    for (const t of graph.initializer ?? []) if (t.name) this.initializers.set(t.name, t);
    for (const v of [...(graph.input ?? []), ...(graph.valueInfo ?? []), ...(graph.output ?? [])]) {
      if (v.name) this.declared.set(v.name, v);
    }
    for (const n of graph.node ?? []) {
      for (const o of n.output ?? []) if (o) this.producers.set(o, n);
      for (const i of n.input ?? []) {
        if (!i) continue;
        const list = this.consumerMap.get(i);
        if (list) list.push(n);
        else this.consumerMap.set(i, [n]);
      }
    }
  }

  producer(name: string): OnnxNode | undefined {
    return this.producers.get(name);
  }

  consumers(name: string): OnnxNode[] {
    return this.consumerMap.get(name) ?? [];
  }

  initializer(name: string): OnnxTensor | undefined {
    return this.initializers.get(name);
  }

  /** Graph inputs that are real inputs, not initializers listed as inputs (IR < 4 style). */
  inputs(): OnnxValueInfo[] {
    return (this.graph.input ?? []).filter((v) => v.name && !this.initializers.has(v.name));
  }

  outputNames(): string[] {
    return (this.graph.output ?? []).map((v) => v.name ?? '');
  }

  /** Every activation the graph computes or takes: real inputs, then node outputs in graph order. */
  tensorNames(): string[] {
    const names = this.inputs().map((v) => v.name!);
    for (const n of this.graph.node ?? []) for (const o of n.output ?? []) if (o) names.push(o);
    return names;
  }

  has(name: string): boolean {
    return this.producers.has(name) || this.initializers.has(name) || this.inputs().some((v) => v.name === name);
  }

  /** Throws UnknownTensorError (listing the names that exist) unless `name` is a tensor of the graph. */
  assertTensor(what: string, name: string): void {
    if (!this.has(name)) throw new UnknownTensorError(this.where, what, name, this.tensorNames(), this.outputNames());
  }

  /** Declared shape (graph input/output/value_info, or an initializer's dims); undefined when not declared. */
  shapeOf(name: string): Dim[] | undefined {
    const init = this.initializers.get(name);
    if (init) return dimsOf(init);
    const dims = this.declared.get(name)?.type?.tensorType?.shape?.dim;
    if (!dims) return undefined;
    return dims.map((d) => (d.dimValue !== undefined && d.dimValue !== null ? toInt(d.dimValue) : d.dimParam || null));
  }

  elemTypeOf(name: string): number | undefined {
    return this.initializers.get(name)?.dataType ?? this.declared.get(name)?.type?.tensorType?.elemType ?? undefined;
  }

  /**
   * A constant tensor as float32: an initializer, a Constant node's value, or DequantizeLinear over
   * such constants ((x - zero_point) * scale, per tensor or per axis), through Identity and Cast.
   */
  readWeight(name: string): FloatTensor {
    const where = `${this.where}: weight '${name}'`;
    const init = this.initializers.get(name);
    if (init) return { name, dims: dimsOf(init), data: tensorToFloat32(init, where) };
    const node = this.producers.get(name);
    if (!node) throw new UnknownTensorError(this.where, 'weight', name, [...this.initializers.keys()], this.outputNames());
    const input = (k: number) => node.input?.[k] ?? '';
    switch (node.opType) {
      case 'Constant': {
        const value = node.attribute?.find((a) => a.name === 'value')?.t;
        if (!value) throw new TypeError(`${where}: expected a Constant with a tensor 'value', found ${node.attribute?.map((a) => a.name).join(', ')}`);
        return { name, dims: dimsOf(value), data: tensorToFloat32(value, where) };
      }
      case 'Identity':
      case 'Cast':
        return { ...this.readWeight(input(0)), name };
      case 'DequantizeLinear':
        return { name, ...this.dequantize(node, where) };
      default:
        throw new TypeError(`${where}: expected an initializer, a Constant or DequantizeLinear of one, found the output of ${node.opType} node '${node.name}'`);
    }
  }

  private dequantize(node: OnnxNode, where: string): { dims: number[]; data: Float32Array } {
    const [xName, scaleName, zpName] = node.input ?? [];
    const x = this.readWeight(xName);
    const scale = this.readWeight(scaleName);
    const zp = zpName ? this.readWeight(zpName) : undefined;
    const rank = x.dims.length;
    let axis = toInt(node.attribute?.find((a) => a.name === 'axis')?.i ?? 1);
    if (axis < 0) axis += rank;
    const perAxis = scale.data.length > 1;
    if (perAxis && (scale.dims.length !== 1 || x.dims[axis] !== scale.data.length)) {
      throw new RangeError(`${where}: expected a scalar scale or one per index of axis ${axis} (${x.dims[axis]}), found scale dims [${scale.dims}] (blocked quantisation is not supported)`);
    }
    if (zp && zp.data.length !== scale.data.length) {
      throw new RangeError(`${where}: expected zero_point to match scale's ${scale.data.length} value(s), found ${zp.data.length}`);
    }
    // Per-axis: index along `axis` of flat position i is floor(i / inner) % dims[axis].
    const inner = x.dims.slice(axis + 1).reduce((a, b) => a * b, 1);
    const n = perAxis ? x.dims[axis] : 1;
    const out = new Float32Array(x.data.length);
    for (let i = 0; i < out.length; i++) {
      const k = perAxis ? Math.floor(i / inner) % n : 0;
      out[i] = (x.data[i] - (zp ? zp.data[k] : 0)) * scale.data[k];
    }
    return { dims: x.dims, data: out };
  }
}

/**
 * A copy of `model` whose graph also outputs `names` (intermediate tensors, e.g. an embedding taken
 * before the classifier). Names already among the outputs are kept once; the input model is not changed.
 */
export function withOutputs(model: OnnxModel, names: readonly string[], where = 'model'): OnnxModel {
  const index = new GraphIndex(model.graph, where);
  const outputs = [...(model.graph!.output ?? [])];
  for (const name of names) {
    if (outputs.some((o) => o.name === name)) continue;
    index.assertTensor('output', name);
    // The element type is required; the shape may be left to ONNX Runtime's inference.
    const declared = index.elemTypeOf(name);
    outputs.push({ name, type: { tensorType: { elemType: declared ?? onnxSchema().TensorProto.DataType.FLOAT } } });
  }
  return { ...model, graph: { ...model.graph, output: outputs } };
}

/** Up to `k` candidates nearest to `name` (edit distance, ties by graph order). */
function closest(name: string, candidates: string[], k: number): string[] {
  const lower = name.toLowerCase();
  return candidates
    .map((c, i) => ({ c, i, d: c.toLowerCase().includes(lower) ? 0 : editDistance(lower, c.toLowerCase()) }))
    .sort((a, b) => a.d - b.d || a.i - b.i)
    .slice(0, k)
    .map((x) => x.c);
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length];
}
