#include "cpu/blas_lib.h"

#include <dlfcn.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace embmap::blas {
namespace {

struct Candidate {
  Vendor vendor;
  const char* name;  // as EMBMAP_BLAS spells it
  std::vector<const char*> sonames;
};

// BLIS first (the kernels this project tunes and measures), then OpenBLAS, then MKL.
const Candidate kCandidates[] = {
    {Vendor::Blis, "blis", {"libblis.so.4", "libblis.so"}},
    {Vendor::OpenBlas, "openblas", {"libopenblas.so.0", "libopenblas.so"}},
    {Vendor::Mkl, "mkl", {"libmkl_rt.so.2", "libmkl_rt.so"}},
};

// LAPACK for a BLAS that has none (BLIS): the reference LAPACK by path first, since the
// liblapack.so.3 alternative may be OpenBLAS's, which would bring a second BLAS.
const char* const kLapacks[] = {"/usr/lib/x86_64-linux-gnu/lapack/liblapack.so.3",
                                "/usr/lib/aarch64-linux-gnu/lapack/liblapack.so.3",
                                "liblapack.so.3"};

template <typename F>
bool bind(void* handle, const char* name, F* out) {
  *out = reinterpret_cast<F>(dlsym(handle, name));
  return *out != nullptr;
}

template <typename T>
bool bindBlas(void* h, const char* p, Fortran<T>* f) {
  const std::string s(p);
  return bind(h, (s + "gemm_").c_str(), &f->gemm) && bind(h, (s + "syrk_").c_str(), &f->syrk) &&
         bind(h, (s + "trsm_").c_str(), &f->trsm);
}

template <typename T>
bool bindLapack(void* h, const char* p, Fortran<T>* f) {
  const std::string s(p);
  return bind(h, (s + "potrf_").c_str(), &f->potrf) &&
         bind(h, (s + "gelsd_").c_str(), &f->gelsd) &&
         bind(h, (s + "syevd_").c_str(), &f->syevd) && bind(h, (s + "gesdd_").c_str(), &f->gesdd);
}

std::string fileOf(const void* symbol) {
  Dl_info dl{};
  if (dladdr(symbol, &dl) && dl.dli_fname) return dl.dli_fname;
  return "?";
}

void (*bliSetThreads)(int64_t) = nullptr;  // BLIS takes a dim_t (64-bit)

std::string describe(const Library& L) {
  const std::string blasFile = fileOf(reinterpret_cast<const void*>(L.s.gemm));
  const std::string lapackFile = fileOf(reinterpret_cast<const void*>(L.s.potrf));
  std::string name;
  if (L.vendor == Vendor::Blis) {
    const char* (*version)() = nullptr;
    name = bind(L.blas, "bli_info_get_version_str", &version) ? std::string("BLIS ") + version()
                                                              : std::string("BLIS");
  } else if (L.vendor == Vendor::OpenBlas) {
    char* (*config)() = nullptr;
    name = bind(L.blas, "openblas_get_config", &config) ? config() : "OpenBLAS";
  } else {
    void (*version)(char*, int) = nullptr;
    char buf[256] = {0};
    if (bind(L.blas, "MKL_Get_Version_String", &version)) version(buf, sizeof buf - 1);
    name = buf[0] ? std::string(buf) : std::string("MKL");
  }
  std::string d = name + " (" + blasFile + ")";
  if (lapackFile != blasFile) d += " + LAPACK " + lapackFile;
  return d;
}

// Opens one vendor's library and binds every routine; on failure says why.
bool open(const Candidate& c, Library* L, std::string* why) {
  void* h = nullptr;
  for (const char* so : c.sonames)
    // Global, so that a LAPACK loaded next binds its own BLAS calls to this library.
    if ((h = dlopen(so, RTLD_NOW | RTLD_GLOBAL))) break;
  if (!h) {
    *why = std::string(c.sonames[0]) + " not found";
    return false;
  }
  // A library that cannot serve leaves the global scope again, so that it cannot capture the
  // BLAS calls of the next candidate's LAPACK.
  auto reject = [&](const std::string& reason) {
    dlclose(h);
    *why = reason;
    return false;
  };
  L->vendor = c.vendor;
  L->blas = h;
  if (!bindBlas(h, "s", &L->s) || !bindBlas(h, "d", &L->d))
    return reject(std::string(c.sonames[0]) + " lacks the Fortran BLAS routines");
  if (!bindLapack(h, "s", &L->s) || !bindLapack(h, "d", &L->d)) {
    void* lapack = nullptr;
    for (const char* so : kLapacks)
      if ((lapack = dlopen(so, RTLD_NOW | RTLD_LOCAL))) break;
    if (!lapack || !bindLapack(lapack, "s", &L->s) || !bindLapack(lapack, "d", &L->d))
      return reject(std::string(c.sonames[0]) + " found, but no LAPACK (liblapack.so.3)");
  }
  if (c.vendor == Vendor::Blis && bind(h, "bli_thread_set_num_threads", &bliSetThreads)) {
    L->setThreads = [](int n) { bliSetThreads(n); };
  } else if (c.vendor == Vendor::OpenBlas) {
    bind(h, "openblas_set_num_threads", &L->setThreads);
  } else if (c.vendor == Vendor::Mkl) {
    bind(h, "MKL_Set_Num_Threads", &L->setThreads);
  }
  L->description = describe(*L);
  return true;
}

struct Loaded {
  Library lib;
  bool ok = false;
  std::string why;
};

Loaded find() {
  Loaded r;
  const char* only = std::getenv("EMBMAP_BLAS");
  if (only && !std::strcmp(only, "none")) {
    r.why = "disabled by EMBMAP_BLAS=none";
    return r;
  }
  std::string tried;
  for (const Candidate& c : kCandidates) {
    if (only && *only && std::strcmp(only, c.name)) continue;
    std::string why;
    if (open(c, &r.lib, &why)) {
      r.ok = true;
      return r;
    }
    tried += (tried.empty() ? "" : "; ") + why;
  }
  if (tried.empty())
    r.why = std::string("EMBMAP_BLAS=") + only + ": expected blis, openblas, mkl or none";
  else
    r.why = "no BLAS/LAPACK library loaded (" + tried +
            "); for the faster cpu-blas backend install one, no rebuild needed: apt-get install "
            "libblis4-openmp liblapack3 (or libopenblas0, or Intel MKL on the library path)";
  return r;
}

}  // namespace

const Library* load(std::string* whyNot) {
  static const Loaded loaded = find();  // thread-safe, once per process
  if (!loaded.ok) {
    if (whyNot) *whyNot = loaded.why;
    return nullptr;
  }
  return &loaded.lib;
}

}  // namespace embmap::blas
