// LinearMap: a fitted map y = x . weight + bias, immutable once made (safe to share between
// requests and async callers), stored as .safetensors with the tensors `weight` (p x q) and
// `bias` (q) plus metadata. Readable from Python (see docs/MAPS.md).
import { Matrix, allocate, type DType, type FloatArray } from '../core/matrix';
import { assertDType, assertMatrix, fail } from '../core/validate';
import { Engine } from '../engine/engine';
import { readSafetensors, writeSafetensors } from '../io/safetensors';
import { FileFormatError } from '../io/binary';
import { keepNonFinite } from '../io/json';
import { VERSION } from '../version';

export const MAP_FORMAT = 'embmap-map/1';

export interface MapMetadata {
  source: { model: string; dim: number };
  target: { model: string; dim: number };
  estimator: string;
  params: Record<string, unknown>;
  pairs: number;
  diagnostics: Record<string, unknown>;
  library: string;
  created: string;
}

export interface CreateOptions {
  /** Storage and default compute dtype; float32 unless asked. */
  dtype?: DType;
  engine?: Engine;
}

export class LinearMap {
  readonly #weight: Matrix;
  readonly #bias: FloatArray;
  readonly #metadata: MapMetadata;
  readonly #engine: Engine;
  // The weights converted to the other dtype, made on first use (then never changed).
  #other: { weight: Matrix; bias: FloatArray } | undefined;

  private constructor(weight: Matrix, bias: FloatArray, metadata: MapMetadata, engine: Engine) {
    this.#weight = weight;
    this.#bias = bias;
    this.#metadata = metadata;
    this.#engine = engine;
  }

  /** Makes a map from float64 (or float32) weights; metadata defaults are filled in. */
  static create(
    weight: Matrix, bias: FloatArray, metadata: Partial<MapMetadata> = {}, opts: CreateOptions = {},
  ): LinearMap {
    assertMatrix('weight', weight);
    if (!(bias instanceof Float32Array || bias instanceof Float64Array)) fail(TypeError, 'bias', 'a Float32Array or Float64Array', bias);
    if (bias.length !== weight.cols) throw new RangeError(`bias: expected length ${weight.cols} (the weight's columns), received ${bias.length}`);
    const dtype = opts.dtype ?? 'float32';
    assertDType('dtype', dtype);
    assertFiniteMap('weight', weight.data, dtype);
    assertFiniteMap('bias', bias, dtype);
    const w = weight.astype(dtype);
    const b = new Matrix(Float64Array.from(bias), 1, bias.length).astype(dtype).data;
    const meta: MapMetadata = {
      source: { model: metadata.source?.model ?? 'unknown', dim: weight.rows },
      target: { model: metadata.target?.model ?? 'unknown', dim: weight.cols },
      estimator: metadata.estimator ?? 'unknown',
      params: metadata.params ?? {},
      pairs: metadata.pairs ?? 0,
      diagnostics: metadata.diagnostics ?? {},
      library: `embmap ${VERSION}`,
      created: metadata.created ?? new Date().toISOString(),
    };
    return new LinearMap(w, b, deepFreeze(structuredClone(meta)), opts.engine ?? Engine.get());
  }

  get p(): number {
    return this.#weight.rows;
  }
  get q(): number {
    return this.#weight.cols;
  }
  get dtype(): DType {
    return this.#weight.dtype;
  }
  get metadata(): Readonly<MapMetadata> {
    return this.#metadata;
  }

  /** Copies of the weight (p x q) and bias (q). */
  weight(): Matrix {
    return this.#weight.clone();
  }
  bias(): FloatArray {
    return this.#bias.slice();
  }

  private parts(dtype: DType): { weight: Matrix; bias: FloatArray } {
    if (dtype === this.dtype) return { weight: this.#weight, bias: this.#bias };
    this.#other ??= {
      weight: this.#weight.astype(dtype),
      bias: new Matrix(this.#bias, 1, this.#bias.length).astype(dtype).data,
    };
    return this.#other;
  }

  /** One embedding, on the calling thread (microseconds). Returns the map's dtype unless the input is float64. */
  apply(vector: ArrayLike<number>): FloatArray {
    if (vector === null || typeof vector !== 'object' || typeof (vector as ArrayLike<number>).length !== 'number') {
      fail(TypeError, 'vector', `an array of ${this.p} numbers`, vector);
    }
    if (vector.length !== this.p) throw new RangeError(`vector: expected length ${this.p} (the map's source dimension), received ${vector.length}`);
    let x: FloatArray;
    if (vector instanceof Float32Array || vector instanceof Float64Array) {
      x = vector;
    } else {  // plain numbers: checked and copied once, into the map's own dtype
      x = allocate(this.dtype, this.p);
      for (let i = 0; i < this.p; i++) {
        const v = vector[i];
        if (typeof v !== 'number' || !Number.isFinite(v)) throw new RangeError(`vector: expected finite numbers, received ${v} at index ${i}`);
        x[i] = v;
      }
    }
    const X = new Matrix(x, 1, this.p);
    const { weight, bias } = this.parts(X.dtype);
    return this.#engine.gemmSync(X, weight, { bias }).data;
  }

  /** Many embeddings (rows of X) on the thread pool, in X's dtype. */
  async applyBatch<D extends DType>(X: Matrix<D>): Promise<Matrix<D>> {
    this.checkBatch(X);
    const { weight, bias } = this.parts(X.dtype);
    return this.#engine.gemm(X, weight as Matrix<D>, { bias });
  }

  applyBatchSync<D extends DType>(X: Matrix<D>): Matrix<D> {
    this.checkBatch(X);
    const { weight, bias } = this.parts(X.dtype);
    return this.#engine.gemmSync(X, weight as Matrix<D>, { bias });
  }

  private checkBatch(X: Matrix): void {
    assertMatrix('X', X);
    if (X.cols !== this.p) throw new RangeError(`X: expected ${this.p} columns (the map's source dimension), received ${X.rows}x${X.cols}`);
  }

  /** Writes the map atomically as .safetensors. */
  save(path: string): void {
    const m = this.#metadata;
    writeSafetensors(path, { weight: this.#weight, bias: this.#bias }, {
      format: MAP_FORMAT,
      source_model: m.source.model,
      source_dim: String(m.source.dim),
      target_model: m.target.model,
      target_dim: String(m.target.dim),
      estimator: m.estimator,
      params: JSON.stringify(m.params, keepNonFinite),
      pairs: String(m.pairs),
      diagnostics: JSON.stringify(m.diagnostics, keepNonFinite),
      library: m.library,
      created: m.created,
    });
  }

  static load(path: string, opts: { engine?: Engine } = {}): LinearMap {
    const file = readSafetensors(path);
    const bad = (what: string, got: string) => {
      throw new FileFormatError(path, `expected ${what}, found ${got}`);
    };
    const w = file.tensors.get('weight'), b = file.tensors.get('bias');
    if (!w || w.shape.length !== 2) bad('a 2-D tensor "weight" (p x q)', w ? `shape [${w.shape}]` : `tensors ${[...file.tensors.keys()].join(', ') || 'none'}`);
    if (!b || b.shape.length !== 1 || b.shape[0] !== w!.shape[1]) bad(`a 1-D tensor "bias" of length ${w!.shape[1]}`, b ? `shape [${b.shape}]` : 'none');
    if (b!.dtype !== w!.dtype) bad(`"bias" of dtype ${w!.dtype} like "weight"`, b!.dtype);
    const md = file.metadata;
    const json = (key: string): Record<string, unknown> => {
      try {
        return md[key] ? JSON.parse(md[key]) : {};
      } catch {
        return bad(`JSON in metadata "${key}"`, JSON.stringify(md[key].slice(0, 40)));
      }
    };
    const weight = new Matrix(w!.data, w!.shape[0], w!.shape[1]);
    for (const [name, t] of [['weight', w!], ['bias', b!]] as const) {
      const i = t.data.findIndex((v) => !Number.isFinite(v));
      if (i >= 0) bad(`finite values in "${name}"`, `${t.data[i]} at index ${i}: the map is unusable; refit it`);
    }
    const meta: MapMetadata = {
      source: { model: md.source_model ?? 'unknown', dim: weight.rows },
      target: { model: md.target_model ?? 'unknown', dim: weight.cols },
      estimator: md.estimator ?? 'unknown',
      params: json('params'),
      pairs: Number(md.pairs ?? 0),
      diagnostics: json('diagnostics'),
      library: md.library ?? 'unknown',
      created: md.created ?? 'unknown',
    };
    return new LinearMap(weight, b!.data, deepFreeze(meta), opts.engine ?? Engine.get());
  }
}

const FLOAT32_MAX = 3.4028234663852886e38;
// Below this float32 keeps fewer than 24 significant bits (subnormal).
const FLOAT32_MIN_NORMAL = 1.1754943508222875e-38;

/**
 * A map must be finite, and representable in its storage dtype: weights beyond float32's range
 * (inputs scaled to ~1e-25, say) would turn into infinities or lose their precision on saving.
 */
function assertFiniteMap(name: string, data: ArrayLike<number>, dtype: DType): void {
  let max = 0;
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (!Number.isFinite(v)) throw new RangeError(`${name}: expected finite values, received ${v} at index ${i}: the map is unusable`);
    max = Math.max(max, Math.abs(v));
  }
  if (dtype === 'float32' && (max > FLOAT32_MAX || (max > 0 && max < FLOAT32_MIN_NORMAL))) {
    throw new RangeError(
      `${name}: expected values within float32's range, received magnitudes up to ${max.toPrecision(3)}: ` +
        'the inputs are scaled beyond what a float32 map holds; rescale them (e.g. divide each set by its largest absolute value) or store the map as float64',
    );
  }
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object') {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}
