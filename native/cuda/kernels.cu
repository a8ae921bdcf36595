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

// Rounded to bfloat16 (nearest, ties to even): BF16 products take converted operands.
extern "C" __global__ void f32_to_bf16(const float* x, unsigned short* y, i64 n) {
  GRID_STRIDE(i, n) {
    const unsigned b = __float_as_uint(x[i]);
    y[i] = (unsigned short)((b + 0x7fffu + ((b >> 16) & 1u)) >> 16);
  }
}

// acc += the sum over `parts` consecutive p x p slices of G1 (+ G2 + G2^T over `parts2`
// slices): a block's float32 Gram matrices folded into the float64 accumulator, exactly
// symmetric. With `lower`, G1 holds only its column-major lower triangle (as SYRK leaves it);
// otherwise both triangles, which come from different GEMM tiles and may differ in the last
// bit. G2 = hi^T lo under 3xTF32, so G2 + G2^T = hi^T lo + lo^T hi; null otherwise.
extern "C" __global__ void fold_gram(const float* G1, int parts, int lower, const float* G2,
                                     int parts2, double* acc, i64 p) {
  GRID_STRIDE(t, p * p) {
    const i64 r = t / p, c = t % p, tt = c * p + r;
    double v = 0;
    for (int s = 0; s < parts; s++) {
      const float* g = G1 + s * p * p;
      v += lower ? (double)g[r >= c ? tt : t] : 0.5 * ((double)g[t] + (double)g[tt]);
    }
    for (int s = 0; s < parts2; s++) v += (double)G2[s * p * p + t] + (double)G2[s * p * p + tt];
    acc[t] += v;
  }
}

// acc += the sum of `parts` consecutive float32 slices of n values.
extern "C" __global__ void add_parts(const float* x, int parts, i64 n, double* acc) {
  GRID_STRIDE(i, n) {
    double v = 0;
    for (int s = 0; s < parts; s++) v += x[s * n + i];
    acc[i] += v;
  }
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
// Each thread keeps the k best of the columns it scans in registers (a sorted list of KC
// slots: every index is a compile-time constant, so it never spills to local memory), then k
// rounds of a block arg-max merge them with the row's running list from earlier tiles.
// Order: descending score, ties to the lower gallery index, as the CPU heap does. Scores are
// raw dot products scaled by both inverse norms here, as on the CPU. A histogram of the scores
// is kept in shared memory when it fits. Each thread loads TOPK_UNROLL scores before it
// compares any, so the loads overlap.
#define TOPK_THREADS 256
#define TOPK_SHARED_BINS 4096
#define TOPK_UNROLL 4 /* the selection below names v[0..3] */
#define TOPK_NONE 0x7fffffff
// Bubbles (S0, ID0) into place among the first k slots of (ls, li); what falls off the end is
// dropped. A macro, not a lambda: capturing the lists by reference would put them in memory.
#define TOPK_INSERT(T, KC, S0, ID0)                                                 \
  {                                                                                 \
    T cs = (S0);                                                                    \
    int ci = (ID0);                                                                 \
    _Pragma("unroll") for (int q = 0; q < KC; q++) {                                \
      if (q < k && (cs > ls[q] || (cs == ls[q] && ci < li[q]))) {                   \
        const T ts = ls[q];                                                         \
        const int ti = li[q];                                                       \
        ls[q] = cs;                                                                 \
        li[q] = ci;                                                                 \
        cs = ts;                                                                    \
        ci = ti;                                                                    \
      }                                                                             \
      if (q == k - 1) thr = ls[q];                                                  \
    }                                                                               \
  }
// A thread's list: KC (score, index) slots, descending, empty slots (-inf, TOPK_NONE) last.
#define TOPK_EMPTY_LIST(T, KC)                                                      \
  T ls[KC];                                                                         \
  int li[KC];                                                                       \
  _Pragma("unroll") for (int q = 0; q < KC; q++) {                                  \
    ls[q] = NEG;                                                                    \
    li[q] = TOPK_NONE;                                                              \
  }
// Inserts the loaded scores v[u] flagged in `hits` (index BASE + u * STRIDE), lowest u first,
// each only if still strictly better than the k-th (among equal scores the lower index stays).
// Rare after the first few hundred candidates: one copy of the insertion, out of the unrolled
// loads.
#define TOPK_INSERT_HITS(T, KC, BASE, STRIDE)                                       \
  while (hits) {                                                                    \
    const int u = __ffs(hits) - 1;                                                  \
    hits &= hits - 1;                                                               \
    const T s = u == 0 ? v[0] : u == 1 ? v[1] : u == 2 ? v[2] : v[3];               \
    if (s > thr) TOPK_INSERT(T, KC, s, (int)((BASE) + u * (STRIDE)));               \
  }
// Arg-max of (bs, bi, bt) over a warp's lanes by xor shuffles (offsets FIRST, FIRST/2, .., 1),
// descending score, ties to the lower index: every lane ends with the same winner.
#define TOPK_WARP_MAX(FIRST)                                                                   \
  for (int off = (FIRST); off > 0; off /= 2) {                                                 \
    const auto os = __shfl_xor_sync(0xffffffffu, bs, off);                                     \
    const int oi = __shfl_xor_sync(0xffffffffu, bi, off);                                      \
    const int ot = __shfl_xor_sync(0xffffffffu, bt, off);                                      \
    if (os > bs || (os == bs && oi < bi)) {                                                    \
      bs = os;                                                                                 \
      bi = oi;                                                                                 \
      bt = ot;                                                                                 \
    }                                                                                          \
  }
#define TOPK(NAME, T, KC)                                                                      \
  extern "C" __global__ void __launch_bounds__(TOPK_THREADS, 2) NAME(                          \
      const T* S, i64 ldS, i64 bq, i64 bg, i64 q0, i64 g0, const T* qInv, const T* gInv,       \
      int k, int self, int hasPrev, T* bestS, int* bestI, double lo, double binScale,          \
      int bins, unsigned long long* counts) {                                                  \
    extern __shared__ unsigned int hist[];                                                     \
    __shared__ T rs[TOPK_THREADS];                                                             \
    __shared__ int ri[TOPK_THREADS];                                                           \
    __shared__ int rt[TOPK_THREADS];                                                           \
    const T NEG = (T)(-1.0 / 0.0);                                                             \
    const int t = threadIdx.x;                                                                 \
    const i64 qi = q0 + blockIdx.x;                                                            \
    const bool sharedHist = counts && bins <= TOPK_SHARED_BINS;                                \
    if (sharedHist)                                                                            \
      for (int b = t; b < bins; b += TOPK_THREADS) hist[b] = 0;                                \
    __syncthreads();                                                                           \
    TOPK_EMPTY_LIST(T, KC)                                                                     \
    T thr = k > 0 ? NEG : (T)(1.0 / 0.0); /* the k-th best so far (nothing enters when k = 0) */ \
    if (t == 0 && hasPrev)                                                                     \
      for (int r = 0; r < k; r++)                                                              \
        if (bestI[qi * k + r] >= 0) TOPK_INSERT(T, KC, bestS[qi * k + r], bestI[qi * k + r]);  \
    const T* row = S + blockIdx.x * ldS;                                                       \
    const T qs = qInv[qi];                                                                     \
    for (i64 j0 = t; j0 < bg; j0 += TOPK_UNROLL * TOPK_THREADS) {                              \
      T v[TOPK_UNROLL];                                                                        \
      _Pragma("unroll") for (int u = 0; u < TOPK_UNROLL; u++) {                                \
        const i64 j = j0 + u * TOPK_THREADS;                                                   \
        v[u] = j < bg ? row[j] * qs * gInv[g0 + j] : NEG;                                      \
      }                                                                                        \
      unsigned hits = 0; /* the loaded scores that beat the k-th best */                       \
      _Pragma("unroll") for (int u = 0; u < TOPK_UNROLL; u++) {                                \
        const i64 j = j0 + u * TOPK_THREADS;                                                   \
        const i64 gj = g0 + j;                                                                 \
        if (j >= bg || (self && gj == qi)) continue;                                           \
        const T s = v[u];                                                                      \
        if (counts && (!self || gj > qi) && s == s) {                                          \
          i64 b = (i64)floor(((double)s - lo) * binScale);                                     \
          b = b < 0 ? 0 : (b >= bins ? bins - 1 : b);                                          \
          if (sharedHist) atomicAdd(&hist[b], 1u);                                             \
          else atomicAdd(&counts[b], 1ull);                                                    \
        }                                                                                      \
        if (s > thr) hits |= 1u << u;                                                          \
      }                                                                                        \
      TOPK_INSERT_HITS(T, KC, g0 + j0, TOPK_THREADS)                                           \
    }                                                                                          \
    /* k rounds of a block arg-max over the threads' heads: within each warp by shuffles, then \
       across the 8 warps by warp 0; the winner pops its head. Two barriers a round. */         \
    const int lane = t % 32, warp = t / 32;                                                    \
    for (int r = 0; r < k; r++) {                                                              \
      T bs = ls[0];                                                                            \
      int bi = li[0], bt = t;                                                                  \
      TOPK_WARP_MAX(16)                                                                        \
      if (lane == 0) {                                                                         \
        rs[warp] = bs;                                                                         \
        ri[warp] = bi;                                                                         \
        rt[warp] = bt;                                                                         \
      }                                                                                        \
      __syncthreads();                                                                         \
      if (warp == 0) {                                                                         \
        const bool has = lane < TOPK_THREADS / 32;                                             \
        bs = has ? rs[lane] : NEG;                                                             \
        bi = has ? ri[lane] : TOPK_NONE;                                                       \
        bt = has ? rt[lane] : 0;                                                               \
        TOPK_WARP_MAX(TOPK_THREADS / 64)                                                       \
        if (lane == 0) {                                                                       \
          rs[TOPK_THREADS / 32] = bs;                                                          \
          ri[TOPK_THREADS / 32] = bi;                                                          \
          rt[TOPK_THREADS / 32] = bt;                                                          \
          bestS[qi * k + r] = bi == TOPK_NONE ? NEG : bs;                                      \
          bestI[qi * k + r] = bi == TOPK_NONE ? -1 : bi;                                       \
        }                                                                                      \
      }                                                                                        \
      __syncthreads();                                                                         \
      if (t == rt[TOPK_THREADS / 32]) { /* the winner pops its head */                         \
        _Pragma("unroll") for (int q = 0; q + 1 < KC; q++) {                                   \
          ls[q] = ls[q + 1];                                                                   \
          li[q] = li[q + 1];                                                                   \
        }                                                                                      \
        ls[KC - 1] = NEG;                                                                      \
        li[KC - 1] = TOPK_NONE;                                                                \
      }                                                                                        \
    }                                                                                          \
    if (sharedHist) {                                                                          \
      __syncthreads();                                                                         \
      for (int b = t; b < bins; b += TOPK_THREADS)                                             \
        if (hist[b]) atomicAdd(&counts[b], (unsigned long long)hist[b]);                       \
    }                                                                                          \
  }
// Two list capacities: 16 slots stay in registers; 64 (the GPU path's largest k) may spill.
TOPK(topk16_rows_f32, float, 16)
TOPK(topk16_rows_f64, double, 16)
TOPK(topk64_rows_f32, float, 64)
TOPK(topk64_rows_f64, double, 64)

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

// ---- the column pass of cosine top-k on a set against itself: only tiles on and above the
// diagonal are multiplied, so a tile S (b x c) at rows q0.., columns g0.. (g0 > q0) also serves
// rows g0.. as queries: each column's best rows join that row's running list. 32 columns per
// block, 8 threads per column splitting the rows, merged through shared memory by one thread per
// column. Scores scale as the row pass would for query gj: (dot * inv[gj]) * inv[qi].
#define TOPKC_SPLIT 8
#define TOPK_COLS(NAME, T, KC)                                                                 \
  extern "C" __global__ void __launch_bounds__(TOPK_THREADS, 2) NAME(                          \
      const T* S, i64 ldS, i64 b, i64 c, i64 q0, i64 g0, const T* inv, int k, T* bestS,        \
      int* bestI) {                                                                            \
    __shared__ T ss[TOPKC_SPLIT][32][KC];                                                      \
    __shared__ int si[TOPKC_SPLIT][32][KC];                                                    \
    const T NEG = (T)(-1.0 / 0.0);                                                             \
    const int tx = threadIdx.x % 32, ty = threadIdx.x / 32;                                    \
    const i64 j = blockIdx.x * (i64)32 + tx;                                                   \
    const i64 gj = g0 + j;                                                                     \
    TOPK_EMPTY_LIST(T, KC)                                                                     \
    T thr = NEG;                                                                               \
    if (j < c) {                                                                               \
      const T gs = inv[gj];                                                                    \
      for (i64 i0 = ty; i0 < b; i0 += TOPK_UNROLL * TOPKC_SPLIT) {                             \
        T v[TOPK_UNROLL];                                                                      \
        unsigned hits = 0;                                                                     \
        _Pragma("unroll") for (int u = 0; u < TOPK_UNROLL; u++) {                              \
          const i64 i = i0 + u * TOPKC_SPLIT;                                                  \
          v[u] = i < b ? S[i * ldS + j] * gs * inv[q0 + i] : NEG;                              \
          if (i < b && v[u] > thr) hits |= 1u << u;                                            \
        }                                                                                      \
        TOPK_INSERT_HITS(T, KC, q0 + i0, TOPKC_SPLIT)                                          \
      }                                                                                        \
    }                                                                                          \
    _Pragma("unroll") for (int q = 0; q < KC; q++) {                                           \
      ss[ty][tx][q] = ls[q];                                                                   \
      si[ty][tx][q] = li[q];                                                                   \
    }                                                                                          \
    __syncthreads();                                                                           \
    if (ty != 0 || j >= c) return;                                                             \
    for (int o = 1; o < TOPKC_SPLIT; o++)                                                      \
      for (int q = 0; q < k && si[o][tx][q] != TOPK_NONE; q++)                                 \
        TOPK_INSERT(T, KC, ss[o][tx][q], si[o][tx][q]);                                        \
    for (int q = 0; q < k; q++)                                                                \
      if (bestI[gj * k + q] >= 0) TOPK_INSERT(T, KC, bestS[gj * k + q], bestI[gj * k + q]);   \
    _Pragma("unroll") for (int q = 0; q < KC; q++)                                             \
      if (q < k) {                                                                             \
        bestS[gj * k + q] = li[q] == TOPK_NONE ? NEG : ls[q];                                  \
        bestI[gj * k + q] = li[q] == TOPK_NONE ? -1 : li[q];                                   \
      }                                                                                        \
  }
TOPK_COLS(topk16_cols_f32, float, 16)
TOPK_COLS(topk16_cols_f64, double, 16)

