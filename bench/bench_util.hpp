// A tiny benchmark harness: medians of repeated samples and ratios against a baseline measured
// in the same run. No timed assertions anywhere: benchmarks report, tests assert.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <string>
#include <vector>

namespace twinfleet::bench {

// Keeps the optimiser from deleting work whose result is otherwise unused.
template <class T>
inline void keep(const T& value) {
  asm volatile("" : : "g"(&value) : "memory");
}

// CPU time of this process (all its threads), in seconds.
inline double process_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

// The median of samples; NaN values (a figure that could not be taken) are left out, NaN when
// nothing else is left, 0 for no samples. An even count gives the mean of the middle two.
inline double median(std::vector<double> v) {
  if (v.empty()) return 0;
  v.erase(std::remove_if(v.begin(), v.end(), [](double x) { return std::isnan(x); }), v.end());
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

struct sample_set {
  std::string name;
  double median_ns = 0;
  double min_ns = 0;
  double max_ns = 0;
};

// Runs `op` `per_sample` times for each of `samples` samples (after one warm-up sample) and
// returns the median, fastest and slowest nanoseconds per operation.
template <class Op>
sample_set measure(std::string name, Op&& op, int per_sample = 2000, int samples = 9) {
  using clock = std::chrono::steady_clock;
  std::vector<double> ns;
  for (int s = -1; s < samples; ++s) {
    const auto start = clock::now();
    for (int i = 0; i < per_sample; ++i) op();
    const auto elapsed = std::chrono::duration<double, std::nano>(clock::now() - start).count();
    if (s >= 0) ns.push_back(elapsed / per_sample);
  }
  std::sort(ns.begin(), ns.end());
  return {std::move(name), ns[ns.size() / 2], ns.front(), ns.back()};
}

// Prints one table: each row's median, spread and its ratio to the first row (the baseline).
inline void report(const std::string& title, const std::vector<sample_set>& rows) {
  std::printf("%s\n", title.c_str());
  std::printf("  %-44s %12s %12s %18s %9s\n", "operation", "median ns", "ops/s", "min..max ns", "x base");
  const double base = rows.empty() ? 1 : rows.front().median_ns;
  for (const auto& r : rows) {
    char spread[40];
    std::snprintf(spread, sizeof spread, "%.0f..%.0f", r.min_ns, r.max_ns);
    std::printf("  %-44s %12.0f %12.0f %18s %9.2f\n", r.name.c_str(), r.median_ns, 1e9 / r.median_ns, spread,
                r.median_ns / base);
  }
}

}  // namespace twinfleet::bench
