// report.html: one self-contained page a person would rather look at than read summary.json.
//
// Everything is inline — CSS, the charts as SVG drawn here, the summary itself as a JSON data
// block, a few lines of script — so the file opens anywhere, offline, and fetches nothing
// (no <script src>, <link href>, images or fonts from elsewhere). Sections: the verdict and
// run facts; connected devices over time; throughput per operation over time; p50/p99 latency
// over time per operation; latency histograms per operation (from the histogram JSON); the
// thresholds (pass/fail coloured); the sync checker's anomalies with examples; operations,
// devices by group and engine facts. Every string from the data (scenario, device ids,
// operation names, details) is HTML-escaped.
//
// For tests and tools: each chart is an <svg class="chart" data-chart="NAME"> whose drawn
// series are <path class="series"> and bars <rect class="bar">; tables carry ids
// ("thresholds", "anomalies", "operations"), threshold rows class "pass" or "fail". After
// loading, the inline script sets data-drawn on each chart to the number of its series and bars
// that have a non-empty rendered box, and data-rendered="1" on <body>.
#pragma once

#include <twinfleet/twin/error.hpp>

#include <boost/json/object.hpp>

#include <filesystem>
#include <string>

namespace twinfleet::reporters {

// The page for `summary` (its "thresholds" entries are shown as stored).
[[nodiscard]] std::string render_html(const boost::json::object& summary);

// Writes render_html() to `path` (error report_code::io_failure naming the path).
[[nodiscard]] twin::result<void> write_html(const boost::json::object& summary, const std::filesystem::path& path);

}  // namespace twinfleet::reporters
