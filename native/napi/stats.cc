// Streaming sufficient statistics: the accumulators are JS Float64Arrays updated in place.
#include "napi/bindings.h"
#include "napi/dispatch.h"
#include "ops/ops.h"

namespace embmap {
namespace {

// statsUpdate(backend, X, Y|null, index|null, rows, p, q, n, sumX, sumY|null, sqY|null, xtx,
//             xty|null, yty|null, shiftX|null, shiftY|null, workspace|null, f64Products, async)
// X holds `rows` rows; an Int32Array index picks which of them are added, in its order. A
// workspace (Float64Array) of statsWorkspace(p, q, taken rows) values or more is used for the
// blocks; a shorter one or null: the call allocates its own.
Napi::Value StatsUpdate(const Napi::CallbackInfo& info) {
  Args a(info, "statsUpdate", 19);
  Backend& be = a.backend(0);
  FloatArray X = a.floats(1, "X");
  FloatArray Y = a.floatsOrNull(2, "Y");
  int64_t rows = a.integer(4, "rows", 0), p = a.integer(5, "p", 1), q = a.integer(6, "q", 0);
  const int32_t* index = nullptr;
  int64_t taken = rows;
  if (!info[3].IsNull()) {
    if (!info[3].IsTypedArray()) a.typeError(3, "index", "an Int32Array or null");
    taken = int64_t(info[3].As<Napi::TypedArray>().ElementLength());
    index = a.int32s(3, "index", taken);
    for (int64_t i = 0; i < taken; i++) {
      if (index[i] < 0 || index[i] >= rows)
        a.rangeError("index", "row numbers in [0, " + std::to_string(rows) + ")",
                     std::to_string(index[i]) + " at position " + std::to_string(i));
    }
  }
  FloatArray n = a.float64s(7, "n"), sumX = a.float64s(8, "sumX");
  FloatArray sumY = a.float64sOrNull(9, "sumY"), sqY = a.float64sOrNull(10, "sqY");
  FloatArray xtx = a.float64s(11, "xtx");
  FloatArray xty = a.float64sOrNull(12, "xty"), yty = a.float64sOrNull(13, "yty");
  FloatArray shiftX = a.float64sOrNull(14, "shiftX"), shiftY = a.float64sOrNull(15, "shiftY");
  FloatArray workspace = a.float64sOrNull(16, "workspace");
  bool f64Products = a.boolean(17, "f64Products");
  bool async = a.boolean(18, "async");
  a.expectLength(X, "X", rows, p);
  if (q > 0) {
    if (!Y.present()) a.typeError(2, "Y", "a Float32Array or Float64Array since q > 0");
    a.expectDType(Y, "Y", X.dtype);
    a.expectLength(Y, "Y", rows, q);
    if (!sumY.present()) a.typeError(9, "sumY", "a Float64Array since q > 0");
    if (!sqY.present()) a.typeError(10, "sqY", "a Float64Array since q > 0");
    if (!xty.present()) a.typeError(12, "xty", "a Float64Array since q > 0");
    a.expectLength(sumY, "sumY", 1, q);
    a.expectLength(sqY, "sqY", 1, q);
    a.expectLength(xty, "xty", p, q);
  }
  a.expectLength(n, "n", 1, 1);
  a.expectLength(sumX, "sumX", 1, p);
  a.expectLength(xtx, "xtx", p, p);
  if (yty.present()) a.expectLength(yty, "yty", q, q);
  if (shiftX.present()) a.expectLength(shiftX, "shiftX", 1, p);
  if (q > 0 && shiftY.present()) a.expectLength(shiftY, "shiftY", 1, q);
  StatsRef s;
  s.p = p;
  s.q = q;
  s.n = ptr<double>(n);
  s.sumX = ptr<double>(sumX);
  s.sumY = q > 0 ? ptr<double>(sumY) : nullptr;
  s.sqY = q > 0 ? ptr<double>(sqY) : nullptr;
  s.xtx = ptr<double>(xtx);
  s.xty = q > 0 ? ptr<double>(xty) : nullptr;
  s.yty = q > 0 && yty.present() ? ptr<double>(yty) : nullptr;
  s.shiftX = shiftX.present() ? ptr<double>(shiftX) : nullptr;
  s.shiftY = q > 0 && shiftY.present() ? ptr<double>(shiftY) : nullptr;
  s.workspace = workspace.present() ? ptr<double>(workspace) : nullptr;
  s.workspaceLength = workspace.present() ? workspace.length : 0;
  Napi::Value indexValue = info[3];
  return dispatch(info.Env(), async,
                  {X.value, Y.value, indexValue, n.value, sumX.value, sumY.value, sqY.value, xtx.value,
                   xty.value, yty.value, shiftX.value, shiftY.value, workspace.value},
                  [=, &be]() {
                    withDType(X.dtype, [&](auto* tag) {
                      using T = std::remove_pointer_t<decltype(tag)>;
                      statsUpdate<T>(be, ptr<T>(X), q > 0 ? ptr<T>(Y) : nullptr, index, taken, s,
                                     f64Products);
                      return 0;
                    });
                    return 0.0;
                  });
}

// statsWorkspace(p, q, rows): the workspace length statsUpdate uses for `rows` rows.
Napi::Value StatsWorkspace(const Napi::CallbackInfo& info) {
  Args a(info, "statsWorkspace", 3);
  const int64_t p = a.integer(0, "p", 1), q = a.integer(1, "q", 0), rows = a.integer(2, "rows", 0);
  return Napi::Number::New(info.Env(), double(statsWorkspace(p, q, rows)));
}

// statsCombine(out, accumulate, sa, A, sb, B|null, U, V, r): combineMoments of ops.h, on the
// calling thread (one memory-bound pass, a few milliseconds: merging statistics stays
// synchronous). out and A (and B) are rows x cols; U holds r rows of length `rows` and V r rows of
// length `cols` (r rank-one terms U_k V_k^T), with rows and cols from out's shape given by V.
Napi::Value StatsCombine(const Napi::CallbackInfo& info) {
  Args a(info, "statsCombine", 9);
  FloatArray out = a.float64s(0, "out");
  const bool accumulate = a.boolean(1, "accumulate");
  const double sa = a.number(2, "sa");
  FloatArray A = a.float64s(3, "A");
  const double sb = a.number(4, "sb");
  FloatArray B = a.float64sOrNull(5, "B");
  FloatArray U = a.float64s(6, "U"), V = a.float64s(7, "V");
  const int64_t r = a.integer(8, "r", 0, 16);
  const int64_t rows = r > 0 ? U.length / r : 0, cols = r > 0 ? V.length / r : 0;
  if (r == 0) a.rangeError("r", "at least one rank-one term (it gives the shape)", "0");
  a.expectLength(U, "U", r, rows);
  a.expectLength(V, "V", r, cols);
  a.expectLength(A, "A", rows, cols);
  if (B.present()) a.expectLength(B, "B", rows, cols);
  a.expectLength(out, "out", rows, cols);
  const bool finite = combineMoments(ptr<double>(out), accumulate, sa, ptr<double>(A), sb,
                                     B.present() ? ptr<double>(B) : nullptr, ptr<double>(U),
                                     ptr<double>(V), r, rows, cols);
  return Napi::Boolean::New(info.Env(), finite);
}

// statsResidual(backend, p, q, n, sumX, sumY, sqY, xtx, xty, shiftX, shiftY, M, bias, out, async):
// statsResidualSquares of ops.h into out (q values): a map (M: p x q, bias: q) scored on the rows
// behind the statistics.
Napi::Value StatsResidual(const Napi::CallbackInfo& info) {
  Args a(info, "statsResidual", 15);
  Backend& be = a.backend(0);
  const int64_t p = a.integer(1, "p", 1), q = a.integer(2, "q", 1);
  FloatArray n = a.float64s(3, "n"), sumX = a.float64s(4, "sumX"), sumY = a.float64s(5, "sumY");
  FloatArray sqY = a.float64s(6, "sqY"), xtx = a.float64s(7, "xtx"), xty = a.float64s(8, "xty");
  FloatArray shiftX = a.float64s(9, "shiftX"), shiftY = a.float64s(10, "shiftY");
  FloatArray M = a.float64s(11, "M"), bias = a.float64s(12, "bias"), out = a.float64s(13, "out");
  const bool async = a.boolean(14, "async");
  a.expectLength(n, "n", 1, 1);
  a.expectLength(sumX, "sumX", 1, p);
  a.expectLength(shiftX, "shiftX", 1, p);
  a.expectLength(xtx, "xtx", p, p);
  a.expectLength(xty, "xty", p, q);
  a.expectLength(M, "M", p, q);
  for (const auto& [v, name] : {std::pair{sumY, "sumY"}, {sqY, "sqY"}, {shiftY, "shiftY"}, {bias, "bias"}, {out, "out"}})
    a.expectLength(v, name, 1, q);
  StatsRef s;
  s.p = p;
  s.q = q;
  s.n = ptr<double>(n);
  s.sumX = ptr<double>(sumX);
  s.sumY = ptr<double>(sumY);
  s.sqY = ptr<double>(sqY);
  s.xtx = ptr<double>(xtx);
  s.xty = ptr<double>(xty);
  s.shiftX = ptr<double>(shiftX);
  s.shiftY = ptr<double>(shiftY);
  return dispatch(info.Env(), async,
                  {n.value, sumX.value, sumY.value, sqY.value, xtx.value, xty.value, shiftX.value,
                   shiftY.value, M.value, bias.value, out.value},
                  [=, &be]() {
                    statsResidualSquares(be, s, ptr<double>(M), ptr<double>(bias), ptr<double>(out));
                    return 0.0;
                  });
}

}  // namespace

void registerStats(Napi::Env env, Napi::Object exports) {
  exports.Set("statsUpdate", Napi::Function::New(env, StatsUpdate, "statsUpdate"));
  exports.Set("statsWorkspace", Napi::Function::New(env, StatsWorkspace, "statsWorkspace"));
  exports.Set("statsCombine", Napi::Function::New(env, StatsCombine, "statsCombine"));
  exports.Set("statsResidual", Napi::Function::New(env, StatsResidual, "statsResidual"));
}

}  // namespace embmap
