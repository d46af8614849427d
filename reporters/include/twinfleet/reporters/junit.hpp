// junit.xml: each threshold one test case, so a CI system lists them next to its unit tests.
//
//   <testsuites name="twinfleet" tests="N" failures="F" errors="0" time="duration_s">
//     <testsuite name="twinfleet.<scenario>" tests failures errors="0" skipped="0" time timestamp>
//       <properties> scenario, seed, target, interrupted </properties>
//       <testcase classname="twinfleet.<scenario>.thresholds" name="<metric> <expr>" time="0">
//         <failure type="threshold" message="<what was observed, the limit and by how much>">…</failure>
//       </testcase> …
//       <system-out> the threshold lines, as on the console </system-out>
//     </testsuite>
//   </testsuites>
// With no thresholds there is one passing test case, "run completed". All text is XML-escaped
// (characters XML 1.0 cannot carry become U+FFFD).
#pragma once

#include <twinfleet/reporters/thresholds.hpp>
#include <twinfleet/twin/error.hpp>

#include <boost/json/object.hpp>

#include <filesystem>
#include <string>
#include <vector>

namespace twinfleet::reporters {

[[nodiscard]] std::string junit_xml(const boost::json::object& summary, const std::vector<threshold_result>& results);

// Writes junit_xml() to `path` (error report_code::io_failure naming the path).
[[nodiscard]] twin::result<void> write_junit(const boost::json::object& summary, const std::vector<threshold_result>& results,
                                             const std::filesystem::path& path);

}  // namespace twinfleet::reporters
