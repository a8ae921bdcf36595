// Argument checking for every exported function: wrong JS arguments become TypeError or
// RangeError naming the function, the argument, the expected and the received value. The
// process never aborts from misuse.
#pragma once
#include <napi.h>

#include <cstdint>
#include <string>

#include "engine/backend.h"

namespace embmap {

enum class DType { F32, F64 };

struct FloatArray {
  Napi::TypedArray value;
  void* data = nullptr;
  int64_t length = 0;
  DType dtype = DType::F32;
  bool present() const { return data != nullptr || length > 0 || !value.IsEmpty(); }
};

class Args {
 public:
  Args(const Napi::CallbackInfo& info, const char* fn, size_t count);

  Backend& backend(size_t i);
  FloatArray floats(size_t i, const char* name);           // Float32Array | Float64Array
  FloatArray floatsOrNull(size_t i, const char* name);     // ... | null
  FloatArray float64s(size_t i, const char* name);         // Float64Array
  FloatArray float64sOrNull(size_t i, const char* name);   // Float64Array | null
  int32_t* int32s(size_t i, const char* name, int64_t length);
  int64_t integer(size_t i, const char* name, int64_t min, int64_t max = INT64_C(1) << 53);
  double number(size_t i, const char* name);
  bool boolean(size_t i, const char* name);

  // Length and dtype agreements between arrays.
  void expectLength(const FloatArray& a, const char* name, int64_t rows, int64_t cols);
  void expectDType(const FloatArray& a, const char* name, DType dtype);

  [[noreturn]] void typeError(size_t i, const char* name, const std::string& expected);
  [[noreturn]] void rangeError(const char* name, const std::string& expected,
                               const std::string& received);

  const Napi::CallbackInfo& info;
  Napi::Env env;

 private:
  std::string describe(const Napi::Value& v) const;
  const char* fn_;
};

const char* dtypeName(DType d);

}  // namespace embmap
