#include "napi/args.h"

#include <cmath>

#include "engine/registry.h"

namespace embmap {

const char* dtypeName(DType d) { return d == DType::F32 ? "Float32Array" : "Float64Array"; }

Args::Args(const Napi::CallbackInfo& i, const char* fn, size_t count)
    : info(i), env(i.Env()), fn_(fn) {
  if (info.Length() != count) {
    throw Napi::TypeError::New(env, std::string(fn) + ": expected " + std::to_string(count) +
                                        " arguments, received " +
                                        std::to_string(info.Length()));
  }
}

std::string Args::describe(const Napi::Value& v) const {
  if (v.IsNull()) return "null";
  if (v.IsUndefined()) return "undefined";
  if (v.IsNumber()) return "number " + v.ToString().Utf8Value();
  if (v.IsBoolean()) return v.ToBoolean().Value() ? "boolean true" : "boolean false";
  if (v.IsString()) return "string";
  if (v.IsTypedArray()) {
    auto t = v.As<Napi::TypedArray>();
    const char* names[] = {"Int8Array",   "Uint8Array",   "Uint8ClampedArray", "Int16Array",
                           "Uint16Array", "Int32Array",   "Uint32Array",       "Float32Array",
                           "Float64Array", "BigInt64Array", "BigUint64Array"};
    size_t k = size_t(t.TypedArrayType());
    return std::string(k < 11 ? names[k] : "TypedArray") + "(" +
           std::to_string(t.ElementLength()) + ")";
  }
  if (v.IsArray()) return "Array";
  if (v.IsFunction()) return "function";
  return "object";
}

void Args::typeError(size_t i, const char* name, const std::string& expected) {
  throw Napi::TypeError::New(env, std::string(fn_) + ": " + name + ": expected " + expected +
                                      ", received " + describe(info[i]));
}

void Args::rangeError(const char* name, const std::string& expected,
                      const std::string& received) {
  throw Napi::RangeError::New(
      env, std::string(fn_) + ": " + name + ": expected " + expected + ", received " + received);
}

Backend& Args::backend(size_t i) {
  if (!info[i].IsString()) typeError(i, "backend", "a backend name string");
  std::string name = info[i].As<Napi::String>().Utf8Value();
  Backend* b = findBackend(name);
  if (!b) {
    std::string avail;
    for (auto& n : backendNames()) avail += (avail.empty() ? "'" : ", '") + n + "'";
    rangeError("backend", "one of " + avail, "'" + name + "'");
  }
  return *b;
}

FloatArray Args::floats(size_t i, const char* name) {
  const Napi::Value v = info[i];
  if (v.IsTypedArray()) {
    auto t = v.As<Napi::TypedArray>();
    auto type = t.TypedArrayType();
    if (type == napi_float32_array || type == napi_float64_array) {
      FloatArray a;
      a.value = t;
      a.dtype = type == napi_float32_array ? DType::F32 : DType::F64;
      a.length = int64_t(t.ElementLength());
      a.data = static_cast<uint8_t*>(t.ArrayBuffer().Data()) + t.ByteOffset();
      return a;
    }
  }
  typeError(i, name, "a Float32Array or Float64Array");
}

FloatArray Args::floatsOrNull(size_t i, const char* name) {
  if (info[i].IsNull() || info[i].IsUndefined()) return FloatArray{};
  return floats(i, name);
}

FloatArray Args::float64s(size_t i, const char* name) {
  FloatArray a = floats(i, name);
  if (a.dtype != DType::F64) typeError(i, name, "a Float64Array");
  return a;
}

FloatArray Args::float64sOrNull(size_t i, const char* name) {
  if (info[i].IsNull() || info[i].IsUndefined()) return FloatArray{};
  return float64s(i, name);
}

int32_t* Args::int32s(size_t i, const char* name, int64_t length) {
  const Napi::Value v = info[i];
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
    typeError(i, name, "an Int32Array");
  auto t = v.As<Napi::TypedArray>();
  if (int64_t(t.ElementLength()) != length)
    rangeError(name, "length " + std::to_string(length),
               "length " + std::to_string(t.ElementLength()));
  return reinterpret_cast<int32_t*>(static_cast<uint8_t*>(t.ArrayBuffer().Data()) +
                                    t.ByteOffset());
}

int64_t Args::integer(size_t i, const char* name, int64_t min, int64_t max) {
  if (!info[i].IsNumber()) typeError(i, name, "an integer");
  double d = info[i].As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d) || d != std::floor(d)) typeError(i, name, "an integer");
  if (d < double(min) || d > double(max))
    rangeError(name, "an integer in [" + std::to_string(min) + ", " + std::to_string(max) + "]",
               describe(info[i]));
  return int64_t(d);
}

double Args::number(size_t i, const char* name) {
  if (!info[i].IsNumber()) typeError(i, name, "a number");
  return info[i].As<Napi::Number>().DoubleValue();
}

bool Args::boolean(size_t i, const char* name) {
  if (!info[i].IsBoolean()) typeError(i, name, "a boolean");
  return info[i].As<Napi::Boolean>().Value();
}

void Args::expectLength(const FloatArray& a, const char* name, int64_t rows, int64_t cols) {
  if (a.length != rows * cols)
    rangeError(name,
               "length " + std::to_string(rows * cols) + " (" + std::to_string(rows) + "x" +
                   std::to_string(cols) + ")",
               "length " + std::to_string(a.length));
}

void Args::expectDType(const FloatArray& a, const char* name, DType dtype) {
  if (a.dtype != dtype)
    throw Napi::TypeError::New(env, std::string(fn_) + ": " + name + ": expected a " +
                                        dtypeName(dtype) + " like the first matrix, received a " +
                                        dtypeName(a.dtype));
}

}  // namespace embmap
