// The classifier head of a graph: the Gemm, MatMul(+Add) or 1x1 Conv over a pooled tensor that turns
// the embedding e into the logits W e + c. Found by walking back from the logits through the ops
// that only reshape (Flatten, Reshape, Squeeze, Identity), so W and c can be read from the weights.
import { Matrix } from '../core/matrix';
import type { Head } from '../estimators/weights';
import { GraphIndex } from './graph';
import { onnxSchema } from './proto';
import { toInt } from './tensor';
import type { OnnxNode } from './types';

/** Where the head sits in the graph; `weight`/`bias`/`transposed` are what a ModelCard's logits.head stores. */
export interface HeadLocation {
  /** The op computing the logits (before any reshape). */
  op: 'Gemm' | 'MatMul' | 'Conv';
  /** The tensor given as the logits (after the reshapes walked through). */
  logits: string;
  /** The head's input: the embedding it classifies. */
  embedding: string;
  /** W's tensor: classes x dim (or classes x dim x 1 x 1 for Conv), or dim x classes when transposed. */
  weight: string;
  bias?: string;
  transposed: boolean;
  classes: number;
  dim: number;
}

const RESHAPES = new Set(['Identity', 'Flatten', 'Reshape', 'Squeeze']);
const SOFTMAX = new Set(['Softmax', 'LogSoftmax']);
const POOLS = new Set(['GlobalAveragePool', 'GlobalMaxPool', 'ReduceMean', 'ReduceMax', 'AveragePool']);

/** The logits tensor an output is computed from: a (Log)Softmax output gives the Softmax's input. */
export function logitsBeforeSoftmax(index: GraphIndex, tensor: string): string {
  const p = index.producer(tensor);
  return p && SOFTMAX.has(p.opType ?? '') ? p.input![0] : tensor;
}

/**
 * Locates the head producing `logits`. Returns a reason instead when the graph does not have that
 * form (so callers can report why a card has no head rather than fail).
 */
export function findHead(index: GraphIndex, logits: string): HeadLocation | { reason: string } {
  index.assertTensor('logits', logits);
  let t = logits;
  let node = index.producer(t);
  while (node && RESHAPES.has(node.opType ?? '')) {
    t = node.input![0];
    node = index.producer(t);
  }
  if (!node) return { reason: `'${logits}' is not computed by a node` };
  const op = node.opType ?? '';
  const inputs = node.input ?? [];
  const weightDims = (name: string) => (isConstant(index, name) ? index.readWeight(name).dims : undefined);
  const attr = (name: string, fallback: number) => attrNumber(node!, name, fallback);

  if (op === 'Gemm') {
    const [a, b, c] = inputs;
    const dims = weightDims(b);
    if (attr('transA', 0) !== 0 || attr('alpha', 1) !== 1 || attr('beta', 1) !== 1) {
      return { reason: `Gemm '${node.name}' has transA, alpha or beta set; only W e + c heads are read` };
    }
    if (!dims || dims.length !== 2) return { reason: `Gemm '${node.name}': input B '${b}' is not a constant matrix` };
    const transposed = attr('transB', 0) === 0;
    const [classes, dim] = transposed ? [dims[1], dims[0]] : dims;
    const bias = c ? checkBias(index, c, classes) : undefined;
    if (typeof bias === 'object') return bias;
    return { op: 'Gemm', logits, embedding: a, weight: b, bias, transposed, classes, dim };
  }
  if (op === 'Add' || op === 'MatMul') {
    let bias: string | undefined;
    let mm = node;
    if (op === 'Add') {
      const k = inputs.findIndex((x) => index.producer(x)?.opType === 'MatMul' && !isConstant(index, x));
      if (k < 0) return { reason: `Add '${node.name}' is not fed by a MatMul` };
      bias = inputs[1 - k];
      mm = index.producer(inputs[k])!;
    }
    const [a, w] = mm.input ?? [];
    const dims = weightDims(w);
    if (!dims || dims.length !== 2) return { reason: `MatMul '${mm.name}': input B '${w}' is not a constant matrix` };
    const [dim, classes] = dims;
    if (bias !== undefined) {
      const checked = checkBias(index, bias, classes);
      if (typeof checked === 'object') return checked;
    }
    return { op: 'MatMul', logits, embedding: a, weight: w, bias, transposed: true, classes, dim };
  }
  if (op === 'Conv') {
    const [x, w, b] = inputs;
    const dims = weightDims(w);
    if (!dims || dims.length !== 4 || dims[2] !== 1 || dims[3] !== 1 || attr('group', 1) !== 1) {
      return { reason: `Conv '${node.name}' is not a 1x1 convolution with constant weights` };
    }
    const shape = index.shapeOf(x);
    const pooled = POOLS.has(index.producer(x)?.opType ?? '') || (shape?.length === 4 && shape[2] === 1 && shape[3] === 1);
    if (!pooled) return { reason: `Conv '${node.name}': its input '${x}' is not a pooled (N x C x 1 x 1) tensor` };
    const [classes, dim] = dims;
    const bias = b ? checkBias(index, b, classes) : undefined;
    if (typeof bias === 'object') return bias;
    return { op: 'Conv', logits, embedding: x, weight: w, bias, transposed: false, classes, dim };
  }
  return { reason: `'${t}' is computed by ${op} '${node.name}', not by Gemm, MatMul(+Add) or a 1x1 Conv` };
}

/**
 * Reads W (classes x dim) and c from the graph's weights. W's trailing dims are flattened (Conv
 * heads store classes x dim x 1 x 1); `transposed` means W is stored dim x classes.
 */
export function readHead(index: GraphIndex, spec: { weight: string; bias?: string; transposed?: boolean }): Head {
  const w = index.readWeight(spec.weight);
  const where = `${index.where}: head weight '${spec.weight}'`;
  let W: Matrix;
  if (spec.transposed) {
    if (w.dims.length !== 2) throw new RangeError(`${where}: expected a dim x classes matrix (transposed), found dims [${w.dims}]`);
    W = new Matrix(w.data, w.dims[0], w.dims[1]).transpose();
  } else {
    if (w.dims.length < 2) throw new RangeError(`${where}: expected classes x dim, found dims [${w.dims}]`);
    W = new Matrix(w.data, w.dims[0], w.data.length / w.dims[0]);
  }
  let c: Float32Array = new Float32Array(W.rows);
  if (spec.bias) {
    const b = index.readWeight(spec.bias);
    if (b.data.length !== W.rows) {
      throw new RangeError(`${index.where}: head bias '${spec.bias}': expected ${W.rows} values (one per class), found dims [${b.dims}]`);
    }
    c = b.data;
  }
  return { W, c };
}

function isConstant(index: GraphIndex, name: string): boolean {
  if (index.initializer(name)) return true;
  const op = index.producer(name)?.opType;
  return op === 'Constant' || op === 'DequantizeLinear' || ((op === 'Identity' || op === 'Cast') && isConstant(index, index.producer(name)!.input![0]));
}

function checkBias(index: GraphIndex, name: string, classes: number): string | { reason: string } {
  if (!isConstant(index, name)) return { reason: `bias '${name}' is not a constant` };
  const n = index.readWeight(name).data.length;
  return n === classes ? name : { reason: `bias '${name}' has ${n} values, expected ${classes} (one per class)` };
}

function attrNumber(node: OnnxNode, name: string, fallback: number): number {
  const a = node.attribute?.find((x) => x.name === name);
  if (!a) return fallback;
  return a.type === onnxSchema().AttributeProto.AttributeType.FLOAT ? (a.f ?? fallback) : toInt(a.i);
}
