#include "runtime/profile.h"

#include <cstdio>
#include <functional>
#include <map>
#include <mutex>

#include "runtime/verbose.h"

namespace voxtral {

namespace {

struct Entry {
  long calls = 0;
  double seconds = 0;
};

// Printed by its destructor at process exit, largest total first.
struct Table {
  std::mutex mutex;
  std::map<std::string, Entry> entries;
  ~Table() {
    if (entries.empty()) return;
    std::multimap<double, std::pair<std::string, Entry>, std::greater<double>> by_total;
    double all = 0;
    for (const auto& [key, e] : entries) {
      by_total.emplace(e.seconds, std::make_pair(key, e));
      all += e.seconds;
    }
    std::fprintf(stderr, "voxtral profile: %.3f s in Program::execute\n", all);
    std::fprintf(stderr, "  %10s %8s %10s  %s\n", "total_s", "calls", "ms_each", "method [first input]");
    for (const auto& [total, item] : by_total) {
      const auto& [key, e] = item;
      std::fprintf(stderr, "  %10.3f %8ld %10.3f  %s\n", total, e.calls, 1e3 * total / e.calls, key.c_str());
    }
  }
};

Table& table() {
  static Table t;
  return t;
}

}  // namespace

bool profiling() {
  static const bool on = [] {
    const bool enabled = env_flag("VOXTRAL_PROFILE");
    if (enabled) table();  // constructed before any caller's statics: printed after their use
    return enabled;
  }();
  return on;
}

void profile_add(const std::string& key, double seconds) {
  Table& t = table();
  std::lock_guard<std::mutex> lock(t.mutex);
  Entry& e = t.entries[key];
  e.calls += 1;
  e.seconds += seconds;
}

}  // namespace voxtral
