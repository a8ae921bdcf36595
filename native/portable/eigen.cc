// Symmetric eigendecomposition: Householder tridiagonalisation, implicit QL with shifts
// (tql2), then the Householder back-transform in blocked (GEMM) form.
//
// Everything is arranged so that row-major memory is walked along rows: only the upper
// triangle of A is read (row k right of the diagonal is column k below it; it is the lower
// triangle in LAPACK's column-major terms), and the eigenvector accumulator E keeps
// eigenvectors in its rows, so each QL rotation mixes two contiguous rows.
#include <numeric>

#include "engine/threads.h"
#include "portable/kernels.h"

namespace embmap::portable {
namespace {

constexpr int kMaxQlIterations = 60;  // per eigenvalue; LAPACK's steqr allows 30 on average
constexpr int64_t kBackBlock = 64;

// Q^T A Q = tridiag(d, e) with Q = H_0 ... H_{n-3}, e[k] coupling k and k+1 (e[n-1] = 0).
// Reflector k is stored in row k of A: v[k+1] = 1 implied, v[k+2:] in A[k][k+2:].
// Each step is two passes over the trailing upper triangle (S v, then the rank-2 update);
// large ones are split between threads in bands of rows of equal area.
template <typename T>
void tridiagonalize(const Ctx& ctx, int64_t n, T* A, int64_t lda, double* d, double* e, T* tau) {
  const auto dot = vecOps<T>(ctx.isa).dot;
  const int64_t maxWorkers = std::max(1, capThreads(ctx.threads));
  std::vector<T> v(n);
  std::vector<double> p(n);
  std::vector<std::vector<double>> partial(maxWorkers, std::vector<double>(n));
  for (int64_t k = 0; k + 1 < n; ++k) {
    T* row = A + k * lda;
    const int64_t s = n - k - 1;  // order of the trailing block S = A[k+1:, k+1:]
    d[k] = row[k];
    tau[k] = makeReflector(s, row[k + 1], row + k + 2, 1);
    e[k] = row[k + 1];
    if (tau[k] == T(0)) continue;
    v[0] = 1;
    for (int64_t i = 1; i < s; ++i) v[i] = row[k + 1 + i];
    auto S = [&](int64_t i) { return A + (k + 1 + i) * lda + (k + 1 + i); };  // row i from diag
    // A thread is worth starting for some 10^5 elements.
    const int64_t workers = std::min<int64_t>(maxWorkers, 1 + s * s / (1 << 18));
    auto band = [&](int64_t t) {  // rows [band(t), band(t+1)) hold 1/workers of the triangle
      return t == workers ? s : s - int64_t(double(s) * std::sqrt(1 - double(t) / workers));
    };
    // p = tau S v: row i contributes a dot product to p[i] and an axpy to p[i+1:] (the row is
    // still in cache for the second loop); each band sums into its own vector.
    parallelFor(workers, [&](int64_t t) {
      double* q = partial[t].data();
      std::fill(q, q + s, 0.0);
      for (int64_t i = band(t); i < band(t + 1); ++i) {
        const T* si = S(i);
        const double vi = v[i];
        q[i] += dot(s - i, si, &v[i]);
        for (int64_t j = 1; j < s - i; ++j) q[i + j] += double(si[j]) * vi;
      }
    });
    const double tk = tau[k];
    double pv = 0;
    for (int64_t i = 0; i < s; ++i) {
      double sum = 0;
      for (int64_t t = 0; t < workers; ++t) sum += partial[t][i];
      p[i] = tk * sum;
      pv += p[i] * double(v[i]);
    }
    const double K = 0.5 * tk * pv;
    for (int64_t i = 0; i < s; ++i) p[i] -= K * double(v[i]);  // p becomes w
    parallelFor(workers, [&](int64_t t) {  // S -= v w^T + w v^T
      for (int64_t i = band(t); i < band(t + 1); ++i) {
        T* si = S(i);
        const double vi = v[i], wi = p[i];
        for (int64_t j = 0; j < s - i; ++j)
          si[j] = T(double(si[j]) - vi * p[i + j] - wi * double(v[i + j]));
      }
    });
  }
  d[n - 1] = A[(n - 1) * lda + n - 1];
  e[n - 1] = 0;
}

// The plane rotations of the QL sweeps, kept to be applied to E later. Applied one sweep at a
// time they would stream all of E through memory once per sweep; columns of E evolve
// independently, so the log is replayed on column strips that stay in cache, one thread per
// group of strips.
template <typename T>
class RotationLog {
 public:
  // Rotation of rows (i, i+1) for i = hi-1 down to lo, as (c, s) pairs from `start`.
  void beginSweep(int64_t lo, int64_t hi) { sweeps_.push_back({lo, hi, cs_.size()}); }
  void add(double c, double s) {
    cs_.push_back(T(c));
    cs_.push_back(T(s));
  }
  bool full() const { return cs_.size() >= kCapacity; }

  void flush(const Ctx& ctx, int64_t n, T* E, int64_t lde) {
    // A strip of all n rows should fit in a 1-2 MB L2. It is copied out first: rows of E
    // sit a power of two apart for many n, which would map a strip onto a few cache sets.
    const int64_t width =
        std::clamp<int64_t>(int64_t(1 << 20) / (n * int64_t(sizeof(T))) / 16 * 16, 16, 512);
    const int64_t strips = (n + width - 1) / width;
    const int64_t workers = std::min<int64_t>(capThreads(ctx.threads), strips);
    const auto rotSweep = vecOps<T>(ctx.isa).rotSweep;
    std::vector<std::vector<T>> buffers(size_t(workers), std::vector<T>(size_t(n * width)));
    parallelFor(workers, [&](int64_t t) {
      T* strip = buffers[t].data();
      for (int64_t b = t; b < strips; b += workers) {
        const int64_t c0 = b * width, w = std::min(width, n - c0);
        for (int64_t i = 0; i < n; ++i)
          std::copy(E + i * lde + c0, E + i * lde + c0 + w, strip + i * w);
        for (const Sweep& sw : sweeps_) rotSweep(w, strip, sw.lo, sw.hi, &cs_[sw.start]);
        for (int64_t i = 0; i < n; ++i)
          std::copy(strip + i * w, strip + i * w + w, E + i * lde + c0);
      }
    });
    sweeps_.clear();
    cs_.clear();
  }

 private:
  static constexpr size_t kCapacity = size_t(1) << 22;  // values: 16-32 MB of log at most
  struct Sweep {
    int64_t lo, hi;
    size_t start;
  };
  std::vector<Sweep> sweeps_;
  std::vector<T> cs_;
};

// Implicit QL with shifts on tridiag(d, e) (EISPACK tql2), the rotations applied to the rows
// of E. Returns 0, or l+1 if eigenvalue l did not converge.
template <typename T>
int64_t tql2(const Ctx& ctx, int64_t n, double* d, double* e, T* E, int64_t lde) {
  const double eps = std::numeric_limits<T>::epsilon();
  RotationLog<T> log;
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
        log.beginSweep(l, m);
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
          log.add(c, s);  // row i <- c row i - s row i+1, row i+1 <- s row i + c row i+1
        }
        if (log.full()) log.flush(ctx, n, E, lde);
        p = -s * s2 * c3 * el1 * e[l] / dl1;
        e[l] = s * p;
        d[l] = c * p;
      } while (std::fabs(e[l]) > eps * tst1);
    }
    d[l] += f;
    e[l] = 0;
  }
  log.flush(ctx, n, E, lde);
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
  std::vector<double> d(n), e(n);
  std::vector<T> tau(n), E(size_t(n * n), T(0));
  tridiagonalize(ctx, n, A, lda, d.data(), e.data(), tau.data());
  for (int64_t i = 0; i < n; ++i) E[i * n + i] = T(1);
  if (const int64_t info = tql2(ctx, n, d.data(), e.data(), E.data(), n)) return info;
  backTransform(ctx, n, A, lda, tau.data(), E.data(), n);
  std::vector<int64_t> order(n);
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
