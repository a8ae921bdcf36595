// GEMM and the factorisations. Inputs are read in place; outputs are caller-allocated typed
// arrays written in place (zero copies across the boundary). Factorisations that destroy
// their input work on an internal copy so the caller's matrix is never modified unless the
// function says "in place".
#include <algorithm>
#include <vector>

#include "napi/bindings.h"
#include "napi/dispatch.h"
#include "ops/ops.h"

namespace embmap {
namespace {

// gemm(backend, A, aRows, aCols, transA, B, bRows, bCols, transB, bias|null, C, async)
// C = op(A) op(B) + bias.
Napi::Value Gemm(const Napi::CallbackInfo& info) {
  Args a(info, "gemm", 12);
  Backend& be = a.backend(0);
  FloatArray A = a.floats(1, "A");
  int64_t ar = a.integer(2, "aRows", 0), ac = a.integer(3, "aCols", 0);
  bool ta = a.boolean(4, "transA");
  FloatArray B = a.floats(5, "B");
  int64_t br = a.integer(6, "bRows", 0), bc = a.integer(7, "bCols", 0);
  bool tb = a.boolean(8, "transB");
  FloatArray bias = a.floatsOrNull(9, "bias");
  FloatArray C = a.floats(10, "C");
  bool async = a.boolean(11, "async");
  a.expectLength(A, "A", ar, ac);
  a.expectLength(B, "B", br, bc);
  a.expectDType(B, "B", A.dtype);
  a.expectDType(C, "C", A.dtype);
  const int64_t m = ta ? ac : ar, k = ta ? ar : ac, k2 = tb ? bc : br, n = tb ? br : bc;
  if (k != k2)
    a.rangeError("B", "op(B) with " + std::to_string(k) + " rows to match op(A)'s columns",
                 "op(B) of " + std::to_string(k2) + "x" + std::to_string(n));
  a.expectLength(C, "C", m, n);
  if (bias.present()) {
    a.expectDType(bias, "bias", A.dtype);
    a.expectLength(bias, "bias", 1, n);
  }
  expectNoOverlap(a, C, "C", A, "A");
  expectNoOverlap(a, C, "C", B, "B");
  expectNoOverlap(a, C, "C", bias, "bias");
  return dispatch(info.Env(), async, {A.value, B.value, bias.value, C.value}, [=, &be]() {
    withDType(A.dtype, [&](auto* tag) {
      using T = std::remove_pointer_t<decltype(tag)>;
      gemmBias<T>(be, ta, tb, m, n, k, ptr<T>(A), ptr<T>(B), bias.data ? ptr<T>(bias) : nullptr,
                  ptr<T>(C));
      return 0;
    });
    return 0.0;
  });
}

// cholesky(backend, A, n, async): A = L L^T in place; resolves 0 or the failing order j+1.
Napi::Value Cholesky(const Napi::CallbackInfo& info) {
  Args a(info, "cholesky", 4);
  Backend& be = a.backend(0);
  FloatArray A = a.floats(1, "A");
  int64_t n = a.integer(2, "n", 0);
  bool async = a.boolean(3, "async");
  a.expectLength(A, "A", n, n);
  return dispatch(info.Env(), async, {A.value}, [=, &be]() {
    return double(withDType(A.dtype, [&](auto* tag) {
      using T = std::remove_pointer_t<decltype(tag)>;
      return be.la<T>().potrf(n, ptr<T>(A), n);
    }));
  });
}

// cholSolve(backend, L, n, B, nrhs, async): B <- (L L^T)^-1 B in place.
Napi::Value CholSolve(const Napi::CallbackInfo& info) {
  Args a(info, "cholSolve", 6);
  Backend& be = a.backend(0);
  FloatArray L = a.floats(1, "L");
  int64_t n = a.integer(2, "n", 0);
  FloatArray B = a.floats(3, "B");
  int64_t nrhs = a.integer(4, "nrhs", 0);
  bool async = a.boolean(5, "async");
  a.expectLength(L, "L", n, n);
  a.expectDType(B, "B", L.dtype);
  a.expectLength(B, "B", n, nrhs);
  expectNoOverlap(a, B, "B", L, "L");
  return dispatch(info.Env(), async, {L.value, B.value}, [=, &be]() {
    withDType(L.dtype, [&](auto* tag) {
      using T = std::remove_pointer_t<decltype(tag)>;
      be.la<T>().potrs(n, nrhs, ptr<T>(L), n, ptr<T>(B), nrhs);
      return 0;
    });
    return 0.0;
  });
}

// lstsq(backend, A, m, n, B, nrhs, X, rcond, async): minimum-norm X (n x nrhs); resolves the rank.
Napi::Value Lstsq(const Napi::CallbackInfo& info) {
  Args a(info, "lstsq", 9);
  Backend& be = a.backend(0);
  FloatArray A = a.floats(1, "A");
  int64_t m = a.integer(2, "m", 0), n = a.integer(3, "n", 0);
  FloatArray B = a.floats(4, "B");
  int64_t nrhs = a.integer(5, "nrhs", 0);
  FloatArray X = a.floats(6, "X");
  double rcond = a.number(7, "rcond");
  bool async = a.boolean(8, "async");
  a.expectLength(A, "A", m, n);
  a.expectDType(B, "B", A.dtype);
  a.expectLength(B, "B", m, nrhs);
  a.expectDType(X, "X", A.dtype);
  a.expectLength(X, "X", n, nrhs);
  if (!(rcond >= 0 && rcond < 1)) a.rangeError("rcond", "a number in [0, 1)", std::to_string(rcond));
  return dispatch(info.Env(), async, {A.value, B.value, X.value}, [=, &be]() {
    return double(withDType(A.dtype, [&](auto* tag) {
      using T = std::remove_pointer_t<decltype(tag)>;
      std::vector<T> acopy(ptr<T>(A), ptr<T>(A) + m * n);
      std::vector<T> b(size_t(std::max(m, n) * nrhs), T(0));
      std::copy(ptr<T>(B), ptr<T>(B) + m * nrhs, b.begin());
      int64_t rank = be.la<T>().lstsq(m, n, nrhs, acopy.data(), n, b.data(), nrhs, T(rcond));
      if (rank < 0) throw std::runtime_error("lstsq: the least-squares solver failed");
      std::copy(b.begin(), b.begin() + n * nrhs, ptr<T>(X));
      return rank;
    }));
  });
}

// eigh(backend, A, n, w, V, async): row i of V is the eigenvector of w[i] (ascending).
Napi::Value Eigh(const Napi::CallbackInfo& info) {
  Args a(info, "eigh", 6);
  Backend& be = a.backend(0);
  FloatArray A = a.floats(1, "A");
  int64_t n = a.integer(2, "n", 0);
  FloatArray w = a.floats(3, "w");
  FloatArray V = a.floats(4, "V");
  bool async = a.boolean(5, "async");
  a.expectLength(A, "A", n, n);
  a.expectDType(w, "w", A.dtype);
  a.expectLength(w, "w", 1, n);
  a.expectDType(V, "V", A.dtype);
  a.expectLength(V, "V", n, n);
  expectNoOverlap(a, V, "V", w, "w");
  return dispatch(info.Env(), async, {A.value, w.value, V.value}, [=, &be]() {
    return double(withDType(A.dtype, [&](auto* tag) {
      using T = std::remove_pointer_t<decltype(tag)>;
      if (V.data != A.data) std::copy(ptr<T>(A), ptr<T>(A) + n * n, ptr<T>(V));
      return be.la<T>().syev(n, ptr<T>(V), n, ptr<T>(w));
    }));
  });
}

// svd(backend, A, m, n, U, S, Vt, async): thin SVD, r = min(m, n).
Napi::Value Svd(const Napi::CallbackInfo& info) {
  Args a(info, "svd", 8);
  Backend& be = a.backend(0);
  FloatArray A = a.floats(1, "A");
  int64_t m = a.integer(2, "m", 0), n = a.integer(3, "n", 0);
  FloatArray U = a.floats(4, "U"), S = a.floats(5, "S"), Vt = a.floats(6, "Vt");
  bool async = a.boolean(7, "async");
  const int64_t r = std::min(m, n);
  a.expectLength(A, "A", m, n);
  a.expectDType(U, "U", A.dtype);
  a.expectDType(S, "S", A.dtype);
  a.expectDType(Vt, "Vt", A.dtype);
  a.expectLength(U, "U", m, r);
  a.expectLength(S, "S", 1, r);
  a.expectLength(Vt, "Vt", r, n);
  expectNoOverlap(a, U, "U", S, "S");
  expectNoOverlap(a, U, "U", Vt, "Vt");
  expectNoOverlap(a, S, "S", Vt, "Vt");
  return dispatch(info.Env(), async, {A.value, U.value, S.value, Vt.value}, [=, &be]() {
    return double(withDType(A.dtype, [&](auto* tag) {
      using T = std::remove_pointer_t<decltype(tag)>;
      std::vector<T> acopy(ptr<T>(A), ptr<T>(A) + m * n);
      return be.la<T>().svd(m, n, acopy.data(), n, ptr<T>(U), r, ptr<T>(S), ptr<T>(Vt), n);
    }));
  });
}

}  // namespace

void registerLinalg(Napi::Env env, Napi::Object exports) {
  exports.Set("gemm", Napi::Function::New(env, Gemm, "gemm"));
  exports.Set("cholesky", Napi::Function::New(env, Cholesky, "cholesky"));
  exports.Set("cholSolve", Napi::Function::New(env, CholSolve, "cholSolve"));
  exports.Set("lstsq", Napi::Function::New(env, Lstsq, "lstsq"));
  exports.Set("eigh", Napi::Function::New(env, Eigh, "eigh"));
  exports.Set("svd", Napi::Function::New(env, Svd, "svd"));
}

}  // namespace embmap
