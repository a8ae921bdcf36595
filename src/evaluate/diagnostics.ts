// How good a map is on held-out pairs: relative residual, cosine between mapped and true
// target embeddings, per-dimension R^2, and linear CKA between the spaces.
import { Matrix } from '../core/matrix';
import { assertMatrix } from '../core/validate';
import { Engine } from '../engine/engine';
import type { LinearMap } from '../maps/linear-map';

export interface Diagnostics {
  rows: number;
  /** ||X M + b - Y||_F / ||Y||_F */
  relativeResidual: number;
  cosineMean: number;
  cosineMedian: number;
  /** Mean over target dimensions of R^2 = 1 - SS_res / SS_tot. */
  r2Mean: number;
  r2: number[];
  /** Linear CKA between the source and target embeddings (how alike the spaces are). */
  ckaSourceTarget: number;
  /** Linear CKA between mapped and true target embeddings. */
  ckaMappedTarget: number;
}

export async function diagnose(map: LinearMap, X: Matrix, Y: Matrix, engine: Engine = Engine.get()): Promise<Diagnostics> {
  assertMatrix('X', X, { cols: map.p, minRows: 1 });
  assertMatrix('Y', Y, { rows: X.rows, cols: map.q });
  const Yd = Y.astype('float64');
  const P = (await map.applyBatch(X.astype('float64'))) as Matrix<'float64'>;
  const n = X.rows, q = map.q;
  let res = 0, tot = 0;
  const cos = new Float64Array(n);
  const mean = columnMeans(Yd);
  const ssRes = new Float64Array(q), ssTot = new Float64Array(q);
  for (let i = 0; i < n; i++) {
    let dot = 0, pp = 0, yy = 0;
    for (let j = 0; j < q; j++) {
      const p = P.data[i * q + j], y = Yd.data[i * q + j];
      dot += p * y;
      pp += p * p;
      yy += y * y;
      ssRes[j] += (p - y) ** 2;
      ssTot[j] += (y - mean[j]) ** 2;
    }
    res += pp - 2 * dot + yy;
    tot += yy;
    cos[i] = pp > 0 && yy > 0 ? dot / Math.sqrt(pp * yy) : 0;
  }
  const r2 = Array.from(ssRes, (r, j) => (ssTot[j] > 0 ? 1 - r / ssTot[j] : 0));
  cos.sort();
  return {
    rows: n,
    relativeResidual: tot > 0 ? Math.sqrt(Math.max(res, 0) / tot) : 0,
    cosineMean: cos.reduce((a, b) => a + b, 0) / n,
    cosineMedian: n % 2 ? cos[(n - 1) / 2] : (cos[n / 2 - 1] + cos[n / 2]) / 2,
    r2Mean: r2.reduce((a, b) => a + b, 0) / q,
    r2,
    ckaSourceTarget: await linearCKA(X, Y, engine),
    ckaMappedTarget: await linearCKA(P, Yd, engine),
  };
}

/**
 * Linear CKA (Kornblith et al. 2019): ||Yc^T Xc||_F^2 / (||Xc^T Xc||_F ||Yc^T Yc||_F), through
 * the n x n Gram matrices when there are fewer rows than dimensions (||Yc^T Xc||_F^2 =
 * <Kc, Lc> with Kc = Xc Xc^T, ||Xc^T Xc||_F = ||Kc||_F): 2 n^2 (p + q) flops instead of
 * 2 n (p + q)^2. There the rows' Gram is centred after the product (Kc = H K H, H = I - 11^T/n),
 * so float64 rows are read in place, not copied to be centred.
 */
export async function linearCKA(X: Matrix, Y: Matrix, engine: Engine = Engine.get()): Promise<number> {
  assertMatrix('X', X, { minRows: 1 });
  assertMatrix('Y', Y, { rows: X.rows });
  const dot = (a: Matrix, b: Matrix) => {
    let s = 0;
    for (let i = 0; i < a.data.length; i++) s += a.data[i] * b.data[i];
    return s;
  };
  const { rows: n, cols: p } = X, q = Y.cols;
  let xx: Matrix, yy: Matrix, xy: number;
  if (n * (p + q) < p * p + p * q + q * q) {
    const gram = async (A: Matrix) => {
      const a = A.dtype === 'float64' ? A : A.astype('float64');
      return centreGram(await engine.gemm(a, a, { transB: true }));
    };
    [xx, yy] = [await gram(X), await gram(Y)];
    xy = dot(xx, yy);
  } else {
    const Xc = centre(X), Yc = centre(Y);
    [xx, yy] = [await engine.gemm(Xc, Xc, { transA: true }), await engine.gemm(Yc, Yc, { transA: true })];
    const yx = await engine.gemm(Yc, Xc, { transA: true });
    xy = dot(yx, yx);
  }
  const nx = Math.sqrt(dot(xx, xx)), ny = Math.sqrt(dot(yy, yy));
  return nx > 0 && ny > 0 ? xy / (nx * ny) : 0;
}

/** H K H in place (K symmetric n x n): K_ij - r_i - r_j + m, r its row means, m their mean. */
function centreGram(K: Matrix): Matrix {
  const n = K.rows, r = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let j = 0; j < n; j++) s += K.data[i * n + j];
    r[i] = s / n;
  }
  const m = r.reduce((a, v) => a + v, 0) / n;
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) K.data[i * n + j] += m - r[i] - r[j];
  return K;
}

function columnMeans(M: Matrix): Float64Array {
  const m = new Float64Array(M.cols);
  for (let i = 0; i < M.rows; i++) for (let j = 0; j < M.cols; j++) m[j] += M.data[i * M.cols + j];
  return m.map((v) => v / Math.max(M.rows, 1));
}

function centre(M: Matrix): Matrix<'float64'> {
  const out = M.astype('float64');
  const mean = columnMeans(out);
  for (let i = 0; i < M.rows; i++) for (let j = 0; j < M.cols; j++) out.data[i * M.cols + j] -= mean[j];
  return out;
}
