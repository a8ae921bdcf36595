// The paper's closed form for two classifiers over the same classes, no images needed:
// logits = W e + c (W: C x d). Mapping A's embedding x into B's space so that B's head gives
// A's logits: W_B y + c_B = W_A x + c_A, i.e. y = pinv(W_B) (W_A x + c_A - c_B).
//
// Softmax ignores a constant added to every logit, so the equation only needs to hold up to a
// multiple of the all-ones vector. We use that freedom by centring W and c over the classes
// first (subtracting the class mean of each column of W and the mean of c): the centred
// equation drops the component along 1 that W_B may not be able to produce, and the
// minimum-norm solution (SVD based) is the paper's pinv(W_B) W_A applied to centred heads.
import { Matrix, type FloatArray } from '../core/matrix';
import { assertBoolean, assertMatrix, fail } from '../core/validate';
import { FileFormatError } from '../io/binary';
import { readSafetensors } from '../io/safetensors';
import { Estimator, type EstimatorOptions } from './estimator';

export interface Head {
  /** C x d: logits = W e + c. */
  W: Matrix;
  /** C biases. */
  c: FloatArray;
}

export interface WeightsParams {
  /** Centre W and c over classes first (default true; see above). */
  centre?: boolean;
}

export class WeightsEstimator extends Estimator<WeightsParams> {
  readonly method = 'weights' as const;

  constructor(params: WeightsParams = {}, opts?: EstimatorOptions) {
    if (params.centre !== undefined) assertBoolean('centre', params.centre);
    super(params, opts);
  }

  /** Fits from A's and B's classifier heads (same classes, same order). */
  async fitHeads(headA: Head, headB: Head): Promise<this> {
    checkHead('headA', headA);
    checkHead('headB', headB);
    if (headA.W.rows !== headB.W.rows) {
      throw new RangeError(`headB: expected ${headA.W.rows} classes like headA, received ${headB.W.rows} (a weights map needs classifiers over the same classes)`);
    }
    const C = headA.W.rows, p = headA.W.cols, q = headB.W.cols;
    const centre = this.params.centre ?? true;
    const WB = centred(headB.W, centre);
    // Right-hand side [W_A | c_A - c_B], centred over classes.
    const R = Matrix.zeros(C, p + 1, 'float64');
    const WA = centred(headA.W, centre);
    const dc = Float64Array.from(headA.c, (v, i) => v - headB.c[i]);
    const mean = centre ? dc.reduce((a, b) => a + b, 0) / C : 0;
    for (let i = 0; i < C; i++) {
      R.data.set(WA.row(i), i * (p + 1));
      R.data[i * (p + 1) + p] = dc[i] - mean;
    }
    const { x, rank, rankDeficient } = await this.engine.lstsq(WB, R); // q x (p+1), minimum norm
    const weight = Matrix.zeros(p, q, 'float64');
    const bias = new Float64Array(q);
    for (let j = 0; j < q; j++) {
      for (let i = 0; i < p; i++) weight.data[i * q + j] = x.data[j * (p + 1) + i];
      bias[j] = x.data[j * (p + 1) + p];
    }
    // How exactly B's head reproduces A's (centred) logits: 0 when C <= q and W_B has full row rank.
    const fit = await this.engine.gemm(WB, x);
    let num = 0, den = 0;
    for (let i = 0; i < fit.data.length; i++) {
      num += (fit.data[i] - R.data[i]) ** 2;
      den += R.data[i] ** 2;
    }
    return this.setFitted({
      weight,
      bias,
      info: { pairs: 0, classes: C, rank, rankDeficient, headResidual: den > 0 ? Math.sqrt(num / den) : 0 },
    });
  }
}

export function checkHead(name: string, h: Head): void {
  if (h === null || typeof h !== 'object') fail(TypeError, name, '{ W: Matrix (classes x dim), c: Float32Array|Float64Array }', h);
  assertMatrix(`${name}.W`, h.W, { minRows: 1 });
  if (!(h.c instanceof Float32Array || h.c instanceof Float64Array)) fail(TypeError, `${name}.c`, 'a Float32Array or Float64Array', h.c);
  if (h.c.length !== h.W.rows) throw new RangeError(`${name}.c: expected ${h.W.rows} biases (one per class), received ${h.c.length}`);
}

/** W in float64, minus its class mean (column means) when centring. */
export function centred(W: Matrix, centre: boolean): Matrix<'float64'> {
  const out = W.astype('float64');
  if (!centre) return out;
  for (let j = 0; j < W.cols; j++) {
    let s = 0;
    for (let i = 0; i < W.rows; i++) s += out.data[i * W.cols + j];
    s /= W.rows;
    for (let i = 0; i < W.rows; i++) out.data[i * W.cols + j] -= s;
  }
  return out;
}

/** A classifier head stored as .safetensors: "weight" (classes x dim) and "bias" (classes), as `embmap import` writes it. */
export function loadHead(path: string, name = 'path'): Head {
  if (typeof path !== 'string' || !path.toLowerCase().endsWith('.safetensors')) {
    fail(RangeError, name, 'a classifier head file (.safetensors with "weight" C x d and "bias" C, as `embmap import` writes)', path);
  }
  const f = readSafetensors(path);
  const w = f.tensors.get('weight'), b = f.tensors.get('bias');
  if (!w || w.shape.length !== 2 || !b || b.shape.length !== 1 || b.shape[0] !== w.shape[0]) {
    throw new FileFormatError(path, `expected a classifier head with "weight" (classes x dim) and "bias" (classes), found ${[...f.tensors].map(([n, t]) => `${n} [${t.shape}]`).join(', ') || 'no tensors'}`);
  }
  return { W: new Matrix(w.data, w.shape[0], w.shape[1]), c: b.data };
}
