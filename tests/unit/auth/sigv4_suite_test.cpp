// The official AWS SigV4 test suite (tests/data/aws-sigv4-test-suite, Apache-2.0, from
// awslabs/aws-c-auth): every case, both forms, byte for byte; then verify() on the suite's own
// signed requests, and again after tampering.
#include <twinfleet/auth/sigv4.hpp>

#include "test_data.hpp"

#include <boost/json.hpp>
#include "catch_printers.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

namespace auth = twinfleet::auth;
namespace fs = std::filesystem;
namespace json = boost::json;
using twinfleet::test::read_file;



namespace {

fs::path suite_dir() { return twinfleet::test::data_dir() / "aws-sigv4-test-suite"; }

std::vector<fs::path> case_dirs() {
  std::vector<fs::path> dirs;
  for (const auto& entry : fs::directory_iterator(suite_dir())) {
    if (entry.is_directory()) dirs.push_back(entry.path());
  }
  std::sort(dirs.begin(), dirs.end());
  return dirs;
}

// A request file: "METHOD target HTTP/1.1", header lines (a line starting with whitespace
// continues the previous header's value), a blank line, the body.
struct http_message {
  std::string method;
  std::string target;
  std::vector<auth::http_header> headers;
  std::string body;

  [[nodiscard]] std::string_view path() const { return std::string_view(target).substr(0, target.find('?')); }
  [[nodiscard]] std::string_view raw_query() const {
    const auto q = target.find('?');
    return q == std::string::npos ? std::string_view{} : std::string_view(target).substr(q + 1);
  }
  [[nodiscard]] auth::sigv4_received_request view() const { return {method, target, headers, body}; }

  [[nodiscard]] std::string header(std::string_view name) const {
    for (const auto& h : headers) {
      if (h.name == name) return h.value;
    }
    return {};
  }
  void set_header(std::string_view name, std::string value) {
    for (auto& h : headers) {
      if (h.name == name) h.value = std::move(value);
    }
  }
};

http_message parse_http(const std::string& text) {
  http_message m;
  std::size_t pos = text.find('\n');
  REQUIRE(pos != std::string::npos);
  const std::string request_line = text.substr(0, pos);
  const auto first_space = request_line.find(' ');
  const std::string_view version = " HTTP/1.1";
  REQUIRE(first_space != std::string::npos);
  REQUIRE(request_line.ends_with(version));
  m.method = request_line.substr(0, first_space);
  // The target may hold spaces (get-space-*), so it ends at the version, not at a space.
  m.target = request_line.substr(first_space + 1, request_line.size() - first_space - 1 - version.size());
  ++pos;
  while (pos < text.size()) {
    auto end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    const std::string line = text.substr(pos, end - pos);
    pos = end + 1;
    if (line.empty()) {
      if (pos < text.size()) m.body = text.substr(pos);
      break;
    }
    if (line.front() == ' ' || line.front() == '\t') {
      REQUIRE_FALSE(m.headers.empty());
      m.headers.back().value += line;  // obs-fold: the signer collapses the whitespace
      continue;
    }
    const auto colon = line.find(':');
    REQUIRE(colon != std::string::npos);
    m.headers.push_back({line.substr(0, colon), line.substr(colon + 1)});
  }
  return m;
}

struct suite_case {
  std::string name;
  fs::path dir;
  http_message request;
  auth::sigv4_request to_sign;
  auth::sigv4_signing_params params;
  std::vector<std::string> allowed_services;

  [[nodiscard]] std::string file(const std::string& name_in_case) const { return read_file(dir / name_in_case); }

  [[nodiscard]] auth::sigv4_verify_options verify_options() const {
    auth::sigv4_verify_options o;
    o.allowed_services = {params.service};
    o.normalize_path = params.normalize_path;
    const auto credentials = params.credentials;
    o.lookup_secret = [credentials](std::string_view akid) -> std::optional<std::string> {
      if (akid == credentials.access_key_id) return credentials.secret_access_key;
      return std::nullopt;
    };
    return o;
  }
  [[nodiscard]] std::chrono::system_clock::time_point now() const { return params.time; }
};

suite_case load_case(const fs::path& dir) {
  suite_case c;
  c.name = dir.filename().string();
  c.dir = dir;
  c.request = parse_http(read_file(dir / "request.txt"));

  c.to_sign.method = c.request.method;
  c.to_sign.path = std::string(c.request.path());
  c.to_sign.query = auth::parse_query_string(c.request.raw_query()).value();
  c.to_sign.headers = c.request.headers;
  c.to_sign.payload = c.request.body;

  const json::object context = json::parse(read_file(dir / "context.json")).as_object();
  const json::object& credentials = context.at("credentials").as_object();
  c.params.credentials.access_key_id = json::value_to<std::string>(credentials.at("access_key_id"));
  c.params.credentials.secret_access_key = json::value_to<std::string>(credentials.at("secret_access_key"));
  if (const auto* token = credentials.if_contains("token")) {
    c.params.credentials.session_token = json::value_to<std::string>(*token);
  }
  c.params.region = json::value_to<std::string>(context.at("region"));
  c.params.service = json::value_to<std::string>(context.at("service"));
  c.params.normalize_path = context.at("normalize").as_bool();
  c.params.sign_payload_header = context.at("sign_body").as_bool();
  c.params.expires = std::chrono::seconds{context.at("expiration_in_seconds").to_number<std::int64_t>()};
  if (const auto* omit = context.if_contains("omit_session_token"); omit != nullptr && omit->as_bool()) {
    c.params.session_token = auth::session_token_placement::appended_after_signing;
  }
  // "2015-08-30T12:36:00Z" → "20150830T123600Z"
  std::string timestamp = json::value_to<std::string>(context.at("timestamp"));
  std::erase_if(timestamp, [](char ch) { return ch == '-' || ch == ':'; });
  c.params.time = auth::sigv4_parse_time(timestamp).value();
  return c;
}

std::vector<auth::query_param> sorted(std::vector<auth::query_param> params) {
  std::sort(params.begin(), params.end(),
            [](const auto& a, const auto& b) { return std::tie(a.name, a.value) < std::tie(b.name, b.value); });
  return params;
}

auth::auth_errc error_of(const auth::result<auth::sigv4_verified>& r) {
  REQUIRE_FALSE(r);
  REQUIRE(r.error().category() == auth::auth_category());
  return static_cast<auth::auth_errc>(r.error().value());
}

}  // namespace

TEST_CASE("the SigV4 suite is complete, with its licence", "[auth][sigv4][suite]") {
  REQUIRE(fs::is_regular_file(suite_dir() / "LICENSE"));
  CHECK(read_file(suite_dir() / "LICENSE").find("Apache License") != std::string::npos);
  const auto dirs = case_dirs();
  CHECK(dirs.size() == 38);
  for (const auto& dir : dirs) {
    CAPTURE(dir.filename().string());
    for (const char* f : {"context.json", "request.txt", "header-canonical-request.txt", "header-string-to-sign.txt",
                          "header-signature.txt", "header-signed-request.txt", "query-canonical-request.txt",
                          "query-string-to-sign.txt", "query-signature.txt", "query-signed-request.txt"}) {
      CAPTURE(f);
      CHECK(fs::is_regular_file(dir / f));
    }
  }
}

TEST_CASE("every suite case signs in header form byte for byte", "[auth][sigv4][suite]") {
  const auto dirs = case_dirs();
  REQUIRE(dirs.size() == 38);
  for (const auto& dir : dirs) {
    const suite_case c = load_case(dir);
    CAPTURE(c.name);
    const auto s = auth::sign_sigv4_headers(c.to_sign, c.params);
    CHECK(s.canonical_request == c.file("header-canonical-request.txt"));
    CHECK(s.string_to_sign == c.file("header-string-to-sign.txt"));
    CHECK(s.signature == c.file("header-signature.txt"));

    const http_message expected = parse_http(c.file("header-signed-request.txt"));
    CHECK(s.authorization == expected.header("Authorization"));
    // The signed request is the original plus exactly the headers the signer added.
    std::vector<auth::http_header> ours = c.request.headers;
    ours.insert(ours.end(), s.headers_to_add.begin(), s.headers_to_add.end());
    const auto by_name = [](const auth::http_header& a, const auth::http_header& b) {
      return std::tie(a.name, a.value) < std::tie(b.name, b.value);
    };
    std::vector<auth::http_header> theirs = expected.headers;
    std::sort(ours.begin(), ours.end(), by_name);
    std::sort(theirs.begin(), theirs.end(), by_name);
    CHECK(ours == theirs);
  }
}

TEST_CASE("every suite case presigns byte for byte", "[auth][sigv4][suite]") {
  const auto dirs = case_dirs();
  REQUIRE(dirs.size() == 38);
  for (const auto& dir : dirs) {
    const suite_case c = load_case(dir);
    CAPTURE(c.name);
    const auto q = auth::presign_sigv4(c.to_sign, c.params);
    CHECK(q.canonical_request == c.file("query-canonical-request.txt"));
    CHECK(q.string_to_sign == c.file("query-string-to-sign.txt"));
    CHECK(q.signature == c.file("query-signature.txt"));

    const http_message expected = parse_http(c.file("query-signed-request.txt"));
    std::vector<auth::query_param> ours = c.to_sign.query;
    ours.insert(ours.end(), q.query_to_add.begin(), q.query_to_add.end());
    CHECK(sorted(ours) == sorted(auth::parse_query_string(expected.raw_query()).value()));
    CHECK(expected.path() == c.request.path());
    // Our own encoded query string decodes to the same parameters.
    CHECK(sorted(auth::parse_query_string(q.query_string).value()) == sorted(ours));
  }
}

TEST_CASE("verify accepts every suite case's signed requests", "[auth][sigv4][suite][verify]") {
  const auto dirs = case_dirs();
  REQUIRE(dirs.size() == 38);
  for (const auto& dir : dirs) {
    const suite_case c = load_case(dir);
    CAPTURE(c.name);
    const bool has_token = !c.params.credentials.session_token.empty();
    const bool token_signed = c.params.session_token == auth::session_token_placement::signed_in_request;

    const http_message header_form = parse_http(c.file("header-signed-request.txt"));
    const auto h = auth::verify_sigv4(header_form.view(), c.verify_options(), c.now());
    REQUIRE(h);
    CHECK(h->form == auth::sigv4_form::header);
    CHECK(h->access_key_id == "AKIDEXAMPLE");
    CHECK(h->time == c.params.time);
    CHECK(h->session_token.has_value() == has_token);
    CHECK(h->session_token_signed == (has_token && token_signed));

    const http_message query_form = parse_http(c.file("query-signed-request.txt"));
    const auto q = auth::verify_sigv4(query_form.view(), c.verify_options(), c.now());
    REQUIRE(q);
    CHECK(q->form == auth::sigv4_form::query);
    CHECK(q->expires_at == c.params.time + c.params.expires.value());
    CHECK(q->session_token.has_value() == has_token);
    CHECK(q->session_token_signed == (has_token && token_signed));
  }
}

TEST_CASE("verify rejects every suite case's signed requests after tampering", "[auth][sigv4][suite][verify]") {
  const auto dirs = case_dirs();
  REQUIRE(dirs.size() == 38);
  for (const auto& dir : dirs) {
    const suite_case c = load_case(dir);
    CAPTURE(c.name);
    for (const char* file : {"header-signed-request.txt", "query-signed-request.txt"}) {
      CAPTURE(file);
      const http_message original = parse_http(c.file(file));

      http_message host = original;
      host.set_header("Host", "example.amazonaws.org");
      CHECK(error_of(auth::verify_sigv4(host.view(), c.verify_options(), c.now())) == auth::auth_errc::bad_signature);

      http_message method = original;
      method.method = method.method == "GET" ? "PUT" : "GET";
      CHECK(error_of(auth::verify_sigv4(method.view(), c.verify_options(), c.now())) ==
            auth::auth_errc::bad_signature);

      http_message path = original;
      path.target.insert(1, "x/");  // a new segment survives normalisation
      CHECK(error_of(auth::verify_sigv4(path.view(), c.verify_options(), c.now())) == auth::auth_errc::bad_signature);

      auto other_service = c.verify_options();
      other_service.allowed_services = {"iotdata"};
      CHECK(error_of(auth::verify_sigv4(original.view(), other_service, c.now())) ==
            auth::auth_errc::service_not_allowed);
    }
  }
}
