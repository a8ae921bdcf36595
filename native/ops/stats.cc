#include <algorithm>
#include <type_traits>
#include <vector>

#include "ops/ops.h"

namespace embmap {
namespace {

// acc (n x m, float64) += block (n x m).
template <typename T>
void addInto(double* acc, const T* block, int64_t count) {
  for (int64_t i = 0; i < count; i++) acc[i] += double(block[i]);
}

// out (rows x cols, in P) = rows of A - shift (per column; no shift when null), with column
// sums of the result (and sums of squares when sq is given) added in float64. The rows are
// A's first `rows`, or A[index[i]] when an index is given (a fold's rows gathered here, where
// they are copied anyway). Every value passes through here once, so it is cloned per ISA: it
// would otherwise rival the BLAS products in cost.
#define EMBMAP_SHIFTED_COPY(T, P)                                                               \
  __attribute__((target_clones("avx512f", "avx2", "default"))) void shiftedCopy(                \
      const T* A, const int32_t* index, int64_t rows, int64_t cols, const double* shift,        \
      P* out, double* sums, double* sq) {                                                       \
    for (int64_t i = 0; i < rows; i++) {                                                        \
      const T* r = A + (index ? int64_t(index[i]) : i) * cols;                                  \
      P* o = out + i * cols;                                                                    \
      if (shift)                                                                                \
        for (int64_t j = 0; j < cols; j++) o[j] = P(double(r[j]) - shift[j]);                    \
      else                                                                                      \
        for (int64_t j = 0; j < cols; j++) o[j] = P(r[j]);                                      \
      for (int64_t j = 0; j < cols; j++) sums[j] += double(o[j]);                               \
      if (sq)                                                                                   \
        for (int64_t j = 0; j < cols; j++) sq[j] += double(o[j]) * double(o[j]);                \
    }                                                                                           \
  }
EMBMAP_SHIFTED_COPY(float, float)
EMBMAP_SHIFTED_COPY(float, double)
EMBMAP_SHIFTED_COPY(double, double)
#undef EMBMAP_SHIFTED_COPY

// Adds one (shifted) block's products, formed in P, into the float64 accumulators.
template <typename P>
void blockProducts(Backend& be, const P* X, const P* Y, int64_t b, const StatsRef& s,
                   std::vector<P>& scratch) {
  const int64_t p = s.p, q = s.q;
  if constexpr (std::is_same_v<P, double>) {
    be.f64().syrkT(p, b, 1.0, X, p, 1.0, s.xtx, p);
    if (q > 0) be.f64().gemm(true, false, p, q, b, 1.0, X, p, Y, q, 1.0, s.xty, q);
    if (q > 0 && s.yty) be.f64().syrkT(q, b, 1.0, Y, q, 1.0, s.yty, q);
  } else {
    scratch.resize(size_t(std::max({p * p, p * q, s.yty ? q * q : 0})));
    be.la<P>().syrkT(p, b, P(1), X, p, P(0), scratch.data(), p);
    addInto(s.xtx, scratch.data(), p * p);
    if (q > 0) {
      be.la<P>().gemm(true, false, p, q, b, P(1), X, p, Y, q, P(0), scratch.data(), q);
      addInto(s.xty, scratch.data(), p * q);
    }
    if (q > 0 && s.yty) {
      be.la<P>().syrkT(q, b, P(1), Y, q, P(0), scratch.data(), q);
      addInto(s.yty, scratch.data(), q * q);
    }
  }
}

// Rows per block: the shifted copies of X and Y hold at most 2^24 values (128 MiB in float64):
// long enough for the BLAS to run near its peak (a quarter of that cost ~15% at p = 2048), short
// enough to bound the memory and the float32 products' own rounding.
int64_t blockRows(int64_t p, int64_t q) {
  return std::clamp<int64_t>((int64_t(1) << 24) / (p + q), 256, kStatsBlock);
}

template <typename T, typename P>
void accumulate(Backend& be, const T* X, const T* Y, const int32_t* index, int64_t rows,
                const StatsRef& s) {
  const int64_t p = s.p, q = s.q, block = std::min(rows, blockRows(p, q));
  std::vector<double> own;
  double* room = s.workspace;
  if (s.workspaceLength < statsWorkspace(p, q, rows)) {
    own.resize(size_t(statsWorkspace(p, q, rows)));
    room = own.data();
  }
  // P is float or double: a block of P values fits in as many doubles.
  P* xs = reinterpret_cast<P*>(room);
  P* ys = xs + block * p;
  std::vector<P> scratch;
  for (int64_t r0 = 0; r0 < rows; r0 += block) {
    const int64_t b = std::min(block, rows - r0);
    const int32_t* idx = index ? index + r0 : nullptr;
    const T* x = index ? X : X + r0 * p;
    shiftedCopy(x, idx, b, p, s.shiftX, xs, s.sumX, nullptr);
    if (q > 0) shiftedCopy(index ? Y : Y + r0 * q, idx, b, q, s.shiftY, ys, s.sumY, s.sqY);
    blockProducts<P>(be, xs, ys, b, s, scratch);
  }
}

// Moments about zero (from a device) re-expressed about the shift and added into s: with
// d = x - c, sum d d^T = sum x x^T - c (sum x)^T - (sum x) c^T + n c c^T.
void addAboutShift(const StatsRef& raw, const StatsRef& s) {
  const int64_t p = s.p, q = s.q;
  const double n = *raw.n;
  auto c = [](const double* shift, int64_t i) { return shift ? shift[i] : 0.0; };
  auto cross = [&](const double* m, const double* sa, const double* ca, int64_t na,
                   const double* sb, const double* cb, int64_t nb, double* out) {
    for (int64_t i = 0; i < na; i++)
      for (int64_t j = 0; j < nb; j++)
        out[i * nb + j] += m[i * nb + j] - c(ca, i) * sb[j] - sa[i] * c(cb, j) +
                           n * c(ca, i) * c(cb, j);
  };
  cross(raw.xtx, raw.sumX, s.shiftX, p, raw.sumX, s.shiftX, p, s.xtx);
  for (int64_t i = 0; i < p; i++) s.sumX[i] += raw.sumX[i] - n * c(s.shiftX, i);
  if (q > 0) {
    cross(raw.xty, raw.sumX, s.shiftX, p, raw.sumY, s.shiftY, q, s.xty);
    if (s.yty) cross(raw.yty, raw.sumY, s.shiftY, q, raw.sumY, s.shiftY, q, s.yty);
    for (int64_t j = 0; j < q; j++) {
      const double cj = c(s.shiftY, j);
      s.sqY[j] += raw.sqY[j] - 2 * cj * raw.sumY[j] + n * cj * cj;
      s.sumY[j] += raw.sumY[j] - n * cj;
    }
  }
}

template <typename T>
void deviceUpdate(DeviceOps& dev, const T* X, const T* Y, int64_t rows, const StatsRef& s,
                  bool f64Products) {
  const int64_t p = s.p, q = s.q;
  const auto zeros = [](int64_t count) { return std::vector<double>(static_cast<size_t>(count)); };
  std::vector<double> n = zeros(1), sumX = zeros(p), sumY = zeros(q), sqY = zeros(q),
                      xtx = zeros(p * p), xty = zeros(p * q), yty = zeros(s.yty ? q * q : 0);
  StatsRef raw = s;
  raw.n = n.data();
  raw.sumX = sumX.data();
  raw.sumY = q > 0 ? sumY.data() : nullptr;
  raw.sqY = q > 0 ? sqY.data() : nullptr;
  raw.xtx = xtx.data();
  raw.xty = q > 0 ? xty.data() : nullptr;
  raw.yty = s.yty ? yty.data() : nullptr;
  raw.shiftX = raw.shiftY = nullptr;
  dev.statsUpdate(X, Y, rows, raw, f64Products);
  addAboutShift(raw, s);
}

// The rows index picks (a device takes contiguous rows: they are gathered for it).
template <typename T>
std::vector<T> gather(const T* A, const int32_t* index, int64_t rows, int64_t cols) {
  std::vector<T> out(size_t(rows * cols));
  if (A)
    for (int64_t i = 0; i < rows; i++)
      std::copy_n(A + int64_t(index[i]) * cols, cols, out.data() + i * cols);
  return out;
}

}  // namespace

int64_t statsWorkspace(int64_t p, int64_t q, int64_t rows) {
  return std::min(rows, blockRows(p, q)) * (p + q);
}

template <typename T>
void statsUpdate(Backend& be, const T* X, const T* Y, const int32_t* index, int64_t rows,
                 const StatsRef& s, bool f64Products) {
  if (rows == 0) return;
  if (DeviceOps* dev = be.device()) {
    if (index) {
      const std::vector<T> x = gather(X, index, rows, s.p), y = gather(Y, index, rows, s.q);
      deviceUpdate(*dev, x.data(), s.q > 0 ? y.data() : nullptr, rows, s, f64Products);
    } else {
      deviceUpdate(*dev, X, Y, rows, s, f64Products);
    }
  } else if constexpr (std::is_same_v<T, float>) {
    if (f64Products)
      accumulate<T, double>(be, X, Y, index, rows, s);
    else
      accumulate<T, float>(be, X, Y, index, rows, s);
  } else {
    accumulate<T, double>(be, X, Y, index, rows, s);
  }
  *s.n += double(rows);
}

template void statsUpdate<float>(Backend&, const float*, const float*, const int32_t*, int64_t,
                                 const StatsRef&, bool);
template void statsUpdate<double>(Backend&, const double*, const double*, const int32_t*,
                                  int64_t, const StatsRef&, bool);

namespace {
// Returns 0 when every value written is finite, NaN otherwise (any NaN or infinity poisons it).
template <bool kAccumulate, bool kB>
double combineRow(double* o, double sa, const double* a, double sb, const double* b,
                  const double* U, const double* V, int64_t r, int64_t rows, int64_t i,
                  int64_t cols) {
  for (int64_t j = 0; j < cols; j++) {
    double v = sa * a[j];
    if (kB) v += sb * b[j];
    o[j] = kAccumulate ? o[j] + v : v;
  }
  for (int64_t k = 0; k < r; k++) {
    const double u = U[k * rows + i];
    const double* v = V + k * cols;
    for (int64_t j = 0; j < cols; j++) o[j] += u * v[j];
  }
  double poison = 0;
  for (int64_t j = 0; j < cols; j++) poison += o[j] * 0.0;
  return poison;
}
}  // namespace

// One pass over the large matrices, whatever the number of terms: they are memory-bound, and the
// rank-one terms (r <= 4) and the finiteness check run on each row while it is still in cache.
bool combineMoments(double* out, bool accumulate, double sa, const double* A, double sb,
                    const double* B, const double* U, const double* V, int64_t r, int64_t rows,
                    int64_t cols) {
  double poison = 0;
  for (int64_t i = 0; i < rows; i++) {
    double* o = out + i * cols;
    const double* a = A + i * cols;
    const double* b = B ? B + i * cols : nullptr;
    if (accumulate) {
      poison += b ? combineRow<true, true>(o, sa, a, sb, b, U, V, r, rows, i, cols)
                  : combineRow<true, false>(o, sa, a, sb, b, U, V, r, rows, i, cols);
    } else {
      poison += b ? combineRow<false, true>(o, sa, a, sb, b, U, V, r, rows, i, cols)
                  : combineRow<false, false>(o, sa, a, sb, b, U, V, r, rows, i, cols);
    }
  }
  return poison == 0;
}

// With d = x - shiftX, e = y - shiftY and the map's offset at the shift c = shiftX M + b - shiftY,
// the residual is d M - e + c, so column j's sum is
//   (M^T xtx M)_jj - 2 (M^T xty)_jj + sqY_j + 2 c_j ((sumX^T M)_j - sumY_j) + n c_j^2.
// M^T xtx M by block rows I of xtx: Z_I = xtx[I, <I] M[<I] + xtx[I, I] M[I] / 2, and
// (M^T xtx M)_jj = 2 sum_I (M_I^T Z_I)_jj, since the blocks above the diagonal mirror those below.
void statsResidualSquares(Backend& be, const StatsRef& s, const double* M, const double* bias,
                          double* out) {
  const int64_t p = s.p, q = s.q;
  constexpr int64_t nb = 256;  // large enough for the GEMMs' rate, small enough that the diagonal blocks' extra flops stay ~nb/p
  std::vector<double> Z(std::min(nb, p) * q), quad(q, 0.0), mB(q, 0.0), sM(q, 0.0);
  std::vector<double> c(bias, bias + q);
  Linalg<double>& la = be.la<double>();
  for (int64_t i0 = 0; i0 < p; i0 += nb) {
    const int64_t ib = std::min(nb, p - i0);
    if (i0 > 0) la.gemm(false, false, ib, q, i0, 1.0, s.xtx + i0 * p, p, M, q, 0.0, Z.data(), q);
    la.gemm(false, false, ib, q, ib, 0.5, s.xtx + i0 * p + i0, p, M + i0 * q, q, i0 > 0 ? 1.0 : 0.0,
            Z.data(), q);
    for (int64_t i = i0; i < i0 + ib; i++) {
      const double *m = M + i * q, *z = Z.data() + (i - i0) * q, *xy = s.xty + i * q;
      const double sx = s.sumX[i], hx = s.shiftX ? s.shiftX[i] : 0.0;
      for (int64_t j = 0; j < q; j++) {
        quad[j] += m[j] * z[j];
        mB[j] += m[j] * xy[j];
        sM[j] += sx * m[j];
        c[j] += hx * m[j];
      }
    }
  }
  for (int64_t j = 0; j < q; j++) {
    const double cj = c[j] - (s.shiftY ? s.shiftY[j] : 0.0);
    const double v = 2 * quad[j] - 2 * mB[j] + s.sqY[j] + 2 * cj * (sM[j] - s.sumY[j]) + *s.n * cj * cj;
    out[j] = std::max(v, 0.0);
  }
}

}  // namespace embmap
