// A scenario, run: the composition of the engine's threads, the embedded local hub, every
// device of the fleet (sim/device's coroutines over sim/backends' sessions), and the back end
// that writes desired state, invokes methods and reads twins at each phase's rates. It prints a
// live progress line, and returns what happened — operation counts and latencies, devices
// connected, desired writes and how many converged, the engine's own lag — for the summary.
//
// `twinfleet run` calls it; integration tests call it in-process on small scenarios.
#pragma once

#include <twinfleet/engine/runtime.hpp>
#include <twinfleet/metrics/histogram.hpp>
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
#include <vector>

namespace twinfleet::engine {

// One second of the run (the timeline of summary.json and report.html): connected devices at
// its end, and each operation's count, errors and percentiles within that second alone.
struct timeline_point {
  double t_s = 0;
  std::uint64_t connected = 0;
  struct interval {
    std::uint64_t count = 0;
    std::uint64_t errors = 0;
    double p50_ms = 0;
    double p99_ms = 0;
  };
  std::map<std::string, interval> ops;
};

struct run_options {
  std::size_t threads = 0;                          // device threads; 0: the cores
  // Devices wake for what they do on their own on this grid of the steady clock, so that a
  // thread wakes once per step for all the devices due in it (device::wake_on_grid_on_this_thread);
  // 0: exact times.
  std::chrono::nanoseconds wake_grid = std::chrono::milliseconds(1);
  std::optional<std::chrono::nanoseconds> duration;  // overrides the phases' total
  std::chrono::milliseconds progress_every{1000};   // the live line; 0: none (the timeline still samples each second)
  std::function<void(std::string_view)> console;    // notices; stdout when empty
  std::function<void(std::string_view)> progress;   // the live line; `console` when empty
  // After the last phase the back end stops and the run waits up to this long for the last
  // desired writes to converge before the devices disconnect (not after a stop).
  std::chrono::nanoseconds settle = std::chrono::seconds(5);
  // sync.converged_within_deadline counts writes that converged within this.
  std::chrono::nanoseconds convergence_deadline = std::chrono::seconds(5);
  // After the devices disconnect, read every twin and shadow back for the sync checker.
  bool audit = true;
  // A worker process's part of the fleet (`twinfleet run --workers N` starts N processes, each
  // with --shard i/N): the devices whose fleet index is i modulo N, at their places on the
  // whole fleet's ramp, and 1/N of the back end's rates. The default is the whole fleet.
  std::size_t shard_index = 0;
  std::size_t shard_count = 1;
  // Each second's sample with the live tally of desired writes and convergence (a worker
  // process sends them to its parent for the combined live line).
  std::function<void(const timeline_point&, std::uint64_t writes, std::uint64_t converged)> on_sample;
  // The Prometheus endpoint, "127.0.0.1:9464"; empty: none. When it cannot listen the run
  // goes on without it (a notice), unless required.
  std::string metrics_listen;
  bool metrics_listen_required = false;
  // Set by a signal handler (Ctrl-C): the run ends early, devices disconnect, the result is
  // still complete for what ran.
  std::shared_ptr<std::atomic<bool>> stop;
  // Set after `stop` (a second Ctrl-C): skip the bounded waits for in-flight work and
  // disconnects; the result holds what was measured until then.
  std::shared_ptr<std::atomic<bool>> hurry;
};

// One operation's tally. Latencies in milliseconds, each from the operation's intended start.
struct operation_stats {
  std::uint64_t count = 0;
  std::uint64_t errors = 0;
  double p50_ms = 0;
  double p90_ms = 0;
  double p99_ms = 0;
  double max_ms = 0;
  double mean_ms = 0;
  metrics::histogram latency;  // ns, of the successful ones
};

// Devices of one backend and profile.
struct group_summary {
  std::string backend;
  std::string profile;
  std::uint64_t planned = 0;
  std::uint64_t connected_at_end = 0;
};

struct run_result {
  std::string scenario;
  std::uint64_t seed = 0;
  std::string target;  // local, hub, azure, aws
  std::chrono::system_clock::time_point started_at;
  double duration_s = 0;
  bool interrupted = false;
  std::uint64_t devices_planned = 0;
  std::uint64_t devices_connected_peak = 0;
  std::uint64_t connect_failures = 0;
  std::vector<group_summary> by_group;
  // connect, twin_get, reported_patch, telemetry, desired_write, desired_propagation,
  // convergence, method, twin_read, shadow_update, delta_delivery, …
  std::map<std::string, operation_stats> operations;
  std::uint64_t desired_writes = 0;
  std::uint64_t converged = 0;  // writes whose version the device applied and acknowledged
  double convergence_ratio = 1;
  double deadline_s = 5;
  std::uint64_t converged_within_deadline = 0;
  std::uint64_t stale_notifications_dropped = 0;
  std::uint64_t anomalies = 0;  // every kind
  // summary.json's "sync": the checker's verdict (docs/SYNC-CHECK.md) plus "audited".
  boost::json::object sync;
  std::size_t threads = 0;
  std::chrono::nanoseconds wake_grid{0};  // run_options::wake_grid
  lag_summary lag;
  metrics::histogram lag_histogram;  // ns
  std::uint64_t rss_bytes_peak = 0;
  std::vector<timeline_point> timeline;
  // The Prometheus endpoint, still serving the final values (the anomalies judged at the end
  // included) for as long as this is held; null when the run had none.
  std::shared_ptr<void> metrics_endpoint;
};

// Runs `s` to its end (or `options.duration`, or a stop). Errors: the target is not supported
// yet, the hub cannot start, or the fleet does not fit the open-file limit (the message
// explains the ways out).
[[nodiscard]] twin::result<run_result> run_scenario(const scenario::scenario& s, const run_options& options);

// The live line: elapsed and phase, connected/planned, operations per second by kind (counts
// of `p` over `seconds`) with the main p99s, errors, convergence and the engine's lag.
[[nodiscard]] std::string format_progress_line(const timeline_point& p, std::string_view phase, std::size_t planned,
                                               double seconds, std::uint64_t writes, std::uint64_t converged,
                                               double lag_p99_ms);

// The end-of-run summary for the console, from summary.json (summary_json(), or the merge of
// worker processes' summaries): a table of operations, the sync checker's verdict, the engine.
[[nodiscard]] std::string format_summary(const boost::json::object& summary);

// summary.json, schema 1 (docs/REPORTS.md): schema, scenario, seed, target, started_at,
// duration_s, interrupted, devices{planned, connected_peak, connect_failures, by_group[]},
// operations.<name>{count, errors, latency_ms{p50, p90, p99, max, mean}, histogram},
// sync{desired_writes, converged, convergence_ratio, deadline_s, converged_within_deadline,
// anomalies, examples, observed}, engine{threads, lag_ms, lag_histogram, rss_bytes_peak,
// workers}, timeline[]. Thresholds are added by the reporters.
[[nodiscard]] boost::json::object summary_json(const run_result& r);

}  // namespace twinfleet::engine
