// Symmetric eigendecomposition: Householder tridiagonalisation, implicit QL with shifts
// (tql2), then the Householder back-transform in blocked (GEMM) form.
//
// Everything is arranged so that row-major memory is walked along rows: the upper triangle of
// A is read (row k right of the diagonal is column k below it), and the eigenvector
// accumulator E keeps eigenvectors in its rows, so each QL rotation mixes two contiguous rows.
#include <numeric>

#include "portable/kernels.h"

namespace embmap::portable {
namespace {

constexpr int kMaxQlIterations = 60;  // per eigenvalue; LAPACK's steqr allows 30 on average
constexpr int64_t kBackBlock = 64;

// Q^T A Q = tridiag(d, e) with Q = H_0 ... H_{n-3}, e[k] coupling k and k+1 (e[n-1] = 0).
// Reflector k is stored in row k of A: v[k+1] = 1 implied, v[k+2:] in A[k][k+2:].
template <typename T>
void tridiagonalize(int64_t n, T* A, int64_t lda, double* d, double* e, T* tau) {
  std::vector<double> v(static_cast<size_t>(n)), p(static_cast<size_t>(n));
  for (int64_t k = 0; k + 1 < n; ++k) {
    T* row = A + k * lda;
    const int64_t s = n - k - 1;  // order of the trailing block S = A[k+1:, k+1:]
    d[k] = row[k];
    tau[k] = makeReflector(s, row[k + 1], row + k + 2, 1);
    e[k] = row[k + 1];
    if (tau[k] == T(0)) continue;
    v[0] = 1;
    for (int64_t i = 1; i < s; ++i) v[i] = row[k + 1 + i];
    // p = tau S v from the upper triangle: row i contributes a dot product to p[i] and an
    // axpy to p[i+1:], one pass over memory.
    std::fill(p.begin(), p.begin() + s, 0.0);
    for (int64_t i = 0; i < s; ++i) {
      const T* si = A + (k + 1 + i) * lda + (k + 1 + i);
      const double vi = v[i];
      double acc = double(si[0]) * vi;
      for (int64_t j = 1; j < s - i; ++j) {
        acc += double(si[j]) * v[i + j];
        p[i + j] += double(si[j]) * vi;
      }
      p[i] += acc;
    }
    const double t = tau[k];
    double pv = 0;
    for (int64_t i = 0; i < s; ++i) pv += (p[i] *= t) * v[i];
    const double K = 0.5 * t * pv;
    for (int64_t i = 0; i < s; ++i) p[i] -= K * v[i];  // p becomes w
    for (int64_t i = 0; i < s; ++i) {                   // S -= v w^T + w v^T
      T* si = A + (k + 1 + i) * lda + (k + 1 + i);
      const double vi = v[i], wi = p[i];
      for (int64_t j = 0; j < s - i; ++j)
        si[j] = T(double(si[j]) - vi * p[i + j] - wi * v[i + j]);
    }
  }
  d[n - 1] = A[(n - 1) * lda + n - 1];
  e[n - 1] = 0;
}

// Implicit QL with shifts on tridiag(d, e) (EISPACK tql2), rotating rows of E. Returns 0, or
// l+1 if eigenvalue l did not converge.
template <typename T>
int64_t tql2(int64_t n, double* d, double* e, T* E, int64_t lde) {
  const double eps = std::numeric_limits<T>::epsilon();
  double f = 0, tst1 = 0;
  for (int64_t l = 0; l < n; ++l) {
    tst1 = std::max(tst1, std::fabs(d[l]) + std::fabs(e[l]));
    int64_t m = l;
    while (m < n - 1 && std::fabs(e[m]) > eps * tst1) ++m;
    if (m > l) {
      int iter = 0;
      do {
        if (++iter > kMaxQlIterations) return l + 1;
        double g = d[l];
        double p = (d[l + 1] - g) / (2 * e[l]);
        double r = std::copysign(std::hypot(p, 1.0), p);
        d[l] = e[l] / (p + r);
        d[l + 1] = e[l] * (p + r);
        const double dl1 = d[l + 1];
        double h = g - d[l];
        for (int64_t i = l + 2; i < n; ++i) d[i] -= h;
        f += h;
        p = d[m];
        double c = 1, c2 = 1, c3 = 1, s = 0, s2 = 0;
        const double el1 = e[l + 1];
        for (int64_t i = m - 1; i >= l; --i) {
          c3 = c2;
          c2 = c;
          s2 = s;
          g = c * e[i];
          h = c * p;
          r = std::hypot(p, e[i]);
          e[i + 1] = s * r;
          s = e[i] / r;
          c = p / r;
          p = c * d[i] - s * g;
          d[i + 1] = h + s * (c * g + s * d[i]);
          T* __restrict ei = E + i * lde;
          T* __restrict ej = E + (i + 1) * lde;
          const T cs = T(c), sn = T(s);
          for (int64_t k = 0; k < n; ++k) {
            const T hk = ej[k];
            ej[k] = sn * ei[k] + cs * hk;
            ei[k] = cs * ei[k] - sn * hk;
          }
        }
        p = -s * s2 * c3 * el1 * e[l] / dl1;
        e[l] = s * p;
        d[l] = c * p;
      } while (std::fabs(e[l]) > eps * tst1);
    }
    d[l] += f;
    e[l] = 0;
  }
  return 0;
}

// E <- E H_{n-3} ... H_0 (eigenvectors of A from those of the tridiagonal matrix), in blocks
// of reflectors taken last to first: E (H_{k1-1} ... H_{k0}) = E (I - V Tm^T V^T).
template <typename T>
void backTransform(const Ctx& ctx, int64_t n, const T* A, int64_t lda, const T* tau, T* E,
                   int64_t lde) {
  const int64_t nref = n - 2;
  std::vector<T> V, Tm(size_t(kBackBlock * kBackBlock));
  for (int64_t k1 = nref; k1 > 0; k1 -= kBackBlock) {
    const int64_t k0 = std::max<int64_t>(0, k1 - kBackBlock), kb = k1 - k0;
    const int64_t len = n - k0 - 1;  // reflectors of the block act on indices k0+1 .. n-1
    V.assign(size_t(len * kb), T(0));
    for (int64_t c = 0; c < kb; ++c) {
      const T* row = A + (k0 + c) * lda + k0 + 1;  // reflector k0+c, indexed from k0+1
      V[c * kb + c] = T(1);
      for (int64_t i = c + 1; i < len; ++i) V[i * kb + c] = row[i];
    }
    formT(ctx, len, kb, V.data(), kb, tau + k0, Tm.data());
    applyBlockRight(ctx, n, len, kb, V.data(), kb, Tm.data(), true, E + k0 + 1, lde);
  }
}

}  // namespace

template <typename T>
int64_t syev(const Ctx& ctx, int64_t n, T* A, int64_t lda, T* w) {
  if (n <= 0) return 0;
  for (int64_t i = 0; i < n; ++i)
    if (!allFinite(1, n - i, A + i * lda + i, lda)) return 1;
  std::vector<double> d(static_cast<size_t>(n)), e(static_cast<size_t>(n));
  std::vector<T> tau(static_cast<size_t>(n)), E(size_t(n * n), T(0));
  tridiagonalize(n, A, lda, d.data(), e.data(), tau.data());
  for (int64_t i = 0; i < n; ++i) E[i * n + i] = T(1);
  if (const int64_t info = tql2(n, d.data(), e.data(), E.data(), n)) return info;
  backTransform(ctx, n, A, lda, tau.data(), E.data(), n);
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), int64_t(0));
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return d[a] < d[b]; });
  for (int64_t i = 0; i < n; ++i) {
    w[i] = T(d[order[i]]);
    std::copy(&E[order[i] * n], &E[order[i] * n] + n, A + i * lda);
  }
  return 0;
}

template int64_t syev<float>(const Ctx&, int64_t, float*, int64_t, float*);
template int64_t syev<double>(const Ctx&, int64_t, double*, int64_t, double*);

}  // namespace embmap::portable
