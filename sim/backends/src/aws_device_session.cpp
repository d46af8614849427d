// The AWS IoT Device Shadow device session: shadow topics and clientToken correlation on top
// of net::client_connection (PROTOCOLS.md B1-B9, C2, E).
#include <twinfleet/backends/aws_device_session.hpp>

#include "device_pending.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <cstdio>
#include <span>

namespace twinfleet::backends {

namespace asio = boost::asio;
using boost::system::error_code;

namespace {

constexpr std::string_view things_prefix = "$aws/things/";
// clientToken ≤ 64 bytes (B3.1): the client id's first 32 bytes, '-', the session's tag (8 hex
// digits), '-', a decimal counter (≤ 20 digits). The tag tells apart two sessions of one
// client id — two clients that take each other over (C1.8), in one process or two — which
// would otherwise number their requests alike and take each other's answers for their own.
constexpr std::size_t token_prefix_max = 32;

std::string session_tag() {
  // An odd step visits every 32-bit value once; the start differs per process.
  static std::atomic<std::uint32_t> next{static_cast<std::uint32_t>(::getpid()) * 2654435761u};
  char tag[9];
  std::snprintf(tag, sizeof tag, "%08x", static_cast<unsigned>(next.fetch_add(0x9E3779B9u)));
  return tag;
}

std::string_view operation_name(shadow_operation op) {
  switch (op) {
    case shadow_operation::get: return "get";
    case shadow_operation::update: return "update";
    case shadow_operation::remove: return "delete";
  }
  return "get";
}

// Which answers a request takes: its operation on its shadow ("update|config").
std::string answer_key(shadow_operation op, std::string_view shadow) {
  std::string key(operation_name(op));
  key += '|';
  key += shadow;
  return key;
}

std::optional<std::int64_t> int_member(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  if (v == nullptr) return std::nullopt;
  if (v->is_int64()) return v->get_int64();
  if (v->is_uint64()) return static_cast<std::int64_t>(v->get_uint64());
  return std::nullopt;
}

}  // namespace

std::string aws_shadow_topic_prefix(std::string_view thing, std::string_view shadow) {
  std::string p(things_prefix);
  p += thing;
  p += "/shadow";
  if (!shadow.empty()) {
    p += "/name/";
    p += shadow;
  }
  return p;
}

std::optional<aws_shadow_topic> parse_aws_shadow_topic(std::string_view topic) {
  if (!topic.starts_with(things_prefix)) return std::nullopt;
  topic.remove_prefix(things_prefix.size());
  aws_shadow_topic out;
  const auto slash = topic.find('/');
  if (slash == std::string_view::npos || slash == 0) return std::nullopt;
  out.thing = topic.substr(0, slash);
  topic.remove_prefix(slash + 1);
  if (!topic.starts_with("shadow/")) return std::nullopt;
  topic.remove_prefix(7);
  if (topic.starts_with("name/")) {
    topic.remove_prefix(5);
    const auto s = topic.find('/');
    if (s == std::string_view::npos || s == 0) return std::nullopt;
    out.shadow = topic.substr(0, s);
    topic.remove_prefix(s + 1);
  }
  const auto s = topic.find('/');
  if (s == std::string_view::npos) return std::nullopt;
  const auto op = topic.substr(0, s);
  if (op == "get") {
    out.operation = shadow_operation::get;
  } else if (op == "update") {
    out.operation = shadow_operation::update;
  } else if (op == "delete") {
    out.operation = shadow_operation::remove;
  } else {
    return std::nullopt;
  }
  out.suffix = topic.substr(s + 1);
  const bool known = out.suffix == "accepted" || out.suffix == "rejected" ||
                     (out.operation == shadow_operation::update && (out.suffix == "delta" || out.suffix == "documents"));
  if (!known) return std::nullopt;
  return out;
}

struct aws_device_session::impl {
  impl(asio::any_io_executor ex, aws_device_config c, const net::client_options& options)
      : config(std::move(c)), connection(std::move(ex), options) {
    if (config.client_id.empty()) config.client_id = config.thing_name;
    token_prefix = config.client_id.substr(0, token_prefix_max) + "-" + session_tag() + "-";
  }

  aws_device_config config;
  net::client_connection connection;
  std::string token_prefix;
  detail::pending_list pending;
  std::uint64_t next_token = 1;
  std::vector<std::string> shadows;  // subscribed on this connection
  std::vector<std::string> topics;   // other filters subscribed on this connection
  bool quiet_close = false;
  void release();
  delta_handler on_delta;
  message_handler on_shadow_message;
  closed_handler on_closed;
  topic_handler on_topic;

  void install_handlers() {
    connection.set_message_handler([this](const mqtt::publish_packet& p) { on_message(p); });
    connection.set_closed_handler([this](error_code why) {
      pending.fail_all(make_error_code(net::net_errc::connection_lost));
      if (quiet_close) return;
      if (on_closed) on_closed(why);
    });
  }

  // The request number in a clientToken this session made, else nothing.
  [[nodiscard]] std::optional<std::uint64_t> own_token(const json::object& doc) const {
    const auto* t = doc.if_contains("clientToken");
    if (t == nullptr || !t->is_string()) return std::nullopt;
    std::string_view s = t->get_string();
    if (!s.starts_with(token_prefix)) return std::nullopt;
    s.remove_prefix(token_prefix.size());
    std::uint64_t n = 0;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
    if (ec != std::errc{} || end != s.data() + s.size() || s.empty()) return std::nullopt;
    return n;
  }

  void on_message(const mqtt::publish_packet& p) {
    auto t = parse_aws_shadow_topic(p.topic);
    if (!t) {
      if (on_topic) on_topic(p);
      return;
    }
    if (t->thing != config.thing_name) return;
    error_code ec;
    auto parsed = json::parse(p.payload, ec);
    if (ec || !parsed.is_object()) return;
    auto& doc = parsed.get_object();
    const auto now = std::chrono::steady_clock::now();
    if (t->suffix == "delta") {
      shadow_delta d;
      d.shadow = std::string(t->shadow);
      d.version = int_member(doc, "version").value_or(0);
      if (auto* s = doc.if_contains("state"); s != nullptr && s->is_object()) d.state = s->get_object();
      d.received = now;
      d.document = std::move(doc);
      if (on_delta) on_delta(d);
      return;
    }
    shadow_message m;
    m.shadow = t->shadow;
    m.operation = t->operation;
    m.kind = t->suffix == "accepted"   ? shadow_message_kind::accepted
             : t->suffix == "rejected" ? shadow_message_kind::rejected
                                       : shadow_message_kind::documents;
    m.document = &doc;
    m.received = now;
    detail::pending_request* request = nullptr;
    if (m.kind != shadow_message_kind::documents) {
      if (auto n = own_token(doc)) request = pending.find(*n);
      // A request waits for the answer of its own operation on its own shadow.
      if (request != nullptr && request->topic_kind != answer_key(t->operation, t->shadow)) request = nullptr;
    }
    m.own = request != nullptr;
    if (on_shadow_message) on_shadow_message(m);
    if (request == nullptr) return;
    if (m.kind == shadow_message_kind::accepted) {
      request->status = 200;
    } else {
      request->status = static_cast<int>(int_member(doc, "code").value_or(0));
    }
    request->body = std::move(parsed);
    request->complete();
  }

  bool subscribed(std::string_view shadow) const {
    return std::find(shadows.begin(), shadows.end(), shadow) != shadows.end();
  }

  static device_error rejection(const detail::pending_request& r) {
    device_error e;
    e.ec = make_error_code(device_errc::rejected);
    e.status = r.status;
    e.code = r.status;
    if (r.body.is_object()) {
      if (const auto* m = r.body.get_object().if_contains("message"); m != nullptr && m->is_string()) {
        e.message = m->get_string();
      }
    }
    return e;
  }

  // Publishes `request` (a JSON object without clientToken) to the shadow's operation topic
  // and waits for the answer with the same clientToken.
  asio::awaitable<device_result<json::object>> exchange(std::string_view shadow, shadow_operation op,
                                                        json::object& request, std::chrono::milliseconds timeout) {
    if (!connection.connected()) co_return detail::local_error(make_error_code(device_errc::not_connected));
    if (!subscribed(shadow)) co_return detail::local_error(make_error_code(device_errc::not_subscribed));
    detail::pending_request r(connection.executor(), next_token++, timeout);
    r.topic_kind = answer_key(op, shadow);
    request["clientToken"] = token_prefix + std::to_string(r.id);
    std::string topic = aws_shadow_topic_prefix(config.thing_name, shadow);
    topic += '/';
    topic += operation_name(op);
    const std::string payload = json::serialize(request);
    detail::pending_guard guard(pending, r);
    if (auto ec = connection.publish(topic, payload, config.request_qos)) co_return detail::local_error(ec);
    boost::system::error_code ec;
    if (!r.done) {
      const auto waited = co_await detail::wait_for_answer(r);  // not inside a call: GCC 12's co_await temporaries
      ec = detail::answer_outcome(r, waited);
    }
    if (ec) co_return detail::local_error(ec);
    if (r.ec) co_return detail::local_error(r.ec);
    if (r.status != 200) co_return rejection(r);
    if (!r.body.is_object()) co_return detail::local_error(make_error_code(device_errc::bad_response));
    co_return std::move(r.body.get_object());
  }

  mqtt::connect_packet hello() const {
    mqtt::connect_packet c;
    c.client_id = config.client_id;
    c.keep_alive = config.keep_alive;
    c.clean_session = config.clean_session;
    if (!config.username.empty()) c.username = std::string_view(config.username);
    return c;
  }
};

aws_device_session::aws_device_session(asio::any_io_executor executor, aws_device_config config,
                                       const net::client_options& options)
    : impl_(std::make_shared<impl>(std::move(executor), std::move(config), options)) {
  impl_->install_handlers();
}

// The session's handle goes: the handlers are dropped first (what they refer to may go with
// the handle; the impl lives on while its operations finish), then the connection.
void aws_device_session::impl::release() {
  on_delta = nullptr;
  on_shadow_message = nullptr;
  on_closed = nullptr;
  on_topic = nullptr;
  quiet_close = true;
  connection.abort();
}

aws_device_session::~aws_device_session() {
  if (impl_) impl_->release();
}
aws_device_session::aws_device_session(aws_device_session&&) noexcept = default;
aws_device_session& aws_device_session::operator=(aws_device_session&& other) noexcept {
  if (this != &other) {
    if (impl_) impl_->release();  // the session replaced goes away as the destructor would take it
    impl_ = std::move(other.impl_);
  }
  return *this;
}

void aws_device_session::set_delta_handler(delta_handler handler) { impl_->on_delta = std::move(handler); }
void aws_device_session::set_message_handler(message_handler handler) { impl_->on_shadow_message = std::move(handler); }
void aws_device_session::set_closed_handler(closed_handler handler) { impl_->on_closed = std::move(handler); }
void aws_device_session::set_topic_handler(topic_handler handler) { impl_->on_topic = std::move(handler); }

asio::awaitable<error_code> aws_device_session::async_connect(const asio::ip::tcp::endpoint& server,
                                                              const net::client_transport& transport,
                                                              std::chrono::milliseconds timeout) {
  auto self = impl_;
  self->shadows.clear();
  self->topics.clear();
  self->quiet_close = false;
  const auto hello = self->hello();
  co_return co_await self->connection.async_connect(server, transport, hello, timeout);
}

asio::awaitable<error_code> aws_device_session::async_connect(std::string_view host, std::uint16_t port,
                                                              const net::client_transport& transport,
                                                              std::chrono::milliseconds timeout) {
  auto self = impl_;
  self->shadows.clear();
  self->topics.clear();
  self->quiet_close = false;
  const auto hello = self->hello();
  co_return co_await self->connection.async_connect(host, port, transport, hello, timeout);
}

asio::awaitable<error_code> aws_device_session::async_subscribe_shadow(std::string_view shadow) {
  auto self = impl_;
  if (!self->connection.connected()) co_return make_error_code(device_errc::not_connected);
  const std::string prefix = aws_shadow_topic_prefix(self->config.thing_name, shadow);
  static constexpr std::array<std::string_view, 8> suffixes{
      "/get/accepted",    "/get/rejected",    "/update/accepted", "/update/rejected",
      "/update/delta",    "/delete/accepted", "/delete/rejected", "/update/documents"};
  const std::size_t count = self->config.subscribe_documents ? 8 : 7;
  std::vector<std::string> filters;
  filters.reserve(count);
  std::vector<mqtt::subscription> subs;
  subs.reserve(count);
  for (std::size_t i = 0; i < count; ++i) filters.push_back(prefix + std::string(suffixes[i]));
  for (const auto& f : filters) {
    mqtt::subscription s;
    s.filter = f;
    s.qos = self->config.subscribe_qos;
    subs.push_back(s);
  }
  auto codes = co_await self->connection.async_subscribe(subs);
  if (!codes) co_return codes.error();
  for (auto c : *codes) {
    if (c == mqtt::suback_code::failure) co_return make_error_code(device_errc::subscribe_refused);
  }
  if (!self->subscribed(shadow)) self->shadows.emplace_back(shadow);
  co_return error_code{};
}

asio::awaitable<error_code> aws_device_session::async_subscribe_topic(std::string_view filter) {
  auto self = impl_;
  if (!self->connection.connected()) co_return make_error_code(device_errc::not_connected);
  const std::string kept(filter);
  mqtt::subscription sub;
  sub.filter = kept;
  sub.qos = self->config.subscribe_qos;
  auto codes = co_await self->connection.async_subscribe(std::span<const mqtt::subscription>(&sub, 1));
  if (!codes) co_return codes.error();
  for (auto c : *codes) {
    if (c == mqtt::suback_code::failure) co_return make_error_code(device_errc::subscribe_refused);
  }
  if (std::find(self->topics.begin(), self->topics.end(), kept) == self->topics.end()) self->topics.push_back(kept);
  co_return error_code{};
}

asio::awaitable<device_result<json::object>> aws_device_session::async_update(std::string_view shadow,
                                                                               const json::object& state,
                                                                               std::optional<std::int64_t> version,
                                                                               std::chrono::milliseconds timeout) {
  auto self = impl_;
  json::object request;
  request["state"] = state;
  if (version) request["version"] = *version;
  co_return co_await self->exchange(shadow, shadow_operation::update, request, timeout);
}

asio::awaitable<device_result<json::object>> aws_device_session::async_get(std::string_view shadow,
                                                                            std::chrono::milliseconds timeout) {
  auto self = impl_;
  json::object request;
  co_return co_await self->exchange(shadow, shadow_operation::get, request, timeout);
}

asio::awaitable<device_result<json::object>> aws_device_session::async_delete(std::string_view shadow,
                                                                               std::optional<std::int64_t> version,
                                                                               std::chrono::milliseconds timeout) {
  auto self = impl_;
  json::object request;
  if (version) request["version"] = *version;
  co_return co_await self->exchange(shadow, shadow_operation::remove, request, timeout);
}

asio::awaitable<error_code> aws_device_session::async_reconnect(const asio::ip::tcp::endpoint& server,
                                                                const net::client_transport& transport,
                                                                std::chrono::milliseconds timeout) {
  auto self = impl_;
  auto restore = self->shadows;
  auto restore_topics = self->topics;
  if (self->connection.connected()) {
    self->quiet_close = true;
    co_await self->connection.async_disconnect();
  }
  auto ec = co_await async_connect(server, transport, timeout);
  if (ec) co_return ec;
  for (const auto& shadow : restore) {
    ec = co_await async_subscribe_shadow(shadow);
    if (ec) co_return ec;
  }
  for (const auto& filter : restore_topics) {
    ec = co_await async_subscribe_topic(filter);
    if (ec) co_return ec;
  }
  co_return error_code{};
}

asio::awaitable<error_code> aws_device_session::async_disconnect() {
  auto self = impl_;
  self->quiet_close = true;
  co_return co_await self->connection.async_disconnect();
}

void aws_device_session::abort() { impl_->connection.abort(); }
bool aws_device_session::connected() const noexcept { return impl_->connection.connected(); }
const std::vector<std::string>& aws_device_session::subscribed_shadows() const noexcept { return impl_->shadows; }
const std::vector<std::string>& aws_device_session::subscribed_topics() const noexcept { return impl_->topics; }
const aws_device_config& aws_device_session::config() const noexcept { return impl_->config; }
net::client_connection& aws_device_session::connection() noexcept { return impl_->connection; }
std::size_t aws_device_session::pending_requests() const noexcept { return impl_->pending.size(); }

}  // namespace twinfleet::backends
