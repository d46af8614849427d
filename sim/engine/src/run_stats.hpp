// What a run measures, recorded into a metrics::registry (sim/metrics): for each group of
// devices (backend × profile) and each operation, a latency histogram from the operation's
// intended start and ok/error counters; connected devices, connects, desired writes and their
// convergence, anomalies. Recording takes no lock (the registry's per-thread shards), so the
// device threads, the back end and the Prometheus endpoint share it freely.
//
// The series are the contract of docs/REPORTS.md and the dashboards:
//   twinfleet_operation_duration_seconds{backend,profile,operation}   histogram
//   twinfleet_operations_total{backend,profile,operation,outcome}      counter
//   twinfleet_devices_planned / _connected{backend,profile}            gauges
//   twinfleet_connects_total{backend,profile,outcome}                  counter
//   twinfleet_desired_writes_total / twinfleet_desired_converged_total{backend,profile}
//   twinfleet_sync_anomalies_total{backend,profile,outcome=<kind>}     counter
//   twinfleet_engine_lag_seconds, twinfleet_engine_threads, twinfleet_run_elapsed_seconds
//
// Internal to engine_run.
#pragma once

#include <twinfleet/engine/fleet_run.hpp>
#include <twinfleet/metrics/histogram.hpp>
#include <twinfleet/metrics/registry.hpp>
#include <twinfleet/scenario/plan.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace twinfleet::engine::detail {

enum class op : std::uint8_t {
  connect,
  subscribe,
  twin_get,
  reported_patch,
  telemetry,
  desired_write,
  shadow_update,
  desired_propagation,
  convergence,
  method,
  twin_read,
  shadow_read,
  delta_delivery,
};
inline constexpr std::size_t op_count = 13;
[[nodiscard]] std::string_view op_name(op o) noexcept;

// A group of devices: one backend and one profile.
struct device_group {
  std::string backend;  // "azure" | "aws"
  std::string profile;
  std::uint64_t planned = 0;
};

class run_stats {
 public:
  run_stats(metrics::registry& registry, const std::vector<scenario::device_spec>& fleet);

  // `device`: the index into the fleet. Errors count, and have no latency.
  void record(std::size_t device, op o, std::chrono::nanoseconds latency, bool ok);
  // The connected gauge of its group ±1; a connection up also counts a successful connect.
  void connection(std::size_t device, bool up);
  void connect_failed(std::size_t device);
  void desired_written(std::size_t device);
  void desired_converged(std::size_t device);
  void anomaly(std::size_t device, std::string_view kind);
  void lag(std::chrono::nanoseconds late);
  void elapsed(double seconds);

  [[nodiscard]] const std::vector<device_group>& groups() const noexcept { return groups_; }
  [[nodiscard]] std::size_t group_of(std::size_t device) const noexcept { return device_group_[device]; }
  [[nodiscard]] metrics::registry& registry() noexcept { return registry_; }

 private:
  struct group_handles {
    std::array<metrics::histogram_handle, op_count> latency;
    std::array<metrics::counter_handle, op_count> ok;
    std::array<metrics::counter_handle, op_count> errors;
    metrics::gauge_handle connected;
    metrics::counter_handle connects_ok, connects_failed, writes, converged;
  };
  metrics::registry& registry_;
  std::vector<device_group> groups_;
  std::vector<std::uint32_t> device_group_;
  std::vector<group_handles> handles_;
  metrics::histogram_handle lag_;
  metrics::gauge_handle elapsed_;
  std::mutex anomalies_m_;  // anomalies are rare: their series are registered when first seen
  std::map<std::pair<std::size_t, std::string>, metrics::counter_handle> anomalies_;
};

// Per operation over every group, from a registry snapshot.
struct op_totals {
  metrics::histogram latency;  // ns
  std::uint64_t ok = 0;
  std::uint64_t errors = 0;
};
// `backend` ("azure" or "aws"): only that backend's groups; empty: all.
[[nodiscard]] std::map<std::string, op_totals> totals_by_operation(const metrics::registry_snapshot& snap,
                                                                   std::string_view backend = {});
// The sum of a gauge or counter family over its series.
[[nodiscard]] double family_total(const metrics::registry_snapshot& snap, std::string_view name);

// Turns successive snapshots into per-interval points (counts and percentiles of that
// interval alone, from histogram differences).
class timeline_sampler {
 public:
  engine::timeline_point take(const metrics::registry_snapshot& snap, double t_s);

 private:
  std::map<std::string, op_totals> previous_;
};

}  // namespace twinfleet::engine::detail
