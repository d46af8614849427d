// The real `twinfleet hub` process on loopback over TLS, driven by independent clients: Paho
// MQTT C++ (Azure device flows), mosquitto_pub and mosquitto_sub (AWS device and back-end
// flows) and curl (the REST service APIs). Every wait is bounded; the hub is stopped with
// SIGTERM and must exit 0.
#include <twinfleet/auth/sas.hpp>
#include <twinfleet/auth/sigv4.hpp>

#include "catch_printers.hpp"
#include "process.hpp"
#include "test_data.hpp"

#include <mqtt/async_client.h>

#include <boost/json.hpp>

#include <catch2/catch.hpp>

#include <csignal>
#include <fstream>
#include <thread>

namespace json = boost::json;
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using twinfleet::test::child_process;
using twinfleet::test::run_program;
using twinfleet::test::temp_dir;

namespace {

// A running hub with certificates for an AWS thing and a back end, and its hub.json.
class hub_process {
 public:
  explicit hub_process(std::vector<std::string> extra = {}) {
    // Client certificates first: the hub then reuses the same CA.
    const auto certs = run_program(TWINFLEET_CLI, {"certs", dir_.path().string(), "--client", "lamp-1", "--client",
                                                   "twinfleet-backend"});
    REQUIRE(certs.exit_code == 0);
    std::vector<std::string> args{"hub", "--certs", dir_.path().string(), "--listen-mqtts", "127.0.0.1:0",
                                  "--listen-https", "127.0.0.1:0"};
    args.insert(args.end(), extra.begin(), extra.end());
    process_.emplace(TWINFLEET_CLI, args);
    const bool ready =
        process_->wait_until([&] { return process_->out().find("twinfleet hub ready") != std::string::npos; }, 20s);
    INFO("hub stdout: " << process_->out() << "\nhub stderr: " << process_->err());
    REQUIRE(ready);
    std::ifstream in(dir_.path() / "hub.json");
    info_ = json::parse(std::string(std::istreambuf_iterator<char>(in), {})).as_object();
    for (const auto& e : info_.at("endpoints").as_array()) {
      const auto protocol = e.at("protocol").as_string();
      const auto port = static_cast<int>(e.at("port").to_number<std::int64_t>());
      if (protocol == "mqtts") mqtts_port = port;
      if (protocol == "https") https_port = port;
    }
    REQUIRE(mqtts_port > 0);
    REQUIRE(https_port > 0);
  }

  ~hub_process() {
    if (process_) process_->stop(SIGTERM);
  }

  const json::object& info() const { return info_; }
  fs::path file(std::string_view name) const { return dir_.path() / name; }
  std::string ca() const { return file("ca.pem").string(); }
  child_process& process() { return *process_; }

  // A SAS token for `resource` signed with the group-derived key of `device`.
  std::string device_token(std::string_view device) const {
    const auto group = std::string(info_.at("azure").at("group_key").as_string());
    const auto key = twinfleet::auth::derive_device_key(group, device).value();
    const auto expiry = std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now()) + 1h;
    return twinfleet::auth::create_sas_token({"localhost/devices/" + std::string(device), key, expiry, std::nullopt,
                                              twinfleet::auth::hex_case::upper})
        .value();
  }

  std::string owner_token() const {
    std::string key;
    for (const auto& p : info_.at("azure").at("policies").as_array()) {
      if (p.at("name") == "iothubowner") key = p.at("primary_key").as_string().c_str();
    }
    const auto expiry = std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now()) + 1h;
    return twinfleet::auth::create_sas_token({"localhost", key, expiry, std::string_view("iothubowner"),
                                              twinfleet::auth::hex_case::upper})
        .value();
  }

  // curl against the HTTPS API, trusting the hub's CA; returns {status, body}.
  std::pair<int, std::string> rest(const std::string& method, const std::string& path, const std::string& body = {},
                                   std::vector<std::string> headers = {}, std::vector<std::string> extra = {}) const {
    std::vector<std::string> args{"-sS", "--max-time", "15", "--cacert", ca(), "-X", method, "-w", "\n%{http_code}"};
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
    args.push_back("https://127.0.0.1:" + std::to_string(https_port) + path);
    const auto r = run_program("curl", args, 20s);
    INFO("curl stderr: " << r.err);
    REQUIRE(r.exit_code == 0);
    const auto cut = r.out.rfind('\n');
    return {std::stoi(r.out.substr(cut + 1)), r.out.substr(0, cut)};
  }

  int mqtts_port = 0;
  int https_port = 0;

 private:
  temp_dir dir_;
  std::optional<child_process> process_;
  json::object info_;
};

// A Paho client connected as an Azure device over TLS, consuming every message it receives.
class paho_device {
 public:
  paho_device(const hub_process& hub, const std::string& id)
      : client_("ssl://127.0.0.1:" + std::to_string(hub.mqtts_port), id,
                mqtt::create_options(MQTTVERSION_3_1_1)) {
    auto ssl = mqtt::ssl_options_builder().trust_store(hub.ca()).enable_server_cert_auth(true).finalize();
    auto options = mqtt::connect_options_builder()
                       .mqtt_version(MQTTVERSION_3_1_1)
                       .clean_session(false)
                       .keep_alive_interval(60s)
                       .user_name("localhost/" + id + "/?api-version=2021-04-12")
                       .password(hub.device_token(id))
                       .ssl(ssl)
                       .finalize();
    client_.start_consuming();
    REQUIRE(client_.connect(options)->wait_for(10s));
    REQUIRE(client_.is_connected());
  }
  ~paho_device() {
    try {
      if (client_.is_connected()) client_.disconnect()->wait_for(5s);
    } catch (const mqtt::exception&) {
    }
  }

  void subscribe(const std::string& filter, int qos) { REQUIRE(client_.subscribe(filter, qos)->wait_for(10s)); }
  void publish(const std::string& topic, const std::string& payload) {
    REQUIRE(client_.publish(topic, payload.data(), payload.size(), 1, false)->wait_for(10s));
  }
  // The next message, or null after 10 s.
  mqtt::const_message_ptr next() {
    mqtt::const_message_ptr msg;
    client_.try_consume_message_for(&msg, 10s);
    return msg;
  }
  mqtt::async_client& client() { return client_; }

 private:
  mqtt::async_client client_;
};

}  // namespace

TEST_CASE("hub process: hub.json names every endpoint and the credentials", "[hub][integration]") {
  hub_process hub;
  const auto& info = hub.info();
  CHECK(info.at("auth") == "open");
  CHECK(fs::exists(std::string(info.at("ca_file").as_string())));
  // The CA is also there as ca.crt, byte for byte.
  auto slurp = [](const fs::path& p) {
    std::ifstream in(p);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  CHECK(slurp(hub.file("ca.crt")) == slurp(hub.file("ca.pem")));
  CHECK_FALSE(slurp(hub.file("ca.pem")).empty());
  CHECK(info.at("azure").at("service_connection_string").as_string().starts_with("HostName=localhost:"));
  CHECK_FALSE(info.at("aws").at("access_key_id").as_string().empty());
  CHECK(fs::status(hub.file("hub.json")).permissions() ==
        (fs::perms::owner_read | fs::perms::owner_write));
  CHECK(hub.process().stop(SIGTERM) == 0);
  CHECK(hub.process().out().find("stopped") != std::string::npos);
}

TEST_CASE("hub process: an Azure device on Paho gets its twin, patches reported and receives desired",
          "[hub][integration][azure]") {
  hub_process hub;
  paho_device device(hub, "bulb-00001");
  device.subscribe("$iothub/twin/res/#", 0);
  device.subscribe("$iothub/twin/PATCH/properties/desired/#", 1);

  device.publish("$iothub/twin/GET/?$rid=1", " ");
  auto msg = device.next();
  REQUIRE(msg);
  CHECK(msg->get_topic() == "$iothub/twin/res/200/?$rid=1");
  CHECK(json::parse(msg->to_string()) == json::parse(R"({"desired":{"$version":1},"reported":{"$version":1}})"));

  device.publish("$iothub/twin/PATCH/properties/reported/?$rid=2", R"({"on":true,"brightness":80})");
  msg = device.next();
  REQUIRE(msg);
  CHECK(msg->get_topic() == "$iothub/twin/res/204/?$rid=2&$version=2");

  // The back end writes desired through the REST API with the iothubowner policy.
  const auto auth = "Authorization: " + hub.owner_token();
  auto [status, body] = hub.rest("PATCH", "/twins/bulb-00001?api-version=2021-04-12",
                                 R"({"properties":{"desired":{"brightness":40}}})", {auth, "If-Match: \"*\""});
  CHECK(status == 200);
  msg = device.next();
  REQUIRE(msg);
  CHECK(msg->get_topic() == "$iothub/twin/PATCH/properties/desired/?$version=2");
  CHECK(json::parse(msg->to_string()) == json::parse(R"({"brightness":40,"$version":2})"));

  std::tie(status, body) = hub.rest("GET", "/twins/bulb-00001", {}, {auth});
  CHECK(status == 200);
  const auto twin = json::parse(body);
  CHECK(twin.at("properties").at("reported").at("brightness") == 80);
  CHECK(twin.at("connectionState") == "Connected");

  // Prometheus scrapes the hub without credentials.
  std::tie(status, body) = hub.rest("GET", "/metrics");
  CHECK(status == 200);
  CHECK(body.find("twinfleet_hub_connected_devices 1\n") != std::string::npos);
  CHECK(body.find(R"(twinfleet_hub_operations_total{backend="azure",operation="reported_patch",outcome="ok"} 1)") !=
        std::string::npos);

  // Without a valid token the service API answers 401.
  std::tie(status, body) = hub.rest("GET", "/twins/bulb-00001", {}, {"Authorization: SharedAccessSignature sr=x&sig=y&se=1"});
  CHECK(status == 401);
}

TEST_CASE("hub process: a direct method reaches the Paho device and its answer the REST caller",
          "[hub][integration][azure]") {
  hub_process hub;
  paho_device device(hub, "pi-00001");
  device.subscribe("$iothub/methods/POST/#", 0);
  std::thread answer([&] {
    auto request = device.next();
    if (!request) return;
    const auto& topic = request->get_topic();
    const auto rid = topic.substr(topic.find("$rid=") + 5);
    device.client().publish("$iothub/methods/res/200/?$rid=" + rid, std::string(R"({"blinked":3})"), 1, false)->wait_for(10s);
  });
  auto [status, body] = hub.rest("POST", "/twins/pi-00001/methods",
                                 R"({"methodName":"blink","payload":{"times":3},"responseTimeoutInSeconds":10})",
                                 {"Authorization: " + hub.owner_token()});
  answer.join();
  CHECK(status == 200);
  CHECK(json::parse(body) == json::parse(R"({"status":200,"payload":{"blinked":3}})"));

  std::tie(status, body) = hub.rest("POST", "/twins/nobody/methods", R"({"methodName":"blink"})",
                                    {"Authorization: " + hub.owner_token()});
  CHECK(status == 404);
}

TEST_CASE("hub process: QoS 2 from an Azure device closes its connection, the hub lives on",
          "[hub][integration][azure]") {
  hub_process hub;
  {
    paho_device device(hub, "bad-00001");
    try {
      device.client().publish("devices/bad-00001/messages/events/", std::string("{}"), 2, false)->wait_for(5s);
    } catch (const mqtt::exception&) {
    }
    const bool dropped = [&] {
      for (int i = 0; i < 100 && device.client().is_connected(); ++i) std::this_thread::sleep_for(50ms);
      return !device.client().is_connected();
    }();
    CHECK(dropped);
  }
  paho_device next(hub, "good-00001");
  CHECK(next.client().is_connected());
}

TEST_CASE("hub process: AWS shadow flows with mosquitto_pub and mosquitto_sub and client certificates",
          "[hub][integration][aws]") {
  hub_process hub({"--auth", "strict"});  // certificates name the thing a connection acts for
  const auto port = std::to_string(hub.mqtts_port);
  auto tls_args = [&](const std::string& cn) {
    return std::vector<std::string>{"-h", "127.0.0.1", "-p", port, "--cafile", hub.ca(),
                                    "--cert", hub.file("client-" + cn + ".pem").string(),
                                    "--key", hub.file("client-" + cn + ".key").string(), "-V", "mqttv311"};
  };
  // The back end watches every thing's documents; the device its own delta.
  auto observer_args = tls_args("twinfleet-backend");
  for (std::string a : {"-i", "observer", "-t", "$aws/things/+/shadow/update/documents", "-C", "1", "-W", "15", "-v"}) {
    observer_args.push_back(a);
  }
  child_process observer("mosquitto_sub", observer_args);
  auto delta_args = tls_args("lamp-1");
  for (std::string a : {"-i", "lamp-1-sub", "-t", "$aws/things/lamp-1/shadow/update/delta", "-C", "1", "-W", "15"}) {
    delta_args.push_back(a);
  }
  child_process delta("mosquitto_sub", delta_args);
  std::this_thread::sleep_for(1s);  // let both subscriptions land

  auto publish_args = tls_args("lamp-1");
  for (std::string a : {"-i", "lamp-1", "-q", "1", "-t", "$aws/things/lamp-1/shadow/update", "-m",
                        R"({"state":{"desired":{"color":"green"},"reported":{"color":"red"}},"clientToken":"c1"})"}) {
    publish_args.push_back(a);
  }
  const auto published = run_program("mosquitto_pub", publish_args, 15s);
  INFO(published.err);
  REQUIRE(published.exit_code == 0);

  REQUIRE(observer.wait_until([&] { return !observer.running(); }, 15s));
  CHECK(observer.stop(SIGTERM) == 0);
  const auto& seen = observer.out();
  CHECK(seen.starts_with("$aws/things/lamp-1/shadow/update/documents "));
  const auto documents = json::parse(seen.substr(seen.find(' ') + 1));
  CHECK(documents.at("current").at("version") == 1);
  CHECK(documents.at("clientToken") == "c1");

  REQUIRE(delta.wait_until([&] { return !delta.running(); }, 15s));
  CHECK(json::parse(delta.out()).at("state") == json::parse(R"({"color":"green"})"));

  // A certificate for lamp-1 may not act for lamp-2: the hub drops the connection, so the
  // QoS 1 publish never gets its PUBACK.
  auto foreign = tls_args("lamp-1");
  for (std::string a : {"-i", "lamp-1-b", "-q", "1", "-t", "$aws/things/lamp-2/shadow/update", "-m",
                        R"({"state":{"reported":{"x":1}}})"}) {
    foreign.push_back(a);
  }
  (void)run_program("mosquitto_pub", foreign, 15s);

  // Read back through the data plane, signed by curl's own SigV4 implementation.
  const auto& aws = hub.info().at("aws");
  const std::string user = std::string(aws.at("access_key_id").as_string()) + ":" +
                           std::string(aws.at("secret_access_key").as_string());
  const std::vector<std::string> sigv4{"--aws-sigv4", "aws:amz:us-east-1:iotdata", "--user", user};
  auto [status, body] = hub.rest("GET", "/things/lamp-1/shadow", {}, {}, sigv4);
  CHECK(status == 200);
  CHECK(json::parse(body).at("state").at("delta") == json::parse(R"({"color":"green"})"));
  std::tie(status, body) = hub.rest("GET", "/things/lamp-2/shadow", {}, {}, sigv4);
  CHECK(status == 404);  // the foreign update was not applied
  std::tie(status, body) = hub.rest("GET", "/things/lamp-1/shadow", {}, {});
  CHECK(status == 403);  // no SigV4: refused
}

TEST_CASE("hub process: faults set through the admin endpoint reach a Paho device, and are counted",
          "[hub][integration][faults]") {
  hub_process hub;
  paho_device device(hub, "bulb-faults");
  device.subscribe("$iothub/twin/PATCH/properties/desired/#", 1);
  const auto auth = "Authorization: " + hub.owner_token();
  // Every desired notification twice, 300 ms late; the hub answers with what it applied.
  auto [status, body] = hub.rest("PUT", "/admin/faults",
                                 R"({"seed":5,"delivery":[{"kinds":["azure.desired_patch"],"delay_ms":300,"duplicate":1}]})");
  REQUIRE(status == 200);
  CHECK(json::parse(body).at("delivery").at(0).at("delay_ms") == 300.0);
  const auto written = std::chrono::steady_clock::now();
  std::tie(status, body) = hub.rest("PATCH", "/twins/bulb-faults", R"({"properties":{"desired":{"on":true}}})",
                                    {auth, "If-Match: \"*\""});
  REQUIRE(status == 200);
  auto first = device.next();
  const auto late = std::chrono::steady_clock::now() - written;
  auto second = device.next();
  REQUIRE(first);
  REQUIRE(second);
  CHECK(first->get_topic() == "$iothub/twin/PATCH/properties/desired/?$version=2");
  CHECK(second->to_string() == first->to_string());
  CHECK(late >= 250ms);  // a behaviour bound (the fault's delay), not a speed measurement

  // A bad knob is refused with its key path and changes nothing.
  std::tie(status, body) = hub.rest("PUT", "/admin/faults", R"({"delivery":[{"jitter_ms":-1}]})");
  CHECK(status == 400);
  CHECK(json::parse(body).at("error").as_string().starts_with("delivery[0].jitter_ms"));

  std::tie(status, body) = hub.rest("GET", "/metrics");
  REQUIRE(status == 200);
  CHECK(body.find(R"(twinfleet_hub_faults_total{backend="azure",operation="desired_patch",outcome="duplicated"} 1)") !=
        std::string::npos);
  CHECK(body.find(R"(twinfleet_hub_faults_total{backend="azure",operation="desired_patch",outcome="delayed"} 1)") !=
        std::string::npos);

  // A forced disconnect by id ends the Paho session.
  std::tie(status, body) = hub.rest("POST", "/admin/disconnect", R"({"id":"bulb-faults"})");
  REQUIRE(status == 200);
  CHECK(json::parse(body).at("disconnected") == 1);
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (device.client().is_connected() && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(20ms);
  CHECK_FALSE(device.client().is_connected());
  CHECK(hub.process().stop(SIGTERM) == 0);
}

TEST_CASE("hub process: throttled twin updates wait, then 429 ThrottlingException over REST and MQTT",
          "[hub][integration][throttle]") {
  hub_process hub;
  paho_device device(hub, "bulb-throttle");
  device.subscribe("$iothub/twin/res/#", 0);
  // One twin update a second, none saved up beyond one, one may wait.
  auto [status, body] = hub.rest("PUT", "/admin/throttle",
                                 R"({"azure_twin_updates":{"per_second":1,"burst":1,"queue":1}})");
  REQUIRE(status == 200);
  for (int i = 1; i <= 3; ++i) {
    device.publish("$iothub/twin/PATCH/properties/reported/?$rid=" + std::to_string(i), R"({"n":1})");
  }
  std::map<std::string, std::string> answers;  // rid → status
  for (int i = 0; i < 3; ++i) {
    auto msg = device.next();
    REQUIRE(msg);
    const auto topic = msg->get_topic();  // $iothub/twin/res/{status}/?$rid={rid}…
    const auto status_text = topic.substr(17, 3);
    const auto rid = topic.substr(topic.find("$rid=") + 5, 1);
    answers[rid] = status_text;
    if (status_text == "429") CHECK(json::parse(msg->to_string()).at("errorCode") == 429001);
  }
  CHECK(answers == std::map<std::string, std::string>{{"1", "204"}, {"2", "204"}, {"3", "429"}});

  const auto auth = "Authorization: " + hub.owner_token();
  // Service reads: a bucket of their own, one token, nothing may wait.
  std::tie(status, body) = hub.rest("PUT", "/admin/throttle", R"({"azure_twin_reads":{"per_second":0.2,"burst":1,"queue":0}})");
  REQUIRE(status == 200);
  std::tie(status, body) = hub.rest("GET", "/twins/bulb-throttle", {}, {auth});
  CHECK(status == 200);
  std::tie(status, body) = hub.rest("GET", "/twins/bulb-throttle", {}, {auth});
  CHECK(status == 429);
  CHECK(json::parse(body).at("errorCode") == 429001);
  std::tie(status, body) = hub.rest("GET", "/metrics");
  CHECK(body.find(R"(twinfleet_hub_throttled_total{backend="azure",operation="twin_update",outcome="rejected"} 1)") !=
        std::string::npos);
  CHECK(body.find(R"(twinfleet_hub_throttled_total{backend="azure",operation="twin_read",outcome="rejected"} 1)") !=
        std::string::npos);
  CHECK(hub.process().stop(SIGTERM) == 0);
}
