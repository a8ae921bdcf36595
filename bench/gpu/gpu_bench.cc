// embmap's GPU benchmarks on data already on the device (and, for the fit, from host memory),
// the sizes of issue #8. Prints one JSON object on stdout (progress on stderr); run.sh puts it
// beside PyTorch's figures for the same work (torch_bench.py) in one table.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <numeric>
#include <string>
#include <vector>

#include "cuda/device.h"
#include "cuda/linalg.h"
#include "cuda/ops.h"

using namespace embmap;
using namespace embmap::cuda;

namespace {

Device* dev;
std::string json = "{";

void record(const std::string& key, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  json += (json.size() > 1 ? ", \"" : "\"") + key + "\": " + buf;
  std::fprintf(stderr, "  %-40s %s\n", key.c_str(), buf);
}

template <class F>
double best(int reps, F f) {  // seconds, best of reps, the device idle before and after
  double b = 1e30;
  for (int r = 0; r < reps; r++) {
    dev->sync();
    const auto t0 = std::chrono::steady_clock::now();
    f();
    dev->sync();
    b = std::min(b, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return b;
}

void normal(float* x, int64_t n, uint64_t seed, float scale = 1) {
  dev->run("fill_normal_f32", n, x, n, (unsigned long long)seed, scale);
}

double relErr(const std::vector<double>& a, const std::vector<double>& ref) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); i++) {
    num += (a[i] - ref[i]) * (a[i] - ref[i]);
    den += ref[i] * ref[i];
  }
  return std::sqrt(num / den);
}

std::vector<double> download(const Buffer<double>& b) {
  std::vector<double> h(static_cast<size_t>(b.size()));
  toHost(*dev, h.data(), b, b.size());
  return h;
}

// Paired data like embeddings of two networks: X's columns scaled from 1 down to 0.1 (its
// covariance has condition number 100), Y = X W + noise.
struct Pair {
  int64_t n, p, q;
  Buffer<float> X, Y;
  Pair(int64_t n_, int64_t p_, int64_t q_, uint64_t seed) : n(n_), p(p_), q(q_), X(*dev, n_ * p_), Y(*dev, n_ * q_) {
    normal(X.get(), n * p, seed);
    std::vector<float> s(static_cast<size_t>(p));
    for (int64_t j = 0; j < p; j++) s[size_t(j)] = float(std::pow(10.0, -double(j) / double(p)));
    Buffer<float> ds = toDevice(*dev, s.data(), p), W(*dev, p * q);
    dev->run("scale_rows_cm_f32", n * p, X.get(), p, n, p, static_cast<const float*>(ds.get()));
    normal(W.get(), p * q, seed + 1, float(1 / std::sqrt(double(p))));
    normal(Y.get(), n * q, seed + 2, 0.1f);
    gemm<float>(*dev, Precision::F32, false, false, n, q, p, 1, X.get(), p, W.get(), q, 1, Y.get(), q);
    dev->sync();
  }
};

// Float64 statistics in host memory, as the engine keeps them.
struct HostStats {
  int64_t p, q;
  std::vector<double> n, sumX, sumY, sqY, xtx, xty;
  HostStats(int64_t p_, int64_t q_)
      : p(p_), q(q_), n(1), sumX(size_t(p_)), sumY(size_t(q_)), sqY(size_t(q_)),
        xtx(size_t(p_ * p_)), xty(size_t(p_ * q_)) {}
  StatsRef ref() {
    StatsRef s;
    s.p = p, s.q = q, s.n = n.data(), s.sumX = sumX.data(), s.sumY = sumY.data(), s.sqY = sqY.data();
    s.xtx = xtx.data(), s.xty = xty.data();
    return s;
  }
};

// The engine's ridge solve from its statistics (what a ridge estimator's fitStats does on the cuda
// backend): centred (when `centre`) in float64, lambda on the diagonal, then Cholesky through the
// cuda backend's float64 Linalg. Returns W (p x q); consumes s.
std::vector<double> solveRidge(HostStats& s, double lambda, bool centre, CudaLinalg<double>& la) {
  const int64_t p = s.p, q = s.q;
  for (int64_t i = 0; i < p; i++) {
    if (centre) {
      for (int64_t j = 0; j < p; j++) s.xtx[size_t(i * p + j)] -= s.sumX[size_t(i)] * s.sumX[size_t(j)] / s.n[0];
      for (int64_t j = 0; j < q; j++) s.xty[size_t(i * q + j)] -= s.sumX[size_t(i)] * s.sumY[size_t(j)] / s.n[0];
    }
    s.xtx[size_t(i * p + i)] += lambda;
  }
  if (la.potrf(p, s.xtx.data(), p) != 0) throw Error("ridge fit: not positive definite");
  la.potrs(p, q, s.xtx.data(), p, s.xty.data(), q);
  return std::move(s.xty);
}

// Normal-equation fit of device-resident data: the statistics on the device, added into host
// float64 accumulators as the engine's statsUpdate does, then the engine's solve; timed together.
std::vector<double> fit(const Pair& d, Precision prec, bool exact, bool centre, double lambda,
                        const std::string& key, int reps, int64_t slots = 8) {
  std::atomic<Precision> f64{Precision::F32};  // ignored by the float64 Linalg
  CudaLinalg<double> la(*dev, f64);
  std::vector<double> W;
  const double t = best(reps, [&] {
    HostStats h(d.p, d.q);
    DeviceStats st(*dev, d.p, d.q, false);
    st.tensorCoreSlots = slots;
    st.add(d.X.get(), d.Y.get(), d.n, prec, exact);
    st.addTo(h.ref());
    W = solveRidge(h, lambda, centre, la);
  });
  if (!key.empty()) record(key + "_s", t);
  return W;
}

}  // namespace

int main(int argc, char** argv) {
  const bool quick = argc > 1 && std::string(argv[1]) == "--quick";
  std::string why;
  dev = Device::get(&why);
  if (!dev) {
    std::printf("{\"unavailable\": \"%s\"}\n", why.c_str());
    return 0;
  }
  { auto current = dev->lock(); }  // the device is current on this thread from here on
  std::fprintf(stderr, "gpu_bench on %s\n", dev->info().name.c_str());
  json += "\"device\": \"" + dev->info().name + "\"";
  const int reps = quick ? 1 : 3;

  // ---- 0. The host link: what a fit from host memory can at best reach.
  {
    const size_t bytes = size_t(1) << 30;
    Pinned pin(*dev, bytes);
    std::unique_ptr<char[]> pageable(new char[bytes]);
    std::memset(pin.get(), 1, bytes);
    std::memset(pageable.get(), 1, bytes);
    Buffer<char> dst(*dev, int64_t(bytes));
    for (const auto& [key, src] : {std::pair<const char*, const void*>{"h2d_pinned_gbps", pin.get()},
                                   {"h2d_pageable_gbps", pageable.get()}}) {
      const double t = best(reps, [&] {
        dev->check(dev->a.MemcpyAsync(dst.get(), src, bytes, kMemcpyHostToDevice, dev->stream()),
                   "cudaMemcpyAsync");
      });
      record(key, double(bytes) / t / 1e9);
    }
  }

  // ---- 1. Ridge fit, N = 1,281,167 (ImageNet train), 2048 -> 2048; N*p > 2^31 elements.
  {
    const int64_t N = quick ? 200000 : 1281167, P = 2048;
    Pair d(N, P, P, 1);
    const double lambda = 1.0;
    std::fprintf(stderr, "fit %lld x %lld -> %lld\n", (long long)N, (long long)P, (long long)P);
    const std::vector<double> ref = fit(d, Precision::F32, true, true, lambda, "fit_big_f64stats", reps);
    for (Precision p : {Precision::F32, Precision::TF32x3, Precision::TF32, Precision::BF16}) {
      const std::string k = std::string("fit_big_") + precisionName(p);
      const std::vector<double> W = fit(d, p, false, true, lambda, k, reps);
      record(k + "_relerr", relErr(W, ref));
    }
    for (int64_t slots : {1, 4, 16}) {  // 3xTF32's hi*hi sub-blocks: time against accuracy
      const std::string k = "fit_big_3xtf32_slots" + std::to_string(slots);
      record(k + "_relerr", relErr(fit(d, Precision::TF32x3, false, true, lambda, k, 2, slots), ref));
    }
    // From host memory: the engine's path for JS arrays (pageable memory, staged through pinned
    // buffers with the copies overlapped), then the same float64 solve.
    std::unique_ptr<float[]> hx(new float[size_t(N * P)]), hy(new float[size_t(N * P)]);
    dev->download(hx.get(), d.X.get(), size_t(N * P) * 4);
    dev->download(hy.get(), d.Y.get(), size_t(N * P) * 4);
    for (Precision prec : {Precision::F32, Precision::TF32x3}) {
      std::atomic<Precision> pa{prec};
      CudaOps ops(*dev, pa);
      CudaLinalg<double> la(*dev, pa);
      std::vector<double> W;
      const double t = best(reps, [&] {
        HostStats h(P, P);
        ops.statsUpdate(hx.get(), hy.get(), N, h.ref(), false);
        W = solveRidge(h, lambda, true, la);
      });
      record(std::string("fit_big_host_") + precisionName(prec) + "_s", t);
      record(std::string("fit_big_host_") + precisionName(prec) + "_relerr", relErr(W, ref));
    }
  }

  // ---- 2. Apply X M + b over 1.28M rows, 2048 -> 2048.
  {
    const int64_t N = quick ? 200000 : 1281167, K = 2048, Q = 2048;
    Buffer<float> X(*dev, N * K), M(*dev, K * Q), b(*dev, Q), Y(*dev, N * Q);
    normal(X.get(), N * K, 11);
    normal(M.get(), K * Q, 12);
    normal(b.get(), Q, 13);
    for (Precision p : {Precision::F32, Precision::TF32, Precision::TF32x3}) {
      const double t = best(reps + 1, [&] {
        gemmBiasDevice<float>(*dev, p, N, K, Q, X.get(), M.get(), b.get(), Y.get());
      });
      record(std::string("apply_") + precisionName(p) + "_s", t);
      record(std::string("apply_") + precisionName(p) + "_tflops", 2.0 * N * K * Q / t / 1e12);
    }
    const float* noBias = nullptr;
    const double t = best(reps + 1, [&] {
      gemmBiasDevice<float>(*dev, Precision::F32, N, K, Q, X.get(), M.get(), noBias, Y.get());
    });
    record("apply_nobias_float32_s", t);
    record("apply_nobias_float32_tflops", 2.0 * N * K * Q / t / 1e12);
  }

  // ---- 3. All-pairs cosine, 100,000 x 512, top-10 per row, the score matrix never stored.
  {
    const int64_t N = quick ? 20000 : 100000, D = 512, k = 10;
    Buffer<float> E(*dev, N * D);
    normal(E.get(), N * D, 21);
    Buffer<int> idx(*dev, N * k);
    Buffer<float> score(*dev, N * k);
    CosineOptions opt;
    opt.k = k;
    opt.self = true;
    for (Precision p : {Precision::F32, Precision::TF32}) {
      const double t = best(reps + 1, [&] {
        cosineTopKDevice<float>(*dev, p, E.get(), N, E.get(), N, D, opt, idx.get(), score.get(),
                                nullptr, size_t(2) << 30);
      });
      record(std::string("cosine_") + precisionName(p) + "_s", t);
      // Top-k of sample rows against a float64 brute force on the host.
      std::vector<float> e(size_t(N * D));
      std::vector<int> got(size_t(N * k));
      dev->download(e.data(), E.get(), e.size() * 4);
      dev->download(got.data(), idx.get(), got.size() * 4);
      int agree = 0, total = 0;
      std::vector<double> norm(static_cast<size_t>(N));
      for (int64_t i = 0; i < N; i++) {
        double s = 0;
        for (int64_t j = 0; j < D; j++) s += double(e[size_t(i * D + j)]) * e[size_t(i * D + j)];
        norm[size_t(i)] = std::sqrt(s);
      }
      for (int64_t qi = 0; qi < 16; qi++) {
        std::vector<std::pair<double, int>> sc;
        for (int64_t g = 0; g < N; g++) {
          if (g == qi) continue;
          double s = 0;
          for (int64_t j = 0; j < D; j++) s += double(e[size_t(qi * D + j)]) * e[size_t(g * D + j)];
          sc.push_back({-s / (norm[size_t(qi)] * norm[size_t(g)]), int(g)});
        }
        std::partial_sort(sc.begin(), sc.begin() + k, sc.end());
        for (int64_t r = 0; r < k; r++, total++)
          for (int64_t r2 = 0; r2 < k; r2++)
            if (got[size_t(qi * k + r2)] == sc[size_t(r)].second) agree++;
      }
      record(std::string("cosine_") + precisionName(p) + "_top10_agreement", double(agree) / total);
    }
    record("cosine_result_bytes", double(N * k * 8));
  }

  // ---- 4. N = 50,000, 2048 -> 512: normal equations and Householder QR.
  {
    const int64_t N = 50000, P = 2048, Q = 512;
    Pair d(N, P, Q, 31);
    const std::vector<double> ref = fit(d, Precision::F32, true, false, 0, "", 1);
    for (Precision p : {Precision::F32, Precision::TF32x3}) {
      const std::string k = std::string("fit_50k_") + precisionName(p);
      record(k + "_relerr", relErr(fit(d, p, false, false, 0, k, reps + 1), ref));
    }
    Buffer<float> A(*dev, N * P), B(*dev, N * Q);
    int64_t rank = 0;
    const double t = best(reps + 1, [&] {
      dev->check(dev->a.MemcpyAsync(A.get(), d.X.get(), size_t(N * P) * 4, kMemcpyDeviceToDevice, dev->stream()), "copy");
      dev->check(dev->a.MemcpyAsync(B.get(), d.Y.get(), size_t(N * Q) * 4, kMemcpyDeviceToDevice, dev->stream()), "copy");
      rank = lstsqDevice<float>(*dev, N, P, Q, A.get(), P, B.get(), Q, 1.2e-7f * N);
    });
    std::vector<float> xf(size_t(P * Q));
    dev->download(xf.data(), B.get(), xf.size() * 4);
    record("lstsq_50k_qr_s", t);
    record("lstsq_50k_qr_rank", double(rank));
    record("lstsq_50k_qr_relerr", relErr(std::vector<double>(xf.begin(), xf.end()), ref));
  }
  json += "}";
  std::printf("%s\n", json.c_str());
  return 0;
}
