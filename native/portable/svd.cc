// Thin SVD by one-sided (Hestenes) Jacobi. A tall A (m >= n) is first reduced by a blocked
// QR, A = Q R; Jacobi then orthogonalises the rows of R^T (contiguous in row-major memory)
// while accumulating the rotations: J R^T = diag(S) Y, so A = (Q [Y^T; 0]) diag(S) J.
// A wide A is handled as the SVD of A^T. The QR shortens Jacobi's rows from m to n and, as in
// LAPACK's xGESVJ, makes it converge in fewer sweeps.
#include <numeric>

#include "portable/kernels.h"

namespace embmap::portable {
namespace {

constexpr int kMaxSweeps = 100;

// Rotates row pairs of W (p x p) until all are orthogonal to tol (relative), applying the same
// rotations to J. Returns false if that took more than kMaxSweeps sweeps.
template <typename T>
bool jacobi(int64_t p, T* W, T* J) {
  const double tol = double(std::numeric_limits<T>::epsilon()) * std::sqrt(double(p));
  std::vector<double> nrm(static_cast<size_t>(p));
  for (int sweep = 0; sweep < kMaxSweeps; ++sweep) {
    for (int64_t i = 0; i < p; ++i) nrm[i] = dotAcc(p, W + i * p, W + i * p);
    bool rotated = false;
    for (int64_t i = 0; i + 1 < p; ++i)
      for (int64_t j = i + 1; j < p; ++j) {
        const double a = nrm[i], b = nrm[j];
        if (a == 0 || b == 0) continue;
        T* __restrict wi = W + i * p;
        T* __restrict wj = W + j * p;
        const double g = dotAcc(p, wi, wj);
        if (std::fabs(g) <= tol * std::sqrt(a) * std::sqrt(b)) continue;
        rotated = true;
        // The smaller root t of t^2 + 2 zeta t - 1 = 0 zeroes the inner product.
        const double zeta = (b - a) / (2 * g);
        const double t = std::copysign(1.0, zeta) / (std::fabs(zeta) + std::hypot(1.0, zeta));
        const double c = 1 / std::sqrt(1 + t * t);
        const T cs = T(c), sn = T(c * t);
        for (int64_t k = 0; k < p; ++k) {
          const T x = wi[k], y = wj[k];
          wi[k] = cs * x - sn * y;
          wj[k] = sn * x + cs * y;
        }
        T* __restrict ji = J + i * p;
        T* __restrict jj = J + j * p;
        for (int64_t k = 0; k < p; ++k) {
          const T x = ji[k], y = jj[k];
          ji[k] = cs * x - sn * y;
          jj[k] = sn * x + cs * y;
        }
        nrm[i] = a - t * g;
        nrm[j] = b + t * g;
      }
    if (!rotated) return true;
  }
  return false;
}

// Replaces the rows of Y (p x p) flagged in `zero` by unit vectors orthogonal to all others
// (Gram-Schmidt, twice, on candidate basis vectors).
template <typename T>
void completeBasis(int64_t p, T* Y, std::vector<char> zero) {
  std::vector<double> x(static_cast<size_t>(p));
  for (int64_t z = 0; z < p; ++z) {
    if (!zero[z]) continue;
    for (int64_t cand = 0; cand < p; ++cand) {
      std::fill(x.begin(), x.end(), 0.0);
      x[cand] = 1;
      for (int pass = 0; pass < 2; ++pass)
        for (int64_t i = 0; i < p; ++i) {
          if (zero[i]) continue;
          const T* y = Y + i * p;
          double d = 0;
          for (int64_t k = 0; k < p; ++k) d += x[k] * double(y[k]);
          for (int64_t k = 0; k < p; ++k) x[k] -= d * double(y[k]);
        }
      double nx = 0;
      for (double v : x) nx += v * v;
      nx = std::sqrt(nx);
      if (nx < 0.5) continue;  // cand lies (mostly) in the span already
      for (int64_t k = 0; k < p; ++k) Y[z * p + k] = T(x[k] / nx);
      zero[z] = 0;
      break;
    }
  }
}

template <typename T>
int64_t svdTall(const Ctx& ctx, int64_t m, int64_t n, T* A, int64_t lda, T* U, int64_t ldu,
                T* S, T* Vt, int64_t ldvt) {
  // A power-of-two scale (exact) keeps the squared norms away from overflow and underflow.
  double amax = 0;
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) amax = std::max(amax, std::fabs(double(A[i * lda + j])));
  int ex = 0;
  if (amax > 0) std::frexp(amax, &ex);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) A[i * lda + j] = T(std::ldexp(double(A[i * lda + j]), -ex));

  std::vector<T> tau(static_cast<size_t>(n)), W(size_t(n * n), T(0)), J(size_t(n * n), T(0));
  qrFactor(ctx, m, n, A, lda, tau.data());
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j <= i; ++j) W[i * n + j] = A[j * lda + i];  // W = R^T
    J[i * n + i] = T(1);
  }
  const bool converged = jacobi(n, W.data(), J.data());

  std::vector<double> sigma(static_cast<size_t>(n));
  std::vector<char> zero(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    sigma[i] = norm2(n, &W[i * n], 1);
    zero[i] = !(sigma[i] >= std::numeric_limits<double>::min());
    if (!zero[i])
      for (int64_t k = 0; k < n; ++k) W[i * n + k] = T(double(W[i * n + k]) / sigma[i]);
    else
      sigma[i] = 0;
  }
  completeBasis(n, W.data(), zero);

  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), int64_t(0));
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t a, int64_t b) { return sigma[a] > sigma[b]; });
  for (int64_t c = 0; c < n; ++c) {
    const int64_t o = order[c];
    S[c] = T(std::ldexp(sigma[o], ex));
    std::copy(&J[o * n], &J[o * n] + n, Vt + c * ldvt);
    for (int64_t i = 0; i < n; ++i) U[i * ldu + c] = W[o * n + i];
  }
  for (int64_t i = n; i < m; ++i) std::fill(U + i * ldu, U + i * ldu + n, T(0));
  qrApply(ctx, false, m, n, A, lda, tau.data(), n, U, ldu);
  return converged ? 0 : 1;
}

}  // namespace

template <typename T>
int64_t svd(const Ctx& ctx, int64_t m, int64_t n, T* A, int64_t lda, T* U, int64_t ldu, T* S,
            T* Vt, int64_t ldvt) {
  if (m <= 0 || n <= 0) return 0;
  if (!allFinite(m, n, A, lda)) return 1;
  if (m >= n) return svdTall(ctx, m, n, A, lda, U, ldu, S, Vt, ldvt);
  // A^T = U' S V'^T, so A = V' S U'^T: U = V'^T^T, Vt = U'^T.
  std::vector<T> At(size_t(n * m)), Ut(size_t(n * m)), Vtt(size_t(m * m));
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) At[j * m + i] = A[i * lda + j];
  const int64_t info = svdTall(ctx, n, m, At.data(), m, Ut.data(), m, S, Vtt.data(), m);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < m; ++j) U[i * ldu + j] = Vtt[j * m + i];
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) Vt[i * ldvt + j] = Ut[j * m + i];
  return info;
}

template int64_t svd<float>(const Ctx&, int64_t, int64_t, float*, int64_t, float*, int64_t,
                            float*, float*, int64_t);
template int64_t svd<double>(const Ctx&, int64_t, int64_t, double*, int64_t, double*, int64_t,
                             double*, double*, int64_t);

}  // namespace embmap::portable
