// The portable backend: plain C++17, no BLAS/LAPACK. Serves every operation when the build
// has no BLAS, and is the runtime fallback otherwise.
#include <cstdlib>
#include <thread>

#include "engine/backend.h"
#include "portable/kernels.h"

namespace embmap {
namespace {

using portable::Ctx;

template <typename T>
class PortableLinalg final : public Linalg<T> {
 public:
  explicit PortableLinalg(const Ctx& ctx) : ctx_(ctx) {}

  void gemm(bool transA, bool transB, int64_t m, int64_t n, int64_t k, T alpha, const T* A,
            int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc) override {
    portable::gemm(ctx_, transA, transB, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
  }
  void syrkT(int64_t n, int64_t k, T alpha, const T* A, int64_t lda, T beta, T* C,
             int64_t ldc) override {
    portable::syrkT(ctx_, n, k, alpha, A, lda, beta, C, ldc);
  }
  int64_t potrf(int64_t n, T* A, int64_t lda) override {
    return portable::potrf(ctx_, n, A, lda);
  }
  void potrs(int64_t n, int64_t nrhs, const T* L, int64_t ldl, T* B, int64_t ldb) override {
    portable::potrs(ctx_, n, nrhs, L, ldl, B, ldb);
  }
  int64_t lstsq(int64_t m, int64_t n, int64_t nrhs, T* A, int64_t lda, T* B, int64_t ldb,
                T rcond) override {
    return portable::lstsq(ctx_, m, n, nrhs, A, lda, B, ldb, rcond);
  }
  int64_t syev(int64_t n, T* A, int64_t lda, T* w) override {
    return portable::syev(ctx_, n, A, lda, w);
  }
  int64_t svd(int64_t m, int64_t n, T* A, int64_t lda, T* U, int64_t ldu, T* S, T* Vt,
              int64_t ldvt) override {
    return portable::svd(ctx_, m, n, A, lda, U, ldu, S, Vt, ldvt);
  }

 private:
  const Ctx& ctx_;  // owned by the backend, so setThreads reaches both precisions
};

class PortableBackend final : public Backend {
 public:
  PortableBackend() : f32_(ctx_), f64_(ctx_) {
    ctx_.isa = portable::detectIsa();
    const char* forced = std::getenv("EMBMAP_PORTABLE_KERNEL");
    reason_ = forced ? std::string("limited by EMBMAP_PORTABLE_KERNEL=") + forced
                     : "the widest GEMM micro-kernel clone this CPU supports";
    setThreads(0);
  }
  PortableBackend(const PortableBackend&) = delete;
  PortableBackend& operator=(const PortableBackend&) = delete;

  BackendInfo info() const override {
    BackendInfo info;
    info.name = "portable";
    info.library = "built-in C++ (no BLAS)";
    info.kernel = portable::isaName(ctx_.isa);
    info.reason = reason_;
    info.threads = ctx_.threads;
    info.threadCap = true;
    return info;
  }

  // n < 1 restores the default: one thread per hardware thread.
  void setThreads(int n) override {
    if (n < 1) n = int(std::thread::hardware_concurrency());
    ctx_.threads = n < 1 ? 1 : n;
  }

  Linalg<float>& f32() override { return f32_; }
  Linalg<double>& f64() override { return f64_; }

 private:
  Ctx ctx_;
  std::string reason_;
  PortableLinalg<float> f32_;
  PortableLinalg<double> f64_;
};

}  // namespace

std::unique_ptr<Backend> makePortableBackend() { return std::make_unique<PortableBackend>(); }

}  // namespace embmap
