// The fused operations on the GPU: streaming float64 statistics, GEMM + bias, blocked cosine
// top-k with a histogram. Device-pointer building blocks (used by bench/gpu on data already
// on the GPU) and the host-array DeviceOps the engine calls.
#pragma once
#include <atomic>

#include "cuda/device.h"
#include "ops/ops.h"

namespace embmap::cuda {

// Sufficient statistics accumulated on the device in float64. Float32 rows are multiplied in
// blocks of kStatsBlock rows in the chosen precision and each block's products are folded
// into float64, as on the CPU; float64 rows (or exactF64) multiply in float64.
//
// Tensor cores accumulate less precisely than float32 FMAs: over a whole block, 3xTF32's fitted
// map was off by ~1e-4 on an H100 (TF32's own input rounding gives about the same). Its hi*hi
// products are therefore formed over sub-blocks of a block in one strided-batched GEMM, the
// partial products summed in float64.
class DeviceStats {
 public:
  DeviceStats(Device& d, int64_t p, int64_t q, bool withYty);
  void add(const float* dX, const float* dY, int64_t rows, Precision prec, bool exactF64);
  void add(const double* dX, const double* dY, int64_t rows);
  void addTo(const StatsRef& s);  // symmetrises, downloads and adds into host accumulators

  const int64_t p, q;
  double n = 0;
  // 3xTF32: sub-blocks per block for the hi*hi products (tensor cores accumulate less
  // precisely than float32 FMAs; bench/gpu measures the error and time of 4, 8 and 16).
  int64_t tensorCoreSlots = 8;
  Buffer<double> sumX, sumY, sqY, xtx, xty, yty;

 private:
  template <typename T>
  void sums(const T* dX, const T* dY, int64_t rows);
  void tensorCoreProducts(const float* X, const float* Y, int64_t b, Precision prec);
  Device& d_;
  int64_t slots_ = 1;                               // sub-block partial products per block
  Buffer<float> g1_, g2_, c_, xh_, xl_, yh_, yl_;  // float32 block products and 3xTF32 splits
  Buffer<unsigned short> x16_, y16_;               // bfloat16 copies of a block
  Buffer<double> xd_, yd_;                         // float64 copies of a block (exactF64)
};

// Y = X M + bias on the device (X rows x k, M k x n, bias null or n values).
template <typename T>
void gemmBiasDevice(Device& d, Precision prec, int64_t rows, int64_t k, int64_t n, const T* dX,
                    const T* dM, const T* dBias, T* dY);

// Blocked cosine scores of device Q (nq x d) against device G (ng x d) with per-row top-k
// (k <= kDeviceTopKMax) into device dIdx/dScore (nq x k) and a histogram into dCounts (bins
// values, may be null). The nq x ng score matrix never exists: tiles of at most tileBytes.
constexpr int64_t kDeviceTopKMax = 64;
template <typename T>
void cosineTopKDevice(Device& d, Precision prec, const T* dQ, int64_t nq, const T* dG, int64_t ng,
                      int64_t dim, const CosineOptions& opt, int32_t* dIdx, T* dScore,
                      unsigned long long* dCounts, size_t tileBytes);

// The engine's entry points: host arrays in and out, copies staged through pinned memory.
class CudaOps final : public DeviceOps {
 public:
  CudaOps(Device& d, const std::atomic<Precision>& prec) : d_(d), prec_(prec) {}
  void statsUpdate(const float* X, const float* Y, int64_t rows, const StatsRef& s,
                   bool exactF64) override;
  void statsUpdate(const double* X, const double* Y, int64_t rows, const StatsRef& s,
                   bool exactF64) override;
  void gemmBias(bool transX, bool transM, int64_t m, int64_t n, int64_t k, const float* X,
                const float* M, const float* bias, float* Y) override;
  void gemmBias(bool transX, bool transM, int64_t m, int64_t n, int64_t k, const double* X,
                const double* M, const double* bias, double* Y) override;
  bool cosineTopK(const float* Q, int64_t nq, const float* G, int64_t ng, int64_t d,
                  const CosineOptions& opt, int32_t* topIdx, float* topScore) override;
  bool cosineTopK(const double* Q, int64_t nq, const double* G, int64_t ng, int64_t d,
                  const CosineOptions& opt, int32_t* topIdx, double* topScore) override;

 private:
  template <typename T>
  void stats(const T* X, const T* Y, int64_t rows, const StatsRef& s, bool exactF64);
  template <typename T>
  void apply(bool transX, bool transM, int64_t m, int64_t n, int64_t k, const T* X, const T* M,
             const T* bias, T* Y);
  template <typename T>
  bool cosine(const T* Q, int64_t nq, const T* G, int64_t ng, int64_t dim,
              const CosineOptions& opt, int32_t* topIdx, T* topScore);
  Device& d_;
  const std::atomic<Precision>& prec_;
};

}  // namespace embmap::cuda
