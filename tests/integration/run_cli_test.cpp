// `twinfleet run` as a user runs it: the real binary, a small scenario of both dialects against
// the embedded hub over TLS on loopback, a summary at the end — also after Ctrl-C.
#include "process.hpp"
#include "test_data.hpp"

#include <boost/json.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <csignal>
#include <fstream>
#include <regex>

using namespace std::chrono_literals;
using twinfleet::test::child_process;
using twinfleet::test::run_program;
using twinfleet::test::temp_dir;

namespace {

// A small fleet of the shipped profiles: Azure bulbs and AWS thermostats with a named shadow.
// Method calls leave out the thermostat's reboot: the connect counts below assume none.
std::filesystem::path write_scenario(const temp_dir& dir, std::string_view duration,
                                     std::string target = "{ type: local, transport: tls }") {
  const auto root = std::filesystem::path(TWINFLEET_SOURCE_DIR);
  const auto file = dir.path() / "small.yaml";
  std::ofstream out(file);
  out << "name: small\nseed: 5\ntarget: " << target << "\n"
      << "fleet:\n"
      << "  - { profile: " << (root / "device-profiles/lightbulb.yaml").string() << ", count: 20, dialect: azure }\n"
      << "  - { profile: " << (root / "device-profiles/thermostat.yaml").string()
      << ", count: 10, dialect: aws, shadows: [classic, schedule] }\n"
      << "ramp: { rate: 200/s }\n"
      << "phases:\n"
      << "  - name: steady\n    duration: " << duration << "\n"
      << "    backend: { desired_writes: 20/s, method_calls: { rate: 2/s, methods: [blink, get_max_min_report] }, twin_reads: 5/s }\n";
  return file;
}

// The count column of an operation's summary row, or -1.
long long count_of(const std::string& out, const std::string& op) {
  std::smatch m;
  const std::regex row("\\n  " + op + " +([0-9]+) +([0-9]+) ");
  return std::regex_search(out, m, row) ? std::stoll(m[1]) : -1;
}

}  // namespace

TEST_CASE("twinfleet run: a mixed fleet connects, converges and prints a summary", "[cli][run][integration]") {
  temp_dir dir;
  const auto scenario = write_scenario(dir, "6s");
  const auto report = dir.path() / "report";
  const auto r = run_program(TWINFLEET_CLI, {"run", scenario.string(), "--threads", "2", "--report", report.string(), "--metrics-listen", "127.0.0.1:0"}, 90s);
  INFO("stdout: " << r.out << "\nstderr: " << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.find("small (seed 5)") != std::string::npos);
  CHECK(r.out.find("30 devices planned, 30 connected at the peak, 0 connect failures") != std::string::npos);
  CHECK(count_of(r.out, "connect") == 30);
  CHECK(count_of(r.out, "desired_write") > 20);  // the Azure share of ~100 writes
  CHECK(count_of(r.out, "shadow_update") > 20);  // the AWS share
  CHECK(count_of(r.out, "reported_patch") > 30);
  CHECK(count_of(r.out, "method") > 0);
  std::smatch m;
  REQUIRE(std::regex_search(r.out, m, std::regex("sync: ([0-9]+) desired writes, ([0-9]+) converged")));
  const auto writes = std::stoll(m[1]);
  const auto converged = std::stoll(m[2]);
  CHECK(writes > 80);
  // Writes of the last moments may still be on their way; every earlier one converged.
  CHECK(converged >= writes - 10);
  CHECK(std::regex_search(r.out, std::regex("\nmetrics: http://127\\.0\\.0\\.1:[0-9]+/metrics\n")));
  CHECK(std::regex_search(r.out, std::regex("\\[ +1s steady\\] connected [0-9]+/30 \\| reported [0-9]+/s")));  // the live line

  // summary.json says the same as the console.
  std::ifstream in(report / "summary.json");
  REQUIRE(in);
  const auto summary = boost::json::parse(std::string(std::istreambuf_iterator<char>(in), {}));
  CHECK(summary.at("scenario") == "small");
  CHECK(summary.at("seed") == 5);
  CHECK(summary.at("devices").at("planned") == 30);
  CHECK(summary.at("devices").at("connected_peak") == 30);
  CHECK(summary.at("operations").at("connect").at("count") == 30);
  CHECK(summary.at("operations").at("reported_patch").at("latency_ms").at("p99").as_double() > 0);
  CHECK(summary.at("sync").at("desired_writes") == writes);
  CHECK(summary.at("sync").at("converged") == converged);
  CHECK(summary.at("engine").at("threads") == 2);
  CHECK(summary.at("interrupted") == false);
}

TEST_CASE("twinfleet run: Ctrl-C ends the run early and still prints the summary", "[cli][run][integration]") {
  temp_dir dir;
  const auto scenario = write_scenario(dir, "60s");
  const auto report = dir.path() / "report";
  child_process run(TWINFLEET_CLI, {"run", scenario.string(), "--report", report.string()});
  REQUIRE(run.wait_until([&] { return run.out().find("[    2s steady] connected") != std::string::npos; }, 30s));
  const int code = run.stop(SIGINT);
  INFO("stdout: " << run.out() << "\nstderr: " << run.err());
  CHECK(code == 0);
  CHECK(run.out().find("(interrupted)") != std::string::npos);
  // The report is written after Ctrl-C too.
  std::ifstream in(report / "summary.json");
  REQUIRE(in);
  const auto summary = boost::json::parse(std::string(std::istreambuf_iterator<char>(in), {}));
  CHECK(summary.at("interrupted") == true);
  CHECK(summary.at("devices").at("planned") == 30);
  CHECK(run.out().find("sync: ") != std::string::npos);
}

TEST_CASE("twinfleet run: a bad scenario is every error with its place, exit 2", "[cli][run]") {
  temp_dir dir;
  const auto file = dir.path() / "bad.yaml";
  std::ofstream(file) << "name: bad\nfleet:\n  - { profile: nosuch, count: -1 }\nphases: []\n";
  const auto r = run_program(TWINFLEET_CLI, {"run", file.string()}, 30s);
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("bad.yaml:3:") != std::string::npos);
  CHECK(r.err.find("fleet[0]") != std::string::npos);
}

TEST_CASE("twinfleet run: target hub drives a separate `twinfleet hub` found through its hub.json",
          "[cli][run][integration]") {
  temp_dir hub_dir;
  child_process hub(TWINFLEET_CLI, {"hub", "--certs", hub_dir.path().string(), "--listen-mqtts", "127.0.0.1:0",
                                    "--listen-https", "127.0.0.1:0", "--listen-http", "127.0.0.1:0"});
  REQUIRE(hub.wait_until([&] { return hub.out().find("twinfleet hub ready") != std::string::npos; }, 20s));
  temp_dir dir;
  const auto scenario =
      write_scenario(dir, "4s", "{ type: hub, hub_json: " + (hub_dir.path() / "hub.json").string() + ", transport: tls }");
  const auto r = run_program(TWINFLEET_CLI, {"run", scenario.string(), "--quiet"}, 90s);
  INFO("stdout: " << r.out << "\nstderr: " << r.err << "\nhub: " << hub.out() << hub.err());
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.find("30 devices planned, 30 connected at the peak, 0 connect failures") != std::string::npos);
  CHECK(count_of(r.out, "desired_write") > 10);
  CHECK(count_of(r.out, "shadow_update") > 10);
  std::smatch m;
  REQUIRE(std::regex_search(r.out, m, std::regex("sync: ([0-9]+) desired writes, ([0-9]+) converged")));
  CHECK(std::stoll(m[2]) >= std::stoll(m[1]) - 10);
  CHECK(hub.stop(SIGTERM) == 0);
}

TEST_CASE("twinfleet run: --devices, --seed and --set change the scenario before it runs", "[cli][run][integration]") {
  temp_dir dir;
  const auto scenario = write_scenario(dir, "60s");
  const auto report = dir.path() / "report";
  const auto r = run_program(TWINFLEET_CLI,
                             {"run", scenario.string(), "--devices", "12", "--seed", "9", "--set", "phases[0].duration=2s",
                              "--set", "phases.0.backend.method_calls=0/s", "--quiet", "--report-dir", report.string()},
                             60s);
  INFO("stdout: " << r.out << "\nstderr: " << r.err);
  REQUIRE(r.exit_code == 0);
  std::ifstream in(report / "summary.json");
  REQUIRE(in);
  const auto summary = boost::json::parse(std::string(std::istreambuf_iterator<char>(in), {}));
  CHECK(summary.at("devices").at("planned") == 12);  // 20 + 10 scaled to 8 + 4
  CHECK(summary.at("seed") == 9);
  CHECK(summary.at("duration_s").to_number<double>() < 10);  // 2 s, not 60 s
  CHECK(summary.at("operations").as_object().if_contains("method") == nullptr);

  // A --set that names no key of the scenario is an error with the key path, exit 2.
  const auto bad = run_program(TWINFLEET_CLI, {"run", scenario.string(), "--set", "phases.3.duration=1s"}, 30s);
  CHECK(bad.exit_code == 2);
  CHECK(bad.err.find("--set phases.3.duration") != std::string::npos);
  CHECK(bad.err.find("not an index") != std::string::npos);
  const auto typo = run_program(TWINFLEET_CLI, {"run", scenario.string(), "--set", "sed=3"}, 30s);
  CHECK(typo.exit_code == 2);
  CHECK(typo.err.find("unknown key 'sed'") != std::string::npos);
  // A bad duration flag is said once, before any worker starts, exit 2.
  const auto slow = run_program(TWINFLEET_CLI, {"run", scenario.string(), "--workers", "2", "--settle", "soon"}, 30s);
  CHECK(slow.exit_code == 2);
  CHECK(slow.err == "twinfleet run: --settle soon: expected a duration such as 0s or 10s\n");
}

TEST_CASE("twinfleet run --wake-grid: devices wake for their reports on the grid, 0 for exact times", "[cli][run][integration]") {
  temp_dir dir;
  {
    std::ofstream p(dir.path() / "ticker.yaml");
    p << "name: ticker\nidentity: { id: \"tick-{index:02}\" }\nreported:\n  seq: { counter: { start: 0 }, every: 50ms }\n";
    std::ofstream s(dir.path() / "ticks.yaml");
    s << "name: ticks\nseed: 3\ntarget: { type: local, transport: tcp }\n"
      << "fleet:\n  - { profile: ticker.yaml, count: 10, dialect: azure }\n"
      << "ramp: { duration: 0s }\nphases:\n  - { name: tick, duration: 3s }\n";
  }
  const auto scenario = (dir.path() / "ticks.yaml").string();
  auto reports = [&](const std::string& grid) {
    const auto report = dir.path() / ("report-" + grid);
    const auto r = run_program(TWINFLEET_CLI, {"run", scenario, "--wake-grid", grid, "--settle", "0s", "--quiet", "--metrics-listen",
                                               "off", "--report-dir", report.string()},
                               60s);
    INFO("--wake-grid " << grid << "\nstdout: " << r.out << "\nstderr: " << r.err);
    REQUIRE(r.exit_code == 0);
    // The grid is in the summary, for whoever compares two runs.
    std::ifstream in(report / "summary.json");
    const auto summary = boost::json::parse(std::string(std::istreambuf_iterator<char>(in), {}));
    CHECK(summary.at("engine").at("wake_grid_ms").to_number<double>() == (grid == "0" ? 0.0 : 500.0));
    CHECK(r.out.find(grid == "0" ? ", exact wake times\n" : ", wake grid 500 ms\n") != std::string::npos);
    return count_of(r.out, "reported_patch");
  };
  // Exact times: 10 devices reporting every 50 ms for 3 s, ~600 patches (a slow machine loses
  // some, never half).
  const auto exact = reports("0");
  CHECK(exact > 300);
  // A 500 ms grid, ten times the interval: each device wakes at most twice a second for its
  // report, so at most ~9 patches in the ~4 s it is connected.
  const auto coarse = reports("500ms");
  CHECK(coarse > 0);
  CHECK(coarse <= 10 * 10);
  // A bad grid is said before anything starts, exit 2.
  const auto bad = run_program(TWINFLEET_CLI, {"run", scenario, "--wake-grid", "fast"}, 30s);
  CHECK(bad.exit_code == 2);
  CHECK(bad.err == "twinfleet run: --wake-grid fast: expected a duration such as 1ms or 0\n");
}

TEST_CASE("twinfleet run: a second Ctrl-C stops waiting, still writes the report, exit 130", "[cli][run][integration]") {
  // A hub that stops answering (SIGSTOP) leaves the back end's requests in flight, so after the
  // first Ctrl-C the run waits for them (bounded, 5 s); the second ends the wait at once.
  temp_dir hub_dir;
  child_process hub(TWINFLEET_CLI, {"hub", "--certs", hub_dir.path().string(), "--listen-mqtts", "127.0.0.1:0",
                                    "--listen-https", "127.0.0.1:0", "--listen-http", "127.0.0.1:0"});
  REQUIRE(hub.wait_until([&] { return hub.out().find("twinfleet hub ready") != std::string::npos; }, 20s));
  temp_dir dir;
  const auto scenario =
      write_scenario(dir, "60s", "{ type: hub, hub_json: " + (hub_dir.path() / "hub.json").string() + ", transport: tls }");
  const auto report = dir.path() / "report";
  child_process run(TWINFLEET_CLI, {"run", scenario.string(), "--report-dir", report.string()});
  REQUIRE(run.wait_until([&] { return run.out().find("[    2s steady] connected") != std::string::npos; }, 30s));
  ::kill(hub.pid(), SIGSTOP);
  // Writes keep being sent at 20/s to a hub that no longer answers.
  const auto lines = [&] { return std::count(run.out().begin(), run.out().end(), '\n'); };
  const auto before = lines();
  REQUIRE(run.wait_until([&] { return lines() > before; }, 5s));  // a progress line later
  ::kill(run.pid(), SIGINT);
  REQUIRE(run.wait_until([&] { return run.err().find("Ctrl-C again") != std::string::npos; }, 10s));
  const auto second = std::chrono::steady_clock::now();
  const int code = run.stop(SIGINT, 4s);  // well before the 5 s the first stop would wait
  const auto took = std::chrono::steady_clock::now() - second;
  ::kill(hub.pid(), SIGCONT);
  INFO("stdout: " << run.out() << "\nstderr: " << run.err());
  CHECK(code == 130);
  CHECK(took < 4s);
  CHECK(run.err().find("stopping now") != std::string::npos);
  std::ifstream in(report / "summary.json");
  REQUIRE(in);
  const auto summary = boost::json::parse(std::string(std::istreambuf_iterator<char>(in), {}));
  CHECK(summary.at("interrupted") == true);
  CHECK(summary.at("devices").at("connected_peak") == 30);
  hub.stop(SIGTERM);
}

TEST_CASE("twinfleet profiles lists the shipped profiles", "[cli]") {
  const auto r = run_program(TWINFLEET_CLI, {"profiles"}, 30s);
  INFO(r.out << r.err);
  CHECK(r.exit_code == 0);
  for (const char* name : {"lightbulb", "thermostat", "raspberry-pi", "mxchip-devkit"}) {
    CHECK((r.out.find(std::string("\n") + name) != std::string::npos || r.out.starts_with(name)));
  }
  CHECK(r.out.find("desired propert") != std::string::npos);
}

TEST_CASE("twinfleet run: thresholds are judged, reported in junit.xml and report.html, and a failure exits 99",
          "[cli][run][integration]") {
  temp_dir dir;
  const auto scenario = write_scenario(dir, "3s");
  {
    std::ofstream out(scenario, std::ios::app);
    out << "thresholds:\n  connect: [count >= 30, count > 1000000]\n  anomalies: count == 0\n";
  }
  const auto report = dir.path() / "report";
  const auto r = run_program(TWINFLEET_CLI,
                             {"run", scenario.string(), "--quiet", "--metrics-listen", "off", "--report-dir", report.string()}, 90s);
  INFO("stdout: " << r.out << "\nstderr: " << r.err);
  CHECK(r.exit_code == 99);
  CHECK(r.out.find("\u2713 connect count >= 30 (30)") != std::string::npos);
  CHECK(r.out.find("\u2717 connect count > 1000000 (30, under by") != std::string::npos);
  CHECK(r.out.find("\u2713 anomalies count == 0 (0)") != std::string::npos);
  std::ifstream junit(report / "junit.xml");
  REQUIRE(junit);
  const std::string xml(std::istreambuf_iterator<char>(junit), {});
  CHECK(xml.find("<testcase") != std::string::npos);
  CHECK(xml.find("<failure") != std::string::npos);
  CHECK(std::filesystem::file_size(report / "report.html") > 1000);
  std::ifstream in(report / "summary.json");
  const auto summary = boost::json::parse(std::string(std::istreambuf_iterator<char>(in), {}));
  const auto& thresholds = summary.at("thresholds").as_array();
  REQUIRE(thresholds.size() == 3);
  CHECK(thresholds[1].at("ok") == false);
  CHECK(summary.at("sync").at("anomalies").at("lost_update") == 0);
  CHECK(summary.at("timeline").as_array().size() >= 2);
  // Every device's subscriptions are timed, and AWS writes reach the things as deltas.
  CHECK(summary.at("operations").at("subscribe").at("count").to_number<std::int64_t>() >= 30);
  CHECK(summary.at("operations").at("delta_delivery").at("count").to_number<std::int64_t>() > 0);
}

TEST_CASE("twinfleet run --workers 2: two processes share the fleet, one merged report", "[cli][run][integration]") {
  temp_dir dir;
  const auto scenario = write_scenario(dir, "3s");
  const auto report = dir.path() / "report";
  const auto r = run_program(TWINFLEET_CLI,
                             {"run", scenario.string(), "--workers", "2", "--metrics-listen", "off", "--report-dir", report.string()},
                             120s);
  INFO("stdout: " << r.out << "\nstderr: " << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.find("in 2 worker processes") != std::string::npos);
  CHECK(r.out.find("connected 30/30") != std::string::npos);  // the combined live line
  auto load = [](const std::filesystem::path& file) {
    std::ifstream in(file);
    return boost::json::parse(std::string(std::istreambuf_iterator<char>(in), {})).as_object();
  };
  const auto w0 = load(report / "workers/0/summary.json");
  const auto w1 = load(report / "workers/1/summary.json");
  const auto merged = load(report / "summary.json");
  // Devices i mod 2: 15 each; the merge adds them up, and counts of operations too.
  CHECK(w0.at("devices").at("planned") == 15);
  CHECK(w1.at("devices").at("planned") == 15);
  CHECK(merged.at("devices").at("planned") == 30);
  CHECK(merged.at("devices").at("connected_peak") == 30);
  CHECK(merged.at("engine").at("workers") == 2);
  const auto count = [](const boost::json::object& s, const char* op) {
    return s.at("operations").at(op).at("count").to_number<std::int64_t>();
  };
  CHECK(count(merged, "connect") == count(w0, "connect") + count(w1, "connect"));
  CHECK(count(merged, "connect") >= 30);  // reconnects count too
  // Each worker drove half of the back end's 20 writes/s.
  const auto writes = merged.at("sync").at("desired_writes").to_number<std::int64_t>();
  CHECK(writes > 40);
  CHECK(writes < 80);
  CHECK(merged.at("sync").at("converged") == writes);
  CHECK(std::filesystem::exists(report / "report.html"));
}

TEST_CASE("twinfleet run: the Prometheus endpoint serves the run's metrics and lingers for a last scrape",
          "[cli][run][integration]") {
  temp_dir dir;
  const auto scenario = write_scenario(dir, "3s");
  const auto port = std::to_string(twinfleet::test::free_local_port());
  child_process run(TWINFLEET_CLI, {"run", scenario.string(), "--quiet", "--metrics-listen", "127.0.0.1:" + port,
                                    "--metrics-linger", "20s"});
  // The summary is printed before the endpoint's last 20 s: scrape then.
  REQUIRE(run.wait_until([&] { return run.out().find("sync: ") != std::string::npos; }, 90s));
  const auto scrape = run_program("curl", {"-sf", "http://127.0.0.1:" + port + "/metrics"}, 10s);
  INFO("stdout: " << run.out() << "\nmetrics: " << scrape.out.substr(0, 4000));
  REQUIRE(scrape.exit_code == 0);
  auto value = [&](const std::string& series) {
    std::smatch m;
    const std::regex line("\n" + series + " ([0-9.e+]+)");
    return std::regex_search(scrape.out, m, line) ? std::stod(m[1]) : -1.0;
  };
  // Every device connected once: 20 Azure bulbs and 10 AWS thermostats.
  CHECK(value(R"(twinfleet_connects_total\{backend="azure",profile="lightbulb",outcome="ok"\})") >= 20);
  CHECK(value(R"(twinfleet_connects_total\{backend="aws",profile="thermostat",outcome="ok"\})") >= 10);
  CHECK(value(R"(twinfleet_devices_planned\{backend="azure",profile="lightbulb"\})") == 20);
  CHECK(value(R"(twinfleet_operation_duration_seconds_count\{backend="azure",profile="lightbulb",operation="desired_write"\})") > 0);
  CHECK(scrape.out.find("twinfleet_operation_duration_seconds_bucket{backend=\"azure\",profile=\"lightbulb\",operation=\"connect\",le=\"0.005\"}") !=
        std::string::npos);
  CHECK(value(R"(twinfleet_sync_anomalies_total\{backend="azure",profile="lightbulb",outcome="lost_update"\})") == 0);
  CHECK(run.stop(SIGINT) == 0);  // Ctrl-C cuts the linger short
}
