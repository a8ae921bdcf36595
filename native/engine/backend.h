// The engine's backend interface. Every backend (portable C++, CPU BLAS/LAPACK, later CUDA)
// implements the same dense primitives, so the algorithms in native/ops are written once.
//
// Conventions (all backends):
//  * matrices are row-major; `ld` is the row stride in elements (ld >= cols);
//  * sizes are int64_t throughout (N*p may exceed 2^31);
//  * no primitive throws on numerical trouble: it reports through its return value.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

namespace embmap {

class DeviceOps;  // ops/ops.h

template <typename T>
class Linalg {
 public:
  virtual ~Linalg() = default;

  // C = alpha * op(A) * op(B) + beta * C, op(A) is m x k, op(B) is k x n, C is m x n.
  virtual void gemm(bool transA, bool transB, int64_t m, int64_t n, int64_t k, T alpha,
                    const T* A, int64_t lda, const T* B, int64_t ldb, T beta, T* C,
                    int64_t ldc) = 0;

  // C = alpha * A^T A + beta * C with A k x n; C is n x n and BOTH triangles are written.
  virtual void syrkT(int64_t n, int64_t k, T alpha, const T* A, int64_t lda, T beta, T* C,
                     int64_t ldc) = 0;

  // Cholesky A = L L^T of a symmetric positive definite n x n matrix, in place: the lower
  // triangle receives L and the strict upper triangle is zeroed. Returns 0 on success, or
  // j+1 when the leading minor of order j+1 is not positive definite (A is then unspecified).
  virtual int64_t potrf(int64_t n, T* A, int64_t lda) = 0;

  // Solves L L^T X = B for X, B (n x nrhs) overwritten, L from potrf.
  virtual void potrs(int64_t n, int64_t nrhs, const T* L, int64_t ldl, T* B, int64_t ldb) = 0;

  // Minimum-norm least squares min ||A X - B||: A is m x n (destroyed); B has max(m, n) rows
  // and nrhs columns: on entry its first m rows hold the right-hand sides, on exit its first n
  // rows hold X. Singular values below rcond * s_max count as zero (rank-revealing: a
  // rank-deficient or under-determined system yields the minimum-norm solution). Returns the
  // effective rank, or -1 if the underlying routine failed.
  virtual int64_t lstsq(int64_t m, int64_t n, int64_t nrhs, T* A, int64_t lda, T* B,
                        int64_t ldb, T rcond) = 0;

  // Symmetric eigendecomposition of an n x n matrix, in place: on exit row i of A holds the
  // unit eigenvector of eigenvalue w[i]; eigenvalues ascending. Returns 0, or non-zero if
  // the iteration failed to converge.
  virtual int64_t syev(int64_t n, T* A, int64_t lda, T* w) = 0;

  // Thin SVD A = U diag(S) Vt of an m x n matrix (A destroyed), r = min(m, n):
  // U is m x r (ldu >= r), S has r values in descending order, Vt is r x n (ldvt >= n).
  // Returns 0, or non-zero if the iteration failed to converge.
  virtual int64_t svd(int64_t m, int64_t n, T* A, int64_t lda, T* U, int64_t ldu, T* S, T* Vt,
                      int64_t ldvt) = 0;
};

// What `embmap doctor` prints.
struct BackendInfo {
  std::string name;     // "cpu-blas", "portable", "cuda"
  std::string library;  // e.g. "BLIS 0.9.0 (openmp) + LAPACK /usr/lib/.../liblapack.so.3"
  std::string kernel;   // the micro-kernel family the library selected, e.g. "skx"
  std::string reason;   // why that kernel (e.g. how it was chosen), may be empty
  int threads = 1;
  std::string precision = "float32";  // of float32 products
  bool threadCap = false;  // whether one call can run on fewer threads (engine/threads.h)
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual BackendInfo info() const = 0;
  virtual void setThreads(int n) = 0;
  virtual Linalg<float>& f32() = 0;
  virtual Linalg<double>& f64() = 0;
  // Whole operations the backend runs itself (a GPU keeps intermediate products on the
  // device); null: the algorithms in native/ops run over the primitives above.
  virtual DeviceOps* device() { return nullptr; }
  // Precision of float32 products: "float32" everywhere; "tf32", "3xtf32", "bf16" where the
  // hardware has them. False when this backend does not offer the mode.
  virtual bool setPrecision(const std::string& mode) { return mode == "float32"; }

  template <typename T>
  Linalg<T>& la();
};

template <>
inline Linalg<float>& Backend::la<float>() { return f32(); }
template <>
inline Linalg<double>& Backend::la<double>() { return f64(); }

// Backends compiled into this build. makeBlasBackend returns nullptr, with the reason, when no
// BLAS/LAPACK library loads (native/cpu/blas_lib.h) or the build has none (EMBMAP_BLAS=OFF);
// then the portable backend serves everything.
std::unique_ptr<Backend> makePortableBackend();
std::unique_ptr<Backend> makeBlasBackend(std::string* whyNot);
// The GPU backend (native/cuda); null with the reason when the CUDA libraries or a GPU are
// missing. The libraries are loaded at run time, so every build has it.
std::unique_ptr<Backend> makeCudaBackend(std::string* whyNot);

}  // namespace embmap
