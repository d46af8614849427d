// `twinfleet hub --state-file`: the real process on loopback, written to through the REST APIs
// with curl, stopped with SIGTERM, restarted on the same file; and refusing a corrupt file.
// Every wait is bounded; every hub is stopped.
#include <twinfleet/auth/sas.hpp>

#include "catch_printers.hpp"
#include "process.hpp"
#include "test_data.hpp"

#include <boost/json.hpp>

#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <csignal>
#include <fstream>

namespace json = boost::json;
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using twinfleet::test::child_process;
using twinfleet::test::run_program;
using twinfleet::test::temp_dir;

namespace {

const std::string device_key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

std::vector<std::string> hub_args(const fs::path& dir, const fs::path& state) {
  return {"hub", "--certs", dir.string(), "--listen-mqtts", "127.0.0.1:0", "--listen-https", "127.0.0.1:0",
          "--state-file", state.string()};
}

// One run of the hub on `dir` (certificates and hub.json: the second run reuses the keys).
class hub_run {
 public:
  hub_run(const fs::path& dir, const fs::path& state) : dir_(dir), process_(TWINFLEET_CLI, hub_args(dir, state)) {
    const bool ready =
        process_.wait_until([&] { return process_.out().find("twinfleet hub ready") != std::string::npos; }, 20s);
    INFO("hub stdout: " << process_.out() << "\nhub stderr: " << process_.err());
    REQUIRE(ready);
    std::ifstream in(dir / "hub.json");
    info_ = json::parse(std::string(std::istreambuf_iterator<char>(in), {})).as_object();
    for (const auto& e : info_.at("endpoints").as_array()) {
      if (e.at("protocol") == "https") https_port_ = static_cast<int>(e.at("port").to_number<std::int64_t>());
    }
    REQUIRE(https_port_ > 0);
  }
  ~hub_run() { process_.stop(SIGTERM); }

  child_process& process() { return process_; }

  std::string owner_auth() const {
    std::string key;
    for (const auto& p : info_.at("azure").at("policies").as_array()) {
      if (p.at("name") == "iothubowner") key = p.at("primary_key").as_string().c_str();
    }
    const auto expiry = std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now()) + 1h;
    return "Authorization: " + twinfleet::auth::create_sas_token({"localhost", key, expiry,
                                                                  std::string_view("iothubowner"),
                                                                  twinfleet::auth::hex_case::upper})
                                   .value();
  }

  std::vector<std::string> sigv4() const {
    const auto& aws = info_.at("aws");
    return {"--aws-sigv4", "aws:amz:us-east-1:iotdata", "--user",
            std::string(aws.at("access_key_id").as_string()) + ":" + std::string(aws.at("secret_access_key").as_string())};
  }

  // curl against the HTTPS API; returns {status, body}.
  std::pair<int, std::string> rest(const std::string& method, const std::string& path, const std::string& body,
                                   std::vector<std::string> headers, const std::vector<std::string>& extra = {}) const {
    std::vector<std::string> args{"-sS", "--max-time", "15", "--cacert", (dir_ / "ca.pem").string(), "-X", method,
                                  "-w", "\n%{http_code}"};
    args.insert(args.end(), extra.begin(), extra.end());
    for (const auto& h : headers) {
      args.push_back("-H");
      args.push_back(h);
    }
    if (!body.empty()) {
      args.push_back("-H");
      args.push_back("Content-Type: application/json");
      args.push_back("--data-binary");
      args.push_back(body);
    }
    args.push_back("https://127.0.0.1:" + std::to_string(https_port_) + path);
    const auto r = run_program("curl", args, 20s);
    INFO("curl stderr: " << r.err);
    REQUIRE(r.exit_code == 0);
    const auto cut = r.out.rfind('\n');
    return {std::stoi(r.out.substr(cut + 1)), r.out.substr(0, cut)};
  }

 private:
  fs::path dir_;
  child_process process_;
  json::object info_;
  int https_port_ = 0;
};

}  // namespace

TEST_CASE("hub process: --state-file keeps identities, twins and shadows across a SIGTERM restart",
          "[hub][integration][persist]") {
  const temp_dir tmp;
  const auto state = tmp.path() / "state.jsonl";
  json::object twin_before;
  json::object shadow_before;
  std::string old_etag;
  {
    hub_run hub(tmp.path(), state);
    const auto owner = hub.owner_auth();
    auto [status, body] = hub.rest("PUT", "/devices/dev1?api-version=2021-04-12",
                                   R"({"authentication":{"type":"sas","symmetricKey":{"primaryKey":")" + device_key +
                                       R"(","secondaryKey":")" + device_key + R"("}}})",
                                   {owner});
    REQUIRE(status == 200);
    std::tie(status, body) = hub.rest("PATCH", "/twins/dev1?api-version=2021-04-12",
                                      R"({"tags":{"site":"lab"},"properties":{"desired":{"interval":5}}})", {owner});
    REQUIRE(status == 200);
    old_etag = json::parse(body).at("etag").as_string().c_str();
    std::tie(status, body) = hub.rest("PATCH", "/twins/dev1?api-version=2021-04-12",
                                      R"({"properties":{"desired":{"interval":6}}})", {owner});
    REQUIRE(status == 200);
    twin_before = json::parse(body).as_object();

    for (int i = 0; i < 2; ++i) {
      std::tie(status, body) =
          hub.rest("POST", "/things/lamp-1/shadow", R"({"state":{"desired":{"on":true}}})", {}, hub.sigv4());
      REQUIRE(status == 200);
    }
    std::tie(status, body) =
        hub.rest("POST", "/things/lamp-1/shadow?name=cfg", R"({"state":{"reported":{"fw":"1.0"}}})", {}, hub.sigv4());
    REQUIRE(status == 200);
    std::tie(status, body) = hub.rest("DELETE", "/things/lamp-1/shadow?name=cfg", {}, {}, hub.sigv4());
    REQUIRE(status == 200);
    std::tie(status, body) = hub.rest("GET", "/things/lamp-1/shadow", {}, {}, hub.sigv4());
    REQUIRE(status == 200);
    shadow_before = json::parse(body).as_object();

    CHECK(hub.process().stop(SIGTERM) == 0);
    INFO("hub stdout: " << hub.process().out());
    CHECK(hub.process().out().find("state saved to " + state.string()) != std::string::npos);
  }

  // The file: private, of the documented format, one line per record.
  struct stat st {};
  REQUIRE(::stat(state.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  const auto text = twinfleet::test::read_file(state);
  const auto header = json::parse(text.substr(0, text.find('\n'))).as_object();
  CHECK(header.at("format") == "twinfleet-hub-state");
  CHECK(header.at("version") == 1);
  CHECK(header.at("azureDevices") == 1);
  CHECK(header.at("awsThings") == 1);

  {
    hub_run hub(tmp.path(), state);
    CHECK(hub.process().out().find("loaded 1 Azure identities and 2 AWS shadows") != std::string::npos);
    const auto owner = hub.owner_auth();
    auto [status, body] = hub.rest("GET", "/twins/dev1?api-version=2021-04-12", {}, {owner});
    REQUIRE(status == 200);
    const auto twin_after = json::parse(body).as_object();
    CHECK(twin_after.at("etag") == twin_before.at("etag"));
    CHECK(twin_after.at("version") == twin_before.at("version"));
    CHECK(twin_after.at("tags") == twin_before.at("tags"));
    CHECK(twin_after.at("properties").at("desired") == twin_before.at("properties").at("desired"));

    std::tie(status, body) = hub.rest("GET", "/devices/dev1?api-version=2021-04-12", {}, {owner});
    REQUIRE(status == 200);
    CHECK(json::parse(body).at("authentication").at("symmetricKey").at("primaryKey") == device_key.c_str());

    // An If-Match with the etag from before the restart: stale is refused, current accepted.
    std::tie(status, body) = hub.rest("PATCH", "/twins/dev1?api-version=2021-04-12", R"({"tags":{"x":1}})",
                                      {owner, "If-Match: \"" + old_etag + "\""});
    CHECK(status == 412);
    std::tie(status, body) =
        hub.rest("PATCH", "/twins/dev1?api-version=2021-04-12", R"({"tags":{"x":1}})",
                 {owner, "If-Match: \"" + std::string(twin_before.at("etag").as_string()) + "\""});
    CHECK(status == 200);

    std::tie(status, body) = hub.rest("GET", "/things/lamp-1/shadow", {}, {}, hub.sigv4());
    REQUIRE(status == 200);
    auto shadow_after = json::parse(body).as_object();
    CHECK(shadow_after.at("version") == shadow_before.at("version"));
    CHECK(shadow_after.at("state") == shadow_before.at("state"));
    CHECK(shadow_after.at("metadata") == shadow_before.at("metadata"));
    // The deleted named shadow is still gone, and re-creating it continues its version (B5).
    std::tie(status, body) = hub.rest("GET", "/things/lamp-1/shadow?name=cfg", {}, {}, hub.sigv4());
    CHECK(status == 404);
    std::tie(status, body) =
        hub.rest("POST", "/things/lamp-1/shadow?name=cfg", R"({"state":{"reported":{"fw":"1.1"}}})", {}, hub.sigv4());
    REQUIRE(status == 200);
    CHECK(json::parse(body).at("version") == 2);
    CHECK(hub.process().stop(SIGTERM) == 0);
  }
}

TEST_CASE("hub process: a corrupt state file stops the start with the file and the fault named",
          "[hub][integration][persist]") {
  const temp_dir tmp;
  const auto state = tmp.path() / "state.jsonl";
  std::ofstream(state) << R"({"format":"twinfleet-hub-state","version":1,"saved":"2024-01-15T10:00:00.0000000Z","azureDevices":1,"awsThings":0})"
                       << "\n"
                       << R"({"azureDevice":{"deviceId":"dev1"}})" << "\n";
  const auto r = run_program(TWINFLEET_CLI, hub_args(tmp.path(), state), 30s);
  INFO("stdout: " << r.out << "\nstderr: " << r.err);
  CHECK_FALSE(r.timed_out);
  CHECK(r.exit_code != 0);
  CHECK(r.err.find("cannot load the state file " + state.string() + ": line 2: device 'dev1': authType: missing") !=
        std::string::npos);
  CHECK(r.out.find("twinfleet hub ready") == std::string::npos);
  // The bad file is left as it was, for the user to look at.
  CHECK(twinfleet::test::read_file(state).find("\"deviceId\":\"dev1\"") != std::string::npos);
}
