#include <algorithm>
#include <type_traits>
#include <vector>

#include "ops/ops.h"

namespace embmap {
namespace {

// acc (n x m, float64) += block (n x m).
template <typename T>
void addInto(double* acc, const T* block, int64_t count) {
  for (int64_t i = 0; i < count; i++) acc[i] += double(block[i]);
}

// Column sums (and sums of squares when sq is given), in float64. A scalar pass over every
// value, so cloned per ISA: it would otherwise rival the BLAS products in cost.
#define EMBMAP_COLUMN_SUMS(T)                                                             \
  __attribute__((target_clones("avx512f", "avx2", "default"))) void columnSums(           \
      const T* A, int64_t rows, int64_t cols, double* sums, double* sq) {                 \
    for (int64_t i = 0; i < rows; i++) {                                                  \
      const T* r = A + i * cols;                                                          \
      for (int64_t j = 0; j < cols; j++) sums[j] += double(r[j]);                         \
      if (sq)                                                                             \
        for (int64_t j = 0; j < cols; j++) sq[j] += double(r[j]) * double(r[j]);          \
    }                                                                                     \
  }
EMBMAP_COLUMN_SUMS(float)
EMBMAP_COLUMN_SUMS(double)
#undef EMBMAP_COLUMN_SUMS

// Adds one block's products, formed in T, into the float64 accumulators.
template <typename T>
void blockProducts(Backend& be, const T* X, const T* Y, int64_t b, const StatsRef& s,
                   std::vector<T>& scratch) {
  const int64_t p = s.p, q = s.q;
  if constexpr (std::is_same_v<T, double>) {
    be.f64().syrkT(p, b, 1.0, X, p, 1.0, s.xtx, p);
    if (q > 0) be.f64().gemm(true, false, p, q, b, 1.0, X, p, Y, q, 1.0, s.xty, q);
    if (q > 0 && s.yty) be.f64().syrkT(q, b, 1.0, Y, q, 1.0, s.yty, q);
  } else {
    scratch.resize(size_t(std::max({p * p, p * q, s.yty ? q * q : 0})));
    be.la<T>().syrkT(p, b, T(1), X, p, T(0), scratch.data(), p);
    addInto(s.xtx, scratch.data(), p * p);
    if (q > 0) {
      be.la<T>().gemm(true, false, p, q, b, T(1), X, p, Y, q, T(0), scratch.data(), q);
      addInto(s.xty, scratch.data(), p * q);
    }
    if (q > 0 && s.yty) {
      be.la<T>().syrkT(q, b, T(1), Y, q, T(0), scratch.data(), q);
      addInto(s.yty, scratch.data(), q * q);
    }
  }
}

}  // namespace

template <typename T>
void statsUpdate(Backend& be, const T* X, const T* Y, int64_t rows, const StatsRef& s,
                 bool exactF64) {
  if (DeviceOps* dev = be.device()) return dev->statsUpdate(X, Y, rows, s, exactF64);
  const int64_t p = s.p, q = s.q;
  std::vector<T> scratch;
  std::vector<double> xd, yd;
  std::vector<double> scratchD;
  for (int64_t r0 = 0; r0 < rows; r0 += kStatsBlock) {
    const int64_t b = std::min(kStatsBlock, rows - r0);
    const T* Xb = X + r0 * p;
    const T* Yb = q > 0 ? Y + r0 * q : nullptr;
    columnSums(Xb, b, p, s.sumX, nullptr);
    if (q > 0) columnSums(Yb, b, q, s.sumY, s.sqY);
    if (std::is_same_v<T, float> && exactF64) {
      xd.assign(Xb, Xb + b * p);
      if (q > 0) yd.assign(Yb, Yb + b * q);
      blockProducts<double>(be, xd.data(), yd.data(), b, s, scratchD);
    } else {
      blockProducts<T>(be, Xb, Yb, b, s, scratch);
    }
  }
  *s.n += double(rows);
}

template void statsUpdate<float>(Backend&, const float*, const float*, int64_t,
                                 const StatsRef&, bool);
template void statsUpdate<double>(Backend&, const double*, const double*, int64_t,
                                  const StatsRef&, bool);

}  // namespace embmap
