// NaN/Inf screening shared by the backends: the factorisations fail through their return value
// on non-finite input (LAPACK would STOP the process through xerbla; iterative solvers would
// spin or return garbage), the same way on every backend.
#pragma once
#include <cstdint>

namespace embmap {

// Whether every value of a row-major rows x cols block (row stride lda) is finite.
template <typename T>
bool allFinite(int64_t rows, int64_t cols, const T* A, int64_t lda) {
  for (int64_t i = 0; i < rows; ++i) {
    const T* a = A + i * lda;
    T acc = 0;
    for (int64_t j = 0; j < cols; ++j) acc += a[j] * T(0);  // NaN or inf poisons acc
    if (acc != acc) return false;
  }
  return true;
}

}  // namespace embmap
