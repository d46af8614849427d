// Reading summary.json back: every bad input named by file and field, never a crash.
#include "sample_summary.hpp"

#include <twinfleet/reporters/summary.hpp>

#include <json_test_util.hpp>
#include <test_data.hpp>

#include <fstream>

using namespace twinfleet;
using namespace twinfleet::test;
using Catch::Matchers::Contains;

namespace {

void write(const std::filesystem::path& p, const std::string& text) {
  std::ofstream(p, std::ios::binary) << text;
}

std::string load_error(const std::filesystem::path& p) {
  const auto r = reporters::load_summary(p);
  REQUIRE_FALSE(r);
  CHECK(r.error().code == reporters::report_code::bad_input);
  return r.error().message;
}

}  // namespace

TEST_CASE("a summary written with pretty_json loads back equal", "[reporters][summary]") {
  temp_dir dir;
  const auto s = sample_summary();
  const auto text = reporters::pretty_json(s);
  CHECK_THAT(text, Contains("\n  \"scenario\": \"unit\",\n"));
  REQUIRE(reporters::write_text_file(dir.path() / "summary.json", text));
  const auto back = reporters::load_summary(dir.path() / "summary.json");
  REQUIRE(back);
  CHECK(*back == s);
}

TEST_CASE("bad summary files are named with the field at fault", "[reporters][summary]") {
  temp_dir dir;
  const auto f = dir.path() / "summary.json";
  CHECK(load_error(f) == f.string() + ": no such file");
  CHECK_THAT(load_error(dir.path()), Contains("is a folder"));

  write(f, "{\"scenario\": ");
  CHECK_THAT(load_error(f), Contains(f.string() + ": not JSON: "));
  write(f, "[1, 2]");
  CHECK(load_error(f) == f.string() + ": expected a JSON object, got an array");
  write(f, R"({"duration_s": 1, "operations": {}})");
  CHECK(load_error(f) == f.string() + ": scenario: missing (a run's summary always has it)");
  write(f, R"({"schema": 2, "scenario": "s", "duration_s": 1, "operations": {}})");
  CHECK(load_error(f) == f.string() + ": schema: this twinfleet reads schema 1, the file has 2");
  write(f, R"({"scenario": "s", "duration_s": 1, "operations": {"connect": {"count": "12"}}})");
  CHECK(load_error(f) == f.string() + ": operations.connect.count: expected a number, got a string");
  write(f, R"({"scenario": "s", "duration_s": 1, "operations": {}, "sync": {"anomalies": {"lost_update": null}}})");
  CHECK(load_error(f) == f.string() + ": sync.anomalies.lost_update: expected a number, got null");
  write(f, R"({"scenario": "s", "duration_s": 1, "operations": {}, "timeline": [{"t_s": 1}, {"connected": 3}]})");
  CHECK(load_error(f) == f.string() + ": timeline[1].t_s: missing (a run's summary always has it)");
  write(f, R"({"scenario": "s", "duration_s": 1, "operations": {}, "extra": [1], "devices": {"future_field": "x"}})");
  CHECK(reporters::load_summary(f));  // fields of later schema additions are allowed
}
