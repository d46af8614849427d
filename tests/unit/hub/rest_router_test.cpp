// The REST router's shared parts: which platform a path belongs to, the two error shapes, the
// error names, and how pending requests are reported.
#include "rest_test_util.hpp"

using namespace twinfleet;
using hub::rest_response;
using test::at;
using test::body_json;
using test::jv;

TEST_CASE("Paths belong to Azure unless they are under AWS's data-plane roots", "[hub][rest]") {
  using hub::platform_of;
  using hub::rest_platform;
  REQUIRE(platform_of("/things/t1/shadow") == rest_platform::aws);
  REQUIRE(platform_of("/api/things/shadow/ListNamedShadowsForThing/t1") == rest_platform::aws);
  REQUIRE(platform_of("/topics/a") == rest_platform::aws);
  REQUIRE(platform_of("/things?x=1") == rest_platform::aws);
  REQUIRE(platform_of("/twins/d1") == rest_platform::azure);
  REQUIRE(platform_of("/devices") == rest_platform::azure);
  REQUIRE(platform_of("/thingsx") == rest_platform::azure);
  REQUIRE(platform_of("") == rest_platform::azure);
  REQUIRE(platform_of("*") == rest_platform::azure);
}

TEST_CASE("Azure error names follow IoT Hub's codes", "[hub][rest]") {
  using hub::azure_error_name;
  REQUIRE(azure_error_name(400004) == "ArgumentInvalid");
  REQUIRE(azure_error_name(401003) == "IotHubUnauthorizedAccess");
  REQUIRE(azure_error_name(403100) == "ArgumentInvalid");
  REQUIRE(azure_error_name(404001) == "DeviceNotFound");
  REQUIRE(azure_error_name(404103) == "DeviceNotOnline");
  REQUIRE(azure_error_name(409001) == "DeviceAlreadyExists");
  REQUIRE(azure_error_name(412001) == "PreconditionFailed");
  REQUIRE(azure_error_name(413001) == "MessageTooLarge");
  REQUIRE(azure_error_name(429001) == "ThrottlingException");
  REQUIRE(azure_error_name(500001) == "ServerError");
  REQUIRE(azure_error_name(504101) == "GatewayTimeout");
  // Unknown codes fall back to a name for their status.
  REQUIRE(azure_error_name(429999) == "ThrottlingException");
  REQUIRE(azure_error_name(500123) == "ServerError");
}

TEST_CASE("Azure errors carry both body shapes and the iothub-errorcode header", "[hub][rest]") {
  const auto r = hub::azure_error_response(429001, "Throttled, try later.");
  REQUIRE(r.status == 429);
  REQUIRE(r.header("iothub-errorcode") == "ThrottlingException");
  REQUIRE(r.header("Content-Type") == "application/json; charset=utf-8");
  const auto body = body_json(r);
  REQUIRE(body.at("Message") == "ErrorCode:ThrottlingException;Throttled, try later.");
  REQUIRE(body.at("errorCode") == 429001);
  REQUIRE(body.at("message") == "Throttled, try later.");
  const std::string tracking(body.at("ExceptionMessage").as_string());
  // "Tracking ID:" + 32 hex digits + "-TimeStamp:MM/DD/YYYY HH:MM:SS"
  REQUIRE(tracking.size() == 12 + 32 + 11 + 19);
  REQUIRE(tracking.find_first_not_of("0123456789abcdef", 12) == 44);
  REQUIRE(tracking.substr(44, 11) == "-TimeStamp:");
}

TEST_CASE("AWS errors carry the exception name and the message", "[hub][rest]") {
  const std::pair<int, std::string_view> cases[] = {
      {400, "InvalidRequestException"},     {401, "UnauthorizedException"},
      {403, "ForbiddenException"},          {404, "ResourceNotFoundException"},
      {405, "MethodNotAllowedException"},   {409, "ConflictException"},
      {413, "RequestEntityTooLargeException"}, {415, "UnsupportedDocumentEncodingException"},
      {429, "ThrottlingException"},         {500, "InternalFailureException"},
      {503, "ServiceUnavailableException"},
  };
  for (const auto& [status, name] : cases) {
    CAPTURE(status);
    const auto r = hub::aws_error_response(status, "Some \"quoted\" text");
    REQUIRE(r.status == status);
    REQUIRE(r.header("x-amzn-ErrorType") == name);
    REQUIRE(body_json(r) == jv(R"({"message":"Some \"quoted\" text"})"));
  }
}

TEST_CASE("Oversized bodies get 413 in the platform's shape", "[hub][rest]") {
  const auto azure = hub::payload_too_large_response("/twins/d1");
  REQUIRE(azure.status == 413);
  REQUIRE(azure.header("iothub-errorcode") == "MessageTooLarge");
  REQUIRE(body_json(azure).at("errorCode") == 413001);
  const auto aws = hub::payload_too_large_response("/things/t1/shadow");
  REQUIRE(aws.status == 413);
  REQUIRE(aws.header("x-amzn-ErrorType") == "RequestEntityTooLargeException");
  REQUIRE(body_json(aws) == jv(R"({"message":"The payload exceeds the maximum size allowed"})"));
}

TEST_CASE("Headers are found case-insensitively", "[hub][rest]") {
  hub::rest_request r;
  r.headers = {{"if-match", "\"*\""}, {"AUTHORIZATION", "x"}};
  REQUIRE(r.header("If-Match") == "\"*\"");
  REQUIRE(r.header("Authorization") == "x");
  REQUIRE_FALSE(r.header("Host").has_value());
}

TEST_CASE("The router never throws on garbage targets and methods", "[hub][rest]") {
  hub::hub_core core{test::rest_settings()};
  hub::rest_router router{core, [] { return at(0); }};
  const std::string target = GENERATE(as<std::string>{}, "", "*", "twins/d1", "//", "/%", "/twins/%zz", "/a?%",
                                      "http://host", "https://host/twins/x?y", std::string("/twins/\0x", 9),
                                      "/things/%", "/things//shadow", "/api/things/shadow/ListNamedShadowsForThing/");
  const std::string method = GENERATE(as<std::string>{}, "GET", "BREW", "");
  CAPTURE(target, method);
  hub::rest_request request;
  request.method = method;
  request.target = target;
  request.body = "\xff\xfe garbage";
  const auto r = router.handle(request);
  REQUIRE(r.has_value());
  REQUIRE(r->status >= 400);
  REQUIRE(r->status < 500);
}

TEST_CASE("handle() reports a pending direct method as nullopt, the answer comes later", "[hub][rest]") {
  hub::hub_core core{test::rest_settings()};
  hub::rest_router router{core, [] { return at(0); }};
  test::rest_client_factory client{core, at(0)};
  test::fake_link device;
  const test::azure_device_login login(core, "dev1", at(0));
  test::connect_method_listener(core, device, login, at(0));

  const auto r = router.handle(client.azure("POST", "/twins/dev1/methods", R"({"methodName":"m","responseTimeoutInSeconds":5})"));
  REQUIRE_FALSE(r.has_value());
  // The hub times the method out; the handler the router kept is still valid.
  core.on_timer(at(10));
  REQUIRE(core.counters().azure_methods_failed == 1);
}
