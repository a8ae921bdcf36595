// cpu-blas backend: BLIS for BLAS-3 (its typed API takes row-major strides: no copies) and
// the reference LAPACK (Fortran ABI) for factorisations.
//
// Kernel choice: BLIS picks its micro-kernel from CPUID. For AVX-512 CPUs it only takes "skx"
// when it recognises the brand string (it counts FMA units by model name); under a hypervisor
// that hides the model ("Intel(R) Xeon(R) Processor") it falls back to "haswell" (AVX2), about
// half the speed. The skx kernel needs only AVX-512 F/DQ/BW/VL, which we verify ourselves, so
// we select it before BLIS initialises unless the user set BLIS_ARCH_TYPE. This is a kernel the
// build ships and knows (unlike forcing a newer OpenBLAS core type on an old OpenBLAS), and the
// tests check every result against a float64 reference. bench/RESULTS.md has the measurements.
#include <blis.h>
#include <dlfcn.h>

#include <algorithm>
#include <cmath>
#include <atomic>
#include <type_traits>
#include <cstdlib>
#include <thread>
#include <vector>

#include "engine/backend.h"
#include "engine/finite.h"

extern "C" {
void spotrf_(const char*, const int*, float*, const int*, int*);
void dpotrf_(const char*, const int*, double*, const int*, int*);
void sgelsd_(const int*, const int*, const int*, float*, const int*, float*, const int*, float*,
             const float*, int*, float*, const int*, int*, int*);
void dgelsd_(const int*, const int*, const int*, double*, const int*, double*, const int*,
             double*, const double*, int*, double*, const int*, int*, int*);
void ssyevd_(const char*, const char*, const int*, float*, const int*, float*, float*,
             const int*, int*, const int*, int*);
void dsyevd_(const char*, const char*, const int*, double*, const int*, double*, double*,
             const int*, int*, const int*, int*);
void sgesdd_(const char*, const int*, const int*, float*, const int*, float*, float*,
             const int*, float*, const int*, float*, const int*, int*, int*);
void dgesdd_(const char*, const int*, const int*, double*, const int*, double*, double*,
             const int*, double*, const int*, double*, const int*, int*, int*);
}

namespace embmap {
namespace {

// LAPACK's Fortran ABI takes 32-bit ints: refuse sizes it cannot represent rather than wrap.
bool fitsInt(int64_t v) { return v >= 0 && v <= 0x7fffffff; }

template <typename T>
struct Lapack;

#define EMBMAP_LAPACK_TRAITS(T, P)                                                          \
  template <>                                                                               \
  struct Lapack<T> {                                                                        \
    static void potrf(const char* u, const int* n, T* a, const int* lda, int* info) {       \
      P##potrf_(u, n, a, lda, info);                                                        \
    }                                                                                       \
    static void gelsd(const int* m, const int* n, const int* r, T* a, const int* lda, T* b, \
                      const int* ldb, T* s, const T* rc, int* rank, T* w, const int* lw,    \
                      int* iw, int* info) {                                                 \
      P##gelsd_(m, n, r, a, lda, b, ldb, s, rc, rank, w, lw, iw, info);                     \
    }                                                                                       \
    static void syevd(const char* j, const char* u, const int* n, T* a, const int* lda,     \
                      T* w, T* work, const int* lw, int* iw, const int* liw, int* info) {   \
      P##syevd_(j, u, n, a, lda, w, work, lw, iw, liw, info);                               \
    }                                                                                       \
    static void gesdd(const char* j, const int* m, const int* n, T* a, const int* lda,      \
                      T* s, T* u, const int* ldu, T* vt, const int* ldvt, T* w,             \
                      const int* lw, int* iw, int* info) {                                  \
      P##gesdd_(j, m, n, a, lda, s, u, ldu, vt, ldvt, w, lw, iw, info);                     \
    }                                                                                       \
  };
EMBMAP_LAPACK_TRAITS(float, s)
EMBMAP_LAPACK_TRAITS(double, d)
#undef EMBMAP_LAPACK_TRAITS

// BLIS's typed expert API takes row and column strides (row-major needs no CBLAS layer) and
// a per-call runtime, so each call gets its own thread count. The global BLIS setting stays at
// one thread: LAPACK's blocked factorisations make many small BLAS calls, and OpenMP teams on
// those collapse when the machine is busy (measured: a 2048 Cholesky 0.26 s on one thread,
// 2-30 s on two under load).
trans_t tr(bool t) { return t ? BLIS_TRANSPOSE : BLIS_NO_TRANSPOSE; }

struct Runtime {
  rntm_t r = BLIS_RNTM_INITIALIZER;
  explicit Runtime(int threads) { bli_rntm_set_num_threads(threads, &r); }
};

// Below this many multiply-adds one thread is faster, and far steadier, than waking a team:
// on a busy machine a two-thread team stalled a 1x512x512 product for milliseconds and a
// 256x512x512 batch for 20 ms, against ~0.1 ms and ~1 ms on one thread (serving workloads).
constexpr double kParallelFlops = 134217728.0;  // 2^27, e.g. 512 x 512 x 512
int threadsFor(double work, int threads) { return work < kParallelFlops ? 1 : threads; }

template <typename T>
void gemmCall(int threads, bool ta, bool tb, int64_t m, int64_t n, int64_t k, T alpha,
              const T* A, int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  Runtime rt(threadsFor(double(m) * n * k, threads));
  T* a = const_cast<T*>(A);
  T* b = const_cast<T*>(B);
  if constexpr (std::is_same_v<T, float>)
    bli_sgemm_ex(tr(ta), tr(tb), m, n, k, &alpha, a, lda, 1, b, ldb, 1, &beta, C, ldc, 1, nullptr,
                 &rt.r);
  else
    bli_dgemm_ex(tr(ta), tr(tb), m, n, k, &alpha, a, lda, 1, b, ldb, 1, &beta, C, ldc, 1, nullptr,
                 &rt.r);
}

// C (upper) = alpha A^T A + beta C, A stored k x n row-major.
template <typename T>
void syrkCall(int threads, int64_t n, int64_t k, T alpha, const T* A, int64_t lda, T beta, T* C,
              int64_t ldc) {
  Runtime rt(threadsFor(double(n) * n * k / 2, threads));
  T* a = const_cast<T*>(A);
  if constexpr (std::is_same_v<T, float>)
    bli_ssyrk_ex(BLIS_UPPER, BLIS_TRANSPOSE, n, k, &alpha, a, lda, 1, &beta, C, ldc, 1, nullptr,
                 &rt.r);
  else
    bli_dsyrk_ex(BLIS_UPPER, BLIS_TRANSPOSE, n, k, &alpha, a, lda, 1, &beta, C, ldc, 1, nullptr,
                 &rt.r);
}

// B <- op(L)^-1 B, L lower triangular.
template <typename T>
void trsmCall(int threads, bool trans, int64_t n, int64_t nrhs, const T* L, int64_t ldl, T* B,
              int64_t ldb) {
  Runtime rt(threadsFor(double(n) * n * nrhs, threads));
  T one = T(1);
  T* l = const_cast<T*>(L);
  if constexpr (std::is_same_v<T, float>)
    bli_strsm_ex(BLIS_LEFT, BLIS_LOWER, tr(trans), BLIS_NONUNIT_DIAG, n, nrhs, &one, l, ldl, 1, B,
                 ldb, 1, nullptr, &rt.r);
  else
    bli_dtrsm_ex(BLIS_LEFT, BLIS_LOWER, tr(trans), BLIS_NONUNIT_DIAG, n, nrhs, &one, l, ldl, 1, B,
                 ldb, 1, nullptr, &rt.r);
}

// C = beta * C for an empty product. BLAS would do the same, except that beta == 0 must
// ignore whatever C held (NaN garbage included).
template <typename T>
void scaleOnly(int64_t m, int64_t n, T beta, T* C, int64_t ldc) {
  for (int64_t i = 0; i < m; i++)
    for (int64_t j = 0; j < n; j++) C[i * ldc + j] = beta == T(0) ? T(0) : beta * C[i * ldc + j];
}

template <typename T>
class BlasLinalg final : public Linalg<T> {
 public:
  explicit BlasLinalg(const std::atomic<int>& threads) : threads_(threads) {}

  void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, T alpha, const T* A, int64_t lda,
            const T* B, int64_t ldb, T beta, T* C, int64_t ldc) override {
    if (m == 0 || n == 0) return;
    if (k == 0) return scaleOnly(m, n, beta, C, ldc);
    gemmCall(threads_.load(), ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
  }

  void syrkT(int64_t n, int64_t k, T alpha, const T* A, int64_t lda, T beta, T* C,
             int64_t ldc) override {
    if (n == 0) return;
    if (k == 0) return scaleOnly(n, n, beta, C, ldc);
    syrkCall(threads_.load(), n, k, alpha, A, lda, beta, C, ldc);
    for (int64_t i = 1; i < n; i++)  // mirror the upper triangle into the lower one
      for (int64_t j = 0; j < i; j++) C[i * ldc + j] = C[j * ldc + i];
  }

  int64_t potrf(int64_t n, T* A, int64_t lda) override {
    if (n == 0) return 0;
    if (!fitsInt(n) || !fitsInt(lda)) return -1;
    // A non-finite value in row i of the (read) lower triangle first spoils pivot i.
    for (int64_t i = 0; i < n; i++)
      if (!allFinite(1, i + 1, A + i * lda, lda)) return i + 1;
    // Right-looking blocked Cholesky: LAPACK factors each diagonal block (one thread), and the
    // panel solve and trailing update, where the O(n^3) work is, go to BLIS on every thread
    // (LAPACK's own blocking would run them on one). Column-major upper factor U (A = U^T U)
    // is, read row-major, the lower factor L = U^T.
    constexpr int64_t nb = 256;
    const int threads = threads_.load();
    T one = T(1), minusOne = T(-1);
    for (int64_t j = 0; j < n; j += nb) {
      const int64_t jb = std::min(nb, n - j), rest = n - j - jb;
      T* A11 = A + j * lda + j;
      int jbi = int(jb), ldai = int(lda), info = 0;
      Lapack<T>::potrf("U", &jbi, A11, &ldai, &info);
      if (info != 0) return j + info;
      if (rest == 0) break;
      T* A21 = A11 + jb * lda;
      T* A22 = A21 + jb;
      Runtime rt(threadsFor(double(rest) * jb * jb, threads));
      Runtime ru(threadsFor(double(rest) * rest * jb / 2, threads));
      if constexpr (std::is_same_v<T, float>) {  // L21 = A21 L11^-T; A22 -= L21 L21^T (lower)
        bli_strsm_ex(BLIS_RIGHT, BLIS_LOWER, BLIS_TRANSPOSE, BLIS_NONUNIT_DIAG, rest, jb, &one, A11,
                     lda, 1, A21, lda, 1, nullptr, &rt.r);
        bli_ssyrk_ex(BLIS_LOWER, BLIS_NO_TRANSPOSE, rest, jb, &minusOne, A21, lda, 1, &one, A22,
                     lda, 1, nullptr, &ru.r);
      } else {
        bli_dtrsm_ex(BLIS_RIGHT, BLIS_LOWER, BLIS_TRANSPOSE, BLIS_NONUNIT_DIAG, rest, jb, &one, A11,
                     lda, 1, A21, lda, 1, nullptr, &rt.r);
        bli_dsyrk_ex(BLIS_LOWER, BLIS_NO_TRANSPOSE, rest, jb, &minusOne, A21, lda, 1, &one, A22,
                     lda, 1, nullptr, &ru.r);
      }
    }
    for (int64_t i = 0; i < n; i++)
      for (int64_t j = i + 1; j < n; j++) A[i * lda + j] = T(0);
    return 0;
  }

  void potrs(int64_t n, int64_t nrhs, const T* L, int64_t ldl, T* B, int64_t ldb) override {
    if (n == 0 || nrhs == 0) return;
    trsmCall(threads_.load(), false, n, nrhs, L, ldl, B, ldb);
    trsmCall(threads_.load(), true, n, nrhs, L, ldl, B, ldb);
  }

  int64_t lstsq(int64_t m, int64_t n, int64_t nrhs, T* A, int64_t lda, T* B, int64_t ldb,
                T rcond) override {
    if (n == 0) return 0;
    const int64_t mb = std::max(m, n);
    if (m == 0 || nrhs == 0) {
      for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < nrhs; j++) B[i * ldb + j] = T(0);
      return 0;
    }
    if (!fitsInt(m) || !fitsInt(n) || !fitsInt(nrhs) || !fitsInt(m * n) || !fitsInt(mb * nrhs))
      return -1;
    if (!allFinite(m, n, A, lda) || !allFinite(m, nrhs, B, ldb)) return -1;
    // gelsd (SVD based) is column-major: transpose into scratch copies.
    std::vector<T> a(size_t(m * n)), b(size_t(mb * nrhs), T(0)), s(size_t(std::min(m, n)));
    for (int64_t i = 0; i < m; i++)
      for (int64_t j = 0; j < n; j++) a[size_t(j * m + i)] = A[i * lda + j];
    for (int64_t i = 0; i < m; i++)
      for (int64_t j = 0; j < nrhs; j++) b[size_t(j * mb + i)] = B[i * ldb + j];
    int mi = int(m), ni = int(n), ri = int(nrhs), ldb2 = int(mb), rank = 0, info = 0, lw = -1;
    T wq = 0;
    int iwq = 0;
    Lapack<T>::gelsd(&mi, &ni, &ri, a.data(), &mi, b.data(), &ldb2, s.data(), &rcond, &rank, &wq,
                     &lw, &iwq, &info);
    if (info != 0) return -1;
    lw = int(wq);
    std::vector<T> work(size_t(std::max(1, lw)));
    std::vector<int> iwork(size_t(std::max(1, iwq)));
    Lapack<T>::gelsd(&mi, &ni, &ri, a.data(), &mi, b.data(), &ldb2, s.data(), &rcond, &rank,
                     work.data(), &lw, iwork.data(), &info);
    if (info != 0) return -1;
    for (int64_t i = 0; i < n; i++)
      for (int64_t j = 0; j < nrhs; j++) B[i * ldb + j] = b[size_t(j * mb + i)];
    return rank;
  }

  int64_t syev(int64_t n, T* A, int64_t lda, T* w) override {
    if (n == 0) return 0;
    if (!fitsInt(n) || !fitsInt(lda)) return -1;
    if (!allFinite(n, n, A, lda)) return 1;
    // Symmetric input reads the same in either order; column-major eigenvectors (columns)
    // are row-major rows, which is the interface's layout.
    int ni = int(n), ldai = int(lda), info = 0, lw = -1, liw = -1, iwq = 0;
    T wq = 0;
    Lapack<T>::syevd("V", "U", &ni, A, &ldai, w, &wq, &lw, &iwq, &liw, &info);
    if (info != 0) return info;
    lw = int(wq);
    liw = iwq;
    std::vector<T> work(size_t(std::max(1, lw)));
    std::vector<int> iwork(size_t(std::max(1, liw)));
    Lapack<T>::syevd("V", "U", &ni, A, &ldai, w, work.data(), &lw, iwork.data(), &liw, &info);
    return info;
  }

  int64_t svd(int64_t m, int64_t n, T* A, int64_t lda, T* U, int64_t ldu, T* S, T* Vt,
              int64_t ldvt) override {
    if (m == 0 || n == 0) return 0;
    if (!fitsInt(m) || !fitsInt(n) || !fitsInt(lda) || !fitsInt(ldu) || !fitsInt(ldvt)) return -1;
    if (!allFinite(m, n, A, lda)) return 1;
    // Row-major A (m x n) is column-major A^T (n x m) = U' S V'^T, so A = V' S U'^T: LAPACK's
    // VT' buffer is our row-major U and its U' buffer our row-major Vt. No transposes needed.
    int mi = int(n), ni = int(m), ldai = int(lda), ldu2 = int(ldvt), ldvt2 = int(ldu);
    int info = 0, lw = -1;
    const int r = int(std::min(m, n));
    T wq = 0;
    std::vector<int> iwork(size_t(8 * r));
    Lapack<T>::gesdd("S", &mi, &ni, A, &ldai, S, Vt, &ldu2, U, &ldvt2, &wq, &lw, iwork.data(),
                     &info);
    if (info != 0) return info;
    lw = int(wq);
    std::vector<T> work(size_t(std::max(1, lw)));
    Lapack<T>::gesdd("S", &mi, &ni, A, &ldai, S, Vt, &ldu2, U, &ldvt2, work.data(), &lw,
                     iwork.data(), &info);
    return info;
  }

 private:
  const std::atomic<int>& threads_;
};

std::string lapackPath() {
  Dl_info dl{};
  if (dladdr(reinterpret_cast<void*>(&dpotrf_), &dl) && dl.dli_fname) return dl.dli_fname;
  return "liblapack";
}

class BlasBackend final : public Backend {
 public:
  BlasBackend() {
    const char* forced = std::getenv("BLIS_ARCH_TYPE");
    __builtin_cpu_init();
    const bool skxCapable = __builtin_cpu_supports("avx512f") &&
                            __builtin_cpu_supports("avx512dq") &&
                            __builtin_cpu_supports("avx512bw") &&
                            __builtin_cpu_supports("avx512vl");
    if (forced) {
      reason_ = std::string("BLIS_ARCH_TYPE=") + forced + " set by the user";
    } else if (skxCapable) {
      setenv("BLIS_ARCH_TYPE", std::to_string(int(BLIS_ARCH_SKX)).c_str(), 0);
      reason_ = "AVX-512 F/DQ/BW/VL present: skx kernel selected (BLIS's own detection needs a "
                "known model name)";
    } else {
      reason_ = "BLIS's own CPUID detection";
    }
    bli_init();
    bli_thread_set_num_threads(1);  // LAPACK's internal BLAS calls: see Runtime above
    threads_ = int(std::max(1u, std::thread::hardware_concurrency()));
  }

  BackendInfo info() const override {
    BackendInfo i;
    i.name = "cpu-blas";
    i.library = std::string("BLIS ") + bli_info_get_version_str() + " + LAPACK " + lapackPath();
    i.kernel = bli_arch_string(bli_arch_query_id());
    i.reason = reason_;
    i.threads = threads_;
    return i;
  }

  void setThreads(int n) override { threads_ = std::max(1, n); }

  Linalg<float>& f32() override { return f32_; }
  Linalg<double>& f64() override { return f64_; }

 private:
  std::string reason_;
  std::atomic<int> threads_{1};
  BlasLinalg<float> f32_{threads_};
  BlasLinalg<double> f64_{threads_};
};

}  // namespace

std::unique_ptr<Backend> makeBlasBackend() { return std::make_unique<BlasBackend>(); }

}  // namespace embmap
