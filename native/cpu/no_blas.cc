// Built with EMBMAP_BLAS=OFF: the portable backend serves every operation.
#include "engine/backend.h"

namespace embmap {
std::unique_ptr<Backend> makeBlasBackend(std::string* whyNot) {
  *whyNot = "this build has no cpu-blas backend (EMBMAP_BLAS=OFF)";
  return nullptr;
}
}  // namespace embmap
