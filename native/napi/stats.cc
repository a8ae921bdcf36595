// Streaming sufficient statistics: the accumulators are JS Float64Arrays updated in place.
#include "napi/bindings.h"
#include "napi/dispatch.h"
#include "ops/ops.h"

namespace embmap {
namespace {

// statsUpdate(backend, X, Y|null, rows, p, q, n, sumX, sumY|null, sqY|null, xtx, xty|null,
//             yty|null, shiftX|null, shiftY|null, f64Products, async)
Napi::Value StatsUpdate(const Napi::CallbackInfo& info) {
  Args a(info, "statsUpdate", 17);
  Backend& be = a.backend(0);
  FloatArray X = a.floats(1, "X");
  FloatArray Y = a.floatsOrNull(2, "Y");
  int64_t rows = a.integer(3, "rows", 0), p = a.integer(4, "p", 1), q = a.integer(5, "q", 0);
  FloatArray n = a.float64s(6, "n"), sumX = a.float64s(7, "sumX");
  FloatArray sumY = a.float64sOrNull(8, "sumY"), sqY = a.float64sOrNull(9, "sqY");
  FloatArray xtx = a.float64s(10, "xtx");
  FloatArray xty = a.float64sOrNull(11, "xty"), yty = a.float64sOrNull(12, "yty");
  FloatArray shiftX = a.float64sOrNull(13, "shiftX"), shiftY = a.float64sOrNull(14, "shiftY");
  bool f64Products = a.boolean(15, "f64Products");
  bool async = a.boolean(16, "async");
  a.expectLength(X, "X", rows, p);
  if (q > 0) {
    if (!Y.present()) a.typeError(2, "Y", "a Float32Array or Float64Array since q > 0");
    a.expectDType(Y, "Y", X.dtype);
    a.expectLength(Y, "Y", rows, q);
    if (!sumY.present()) a.typeError(8, "sumY", "a Float64Array since q > 0");
    if (!sqY.present()) a.typeError(9, "sqY", "a Float64Array since q > 0");
    if (!xty.present()) a.typeError(11, "xty", "a Float64Array since q > 0");
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
  return dispatch(info.Env(), async,
                  {X.value, Y.value, n.value, sumX.value, sumY.value, sqY.value, xtx.value,
                   xty.value, yty.value, shiftX.value, shiftY.value},
                  [=, &be]() {
                    withDType(X.dtype, [&](auto* tag) {
                      using T = std::remove_pointer_t<decltype(tag)>;
                      statsUpdate<T>(be, ptr<T>(X), q > 0 ? ptr<T>(Y) : nullptr, rows, s, f64Products);
                      return 0;
                    });
                    return 0.0;
                  });
}

}  // namespace

void registerStats(Napi::Env env, Napi::Object exports) {
  exports.Set("statsUpdate", Napi::Function::New(env, StatsUpdate, "statsUpdate"));
}

}  // namespace embmap
