#include "engine/registry.h"

namespace embmap {
namespace {

struct Registry {
  std::unique_ptr<Backend> blas = makeBlasBackend();
  std::unique_ptr<Backend> portable = makePortableBackend();
};

Registry& registry() {
  static Registry r;  // thread-safe lazy init; backends live for the process
  return r;
}

}  // namespace

Backend* findBackend(const std::string& name) {
  Registry& r = registry();
  if (name == "cpu-blas") return r.blas.get();
  if (name == "portable") return r.portable.get();
  return nullptr;
}

std::vector<std::string> backendNames() {
  std::vector<std::string> names;
  if (registry().blas) names.push_back("cpu-blas");
  names.push_back("portable");
  return names;
}

}  // namespace embmap
