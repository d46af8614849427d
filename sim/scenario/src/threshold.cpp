#include <twinfleet/scenario/threshold.hpp>

#include <twinfleet/config/diagnostics.hpp>
#include <twinfleet/config/units.hpp>

#include <algorithm>
#include <charconv>
#include <cmath>

namespace twinfleet::scenario {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  return s;
}

std::optional<double> number(std::string_view s) {
  double v = 0;
  const auto r = std::from_chars(s.data(), s.data() + s.size(), v);
  if (r.ec != std::errc{} || r.ptr != s.data() + s.size() || !std::isfinite(v)) return std::nullopt;
  return v;
}

// Splits "p99<50ms" or "p99 < 50ms" into tokens: words and operators.
std::vector<std::string> tokens(std::string_view s) {
  std::vector<std::string> out;
  std::size_t i = 0;
  while (i < s.size()) {
    if (s[i] == ' ' || s[i] == '\t') {
      ++i;
      continue;
    }
    if (s[i] == '<' || s[i] == '>' || s[i] == '=' || s[i] == '!') {
      std::size_t j = i + 1;
      if (j < s.size() && s[j] == '=') ++j;
      out.emplace_back(s.substr(i, j - i));
      i = j;
      continue;
    }
    std::size_t j = i;
    while (j < s.size() && s[j] != ' ' && s[j] != '\t' && s[j] != '<' && s[j] != '>' && s[j] != '=' && s[j] != '!') ++j;
    out.emplace_back(s.substr(i, j - i));
    i = j;
  }
  return out;
}

std::optional<comparison> parse_op(std::string_view s) {
  if (s == "<") return comparison::less;
  if (s == "<=") return comparison::less_equal;
  if (s == ">") return comparison::greater;
  if (s == ">=") return comparison::greater_equal;
  if (s == "==") return comparison::equal;
  if (s == "!=") return comparison::not_equal;
  return std::nullopt;
}

}  // namespace

const std::vector<std::string>& known_threshold_metrics() {
  static const std::vector<std::string> metrics = {
      "connect",          "subscribe",           "twin_get",           "reported_patch",
      "desired_write",    "desired_apply",       "method",             "telemetry",
      "convergence",      "errors",              "disconnects",        "engine_lag",
      // The sync checker's kinds (docs/SYNC-CHECK.md).
      "anomalies", "anomalies.lost_update", "anomalies.stale_apply", "anomalies.out_of_order", "anomalies.duplicate_apply",
      "anomalies.unreconciled_after_reconnect", "anomalies.reported_overwrite", "anomalies.divergence",
      // Plain numbers of summary.json that reporters/ reads as they are (docs/REPORTS.md).
      "devices.connected_peak", "devices.connect_failures", "sync.desired_writes", "sync.converged",
      "sync.convergence_ratio",
  };
  return metrics;
}

bool is_latency_metric(std::string_view m) noexcept {
  return m == "connect" || m == "subscribe" || m == "twin_get" || m == "reported_patch" || m == "desired_write" ||
         m == "desired_apply" || m == "method" || m == "telemetry" || m == "convergence" || m == "engine_lag";
}

const char* to_string(comparison op) noexcept {
  static constexpr const char* names[] = {"<", "<=", ">", ">=", "==", "!="};
  return names[static_cast<int>(op)];
}

bool threshold::holds(double observed) const noexcept {
  switch (op) {
    case comparison::less:
      return observed < bound;
    case comparison::less_equal:
      return observed <= bound;
    case comparison::greater:
      return observed > bound;
    case comparison::greater_equal:
      return observed >= bound;
    case comparison::equal:
      return observed == bound;
    case comparison::not_equal:
      return observed != bound;
  }
  return false;
}

std::optional<threshold> parse_threshold(std::string_view metric, std::string_view text, std::string& error) {
  threshold t;
  t.text = std::string(trim(text));
  auto toks = tokens(text);
  std::size_t i = 0;
  if (metric.empty()) {
    if (toks.empty() || parse_op(toks[0])) {
      error = "expected a metric name first, as in \"anomalies.lost_update == 0\"";
      return std::nullopt;
    }
    metric = toks[i++];
  }
  t.metric = std::string(metric);
  const auto& known = known_threshold_metrics();
  if (std::find(known.begin(), known.end(), t.metric) == known.end()) {
    error = "unknown metric '" + t.metric + "'";
    if (auto hint = config::closest_match(t.metric, known); !hint.empty()) error += " (did you mean '" + hint + "'?)";
    error += "; metrics: ";
    for (std::size_t k = 0; k < known.size(); ++k) error += (k ? ", " : "") + known[k];
    return std::nullopt;
  }
  const bool latency = is_latency_metric(t.metric);
  if (i < toks.size() && !parse_op(toks[i])) {
    const std::string& a = toks[i++];
    if (a.size() > 1 && a[0] == 'p') {
      std::string_view digits = a;
      digits.remove_prefix(1);
      if (digits.starts_with("(") && digits.ends_with(")")) digits = digits.substr(1, digits.size() - 2);
      const auto pct = number(digits);
      if (!pct || *pct <= 0 || *pct > 100) {
        error = "bad percentile '" + a + "': write p50, p99, p99.9 or p(N) with 0 < N <= 100";
        return std::nullopt;
      }
      t.aggregate = threshold_aggregate::percentile;
      t.percentile = *pct;
    } else if (a == "avg") {
      t.aggregate = threshold_aggregate::avg;
    } else if (a == "min") {
      t.aggregate = threshold_aggregate::min;
    } else if (a == "max") {
      t.aggregate = threshold_aggregate::max;
    } else if (a == "count" || a == "total") {
      t.aggregate = threshold_aggregate::count;
    } else if (a == "rate") {
      t.aggregate = threshold_aggregate::rate;
    } else if (a == "ratio") {
      t.aggregate = threshold_aggregate::ratio;
    } else if (a == "value") {
      t.aggregate = threshold_aggregate::value;
    } else {
      error = "unknown aggregate '" + a + "'; expected p50, p90, p95, p99, p99.9, p(N), avg, min, max, count, rate, ratio or value";
      return std::nullopt;
    }
  }
  if (i >= toks.size()) {
    error = "expected a comparison (<, <=, >, >=, ==, !=) and a value, as in \"p99 < 50ms\"";
    return std::nullopt;
  }
  const auto op = parse_op(toks[i]);
  if (!op) {
    error = "expected a comparison (<, <=, >, >=, ==, !=), got '" + toks[i] + "'";
    return std::nullopt;
  }
  t.op = *op;
  ++i;
  if (i >= toks.size()) {
    error = "expected a value after '" + std::string(to_string(t.op)) + "'";
    return std::nullopt;
  }
  const std::string& value = toks[i++];
  if (const auto n = number(value)) {
    t.unit = threshold_unit::number;
    t.bound = *n;
  } else if (const auto p = config::parse_percent(value)) {
    t.unit = threshold_unit::number;
    t.bound = *p;
  } else if (const auto r = config::parse_rate(value)) {
    t.unit = threshold_unit::rate;
    t.bound = *r;
  } else if (const auto d = config::parse_duration(value)) {
    t.unit = threshold_unit::duration;
    t.bound = std::chrono::duration<double>(*d).count();
  } else {
    error = "bad value '" + value + "': expected a number (0.999), a percentage (99.9%), a duration (50ms) or a rate (100/s)";
    return std::nullopt;
  }
  if (i < toks.size()) {
    if (toks[i] != "within" || i + 1 >= toks.size()) {
      error = "unexpected '" + toks[i] + "' after the value; only \"within <duration>\" may follow";
      return std::nullopt;
    }
    const auto d = config::parse_duration(toks[i + 1]);
    if (!d || d->count() <= 0) {
      error = "bad duration after 'within': '" + toks[i + 1] + "' (write e.g. 5s)";
      return std::nullopt;
    }
    t.within = *d;
    i += 2;
    if (i < toks.size()) {
      error = "unexpected '" + toks[i] + "' at the end";
      return std::nullopt;
    }
  }
  // Combinations that cannot mean anything.
  const bool time_aggregate = t.aggregate == threshold_aggregate::percentile || t.aggregate == threshold_aggregate::avg ||
                              t.aggregate == threshold_aggregate::min || t.aggregate == threshold_aggregate::max;
  if (time_aggregate && !latency) {
    error = "'" + t.metric + "' is not a latency: percentiles, avg, min and max apply to latency metrics only";
    return std::nullopt;
  }
  if (time_aggregate && t.unit != threshold_unit::duration) {
    error = "a latency bound needs a unit, as in " + value + "ms";
    return std::nullopt;
  }
  if (t.unit == threshold_unit::duration && !time_aggregate) {
    error = "a duration bound needs a latency aggregate (p99, avg, min, max) before the comparison";
    return std::nullopt;
  }
  if (t.aggregate == threshold_aggregate::rate && t.unit != threshold_unit::rate) {
    error = "a rate bound needs a unit of time, as in " + value + "/s";
    return std::nullopt;
  }
  if (t.unit == threshold_unit::rate && t.aggregate != threshold_aggregate::rate) {
    t.aggregate = threshold_aggregate::rate;
  }
  if (t.aggregate == threshold_aggregate::ratio && (t.bound < 0 || t.bound > 1)) {
    error = "a ratio lies in [0, 1] (or 0% to 100%), got " + value;
    return std::nullopt;
  }
  if (t.within && t.metric != "convergence") {
    error = "'within' applies to convergence only";
    return std::nullopt;
  }
  if (t.metric == "convergence" && t.aggregate == threshold_aggregate::ratio && !t.within) {
    error = "a convergence ratio needs a deadline, as in \"ratio >= 0.999 within 5s\"";
    return std::nullopt;
  }
  return t;
}

}  // namespace twinfleet::scenario
