// The estimator contract (after scikit-learn): hyper-parameters at construction, `fit` on
// paired rows (or `fitStats` on streaming statistics), fitted state kept apart in `fitted`,
// `transform` to apply. A fitted estimator turns into an immutable LinearMap for storage and
// serving.
import { Matrix, type DType } from '../core/matrix';
import { assertBoolean, assertMatrix } from '../core/validate';
import { Engine } from '../engine/engine';
import { SufficientStats } from '../engine/stats';
import { LinearMap, type MapMetadata } from '../maps/linear-map';

export type EstimatorName = 'lstsq' | 'ridge' | 'procrustes' | 'lowrank' | 'weights';

/** What a fit found out, stored with the map. */
export interface FitInfo {
  pairs: number;
  rank?: number;
  rankDeficient?: boolean;
  solver?: string;
  [key: string]: unknown;
}

export interface Fitted {
  /** p x q: y = x . weight + bias. */
  weight: Matrix<'float64'>;
  bias: Float64Array;
  info: FitInfo;
}

export interface EstimatorOptions {
  engine?: Engine;
}

export abstract class Estimator<P extends object = object> {
  abstract readonly method: EstimatorName;
  readonly params: Readonly<P>;
  protected readonly engine: Engine;
  private state: Fitted | undefined;

  protected constructor(params: P, opts: EstimatorOptions = {}) {
    this.params = Object.freeze({ ...params });
    this.engine = opts.engine ?? Engine.get();
  }

  get isFitted(): boolean {
    return this.state !== undefined;
  }

  /** The fitted weight, bias and fit information; throws before fit. */
  get fitted(): Fitted {
    if (!this.state) throw new Error(`${this.method}: not fitted yet: call fit() first`);
    return this.state;
  }

  protected setFitted(f: Fitted): this {
    this.state = f;
    return this;
  }

  /** Applies the fitted map: X (n x p) -> X . weight + bias, in X's dtype. */
  async transform<D extends DType>(X: Matrix<D>): Promise<Matrix<D>> {
    return this.toMap().applyBatch(X);
  }

  /** An immutable map for storage and serving. */
  toMap(metadata: Partial<MapMetadata> = {}): LinearMap {
    const f = this.fitted;
    return LinearMap.create(f.weight, f.bias, {
      ...metadata,
      estimator: this.method,
      params: { ...(this.params as Record<string, unknown>) },
      pairs: f.info.pairs,
      diagnostics: { ...(metadata.diagnostics ?? {}), ...f.info },
    });
  }
}

export interface PairedParams {
  /** Fit an intercept (bias) by centring both sides; default true. */
  intercept?: boolean;
  /** float32 input: form products in float64 too (slower, no float32 rounding). */
  exactF64?: boolean;
}

/** Estimators fitted on paired rows: everything but `weights`. */
export abstract class PairedEstimator<P extends PairedParams = PairedParams> extends Estimator<P> {
  protected constructor(params: P, opts?: EstimatorOptions) {
    if (params.intercept !== undefined) assertBoolean('intercept', params.intercept);
    if (params.exactF64 !== undefined) assertBoolean('exactF64', params.exactF64);
    super(params, opts);
  }

  protected get intercept(): boolean {
    return this.params.intercept ?? true;
  }

  /** Fits on paired rows: row i of X (source space) and row i of Y (target space). */
  async fit(X: Matrix, Y: Matrix): Promise<this> {
    assertMatrix('X', X);
    assertMatrix('Y', Y);
    if (X.rows !== Y.rows) {
      throw new RangeError(`Y: expected ${X.rows} rows to pair with X's rows, received ${Y.rows}`);
    }
    if (X.rows < 1) throw new RangeError('X: expected at least one row of paired embeddings, received 0');
    if (Y.dtype !== X.dtype) Y = Y.astype(X.dtype);
    const stats = new SufficientStats(X.cols, Y.cols, { engine: this.engine, exactF64: this.params.exactF64 });
    await stats.update(X, Y);
    return this.fitStats(stats);
  }

  /** Fits from streaming statistics (chunks, shards, sets larger than memory). */
  async fitStats(stats: SufficientStats): Promise<this> {
    if (!(stats instanceof SufficientStats)) throw new TypeError('stats: expected SufficientStats');
    return this.setFitted(await this.solve(stats));
  }

  protected abstract solve(stats: SufficientStats): Promise<Fitted>;
}
