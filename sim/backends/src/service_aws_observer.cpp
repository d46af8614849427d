// The AWS shadow-documents observer: one net::client_connection with the back end's client
// certificate, two wildcard subscriptions, and a parser for B3.5 documents.
#include <twinfleet/backends/service_aws_observer.hpp>

#include <twinfleet/auth/tls.hpp>
#include <twinfleet/net/client.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/parse.hpp>

#include <array>

namespace twinfleet::backends {

namespace asio = boost::asio;
namespace json = boost::json;

namespace {

constexpr std::string_view filter_classic = "$aws/things/+/shadow/update/documents";
constexpr std::string_view filter_named = "$aws/things/+/shadow/name/+/update/documents";

std::int64_t int_of(const json::value* v) {
  if (v == nullptr) return 0;
  if (v->is_int64()) return v->get_int64();
  if (v->is_uint64()) return static_cast<std::int64_t>(v->get_uint64());
  if (v->is_double()) return static_cast<std::int64_t>(v->get_double());
  return 0;
}

// previous/current: {"state":{…},"metadata":{…},"version":N} or null.
bool read_side(const json::object& doc, std::string_view key, std::int64_t& version, json::object& state) {
  const auto* side = doc.if_contains(key);
  if (side == nullptr || side->is_null()) return key == "previous";  // only previous may be null
  const auto* o = side->if_object();
  if (o == nullptr) return false;
  version = int_of(o->if_contains("version"));
  if (const auto* s = o->if_contains("state"); s != nullptr && s->is_object()) state = s->get_object();
  return true;
}

}  // namespace

struct aws_shadow_observer::impl {
  impl(asio::any_io_executor ex, aws_shadow_observer_options o)
      : executor(ex), options(std::move(o)), connection(executor) {}

  asio::any_io_executor executor;
  aws_shadow_observer_options options;
  std::unique_ptr<asio::ssl::context> tls;
  net::client_connection connection;
  document_handler handler;
  aws_shadow_observer_stats stats;

  void on_message(const mqtt::publish_packet& p) {
    const bool documents_topic = p.topic.starts_with("$aws/things/") && p.topic.ends_with("/update/documents");
    if (!documents_topic) {
      ++stats.other;
      return;
    }
    auto event = parse_document(p.topic, p.payload);
    if (!event) {
      ++stats.malformed;
      return;
    }
    ++stats.documents;
    if (handler) handler(*event);
  }
};

std::optional<shadow_document_event> aws_shadow_observer::parse_document(std::string_view topic,
                                                                        std::string_view payload) {
  // $aws/things/{thing}/shadow/update/documents or $aws/things/{thing}/shadow/name/{shadow}/update/documents
  constexpr std::string_view prefix = "$aws/things/";
  constexpr std::string_view suffix = "/update/documents";
  if (!topic.starts_with(prefix) || !topic.ends_with(suffix)) return std::nullopt;
  auto middle = topic.substr(prefix.size(), topic.size() - prefix.size() - suffix.size());
  const auto slash = middle.find('/');
  if (slash == std::string_view::npos || slash == 0) return std::nullopt;
  shadow_document_event e;
  e.thing = std::string(middle.substr(0, slash));
  auto rest = middle.substr(slash);
  if (rest == "/shadow") {
    // classic
  } else if (rest.starts_with("/shadow/name/") && rest.size() > 13 && rest.find('/', 13) == std::string_view::npos) {
    e.shadow = std::string(rest.substr(13));
  } else {
    return std::nullopt;
  }
  boost::system::error_code ec;
  auto value = json::parse(payload, ec);
  if (ec || !value.is_object()) return std::nullopt;
  const auto& doc = value.get_object();
  if (!read_side(doc, "previous", e.previous_version, e.previous_state)) return std::nullopt;
  if (!read_side(doc, "current", e.current_version, e.current_state)) return std::nullopt;
  e.timestamp = int_of(doc.if_contains("timestamp"));
  if (const auto* t = doc.if_contains("clientToken"); t != nullptr && t->is_string()) {
    e.client_token = std::string(t->get_string());
  }
  e.received_at = std::chrono::system_clock::now();
  return e;
}

boost::system::result<std::unique_ptr<aws_shadow_observer>> aws_shadow_observer::create(
    asio::any_io_executor executor, const aws_shadow_observer_options& options) {
  auto state = std::make_shared<impl>(std::move(executor), options);
  if (options.use_tls) {
    auth::tls_client_config tc;
    tc.ca_file = options.ca_file;
    tc.certificate_chain_file = options.certificate_file;
    tc.private_key_file = options.private_key_file;
    tc.alpn_protocols = options.alpn;
    auto ctx = auth::make_tls_client_context(tc);
    if (!ctx) return ctx.error();
    state->tls = std::make_unique<asio::ssl::context>(std::move(*ctx));
  }
  auto* raw = state.get();
  state->connection.set_message_handler([raw](const mqtt::publish_packet& p) { raw->on_message(p); });
  return std::unique_ptr<aws_shadow_observer>(new aws_shadow_observer(std::move(state)));
}

aws_shadow_observer::aws_shadow_observer(std::shared_ptr<impl> state) : impl_(std::move(state)) {}
aws_shadow_observer::~aws_shadow_observer() {
  if (impl_) impl_->connection.abort();  // a start still running ends with an error
}

void aws_shadow_observer::set_handler(document_handler handler) { impl_->handler = std::move(handler); }
void aws_shadow_observer::set_closed_handler(closed_handler handler) {
  impl_->connection.set_closed_handler(std::move(handler));
}

asio::awaitable<boost::system::error_code> aws_shadow_observer::async_start() {
  const auto self = impl_;  // the client may be destroyed while this runs
  using namespace asio::experimental::awaitable_operators;
  auto& m = *self;
  net::client_transport transport;
  transport.kind = m.options.use_tls ? net::transport_kind::tls : net::transport_kind::tcp;
  transport.tls = m.tls.get();
  transport.server_name = m.options.host;
  transport.alpn = m.options.alpn;
  mqtt::connect_packet hello;
  hello.clean_session = true;
  hello.keep_alive = m.options.keep_alive;
  hello.client_id = m.options.client_id;
  const std::string_view dial = m.options.connect_host.empty() ? m.options.host : m.options.connect_host;
  const auto connected = co_await m.connection.async_connect(dial, m.options.port, transport, hello, m.options.connect_timeout);
  if (connected) co_return connected;

  std::array<mqtt::subscription, 2> subscriptions{};
  subscriptions[0].filter = filter_classic;
  subscriptions[0].qos = mqtt::qos::at_least_once;
  subscriptions[1].filter = filter_named;
  subscriptions[1].qos = mqtt::qos::at_least_once;
  const std::span<const mqtt::subscription> span(subscriptions);
  asio::steady_timer timer(m.executor, m.options.connect_timeout);
  auto raced = co_await (m.connection.async_subscribe(span) || timer.async_wait(asio::as_tuple(asio::use_awaitable)));
  if (raced.index() == 1) {
    m.connection.abort();
    co_return make_error_code(boost::system::errc::timed_out);
  }
  auto& codes = std::get<0>(raced);
  if (!codes) {
    m.connection.abort();
    co_return codes.error();
  }
  for (const auto code : *codes) {
    if (code == mqtt::suback_code::failure) {
      m.connection.abort();
      co_return make_error_code(boost::system::errc::permission_denied);
    }
  }
  co_return boost::system::error_code{};
}

asio::awaitable<void> aws_shadow_observer::async_stop() {
  const auto self = impl_;  // the client may be destroyed while this runs
  if (!self->connection.connected()) {
    self->connection.abort();
    co_return;
  }
  const auto ec = co_await self->connection.async_disconnect();
  (void)ec;
}

bool aws_shadow_observer::connected() const noexcept { return impl_->connection.connected(); }
const aws_shadow_observer_stats& aws_shadow_observer::stats() const noexcept { return impl_->stats; }

}  // namespace twinfleet::backends
