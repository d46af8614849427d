// report.html as text: self-contained (nothing fetched), every chart and table present, and
// strings from the data escaped so a device id cannot inject markup or script.
#include "sample_summary.hpp"

#include <twinfleet/reporters/html.hpp>
#include <twinfleet/reporters/thresholds.hpp>

#include <json_test_util.hpp>
#include <test_data.hpp>

#include <regex>

using namespace twinfleet;
using namespace twinfleet::test;
using Catch::Matchers::Contains;

namespace {

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto pos = text.find(what); pos != std::string::npos; pos = text.find(what, pos + what.size())) ++n;
  return n;
}

boost::json::object with_thresholds() {
  auto s = sample_summary();
  const std::vector<scenario::threshold> ts{condition("reported_patch", "p50 < 60ms"), condition("reported_patch", "p99 < 50ms")};
  reporters::store_threshold_results(s, reporters::evaluate_thresholds(ts, s));
  return s;
}

}  // namespace

TEST_CASE("report.html fetches nothing: no external scripts, styles, images or URLs", "[reporters][html]") {
  const auto html = reporters::render_html(with_thresholds());
  CHECK_FALSE(Contains("http://").match(html));
  CHECK_FALSE(Contains("https://").match(html));
  CHECK_FALSE(Contains("//cdn").match(html));
  CHECK_FALSE(std::regex_search(html, std::regex(R"(<script[^>]*\ssrc\s*=)", std::regex::icase)));
  CHECK_FALSE(std::regex_search(html, std::regex(R"(<link[^>]*\shref\s*=)", std::regex::icase)));
  CHECK_FALSE(std::regex_search(html, std::regex(R"(<img\b)", std::regex::icase)));
  CHECK_FALSE(std::regex_search(html, std::regex(R"(@import|url\()", std::regex::icase)));
  CHECK_THAT(html, Contains("<style>") && Contains("<script>"));
}

TEST_CASE("report.html draws every chart from the summary", "[reporters][html]") {
  const auto html = reporters::render_html(with_thresholds());
  CHECK(html.starts_with("<!DOCTYPE html>"));
  for (const char* chart : {"connected", "throughput", "latency-reported_patch", "latency-connect", "histogram-reported_patch",
                            "histogram-connect", "histogram-convergence"}) {
    INFO(chart);
    CHECK(count(html, std::string("data-chart=\"") + chart + "\"") == 1);
  }
  // Connected: one line; throughput: one per operation in the timeline; latency: p50 and p99
  // for each of the two timeline operations.
  CHECK(count(html, "<path class=\"series") == 1 + 2 + 2 * 2);
  CHECK(count(html, "<rect class=\"bar\"") > 10);
  CHECK_THAT(html, Contains("id=\"thresholds\"") && Contains("id=\"anomalies\"") && Contains("id=\"operations\""));
  CHECK(count(html, "<tr class=\"pass\">") == 1);
  CHECK(count(html, "<tr class=\"fail\">") == 2);  // the failed threshold and stale_apply (3)
  CHECK_THAT(html, Contains("1 of 2 thresholds failed"));
  CHECK_THAT(html, Contains("bulb-00007") && Contains("applied 12 after 13"));
  CHECK_THAT(html, Contains("185 MB") && Contains("lightbulb"));
}

TEST_CASE("report.html of a sparse summary says what is missing instead of failing", "[reporters][html]") {
  const auto html = reporters::render_html(jo(R"({"scenario":"bare","duration_s":1,"operations":{}})"));
  CHECK_THAT(html, Contains("no samples in the timeline"));
  CHECK_THAT(html, Contains("sets no thresholds") && Contains("no sync-checker results"));
  CHECK(count(html, "<path class=\"series") == 0);
}

TEST_CASE("report.html of a run where every connect failed draws an empty histogram, no crash", "[reporters][html]") {
  // The engine writes an empty histogram for an operation that only failed.
  const auto html = reporters::render_html(jo(
      R"({"scenario":"refused","duration_s":1,"operations":{"connect":{"count":5,"errors":5,)"
      R"("latency_ms":{"p50":0,"p90":0,"p99":0,"max":0},"histogram":{"format":"twinfleet.histogram","version":1,)"
      R"("layout":{"unit_shift":3,"sub_bucket_bits":7,"highest_ns":3600000000000,"bucket_count":2153},"count":0,"sum_ns":0,)"
      R"("min_ns":0,"max_ns":0,"overflow":0,"buckets":[]}}}})"));
  CHECK_THAT(html, Contains("no samples"));
}

TEST_CASE("report.html escapes every string from the data", "[reporters][html]") {
  auto s = with_thresholds();
  const std::string evil = "<script>alert(1)</script>";
  s["scenario"] = "<img src=x onerror=alert(1)>";
  s["target"] = "\"><b>";
  auto& sync = s["sync"].as_object();
  sync["examples"] = boost::json::object{
      {"stale_apply", boost::json::array{boost::json::object{{"device", evil}, {"detail", "</script><script>alert(2)</script>"}}}}};
  sync["anomalies"].as_object()["<i>kind</i>"] = 1;
  s["operations"].as_object()["<op>"] = boost::json::object{{"count", 1}};
  s["devices"].as_object()["by_group"] = boost::json::array{boost::json::object{{"backend", "<u>"}, {"profile", "a&b"}}};
  s["thresholds"].as_array()[0].as_object()["name"] = "<th>";

  const auto html = reporters::render_html(s);
  CHECK_FALSE(Contains("<img").match(html));
  CHECK_FALSE(Contains("<i>kind").match(html));
  CHECK_FALSE(Contains("<op>").match(html));
  CHECK_FALSE(Contains("<u>").match(html));
  CHECK_FALSE(Contains("\"><b>").match(html));
  // Exactly the page's own two script elements open, however many the data mentions.
  CHECK(count(html, "<script") == 2);
  CHECK(count(html, "</script>") == 2);
  CHECK_THAT(html, Contains("&lt;script&gt;alert(1)&lt;/script&gt;") && Contains("a&amp;b") && Contains("&lt;img src=x") &&
                       Contains("&lt;th&gt;"));
  // The embedded JSON keeps the data, with '<' written as \u003c.
  CHECK_THAT(html, Contains(R"(\u003cscript\u003ealert(1)\u003c/script\u003e)"));
}

TEST_CASE("write_html writes one file", "[reporters][html]") {
  temp_dir dir;
  REQUIRE(reporters::write_html(sample_summary(), dir.path() / "report.html"));
  CHECK_THAT(read_file(dir.path() / "report.html"), Contains("twinfleet report: unit"));
}

TEST_CASE("a second without an operation is zero throughput and a break in its latency line", "[reporters][html]") {
  const auto html = reporters::render_html(jo(R"({"scenario":"gaps","duration_s":3,"operations":{},"timeline":[
      {"t_s":1,"connected":1,"ops":{"telemetry":{"count":4,"errors":0,"p50_ms":1,"p99_ms":2}}},
      {"t_s":2,"connected":1},
      {"t_s":3,"connected":1,"ops":{"telemetry":{"count":6,"errors":0,"p50_ms":1,"p99_ms":3}}}]})"));
  // Throughput: three points, the middle one at 0 ops/s (the baseline, y = 200).
  const std::regex throughput(R"re(data-chart="throughput".*?<path class="series" d="M[\d.]+ [\d.]+ L[\d.]+ 200\.0 L[\d.]+ [\d.]+")re");
  CHECK(std::regex_search(html, throughput));
  // Latency: two separate one-point segments, the second starting anew with M.
  const std::regex latency(R"re(data-chart="latency-telemetry".*?<path class="series" d="M[\d.]+ [\d.]+ M[\d.]+ [\d.]+")re");
  CHECK(std::regex_search(html, latency));
}
