// Cholesky factorisation and solve. Right-looking and blocked so that the O(n^3) work runs in
// GEMM; the unblocked kernels use dot products accumulated in double.
#include "portable/kernels.h"

namespace embmap::portable {
namespace {

constexpr int64_t kBlock = 128;

}  // namespace

template <typename T>
int64_t potrfUnblocked(int64_t n, T* A, int64_t lda) {
  for (int64_t j = 0; j < n; ++j) {
    T* aj = A + j * lda;
    const double d = double(aj[j]) - dotAcc(j, aj, aj);
    if (!(d > 0) || !std::isfinite(d)) return j + 1;  // also catches NaN
    const double ljj = std::sqrt(d);
    aj[j] = T(ljj);
    for (int64_t i = j + 1; i < n; ++i) {
      T* ai = A + i * lda;
      ai[j] = T((double(ai[j]) - dotAcc(j, ai, aj)) / ljj);
    }
  }
  return 0;
}

template <typename T>
int64_t potrf(const Ctx& ctx, int64_t n, T* A, int64_t lda) {
  for (int64_t j0 = 0; j0 < n; j0 += kBlock) {
    const int64_t jb = std::min(kBlock, n - j0);
    T* A11 = A + j0 * lda + j0;
    if (const int64_t info = potrfUnblocked(jb, A11, lda)) return j0 + info;
    const int64_t r0 = j0 + jb;
    // Panel: L21 = A21 L11^{-T}, one independent forward substitution per row.
    for (int64_t i = r0; i < n; ++i) {
      T* x = A + i * lda + j0;
      for (int64_t c = 0; c < jb; ++c) {
        const T* lc = A11 + c * lda;
        x[c] = T((double(x[c]) - dotAcc(c, x, lc)) / double(lc[c]));
      }
    }
    // Trailing update A22 -= L21 L21^T, lower block-trapezoid only.
    for (int64_t i0 = r0; i0 < n; i0 += kBlock) {
      const int64_t ib = std::min(kBlock, n - i0);
      gemm(ctx, false, true, ib, i0 + ib - r0, jb, T(-1), A + i0 * lda + j0, lda,
           A + r0 * lda + j0, lda, T(1), A + i0 * lda + r0, lda);
    }
  }
  for (int64_t i = 0; i < n; ++i) std::fill(A + i * lda + i + 1, A + i * lda + n, T(0));
  return 0;
}

template <typename T>
void potrs(const Ctx& ctx, int64_t n, int64_t nrhs, const T* L, int64_t ldl, T* B,
           int64_t ldb) {
  if (n <= 0 || nrhs <= 0) return;
  // L Y = B, block rows top-down: rows above are folded in by GEMM, the diagonal block by
  // row operations.
  for (int64_t i0 = 0; i0 < n; i0 += kBlock) {
    const int64_t ib = std::min(kBlock, n - i0);
    gemm(ctx, false, false, ib, nrhs, i0, T(-1), L + i0 * ldl, ldl, B, ldb, T(1),
         B + i0 * ldb, ldb);
    for (int64_t i = i0; i < i0 + ib; ++i) {
      T* bi = B + i * ldb;
      for (int64_t l = i0; l < i; ++l) {
        const T f = L[i * ldl + l];
        const T* bl = B + l * ldb;
        for (int64_t c = 0; c < nrhs; ++c) bi[c] -= f * bl[c];
      }
      const T inv = T(1) / L[i * ldl + i];
      for (int64_t c = 0; c < nrhs; ++c) bi[c] *= inv;
    }
  }
  // L^T X = Y, block rows bottom-up.
  for (int64_t i1 = n; i1 > 0; i1 -= kBlock) {
    const int64_t i0 = std::max<int64_t>(0, i1 - kBlock);
    gemm(ctx, true, false, i1 - i0, nrhs, n - i1, T(-1), L + i1 * ldl + i0, ldl, B + i1 * ldb,
         ldb, T(1), B + i0 * ldb, ldb);
    for (int64_t i = i1 - 1; i >= i0; --i) {
      T* bi = B + i * ldb;
      for (int64_t l = i + 1; l < i1; ++l) {
        const T f = L[l * ldl + i];
        const T* bl = B + l * ldb;
        for (int64_t c = 0; c < nrhs; ++c) bi[c] -= f * bl[c];
      }
      const T inv = T(1) / L[i * ldl + i];
      for (int64_t c = 0; c < nrhs; ++c) bi[c] *= inv;
    }
  }
}

template int64_t potrfUnblocked<float>(int64_t, float*, int64_t);
template int64_t potrfUnblocked<double>(int64_t, double*, int64_t);
template int64_t potrf<float>(const Ctx&, int64_t, float*, int64_t);
template int64_t potrf<double>(const Ctx&, int64_t, double*, int64_t);
template void potrs<float>(const Ctx&, int64_t, int64_t, const float*, int64_t, float*,
                           int64_t);
template void potrs<double>(const Ctx&, int64_t, int64_t, const double*, int64_t, double*,
                            int64_t);

}  // namespace embmap::portable
