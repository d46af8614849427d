// SigV4 signing and verification (PROTOCOLS.md B8, B10), beyond the official suite.
#include <twinfleet/auth/sigv4.hpp>

#include "catch_printers.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <stdexcept>
#include <string>

namespace auth = twinfleet::auth;
using auth::auth_errc;
using namespace std::chrono_literals;



namespace {

const auth::aws_credentials example_credentials{"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", ""};
// 2015-08-30T12:36:00Z, the suite's timestamp.
constexpr std::chrono::sys_seconds example_time{std::chrono::seconds{1440938160}};
const auto example_now = std::chrono::system_clock::time_point{example_time};

auth::sigv4_signing_params params_for(std::string service) {
  auth::sigv4_signing_params p;
  p.credentials = example_credentials;
  p.region = "us-east-1";
  p.service = std::move(service);
  p.time = example_time;
  return p;
}

// A shadow update as an iot-data client sends it.
auth::sigv4_request shadow_update() {
  auth::sigv4_request r;
  r.method = "POST";
  r.path = "/things/thermo-00001/shadow";
  r.query = {{"name", "config"}};
  r.headers = {{"Host", "example-ats.iot.us-east-1.amazonaws.com"}, {"Content-Type", "application/json"}};
  r.payload = R"({"state":{"reported":{"temperature":21.5}}})";
  return r;
}

std::string target_of(const auth::sigv4_request& r) {
  std::string target = r.path;
  std::string query;
  for (const auto& p : r.query) {
    if (!query.empty()) query += '&';
    query += auth::url_encode(p.name) + '=' + auth::url_encode(p.value);
  }
  if (!query.empty()) target += '?' + query;
  return target;
}

// The request as a server would receive it after header-form signing.
struct received {
  std::string method;
  std::string target;
  std::vector<auth::http_header> headers;
  std::string payload;

  auth::sigv4_received_request view() const { return {method, target, headers, payload}; }

  void set_header(std::string_view name, std::string value) {
    for (auto& h : headers) {
      if (h.name == name) {
        h.value = std::move(value);
        return;
      }
    }
    FAIL("no header " << name);
  }
  void remove_header(std::string_view name) {
    std::erase_if(headers, [&](const auto& h) { return h.name == name; });
  }
};

received sign_headers(const auth::sigv4_request& r, const auth::sigv4_signing_params& p) {
  received out{r.method, target_of(r), r.headers, r.payload};
  const auto signed_request = auth::sign_sigv4_headers(r, p);
  out.headers.insert(out.headers.end(), signed_request.headers_to_add.begin(), signed_request.headers_to_add.end());
  return out;
}

received presign(const auth::sigv4_request& r, const auth::sigv4_signing_params& p) {
  received out{r.method, r.path, r.headers, r.payload};
  out.target += '?' + auth::presign_sigv4(r, p).query_string;
  return out;
}

auth::sigv4_verify_options verify_options() {
  auth::sigv4_verify_options o;
  o.lookup_secret = [](std::string_view akid) -> std::optional<std::string> {
    if (akid == example_credentials.access_key_id) return example_credentials.secret_access_key;
    return std::nullopt;
  };
  return o;
}

auth_errc verify_error(const received& r, const auth::sigv4_verify_options& o = verify_options(),
                       std::chrono::system_clock::time_point now = example_now) {
  const auto v = auth::verify_sigv4(r.view(), o, now);
  REQUIRE_FALSE(v);
  REQUIRE(v.error().category() == auth::auth_category());
  return static_cast<auth_errc>(v.error().value());
}

}  // namespace

TEST_CASE("post-vanilla signs to the published signature", "[auth][sigv4]") {
  auth::sigv4_request r;
  r.method = "POST";
  r.path = "/";
  r.headers = {{"Host", "example.amazonaws.com"}};
  const auto s = auth::sign_sigv4_headers(r, params_for("service"));
  CHECK(s.canonical_request ==
        "POST\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n"
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(s.string_to_sign ==
        "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n"
        "553f88c9e4d10fc9e109e2aeb65f030801b70c2f6468faca261d401ae622fc87");
  CHECK(s.signature == "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b");
  CHECK(s.authorization ==
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
        "SignedHeaders=host;x-amz-date, Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b");
  REQUIRE(s.headers_to_add.size() == 2);
  CHECK(s.headers_to_add[0] == auth::http_header{"X-Amz-Date", "20150830T123600Z"});
  CHECK(s.headers_to_add[1] == auth::http_header{"Authorization", s.authorization});
}

TEST_CASE("the AWS IoT WebSocket URL matches the B10 vector", "[auth][sigv4]") {
  const std::string expected_query =
      "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fiotdevicegateway%2F"
      "aws4_request&X-Amz-Date=20150830T123600Z&X-Amz-SignedHeaders=host";
  const std::string expected_signature = "026c20a61bae0c9e109ab3720b96164d965f64dfc0dd03bfc9f1152ab1d323f9";
  const std::string host = "example-ats.iot.us-east-1.amazonaws.com";

  CHECK(auth::aws_iot_websocket_target(host, example_credentials, "us-east-1", example_time) ==
        "/mqtt?" + expected_query + "&X-Amz-Signature=" + expected_signature);

  auth::sigv4_request r;
  r.path = "/mqtt";
  r.headers = {{"host", host}};
  auto p = params_for("iotdevicegateway");
  p.expires = std::nullopt;
  const auto s = auth::presign_sigv4(r, p);
  CHECK(s.canonical_request == "GET\n/mqtt\n" + expected_query + "\nhost:" + host +
                                   "\n\nhost\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(s.signature == expected_signature);

  // Temporary credentials: the token is appended after signing, so the signature is unchanged.
  auth::aws_credentials temporary = example_credentials;
  temporary.session_token = "FQoG/token+with=specials";
  const std::string with_token = auth::aws_iot_websocket_target(host, temporary, "us-east-1", example_time);
  CHECK(with_token == "/mqtt?" + expected_query + "&X-Amz-Signature=" + expected_signature +
                          "&X-Amz-Security-Token=FQoG%2Ftoken%2Bwith%3Dspecials");
}

TEST_CASE("a signed session token changes the signature, an appended one does not", "[auth][sigv4]") {
  auth::sigv4_request r;
  r.headers = {{"Host", "example.amazonaws.com"}};
  auto p = params_for("service");
  const auto plain = auth::presign_sigv4(r, p);
  p.credentials.session_token = "session";
  const auto signed_token = auth::presign_sigv4(r, p);
  p.session_token = auth::session_token_placement::appended_after_signing;
  const auto appended = auth::presign_sigv4(r, p);
  CHECK(signed_token.signature != plain.signature);
  CHECK(appended.signature == plain.signature);
  CHECK(signed_token.canonical_request.find("X-Amz-Security-Token=session") != std::string::npos);
  CHECK(appended.canonical_request.find("X-Amz-Security-Token") == std::string::npos);
  CHECK(appended.query_string.ends_with("&X-Amz-Security-Token=session"));

  const auto header_signed = auth::sign_sigv4_headers(r, params_for("service"));
  auto hp = params_for("service");
  hp.credentials.session_token = "session";
  hp.session_token = auth::session_token_placement::appended_after_signing;
  const auto header_appended = auth::sign_sigv4_headers(r, hp);
  CHECK(header_appended.signature == header_signed.signature);
  CHECK(header_appended.headers_to_add.front() == auth::http_header{"X-Amz-Security-Token", "session"});
}

TEST_CASE("canonical URIs are normalised and double-encoded unless asked not to", "[auth][sigv4]") {
  CHECK(auth::sigv4_canonical_uri("", true, true) == "/");
  CHECK(auth::sigv4_canonical_uri("/a/./b/../c//d/", true, true) == "/a/c/d/");
  CHECK(auth::sigv4_canonical_uri("/a/b/..", true, true) == "/a/");
  CHECK(auth::sigv4_canonical_uri("/../..", true, true) == "/");
  CHECK(auth::sigv4_canonical_uri("relative/x", true, true) == "/relative/x");
  CHECK(auth::sigv4_canonical_uri("/a/./b", false, true) == "/a/./b");
  // The wire path of topic "a/b" is /topics/a%2Fb; non-S3 services encode it once more.
  CHECK(auth::sigv4_canonical_uri("/topics/a%2Fb", true, true) == "/topics/a%252Fb");
  CHECK(auth::sigv4_canonical_uri("/topics/a%2Fb", true, false) == "/topics/a%2Fb");
  CHECK(auth::sigv4_canonical_uri("/a b/\xE1\x88\xB4", false, true) == "/a%20b/%E1%88%B4");
}

TEST_CASE("canonical query strings are encoded and sorted by name then value", "[auth][sigv4]") {
  const std::vector<auth::query_param> params{
      {"b", "2"}, {"a", "z"}, {"a", "y"}, {"A", "1"}, {"sp ace", "a+b c"}, {"empty", ""}, {"~", "/"}};
  CHECK(auth::sigv4_canonical_query(params) == "A=1&a=y&a=z&b=2&empty=&sp%20ace=a%2Bb%20c&~=%2F");
  CHECK(auth::sigv4_canonical_query({}).empty());
}

TEST_CASE("parse_query_string decodes and keeps order", "[auth][sigv4]") {
  const auto q = auth::parse_query_string("b=%20x&&a&c=1=2&%E1%88%B4=v");
  REQUIRE(q);
  REQUIRE(q->size() == 4);
  CHECK((*q)[0] == auth::query_param{"b", " x"});
  CHECK((*q)[1] == auth::query_param{"a", ""});
  CHECK((*q)[2] == auth::query_param{"c", "1=2"});
  CHECK((*q)[3] == auth::query_param{"\xE1\x88\xB4", "v"});
  CHECK(auth::parse_query_string("a=%zz").error() == auth_errc::invalid_percent_encoding);
  CHECK(auth::parse_query_string("").value().empty());
}

TEST_CASE("SigV4 timestamps format and parse strictly", "[auth][sigv4]") {
  CHECK(auth::sigv4_format_time(example_time) == "20150830T123600Z");
  CHECK(auth::sigv4_format_time(std::chrono::sys_seconds{}) == "19700101T000000Z");
  CHECK(auth::sigv4_parse_time("20150830T123600Z").value() == example_time);
  CHECK(auth::sigv4_parse_time("20240229T235959Z").value() ==
        std::chrono::sys_days{std::chrono::year{2024} / 2 / 29} + 23h + 59min + 59s);
  for (const std::string_view bad : {"20150830T123600", "20150830 123600Z", "2015-08-30T12:36:00Z",
                                     "20150230T000000Z", "20150830T240000Z", "20150830T126000Z",
                                     "20150830T123660Z", "2015083OT123600Z", ""}) {
    CAPTURE(bad);
    CHECK(auth::sigv4_parse_time(bad).error() == auth_errc::malformed_authorization);
  }
}

TEST_CASE("signing refuses requests that break its preconditions", "[auth][sigv4]") {
  auth::sigv4_request r;
  const auto p = params_for("iotdata");
  CHECK_THROWS_AS(auth::sign_sigv4_headers(r, p), std::invalid_argument);  // no Host
  r.headers = {{"host", "h"}, {"X-Amz-Date", "20150830T123600Z"}};
  CHECK_THROWS_AS(auth::sign_sigv4_headers(r, p), std::invalid_argument);
  r.headers = {{"host", "h"}};
  r.query = {{"X-Amz-Signature", "x"}};
  CHECK_THROWS_AS(auth::presign_sigv4(r, p), std::invalid_argument);
  r.query.clear();
  auto long_lived = p;
  long_lived.expires = std::chrono::seconds{8 * 24 * 3600};
  CHECK_THROWS_AS(auth::presign_sigv4(r, long_lived), std::invalid_argument);
  auto no_secret = p;
  no_secret.credentials.secret_access_key.clear();
  CHECK_THROWS_AS(auth::sign_sigv4_headers(r, no_secret), std::invalid_argument);
}

TEST_CASE("headers that proxies rewrite are not signed", "[auth][sigv4]") {
  auth::sigv4_request r;
  r.headers = {{"Host", "h"}, {"User-Agent", "sdk/1"}, {"Connection", "Upgrade"}, {"Upgrade", "websocket"},
               {"Sec-WebSocket-Key", "abc"}, {"X-Custom", "  a   b  "}};
  const auto s = auth::sign_sigv4_headers(r, params_for("iotdata"));
  CHECK(s.authorization.find("SignedHeaders=host;x-amz-date;x-custom,") != std::string::npos);
  CHECK(s.canonical_request.find("x-custom:a b\n") != std::string::npos);
}

// --- verification ---------------------------------------------------------------------------

TEST_CASE("a header-signed shadow request verifies", "[auth][sigv4][verify]") {
  const auto r = sign_headers(shadow_update(), params_for("iotdata"));
  const auto v = auth::verify_sigv4(r.view(), verify_options(), example_now);
  REQUIRE(v);
  CHECK(v->form == auth::sigv4_form::header);
  CHECK(v->access_key_id == "AKIDEXAMPLE");
  CHECK(v->region == "us-east-1");
  CHECK(v->service == "iotdata");
  CHECK(v->time == example_time);
  CHECK(v->signed_headers == std::vector<std::string>{"content-type", "host", "x-amz-date"});
  CHECK_FALSE(v->session_token);
}

TEST_CASE("both iot-data service names are accepted by default, others are not", "[auth][sigv4][verify]") {
  CHECK(auth::verify_sigv4(sign_headers(shadow_update(), params_for("iotdevicegateway")).view(), verify_options(),
                           example_now));
  CHECK(verify_error(sign_headers(shadow_update(), params_for("execute-api"))) == auth_errc::service_not_allowed);
  auto only_gateway = verify_options();
  only_gateway.allowed_services = {"iotdevicegateway"};
  CHECK(verify_error(sign_headers(shadow_update(), params_for("iotdata")), only_gateway) ==
        auth_errc::service_not_allowed);
}

TEST_CASE("tampering with a header-signed request is detected", "[auth][sigv4][verify]") {
  const auto original = sign_headers(shadow_update(), params_for("iotdata"));

  auto body = original;
  body.payload = R"({"state":{"reported":{"temperature":99}}})";
  CHECK(verify_error(body) == auth_errc::bad_signature);

  auto method = original;
  method.method = "DELETE";
  CHECK(verify_error(method) == auth_errc::bad_signature);

  auto path = original;
  path.target = "/things/thermo-00002/shadow?name=config";
  CHECK(verify_error(path) == auth_errc::bad_signature);

  auto query = original;
  query.target = "/things/thermo-00001/shadow?name=other";
  CHECK(verify_error(query) == auth_errc::bad_signature);

  auto header = original;
  header.set_header("Content-Type", "text/plain");
  CHECK(verify_error(header) == auth_errc::bad_signature);

  // An unsigned header may change freely.
  auto extra = original;
  extra.headers.push_back({"User-Agent", "something else"});
  CHECK(auth::verify_sigv4(extra.view(), verify_options(), example_now));
}

TEST_CASE("a declared payload hash must match the body", "[auth][sigv4][verify]") {
  auto p = params_for("iotdata");
  p.sign_payload_header = true;
  const auto original = sign_headers(shadow_update(), p);
  CHECK(auth::verify_sigv4(original.view(), verify_options(), example_now));
  auto body = original;
  body.payload += " ";
  CHECK(verify_error(body) == auth_errc::payload_hash_mismatch);
}

TEST_CASE("verification reports each structural failure distinctly", "[auth][sigv4][verify]") {
  const auto original = sign_headers(shadow_update(), params_for("iotdata"));
  std::string authorization;
  for (const auto& h : original.headers) {
    if (h.name == "Authorization") authorization = h.value;
  }
  REQUIRE_FALSE(authorization.empty());

  auto none = original;
  none.remove_header("Authorization");
  CHECK(verify_error(none) == auth_errc::missing_authentication);

  auto algorithm = original;
  algorithm.set_header("Authorization", "AWS4-ECDSA-P256-SHA256" + authorization.substr(16));
  CHECK(verify_error(algorithm) == auth_errc::unsupported_algorithm);

  auto sas = original;
  sas.set_header("Authorization", "SharedAccessSignature sr=x&sig=y&se=1");
  CHECK(verify_error(sas) == auth_errc::unsupported_algorithm);

  for (const std::string& bad : {
           std::string("AWS4-HMAC-SHA256"),
           std::string("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iotdata/aws4_request"),
           authorization.substr(0, authorization.size() - 1),                       // short signature
           authorization + ", Extra=1",                                           // unknown component
           authorization + ", Signature=" + std::string(64, '0'),                 // duplicate
           std::string("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iotdata/aws4, "
                       "SignedHeaders=host;x-amz-date, Signature=") + std::string(64, '0'),
           std::string("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iotdata/aws4_request, "
                       "SignedHeaders=Host;x-amz-date, Signature=") + std::string(64, '0'),
       }) {
    CAPTURE(bad);
    auto r = original;
    r.set_header("Authorization", bad);
    CHECK(verify_error(r) == auth_errc::malformed_authorization);
  }

  auto two = original;
  two.headers.push_back({"authorization", authorization});
  CHECK(verify_error(two) == auth_errc::malformed_authorization);

  auto both_forms = original;
  both_forms.target += "&X-Amz-Algorithm=AWS4-HMAC-SHA256";
  CHECK(verify_error(both_forms) == auth_errc::malformed_authorization);

  auto bad_date = original;
  bad_date.set_header("X-Amz-Date", "yesterday");
  CHECK(verify_error(bad_date) == auth_errc::malformed_authorization);

  auto no_date = original;
  no_date.remove_header("X-Amz-Date");
  CHECK(verify_error(no_date) == auth_errc::malformed_authorization);

  auto next_day = original;
  next_day.set_header("X-Amz-Date", "20150831T000100Z");
  CHECK(verify_error(next_day, verify_options(), example_now + 11h + 25min) == auth_errc::credential_scope_mismatch);

  auto missing_signed = original;
  missing_signed.remove_header("Content-Type");
  CHECK(verify_error(missing_signed) == auth_errc::missing_signed_header);

  auto host_unsigned = original;
  std::string without_host = authorization;
  without_host.replace(without_host.find("content-type;host;x-amz-date"), 28, "content-type;x-amz-date");
  host_unsigned.set_header("Authorization", without_host);
  CHECK(verify_error(host_unsigned) == auth_errc::missing_signed_header);

  auto unknown = verify_options();
  unknown.lookup_secret = [](std::string_view) { return std::optional<std::string>{}; };
  CHECK(verify_error(original, unknown) == auth_errc::unknown_access_key);

  auto wrong_secret = verify_options();
  wrong_secret.lookup_secret = [](std::string_view) { return std::optional<std::string>{"other secret"}; };
  CHECK(verify_error(original, wrong_secret) == auth_errc::bad_signature);

  auto eu = verify_options();
  eu.region = "eu-west-1";
  CHECK(verify_error(original, eu) == auth_errc::region_mismatch);
  eu.region = "us-east-1";
  CHECK(auth::verify_sigv4(original.view(), eu, example_now));
}

TEST_CASE("header-form requests must be within the clock skew", "[auth][sigv4][verify]") {
  const auto r = sign_headers(shadow_update(), params_for("iotdata"));
  CHECK(auth::verify_sigv4(r.view(), verify_options(), example_now + 15min));
  CHECK(auth::verify_sigv4(r.view(), verify_options(), example_now - 15min));
  CHECK(verify_error(r, verify_options(), example_now + 15min + 1s) == auth_errc::request_time_skewed);
  CHECK(verify_error(r, verify_options(), example_now - 15min - 1s) == auth_errc::request_time_skewed);
  auto tight = verify_options();
  tight.max_clock_skew = 5s;
  CHECK(verify_error(r, tight, example_now + 6s) == auth_errc::request_time_skewed);
}

TEST_CASE("a presigned request verifies until it expires", "[auth][sigv4][verify]") {
  auth::sigv4_request request;
  request.path = "/mqtt";
  request.headers = {{"host", "localhost:8443"}};
  auto p = params_for("iotdevicegateway");
  p.expires = 300s;
  const auto r = presign(request, p);

  const auto v = auth::verify_sigv4(r.view(), verify_options(), example_now + 300s);
  REQUIRE(v);
  CHECK(v->form == auth::sigv4_form::query);
  CHECK(v->service == "iotdevicegateway");
  CHECK(v->expires_at == example_time + 300s);
  CHECK(verify_error(r, verify_options(), example_now + 301s) == auth_errc::expired);
  CHECK(verify_error(r, verify_options(), example_now - 16min) == auth_errc::request_time_skewed);

  auto tampered = r;
  const auto at = tampered.target.find("X-Amz-Signature=") + 16;
  tampered.target[at] = tampered.target[at] == '0' ? '1' : '0';
  CHECK(verify_error(tampered) == auth_errc::bad_signature);

  auto other_path = r;
  other_path.target.replace(0, 5, "/mqtx");
  CHECK(verify_error(other_path) == auth_errc::bad_signature);

  auto other_host = r;
  other_host.headers = {{"host", "localhost:8444"}};
  CHECK(verify_error(other_host) == auth_errc::bad_signature);
}

TEST_CASE("a presigned request without X-Amz-Expires lives for the clock skew", "[auth][sigv4][verify]") {
  const std::string target =
      auth::aws_iot_websocket_target("localhost", example_credentials, "us-east-1", example_time);
  const std::vector<auth::http_header> headers{{"Host", "localhost"}};
  const auth::sigv4_received_request r{"GET", target, headers, ""};
  const auto v = auth::verify_sigv4(r, verify_options(), example_now + 15min);
  REQUIRE(v);
  CHECK_FALSE(v->expires_at);
  const auto late = auth::verify_sigv4(r, verify_options(), example_now + 15min + 1s);
  REQUIRE_FALSE(late);
  CHECK(late.error() == auth_errc::expired);
}

TEST_CASE("presigned parameters are checked", "[auth][sigv4][verify]") {
  auth::sigv4_request request;
  request.path = "/mqtt";
  request.headers = {{"host", "localhost"}};
  const auto r = presign(request, params_for("iotdevicegateway"));
  auto with = [&](std::string_view from, std::string_view to) {
    auto copy = r;
    const auto at = copy.target.find(from);
    REQUIRE(at != std::string::npos);
    copy.target.replace(at, from.size(), to);
    return copy;
  };
  CHECK(verify_error(with("X-Amz-Algorithm=AWS4-HMAC-SHA256", "X-Amz-Algorithm=AWS4-HMAC-SHA1")) ==
        auth_errc::unsupported_algorithm);
  CHECK(verify_error(with("X-Amz-Expires=3600", "X-Amz-Expires=0")) == auth_errc::malformed_authorization);
  CHECK(verify_error(with("X-Amz-Expires=3600", "X-Amz-Expires=604801")) == auth_errc::malformed_authorization);
  CHECK(verify_error(with("X-Amz-Expires=3600", "X-Amz-Expires=1h")) == auth_errc::malformed_authorization);
  CHECK(verify_error(with("X-Amz-SignedHeaders=host", "X-Amz-SignedHeaders=x-amz-date")) ==
        auth_errc::missing_signed_header);
  CHECK(verify_error(with("X-Amz-Date=", "X-Amz-Date=2&X-Amz-Date=")) == auth_errc::malformed_authorization);
  CHECK(verify_error(with("X-Amz-Signature=", "X-Amz-Signature=AB")) == auth_errc::malformed_authorization);
  CHECK(verify_error(with("%2Faws4_request", "%2Faws5_request")) == auth_errc::malformed_authorization);
  CHECK(verify_error(with("X-Amz-Date=", "x=%zz&X-Amz-Date=")) == auth_errc::malformed_authorization);
}

TEST_CASE("session tokens: signed ones are protected, appended ones are reported", "[auth][sigv4][verify]") {
  auth::sigv4_request request;
  request.path = "/mqtt";
  request.headers = {{"host", "localhost"}};
  auto p = params_for("iotdevicegateway");
  p.credentials.session_token = "token/1";

  const auto signed_token = presign(request, p);
  const auto v1 = auth::verify_sigv4(signed_token.view(), verify_options(), example_now);
  REQUIRE(v1);
  CHECK(v1->session_token == "token/1");
  CHECK(v1->session_token_signed);
  auto swapped = signed_token;
  swapped.target.replace(swapped.target.find("token%2F1"), 9, "token%2F2");
  CHECK(verify_error(swapped) == auth_errc::bad_signature);

  p.session_token = auth::session_token_placement::appended_after_signing;
  const auto appended = presign(request, p);
  const auto v2 = auth::verify_sigv4(appended.view(), verify_options(), example_now);
  REQUIRE(v2);
  CHECK(v2->session_token == "token/1");
  CHECK_FALSE(v2->session_token_signed);

  auto hp = params_for("iotdata");
  hp.credentials.session_token = "token/1";
  const auto header_signed = sign_headers(shadow_update(), hp);
  const auto v3 = auth::verify_sigv4(header_signed.view(), verify_options(), example_now);
  REQUIRE(v3);
  CHECK(v3->session_token == "token/1");
  CHECK(v3->session_token_signed);
  auto header_swapped = header_signed;
  header_swapped.set_header("X-Amz-Security-Token", "token/2");
  CHECK(verify_error(header_swapped) == auth_errc::bad_signature);
}

TEST_CASE("the verifier canonicalises the wire path as the signer did", "[auth][sigv4][verify]") {
  // HTTPS publish: POST /topics/{url-encoded topic}; the topic's '/' travels as %2F.
  auth::sigv4_request request;
  request.method = "POST";
  request.path = "/topics/" + auth::url_encode("$aws/things/t1/shadow/update");
  request.query = {{"qos", "1"}};
  request.headers = {{"host", "localhost"}};
  request.payload = "{}";
  const auto r = sign_headers(request, params_for("iotdata"));
  CHECK(r.target == "/topics/%24aws%2Fthings%2Ft1%2Fshadow%2Fupdate?qos=1");
  CHECK(auth::verify_sigv4(r.view(), verify_options(), example_now));

  // Decoding the path before verifying would change the canonical URI.
  auto decoded = r;
  decoded.target = "/topics/$aws/things/t1/shadow/update?qos=1";
  CHECK(verify_error(decoded) == auth_errc::bad_signature);
}
