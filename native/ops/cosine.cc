#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "ops/ops.h"

namespace embmap {
namespace {

constexpr int64_t kQueryBlock = 512;
constexpr int64_t kGalleryBlock = 4096;

template <typename T>
std::vector<T> inverseNorms(const T* A, int64_t rows, int64_t d) {
  std::vector<T> inv(static_cast<size_t>(rows));
  for (int64_t i = 0; i < rows; i++) inv[size_t(i)] = inverseL2(A + i * d, d);
  return inv;
}

// Keeps the k largest (score, index) of one query: a min-heap on score, ties by lower index.
template <typename T>
struct TopK {
  struct Item {
    T score;
    int32_t idx;
  };
  static bool worse(const Item& a, const Item& b) {  // heap order: "greater" = worse first out
    return a.score > b.score || (a.score == b.score && a.idx < b.idx);
  }
  std::vector<Item> heap;
  size_t k;
  explicit TopK(size_t k_) : k(k_) { heap.reserve(k); }
  void push(T s, int32_t i) {
    if (heap.size() < k) {
      heap.push_back({s, i});
      std::push_heap(heap.begin(), heap.end(), worse);
    } else if (s > heap.front().score) {
      std::pop_heap(heap.begin(), heap.end(), worse);
      heap.back() = {s, i};
      std::push_heap(heap.begin(), heap.end(), worse);
    }
  }
};

}  // namespace

template <typename T>
void cosineTopK(Backend& be, const T* Q, int64_t nq, const T* G, int64_t ng, int64_t d,
                const CosineOptions& opt, int32_t* topIdx, T* topScore) {
  if (DeviceOps* dev = be.device())
    if (dev->cosineTopK(Q, nq, G, ng, d, opt, topIdx, topScore)) return;
  const std::vector<T> qInv = inverseNorms(Q, nq, d);
  const std::vector<T> gInv = inverseNorms(G, ng, d);
  const size_t k = size_t(opt.k);
  std::vector<TopK<T>> tops;
  std::vector<T> tile(size_t(kQueryBlock * kGalleryBlock));
  const double binScale = opt.bins > 0 ? double(opt.bins) / (opt.hi - opt.lo) : 0;

  for (int64_t q0 = 0; q0 < nq; q0 += kQueryBlock) {
    const int64_t bq = std::min(kQueryBlock, nq - q0);
    tops.assign(size_t(bq), TopK<T>(k));
    // With self-scoring, gallery blocks entirely before this query block hold only pairs
    // the histogram already counted; top-k still needs them.
    for (int64_t g0 = 0; g0 < ng; g0 += kGalleryBlock) {
      const int64_t bg = std::min(kGalleryBlock, ng - g0);
      if (k == 0 && opt.self && g0 + bg <= q0) continue;
      be.la<T>().gemm(false, true, bq, bg, d, T(1), Q + q0 * d, d, G + g0 * d, d, T(0),
                      tile.data(), bg);
      for (int64_t i = 0; i < bq; i++) {
        const int64_t qi = q0 + i;
        T* row = tile.data() + i * bg;
        const T qs = qInv[size_t(qi)];
        for (int64_t j = 0; j < bg; j++) {
          const int64_t gj = g0 + j;
          if (opt.self && gj == qi) continue;
          const T s = row[j] * qs * gInv[size_t(gj)];
          if (k > 0) tops[size_t(i)].push(s, int32_t(gj));
          if (opt.counts && (!opt.self || gj > qi) && !std::isnan(s)) {
            int64_t b = int64_t(std::floor((double(s) - opt.lo) * binScale));
            b = std::clamp<int64_t>(b, 0, opt.bins - 1);
            opt.counts[b] += 1;
          }
        }
      }
    }
    for (int64_t i = 0; i < bq && k > 0; i++) {
      auto& h = tops[size_t(i)].heap;
      std::sort_heap(h.begin(), h.end(), TopK<T>::worse);  // best first
      int32_t* oi = topIdx + (q0 + i) * int64_t(k);
      T* os = topScore + (q0 + i) * int64_t(k);
      for (size_t r = 0; r < k; r++) {
        oi[r] = r < h.size() ? h[r].idx : -1;
        os[r] = r < h.size() ? h[r].score : -std::numeric_limits<T>::infinity();
      }
    }
  }
}

template void cosineTopK<float>(Backend&, const float*, int64_t, const float*, int64_t, int64_t,
                                const CosineOptions&, int32_t*, float*);
template void cosineTopK<double>(Backend&, const double*, int64_t, const double*, int64_t,
                                 int64_t, const CosineOptions&, int32_t*, double*);

}  // namespace embmap
