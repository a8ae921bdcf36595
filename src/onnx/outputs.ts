// What a graph's outputs are: class scores (by structure: a Softmax, or a linear layer to more
// classes than its input has dimensions), an embedding (anything not computed by a bare linear
// layer), or undecidable (a bare linear layer to fewer dimensions: an embedding projection such as
// MobileFaceNet's 1x1 convolution 512 -> 128 and a classifier without Softmax look the same). The
// embedding is settled only when exactly one candidate remains; a role ('classifier' or
// 'embedding', e.g. from a preset), a named tensor, or a Softmax reading the output settles the
// undecidable case. Never "the last layer".
import { GraphIndex } from './graph';
import { type HeadLocation, findHead, logitsBeforeSoftmax } from './head';

export type Role = 'classifier' | 'embedding';

export interface EmbeddingCandidate {
  tensor: string;
  /** Values per image, where the graph declares them. */
  dim?: number;
  /** Why it is a candidate, in words. */
  why: string;
}

export interface OutputReading {
  output: string;
  /** 'class scores': a classifier; 'embedding': a candidate as is; 'linear': undecidable without a role or a named tensor. */
  kind: 'class scores' | 'embedding' | 'linear' | 'not an image vector';
  why: string;
  /** The head computing the scores or the linear output. */
  head?: HeadLocation;
}

export interface OutputAnalysis {
  readings: OutputReading[];
  candidates: EmbeddingCandidate[];
  /** Set when exactly one candidate remains. */
  embedding?: EmbeddingCandidate;
  /** The classifier whose head reads the settled embedding, if any. */
  logits?: { tensor: string; classes: number; head: { weight: string; bias?: string; transposed: boolean } };
  /** Why nothing was settled (several or no candidates). */
  unsettled?: string;
}

const RESHAPES = new Set(['Identity', 'Flatten', 'Reshape', 'Squeeze']);
const SOFTMAX = new Set(['Softmax', 'LogSoftmax']);

/** The tensor `name` is a reshape of (itself when computed otherwise): candidates are compared by it. */
function base(index: GraphIndex, name: string): string {
  let t = name;
  for (let p = index.producer(t); p && RESHAPES.has(p.opType ?? ''); p = index.producer(t)) t = p.input![0];
  return t;
}

function perImage(index: GraphIndex, tensor: string): number | undefined {
  const shape = index.shapeOf(tensor);
  if (!shape || shape.length < 2 || shape.slice(1).some((d) => typeof d !== 'number')) return undefined;
  return (shape.slice(1) as number[]).reduce((a, b) => a * b, 1);
}

/**
 * Reads every output of the graph; `role` decides bare linear outputs (see the file comment). With
 * `embedding` named, that tensor is the embedding and the classifier reading it (if any) the logits.
 */
export function analyseOutputs(index: GraphIndex, options: { role?: Role; embedding?: string } = {}): OutputAnalysis {
  const { role, embedding: named } = options;
  const outputs = index.outputNames().filter(Boolean);
  const readings: OutputReading[] = [];
  const found: (EmbeddingCandidate & { from?: HeadLocation })[] = [];
  const add = (c: EmbeddingCandidate & { from?: HeadLocation }) => {
    if (!found.some((f) => base(index, f.tensor) === base(index, c.tensor))) found.push(c);
  };
  for (const output of outputs) {
    const shape = index.shapeOf(output);
    if (shape && !(shape.length === 2 || (shape.length === 4 && shape[2] === 1 && shape[3] === 1))) {
      readings.push({ output, kind: 'not an image vector', why: `declared [${shape.map((d) => d ?? '?')}]: not one vector per image` });
      continue;
    }
    const logits = logitsBeforeSoftmax(index, output);
    const head = findHead(index, logits);
    const linear = 'reason' in head ? undefined : head;
    const size = linear ? `${linear.op} ${linear.dim} -> ${linear.classes}` : '';
    const asClassifier = (why: string) => {
      readings.push({ output, kind: 'class scores', why, ...(linear ? { head: linear } : {}) });
      if (linear) add({ tensor: linear.embedding, dim: linear.dim, why: `the input of the classifier ${size} computing '${output}'`, from: linear });
    };
    if (logits !== output) {
      asClassifier(`a ${index.producer(output)!.opType} over '${logits}'${linear ? ` (${size})` : ''}: class probabilities`);
    } else if (linear && linear.classes > linear.dim) {
      asClassifier(`${size}: more outputs than inputs, so not an embedding projection: class scores`);
    } else if (linear && named !== undefined && base(index, named) === base(index, linear.embedding)) {
      asClassifier(`${size}, read as a classifier: its input is the embedding named`);
    } else if (linear && index.consumers(output).some((n) => SOFTMAX.has(n.opType ?? ''))) {
      asClassifier(`${size}, followed by a ${index.consumers(output).find((n) => SOFTMAX.has(n.opType ?? ''))!.opType}: class scores`);
    } else if (linear && role === 'classifier') {
      asClassifier(`${size}, read as a classifier: the preset describes a classifier`);
    } else if (linear && role !== 'embedding') {
      readings.push({ output, kind: 'linear', why: `${size} with nothing after it: an embedding projection or a classifier without Softmax`, head: linear });
      add({ tensor: output, dim: perImage(index, output) ?? linear.classes, why: `the output of ${size}, if it is an embedding projection` });
      add({ tensor: linear.embedding, dim: linear.dim, why: `the input of ${size}, if it is a classifier` });
    } else {
      const why = linear ? `${size}, read as an embedding projection (the preset describes an embedding network)` : 'not computed by a linear layer to class scores';
      readings.push({ output, kind: 'embedding', why });
      add({ tensor: output, dim: perImage(index, output) ?? linear?.classes, why: `graph output: ${why}` });
    }
  }
  if (named !== undefined) {
    index.assertTensor('embedding.tensor', named);
    const dim = perImage(index, named);
    found.splice(0, found.length, { tensor: named, ...(dim !== undefined ? { dim } : {}), why: 'named by the user' });
  }
  const candidates = found.map(({ from: _from, ...c }) => (c.dim === undefined ? { tensor: c.tensor, why: c.why } : c));
  if (found.length !== 1) {
    const unsettled = found.length === 0
      ? `no output of the graph is an embedding candidate (${readings.map((r) => `'${r.output}': ${r.why}`).join('; ') || 'no outputs'})`
      : `${found.length} candidate embedding tensors: ${found.map((c) => `'${c.tensor}' (${c.why})`).join('; ')}`;
    return { readings, candidates, unsettled };
  }
  const [only] = found;
  const result: OutputAnalysis = { readings, candidates, embedding: candidates[0] };
  const scores = readings.find((r) => r.kind === 'class scores' && r.head && base(index, r.head.embedding) === base(index, only.tensor));
  if (scores?.head) {
    const h = scores.head;
    result.logits = { tensor: h.logits, classes: h.classes, head: { weight: h.weight, transposed: h.transposed, ...(h.bias ? { bias: h.bias } : {}) } };
  }
  return result;
}
