// Memory advice for large typed arrays. A fresh anonymous page costs a fault on first touch, and
// on virtual machines those faults are slow (measured here: ~3 ms per MiB, a 32 MiB p x p matrix
// ~95 ms to fill the first time and ~1 ms after). Asking for transparent huge pages, where the
// kernel's policy is "madvise" (Debian's default), makes it one fault per 2 MiB (~3 ms for the
// same matrix). Only whole 2 MiB pages inside the array are advised; pages already touched are
// left as they are, and other systems or policies make this a no-op.
#include <napi.h>

#include <cstdint>

#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "napi/bindings.h"

namespace embmap {
namespace {

// adviseHugePages(array): true when the kernel took the advice for some part of the array.
Napi::Value AdviseHugePages(const Napi::CallbackInfo& info) {
  Args args(info, "adviseHugePages", 1);
  FloatArray a = args.floats(0, "array");
#if defined(MADV_HUGEPAGE)
  constexpr uintptr_t kHuge = uintptr_t(2) << 20;
  const uintptr_t begin = reinterpret_cast<uintptr_t>(a.data);
  const uintptr_t end = begin + uintptr_t(a.length) * (a.dtype == DType::F32 ? 4 : 8);
  const uintptr_t first = (begin + kHuge - 1) & ~(kHuge - 1), last = end & ~(kHuge - 1);
  if (a.data && last > first)
    return Napi::Boolean::New(info.Env(),
                              madvise(reinterpret_cast<void*>(first), last - first, MADV_HUGEPAGE) == 0);
#endif
  return Napi::Boolean::New(info.Env(), false);
}

}  // namespace

void registerMemory(Napi::Env env, Napi::Object exports) {
  exports.Set("adviseHugePages", Napi::Function::New(env, AdviseHugePages, "adviseHugePages"));
}

}  // namespace embmap
