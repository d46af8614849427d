// The Azure IoT Hub device session: topics, $rid correlation and SAS renewal on top of
// net::client_connection (PROTOCOLS.md A4-A7, E).
#include <twinfleet/backends/azure_device_session.hpp>

#include "device_pending.hpp"

#include <twinfleet/auth/encoding.hpp>
#include <twinfleet/auth/sas.hpp>

#include <boost/asio/this_coro.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <array>
#include <charconv>

namespace twinfleet::backends {

namespace asio = boost::asio;
using boost::system::error_code;

namespace {

constexpr std::string_view filter_twin_responses = "$iothub/twin/res/#";
constexpr std::string_view filter_desired = "$iothub/twin/PATCH/properties/desired/#";
constexpr std::string_view filter_methods = "$iothub/methods/POST/#";
constexpr std::string_view twin_response_prefix = "$iothub/twin/res/";
constexpr std::string_view desired_prefix = "$iothub/twin/PATCH/properties/desired/";
constexpr std::string_view method_prefix = "$iothub/methods/POST/";
// The twin requests' paths; a request's topic adds "?$rid={id}" and maybe "&$version={v}"
// (each number at most 20 characters).
constexpr std::string_view twin_get_path = "$iothub/twin/GET/";
constexpr std::string_view twin_patch_path = "$iothub/twin/PATCH/properties/reported/";
constexpr std::string_view rid_query = "?$rid=";
constexpr std::string_view version_query = "&$version=";
constexpr std::size_t request_topic_capacity = 128;
static_assert(std::max(twin_get_path.size(), twin_patch_path.size()) + rid_query.size() + 20 + version_query.size() + 20 <=
              request_topic_capacity);

template <class Int>
std::optional<Int> parse_number(std::string_view text) {
  Int v{};
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc{} || end != text.data() + text.size() || text.empty()) return std::nullopt;
  return v;
}

// The value of `name` in "a=1&b=2", if present.
std::optional<std::string_view> query_param(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    const auto amp = query.find('&');
    const auto part = query.substr(0, amp);
    const auto eq = part.find('=');
    if (part.substr(0, eq) == name) return eq == std::string_view::npos ? std::string_view{} : part.substr(eq + 1);
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return std::nullopt;
}

void append_property(std::string& topic, bool& first, std::string_view key, std::string_view value) {
  if (!first) topic += '&';
  first = false;
  topic += auth::url_encode(key);
  topic += '=';
  topic += auth::url_encode(value);
}

// Takes the integer "$version" out of `o`; nothing when absent or not an integer.
std::optional<std::int64_t> take_version(json::object& o) {
  auto it = o.find("$version");
  if (it == o.end()) return std::nullopt;
  std::optional<std::int64_t> v;
  if (it->value().is_int64()) v = it->value().get_int64();
  if (it->value().is_uint64()) v = static_cast<std::int64_t>(it->value().get_uint64());
  o.erase(it);
  return v;
}

}  // namespace

std::string azure_telemetry_topic(std::string_view device_id, const telemetry_properties& p) {
  std::string topic = "devices/";
  topic += device_id;
  topic += "/messages/events/";
  bool first = true;
  const std::array<std::pair<std::string_view, const std::string*>, 5> system{{
      {"$.mid", &p.message_id},
      {"$.cid", &p.correlation_id},
      {"$.ct", &p.content_type},
      {"$.ce", &p.content_encoding},
      {"$.sub", &p.component},
  }};
  for (const auto& [key, value] : system) {
    if (!value->empty()) append_property(topic, first, key, *value);
  }
  for (const auto& [key, value] : p.application) append_property(topic, first, key, value);
  return topic;
}

std::string azure_username(const azure_device_config& config) {
  std::string u = config.host_name + "/" + config.device_id + "/?api-version=" + config.api_version;
  if (!config.model_id.empty()) u += "&model-id=" + auth::url_encode(config.model_id);
  return u;
}

std::optional<azure_twin_response_topic> parse_azure_twin_response_topic(std::string_view topic) {
  if (!topic.starts_with(twin_response_prefix)) return std::nullopt;
  topic.remove_prefix(twin_response_prefix.size());
  const auto slash = topic.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  auto status = parse_number<int>(topic.substr(0, slash));
  if (!status) return std::nullopt;
  topic.remove_prefix(slash + 1);
  if (!topic.starts_with("?")) return std::nullopt;
  topic.remove_prefix(1);
  auto rid = query_param(topic, "$rid");
  if (!rid) return std::nullopt;
  azure_twin_response_topic out;
  out.status = *status;
  out.rid = *rid;
  if (auto v = query_param(topic, "$version")) {
    out.version = parse_number<std::int64_t>(*v);
    if (!out.version) return std::nullopt;
  }
  return out;
}

struct azure_device_session::impl {
  impl(asio::any_io_executor ex, azure_device_config c, const net::client_options& options)
      : config(std::move(c)), connection(std::move(ex), options) {}

  azure_device_config config;
  net::client_connection connection;
  detail::pending_list pending;
  std::uint64_t next_rid = 1;
  azure_subscription subscribed = azure_subscription::none;
  bool quiet_close = false;  // our own disconnect: no closed handler
  void release();
  std::chrono::system_clock::time_point expiry{};
  std::chrono::system_clock::time_point renewal{};
  desired_handler on_desired;
  method_handler on_method;
  closed_handler on_closed;

  void install_handlers() {
    connection.set_message_handler([this](const mqtt::publish_packet& p) { on_message(p); });
    connection.set_closed_handler([this](error_code why) {
      pending.fail_all(make_error_code(net::net_errc::connection_lost));
      if (quiet_close) return;
      if (on_closed) on_closed(why);
    });
  }

  void on_message(const mqtt::publish_packet& p) {
    const auto now = std::chrono::steady_clock::now();
    if (p.topic.starts_with(twin_response_prefix)) return on_twin_response(p);
    if (p.topic.starts_with(desired_prefix)) {
      desired_patch n;
      n.received = now;
      error_code ec;
      auto body = json::parse(p.payload, ec);
      if (ec || !body.is_object()) return;  // not a patch: nothing a device could apply
      n.patch = std::move(body.get_object());
      auto version = take_version(n.patch);
      // The topic carries the version too (?$version=n); the body's is the documented one.
      if (!version) {
        const auto q = p.topic.find('?');
        if (q != std::string_view::npos) {
          if (auto v = query_param(p.topic.substr(q + 1), "$version")) version = parse_number<std::int64_t>(*v);
        }
      }
      if (!version) return;
      n.version = *version;
      if (on_desired) on_desired(n);
      return;
    }
    if (p.topic.starts_with(method_prefix)) {
      auto rest = p.topic.substr(method_prefix.size());
      const auto slash = rest.find('/');
      if (slash == std::string_view::npos) return;
      method_request m;
      m.name = std::string(rest.substr(0, slash));
      rest.remove_prefix(slash + 1);
      if (!rest.starts_with("?")) return;
      auto rid = query_param(rest.substr(1), "$rid");
      if (!rid) return;
      m.rid = std::string(*rid);
      m.received = now;
      if (!p.payload.empty()) {
        error_code ec;
        m.payload = json::parse(p.payload, ec);
        if (ec) m.payload = json::string(p.payload);
      }
      if (on_method) on_method(m);
    }
    // Anything else (cloud-to-device messages) is not this session's business.
  }

  void on_twin_response(const mqtt::publish_packet& p) {
    auto t = parse_azure_twin_response_topic(p.topic);
    if (!t) return;
    auto rid = parse_number<std::uint64_t>(t->rid);
    if (!rid) return;
    auto* request = pending.find(*rid);
    if (request == nullptr) return;  // late (timed out) or not ours
    request->status = t->status;
    request->version = t->version;
    if (!p.payload.empty()) {
      error_code ec;
      request->body = json::parse(p.payload, ec);
      if (ec) request->body = json::string(p.payload);
    }
    request->complete();
  }

  error_code make_token(std::string& password) {
    if (config.sas_key.empty()) return {};
    const auto now = std::chrono::system_clock::now();
    const auto se = std::chrono::time_point_cast<std::chrono::seconds>(now) + config.token_lifetime;
    const std::string resource = config.host_name + "/devices/" + config.device_id;
    auth::sas_token_request r;
    r.resource_uri = resource;
    r.key_base64 = config.sas_key;
    r.expiry = se;
    auto token = auth::create_sas_token(r);
    if (!token) return token.error();
    password = std::move(*token);
    expiry = se;
    renewal = now + config.token_lifetime * 4 / 5;
    return {};
  }

  // The hub's error answer as a device_error.
  static device_error rejection(const detail::pending_request& r) {
    device_error e;
    e.ec = make_error_code(device_errc::rejected);
    e.status = r.status;
    e.code = r.status;
    if (r.body.is_object()) {
      const auto& o = r.body.get_object();
      if (const auto* c = o.if_contains("errorCode"); c != nullptr && (c->is_int64() || c->is_uint64())) {
        e.code = static_cast<int>(c->to_number<std::int64_t>());
      }
      if (const auto* m = o.if_contains("message"); m != nullptr && m->is_string()) e.message = m->get_string();
    }
    if (e.message.empty()) e.message = "status " + std::to_string(r.status);
    return e;
  }

  // Publishes request `r`. The topic is built on this stack, not in the coroutine's frame: as
  // a std::string it cost two allocations per request (the path's copy, then its growth).
  // `path` is one of the two request paths, whose longest topic fits (static_assert at their
  // definition); publish() encodes the topic before it returns.
  error_code publish_request(const detail::pending_request& r, std::string_view path, std::optional<std::int64_t> version,
                             std::string_view body) {
    std::array<char, request_topic_capacity> buffer;
    char* end = buffer.data();
    const auto put = [&](std::string_view text) {
      end = std::copy_n(text.begin(), std::min<std::ptrdiff_t>(std::ssize(text), buffer.data() + buffer.size() - end), end);
    };
    const auto put_number = [&](auto n) { end = std::to_chars(end, buffer.data() + buffer.size(), n).ptr; };
    put(path);
    put(rid_query);
    put_number(r.id);
    if (version) {
      put(version_query);
      put_number(*version);
    }
    return connection.publish(std::string_view(buffer.data(), static_cast<std::size_t>(end - buffer.data())), body,
                              config.request_qos);
  }

  // Sends a twin request and waits for its answer; the caller interprets it.
  asio::awaitable<device_result<detail::pending_request*>> request(detail::pending_request& r, std::string_view path,
                                                                   std::optional<std::int64_t> version,
                                                                   std::string_view body) {
    if (!connection.connected()) co_return detail::local_error(make_error_code(device_errc::not_connected));
    if (!contains(subscribed, azure_subscription::twin_responses)) {
      co_return detail::local_error(make_error_code(device_errc::not_subscribed));
    }
    detail::pending_guard guard(pending, r);
    if (auto ec = publish_request(r, path, version, body)) co_return detail::local_error(ec);
    boost::system::error_code ec;
    if (!r.done) {
      const auto waited = co_await detail::wait_for_answer(r);  // not inside a call: GCC 12's co_await temporaries
      ec = detail::answer_outcome(r, waited);
    }
    if (ec) co_return detail::local_error(ec);
    if (r.ec) co_return detail::local_error(r.ec);
    co_return &r;
  }

  asio::awaitable<error_code> connect_with(auto&& do_connect) {
    std::string username = azure_username(config);
    std::string password;
    if (auto ec = make_token(password)) co_return ec;
    mqtt::connect_packet hello;
    hello.client_id = config.device_id;
    hello.keep_alive = config.keep_alive;
    hello.clean_session = config.clean_session;
    hello.username = std::string_view(username);
    if (!password.empty()) hello.password = std::string_view(password);
    subscribed = azure_subscription::none;
    quiet_close = false;
    co_return co_await do_connect(hello);
  }
};

azure_device_session::azure_device_session(asio::any_io_executor executor, azure_device_config config,
                                           const net::client_options& options)
    : impl_(std::make_shared<impl>(std::move(executor), std::move(config), options)) {
  impl_->install_handlers();
}

// The session's handle goes: the handlers are dropped first (what they refer to may go with
// the handle; the impl lives on while its operations finish), then the connection.
void azure_device_session::impl::release() {
  on_desired = nullptr;
  on_method = nullptr;
  on_closed = nullptr;
  quiet_close = true;
  connection.abort();
}

azure_device_session::~azure_device_session() {
  if (impl_) impl_->release();
}
azure_device_session::azure_device_session(azure_device_session&&) noexcept = default;
azure_device_session& azure_device_session::operator=(azure_device_session&& other) noexcept {
  if (this != &other) {
    if (impl_) impl_->release();  // the session replaced goes away as the destructor would take it
    impl_ = std::move(other.impl_);
  }
  return *this;
}

void azure_device_session::set_desired_handler(desired_handler handler) { impl_->on_desired = std::move(handler); }
void azure_device_session::set_method_handler(method_handler handler) { impl_->on_method = std::move(handler); }
void azure_device_session::set_closed_handler(closed_handler handler) { impl_->on_closed = std::move(handler); }

asio::awaitable<error_code> azure_device_session::async_connect(const asio::ip::tcp::endpoint& server,
                                                                const net::client_transport& transport,
                                                                std::chrono::milliseconds timeout) {
  auto self = impl_;
  auto dial = [&](const mqtt::connect_packet& hello) {
    return self->connection.async_connect(server, transport, hello, timeout);
  };
  co_return co_await self->connect_with(dial);
}

asio::awaitable<error_code> azure_device_session::async_connect(std::string_view host, std::uint16_t port,
                                                                const net::client_transport& transport,
                                                                std::chrono::milliseconds timeout) {
  auto self = impl_;
  auto dial = [&](const mqtt::connect_packet& hello) {
    return self->connection.async_connect(host, port, transport, hello, timeout);
  };
  co_return co_await self->connect_with(dial);
}

asio::awaitable<error_code> azure_device_session::async_subscribe(azure_subscription which) {
  auto self = impl_;
  std::vector<mqtt::subscription> subs;
  std::vector<azure_subscription> kinds;
  const std::array<std::pair<azure_subscription, std::string_view>, 3> all{{
      {azure_subscription::twin_responses, filter_twin_responses},
      {azure_subscription::desired, filter_desired},
      {azure_subscription::methods, filter_methods},
  }};
  for (const auto& [kind, filter] : all) {
    if (!contains(which, kind)) continue;
    mqtt::subscription s;
    s.filter = filter;
    s.qos = self->config.subscribe_qos;
    subs.push_back(s);
    kinds.push_back(kind);
  }
  if (subs.empty()) co_return error_code{};
  if (!self->connection.connected()) co_return make_error_code(device_errc::not_connected);
  auto codes = co_await self->connection.async_subscribe(subs);
  if (!codes) co_return codes.error();
  bool refused = false;
  for (std::size_t i = 0; i < kinds.size() && i < codes->size(); ++i) {
    if ((*codes)[i] == mqtt::suback_code::failure) {
      refused = true;
    } else {
      self->subscribed = self->subscribed | kinds[i];
    }
  }
  co_return refused ? make_error_code(device_errc::subscribe_refused) : error_code{};
}

asio::awaitable<device_result<azure_twin_properties>> azure_device_session::async_get_twin(
    std::chrono::milliseconds timeout) {
  auto self = impl_;
  detail::pending_request r(self->connection.executor(), self->next_rid++, timeout);
  auto answered = co_await self->request(r, twin_get_path, std::nullopt, {});
  if (!answered) co_return answered.error();
  // 200 is success; the C SDK also takes 202 (A5).
  if (r.status != 200 && r.status != 202) co_return impl::rejection(r);
  if (!r.body.is_object()) co_return detail::local_error(make_error_code(device_errc::bad_response));
  auto& o = r.body.get_object();
  auto* desired = o.if_contains("desired");
  auto* reported = o.if_contains("reported");
  if (desired == nullptr || reported == nullptr || !desired->is_object() || !reported->is_object()) {
    co_return detail::local_error(make_error_code(device_errc::bad_response));
  }
  azure_twin_properties out;
  out.desired = std::move(desired->get_object());
  out.reported = std::move(reported->get_object());
  auto dv = take_version(out.desired);
  auto rv = take_version(out.reported);
  if (!dv || !rv) co_return detail::local_error(make_error_code(device_errc::bad_response));
  out.desired_version = *dv;
  out.reported_version = *rv;
  co_return out;
}

asio::awaitable<device_result<std::int64_t>> azure_device_session::async_patch_reported(
    const json::object& patch, std::optional<std::int64_t> expected_version, std::chrono::milliseconds timeout) {
  auto self = impl_;
  const std::string body = json::serialize(patch);
  detail::pending_request r(self->connection.executor(), self->next_rid++, timeout);
  auto answered = co_await self->request(r, twin_patch_path, expected_version, body);
  if (!answered) co_return answered.error();
  if (r.status != 204 && r.status != 200) co_return impl::rejection(r);
  if (!r.version) co_return detail::local_error(make_error_code(device_errc::bad_response));
  co_return *r.version;
}

asio::awaitable<error_code> azure_device_session::async_respond_method(std::string_view rid, int status,
                                                                       const json::value& payload) {
  auto self = impl_;
  const std::string topic = "$iothub/methods/res/" + std::to_string(status) + "/?$rid=" + std::string(rid);
  const std::string body = json::serialize(payload);
  co_return co_await self->connection.async_publish(topic, body, mqtt::qos::at_most_once);
}

error_code azure_device_session::respond_method(std::string_view rid, int status, const json::value& payload) {
  const std::string topic = "$iothub/methods/res/" + std::to_string(status) + "/?$rid=" + std::string(rid);
  return impl_->connection.publish(topic, json::serialize(payload), mqtt::qos::at_most_once);
}

asio::awaitable<error_code> azure_device_session::async_send_telemetry(std::string_view payload,
                                                                       const telemetry_properties& properties,
                                                                       mqtt::qos qos) {
  auto self = impl_;
  const std::string topic = azure_telemetry_topic(self->config.device_id, properties);
  co_return co_await self->connection.async_publish(topic, payload, qos);
}

asio::awaitable<error_code> azure_device_session::async_reconnect(const asio::ip::tcp::endpoint& server,
                                                                  const net::client_transport& transport,
                                                                  std::chrono::milliseconds timeout) {
  auto self = impl_;
  const auto restore = self->subscribed;
  if (self->connection.connected()) {
    self->quiet_close = true;
    co_await self->connection.async_disconnect();
  }
  auto ec = co_await async_connect(server, transport, timeout);
  if (ec) co_return ec;
  if (restore != azure_subscription::none) ec = co_await async_subscribe(restore);
  co_return ec;
}

asio::awaitable<error_code> azure_device_session::async_disconnect() {
  auto self = impl_;
  self->quiet_close = true;
  co_return co_await self->connection.async_disconnect();
}

void azure_device_session::abort() { impl_->connection.abort(); }

bool azure_device_session::connected() const noexcept { return impl_->connection.connected(); }
azure_subscription azure_device_session::subscriptions() const noexcept { return impl_->subscribed; }
std::chrono::system_clock::time_point azure_device_session::token_expiry() const noexcept { return impl_->expiry; }
std::chrono::system_clock::time_point azure_device_session::token_renewal_due() const noexcept {
  return impl_->renewal;
}
const azure_device_config& azure_device_session::config() const noexcept { return impl_->config; }
net::client_connection& azure_device_session::connection() noexcept { return impl_->connection; }
std::size_t azure_device_session::pending_requests() const noexcept { return impl_->pending.size(); }

}  // namespace twinfleet::backends
