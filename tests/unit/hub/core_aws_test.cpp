// The hub core's AWS IoT dialect and shadow data plane, driven through fake links on virtual
// time (PROTOCOLS.md B1-B10, C2, E).
#include <twinfleet/auth/sigv4.hpp>
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

hub::hub_settings strict_settings() {
  hub::hub_settings s;
  s.auth = hub::auth_mode::strict;
  s.aws_keys = {{"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"}};
  return s;
}

hub::link_info with_certificate(std::string cn, bool verified = true) {
  hub::link_info info;
  info.transport = hub::transport_kind::tls;
  info.alpn = "x-amzn-mqtt-ca";
  info.certificate = hub::peer_certificate{std::move(cn), "AA", "BB", verified};
  return info;
}

mqtt::connect_packet aws_connect(std::string_view client_id) {
  mqtt::connect_packet p;
  p.client_id = client_id;
  p.keep_alive = 300;
  p.username = std::string_view("?SDK=JavaScript&Version=2.2.16");
  return p;
}

mqtt::publish_packet pub(std::string_view topic, std::string_view payload = {},
                         mqtt::qos qos = mqtt::qos::at_least_once, bool retain = false) {
  mqtt::publish_packet p;
  p.topic = topic;
  p.payload = payload;
  p.qos = qos;
  p.retain = retain;
  p.packet_id = qos == mqtt::qos::at_most_once ? 0 : 7;
  return p;
}

void subscribe(hub_core& core, fake_link& link, std::initializer_list<std::string_view> filters) {
  std::vector<mqtt::subscription> subs;
  for (auto f : filters) subs.push_back({f, mqtt::qos::at_least_once});
  const auto codes = core.on_subscribe(link, subs, at(0));
  for (auto code : codes) REQUIRE(code == mqtt::suback_code::granted_qos1);
}

std::vector<std::string> topics_of(const std::vector<test::sent_message>& sent) {
  std::vector<std::string> out;
  for (const auto& m : sent) out.push_back(m.topic);
  return out;
}

}  // namespace

TEST_CASE("aws: strict mode wants a CA-verified client certificate; open mode takes anyone", "[hub][aws]") {
  hub_core strict(strict_settings());
  fake_link anonymous;
  fake_link unverified(with_certificate("lamp-1", false));
  fake_link device(with_certificate("lamp-1"));
  CHECK(strict.on_connect(anonymous, aws_connect("lamp-1"), at(0)) == mqtt::connect_return_code::not_authorized);
  CHECK(strict.on_connect(unverified, aws_connect("lamp-1"), at(0)) == mqtt::connect_return_code::not_authorized);
  CHECK(strict.on_connect(device, aws_connect("lamp-1"), at(0)) == accepted);

  hub::hub_settings open;
  open.auth = hub::auth_mode::open;
  hub_core lax(open);
  fake_link plain;
  CHECK(lax.on_connect(plain, aws_connect("anything"), at(0)) == accepted);
}

TEST_CASE("aws: a thing's certificate may use its own shadow topics only", "[hub][aws]") {
  hub_core core(strict_settings());
  fake_link device(with_certificate("lamp-1"));
  REQUIRE(core.on_connect(device, aws_connect("lamp-1"), at(0)) == accepted);
  const mqtt::subscription filters[] = {{"$aws/things/lamp-1/shadow/update/delta", mqtt::qos::at_least_once},
                                        {"$aws/things/lamp-2/shadow/update/delta", mqtt::qos::at_least_once},
                                        {"$aws/things/+/shadow/update/documents", mqtt::qos::at_least_once},
                                        {"sensors/lamp-1/#", mqtt::qos::at_most_once},
                                        {"$aws/things/lamp-1/shadow/get/+", mqtt::qos::exactly_once}};
  CHECK(core.on_subscribe(device, filters, at(0)) ==
        std::vector<mqtt::suback_code>{mqtt::suback_code::granted_qos1, mqtt::suback_code::failure,
                                       mqtt::suback_code::failure, mqtt::suback_code::granted_qos0,
                                       mqtt::suback_code::failure});
  core.on_publish(device, pub("$aws/things/lamp-2/shadow/update", R"({"state":{"reported":{"on":true}}})"), at(1));
  CHECK(device.closed);  // acting for another thing ends the connection
}

TEST_CASE("aws: an update publishes accepted, delta and documents to their subscribers", "[hub][aws]") {
  hub_core core(strict_settings());
  fake_link device(with_certificate("lamp-1"));
  fake_link backend(with_certificate("twinfleet-backend"));
  REQUIRE(core.on_connect(device, aws_connect("lamp-1"), at(0)) == accepted);
  REQUIRE(core.on_connect(backend, aws_connect("backend"), at(0)) == accepted);
  subscribe(core, device,
            {"$aws/things/lamp-1/shadow/update/accepted", "$aws/things/lamp-1/shadow/update/rejected",
             "$aws/things/lamp-1/shadow/update/delta"});
  subscribe(core, backend, {"$aws/things/+/shadow/update/documents", "$aws/things/+/shadow/name/+/update/documents"});

  core.on_publish(device, pub("$aws/things/lamp-1/shadow/update",
                              R"({"state":{"reported":{"color":"red"},"desired":{"color":"green"}},"clientToken":"t1"})"),
                  at(1));
  auto sent = device.take();
  REQUIRE(topics_of(sent) == std::vector<std::string>{"$aws/things/lamp-1/shadow/update/accepted",
                                                      "$aws/things/lamp-1/shadow/update/delta"});
  CHECK(sent[0].json().at("version") == 1);
  CHECK(sent[0].json().at("clientToken") == "t1");
  CHECK(sent[1].json().at("state") == jv(R"({"color":"green"})"));
  CHECK(sent[1].json().at("version") == 1);
  auto docs = backend.take();
  REQUIRE(docs.size() == 1);
  CHECK(docs[0].topic == "$aws/things/lamp-1/shadow/update/documents");
  CHECK(docs[0].json().at("previous").is_null());
  CHECK(docs[0].json().at("current").at("version") == 1);
  CHECK(core.counters().aws_updates == 1);
  CHECK(core.counters().aws_deltas == 1);
}

TEST_CASE("aws: rejected updates go to /update/rejected with the clientToken echoed", "[hub][aws]") {
  hub_core core(strict_settings());
  fake_link device(with_certificate("lamp-1"));
  REQUIRE(core.on_connect(device, aws_connect("lamp-1"), at(0)) == accepted);
  subscribe(core, device, {"$aws/things/lamp-1/shadow/update/+"});
  core.on_publish(device, pub("$aws/things/lamp-1/shadow/update", R"({"state":{"reported":{"on":true}}})"), at(1));
  device.take();
  core.on_publish(device, pub("$aws/things/lamp-1/shadow/update",
                              R"({"state":{"reported":{"on":false}},"version":7,"clientToken":"c-9"})"),
                  at(2));
  auto sent = device.take();
  REQUIRE(sent.size() == 1);
  CHECK(sent[0].topic == "$aws/things/lamp-1/shadow/update/rejected");
  CHECK(sent[0].json().at("code") == 409);
  CHECK(sent[0].json().at("message") == "Version conflict");
  CHECK(sent[0].json().at("clientToken") == "c-9");
  core.on_publish(device, pub("$aws/things/lamp-1/shadow/update", "not json"), at(3));
  CHECK(device.take().at(0).json().at("message") == "Invalid JSON");
  CHECK(core.counters().aws_rejected == 2);
}

TEST_CASE("aws: get and delete answer on their topics; a deleted shadow keeps its version", "[hub][aws]") {
  hub_core core(strict_settings());
  fake_link device(with_certificate("lamp-1"));
  REQUIRE(core.on_connect(device, aws_connect("lamp-1"), at(0)) == accepted);
  subscribe(core, device, {"$aws/things/lamp-1/shadow/get/+", "$aws/things/lamp-1/shadow/delete/+",
                           "$aws/things/lamp-1/shadow/name/config/get/+"});

  core.on_publish(device, pub("$aws/things/lamp-1/shadow/get", R"({"clientToken":"g0"})"), at(1));
  auto sent = device.take();
  REQUIRE(sent.size() == 1);
  CHECK(sent[0].topic == "$aws/things/lamp-1/shadow/get/rejected");
  CHECK(sent[0].json().at("code") == 404);
  CHECK(sent[0].json().at("message") == "No shadow exists with name: 'lamp-1'");
  CHECK(sent[0].json().at("clientToken") == "g0");

  REQUIRE(core.aws_update_shadow("lamp-1", "", R"({"state":{"desired":{"on":true}}})", at(2)));
  REQUIRE(core.aws_update_shadow("lamp-1", "config", R"({"state":{"desired":{"interval":5}}})", at(2)));
  core.on_publish(device, pub("$aws/things/lamp-1/shadow/get", ""), at(3));
  sent = device.take();
  REQUIRE(sent.size() == 1);
  CHECK(sent[0].topic == "$aws/things/lamp-1/shadow/get/accepted");
  CHECK(sent[0].json().at("state").at("delta") == jv(R"({"on":true})"));

  core.on_publish(device, pub("$aws/things/lamp-1/shadow/name/config/get", ""), at(3));
  CHECK(device.take().at(0).json().at("state").at("desired") == jv(R"({"interval":5})"));

  core.on_publish(device, pub("$aws/things/lamp-1/shadow/delete", R"({"clientToken":"d1"})"), at(4));
  sent = device.take();
  REQUIRE(sent.size() == 1);
  CHECK(sent[0].topic == "$aws/things/lamp-1/shadow/delete/accepted");
  CHECK(sent[0].json().at("version") == 1);
  auto recreated = core.aws_update_shadow("lamp-1", "", R"({"state":{"reported":{"on":false}}})", at(5));
  REQUIRE(recreated);
  CHECK(recreated->at("version") == 2);
}

TEST_CASE("aws: REST updates trigger MQTT delta and documents; REST errors reach nobody", "[hub][aws]") {
  hub_core core(strict_settings());
  fake_link device(with_certificate("lamp-1"));
  REQUIRE(core.on_connect(device, aws_connect("lamp-1"), at(0)) == accepted);
  subscribe(core, device, {"$aws/things/lamp-1/shadow/update/delta", "$aws/things/lamp-1/shadow/update/rejected"});
  REQUIRE(core.aws_update_shadow("lamp-1", "", R"({"state":{"desired":{"level":3}}})", at(1)));
  CHECK(topics_of(device.take()) == std::vector<std::string>{"$aws/things/lamp-1/shadow/update/delta"});
  auto bad = core.aws_update_shadow("lamp-1", "", R"({"state":{"desired":{"level":4}},"version":9})", at(2));
  REQUIRE_FALSE(bad);
  CHECK(bad.error().code == 409);
  CHECK(device.sent.empty());
  CHECK(core.aws_get_shadow("lamp-1", "", at(3))->at("version") == 1);
  CHECK(core.aws_get_shadow("nothing", "", at(3)).error().code == 404);
}

TEST_CASE("aws: ListNamedShadowsForThing pages through named shadows only", "[hub][aws]") {
  hub_core core(strict_settings());
  for (auto name : {"", "alpha", "beta", "gamma"}) {
    REQUIRE(core.aws_update_shadow("lamp-1", name, R"({"state":{"reported":{"x":1}}})", at(0)));
  }
  auto page = core.aws_list_named_shadows("lamp-1", "", 2, at(1));
  CHECK(page.at("results") == jv(R"(["alpha","beta"])"));
  CHECK(page.at("nextToken") == "beta");
  auto rest = core.aws_list_named_shadows("lamp-1", "beta", 2, at(1));
  CHECK(rest.at("results") == jv(R"(["gamma"])"));
  CHECK(rest.at("nextToken").is_null());
  CHECK(core.aws_list_named_shadows("unknown", "", 10, at(1)).at("results") == jv("[]"));
  CHECK(core.shadow_count() == 4);
}

TEST_CASE("aws: ordinary topics route by wildcard at the lower QoS; reserved retained publishes close",
          "[hub][aws]") {
  hub::hub_settings open;
  open.auth = hub::auth_mode::open;
  hub_core core(open);
  fake_link a, b;
  REQUIRE(core.on_connect(a, aws_connect("a"), at(0)) == accepted);
  REQUIRE(core.on_connect(b, aws_connect("b"), at(0)) == accepted);
  const mqtt::subscription filters[] = {{"telemetry/+/temp", mqtt::qos::at_most_once}, {"telemetry/#", mqtt::qos::at_least_once}};
  REQUIRE(core.on_subscribe(b, filters, at(0)).size() == 2);

  core.on_publish(a, pub("telemetry/lamp-1/temp", "21.5", mqtt::qos::at_least_once), at(1));
  auto got = b.take();
  REQUIRE(got.size() == 1);  // once, at the best QoS of the matching filters
  CHECK(got[0].qos == mqtt::qos::at_least_once);
  core.on_publish(a, pub("telemetry/lamp-1/temp", "21.6", mqtt::qos::at_most_once), at(1));
  CHECK(b.take().at(0).qos == mqtt::qos::at_most_once);

  const std::string_view unsub[] = {"telemetry/#", "telemetry/+/temp"};
  core.on_unsubscribe(b, unsub);
  core.on_publish(a, pub("telemetry/lamp-1/temp", "21.7"), at(2));
  CHECK(b.sent.empty());

  core.on_publish(a, pub("$aws/things/lamp-1/shadow/update", "{}", mqtt::qos::exactly_once), at(2));
  CHECK_FALSE(a.closed);  // QoS 2: ignored, no answer
  CHECK(core.shadow_count() == 0);
  core.on_publish(a, pub("$aws/things/lamp-1/shadow/update", R"({"state":{}})", mqtt::qos::at_least_once, true), at(3));
  CHECK(a.closed);
}

TEST_CASE("aws: a second connection with the same client id takes over", "[hub][aws]") {
  hub::hub_settings open;
  open.auth = hub::auth_mode::open;
  hub_core core(open);
  fake_link first, second;
  REQUIRE(core.on_connect(first, aws_connect("dup"), at(0)) == accepted);
  subscribe(core, first, {"news"});
  REQUIRE(core.on_connect(second, aws_connect("dup"), at(1)) == accepted);
  CHECK(first.closed);
  core.on_disconnect(first, at(2));
  fake_link publisher;
  REQUIRE(core.on_connect(publisher, aws_connect("pub"), at(2)) == accepted);
  core.on_publish(publisher, pub("news", "x"), at(3));
  CHECK(first.sent.empty());  // its subscriptions went with it
  CHECK(core.counters().connections_taken_over == 1);
}

TEST_CASE("aws: SigV4 service calls are verified with the configured keys", "[hub][aws]") {
  hub_core core(strict_settings());
  auth::sigv4_request request;
  request.method = "GET";
  request.path = "/things/lamp-1/shadow";
  request.headers = {{"Host", "127.0.0.1:8443"}};
  const auto now = std::chrono::floor<std::chrono::seconds>(at(0));
  auto sign_with = [&](std::string secret, std::string service) {
    auto signed_headers = auth::sign_sigv4_headers(request, {{"AKIDEXAMPLE", std::move(secret), ""}, "us-east-1", std::move(service), now});
    auto headers = request.headers;
    headers.insert(headers.end(), signed_headers.headers_to_add.begin(), signed_headers.headers_to_add.end());
    return headers;
  };
  auto good = sign_with("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "iotdata");
  CHECK(core.authorize_aws({"GET", "/things/lamp-1/shadow", good, ""}, at(1)));
  auto docs_name = sign_with("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "iotdevicegateway");
  CHECK(core.authorize_aws({"GET", "/things/lamp-1/shadow", docs_name, ""}, at(1)));
  auto bad = sign_with("wrong-secret", "iotdata");
  auto r = core.authorize_aws({"GET", "/things/lamp-1/shadow", bad, ""}, at(1));
  REQUIRE_FALSE(r);
  CHECK(r.error().code == 403);
  CHECK_THAT(r.error().message, Catch::StartsWith("The request signature we calculated does not match"));
  CHECK(core.authorize_aws({"GET", "/things/lamp-1/shadow", request.headers, ""}, at(1)).error().message ==
        "Missing Authentication Token");
}

TEST_CASE("aws: HTTPS publishes route to subscribers and serve shadow topics", "[hub][aws]") {
  hub_core core(strict_settings());
  fake_link device(with_certificate("lamp-1"));
  REQUIRE(core.on_connect(device, aws_connect("lamp-1"), at(0)) == accepted);
  subscribe(core, device, {"commands/lamp-1", "$aws/things/lamp-1/shadow/update/accepted"});

  CHECK(core.aws_publish("commands/lamp-1", R"({"blink":2})", mqtt::qos::at_least_once, at(1)));
  auto sent = device.take();
  REQUIRE(sent.size() == 1);
  CHECK(sent[0].topic == "commands/lamp-1");
  CHECK(sent[0].payload == R"({"blink":2})");

  CHECK(core.aws_publish("$aws/things/lamp-1/shadow/update", R"({"state":{"desired":{"on":true}}})",
                         mqtt::qos::at_most_once, at(2)));
  sent = device.take();
  REQUIRE(sent.size() == 1);
  CHECK(sent[0].topic == "$aws/things/lamp-1/shadow/update/accepted");
  CHECK(core.aws_get_shadow("lamp-1", "", at(3))->at("version") == 1);

  CHECK(core.aws_publish("a/+/b", "x", mqtt::qos::at_most_once, at(4)).error().code == 400);
  CHECK(core.aws_publish("$aws/rules/x", "x", mqtt::qos::at_most_once, at(4)).error().code == 400);
  CHECK(core.aws_publish("ok", "x", mqtt::qos::exactly_once, at(4)).error().code == 400);
}

TEST_CASE("keep-alive: AWS clamps to 30..1200, Azure caps at 1177 s", "[hub][aws][azure]") {
  hub::hub_settings open;
  open.auth = hub::auth_mode::open;
  hub_core core(open);
  fake_link thing;
  REQUIRE(core.on_connect(thing, aws_connect("t1"), at(0)) == accepted);
  CHECK(core.supervised_keep_alive(thing, 5) == 30);
  CHECK(core.supervised_keep_alive(thing, 300) == 300);
  CHECK(core.supervised_keep_alive(thing, 0) == 1200);
  CHECK(core.supervised_keep_alive(thing, 5000) == 1200);
  fake_link other;  // not (yet) an AWS connection: Azure's rule
  CHECK(core.supervised_keep_alive(other, 240) == 240);
  CHECK(core.supervised_keep_alive(other, 0) == 1177);
  CHECK(core.supervised_keep_alive(other, 1800) == 1177);
}
