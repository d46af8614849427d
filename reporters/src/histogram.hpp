// Internal: the summary's histogram JSON (sim/metrics' encoding, latencies in ns) decoded into
// metrics::histogram, and the latency figures derived from it.
#pragma once

#include <twinfleet/metrics/histogram.hpp>

#include <boost/json/value.hpp>

#include <optional>
#include <string>

namespace twinfleet::reporters::detail {

// The histogram in `v`, or nothing when `v` is null; an error message naming `path` when it is
// not a histogram document.
struct decoded_histogram {
  std::optional<metrics::histogram> histogram;
  std::string error;
};
[[nodiscard]] decoded_histogram decode_histogram(const boost::json::value* v, std::string_view path);

[[nodiscard]] boost::json::value encode_histogram(const metrics::histogram& h);

// {"p50","p90","p99","max","mean"} in milliseconds, as the engine writes latency_ms.
[[nodiscard]] boost::json::object latency_ms_of(const metrics::histogram& h);

[[nodiscard]] inline double ns_to_ms(double ns) { return ns / 1e6; }

}  // namespace twinfleet::reporters::detail
