// Algorithms built on a Backend's primitives; written once, run on every backend.
// Nothing here touches N-API: the same code serves the addon and the C++ tests.
#pragma once
#include <cmath>
#include <cstdint>
#include <vector>

#include "engine/backend.h"

namespace embmap {

// Streaming sufficient statistics of paired rows (X: N x p, Y: N x q), accumulated in float64
// as moments about a fixed shift (d = x - shiftX, e = y - shiftY): sums of d and e, d d^T, d e^T,
// e e^T. A shift near the mean keeps centring from cancelling when the means are large (ReLU
// embeddings). The caller owns the arrays (in the addon they are JS Float64Arrays, so they
// serialise and merge in TypeScript). yty may be null when not wanted; a null shift is zero.
struct StatsRef {
  int64_t p = 0, q = 0;
  double* n = nullptr;     // 1 value: rows seen
  double* sumX = nullptr;  // p
  double* sumY = nullptr;  // q (null when q == 0)
  double* sqY = nullptr;   // q: column sums of squares of Y (for R^2 and residuals)
  double* xtx = nullptr;   // p x p
  double* xty = nullptr;   // p x q
  double* yty = nullptr;   // q x q, optional
  const double* shiftX = nullptr;  // p, or null
  const double* shiftY = nullptr;  // q, or null
  // Room for the shifted row blocks, statsWorkspace(p, q, rows) doubles, or null: the call then
  // allocates its own. Callers feeding several statistics in turn (a cross-fit's folds) share
  // one, since fresh memory costs a page fault per 4 KiB (1.4 s for 134 MB on this project's VM).
  double* workspace = nullptr;
  int64_t workspaceLength = 0;
};

// Adds `rows` rows of X (and Y) to the statistics. The products are formed in float64 from the
// shifted rows (the accurate default), or with f64Products false for float32 input, in
// float32 within blocks of at most kStatsBlock rows, summed across blocks in float64 (the
// opt-in fast mode: about twice the speed, relative error ~ cond(X)^2 * 1e-7 in the map).
// With an index, the rows added are X[index[i]], Y[index[i]] for i < rows: a fold's rows taken
// from a chunk as it is read, without copying them out first.
constexpr int64_t kStatsBlock = 16384;
template <typename T>
void statsUpdate(Backend& be, const T* X, const T* Y, const int32_t* index, int64_t rows,
                 const StatsRef& s, bool f64Products);

// Doubles of workspace statsUpdate uses for `rows` rows of p + q columns.
int64_t statsWorkspace(int64_t p, int64_t q, int64_t rows);

// out (rows x cols) = [out +] sa A [+ sb B] + U^T V, U: r x rows, V: r x cols (r rank-one terms).
// Moments re-expressed about another centre are the stored moments plus rank-one terms, so
// merging, subtracting and re-centring statistics, and a cross-fit's "total minus fold about the
// training means", are each one pass over the p x p matrix (src/engine/stats.ts). B may be null.
// Returns whether every value of out is finite: a cross-fit's training statistics go to the
// solve without another pass to check them.
bool combineMoments(double* out, bool accumulate, double sa, const double* A, double sb,
                    const double* B, const double* U, const double* V, int64_t r, int64_t rows,
                    int64_t cols);

// Per target column j, the sum over the statistics' rows of (x M + b - y)_j^2 (M: p x q, b: q),
// from the statistics alone: a cross-fit scores each held-out fold this way. M^T xtx M is formed
// from the lower block triangle of the symmetric xtx, half a full product's flops.
void statsResidualSquares(Backend& be, const StatsRef& s, const double* M, const double* bias,
                          double* out);

// Y = X * M (+ bias row), X: m x k (or k x m when transX), M: k x n (or n x k when transM).
template <typename T>
void gemmBias(Backend& be, bool transX, bool transM, int64_t m, int64_t n, int64_t k,
              const T* X, const T* M, const T* bias, T* Y);

// 1/||r||, or 0 for a zero row (which then scores 0 against everything), summed in float64.
template <typename T>
inline T inverseL2(const T* r, int64_t d) {
  double s = 0;
  for (int64_t j = 0; j < d; j++) s += double(r[j]) * double(r[j]);
  return s > 0 ? T(1 / std::sqrt(s)) : T(0);
}

// Row L2 normalisation; out may alias in. Rows of norm zero stay zero; returns their count.
template <typename T>
int64_t normalizeRows(const T* in, int64_t rows, int64_t cols, T* out);

// All-pairs cosine similarity of queries Q (nq x d) against gallery G (ng x d), computed in
// blocks so the nq x ng score matrix never exists. Per query the k best gallery rows
// (descending score; index -1 and score -inf pad when ng < k). When `self` is set, Q and G are
// the same set: the diagonal is skipped, and the histogram counts each unordered pair once.
struct CosineOptions {
  int64_t k = 0;
  bool self = false;
  // Streaming consumer: a histogram of all scores over [lo, hi) in `bins` bins; scores below
  // lo land in bin 0 and at/above hi in the last bin. Null counts disables it.
  double lo = -1, hi = 1;
  int64_t bins = 0;
  double* counts = nullptr;
};
template <typename T>
void cosineTopK(Backend& be, const T* Q, int64_t nq, const T* G, int64_t ng, int64_t d,
                const CosineOptions& opt, int32_t* topIdx, T* topScore);

// Whole operations a device backend runs itself, moving the data once and keeping the
// intermediate products on the device (Backend::device()); the functions above hand over to
// it. cosineTopK returns false for requests outside the device path (the generic one runs).
class DeviceOps {
 public:
  virtual ~DeviceOps() = default;
  virtual void statsUpdate(const float* X, const float* Y, int64_t rows, const StatsRef& s,
                           bool exactF64) = 0;
  virtual void statsUpdate(const double* X, const double* Y, int64_t rows, const StatsRef& s,
                           bool exactF64) = 0;
  virtual void gemmBias(bool transX, bool transM, int64_t m, int64_t n, int64_t k,
                        const float* X, const float* M, const float* bias, float* Y) = 0;
  virtual void gemmBias(bool transX, bool transM, int64_t m, int64_t n, int64_t k,
                        const double* X, const double* M, const double* bias, double* Y) = 0;
  virtual bool cosineTopK(const float* Q, int64_t nq, const float* G, int64_t ng, int64_t d,
                          const CosineOptions& opt, int32_t* topIdx, float* topScore) = 0;
  virtual bool cosineTopK(const double* Q, int64_t nq, const double* G, int64_t ng, int64_t d,
                          const CosineOptions& opt, int32_t* topIdx, double* topScore) = 0;
};

}  // namespace embmap
