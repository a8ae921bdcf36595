#include <algorithm>

#include "ops/ops.h"

namespace embmap {
namespace {

// One row through a map, the serving case: a GEMM packs the whole map first (~100 us for
// 512x512), while streaming it once as axpys over its rows takes a few microseconds. It runs
// here on every backend (a GPU round trip costs more). Cloned per ISA so one build uses
// AVX-512 where the CPU has it.
#define EMBMAP_ROW_TIMES(T)                                                            \
  __attribute__((target_clones("avx512f", "avx2", "default"))) void rowTimes(          \
      const T* __restrict x, const T* __restrict M, int64_t k, int64_t n,              \
      T* __restrict y) {                                                               \
    int64_t i = 0;                                                                     \
    for (; i + 4 <= k; i += 4) { /* four rows per pass: a quarter of the y traffic */  \
      const T x0 = x[i], x1 = x[i + 1], x2 = x[i + 2], x3 = x[i + 3];                  \
      const T *r0 = M + i * n, *r1 = r0 + n, *r2 = r1 + n, *r3 = r2 + n;               \
      for (int64_t j = 0; j < n; j++)                                                  \
        y[j] += x0 * r0[j] + x1 * r1[j] + x2 * r2[j] + x3 * r3[j];                     \
    }                                                                                  \
    for (; i < k; i++) {                                                               \
      const T xi = x[i];                                                               \
      const T* r = M + i * n;                                                          \
      for (int64_t j = 0; j < n; j++) y[j] += xi * r[j];                               \
    }                                                                                  \
  }
EMBMAP_ROW_TIMES(float)
EMBMAP_ROW_TIMES(double)
#undef EMBMAP_ROW_TIMES

}  // namespace

template <typename T>
void gemmBias(Backend& be, bool transX, bool transM, int64_t m, int64_t n, int64_t k,
              const T* X, const T* M, const T* bias, T* Y) {
  if (m == 1 && !transM) {  // X's single row is contiguous whether or not it is "transposed"
    if (bias) std::copy(bias, bias + n, Y);
    else std::fill(Y, Y + n, T(0));
    rowTimes(X, M, k, n, Y);
    return;
  }
  if (DeviceOps* dev = be.device()) return dev->gemmBias(transX, transM, m, n, k, X, M, bias, Y);
  T beta = T(0);
  if (bias) {  // broadcast the bias into Y, then accumulate X*M onto it in one GEMM
    for (int64_t i = 0; i < m; i++) std::copy(bias, bias + n, Y + i * n);
    beta = T(1);
  }
  be.la<T>().gemm(transX, transM, m, n, k, T(1), X, transX ? m : k, M, transM ? k : n, beta, Y,
                  n);
}

template void gemmBias<float>(Backend&, bool, bool, int64_t, int64_t, int64_t, const float*,
                              const float*, const float*, float*);
template void gemmBias<double>(Backend&, bool, bool, int64_t, int64_t, int64_t, const double*,
                               const double*, const double*, double*);

}  // namespace embmap
