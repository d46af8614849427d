// `twinfleet validate` through the real binary: exit codes, summaries and error lines.
#include "process.hpp"
#include "test_data.hpp"

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using twinfleet::test::data_dir;

namespace {

fs::path repo() { return (data_dir() / ".." / "..").lexically_normal(); }

twinfleet::test::run_result validate(std::vector<std::string> files) {
  files.insert(files.begin(), "validate");
  return twinfleet::test::run_program(TWINFLEET_CLI, files, 30s);
}

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

}  // namespace

TEST_CASE("validate accepts every shipped profile and scenario with a summary line each", "[cli][validate]") {
  std::vector<std::string> files;
  for (const char* dir : {"device-profiles", "scenarios"}) {
    for (const auto& e : fs::directory_iterator(repo() / dir)) {
      if (e.path().extension() == ".yaml") files.push_back(e.path().string());
    }
  }
  const auto r = validate(files);
  REQUIRE_FALSE(r.timed_out);
  INFO(r.err);
  CHECK(r.exit_code == 0);
  CHECK(r.err.empty());
  const auto lines = split_lines(r.out);
  REQUIRE(lines.size() == files.size());
  for (std::size_t i = 0; i < files.size(); ++i) CHECK(lines[i].starts_with(files[i] + ": ok: "));
  CHECK(r.out.find(": ok: scenario quickstart: 1000 devices (500 azure, 500 aws; 4 profiles), 3 phases over 90s, target local, seed 42") !=
        std::string::npos);
  CHECK(r.out.find(": ok: profile lightbulb: ") != std::string::npos);
}

TEST_CASE("validate prints every error as file:line:column: path: message and exits 2", "[cli][validate]") {
  const auto bad = (data_dir() / "yaml/bad-profile.yaml").string();
  const auto good = (repo() / "device-profiles/lightbulb.yaml").string();
  const auto r = validate({good, bad});
  REQUIRE_FALSE(r.timed_out);
  CHECK(r.exit_code == 2);
  CHECK(r.out == good + ": ok: profile lightbulb: 3 reported properties, 3 desired properties, 1 command, 1 telemetry message\n");
  const auto lines = split_lines(r.err);
  REQUIRE(lines.size() == 10);
  CHECK(lines[0] == bad + ":4:7: identity.id: unknown placeholder {idx}; this text may use {index}, {index:05}, {profile}");
  CHECK(lines[3] == bad + ":9:59: reported.power.evry: unknown key 'evry' (did you mean 'every'?)");
  CHECK(lines[9] == "9 errors in 1 file of 2");
}

TEST_CASE("validate tells scenarios from profiles and names unreadable files", "[cli][validate]") {
  twinfleet::test::temp_dir dir;
  const auto scenario = dir.path() / "s.yaml";
  std::ofstream(scenario) << "fleet: [ { profile: nonesuch, count: 1 } ]\nphases: [ { name: p, duration: 1s } ]\n";
  const auto other = dir.path() / "other.yaml";
  std::ofstream(other) << "hello: world\n";
  const auto missing = (dir.path() / "missing.yaml").string();
  const auto r = validate({scenario.string(), other.string(), missing});
  CHECK(r.exit_code == 2);
  const auto lines = split_lines(r.err);
  REQUIRE(lines.size() == 4);
  CHECK(lines[0].starts_with(scenario.string() + ":1:21: fleet[0].profile: unknown profile 'nonesuch'; looked for nonesuch.yaml in "));
  CHECK(lines[1] == other.string() + ": neither a scenario (no fleet, phases or target) nor a device profile "
                                     "(no identity, reported, desired, commands or telemetry)");
  CHECK(lines[2].starts_with(missing + ": cannot read the file: "));
  CHECK(lines[3] == "3 errors in 3 files of 3");
}

TEST_CASE("validate without files is a usage error", "[cli][validate]") {
  const auto r = validate({});
  CHECK(r.exit_code != 0);
  CHECK(r.exit_code != 2);
  CHECK_FALSE(r.err.empty());
}
