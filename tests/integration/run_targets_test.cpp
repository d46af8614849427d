// `twinfleet run` with `target: azure` and `target: aws`: the code paths that talk to Azure IoT
// Hub and AWS IoT, run against a real `twinfleet hub` process (strict auth) over TLS on
// loopback — the registry REST API with SAS policy keys, device SAS keys, the data plane with
// SigV4, devices over mutual TLS with the hub CA's certificates. Each run must connect every
// device and see every desired write converge (summary.json), and the hub must show what the
// run provisioned. Wrong credentials end as reported failures, never as a hang.
#include "process.hpp"
#include "test_data.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>

#include <catch2/catch.hpp>

#include <csignal>
#include <cstdlib>
#include <fstream>
#include <regex>

using namespace std::chrono_literals;
using twinfleet::test::child_process;
using twinfleet::test::run_program;
using twinfleet::test::temp_dir;
namespace fs = std::filesystem;
namespace json = boost::json;

namespace {

const fs::path root = TWINFLEET_SOURCE_DIR;

json::object read_json(const fs::path& file) {
  std::ifstream in(file);
  REQUIRE(in);
  auto v = json::parse(std::string(std::istreambuf_iterator<char>(in), {}));
  REQUIRE(v.is_object());
  return v.as_object();
}

// A `twinfleet hub` on loopback ports of its choosing (MQTT/TLS, HTTPS, and plain HTTP for
// /metrics), with its hub.json.
struct hub_process {
  temp_dir dir;
  std::unique_ptr<child_process> process;
  json::object description;

  explicit hub_process(const std::string& auth, const std::vector<std::string>& clients = {}) {
    if (!clients.empty()) {
      // Client certificates from the hub's own CA, made before the hub starts with that CA.
      std::vector<std::string> args{"certs", dir.path().string()};
      for (const auto& c : clients) {
        args.push_back("--client");
        args.push_back(c);
      }
      const auto r = run_program(TWINFLEET_CLI, args, 60s);
      INFO(r.out << r.err);
      REQUIRE(r.exit_code == 0);
    }
    process = std::make_unique<child_process>(
        TWINFLEET_CLI, std::vector<std::string>{"hub", "--certs", dir.path().string(), "--auth", auth, "--listen-mqtts",
                                                "127.0.0.1:0", "--listen-https", "127.0.0.1:0", "--listen-http", "127.0.0.1:0"});
    REQUIRE(process->wait_until([&] { return process->out().find("twinfleet hub ready") != std::string::npos; }, 20s));
    description = read_json(dir.path() / "hub.json");
  }
  ~hub_process() {
    if (process) CHECK(process->stop(SIGTERM) == 0);
  }

  [[nodiscard]] std::string endpoint(std::string_view protocol) const {
    for (const auto& e : description.at("endpoints").as_array()) {
      if (e.at("protocol").as_string() == protocol) {
        return std::string(e.at("address").as_string()) + ":" + std::to_string(e.at("port").to_number<int>());
      }
    }
    FAIL("hub.json has no " << protocol << " endpoint");
    return {};
  }
  [[nodiscard]] std::string field(std::string_view section, std::string_view key) const {
    return std::string(description.at(section).at(key).as_string());
  }
  [[nodiscard]] std::string ca() const { return std::string(description.at("ca_file").as_string()); }

  // GET /metrics over the plain HTTP listener: the value of an unlabelled series, or -1.
  [[nodiscard]] double metric(const std::string& name) const {
    namespace beast = boost::beast;
    const auto at = endpoint("http");
    boost::asio::io_context io;
    boost::asio::ip::tcp::socket socket(io);
    socket.connect({boost::asio::ip::make_address(at.substr(0, at.rfind(':'))),
                    static_cast<unsigned short>(std::stoi(at.substr(at.rfind(':') + 1)))});
    beast::http::request<beast::http::empty_body> req(beast::http::verb::get, "/metrics", 11);
    req.set(beast::http::field::host, "127.0.0.1");
    beast::http::write(socket, req);
    beast::flat_buffer buffer;
    beast::http::response<beast::http::string_body> res;
    beast::http::read(socket, buffer, res);
    std::smatch m;
    const std::string& body = res.body();
    if (!std::regex_search(body, m, std::regex("\\n" + name + " ([0-9.e+]+)"))) return -1;
    return std::stod(m[1]);
  }
};

// A scenario of `count` devices of one profile and dialect: desired writes for `writes`, then
// a quiet second and a half so that every write has time to converge before the run ends.
fs::path write_scenario(const temp_dir& dir, const std::string& target, std::string_view profile, std::string_view dialect,
                        int count, std::string_view writes = "4s", std::string_view extra = "", std::string_view rate = "10/s",
                        std::string_view calls = "") {
  const auto file = dir.path() / "target.yaml";
  std::ofstream out(file);
  out << "name: targets\nseed: 9\ntarget:\n" << target << "fleet:\n"
      << "  - { profile: " << (root / "device-profiles" / (std::string(profile) + ".yaml")).string() << ", count: " << count
      << ", dialect: " << dialect << ", id: \"" << profile << "-{index:02}\"" << extra << " }\n"
      << "ramp: { rate: 100/s }\n"
      << "phases:\n"
      << "  - { name: writes, duration: " << writes << ", backend: { desired_writes: " << rate
      << (calls.empty() ? std::string() : ", method_calls: " + std::string(calls)) << " } }\n"
      << "  - { name: settle, duration: 1500ms }\n";
  return file;
}

struct run_outcome {
  twinfleet::test::run_result r;
  json::object summary;
};

run_outcome run(const fs::path& scenario, const fs::path& report) {
  run_outcome o;
  o.r = run_program(TWINFLEET_CLI, {"run", scenario.string(), "--quiet", "--threads", "2", "--report", report.string()}, 120s);
  if (o.r.exit_code == 0 && fs::exists(report / "summary.json")) o.summary = read_json(report / "summary.json");
  return o;
}

// Every device connected, desired writes happened, and each one converged.
void check_converged(const run_outcome& o, int devices, int min_writes = 20) {
  INFO("stdout: " << o.r.out << "\nstderr: " << o.r.err);
  REQUIRE(o.r.exit_code == 0);
  REQUIRE(!o.summary.empty());
  CHECK(o.summary.at("devices").at("planned") == devices);
  CHECK(o.summary.at("devices").at("connected_peak") == devices);
  CHECK(o.summary.at("devices").at("connect_failures") == 0);
  CHECK(o.summary.at("operations").at("connect").at("count") == devices);
  CHECK(o.summary.at("sync").at("desired_writes").to_number<int>() >= min_writes);  // 10/s planned
  CHECK(o.summary.at("sync").at("convergence_ratio").to_number<double>() == 1.0);
}

std::string azure_target(const hub_process& hub, const std::string& connection_string, const std::string& more = "") {
  return "  type: azure\n  connection_string: " + connection_string + "\n  registry_rate: 50/s\n  device_endpoint: " +
         hub.endpoint("mqtts") + "\n  rest_endpoint: " + hub.endpoint("https") + "\n  ca: " + hub.ca() + "\n" + more;
}

std::string aws_target(const hub_process& hub, const std::string& credentials) {
  return "  type: aws\n  endpoint: " + hub.field("aws", "endpoint") + "\n  region: " + hub.field("aws", "region") +
         "\n  ca: " + hub.ca() + "\n  device_endpoint: " + hub.endpoint("mqtts") + "\n  rest_endpoint: " + hub.endpoint("https") +
         "\n" + credentials;
}

}  // namespace

TEST_CASE("run target azure: identities created through the registry, devices on SAS keys, all converge",
          "[cli][run][integration]") {
  hub_process hub("strict");
  // The connection string comes from the environment, as a scenario file should take it.
  ::setenv("TWINFLEET_TEST_IOTHUB", hub.field("azure", "service_connection_string").c_str(), 1);
  temp_dir dir;
  const auto scenario = write_scenario(dir, azure_target(hub, "env:TWINFLEET_TEST_IOTHUB"), "lightbulb", "azure", 20);
  CHECK(hub.metric("twinfleet_hub_twins") == 0);
  const auto first = run(scenario, dir.path() / "first");
  check_converged(first, 20);
  CHECK(first.r.out.find("registry: 20 identities ready (20 created)") != std::string::npos);
  CHECK(hub.metric("twinfleet_hub_twins") == 20);  // the registry holds them

  // Again: the identities exist, are read (not created) and their keys still work.
  const auto again = run(write_scenario(dir, azure_target(hub, "env:TWINFLEET_TEST_IOTHUB"), "lightbulb", "azure", 20, "2s"),
                         dir.path() / "again");
  check_converged(again, 20, 10);
  CHECK(again.r.out.find("registry: 20 identities ready (0 created)") != std::string::npos);
  CHECK(hub.metric("twinfleet_hub_twins") == 20);
}

TEST_CASE("run target azure: a wrong service key or a missing device with create_devices false fails the run at once",
          "[cli][run][integration]") {
  hub_process hub("strict");
  temp_dir dir;
  auto cs = hub.field("azure", "service_connection_string");
  const auto key_at = cs.find("SharedAccessKey=") + std::string("SharedAccessKey=").size();
  cs.replace(key_at, cs.size() - key_at, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=");
  auto r = run(write_scenario(dir, azure_target(hub, "\"" + cs + "\""), "lightbulb", "azure", 5), dir.path() / "r").r;
  INFO("stdout: " << r.out << "\nstderr: " << r.err);
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("target.connection_string: IoT Hub refused the shared access key") != std::string::npos);

  const auto good = "\"" + hub.field("azure", "service_connection_string") + "\"";
  r = run(write_scenario(dir, azure_target(hub, good, "  create_devices: false\n"), "lightbulb", "azure", 5), dir.path() / "r2").r;
  INFO("second run: stdout: " << r.out << "\nstderr: " << r.err);
  CHECK(r.exit_code == 1);
  CHECK(std::regex_search(r.err, std::regex("device 'lightbulb-0[0-4]' is not in the registry and target.create_devices is false")));
  CHECK(hub.metric("twinfleet_hub_twins") == 0);
}

TEST_CASE("run target azure with group_key: keys derived, no registry calls, a wrong group key is connect failures",
          "[cli][run][integration]") {
  // Group-key devices are DPS-style: their identity appears on first connect, which the local
  // hub does in open auth mode (strict admits registered devices only).
  hub_process hub("open");
  ::setenv("TWINFLEET_TEST_GROUP_KEY", hub.field("azure", "group_key").c_str(), 1);
  temp_dir dir;
  const auto cs = "\"" + hub.field("azure", "service_connection_string") + "\"";
  const auto ok = run(write_scenario(dir, azure_target(hub, cs, "  group_key: env:TWINFLEET_TEST_GROUP_KEY\n"), "lightbulb",
                                     "azure", 20),
                      dir.path() / "ok");
  check_converged(ok, 20);
  CHECK(ok.r.out.find("registry:") == std::string::npos);
  CHECK(hub.metric("twinfleet_hub_twins") == 20);

  // Another group's key: every CONNECT is refused; the run reports it and ends on time.
  // (The console summary, not --report: report.html of a run without one connected device is
  // not this test's subject.)
  const auto bad = run_program(
      TWINFLEET_CLI,
      {"run",
       write_scenario(dir, azure_target(hub, cs, "  group_key: AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n"), "lightbulb",
                      "azure", 5, "2s")
           .string(),
       "--quiet"},
      60s);
  INFO("stdout: " << bad.out << "\nstderr: " << bad.err);
  REQUIRE(bad.exit_code == 0);
  std::smatch m;
  REQUIRE(std::regex_search(bad.out, m, std::regex("5 devices planned, 0 connected at the peak, ([0-9]+) connect failures")));
  CHECK(std::stoi(m[1]) >= 5);
  CHECK(bad.out.find("sync: 0 desired writes") != std::string::npos);
}

TEST_CASE("run target aws: per-device certificates from certificate_dir, SigV4 keys from the AWS environment variables, all converge",
          "[cli][run][integration]") {
  std::vector<std::string> things;
  for (int i = 0; i < 10; ++i) things.push_back("lightbulb-" + std::string(i < 10 ? "0" : "") + std::to_string(i));
  hub_process hub("strict", things);
  // The AWS console's file names, {id}.cert.pem and {id}.private.key.
  temp_dir certs;
  for (const auto& t : things) {
    fs::copy_file(hub.dir.path() / ("client-" + t + ".pem"), certs.path() / (t + ".cert.pem"));
    fs::copy_file(hub.dir.path() / ("client-" + t + ".key"), certs.path() / (t + ".private.key"));
  }
  ::setenv("AWS_ACCESS_KEY_ID", hub.field("aws", "access_key_id").c_str(), 1);
  ::setenv("AWS_SECRET_ACCESS_KEY", hub.field("aws", "secret_access_key").c_str(), 1);
  temp_dir dir;
  const auto scenario = write_scenario(dir, aws_target(hub, "  certificate_dir: " + certs.path().string() + "\n"), "lightbulb",
                                       "aws", 10, "4s", ", shadows: [schedule]");
  const auto o = run(scenario, dir.path() / "report");
  check_converged(o, 10);
  CHECK(o.summary.at("operations").at("shadow_update").at("count").to_number<int>() >= 20);
  CHECK(hub.metric("twinfleet_hub_shadows") >= 10);

  // A thing without a certificate is named before anything starts.
  fs::remove(certs.path() / "lightbulb-03.cert.pem");
  const auto missing = run(scenario, dir.path() / "missing").r;
  CHECK(missing.exit_code == 1);
  CHECK(missing.err.find("target.certificate_dir: no certificate for thing 'lightbulb-03'") != std::string::npos);
}

TEST_CASE("run target aws: one shared certificate and keys in the scenario, wrong keys fail the run at once",
          "[cli][run][integration]") {
  // A shared certificate acts for every thing only when its CN is one the hub lists as a back
  // end (aws.backend_common_names); on AWS, the policy attached to it decides.
  hub_process hub("strict", {"twinfleet-backend"});
  ::unsetenv("AWS_ACCESS_KEY_ID");
  ::unsetenv("AWS_SECRET_ACCESS_KEY");
  const auto shared = "  certificate: " + (hub.dir.path() / "client-twinfleet-backend.pem").string() +
                      "\n  key: " + (hub.dir.path() / "client-twinfleet-backend.key").string() + "\n";
  temp_dir dir;
  const auto keys = "  access_key_id: " + hub.field("aws", "access_key_id") + "\n  secret_access_key: \"" +
                    hub.field("aws", "secret_access_key") + "\"\n";
  const auto o = run(write_scenario(dir, aws_target(hub, shared + keys), "lightbulb", "aws", 10), dir.path() / "ok");
  check_converged(o, 10);
  CHECK(o.r.out.find("note: the back end's writes alone") == std::string::npos);  // 20 documents a second

  // 60 writes a second over 10 things: 120 documents a second on one observer connection, past
  // the 100 AWS IoT sends one; 12 a shadow, so 6 shadows a connection keep each under 80.
  const auto busy = run(write_scenario(dir, aws_target(hub, shared + keys), "lightbulb", "aws", 10, "2s", "", "60/s"),
                        dir.path() / "busy");
  INFO("stdout: " << busy.r.out << "\nstderr: " << busy.r.err);
  CHECK(busy.r.exit_code == 0);
  CHECK(busy.r.out.find("note: the back end's writes alone make about 120 shadow documents a second for each AWS observer "
                        "connection, and AWS IoT sends a connection at most 100: set aws_observer.shadows_per_connection to 6 "
                        "or fewer") != std::string::npos);
  CHECK(busy.r.out.find("AWS commands a second") == std::string::npos);  // no method calls

  // 150 commands a second: their answers pass the 100 a second one connection is sent.
  const auto calling = run(write_scenario(dir, aws_target(hub, shared + keys), "lightbulb", "aws", 10, "2s", "", "1/s", "150/s"),
                           dir.path() / "calling");
  INFO("stdout: " << calling.r.out << "\nstderr: " << calling.r.err);
  CHECK(calling.r.out.find("note: this process calls about 150 AWS commands a second, and their answers reach it on one MQTT "
                           "connection, which AWS IoT sends at most 100 messages a second") != std::string::npos);

  const auto wrong = "  access_key_id: " + hub.field("aws", "access_key_id") + "\n  secret_access_key: not-the-secret\n";
  const auto r = run(write_scenario(dir, aws_target(hub, shared + wrong), "lightbulb", "aws", 10), dir.path() / "bad").r;
  INFO("stdout: " << r.out << "\nstderr: " << r.err);
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("target.access_key_id / target.secret_access_key: the data plane refused the credentials") != std::string::npos);

  // Without keys in the scenario or the environment.
  const auto none = run_program(TWINFLEET_CLI, {"run", write_scenario(dir, aws_target(hub, shared), "thermostat", "aws", 2).string()}, 60s);
  CHECK(none.exit_code == 1);
  CHECK(none.err.find("target.access_key_id: not in the scenario, and AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not both set") !=
        std::string::npos);
}

TEST_CASE("run targets azure and aws: a missing secret, an unreadable certificate or an endpoint nobody answers is one line, exit 1",
          "[cli][run]") {
  temp_dir dir;
  const auto closed = "127.0.0.1:" + std::to_string(twinfleet::test::free_local_port());
  ::unsetenv("TWINFLEET_TEST_UNSET");
  auto r = run_program(TWINFLEET_CLI,
                       {"run", write_scenario(dir, "  type: azure\n  connection_string: env:TWINFLEET_TEST_UNSET\n", "lightbulb", "azure", 2)
                                   .string()},
                       30s);
  CHECK(r.exit_code == 1);
  CHECK(r.err == "twinfleet run: target.connection_string: the environment variable TWINFLEET_TEST_UNSET is not set\n");

  r = run_program(TWINFLEET_CLI,
                  {"run", write_scenario(dir,
                                         "  type: azure\n  connection_string: \"HostName=localhost;SharedAccessKeyName=iothubowner;"
                                         "SharedAccessKey=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\"\n  device_endpoint: " +
                                             closed + "\n",
                                         "lightbulb", "azure", 2)
                              .string()},
                  30s);
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("twinfleet run: target.device_endpoint: cannot reach " + closed) == 0);

  const auto ca = dir.path() / "ca.pem";
  std::ofstream(ca) << "not a certificate\n";
  r = run_program(TWINFLEET_CLI,
                  {"run", write_scenario(dir,
                                         "  type: aws\n  endpoint: localhost\n  region: us-east-1\n  ca: " + ca.string() +
                                             "\n  certificate: " + (dir.path() / "nosuch.pem").string() + "\n  key: " +
                                             (dir.path() / "nosuch.key").string() +
                                             "\n  access_key_id: AKID\n  secret_access_key: secret\n",
                                         "thermostat", "aws", 2)
                              .string()},
                  30s);
  CHECK(r.exit_code == 1);
  CHECK(r.err == "twinfleet run: target.certificate: cannot read " + (dir.path() / "nosuch.pem").string() + "\n");

  // A fleet of the other dialect cannot run on a cloud target.
  r = run_program(TWINFLEET_CLI,
                  {"run", write_scenario(dir, "  type: azure\n  connection_string: env:TWINFLEET_TEST_UNSET\n", "thermostat", "aws", 2)
                              .string()},
                  30s);
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("fleet[0]: dialect aws cannot run on target azure") != std::string::npos);
}
