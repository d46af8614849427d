// The Azure IoT Hub service REST client (PROTOCOLS.md A8, A9, A11, Part E) over the pool of
// service_http.cpp. No Beast here: requests and answers are plain structs.
#include <twinfleet/backends/service_azure.hpp>

#include "service_common.hpp"
#include "service_http.hpp"

#include <twinfleet/auth/sas.hpp>

#include <boost/asio/steady_timer.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <charconv>

namespace twinfleet::backends {

namespace asio = boost::asio;
namespace json = boost::json;

namespace {

constexpr std::string_view api_version = "2021-04-12";

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// IoT Hub's error answer (rest.hpp documents both shapes the hub and the cloud send):
// {"errorCode":412001,"message":…} and/or {"Message":"ErrorCode:Name;text",…}, plus the
// iothub-errorcode header.
service_error azure_http_error(const detail::http_response& r) {
  service_error e;
  e.kind = service_failure::http;
  e.http_status = r.status;
  if (const auto name = r.header("iothub-errorcode")) e.error_type = std::string(*name);
  e.retry_after = detail::parse_retry_after(r);
  boost::system::error_code ec;
  const auto body = json::parse(r.body, ec);
  if (!ec && body.is_object()) {
    const auto& o = body.get_object();
    if (const auto* code = o.if_contains("errorCode")) {
      if (code->is_int64()) {
        e.azure_code = code->get_int64();
      } else if (code->is_uint64()) {
        e.azure_code = static_cast<std::int64_t>(code->get_uint64());
      } else if (code->is_string()) {
        const auto text = code->get_string();
        std::from_chars(text.data(), text.data() + text.size(), e.azure_code);
      }
    }
    if (const auto* m = o.if_contains("message"); m != nullptr && m->is_string()) e.message = std::string(m->get_string());
    if (const auto* m = o.if_contains("Message"); m != nullptr && m->is_string()) {
      // "ErrorCode:PreconditionFailed;the text"
      std::string_view text = m->get_string();
      if (text.starts_with("ErrorCode:")) {
        const auto semi = text.find(';');
        if (e.error_type.empty()) e.error_type = std::string(text.substr(10, semi == std::string_view::npos ? text.npos : semi - 10));
        if (semi != std::string_view::npos) text = text.substr(semi + 1);
      }
      if (e.message.empty()) e.message = std::string(text);
    }
  }
  if (e.azure_code == 0 && e.http_status >= 400) {
    // A bare status (a proxy, or an older shape): the generic code of the status.
    e.azure_code = static_cast<std::int64_t>(e.http_status) * 1000;
  }
  if (e.message.empty()) e.message = "HTTP " + std::to_string(r.status) + (r.body.empty() ? "" : ": " + r.body.substr(0, 200));
  return e;
}

std::string quoted_etag(std::string_view etag) {
  etag = trim(etag);
  if (etag.empty() || etag == "*" || etag == "\"*\"") return "\"*\"";
  if (etag.size() >= 2 && etag.front() == '"' && etag.back() == '"') return std::string(etag);
  return "\"" + std::string(etag) + "\"";
}

std::int64_t version_of(const json::object& twin, std::string_view section) {
  const auto* props = twin.if_contains("properties");
  if (props == nullptr || !props->is_object()) return 0;
  const auto* s = props->get_object().if_contains(section);
  if (s == nullptr || !s->is_object()) return 0;
  const auto* v = s->get_object().if_contains("$version");
  if (v == nullptr) return 0;
  if (v->is_int64()) return v->get_int64();
  if (v->is_uint64()) return static_cast<std::int64_t>(v->get_uint64());
  return 0;
}

}  // namespace

std::int64_t twin_document::desired_version() const { return version_of(twin, "desired"); }
std::int64_t twin_document::reported_version() const { return version_of(twin, "reported"); }

service_result<azure_service_connection> parse_azure_service_connection_string(std::string_view text) {
  azure_service_connection c;
  std::string host;
  bool have_key = false;
  while (!text.empty()) {
    const auto semi = text.find(';');
    const auto part = trim(text.substr(0, semi));
    text = semi == std::string_view::npos ? std::string_view() : text.substr(semi + 1);
    if (part.empty()) continue;
    const auto eq = part.find('=');
    if (eq == std::string_view::npos) continue;
    const auto key = part.substr(0, eq);
    const auto value = part.substr(eq + 1);  // keys end in '=': only the first '=' splits
    if (key == "HostName") host = std::string(value);
    if (key == "SharedAccessKeyName") c.policy_name = std::string(value);
    if (key == "SharedAccessKey") {
      c.policy_key = std::string(value);
      have_key = true;
    }
  }
  const auto bad = [](std::string m) {
    service_error e;
    e.kind = service_failure::bad_request;
    e.message = std::move(m);
    return e;
  };
  if (host.empty()) return bad("the service connection string has no HostName");
  if (c.policy_name.empty()) return bad("the service connection string has no SharedAccessKeyName");
  if (!have_key || c.policy_key.empty()) return bad("the service connection string has no SharedAccessKey");
  if (const auto colon = host.rfind(':'); colon != std::string::npos && host.find(']') == std::string::npos) {
    unsigned port = 0;
    const auto digits = std::string_view(host).substr(colon + 1);
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), port);
    if (ec != std::errc{} || end != digits.data() + digits.size() || port == 0 || port > 65535) {
      return bad("bad port in HostName '" + host + "'");
    }
    c.port = static_cast<std::uint16_t>(port);
    host.resize(colon);
  }
  c.host_name = std::move(host);
  return c;
}

struct azure_service_client::impl {
  asio::any_io_executor executor;
  azure_service_options options;
  azure_service_connection connection;
  std::shared_ptr<detail::http_pool> pool;
  detail::request_ids ids;
  detail::pacer registry;
  // The current SAS token and when to make the next one.
  std::string token;
  std::chrono::system_clock::time_point renew_at{};

  service_result<std::string> authorization() {
    const auto now = std::chrono::system_clock::now();
    if (token.empty() || now >= renew_at) {
      const auto expiry = std::chrono::time_point_cast<std::chrono::seconds>(now) + options.token_lifetime;
      auth::sas_token_request request;
      request.resource_uri = connection.host_name;
      request.key_base64 = connection.policy_key;
      request.expiry = expiry;
      request.policy_name = connection.policy_name;
      auto made = auth::create_sas_token(request);
      if (!made) {
        service_error e;
        e.kind = service_failure::bad_request;
        e.transport = made.error();
        e.message = "cannot sign a SAS token with the connection string's key";
        return e;
      }
      token = std::move(*made);
      const auto renew_before = std::min(options.token_renew_before, options.token_lifetime / 2);
      renew_at = expiry - renew_before;
    }
    return token;
  }

  // One request to IoT Hub: the headers azure-iothub sends, a JSON body when given.
  // Arguments are views and pointers only: callers await it with locals (GCC 12, see header).
  asio::awaitable<service_result<detail::http_response>> send(std::string_view method, std::string_view path,
                                                              const json::value* body,
                                                              std::string_view if_match,
                                                              std::chrono::milliseconds timeout) {
    auto auth_header = authorization();
    if (!auth_header) co_return auth_header.error();
    detail::http_request request;
    request.method = std::string(method);
    request.target = std::string(path);
    request.target += request.target.find('?') == std::string::npos ? "?api-version=" : "&api-version=";
    request.target += api_version;
    request.headers.push_back({"Authorization", std::move(*auth_header)});
    request.headers.push_back({"Request-Id", ids.next()});
    request.headers.push_back({"Accept", "application/json"});
    if (body != nullptr) {
      request.headers.push_back({"Content-Type", "application/json; charset=utf-8"});
      request.body = json::serialize(*body);
    }
    if (!if_match.empty()) request.headers.push_back({"If-Match", std::string(if_match)});
    co_return co_await pool->async_request(request, timeout);
  }

  static service_result<twin_document> to_twin(const detail::http_response& r) {
    if (r.status < 200 || r.status >= 300) return azure_http_error(r);
    boost::system::error_code ec;
    auto body = json::parse(r.body, ec);
    if (ec || !body.is_object()) return detail::bad_response("the twin is not a JSON object", r);
    twin_document doc;
    doc.twin = std::move(body.get_object());
    if (const auto* etag = doc.twin.if_contains("etag"); etag != nullptr && etag->is_string()) {
      doc.etag = std::string(etag->get_string());
    } else if (const auto header = r.header("ETag")) {
      std::string_view e = trim(*header);
      if (e.starts_with("W/")) e.remove_prefix(2);
      if (e.size() >= 2 && e.front() == '"' && e.back() == '"') e = e.substr(1, e.size() - 2);
      doc.etag = std::string(e);
    }
    return doc;
  }

  static service_result<json::object> to_object(const detail::http_response& r) {
    if (r.status < 200 || r.status >= 300) return azure_http_error(r);
    boost::system::error_code ec;
    auto body = json::parse(r.body, ec);
    if (ec || !body.is_object()) return detail::bad_response("the answer is not a JSON object", r);
    return std::move(body.get_object());
  }

  asio::awaitable<service_result<twin_document>> twin_write(std::string_view method, std::string_view device_id,
                                                            const json::value& body, std::string_view etag) {
    const auto match = quoted_etag(etag);
    const auto path = "/twins/" + detail::path_segment(device_id);
    auto r = co_await send(method, path, &body, match, options.http.request_timeout);
    if (!r) co_return r.error();
    co_return to_twin(*r);
  }

  asio::awaitable<service_result<json::object>> put_device(std::string_view device_id, const device_keys* keys) {
    if (device_id.empty()) co_return detail::bad_argument("empty device id");
    co_await registry.wait();
    json::object identity;
    identity["deviceId"] = device_id;
    identity["status"] = "enabled";
    json::object authentication;
    authentication["type"] = "sas";
    if (keys != nullptr && !keys->primary_key.empty()) {
      authentication["symmetricKey"] = json::object{
          {"primaryKey", keys->primary_key},
          {"secondaryKey", keys->secondary_key.empty() ? keys->primary_key : keys->secondary_key}};
    }
    identity["authentication"] = std::move(authentication);
    const json::value body = std::move(identity);
    const auto path = "/devices/" + detail::path_segment(device_id);
    auto r = co_await send("PUT", path, &body, "\"*\"", options.http.request_timeout);
    if (!r) co_return r.error();
    co_return to_object(*r);
  }
};

service_result<std::unique_ptr<azure_service_client>> azure_service_client::create(asio::any_io_executor executor,
                                                                                  const azure_service_options& options) {
  auto parsed = parse_azure_service_connection_string(options.connection_string);
  if (!parsed) return parsed.error();
  auto state = std::make_shared<impl>();
  state->executor = executor;
  state->options = options;
  state->connection = std::move(*parsed);
  if (options.port) state->connection.port = *options.port;
  state->registry = detail::pacer(executor, options.registry_rate_per_second, options.registry_burst);
  detail::http_pool_config config;
  config.host = state->connection.host_name;
  config.port = state->connection.port;
  config.options = options.http;
  auto pool = detail::http_pool::create(std::move(executor), std::move(config));
  if (!pool) return pool.error();
  state->pool = std::move(*pool);
  return std::unique_ptr<azure_service_client>(new azure_service_client(std::move(state)));
}

azure_service_client::azure_service_client(std::shared_ptr<impl> state) : impl_(std::move(state)) {}
azure_service_client::~azure_service_client() {
  if (impl_ && impl_->pool) impl_->pool->close();
}

asio::awaitable<service_result<twin_document>> azure_service_client::async_get_twin(std::string_view device_id) {
  const auto self = impl_;  // the client may be destroyed while this runs
  if (device_id.empty()) co_return detail::bad_argument("empty device id");
  const auto path = "/twins/" + detail::path_segment(device_id);
  auto r = co_await self->send("GET", path, nullptr, {}, self->options.http.request_timeout);
  if (!r) co_return r.error();
  co_return impl::to_twin(*r);
}

asio::awaitable<service_result<twin_document>> azure_service_client::async_patch_twin_desired(
    std::string_view device_id, const json::object& desired, std::string_view etag) {
  const auto self = impl_;  // the client may be destroyed while this runs
  if (device_id.empty()) co_return detail::bad_argument("empty device id");
  json::object properties;
  properties["desired"] = desired;
  json::object patch;
  patch["properties"] = std::move(properties);
  const json::value body = std::move(patch);
  co_return co_await self->twin_write("PATCH", device_id, body, etag);
}

asio::awaitable<service_result<twin_document>> azure_service_client::async_patch_twin(std::string_view device_id,
                                                                                      const json::object& patch,
                                                                                      std::string_view etag) {
  const auto self = impl_;  // the client may be destroyed while this runs
  if (device_id.empty()) co_return detail::bad_argument("empty device id");
  const json::value body = patch;
  co_return co_await self->twin_write("PATCH", device_id, body, etag);
}

asio::awaitable<service_result<twin_document>> azure_service_client::async_replace_twin(std::string_view device_id,
                                                                                        const json::object& twin,
                                                                                        std::string_view etag) {
  const auto self = impl_;  // the client may be destroyed while this runs
  if (device_id.empty()) co_return detail::bad_argument("empty device id");
  const json::value body = twin;
  co_return co_await self->twin_write("PUT", device_id, body, etag);
}

asio::awaitable<service_result<method_result>> azure_service_client::async_invoke_method(
    std::string_view device_id, std::string_view method_name, const json::value& payload,
    std::chrono::seconds response_timeout, std::chrono::seconds connect_timeout) {
  const auto self = impl_;  // the client may be destroyed while this runs
  if (device_id.empty()) co_return detail::bad_argument("empty device id");
  if (method_name.empty()) co_return detail::bad_argument("empty method name");
  json::object request;
  request["methodName"] = method_name;
  request["responseTimeoutInSeconds"] = response_timeout.count();
  request["connectTimeoutInSeconds"] = connect_timeout.count();
  request["payload"] = payload;
  const json::value body = std::move(request);
  const auto timeout = std::chrono::duration_cast<std::chrono::milliseconds>(response_timeout + connect_timeout) +
                       self->options.http.request_timeout;
  const auto path = "/twins/" + detail::path_segment(device_id) + "/methods";
  auto r = co_await self->send("POST", path, &body, {}, timeout);
  if (!r) co_return r.error();
  auto answer = impl::to_object(*r);
  if (!answer) co_return answer.error();
  method_result out;
  const auto* status = answer->if_contains("status");
  if (status == nullptr || !(status->is_int64() || status->is_uint64())) {
    co_return detail::bad_response("the method answer has no integer status", *r);
  }
  out.status = static_cast<int>(status->is_int64() ? status->get_int64() : static_cast<std::int64_t>(status->get_uint64()));
  if (auto* p = answer->if_contains("payload")) out.payload = std::move(*p);
  co_return out;
}

asio::awaitable<service_result<json::object>> azure_service_client::async_create_or_update_device(
    std::string_view device_id, const device_keys& keys) {
  const auto self = impl_;  // the client may be destroyed while this runs
  co_return co_await self->put_device(device_id, &keys);
}

asio::awaitable<service_result<json::object>> azure_service_client::async_create_or_update_device(
    std::string_view device_id) {
  const auto self = impl_;  // the client may be destroyed while this runs
  co_return co_await self->put_device(device_id, nullptr);
}

asio::awaitable<service_result<json::object>> azure_service_client::async_get_device(std::string_view device_id) {
  const auto self = impl_;  // the client may be destroyed while this runs
  if (device_id.empty()) co_return detail::bad_argument("empty device id");
  co_await self->registry.wait();
  const auto path = "/devices/" + detail::path_segment(device_id);
  auto r = co_await self->send("GET", path, nullptr, {}, self->options.http.request_timeout);
  if (!r) co_return r.error();
  co_return impl::to_object(*r);
}

asio::awaitable<service_result<void>> azure_service_client::async_delete_device(std::string_view device_id) {
  const auto self = impl_;  // the client may be destroyed while this runs
  if (device_id.empty()) co_return detail::bad_argument("empty device id");
  co_await self->registry.wait();
  const auto path = "/devices/" + detail::path_segment(device_id);
  auto r = co_await self->send("DELETE", path, nullptr, "\"*\"", self->options.http.request_timeout);
  if (!r) co_return r.error();
  if (r->status < 200 || r->status >= 300) co_return azure_http_error(*r);
  co_return service_result<void>{};
}

const azure_service_connection& azure_service_client::connection() const noexcept { return impl_->connection; }
http_pool_stats azure_service_client::pool_stats() const { return impl_->pool->stats(); }
std::uint64_t azure_service_client::registry_paced() const noexcept { return impl_->registry.paced(); }

}  // namespace twinfleet::backends
