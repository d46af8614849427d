// Evaluating a scenario's thresholds (parsed at load time by sim/scenario) against a run's
// summary.json, and saying the verdicts: into the summary, on the console, to CI (junit.hpp).
//
// What each metric reads (docs/REPORTS.md, "Thresholds", has the full table):
// - latency metrics (connect, reported_patch, convergence, engine_lag, …): percentiles, avg,
//   min and max from the operation's histogram when the summary carries one, else from its
//   latency_ms figures; count and value are the operation count; rate is count / duration_s;
//   ratio is the operation's error ratio (errors / count), except
// - convergence ratio within D: the desired writes converged within D / sync.desired_writes
//   (sync.converged_within_deadline when D is sync.deadline_s, else the convergence histogram's
//   count at or below D);
// - errors: all operations' errors (value, count, rate, ratio = errors / operations), the
//   derived timings desired_propagation, convergence and delta_delivery not counted as operations;
// - anomalies: the sum of sync.anomalies; anomalies.<kind>: that kind;
// - sync.<field>, devices.<field>: that number of the summary.
// A metric the summary does not hold fails its threshold with a message saying so; it never
// passes by default and never throws.
#pragma once

#include <twinfleet/scenario/threshold.hpp>

#include <boost/json/object.hpp>

#include <optional>
#include <string>
#include <vector>

namespace twinfleet::reporters {

struct threshold_result {
  std::string name;  // the metric: "reported_patch", "anomalies.lost_update"
  std::string expr;  // the condition as written, without the metric: "p99 < 50ms"
  // What was observed, in `unit`: milliseconds for latencies, events per second for rates,
  // otherwise a plain number. Nothing when the summary does not hold the metric.
  std::optional<double> value;
  std::string unit;  // "ms", "/s" or ""
  // The value as shown, with its unit and enough digits to tell it from the limit ("0.9985",
  // "61.2 ms"); "" when there is no value.
  std::string value_text;
  bool ok = false;
  // One sentence for people: "reported_patch p99 = 61.2 ms, limit < 50 ms (over by 11.2 ms)",
  // or why it could not be evaluated ("no reported_patch operations were recorded").
  std::string message;
  // The short form for a console line: "over by 11.2 ms", "under by 0.0012", the reason it
  // could not be evaluated, or "" when it held.
  std::string detail;
};

// Evaluates one threshold / every threshold, in order, against `summary`.
[[nodiscard]] threshold_result evaluate_threshold(const scenario::threshold& t, const boost::json::object& summary);
[[nodiscard]] std::vector<threshold_result> evaluate_thresholds(const std::vector<scenario::threshold>& thresholds,
                                                                const boost::json::object& summary);

// True when every result holds (also when there are none).
[[nodiscard]] bool all_passed(const std::vector<threshold_result>& results) noexcept;

// Stores the results as summary["thresholds"]: [{name, expr, value (null when not observed),
// unit, ok, message, detail}], replacing what was there.
void store_threshold_results(boost::json::object& summary, const std::vector<threshold_result>& results);

// Reads summary["thresholds"] back (missing fields default; no thresholds → empty), so the
// JUnit and HTML reports can be rebuilt from a summary.json alone.
[[nodiscard]] std::vector<threshold_result> threshold_results_from(const boost::json::object& summary);

// "✓ reported_patch p99 < 50ms (12.3 ms)" or
// "✗ reported_patch p99 < 50ms (61.2 ms, over by 11.2 ms)" /
// "✗ reported_patch p99 < 50ms (no reported_patch operations were recorded)".
[[nodiscard]] std::string console_line(const threshold_result& r);

// The console block: "thresholds:" then one indented line each, then "all N thresholds held"
// or "K of N thresholds failed"; empty when there are none.
[[nodiscard]] std::string console_report(const std::vector<threshold_result>& results);

}  // namespace twinfleet::reporters
