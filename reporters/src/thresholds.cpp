#include <twinfleet/reporters/thresholds.hpp>

#include "format.hpp"
#include "histogram.hpp"

#include <boost/json.hpp>

#include <fmt/core.h>

#include <cmath>

namespace twinfleet::reporters {

namespace json = boost::json;
namespace sc = twinfleet::scenario;

namespace {

// The operations a latency metric reads. Threshold names are the scenario's vocabulary; the
// summary's operation names are the engine's (per dialect): a desired write is an Azure twin
// PATCH or an AWS shadow update, a desired apply is the propagation to the device.
std::vector<std::string> operations_of(const std::string& metric, const json::object* ops) {
  if (metric == "desired_write") return {"desired_write", "shadow_update"};
  if (metric == "desired_apply") {
    if (ops && ops->contains("desired_apply")) return {"desired_apply"};
    return {"desired_propagation"};
  }
  return {metric};
}

// One latency metric's figures, from one operation or several added together.
struct latency_figures {
  bool found = false;           // the summary had at least one of the operations
  double count = 0;
  double errors = 0;
  std::optional<metrics::histogram> histogram;  // when every part carried one
  json::object latency_ms;      // p50/p90/p99/max/mean/min as written (several: the bounds)
  std::string error;            // a histogram that did not decode
};

latency_figures latency_of(const std::string& metric, const json::object& summary) {
  latency_figures f;
  if (metric == "engine_lag") {
    const auto* engine = detail::object_at(summary, "engine");
    if (!engine) return f;
    const auto* lag = detail::object_at(*engine, "lag_ms");
    const auto* hist = engine->if_contains("lag_histogram");
    if (!lag && !hist) return f;
    f.found = true;
    if (lag) f.latency_ms = *lag;
    auto d = detail::decode_histogram(hist, "engine.lag_histogram");
    f.error = d.error;
    f.histogram = std::move(d.histogram);
    if (f.histogram) f.count = static_cast<double>(f.histogram->count());
    return f;
  }
  const auto* ops = detail::object_at(summary, "operations");
  bool all_histograms = true;
  std::size_t parts = 0;
  for (const auto& name : operations_of(metric, ops)) {
    const auto* op = ops ? detail::object_at(*ops, name) : nullptr;
    if (!op) continue;
    ++parts;
    f.found = true;
    const double count = detail::number_at(*op, "count").value_or(0);
    f.count += count;
    f.errors += detail::number_at(*op, "errors").value_or(0);
    auto d = detail::decode_histogram(op->if_contains("histogram"), "operations." + name + ".histogram");
    if (!d.error.empty()) f.error = d.error;
    if (d.histogram && all_histograms) {
      if (f.histogram) {
        f.histogram->add(*d.histogram);
      } else {
        f.histogram = std::move(d.histogram);
      }
    } else {
      all_histograms = false;
      f.histogram.reset();
    }
    if (const auto* l = detail::object_at(*op, "latency_ms")) {
      for (const auto& [k, v] : *l) {
        const auto x = detail::as_number(&v);
        if (!x || count == 0) continue;
        const auto* prev = f.latency_ms.if_contains(k);
        if (!prev || parts == 1) {
          f.latency_ms[k] = *x;
          continue;
        }
        // Without histograms several operations only bound their union: its quantiles and
        // max lie at or below the largest part's, its min at or above the smallest.
        const double p = detail::as_number(prev).value_or(*x);
        f.latency_ms[k] = k == "min" ? std::min(p, *x) : std::max(p, *x);
      }
    }
  }
  // A weighted mean is exact whatever the parts.
  if (parts > 1 && !f.histogram) f.latency_ms.erase("mean");
  return f;
}

std::string percentile_key(double p) { return "p" + detail::format_number(p, 6); }

std::string aggregate_label(const sc::threshold& t) {
  switch (t.aggregate) {
    case sc::threshold_aggregate::value:
      return "";
    case sc::threshold_aggregate::percentile:
      return percentile_key(t.percentile);
    case sc::threshold_aggregate::avg:
      return "avg";
    case sc::threshold_aggregate::min:
      return "min";
    case sc::threshold_aggregate::max:
      return "max";
    case sc::threshold_aggregate::count:
      return "count";
    case sc::threshold_aggregate::rate:
      return "rate";
    case sc::threshold_aggregate::ratio:
      return "ratio";
  }
  return "";
}

// The condition without a leading metric name ("anomalies.lost_update == 0" → "== 0").
std::string expr_of(const sc::threshold& t) {
  std::string_view text = t.text;
  if (text.starts_with(t.metric)) {
    const auto rest = text.substr(t.metric.size());
    if (rest.empty() || rest.front() == ' ' || rest.front() == '\t' || rest.front() == '<' || rest.front() == '>' ||
        rest.front() == '=' || rest.front() == '!') {
      text = rest;
      while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
    }
  }
  return std::string(text);
}

// What was observed, in the threshold's bound unit (seconds for durations), or why not.
struct observation {
  std::optional<double> value;
  std::string missing;
};

observation missing(std::string why) { return observation{std::nullopt, std::move(why)}; }

observation rate_of(double n, const json::object& summary) {
  const auto d = detail::number_at(summary, "duration_s");
  if (!d || *d <= 0) return missing("the summary has no positive duration_s to make a rate");
  return observation{n / *d, {}};
}

observation observe_latency(const sc::threshold& t, const json::object& summary) {
  const auto f = latency_of(t.metric, summary);
  const std::string what = t.metric == "engine_lag" ? "engine lag samples" : t.metric + " operations";
  if (!f.error.empty()) return missing(f.error);
  if (!f.found) return missing(fmt::format("no {} were recorded", what));

  switch (t.aggregate) {
    case sc::threshold_aggregate::value:
    case sc::threshold_aggregate::count:
      if (t.metric == "engine_lag" && !f.histogram) return missing("the summary has no engine.lag_histogram to count lag samples");
      return observation{f.count, {}};
    case sc::threshold_aggregate::rate:
      return rate_of(f.count, summary);
    case sc::threshold_aggregate::ratio: {
      if (t.metric == "convergence" && t.within) {
        const double within_s = std::chrono::duration<double>(*t.within).count();
        const auto writes = detail::number_at(summary, "sync.desired_writes");
        if (!writes) return missing("the summary has no sync.desired_writes");
        if (*writes <= 0) return missing("no desired writes were made, so nothing could converge");
        const auto deadline = detail::number_at(summary, "sync.deadline_s");
        const auto within_deadline = detail::number_at(summary, "sync.converged_within_deadline");
        if (deadline && within_deadline && std::fabs(*deadline - within_s) < 1e-9) {
          return observation{*within_deadline / *writes, {}};
        }
        if (f.histogram) {
          const auto ns = static_cast<std::uint64_t>(std::llround(within_s * 1e9));
          return observation{static_cast<double>(f.histogram->count_at_or_below(ns)) / *writes, {}};
        }
        return missing(fmt::format("the summary has neither a convergence histogram nor sync.converged_within_deadline for a {}s deadline",
                                   detail::format_number(within_s)));
      }
      if (f.count <= 0) return missing(fmt::format("no {} were recorded", what));
      return observation{f.errors / f.count, {}};
    }
    case sc::threshold_aggregate::percentile:
    case sc::threshold_aggregate::avg:
    case sc::threshold_aggregate::min:
    case sc::threshold_aggregate::max:
      break;
  }
  // engine.lag_ms carries no count: its figures stand alone.
  const bool uncounted = t.metric == "engine_lag" && !f.histogram;
  if (!uncounted && f.count <= 0 && !(f.histogram && f.histogram->count() > 0)) return missing(fmt::format("no {} were recorded", what));
  if (f.histogram && f.histogram->count() > 0) {
    const auto& h = *f.histogram;
    double ns = 0;
    switch (t.aggregate) {
      case sc::threshold_aggregate::percentile:
        ns = static_cast<double>(h.value_at_quantile(t.percentile / 100.0));
        break;
      case sc::threshold_aggregate::avg:
        ns = h.mean_ns();
        break;
      case sc::threshold_aggregate::min:
        ns = static_cast<double>(h.min_ns());
        break;
      default:
        ns = static_cast<double>(h.max_ns());
        break;
    }
    return observation{ns / 1e9, {}};
  }
  std::string key;
  switch (t.aggregate) {
    case sc::threshold_aggregate::percentile:
      key = percentile_key(t.percentile);
      break;
    case sc::threshold_aggregate::avg:
      key = "mean";
      break;
    case sc::threshold_aggregate::min:
      key = "min";
      break;
    default:
      key = "max";
      break;
  }
  if (t.aggregate == sc::threshold_aggregate::percentile && t.percentile == 100) key = "max";
  if (const auto* v = f.latency_ms.if_contains(key)) {
    if (const auto ms = detail::as_number(v)) return observation{*ms / 1000.0, {}};
  }
  return missing(fmt::format("the summary has no histogram for {} and no {} in its latency_ms", t.metric, key));
}

observation observe_count(const sc::threshold& t, const json::object& summary) {
  std::optional<double> n;
  if (t.metric == "errors") {
    const auto* ops = detail::object_at(summary, "operations");
    if (!ops || ops->empty()) return missing("no operations were recorded");
    double errors = 0;
    double count = 0;
    for (const auto& [name, op] : *ops) {
      // Derived timings (a write seen arriving, acknowledged) are not requests of their own.
      if (!op.is_object() || name == "desired_propagation" || name == "convergence" || name == "delta_delivery") continue;
      errors += detail::number_at(op.get_object(), "errors").value_or(0);
      count += detail::number_at(op.get_object(), "count").value_or(0);
    }
    if (t.aggregate == sc::threshold_aggregate::ratio) {
      if (count <= 0) return missing("no operations were recorded");
      return observation{errors / count, {}};
    }
    n = errors;
  } else if (t.metric == "anomalies") {
    const auto* a = detail::object_at(summary, "sync.anomalies");
    if (!a) return missing("the summary has no sync.anomalies (the sync checker's counts)");
    double sum = 0;
    for (const auto& [kind, v] : *a) sum += detail::as_number(&v).value_or(0);
    n = sum;
  } else if (t.metric.starts_with("anomalies.")) {
    const auto kind = t.metric.substr(std::string_view("anomalies.").size());
    const auto* a = detail::object_at(summary, "sync.anomalies");
    if (!a) return missing("the summary has no sync.anomalies (the sync checker's counts)");
    n = detail::as_number(a->if_contains(kind));
    if (!n) {
      std::string kinds;
      for (const auto& [k, v] : *a) kinds += (kinds.empty() ? "" : ", ") + std::string(k);
      return missing(fmt::format("the sync checker recorded no '{}' count (it has: {})", kind, kinds.empty() ? "none" : kinds));
    }
  } else {
    const std::string path = t.metric == "disconnects" ? "devices.disconnects" : t.metric;
    n = detail::number_at(summary, path);
    if (!n) return missing(fmt::format("{} is not in the summary", path));
  }
  switch (t.aggregate) {
    case sc::threshold_aggregate::value:
    case sc::threshold_aggregate::count:
      return observation{*n, {}};
    case sc::threshold_aggregate::rate:
      return rate_of(*n, summary);
    case sc::threshold_aggregate::ratio:
      return missing(fmt::format("a ratio is not defined for {}; compare its value or rate", t.metric));
    default:
      return missing(fmt::format("{} is a count: percentiles, avg, min and max apply to latencies", t.metric));
  }
}

std::string unit_suffix(const std::string& unit) {
  if (unit == "ms") return " ms";
  return unit;  // "/s" sticks to the number, "" adds nothing
}

}  // namespace

threshold_result evaluate_threshold(const sc::threshold& t, const json::object& summary) {
  threshold_result r;
  r.name = t.metric;
  r.expr = expr_of(t);
  const bool latency_aggregate = t.unit == sc::threshold_unit::duration;
  r.unit = latency_aggregate ? "ms" : t.unit == sc::threshold_unit::rate ? "/s" : "";

  const auto obs = sc::is_latency_metric(t.metric) ? observe_latency(t, summary) : observe_count(t, summary);
  std::string label = t.metric;
  if (const auto agg = aggregate_label(t); !agg.empty()) label += " " + agg;
  if (t.within) label += " within " + detail::format_number(std::chrono::duration<double>(*t.within).count()) + "s";

  // Shown in the unit a person wrote: milliseconds for latencies.
  const double scale = latency_aggregate ? 1000.0 : 1.0;
  const double bound = t.bound * scale;
  const std::string bound_text = detail::format_number(bound, 6) + unit_suffix(r.unit);
  if (!obs.value) {
    r.ok = false;
    r.detail = obs.missing;
    r.message = fmt::format("{} {}: {}", t.metric, r.expr, obs.missing);
    return r;
  }
  const double observed = *obs.value * scale;
  r.value = observed;
  r.ok = t.holds(*obs.value);
  r.value_text = detail::format_distinct(observed, bound) + unit_suffix(r.unit);
  r.message = fmt::format("{} = {}, limit {} {}", label, r.value_text, sc::to_string(t.op), bound_text);
  if (!r.ok) {
    const double diff = std::fabs(observed - bound);
    const std::string by = detail::format_distinct(diff, 0) + unit_suffix(r.unit);
    if (t.op == sc::comparison::not_equal) {
      r.detail = "equal to the limit";
    } else if (observed > bound) {
      r.detail = "over by " + by;
    } else if (observed < bound) {
      r.detail = "under by " + by;
    } else {
      r.detail = "at the limit";
    }
    r.message += " (" + r.detail + ")";
  }
  return r;
}

std::vector<threshold_result> evaluate_thresholds(const std::vector<sc::threshold>& thresholds, const json::object& summary) {
  std::vector<threshold_result> out;
  out.reserve(thresholds.size());
  for (const auto& t : thresholds) out.push_back(evaluate_threshold(t, summary));
  return out;
}

bool all_passed(const std::vector<threshold_result>& results) noexcept {
  for (const auto& r : results) {
    if (!r.ok) return false;
  }
  return true;
}

void store_threshold_results(json::object& summary, const std::vector<threshold_result>& results) {
  json::array a;
  for (const auto& r : results) {
    json::object e{{"name", r.name}, {"expr", r.expr}};
    if (r.value) {
      e["value"] = *r.value;
    } else {
      e["value"] = nullptr;
    }
    e["unit"] = r.unit;
    e["ok"] = r.ok;
    e["message"] = r.message;
    e["detail"] = r.detail;
    a.push_back(std::move(e));
  }
  summary["thresholds"] = std::move(a);
}

std::vector<threshold_result> threshold_results_from(const json::object& summary) {
  std::vector<threshold_result> out;
  const auto* a = detail::array_at(summary, "thresholds");
  if (!a) return out;
  for (const auto& v : *a) {
    if (!v.is_object()) continue;
    const auto& o = v.get_object();
    threshold_result r;
    r.name = detail::string_at(o, "name");
    r.expr = detail::string_at(o, "expr");
    r.value = detail::number_at(o, "value");
    r.unit = detail::string_at(o, "unit");
    const auto* ok = o.if_contains("ok");
    r.ok = ok && ok->is_bool() && ok->get_bool();
    if (r.value) r.value_text = detail::format_number(*r.value) + unit_suffix(r.unit);
    r.message = detail::string_at(o, "message");
    r.detail = detail::string_at(o, "detail");
    if (r.message.empty()) r.message = r.name + " " + r.expr + (r.ok ? ": held" : ": failed");
    out.push_back(std::move(r));
  }
  return out;
}

std::string console_line(const threshold_result& r) {
  std::string inside;
  inside = r.value_text;
  if (!r.detail.empty()) inside += (inside.empty() ? "" : ", ") + r.detail;
  return fmt::format("{} {} {}{}", r.ok ? "\u2713" : "\u2717", r.name, r.expr, inside.empty() ? "" : " (" + inside + ")");
}

std::string console_report(const std::vector<threshold_result>& results) {
  if (results.empty()) return "";
  std::string out = "thresholds:\n";
  std::size_t failed = 0;
  for (const auto& r : results) {
    out += "  " + console_line(r) + "\n";
    if (!r.ok) ++failed;
  }
  if (failed == 0) {
    out += results.size() == 1 ? "the threshold held\n" : fmt::format("all {} thresholds held\n", results.size());
  } else {
    out += fmt::format("{} of {} threshold{} failed\n", failed, results.size(), results.size() == 1 ? "" : "s");
  }
  return out;
}

}  // namespace twinfleet::reporters
