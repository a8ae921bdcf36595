// cpu-blas backend: the BLAS and LAPACK that blas_lib.cc loaded at run time (BLIS, OpenBLAS or
// MKL). BLAS-3 calls go through the column-major interface below: a row-major matrix is the
// column-major view of its transpose, so every call is the transposed problem (no copies).
//
// Where the loaded library is the BLIS this was built against (same version as blis.h), its typed
// expert API gives each call its own thread count (see Runtime below) and we choose its kernel:
// BLIS picks its micro-kernel from CPUID, and for AVX-512 CPUs only takes "skx" when it
// recognises the brand string (it counts FMA units by model name); under a hypervisor that hides
// the model ("Intel(R) Xeon(R) Processor") it falls back to "haswell" (AVX2), about half the
// speed. The skx kernel needs only AVX-512 F/DQ/BW/VL, which we verify ourselves, so we select it
// before BLIS initialises unless the user set BLIS_ARCH_TYPE. This is a kernel the library ships
// and knows (unlike forcing a newer OpenBLAS core type on an old OpenBLAS, which we never do), and
// the tests check every result against a float64 reference. bench/RESULTS.md has the measurements.
#if EMBMAP_HAVE_BLIS_H
#include <blis.h>
#endif
#include <dlfcn.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <cmath>
#include <cstdlib>
#include <thread>
#include <type_traits>
#include <vector>

#include "cpu/blas_lib.h"
#include "engine/backend.h"
#include "engine/finite.h"
#include "engine/threads.h"
#include "portable/kernels.h"

namespace embmap {
namespace {

// The Fortran ABI takes 32-bit ints: refuse sizes it cannot represent rather than wrap.
bool fitsInt(int64_t v) { return v >= 0 && v <= INT_MAX; }

// Below this many multiply-adds one thread is faster, and far steadier, than waking a team:
// on a busy machine a two-thread team stalled a 1x512x512 product for milliseconds and a
// 256x512x512 batch for 20 ms, against ~0.1 ms and ~1 ms on one thread (serving workloads).
constexpr double kParallelFlops = 134217728.0;  // 2^27, e.g. 512 x 512 x 512
int threadsFor(double work, int threads) { return work < kParallelFlops ? 1 : threads; }

// Column-major BLAS-3 with a thread count per call (used where the library allows it).
template <typename T>
class Level3 {
 public:
  virtual ~Level3() = default;
  // The largest dimension or leading dimension the calls accept.
  virtual int64_t maxDim() const = 0;
  // C = alpha op(A) op(B) + beta C, C m x n.
  virtual void gemm(int threads, bool ta, bool tb, int64_t m, int64_t n, int64_t k, T alpha,
                    const T* A, int64_t lda, const T* B, int64_t ldb, T beta, T* C,
                    int64_t ldc) = 0;
  // C (one triangle) = alpha op(A) op(A)^T + beta C, C n x n; op(A) is n x k.
  virtual void syrk(int threads, bool upper, bool trans, int64_t n, int64_t k, T alpha,
                    const T* A, int64_t lda, T beta, T* C, int64_t ldc) = 0;
  // B (m x n) <- op(A)^-1 B (left) or B op(A)^-1 (right), A triangular, non-unit diagonal.
  virtual void trsm(int threads, bool left, bool upper, bool trans, int64_t m, int64_t n,
                    const T* A, int64_t lda, T* B, int64_t ldb) = 0;
};

// The Fortran ABI that every library exports; threads are the library's global setting.
template <typename T>
class FortranLevel3 final : public Level3<T> {
 public:
  explicit FortranLevel3(const blas::Fortran<T>& f) : f_(f) {}
  int64_t maxDim() const override { return INT_MAX; }
  void gemm(int, bool ta, bool tb, int64_t m, int64_t n, int64_t k, T alpha, const T* A,
            int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc) override {
    const int mi = int(m), ni = int(n), ki = int(k), la = int(lda), lb = int(ldb), lc = int(ldc);
    f_.gemm(ta ? "T" : "N", tb ? "T" : "N", &mi, &ni, &ki, &alpha, A, &la, B, &lb, &beta, C, &lc);
  }
  void syrk(int, bool upper, bool trans, int64_t n, int64_t k, T alpha, const T* A, int64_t lda,
            T beta, T* C, int64_t ldc) override {
    const int ni = int(n), ki = int(k), la = int(lda), lc = int(ldc);
    f_.syrk(upper ? "U" : "L", trans ? "T" : "N", &ni, &ki, &alpha, A, &la, &beta, C, &lc);
  }
  void trsm(int, bool left, bool upper, bool trans, int64_t m, int64_t n, const T* A,
            int64_t lda, T* B, int64_t ldb) override {
    const int mi = int(m), ni = int(n), la = int(lda), lb = int(ldb);
    const T one = T(1);
    f_.trsm(left ? "L" : "R", upper ? "U" : "L", trans ? "T" : "N", "N", &mi, &ni, &one, A, &la,
            B, &lb);
  }

 private:
  const blas::Fortran<T>& f_;
};

#if EMBMAP_HAVE_BLIS_H
// BLIS's typed expert API: row and column strides (here column-major: 1 and ld) and a runtime
// per call, so each call gets its own thread count. The global BLIS setting stays at one thread:
// LAPACK's blocked factorisations make many small BLAS calls, and OpenMP teams on those collapse
// when the machine is busy (measured: a 2048 Cholesky 0.26 s on one thread, 2-30 s on two under
// load). Entry points are looked up in the loaded library; rntm_t is the header's, which is why
// this path needs the loaded BLIS to be the header's version.
struct BlisTyped {
  decltype(&bli_sgemm_ex) sgemm;
  decltype(&bli_dgemm_ex) dgemm;
  decltype(&bli_ssyrk_ex) ssyrk;
  decltype(&bli_dsyrk_ex) dsyrk;
  decltype(&bli_strsm_ex) strsm;
  decltype(&bli_dtrsm_ex) dtrsm;
};

trans_t tr(bool t) { return t ? BLIS_TRANSPOSE : BLIS_NO_TRANSPOSE; }

struct Runtime {
  rntm_t r = BLIS_RNTM_INITIALIZER;
  explicit Runtime(int threads) { bli_rntm_set_num_threads(threads, &r); }
};

template <typename T>
class BlisLevel3 final : public Level3<T> {
 public:
  explicit BlisLevel3(const BlisTyped& b) : b_(b) {}
  int64_t maxDim() const override { return INT64_MAX; }
  void gemm(int threads, bool ta, bool tb, int64_t m, int64_t n, int64_t k, T alpha, const T* A,
            int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc) override {
    Runtime rt(threadsFor(double(m) * n * k, threads));
    T* a = const_cast<T*>(A);
    T* b = const_cast<T*>(B);
    if constexpr (std::is_same_v<T, float>)
      b_.sgemm(tr(ta), tr(tb), m, n, k, &alpha, a, 1, lda, b, 1, ldb, &beta, C, 1, ldc, nullptr,
               &rt.r);
    else
      b_.dgemm(tr(ta), tr(tb), m, n, k, &alpha, a, 1, lda, b, 1, ldb, &beta, C, 1, ldc, nullptr,
               &rt.r);
  }
  void syrk(int threads, bool upper, bool trans, int64_t n, int64_t k, T alpha, const T* A,
            int64_t lda, T beta, T* C, int64_t ldc) override {
    Runtime rt(threadsFor(double(n) * n * k / 2, threads));
    T* a = const_cast<T*>(A);
    const uplo_t u = upper ? BLIS_UPPER : BLIS_LOWER;
    if constexpr (std::is_same_v<T, float>)
      b_.ssyrk(u, tr(trans), n, k, &alpha, a, 1, lda, &beta, C, 1, ldc, nullptr, &rt.r);
    else
      b_.dsyrk(u, tr(trans), n, k, &alpha, a, 1, lda, &beta, C, 1, ldc, nullptr, &rt.r);
  }
  void trsm(int threads, bool left, bool upper, bool trans, int64_t m, int64_t n, const T* A,
            int64_t lda, T* B, int64_t ldb) override {
    const int64_t order = left ? m : n;
    Runtime rt(threadsFor(double(order) * m * n, threads));
    T one = T(1);
    T* a = const_cast<T*>(A);
    const side_t s = left ? BLIS_LEFT : BLIS_RIGHT;
    const uplo_t u = upper ? BLIS_UPPER : BLIS_LOWER;
    if constexpr (std::is_same_v<T, float>)
      b_.strsm(s, u, tr(trans), BLIS_NONUNIT_DIAG, m, n, &one, a, 1, lda, B, 1, ldb, nullptr,
               &rt.r);
    else
      b_.dtrsm(s, u, tr(trans), BLIS_NONUNIT_DIAG, m, n, &one, a, 1, lda, B, 1, ldb, nullptr,
               &rt.r);
  }

 private:
  const BlisTyped& b_;
};
#endif

template <typename T>
const blas::Fortran<T>& fortran(const blas::Library& L) {
  if constexpr (std::is_same_v<T, float>)
    return L.s;
  else
    return L.d;
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
  BlasLinalg(const std::atomic<int>& threads, Level3<T>& l3, const blas::Fortran<T>& lapack,
             Linalg<T>& fallback)
      : threads_(threads), l3_(l3), lapack_(lapack), fallback_(fallback) {}

  void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, T alpha, const T* A, int64_t lda,
            const T* B, int64_t ldb, T beta, T* C, int64_t ldc) override {
    if (m == 0 || n == 0) return;
    if (k == 0) return scaleOnly(m, n, beta, C, ldc);
    if (std::max({m, n, k, lda, ldb, ldc}) > l3_.maxDim())
      return fallback_.gemm(ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
    // Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T.
    l3_.gemm(capThreads(threads_.load()), tb, ta, n, m, k, alpha, B, ldb, A, lda, beta, C, ldc);
  }

  void syrkT(int64_t n, int64_t k, T alpha, const T* A, int64_t lda, T beta, T* C,
             int64_t ldc) override {
    if (n == 0) return;
    if (k == 0) return scaleOnly(n, n, beta, C, ldc);
    if (std::max({n, k, lda, ldc}) > l3_.maxDim()) return fallback_.syrkT(n, k, alpha, A, lda, beta, C, ldc);
    // Row-major A (k x n) is column-major A^T; row-major upper C is column-major lower.
    l3_.syrk(capThreads(threads_.load()), false, false, n, k, alpha, A, lda, beta, C, ldc);
    for (int64_t i = 1; i < n; i++)  // mirror the upper triangle into the lower one
      for (int64_t j = 0; j < i; j++) C[i * ldc + j] = C[j * ldc + i];
  }

  int64_t potrf(int64_t n, T* A, int64_t lda) override {
    if (n == 0) return 0;
    if (!fitsInt(n) || !fitsInt(lda)) return -1;
    // A non-finite value in row i of the (read) lower triangle first spoils pivot i.
    for (int64_t i = 0; i < n; i++)
      if (!allFinite(1, i + 1, A + i * lda, lda)) return i + 1;
    // Right-looking blocked Cholesky: the panel solve and trailing update, where the O(n^3) work
    // is, go to BLAS-3 on every thread. The diagonal blocks are factored by our own unblocked
    // kernel: LAPACK's potrf on them makes many tiny BLAS calls through the Fortran interface,
    // whose per-call cost made those blocks, 1% of the flops, half of a 2048 factorisation's time
    // (bench/RESULTS.md, "fold-solve"). Read column-major, row-major A is A^T, so the lower factor
    // the kernel computes row-major is LAPACK's upper U (A = U^T U) column-major.
    constexpr int64_t nb = 128;
    const int threads = capThreads(threads_.load());
    for (int64_t j = 0; j < n; j += nb) {
      const int64_t jb = std::min(nb, n - j), rest = n - j - jb;
      T* A11 = A + j * lda + j;
      if (const int64_t info = portable::potrfUnblocked(jb, A11, lda)) return j + info;
      if (rest == 0) break;
      T* A21 = A11 + jb * lda;  // column-major: the jb x rest block U12
      T* A22 = A21 + jb;
      l3_.trsm(threads, true, true, true, jb, rest, A11, lda, A21, lda);      // U12 = U11^-T A12
      l3_.syrk(threads, true, true, rest, jb, T(-1), A21, lda, T(1), A22, lda);  // A22 -= U12^T U12
    }
    for (int64_t i = 0; i < n; i++)
      for (int64_t j = i + 1; j < n; j++) A[i * lda + j] = T(0);
    return 0;
  }

  void potrs(int64_t n, int64_t nrhs, const T* L, int64_t ldl, T* B, int64_t ldb) override {
    if (n == 0 || nrhs == 0) return;
    if (std::max({n, nrhs, ldl, ldb}) > l3_.maxDim()) return fallback_.potrs(n, nrhs, L, ldl, B, ldb);
    // Row-major X = L^-1 B is column-major X^T = B^T U^-1 with U = L^T (L's memory read
    // column-major); then L^-T likewise.
    l3_.trsm(capThreads(threads_.load()), false, true, false, nrhs, n, L, ldl, B, ldb);
    l3_.trsm(capThreads(threads_.load()), false, true, true, nrhs, n, L, ldl, B, ldb);
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
    lapack_.gelsd(&mi, &ni, &ri, a.data(), &mi, b.data(), &ldb2, s.data(), &rcond, &rank, &wq,
                     &lw, &iwq, &info);
    if (info != 0) return -1;
    lw = int(wq);
    std::vector<T> work(size_t(std::max(1, lw)));
    std::vector<int> iwork(size_t(std::max(1, iwq)));
    lapack_.gelsd(&mi, &ni, &ri, a.data(), &mi, b.data(), &ldb2, s.data(), &rcond, &rank,
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
    lapack_.syevd("V", "U", &ni, A, &ldai, w, &wq, &lw, &iwq, &liw, &info);
    if (info != 0) return info;
    lw = int(wq);
    liw = iwq;
    std::vector<T> work(size_t(std::max(1, lw)));
    std::vector<int> iwork(size_t(std::max(1, liw)));
    lapack_.syevd("V", "U", &ni, A, &ldai, w, work.data(), &lw, iwork.data(), &liw, &info);
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
    lapack_.gesdd("S", &mi, &ni, A, &ldai, S, Vt, &ldu2, U, &ldvt2, &wq, &lw, iwork.data(),
                     &info);
    if (info != 0) return info;
    lw = int(wq);
    std::vector<T> work(size_t(std::max(1, lw)));
    lapack_.gesdd("S", &mi, &ni, A, &ldai, S, Vt, &ldu2, U, &ldvt2, work.data(), &lw,
                     iwork.data(), &info);
    return info;
  }

 private:
  const std::atomic<int>& threads_;
  Level3<T>& l3_;
  const blas::Fortran<T>& lapack_;
  Linalg<T>& fallback_;
};

// Symbols looked up in the loaded library by name.
template <typename F>
F sym(void* handle, const char* name) {
  return reinterpret_cast<F>(dlsym(handle, name));
}

class BlasBackend final : public Backend {
 public:
  explicit BlasBackend(const blas::Library& lib) : lib_(lib) {
    threads_ = int(std::max(1u, std::thread::hardware_concurrency()));
    if (!setUpBlis()) {
      f32l3_ = std::make_unique<FortranLevel3<float>>(lib.s);
      f64l3_ = std::make_unique<FortranLevel3<double>>(lib.d);
      if (lib_.setThreads) lib_.setThreads(threads_);
    }
    f32_ = std::make_unique<BlasLinalg<float>>(threads_, *f32l3_, lib.s, portable_->f32());
    f64_ = std::make_unique<BlasLinalg<double>>(threads_, *f64l3_, lib.d, portable_->f64());
  }

  BackendInfo info() const override {
    BackendInfo i;
    i.name = "cpu-blas";
    i.library = lib_.description;
    i.kernel = kernel();
    i.reason = reason_;
    i.threads = threads_;
    i.threadCap = perCall_;  // the Fortran interface has one thread count for all calls
    return i;
  }

  void setThreads(int n) override {
    threads_ = std::max(1, n);
    if (!perCall_ && lib_.setThreads) lib_.setThreads(threads_);
    portable_->setThreads(threads_);  // its fallback for sizes past the Fortran ABI honours the count too
  }

  Linalg<float>& f32() override { return *f32_; }
  Linalg<double>& f64() override { return *f64_; }

 private:
  // BLIS as built against: per-call threads and the kernel choice described at the top.
  bool setUpBlis() {
    if (lib_.vendor != blas::Vendor::Blis) {
      reason_ = lib_.vendor == blas::Vendor::OpenBlas ? "OpenBLAS's own CPU detection"
                                                      : "MKL's own CPU dispatch";
      return false;
    }
#if EMBMAP_HAVE_BLIS_H
    auto version = sym<const char* (*)()>(lib_.blas, "bli_info_get_version_str");
    const std::string loaded = version ? version() : "?";
    blis_ = {sym<decltype(&bli_sgemm_ex)>(lib_.blas, "bli_sgemm_ex"),
             sym<decltype(&bli_dgemm_ex)>(lib_.blas, "bli_dgemm_ex"),
             sym<decltype(&bli_ssyrk_ex)>(lib_.blas, "bli_ssyrk_ex"),
             sym<decltype(&bli_dsyrk_ex)>(lib_.blas, "bli_dsyrk_ex"),
             sym<decltype(&bli_strsm_ex)>(lib_.blas, "bli_strsm_ex"),
             sym<decltype(&bli_dtrsm_ex)>(lib_.blas, "bli_dtrsm_ex")};
    auto init = sym<void (*)()>(lib_.blas, "bli_init");
    if (loaded != EMBMAP_BLIS_VERSION || !init || !blis_.sgemm || !blis_.dgemm || !blis_.ssyrk ||
        !blis_.dsyrk || !blis_.strsm || !blis_.dtrsm) {
      reason_ = "BLIS " + loaded + " is not the " EMBMAP_BLIS_VERSION
                " this addon was built with: BLIS's own CPUID detection, one thread count for all calls";
      return false;
    }
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
    init();
    if (lib_.setThreads) lib_.setThreads(1);  // LAPACK's internal BLAS calls: see Runtime above
    f32l3_ = std::make_unique<BlisLevel3<float>>(blis_);
    f64l3_ = std::make_unique<BlisLevel3<double>>(blis_);
    perCall_ = true;
    return true;
#else
    reason_ = "BLIS's own CPUID detection (built without blis.h: one thread count for all calls)";
    return false;
#endif
  }

  // The kernel family the library runs, as it names it.
  std::string kernel() const {
    if (lib_.vendor == blas::Vendor::Blis) {
      auto query = sym<int (*)()>(lib_.blas, "bli_arch_query_id");
      auto name = sym<const char* (*)(int)>(lib_.blas, "bli_arch_string");
      if (query && name) return name(query());
    } else if (lib_.vendor == blas::Vendor::OpenBlas) {
      if (auto core = sym<const char* (*)()>(lib_.blas, "openblas_get_corename")) return core();
    }
    return "(the library's choice)";
  }

  const blas::Library& lib_;
  std::string reason_;
  std::atomic<int> threads_{1};
  bool perCall_ = false;
#if EMBMAP_HAVE_BLIS_H
  BlisTyped blis_{};
#endif
  std::unique_ptr<Backend> portable_ = makePortableBackend();  // for sizes past the Fortran ABI
  std::unique_ptr<Level3<float>> f32l3_;
  std::unique_ptr<Level3<double>> f64l3_;
  std::unique_ptr<BlasLinalg<float>> f32_;
  std::unique_ptr<BlasLinalg<double>> f64_;
};

}  // namespace

std::unique_ptr<Backend> makeBlasBackend(std::string* whyNot) {
  const blas::Library* lib = blas::load(whyNot);
  return lib ? std::make_unique<BlasBackend>(*lib) : nullptr;
}

}  // namespace embmap
