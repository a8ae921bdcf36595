// A cap on the threads one operation may use, set for the duration of a call on the thread that
// runs it (the N-API layer sets it from Engine.withThreads). Small factorisations scale poorly
// across threads: a cross-fit runs two folds at once, each on half the threads, which fills the
// cores better than one fold on all of them, and degrades far less when the cores are shared.
#pragma once
#include <algorithm>

namespace embmap {

inline int& threadCapSlot() {
  static thread_local int cap = 0;  // 0: no cap
  return cap;
}

// The threads an operation of a backend set to `threads` may use now.
inline int capThreads(int threads) {
  const int c = threadCapSlot();
  return c > 0 ? std::min(c, threads) : threads;
}

class ThreadCap {
 public:
  explicit ThreadCap(int cap) : prev_(threadCapSlot()) { threadCapSlot() = cap; }
  ~ThreadCap() { threadCapSlot() = prev_; }
  ThreadCap(const ThreadCap&) = delete;
  ThreadCap& operator=(const ThreadCap&) = delete;

 private:
  int prev_;
};

}  // namespace embmap
