// Thin SVD by one-sided (Hestenes) Jacobi. A tall A (m >= n) is first reduced by a blocked
// QR, A = Q R; Jacobi then orthogonalises the rows of R^T (contiguous in row-major memory)
// while accumulating the rotations: J R^T = diag(S) Y, so A = (Q [Y^T; 0]) diag(S) J.
// A wide A is handled as the SVD of A^T. The QR shortens Jacobi's rows from m to n and, as in
// LAPACK's xGESVJ, makes it converge in fewer sweeps.
#include <numeric>

#include "engine/threads.h"
#include "portable/kernels.h"

namespace embmap::portable {
namespace {

constexpr int kMaxSweeps = 100;

// One-sided Jacobi on the rows of W (p x p), accumulating the rotations in J.
//
// The pairs of a sweep are visited by blocks of rows: all pairs within each block, then all
// pairs between two blocks, so that the rows involved (of W and J) stay in cache. Disjoint
// block pairs are independent, so each round of a round-robin tournament between blocks runs
// its pairs on separate threads.
template <typename T>
class Jacobi {
 public:
  Jacobi(const Ctx& ctx, int64_t p, T* W, T* J)
      : ctx_(ctx), ops_(vecOps<T>(ctx.isa)), p_(p), W_(W), J_(J), nrm_(p),
        tol_(double(std::numeric_limits<T>::epsilon()) * std::sqrt(double(p))) {
    // Two blocks of rows of W and of J in at most about 1 MB.
    bs_ = std::clamp<int64_t>(int64_t(1 << 18) / (p * int64_t(sizeof(T))), 8, 64);
    nb_ = (p + bs_ - 1) / bs_;
    workers_ = p < 128 ? 1 : std::min<int64_t>(capThreads(ctx.threads), std::max<int64_t>(1, nb_ / 2));
  }

  // Sweeps until no pair needs a rotation; false if that took more than kMaxSweeps.
  bool run() {
    for (int64_t i = 0; i < p_; ++i) nrm_[i] = ops_.dot(p_, row(W_, i), row(W_, i));
    std::vector<char> rotated(workers_);
    const int64_t slots = nb_ + nb_ % 2;  // tournament seats; an odd count gets a bye
    for (int sweep = 0; sweep < kMaxSweeps; ++sweep) {
      std::fill(rotated.begin(), rotated.end(), 0);
      parallelFor(workers_, [&](int64_t t) {
        for (int64_t b = t; b < nb_; b += workers_) rotated[t] |= blockPair(b, b);
      });
      for (int64_t round = 0; round + 1 < slots; ++round)
        parallelFor(workers_, [&](int64_t t) {
          for (int64_t k = t; k < slots / 2; k += workers_) {
            // Circle method: seat 0 stays, the others rotate by one each round.
            auto seat = [&](int64_t s) { return s == 0 ? 0 : 1 + (s - 1 + round) % (slots - 1); };
            const int64_t a = seat(k), b = seat(slots - 1 - k);
            if (a < nb_ && b < nb_) rotated[t] |= blockPair(std::min(a, b), std::max(a, b));
          }
        });
      if (std::find(rotated.begin(), rotated.end(), 1) == rotated.end()) return true;
    }
    return false;
  }

 private:
  T* row(T* M, int64_t i) const { return M + i * p_; }

  // All pairs (i, j), i < j, with i in block a and j in block b (a <= b). Returns whether any
  // pair was rotated.
  bool blockPair(int64_t a, int64_t b) {
    bool any = false;
    const int64_t ia = a * bs_, ea = std::min(p_, ia + bs_);
    const int64_t ib = b * bs_, eb = std::min(p_, ib + bs_);
    for (int64_t i = ia; i < ea; ++i)
      for (int64_t j = std::max(ib, i + 1); j < eb; ++j) any |= pair(i, j);
    return any;
  }

  bool pair(int64_t i, int64_t j) {
    const double a = nrm_[i], b = nrm_[j];
    if (a == 0 || b == 0) return false;
    T* wi = row(W_, i);
    T* wj = row(W_, j);
    const double g = ops_.dot(p_, wi, wj);
    if (std::fabs(g) <= tol_ * std::sqrt(a) * std::sqrt(b)) return false;
    // The smaller root t of t^2 + 2 zeta t - 1 = 0 zeroes the inner product; then
    // c = 1 / h, s = t / h and 1 - c = t^2 / (h (1 + h)) with h = sqrt(1 + t^2).
    const double zeta = (b - a) / (2 * g);
    const double t = std::copysign(1.0, zeta) / (std::fabs(zeta) + std::hypot(1.0, zeta));
    const double h = std::sqrt(1 + t * t);
    const T d = T(t * t / (h * (1 + h))), s = T(t / h);
    ops_.rot(p_, wi, wj, d, s);
    ops_.rot(p_, row(J_, i), row(J_, j), d, s);
    // Recomputed rather than updated (a - t g): the update loses the small norms to
    // cancellation, and the test above relies on them.
    nrm_[i] = ops_.dot(p_, wi, wi);
    nrm_[j] = ops_.dot(p_, wj, wj);
    return true;
  }

  const Ctx& ctx_;
  const VecOps<T>& ops_;
  int64_t p_;
  T* W_;
  T* J_;
  std::vector<double> nrm_;
  double tol_;
  int64_t bs_ = 0, nb_ = 0, workers_ = 1;
};

// Replaces the rows of Y (p x p) flagged in `zero` by unit vectors orthogonal to all others
// (Gram-Schmidt, twice, on candidate basis vectors).
template <typename T>
void completeBasis(int64_t p, T* Y, std::vector<char> zero) {
  std::vector<double> x(p);
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

  std::vector<T> tau(n), W(size_t(n * n), T(0)), J(size_t(n * n), T(0));
  qrFactor(ctx, m, n, A, lda, tau.data());
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j <= i; ++j) W[i * n + j] = A[j * lda + i];  // W = R^T
    J[i * n + i] = T(1);
  }
  const bool converged = Jacobi<T>(ctx, n, W.data(), J.data()).run();

  std::vector<double> sigma(n);
  std::vector<char> zero(n);
  for (int64_t i = 0; i < n; ++i) {
    sigma[i] = norm2(n, &W[i * n], 1);
    zero[i] = !(sigma[i] >= std::numeric_limits<double>::min());
    if (!zero[i])
      for (int64_t k = 0; k < n; ++k) W[i * n + k] = T(double(W[i * n + k]) / sigma[i]);
    else
      sigma[i] = 0;
  }
  completeBasis(n, W.data(), zero);

  std::vector<int64_t> order(n);
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
