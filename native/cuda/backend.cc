// The "cuda" backend: the engine's primitives and fused operations on one NVIDIA GPU.
#include <atomic>
#include <memory>

#include "cuda/device.h"
#include "cuda/linalg.h"
#include "cuda/ops.h"
#include "engine/backend.h"

namespace embmap {
namespace {

std::string cudaVersion(int v) {  // 13000 -> "13.0"
  return std::to_string(v / 1000) + "." + std::to_string((v % 1000) / 10);
}

class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(cuda::Device& d) : d_(d), f32_(d, prec_), f64_(d, prec_), ops_(d, prec_) {}

  BackendInfo info() const override {
    const cuda::DeviceInfo& i = d_.info();
    BackendInfo b;
    b.name = "cuda";
    const int v = i.blasVersion;  // major*10000 + minor*100 + patch
    b.library = "cuBLAS " + std::to_string(v / 10000) + "." + std::to_string(v / 100 % 100) + "." +
                std::to_string(v % 100) + " + cuSOLVER + NVRTC " + std::to_string(i.nvrtcMajor) +
                "." + std::to_string(i.nvrtcMinor) + " [" + i.libraries + "]";
    b.kernel = i.name + " (sm_" + std::to_string(i.ccMajor) + std::to_string(i.ccMinor) + ", " +
               std::to_string(i.multiprocessors) + " SMs, " +
               std::to_string(i.totalBytes >> 30) + " GiB)";
    b.reason = "driver CUDA " + cudaVersion(i.driverVersion) + ", runtime " +
               cudaVersion(i.runtimeVersion) + ", GPU " + std::to_string(i.ordinal);
    b.threads = 1;
    b.precision = cuda::precisionName(prec_.load());
    return b;
  }
  void setThreads(int) override {}  // the GPU schedules its own work
  Linalg<float>& f32() override { return f32_; }
  Linalg<double>& f64() override { return f64_; }
  DeviceOps* device() override { return &ops_; }
  bool setPrecision(const std::string& mode) override {
    for (cuda::Precision p : {cuda::Precision::F32, cuda::Precision::TF32,
                              cuda::Precision::TF32x3, cuda::Precision::BF16})
      if (mode == cuda::precisionName(p)) {
        prec_.store(p);
        return true;
      }
    return false;
  }

 private:
  cuda::Device& d_;
  std::atomic<cuda::Precision> prec_{cuda::Precision::F32};
  cuda::CudaLinalg<float> f32_;
  cuda::CudaLinalg<double> f64_;
  cuda::CudaOps ops_;
};

}  // namespace

std::unique_ptr<Backend> makeCudaBackend(std::string* whyNot) {
  cuda::Device* d = cuda::Device::get(whyNot);
  if (!d) return nullptr;
  return std::make_unique<CudaBackend>(*d);
}

}  // namespace embmap
