// Plain float64 reference implementations the native results are compared against.
import { Matrix } from '../../src/core/matrix';

export type M64 = { rows: number; cols: number; data: Float64Array };

export function toF64(m: Matrix): M64 {
  return { rows: m.rows, cols: m.cols, data: Float64Array.from(m.data) };
}

export function transpose(a: M64): M64 {
  const t = new Float64Array(a.data.length);
  for (let i = 0; i < a.rows; i++) for (let j = 0; j < a.cols; j++) t[j * a.rows + i] = a.data[i * a.cols + j];
  return { rows: a.cols, cols: a.rows, data: t };
}

export function matmul(a: M64, b: M64): M64 {
  if (a.cols !== b.rows) throw new Error('matmul shapes');
  const c = new Float64Array(a.rows * b.cols);
  for (let i = 0; i < a.rows; i++) {
    for (let k = 0; k < a.cols; k++) {
      const aik = a.data[i * a.cols + k];
      if (aik === 0) continue;
      for (let j = 0; j < b.cols; j++) c[i * b.cols + j] += aik * b.data[k * b.cols + j];
    }
  }
  return { rows: a.rows, cols: b.cols, data: c };
}

/** Solves the symmetric positive definite system A X = B by Gaussian elimination with pivoting. */
export function solve(a: M64, b: M64): M64 {
  const n = a.rows, r = b.cols;
  const A = Float64Array.from(a.data), B = Float64Array.from(b.data);
  for (let c = 0; c < n; c++) {
    let piv = c;
    for (let i = c + 1; i < n; i++) if (Math.abs(A[i * n + c]) > Math.abs(A[piv * n + c])) piv = i;
    if (piv !== c) {
      for (let j = 0; j < n; j++) [A[c * n + j], A[piv * n + j]] = [A[piv * n + j], A[c * n + j]];
      for (let j = 0; j < r; j++) [B[c * r + j], B[piv * r + j]] = [B[piv * r + j], B[c * r + j]];
    }
    for (let i = c + 1; i < n; i++) {
      const f = A[i * n + c] / A[c * n + c];
      if (f === 0) continue;
      for (let j = c; j < n; j++) A[i * n + j] -= f * A[c * n + j];
      for (let j = 0; j < r; j++) B[i * r + j] -= f * B[c * r + j];
    }
  }
  for (let i = n - 1; i >= 0; i--) {
    for (let j = 0; j < r; j++) {
      let s = B[i * r + j];
      for (let k = i + 1; k < n; k++) s -= A[i * n + k] * B[k * r + j];
      B[i * r + j] = s / A[i * n + i];
    }
  }
  return { rows: n, cols: r, data: B };
}

export function frob(a: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * a[i];
  return Math.sqrt(s);
}

/** ||a - b||_F / ||b||_F */
export function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let d = 0;
  for (let i = 0; i < a.length; i++) d += (a[i] - b[i]) ** 2;
  const nb = frob(b);
  return nb === 0 ? Math.sqrt(d) : Math.sqrt(d) / nb;
}

export const EPS = { float32: 1.2e-7, float64: 2.3e-16 } as const;

/** Centred float64 least squares: the reference of the intercept convention. */
export function centredLstsq(X: Matrix, Y: Matrix) {
  const mean = (A: Matrix) => Float64Array.from({ length: A.cols }, (_, j) => { let s = 0; for (let i = 0; i < A.rows; i++) s += A.data[i * A.cols + j]; return s / A.rows; });
  const mx = mean(X), my = mean(Y);
  const Xc = toF64(X), Yc = toF64(Y);
  for (let i = 0; i < X.rows; i++) {
    for (let j = 0; j < X.cols; j++) Xc.data[i * X.cols + j] -= mx[j];
    for (let j = 0; j < Y.cols; j++) Yc.data[i * Y.cols + j] -= my[j];
  }
  const W = solve(matmul(transpose(Xc), Xc), matmul(transpose(Xc), Yc));
  const b = Float64Array.from(my, (v, j) => v - mx.reduce((s, m, i) => s + m * W.data[i * Y.cols + j], 0));
  return { W, b };
}
