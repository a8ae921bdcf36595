// Minimal test assertions: CHECK(cond, msg...) records a failure and prints it (the first
// kMaxPrinted of them) with any streamable message parts; check::exitCode() ends main.
#pragma once
#include <cstdio>
#include <sstream>
#include <string>

namespace check {

constexpr int kMaxPrinted = 40;

inline int& failures() {
  static int count = 0;
  return count;
}

template <typename... Parts>
void fail(const char* file, int line, const char* expr, const Parts&... parts) {
  if (++failures() > kMaxPrinted) return;
  std::ostringstream msg;
  msg.precision(6);
  (msg << ... << parts);
  std::fprintf(stderr, "FAIL %s:%d: %s %s\n", file, line, expr, msg.str().c_str());
}

// Prints the summary; the process exit status.
inline int exitCode() {
  if (failures() == 0) {
    std::printf("all checks passed\n");
    return 0;
  }
  std::printf("%d check(s) failed\n", failures());
  return 1;
}

}  // namespace check

#define CHECK(cond, ...)                                                      \
  do {                                                                        \
    if (!(cond)) ::check::fail(__FILE__, __LINE__, #cond, ##__VA_ARGS__);     \
  } while (0)
