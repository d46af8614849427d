// The AWS shadow-documents observer: one Paho MQTT C++ connection with the back end's client
// certificate, two wildcard subscriptions (or the filters it is given), and a parser for B3.5
// documents. Paho's headers are
// confined to this file.
//
// How Paho's threads meet the executor:
// - messages: parsed on Paho's thread (the costly part), then posted to the executor, where
//   the counters change and the handler runs;
// - connect, subscribe, disconnect: Paho action listeners complete a concurrent channel that
//   the awaiting coroutine receives on (a timer on the executor bounds the wait);
// - connection lost: posted to the executor, where the closed handler runs.
// Posted work holds the state weakly: after the handle is gone, nothing runs.
#include <twinfleet/backends/service_aws_observer.hpp>

#include <twinfleet/auth/tls.hpp>
#include <twinfleet/backends/aws_device_session.hpp>
#include <twinfleet/net/error.hpp>

#include <mqtt/async_client.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/parse.hpp>

#include <mutex>

namespace twinfleet::backends {

namespace asio = boost::asio;
namespace json = boost::json;
namespace paho = ::mqtt;

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

// What one Paho operation ended with, as its action listener saw it (on Paho's thread).
struct outcome {
  bool ok = false;
  bool timed_out = false;  // set by our timer, not by Paho
  int rc = 0;              // Paho's return code on failure (for a refused CONNECT: the CONNACK code)
  std::vector<int> granted;  // SUBACK return codes (QoS, or 0x80)
};

using outcome_channel = asio::experimental::concurrent_channel<void(boost::system::error_code, outcome)>;

// One operation's listener: Paho keeps a raw pointer to it, so the observer keeps every one
// it made until the Paho client is gone (a few per start and stop). try_send is thread-safe;
// the channel holds one value, so an answer that comes before the coroutine waits is kept.
class op_listener final : public paho::iaction_listener {
 public:
  op_listener(asio::any_io_executor ex, bool subscribe) : channel(std::make_shared<outcome_channel>(ex, 1)), subscribe_(subscribe) {}
  std::shared_ptr<outcome_channel> channel;

 private:
  void on_success(const paho::token& tok) override {
    outcome o;
    o.ok = true;
    if (subscribe_) {
      const auto response = tok.get_subscribe_response();  // a value: iterate a local, not a temporary's member
      for (const auto code : response.get_reason_codes()) o.granted.push_back(static_cast<int>(code));
    }
    channel->try_send(boost::system::error_code{}, std::move(o));
  }
  void on_failure(const paho::token& tok) override {
    outcome o;
    o.rc = tok.get_return_code();
    channel->try_send(boost::system::error_code{}, std::move(o));
  }
  bool subscribe_;
};

// The message as the executor receives it.
enum class message_kind { document, malformed, other };

}  // namespace

std::string shadow_documents_topic(std::string_view thing, std::string_view shadow) {
  return aws_shadow_topic_prefix(thing, shadow) + "/update/documents";
}

struct aws_shadow_observer::impl {
  impl(asio::any_io_executor ex, aws_shadow_observer_options o) : executor(std::move(ex)), options(std::move(o)) {}
  ~impl() { abort(); }

  // Ends the Paho client now: no callback (message, connection lost, or an operation's
  // listener) runs after this returns — one already running finishes first, while the
  // executor and the listeners' channels still exist — and Paho closes the socket. An
  // operation of this observer still waiting is woken (its channel cancelled), finds no client
  // when it resumes, and ends.
  void abort() noexcept {
    if (!client) return;
    try {
      client->disable_callbacks();
    } catch (const paho::exception&) {
      // Paho refuses while a connect is in progress; destroying the client ends that too.
    }
    client.reset();
    for (auto& l : listeners) l->channel->cancel();
  }

  asio::any_io_executor executor;
  aws_shadow_observer_options options;
  document_handler handler;
  closed_handler on_closed;
  aws_shadow_observer_stats stats;
  std::string last_error;
  // Declared before the client: Paho refers to them until the client is destroyed.
  std::vector<std::unique_ptr<op_listener>> listeners;
  std::unique_ptr<paho::async_client> client;
  paho::connect_options connect_options;

  void on_message(message_kind kind, const std::optional<shadow_document_event>& event) {
    switch (kind) {
      case message_kind::other: ++stats.other; return;
      case message_kind::malformed: ++stats.malformed; return;
      case message_kind::document: break;
    }
    ++stats.documents;
    if (handler) handler(*event);
  }

  // Starts `launch` (a Paho call given the listener) and waits for its listener, at most `limit`.
  asio::awaitable<outcome> run(bool subscribe, std::chrono::milliseconds limit,
                               const std::function<void(paho::iaction_listener&)>& launch) {
    auto& listener = *listeners.emplace_back(std::make_unique<op_listener>(executor, subscribe));
    const auto channel = listener.channel;
    try {
      launch(listener);
    } catch (const paho::exception& e) {
      outcome failed;
      failed.rc = e.get_return_code();
      last_error = e.what();
      co_return failed;
    }
    asio::steady_timer timer(executor, limit);
    timer.async_wait([channel](boost::system::error_code ec) {
      if (ec) return;  // the answer came first
      outcome late;
      late.timed_out = true;
      channel->try_send(boost::system::error_code{}, std::move(late));
    });
    auto [ec, got] = co_await channel->async_receive(asio::as_tuple(asio::use_awaitable));
    timer.cancel();
    if (ec) {
      outcome failed;
      failed.timed_out = true;
      co_return failed;
    }
    co_return got;
  }

  // The connection is not wanted (a failed start): DISCONNECT without a grace period, and
  // wait until Paho has closed it (bounded), so the caller sees it closed.
  asio::awaitable<void> close_now() {
    if (!client || !client->is_connected()) co_return;
    auto& c = *client;
    (void)co_await run(false, std::chrono::seconds(2), [&](paho::iaction_listener& l) { c.disconnect(0, nullptr, l); });
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
  e.received_steady = std::chrono::steady_clock::now();
  return e;
}

boost::system::result<std::unique_ptr<aws_shadow_observer>> aws_shadow_observer::create(
    asio::any_io_executor executor, const aws_shadow_observer_options& options) {
  auto state = std::make_shared<impl>(std::move(executor), options);
  const std::string dial = options.connect_host.empty() ? options.host : options.connect_host;
  // Paho's URI takes an IPv6 literal in brackets.
  const std::string host = dial.find(':') != std::string::npos && !dial.starts_with('[') ? "[" + dial + "]" : dial;
  const std::string uri = std::string(options.use_tls ? "ssl://" : "tcp://") + host + ":" + std::to_string(options.port);

  auto& co = state->connect_options;
  co.set_clean_session(true);
  co.set_keep_alive_interval(std::chrono::seconds(options.keep_alive));
  co.set_connect_timeout(std::chrono::duration_cast<std::chrono::seconds>(options.connect_timeout + std::chrono::milliseconds(999)));
  co.set_automatic_reconnect(false);
  co.set_mqtt_version(MQTTVERSION_3_1_1);
  if (options.use_tls) {
    // The files are loaded once by OpenSSL here, so a missing or unreadable one, or a key that
    // does not match its certificate, is an error of create() as it always was, not a vague
    // connect failure later. Paho then loads them again for its own context.
    auth::tls_client_config tc;
    tc.ca_file = options.ca_file;
    tc.certificate_chain_file = options.certificate_file;
    tc.private_key_file = options.private_key_file;
    tc.alpn_protocols = options.alpn;
    auto ctx = auth::make_tls_client_context(tc);
    if (!ctx) return ctx.error();
    paho::ssl_options ssl;
    if (!options.ca_file.empty()) ssl.set_trust_store(options.ca_file.string());  // else the system's
    if (!options.certificate_file.empty()) ssl.set_key_store(options.certificate_file.string());
    if (!options.private_key_file.empty()) ssl.set_private_key(options.private_key_file.string());
    ssl.set_enable_server_cert_auth(true);
    ssl.set_verify(true);  // the certificate must name the host dialled
    if (!options.alpn.empty()) ssl.set_alpn_protos(options.alpn);
    co.set_ssl(std::move(ssl));
  }
  try {
    state->client = std::make_unique<paho::async_client>(uri, options.client_id, paho::create_options(MQTTVERSION_3_1_1),
                                                         static_cast<paho::iclient_persistence*>(nullptr));
  } catch (const paho::exception& e) {
    state->last_error = e.what();
    return make_error_code(boost::system::errc::invalid_argument);
  }

  // Paho's threads: work is posted, the state held weakly.
  const std::weak_ptr<impl> weak = state;
  const auto ex = state->executor;
  state->client->set_message_callback([weak, ex](paho::const_message_ptr msg) {
    const auto& topic = msg->get_topic();
    const bool documents_topic = topic.starts_with("$aws/things/") && topic.ends_with("/update/documents");
    std::optional<shadow_document_event> event;
    auto kind = message_kind::other;
    if (documents_topic) {
      event = parse_document(topic, msg->get_payload_str());
      kind = event ? message_kind::document : message_kind::malformed;
    }
    asio::post(ex, [weak, kind, event = std::move(event)] {
      if (auto s = weak.lock()) s->on_message(kind, event);
    });
  });
  state->client->set_connection_lost_handler([weak, ex](const std::string&) {
    asio::post(ex, [weak] {
      auto s = weak.lock();
      if (!s || !s->on_closed) return;
      auto handler = s->on_closed;  // it may replace itself
      handler(net::make_error_code(net::net_errc::connection_lost));
    });
  });
  return std::unique_ptr<aws_shadow_observer>(new aws_shadow_observer(std::move(state)));
}

aws_shadow_observer::aws_shadow_observer(std::shared_ptr<impl> state) : impl_(std::move(state)) {}
// The impl may outlive the handle (a coroutine still holds it), but the connection may not:
// Paho's threads would complete operations into channels whose executor is being destroyed.
aws_shadow_observer::~aws_shadow_observer() { impl_->abort(); }

void aws_shadow_observer::set_handler(document_handler handler) { impl_->handler = std::move(handler); }
void aws_shadow_observer::set_closed_handler(closed_handler handler) { impl_->on_closed = std::move(handler); }

asio::awaitable<boost::system::error_code> aws_shadow_observer::async_start() {
  const auto self = impl_;  // the handle may be destroyed while this runs
  auto& m = *self;
  using boost::system::errc::make_error_code;
  namespace errc = boost::system::errc;
  m.last_error.clear();
  co_await m.close_now();  // a start again: afresh
  if (!m.client) co_return make_error_code(errc::operation_canceled);  // aborted meanwhile

  // Paho bounds the connect itself; our timer is the backstop.
  const auto limit = m.options.connect_timeout + std::chrono::seconds(2);
  auto& client = *m.client;
  const auto& co = m.connect_options;
  const auto connected = co_await m.run(false, limit, [&](paho::iaction_listener& l) { client.connect(co, nullptr, l); });
  if (!m.client) co_return make_error_code(errc::operation_canceled);  // aborted meanwhile
  if (!connected.ok) {
    if (connected.timed_out) {
      if (m.last_error.empty()) m.last_error = "no CONNACK within the connect timeout";
      co_await m.close_now();
      co_return make_error_code(errc::timed_out);
    }
    if (m.last_error.empty()) {
      m.last_error = paho::exception::printable_error(connected.rc, paho::ReasonCode::SUCCESS, paho::exception::error_str(connected.rc));
    }
    if (connected.rc >= 1 && connected.rc <= 5) {
      co_return net::connack_error(static_cast<mqtt::connect_return_code>(connected.rc));
    }
    co_return make_error_code(errc::connection_refused);
  }

  std::vector<std::string> filters = m.options.filters;
  if (filters.empty()) filters = {std::string(filter_classic), std::string(filter_named)};
  // QoS 0: at QoS 1 every document waits for Paho's PUBACK, and a broker's window per
  // subscriber (the local hub: 16 in flight, 1,024 queued) overflows in a burst of writes —
  // 1,000 AWS things at 500 writes/s lost 7–12 % of the documents; at QoS 0 none (22,264 of
  // 22,264). A lost connection is reported, and the devices' path takes over then.
  // At most 8 filters a SUBSCRIBE (AWS IoT's quota), one after the other.
  for (std::size_t first = 0; first < filters.size(); first += max_filters_per_subscribe) {
    const auto last = std::min(filters.size(), first + max_filters_per_subscribe);
    const auto batch = paho::string_collection::create(std::vector<std::string>(filters.begin() + static_cast<std::ptrdiff_t>(first),
                                                                                filters.begin() + static_cast<std::ptrdiff_t>(last)));
    const paho::iasync_client::qos_collection qos(last - first, 0);
    const auto subscribed =
        co_await m.run(true, m.options.connect_timeout, [&](paho::iaction_listener& l) { client.subscribe(batch, qos, nullptr, l); });
    if (!m.client) co_return make_error_code(errc::operation_canceled);  // aborted meanwhile
    const bool refused = !subscribed.ok || std::any_of(subscribed.granted.begin(), subscribed.granted.end(), [](int c) { return c >= 0x80; });
    if (subscribed.timed_out || refused) {
      co_await m.close_now();
      if (subscribed.timed_out) {
        m.last_error = "no SUBACK within the connect timeout";
        co_return make_error_code(errc::timed_out);
      }
      // A refused filter: for MQTT 3.1.1 Paho reports a lone 0x80 as a failure, several as codes.
      m.last_error = "the broker refused the subscription to " + filters[first] +
                     (last - first > 1 ? " and " + std::to_string(last - first - 1) + " more" : std::string());
      co_return make_error_code(errc::permission_denied);
    }
  }
  co_return boost::system::error_code{};
}

asio::awaitable<void> aws_shadow_observer::async_stop() {
  const auto self = impl_;  // the handle may be destroyed while this runs
  auto& m = *self;
  if (!m.client || !m.client->is_connected()) co_return;
  auto& client = *m.client;
  (void)co_await m.run(false, std::chrono::seconds(5), [&](paho::iaction_listener& l) {
    // 1 s for Paho to finish what it has in flight (it sends nothing: nothing to finish).
    client.disconnect(1000, nullptr, l);
  });
}

bool aws_shadow_observer::connected() const noexcept { return impl_->client && impl_->client->is_connected(); }
const aws_shadow_observer_stats& aws_shadow_observer::stats() const noexcept { return impl_->stats; }
const std::string& aws_shadow_observer::last_error() const noexcept { return impl_->last_error; }

}  // namespace twinfleet::backends
