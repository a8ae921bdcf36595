#include "ops/ops.h"

namespace embmap {

template <typename T>
int64_t normalizeRows(const T* in, int64_t rows, int64_t cols, T* out) {
  int64_t zero = 0;
  for (int64_t i = 0; i < rows; i++) {
    const T inv = inverseL2(in + i * cols, cols);
    zero += inv == T(0) ? 1 : 0;
    for (int64_t j = 0; j < cols; j++) out[i * cols + j] = in[i * cols + j] * inv;
  }
  return zero;
}

template int64_t normalizeRows<float>(const float*, int64_t, int64_t, float*);
template int64_t normalizeRows<double>(const double*, int64_t, int64_t, double*);

}  // namespace embmap
