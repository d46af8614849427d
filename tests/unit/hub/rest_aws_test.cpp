// The AWS IoT data-plane shadow API through rest_router, without sockets (PROTOCOLS.md B6,
// B8, B10): shadow get/update/delete, named shadows, listing, SigV4, and every error path.
#include "rest_test_util.hpp"

using namespace twinfleet;
using namespace std::chrono_literals;
using hub::rest_request;
using hub::rest_response;
using test::at;
using test::body_json;
using test::jv;
namespace json = boost::json;

namespace {

struct aws_fixture {
  std::chrono::system_clock::time_point now = at(0);
  hub::hub_core core{test::rest_settings()};
  hub::rest_router router{core, [this] { return now; }};
  test::rest_client_factory client{core, now};

  rest_response call(const rest_request& request) {
    auto r = router.handle(request);
    REQUIRE(r.has_value());
    return std::move(*r);
  }

  rest_response update(std::string_view thing, std::string body, std::string_view shadow = {}) {
    std::vector<auth::query_param> query;
    if (!shadow.empty()) query.push_back({"name", std::string(shadow)});
    return call(client.aws("POST", "/things/" + std::string(thing) + "/shadow", query, std::move(body)));
  }
};

void require_aws_error(const rest_response& r, int status, std::string_view exception,
                       std::optional<std::string_view> message = std::nullopt) {
  CAPTURE(r.body);
  REQUIRE(r.status == status);
  REQUIRE(r.header("x-amzn-ErrorType") == exception);
  REQUIRE(r.header("Content-Type") == "application/json");
  const auto body = body_json(r).as_object();
  REQUIRE(body.size() == 1);
  REQUIRE(body.at("message").is_string());
  if (message) REQUIRE(body.at("message").as_string() == *message);
}

}  // namespace

TEST_CASE("POST, GET and DELETE /things/{thing}/shadow", "[hub][rest]") {
  aws_fixture f;
  const auto updated = f.update("lamp", R"({"state":{"desired":{"on":true},"reported":{"on":false}},"clientToken":"c1"})");
  REQUIRE(updated.status == 200);
  REQUIRE(updated.header("Content-Type") == "application/json");
  const auto accepted = body_json(updated);
  REQUIRE(accepted.at("state").at("desired").at("on") == true);
  REQUIRE(accepted.at("version") == 1);
  REQUIRE(accepted.at("clientToken") == "c1");

  const auto got = f.call(f.client.aws("GET", "/things/lamp/shadow"));
  REQUIRE(got.status == 200);
  const auto document = body_json(got);
  REQUIRE(document.at("state").at("delta") == jv(R"({"on":true})"));
  REQUIRE(document.at("version") == 1);

  const auto removed = f.call(f.client.aws("DELETE", "/things/lamp/shadow"));
  REQUIRE(removed.status == 200);
  REQUIRE(body_json(removed).at("version") == 1);
  REQUIRE(body_json(removed).as_object().contains("timestamp"));

  require_aws_error(f.call(f.client.aws("GET", "/things/lamp/shadow")), 404, "ResourceNotFoundException",
                    "No shadow exists with name: 'lamp'");
  require_aws_error(f.call(f.client.aws("DELETE", "/things/lamp/shadow")), 404, "ResourceNotFoundException");
}

TEST_CASE("Named shadows use ?name= and are listed", "[hub][rest]") {
  aws_fixture f;
  REQUIRE(f.update("pump", R"({"state":{"reported":{"rpm":1}}})").status == 200);  // classic: not listed
  for (const auto* name : {"config", "alarms", "stats"}) {
    REQUIRE(f.update("pump", R"({"state":{"reported":{"x":1}}})", name).status == 200);
  }
  const auto got = f.call(f.client.aws("GET", "/things/pump/shadow", {{"name", "config"}}));
  REQUIRE(got.status == 200);
  REQUIRE(body_json(got).at("state").at("reported") == jv(R"({"x":1})"));
  require_aws_error(f.call(f.client.aws("GET", "/things/pump/shadow", {{"name", "nope"}})), 404,
                    "ResourceNotFoundException", "No shadow exists with name: 'nope'");

  const std::string list = "/api/things/shadow/ListNamedShadowsForThing/pump";
  const auto all = f.call(f.client.aws("GET", list));
  REQUIRE(all.status == 200);
  REQUIRE(body_json(all).at("results") == jv(R"(["alarms","config","stats"])"));

  const auto page1 = body_json(f.call(f.client.aws("GET", list, {{"pageSize", "2"}})));
  REQUIRE(page1.at("results") == jv(R"(["alarms","config"])"));
  const std::string token(page1.at("nextToken").as_string());
  const auto page2 = body_json(f.call(f.client.aws("GET", list, {{"pageSize", "2"}, {"nextToken", token}})));
  REQUIRE(page2.at("results") == jv(R"(["stats"])"));
  REQUIRE(page2.at("nextToken").is_null());

  const auto unknown = body_json(f.call(f.client.aws("GET", "/api/things/shadow/ListNamedShadowsForThing/ghost")));
  REQUIRE(unknown.at("results").as_array().empty());

  for (const std::string bad : {"0", "101", "ten", "-1"}) {
    CAPTURE(bad);
    require_aws_error(f.call(f.client.aws("GET", list, {{"pageSize", bad}})), 400, "InvalidRequestException");
  }
}

TEST_CASE("Shadow request errors carry AWS's codes, exceptions and texts", "[hub][rest]") {
  aws_fixture f;
  REQUIRE(f.update("t1", R"({"state":{"reported":{"a":1}}})").status == 200);

  SECTION("bad JSON is 400 Invalid JSON") {
    require_aws_error(f.update("t1", "{"), 400, "InvalidRequestException", "Invalid JSON");
    require_aws_error(f.update("t1", ""), 400, "InvalidRequestException");
  }
  SECTION("a stale version is 409 Version conflict") {
    require_aws_error(f.update("t1", R"({"state":{"reported":{"a":2}},"version":7})"), 409, "ConflictException",
                      "Version conflict");
  }
  SECTION("a state over 8 KB is 413") {
    const std::string big(9000, 'x');
    require_aws_error(f.update("t1", R"({"state":{"reported":{"a":")" + big + R"("}}})"), 413,
                      "RequestEntityTooLargeException", "The payload exceeds the maximum size allowed");
  }
  SECTION("a body that is not UTF-8 is 415") {
    require_aws_error(f.update("t1", "{\"state\":{\"reported\":{\"a\":\"\xff\"}}}"), 415,
                      "UnsupportedDocumentEncodingException");
  }
  SECTION("a bad thing or shadow name is 400") {
    require_aws_error(f.update("t1", R"({"state":{"reported":{"a":1}}})", std::string(65, 's')), 400,
                      "InvalidRequestException");
  }
}

TEST_CASE("Shadow routes percent-decode the thing name", "[hub][rest]") {
  aws_fixture f;
  const auto r = f.call(f.client.aws("POST", "/things/my%2Dlamp/shadow", {}, R"({"state":{"reported":{"on":1}}})"));
  REQUIRE(r.status == 200);
  REQUIRE(f.call(f.client.aws("GET", "/things/my-lamp/shadow")).status == 200);
}

TEST_CASE("SigV4 on the data plane", "[hub][rest]") {
  aws_fixture f;
  REQUIRE(f.update("t1", R"({"state":{"reported":{"a":1}}})").status == 200);
  const auto before = f.core.counters().rest_unauthorized;

  SECTION("both service names the SDKs and docs use, header and presigned forms") {
    test::aws_signing signing;
    for (const auto* service : {"iotdata", "iotdevicegateway"}) {
      signing.service = service;
      for (const bool presigned : {false, true}) {
        signing.presigned = presigned;
        CAPTURE(service, presigned);
        REQUIRE(f.call(f.client.aws("GET", "/things/t1/shadow", {}, {}, signing)).status == 200);
      }
    }
    REQUIRE(f.core.counters().rest_unauthorized == before);
  }
  SECTION("failures are 403 ForbiddenException and are counted") {
    test::aws_signing signing;
    auto request = f.client.aws("GET", "/things/t1/shadow");
    const int variant = GENERATE(range(0, 6));
    CAPTURE(variant);
    switch (variant) {
      case 0:  // no credentials at all
        request.headers = {{"Host", "localhost"}};
        break;
      case 1:
        signing.secret = "not-the-secret";
        request = f.client.aws("GET", "/things/t1/shadow", {}, {}, signing);
        break;
      case 2:
        signing.key_id = "AKIDUNKNOWN";
        request = f.client.aws("GET", "/things/t1/shadow", {}, {}, signing);
        break;
      case 3:
        signing.service = "s3";
        request = f.client.aws("GET", "/things/t1/shadow", {}, {}, signing);
        break;
      case 4:  // the body changed after signing
        request = f.client.aws("POST", "/things/t1/shadow", {}, R"({"state":{"reported":{"a":2}}})");
        request.body = R"({"state":{"reported":{"a":3}}})";
        break;
      case 5:  // signed 20 minutes before the hub's clock
        f.client.set_now(f.now - 20min);
        request = f.client.aws("GET", "/things/t1/shadow");
        f.client.set_now(f.now);
        break;
      default: break;
    }
    require_aws_error(f.call(request), 403, "ForbiddenException");
    REQUIRE(f.core.counters().rest_unauthorized == before + 1);
    // Nothing changed.
    REQUIRE(body_json(f.call(f.client.aws("GET", "/things/t1/shadow"))).at("state").at("reported").at("a") == 1);
  }
  SECTION("missing authentication has AWS's text") {
    auto request = f.client.aws("GET", "/things/t1/shadow");
    request.headers = {{"Host", "localhost"}};
    require_aws_error(f.call(request), 403, "ForbiddenException", "Missing Authentication Token");
  }
  SECTION("authorization comes before the body is read") {
    auto request = f.client.aws("POST", "/things/t1/shadow", {}, "{");
    request.headers = {{"Host", "localhost"}};
    REQUIRE(f.call(request).status == 403);
  }
}

TEST_CASE("Unknown AWS routes are 404, known routes with another method 405", "[hub][rest]") {
  aws_fixture f;
  SECTION("404") {
    const std::string path = GENERATE(as<std::string>{}, "/things/t1", "/things/t1/shadow/extra", "/things",
                                      "/api/things/shadow/ListNamedShadowsForThing", "/topics", "/api/x");
    CAPTURE(path);
    require_aws_error(f.call(f.client.aws("GET", path)), 404, "ResourceNotFoundException");
  }
  SECTION("405 names the allowed methods") {
    const auto r = f.call(f.client.aws("PUT", "/things/t1/shadow", {}, "{}"));
    require_aws_error(r, 405, "MethodNotAllowedException");
    REQUIRE(r.header("Allow") == "GET, POST, DELETE");
    const auto list = f.call(f.client.aws("POST", "/api/things/shadow/ListNamedShadowsForThing/t1"));
    require_aws_error(list, 405, "MethodNotAllowedException");
    REQUIRE(list.header("Allow") == "GET");
  }
  SECTION("a bad percent-encoding is 400") {
    auto request = f.client.aws("GET", "/things/t1/shadow");
    request.target = "/things/t%1/shadow";
    require_aws_error(f.call(request), 400, "InvalidRequestException");
  }
}

TEST_CASE("POST /topics/{topic} publishes to MQTT subscribers and serves shadow topics", "[hub][rest]") {
  aws_fixture f;
  hub::link_info info;
  info.transport = hub::transport_kind::tls;
  info.certificate = hub::peer_certificate{"lamp-1", "AA", "BB", true};
  test::fake_link device(info);
  mqtt::connect_packet connect;
  connect.client_id = "lamp-1";
  connect.keep_alive = 300;
  connect.username = std::string_view("?SDK=JavaScript&Version=2.2.16");
  REQUIRE(f.core.on_connect(device, connect, f.now) == mqtt::connect_return_code::accepted);
  const mqtt::subscription filters[] = {{"commands/lamp-1", mqtt::qos::at_least_once}};
  REQUIRE(f.core.on_subscribe(device, filters, f.now) ==
          std::vector<mqtt::suback_code>{mqtt::suback_code::granted_qos1});

  SECTION("the topic as one encoded label (SDKs) or as raw levels (curl)") {
    const std::string path = GENERATE(as<std::string>{}, "/topics/commands%2Flamp-1", "/topics/commands/lamp-1");
    CAPTURE(path);
    const auto r = f.call(f.client.aws("POST", path, {{"qos", "1"}}, R"({"blink":2})"));
    REQUIRE(r.status == 200);
    REQUIRE(body_json(r) == jv(R"({"message":"OK"})"));
    const auto sent = device.take();
    REQUIRE(sent.size() == 1);
    REQUIRE(sent[0].topic == "commands/lamp-1");
    REQUIRE(sent[0].payload == R"({"blink":2})");
    REQUIRE(sent[0].qos == mqtt::qos::at_least_once);
  }
  SECTION("without qos the publish is QoS 0") {
    REQUIRE(f.call(f.client.aws("POST", "/topics/commands%2Flamp-1", {}, "x")).status == 200);
    REQUIRE(device.take().at(0).qos == mqtt::qos::at_most_once);
  }
  SECTION("a shadow request topic is served") {
    const auto r = f.call(f.client.aws("POST", "/topics/%24aws%2Fthings%2Flamp-1%2Fshadow%2Fupdate", {},
                                       R"({"state":{"desired":{"on":true}}})"));
    REQUIRE(r.status == 200);
    REQUIRE(body_json(f.call(f.client.aws("GET", "/things/lamp-1/shadow"))).at("version") == 1);
  }
  SECTION("errors") {
    require_aws_error(f.call(f.client.aws("POST", "/topics/a", {{"qos", "2"}}, "x")), 400, "InvalidRequestException");
    require_aws_error(f.call(f.client.aws("POST", "/topics/a%2F%2B%2Fb", {}, "x")), 400, "InvalidRequestException");
    require_aws_error(f.call(f.client.aws("POST", "/topics/%24aws%2Frules%2Fx", {}, "x")), 400,
                      "InvalidRequestException");
    require_aws_error(f.call(f.client.aws("POST", "/topics/a%zz", {}, "x")), 400, "InvalidRequestException");
    const auto get = f.call(f.client.aws("GET", "/topics/a"));
    require_aws_error(get, 405, "MethodNotAllowedException");
    REQUIRE(get.header("Allow") == "POST");
    auto unsigned_request = f.client.aws("POST", "/topics/commands%2Flamp-1", {}, "x");
    unsigned_request.headers = {{"Host", "localhost"}};
    require_aws_error(f.call(unsigned_request), 403, "ForbiddenException");
    REQUIRE(device.sent.empty());
  }
  f.core.on_disconnect(device, f.now);
}
