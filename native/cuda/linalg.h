// The engine's dense primitives on the GPU (cuBLAS + cuSOLVER), host arrays in and out, plus
// the device-pointer building blocks the fused operations share. Row-major throughout, as in
// backend.h: a row-major matrix is its transpose in cuBLAS's column-major view, so products
// swap their operands and factorisations pick the mirrored triangle.
#pragma once
#include <atomic>

#include "cuda/device.h"
#include "engine/backend.h"

namespace embmap::cuda {

// Row-major C = alpha op(A) op(B) + beta C on device pointers. Float32 runs in `prec`
// (3xTF32 splits both operands into TF32 high and low parts: three tensor-core products).
template <typename T>
void gemm(Device& d, Precision prec, bool transA, bool transB, int64_t m, int64_t n, int64_t k,
          T alpha, const T* A, int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc);

// Row-major B (rows x cols, ldb) <- A^T (A is cols x rows, lda): one cuBLAS geam.
template <typename T>
void transpose(Device& d, int64_t rows, int64_t cols, const T* A, int64_t lda, T* B, int64_t ldb);

template <typename T>
class CudaLinalg final : public Linalg<T> {
 public:
  CudaLinalg(Device& d, const std::atomic<Precision>& prec) : d_(d), prec_(prec) {}
  void gemm(bool transA, bool transB, int64_t m, int64_t n, int64_t k, T alpha, const T* A,
            int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc) override;
  void syrkT(int64_t n, int64_t k, T alpha, const T* A, int64_t lda, T beta, T* C,
             int64_t ldc) override;
  int64_t potrf(int64_t n, T* A, int64_t lda) override;
  void potrs(int64_t n, int64_t nrhs, const T* L, int64_t ldl, T* B, int64_t ldb) override;
  int64_t lstsq(int64_t m, int64_t n, int64_t nrhs, T* A, int64_t lda, T* B, int64_t ldb,
                T rcond) override;
  int64_t syev(int64_t n, T* A, int64_t lda, T* w) override;
  int64_t svd(int64_t m, int64_t n, T* A, int64_t lda, T* U, int64_t ldu, T* S, T* Vt,
              int64_t ldvt) override;

 private:
  Device& d_;
  const std::atomic<Precision>& prec_;
};

// Device row-major Cholesky in place (lower L; strict upper zeroed): 0 or the failing order.
template <typename T>
int64_t potrfDevice(Device& d, int64_t n, T* A, int64_t lda);
// Device row-major solve L L^T X = B in place.
template <typename T>
void potrsDevice(Device& d, int64_t n, int64_t nrhs, const T* L, int64_t ldl, T* B, int64_t ldb);

// Device least squares as Linalg::lstsq (dB has max(m, n) rows; its first n receive X).
template <typename T>
int64_t lstsqDevice(Device& d, int64_t m, int64_t n, int64_t nrhs, const T* dA, int64_t lda,
                    T* dB, int64_t ldb, T rcond);

}  // namespace embmap::cuda
