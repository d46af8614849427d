// The real twinfleet binary: --version, --help, `sas` and `certs`, run as a child process with
// its output captured and a deadline on every run.
#include <twinfleet/auth/sas.hpp>
#include <twinfleet/auth/tls.hpp>
#include <twinfleet/auth/x509.hpp>

#include "test_data.hpp"

#include "catch_printers.hpp"
#include "process.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <fstream>
#include <regex>
#include <string>
#include <vector>

namespace auth = twinfleet::auth;
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using twinfleet::test::temp_dir;



namespace {

using twinfleet::test::run_result;

// Runs the CLI with `args`; bounded by `timeout`, after which the child is killed.
run_result run_cli(const std::vector<std::string>& args, std::chrono::milliseconds timeout = 30s) {
  return twinfleet::test::run_program(TWINFLEET_CLI, args, timeout);
}

std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  return s;
}

constexpr const char* vector_key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

}  // namespace

TEST_CASE("twinfleet --version prints the version", "[cli]") {
  const auto r = run_cli({"--version"});
  REQUIRE_FALSE(r.timed_out);
  CHECK(r.exit_code == 0);
  CHECK(std::regex_match(trimmed(r.out), std::regex(R"(twinfleet \d+\.\d+\.\d+)")));
}

TEST_CASE("twinfleet --help lists the auth commands", "[cli]") {
  const auto r = run_cli({"--help"});
  REQUIRE_FALSE(r.timed_out);
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("sas") != std::string::npos);
  CHECK(r.out.find("certs") != std::string::npos);

  const auto sas = run_cli({"sas", "--help"});
  CHECK(sas.exit_code == 0);
  for (const char* option : {"--resource", "--key", "--policy", "--ttl", "--expiry", "--lowercase"}) {
    CAPTURE(option);
    CHECK(sas.out.find(option) != std::string::npos);
  }
  const auto certs = run_cli({"certs", "--help"});
  CHECK(certs.exit_code == 0);
  for (const char* option : {"--client", "--san", "--days", "--new-ca"}) {
    CAPTURE(option);
    CHECK(certs.out.find(option) != std::string::npos);
  }
}

TEST_CASE("an unknown command fails", "[cli]") {
  const auto r = run_cli({"no-such-command"});
  REQUIRE_FALSE(r.timed_out);
  CHECK(r.exit_code != 0);
  CHECK_FALSE(r.err.empty());
}

TEST_CASE("twinfleet sas prints the A9 vector token", "[cli][sas]") {
  const auto r = run_cli({"sas", "--resource", "myhub.azure-devices.net/devices/device1", "--key", vector_key,
                          "--expiry", "1700000000"});
  REQUIRE_FALSE(r.timed_out);
  CHECK(r.exit_code == 0);
  CHECK(r.err.empty());
  CHECK(r.out ==
        "SharedAccessSignature sr=myhub.azure-devices.net%2Fdevices%2Fdevice1"
        "&sig=gFSfLGMXDOvf906%2FiaX3KwzLLNFHgaFZyCbsGjxtd1Y%3D&se=1700000000\n");

  const auto lower = run_cli({"sas", "-r", "myhub.azure-devices.net/devices/device1", "-k", vector_key,
                              "--expiry", "1700000000", "--lowercase"});
  CHECK(lower.exit_code == 0);
  const auto parsed = auth::parse_sas_token(trimmed(lower.out));
  REQUIRE(parsed);
  CHECK(parsed->resource_raw == "myhub.azure-devices.net%2fdevices%2fdevice1");
  CHECK(parsed->signature == "iIyvul1z7xsjQDMXvGvUxZi+lqnXkFn5lOgyNrICYDM=");
}

TEST_CASE("twinfleet sas with a policy and a ttl makes a token the hub accepts", "[cli][sas]") {
  const auto before = std::chrono::system_clock::now();
  const auto r = run_cli({"sas", "--resource", "myhub.azure-devices.net", "--key", vector_key, "--policy",
                          "iothubowner", "--ttl", "2h"});
  REQUIRE_FALSE(r.timed_out);
  REQUIRE(r.exit_code == 0);
  const std::string token = trimmed(r.out);
  const auto verified = auth::verify_sas_token(token, vector_key, "myhub.azure-devices.net/devices/d1",
                                               std::chrono::system_clock::now());
  REQUIRE(verified);
  CHECK(verified->signer() == auth::sas_signer::policy);
  CHECK(verified->policy_name == "iothubowner");
  CHECK(verified->expiry >= std::chrono::floor<std::chrono::seconds>(before) + 2h);
  CHECK(verified->expiry <= std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now()) + 2h);
  // The default lifetime is an hour.
  const auto d = run_cli({"sas", "-r", "h/devices/x", "-k", vector_key});
  REQUIRE(d.exit_code == 0);
  const auto parsed = auth::parse_sas_token(trimmed(d.out)).value();
  CHECK(parsed.expiry > std::chrono::floor<std::chrono::seconds>(before) + 59min);
  CHECK(parsed.expiry <= std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now()) + 1h);
}

TEST_CASE("twinfleet sas refuses bad input clearly", "[cli][sas]") {
  struct bad_case {
    std::vector<std::string> args;
    std::string mention;
  };
  const bad_case cases[] = {
      {{"sas", "--resource", "h/devices/d", "--key", "not base64!"}, "--key"},
      {{"sas", "--resource", "h/devices/d", "--key", ""}, "--key"},
      {{"sas", "--key", vector_key}, "--resource"},
      {{"sas", "--resource", "h/devices/d"}, "--key"},
      {{"sas", "--resource", "https://h/devices/d", "--key", vector_key}, "scheme"},
      {{"sas", "--resource", "h/devices/d", "--key", vector_key, "--ttl", "soon"}, "duration"},
      {{"sas", "--resource", "h/devices/d", "--key", vector_key, "--ttl", "-5s"}, "duration"},
      {{"sas", "--resource", "h/devices/d", "--key", vector_key, "--ttl", "0"}, "duration"},
      {{"sas", "--resource", "h/devices/d", "--key", vector_key, "--ttl", "1h", "--expiry", "1700000000"}, "--ttl"},
      {{"sas", "--resource", "h/devices/d", "--key", vector_key, "--expiry", "tomorrow"}, "--expiry"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.args);
    const auto r = run_cli(c.args);
    REQUIRE_FALSE(r.timed_out);
    CHECK(r.exit_code != 0);
    CHECK(r.out.empty());
    CHECK(r.err.find(c.mention) != std::string::npos);
  }
}

TEST_CASE("twinfleet certs writes files that load as TLS contexts", "[cli][certs]") {
  const temp_dir dir;
  const fs::path out = dir.path() / "certs";
  const auto r = run_cli({"certs", out.string(), "--client", "device-1", "--client", "thing-2", "--san",
                          "hub.twinfleet.test", "--days", "30"});
  REQUIRE_FALSE(r.timed_out);
  REQUIRE(r.exit_code == 0);
  CHECK(r.err.empty());
  for (const char* name : {"ca.pem", "ca.key", "server.pem", "server.key", "client-device-1.pem",
                           "client-device-1.key", "client-thing-2.pem", "client-thing-2.key"}) {
    CAPTURE(name);
    CHECK(fs::is_regular_file(out / name));
    CHECK(r.out.find((out / name).string()) != std::string::npos);
  }
  CHECK(r.out.find("localhost, 127.0.0.1, ::1, hub.twinfleet.test") != std::string::npos);
  const auto device = auth::read_certificate_file(out / "client-device-1.pem").value();
  CHECK(device.subject_common_name == "device-1");
  CHECK(r.out.find("SHA-1 thumbprint " + device.sha1_thumbprint) != std::string::npos);
  CHECK(r.out.find("SHA-256 thumbprint " + device.sha256_thumbprint) != std::string::npos);
  CHECK(device.not_after < std::chrono::system_clock::now() + std::chrono::days{31});
  const auto server = auth::read_certificate_file(out / "server.pem").value();
  CHECK(server.dns_names == std::vector<std::string>{"localhost", "hub.twinfleet.test"});

  auth::tls_server_config server_config;
  server_config.certificate_chain_file = out / "server.pem";
  server_config.private_key_file = out / "server.key";
  server_config.client_ca_file = out / "ca.pem";
  server_config.client_certificates = auth::client_certificate_mode::require;
  CHECK(auth::make_tls_server_context(server_config));

  auth::tls_client_config client_config;
  client_config.ca_file = out / "ca.pem";
  client_config.certificate_chain_file = out / "client-thing-2.pem";
  client_config.private_key_file = out / "client-thing-2.key";
  CHECK(auth::make_tls_client_context(client_config));

  // A second run keeps the CA, so the first run's clients stay valid.
  const auto ca_before = auth::read_certificate_file(out / "ca.pem").value();
  const auto again = run_cli({"certs", out.string(), "--client", "device-3"});
  REQUIRE(again.exit_code == 0);
  CHECK(again.out.find("kept ") != std::string::npos);
  CHECK(auth::read_certificate_file(out / "ca.pem").value().sha256_thumbprint == ca_before.sha256_thumbprint);
  CHECK(fs::is_regular_file(out / "client-device-3.pem"));
}

TEST_CASE("twinfleet certs refuses bad input clearly", "[cli][certs]") {
  const temp_dir dir;
  std::ofstream(dir.path() / "a-file") << "x";

  const auto bad_san = run_cli({"certs", (dir.path() / "x").string(), "--san", "bad,name"});
  CHECK(bad_san.exit_code != 0);
  CHECK(bad_san.err.find("--san") != std::string::npos);
  CHECK_FALSE(fs::exists(dir.path() / "x"));

  const auto bad_cn = run_cli({"certs", (dir.path() / "x").string(), "--client", std::string(65, 'a')});
  CHECK(bad_cn.exit_code != 0);
  CHECK(bad_cn.err.find("--client") != std::string::npos);

  const auto clash = run_cli({"certs", (dir.path() / "x").string(), "--client", "a/b", "--client", "a_b"});
  CHECK(clash.exit_code != 0);
  CHECK(clash.err.find("same file name") != std::string::npos);
  CHECK_FALSE(fs::exists(dir.path() / "x"));

  const auto no_dir = run_cli({"certs"});
  CHECK(no_dir.exit_code != 0);
  CHECK(no_dir.err.find("dir") != std::string::npos);

  const auto unwritable = run_cli({"certs", (dir.path() / "a-file").string()});
  CHECK(unwritable.exit_code != 0);
  CHECK(unwritable.err.find("cannot write into") != std::string::npos);
  CHECK(unwritable.out.empty());

  const auto days = run_cli({"certs", (dir.path() / "y").string(), "--days", "0"});
  CHECK(days.exit_code != 0);
  CHECK(days.err.find("--days") != std::string::npos);
}
