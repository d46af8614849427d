// The Azure IoT Hub service REST API through rest_router, without sockets (PROTOCOLS.md A8,
// A9, A11, Part E): twins, direct methods, the identity registry, and every error path.
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

struct azure_fixture {
  std::chrono::system_clock::time_point now = at(0);
  hub::hub_core core{test::rest_settings()};
  hub::rest_router router{core, [this] { return now; }};
  test::rest_client_factory client{core, now};

  rest_response call(const rest_request& request) {
    auto r = router.handle(request);
    REQUIRE(r.has_value());
    return std::move(*r);
  }

  // Registers a device through the REST registry, as a back end would.
  void create_device(const std::string& id) {
    const auto r = call(client.azure("PUT", "/devices/" + id + "?api-version=2021-04-12",
                                     R"({"deviceId":")" + id + R"("})", client.sas("registryReadWrite")));
    REQUIRE(r.status == 200);
  }

  std::string twin_etag(const std::string& id) {
    const auto r = call(client.azure("GET", "/twins/" + id));
    REQUIRE(r.status == 200);
    return std::string(body_json(r).at("etag").as_string());
  }
};

// The fields every Azure error carries (both shapes seen in the wild), plus the header.
void require_azure_error(const rest_response& r, int status, int code, std::string_view name) {
  CAPTURE(r.body);
  REQUIRE(r.status == status);
  REQUIRE(r.header("iothub-errorcode") == name);
  REQUIRE(r.header("Content-Type") == "application/json; charset=utf-8");
  const auto body = body_json(r).as_object();
  REQUIRE(body.at("errorCode").as_int64() == code);
  const std::string message(body.at("message").as_string());
  REQUIRE(body.at("Message").as_string() == "ErrorCode:" + std::string(name) + ";" + message);
  const std::string tracking(body.at("ExceptionMessage").as_string());
  REQUIRE(tracking.starts_with("Tracking ID:"));
  REQUIRE(tracking.find("-TimeStamp:") != std::string::npos);
}

}  // namespace

TEST_CASE("GET /twins/{id} answers the twin with its quoted etag", "[hub][rest]") {
  azure_fixture f;
  f.create_device("dev1");
  const auto r = f.call(f.client.azure("GET", "/twins/dev1?api-version=2021-04-12"));
  REQUIRE(r.status == 200);
  REQUIRE(r.header("Content-Type") == "application/json; charset=utf-8");
  const auto twin = body_json(r).as_object();
  REQUIRE(twin.at("deviceId") == "dev1");
  REQUIRE(r.header("ETag") == "\"" + std::string(twin.at("etag").as_string()) + "\"");
  REQUIRE(twin.at("properties").as_object().contains("desired"));
}

TEST_CASE("Twin routes percent-decode the device id", "[hub][rest]") {
  azure_fixture f;
  f.create_device("dev-1");
  const auto r = f.call(f.client.azure("GET", "/twins/dev%2D1"));
  REQUIRE(r.status == 200);
  REQUIRE(body_json(r).at("deviceId") == "dev-1");
}

TEST_CASE("An unknown device's twin is 404001 DeviceNotFound", "[hub][rest]") {
  azure_fixture f;
  require_azure_error(f.call(f.client.azure("GET", "/twins/nobody")), 404, 404001, "DeviceNotFound");
}

TEST_CASE("PATCH /twins/{id} takes azure-iothub's body and If-Match", "[hub][rest]") {
  azure_fixture f;
  f.create_device("dev1");
  const auto etag = f.twin_etag("dev1");

  SECTION("If-Match \"*\" applies unconditionally") {
    auto request = f.client.azure("PATCH", "/twins/dev1?api-version=2021-04-12",
                                  R"({"properties":{"desired":{"target":21.5}},"tags":{"site":"lab"}})");
    request.headers.push_back({"If-Match", "\"*\""});
    const auto r = f.call(request);
    REQUIRE(r.status == 200);
    const auto twin = body_json(r);
    REQUIRE(twin.at("properties").at("desired").at("target") == 21.5);
    REQUIRE(twin.at("tags").at("site") == "lab");
    REQUIRE(r.header("ETag") == "\"" + std::string(twin.at("etag").as_string()) + "\"");
    REQUIRE(twin.at("etag").as_string() != etag);
  }
  SECTION("the current etag, quoted, matches") {
    auto request = f.client.azure("PATCH", "/twins/dev1", R"({"properties":{"desired":{"a":1}}})");
    request.headers.push_back({"If-Match", "\"" + etag + "\""});
    REQUIRE(f.call(request).status == 200);
  }
  SECTION("a stale etag is 412001 PreconditionFailed and changes nothing") {
    auto first = f.client.azure("PATCH", "/twins/dev1", R"({"properties":{"desired":{"a":1}}})");
    REQUIRE(f.call(first).status == 200);
    auto stale = f.client.azure("PATCH", "/twins/dev1", R"({"properties":{"desired":{"a":2}}})");
    stale.headers.push_back({"If-Match", "\"" + etag + "\""});
    require_azure_error(f.call(stale), 412, 412001, "PreconditionFailed");
    REQUIRE(body_json(f.call(f.client.azure("GET", "/twins/dev1"))).at("properties").at("desired").at("a") == 1);
  }
  SECTION("an unquoted etag counts as absent, as IoT Hub treats it (A11)") {
    auto first = f.client.azure("PATCH", "/twins/dev1", R"({"properties":{"desired":{"a":1}}})");
    REQUIRE(f.call(first).status == 200);
    auto unquoted = f.client.azure("PATCH", "/twins/dev1", R"({"properties":{"desired":{"a":2}}})");
    unquoted.headers.push_back({"If-Match", etag});
    REQUIRE(f.call(unquoted).status == 200);
  }
  SECTION("a patch of reported properties is refused") {
    const auto r = f.call(f.client.azure("PATCH", "/twins/dev1", R"({"properties":{"reported":{"a":1}}})"));
    require_azure_error(r, 400, 400004, "ArgumentInvalid");
  }
}

TEST_CASE("PUT /twins/{id} replaces tags and desired", "[hub][rest]") {
  azure_fixture f;
  f.create_device("dev1");
  REQUIRE(f.call(f.client.azure("PATCH", "/twins/dev1", R"({"tags":{"a":1,"b":2},"properties":{"desired":{"x":1}}})"))
              .status == 200);
  const auto r = f.call(f.client.azure("PUT", "/twins/dev1", R"({"tags":{"c":3},"properties":{"desired":{"y":2}}})"));
  REQUIRE(r.status == 200);
  const auto twin = body_json(r);
  REQUIRE(twin.at("tags") == jv(R"({"c":3})"));
  REQUIRE(!twin.at("properties").at("desired").as_object().contains("x"));
  REQUIRE(twin.at("properties").at("desired").at("y") == 2);
}

TEST_CASE("Twin writes with a bad body are 400004 ArgumentInvalid", "[hub][rest]") {
  azure_fixture f;
  f.create_device("dev1");
  const std::string bad = GENERATE(as<std::string>{}, "", "{", "{\"tags\":", "not json", "[1,2", "\"\\x\"");
  CAPTURE(bad);
  require_azure_error(f.call(f.client.azure("PATCH", "/twins/dev1", bad)), 400, 400004, "ArgumentInvalid");
  require_azure_error(f.call(f.client.azure("PUT", "/twins/dev1", bad)), 400, 400004, "ArgumentInvalid");
}

TEST_CASE("A twin over its size limit is 403100", "[hub][rest]") {
  azure_fixture f;
  f.create_device("dev1");
  // Tags hold at most 8 KB (A3): 3 strings of 4000 characters exceed it.
  const std::string big(4000, 'x');
  const std::string body = R"({"tags":{"a":")" + big + R"(","b":")" + big + R"(","c":")" + big + R"("}})";
  require_azure_error(f.call(f.client.azure("PATCH", "/twins/dev1", body)), 403, 403100, "ArgumentInvalid");
}

TEST_CASE("Azure service authorization", "[hub][rest]") {
  azure_fixture f;
  f.create_device("dev1");
  const auto before = f.core.counters().rest_unauthorized;

  SECTION("iothubowner and service may read twins, with either key") {
    REQUIRE(f.call(f.client.azure("GET", "/twins/dev1", {}, f.client.sas("iothubowner"))).status == 200);
    REQUIRE(f.call(f.client.azure("GET", "/twins/dev1", {}, f.client.sas("service", 1h, test::rest_hub_host, true)))
                .status == 200);
    REQUIRE(f.core.counters().rest_unauthorized == before);
  }
  SECTION("a token for the device's own resource works too") {
    const auto resource = std::string(test::rest_hub_host) + "/devices/dev1";
    REQUIRE(f.call(f.client.azure("GET", "/twins/dev1", {}, f.client.sas("service", 1h, resource))).status == 200);
  }
  SECTION("failures are 401003 IotHubUnauthorizedAccess and are counted") {
    const auto other_device = std::string(test::rest_hub_host) + "/devices/dev2";
    // Signed with a key the hub does not know: a well-formed token with a bad signature.
    const auto forged = auth::create_sas_token({test::rest_hub_host, hub::random_key(),
                                                std::chrono::floor<std::chrono::seconds>(f.now) + 1h,
                                                std::string_view("service"), auth::hex_case::upper})
                            .value();
    // One case per run: missing, not SAS, malformed, bad signature, the device policy (no
    // ServiceConnect), a registry policy (not ServiceConnect either), expired, another
    // device's resource.
    const int variant = GENERATE(range(0, 8));
    const std::string authorization = [&]() -> std::string {
      switch (variant) {
        case 0: return {};
        case 1: return "Bearer abc";
        case 2: return "SharedAccessSignature sr=x&sig=y";
        case 3: return forged;
        case 4: return f.client.sas("device");
        case 5: return f.client.sas("registryRead");
        case 6: return f.client.sas("service", -1s);
        default: return f.client.sas("service", 1h, other_device);
      }
    }();
    CAPTURE(authorization);
    auto request = f.client.azure("GET", "/twins/dev1", {}, authorization);
    require_azure_error(f.call(request), 401, 401003, "IotHubUnauthorizedAccess");
    REQUIRE(f.core.counters().rest_unauthorized == before + 1);
  }
  SECTION("a device key token (no skn) is refused") {
    const auto token = auth::create_sas_token({std::string(test::rest_hub_host) + "/devices/dev1",
                                               f.core.device_key_for("dev1"),
                                               std::chrono::floor<std::chrono::seconds>(f.now) + 1h, std::nullopt,
                                               auth::hex_case::upper})
                           .value();
    require_azure_error(f.call(f.client.azure("GET", "/twins/dev1", {}, token)), 401, 401003,
                        "IotHubUnauthorizedAccess");
  }
  SECTION("a token expires on the router's clock") {
    const auto token = f.client.sas("service", 10s);
    REQUIRE(f.call(f.client.azure("GET", "/twins/dev1", {}, token)).status == 200);
    f.now += 11s;
    REQUIRE(f.call(f.client.azure("GET", "/twins/dev1", {}, token)).status == 401);
  }
  SECTION("authorization comes before the body is read") {
    require_azure_error(f.call(f.client.azure("PATCH", "/twins/dev1", "{", f.client.sas("device"))), 401, 401003,
                        "IotHubUnauthorizedAccess");
  }
}

TEST_CASE("Unknown Azure routes are 404, known routes with another method 405", "[hub][rest]") {
  azure_fixture f;
  f.create_device("dev1");
  SECTION("404") {
    const std::string target = GENERATE(as<std::string>{}, "/", "/twins", "/twins/dev1/properties", "/nothing/here",
                                        "/twins/dev1/methods/extra", "/devices/dev1/extra");
    CAPTURE(target);
    require_azure_error(f.call(f.client.azure("GET", target)), 404, 404000, "NotFound");
  }
  SECTION("module forms are ModuleNotFound") {
    require_azure_error(f.call(f.client.azure("GET", "/twins/dev1/modules/m1")), 404, 404010, "ModuleNotFound");
    require_azure_error(f.call(f.client.azure("GET", "/devices/dev1/modules/m1", {}, f.client.sas("registryRead"))),
                        404, 404010, "ModuleNotFound");
  }
  SECTION("405 names the allowed methods") {
    const auto r = f.call(f.client.azure("DELETE", "/twins/dev1"));
    require_azure_error(r, 405, 405000, "MethodNotAllowed");
    REQUIRE(r.header("Allow") == "GET, PATCH, PUT");
    REQUIRE(f.call(f.client.azure("GET", "/twins/dev1/methods")).header("Allow") == "POST");
    REQUIRE(f.call(f.client.azure("PATCH", "/devices/dev1")).status == 405);
    REQUIRE(f.call(f.client.azure("DELETE", "/devices")).header("Allow") == "GET, POST");
  }
  SECTION("a bad percent-encoding is 400") {
    require_azure_error(f.call(f.client.azure("GET", "/twins/dev%G1")), 400, 400004, "ArgumentInvalid");
    require_azure_error(f.call(f.client.azure("GET", "/twins/dev1?api-version=%zz")), 400, 400004,
                        "ArgumentInvalid");
  }
}

TEST_CASE("Every request is counted", "[hub][rest]") {
  azure_fixture f;
  const auto before = f.core.counters().rest_requests;
  (void)f.call(f.client.azure("GET", "/twins/nobody"));
  (void)f.call(f.client.azure("GET", "/nowhere"));
  (void)f.call(f.client.aws("GET", "/things/t1/shadow"));
  REQUIRE(f.core.counters().rest_requests == before + 3);
}

// ---- direct methods ----------------------------------------------------------------------

TEST_CASE("POST /twins/{id}/methods completes when the device answers", "[hub][rest]") {
  azure_fixture f;
  test::fake_link device;
  const test::azure_device_login login(f.core, "dev1", f.now);
  test::connect_method_listener(f.core, device, login, f.now);

  std::optional<rest_response> answer;
  f.router.async_handle(
      f.client.azure("POST", "/twins/dev1/methods?api-version=2021-04-12",
                     R"({"methodName":"reboot","payload":{"delay":5},"responseTimeoutInSeconds":30,"connectTimeoutInSeconds":0})"),
      [&](rest_response r) { answer = std::move(r); });
  REQUIRE_FALSE(answer.has_value());

  auto sent = device.take();
  REQUIRE(sent.size() == 1);
  REQUIRE(sent[0].topic.starts_with("$iothub/methods/POST/reboot/?$rid="));
  REQUIRE(sent[0].json() == jv(R"({"delay":5})"));

  const auto topic = "$iothub/methods/res/201/?$rid=" + test::rid_of(sent[0].topic);
  mqtt::publish_packet reply;
  reply.topic = topic;
  reply.payload = R"({"rebooting":true})";
  f.core.on_publish(device, reply, f.now);

  REQUIRE(answer.has_value());
  REQUIRE(answer->status == 200);
  REQUIRE(answer->header("Content-Type") == "application/json; charset=utf-8");
  REQUIRE(body_json(*answer) == jv(R"({"status":201,"payload":{"rebooting":true}})"));
}

TEST_CASE("A method to an offline device is 404103 DeviceNotOnline", "[hub][rest]") {
  azure_fixture f;
  f.create_device("dev1");
  const auto r = f.call(f.client.azure("POST", "/twins/dev1/methods", R"({"methodName":"reboot"})"));
  require_azure_error(r, 404, 404103, "DeviceNotOnline");
}

TEST_CASE("A method the device never answers is 504101 GatewayTimeout", "[hub][rest]") {
  azure_fixture f;
  test::fake_link device;
  const test::azure_device_login login(f.core, "dev1", f.now);
  test::connect_method_listener(f.core, device, login, f.now);

  std::optional<rest_response> answer;
  f.router.async_handle(
      f.client.azure("POST", "/twins/dev1/methods", R"({"methodName":"slow","responseTimeoutInSeconds":5})"),
      [&](rest_response r) { answer = std::move(r); });
  REQUIRE_FALSE(answer.has_value());
  f.core.on_timer(f.now + 4s);
  REQUIRE_FALSE(answer.has_value());
  f.core.on_timer(f.now + 6s);
  REQUIRE(answer.has_value());
  require_azure_error(*answer, 504, 504101, "GatewayTimeout");
}

TEST_CASE("Method requests with a bad body are 400004", "[hub][rest]") {
  azure_fixture f;
  test::fake_link device;
  const test::azure_device_login login(f.core, "dev1", f.now);
  test::connect_method_listener(f.core, device, login, f.now);
  const std::string body = GENERATE(as<std::string>{}, "", "{", "[]", R"({"payload":{}})", R"({"methodName":42})");
  CAPTURE(body);
  require_azure_error(f.call(f.client.azure("POST", "/twins/dev1/methods", body)), 400, 400004, "ArgumentInvalid");
  REQUIRE(device.sent.empty());
}

TEST_CASE("Methods need ServiceConnect", "[hub][rest]") {
  azure_fixture f;
  const auto r = f.call(f.client.azure("POST", "/twins/dev1/methods", R"({"methodName":"reboot"})",
                                       f.client.sas("registryReadWrite")));
  require_azure_error(r, 401, 401003, "IotHubUnauthorizedAccess");
}

// ---- identity registry --------------------------------------------------------------------

TEST_CASE("PUT/GET/DELETE /devices/{id}", "[hub][rest]") {
  azure_fixture f;
  const auto write = f.client.sas("registryReadWrite");
  const auto read = f.client.sas("registryRead");

  auto created = f.call(f.client.azure("PUT", "/devices/dev1", R"({"deviceId":"dev1","status":"enabled"})", write));
  REQUIRE(created.status == 200);
  const auto identity = body_json(created);
  REQUIRE(identity.at("deviceId") == "dev1");
  const std::string etag(identity.at("etag").as_string());
  REQUIRE(created.header("ETag") == "\"" + etag + "\"");

  SECTION("creating twice is 409001 DeviceAlreadyExists") {
    require_azure_error(f.call(f.client.azure("PUT", "/devices/dev1", R"({"deviceId":"dev1"})", write)), 409, 409001,
                        "DeviceAlreadyExists");
  }
  SECTION("updates follow If-Match") {
    auto any = f.client.azure("PUT", "/devices/dev1", R"({"deviceId":"dev1","status":"disabled"})", write);
    any.headers.push_back({"If-Match", "\"*\""});
    const auto updated = f.call(any);
    REQUIRE(updated.status == 200);
    REQUIRE(body_json(updated).at("status") == "disabled");

    auto stale = f.client.azure("PUT", "/devices/dev1", R"({"deviceId":"dev1"})", write);
    stale.headers.push_back({"If-Match", "\"" + etag + "\""});
    require_azure_error(f.call(stale), 412, 412001, "PreconditionFailed");
  }
  SECTION("GET needs RegistryRead") {
    const auto got = f.call(f.client.azure("GET", "/devices/dev1", {}, read));
    REQUIRE(got.status == 200);
    REQUIRE(body_json(got).at("deviceId") == "dev1");
    REQUIRE(f.call(f.client.azure("GET", "/devices/dev1", {}, f.client.sas("service"))).status == 401);
    require_azure_error(f.call(f.client.azure("GET", "/devices/other", {}, read)), 404, 404001, "DeviceNotFound");
  }
  SECTION("writes need RegistryWrite") {
    require_azure_error(f.call(f.client.azure("PUT", "/devices/dev2", R"({"deviceId":"dev2"})", read)), 401, 401003,
                        "IotHubUnauthorizedAccess");
    require_azure_error(f.call(f.client.azure("DELETE", "/devices/dev1", {}, read)), 401, 401003,
                        "IotHubUnauthorizedAccess");
  }
  SECTION("DELETE answers 204, then the device is gone") {
    auto stale = f.client.azure("DELETE", "/devices/dev1", {}, write);
    stale.headers.push_back({"If-Match", "\"AAAAAAAAAAA=\""});
    require_azure_error(f.call(stale), 412, 412001, "PreconditionFailed");

    auto remove = f.client.azure("DELETE", "/devices/dev1", {}, write);
    remove.headers.push_back({"If-Match", "\"*\""});
    const auto r = f.call(remove);
    REQUIRE(r.status == 204);
    REQUIRE(r.body.empty());
    require_azure_error(f.call(f.client.azure("GET", "/devices/dev1", {}, read)), 404, 404001, "DeviceNotFound");
    require_azure_error(f.call(f.client.azure("DELETE", "/devices/dev1", {}, write)), 404, 404001, "DeviceNotFound");
  }
  SECTION("bad bodies are 400004") {
    require_azure_error(f.call(f.client.azure("PUT", "/devices/dev3", "{", write)), 400, 400004, "ArgumentInvalid");
    require_azure_error(f.call(f.client.azure("PUT", "/devices/dev3", R"({"deviceId":"other"})", write)), 400,
                        400004, "ArgumentInvalid");
  }
  SECTION("twin queries are not served") {
    require_azure_error(f.call(f.client.azure("POST", "/devices/query", R"({"query":"SELECT * FROM devices"})")), 404,
                        404000, "NotFound");
  }
}

TEST_CASE("GET /devices?top=N lists identities", "[hub][rest]") {
  azure_fixture f;
  for (const auto* id : {"a", "b", "c"}) f.create_device(id);
  const auto read = f.client.sas("registryRead");
  const auto all = f.call(f.client.azure("GET", "/devices?api-version=2021-04-12", {}, read));
  REQUIRE(all.status == 200);
  REQUIRE(body_json(all).as_array().size() == 3);
  REQUIRE(body_json(f.call(f.client.azure("GET", "/devices?top=2", {}, read))).as_array().size() == 2);
  for (const std::string bad : {"0", "1001", "x", "-1", "2x"}) {
    CAPTURE(bad);
    require_azure_error(f.call(f.client.azure("GET", "/devices?top=" + bad, {}, read)), 400, 400004,
                        "ArgumentInvalid");
  }
  REQUIRE(f.call(f.client.azure("GET", "/devices", {}, f.client.sas("device"))).status == 401);
}

TEST_CASE("POST /devices runs a bulk registry operation (subset)", "[hub][rest]") {
  azure_fixture f;
  const auto write = f.client.sas("registryReadWrite");
  const auto bulk = [&](std::string body) { return f.call(f.client.azure("POST", "/devices", std::move(body), write)); };

  const auto created = bulk(R"([{"id":"b1","importMode":"create"},{"id":"b2"},{"id":"b3","importMode":"createOrUpdate"}])");
  REQUIRE(created.status == 200);
  REQUIRE(body_json(created) == jv(R"({"isSuccessful":true,"errors":[],"warnings":[]})"));
  REQUIRE(f.call(f.client.azure("GET", "/devices/b2", {}, write)).status == 200);

  SECTION("per-device failures are listed, the rest applied") {
    const auto r = bulk(R"({"devices":[{"id":"b1","importMode":"create"},{"id":"b4","importMode":"create"},
                                       {"id":"b2","importMode":"delete"},{"id":"zz","importMode":"delete"}]})");
    REQUIRE(r.status == 200);
    const auto answer = body_json(r);
    REQUIRE(answer.at("isSuccessful") == false);
    const auto& errors = answer.at("errors").as_array();
    REQUIRE(errors.size() == 2);
    REQUIRE(errors[0].at("deviceId") == "b1");
    REQUIRE(errors[0].at("errorCode") == 409001);
    REQUIRE(errors[1].at("deviceId") == "zz");
    REQUIRE(errors[1].at("errorCode") == 404001);
    REQUIRE(f.call(f.client.azure("GET", "/devices/b4", {}, write)).status == 200);
    REQUIRE(f.call(f.client.azure("GET", "/devices/b2", {}, write)).status == 404);
  }
  SECTION("etag-conditional modes") {
    const std::string etag(body_json(f.call(f.client.azure("GET", "/devices/b1", {}, write))).at("etag").as_string());
    auto r = bulk(R"([{"id":"b1","importMode":"updateIfMatchETag","eTag":"stale"},
                      {"id":"b2","importMode":"deleteIfMatchETag","eTag":"stale"}])");
    REQUIRE(body_json(r).at("errors").as_array().size() == 2);
    r = bulk(R"([{"id":"b1","importMode":"updateIfMatchETag","status":"disabled","eTag":")" + etag + R"("}])");
    REQUIRE(body_json(r).at("isSuccessful") == true);
  }
  SECTION("malformed requests fail as a whole") {
    require_azure_error(bulk(R"({"id":"b1"})"), 400, 400004, "ArgumentInvalid");
    require_azure_error(bulk(R"([{"importMode":"create"}])"), 400, 400004, "ArgumentInvalid");
    require_azure_error(bulk(R"([{"id":"x","importMode":"explode"}])"), 400, 400004, "ArgumentInvalid");
    require_azure_error(bulk(R"([1])"), 400, 400004, "ArgumentInvalid");
    require_azure_error(bulk(R"([{"id":"x"},{"id":"x"}])"), 400, 400011, "DeviceDefinedMultipleTimes");
    std::string many = "[";
    for (int i = 0; i < 101; ++i) many += (i ? "," : "") + std::string(R"({"id":"m)") + std::to_string(i) + "\"}";
    require_azure_error(bulk(many + "]"), 413, 413002, "TooManyDevices");
    require_azure_error(f.call(f.client.azure("POST", "/devices", "[]", f.client.sas("registryRead"))), 401, 401003,
                        "IotHubUnauthorizedAccess");
  }
}
