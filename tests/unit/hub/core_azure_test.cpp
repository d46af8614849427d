// The hub core's Azure IoT Hub dialect, driven through fake links on virtual time
// (PROTOCOLS.md A4-A11, C1, E).
#include <twinfleet/auth/sas.hpp>
#include <twinfleet/hub/core.hpp>

#include "catch_printers.hpp"
#include "fake_link.hpp"
#include "json_test_util.hpp"

#include <catch2/catch.hpp>

using namespace twinfleet;
using hub::hub_core;
using test::at;
using test::fake_link;
using test::jv;
namespace json = boost::json;

namespace {

constexpr auto accepted = mqtt::connect_return_code::accepted;
constexpr auto not_authorized = mqtt::connect_return_code::not_authorized;

std::string sas_for(std::string_view resource, std::string_view key, double expires_at = 3600,
                    std::optional<std::string_view> policy = std::nullopt) {
  const auto expiry = std::chrono::floor<std::chrono::seconds>(at(expires_at));
  return auth::create_sas_token({resource, key, expiry, policy, auth::hex_case::upper}).value();
}

// Owns the strings a connect_packet views.
struct azure_connect {
  std::string id;
  std::string username;
  std::string password;
  mqtt::connect_packet packet() const {
    mqtt::connect_packet p;
    p.clean_session = false;
    p.keep_alive = 180;
    p.client_id = id;
    p.username = username;
    if (!password.empty()) p.password = password;
    return p;
  }
};

azure_connect device_connect(const hub_core& core, std::string id, double expires_at = 3600) {
  const std::string username = "localhost/" + id + "/?api-version=2021-04-12&DeviceClientType=test";
  const std::string password = sas_for("localhost/devices/" + id, core.device_key_for(id), expires_at);
  return {std::move(id), username, password};
}

hub::hub_settings open_settings() {
  hub::hub_settings s;
  s.auth = hub::auth_mode::open;
  s.group_key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
  return s;
}

mqtt::publish_packet pub(std::string_view topic, std::string_view payload = {},
                         mqtt::qos qos = mqtt::qos::at_most_once) {
  mqtt::publish_packet p;
  p.topic = topic;
  p.payload = payload;
  p.qos = qos;
  p.packet_id = qos == mqtt::qos::at_most_once ? 0 : 1;
  return p;
}

// A connected device subscribed to all three twin/method filters.
void connect_and_subscribe(hub_core& core, fake_link& device, const azure_connect& c) {
  REQUIRE(core.on_connect(device, c.packet(), at(0)) == accepted);
  const mqtt::subscription filters[] = {{"$iothub/twin/res/#", mqtt::qos::at_most_once},
                                        {"$iothub/twin/PATCH/properties/desired/#", mqtt::qos::at_least_once},
                                        {"$iothub/methods/POST/#", mqtt::qos::at_most_once}};
  REQUIRE(core.on_subscribe(device, filters, at(0)) ==
          std::vector<mqtt::suback_code>{mqtt::suback_code::granted_qos0, mqtt::suback_code::granted_qos1,
                                         mqtt::suback_code::granted_qos0});
}

json::value desired_patch(std::string_view desired) {
  return json::object{{"properties", json::object{{"desired", jv(desired)}}}};
}

}  // namespace

TEST_CASE("azure: a device with a group-derived SAS key connects in open mode and shows as connected",
          "[hub][azure]") {
  hub_core core(open_settings());
  fake_link device;
  const auto c = device_connect(core, "bulb-00001");
  CHECK(core.on_connect(device, c.packet(), at(0)) == accepted);
  auto twin = core.azure_get_twin("bulb-00001");
  REQUIRE(twin);
  CHECK(twin->at("connectionState") == "Connected");
  CHECK(core.connected_devices() == 1);
  core.on_disconnect(device, at(5));
  CHECK(core.azure_get_twin("bulb-00001")->at("connectionState") == "Disconnected");
  CHECK(core.connected_devices() == 0);
}

TEST_CASE("azure: wrong, foreign-resource or expired tokens are refused with CONNACK 5", "[hub][azure]") {
  hub_core core(open_settings());
  fake_link device;
  auto c = device_connect(core, "dev1");
  SECTION("a token signed with another key") {
    c.password = sas_for("localhost/devices/dev1", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=");
  }
  SECTION("a token for another device") {
    c.password = sas_for("localhost/devices/dev2", core.device_key_for("dev1"));
  }
  SECTION("an expired token") { c.password = sas_for("localhost/devices/dev1", core.device_key_for("dev1"), -1); }
  SECTION("no credentials at all") { c.password.clear(); }
  CHECK(core.on_connect(device, c.packet(), at(0)) == not_authorized);
  CHECK(core.counters().connections_refused == 1);
}

TEST_CASE("azure: strict mode admits registered devices only, with their own keys", "[hub][azure]") {
  auto settings = open_settings();
  settings.auth = hub::auth_mode::strict;
  hub_core core(settings);
  fake_link device;
  auto c = device_connect(core, "thermo-1");
  CHECK(core.on_connect(device, c.packet(), at(0)) == not_authorized);

  const std::string key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
  auto identity = core.azure_put_device(
      "thermo-1", jv(R"({"deviceId":"thermo-1","authentication":{"type":"sas","symmetricKey":{"primaryKey":")" + key +
                     R"(","secondaryKey":")" + key + R"("}}})"),
      {}, at(0));
  REQUIRE(identity);
  CHECK(identity->at("authentication").at("symmetricKey").at("primaryKey").as_string() == key);
  c.password = sas_for("localhost/devices/thermo-1", key);
  CHECK(core.on_connect(device, c.packet(), at(0)) == accepted);

  // Disabling the identity drops the connection and refuses the next one.
  fake_link again;
  REQUIRE(core.azure_put_device("thermo-1", jv(R"({"deviceId":"thermo-1","status":"disabled"})"),
                                twin::if_match::parse("*"), at(1)));
  CHECK(device.closed);
  CHECK(core.on_connect(again, c.packet(), at(1)) == not_authorized);
}

TEST_CASE("azure: the device policy's token may connect any device (DeviceConnect)", "[hub][azure]") {
  hub_core core(open_settings());
  const auto& policies = core.settings().policies;
  const auto device_policy = std::find_if(policies.begin(), policies.end(), [](auto& p) { return p.name == "device"; });
  REQUIRE(device_policy != policies.end());
  fake_link device;
  auto c = device_connect(core, "dev1");
  c.password = sas_for("localhost/devices", device_policy->primary_key, 3600, std::string_view("device"));
  CHECK(core.on_connect(device, c.packet(), at(0)) == accepted);
}

TEST_CASE("azure: X.509 devices authenticate by CA-signed CN or by thumbprint", "[hub][azure]") {
  auto settings = open_settings();
  settings.auth = hub::auth_mode::strict;
  hub_core core(settings);
  hub::link_info info;
  info.transport = hub::transport_kind::tls;
  info.certificate = hub::peer_certificate{"cam-1", "AB12", "CD34", true};
  fake_link device(info);
  azure_connect c{"cam-1", "localhost/cam-1/?api-version=2021-04-12", ""};

  REQUIRE(core.azure_put_device("cam-1", jv(R"({"authentication":{"type":"certificateAuthority"}})"), {}, at(0)));
  CHECK(core.on_connect(device, c.packet(), at(0)) == accepted);

  info.certificate->verified = false;  // self-signed: only the thumbprint can vouch for it
  fake_link self_signed(info);
  REQUIRE(core.azure_put_device("cam-1", jv(R"({"authentication":{"type":"selfSigned","x509Thumbprint":{"primaryThumbprint":"ab12"}}})"),
                                twin::if_match::parse("*"), at(1)));
  CHECK(core.on_connect(self_signed, c.packet(), at(1)) == accepted);
  info.certificate->sha1_thumbprint = "FFFF";
  fake_link stranger(info);
  CHECK(core.on_connect(stranger, c.packet(), at(1)) == not_authorized);
}

TEST_CASE("azure: only the documented filters are granted, QoS 2 as 1", "[hub][azure]") {
  hub_core core(open_settings());
  fake_link device;
  REQUIRE(core.on_connect(device, device_connect(core, "dev1").packet(), at(0)) == accepted);
  const mqtt::subscription filters[] = {{"$iothub/twin/res/#", mqtt::qos::exactly_once},
                                        {"devices/dev1/messages/devicebound/#", mqtt::qos::at_least_once},
                                        {"devices/other/messages/devicebound/#", mqtt::qos::at_least_once},
                                        {"#", mqtt::qos::at_most_once},
                                        {"$iothub/twin/#", mqtt::qos::at_most_once}};
  CHECK(core.on_subscribe(device, filters, at(0)) ==
        std::vector<mqtt::suback_code>{mqtt::suback_code::granted_qos1, mqtt::suback_code::granted_qos1,
                                       mqtt::suback_code::failure, mqtt::suback_code::failure,
                                       mqtt::suback_code::failure});
}

TEST_CASE("azure: twin GET answers the requesting connection with the device view", "[hub][azure]") {
  hub_core core(open_settings());
  fake_link device;
  connect_and_subscribe(core, device, device_connect(core, "dev1"));
  REQUIRE(core.azure_update_twin("dev1", desired_patch(R"({"target":21})"), {}, false, at(1)));
  device.take();

  core.on_publish(device, pub("$iothub/twin/GET/?$rid=abc", " "), at(2));
  auto sent = device.take();
  REQUIRE(sent.size() == 1);
  CHECK(sent[0].topic == "$iothub/twin/res/200/?$rid=abc");
  CHECK(sent[0].json() == jv(R"({"desired":{"target":21,"$version":2},"reported":{"$version":1}})"));
  CHECK(core.counters().azure_twin_gets == 1);
}

TEST_CASE("azure: without the response subscription a GET goes unanswered", "[hub][azure]") {
  hub_core core(open_settings());
  fake_link device;
  REQUIRE(core.on_connect(device, device_connect(core, "dev1").packet(), at(0)) == accepted);
  core.on_publish(device, pub("$iothub/twin/GET/?$rid=1"), at(1));
  CHECK(device.sent.empty());
  CHECK_FALSE(device.closed);
}

TEST_CASE("azure: reported PATCH answers 204 with the new $version; 412 and 400 carry an error body",
          "[hub][azure]") {
  hub_core core(open_settings());
  fake_link device;
  connect_and_subscribe(core, device, device_connect(core, "dev1"));

  core.on_publish(device, pub("$iothub/twin/PATCH/properties/reported/?$rid=1", R"({"temp":20.5})"), at(1));
  auto sent = device.take();
  REQUIRE(sent.size() == 1);
  CHECK(sent[0].topic == "$iothub/twin/res/204/?$rid=1&$version=2");
  CHECK(sent[0].payload.empty());

  core.on_publish(device, pub("$iothub/twin/PATCH/properties/reported/?$rid=2&$version=2", R"({"temp":21})"), at(2));
  CHECK(device.take().at(0).topic == "$iothub/twin/res/204/?$rid=2&$version=3");

  core.on_publish(device, pub("$iothub/twin/PATCH/properties/reported/?$rid=3&$version=2", R"({"temp":22})"), at(3));
  sent = device.take();
  REQUIRE(sent.size() == 1);
  CHECK(sent[0].topic == "$iothub/twin/res/412/?$rid=3");
  CHECK(sent[0].json().at("errorCode") == 412001);

  core.on_publish(device, pub("$iothub/twin/PATCH/properties/reported/?$rid=4", "{not json"), at(4));
  sent = device.take();
  REQUIRE(sent.size() == 1);
  CHECK(sent[0].topic == "$iothub/twin/res/400/?$rid=4");
  CHECK(sent[0].json().at("errorCode") == 400004);
  CHECK(core.azure_get_twin("dev1")->at("properties").at("reported").at("temp") == 21);
  CHECK(core.counters().azure_reported_rejected == 2);
}

TEST_CASE("azure: desired notifications reach only connected, subscribed devices, never queued",
          "[hub][azure]") {
  hub_core core(open_settings());
  fake_link device;
  const auto c = device_connect(core, "dev1");
  connect_and_subscribe(core, device, c);

  REQUIRE(core.azure_update_twin("dev1", desired_patch(R"({"fanSpeed":3,"mode":null})"), {}, false, at(1)));
  auto sent = device.take();
  REQUIRE(sent.size() == 1);
  CHECK(sent[0].topic == "$iothub/twin/PATCH/properties/desired/?$version=2");
  CHECK(sent[0].qos == mqtt::qos::at_least_once);  // the QoS the subscription was granted
  CHECK(sent[0].json() == jv(R"({"fanSpeed":3,"mode":null,"$version":2})"));

  // Offline: the change is in the twin, but nothing waits for the device (C1).
  core.on_disconnect(device, at(2));
  REQUIRE(core.azure_update_twin("dev1", desired_patch(R"({"fanSpeed":4})"), {}, false, at(3)));
  fake_link again;
  REQUIRE(core.on_connect(again, c.packet(), at(4)) == accepted);
  const mqtt::subscription desired[] = {{"$iothub/twin/PATCH/properties/desired/#", mqtt::qos::at_most_once}};
  REQUIRE(core.on_subscribe(again, desired, at(4)).size() == 1);
  CHECK(again.sent.empty());
  REQUIRE(core.azure_update_twin("dev1", desired_patch(R"({"fanSpeed":5})"), {}, false, at(5)));
  CHECK(again.take().at(0).topic == "$iothub/twin/PATCH/properties/desired/?$version=4");
}

TEST_CASE("azure: tags-only updates and a stale If-Match notify nobody", "[hub][azure]") {
  hub_core core(open_settings());
  fake_link device;
  connect_and_subscribe(core, device, device_connect(core, "dev1"));
  REQUIRE(core.azure_update_twin("dev1", jv(R"({"tags":{"site":"lab"}})"), {}, false, at(1)));
  auto stale = core.azure_update_twin("dev1", desired_patch(R"({"x":1})"), twin::if_match::parse("\"AAAAAAAAAAE=\""),
                                      false, at(2));
  REQUIRE_FALSE(stale);
  CHECK(stale.error().code == 412001);
  CHECK(device.sent.empty());
  CHECK(core.azure_update_twin("nobody", desired_patch("{}"), {}, false, at(2)).error().code == 404001);
}

TEST_CASE("azure: a direct method goes to the device and its answer back to the caller", "[hub][azure]") {
  hub_core core(open_settings());
  fake_link device;
  connect_and_subscribe(core, device, device_connect(core, "dev1"));
  std::optional<twin::result<hub::method_response>> answer;
  core.azure_invoke_method("dev1", jv(R"({"methodName":"blink","payload":{"times":3},"responseTimeoutInSeconds":10})"),
                           at(1), [&](auto r) { answer = std::move(r); });
  auto sent = device.take();
  REQUIRE(sent.size() == 1);
  CHECK(sent[0].topic.starts_with("$iothub/methods/POST/blink/?$rid="));
  CHECK(sent[0].qos == mqtt::qos::at_most_once);
  CHECK(sent[0].json() == jv(R"({"times":3})"));
  CHECK_FALSE(answer);
  REQUIRE(core.next_deadline() == at(11));

  const auto rid = sent[0].topic.substr(sent[0].topic.find("$rid=") + 5);
  const std::string response_topic = "$iothub/methods/res/200/?$rid=" + rid;
  core.on_publish(device, pub(response_topic, R"({"blinked":true})"), at(2));
  REQUIRE(answer);
  REQUIRE(*answer);
  CHECK((*answer)->status == 200);
  CHECK((*answer)->payload == jv(R"({"blinked":true})"));
  CHECK(core.next_deadline() == at(3600));  // only the token's expiry is left
}

TEST_CASE("azure: methods fail with 404103 offline, 504101 on silence, 400004 on a bad body", "[hub][azure]") {
  hub_core core(open_settings());
  std::vector<int> codes;
  auto record = [&](twin::result<hub::method_response> r) { codes.push_back(r ? 200 : r.error().code); };

  core.azure_invoke_method("dev1", jv(R"({"methodName":"reboot"})"), at(0), record);  // no such device yet
  fake_link device;
  REQUIRE(core.on_connect(device, device_connect(core, "dev1").packet(), at(0)) == accepted);
  core.azure_invoke_method("dev1", jv(R"({"methodName":"reboot"})"), at(0), record);  // not subscribed
  connect_and_subscribe(core, device, device_connect(core, "dev1"));
  core.azure_invoke_method("dev1", jv(R"({"methodName":"reboot","responseTimeoutInSeconds":5})"), at(0), record);
  core.azure_invoke_method("dev1", jv(R"({"methodName":"bad name"})"), at(0), record);
  core.azure_invoke_method("dev1", jv(R"({"methodName":"x","responseTimeoutInSeconds":301})"), at(0), record);
  core.azure_invoke_method("dev1", jv(R"({"methodName":"x","responseTimeoutInSeconds":4})"), at(0), record);
  REQUIRE(codes == std::vector<int>{404001, 404103, 400004, 400004, 400004});
  core.on_timer(at(4.9));
  CHECK(codes.size() == 5);
  core.on_timer(at(5));
  CHECK(codes == std::vector<int>{404001, 404103, 400004, 400004, 400004, 504101});
  CHECK(core.counters().azure_methods_failed == 6);
  CHECK(core.counters().azure_methods_invoked == 6);
}

TEST_CASE("azure: a second connection for the same device closes the first", "[hub][azure]") {
  hub_core core(open_settings());
  fake_link first;
  fake_link second;
  const auto c = device_connect(core, "dev1");
  connect_and_subscribe(core, first, c);
  REQUIRE(core.on_connect(second, c.packet(), at(1)) == accepted);
  CHECK(first.closed);
  CHECK(core.counters().connections_taken_over == 1);
  // The late disconnect of the first connection does not mark the device offline.
  core.on_disconnect(first, at(2));
  CHECK(core.azure_get_twin("dev1")->at("connectionState") == "Connected");
}

TEST_CASE("azure: QoS 2 and undocumented topics close the connection; telemetry is counted", "[hub][azure]") {
  hub_core core(open_settings());
  fake_link device;
  REQUIRE(core.on_connect(device, device_connect(core, "dev1").packet(), at(0)) == accepted);
  core.on_publish(device, pub("devices/dev1/messages/events/%24.ct=application%2Fjson", "{}"), at(1));
  core.on_publish(device, pub("devices/dev1/messages/events/", "{}"), at(1));
  CHECK(core.counters().azure_telemetry == 2);
  CHECK_FALSE(device.closed);

  SECTION("QoS 2") { core.on_publish(device, pub("devices/dev1/messages/events/", "{}", mqtt::qos::exactly_once), at(2)); }
  SECTION("a topic IoT Hub does not serve") { core.on_publish(device, pub("some/topic", "{}"), at(2)); }
  SECTION("telemetry for another device") { core.on_publish(device, pub("devices/dev2/messages/events/", "{}"), at(2)); }
  CHECK(device.closed);
}

TEST_CASE("azure: the connection is closed when its SAS token expires", "[hub][azure]") {
  hub_core core(open_settings());
  fake_link device;
  REQUIRE(core.on_connect(device, device_connect(core, "dev1", 60).packet(), at(0)) == accepted);
  REQUIRE(core.next_deadline() == at(60));
  core.on_timer(at(59));
  CHECK_FALSE(device.closed);
  core.on_timer(at(60));
  CHECK(device.closed);
  core.on_disconnect(device, at(60));
  CHECK_FALSE(core.next_deadline());
}

TEST_CASE("azure: service calls need a policy token with the right permission", "[hub][azure]") {
  hub_core core(open_settings());
  auto key_of = [&](std::string_view name) {
    for (const auto& p : core.settings().policies) {
      if (p.name == name) return p.primary_key;
    }
    return std::string();
  };
  const auto owner = sas_for("localhost", key_of("iothubowner"), 3600, std::string_view("iothubowner"));
  CHECK(core.authorize_azure(owner, "dev1", hub::permission::service_connect, at(0)));
  CHECK(core.authorize_azure(owner, "dev1", hub::permission::registry_write, at(0)));

  const auto device_policy = sas_for("localhost", key_of("device"), 3600, std::string_view("device"));
  auto r = core.authorize_azure(device_policy, "dev1", hub::permission::service_connect, at(0));
  REQUIRE_FALSE(r);
  CHECK(r.error().code == 401003);

  const auto device_token = sas_for("localhost/devices/dev1", core.device_key_for("dev1"));
  CHECK_FALSE(core.authorize_azure(device_token, "dev1", hub::permission::service_connect, at(0)));
  CHECK_FALSE(core.authorize_azure(owner, "dev1", hub::permission::service_connect, at(3600)));  // expired
  CHECK_FALSE(core.authorize_azure("SharedAccessSignature garbage", "dev1", hub::permission::service_connect, at(0)));
  const auto wrong_key = sas_for("localhost", key_of("service"), 3600, std::string_view("iothubowner"));
  CHECK_FALSE(core.authorize_azure(wrong_key, "dev1", hub::permission::service_connect, at(0)));
}

TEST_CASE("azure: the identity registry creates, guards with etags and deletes", "[hub][azure]") {
  hub_core core(open_settings());
  auto created = core.azure_put_device("dev1", jv(R"({"deviceId":"dev1"})"), {}, at(0));
  REQUIRE(created);
  CHECK_FALSE(created->at("authentication").at("symmetricKey").at("primaryKey").as_string().empty());
  CHECK(core.azure_put_device("dev1", jv("{}"), {}, at(0)).error().code == 409001);
  CHECK(core.azure_put_device("dev1", jv("{}"), twin::if_match::parse("\"nope\""), at(0)).error().code == 412001);
  const std::string etag = "\"" + std::string(created->at("etag").as_string()) + "\"";
  CHECK(core.azure_put_device("dev1", jv(R"({"status":"disabled"})"), twin::if_match::parse(etag), at(1)));
  CHECK(core.azure_get_device("dev1")->at("status") == "disabled");
  CHECK(core.azure_put_device("bad id", jv("{}"), {}, at(0)).error().code == 400004);
  CHECK(core.azure_put_device("dev2", jv(R"({"deviceId":"other"})"), {}, at(0)).error().code == 400004);
  CHECK(core.azure_list_devices(10).size() == 1);

  fake_link device;
  REQUIRE(core.azure_put_device("dev3", jv("{}"), {}, at(0)));
  REQUIRE(core.on_connect(device, device_connect(core, "dev3").packet(), at(0)) == mqtt::connect_return_code::not_authorized);
  CHECK(core.azure_delete_device("dev1", {}, at(2)));
  CHECK(core.azure_get_device("dev1").error().code == 404001);
  CHECK(core.azure_delete_device("dev1", {}, at(2)).error().code == 404001);
}

TEST_CASE("hub metrics: counters and gauges in Prometheus text format", "[hub][metrics]") {
  hub_core core(open_settings());
  fake_link device;
  connect_and_subscribe(core, device, device_connect(core, "dev1"));
  core.on_publish(device, pub("$iothub/twin/PATCH/properties/reported/?$rid=1", R"({"a":1})"), at(1));
  core.on_publish(device, pub("$iothub/twin/PATCH/properties/reported/?$rid=2", "{bad"), at(1));
  fake_link refused;
  auto c = device_connect(core, "dev2");
  c.password = "SharedAccessSignature sr=x&sig=AAAA&se=1";
  REQUIRE(core.on_connect(refused, c.packet(), at(1)) == not_authorized);

  const auto text = core.metrics_text();
  CHECK_THAT(text, Catch::Contains("# TYPE twinfleet_hub_operations_total counter\n"));
  CHECK_THAT(text, Catch::Contains(
                       "twinfleet_hub_operations_total{backend=\"azure\",operation=\"reported_patch\",outcome=\"ok\"} 1\n"));
  CHECK_THAT(text, Catch::Contains(
                       "twinfleet_hub_operations_total{backend=\"azure\",operation=\"reported_patch\",outcome=\"error\"} 1\n"));
  CHECK_THAT(text, Catch::Contains("twinfleet_hub_connections_total{outcome=\"accepted\"} 1\n"));
  CHECK_THAT(text, Catch::Contains("twinfleet_hub_connections_total{outcome=\"refused\"} 1\n"));
  CHECK_THAT(text, Catch::Contains("twinfleet_hub_connected_devices 1\n"));
  CHECK_THAT(text, Catch::Contains("twinfleet_hub_twins 1\n"));  // the refused dev2 left no identity
}
