// report.html rendered by a real browser (Debian's headless Chromium): the page's own script
// runs, every chart's drawn series have a non-empty rendered box, the threshold rows and the
// anomaly table are in the DOM. And `twinfleet report merge|html` end to end.
#include "../unit/reporters/sample_summary.hpp"

#include <twinfleet/reporters/html.hpp>
#include <twinfleet/reporters/summary.hpp>
#include <twinfleet/reporters/thresholds.hpp>

#include <json_test_util.hpp>
#include <process.hpp>
#include <test_data.hpp>

#include <cstdlib>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>

#include <unistd.h>

using namespace twinfleet;
using namespace twinfleet::test;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {

// Chromium as Debian installs it (scripts/install-deps.sh), or under the other usual names.
std::optional<fs::path> find_chromium() {
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path ? path : "/usr/bin:/bin");
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    for (const char* name : {"chromium", "chromium-browser", "google-chrome"}) {
      const auto p = fs::path(dir) / name;
      if (::access(p.c_str(), X_OK) == 0) return p;
    }
  }
  return std::nullopt;
}

// The DOM after the page loaded and its script ran. `timeout` bounds the browser and, unlike a
// kill of one pid, takes its helper processes (renderer, GPU, zygote) down with it.
std::string rendered_dom(const fs::path& chromium, const fs::path& page, const fs::path& profile) {
  const auto r = run_program("/usr/bin/timeout", {"-k", "5", "60", chromium.string(), "--headless", "--disable-gpu", "--no-sandbox",
                                                   "--no-first-run", "--disable-extensions", "--user-data-dir=" + profile.string(),
                                                   "--dump-dom", "file://" + page.string()},
                             std::chrono::seconds(90));
  INFO("chromium stderr: " << r.err);
  REQUIRE_FALSE(r.timed_out);
  REQUIRE(r.exit_code == 0);
  return r.out;
}

std::map<std::string, int> drawn_per_chart(const std::string& dom) {
  std::map<std::string, int> out;
  const std::regex svg(R"re(<svg[^>]*data-chart="([^"]+)"[^>]*data-drawn="(\d+)")re");
  for (auto it = std::sregex_iterator(dom.begin(), dom.end(), svg); it != std::sregex_iterator(); ++it) {
    out[(*it)[1]] = std::stoi((*it)[2]);
  }
  return out;
}

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto pos = text.find(what); pos != std::string::npos; pos = text.find(what, pos + what.size())) ++n;
  return n;
}

}  // namespace

TEST_CASE("headless Chromium renders report.html with every chart drawn", "[reporters][html][integration]") {
  const auto chromium = find_chromium();
  if (!chromium) {
    WARN("SKIP: no chromium on PATH (scripts/install-deps.sh installs Debian's chromium); report.html was not rendered");
    return;
  }
  temp_dir dir;
  auto s = sample_summary();
  s["sync"].as_object()["examples"].as_object()["stale_apply"].as_array().push_back(
      boost::json::object{{"device", "<b>bulb-evil</b>"}, {"versions", boost::json::array{4, 5}}, {"at_s", 7.5}});
  const std::vector<scenario::threshold> ts{condition("reported_patch", "p50 < 60ms"), condition("reported_patch", "p99 < 50ms"),
                                            condition("convergence", "ratio >= 0.999 within 5s"), condition("", "anomalies.lost_update == 0")};
  reporters::store_threshold_results(s, reporters::evaluate_thresholds(ts, s));
  const auto page = dir.path() / "report.html";
  REQUIRE(reporters::write_html(s, page));

  const auto dom = rendered_dom(*chromium, page, dir.path() / "chromium-profile");
  // The inline script ran to its end.
  CHECK(std::regex_search(dom, std::regex(R"(<body[^>]*data-rendered="1")")));

  const auto drawn = drawn_per_chart(dom);
  const std::map<std::string, int> expected_at_least{{"connected", 1},
                                                     {"throughput", 2},
                                                     {"latency-reported_patch", 2},
                                                     {"latency-connect", 2},
                                                     {"histogram-reported_patch", 10},
                                                     {"histogram-connect", 1},
                                                     {"histogram-convergence", 10}};
  for (const auto& [chart, at_least] : expected_at_least) {
    INFO(chart);
    REQUIRE(drawn.contains(chart));
    CHECK(drawn.at(chart) >= at_least);
  }

  // Threshold rows, coloured by verdict, and the anomaly table with its examples.
  CHECK(count(dom, "<tr class=\"pass\">") == 2);
  CHECK(count(dom, "<tr class=\"fail\">") == 2 + 1);  // two thresholds, stale_apply
  CHECK_THAT(dom, Contains("<table id=\"anomalies\">") && Contains("bulb-00007") && Contains("applied 12 after 13"));
  // The device id stayed text: no <b> element came out of the data.
  CHECK_THAT(dom, Contains("&lt;b&gt;bulb-evil&lt;/b&gt;"));
  CHECK_THAT(dom, Contains("2 of 4 thresholds failed"));
}

#ifdef TWINFLEET_CLI
TEST_CASE("twinfleet report merge writes the merged reports and exits 99 on a failed threshold", "[reporters][cli][integration]") {
  temp_dir dir;
  // Two shards of quickstart: 900 reported patches at 10 ms and 100 at 200 ms.
  auto shard = [&](const char* name, std::uint64_t ns, std::uint64_t n) {
    auto s = sample_summary();
    s["scenario"] = "quickstart";
    metrics::histogram h;
    h.record_n(ns, n);
    s["operations"].as_object()["reported_patch"] = operation(h, 0);
    fs::create_directories(dir.path() / name);
    REQUIRE(reporters::write_text_file(dir.path() / name / "summary.json", reporters::pretty_json(s)));
  };
  shard("w1", 10'000'000, 900);
  shard("w2", 200'000'000, 100);

  const auto out = dir.path() / "merged";
  const auto r = run_program(TWINFLEET_CLI, {"report", "merge", (dir.path() / "w1").string(), (dir.path() / "w2").string(), "--out",
                                             out.string(), "--scenario", std::string(TWINFLEET_SOURCE_DIR) + "/scenarios/quickstart.yaml"});
  INFO(r.out << r.err);
  CHECK(r.exit_code == 99);
  CHECK_THAT(r.out, Contains("\u2717 reported_patch p99 < 100ms (") && Contains("over by"));
  const auto merged = reporters::load_summary(out / "summary.json");
  REQUIRE(merged);
  CHECK(merged->at("operations").at("reported_patch").at("count") == 1000);
  CHECK(merged->at("devices").at("planned") == 400);
  const auto& thresholds = merged->at("thresholds").as_array();
  REQUIRE_FALSE(thresholds.empty());
  CHECK(thresholds[0].at("name") == "reported_patch");
  CHECK(thresholds[0].at("ok") == false);
  CHECK_THAT(read_file(out / "junit.xml"), Contains("<failure type=\"threshold\""));
  CHECK_THAT(read_file(out / "report.html"), Contains("twinfleet report: quickstart"));

  // Without the scenario: merged, no verdicts, exit 0.
  const auto plain = run_program(TWINFLEET_CLI, {"report", "merge", (dir.path() / "w1").string(), (dir.path() / "w2" / "summary.json").string(),
                                                 "-o", (dir.path() / "plain").string()});
  CHECK(plain.exit_code == 0);
  CHECK_THAT(plain.out, Contains("thresholds not evaluated"));
  CHECK_THAT(read_file(dir.path() / "plain" / "junit.xml"), Contains("name=\"run completed\""));
}

TEST_CASE("twinfleet report: bad input names the file and the field, exit 2", "[reporters][cli][integration]") {
  temp_dir dir;
  const auto missing = run_program(TWINFLEET_CLI, {"report", "html", (dir.path() / "nope.json").string()});
  CHECK(missing.exit_code == 2);
  CHECK_THAT(missing.err, Contains("nope.json: no such file"));

  fs::create_directories(dir.path() / "bad");
  {
    std::ofstream(dir.path() / "bad" / "summary.json") << R"({"scenario": "s", "duration_s": 1, "operations": {"connect": {"count": true}}})";
  }
  const auto bad = run_program(TWINFLEET_CLI, {"report", "merge", (dir.path() / "bad").string(), "--out", (dir.path() / "o").string()});
  CHECK(bad.exit_code == 2);
  CHECK_THAT(bad.err, Contains("bad/summary.json: operations.connect.count: expected a number, got a boolean"));
  CHECK_FALSE(fs::exists(dir.path() / "o" / "summary.json"));

  {
    std::ofstream(dir.path() / "text.json") << "not json";
  }
  const auto text = run_program(TWINFLEET_CLI, {"report", "html", (dir.path() / "text.json").string()});
  CHECK(text.exit_code == 2);
  CHECK_THAT(text.err, Contains("text.json: not JSON"));

  // A good one: report.html beside the summary.
  REQUIRE(reporters::write_text_file(dir.path() / "summary.json", reporters::pretty_json(sample_summary())));
  const auto ok = run_program(TWINFLEET_CLI, {"report", "html", (dir.path() / "summary.json").string()});
  CHECK(ok.exit_code == 0);
  CHECK(fs::exists(dir.path() / "report.html"));
}
#endif
