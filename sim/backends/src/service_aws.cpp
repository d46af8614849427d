// The AWS IoT shadow data-plane client (PROTOCOLS.md B8, B10) over the pool of
// service_http.cpp: every request signed with SigV4 in header form.
#include <twinfleet/backends/service_aws.hpp>

#include "service_common.hpp"
#include "service_http.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

namespace twinfleet::backends {

namespace asio = boost::asio;
namespace json = boost::json;

namespace {

// AWS's error answer: x-amzn-ErrorType "ConflictException[:…]" and {"message":"…"}.
service_error aws_http_error(const detail::http_response& r) {
  service_error e;
  e.kind = service_failure::http;
  e.http_status = r.status;
  e.retry_after = detail::parse_retry_after(r);
  if (const auto type = r.header("x-amzn-ErrorType")) e.error_type = std::string(type->substr(0, type->find(':')));
  boost::system::error_code ec;
  const auto body = json::parse(r.body, ec);
  if (!ec && body.is_object()) {
    const auto& o = body.get_object();
    for (std::string_view key : {"message", "Message"}) {
      if (const auto* m = o.if_contains(key); m != nullptr && m->is_string()) {
        e.message = std::string(m->get_string());
        break;
      }
    }
  }
  if (e.message.empty()) e.message = "HTTP " + std::to_string(r.status) + (r.body.empty() ? "" : ": " + r.body.substr(0, 200));
  return e;
}

service_result<json::object> to_object(const detail::http_response& r) {
  if (r.status < 200 || r.status >= 300) return aws_http_error(r);
  boost::system::error_code ec;
  auto body = json::parse(r.body, ec);
  if (ec || !body.is_object()) return detail::bad_response("the answer is not a JSON object", r);
  return std::move(body.get_object());
}

}  // namespace

struct aws_service_client::impl {
  aws_service_options options;
  std::shared_ptr<detail::http_pool> pool;
  std::string host;  // the Host header exactly as the pool sends it: SigV4 signs it

  // Signs and sends. `path` is the wire path (already percent-encoded), `query` decoded.
  asio::awaitable<service_result<detail::http_response>> send(std::string_view method, std::string_view path,
                                                              const std::vector<auth::query_param>& query,
                                                              std::string_view body) {
    auth::sigv4_request sr;
    sr.method = std::string(method);
    sr.path = std::string(path);
    sr.query = query;
    sr.headers.push_back({"Host", host});
    sr.payload = std::string(body);
    auth::sigv4_signing_params params;
    params.credentials = options.credentials;
    params.region = options.region;
    params.service = options.signing_service;
    params.time = std::chrono::time_point_cast<std::chrono::seconds>(std::chrono::system_clock::now());
    const auto signed_headers = auth::sign_sigv4_headers(sr, params);

    detail::http_request request;
    request.method = std::string(method);
    request.target = std::string(path);
    for (std::size_t i = 0; i < query.size(); ++i) {
      request.target += i == 0 ? '?' : '&';
      request.target += auth::url_encode(query[i].name) + "=" + auth::url_encode(query[i].value);
    }
    request.headers = signed_headers.headers_to_add;
    request.headers.push_back({"Accept", "application/json"});
    if (!body.empty()) request.headers.push_back({"Content-Type", "application/json"});
    request.body = std::move(sr.payload);
    co_return co_await pool->async_request(request, options.http.request_timeout);
  }

  static std::string shadow_path(std::string_view thing) { return "/things/" + detail::path_segment(thing) + "/shadow"; }
  static std::vector<auth::query_param> shadow_query(std::string_view shadow) {
    std::vector<auth::query_param> q;
    if (!shadow.empty()) q.push_back({"name", std::string(shadow)});
    return q;
  }
};

service_result<std::unique_ptr<aws_service_client>> aws_service_client::create(asio::any_io_executor executor,
                                                                              const aws_service_options& options) {
  if (options.endpoint.empty()) return detail::bad_argument("no AWS endpoint");
  if (options.region.empty()) return detail::bad_argument("no AWS region");
  if (options.credentials.access_key_id.empty() || options.credentials.secret_access_key.empty()) {
    return detail::bad_argument("no AWS credentials (access key id and secret access key)");
  }
  if (options.signing_service.empty()) return detail::bad_argument("no SigV4 service name");
  auto state = std::make_shared<impl>();
  state->options = options;
  detail::http_pool_config config;
  config.host = options.endpoint;
  config.port = options.port;
  config.options = options.http;
  state->host = detail::host_header(config);
  auto pool = detail::http_pool::create(std::move(executor), std::move(config));
  if (!pool) return pool.error();
  state->pool = std::move(*pool);
  return std::unique_ptr<aws_service_client>(new aws_service_client(std::move(state)));
}

aws_service_client::aws_service_client(std::shared_ptr<impl> state) : impl_(std::move(state)) {}
aws_service_client::~aws_service_client() {
  if (impl_ && impl_->pool) impl_->pool->close();
}

asio::awaitable<service_result<json::object>> aws_service_client::async_get_shadow(std::string_view thing,
                                                                                   std::string_view shadow) {
  const auto self = impl_;  // the client may be destroyed while this runs
  if (thing.empty()) co_return detail::bad_argument("empty thing name");
  const auto path = impl::shadow_path(thing);
  const auto query = impl::shadow_query(shadow);
  auto r = co_await self->send("GET", path, query, {});
  if (!r) co_return r.error();
  co_return to_object(*r);
}

asio::awaitable<service_result<json::object>> aws_service_client::async_update_shadow(std::string_view thing,
                                                                                      std::string_view shadow,
                                                                                      const json::object& document) {
  const auto self = impl_;  // the client may be destroyed while this runs
  if (thing.empty()) co_return detail::bad_argument("empty thing name");
  const auto path = impl::shadow_path(thing);
  const auto query = impl::shadow_query(shadow);
  const auto body = json::serialize(document);
  auto r = co_await self->send("POST", path, query, body);
  if (!r) co_return r.error();
  co_return to_object(*r);
}

asio::awaitable<service_result<json::object>> aws_service_client::async_delete_shadow(std::string_view thing,
                                                                                      std::string_view shadow) {
  const auto self = impl_;  // the client may be destroyed while this runs
  if (thing.empty()) co_return detail::bad_argument("empty thing name");
  const auto path = impl::shadow_path(thing);
  const auto query = impl::shadow_query(shadow);
  auto r = co_await self->send("DELETE", path, query, {});
  if (!r) co_return r.error();
  co_return to_object(*r);
}

asio::awaitable<service_result<named_shadow_page>> aws_service_client::async_list_named_shadows(
    std::string_view thing, std::string_view next_token, std::uint32_t page_size) {
  const auto self = impl_;  // the client may be destroyed while this runs
  if (thing.empty()) co_return detail::bad_argument("empty thing name");
  const auto path = "/api/things/shadow/ListNamedShadowsForThing/" + detail::path_segment(thing);
  std::vector<auth::query_param> query;
  if (!next_token.empty()) query.push_back({"nextToken", std::string(next_token)});
  if (page_size != 0) query.push_back({"pageSize", std::to_string(page_size)});
  auto r = co_await self->send("GET", path, query, {});
  if (!r) co_return r.error();
  auto body = to_object(*r);
  if (!body) co_return body.error();
  named_shadow_page page;
  if (const auto* results = body->if_contains("results"); results != nullptr && results->is_array()) {
    for (const auto& n : results->get_array()) {
      if (n.is_string()) page.names.emplace_back(n.get_string());
    }
  }
  if (const auto* t = body->if_contains("nextToken"); t != nullptr && t->is_string()) page.next_token = std::string(t->get_string());
  if (const auto* ts = body->if_contains("timestamp"); ts != nullptr && ts->is_int64()) page.timestamp = ts->get_int64();
  co_return page;
}

asio::awaitable<service_result<void>> aws_service_client::async_publish(std::string_view topic,
                                                                       std::string_view payload, int qos) {
  const auto self = impl_;  // the client may be destroyed while this runs
  if (topic.empty()) co_return detail::bad_argument("empty topic");
  if (qos != 0 && qos != 1) co_return detail::bad_argument("qos must be 0 or 1");
  // The topic as one encoded label ("cmd%2Flamp-1"), as the AWS SDKs send it.
  const auto path = "/topics/" + detail::path_segment(topic);
  std::vector<auth::query_param> query;
  query.push_back({"qos", std::to_string(qos)});
  auto r = co_await self->send("POST", path, query, payload);
  if (!r) co_return r.error();
  if (r->status < 200 || r->status >= 300) co_return aws_http_error(*r);
  co_return service_result<void>{};
}

http_pool_stats aws_service_client::pool_stats() const { return impl_->pool->stats(); }

}  // namespace twinfleet::backends
