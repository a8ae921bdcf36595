// The slice of the CUDA runtime, driver, cuBLAS, cuSOLVER and NVRTC APIs that the cuda backend
// uses, declared here and resolved with dlopen at run time: one build serves CPU-only and GPU
// machines, and building needs no CUDA toolkit. Values and signatures follow the CUDA 12/13
// headers (the 64-bit cuBLAS "_64" entry points and cuSOLVER's generic X API exist in both).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace embmap::cuda {

using cudaError_t = int;
using cudaStream_t = struct CUstream_st*;
using cudaEvent_t = struct CUevent_st*;
using CUresult = int;
using CUdevice = int;
using CUcontext = struct CUctx_st*;
using CUmodule = struct CUmod_st*;
using CUfunction = struct CUfunc_st*;
using cublasHandle_t = struct cublasContext*;
using cublasLtHandle_t = struct cublasLtContext*;
using cublasLtMatmulDesc_t = struct cublasLtMatmulDescOpaque*;
using cublasLtMatrixLayout_t = struct cublasLtMatrixLayoutOpaque*;
using cublasStatus_t = int;
using cusolverDnHandle_t = struct cusolverDnContext*;
using cusolverDnParams_t = struct cusolverDnParams*;
using cusolverStatus_t = int;
using nvrtcProgram = struct _nvrtcProgram*;
using nvrtcResult = int;

// cudaDataType (library_types.h)
enum DataType : int { R_32F = 0, R_64F = 1, R_16BF = 14 };
// cublasComputeType_t
enum ComputeType : int { COMPUTE_32F = 68, COMPUTE_64F = 70, COMPUTE_32F_FAST_TF32 = 77 };
enum Op : int { OP_N = 0, OP_T = 1 };
enum Fill : int { FILL_LOWER = 0, FILL_UPPER = 1 };
enum Side : int { SIDE_LEFT = 0, SIDE_RIGHT = 1 };
enum Diag : int { DIAG_NON_UNIT = 0 };
enum EigMode : int { EIG_VECTOR = 1 };  // eigenvectors too
constexpr int kGemmDefault = -1;          // CUBLAS_GEMM_DEFAULT
// cublasLtMatmulDescAttributes_t / cublasLtEpilogue_t
constexpr int kLtEpilogue = 7, kLtBiasPointer = 8;
constexpr uint32_t kLtEpilogueBias = 4;
constexpr int kMemcpyHostToDevice = 1, kMemcpyDeviceToHost = 2, kMemcpyDeviceToDevice = 3;
constexpr unsigned kStreamNonBlocking = 1, kEventDisableTiming = 2;
constexpr int kAttrMultiProcessorCount = 16, kAttrCCMajor = 75, kAttrCCMinor = 76;

struct Api {
  // cudart
  cudaError_t (*GetDeviceCount)(int*);
  cudaError_t (*SetDevice)(int);
  cudaError_t (*DeviceGetAttribute)(int*, int, int);
  cudaError_t (*DriverGetVersion)(int*);
  cudaError_t (*RuntimeGetVersion)(int*);
  const char* (*GetErrorString)(cudaError_t);
  cudaError_t (*GetLastError)();
  cudaError_t (*Malloc)(void**, size_t);
  cudaError_t (*Free)(void*);
  cudaError_t (*MallocHost)(void**, size_t);
  cudaError_t (*FreeHost)(void*);
  cudaError_t (*MemGetInfo)(size_t*, size_t*);
  cudaError_t (*MemcpyAsync)(void*, const void*, size_t, int, cudaStream_t);
  cudaError_t (*MemsetAsync)(void*, int, size_t, cudaStream_t);
  cudaError_t (*StreamCreateWithFlags)(cudaStream_t*, unsigned);
  cudaError_t (*StreamDestroy)(cudaStream_t);
  cudaError_t (*StreamSynchronize)(cudaStream_t);
  cudaError_t (*StreamWaitEvent)(cudaStream_t, cudaEvent_t, unsigned);
  cudaError_t (*EventCreateWithFlags)(cudaEvent_t*, unsigned);
  cudaError_t (*EventDestroy)(cudaEvent_t);
  cudaError_t (*EventRecord)(cudaEvent_t, cudaStream_t);
  cudaError_t (*EventSynchronize)(cudaEvent_t);
  // driver (kernels compiled by NVRTC are loaded and launched through it)
  CUresult (*cuInit)(unsigned);
  CUresult (*cuDeviceGet)(CUdevice*, int);
  CUresult (*cuDeviceGetName)(char*, int, CUdevice);
  CUresult (*cuDevicePrimaryCtxRetain)(CUcontext*, CUdevice);
  CUresult (*cuCtxSetCurrent)(CUcontext);
  CUresult (*cuModuleLoadData)(CUmodule*, const void*);
  CUresult (*cuModuleGetFunction)(CUfunction*, CUmodule, const char*);
  CUresult (*cuLaunchKernel)(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned,
                             unsigned, unsigned, cudaStream_t, void**, void**);
  CUresult (*cuGetErrorString)(CUresult, const char**);
  // cuBLAS (64-bit sizes)
  cublasStatus_t (*blasCreate)(cublasHandle_t*);
  cublasStatus_t (*blasDestroy)(cublasHandle_t);
  cublasStatus_t (*blasSetStream)(cublasHandle_t, cudaStream_t);
  cublasStatus_t (*blasGetVersion)(cublasHandle_t, int*);
  cublasStatus_t (*GemmEx)(cublasHandle_t, int, int, int64_t, int64_t, int64_t, const void*,
                           const void*, int, int64_t, const void*, int, int64_t, const void*,
                           void*, int, int64_t, int, int);
  cublasStatus_t (*GemmStridedBatchedEx)(cublasHandle_t, int, int, int64_t, int64_t, int64_t,
                                         const void*, const void*, int, int64_t, long long,
                                         const void*, int, int64_t, long long, const void*,
                                         void*, int, int64_t, long long, int64_t, int, int);
  cublasStatus_t (*Ssyrk)(cublasHandle_t, int, int, int64_t, int64_t, const float*, const float*,
                          int64_t, const float*, float*, int64_t);
  cublasStatus_t (*Strsm)(cublasHandle_t, int, int, int, int, int64_t, int64_t, const float*,
                          const float*, int64_t, float*, int64_t);
  cublasStatus_t (*Dtrsm)(cublasHandle_t, int, int, int, int, int64_t, int64_t, const double*,
                          const double*, int64_t, double*, int64_t);
  cublasStatus_t (*Sgeam)(cublasHandle_t, int, int, int64_t, int64_t, const float*,
                          const float*, int64_t, const float*, const float*, int64_t, float*,
                          int64_t);
  cublasStatus_t (*Dgeam)(cublasHandle_t, int, int, int64_t, int64_t, const double*,
                          const double*, int64_t, const double*, const double*, int64_t,
                          double*, int64_t);
  // cuBLASLt (GEMM with the bias added in the epilogue)
  cublasStatus_t (*LtCreate)(cublasLtHandle_t*);
  cublasStatus_t (*LtDestroy)(cublasLtHandle_t);
  cublasStatus_t (*LtMatmulDescCreate)(cublasLtMatmulDesc_t*, int, int);
  cublasStatus_t (*LtMatmulDescDestroy)(cublasLtMatmulDesc_t);
  cublasStatus_t (*LtMatmulDescSetAttribute)(cublasLtMatmulDesc_t, int, const void*, size_t);
  cublasStatus_t (*LtMatrixLayoutCreate)(cublasLtMatrixLayout_t*, int, uint64_t, uint64_t, int64_t);
  cublasStatus_t (*LtMatrixLayoutDestroy)(cublasLtMatrixLayout_t);
  cublasStatus_t (*LtMatmul)(cublasLtHandle_t, cublasLtMatmulDesc_t, const void*, const void*,
                             cublasLtMatrixLayout_t, const void*, cublasLtMatrixLayout_t,
                             const void*, const void*, cublasLtMatrixLayout_t, void*,
                             cublasLtMatrixLayout_t, const void*, void*, size_t, cudaStream_t);
  // cuSOLVER dense, generic 64-bit API
  cusolverStatus_t (*solverCreate)(cusolverDnHandle_t*);
  cusolverStatus_t (*solverDestroy)(cusolverDnHandle_t);
  cusolverStatus_t (*solverSetStream)(cusolverDnHandle_t, cudaStream_t);
  cusolverStatus_t (*CreateParams)(cusolverDnParams_t*);
  cusolverStatus_t (*DestroyParams)(cusolverDnParams_t);
  cusolverStatus_t (*Xpotrf_bufferSize)(cusolverDnHandle_t, cusolverDnParams_t, int, int64_t,
                                        int, const void*, int64_t, int, size_t*, size_t*);
  cusolverStatus_t (*Xpotrf)(cusolverDnHandle_t, cusolverDnParams_t, int, int64_t, int, void*,
                             int64_t, int, void*, size_t, void*, size_t, int*);
  cusolverStatus_t (*Xsyevd_bufferSize)(cusolverDnHandle_t, cusolverDnParams_t, int, int,
                                        int64_t, int, const void*, int64_t, int, const void*,
                                        int, size_t*, size_t*);
  cusolverStatus_t (*Xsyevd)(cusolverDnHandle_t, cusolverDnParams_t, int, int, int64_t, int,
                             void*, int64_t, int, void*, int, void*, size_t, void*, size_t,
                             int*);
  cusolverStatus_t (*Xgesvd_bufferSize)(cusolverDnHandle_t, cusolverDnParams_t, signed char,
                                        signed char, int64_t, int64_t, int, const void*,
                                        int64_t, int, const void*, int, const void*, int64_t,
                                        int, const void*, int64_t, int, size_t*, size_t*);
  cusolverStatus_t (*Xgesvd)(cusolverDnHandle_t, cusolverDnParams_t, signed char, signed char,
                             int64_t, int64_t, int, void*, int64_t, int, void*, int, void*,
                             int64_t, int, void*, int64_t, int, void*, size_t, void*, size_t,
                             int*);
  cusolverStatus_t (*Xgeqrf_bufferSize)(cusolverDnHandle_t, cusolverDnParams_t, int64_t,
                                        int64_t, int, const void*, int64_t, int, const void*,
                                        int, size_t*, size_t*);
  cusolverStatus_t (*Xgeqrf)(cusolverDnHandle_t, cusolverDnParams_t, int64_t, int64_t, int,
                             void*, int64_t, int, void*, int, void*, size_t, void*, size_t,
                             int*);
  // cuSOLVER 32-bit API: Q^T B after geqrf (the generic API has no ormqr)
  cusolverStatus_t (*Sormqr_bufferSize)(cusolverDnHandle_t, int, int, int, int, int,
                                        const float*, int, const float*, const float*, int,
                                        int*);
  cusolverStatus_t (*Sormqr)(cusolverDnHandle_t, int, int, int, int, int, const float*, int,
                             const float*, float*, int, float*, int, int*);
  cusolverStatus_t (*Dormqr_bufferSize)(cusolverDnHandle_t, int, int, int, int, int,
                                        const double*, int, const double*, const double*, int,
                                        int*);
  cusolverStatus_t (*Dormqr)(cusolverDnHandle_t, int, int, int, int, int, const double*, int,
                             const double*, double*, int, double*, int, int*);
  // NVRTC
  nvrtcResult (*nvrtcCreateProgram)(nvrtcProgram*, const char*, const char*, int,
                                    const char* const*, const char* const*);
  nvrtcResult (*nvrtcCompileProgram)(nvrtcProgram, int, const char* const*);
  nvrtcResult (*nvrtcGetCUBINSize)(nvrtcProgram, size_t*);
  nvrtcResult (*nvrtcGetCUBIN)(nvrtcProgram, char*);
  nvrtcResult (*nvrtcGetProgramLogSize)(nvrtcProgram, size_t*);
  nvrtcResult (*nvrtcGetProgramLog)(nvrtcProgram, char*);
  nvrtcResult (*nvrtcDestroyProgram)(nvrtcProgram*);
  nvrtcResult (*nvrtcVersion)(int*, int*);
};

// What loading found: the libraries by path, or what is missing and why.
struct LoadReport {
  bool ok = false;
  std::vector<std::string> loaded;  // "libcublas.so.13 (/usr/local/cuda/...)"
  std::string missing;              // empty when ok: the libraries not found and where we looked
};

// Loads the libraries once per process; null with `report.missing` filled when they are absent.
const Api* api(LoadReport* report = nullptr);

}  // namespace embmap::cuda
