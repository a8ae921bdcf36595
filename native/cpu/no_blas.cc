// Built when CMake found no BLIS/LAPACK: the portable backend serves every operation.
#include "engine/backend.h"

namespace embmap {
std::unique_ptr<Backend> makeBlasBackend() { return nullptr; }
}  // namespace embmap
