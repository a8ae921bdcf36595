// The backends this build and machine offer, created once, looked up by name.
#pragma once
#include <string>
#include <vector>

#include "engine/backend.h"

namespace embmap {

// Null when the name is unknown or not available here.
Backend* findBackend(const std::string& name);
// Available names, best first ("cuda", then "cpu-blas", then "portable").
std::vector<std::string> backendNames();
// Why "cuda" is not among them (empty when it is).
std::string cudaUnavailableReason();
// Why "cpu-blas" is not among them (empty when it is).
std::string blasUnavailableReason();

}  // namespace embmap
