// The GPU the cuda backend runs on: libraries, handles, streams, the NVRTC-compiled kernels,
// RAII device/pinned buffers, and errors that name the failing call. One operation runs at a
// time (`lock()`): N-API work arrives from several libuv threads.
#pragma once
#include <atomic>
#include <cstdint>
#include <mutex>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <utility>

#include "cuda/api.h"

namespace embmap::cuda {

// A failed CUDA call. The backend stays usable after it (buffers are released while the
// exception unwinds), except after errors CUDA itself marks as sticky (e.g. an illegal address).
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Precision of float32 products (float64 data always runs in float64).
enum class Precision { F32, TF32, TF32x3, BF16 };
const char* precisionName(Precision p);

class Device;

template <typename T>
class Buffer {  // device memory, freed on scope exit
 public:
  Buffer() = default;
  Buffer(Device& d, int64_t count);
  ~Buffer();
  Buffer(Buffer&& o) noexcept : d_(o.d_), p_(std::exchange(o.p_, nullptr)), n_(o.n_) {}
  Buffer& operator=(Buffer&& o) noexcept {
    std::swap(d_, o.d_);
    std::swap(p_, o.p_);
    std::swap(n_, o.n_);
    return *this;
  }
  T* get() const { return p_; }
  int64_t size() const { return n_; }

 private:
  Device* d_ = nullptr;
  T* p_ = nullptr;
  int64_t n_ = 0;
};

class Pinned {  // page-locked host memory for overlapped copies
 public:
  Pinned(Device& d, size_t bytes);
  ~Pinned();
  Pinned(const Pinned&) = delete;
  Pinned& operator=(const Pinned&) = delete;
  void* get() const { return p_; }

 private:
  Device& d_;
  void* p_ = nullptr;
};

class Event {
 public:
  explicit Event(Device& d);
  ~Event();
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
  cudaEvent_t get() const { return e_; }

 private:
  Device& d_;
  cudaEvent_t e_ = nullptr;
};

struct DeviceInfo {
  std::string name;
  int ordinal = 0, ccMajor = 0, ccMinor = 0, multiprocessors = 0;
  size_t totalBytes = 0;
  int driverVersion = 0, runtimeVersion = 0, blasVersion = 0, nvrtcMajor = 0, nvrtcMinor = 0;
  std::string libraries;
};

class Device {
 public:
  // The process's GPU (EMBMAP_CUDA_DEVICE, default 0), set up on first use; null with the
  // reason when the libraries or a GPU are missing or the kernels fail to compile.
  static Device* get(std::string* whyNot = nullptr);
  // At exit, before the libraries unload: handles left for their own teardown crashed it.
  ~Device();

  const Api& a;
  const DeviceInfo& info() const { return info_; }
  std::unique_lock<std::mutex> lock();  // also makes the device current on this thread

  cudaStream_t stream() const { return stream_; }       // compute
  cudaStream_t copyStream() const { return copy_; }     // host-to-device staging
  cublasHandle_t blas() const { return blas_; }
  cublasLtHandle_t lt() const { return lt_; }
  void* ltWorkspace() const { return ltWorkspace_; }
  static constexpr size_t kLtWorkspaceBytes = size_t(32) << 20;
  cusolverDnHandle_t solver() const { return solver_; }
  cusolverDnParams_t params() const { return params_; }

  void check(cudaError_t e, const char* what);
  void checkBlas(cublasStatus_t s, const char* what);
  void checkSolver(cusolverStatus_t s, const char* what);
  void checkDriver(CUresult r, const char* what);
  void sync();  // waits for the compute stream; raises a pending error
  size_t freeBytes();

  // Launches kernel `name` over a 1-D grid-stride range of n items, or an explicit grid.
  template <typename... A>
  void run(const char* name, int64_t n, A... args) {
    launch(name, gridFor(n), 1, 256, 0, args...);
  }
  template <typename... A>
  void launch(const char* name, unsigned gx, unsigned gy, unsigned block, unsigned smem,
              A... args) {
    void* params[] = {static_cast<void*>(&args)...};
    checkDriver(a.cuLaunchKernel(function(name), gx, gy, 1, block, 1, 1, smem, stream_, params,
                                 nullptr),
                name);
  }

  // Device memory embmap may hold: EMBMAP_CUDA_MEMORY_LIMIT (MiB) caps it below the card's
  // (a GPU shared with other work); allocations past it fail like an exhausted card.
  size_t limitBytes = 0;  // 0: no cap
  std::atomic<size_t> heldBytes{0};

  void upload(void* dst, const void* src, size_t bytes);    // synchronous w.r.t. the host
  void download(void* dst, const void* src, size_t bytes);  // waits for the compute stream

 private:
  explicit Device(const Api& api);
  void init(int ordinal);
  CUfunction function(const char* name);
  unsigned gridFor(int64_t n) const;

  DeviceInfo info_;
  std::mutex mu_;
  CUcontext ctx_ = nullptr;
  CUmodule module_ = nullptr;
  std::unordered_map<std::string, CUfunction> functions_;
  cudaStream_t stream_ = nullptr, copy_ = nullptr;
  cublasHandle_t blas_ = nullptr;
  cublasLtHandle_t lt_ = nullptr;
  void* ltWorkspace_ = nullptr;
  cusolverDnHandle_t solver_ = nullptr;
  cusolverDnParams_t params_ = nullptr;
};

// cudaDataType of T.
template <typename T>
constexpr int dataType() {
  return sizeof(T) == 4 ? R_32F : R_64F;
}

// A kernel of kernels.cu by base name and element type ("zero_upper" -> "zero_upper_f32").
template <typename T>
std::string kernelName(const char* base) {
  return std::string(base) + (sizeof(T) == 4 ? "_f32" : "_f64");
}

// Elements a row-major rows x cols matrix with row stride ld spans in memory.
inline int64_t span(int64_t rows, int64_t cols, int64_t ld) {
  return rows > 0 ? (rows - 1) * ld + cols : 0;
}

template <typename T>
Buffer<T> toDevice(Device& d, const T* host, int64_t count) {
  Buffer<T> b(d, count);
  d.upload(b.get(), host, size_t(count) * sizeof(T));
  return b;
}

template <typename T>
void toHost(Device& d, T* host, const Buffer<T>& b, int64_t count) {
  d.download(host, b.get(), size_t(count) * sizeof(T));
}

}  // namespace embmap::cuda
