// The JSON form of a histogram: how worker processes hand their latencies to `twinfleet report
// merge`, and what summary.json embeds under operations.<op>.histogram. Specified in full in
// sim/metrics/README.md ("Histogram JSON, format version 1"), precisely enough to decode in
// another language.
//
// Public API (namespace twinfleet::metrics):
//   boost::json::object to_json(const histogram& h);
//   result<histogram>   from_json(const boost::json::value& v);
//   inline constexpr std::string_view histogram_format = "twinfleet.histogram";
//   inline constexpr int histogram_format_version = 1;
//
// from_json(to_json(h)) == h for every histogram, and merging decoded histograms gives exactly
// the decoded merge of the originals.
#pragma once

#include <twinfleet/metrics/histogram.hpp>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <string_view>

namespace twinfleet::metrics {

inline constexpr std::string_view histogram_format = "twinfleet.histogram";
inline constexpr int histogram_format_version = 1;

// Sparse: only non-empty buckets, as [index, count] pairs in ascending index order.
[[nodiscard]] boost::json::object to_json(const histogram& h);

// Errors (twin::error, message naming the offending member):
// - error_code::incompatible_layout: another "format", "version" or layout parameters;
// - error_code::malformed: not an object, a member missing or of the wrong type, a negative or
//   fractional number, a bucket index out of range or out of order, a zero count, counts that
//   do not add up to "count", or min/max/overflow inconsistent with the buckets.
[[nodiscard]] result<histogram> from_json(const boost::json::value& v);

}  // namespace twinfleet::metrics
