#include "cuda/device.h"

#include <cstdlib>
#include <memory>
#include <vector>

#include "cuda/kernels_source.h"  // generated from kernels.cu by CMake: kKernelsSource

namespace embmap::cuda {

const char* precisionName(Precision p) {
  switch (p) {
    case Precision::F32: return "float32";
    case Precision::TF32: return "tf32";
    case Precision::TF32x3: return "3xtf32";
    case Precision::BF16: return "bf16";
  }
  return "?";
}

// ---- buffers

template <typename T>
Buffer<T>::Buffer(Device& d, int64_t count) : d_(&d), n_(count) {
  if (count <= 0) return;
  const size_t bytes = size_t(count) * sizeof(T);
  const std::string what = "cuda: out of device memory allocating " +
                           std::to_string((bytes + (1 << 20) - 1) >> 20) + " MiB";
  if (d.limitBytes && d.heldBytes + bytes > d.limitBytes)
    throw Error(what + " (" + std::to_string(d.heldBytes >> 20) + " MiB held of the " +
                std::to_string(d.limitBytes >> 20) + " MiB EMBMAP_CUDA_MEMORY_LIMIT allows)");
  void* p = nullptr;
  const cudaError_t e = d.a.Malloc(&p, bytes);
  if (e != 0) {
    d.a.GetLastError();  // allocation failures are not sticky: clear and report
    size_t freeB = 0, total = 0;
    d.a.MemGetInfo(&freeB, &total);
    throw Error(what + " (" + std::to_string(freeB >> 20) + " MiB free of " +
                std::to_string(total >> 20) + " MiB): " + d.a.GetErrorString(e));
  }
  p_ = static_cast<T*>(p);
  d.heldBytes += bytes;
}

template <typename T>
Buffer<T>::~Buffer() {
  if (!p_) return;
  d_->a.Free(p_);
  d_->heldBytes -= size_t(n_) * sizeof(T);
}

template class Buffer<float>;
template class Buffer<double>;
template class Buffer<int>;
template class Buffer<unsigned long long>;
template class Buffer<char>;
template class Buffer<unsigned short>;

Pinned::Pinned(Device& d, size_t bytes) : d_(d) {
  d.check(d.a.MallocHost(&p_, bytes), "cudaMallocHost (pinned staging buffer)");
}
Pinned::~Pinned() {
  if (p_) d_.a.FreeHost(p_);
}

Event::Event(Device& d) : d_(d) {
  d.check(d.a.EventCreateWithFlags(&e_, kEventDisableTiming), "cudaEventCreateWithFlags");
}
Event::~Event() {
  if (e_) d_.a.EventDestroy(e_);
}

// ---- errors

void Device::check(cudaError_t e, const char* what) {
  if (e == 0) return;
  a.GetLastError();
  throw Error(std::string("cuda: ") + what + " failed: " + a.GetErrorString(e) + " (error " +
              std::to_string(e) + ")");
}

namespace {

// "cuda: <call> failed: CUBLAS_STATUS_INVALID_VALUE" (the number when the name is unknown).
[[noreturn]] void statusError(const char* what, const char* prefix, int status,
                              const std::unordered_map<int, const char*>& names) {
  auto it = names.find(status);
  throw Error(std::string("cuda: ") + what + " failed: " + prefix +
              (it == names.end() ? std::to_string(status) : it->second));
}

}  // namespace

void Device::checkBlas(cublasStatus_t s, const char* what) {
  static const std::unordered_map<int, const char*> names = {
      {1, "NOT_INITIALIZED"}, {3, "ALLOC_FAILED"},     {7, "INVALID_VALUE"},
      {8, "ARCH_MISMATCH"},   {11, "MAPPING_ERROR"},   {13, "EXECUTION_FAILED"},
      {14, "INTERNAL_ERROR"}, {15, "NOT_SUPPORTED"},   {16, "LICENSE_ERROR"}};
  if (s != 0) statusError(what, "CUBLAS_STATUS_", s, names);
}

void Device::checkSolver(cusolverStatus_t s, const char* what) {
  static const std::unordered_map<int, const char*> names = {
      {1, "NOT_INITIALIZED"}, {2, "ALLOC_FAILED"},   {3, "INVALID_VALUE"},
      {4, "ARCH_MISMATCH"},   {5, "MAPPING_ERROR"},  {6, "EXECUTION_FAILED"},
      {7, "INTERNAL_ERROR"},  {8, "MATRIX_TYPE_NOT_SUPPORTED"}, {9, "NOT_SUPPORTED"}};
  if (s != 0) statusError(what, "CUSOLVER_STATUS_", s, names);
}

void Device::checkDriver(CUresult r, const char* what) {
  if (r == 0) return;
  const char* msg = nullptr;
  a.cuGetErrorString(r, &msg);
  throw Error(std::string("cuda: ") + what + " failed: " + (msg ? msg : "unknown error") +
              " (CUresult " + std::to_string(r) + ")");
}

void Device::sync() { check(a.StreamSynchronize(stream_), "cudaStreamSynchronize"); }

size_t Device::freeBytes() {
  size_t f = 0, t = 0;
  check(a.MemGetInfo(&f, &t), "cudaMemGetInfo");
  return f;
}

void Device::upload(void* dst, const void* src, size_t bytes) {
  if (!bytes) return;
  check(a.MemcpyAsync(dst, src, bytes, kMemcpyHostToDevice, stream_), "cudaMemcpyAsync (to device)");
  sync();  // the source is caller memory that may change once we return
}

void Device::download(void* dst, const void* src, size_t bytes) {
  if (!bytes) return;
  check(a.MemcpyAsync(dst, src, bytes, kMemcpyDeviceToHost, stream_), "cudaMemcpyAsync (to host)");
  sync();
}

unsigned Device::gridFor(int64_t n) const {
  const int64_t blocks = (n + 255) / 256;
  const int64_t cap = int64_t(info_.multiprocessors) * 16;  // grid-stride loops cover the rest
  return unsigned(std::max<int64_t>(1, std::min(blocks, cap)));
}

CUfunction Device::function(const char* name) {
  auto it = functions_.find(name);
  if (it != functions_.end()) return it->second;
  CUfunction f = nullptr;
  checkDriver(a.cuModuleGetFunction(&f, module_, name), name);
  functions_.emplace(name, f);
  return f;
}

std::unique_lock<std::mutex> Device::lock() {
  std::unique_lock<std::mutex> l(mu_);
  check(a.SetDevice(info_.ordinal), "cudaSetDevice");
  checkDriver(a.cuCtxSetCurrent(ctx_), "cuCtxSetCurrent");
  return l;
}

// ---- set-up

Device::Device(const Api& api) : a(api) {}

Device::~Device() {
  if (ctx_) a.cuCtxSetCurrent(ctx_);
  if (lt_) a.LtDestroy(lt_);
  if (blas_) a.blasDestroy(blas_);
  if (params_) a.DestroyParams(params_);
  if (solver_) a.solverDestroy(solver_);
  if (ltWorkspace_) a.Free(ltWorkspace_);
  for (cudaStream_t s : {stream_, copy_})
    if (s) a.StreamDestroy(s);
}

void Device::init(int ordinal) {
  info_.ordinal = ordinal;
  if (const char* mib = std::getenv("EMBMAP_CUDA_MEMORY_LIMIT"))
    limitBytes = size_t(std::strtoull(mib, nullptr, 10)) << 20;
  check(a.SetDevice(ordinal), "cudaSetDevice");
  CUdevice dev = 0;
  checkDriver(a.cuInit(0), "cuInit");
  checkDriver(a.cuDeviceGet(&dev, ordinal), "cuDeviceGet");
  checkDriver(a.cuDevicePrimaryCtxRetain(&ctx_, dev), "cuDevicePrimaryCtxRetain");
  checkDriver(a.cuCtxSetCurrent(ctx_), "cuCtxSetCurrent");
  char name[256] = {};
  checkDriver(a.cuDeviceGetName(name, sizeof(name) - 1, dev), "cuDeviceGetName");
  info_.name = name;
  check(a.DeviceGetAttribute(&info_.ccMajor, kAttrCCMajor, ordinal), "cudaDeviceGetAttribute");
  check(a.DeviceGetAttribute(&info_.ccMinor, kAttrCCMinor, ordinal), "cudaDeviceGetAttribute");
  check(a.DeviceGetAttribute(&info_.multiprocessors, kAttrMultiProcessorCount, ordinal),
        "cudaDeviceGetAttribute");
  size_t freeB = 0;
  check(a.MemGetInfo(&freeB, &info_.totalBytes), "cudaMemGetInfo");
  a.DriverGetVersion(&info_.driverVersion);
  a.RuntimeGetVersion(&info_.runtimeVersion);
  a.nvrtcVersion(&info_.nvrtcMajor, &info_.nvrtcMinor);

  check(a.StreamCreateWithFlags(&stream_, kStreamNonBlocking), "cudaStreamCreateWithFlags");
  check(a.StreamCreateWithFlags(&copy_, kStreamNonBlocking), "cudaStreamCreateWithFlags");
  checkBlas(a.blasCreate(&blas_), "cublasCreate");
  checkBlas(a.blasSetStream(blas_, stream_), "cublasSetStream");
  a.blasGetVersion(blas_, &info_.blasVersion);
  checkBlas(a.LtCreate(&lt_), "cublasLtCreate");
  check(a.Malloc(&ltWorkspace_, kLtWorkspaceBytes), "cudaMalloc (cuBLASLt workspace)");
  checkSolver(a.solverCreate(&solver_), "cusolverDnCreate");
  checkSolver(a.solverSetStream(solver_, stream_), "cusolverDnSetStream");
  checkSolver(a.CreateParams(&params_), "cusolverDnCreateParams");

  // Kernels: NVRTC compiles them for this GPU's architecture, once per process.
  nvrtcProgram prog = nullptr;
  if (a.nvrtcCreateProgram(&prog, kKernelsSource, "embmap_kernels.cu", 0, nullptr, nullptr) != 0)
    throw Error("cuda: nvrtcCreateProgram failed");
  const std::string arch = "--gpu-architecture=sm_" + std::to_string(info_.ccMajor) +
                           std::to_string(info_.ccMinor);
  const char* opts[] = {arch.c_str(), "--std=c++17"};
  const nvrtcResult rc = a.nvrtcCompileProgram(prog, 2, opts);
  if (rc != 0) {
    size_t n = 0;
    a.nvrtcGetProgramLogSize(prog, &n);
    std::string log(n, '\0');
    a.nvrtcGetProgramLog(prog, log.data());
    a.nvrtcDestroyProgram(&prog);
    throw Error("cuda: NVRTC could not compile the kernels for sm_" +
                std::to_string(info_.ccMajor) + std::to_string(info_.ccMinor) + ": " + log);
  }
  size_t n = 0;
  a.nvrtcGetCUBINSize(prog, &n);
  std::vector<char> cubin(n);
  a.nvrtcGetCUBIN(prog, cubin.data());
  a.nvrtcDestroyProgram(&prog);
  checkDriver(a.cuModuleLoadData(&module_, cubin.data()), "cuModuleLoadData (embmap kernels)");
  info_.libraries.clear();
}

Device* Device::get(std::string* whyNot) {
  struct Slot {
    std::unique_ptr<Device> device;
    std::string why;
  };
  static Slot slot = [] {
    Slot s;
    LoadReport report;
    const Api* api = cuda::api(&report);
    if (!api) {
      s.why = report.missing;
      return s;
    }
    int count = 0;
    const cudaError_t e = api->GetDeviceCount(&count);
    if (e != 0 || count == 0) {
      s.why = e != 0 ? std::string("no usable GPU: ") + api->GetErrorString(e)
                     : std::string("no GPU found");
      return s;
    }
    int ordinal = 0;
    if (const char* env = std::getenv("EMBMAP_CUDA_DEVICE")) ordinal = std::atoi(env);
    if (ordinal < 0 || ordinal >= count) {
      s.why = "EMBMAP_CUDA_DEVICE=" + std::to_string(ordinal) + " but " + std::to_string(count) +
              " GPU(s) found";
      return s;
    }
    auto d = std::unique_ptr<Device>(new Device(*api));
    try {
      d->init(ordinal);
    } catch (const std::exception& ex) {
      s.why = ex.what();
      return s;
    }
    for (const auto& l : report.loaded)
      d->info_.libraries += (d->info_.libraries.empty() ? "" : ", ") + l;
    s.device = std::move(d);
    return s;
  }();
  if (whyNot) *whyNot = slot.why;
  return slot.device.get();
}

}  // namespace embmap::cuda
