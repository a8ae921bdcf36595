// One register function per group of exported functions.
#pragma once
#include <napi.h>

#include "napi/args.h"

namespace embmap {

void registerInfo(Napi::Env env, Napi::Object exports);
void registerLinalg(Napi::Env env, Napi::Object exports);
void registerStats(Napi::Env env, Napi::Object exports);
void registerSimilarity(Napi::Env env, Napi::Object exports);
void registerMemory(Napi::Env env, Napi::Object exports);

// Calls f with a null pointer of the array's element type (float or double).
template <typename F>
auto withDType(DType d, F&& f) {
  return d == DType::F32 ? f(static_cast<float*>(nullptr)) : f(static_cast<double*>(nullptr));
}

template <typename T>
T* ptr(const FloatArray& a) {
  return static_cast<T*>(a.data);
}

// Outputs must not share memory with inputs (BLAS and LAPACK forbid it).
void expectNoOverlap(Args& args, const FloatArray& out, const char* outName,
                     const FloatArray& in, const char* inName);

}  // namespace embmap
