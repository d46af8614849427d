// A Prometheus histogram as a benchmark reads it from another process's /metrics text: the
// cumulative `_bucket{le=...}` counts, `_count` and `_sum` of one family, summed over the series
// whose labels match; the difference of two scrapes (the histogram of a window); and quantiles
// of it from the bucket counts alone.
//
// Public API (namespace twinfleet::bench):
//   struct prom_histogram { std::vector<prom_bucket> buckets; double count, sum; bool empty() const; };
//   prom_histogram parse_prom_histogram(std::string_view text, std::string_view family,
//                                       const std::vector<std::string>& must);
//   prom_histogram operator-(const prom_histogram& end, const prom_histogram& start);
//   double histogram_quantile(double q, const prom_histogram& h);   // as PromQL's, interpolated
//   double quantile_bucket_upper(double q, const prom_histogram& h); // le of the bucket holding it
//   double share_at_or_below(double le, const prom_histogram& h);    // of the count, at an edge
//   bool prom_histogram_self_test();                                 // asserts; fleet_bench --self-test
#pragma once

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace twinfleet::bench {

struct prom_bucket {
  double le = 0;     // upper bound (seconds for a `_seconds` family); +Inf for the last
  double count = 0;  // cumulative: observations ≤ le
};

struct prom_histogram {
  std::vector<prom_bucket> buckets;  // ascending le, the last one +Inf when the text had it
  double count = 0;
  double sum = 0;
  bool empty() const { return buckets.empty(); }
};

namespace detail {

// The value of label `name` in a series' label text `{a="x",le="0.5"}`, or nothing.
inline std::string_view prom_label(std::string_view labels, std::string_view name) {
  const std::string key = std::string(name) + "=\"";
  for (auto at = labels.find(key); at != std::string_view::npos; at = labels.find(key, at + 1)) {
    if (at != 0 && labels[at - 1] != '{' && labels[at - 1] != ',') continue;  // e.g. `xle="..."`
    const auto start = at + key.size();
    const auto end = labels.find('"', start);
    if (end == std::string_view::npos) return {};
    return labels.substr(start, end - start);
  }
  return {};
}

inline double prom_number(std::string_view text) {
  if (text == "+Inf" || text == "Inf") return std::numeric_limits<double>::infinity();
  if (text == "-Inf") return -std::numeric_limits<double>::infinity();
  return std::strtod(std::string(text).c_str(), nullptr);
}

}  // namespace detail

// Every series of `family` (a histogram) whose labels contain all of `must` (each as `k="v"`),
// summed: bucket by bucket (by `le`), `_count` and `_sum`. Empty when no series matched.
inline prom_histogram parse_prom_histogram(std::string_view text, std::string_view family,
                                           const std::vector<std::string>& must) {
  std::map<double, double> by_le;
  prom_histogram h;
  bool any = false;
  std::size_t pos = 0;
  while (pos < text.size()) {
    auto end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    const auto line = text.substr(pos, end - pos);
    pos = end + 1;
    if (line.empty() || line[0] == '#' || line.substr(0, family.size()) != family) continue;
    auto rest = line.substr(family.size());
    std::string_view suffix;
    for (std::string_view s : {"_bucket", "_count", "_sum"}) {
      if (rest.substr(0, s.size()) == s && rest.size() > s.size() && (rest[s.size()] == '{' || rest[s.size()] == ' ')) {
        suffix = s;
        break;
      }
    }
    if (suffix.empty()) continue;
    rest = rest.substr(suffix.size());
    std::string_view labels;
    if (rest[0] == '{') {
      const auto close = rest.find('}');
      if (close == std::string_view::npos) continue;
      labels = rest.substr(0, close + 1);
      rest = rest.substr(close + 1);
    }
    if (!std::all_of(must.begin(), must.end(), [&](const std::string& m) { return labels.find(m) != std::string_view::npos; })) continue;
    // The value is the first field after the labels (a timestamp may follow it).
    const auto first = rest.find_first_not_of(' ');
    if (first == std::string_view::npos) continue;
    rest = rest.substr(first);
    const double value = detail::prom_number(rest.substr(0, rest.find(' ')));
    any = true;
    if (suffix == "_bucket") {
      const auto le = detail::prom_label(labels, "le");
      if (!le.empty()) by_le[detail::prom_number(le)] += value;
    } else if (suffix == "_count") {
      h.count += value;
    } else {
      h.sum += value;
    }
  }
  if (!any) return {};
  for (const auto& [le, count] : by_le) h.buckets.push_back({le, count});
  return h;
}

// The histogram of what happened between two scrapes of the same process: bucket, count and sum
// differences. Buckets are matched by `le`; one missing from `start` counts as 0 there.
inline prom_histogram operator-(const prom_histogram& end, const prom_histogram& start) {
  prom_histogram d;
  d.count = end.count - start.count;
  d.sum = end.sum - start.sum;
  for (const auto& b : end.buckets) {
    double before = 0;
    for (const auto& s : start.buckets) {
      if (s.le == b.le) before = s.count;
    }
    d.buckets.push_back({b.le, b.count - before});
  }
  return d;
}

namespace detail {

// The bucket index holding quantile q (PromQL's search: the first bucket whose cumulative count
// reaches q × the +Inf count), with the buckets made monotonic first, as PromQL does (a scrape
// taken while other threads record may be a hair inconsistent). -1 when it is undefined: no
// buckets, no +Inf bucket, no observations, or q outside [0, 1].
inline int quantile_bucket(double q, std::vector<prom_bucket>& b) {
  if (b.size() < 2 || !std::isinf(b.back().le) || !(q >= 0 && q <= 1)) return -1;
  for (std::size_t i = 1; i < b.size(); ++i) b[i].count = std::max(b[i].count, b[i - 1].count);
  const double observations = b.back().count;
  if (!(observations > 0)) return -1;
  const double rank = q * observations;
  std::size_t i = 0;
  while (i + 1 < b.size() && b[i].count < rank) ++i;
  return static_cast<int>(i);
}

}  // namespace detail

// PromQL's histogram_quantile(q, h): linear interpolation inside the bucket that holds the rank
// q × count, from the previous bucket's `le` (0 for the first bucket) to this one's. If the rank
// falls in the +Inf bucket, the highest finite `le`. NaN when undefined (see quantile_bucket).
// The result is an estimate: it assumes observations spread evenly within their bucket.
inline double histogram_quantile(double q, const prom_histogram& h) {
  auto b = h.buckets;
  const int i = detail::quantile_bucket(q, b);
  if (i < 0) return std::numeric_limits<double>::quiet_NaN();
  const auto n = static_cast<std::size_t>(i);
  if (n == b.size() - 1) return b.size() >= 2 ? b[n - 1].le : std::numeric_limits<double>::quiet_NaN();
  if (n == 0 && b[0].le <= 0) return b[0].le;
  const double lower = n == 0 ? 0 : b[n - 1].le;
  const double below = n == 0 ? 0 : b[n - 1].count;
  const double in_bucket = b[n].count - below;
  if (!(in_bucket > 0)) return lower;  // q = 0 with an empty first bucket
  return lower + (b[n].le - lower) * ((q * b.back().count - below) / in_bucket);
}

// The upper bound `le` of the bucket holding quantile q: "at least q of the observations were
// ≤ this" is certain, unlike the interpolated figure. +Inf when the rank is in the +Inf bucket.
inline double quantile_bucket_upper(double q, const prom_histogram& h) {
  auto b = h.buckets;
  const int i = detail::quantile_bucket(q, b);
  return i < 0 ? std::numeric_limits<double>::quiet_NaN() : b[static_cast<std::size_t>(i)].le;
}

// The share of the observations at or below `le`, which must be one of the histogram's edges
// (exact: no interpolation); NaN when it is not an edge or nothing was observed. With a 20 ms
// edge, "p99 <= 20 ms" is exactly "share_at_or_below(0.02) >= 0.99".
inline double share_at_or_below(double le, const prom_histogram& h) {
  if (h.count <= 0) return std::numeric_limits<double>::quiet_NaN();
  for (const auto& b : h.buckets) {
    if (std::fabs(b.le - le) <= 1e-12 * std::max(1.0, std::fabs(le))) return std::min(1.0, b.count / h.count);
  }
  return std::numeric_limits<double>::quiet_NaN();
}

// Checks the parsing, the difference and both quantiles on hand-made text: prints each mismatch
// and returns false (and asserts, where NDEBUG is not defined; RelWithDebInfo defines it).
inline bool prom_histogram_self_test() {
  bool ok = true;
  auto check = [&](bool c, const char* what) {
    if (!c) std::fprintf(stderr, "prom_histogram self-test failed: %s\n", what);
    ok = ok && c;
    assert(c);
  };
  auto near = [](double a, double b) { return std::fabs(a - b) < 1e-9; };
  // Two series of the family with operation="reported_patch" (summed), one of another operation,
  // one of a family whose name starts the same (ignored), a timestamp after one value.
  const std::string start_text =
      "# HELP x_seconds Latency\n"
      "# TYPE x_seconds histogram\n"
      "x_seconds_bucket{backend=\"azure\",operation=\"reported_patch\",le=\"0.01\"} 10\n"
      "x_seconds_bucket{backend=\"azure\",operation=\"reported_patch\",le=\"0.025\"} 10\n"
      "x_seconds_bucket{backend=\"azure\",operation=\"reported_patch\",le=\"0.05\"} 10\n"
      "x_seconds_bucket{backend=\"azure\",operation=\"reported_patch\",le=\"+Inf\"} 10\n"
      "x_seconds_count{backend=\"azure\",operation=\"reported_patch\"} 10\n"
      "x_seconds_sum{backend=\"azure\",operation=\"reported_patch\"} 0.05\n"
      "x_seconds_bucket{backend=\"azure\",operation=\"twin_get\",le=\"0.01\"} 999\n"
      "x_seconds_bucket{backend=\"azure\",operation=\"twin_get\",le=\"+Inf\"} 999\n"
      "x_seconds_count{backend=\"azure\",operation=\"twin_get\"} 999\n"
      "x_seconds_extra_bucket{operation=\"reported_patch\",le=\"0.01\"} 777\n";
  const std::string end_text =
      "x_seconds_bucket{backend=\"azure\",operation=\"reported_patch\",le=\"0.01\"} 60\n"
      "x_seconds_bucket{backend=\"azure\",operation=\"reported_patch\",le=\"0.025\"} 100\n"
      "x_seconds_bucket{backend=\"azure\",operation=\"reported_patch\",le=\"0.05\"} 108\n"
      "x_seconds_bucket{backend=\"azure\",operation=\"reported_patch\",le=\"+Inf\"} 110 1700000000000\n"
      "x_seconds_count{backend=\"azure\",operation=\"reported_patch\"} 110\n"
      "x_seconds_sum{backend=\"azure\",operation=\"reported_patch\"} 1.05\n"
      "x_seconds_bucket{backend=\"aws\",operation=\"reported_patch\",le=\"0.01\"} 0\n"
      "x_seconds_bucket{backend=\"aws\",operation=\"reported_patch\",le=\"0.025\"} 0\n"
      "x_seconds_bucket{backend=\"aws\",operation=\"reported_patch\",le=\"0.05\"} 0\n"
      "x_seconds_bucket{backend=\"aws\",operation=\"reported_patch\",le=\"+Inf\"} 0\n"
      "x_seconds_count{backend=\"aws\",operation=\"reported_patch\"} 0\n"
      "x_seconds_sum{backend=\"aws\",operation=\"reported_patch\"} 0\n";
  const std::vector<std::string> must{"operation=\"reported_patch\""};
  const auto a = parse_prom_histogram(start_text, "x_seconds", must);
  const auto b = parse_prom_histogram(end_text, "x_seconds", must);
  check(a.buckets.size() == 4 && near(a.buckets[0].le, 0.01) && std::isinf(a.buckets[3].le), "bucket bounds parsed, +Inf last");
  check(near(a.buckets[0].count, 10) && near(a.count, 10) && near(a.sum, 0.05), "start counts (other operation/family ignored)");
  check(near(b.buckets[1].count, 100) && near(b.buckets[3].count, 110) && near(b.count, 110), "series summed, timestamp ignored");
  check(parse_prom_histogram(end_text, "y_seconds", must).empty(), "an absent family is empty");
  const auto w = b - a;  // the window: 50 in (0, 10 ms], 40 in (10, 25], 8 in (25, 50], 2 above
  check(near(w.count, 100) && near(w.sum, 1.0), "count and sum of the window");
  check(near(w.buckets[0].count, 50) && near(w.buckets[1].count, 90) && near(w.buckets[2].count, 98) && near(w.buckets[3].count, 100),
        "bucket differences");
  // p50: rank 50 reaches bucket 0 exactly: 0 + 0.01 × 50/50.
  check(near(histogram_quantile(0.5, w), 0.01), "p50 at a bucket edge");
  check(near(quantile_bucket_upper(0.5, w), 0.01), "p50 bucket");
  // p70: rank 70 is 20 of the 40 in (0.01, 0.025]: 0.01 + 0.015 × 0.5.
  check(near(histogram_quantile(0.7, w), 0.0175), "p70 interpolated");
  check(near(quantile_bucket_upper(0.7, w), 0.025), "p70 bucket");
  // p95: rank 95 is 5 of the 8 in (0.025, 0.05]: 0.025 + 0.025 × 5/8.
  check(near(histogram_quantile(0.95, w), 0.040625), "p95 interpolated");
  // p99: rank 99 is in the +Inf bucket: the highest finite bound.
  check(near(histogram_quantile(0.99, w), 0.05), "p99 in +Inf gives the last finite le");
  check(std::isinf(quantile_bucket_upper(0.99, w)), "p99 bucket is +Inf");
  check(near(histogram_quantile(0.25, w), 0.005), "p25 inside the first bucket from 0");
  check(near(share_at_or_below(0.025, w), 0.9) && near(share_at_or_below(0.01, w), 0.5), "share at an edge");
  check(std::isnan(share_at_or_below(0.02, w)), "share at a value that is not an edge: NaN");
  prom_histogram none = a - a;
  check(std::isnan(histogram_quantile(0.5, none)), "no observations: NaN");
  check(std::isnan(share_at_or_below(0.01, none)), "no observations: no share");
  check(std::isnan(histogram_quantile(0.5, prom_histogram{})), "no buckets: NaN");
  check(std::isnan(histogram_quantile(1.5, w)), "q outside [0, 1]: NaN");
  // A non-monotonic scrape (a bucket read a moment before the next) is made monotonic first.
  // Here (0.025, 0.05] holds 5 of 8, not 6: p50 (rank 4) = 0.025 + 0.025 × (4 − 3) / 5.
  prom_histogram skew{{{0.01, 3}, {0.025, 2}, {0.05, 8}, {std::numeric_limits<double>::infinity(), 8}}, 8, 0};
  check(near(histogram_quantile(0.5, skew), 0.03) && near(quantile_bucket_upper(0.5, skew), 0.05), "monotonic fix");
  // A label whose name ends in "le" is not `le`.
  check(detail::prom_label("{handle=\"7\",le=\"0.5\"}", "le") == "0.5", "le label, not handle");
  return ok;
}

}  // namespace twinfleet::bench
