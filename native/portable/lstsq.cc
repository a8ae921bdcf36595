// Minimum-norm least squares by QR with column pivoting and a complete orthogonal
// decomposition, plus the blocked Householder QR it (and the SVD) use to shrink tall problems.
#include <numeric>

#include "portable/kernels.h"

namespace embmap::portable {
namespace {

constexpr int64_t kQrBlock = 64;

// Reflectors k0..k0+kb-1 of a qrFactor result as explicit columns (unit diagonal, zeros above).
template <typename T>
void explicitV(int64_t len, int64_t kb, const T* A, int64_t lda, T* V) {
  for (int64_t i = 0; i < len; ++i)
    for (int64_t c = 0; c < kb; ++c)
      V[i * kb + c] = i < c ? T(0) : i == c ? T(1) : A[i * lda + c];
}

// Column-pivoted Householder QR (Businger-Golub) of M (mm x n), Q^T applied to B on the fly.
// The column norms are downdated with LAPACK's xGEQP3 safeguard against cancellation.
template <typename T>
void qrPivoted(int64_t mm, int64_t n, T* M, int64_t ldm, int64_t* perm, int64_t nrhs, T* B,
               int64_t ldb) {
  std::vector<double> vn1(n), vn2(n), w(size_t(std::max(n, nrhs)));
  for (int64_t j = 0; j < n; ++j) vn1[j] = vn2[j] = norm2(mm, M + j, ldm);
  std::iota(perm, perm + n, int64_t(0));
  const double tol3z = std::sqrt(double(std::numeric_limits<T>::epsilon()));
  for (int64_t j = 0; j < std::min(mm, n); ++j) {
    const int64_t p = std::max_element(vn1.begin() + j, vn1.end()) - vn1.begin();
    if (p != j) {
      for (int64_t i = 0; i < mm; ++i) std::swap(M[i * ldm + j], M[i * ldm + p]);
      std::swap(perm[j], perm[p]);
      std::swap(vn1[j], vn1[p]);
      std::swap(vn2[j], vn2[p]);
    }
    T* mjj = M + j * ldm + j;
    const T tau = makeReflector(mm - j, *mjj, mjj + ldm, ldm);
    reflectLeft(mm - j, n - j - 1, mjj, ldm, tau, mjj + 1, ldm, w.data());
    reflectLeft(mm - j, nrhs, mjj, ldm, tau, B + j * ldb, ldb, w.data());
    for (int64_t l = j + 1; l < n; ++l) {
      if (vn1[l] == 0) continue;
      const double r = std::fabs(double(M[j * ldm + l])) / vn1[l];
      const double t = std::max(0.0, 1 - r * r);
      if (t * (vn1[l] / vn2[l]) * (vn1[l] / vn2[l]) <= tol3z)
        vn1[l] = vn2[l] = norm2(mm - j - 1, M + (j + 1) * ldm + l, ldm);
      else
        vn1[l] *= std::sqrt(t);
    }
  }
}

// Row permutation X[perm[j]] = Y[j] of the first n rows of B.
template <typename T>
void unpermuteRows(int64_t n, const int64_t* perm, int64_t nrhs, T* B, int64_t ldb) {
  std::vector<T> Y(size_t(n * nrhs));
  for (int64_t j = 0; j < n; ++j) std::copy(B + j * ldb, B + j * ldb + nrhs, &Y[j * nrhs]);
  for (int64_t j = 0; j < n; ++j)
    std::copy(&Y[j * nrhs], &Y[j * nrhs] + nrhs, B + perm[j] * ldb);
}

}  // namespace

template <typename T>
void qrFactor(const Ctx& ctx, int64_t m, int64_t n, T* A, int64_t lda, T* tau) {
  std::vector<double> w(kQrBlock);
  std::vector<T> V, Tm(size_t(kQrBlock * kQrBlock));
  for (int64_t k0 = 0; k0 < n; k0 += kQrBlock) {
    const int64_t kb = std::min(kQrBlock, n - k0);
    T* P = A + k0 * lda + k0;
    for (int64_t j = 0; j < kb; ++j) {  // the panel, one reflector at a time
      T* pjj = P + j * lda + j;
      tau[k0 + j] = makeReflector(m - k0 - j, *pjj, pjj + lda, lda);
      reflectLeft(m - k0 - j, kb - j - 1, pjj, lda, tau[k0 + j], pjj + 1, lda, w.data());
    }
    if (k0 + kb == n) break;
    V.resize(size_t((m - k0) * kb));
    explicitV(m - k0, kb, P, lda, V.data());
    formT(ctx, m - k0, kb, V.data(), kb, tau + k0, Tm.data());
    applyBlockLeft(ctx, m - k0, n - k0 - kb, kb, V.data(), kb, Tm.data(), true, P + kb, lda);
  }
}

template <typename T>
void qrApply(const Ctx& ctx, bool transpose, int64_t m, int64_t n, const T* A, int64_t lda,
             const T* tau, int64_t cols, T* C, int64_t ldc) {
  // Q^T = ... H_1 H_0 applies blocks first to last; Q = H_0 H_1 ... last to first.
  std::vector<T> V, Tm(size_t(kQrBlock * kQrBlock));
  const int64_t blocks = (n + kQrBlock - 1) / kQrBlock;
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t k0 = (transpose ? b : blocks - 1 - b) * kQrBlock;
    const int64_t kb = std::min(kQrBlock, n - k0);
    V.resize(size_t((m - k0) * kb));
    explicitV(m - k0, kb, A + k0 * lda + k0, lda, V.data());
    formT(ctx, m - k0, kb, V.data(), kb, tau + k0, Tm.data());
    applyBlockLeft(ctx, m - k0, cols, kb, V.data(), kb, Tm.data(), transpose, C + k0 * ldc,
                   ldc);
  }
}

template <typename T>
int64_t lstsq(const Ctx& ctx, int64_t m, int64_t n, int64_t nrhs, T* A, int64_t lda, T* B,
              int64_t ldb, T rcond) {
  if (m <= 0 || n <= 0) {
    for (int64_t i = 0; i < n; ++i) std::fill(B + i * ldb, B + i * ldb + nrhs, T(0));
    return 0;
  }
  if (!allFinite(m, n, A, lda)) return -1;
  // Tall: an unpivoted blocked QR (mostly GEMM) leaves the same problem on the n x n R.
  int64_t mm = m;
  if (m > n) {
    std::vector<T> tau(n);
    qrFactor(ctx, m, n, A, lda, tau.data());
    qrApply(ctx, true, m, n, A, lda, tau.data(), nrhs, B, ldb);
    for (int64_t i = 1; i < n; ++i) std::fill(A + i * lda, A + i * lda + i, T(0));
    mm = n;
  }
  std::vector<int64_t> perm(n);
  qrPivoted(mm, n, A, lda, perm.data(), nrhs, B, ldb);

  const double rc = rcond >= T(0) ? double(rcond) : double(std::numeric_limits<T>::epsilon());
  const double cut = rc * std::fabs(double(A[0]));
  int64_t r = 0;
  while (r < std::min(mm, n) && std::fabs(double(A[r * lda + r])) > cut) ++r;

  auto rowAxpy = [&](int64_t dst, int64_t src, double f) {
    T* d = B + dst * ldb;
    const T* s = B + src * ldb;
    for (int64_t c = 0; c < nrhs; ++c) d[c] = T(double(d[c]) - f * double(s[c]));
  };
  auto rowScale = [&](int64_t i, double f) {
    for (T* d = B + i * ldb; d < B + i * ldb + nrhs; ++d) *d = T(double(*d) * f);
  };

  if (r == n) {  // full column rank: R y = (Q^T b)[0:n]
    for (int64_t i = n - 1; i >= 0; --i) {
      for (int64_t l = i + 1; l < n; ++l) rowAxpy(i, l, double(A[i * lda + l]));
      rowScale(i, 1.0 / double(A[i * lda + i]));
    }
  } else {
    // Complete orthogonal decomposition: [R11 R12] = [L 0] H_{r-1}...H_0 by an LQ of the
    // r x n trapezoid; then y = H_0...H_{r-1} [L^{-1} c; 0] is its minimum-norm solution.
    std::vector<T> tz(r);
    for (int64_t i = 1; i < r; ++i) std::fill(A + i * lda, A + i * lda + i, T(0));
    for (int64_t k = 0; k < r; ++k) {
      T* akk = A + k * lda + k;
      tz[k] = makeReflector(n - k, *akk, akk + 1, 1);
      reflectRight(r - k - 1, n - k, akk, tz[k], akk + lda, lda);
    }
    for (int64_t i = 0; i < r; ++i) {
      for (int64_t l = 0; l < i; ++l) rowAxpy(i, l, double(A[i * lda + l]));
      rowScale(i, 1.0 / double(A[i * lda + i]));
    }
    for (int64_t i = r; i < n; ++i) std::fill(B + i * ldb, B + i * ldb + nrhs, T(0));
    std::vector<double> w(nrhs);
    for (int64_t k = r - 1; k >= 0; --k)
      reflectLeft(n - k, nrhs, A + k * lda + k, 1, tz[k], B + k * ldb, ldb, w.data());
  }
  unpermuteRows(n, perm.data(), nrhs, B, ldb);
  return r;
}

#define EMBMAP_INSTANTIATE(T)                                                              \
  template void qrFactor<T>(const Ctx&, int64_t, int64_t, T*, int64_t, T*);                \
  template void qrApply<T>(const Ctx&, bool, int64_t, int64_t, const T*, int64_t, const T*, \
                           int64_t, T*, int64_t);                                          \
  template int64_t lstsq<T>(const Ctx&, int64_t, int64_t, int64_t, T*, int64_t, T*, int64_t, \
                            T);
EMBMAP_INSTANTIATE(float)
EMBMAP_INSTANTIATE(double)
#undef EMBMAP_INSTANTIATE

}  // namespace embmap::portable
