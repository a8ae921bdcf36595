// One model ready to run, in two steps: prepared (from a model handle: the card already checked
// against its graph, so a card that does not match its model fails before any image is read), then opened (the embedding and
// logits exposed as outputs by graph surgery, an ONNX Runtime session on the chosen provider, the
// output sizes verified by a probe run).
import { assertInteger, fail } from '../core/validate';
import type { Head } from '../estimators/weights';
import type { InputSpec } from '../images/types';
import { type ModelHandle, modelHandle } from '../models/handle';
import type { LoadedCard } from '../models/load';
import { type GraphIndex, withOutputs } from '../onnx/graph';
import { findHead, readHead } from '../onnx/head';
import { encodeModel } from '../onnx/proto';
import { type Ort, openSession, ort, probeOutputDims } from '../onnx/runtime';
import type { Provider, RuntimeOptions } from '../onnx/session-options';

export interface RunResult {
  /** n x embedding dim, row-major. */
  embeddings: Float32Array;
  /** n x classes, when the runner was opened with logits. */
  logits?: Float32Array;
}

/**
 * A model read and checked against its card, before any session exists: enough to fingerprint a
 * checkpoint and start decoding images while the session is being created.
 */
export class PreparedModel {
  readonly handle: ModelHandle;
  readonly embeddingDim: number;
  /** Set when logits are fetched. */
  readonly classes?: number;
  /** The graph's fixed batch size, when it declares one (e.g. 1): batches are run in pieces of it. */
  readonly fixedBatch?: number;
  /** Tensors fetched per run: the embedding, then the logits when requested. */
  readonly fetches: string[];

  private constructor(handle: ModelHandle, logits: boolean) {
    const { card } = handle.loaded;
    this.handle = handle;
    this.embeddingDim = card.embedding.dim;
    if (logits) this.classes = card.logits!.classes;
    const batchDim = handle.index.shapeOf(card.input.name)?.[0];
    if (typeof batchDim === 'number' && batchDim > 0) this.fixedBatch = batchDim;
    this.fetches = [card.embedding.tensor, ...(logits ? [card.logits!.tensor] : [])];
  }

  /** A handle (or a loaded card, whose model is then read and checked); `logits` requires the card to name them. */
  static prepare(model: ModelHandle | LoadedCard, options: { logits?: boolean } = {}): PreparedModel {
    const handle = 'sha256' in model ? model : modelHandle(model);
    const { loaded } = handle;
    if (options.logits && !loaded.card.logits) {
      throw new RangeError(`${loaded.source}: logits: expected the card to name a logits tensor (logits.tensor) since logits were requested, found none`);
    }
    return new PreparedModel(handle, !!options.logits);
  }

  get loaded(): LoadedCard {
    return this.handle.loaded;
  }

  get sha256(): string {
    return this.handle.sha256;
  }

  get index(): GraphIndex {
    return this.handle.index;
  }

  get spec(): InputSpec {
    const { name: _name, ...spec } = this.loaded.card.input;
    return spec;
  }

  /**
   * The classifier head (W: classes x dim, c) for WeightsEstimator.fitHeads: the card's logits.head,
   * else the head found in the graph before the card's logits tensor; undefined without logits or
   * when the graph has no readable head.
   */
  head(): Head | undefined {
    const logits = this.loaded.card.logits;
    if (!logits) return undefined;
    if (logits.head) return readHead(this.index, logits.head);
    const found = findHead(this.index, logits.tensor);
    return 'reason' in found ? undefined : readHead(this.index, found);
  }

  /** Creates the session (fetched tensors exposed as outputs) and verifies the output sizes with a probe run. */
  open(options: RuntimeOptions = {}): Promise<ModelRunner> {
    return ModelRunner.open(this, options);
  }
}

export class ModelRunner {
  readonly prepared: PreparedModel;
  readonly provider: Provider;
  /** Why CUDA was not used, when device 'auto' fell back to the CPU. */
  readonly fallback?: string;
  private readonly session: Ort.InferenceSession;

  // Private: its session type would make runner.d.ts need onnxruntime-node (an optional peer dependency).
  private constructor(prepared: PreparedModel, session: Ort.InferenceSession, provider: Provider, fallback?: string) {
    this.prepared = prepared;
    this.session = session;
    this.provider = provider;
    if (fallback) this.fallback = fallback;
  }

  /**
   * Opens a prepared model, or prepares one first (`logits` then fetches the card's logits tensor
   * too, an error when the card has none): creates the session (fetched tensors exposed as outputs)
   * and verifies the output sizes with a probe run. A prepared model has chosen its fetches: a
   * `logits` that contradicts it is an error, not ignored.
   */
  static async open(model: PreparedModel | ModelHandle | LoadedCard, options: RuntimeOptions & { logits?: boolean } = {}): Promise<ModelRunner> {
    if (model instanceof PreparedModel && options.logits !== undefined && options.logits !== (model.classes !== undefined)) {
      throw new RangeError(`options.logits: the model was prepared ${model.classes !== undefined ? 'with' : 'without'} logits, received ${options.logits}: prepare it with { logits: ${options.logits} } instead`);
    }
    const prepared = model instanceof PreparedModel ? model : PreparedModel.prepare(model, options);
    const { loaded, fetches } = prepared;
    const { card, onnxPath } = loaded;
    const { session, provider, fallback } = await openSession(encodeModel(withOutputs(prepared.handle.model, fetches, onnxPath)), onnxPath, options);
    try {
      const [h, w] = card.input.size;
      const batch = prepared.fixedBatch ?? 1;
      const got = await probeOutputDims(session, card.input.name, card.input.layout === 'NCHW' ? [batch, 3, h, w] : [batch, h, w, 3], fetches);
      const perImage = (dims: number[]) => dims.slice(1).reduce((a, b) => a * b, 1);
      const describeDims = (dims: number[]) => `dims [${dims}] for a batch of ${batch}`;
      if (got[0][0] !== batch || perImage(got[0]) !== card.embedding.dim) {
        throw new RangeError(`${loaded.source}: embedding: the card says '${card.embedding.tensor}' has dim ${card.embedding.dim} per image, the model gives ${describeDims(got[0])}`);
      }
      if (prepared.classes !== undefined && (got[1][0] !== batch || perImage(got[1]) !== prepared.classes)) {
        throw new RangeError(`${loaded.source}: logits: the card says '${card.logits!.tensor}' has ${prepared.classes} classes, the model gives ${describeDims(got[1])}`);
      }
      return new ModelRunner(prepared, session, provider, fallback);
    } catch (err) {
      await session.release();
      throw err;
    }
  }

  get loaded(): LoadedCard {
    return this.prepared.loaded;
  }

  get embeddingDim(): number {
    return this.prepared.embeddingDim;
  }

  get classes(): number | undefined {
    return this.prepared.classes;
  }

  get fixedBatch(): number | undefined {
    return this.prepared.fixedBatch;
  }

  get spec(): InputSpec {
    return this.prepared.spec;
  }

  /**
   * Runs the first n images of `input` (n x input size, in the card's layout). The tensor is a view
   * of `input`, not a copy, except for the zero-padded tail when the graph's batch size is fixed.
   */
  async run(input: Float32Array, n: number): Promise<RunResult> {
    const { card } = this.loaded;
    const per = 3 * card.input.size[0] * card.input.size[1];
    assertInteger('n', n, 1);
    if (!(input instanceof Float32Array)) fail(TypeError, 'input', 'a Float32Array', input);
    if (input.length < n * per) throw new RangeError(`input: expected at least ${n} x ${per} values, received ${input.length}`);
    const step = this.fixedBatch ?? n;
    if (step === n) {
      // One run: the outputs are already n rows each.
      const out = await this.session.run({ [card.input.name]: this.tensor(input.subarray(0, n * per), n) }, this.prepared.fetches);
      return {
        embeddings: floatData(out[this.prepared.fetches[0]], n * this.embeddingDim),
        ...(this.classes !== undefined ? { logits: floatData(out[this.prepared.fetches[1]], n * this.classes) } : {}),
      };
    }
    // A fixed batch size: pieces of it, the tail zero-padded, outputs gathered.
    const embeddings = new Float32Array(n * this.embeddingDim);
    const logits = this.classes !== undefined ? new Float32Array(n * this.classes) : undefined;
    for (let start = 0; start < n; start += step) {
      const m = Math.min(step, n - start);
      let data = input.subarray(start * per, (start + m) * per);
      if (m < step) {
        const padded = new Float32Array(step * per);
        padded.set(data);
        data = padded;
      }
      const out = await this.session.run({ [card.input.name]: this.tensor(data, step) }, this.prepared.fetches);
      embeddings.set(floatData(out[this.prepared.fetches[0]], m * this.embeddingDim), start * this.embeddingDim);
      if (logits) logits.set(floatData(out[this.prepared.fetches[1]], m * this.classes!), start * this.classes!);
    }
    return logits ? { embeddings, logits } : { embeddings };
  }

  private tensor(data: Float32Array, n: number): Ort.Tensor {
    const [h, w] = this.loaded.card.input.size;
    return new (ort().Tensor)('float32', data, this.loaded.card.input.layout === 'NCHW' ? [n, 3, h, w] : [n, h, w, 3]);
  }

  async close(): Promise<void> {
    await this.session.release();
  }
}

/** The first `count` values of a float32 output (a view). */
function floatData(t: Ort.Tensor, count: number): Float32Array {
  if (t.type !== 'float32') throw new TypeError(`output: expected float32 values, the model gives ${t.type}`);
  return (t.data as Float32Array).subarray(0, count);
}

