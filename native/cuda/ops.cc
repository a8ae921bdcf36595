#include "cuda/ops.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <thread>
#include <type_traits>
#include <vector>

#include "cuda/linalg.h"

namespace embmap::cuda {
namespace {

constexpr size_t kStageBytes = size_t(256) << 20;  // host-to-device staging per chunk

template <typename T>
void ensure(Device& d, Buffer<T>& b, int64_t count) {
  if (b.size() < count) b = Buffer<T>(d, count);
}

void zero(Device& d, Buffer<double>& b) {
  if (b.size() > 0)
    d.check(d.a.MemsetAsync(b.get(), 0, size_t(b.size()) * sizeof(double), d.stream()),
            "cudaMemsetAsync");
}

// Downloads a float64 accumulator and adds it into a host one.
void addHost(Device& d, const Buffer<double>& b, int64_t count, double* host) {
  if (!host || count == 0) return;
  std::vector<double> tmp(static_cast<size_t>(count));
  toHost(d, tmp.data(), b, count);
  for (int64_t i = 0; i < count; i++) host[i] += tmp[size_t(i)];
}

// Copies into pinned memory with up to 16 threads (one thread moves about 10 GB/s; the PCIe
// link takes several times that).
void parallelCopy(void* dst, const void* src, size_t bytes) {
  const size_t threads = std::min<size_t>(16, std::max(1u, std::thread::hardware_concurrency()));
  if (bytes < (size_t(8) << 20) || threads == 1) {
    std::memcpy(dst, src, bytes);
    return;
  }
  std::vector<std::thread> pool;
  const size_t per = (bytes + threads - 1) / threads;
  for (size_t t = 0; t < threads; t++) {
    const size_t off = t * per;
    if (off >= bytes) break;
    pool.emplace_back([=] {
      std::memcpy(static_cast<char*>(dst) + off, static_cast<const char*>(src) + off,
                  std::min(per, bytes - off));
    });
  }
  for (auto& th : pool) th.join();
}

}  // namespace

// ---- DeviceStats

DeviceStats::DeviceStats(Device& d, int64_t p_, int64_t q_, bool withYty)
    : p(p_), q(q_), sumX(d, p_), sumY(d, q_), sqY(d, q_), xtx(d, p_ * p_), xty(d, p_ * q_),
      yty(d, withYty ? q_ * q_ : 0), d_(d) {
  for (Buffer<double>* b : {&sumX, &sumY, &sqY, &xtx, &xty, &yty}) zero(d, *b);
}

template <typename T>
void DeviceStats::sums(const T* dX, const T* dY, int64_t rows) {
  const int64_t rowsPer = 256;
  const unsigned gy = unsigned((rows + rowsPer - 1) / rowsPer);  // rows <= kStatsBlock
  d_.launch(kernelName<T>("column_sums").c_str(), unsigned((p + 255) / 256), gy, 256, 0, dX, rows,
            p, rowsPer, sumX.get(), static_cast<double*>(nullptr));
  if (q > 0)
    d_.launch(kernelName<T>("column_sums").c_str(), unsigned((q + 255) / 256), gy, 256, 0, dY,
              rows, q, rowsPer, sumY.get(), sqY.get());
}

void DeviceStats::add(const double* dX, const double* dY, int64_t rows) {
  for (int64_t r0 = 0; r0 < rows; r0 += kStatsBlock) {
    const int64_t b = std::min(kStatsBlock, rows - r0);
    const double* X = dX + r0 * p;
    const double* Y = q > 0 ? dY + r0 * q : nullptr;
    sums<double>(X, Y, b);
    gemm<double>(d_, Precision::F32, true, false, p, p, b, 1, X, p, X, p, 1, xtx.get(), p);
    if (q > 0) gemm<double>(d_, Precision::F32, true, false, p, q, b, 1, X, p, Y, q, 1, xty.get(), q);
    if (q > 0 && yty.size())
      gemm<double>(d_, Precision::F32, true, false, q, q, b, 1, Y, q, Y, q, 1, yty.get(), q);
  }
  n += double(rows);
}

namespace {

// partial_s (a x c, row-major) = A_s^T B_s for consecutive row sub-blocks s of A (rows x a) and
// B (rows x c), elements of `type`: one strided-batched GEMM and one for a shorter remainder.
// Returns the number of partial products written.
int blockProducts(Device& d, const void* A, const void* B, int type, int compute, int64_t rows,
                  int64_t a, int64_t c, int64_t sub, float beta, float* parts) {
  const size_t es = type == R_16BF ? 2 : 4;
  const int64_t full = rows / sub, rest = rows - full * sub;
  const float one = 1;
  if (full > 0)
    d.checkBlas(d.a.GemmStridedBatchedEx(d.blas(), OP_N, OP_T, c, a, sub, &one, B, type, c, sub * c,
                                         A, type, a, sub * a, &beta, parts, R_32F, c, a * c, full,
                                         compute, kGemmDefault),
                "cublasGemmStridedBatchedEx");
  if (rest > 0)
    d.checkBlas(d.a.GemmEx(d.blas(), OP_N, OP_T, c, a, rest, &one,
                           static_cast<const char*>(B) + size_t(full * sub * c) * es, type, c,
                           static_cast<const char*>(A) + size_t(full * sub * a) * es, type, a,
                           &beta, parts + full * a * c, R_32F, c, compute, kGemmDefault),
                "cublasGemmEx");
  return int(full + (rest > 0));
}

constexpr size_t kPartsBytes = size_t(512) << 20;  // partial products of one block, per kind

}  // namespace

void DeviceStats::tensorCoreProducts(const float* X, const float* Y, int64_t b, Precision prec) {
  const void *xa = X, *ya = Y;
  const float *xl = nullptr, *yl = nullptr;
  int type = R_32F, compute = COMPUTE_32F_FAST_TF32;
  if (prec == Precision::TF32x3) {  // hi*hi + hi*lo + lo*hi
    d_.run("split_tf32", b * p, X, xh_.get(), xl_.get(), b * p);
    if (q > 0) d_.run("split_tf32", b * q, Y, yh_.get(), yl_.get(), b * q);
    xa = xh_.get(), ya = yh_.get(), xl = xl_.get(), yl = yl_.get();
  } else if (prec == Precision::BF16) {
    d_.run("f32_to_bf16", b * p, X, x16_.get(), b * p);
    if (q > 0) d_.run("f32_to_bf16", b * q, Y, y16_.get(), b * q);
    xa = x16_.get(), ya = y16_.get(), type = R_16BF, compute = COMPUTE_32F;
  }
  // Only 3xTF32's hi*hi products are cut into sub-blocks: TF32 and BF16 errors come from their
  // rounded inputs, and hi*lo terms are 2^-11 smaller, so their accumulation error is too.
  const int64_t sub = xl ? (b + slots_ - 1) / slots_ : b;
  const int parts = blockProducts(d_, xa, xa, type, compute, b, p, p, sub, 0, g1_.get());
  if (xl) blockProducts(d_, xa, xl, type, compute, b, p, p, b, 0, g2_.get());
  d_.run("fold_gram", p * p, static_cast<const float*>(g1_.get()), parts, 0,
         static_cast<const float*>(g2_.get()), xl ? 1 : 0, xtx.get(), p);
  if (q == 0) return;
  blockProducts(d_, xa, ya, type, compute, b, p, q, sub, 0, c_.get());
  d_.run("add_parts", p * q, static_cast<const float*>(c_.get()), parts, p * q, xty.get());
  if (xl) {
    blockProducts(d_, xa, yl, type, compute, b, p, q, b, 0, c_.get());
    blockProducts(d_, xl, ya, type, compute, b, p, q, b, 1, c_.get());
    d_.run("add_parts", p * q, static_cast<const float*>(c_.get()), 1, p * q, xty.get());
  }
  if (!yty.size()) return;
  blockProducts(d_, ya, ya, type, compute, b, q, q, sub, 0, g1_.get());
  if (yl) blockProducts(d_, ya, yl, type, compute, b, q, q, b, 0, g2_.get());
  d_.run("fold_gram", q * q, static_cast<const float*>(g1_.get()), parts, 0,
         static_cast<const float*>(g2_.get()), yl ? 1 : 0, yty.get(), q);
}

void DeviceStats::add(const float* dX, const float* dY, int64_t rows, Precision prec,
                      bool exactF64) {
  const int64_t blk = std::min(kStatsBlock, rows);
  const int64_t gram = std::max(p * p, yty.size());
  const bool tensor = !exactF64 && prec != Precision::F32;
  if (exactF64) {
    ensure(d_, xd_, blk * p);
    ensure(d_, yd_, blk * q);
  } else if (!tensor) {
    ensure(d_, g1_, gram);
    ensure(d_, c_, p * q);
  } else {
    slots_ = prec != Precision::TF32x3
                 ? 1
                 : std::clamp<int64_t>(int64_t(kPartsBytes / 4) / std::max(gram, p * q), 1,
                                       tensorCoreSlots);
    ensure(d_, g1_, (slots_ + 1) * gram);  // + 1: a remainder sub-block
    ensure(d_, c_, (slots_ + 1) * p * q);
    if (prec == Precision::TF32x3) {
      ensure(d_, g2_, gram);
      for (auto* b : {&xh_, &xl_}) ensure(d_, *b, blk * p);
      for (auto* b : {&yh_, &yl_}) ensure(d_, *b, blk * q);
    }
    if (prec == Precision::BF16) {
      ensure(d_, x16_, blk * p);
      ensure(d_, y16_, blk * q);
    }
  }
  const float* noG2 = nullptr;
  const float one = 1, zero = 0;
  for (int64_t r0 = 0; r0 < rows; r0 += kStatsBlock) {
    const int64_t b = std::min(kStatsBlock, rows - r0);
    const float* X = dX + r0 * p;
    const float* Y = q > 0 ? dY + r0 * q : nullptr;
    sums<float>(X, Y, b);
    if (exactF64) {  // float64 products of the float32 values: no rounding but the final sums
      d_.run("f32_to_f64", b * p, X, xd_.get(), b * p);
      if (q > 0) d_.run("f32_to_f64", b * q, Y, yd_.get(), b * q);
      const double* Xd = xd_.get();
      const double* Yd = yd_.get();
      gemm<double>(d_, prec, true, false, p, p, b, 1, Xd, p, Xd, p, 1, xtx.get(), p);
      if (q > 0) gemm<double>(d_, prec, true, false, p, q, b, 1, Xd, p, Yd, q, 1, xty.get(), q);
      if (q > 0 && yty.size())
        gemm<double>(d_, prec, true, false, q, q, b, 1, Yd, q, Yd, q, 1, yty.get(), q);
    } else if (tensor) {
      tensorCoreProducts(X, Y, b, prec);
    } else {  // float32: SYRK for the Gram matrices (half a GEMM's work), their lower triangle
      d_.checkBlas(d_.a.Ssyrk(d_.blas(), FILL_LOWER, OP_N, p, b, &one, X, p, &zero, g1_.get(), p),
                   "cublasSsyrk");
      d_.run("fold_gram", p * p, static_cast<const float*>(g1_.get()), 1, 1, noG2, 0, xtx.get(), p);
      if (q > 0) {
        gemm<float>(d_, prec, true, false, p, q, b, 1, X, p, Y, q, 0, c_.get(), q);
        d_.run("add_parts", p * q, static_cast<const float*>(c_.get()), 1, p * q, xty.get());
      }
      if (q > 0 && yty.size()) {
        d_.checkBlas(d_.a.Ssyrk(d_.blas(), FILL_LOWER, OP_N, q, b, &one, Y, q, &zero, g1_.get(), q),
                     "cublasSsyrk");
        d_.run("fold_gram", q * q, static_cast<const float*>(g1_.get()), 1, 1, noG2, 0, yty.get(), q);
      }
    }
  }
  n += double(rows);
}

void DeviceStats::addTo(const StatsRef& s) {
  d_.run("symmetrize_f64", p * p, xtx.get(), p, p);
  if (yty.size()) d_.run("symmetrize_f64", q * q, yty.get(), q, q);
  addHost(d_, sumX, p, s.sumX);
  addHost(d_, xtx, p * p, s.xtx);
  if (q > 0) {
    addHost(d_, sumY, q, s.sumY);
    addHost(d_, sqY, q, s.sqY);
    addHost(d_, xty, p * q, s.xty);
    if (yty.size()) addHost(d_, yty, q * q, s.yty);
  }
  *s.n += n;
}

// ---- GEMM + bias

namespace {

// Y = X M + bias with the bias added in cuBLASLt's epilogue (no extra pass over Y). False when
// cuBLASLt declines the problem; the caller then broadcasts the bias itself.
template <typename T>
bool gemmBiasLt(Device& d, int compute, int64_t rows, int64_t k, int64_t n, const T* dX,
                const T* dM, const T* dBias, T* dY) {
  // Column-major: Y^T (n x rows) = M^T (n x k) X^T (k x rows) + bias, one value per row of Y^T.
  const int dt = dataType<T>();
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t la = nullptr, lb = nullptr, lc = nullptr;
  const uint32_t epilogue = kLtEpilogueBias;
  const void* bias = dBias;
  const T one = 1, zero = 0;
  bool ok = d.a.LtMatmulDescCreate(&desc, compute, dt) == 0 &&
            d.a.LtMatmulDescSetAttribute(desc, kLtEpilogue, &epilogue, sizeof epilogue) == 0 &&
            d.a.LtMatmulDescSetAttribute(desc, kLtBiasPointer, &bias, sizeof bias) == 0 &&
            d.a.LtMatrixLayoutCreate(&la, dt, uint64_t(n), uint64_t(k), n) == 0 &&
            d.a.LtMatrixLayoutCreate(&lb, dt, uint64_t(k), uint64_t(rows), k) == 0 &&
            d.a.LtMatrixLayoutCreate(&lc, dt, uint64_t(n), uint64_t(rows), n) == 0 &&
            d.a.LtMatmul(d.lt(), desc, &one, dM, la, dX, lb, &zero, dY, lc, dY, lc, nullptr,
                         d.ltWorkspace(), Device::kLtWorkspaceBytes, d.stream()) == 0;
  for (auto* l : {la, lb, lc})
    if (l) d.a.LtMatrixLayoutDestroy(l);
  if (desc) d.a.LtMatmulDescDestroy(desc);
  return ok;
}

}  // namespace

template <typename T>
void gemmBiasDevice(Device& d, Precision prec, int64_t rows, int64_t k, int64_t n, const T* dX,
                    const T* dM, const T* dBias, T* dY) {
  const bool plain = std::is_same_v<T, double> || prec == Precision::F32 || prec == Precision::TF32;
  if (dBias && plain && rows > 0 && n > 0 && k > 0 &&
      gemmBiasLt<T>(d, std::is_same_v<T, double> ? COMPUTE_64F
                       : prec == Precision::TF32 ? COMPUTE_32F_FAST_TF32 : COMPUTE_32F,
                    rows, k, n, dX, dM, dBias, dY))
    return;
  if (dBias) d.run(kernelName<T>("broadcast_rows").c_str(), rows * n, dY, dBias, rows, n);
  gemm<T>(d, prec, false, false, rows, n, k, 1, dX, k, dM, n, dBias ? 1 : 0, dY, n);
}

// ---- cosine top-k

template <typename T>
void cosineTopKDevice(Device& d, Precision prec, const T* dQ, int64_t nq, const T* dG, int64_t ng,
                      int64_t dim, const CosineOptions& opt, int32_t* dIdx, T* dScore,
                      unsigned long long* dCounts, size_t tileBytes) {
  const int k = int(opt.k);
  if (k > kDeviceTopKMax) throw Error("cuda: top-k on the GPU takes k <= 64");
  if (nq == 0 || ng == 0) return;
  Buffer<T> qInv(d, nq), gInv(d, opt.self ? 0 : ng);
  const std::string norms = kernelName<T>("inv_norms");
  d.launch(norms.c_str(), unsigned((nq * 32 + 255) / 256), 1, 256, 0, dQ, nq, dim, qInv.get());
  if (!opt.self)
    d.launch(norms.c_str(), unsigned((ng * 32 + 255) / 256), 1, 256, 0, dG, ng, dim, gInv.get());
  const T* gI = opt.self ? qInv.get() : gInv.get();
  const int bins = dCounts ? int(opt.bins) : 0;
  const double binScale = bins > 0 ? double(bins) / (opt.hi - opt.lo) : 0;
  const unsigned smem = bins > 0 && bins <= 4096 ? unsigned(bins) * 4 : 0;  // TOPK_SHARED_BINS
  if (opt.self && k > 0 && k <= 16) {
    // A set against itself: only tiles on and above the diagonal are multiplied (half the
    // GEMM); an off-diagonal tile's columns update the lists of the rows they stand for.
    const int64_t side = std::min<int64_t>(
        nq, std::clamp<int64_t>(int64_t(std::sqrt(double(tileBytes / sizeof(T)))), 1024, 16384));
    Buffer<T> S(d, side * side);
    d.check(d.a.MemsetAsync(dIdx, 0xff, size_t(nq * k) * sizeof(int32_t), d.stream()),
            "cudaMemsetAsync");  // every list starts empty (index -1)
    const std::string rows = kernelName<T>("topk16_rows"), cols = kernelName<T>("topk16_cols");
    for (int64_t q0 = 0; q0 < nq; q0 += side) {
      const int64_t b = std::min(side, nq - q0);
      for (int64_t g0 = q0; g0 < nq; g0 += side) {
        const int64_t c = std::min(side, nq - g0);
        gemm<T>(d, prec, false, true, b, c, dim, 1, dQ + q0 * dim, dim, dQ + g0 * dim, dim, 0,
                S.get(), c);
        const T* St = S.get();
        const T* inv = qInv.get();
        d.launch(rows.c_str(), unsigned(b), 1, 256, smem, St, c, b, c, q0, g0, inv, inv, k, 1, 1,
                 dScore, static_cast<int*>(dIdx), opt.lo, binScale, bins, dCounts);
        if (g0 > q0)
          d.launch(cols.c_str(), unsigned((c + 31) / 32), 1, 256, 0, St, c, b, c, q0, g0, inv, k,
                   dScore, static_cast<int*>(dIdx));
      }
    }
    return;
  }
  const int64_t bq = std::min<int64_t>(nq, 8192);
  const int64_t bg = std::min<int64_t>(ng, std::max<int64_t>(1, int64_t(tileBytes / sizeof(T)) / bq));
  Buffer<T> S(d, bq * bg);
  const std::string topk = kernelName<T>(k <= 16 ? "topk16_rows" : "topk64_rows");
  for (int64_t q0 = 0; q0 < nq; q0 += bq) {
    const int64_t b = std::min(bq, nq - q0);
    for (int64_t g0 = 0; g0 < ng; g0 += bg) {
      const int64_t c = std::min(bg, ng - g0);
      // Self-scoring without top-k: tiles left of the diagonal hold only pairs already counted.
      if (k == 0 && opt.self && g0 + c <= q0) continue;
      gemm<T>(d, prec, false, true, b, c, dim, 1, dQ + q0 * dim, dim, dG + g0 * dim, dim, 0,
              S.get(), c);
      d.launch(topk.c_str(), unsigned(b), 1, 256, smem, static_cast<const T*>(S.get()), c, b, c,
               q0, g0, static_cast<const T*>(qInv.get()), gI, k, int(opt.self), int(g0 > 0), dScore,
               static_cast<int*>(dIdx), opt.lo, binScale, bins, dCounts);
    }
  }
}

// ---- host-array entry points

template <typename T>
void CudaOps::stats(const T* X, const T* Y, int64_t rows, const StatsRef& s, bool exactF64) {
  if (rows == 0) return;
  auto lock = d_.lock();
  const int64_t p = s.p, q = s.q;
  DeviceStats st(d_, p, q, s.yty != nullptr);
  // Two staging slots: the host copy of chunk c+1 and its transfer overlap the products of c.
  const int64_t chunk = std::clamp<int64_t>(int64_t(kStageBytes / sizeof(T)) / (p + q), 1, rows);
  Pinned pin0(d_, size_t(chunk * (p + q)) * sizeof(T)), pin1(d_, size_t(chunk * (p + q)) * sizeof(T));
  Pinned* pin[2] = {&pin0, &pin1};
  Buffer<T> dx[2] = {Buffer<T>(d_, chunk * p), Buffer<T>(d_, chunk * p)};
  Buffer<T> dy[2] = {Buffer<T>(d_, chunk * q), Buffer<T>(d_, chunk * q)};
  Event h2d0(d_), h2d1(d_), done0(d_), done1(d_);
  Event* h2d[2] = {&h2d0, &h2d1};
  Event* done[2] = {&done0, &done1};
  const Precision prec = prec_.load();
  for (int64_t c = 0, r0 = 0; r0 < rows; c++, r0 += chunk) {
    const int slot = int(c & 1);
    const int64_t b = std::min(chunk, rows - r0);
    d_.check(d_.a.EventSynchronize(h2d[slot]->get()), "cudaEventSynchronize");
    T* px = static_cast<T*>(pin[slot]->get());
    T* py = px + chunk * p;
    parallelCopy(px, X + r0 * p, size_t(b * p) * sizeof(T));
    if (q > 0) parallelCopy(py, Y + r0 * q, size_t(b * q) * sizeof(T));
    d_.check(d_.a.StreamWaitEvent(d_.copyStream(), done[slot]->get(), 0), "cudaStreamWaitEvent");
    d_.check(d_.a.MemcpyAsync(dx[slot].get(), px, size_t(b * p) * sizeof(T), kMemcpyHostToDevice,
                              d_.copyStream()),
             "cudaMemcpyAsync (to device)");
    if (q > 0)
      d_.check(d_.a.MemcpyAsync(dy[slot].get(), py, size_t(b * q) * sizeof(T),
                                kMemcpyHostToDevice, d_.copyStream()),
               "cudaMemcpyAsync (to device)");
    d_.check(d_.a.EventRecord(h2d[slot]->get(), d_.copyStream()), "cudaEventRecord");
    d_.check(d_.a.StreamWaitEvent(d_.stream(), h2d[slot]->get(), 0), "cudaStreamWaitEvent");
    if constexpr (std::is_same_v<T, float>)
      st.add(dx[slot].get(), q > 0 ? dy[slot].get() : nullptr, b, prec, exactF64);
    else
      st.add(dx[slot].get(), q > 0 ? dy[slot].get() : nullptr, b);
    d_.check(d_.a.EventRecord(done[slot]->get(), d_.stream()), "cudaEventRecord");
  }
  d_.sync();
  st.addTo(s);
}

void CudaOps::statsUpdate(const float* X, const float* Y, int64_t rows, const StatsRef& s,
                          bool exactF64) {
  stats(X, Y, rows, s, exactF64);
}
void CudaOps::statsUpdate(const double* X, const double* Y, int64_t rows, const StatsRef& s,
                          bool exactF64) {
  stats(X, Y, rows, s, exactF64);
}

template <typename T>
void CudaOps::apply(bool transX, bool transM, int64_t m, int64_t n, int64_t k, const T* X,
                    const T* M, const T* bias, T* Y) {
  if (m == 0 || n == 0) return;
  auto lock = d_.lock();
  const Precision prec = prec_.load();
  Buffer<T> dM = toDevice(d_, M, k * n);
  Buffer<T> dBias = bias ? toDevice(d_, bias, n) : Buffer<T>();
  const int64_t ldm = transM ? k : n;
  // Rows of X travel in chunks (X^T has no contiguous rows, so it travels whole).
  const int64_t chunk =
      transX ? m : std::clamp<int64_t>(int64_t(kStageBytes / sizeof(T)) / std::max<int64_t>(1, k + n), 1, m);
  Buffer<T> dX(d_, chunk * k), dY(d_, chunk * n);
  for (int64_t r0 = 0; r0 < m; r0 += chunk) {
    const int64_t b = std::min(chunk, m - r0);
    d_.upload(dX.get(), transX ? X : X + r0 * k, size_t(b * k) * sizeof(T));
    if (!transX && !transM) {
      gemmBiasDevice<T>(d_, prec, b, k, n, dX.get(), dM.get(), dBias.get(), dY.get());
    } else {
      if (bias) d_.run(kernelName<T>("broadcast_rows").c_str(), b * n, dY.get(), dBias.get(), b, n);
      gemm<T>(d_, prec, transX, transM, b, n, k, 1, dX.get(), transX ? m : k, dM.get(), ldm,
              bias ? 1 : 0, dY.get(), n);
    }
    d_.download(Y + r0 * n, dY.get(), size_t(b * n) * sizeof(T));
  }
}

void CudaOps::gemmBias(bool transX, bool transM, int64_t m, int64_t n, int64_t k, const float* X,
                       const float* M, const float* bias, float* Y) {
  apply(transX, transM, m, n, k, X, M, bias, Y);
}
void CudaOps::gemmBias(bool transX, bool transM, int64_t m, int64_t n, int64_t k, const double* X,
                       const double* M, const double* bias, double* Y) {
  apply(transX, transM, m, n, k, X, M, bias, Y);
}

template <typename T>
bool CudaOps::cosine(const T* Q, int64_t nq, const T* G, int64_t ng, int64_t dim,
                     const CosineOptions& opt, int32_t* topIdx, T* topScore) {
  if (opt.k > kDeviceTopKMax) return false;
  if (nq == 0 || ng == 0 || (opt.k == 0 && !opt.counts)) return true;
  auto lock = d_.lock();
  const size_t freeB = d_.freeBytes();
  const size_t resident = size_t(nq + (opt.self ? 0 : ng)) * size_t(dim) * sizeof(T);
  if (resident > freeB / 2) return false;  // the generic path tiles through host memory
  Buffer<T> dQ = toDevice(d_, Q, nq * dim);
  Buffer<T> dG = opt.self ? Buffer<T>() : toDevice(d_, G, ng * dim);
  Buffer<int> idx(d_, nq * opt.k);
  Buffer<T> score(d_, nq * opt.k);
  Buffer<unsigned long long> counts(d_, opt.counts ? opt.bins : 0);
  if (opt.counts)
    d_.check(d_.a.MemsetAsync(counts.get(), 0, size_t(opt.bins) * 8, d_.stream()), "cudaMemsetAsync");
  cosineTopKDevice<T>(d_, prec_.load(), dQ.get(), nq, opt.self ? dQ.get() : dG.get(), ng, dim, opt,
                      idx.get(), score.get(), opt.counts ? counts.get() : nullptr,
                      std::min(freeB / 4, size_t(1) << 31));
  if (opt.k > 0) {
    toHost(d_, reinterpret_cast<int*>(topIdx), idx, nq * opt.k);
    toHost(d_, topScore, score, nq * opt.k);
  }
  if (opt.counts) {
    std::vector<unsigned long long> c(static_cast<size_t>(opt.bins));
    toHost(d_, c.data(), counts, opt.bins);
    for (int64_t b = 0; b < opt.bins; b++) opt.counts[b] += double(c[size_t(b)]);
  }
  return true;
}

bool CudaOps::cosineTopK(const float* Q, int64_t nq, const float* G, int64_t ng, int64_t d,
                         const CosineOptions& opt, int32_t* topIdx, float* topScore) {
  return cosine(Q, nq, G, ng, d, opt, topIdx, topScore);
}
bool CudaOps::cosineTopK(const double* Q, int64_t nq, const double* G, int64_t ng, int64_t d,
                         const CosineOptions& opt, int32_t* topIdx, double* topScore) {
  return cosine(Q, nq, G, ng, d, opt, topIdx, topScore);
}

#define INSTANTIATE(T)                                                                        \
  template void gemmBiasDevice<T>(Device&, Precision, int64_t, int64_t, int64_t, const T*,    \
                                  const T*, const T*, T*);                                    \
  template void cosineTopKDevice<T>(Device&, Precision, const T*, int64_t, const T*, int64_t, \
                                    int64_t, const CosineOptions&, int32_t*, T*,              \
                                    unsigned long long*, size_t);
INSTANTIATE(float)
INSTANTIATE(double)
#undef INSTANTIATE

}  // namespace embmap::cuda
