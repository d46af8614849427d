// `twinfleet run` on an AWS fleet: convergence is seen from the service side, by the back end's
// Paho observer of shadow documents, not from the devices' own acknowledgements (issue 4 §3).
// summary.json's sync.aws_observer says where AWS convergence came from; while the observer
// watches, the devices' path does not count AWS convergence, so a convergence count above zero
// is the observer's.
#include "process.hpp"
#include "test_data.hpp"

#include <boost/json.hpp>

#include <catch2/catch.hpp>

#include <csignal>
#include <fstream>
#include <tuple>

using namespace std::chrono_literals;
using twinfleet::test::child_process;
using twinfleet::test::run_program;
using twinfleet::test::temp_dir;

namespace {

std::filesystem::path write_aws_scenario(const temp_dir& dir, const std::string& target) {
  const auto root = std::filesystem::path(TWINFLEET_SOURCE_DIR);
  const auto file = dir.path() / "aws-observer.yaml";
  std::ofstream(file) << "name: aws-observer\nseed: 11\ntarget: " << target << "\n"
                      << "fleet:\n"
                      << "  - { profile: " << (root / "device-profiles/thermostat.yaml").string()
                      << ", count: 8, dialect: aws, shadows: [classic, schedule] }\n"
                      << "ramp: { rate: 200/s }\n"
                      << "phases:\n"
                      << "  - name: steady\n    duration: 4s\n"
                      << "    backend: { desired_writes: 20/s }\n";
  return file;
}

boost::json::object read_summary(const std::filesystem::path& report) {
  std::ifstream in(report / "summary.json");
  REQUIRE(in);
  return boost::json::parse(std::string(std::istreambuf_iterator<char>(in), {})).as_object();
}

std::int64_t count_of(const boost::json::object& summary, std::string_view op) {
  const auto& ops = summary.at("operations").as_object();
  const auto* o = ops.if_contains(op);
  return o == nullptr ? 0 : o->at("count").to_number<std::int64_t>();
}

}  // namespace

TEST_CASE("twinfleet run: AWS convergence is seen by the shadow-documents observer (hub process)",
          "[cli][run][aws][integration]") {
  temp_dir hub_dir;
  child_process hub(TWINFLEET_CLI, {"hub", "--certs", hub_dir.path().string(), "--listen-mqtts", "127.0.0.1:0",
                                    "--listen-https", "127.0.0.1:0", "--listen-http", "127.0.0.1:0"});
  REQUIRE(hub.wait_until([&] { return hub.out().find("twinfleet hub ready") != std::string::npos; }, 20s));
  temp_dir dir;
  const auto scenario =
      write_aws_scenario(dir, "{ type: hub, hub_json: " + (hub_dir.path() / "hub.json").string() + ", transport: tls }");
  const auto report = dir.path() / "report";
  const auto r = run_program(TWINFLEET_CLI, {"run", scenario.string(), "--quiet", "--report", report.string()}, 90s);
  INFO("stdout: " << r.out << "\nstderr: " << r.err << "\nhub: " << hub.out() << hub.err());
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.find("cannot watch shadow documents") == std::string::npos);
  const auto summary = read_summary(report);
  const auto& sync = summary.at("sync").as_object();
  REQUIRE(sync.contains("aws_observer"));
  const auto& observed = sync.at("aws_observer").as_object();
  CHECK(observed.at("convergence_from") == "observer");
  // Each write makes a document, each reported mirror another: at least two per write.
  const auto writes = count_of(summary, "shadow_update");
  CHECK(writes > 10);
  CHECK(observed.at("documents").to_number<std::int64_t>() >= 2 * writes);
  CHECK(observed.at("malformed") == 0);
  // Only the observer counts AWS convergence here; nearly every write converges.
  CHECK(count_of(summary, "convergence") >= writes - 10);
  CHECK(hub.stop(SIGTERM) == 0);
}

TEST_CASE("twinfleet run: the observer sees every shadow update of the embedded hub, plain MQTT too",
          "[cli][run][aws][integration]") {
  for (const std::string transport : {"tls", "tcp"}) {
    DYNAMIC_SECTION("transport " << transport) {
      temp_dir dir;
      const auto scenario = write_aws_scenario(dir, "{ type: local, transport: " + transport + " }");
      const auto report = dir.path() / "report";
      const auto r = run_program(TWINFLEET_CLI, {"run", scenario.string(), "--quiet", "--report", report.string()}, 90s);
      INFO("stdout: " << r.out << "\nstderr: " << r.err);
      REQUIRE(r.exit_code == 0);
      const auto summary = read_summary(report);
      const auto& observed = summary.at("sync").at("aws_observer").as_object();
      CHECK(observed.at("convergence_from") == "observer");
      // Every accepted update publishes one documents message; the observer, started before
      // the devices and stopped after the audit, misses none of them.
      CHECK(observed.at("hub_updates").to_number<std::int64_t>() > 0);
      CHECK(observed.at("documents") == observed.at("hub_updates"));
      CHECK(count_of(summary, "convergence") > 10);
    }
  }
}

// AWS IoT delivers at most 100 messages a second to one connection, and the hub emulates that
// with its AWS throttling on (docs/HUB.md, aws_connection_deliveries). One observer connection
// watching 60 shadows written 120 times a second (a document for each write and another for
// each device's mirror) loses what passes the cap, and the run says so; with the shadows
// shared out 10 to a connection, each is sent under the cap and the observer misses nothing.
TEST_CASE("twinfleet run: a sharded AWS observer keeps up under the per-connection delivery cap (hub process)",
          "[cli][run][aws][integration]") {
  temp_dir hub_dir;
  const auto config = hub_dir.path() / "hub.yaml";
  std::ofstream(config) << "throttle:\n  aws: true\n";
  child_process hub(TWINFLEET_CLI, {"hub", "--certs", hub_dir.path().string(), "--config", config.string(), "--listen-mqtts",
                                    "127.0.0.1:0", "--listen-https", "127.0.0.1:0", "--listen-http", "127.0.0.1:0"});
  REQUIRE(hub.wait_until([&] { return hub.out().find("twinfleet hub ready") != std::string::npos; }, 20s));
  const auto root = std::filesystem::path(TWINFLEET_SOURCE_DIR);
  const auto run = [&](int shadows_per_connection) {
    temp_dir dir;
    const auto file = dir.path() / "aws-sharded.yaml";
    std::ofstream(file) << "name: aws-sharded\nseed: 5\n"
                        << "target: { type: hub, hub_json: " << (hub_dir.path() / "hub.json").string() << " }\n"
                        << "fleet:\n"
                        << "  - { profile: " << (root / "device-profiles/lightbulb.yaml").string()
                        << ", count: 60, dialect: aws, id: 'shard" << shadows_per_connection << "-{index:03}' }\n"
                        << "ramp: { rate: 300/s }\n"
                        << "phases:\n"
                        << "  - name: steady\n    duration: 4s\n"
                        << "    backend: { desired_writes: 120/s }\n"
                        << "aws_observer: { shadows_per_connection: " << shadows_per_connection << " }\n";
    const auto report = dir.path() / "report";
    const auto r = run_program(TWINFLEET_CLI, {"run", file.string(), "--quiet", "--report", report.string()}, 90s);
    INFO("stdout: " << r.out << "\nstderr: " << r.err);
    REQUIRE(r.exit_code <= 1);  // 1: a threshold missed; the observer's counts are what this test reads
    auto summary = read_summary(report);
    const auto observed = summary.at("sync").at("aws_observer").as_object();
    CHECK(observed.at("convergence_from") == "observer");
    return std::make_tuple(observed, summary, r.out);
  };

  const auto [single, single_summary, single_out] = run(0);
  INFO("one connection: " << boost::json::serialize(single));
  CHECK(single.at("connections") == 1);
  const auto expected = single.at("documents_expected").to_number<std::int64_t>();
  CHECK(expected > 2 * 300);  // well over 100 a second for 4 s
  CHECK(single.at("documents_missed").to_number<std::int64_t>() > expected / 4);
  CHECK(single_out.find("note: the AWS observer saw") != std::string::npos);

  const auto [sharded, sharded_summary, sharded_out] = run(10);
  INFO("10 shadows a connection: " << boost::json::serialize(sharded));
  CHECK(sharded.at("connections") == 6);
  CHECK(sharded.at("documents_expected").to_number<std::int64_t>() > 2 * 300);
  CHECK(sharded.at("documents_missed") == 0);
  CHECK(sharded.at("documents").to_number<std::int64_t>() >= sharded.at("documents_expected").to_number<std::int64_t>());
  CHECK(sharded_out.find("note: the AWS observer saw") == std::string::npos);
  // Seen by the service side, the writes converge; one connection saw too few documents to tell.
  CHECK(count_of(sharded_summary, "convergence") >= count_of(sharded_summary, "shadow_update") - 10);
  CHECK(count_of(single_summary, "convergence") < count_of(single_summary, "shadow_update") - 10);
  CHECK(hub.stop(SIGTERM) == 0);
}
