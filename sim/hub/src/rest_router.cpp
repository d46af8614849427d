// The REST router: request-target parsing, the two platforms' error shapes, dispatch.
// The routes themselves are in rest_azure.cpp and rest_aws.cpp.
#include "rest_routes.hpp"

#include <twinfleet/auth/encoding.hpp>

#include <boost/json/serialize.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <exception>
#include <random>

namespace twinfleet::hub {

namespace json = boost::json;

namespace detail {

namespace {

char ascii_lower(char c) noexcept { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

}  // namespace

bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
  }
  return true;
}

std::optional<std::string_view> parsed_target::param(std::string_view name) const {
  for (const auto& p : query) {
    if (p.name == name) return std::string_view(p.value);
  }
  return std::nullopt;
}

rest_response json_response(int status, const json::value& body, std::string_view content_type) {
  rest_response r;
  r.status = status;
  r.headers.push_back({"Content-Type", std::string(content_type)});
  r.body = json::serialize(body);
  return r;
}

rest_response azure_method_not_allowed(std::string_view allow) {
  auto r = azure_error_response(405000, "The requested resource does not support this HTTP method.");
  r.headers.push_back({"Allow", std::string(allow)});
  return r;
}

rest_response aws_method_not_allowed(std::string_view allow) {
  auto r = aws_error_response(405, "Method Not Allowed");
  r.headers.push_back({"Allow", std::string(allow)});
  return r;
}

namespace {

// Splits "/a/b%2Fc?x=1" into decoded segments and parameters. An absolute-form target
// ("http://host/path", as proxies send) is reduced to its path first. Empty segments other
// than a single trailing slash make no route, so they are kept as "" and 404 later.
std::optional<parsed_target> parse_target(std::string_view target, std::string& why) {
  if (target.starts_with("http://") || target.starts_with("https://")) {
    const auto authority = target.find("//") + 2;
    const auto slash = target.find_first_of("/?", authority);
    target = slash == std::string_view::npos ? std::string_view("/") : target.substr(slash);
  }
  if (target.empty() || target.front() != '/') {
    why = "The request-target must be an absolute path.";
    return std::nullopt;
  }
  const auto question = target.find('?');
  std::string_view path = target.substr(0, question);
  const std::string_view query = question == std::string_view::npos ? std::string_view() : target.substr(question + 1);

  parsed_target out;
  path.remove_prefix(1);
  if (path.ends_with('/')) path.remove_suffix(1);
  while (!path.empty()) {
    const auto slash = path.find('/');
    const auto raw = path.substr(0, slash);
    auto decoded = auth::url_decode(raw);
    if (!decoded) {
      why = "The request path holds an invalid percent-encoding.";
      return std::nullopt;
    }
    out.segments.push_back(std::move(*decoded));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  auto params = auth::parse_query_string(query);
  if (!params) {
    why = "The query string holds an invalid percent-encoding.";
    return std::nullopt;
  }
  out.query = std::move(*params);
  return out;
}

// "Tracking ID:<32 hex>-TimeStamp:MM/DD/YYYY HH:MM:SS" as IoT Hub writes ExceptionMessage
// (it adds a gateway id, "-G:3", between the two; clients only ever log this string).
std::string tracking_message() {
  thread_local std::mt19937_64 random{std::random_device{}()};
  std::array<char, 8 + 8> bytes{};
  for (std::size_t i = 0; i < bytes.size(); i += 8) {
    auto word = random();
    for (std::size_t j = 0; j < 8; ++j, word >>= 8) bytes[i + j] = static_cast<char>(word & 0xFF);
  }
  const auto now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm utc{};
  gmtime_r(&now, &utc);
  std::array<char, 32> stamp{};
  const auto n = std::strftime(stamp.data(), stamp.size(), "%m/%d/%Y %H:%M:%S", &utc);
  return "Tracking ID:" + auth::hex_encode(std::string_view(bytes.data(), bytes.size())) +
         "-TimeStamp:" + std::string(stamp.data(), n);
}

}  // namespace

}  // namespace detail

// ---------------------------------------------------------------------------------------------
// request and response helpers

namespace {

std::optional<std::string_view> find_header(const std::vector<auth::http_header>& headers, std::string_view name) {
  for (const auto& h : headers) {
    if (detail::iequals(h.name, name)) return std::string_view(h.value);
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::string_view> rest_request::header(std::string_view name) const { return find_header(headers, name); }
std::optional<std::string_view> rest_response::header(std::string_view name) const { return find_header(headers, name); }

rest_platform platform_of(std::string_view target) noexcept {
  // Only the first segment matters; AWS's data plane lives under these three roots.
  for (std::string_view root : {"/things/", "/api/", "/topics/"}) {
    if (target.starts_with(root)) return rest_platform::aws;
  }
  for (std::string_view exact : {"/things", "/api", "/topics"}) {
    if (target == exact || (target.starts_with(exact) && target.size() > exact.size() && target[exact.size()] == '?')) {
      return rest_platform::aws;
    }
  }
  return rest_platform::azure;
}

std::string_view azure_error_name(int code) noexcept {
  switch (code) {
    case 400004: return "ArgumentInvalid";
    case 400006: return "IotHubFormatError";
    case 400011: return "DeviceDefinedMultipleTimes";
    case 401002:
    case 401003: return "IotHubUnauthorizedAccess";
    case 403002: return "IotHubQuotaExceeded";
    // A twin section over its size limit. IoT Hub sends the code (Azure/iotedge #7035) but no
    // documented name; ArgumentInvalid tells SDKs it is the caller's document, not a quota,
    // so none of them retries it.
    case 403100: return "ArgumentInvalid";
    case 404000: return "NotFound";  // the local hub's own: a path no route serves
    case 404001: return "DeviceNotFound";
    case 404010: return "ModuleNotFound";
    case 404103: return "DeviceNotOnline";
    case 405000: return "MethodNotAllowed";  // the local hub's own: a known path, another method
    case 409001: return "DeviceAlreadyExists";
    case 412001: return "PreconditionFailed";
    case 413001: return "MessageTooLarge";
    case 413002: return "TooManyDevices";
    case 429001: return "ThrottlingException";
    case 500001: return "ServerError";
    case 503001: return "ServiceUnavailable";
    case 504101: return "GatewayTimeout";
    default: break;
  }
  switch (code >= 1000 ? code / 1000 : code) {
    case 400: return "ArgumentInvalid";
    case 401: return "IotHubUnauthorizedAccess";
    case 403: return "IotHubQuotaExceeded";
    case 404: return "NotFound";
    case 405: return "MethodNotAllowed";
    case 409: return "Conflict";
    case 412: return "PreconditionFailed";
    case 413: return "MessageTooLarge";
    case 429: return "ThrottlingException";
    case 503: return "ServiceUnavailable";
    case 504: return "GatewayTimeout";
    default: return "ServerError";
  }
}

std::string_view aws_exception_name(int status) noexcept {
  switch (status) {
    case 400: return "InvalidRequestException";
    case 401: return "UnauthorizedException";
    case 403: return "ForbiddenException";
    case 404: return "ResourceNotFoundException";
    case 405: return "MethodNotAllowedException";
    case 409: return "ConflictException";
    case 413: return "RequestEntityTooLargeException";
    case 415: return "UnsupportedDocumentEncodingException";
    case 429: return "ThrottlingException";
    case 503: return "ServiceUnavailableException";
    default: return "InternalFailureException";
  }
}

rest_response azure_error_response(int code, std::string_view message) {
  const auto name = azure_error_name(code);
  json::object body;
  // The older shape (Message/ExceptionMessage) is what azure-iothub (Node) and the C SDK
  // parse; the newer one (errorCode/message) is what the .NET and Java SDKs read.
  body["Message"] = "ErrorCode:" + std::string(name) + ";" + std::string(message);
  body["ExceptionMessage"] = detail::tracking_message();
  body["errorCode"] = code;
  body["message"] = message;
  auto r = detail::json_response(code >= 1000 ? code / 1000 : code, body, detail::azure_content_type);
  r.headers.push_back({"iothub-errorcode", std::string(name)});
  return r;
}

rest_response aws_error_response(int code, std::string_view message) {
  auto r = detail::json_response(code, json::object{{"message", message}}, detail::aws_content_type);
  r.headers.push_back({"x-amzn-ErrorType", std::string(aws_exception_name(code))});
  return r;
}

rest_response payload_too_large_response(std::string_view target) {
  if (platform_of(target) == rest_platform::aws) {
    return aws_error_response(413, "The payload exceeds the maximum size allowed");
  }
  return azure_error_response(413001, "The request body is larger than the hub accepts.");
}

// ---------------------------------------------------------------------------------------------
// the router

rest_router::rest_router(hub_core& core, clock_function now) : core_(core), now_(std::move(now)) {
  if (!now_) now_ = [] { return std::chrono::system_clock::now(); };
}

namespace {

// Routes one request whose target parsed. Throws only on bugs or memory exhaustion.
void dispatch(hub_core& core, const rest_request& request, const detail::parsed_target& target, time_point now,
              rest_handler& once, rest_platform platform) {
  detail::route_context ctx{core, request, target, now, once};
  if (!target.segments.empty() && target.segments[0] == "admin") {
    detail::serve_admin(ctx);
  } else if (platform == rest_platform::aws) {
    detail::serve_aws(ctx);
  } else {
    detail::serve_azure(ctx);
  }
}

rest_response throttled_response(rest_platform platform) {
  return platform == rest_platform::aws
             ? aws_error_response(429, "Rate exceeded")
             : azure_error_response(429001, "ThrottlingException: the request was throttled; retry later.");
}

}  // namespace

void rest_router::async_handle(const rest_request& request, rest_handler done) {
  ++core_.counters().rest_requests;
  // Exactly once, even if a route both answered and then threw: the wrapper drops seconds.
  auto answered = std::make_shared<bool>(false);
  rest_handler once = [answered, done = std::move(done)](rest_response response) {
    if (*answered) return;
    *answered = true;
    if (done) done(std::move(response));
  };
  // The metrics endpoint: unauthenticated, as Prometheus scrapes it.
  if (request.method == "GET" && (request.target == "/metrics" || request.target.starts_with("/metrics?"))) {
    rest_response r;
    r.status = 200;
    r.headers.push_back({"Content-Type", "text/plain; version=0.0.4; charset=utf-8"});
    r.body = core_.metrics_text();
    once(std::move(r));
    return;
  }
  const auto platform = platform_of(request.target);
  auto internal_error = [&](const std::exception& e) {
    // A bug or memory exhaustion, not bad input (routes report that as values): answer like
    // the platform's internal error, and let the caller keep serving.
    if (!*answered) {
      once(platform == rest_platform::aws ? aws_error_response(500, "Internal service failure")
                                          : azure_error_response(500001, std::string("Internal error: ") + e.what()));
    }
  };
  try {
    std::string why;
    auto target = detail::parse_target(request.target, why);
    if (!target) {
      once(platform == rest_platform::aws ? aws_error_response(400, why) : azure_error_response(400004, why));
      return;
    }
    const auto now = now_();
    auto meter = core_.throttle().any() ? detail::meter_of(request, *target, platform) : std::nullopt;
    if (!meter) {
      dispatch(core_, request, *target, now, once, platform);
      return;
    }
    // Throttled: the request may wait in the bucket's queue, so it keeps its own copy. The
    // closures hold the core, never the router, which may be gone by then.
    struct held {
      rest_request request;
      detail::parsed_target target;
    };
    auto h = std::make_shared<held>(held{request, std::move(*target)});
    hub_core& core = core_;
    auto serve = [&core, h, once, platform](time_point at) mutable {
      try {
        dispatch(core, h->request, h->target, at, once, platform);
      } catch (const std::exception& e) {
        once(platform == rest_platform::aws ? aws_error_response(500, "Internal service failure")
                                            : azure_error_response(500001, std::string("Internal error: ") + e.what()));
      }
    };
    auto refuse = [once, platform]() mutable { once(throttled_response(platform)); };
    if (meter->c == throttle_class::aws_shadow_per_thing) {
      // Per thing first, then the account's rate (B7).
      auto account = [&core, serve, refuse](time_point at) {
        core.throttle_admit(throttle_class::aws_shadow_account, "", 1, at, serve, refuse);
      };
      core_.throttle_admit(meter->c, meter->key, meter->cost, now, std::move(account), std::move(refuse));
    } else {
      core_.throttle_admit(meter->c, meter->key, meter->cost, now, std::move(serve), std::move(refuse));
    }
  } catch (const std::exception& e) {
    internal_error(e);
  }
}

std::optional<rest_response> rest_router::handle(const rest_request& request) {
  // Shared, not a local: a pending method answers after this function has returned.
  auto out = std::make_shared<std::optional<rest_response>>();
  async_handle(request, [out](rest_response r) { *out = std::move(r); });
  return std::move(*out);
}

}  // namespace twinfleet::hub
