#include <twinfleet/reporters/junit.hpp>
#include <twinfleet/reporters/summary.hpp>

#include "format.hpp"

#include <boost/json.hpp>

#include <fmt/core.h>

namespace twinfleet::reporters {

namespace json = boost::json;
using detail::xml_escape;

namespace {

std::string attr(std::string_view name, std::string_view value) { return fmt::format(" {}=\"{}\"", name, xml_escape(value)); }

}  // namespace

std::string junit_xml(const json::object& summary, const std::vector<threshold_result>& results) {
  const auto scenario = detail::string_at(summary, "scenario", "run");
  const auto duration = detail::format_number(detail::number_at(summary, "duration_s").value_or(0), 6);
  const auto started = detail::string_at(summary, "started_at");
  const auto* interrupted_v = summary.if_contains("interrupted");
  const bool interrupted = interrupted_v && interrupted_v->is_bool() && interrupted_v->get_bool();

  std::size_t failures = 0;
  for (const auto& r : results) failures += r.ok ? 0 : 1;
  const std::size_t tests = results.empty() ? 1 : results.size();

  std::string x = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  x += "<testsuites" + attr("name", "twinfleet") + attr("tests", std::to_string(tests)) + attr("failures", std::to_string(failures)) +
       attr("errors", "0") + attr("time", duration) + ">\n";
  x += "  <testsuite" + attr("name", "twinfleet." + scenario) + attr("tests", std::to_string(tests)) +
       attr("failures", std::to_string(failures)) + attr("errors", "0") + attr("skipped", "0") + attr("time", duration);
  if (!started.empty()) x += attr("timestamp", started);
  x += ">\n    <properties>\n";
  auto property = [&](std::string_view name, std::string_view value) {
    x += "      <property" + attr("name", name) + attr("value", value) + "/>\n";
  };
  property("scenario", scenario);
  // As written: a 64-bit seed does not survive a trip through double.
  if (const auto* seed = summary.if_contains("seed"); seed && seed->is_number()) property("seed", json::serialize(*seed));
  if (const auto target = detail::string_at(summary, "target"); !target.empty()) property("target", target);
  property("interrupted", interrupted ? "true" : "false");
  x += "    </properties>\n";

  const std::string classname = "twinfleet." + scenario + ".thresholds";
  if (results.empty()) {
    x += "    <testcase" + attr("classname", "twinfleet." + scenario) + attr("name", "run completed") + attr("time", duration) + "/>\n";
  }
  for (const auto& r : results) {
    x += "    <testcase" + attr("classname", classname) + attr("name", r.name + " " + r.expr) + attr("time", "0");
    if (r.ok) {
      x += "/>\n";
      continue;
    }
    x += ">\n      <failure" + attr("type", "threshold") + attr("message", r.message) + ">" + xml_escape(r.message) +
         "</failure>\n    </testcase>\n";
  }
  std::string out;
  for (const auto& r : results) out += console_line(r) + "\n";
  if (interrupted) out += "The run was interrupted before its planned end.\n";
  if (!out.empty()) x += "    <system-out>" + xml_escape(out) + "</system-out>\n";
  x += "  </testsuite>\n</testsuites>\n";
  return x;
}

twin::result<void> write_junit(const json::object& summary, const std::vector<threshold_result>& results, const std::filesystem::path& path) {
  return write_text_file(path, junit_xml(summary, results));
}

}  // namespace twinfleet::reporters
