// Checks every backend compiled into this build (the portable one once per GEMM kernel clone
// this CPU can run, and the BLAS one when present) against plain long double references.
// Inputs are random, seeded from std::random_device unless EMBMAP_TEST_SEED is set; the seed is
// printed so that a failure can be replayed. Tolerances are multiples of eps(T) scaled by the
// problem size: the constants leave a wide margin over observed errors, while a wrong result
// is off by O(1).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "engine/backend.h"
#include "tests/check.h"

using namespace embmap;
using LD = long double;

namespace {

std::mt19937_64 rng;

template <typename T>
constexpr LD eps() {
  return LD(std::numeric_limits<T>::epsilon());
}

template <typename T>
const char* typeName() {
  return sizeof(T) == 4 ? "f32" : "f64";
}

const LD kNaN = std::numeric_limits<LD>::quiet_NaN();

// A row-major matrix with ld = cols + pad. Padding starts as NaN so that reading it poisons
// results; tests that write into a matrix check that its padding is left alone.
template <typename T>
struct Mat {
  int64_t rows, cols, ld;
  std::vector<T> a;
  Mat(int64_t r, int64_t c, int64_t pad = 0)
      : rows(r), cols(c), ld(std::max<int64_t>(1, c + pad)),
        a(size_t(std::max<int64_t>(1, r * ld)), T(kNaN)) {
    for (int64_t i = 0; i < r; ++i)
      for (int64_t j = 0; j < c; ++j) (*this)(i, j) = T(0);
  }
  T& operator()(int64_t i, int64_t j) { return a[size_t(i * ld + j)]; }
  T operator()(int64_t i, int64_t j) const { return a[size_t(i * ld + j)]; }
  T* p() { return a.data(); }
  bool paddingIsNaN() const {
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = cols; j < ld; ++j)
        if (!std::isnan((*this)(i, j))) return false;
    return true;
  }
};

template <typename T>
Mat<T> randn(int64_t r, int64_t c, int64_t pad = 0) {
  std::normal_distribution<double> nd;
  Mat<T> m(r, c, pad);
  for (int64_t i = 0; i < r; ++i)
    for (int64_t j = 0; j < c; ++j) m(i, j) = T(nd(rng));
  return m;
}

double uniform(double lo, double hi) { return std::uniform_real_distribution<double>(lo, hi)(rng); }

// ---- long double reference helpers on dense vectors (row-major, no padding)

using Dense = std::vector<LD>;

template <typename T>
Dense dense(const Mat<T>& m) {
  Dense d(size_t(m.rows * m.cols));
  for (int64_t i = 0; i < m.rows; ++i)
    for (int64_t j = 0; j < m.cols; ++j) d[size_t(i * m.cols + j)] = m(i, j);
  return d;
}

// C = op(A) op(B) with op(A) m x k, op(B) k x n.
Dense mul(const Dense& A, bool tA, const Dense& B, bool tB, int64_t m, int64_t n, int64_t k) {
  Dense C(size_t(m * n), 0);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t p = 0; p < k; ++p) {
      const LD a = tA ? A[size_t(p * m + i)] : A[size_t(i * k + p)];
      for (int64_t j = 0; j < n; ++j)
        C[size_t(i * n + j)] += a * (tB ? B[size_t(j * k + p)] : B[size_t(p * n + j)]);
    }
  return C;
}

// Solves M X = R (M n x n, R n x r) by Gaussian elimination with partial pivoting.
Dense solve(Dense M, Dense R, int64_t n, int64_t r) {
  for (int64_t c = 0; c < n; ++c) {
    int64_t piv = c;
    for (int64_t i = c + 1; i < n; ++i)
      if (std::fabs(M[size_t(i * n + c)]) > std::fabs(M[size_t(piv * n + c)])) piv = i;
    for (int64_t j = 0; j < n; ++j) std::swap(M[size_t(c * n + j)], M[size_t(piv * n + j)]);
    for (int64_t j = 0; j < r; ++j) std::swap(R[size_t(c * r + j)], R[size_t(piv * r + j)]);
    for (int64_t i = c + 1; i < n; ++i) {
      const LD f = M[size_t(i * n + c)] / M[size_t(c * n + c)];
      for (int64_t j = c; j < n; ++j) M[size_t(i * n + j)] -= f * M[size_t(c * n + j)];
      for (int64_t j = 0; j < r; ++j) R[size_t(i * r + j)] -= f * R[size_t(c * r + j)];
    }
  }
  for (int64_t c = n - 1; c >= 0; --c)
    for (int64_t j = 0; j < r; ++j) {
      LD s = R[size_t(c * r + j)];
      for (int64_t l = c + 1; l < n; ++l) s -= M[size_t(c * n + l)] * R[size_t(l * r + j)];
      R[size_t(c * r + j)] = s / M[size_t(c * n + c)];
    }
  return R;
}

// pinv(A) b for A = F G with F (m x r) of full column rank and G (r x n) of full row rank:
// pinv(A) = G^T (G G^T)^{-1} (F^T F)^{-1} F^T.
Dense pinvSolve(const Dense& F, const Dense& G, const Dense& b, int64_t m, int64_t r, int64_t n,
                int64_t nrhs) {
  const Dense y =
      solve(mul(F, true, F, false, r, r, m), mul(F, true, b, false, r, nrhs, m), r, nrhs);
  const Dense z = solve(mul(G, false, G, true, r, r, n), y, r, nrhs);
  return mul(G, true, z, false, n, nrhs, r);
}

LD maxAbs(const Dense& v) {
  LD s = 0;
  for (LD x : v) s = std::max(s, std::fabs(x));
  return s;
}

LD frob(const Dense& v) {
  LD s = 0;
  for (LD x : v) s += x * x;
  return std::sqrt(s);
}

// max |M M^T - I| over the r x r Gram matrix of M's first r rows (length len, stride ld).
template <typename T>
LD orthoError(const T* M, int64_t r, int64_t len, int64_t ld) {
  LD worst = 0;
  for (int64_t i = 0; i < r; ++i)
    for (int64_t j = 0; j <= i; ++j) {
      LD s = 0;
      for (int64_t k = 0; k < len; ++k) s += LD(M[i * ld + k]) * LD(M[j * ld + k]);
      worst = std::max(worst, std::fabs(s - (i == j ? 1 : 0)));
    }
  return worst;
}

// k x n with orthonormal rows (Gram-Schmidt, twice, on Gaussian rows).
Dense orthonormalRows(int64_t k, int64_t n) {
  std::normal_distribution<double> nd;
  Dense Q(size_t(k * n));
  for (LD& x : Q) x = nd(rng);
  for (int64_t i = 0; i < k; ++i) {
    LD* qi = &Q[size_t(i * n)];
    for (int pass = 0; pass < 2; ++pass)
      for (int64_t j = 0; j < i; ++j) {
        const LD* qj = &Q[size_t(j * n)];
        LD d = 0;
        for (int64_t l = 0; l < n; ++l) d += qi[l] * qj[l];
        for (int64_t l = 0; l < n; ++l) qi[l] -= d * qj[l];
      }
    LD s = 0;
    for (int64_t l = 0; l < n; ++l) s += qi[l] * qi[l];
    for (int64_t l = 0; l < n; ++l) qi[l] /= std::sqrt(s);
  }
  return Q;
}

template <typename T>
Mat<T> transposed(const Mat<T>& m, int64_t pad = 0) {
  Mat<T> t(m.cols, m.rows, pad);
  for (int64_t i = 0; i < m.rows; ++i)
    for (int64_t j = 0; j < m.cols; ++j) t(j, i) = m(i, j);
  return t;
}

// ---- one reporting line per group

struct Group {
  std::string line;
  int before = check::failures();
  int cases = 0;
  std::chrono::steady_clock::time_point t0 = std::chrono::steady_clock::now();
  Group(const std::string& label, const char* name, const char* type)
      : line(label + "  " + name + " " + type) {}
  ~Group() {
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("%-44s %4d cases  %6.2f s  %s\n", line.c_str(), cases, s,
                check::failures() == before ? "ok" : "FAILED");
    std::fflush(stdout);
  }
};

// ---- gemm

template <typename T>
void testGemm(Backend& be, const std::string& label) {
  Group g(label, "gemm", typeName<T>());
  Linalg<T>& la = be.la<T>();
  const int savedThreads = be.info().threads;
  const int64_t sizes[] = {0, 1, 7, 33, 130, 257};
  struct Dims {
    int64_t m, n, k;
  };
  std::vector<Dims> dims;
  for (int a = 0; a < 6; ++a)
    for (int b = 0; b < 6; ++b) dims.push_back({sizes[a], sizes[b], sizes[(a + 2 * b + 1) % 6]});
  dims.push_back({257, 130, 300});  // k beyond one cache block: beta applies to the first only
  dims.push_back({3, 4200, 5});     // n beyond one B panel
  dims.push_back({130, 1, 257});
  const T sentinel = T(12345);
  int variant = 0;
  for (const Dims& d : dims)
    for (int tA = 0; tA < 2; ++tA)
      for (int tB = 0; tB < 2; ++tB) {
        ++variant;
        be.setThreads(variant % 3 == 0 ? 2 : 1);  // more would oversubscribe small CI machines
        const T betas[] = {T(0), T(1), T(-0.75)};
        const T beta = betas[variant % 3];
        const T alpha = T(uniform(0.5, 1.5) * (variant % 2 ? -1 : 1));
        const Mat<T> A = tA ? randn<T>(d.k, d.m, 3) : randn<T>(d.m, d.k, 3);
        const Mat<T> B = tB ? randn<T>(d.n, d.k, 2) : randn<T>(d.k, d.n, 2);
        Mat<T> C = randn<T>(d.m, d.n, 2);
        for (int64_t i = 0; i < d.m; ++i) {
          for (int64_t j = d.n; j < C.ld; ++j) C(i, j) = sentinel;
          if (beta == T(0))
            for (int64_t j = 0; j < d.n; ++j) C(i, j) = T(kNaN);
        }
        const Mat<T> C0 = C;
        la.gemm(tA, tB, d.m, d.n, d.k, alpha, A.a.data(), A.ld, B.a.data(), B.ld, beta, C.p(),
                C.ld);
        ++g.cases;
        LD worst = 0;
        bool padOk = true;
        for (int64_t i = 0; i < d.m; ++i) {
          for (int64_t j = 0; j < d.n; ++j) {
            LD ref = 0, mag = 0;
            for (int64_t p = 0; p < d.k; ++p) {
              const LD x = LD(tA ? A(p, i) : A(i, p)) * LD(tB ? B(j, p) : B(p, j));
              ref += x;
              mag += std::fabs(x);
            }
            ref *= alpha;
            mag *= std::fabs(LD(alpha));
            if (beta != T(0)) {
              ref += LD(beta) * LD(C0(i, j));
              mag += std::fabs(LD(beta) * LD(C0(i, j)));
            }
            const LD err = std::fabs(LD(C(i, j)) - ref) / ((d.k + 2) * eps<T>() * mag + 1e-30L);
            worst = std::isnan(err) ? LD(1e30) : std::max(worst, err);
          }
          for (int64_t j = d.n; j < C.ld; ++j) padOk = padOk && C(i, j) == sentinel;
        }
        CHECK(worst <= 2, label, " gemm m=", d.m, " n=", d.n, " k=", d.k, " tA=", tA, " tB=", tB,
              " beta=", beta, ": error ", double(worst), " x (k+2) eps |alpha||A||B|");
        CHECK(padOk, label, " gemm wrote outside C: m=", d.m, " n=", d.n);
      }
  be.setThreads(savedThreads);
}

// ---- syrkT

template <typename T>
void testSyrk(Backend& be, const std::string& label) {
  Group g(label, "syrkT", typeName<T>());
  Linalg<T>& la = be.la<T>();
  const int64_t ns[] = {0, 1, 7, 33, 130, 257};
  const int64_t ks[] = {1, 40, 300};
  int variant = 0;
  for (int64_t n : ns)
    for (int64_t k : ks) {
      const T beta = ++variant % 2 ? T(0) : T(1.5);
      const T alpha = T(uniform(0.5, 2));
      const Mat<T> A = randn<T>(k, n, 3);
      Mat<T> C(n, n, 1);
      for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j <= i; ++j)
          C(i, j) = C(j, i) = beta == T(0) ? T(kNaN) : T(uniform(-1, 1));
      const Mat<T> C0 = C;
      la.syrkT(n, k, alpha, A.a.data(), A.ld, beta, C.p(), C.ld);
      ++g.cases;
      LD worst = 0;
      for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j < n; ++j) {
          LD ref = 0, mag = 0;
          for (int64_t p = 0; p < k; ++p) {
            const LD x = LD(A(p, i)) * LD(A(p, j));
            ref += x;
            mag += std::fabs(x);
          }
          ref *= alpha;
          mag *= alpha;
          if (beta != T(0)) {
            ref += LD(beta) * LD(C0(i, j));
            mag += std::fabs(LD(beta) * LD(C0(i, j)));
          }
          const LD err = std::fabs(LD(C(i, j)) - ref) / ((k + 2) * eps<T>() * mag + 1e-30L);
          worst = std::isnan(err) ? LD(1e30) : std::max(worst, err);
        }
      CHECK(worst <= 2, label, " syrkT n=", n, " k=", k, " beta=", beta, ": error ",
            double(worst), " x (k+2) eps |alpha||A^T||A|");
      CHECK(C.paddingIsNaN(), label, " syrkT wrote outside C, n=", n);
    }
}

// ---- potrf / potrs

template <typename T>
Mat<T> spd(int64_t n, int64_t pad) {
  const Mat<T> X = randn<T>(n, n);
  const Dense G = mul(dense(X), true, dense(X), false, n, n, n);
  Mat<T> A(n, n, pad);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) A(i, j) = T(G[size_t(i * n + j)] + (i == j ? n : 0));
  return A;
}

template <typename T>
void testCholesky(Backend& be, const std::string& label) {
  Group g(label, "potrf/potrs", typeName<T>());
  Linalg<T>& la = be.la<T>();
  for (int64_t n : {1, 7, 33, 130, 257}) {
    const Mat<T> A = spd<T>(n, 5);
    Mat<T> L = A;
    const int64_t info = la.potrf(n, L.p(), L.ld);
    ++g.cases;
    CHECK(info == 0, label, " potrf of an SPD matrix, n=", n, " returned ", info);
    bool upperZero = true;
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = i + 1; j < n; ++j) upperZero = upperZero && L(i, j) == T(0);
    CHECK(upperZero, label, " potrf left the strict upper triangle non-zero, n=", n);
    CHECK(L.paddingIsNaN(), label, " potrf wrote outside A, n=", n);
    const Dense Ld = dense(L), Ad = dense(A);
    const Dense LLt = mul(Ld, false, Ld, true, n, n, n);
    LD worst = 0;
    for (size_t i = 0; i < LLt.size(); ++i) worst = std::max(worst, std::fabs(LLt[i] - Ad[i]));
    CHECK(worst <= 4 * n * eps<T>() * maxAbs(Ad), label, " potrf: |L L^T - A| = ",
          double(worst), " for n=", n);

    for (int64_t nrhs : {1, 4}) {
      const Mat<T> B = randn<T>(n, nrhs, 2);
      Mat<T> X = B;
      la.potrs(n, nrhs, L.a.data(), L.ld, X.p(), X.ld);
      ++g.cases;
      const Dense R = mul(Ad, false, dense(X), false, n, nrhs, n);
      const Dense Bd = dense(B);
      LD res = 0;
      for (size_t i = 0; i < R.size(); ++i) res = std::max(res, std::fabs(R[i] - Bd[i]));
      LD normA = 0;  // infinity norm
      for (int64_t i = 0; i < n; ++i) {
        LD s = 0;
        for (int64_t j = 0; j < n; ++j) s += std::fabs(Ad[size_t(i * n + j)]);
        normA = std::max(normA, s);
      }
      const LD tol = 8 * n * eps<T>() * normA * maxAbs(dense(X));
      CHECK(res <= tol, label, " potrs residual ", double(res), " > ", double(tol), " n=", n,
            " nrhs=", nrhs);
      CHECK(X.paddingIsNaN(), label, " potrs wrote outside B");
    }
  }
  // Not positive definite: the leading minor of order j+1 is the first that fails.
  for (int64_t j : {0, 5, 129, 139}) {
    const int64_t n = 140;
    Mat<T> A(n, n);
    for (int64_t r = 0; r < n; ++r)
      for (int64_t c = 0; c <= r; ++c) A(r, c) = A(c, r) = r == c ? T(n) : T(uniform(-0.01, 0.01));
    A(j, j) = T(-1);
    const int64_t info = la.potrf(n, A.p(), A.ld);
    ++g.cases;
    CHECK(info == j + 1, label, " potrf on a matrix indefinite at ", j, " returned ", info,
          " (want ", j + 1, ")");
  }
  {
    Mat<T> A = spd<T>(7, 0);
    A(3, 3) = T(kNaN);
    const int64_t info = la.potrf(7, A.p(), A.ld);
    ++g.cases;
    CHECK(info == 4, label, " potrf with NaN on diagonal 3 returned ", info, " (want 4)");
  }
}

// ---- lstsq

// A = F G (m x n, rank r) built exactly in T: one factor is random, the other a selection
// matrix with signs and powers of two, so A's extra columns (or rows) repeat earlier ones
// exactly. Random factors are rectangular Gaussians (or shifted, if square) so that A is well
// conditioned and the accuracy tolerance cannot be hit by an unlucky draw.
struct LstsqCase {
  const char* what;
  int64_t m, n, r, nrhs;
  bool randomG;  // G random and F a selection (repeated rows); else F random, G = [I | S]
};

template <typename T>
void testLstsq(Backend& be, const std::string& label) {
  Group g(label, "lstsq", typeName<T>());
  Linalg<T>& la = be.la<T>();
  const T rcond = T(std::sqrt(double(std::numeric_limits<T>::epsilon())));
  const LstsqCase cases[] = {
      {"overdetermined", 130, 33, 33, 3, false}, {"overdetermined", 257, 130, 130, 2, false},
      {"square", 33, 33, 33, 1, false},          {"dup columns", 40, 12, 8, 2, false},
      {"dup columns", 200, 80, 70, 2, false},    {"underdetermined", 7, 33, 7, 1, true},
      {"underdetermined", 33, 130, 33, 2, true}, {"dup rows (wide)", 20, 33, 15, 2, true},
      {"dup rows (tall)", 50, 40, 12, 1, true},
  };
  for (const LstsqCase& c : cases) {
    const int64_t m = c.m, n = c.n, r = c.r, nrhs = c.nrhs;
    Mat<T> F(m, r), G(r, n);
    const T mult[] = {T(1), T(-1), T(0.5), T(2)};
    if (!c.randomG) {
      F = randn<T>(m, r);
      if (m == r)
        for (int64_t i = 0; i < r; ++i) F(i, i) += T(3 * std::sqrt(double(r)));
      for (int64_t j = 0; j < n; ++j) G(j % r, j) = j < r ? T(1) : mult[j % 4];
    } else {
      G = randn<T>(r, n);
      for (int64_t i = 0; i < m; ++i) F(i, i % r) = i < r ? T(1) : mult[i % 4];
    }
    const Dense Fd = dense(F), Gd = dense(G), Ad = mul(Fd, false, Gd, false, m, n, r);
    Mat<T> A(m, n, 3);
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) A(i, j) = T(Ad[size_t(i * n + j)]);
    const Mat<T> b = randn<T>(std::max(m, n), nrhs, 1);
    Dense bd(size_t(m * nrhs));
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < nrhs; ++j) bd[size_t(i * nrhs + j)] = b(i, j);
    const Dense xref = pinvSolve(Fd, Gd, bd, m, r, n, nrhs);

    Mat<T> Aw = A, X = b;
    const int64_t rank = la.lstsq(m, n, nrhs, Aw.p(), Aw.ld, X.p(), X.ld, rcond);
    ++g.cases;
    CHECK(rank == r, label, " lstsq ", c.what, " ", m, "x", n, ": rank ", rank, " (want ", r, ")");
    Dense x(size_t(n * nrhs));
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < nrhs; ++j) x[size_t(i * nrhs + j)] = X(i, j);
    const LD tol = 20 * (m + n) * eps<T>();
    Dense dx(x.size());
    for (size_t i = 0; i < x.size(); ++i) dx[i] = x[i] - xref[i];
    CHECK(frob(dx) <= tol * frob(xref), label, " lstsq ", c.what, " ", m, "x", n,
          ": |x - pinv(A) b| / |pinv(A) b| = ", double(frob(dx) / frob(xref)));
    CHECK(std::fabs(frob(x) - frob(xref)) <= tol * frob(xref), label, " lstsq ", c.what,
          ": |x| = ", double(frob(x)), " but the minimum norm is ", double(frob(xref)));
    // The residual is orthogonal to the range of A.
    Dense res = mul(Ad, false, x, false, m, nrhs, n);
    for (size_t i = 0; i < res.size(); ++i) res[i] -= bd[i];
    const Dense Atr = mul(Ad, true, res, false, n, nrhs, m);
    const LD normA = frob(Ad);
    CHECK(frob(Atr) <= tol * normA * (frob(res) + normA * frob(x)), label, " lstsq ", c.what,
          " ", m, "x", n, ": |A^T (A x - b)| = ", double(frob(Atr)));
    if (m < n && r == m) {  // consistent: A x = b, with x in the row space of A
      CHECK(frob(res) <= tol * normA * frob(x), label, " lstsq ", c.what,
            ": |A x - b| = ", double(frob(res)));
      const Dense y = solve(mul(Ad, false, Ad, true, m, m, n), mul(Ad, false, x, false, m, nrhs, n),
                            m, nrhs);
      const Dense px = mul(Ad, true, y, false, n, nrhs, m);  // projection onto the row space
      Dense d(x.size());
      for (size_t i = 0; i < x.size(); ++i) d[i] = x[i] - px[i];
      CHECK(frob(d) <= tol * frob(x), label, " lstsq ", c.what,
            ": x is not in the row space of A, off by ", double(frob(d)));
    }
  }
  {  // zero sizes
    Mat<T> A(1, 1), X = randn<T>(5, 2);
    const int64_t r0 = la.lstsq(0, 5, 2, A.p(), 5, X.p(), X.ld, rcond);
    ++g.cases;
    bool zero = true;
    for (int64_t i = 0; i < 5; ++i)
      for (int64_t j = 0; j < 2; ++j) zero = zero && X(i, j) == T(0);
    CHECK(r0 == 0 && zero, label, " lstsq with m = 0: rank ", r0, ", want 0 and x = 0");
    const int64_t r1 = la.lstsq(5, 0, 2, A.p(), 1, X.p(), X.ld, rcond);
    CHECK(r1 == 0, label, " lstsq with n = 0 returned ", r1);
  }
  {  // NaN input: reported, or at least not passed off as a finite answer
    Mat<T> A = randn<T>(10, 4), X = randn<T>(10, 1);
    A(2, 1) = T(kNaN);
    const int64_t rank = la.lstsq(10, 4, 1, A.p(), A.ld, X.p(), X.ld, rcond);
    ++g.cases;
    bool finite = true;
    for (int64_t i = 0; i < 4; ++i) finite = finite && std::isfinite(X(i, 0));
    CHECK(rank == -1 || !finite, label, " lstsq with NaN input returned rank ", rank,
          " and a finite x");
  }
}

// ---- syev

// Residuals and orthonormality of every `stride`-th eigenpair (all of them by default; a
// sample keeps the reference cheap for large n).
template <typename T>
void checkEigen(const std::string& label, const char* what, const Mat<T>& A0, const Mat<T>& V,
                const std::vector<T>& w, int64_t info, int64_t stride) {
  const int64_t n = A0.rows;
  CHECK(info == 0, label, " syev ", what, " n=", n, " returned ", info);
  const Dense Ad = dense(A0);
  const LD normA = frob(Ad);
  const LD tol = 10 * n * eps<T>();
  LD worstRes = 0;
  bool ascending = true;
  for (int64_t i = 1; i < n; ++i) ascending = ascending && w[i] >= w[i - 1];
  std::vector<T> sample;  // the checked eigenvectors, one per row
  for (int64_t i = 0; i < n; i += stride) {
    for (int64_t j = 0; j < n; ++j) sample.push_back(V(i, j));
    LD r2 = 0;
    for (int64_t a = 0; a < n; ++a) {
      LD s = -LD(w[i]) * LD(V(i, a));
      for (int64_t b = 0; b < n; ++b) s += Ad[size_t(a * n + b)] * LD(V(i, b));
      r2 += s * s;
    }
    worstRes = std::max(worstRes, std::sqrt(r2));
  }
  CHECK(worstRes <= tol * normA, label, " syev ", what, " n=", n, ": |A v - w v| = ",
        double(worstRes), " (|A| = ", double(normA), ")");
  const LD ortho = orthoError(sample.data(), int64_t(sample.size()) / n, n, n);
  CHECK(ortho <= tol, label, " syev ", what, " n=", n, ": |V V^T - I| = ", double(ortho));
  CHECK(ascending, label, " syev ", what, " n=", n, ": eigenvalues not ascending");
}

template <typename T>
void testSyev(Backend& be, const std::string& label) {
  Group g(label, "syev", typeName<T>());
  Linalg<T>& la = be.la<T>();
  auto run = [&](const char* what, const Mat<T>& A0, int64_t stride = 1) {
    Mat<T> V = A0;
    std::vector<T> w(size_t(std::max<int64_t>(1, A0.rows)));
    const int64_t info = la.syev(A0.rows, V.p(), V.ld, w.data());
    ++g.cases;
    checkEigen(label, what, A0, V, w, info, stride);
    CHECK(V.paddingIsNaN(), label, " syev wrote outside A");
    return w;
  };
  // n = 600 reaches the multi-threaded paths of the portable backend; a sample is checked.
  for (int64_t n : {1, 2, 7, 33, 130, 600}) {
    Mat<T> A(n, n, 3);
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j <= i; ++j) A(i, j) = A(j, i) = T(uniform(-1, 1));
    run("random", A, n > 200 ? 15 : 1);
  }
  {  // identity plus rank two: eigenvalue 3 of multiplicity n-2, and 3 + eig(Gram(u, z))
    const int64_t n = 40;
    const Mat<T> U = randn<T>(2, n);
    Mat<T> A(n, n, 2);
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < n; ++j)
        A(i, j) = T((i == j ? 3 : 0) + LD(U(0, i)) * U(0, j) + LD(U(1, i)) * U(1, j));
    const std::vector<T> w = run("identity+low-rank", A);
    const Dense G = mul(dense(U), false, dense(U), true, 2, 2, n);
    const LD tr = G[0] + G[3], det = G[0] * G[3] - G[1] * G[2];
    const LD disc = std::sqrt(tr * tr / 4 - det);
    LD worst = std::max(std::fabs(w[n - 1] - (3 + tr / 2 + disc)),
                        std::fabs(w[n - 2] - (3 + tr / 2 - disc)));
    for (int64_t i = 0; i < n - 2; ++i) worst = std::max(worst, std::fabs(LD(w[i]) - 3));
    CHECK(worst <= 10 * n * eps<T>() * (3 + tr), label,
          " syev identity+low-rank: eigenvalues off by ", double(worst));
  }
  {  // diagonal with repeats, already tridiagonal; and the zero matrix
    Mat<T> D(6, 6);
    const T diag[] = {T(2), T(-1), T(2), T(5), T(-1), T(2)};
    for (int i = 0; i < 6; ++i) D(i, i) = diag[i];
    const std::vector<T> w = run("diagonal", D);
    const T want[] = {T(-1), T(-1), T(2), T(2), T(2), T(5)};
    bool same = true;
    for (int i = 0; i < 6; ++i) same = same && std::fabs(w[i] - want[i]) <= 8 * eps<T>() * 5;
    CHECK(same, label, " syev diagonal: wrong eigenvalues");
    run("zero", Mat<T>(5, 5));
  }
  {
    std::vector<T> w(4);
    CHECK(la.syev(0, nullptr, 1, w.data()) == 0, label, " syev n=0 failed");
    Mat<T> A(4, 4);
    A(1, 2) = A(2, 1) = T(kNaN);
    const int64_t info = la.syev(4, A.p(), A.ld, w.data());
    bool finite = true;
    for (T x : A.a) finite = finite && std::isfinite(x);
    CHECK(info != 0 || !finite, label, " syev with NaN input returned 0 and finite vectors");
  }
}

// ---- svd

template <typename T>
void testSvd(Backend& be, const std::string& label) {
  Group g(label, "svd", typeName<T>());
  Linalg<T>& la = be.la<T>();
  struct Shape {
    const char* what;
    int64_t m, n, rank;  // rank < min(m, n): A = F G with random factors
    bool graded = false;  // singular values 10^(-12 k / (r-1)): stresses Jacobi's tiny norms
  };
  // 200 and 150 columns span several row blocks of the Jacobi sweep (and an odd count).
  const Shape shapes[] = {{"tall", 130, 33, 33},        {"wide", 33, 130, 33},
                          {"square", 57, 57, 57},       {"square", 200, 200, 200},
                          {"tall", 300, 150, 150},      {"1x1", 1, 1, 1},
                          {"row", 1, 9, 1},             {"column", 9, 1, 1},
                          {"rank-deficient tall", 60, 20, 5},
                          {"rank-deficient wide", 20, 60, 5},
                          {"graded", 120, 80, 80, true},
                          {"graded", 80, 120, 80, true},
                          {"zero", 6, 4, 0}};
  for (const Shape& s : shapes) {
    const int64_t m = s.m, n = s.n, r = std::min(m, n);
    Mat<T> A(m, n, 2);
    std::vector<LD> sv(r);  // the singular values, where known
    if (s.graded) {
      const Dense P = orthonormalRows(r, m), Q = orthonormalRows(r, n);
      for (int64_t k = 0; k < r; ++k) sv[k] = std::pow(10.0L, -12.0L * k / (r - 1));
      for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < n; ++j) {
          LD x = 0;
          for (int64_t k = 0; k < r; ++k) x += P[size_t(k * m + i)] * sv[k] * Q[size_t(k * n + j)];
          A(i, j) = T(x);
        }
    } else if (s.rank == r) {
      A = randn<T>(m, n, 2);
    } else if (s.rank > 0) {
      const Dense P = mul(dense(randn<T>(m, s.rank)), false, dense(randn<T>(s.rank, n)), false,
                          m, n, s.rank);
      for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < n; ++j) A(i, j) = T(P[size_t(i * n + j)]);
    }
    Mat<T> Aw = A, U(m, r, 1), Vt(r, n, 3);
    std::vector<T> S(r);
    const int64_t info = la.svd(m, n, Aw.p(), Aw.ld, U.p(), U.ld, S.data(), Vt.p(), Vt.ld);
    ++g.cases;
    const std::string at =
        std::string(" svd ") + s.what + " " + std::to_string(m) + "x" + std::to_string(n);
    CHECK(info == 0, label, at, " returned ", info);
    bool sorted = true;
    for (int64_t i = 0; i < r; ++i) sorted = sorted && S[i] >= 0 && (i == 0 || S[i] <= S[i - 1]);
    CHECK(sorted, label, at, ": S not non-negative and descending");
    const Dense Ad = dense(A);
    const LD normA = frob(Ad), tol = 10 * std::max(m, n) * eps<T>();
    LD worst = 0;
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) {
        LD x = 0;
        for (int64_t k = 0; k < r; ++k) x += LD(U(i, k)) * S[k] * Vt(k, j);
        worst = std::max(worst, std::fabs(x - Ad[size_t(i * n + j)]));
      }
    CHECK(worst <= tol * std::max(normA, LD(1e-30)) || (normA == 0 && worst == 0), label, at,
          ": |U S Vt - A| = ", double(worst), " (|A| = ", double(normA), ")");
    const Mat<T> Ut = transposed(U);
    const LD ou = orthoError(Ut.a.data(), r, m, Ut.ld), ov = orthoError(Vt.a.data(), r, n, Vt.ld);
    CHECK(ou <= tol, label, at, ": |U^T U - I| = ", double(ou));
    CHECK(ov <= tol, label, at, ": |Vt Vt^T - I| = ", double(ov));
    for (int64_t k = s.rank; k < r; ++k)
      CHECK(S[k] <= tol * normA, label, at, ": S[", k, "] = ", double(S[k]), " should vanish");
    if (s.graded) {
      LD worstS = 0;
      for (int64_t k = 0; k < r; ++k) worstS = std::max(worstS, std::fabs(S[k] - sv[k]));
      CHECK(worstS <= tol * sv[0], label, at, ": singular values off by ", double(worstS));
    }
    CHECK(U.paddingIsNaN() && Vt.paddingIsNaN(), label, at, ": wrote outside U or Vt");
  }
  {
    Mat<T> A = randn<T>(5, 3), U(5, 3), Vt(3, 3);
    A(4, 2) = T(kNaN);
    std::vector<T> S(3);
    const int64_t info = la.svd(5, 3, A.p(), A.ld, U.p(), U.ld, S.data(), Vt.p(), Vt.ld);
    bool finite = true;
    for (T x : S) finite = finite && std::isfinite(x);
    CHECK(info != 0 || !finite, label, " svd with NaN input returned 0 and finite S");
  }
}

template <typename T>
void testAll(Backend& be, const std::string& label) {
  testGemm<T>(be, label);
  testSyrk<T>(be, label);
  testCholesky<T>(be, label);
  testLstsq<T>(be, label);
  testSyev<T>(be, label);
  testSvd<T>(be, label);
}

}  // namespace

int main() {
  uint64_t seed = std::random_device{}();
  if (const char* s = std::getenv("EMBMAP_TEST_SEED")) seed = std::strtoull(s, nullptr, 10);
  std::printf("linalg_test seed %llu (rerun with EMBMAP_TEST_SEED=%llu)\n",
              (unsigned long long)seed, (unsigned long long)seed);
  rng.seed(seed);

  struct Entry {
    std::string label;
    std::unique_ptr<Backend> backend;
  };
  std::vector<Entry> backends;
  // The portable backend once per GEMM kernel clone this CPU runs (the best one first).
  std::vector<std::string> seen;
  for (const char* want : {"", "avx2", "default"}) {
    if (*want) setenv("EMBMAP_PORTABLE_KERNEL", want, 1);
    auto be = makePortableBackend();
    unsetenv("EMBMAP_PORTABLE_KERNEL");
    const BackendInfo info = be->info();
    if (std::find(seen.begin(), seen.end(), info.kernel) != seen.end()) continue;
    seen.push_back(info.kernel);
    backends.push_back({info.name + "/" + info.kernel, std::move(be)});
  }
  std::string noBlas;
  if (auto be = makeBlasBackend(&noBlas)) {
    const BackendInfo info = be->info();
    backends.push_back({info.name + "/" + info.kernel, std::move(be)});
  } else {
    std::printf("backend cpu-blas: SKIPPED (%s)\n", noBlas.c_str());
  }
  std::string noCuda;
  if (auto be = makeCudaBackend(&noCuda)) backends.push_back({"cuda", std::move(be)});
  else std::printf("backend cuda: SKIPPED (%s)\n", noCuda.c_str());
  for (Entry& e : backends) {
    const BackendInfo info = e.backend->info();
    std::printf("backend %s: %s, kernel %s, %d thread(s)\n", info.name.c_str(),
                info.library.c_str(), info.kernel.c_str(), info.threads);
    testAll<float>(*e.backend, e.label);
    testAll<double>(*e.backend, e.label);
  }
  return check::exitCode();
}
