#include "cuda/linalg.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <string>
#include <type_traits>
#include <vector>

#include "engine/finite.h"

namespace embmap::cuda {
namespace {

// Column-major cuBLAS product C = op(A) op(B) (+ beta C), m x n, in the given compute type.
template <typename T>
void gemmCM(Device& d, int opA, int opB, int64_t m, int64_t n, int64_t k, T alpha, const T* A,
            int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc, int compute) {
  const int dt = dataType<T>();
  d.checkBlas(d.a.GemmEx(d.blas(), opA, opB, m, n, k, &alpha, A, dt, lda, B, dt, ldb, &beta, C,
                         dt, ldc, compute, kGemmDefault),
              "cublasGemmEx");
}

template <typename T>
int computeFor(Precision p) {
  if (std::is_same_v<T, double>) return COMPUTE_64F;
  return p == Precision::TF32 || p == Precision::TF32x3 ? COMPUTE_32F_FAST_TF32 : COMPUTE_32F;
}

template <typename T>
void trsm(Device& d, int side, int uplo, int op, int64_t m, int64_t n, const T* A, int64_t lda,
          T* B, int64_t ldb) {
  const T one = 1;
  if constexpr (std::is_same_v<T, float>)
    d.checkBlas(d.a.Strsm(d.blas(), side, uplo, op, DIAG_NON_UNIT, m, n, &one, A, lda, B, ldb),
                "cublasStrsm");
  else
    d.checkBlas(d.a.Dtrsm(d.blas(), side, uplo, op, DIAG_NON_UNIT, m, n, &one, A, lda, B, ldb),
                "cublasDtrsm");
}

// Row-major B (rows x cols, ldb) = A, or A^T when `trans` (A then cols x rows), with any row
// strides: one cuBLAS geam (column-major views: B^T = op(A^T)).
template <typename T>
void geam(Device& d, bool trans, int64_t rows, int64_t cols, const T* A, int64_t lda, T* B,
          int64_t ldb) {
  if (rows == 0 || cols == 0) return;
  const T one = 1, zero = 0;
  const int op = trans ? OP_T : OP_N;
  if constexpr (std::is_same_v<T, float>)
    d.checkBlas(d.a.Sgeam(d.blas(), op, OP_N, cols, rows, &one, A, lda, &zero, B, ldb, B, ldb),
                "cublasSgeam");
  else
    d.checkBlas(d.a.Dgeam(d.blas(), op, OP_N, cols, rows, &one, A, lda, &zero, B, ldb, B, ldb),
                "cublasDgeam");
}

// Splits a span of float32 values into TF32 high and low parts for 3xTF32 products.
void splitTF32(Device& d, const float* x, int64_t n, Buffer<float>& hi, Buffer<float>& lo) {
  hi = Buffer<float>(d, n);
  lo = Buffer<float>(d, n);
  d.run("split_tf32", n, x, hi.get(), lo.get(), n);
}

Buffer<unsigned short> toBF16(Device& d, const float* x, int64_t n) {
  Buffer<unsigned short> b(d, n);
  d.run("f32_to_bf16", n, x, b.get(), n);
  return b;
}

// Thin SVD of the column-major m x n (m >= n) matrix A (destroyed): U m x n, VT n x n.
template <typename T>
int svdCM(Device& d, int64_t m, int64_t n, T* A, int64_t lda, T* S, T* U, T* VT) {
  const int dt = dataType<T>();
  size_t dev = 0, host = 0;
  d.checkSolver(d.a.Xgesvd_bufferSize(d.solver(), d.params(), 'S', 'S', m, n, dt, A, lda, dt, S,
                                      dt, U, m, dt, VT, n, dt, &dev, &host),
                "cusolverDnXgesvd_bufferSize");
  Buffer<char> work(d, int64_t(dev));
  std::vector<char> hwork(host);
  Buffer<int> info(d, 1);
  d.checkSolver(d.a.Xgesvd(d.solver(), d.params(), 'S', 'S', m, n, dt, A, lda, dt, S, dt, U, m,
                           dt, VT, n, dt, work.get(), dev, hwork.data(), host, info.get()),
                "cusolverDnXgesvd");
  int h = 0;
  d.download(&h, info.get(), sizeof(int));
  if (h < 0) throw Error("cuda: cusolverDnXgesvd rejected argument " + std::to_string(-h));
  return h;
}

}  // namespace

// ---- device building blocks

template <typename T>
void gemm(Device& d, Precision prec, bool transA, bool transB, int64_t m, int64_t n, int64_t k,
          T alpha, const T* A, int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  if (m == 0 || n == 0) return;
  if (k == 0) {  // cuBLAS may reject k = 0; the product is empty
    d.run(kernelName<T>("scale_matrix").c_str(), m * n, C, m, n, ldc, beta);
    return;
  }
  // Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: swap the operands.
  const int opA = transA ? OP_T : OP_N, opB = transB ? OP_T : OP_N;
  if constexpr (std::is_same_v<T, float>) {
    if (prec == Precision::TF32x3) {
      Buffer<float> ah, al, bh, bl;
      splitTF32(d, A, span(transA ? k : m, transA ? m : k, lda), ah, al);
      splitTF32(d, B, span(transB ? n : k, transB ? k : n, ldb), bh, bl);
      const int c = COMPUTE_32F_FAST_TF32;
      gemmCM<float>(d, opB, opA, n, m, k, alpha, bh.get(), ldb, al.get(), lda, beta, C, ldc, c);
      gemmCM<float>(d, opB, opA, n, m, k, alpha, bl.get(), ldb, ah.get(), lda, 1.f, C, ldc, c);
      gemmCM<float>(d, opB, opA, n, m, k, alpha, bh.get(), ldb, ah.get(), lda, 1.f, C, ldc, c);
      return;
    }
    if (prec == Precision::BF16) {  // cuBLAS's FAST_16BF may pick TF32: convert explicitly
      const Buffer<unsigned short> a16 = toBF16(d, A, span(transA ? k : m, transA ? m : k, lda));
      const Buffer<unsigned short> b16 = toBF16(d, B, span(transB ? n : k, transB ? k : n, ldb));
      d.checkBlas(d.a.GemmEx(d.blas(), opB, opA, n, m, k, &alpha, b16.get(), R_16BF, ldb,
                             a16.get(), R_16BF, lda, &beta, C, R_32F, ldc, COMPUTE_32F,
                             kGemmDefault),
                  "cublasGemmEx (bf16)");
      return;
    }
  }
  gemmCM<T>(d, opB, opA, n, m, k, alpha, B, ldb, A, lda, beta, C, ldc, computeFor<T>(prec));
}

template <typename T>
void transpose(Device& d, int64_t rows, int64_t cols, const T* A, int64_t lda, T* B, int64_t ldb) {
  geam<T>(d, true, rows, cols, A, lda, B, ldb);
}

template <typename T>
int64_t potrfDevice(Device& d, int64_t n, T* A, int64_t lda) {
  if (n == 0) return 0;
  const int dt = dataType<T>();
  // The row-major lower triangle is the column-major upper one: A = U^T U with U = L^T.
  size_t dev = 0, host = 0;
  d.checkSolver(d.a.Xpotrf_bufferSize(d.solver(), d.params(), FILL_UPPER, n, dt, A, lda, dt,
                                      &dev, &host),
                "cusolverDnXpotrf_bufferSize");
  Buffer<char> work(d, int64_t(dev));
  std::vector<char> hwork(host);
  Buffer<int> info(d, 1);
  d.checkSolver(d.a.Xpotrf(d.solver(), d.params(), FILL_UPPER, n, dt, A, lda, dt, work.get(), dev,
                           hwork.data(), host, info.get()),
                "cusolverDnXpotrf");
  int h = 0;
  d.download(&h, info.get(), sizeof(int));
  if (h < 0) throw Error("cuda: cusolverDnXpotrf rejected argument " + std::to_string(-h));
  if (h > 0) return h;
  d.run(kernelName<T>("zero_upper").c_str(), n * n, A, n, lda);
  return 0;
}

template <typename T>
void potrsDevice(Device& d, int64_t n, int64_t nrhs, const T* L, int64_t ldl, T* B, int64_t ldb) {
  if (n == 0 || nrhs == 0) return;
  // Column-major view: X^T = B^T U^-1 U^-T with U = L^T (the view of L's buffer).
  trsm<T>(d, SIDE_RIGHT, FILL_UPPER, OP_N, nrhs, n, L, ldl, B, ldb);
  trsm<T>(d, SIDE_RIGHT, FILL_UPPER, OP_T, nrhs, n, L, ldl, B, ldb);
}

// ---- host-array primitives

template <typename T>
void CudaLinalg<T>::gemm(bool transA, bool transB, int64_t m, int64_t n, int64_t k, T alpha,
                         const T* A, int64_t lda, const T* B, int64_t ldb, T beta, T* C,
                         int64_t ldc) {
  if (m == 0 || n == 0) return;
  auto lock = d_.lock();
  const int64_t sa = span(transA ? k : m, transA ? m : k, lda);
  const int64_t sb = span(transB ? n : k, transB ? k : n, ldb);
  const int64_t sc = span(m, n, ldc);
  Buffer<T> dA = toDevice(d_, A, sa), dB = toDevice(d_, B, sb);
  // C travels up when it is read (beta != 0) or has gaps between rows that must survive.
  Buffer<T> dC = (beta != T(0) || ldc > n) ? toDevice(d_, C, sc) : Buffer<T>(d_, sc);
  cuda::gemm<T>(d_, prec_.load(), transA, transB, m, n, k, alpha, dA.get(), lda, dB.get(), ldb,
                beta, dC.get(), ldc);
  toHost(d_, C, dC, sc);
}

template <typename T>
void CudaLinalg<T>::syrkT(int64_t n, int64_t k, T alpha, const T* A, int64_t lda, T beta, T* C,
                          int64_t ldc) {
  if (n == 0) return;
  auto lock = d_.lock();
  Buffer<T> dA = toDevice(d_, A, span(k, n, lda));
  const int64_t sc = span(n, n, ldc);
  Buffer<T> dC = (beta != T(0) || ldc > n) ? toDevice(d_, C, sc) : Buffer<T>(d_, sc);
  cuda::gemm<T>(d_, prec_.load(), true, false, n, n, k, alpha, dA.get(), lda, dA.get(), lda, beta,
                dC.get(), ldc);
  d_.run(kernelName<T>("symmetrize").c_str(), n * n, dC.get(), n, ldc);
  toHost(d_, C, dC, sc);
}

template <typename T>
int64_t CudaLinalg<T>::potrf(int64_t n, T* A, int64_t lda) {
  // As the CPU backends report it: a NaN/Inf in row i fails at order i+1.
  for (int64_t i = 0; i < n; i++)
    if (!allFinite(1, i + 1, A + i * lda, lda)) return i + 1;
  if (n == 0) return 0;
  auto lock = d_.lock();
  const int64_t sa = span(n, n, lda);
  Buffer<T> dA = toDevice(d_, A, sa);
  const int64_t info = potrfDevice<T>(d_, n, dA.get(), lda);
  if (info == 0) toHost(d_, A, dA, sa);
  return info;
}

template <typename T>
void CudaLinalg<T>::potrs(int64_t n, int64_t nrhs, const T* L, int64_t ldl, T* B, int64_t ldb) {
  if (n == 0 || nrhs == 0) return;
  auto lock = d_.lock();
  Buffer<T> dL = toDevice(d_, L, span(n, n, ldl));
  const int64_t sb = span(n, nrhs, ldb);
  Buffer<T> dB = toDevice(d_, B, sb);
  potrsDevice<T>(d_, n, nrhs, dL.get(), ldl, dB.get(), ldb);
  toHost(d_, B, dB, sb);
}

namespace {

// Householder QR of a tall system: -1 when R's diagonal hints at rank deficiency (then only
// the SVD settles it). dB's first n rows receive X.
template <typename T>
int64_t lstsqQR(Device& d, int64_t m, int64_t n, int64_t nrhs, const T* dA, int64_t lda, T* dB,
                int64_t ldb, T rcond) {
  const int dt = dataType<T>();
  Buffer<T> Acm(d, m * n), Bcm(d, m * nrhs), tau(d, n), diag(d, n);
  transpose<T>(d, n, m, dA, lda, Acm.get(), m);
  transpose<T>(d, nrhs, m, dB, ldb, Bcm.get(), m);
  size_t dev = 0, host = 0;
  d.checkSolver(d.a.Xgeqrf_bufferSize(d.solver(), d.params(), m, n, dt, Acm.get(), m, dt,
                                      tau.get(), dt, &dev, &host),
                "cusolverDnXgeqrf_bufferSize");
  Buffer<char> work(d, int64_t(dev));
  std::vector<char> hwork(host);
  Buffer<int> info(d, 1);
  d.checkSolver(d.a.Xgeqrf(d.solver(), d.params(), m, n, dt, Acm.get(), m, dt, tau.get(), dt,
                           work.get(), dev, hwork.data(), host, info.get()),
                "cusolverDnXgeqrf");
  // sigma_min <= min |R_ii| and max |R_ii| <= sigma_max: a rank deficiency shows as a tiny
  // diagonal entry (the converse can fail for contrived matrices; the SVD decides those).
  d.run(kernelName<T>("get_diag").c_str(), n, Acm.get(), n, m, diag.get());
  std::vector<T> r(static_cast<size_t>(n));
  toHost(d, r.data(), diag, n);
  T lo = std::abs(r[0]), hi = lo;
  for (T v : r) {
    if (!std::isfinite(v)) return -1;
    lo = std::min(lo, std::abs(v));
    hi = std::max(hi, std::abs(v));
  }
  if (!(lo > std::min(T(0.1), 10 * rcond) * hi)) return -1;
  const int mi = int(m), ni = int(n), ri = int(nrhs);
  int lwork = 0;
  if constexpr (std::is_same_v<T, float>)
    d.checkSolver(d.a.Sormqr_bufferSize(d.solver(), SIDE_LEFT, OP_T, mi, ri, ni, Acm.get(), mi,
                                        tau.get(), Bcm.get(), mi, &lwork),
                  "cusolverDnSormqr_bufferSize");
  else
    d.checkSolver(d.a.Dormqr_bufferSize(d.solver(), SIDE_LEFT, OP_T, mi, ri, ni, Acm.get(), mi,
                                        tau.get(), Bcm.get(), mi, &lwork),
                  "cusolverDnDormqr_bufferSize");
  Buffer<T> owork(d, std::max(lwork, 1));
  if constexpr (std::is_same_v<T, float>)
    d.checkSolver(d.a.Sormqr(d.solver(), SIDE_LEFT, OP_T, mi, ri, ni, Acm.get(), mi, tau.get(),
                             Bcm.get(), mi, owork.get(), lwork, info.get()),
                  "cusolverDnSormqr");
  else
    d.checkSolver(d.a.Dormqr(d.solver(), SIDE_LEFT, OP_T, mi, ri, ni, Acm.get(), mi, tau.get(),
                             Bcm.get(), mi, owork.get(), lwork, info.get()),
                  "cusolverDnDormqr");
  trsm<T>(d, SIDE_LEFT, FILL_UPPER, OP_N, n, nrhs, Acm.get(), m, Bcm.get(), m);
  transpose<T>(d, n, nrhs, Bcm.get(), m, dB, ldb);
  return n;
}

// Minimum-norm solution through the thin SVD A = P diag(S) Q^T: X = Q diag(S+) P^T B.
template <typename T>
int64_t lstsqSVD(Device& d, int64_t m, int64_t n, int64_t nrhs, const T* dA, int64_t lda, T* dB,
                 int64_t ldb, T rcond) {
  const int64_t r = std::min(m, n);
  Buffer<T> Bcm(d, m * nrhs), S(d, r), T1(d, r * nrhs), Xcm(d, n * nrhs), sinv(d, r);
  transpose<T>(d, nrhs, m, dB, ldb, Bcm.get(), m);
  Buffer<T> A2, U, VT;
  int info;
  const int c = std::is_same_v<T, float> ? COMPUTE_32F : COMPUTE_64F;
  if (m >= n) {  // column-major A itself: P = U, Q = VT^T
    A2 = Buffer<T>(d, m * n);
    U = Buffer<T>(d, m * n);
    VT = Buffer<T>(d, n * n);
    transpose<T>(d, n, m, dA, lda, A2.get(), m);
    info = svdCM<T>(d, m, n, A2.get(), m, S.get(), U.get(), VT.get());
    if (info == 0) gemmCM<T>(d, OP_T, OP_N, r, nrhs, m, 1, U.get(), m, Bcm.get(), m, 0, T1.get(), r, c);
  } else {  // the row-major buffer is A^T (n x m, tall) = U' S VT': P = VT'^T, Q = U'
    A2 = Buffer<T>(d, span(m, n, lda));  // gesvd destroys its input
    d.check(d.a.MemcpyAsync(A2.get(), dA, size_t(A2.size()) * sizeof(T), kMemcpyDeviceToDevice,
                            d.stream()),
            "cudaMemcpyAsync (device copy)");
    U = Buffer<T>(d, n * m);
    VT = Buffer<T>(d, m * m);
    info = svdCM<T>(d, n, m, A2.get(), lda, S.get(), U.get(), VT.get());
    if (info == 0) gemmCM<T>(d, OP_N, OP_N, r, nrhs, m, 1, VT.get(), m, Bcm.get(), m, 0, T1.get(), r, c);
  }
  if (info != 0) return -1;
  std::vector<T> s(static_cast<size_t>(r));
  toHost(d, s.data(), S, r);
  for (T v : s)
    if (!std::isfinite(v)) return -1;
  int64_t rank = 0;
  const T cut = rcond * s[0];
  for (T& v : s) {
    const bool keep = v > cut;
    rank += keep;
    v = keep ? T(1) / v : T(0);
  }
  d.upload(sinv.get(), s.data(), size_t(r) * sizeof(T));
  d.run(kernelName<T>("scale_rows_cm").c_str(), r * nrhs, T1.get(), r, nrhs, r, sinv.get());
  if (m >= n)
    gemmCM<T>(d, OP_T, OP_N, n, nrhs, r, 1, VT.get(), n, T1.get(), r, 0, Xcm.get(), n, c);
  else
    gemmCM<T>(d, OP_N, OP_N, n, nrhs, r, 1, U.get(), n, T1.get(), r, 0, Xcm.get(), n, c);
  transpose<T>(d, n, nrhs, Xcm.get(), n, dB, ldb);
  return rank;
}

}  // namespace

template <typename T>
int64_t lstsqDevice(Device& d, int64_t m, int64_t n, int64_t nrhs, const T* dA, int64_t lda,
                    T* dB, int64_t ldb, T rcond) {
  // Householder QR for tall, clearly full-rank systems (cuSOLVER's ormqr takes 32-bit sizes);
  // the SVD otherwise, which reveals the rank and gives the minimum-norm answer.
  if (m >= n && m <= INT_MAX && nrhs <= INT_MAX && m * std::max(n, nrhs) <= INT_MAX) {
    const int64_t rank = lstsqQR<T>(d, m, n, nrhs, dA, lda, dB, ldb, rcond);
    if (rank >= 0) return rank;
  }
  return lstsqSVD<T>(d, m, n, nrhs, dA, lda, dB, ldb, rcond);
}

template <typename T>
int64_t CudaLinalg<T>::lstsq(int64_t m, int64_t n, int64_t nrhs, T* A, int64_t lda, T* B,
                             int64_t ldb, T rcond) {
  if (n == 0) return 0;
  if (m == 0 || nrhs == 0) {  // nothing to fit: the minimum-norm solution is zero
    for (int64_t i = 0; i < n; i++) std::fill(B + i * ldb, B + i * ldb + nrhs, T(0));
    return 0;
  }
  if (!allFinite(m, n, A, lda) || !allFinite(m, nrhs, B, ldb)) return -1;
  auto lock = d_.lock();
  const int64_t sb = span(std::max(m, n), nrhs, ldb);
  Buffer<T> dA = toDevice(d_, A, span(m, n, lda)), dB = toDevice(d_, B, sb);
  const int64_t rank = lstsqDevice<T>(d_, m, n, nrhs, dA.get(), lda, dB.get(), ldb, rcond);
  if (rank >= 0) toHost(d_, B, dB, span(n, nrhs, ldb));
  return rank;
}

template <typename T>
int64_t CudaLinalg<T>::syev(int64_t n, T* A, int64_t lda, T* w) {
  if (n == 0) return 0;
  if (!allFinite(n, n, A, lda)) return 1;
  auto lock = d_.lock();
  const int dt = dataType<T>();
  const int64_t sa = span(n, n, lda);
  Buffer<T> dA = toDevice(d_, A, sa), W(d_, n);
  size_t dev = 0, host = 0;
  d_.checkSolver(d_.a.Xsyevd_bufferSize(d_.solver(), d_.params(), EIG_VECTOR, FILL_LOWER, n, dt,
                                        dA.get(), lda, dt, W.get(), dt, &dev, &host),
                 "cusolverDnXsyevd_bufferSize");
  Buffer<char> work(d_, int64_t(dev));
  std::vector<char> hwork(host);
  Buffer<int> info(d_, 1);
  d_.checkSolver(d_.a.Xsyevd(d_.solver(), d_.params(), EIG_VECTOR, FILL_LOWER, n, dt, dA.get(),
                             lda, dt, W.get(), dt, work.get(), dev, hwork.data(), host,
                             info.get()),
                 "cusolverDnXsyevd");
  int h = 0;
  d_.download(&h, info.get(), sizeof(int));
  if (h != 0) return h;
  // Eigenvectors are the columns of the column-major result: the rows of the row-major one.
  toHost(d_, A, dA, sa);
  toHost(d_, w, W, n);
  return 0;
}

template <typename T>
int64_t CudaLinalg<T>::svd(int64_t m, int64_t n, T* A, int64_t lda, T* U, int64_t ldu, T* S,
                           T* Vt, int64_t ldvt) {
  const int64_t r = std::min(m, n);
  if (r == 0) return 0;
  if (!allFinite(m, n, A, lda)) return 1;
  auto lock = d_.lock();
  Buffer<T> dA = toDevice(d_, A, span(m, n, lda)), dS(d_, r);
  const int64_t su = span(m, r, ldu), sv = span(r, n, ldvt);
  Buffer<T> dU = toDevice(d_, U, su), dVt = toDevice(d_, Vt, sv);  // gaps between rows survive
  int info;
  if (m >= n) {  // SVD of column-major A: U_A = Ucm, Vt_A = VTcm
    Buffer<T> Acm(d_, m * n), Ucm(d_, m * n), VTcm(d_, n * n);
    transpose<T>(d_, n, m, dA.get(), lda, Acm.get(), m);
    info = svdCM<T>(d_, m, n, Acm.get(), m, dS.get(), Ucm.get(), VTcm.get());
    if (info != 0) return info;
    transpose<T>(d_, m, r, Ucm.get(), m, dU.get(), ldu);
    transpose<T>(d_, r, n, VTcm.get(), n, dVt.get(), ldvt);
  } else {  // SVD of the buffer's view A^T = U' S VT': U_A = VT'^T, Vt_A = U'^T
    Buffer<T> Up(d_, n * m), VTp(d_, m * m);
    info = svdCM<T>(d_, n, m, dA.get(), lda, dS.get(), Up.get(), VTp.get());
    if (info != 0) return info;
    geam<T>(d_, false, m, m, VTp.get(), m, dU.get(), ldu);
    geam<T>(d_, false, m, n, Up.get(), n, dVt.get(), ldvt);
  }
  toHost(d_, S, dS, r);
  toHost(d_, U, dU, su);
  toHost(d_, Vt, dVt, sv);
  return 0;
}

template class CudaLinalg<float>;
template class CudaLinalg<double>;
#define INSTANTIATE(T)                                                                        \
  template void gemm<T>(Device&, Precision, bool, bool, int64_t, int64_t, int64_t, T, const T*, \
                        int64_t, const T*, int64_t, T, T*, int64_t);                           \
  template void transpose<T>(Device&, int64_t, int64_t, const T*, int64_t, T*, int64_t);       \
  template int64_t potrfDevice<T>(Device&, int64_t, T*, int64_t);                              \
  template void potrsDevice<T>(Device&, int64_t, int64_t, const T*, int64_t, T*, int64_t);     \
  template int64_t lstsqDevice<T>(Device&, int64_t, int64_t, int64_t, const T*, int64_t, T*,   \
                                  int64_t, T);
INSTANTIATE(float)
INSTANTIATE(double)
#undef INSTANTIATE

}  // namespace embmap::cuda
