#include "napi/dispatch.h"

#include "engine/threads.h"

#include <exception>
#include <new>

namespace embmap {
namespace {

int callThreads = 0;  // only touched on the JS thread

class OpWorker final : public Napi::AsyncWorker {
 public:
  OpWorker(Napi::Env env, const std::vector<Napi::Value>& keep, Work work)
      : Napi::AsyncWorker(env, "embmap"), deferred_(Napi::Promise::Deferred::New(env)),
        work_(std::move(work)) {
    for (const auto& v : keep)
      if (v.IsObject()) refs_.push_back(Napi::Persistent(v.As<Napi::Object>()));
  }
  Napi::Promise promise() { return deferred_.Promise(); }

 protected:
  void Execute() override {
    try {
      result_ = work_();
    } catch (const std::bad_alloc&) {
      SetError("out of memory");
    } catch (const std::exception& e) {
      SetError(e.what());
    }
  }
  void OnOK() override { deferred_.Resolve(Napi::Number::New(Env(), result_)); }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  Work work_;
  std::vector<Napi::ObjectReference> refs_;
  double result_ = 0;
};

}  // namespace

void setCallThreads(int cap) { callThreads = cap; }

Napi::Value dispatch(Napi::Env env, bool async, const std::vector<Napi::Value>& keepAlive,
                     Work work) {
  if (callThreads > 0) {
    work = [cap = callThreads, w = std::move(work)]() {
      ThreadCap scoped(cap);
      return w();
    };
  }
  if (!async) {
    try {
      return Napi::Number::New(env, work());
    } catch (const std::bad_alloc&) {
      throw Napi::Error::New(env, "out of memory");
    } catch (const Napi::Error&) {
      throw;
    } catch (const std::exception& e) {
      throw Napi::Error::New(env, e.what());
    }
  }
  auto* w = new OpWorker(env, keepAlive, std::move(work));
  Napi::Promise p = w->promise();
  w->Queue();
  return p;
}

}  // namespace embmap
