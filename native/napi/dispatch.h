// Runs an operation on the calling thread (tiny inputs: microseconds of overhead) or on the
// libuv thread pool (returns a Promise). The async path holds references to every JS array
// the work touches, so they stay alive until it is done.
#pragma once
#include <napi.h>

#include <functional>
#include <vector>

namespace embmap {

using Work = std::function<double()>;  // pure C++, never touches N-API; returns a scalar result

Napi::Value dispatch(Napi::Env env, bool async, const std::vector<Napi::Value>& keepAlive,
                     Work work);

// The thread cap (engine/threads.h) of the operations dispatched from now on, 0 for none: set
// on the JS thread around one call (Engine.withThreads), captured by dispatch for its work.
void setCallThreads(int cap);

}  // namespace embmap
