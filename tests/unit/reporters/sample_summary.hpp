// A hand-built summary.json for the reporter tests, with figures whose answers are known:
// latencies recorded into real sim/metrics histograms, counts chosen so every aggregate has an
// exact expected value.
#pragma once

#include <twinfleet/metrics/histogram.hpp>
#include <twinfleet/metrics/json.hpp>
#include <twinfleet/scenario/threshold.hpp>

#include <boost/json.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <string>

namespace twinfleet::test {

inline boost::json::object latency_ms(const metrics::histogram& h) {
  auto ms = [](double ns) { return ns / 1e6; };
  return {{"p50", ms(static_cast<double>(h.value_at_quantile(0.5)))},
          {"p90", ms(static_cast<double>(h.value_at_quantile(0.9)))},
          {"p99", ms(static_cast<double>(h.value_at_quantile(0.99)))},
          {"max", ms(static_cast<double>(h.max_ns()))},
          {"mean", ms(h.mean_ns())}};
}

inline boost::json::object operation(const metrics::histogram& h, std::uint64_t errors) {
  return {{"count", h.count()}, {"errors", errors}, {"latency_ms", latency_ms(h)}, {"histogram", metrics::to_json(h)}};
}

// reported_patch: 1000 samples 0.1 ms, 0.2 ms … 100 ms (p50 ≈ 50 ms, p99 ≈ 99 ms), 5 errors.
inline metrics::histogram reported_patch_latencies() {
  metrics::histogram h;
  for (int i = 1; i <= 1000; ++i) h.record(std::chrono::microseconds(100 * i));
  return h;
}

// connect: 100 samples of exactly 5 ms.
inline metrics::histogram connect_latencies() {
  metrics::histogram h;
  h.record_n(5'000'000, 100);
  return h;
}

// convergence: 480 writes converged at 10 ms … 4.8 s, 12 more at 6 s (492 of 500 writes).
inline metrics::histogram convergence_latencies() {
  metrics::histogram h;
  for (int i = 1; i <= 480; ++i) h.record(std::chrono::milliseconds(10 * i));
  h.record_n(6'000'000'000ULL, 12);
  return h;
}

// Ten seconds, 200 devices (2 failed to connect), every section of the contract filled.
inline boost::json::object sample_summary() {
  namespace json = boost::json;
  json::object ops;
  ops["reported_patch"] = operation(reported_patch_latencies(), 5);
  ops["connect"] = operation(connect_latencies(), 0);
  ops["convergence"] = operation(convergence_latencies(), 0);
  json::array timeline;
  for (int t = 1; t <= 10; ++t) {
    timeline.push_back(json::object{
        {"t_s", t},
        {"connected", std::min(t * 40, 198)},
        {"ops", json::object{{"reported_patch", json::object{{"count", 100}, {"errors", t == 3 ? 5 : 0}, {"p50_ms", 40 + t}, {"p99_ms", 90 + t}}},
                             {"connect", json::object{{"count", 20}, {"errors", 0}, {"p50_ms", 5}, {"p99_ms", 5}}}}}});
  }
  return json::object{
      {"schema", 1},
      {"scenario", "unit"},
      {"seed", 42},
      {"target", "local"},
      {"started_at", "2026-11-29T12:00:00Z"},
      {"duration_s", 10.0},
      {"interrupted", false},
      {"devices", json::object{{"planned", 200},
                               {"connected_peak", 198},
                               {"connect_failures", 2},
                               {"by_group", json::array{json::object{{"backend", "azure"}, {"profile", "lightbulb"}, {"planned", 200}, {"connected_peak", 198}}}}}},
      {"operations", std::move(ops)},
      {"sync", json::object{{"desired_writes", 500},
                            {"converged", 492},
                            {"convergence_ratio", 0.984},
                            {"deadline_s", 5},
                            {"converged_within_deadline", 480},
                            {"anomalies", json::object{{"lost_update", 0}, {"stale_apply", 3}}},
                            {"examples", json::object{{"stale_apply", json::array{json::object{{"device", "bulb-00007"}, {"versions", json::array{12, 13}}, {"at_s", 3.2}, {"detail", "applied 12 after 13"}}}}}},
                            {"observed", json::object{{"duplicate_deliveries", 5}}}}},
      {"engine", json::object{{"threads", 2},
                              {"lag_ms", json::object{{"p50", 0.06}, {"p99", 65.5}, {"max", 173.1}}},
                              {"rss_bytes_peak", 185000000},
                              {"workers", 1}}},
      {"timeline", std::move(timeline)}};
}

// Parses one condition the way the scenario loader does; a typo in a test fails loudly.
inline scenario::threshold condition(std::string_view metric, std::string_view text) {
  std::string error;
  auto t = scenario::parse_threshold(metric, text, error);
  INFO(error);
  REQUIRE(t.has_value());
  return *t;
}

}  // namespace twinfleet::test
