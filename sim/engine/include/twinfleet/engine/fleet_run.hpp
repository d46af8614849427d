// A scenario, run: the composition of the engine's threads, the embedded local hub, every
// device of the fleet (sim/device's coroutines over sim/backends' sessions), and the back end
// that writes desired state, invokes methods and reads twins at each phase's rates. It prints a
// live progress line, and returns what happened — operation counts and latencies, devices
// connected, desired writes and how many converged, the engine's own lag — for the summary.
//
// `twinfleet run` calls it; integration tests call it in-process on small scenarios.
#pragma once

#include <twinfleet/engine/runtime.hpp>
#include <twinfleet/scenario/scenario.hpp>
#include <twinfleet/twin/error.hpp>

#include <boost/json/object.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace twinfleet::engine {

struct run_options {
  std::size_t threads = 0;                          // device threads; 0: the cores
  std::optional<std::chrono::nanoseconds> duration;  // overrides the phases' total
  std::chrono::milliseconds progress_every{1000};   // the live line; 0: none
  std::function<void(std::string_view)> console;    // progress and notices; stdout when empty
  // Set by a signal handler (Ctrl-C): the run ends early, devices disconnect, the result is
  // still complete for what ran.
  std::shared_ptr<std::atomic<bool>> stop;
};

// One operation's tally. Latencies in milliseconds, each from the operation's intended start.
struct operation_stats {
  std::uint64_t count = 0;
  std::uint64_t errors = 0;
  double p50_ms = 0;
  double p90_ms = 0;
  double p99_ms = 0;
  double max_ms = 0;
};

struct run_result {
  std::string scenario;
  std::uint64_t seed = 0;
  double duration_s = 0;
  bool interrupted = false;
  std::uint64_t devices_planned = 0;
  std::uint64_t devices_connected_peak = 0;
  std::uint64_t connect_failures = 0;
  // connect, twin_get, reported_patch, telemetry, desired_write, desired_propagation,
  // convergence, method, twin_read, shadow_update, delta_delivery, …
  std::map<std::string, operation_stats> operations;
  std::uint64_t desired_writes = 0;
  std::uint64_t converged = 0;  // writes whose version the device applied and acknowledged
  double convergence_ratio = 1;
  std::uint64_t stale_notifications_dropped = 0;
  std::size_t threads = 0;
  lag_summary lag;
  std::uint64_t rss_bytes_peak = 0;
};

// Runs `s` to its end (or `options.duration`, or a stop). Errors: the target is not supported
// yet, the hub cannot start, or the fleet does not fit the open-file limit (the message
// explains the ways out).
[[nodiscard]] twin::result<run_result> run_scenario(const scenario::scenario& s, const run_options& options);

// The end-of-run summary for the console: a table of operations, the sync line, the lag.
[[nodiscard]] std::string format_summary(const run_result& r);

// summary.json (docs/SCENARIOS.md, "summary.json"): scenario, seed, duration_s, interrupted,
// devices{planned, connected_peak, connect_failures}, operations.<name>{count, errors,
// latency_ms{p50, p90, p99, max}}, sync{desired_writes, converged, convergence_ratio,
// stale_notifications_dropped}, engine{threads, lag_ms{p50, p99, max}, rss_bytes_peak}.
[[nodiscard]] boost::json::object summary_json(const run_result& r);

}  // namespace twinfleet::engine
