// Row normalisation and blocked cosine scores.
#include "napi/bindings.h"
#include "napi/dispatch.h"
#include "ops/ops.h"

namespace embmap {
namespace {

// normalizeRows(A, rows, cols, out, async): resolves the number of zero rows.
Napi::Value NormalizeRows(const Napi::CallbackInfo& info) {
  Args a(info, "normalizeRows", 5);
  FloatArray A = a.floats(0, "A");
  int64_t rows = a.integer(1, "rows", 0), cols = a.integer(2, "cols", 0);
  FloatArray out = a.floats(3, "out");
  bool async = a.boolean(4, "async");
  a.expectLength(A, "A", rows, cols);
  a.expectDType(out, "out", A.dtype);
  a.expectLength(out, "out", rows, cols);
  if (out.data != A.data) expectNoOverlap(a, out, "out", A, "A");
  return dispatch(info.Env(), async, {A.value, out.value}, [=]() {
    return double(withDType(A.dtype, [&](auto* tag) {
      using T = std::remove_pointer_t<decltype(tag)>;
      return normalizeRows<T>(ptr<T>(A), rows, cols, ptr<T>(out));
    }));
  });
}

// cosineTopK(backend, Q, nq, G, ng, d, k, self, topIdx|null, topScore|null, lo, hi,
//            counts|null, async)
Napi::Value CosineTopK(const Napi::CallbackInfo& info) {
  Args a(info, "cosineTopK", 14);
  Backend& be = a.backend(0);
  FloatArray Q = a.floats(1, "Q");
  int64_t nq = a.integer(2, "nq", 0);
  FloatArray G = a.floats(3, "G");
  int64_t ng = a.integer(4, "ng", 0), d = a.integer(5, "d", 1);
  int64_t k = a.integer(6, "k", 0, 1 << 20);
  bool self = a.boolean(7, "self");
  a.expectLength(Q, "Q", nq, d);
  a.expectDType(G, "G", Q.dtype);
  a.expectLength(G, "G", ng, d);
  if (self && (nq != ng || Q.data != G.data))
    a.rangeError("G", "the same array as Q when self is true", "a different array");
  int32_t* topIdx = nullptr;
  FloatArray topScore;
  if (k > 0) {
    if (ng > INT32_MAX) a.rangeError("ng", "at most 2^31-1 rows for int32 indices", std::to_string(ng));
    topIdx = a.int32s(8, "topIdx", nq * k);
    topScore = a.floats(9, "topScore");
    a.expectDType(topScore, "topScore", Q.dtype);
    a.expectLength(topScore, "topScore", nq, k);
  }
  CosineOptions opt;
  opt.k = k;
  opt.self = self;
  opt.lo = a.number(10, "lo");
  opt.hi = a.number(11, "hi");
  FloatArray counts = a.float64sOrNull(12, "counts");
  bool async = a.boolean(13, "async");
  if (counts.present()) {
    if (!(opt.hi > opt.lo)) a.rangeError("hi", "a number greater than lo", std::to_string(opt.hi));
    if (counts.length < 1) a.rangeError("counts", "at least one bin", "length 0");
    opt.bins = counts.length;
    opt.counts = ptr<double>(counts);
  }
  return dispatch(info.Env(), async, {Q.value, G.value, info[8], topScore.value, counts.value},
                  [=, &be]() {
                    withDType(Q.dtype, [&](auto* tag) {
                      using T = std::remove_pointer_t<decltype(tag)>;
                      cosineTopK<T>(be, ptr<T>(Q), nq, ptr<T>(G), ng, d, opt, topIdx,
                                    k > 0 ? ptr<T>(topScore) : nullptr);
                      return 0;
                    });
                    return 0.0;
                  });
}

}  // namespace

void registerSimilarity(Napi::Env env, Napi::Object exports) {
  exports.Set("normalizeRows", Napi::Function::New(env, NormalizeRows, "normalizeRows"));
  exports.Set("cosineTopK", Napi::Function::New(env, CosineTopK, "cosineTopK"));
}

}  // namespace embmap
