// Internals of the portable backend shared by its translation units: the execution context,
// the routines behind Linalg<T>, and what they share (threads, vector kernels, Householder
// reflectors). Everything is row-major with a row stride `ld`, like the public interface.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <system_error>
#include <thread>
#include <vector>

#include "engine/finite.h"

namespace embmap::portable {

// Which clone of the vector kernels (GEMM micro-kernel, VecOps) runs.
enum class Isa { Default, Avx2, Avx512 };

// The best kernel this CPU supports, lowered by EMBMAP_PORTABLE_KERNEL=avx2|default (so that
// every clone can be tested on one machine).
Isa detectIsa();
const char* isaName(Isa isa);

struct Ctx {
  int threads = 1;
  Isa isa = Isa::Default;
};

template <typename T>
void gemm(const Ctx& ctx, bool transA, bool transB, int64_t m, int64_t n, int64_t k, T alpha,
          const T* A, int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc);
template <typename T>
void syrkT(const Ctx& ctx, int64_t n, int64_t k, T alpha, const T* A, int64_t lda, T beta,
           T* C, int64_t ldc);
template <typename T>
int64_t potrf(const Ctx& ctx, int64_t n, T* A, int64_t lda);
// Lower Cholesky of a small n x n block in place (only its lower triangle is read), one thread,
// dot products accumulated in double: the diagonal blocks of the blocked factorisations.
// Returns 0 or the failing order j+1.
template <typename T>
int64_t potrfUnblocked(int64_t n, T* A, int64_t lda);
template <typename T>
void potrs(const Ctx& ctx, int64_t n, int64_t nrhs, const T* L, int64_t ldl, T* B,
           int64_t ldb);
template <typename T>
int64_t lstsq(const Ctx& ctx, int64_t m, int64_t n, int64_t nrhs, T* A, int64_t lda, T* B,
              int64_t ldb, T rcond);
template <typename T>
int64_t syev(const Ctx& ctx, int64_t n, T* A, int64_t lda, T* w);
template <typename T>
int64_t svd(const Ctx& ctx, int64_t m, int64_t n, T* A, int64_t lda, T* U, int64_t ldu, T* S,
            T* Vt, int64_t ldvt);

// Blocked Householder QR of an m x n matrix, m >= n (lstsq.cc): R in the upper triangle,
// reflector j below the diagonal of column j (unit leading entry implied), tau[j] its scale.
template <typename T>
void qrFactor(const Ctx& ctx, int64_t m, int64_t n, T* A, int64_t lda, T* tau);
// C (m x cols) <- Q^T C (transpose) or Q C, Q = H_0 ... H_{n-1} from qrFactor.
template <typename T>
void qrApply(const Ctx& ctx, bool transpose, int64_t m, int64_t n, const T* A, int64_t lda,
             const T* tau, int64_t cols, T* C, int64_t ldc);

// ---- helpers

// Runs fn(0) .. fn(workers - 1): fn(0) on the calling thread, the others on new threads, or
// inline where none can be started. fn must not throw (a throw on a worker thread would end
// the process), so callers allocate what the workers need beforehand.
template <typename F>
void parallelFor(int64_t workers, const F& fn) {
  std::vector<std::thread> pool;
  pool.reserve(size_t(std::max<int64_t>(workers - 1, 0)));
  for (int64_t t = 1; t < workers; ++t) {
    try {
      pool.emplace_back(fn, t);
    } catch (const std::system_error&) {
      fn(t);
    }
  }
  fn(0);
  for (auto& th : pool) th.join();
}


// GCC vector of B bytes of E (a class template, so that the size may depend on a template
// parameter even where E does not).
template <typename E, int B>
struct Vec {
  typedef E type __attribute__((vector_size(B)));
};

// Dot product accumulated in double, in VB-byte vectors of independent partial sums (GCC
// keeps a plain floating-point sum in order, one element at a time).
template <typename T, int VB>
inline __attribute__((always_inline)) double dotBody(int64_t n, const T* x, const T* y) {
  typedef typename Vec<double, VB>::type D;
  typedef typename Vec<T, VB / 8 * int(sizeof(T))>::type V;  // as many lanes as D
  constexpr int L = VB / 8;
  D acc[2] = {};
  int64_t i = 0;
  for (; i + 2 * L <= n; i += 2 * L)
    for (int h = 0; h < 2; ++h) {
      V xv, yv;
      __builtin_memcpy(&xv, x + i + h * L, sizeof xv);
      __builtin_memcpy(&yv, y + i + h * L, sizeof yv);
      acc[h] += __builtin_convertvector(xv, D) * __builtin_convertvector(yv, D);
    }
  acc[0] += acc[1];
  double s = 0;
  for (int l = 0; l < L; ++l) s += acc[0][l];
  for (; i < n; ++i) s += double(x[i]) * double(y[i]);
  return s;
}

template <typename T>
double dotAcc(int64_t n, const T* x, const T* y) {
  return dotBody<T, 16>(n, x, y);
}

// Level-1 loops hot enough to want the widest vectors (Jacobi sweeps, QL rotations),
// compiled per ISA next to the GEMM micro-kernels and picked by ctx.isa.
template <typename T>
struct VecOps {
  double (*dot)(int64_t n, const T* x, const T* y);  // accumulated in double
  // The rotation (x, y) <- (c x - s y, s x + c y) given d = 1 - c, applied as corrections
  // x - (d x + s y), y + (s x - d y): when it is tiny, c rounds to 1 and c x - s y would
  // scale the pair by 1 + s^2 every time, a drift that accumulates over many rotations.
  void (*rot)(int64_t n, T* x, T* y, T d, T s);
  // (x, y) <- (c x - s y, s x + c y) on rows (i, i+1) of R (rows of length n, contiguous) for
  // i = hi-1 down to lo, with (c, s) pairs taken in turn from cs.
  void (*rotSweep)(int64_t n, T* R, int64_t lo, int64_t hi, const T* cs);
};
template <typename T>
const VecOps<T>& vecOps(Isa isa);

// Euclidean norm of a strided vector, scaled so that squares cannot overflow or underflow.
template <typename T>
double norm2(int64_t n, const T* x, int64_t inc) {
  double scale = 0;
  for (int64_t i = 0; i < n; ++i) scale = std::max(scale, std::fabs(double(x[i * inc])));
  if (scale == 0 || !std::isfinite(scale)) return scale;
  double s = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double t = double(x[i * inc]) / scale;
    s += t * t;
  }
  return scale * std::sqrt(s);
}

// Householder reflector H = I - tau v v^T (v[0] = 1) with H [alpha; x] = [beta; 0], x of
// length n-1 at stride inc. On exit alpha holds beta and x holds v[1:]. Returns tau.
template <typename T>
T makeReflector(int64_t n, T& alpha, T* x, int64_t inc) {
  if (n <= 1) return T(0);
  const double xn = norm2(n - 1, x, inc);
  if (xn == 0) return T(0);
  const double a = alpha;
  const double beta = -std::copysign(std::hypot(a, xn), a);
  const double scale = 1.0 / (a - beta);
  for (int64_t i = 0; i < n - 1; ++i) x[i * inc] = T(double(x[i * inc]) * scale);
  alpha = T(beta);
  return T((beta - a) / beta);
}

// C (len x cols) <- H C for H = I - tau v v^T, v[0] = 1 implied, v[1:] at stride incv.
// w: scratch of `cols` doubles.
template <typename T>
void reflectLeft(int64_t len, int64_t cols, const T* v, int64_t incv, T tau, T* C,
                 int64_t ldc, double* w) {
  if (tau == T(0) || len == 0 || cols == 0) return;
  for (int64_t j = 0; j < cols; ++j) w[j] = C[j];
  for (int64_t i = 1; i < len; ++i) {
    const double vi = v[i * incv];
    const T* c = C + i * ldc;
    for (int64_t j = 0; j < cols; ++j) w[j] += vi * double(c[j]);
  }
  for (int64_t i = 0; i < len; ++i) {
    const double f = double(tau) * (i == 0 ? 1.0 : double(v[i * incv]));
    T* c = C + i * ldc;
    for (int64_t j = 0; j < cols; ++j) c[j] = T(double(c[j]) - f * w[j]);
  }
}

// C (rows x len) <- C H for H = I - tau v v^T, v[0] = 1 implied, v[1:] contiguous.
template <typename T>
void reflectRight(int64_t rows, int64_t len, const T* v, T tau, T* C, int64_t ldc) {
  if (tau == T(0) || len == 0) return;
  for (int64_t i = 0; i < rows; ++i) {
    T* c = C + i * ldc;
    const double d = double(tau) * (double(c[0]) + dotAcc(len - 1, c + 1, v + 1));
    c[0] = T(double(c[0]) - d);
    for (int64_t j = 1; j < len; ++j) c[j] = T(double(c[j]) - d * double(v[j]));
  }
}

// Compact WY form: for nb reflectors stored explicitly as the columns of V (len x nb, unit
// diagonal, zeros above it), H_0 H_1 ... H_{nb-1} = I - V Tm V^T with Tm upper triangular.
template <typename T>
void formT(const Ctx& ctx, int64_t len, int64_t nb, const T* V, int64_t ldv, const T* tau,
           T* Tm) {
  std::vector<T> G(size_t(nb * nb));
  syrkT(ctx, nb, len, T(1), V, ldv, T(0), G.data(), nb);
  for (int64_t j = 0; j < nb; ++j) {
    for (int64_t i = 0; i < j; ++i) {
      double s = 0;
      for (int64_t l = i; l < j; ++l) s += double(Tm[i * nb + l]) * double(G[l * nb + j]);
      Tm[i * nb + j] = T(-double(tau[j]) * s);
    }
    Tm[j * nb + j] = tau[j];
    for (int64_t i = j + 1; i < nb; ++i) Tm[i * nb + j] = T(0);
  }
}

// W (rows x nb) <- W op(Tm) for upper triangular Tm, in place.
template <typename T>
void timesT(int64_t rows, int64_t nb, const T* Tm, bool transT, T* W) {
  std::vector<double> row(nb);
  for (int64_t r = 0; r < rows; ++r) {
    T* w = W + r * nb;
    for (int64_t j = 0; j < nb; ++j) {
      double s = 0;
      if (transT)  // (W Tm^T)_j = sum_{l >= j} W_l Tm[j][l]
        for (int64_t l = j; l < nb; ++l) s += double(w[l]) * double(Tm[j * nb + l]);
      else  // (W Tm)_j = sum_{l <= j} W_l Tm[l][j]
        for (int64_t l = 0; l <= j; ++l) s += double(w[l]) * double(Tm[l * nb + j]);
      row[j] = s;
    }
    for (int64_t j = 0; j < nb; ++j) w[j] = T(row[j]);
  }
}

// C (len x cols) <- (I - V op(Tm) V^T) C.
template <typename T>
void applyBlockLeft(const Ctx& ctx, int64_t len, int64_t cols, int64_t nb, const T* V,
                    int64_t ldv, const T* Tm, bool transT, T* C, int64_t ldc) {
  if (cols == 0 || nb == 0) return;
  std::vector<T> W(size_t(cols * nb));  // W = C^T V, so that op(Tm) acts on its rows
  gemm(ctx, true, false, cols, nb, len, T(1), C, ldc, V, ldv, T(0), W.data(), nb);
  timesT(cols, nb, Tm, !transT, W.data());  // (op(Tm) V^T C)^T = W op(Tm)^T
  gemm(ctx, false, true, len, cols, nb, T(-1), V, ldv, W.data(), nb, T(1), C, ldc);
}

// C (rows x len) <- C (I - V op(Tm) V^T).
template <typename T>
void applyBlockRight(const Ctx& ctx, int64_t rows, int64_t len, int64_t nb, const T* V,
                     int64_t ldv, const T* Tm, bool transT, T* C, int64_t ldc) {
  if (rows == 0 || nb == 0) return;
  std::vector<T> W(size_t(rows * nb));
  gemm(ctx, false, false, rows, nb, len, T(1), C, ldc, V, ldv, T(0), W.data(), nb);
  timesT(rows, nb, Tm, transT, W.data());
  gemm(ctx, false, true, rows, len, nb, T(-1), W.data(), nb, V, ldv, T(1), C, ldc);
}

}  // namespace embmap::portable
