#include <algorithm>

#include "ops/ops.h"

namespace embmap {

template <typename T>
void gemmBias(Backend& be, bool transX, bool transM, int64_t m, int64_t n, int64_t k,
              const T* X, const T* M, const T* bias, T* Y) {
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
