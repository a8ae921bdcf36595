// The addon's entry point: registers each group of functions.
#include <napi.h>

#include "engine/registry.h"
#include "napi/bindings.h"
#include "napi/dispatch.h"

namespace embmap {

void expectNoOverlap(Args& args, const FloatArray& out, const char* outName,
                     const FloatArray& in, const char* inName) {
  if (!out.data || !in.data) return;
  const size_t es = out.dtype == DType::F32 ? 4 : 8, is = in.dtype == DType::F32 ? 4 : 8;
  auto o0 = reinterpret_cast<uintptr_t>(out.data), i0 = reinterpret_cast<uintptr_t>(in.data);
  if (o0 < i0 + size_t(in.length) * is && i0 < o0 + size_t(out.length) * es)
    args.rangeError(outName, std::string("memory separate from ") + inName,
                    "an array overlapping it");
}

namespace {

Napi::Value Backends(const Napi::CallbackInfo& info) {
  Args args(info, "backends", 0);
  Napi::Array out = Napi::Array::New(info.Env());
  uint32_t i = 0;
  for (const auto& name : backendNames()) {
    BackendInfo b = findBackend(name)->info();
    Napi::Object o = Napi::Object::New(info.Env());
    o.Set("name", b.name);
    o.Set("library", b.library);
    o.Set("kernel", b.kernel);
    o.Set("reason", b.reason);
    o.Set("threads", b.threads);
    o.Set("precision", b.precision);
    o.Set("threadCap", b.threadCap);
    out.Set(i++, o);
  }
  return out;
}

// { available, reason }: whether backend `name` is available, and if not, what is missing.
Napi::Value Status(const Napi::CallbackInfo& info, const char* name, std::string (*why)()) {
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("available", findBackend(name) != nullptr);
  o.Set("reason", why());
  return o;
}

Napi::Value CudaStatus(const Napi::CallbackInfo& info) {
  Args args(info, "cudaStatus", 0);
  return Status(info, "cuda", cudaUnavailableReason);
}

Napi::Value BlasStatus(const Napi::CallbackInfo& info) {
  Args args(info, "blasStatus", 0);
  return Status(info, "cpu-blas", blasUnavailableReason);
}

// setPrecision(backend, mode): false when the backend does not offer the mode.
Napi::Value SetPrecision(const Napi::CallbackInfo& info) {
  Args args(info, "setPrecision", 2);
  Backend& be = args.backend(0);
  if (!info[1].IsString()) args.typeError(1, "precision", "a string");
  return Napi::Boolean::New(info.Env(), be.setPrecision(info[1].As<Napi::String>().Utf8Value()));
}

Napi::Value SetThreads(const Napi::CallbackInfo& info) {
  Args args(info, "setThreads", 2);
  Backend& be = args.backend(0);
  be.setThreads(int(args.integer(1, "threads", 1, 1024)));
  return info.Env().Undefined();
}

// setCallThreads(threads): caps the threads of the calls dispatched until it is set to 0 again.
Napi::Value SetCallThreads(const Napi::CallbackInfo& info) {
  Args args(info, "setCallThreads", 1);
  setCallThreads(int(args.integer(0, "threads", 0, 1024)));
  return info.Env().Undefined();
}

}  // namespace

void registerInfo(Napi::Env env, Napi::Object exports) {
  exports.Set("backends", Napi::Function::New(env, Backends, "backends"));
  exports.Set("setThreads", Napi::Function::New(env, SetThreads, "setThreads"));
  exports.Set("setCallThreads", Napi::Function::New(env, SetCallThreads, "setCallThreads"));
  exports.Set("setPrecision", Napi::Function::New(env, SetPrecision, "setPrecision"));
  exports.Set("cudaStatus", Napi::Function::New(env, CudaStatus, "cudaStatus"));
  exports.Set("blasStatus", Napi::Function::New(env, BlasStatus, "blasStatus"));
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  registerInfo(env, exports);
  registerLinalg(env, exports);
  registerStats(env, exports);
  registerSimilarity(env, exports);
  registerMemory(env, exports);
  return exports;
}

}  // namespace embmap

// The macro pastes its argument into an identifier, so it needs an unqualified name.
static Napi::Object InitEmbmap(Napi::Env env, Napi::Object exports) {
  return embmap::Init(env, exports);
}
NODE_API_MODULE(embmap, InitEmbmap)
