// Cache-blocked GEMM in the Goto/BLIS layout: op(B) is packed into KC x NC panels of NR-wide
// slivers, op(A) into MC x KC blocks of MR-tall slivers, and an MR x NR register-blocked
// micro-kernel walks them. The micro-kernel is compiled once per ISA (function
// multiversioning by hand, since the register block differs per ISA) and picked at runtime.
#include <cstdlib>
#include <cstring>

#include "engine/threads.h"
#include "portable/kernels.h"

namespace embmap::portable {

Isa detectIsa() {
  Isa best = Isa::Default;
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) best = Isa::Avx2;
  if (best == Isa::Avx2 && __builtin_cpu_supports("avx512f")) best = Isa::Avx512;
  if (const char* want = std::getenv("EMBMAP_PORTABLE_KERNEL")) {
    if (std::strcmp(want, "default") == 0) best = Isa::Default;
    if (std::strcmp(want, "avx2") == 0 && best == Isa::Avx512) best = Isa::Avx2;
  }
  return best;
}

const char* isaName(Isa isa) {
  switch (isa) {
    case Isa::Avx512: return "avx512f";
    case Isa::Avx2: return "avx2";
    default: return "default";
  }
}

namespace {

// C[0:mr, 0:nr] = alpha * Ap^T Bp + beta * C over kc steps; Ap holds MR values per step, Bp NR.
// Written with GCC vector types: plain loops auto-vectorise, but GCC 12 then vectorises the
// k loop instead or spills the accumulators, depending on the ISA.
template <typename T>
using MicroKernel = void (*)(int64_t kc, const T* Ap, const T* Bp, T* C, int64_t ldc, T alpha,
                             T beta, int mr, int nr);

template <typename T, int MR, int NV, int VB>
inline __attribute__((always_inline)) void microTile(int64_t kc, const T* __restrict Ap,
                                                      const T* __restrict Bp, T* __restrict C,
                                                      int64_t ldc, T alpha, T beta, int mr,
                                                      int nr) {
  typedef typename Vec<T, VB>::type V;
  constexpr int L = VB / int(sizeof(T)), NR = NV * L;
  V acc[MR][NV];
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[i][v] = V{};
  for (int64_t p = 0; p < kc; ++p) {
    const T* a = Ap + p * MR;
    const V* b = reinterpret_cast<const V*>(Bp + p * NR);  // packed panels are VB-aligned
    V bv[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) bv[v] = b[v];
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      const T ai = a[i];
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[i][v] += ai * bv[v];
    }
  }
  if (mr == MR && nr == NR) {
    for (int i = 0; i < MR; ++i)
      for (int v = 0; v < NV; ++v) {
        T* c = C + i * ldc + v * L;
        V r = alpha * acc[i][v];
        if (beta != T(0)) {  // beta == 0 must not read C: it may hold NaN
          V old;
          std::memcpy(&old, c, sizeof old);
          r += beta * old;
        }
        std::memcpy(c, &r, sizeof r);
      }
    return;
  }
  alignas(64) T tile[MR * NR];
  std::memcpy(tile, acc, sizeof tile);
  for (int i = 0; i < mr; ++i)
    for (int j = 0; j < nr; ++j) {
      T* c = C + i * ldc + j;
      *c = beta == T(0) ? alpha * tile[i * NR + j] : alpha * tile[i * NR + j] + beta * *c;
    }
}

#define EMBMAP_MICRO(name, attr, MR, NV, VB)                                                \
  template <typename T>                                                                    \
  attr void name(int64_t kc, const T* Ap, const T* Bp, T* C, int64_t ldc, T alpha, T beta, \
                 int mr, int nr) {                                                         \
    microTile<T, MR, NV, VB>(kc, Ap, Bp, C, ldc, alpha, beta, mr, nr);                     \
  }
// Accumulators: 12 x 2 of 32 zmm, 6 x 2 of 16 ymm / xmm registers.
EMBMAP_MICRO(microAvx512, __attribute__((target("avx512f,fma"))), 12, 2, 64)
EMBMAP_MICRO(microAvx2, __attribute__((target("avx2,fma"))), 6, 2, 32)
EMBMAP_MICRO(microDefault, , 6, 2, 16)
#undef EMBMAP_MICRO

template <typename T>
inline __attribute__((always_inline)) void rotBody(int64_t n, T* __restrict x, T* __restrict y,
                                                    T d, T s) {
  for (int64_t k = 0; k < n; ++k) {
    const T xk = x[k], yk = y[k];
    x[k] = xk - (d * xk + s * yk);
    y[k] = yk + (s * xk - d * yk);
  }
}

// One sweep of rotSweep on columns [c0, c0 + NV*L): the row shared by consecutive rotations
// stays in registers instead of going through a store and a reload per rotation.
template <typename T, int VB, int NV>
inline __attribute__((always_inline)) void rotSweepChunk(int64_t n, T* R, int64_t c0,
                                                          int64_t lo, int64_t hi, const T* cs) {
  typedef typename Vec<T, VB>::type V;
  constexpr int L = VB / int(sizeof(T));
  V carry[NV];
  for (int v = 0; v < NV; ++v) std::memcpy(&carry[v], R + hi * n + c0 + v * L, sizeof(V));
  for (int64_t i = hi - 1; i >= lo; --i, cs += 2) {
    const T c = cs[0], s = cs[1];
    const T* x = R + i * n + c0;
    T* y = R + (i + 1) * n + c0;
    for (int v = 0; v < NV; ++v) {
      V xv;
      std::memcpy(&xv, x + v * L, sizeof(V));
      const V yv = s * xv + c * carry[v];
      std::memcpy(y + v * L, &yv, sizeof(V));
      carry[v] = c * xv - s * carry[v];
    }
  }
  for (int v = 0; v < NV; ++v) std::memcpy(R + lo * n + c0 + v * L, &carry[v], sizeof(V));
}

template <typename T, int VB>
inline __attribute__((always_inline)) void rotSweepBody(int64_t n, T* R, int64_t lo,
                                                         int64_t hi, const T* cs) {
  constexpr int L = VB / int(sizeof(T)), NV = 8;
  int64_t c0 = 0;
  for (; c0 + NV * L <= n; c0 += NV * L) rotSweepChunk<T, VB, NV>(n, R, c0, lo, hi, cs);
  for (; c0 + L <= n; c0 += L) rotSweepChunk<T, VB, 1>(n, R, c0, lo, hi, cs);
  for (; c0 < n; ++c0) rotSweepChunk<T, int(sizeof(T)), 1>(n, R, c0, lo, hi, cs);
}

#define EMBMAP_VECOPS(suffix, attr, VB)                                           \
  template <typename T>                                                          \
  attr double dot##suffix(int64_t n, const T* x, const T* y) {                   \
    return dotBody<T, VB>(n, x, y);                                              \
  }                                                                              \
  template <typename T>                                                          \
  attr void rot##suffix(int64_t n, T* x, T* y, T d, T s) {                       \
    rotBody(n, x, y, d, s);                                                      \
  }                                                                              \
  template <typename T>                                                          \
  attr void rotSweep##suffix(int64_t n, T* R, int64_t lo, int64_t hi, const T* cs) { \
    rotSweepBody<T, VB>(n, R, lo, hi, cs);                                       \
  }
EMBMAP_VECOPS(Avx512, __attribute__((target("avx512f,fma"))), 64)
EMBMAP_VECOPS(Avx2, __attribute__((target("avx2,fma"))), 32)
EMBMAP_VECOPS(Default, , 16)
#undef EMBMAP_VECOPS

template <typename T>
struct Kernel {
  MicroKernel<T> run;
  int mr, nr;
  int64_t mc, kc, nc;  // cache blocks: A block ~L2, B sliver (kc x nr) ~L1, B panel ~L3
};

template <typename T>
Kernel<T> kernelFor(Isa isa) {
  constexpr int s = int(sizeof(T));
  switch (isa) {
    case Isa::Avx512: return {microAvx512<T>, 12, 128 / s, 192, 256, 4096};
    case Isa::Avx2: return {microAvx2<T>, 6, 64 / s, 120, 256, 4096};
    default: return {microDefault<T>, 6, 32 / s, 120, 256, 4096};
  }
}

// Packs op(A)[i0:i0+mc, p0:p0+kc] as MR-row slivers, step-major, zero-padded to MR rows.
template <typename T>
void packA(bool transA, const T* A, int64_t lda, int64_t i0, int64_t mc, int64_t p0,
           int64_t kc, int MR, T* Ap) {
  for (int64_t ir = 0; ir < mc; ir += MR) {
    const int mr = int(std::min<int64_t>(MR, mc - ir));
    T* dst = Ap + ir * kc;
    if (!transA) {
      for (int i = 0; i < mr; ++i) {
        const T* src = A + (i0 + ir + i) * lda + p0;
        for (int64_t p = 0; p < kc; ++p) dst[p * MR + i] = src[p];
      }
    } else {
      for (int64_t p = 0; p < kc; ++p) {
        const T* src = A + (p0 + p) * lda + i0 + ir;
        for (int i = 0; i < mr; ++i) dst[p * MR + i] = src[i];
      }
    }
    for (int64_t p = 0; p < kc && mr < MR; ++p)
      for (int i = mr; i < MR; ++i) dst[p * MR + i] = T(0);
  }
}

// Packs op(B)[p0:p0+kc, j0:j0+nc] as NR-column slivers, step-major, zero-padded to NR.
template <typename T>
void packB(bool transB, const T* B, int64_t ldb, int64_t p0, int64_t kc, int64_t j0,
           int64_t nc, int NR, T* Bp) {
  for (int64_t jr = 0; jr < nc; jr += NR) {
    const int nr = int(std::min<int64_t>(NR, nc - jr));
    T* dst = Bp + jr * kc;
    if (!transB) {
      for (int64_t p = 0; p < kc; ++p) {
        const T* src = B + (p0 + p) * ldb + j0 + jr;
        for (int j = 0; j < nr; ++j) dst[p * NR + j] = src[j];
        for (int j = nr; j < NR; ++j) dst[p * NR + j] = T(0);
      }
    } else {
      for (int j = 0; j < nr; ++j) {
        const T* src = B + (j0 + jr + j) * ldb + p0;
        for (int64_t p = 0; p < kc; ++p) dst[p * NR + j] = src[p];
      }
      for (int64_t p = 0; p < kc && nr < NR; ++p)
        for (int j = nr; j < NR; ++j) dst[p * NR + j] = T(0);
    }
  }
}

struct Range {
  int64_t i0, i1, j0, j1;
};

// One thread's packing space: an A block and a B panel, 64-byte aligned (the micro-kernel
// loads packed B as aligned vectors).
template <typename T>
class Workspace {
 public:
  Workspace(const Kernel<T>& K, const Range& r, int64_t k)
      : kc_(std::min(K.kc, k)),
        asize_(std::min(K.mc, roundUp(r.i1 - r.i0, K.mr)) * kc_),
        raw_(size_t(asize_ + std::min(K.nc, roundUp(r.j1 - r.j0, K.nr)) * kc_ + 2 * kAlign)) {}
  T* A() { return align(raw_.data()); }
  T* B() { return align(A() + asize_); }

 private:
  static constexpr int64_t kAlign = 64 / int64_t(sizeof(T));
  static int64_t roundUp(int64_t x, int64_t to) { return (x + to - 1) / to * to; }
  static T* align(T* p) {
    return reinterpret_cast<T*>((reinterpret_cast<uintptr_t>(p) + 63) & ~uintptr_t(63));
  }
  int64_t kc_, asize_;
  std::vector<T> raw_;
};

// One thread's share: C[r.i0:r.i1, r.j0:r.j1], k >= 1.
template <typename T>
void gemmBlock(const Kernel<T>& K, const Range& r, Workspace<T>& ws, bool transA, bool transB,
               int64_t k, T alpha, const T* A, int64_t lda, const T* B, int64_t ldb, T beta,
               T* C, int64_t ldc) {
  T* Ap = ws.A();
  T* Bp = ws.B();
  for (int64_t jc = r.j0; jc < r.j1; jc += K.nc) {
    const int64_t nc = std::min(K.nc, r.j1 - jc);
    for (int64_t pc = 0; pc < k; pc += K.kc) {
      const int64_t kc = std::min(K.kc, k - pc);
      const T b = pc == 0 ? beta : T(1);
      packB(transB, B, ldb, pc, kc, jc, nc, K.nr, Bp);
      for (int64_t ic = r.i0; ic < r.i1; ic += K.mc) {
        const int64_t mc = std::min(K.mc, r.i1 - ic);
        packA(transA, A, lda, ic, mc, pc, kc, K.mr, Ap);
        for (int64_t jr = 0; jr < nc; jr += K.nr) {
          const int nr = int(std::min<int64_t>(K.nr, nc - jr));
          for (int64_t ir = 0; ir < mc; ir += K.mr) {
            const int mr = int(std::min<int64_t>(K.mr, mc - ir));
            K.run(kc, Ap + ir * kc, Bp + jr * kc, C + (ic + ir) * ldc + jc + jr, ldc, alpha, b,
                  mr, nr);
          }
        }
      }
    }
  }
}

// Splits C into a tm x tn grid of tiles aligned to the register block, choosing the grid
// that minimises the packing each thread repeats (its rows of A plus its columns of B).
template <typename T>
std::vector<Range> partition(const Kernel<T>& K, int64_t m, int64_t n, int threads) {
  const int64_t mt = (m + K.mr - 1) / K.mr, nt = (n + K.nr - 1) / K.nr;
  int64_t bestTm = 1, bestTn = 1;
  double bestCost = -1;
  for (int t = threads; t > 1 && bestCost < 0; --t)  // fewer threads if C has too few tiles
    for (int64_t tm = 1; tm <= t; ++tm) {
      const int64_t tn = t / tm;
      if (tm * tn != t || tm > mt || tn > nt) continue;
      const double cost = double(m) / double(tm) + double(n) / double(tn);
      if (bestCost < 0 || cost < bestCost) bestCost = cost, bestTm = tm, bestTn = tn;
    }
  std::vector<Range> out;
  for (int64_t a = 0; a < bestTm; ++a)
    for (int64_t b = 0; b < bestTn; ++b)
      out.push_back({std::min(m, mt * a / bestTm * K.mr),
                     std::min(m, mt * (a + 1) / bestTm * K.mr),
                     std::min(n, nt * b / bestTn * K.nr),
                     std::min(n, nt * (b + 1) / bestTn * K.nr)});
  return out;
}

template <typename T>
void scaleC(int64_t m, int64_t n, T beta, T* C, int64_t ldc) {
  for (int64_t i = 0; i < m; ++i) {
    T* c = C + i * ldc;
    if (beta == T(0))
      std::fill(c, c + n, T(0));
    else
      for (int64_t j = 0; j < n; ++j) c[j] *= beta;
  }
}

}  // namespace

template <typename T>
const VecOps<T>& vecOps(Isa isa) {
  static const VecOps<T> avx512{dotAvx512<T>, rotAvx512<T>, rotSweepAvx512<T>},
      avx2{dotAvx2<T>, rotAvx2<T>, rotSweepAvx2<T>},
      portable{dotDefault<T>, rotDefault<T>, rotSweepDefault<T>};
  return isa == Isa::Avx512 ? avx512 : isa == Isa::Avx2 ? avx2 : portable;
}

template <typename T>
void gemm(const Ctx& ctx, bool transA, bool transB, int64_t m, int64_t n, int64_t k, T alpha,
          const T* A, int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  if (m <= 0 || n <= 0) return;
  if (k <= 0 || alpha == T(0)) {
    if (beta != T(1)) scaleC(m, n, beta, C, ldc);
    return;
  }
  const Kernel<T> K = kernelFor<T>(ctx.isa);
  // A thread costs tens of microseconds to start: only hand out ~1 MFLOP or more each.
  const double flops = 2.0 * double(m) * double(n) * double(k);
  const int threads = int(std::min<double>(capThreads(ctx.threads), std::max(1.0, flops / 1e6)));
  const std::vector<Range> parts = partition(K, m, n, std::max(1, threads));
  std::vector<Workspace<T>> ws;
  ws.reserve(parts.size());
  for (const Range& r : parts) ws.emplace_back(K, r, k);
  parallelFor(int64_t(parts.size()), [&](int64_t t) {
    gemmBlock(K, parts[t], ws[t], transA, transB, k, alpha, A, lda, B, ldb, beta, C, ldc);
  });
}

template <typename T>
void syrkT(const Ctx& ctx, int64_t n, int64_t k, T alpha, const T* A, int64_t lda, T beta,
           T* C, int64_t ldc) {
  // Block rows of the lower triangle (about half the flops of a full product), then mirror:
  // the upper triangle is an exact copy, and beta scales what was in the lower one.
  constexpr int64_t nb = 256;
  for (int64_t i0 = 0; i0 < n; i0 += nb) {
    const int64_t ib = std::min(nb, n - i0);
    gemm(ctx, true, false, ib, i0 + ib, k, alpha, A + i0, lda, A, lda, beta, C + i0 * ldc, ldc);
  }
  constexpr int64_t tb = 32;  // tiles keep the transposed reads in cache
  for (int64_t i0 = 0; i0 < n; i0 += tb)
    for (int64_t j0 = i0; j0 < n; j0 += tb)
      for (int64_t i = i0; i < std::min(n, i0 + tb); ++i)
        for (int64_t j = std::max(j0, i + 1); j < std::min(n, j0 + tb); ++j)
          C[i * ldc + j] = C[j * ldc + i];
}

#define EMBMAP_INSTANTIATE(T)                                                              \
  template void gemm<T>(const Ctx&, bool, bool, int64_t, int64_t, int64_t, T, const T*,    \
                        int64_t, const T*, int64_t, T, T*, int64_t);                       \
  template void syrkT<T>(const Ctx&, int64_t, int64_t, T, const T*, int64_t, T, T*, int64_t); \
  template const VecOps<T>& vecOps<T>(Isa);
EMBMAP_INSTANTIATE(float)
EMBMAP_INSTANTIATE(double)
#undef EMBMAP_INSTANTIATE

}  // namespace embmap::portable
