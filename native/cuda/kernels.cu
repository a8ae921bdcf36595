// Device kernels of the cuda backend, compiled at run time by NVRTC for the GPU in use, so the
// build needs no CUDA toolkit. C linkage (looked up by name); 64-bit indices throughout, since
// N*p may exceed 2^31. Float32/float64 pairs are stamped out by macros (extern "C" forbids
// templates).
typedef long long i64;

#define GRID_STRIDE(i, n) \
  for (i64 i = blockIdx.x * (i64)blockDim.x + threadIdx.x; i < (n); i += (i64)gridDim.x * blockDim.x)

extern "C" __global__ void f32_to_f64(const float* x, double* y, i64 n) {
  GRID_STRIDE(i, n) y[i] = x[i];
}

extern "C" __global__ void f64_to_f32(const double* x, float* y, i64 n) {
  GRID_STRIDE(i, n) y[i] = (float)x[i];
}

// x = hi + lo with hi rounded to TF32 (10 mantissa bits): tensor cores multiply hi and lo
// exactly, and hi*hi + hi*lo + lo*hi recovers float32 accuracy ("3xTF32").
extern "C" __global__ void split_tf32(const float* x, float* hi, float* lo, i64 n) {
  GRID_STRIDE(i, n) {
    const float v = x[i];
    const float h = __uint_as_float((__float_as_uint(v) + 0x1000u) & 0xffffe000u);
    hi[i] = h;
    lo[i] = v - h;
  }
}

// acc += G1 (+ G2 + G2^T): folds one block's float32 Gram matrix into the float64 accumulator,
// exactly symmetric (G1's two triangles come from different GEMM tiles and may differ in the
// last bit). G2 = hi^T lo under 3xTF32, so G2 + G2^T = hi^T lo + lo^T hi; null otherwise.
extern "C" __global__ void fold_gram(const float* G1, const float* G2, double* acc, i64 p) {
  GRID_STRIDE(t, p * p) {
    const i64 tt = (t % p) * p + t / p;
    double v = 0.5 * ((double)G1[t] + (double)G1[tt]);
    if (G2) v += (double)G2[t] + (double)G2[tt];
    acc[t] += v;
  }
}

extern "C" __global__ void add_f32_to_f64(const float* x, double* acc, i64 n) {
  GRID_STRIDE(i, n) acc[i] += x[i];
}

// Column sums (and sums of squares) in float64: block (x, y) sums rows [y*rowsPer, ...) of the
// columns it covers, then adds once per column.
#define COLUMN_SUMS(NAME, T)                                                                  \
  extern "C" __global__ void NAME(const T* A, i64 rows, i64 cols, i64 rowsPer, double* sums,  \
                                  double* sq) {                                               \
    const i64 c = blockIdx.x * (i64)blockDim.x + threadIdx.x;                                 \
    if (c >= cols) return;                                                                    \
    const i64 r0 = blockIdx.y * rowsPer;                                                      \
    const i64 r1 = r0 + rowsPer < rows ? r0 + rowsPer : rows;                                 \
    double s = 0, s2 = 0;                                                                     \
    for (i64 r = r0; r < r1; r++) {                                                           \
      const double v = A[r * cols + c];                                                       \
      s += v;                                                                                 \
      s2 += v * v;                                                                            \
    }                                                                                         \
    atomicAdd(&sums[c], s);                                                                   \
    if (sq) atomicAdd(&sq[c], s2);                                                            \
  }
COLUMN_SUMS(column_sums_f32, float)
COLUMN_SUMS(column_sums_f64, double)

// Y[r, :] = b for every row (the bias, before a GEMM accumulates X*M onto it).
#define BROADCAST_ROWS(NAME, T)                                                  \
  extern "C" __global__ void NAME(T* Y, const T* b, i64 rows, i64 cols) {        \
    GRID_STRIDE(t, rows * cols) Y[t] = b[t % cols];                              \
  }
BROADCAST_ROWS(broadcast_rows_f32, float)
BROADCAST_ROWS(broadcast_rows_f64, double)

// 1/||row|| summed in float64 (0 for a zero row, which then scores 0): one warp per row.
#define INV_NORMS(NAME, T)                                                                   \
  extern "C" __global__ void NAME(const T* A, i64 rows, i64 cols, T* inv) {                  \
    const i64 r = (blockIdx.x * (i64)blockDim.x + threadIdx.x) / 32;                         \
    const int lane = threadIdx.x % 32;                                                       \
    if (r >= rows) return;                                                                   \
    double s = 0;                                                                            \
    for (i64 j = lane; j < cols; j += 32) {                                                  \
      const double v = A[r * cols + j];                                                      \
      s += v * v;                                                                            \
    }                                                                                        \
    for (int off = 16; off > 0; off /= 2) s += __shfl_down_sync(0xffffffffu, s, off);        \
    if (lane == 0) inv[r] = s > 0 ? (T)(1.0 / sqrt(s)) : (T)0;                               \
  }
INV_NORMS(inv_norms_f32, float)
INV_NORMS(inv_norms_f64, double)

// Row-major strict upper triangle to zero (after a Cholesky that left the input there).
#define ZERO_UPPER(NAME, T)                                          \
  extern "C" __global__ void NAME(T* A, i64 n, i64 lda) {            \
    GRID_STRIDE(t, n * n) {                                          \
      if (t % n > t / n) A[(t / n) * lda + t % n] = 0;               \
    }                                                                \
  }
ZERO_UPPER(zero_upper_f32, float)
ZERO_UPPER(zero_upper_f64, double)

extern "C" __global__ void add_diag_f64(double* A, i64 n, i64 lda, double v) {
  GRID_STRIDE(i, n) A[i * lda + i] += v;
}

// Standard normal values from a counter-based hash (splitmix64 + Box-Muller): the benchmarks
// make their data on the device, reproducibly, without cuRAND.
__device__ unsigned long long splitmix(unsigned long long z) {
  z += 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}
extern "C" __global__ void fill_normal_f32(float* x, i64 n, unsigned long long seed, float scale) {
  GRID_STRIDE(i, n) {
    const unsigned long long h = splitmix(seed * 0x2545f4914f6cdd1dull + (unsigned long long)i);
    const double u1 = ((h >> 11) + 1.0) * (1.0 / 9007199254740993.0);
    const double u2 = (splitmix(h) >> 11) * (1.0 / 9007199254740992.0);
    x[i] = (float)(scale * sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
  }
}

// ---- cosine top-k: one block per query row of a score tile S (bq x bg, row stride ldS).
// Each thread keeps the k best of the columns it scans (descending score, ties to the lower
// gallery index, as the CPU heap does), then k rounds of a block arg-max merge them with the
// row's running list from earlier tiles. Scores are raw dot products scaled by both inverse
// norms here, as on the CPU. A histogram of the scores is kept in shared memory when it fits.
#define TOPK_THREADS 256
#define TOPK_KMAX 64
#define TOPK_SHARED_BINS 4096
#define TOPK(NAME, T)                                                                          \
  extern "C" __global__ void __launch_bounds__(TOPK_THREADS) NAME(                             \
      const T* S, i64 ldS, i64 bq, i64 bg, i64 q0, i64 g0, const T* qInv, const T* gInv,       \
      int k, int self, int hasPrev, T* bestS, int* bestI, double lo, double binScale,          \
      int bins, unsigned long long* counts) {                                                  \
    extern __shared__ unsigned int hist[];                                                     \
    __shared__ T rs[TOPK_THREADS];                                                             \
    __shared__ int ri[TOPK_THREADS];                                                           \
    __shared__ int rt[TOPK_THREADS];                                                           \
    const int t = threadIdx.x;                                                                 \
    const i64 i = blockIdx.x;                                                                  \
    const i64 qi = q0 + i;                                                                     \
    const bool sharedHist = counts && bins <= TOPK_SHARED_BINS;                                \
    if (sharedHist)                                                                            \
      for (int b = t; b < bins; b += TOPK_THREADS) hist[b] = 0;                                \
    __syncthreads();                                                                           \
    T ls[TOPK_KMAX];                                                                           \
    int li[TOPK_KMAX];                                                                         \
    int n = 0;                                                                                 \
    if (t == 0 && hasPrev)                                                                     \
      for (int r = 0; r < k; r++)                                                              \
        if (bestI[qi * k + r] >= 0) {                                                          \
          ls[n] = bestS[qi * k + r];                                                           \
          li[n] = bestI[qi * k + r];                                                           \
          n++;                                                                                 \
        }                                                                                      \
    const T* row = S + i * ldS;                                                                \
    const T qs = qInv[qi];                                                                     \
    for (i64 j = t; j < bg; j += TOPK_THREADS) {                                               \
      const i64 gj = g0 + j;                                                                   \
      if (self && gj == qi) continue;                                                          \
      const T s = row[j] * qs * gInv[gj];                                                      \
      if (counts && (!self || gj > qi) && s == s) {                                            \
        i64 b = (i64)floor(((double)s - lo) * binScale);                                       \
        b = b < 0 ? 0 : (b >= bins ? bins - 1 : b);                                            \
        if (sharedHist) atomicAdd(&hist[b], 1u);                                               \
        else atomicAdd(&counts[b], 1ull);                                                      \
      }                                                                                        \
      if (k > 0 && (n < k || s > ls[k - 1])) {                                                 \
        int pos = n < k ? n : k - 1;                                                           \
        while (pos > 0 && ls[pos - 1] < s) {                                                   \
          ls[pos] = ls[pos - 1];                                                               \
          li[pos] = li[pos - 1];                                                               \
          pos--;                                                                               \
        }                                                                                      \
        ls[pos] = s;                                                                           \
        li[pos] = (int)gj;                                                                     \
        if (n < k) n++;                                                                        \
      }                                                                                        \
    }                                                                                          \
    int h = 0;                                                                                 \
    for (int r = 0; r < k; r++) {                                                              \
      rs[t] = h < n ? ls[h] : (T)(-1.0 / 0.0);                                                 \
      ri[t] = h < n ? li[h] : 0x7fffffff;                                                      \
      rt[t] = t;                                                                               \
      __syncthreads();                                                                         \
      for (int off = TOPK_THREADS / 2; off > 0; off /= 2) {                                    \
        if (t < off) {                                                                         \
          const T a = rs[t], b = rs[t + off];                                                  \
          if (b > a || (b == a && ri[t + off] < ri[t])) {                                      \
            rs[t] = b;                                                                         \
            ri[t] = ri[t + off];                                                               \
            rt[t] = rt[t + off];                                                               \
          }                                                                                    \
        }                                                                                      \
        __syncthreads();                                                                       \
      }                                                                                        \
      if (t == rt[0] && h < n) h++;                                                            \
      if (t == 0) {                                                                            \
        const bool none = ri[0] == 0x7fffffff;                                                 \
        bestS[qi * k + r] = none ? (T)(-1.0 / 0.0) : rs[0];                                    \
        bestI[qi * k + r] = none ? -1 : ri[0];                                                 \
      }                                                                                        \
      __syncthreads();                                                                         \
    }                                                                                          \
    if (sharedHist) {                                                                          \
      __syncthreads();                                                                         \
      for (int b = t; b < bins; b += TOPK_THREADS)                                             \
        if (hist[b]) atomicAdd(&counts[b], (unsigned long long)hist[b]);                       \
    }                                                                                          \
  }
TOPK(topk_rows_f32, float)
TOPK(topk_rows_f64, double)

// Row-major C (rows x cols, ld) *= beta; set to zero when beta is 0 (so NaNs do not survive).
#define SCALE_MATRIX(NAME, T)                                                          \
  extern "C" __global__ void NAME(T* C, i64 rows, i64 cols, i64 ld, T beta) {          \
    GRID_STRIDE(t, rows * cols) {                                                      \
      T* c = C + (t / cols) * ld + t % cols;                                           \
      *c = beta == (T)0 ? (T)0 : *c * beta;                                            \
    }                                                                                  \
  }
SCALE_MATRIX(scale_matrix_f32, float)
SCALE_MATRIX(scale_matrix_f64, double)

// Row-major upper triangle <- lower triangle (products computed twice by a GEMM can differ in
// the last bit; the CPU backends return exactly symmetric results).
#define SYMMETRIZE(NAME, T)                                                 \
  extern "C" __global__ void NAME(T* A, i64 n, i64 lda) {                   \
    GRID_STRIDE(t, n * n) {                                                 \
      const i64 r = t / n, c = t % n;                                       \
      if (c > r) A[r * lda + c] = A[c * lda + r];                           \
    }                                                                       \
  }
SYMMETRIZE(symmetrize_f32, float)
SYMMETRIZE(symmetrize_f64, double)

#define GET_DIAG(NAME, T)                                                   \
  extern "C" __global__ void NAME(const T* A, i64 n, i64 lda, T* d) {       \
    GRID_STRIDE(i, n) d[i] = A[i * lda + i];                                \
  }
GET_DIAG(get_diag_f32, float)
GET_DIAG(get_diag_f64, double)

// Column-major A (rows x cols, lda): row i scaled by s[i].
#define SCALE_ROWS_CM(NAME, T)                                                      \
  extern "C" __global__ void NAME(T* A, i64 rows, i64 cols, i64 lda, const T* s) {  \
    GRID_STRIDE(t, rows * cols) A[(t / rows) * lda + t % rows] *= s[t % rows];      \
  }
SCALE_ROWS_CM(scale_rows_cm_f32, float)
SCALE_ROWS_CM(scale_rows_cm_f64, double)
