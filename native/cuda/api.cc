#include "cuda/api.h"

#include <dirent.h>
#include <dlfcn.h>

#include <cstdlib>
#include <iterator>

namespace embmap::cuda {
namespace {

// CUDA 13 first, then 12 (cuSOLVER's soname runs one behind: libcusolver.so.12 is CUDA 13's).
struct Lib {
  const char* what;
  std::vector<const char*> sonames;
};
const Lib kLibs[] = {
    {"CUDA runtime", {"libcudart.so.13", "libcudart.so.12"}},
    {"CUDA driver", {"libcuda.so.1"}},
    {"cuBLAS", {"libcublas.so.13", "libcublas.so.12"}},
    {"cuBLASLt", {"libcublasLt.so.13", "libcublasLt.so.12"}},
    {"cuSOLVER", {"libcusolver.so.12", "libcusolver.so.11"}},
    {"NVRTC", {"libnvrtc.so.13", "libnvrtc.so.12"}},
};

// Toolkit folders tried after the loader's own search (LD_LIBRARY_PATH, ld.so.cache):
// EMBMAP_CUDA_LIB first, then CUDA_HOME and the standard install locations.
std::vector<std::string> searchDirs() {
  std::vector<std::string> dirs;
  if (const char* e = std::getenv("EMBMAP_CUDA_LIB")) dirs.push_back(e);
  for (const char* var : {"CUDA_HOME", "CUDA_PATH"})
    if (const char* e = std::getenv(var)) {
      dirs.push_back(std::string(e) + "/lib64");
      dirs.push_back(std::string(e) + "/targets/x86_64-linux/lib");
    }
  for (const char* d : {"/usr/local/cuda/lib64", "/usr/local/cuda/targets/x86_64-linux/lib",
                        "/usr/local/cuda-13.0/targets/x86_64-linux/lib",
                        "/usr/local/cuda-12/targets/x86_64-linux/lib"})
    dirs.push_back(d);
  return dirs;
}

// NVRTC opens libnvrtc-builtins by name when it compiles; found outside the loader's path, it
// would not be found again. Loading it first from the same folder satisfies that lookup.
void preloadCompanions(const std::string& dir) {
  DIR* d = opendir(dir.c_str());
  if (!d) return;
  while (dirent* e = readdir(d)) {
    const std::string name = e->d_name;
    if (name.rfind("libnvrtc-builtins.so.", 0) == 0)
      dlopen((dir + "/" + name).c_str(), RTLD_NOW | RTLD_GLOBAL);
  }
  closedir(d);
}

void* openLib(const Lib& lib, std::vector<std::string>& loaded) {
  for (const char* so : lib.sonames) {
    if (void* h = dlopen(so, RTLD_NOW | RTLD_LOCAL)) {
      loaded.push_back(std::string(so));
      return h;
    }
    for (const auto& dir : searchDirs()) {
      const std::string path = dir + "/" + so;
      if (void* h = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL)) {
        loaded.push_back(std::string(so) + " (" + dir + ")");
        preloadCompanions(dir);
        return h;
      }
    }
  }
  return nullptr;
}

struct Loaded {
  Api api{};
  LoadReport report;
};

Loaded load() {
  Loaded L;
  void* h[std::size(kLibs)] = {};
  std::string missing;
  for (size_t i = 0; i < std::size(kLibs); i++) {
    h[i] = openLib(kLibs[i], L.report.loaded);
    if (!h[i]) {
      std::string names;
      for (const char* so : kLibs[i].sonames) names += std::string(names.empty() ? "" : " or ") + so;
      missing += std::string(missing.empty() ? "" : "; ") + kLibs[i].what + " (" + names + ")";
    }
  }
  if (!missing.empty()) {
    L.report.missing = "not found: " + missing +
                       " (searched the loader path, EMBMAP_CUDA_LIB, CUDA_HOME, /usr/local/cuda)";
    return L;
  }
  std::string absent;
  auto sym = [&](void* lib, const char* name) {
    void* p = dlsym(lib, name);
    if (!p) absent += std::string(absent.empty() ? "" : ", ") + name;
    return p;
  };
  Api& a = L.api;
#define RT(field, name) a.field = reinterpret_cast<decltype(a.field)>(sym(h[0], name))
#define DRV(field) a.field = reinterpret_cast<decltype(a.field)>(sym(h[1], #field))
#define BLAS(field, name) a.field = reinterpret_cast<decltype(a.field)>(sym(h[2], name))
#define LT(field, name) a.field = reinterpret_cast<decltype(a.field)>(sym(h[3], name))
#define SOLVER(field, name) a.field = reinterpret_cast<decltype(a.field)>(sym(h[4], name))
#define NVRTC(field) a.field = reinterpret_cast<decltype(a.field)>(sym(h[5], #field))
  RT(GetDeviceCount, "cudaGetDeviceCount");
  RT(SetDevice, "cudaSetDevice");
  RT(DeviceGetAttribute, "cudaDeviceGetAttribute");
  RT(DriverGetVersion, "cudaDriverGetVersion");
  RT(RuntimeGetVersion, "cudaRuntimeGetVersion");
  RT(GetErrorString, "cudaGetErrorString");
  RT(GetLastError, "cudaGetLastError");
  RT(Malloc, "cudaMalloc");
  RT(Free, "cudaFree");
  RT(MallocHost, "cudaMallocHost");
  RT(FreeHost, "cudaFreeHost");
  RT(MemGetInfo, "cudaMemGetInfo");
  RT(MemcpyAsync, "cudaMemcpyAsync");
  RT(MemsetAsync, "cudaMemsetAsync");
  RT(StreamCreateWithFlags, "cudaStreamCreateWithFlags");
  RT(StreamDestroy, "cudaStreamDestroy");
  RT(StreamSynchronize, "cudaStreamSynchronize");
  RT(StreamWaitEvent, "cudaStreamWaitEvent");
  RT(EventCreateWithFlags, "cudaEventCreateWithFlags");
  RT(EventDestroy, "cudaEventDestroy");
  RT(EventRecord, "cudaEventRecord");
  RT(EventSynchronize, "cudaEventSynchronize");
  DRV(cuInit);
  DRV(cuDeviceGet);
  DRV(cuDeviceGetName);
  DRV(cuDevicePrimaryCtxRetain);
  DRV(cuCtxSetCurrent);
  DRV(cuModuleLoadData);
  DRV(cuModuleGetFunction);
  DRV(cuLaunchKernel);
  DRV(cuGetErrorString);
  BLAS(blasCreate, "cublasCreate_v2");
  BLAS(blasDestroy, "cublasDestroy_v2");
  BLAS(blasSetStream, "cublasSetStream_v2");
  BLAS(blasGetVersion, "cublasGetVersion_v2");
  BLAS(GemmEx, "cublasGemmEx_64");
  BLAS(GemmStridedBatchedEx, "cublasGemmStridedBatchedEx_64");
  BLAS(Ssyrk, "cublasSsyrk_v2_64");
  BLAS(Strsm, "cublasStrsm_v2_64");
  BLAS(Dtrsm, "cublasDtrsm_v2_64");
  BLAS(Sgeam, "cublasSgeam_64");
  BLAS(Dgeam, "cublasDgeam_64");
  LT(LtCreate, "cublasLtCreate");
  LT(LtDestroy, "cublasLtDestroy");
  LT(LtMatmulDescCreate, "cublasLtMatmulDescCreate");
  LT(LtMatmulDescDestroy, "cublasLtMatmulDescDestroy");
  LT(LtMatmulDescSetAttribute, "cublasLtMatmulDescSetAttribute");
  LT(LtMatrixLayoutCreate, "cublasLtMatrixLayoutCreate");
  LT(LtMatrixLayoutDestroy, "cublasLtMatrixLayoutDestroy");
  LT(LtMatmul, "cublasLtMatmul");
  SOLVER(solverCreate, "cusolverDnCreate");
  SOLVER(solverDestroy, "cusolverDnDestroy");
  SOLVER(solverSetStream, "cusolverDnSetStream");
  SOLVER(CreateParams, "cusolverDnCreateParams");
  SOLVER(DestroyParams, "cusolverDnDestroyParams");
  SOLVER(Xpotrf_bufferSize, "cusolverDnXpotrf_bufferSize");
  SOLVER(Xpotrf, "cusolverDnXpotrf");
  SOLVER(Xsyevd_bufferSize, "cusolverDnXsyevd_bufferSize");
  SOLVER(Xsyevd, "cusolverDnXsyevd");
  SOLVER(Xgesvd_bufferSize, "cusolverDnXgesvd_bufferSize");
  SOLVER(Xgesvd, "cusolverDnXgesvd");
  SOLVER(Xgeqrf_bufferSize, "cusolverDnXgeqrf_bufferSize");
  SOLVER(Xgeqrf, "cusolverDnXgeqrf");
  SOLVER(Sormqr_bufferSize, "cusolverDnSormqr_bufferSize");
  SOLVER(Sormqr, "cusolverDnSormqr");
  SOLVER(Dormqr_bufferSize, "cusolverDnDormqr_bufferSize");
  SOLVER(Dormqr, "cusolverDnDormqr");
  NVRTC(nvrtcCreateProgram);
  NVRTC(nvrtcCompileProgram);
  NVRTC(nvrtcGetCUBINSize);
  NVRTC(nvrtcGetCUBIN);
  NVRTC(nvrtcGetProgramLogSize);
  NVRTC(nvrtcGetProgramLog);
  NVRTC(nvrtcDestroyProgram);
  NVRTC(nvrtcVersion);
#undef RT
#undef DRV
#undef BLAS
#undef LT
#undef SOLVER
#undef NVRTC
  if (!absent.empty()) {
    L.report.missing = "the CUDA libraries lack " + absent + " (CUDA 12 or newer is needed)";
    return L;
  }
  L.report.ok = true;
  return L;
}

}  // namespace

const Api* api(LoadReport* report) {
  static Loaded loaded = load();  // thread-safe, once; the handles stay open for the process
  if (report) *report = loaded.report;
  return loaded.report.ok ? &loaded.api : nullptr;
}

}  // namespace embmap::cuda
