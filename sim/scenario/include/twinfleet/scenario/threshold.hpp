// Pass/fail thresholds, k6-style: parsed and checked at load time, evaluated by the reporting
// code after a run (not here).
//
//   thresholds:
//     reported_patch: p99 < 50ms
//     convergence: ratio >= 0.999 within 5s
//     anomalies.lost_update: == 0          # no aggregate: the metric's value (a count)
//     connect: [p50 < 20ms, p99 < 200ms]   # several conditions on one metric
//
// Grammar of one condition:   [aggregate] op value [within duration]
//   aggregate  p50 | p90 | p95 | p99 | p99.9 | p(N) with 0 < N <= 100 | avg | min | max |
//              count | rate | ratio | value
//   op         <  <=  >  >=  ==  !=
//   value      a number (0.999, 12), a percentage (99.9%), a duration (50ms) or a rate (100/s)
// A list item may also carry the metric itself: "anomalies.lost_update == 0".
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace twinfleet::scenario {

enum class threshold_aggregate : std::uint8_t { value, percentile, avg, min, max, count, rate, ratio };
enum class comparison : std::uint8_t { less, less_equal, greater, greater_equal, equal, not_equal };
// What the bound is: latencies compare durations, rates events per second, the rest numbers.
enum class threshold_unit : std::uint8_t { number, duration, rate };

struct threshold {
  std::string metric;  // "reported_patch", "anomalies.lost_update"
  threshold_aggregate aggregate = threshold_aggregate::value;
  double percentile = 0;  // 99 for p99, 99.9 for p99.9 (aggregate == percentile)
  comparison op = comparison::less;
  threshold_unit unit = threshold_unit::number;
  double bound = 0;  // the number; seconds for durations; events per second for rates
  std::optional<std::chrono::nanoseconds> within;  // convergence deadlines
  std::string text;  // the condition as written, for reports

  // True when `observed` (in the same unit as `bound`) meets the condition.
  [[nodiscard]] bool holds(double observed) const noexcept;
};

// The metrics thresholds may name. Latency metrics take percentiles and durations; the
// others counts, rates and ratios. `anomalies.*` are the sync checker's anomaly kinds.
// The reporting code may add metrics here as it learns to measure them.
[[nodiscard]] const std::vector<std::string>& known_threshold_metrics();
[[nodiscard]] bool is_latency_metric(std::string_view metric) noexcept;

// Parses one condition for `metric` ("" when the text names the metric first). Returns the
// threshold, or nullopt with `error` saying what is wrong and what was expected.
[[nodiscard]] std::optional<threshold> parse_threshold(std::string_view metric, std::string_view text, std::string& error);

[[nodiscard]] const char* to_string(comparison op) noexcept;

}  // namespace twinfleet::scenario
