// The estimator contract (after scikit-learn): hyper-parameters at construction, `fit` on
// paired rows (or `fitStats` on streaming statistics), fitted state kept apart in `fitted`,
// `transform` to apply. A fitted estimator turns into an immutable LinearMap for storage and
// serving.
import { Matrix, type DType } from '../core/matrix';
import { allFinite, assertBoolean, assertMatrix, assertOneOf } from '../core/validate';
import { Engine } from '../engine/engine';
import { STATS_PRECISIONS, SufficientStats, type StatsPrecision } from '../engine/stats';
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

  /** Refuses a non-finite result: the inputs were checked finite, so it can only be overflow. */
  protected setFitted(f: Fitted): this {
    const bad = ![f.weight.data, f.bias].every(allFinite);
    if (bad) {
      throw new RangeError(
        `${this.method}: the fitted map has non-finite values: the inputs are finite but scaled beyond what the ` +
          'solve can represent (overflow); rescale the inputs (e.g. divide each set by its largest absolute value)',
      );
    }
    this.state = f;
    return this;
  }

  /** Applies the fitted map: X (n x p) -> X . weight + bias, in X's dtype. */
  async transform<D extends DType>(X: Matrix<D>): Promise<Matrix<D>> {
    return this.toMap().applyBatch(X);
  }

  /** The parameters as the map file records them (a prior map by its provenance, not its values). */
  protected recordedParams(): Record<string, unknown> {
    return { ...(this.params as Record<string, unknown>) };
  }

  /** An immutable map for storage and serving. */
  toMap(metadata: Partial<MapMetadata> = {}): LinearMap {
    const f = this.fitted;
    return LinearMap.create(f.weight, f.bias, {
      ...metadata,
      estimator: this.method,
      params: this.recordedParams(),
      pairs: f.info.pairs,
      diagnostics: { ...(metadata.diagnostics ?? {}), ...f.info },
    });
  }
}

export interface PairedParams {
  /** Fit an intercept (bias) by centring both sides; default true. */
  intercept?: boolean;
  /** Products behind the statistics: 'float64' (default, accurate) or 'float32' (opt-in speed, see docs/MAPS.md). */
  precision?: StatsPrecision;
}

/** Estimators fitted on paired rows: everything but `weights`. */
export abstract class PairedEstimator<P extends PairedParams = PairedParams> extends Estimator<P> {
  protected constructor(params: P, opts?: EstimatorOptions) {
    if (params.intercept !== undefined) assertBoolean('intercept', params.intercept);
    if (params.precision !== undefined) assertOneOf('precision', params.precision, STATS_PRECISIONS);
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
    const stats = new SufficientStats(X.cols, Y.cols, { engine: this.engine, precision: this.params.precision });
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
