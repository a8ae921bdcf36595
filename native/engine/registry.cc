#include "engine/registry.h"

#include <cstdlib>
#include <cstring>

namespace embmap {
namespace {

struct Registry {
  std::string blasWhy;
  std::unique_ptr<Backend> blas = makeBlasBackend(&blasWhy);
  std::unique_ptr<Backend> portable = makePortableBackend();
  std::string cudaWhy;
  std::unique_ptr<Backend> cuda = probeCuda(&cudaWhy);

  static std::unique_ptr<Backend> probeCuda(std::string* why) {
    const char* env = std::getenv("EMBMAP_CUDA");
    if (env && (!std::strcmp(env, "0") || !std::strcmp(env, "off"))) {
      *why = "disabled by EMBMAP_CUDA=" + std::string(env);
      return nullptr;
    }
    return makeCudaBackend(why);
  }
};

Registry& registry() {
  static Registry r;  // thread-safe lazy init; backends live for the process
  return r;
}

}  // namespace

Backend* findBackend(const std::string& name) {
  Registry& r = registry();
  if (name == "cuda") return r.cuda.get();
  if (name == "cpu-blas") return r.blas.get();
  if (name == "portable") return r.portable.get();
  return nullptr;
}

std::vector<std::string> backendNames() {
  std::vector<std::string> names;
  if (registry().cuda) names.push_back("cuda");
  if (registry().blas) names.push_back("cpu-blas");
  names.push_back("portable");
  return names;
}

std::string cudaUnavailableReason() { return registry().cudaWhy; }

std::string blasUnavailableReason() { return registry().blasWhy; }

}  // namespace embmap
