// One simulated device's AWS IoT Device Shadow session over MQTT 3.1.1 (PROTOCOLS.md B1-B9,
// C2, E): classic and named shadows, subscribe before publish, requests correlated by a
// clientToken the session generates, deltas and accepted/documents messages to handlers.
// Pure protocol: ordering by version (reconcile.hpp aws_delta_filter), 409 → GET and retry,
// and what to report are the device coroutine's business.
//
//   backends::aws_device_session s(co_await asio::this_coro::executor, config);
//   s.set_delta_handler([&](backends::shadow_delta& d) { ... });
//   if (auto ec = co_await s.async_connect(endpoint, transport, 10s)) ...;
//   if (auto ec = co_await s.async_subscribe_shadow("")) ...;       // classic shadow
//   auto doc = co_await s.async_update("", state, std::nullopt, 5s);  // /update/accepted
//
// Authentication is the transport's: mutual TLS with the thing's certificate in the TLS
// context (ALPN "x-amzn-mqtt-ca" in client_transport::alpn for port 443), or plain TCP
// against a local hub in open mode.
//
// Threading and request completion: as azure_device_session.hpp says. A request completes
// with the accepted document, device_errc::rejected with the error document's code and
// message (409 "Version conflict", 404, 400, 429...), device_errc::timeout,
// net_errc::connection_lost, device_errc::not_connected or not_subscribed at once (the
// shadow's response topics must be subscribed first: B2, C2.4), or operation_aborted.
#pragma once

#include <twinfleet/backends/device_types.hpp>
#include <twinfleet/net/client.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace twinfleet::backends {

struct aws_device_config {
  std::string thing_name;
  std::string client_id;       // empty: the thing name
  std::string username;        // optional (the SDKs send "?SDK=..."); empty: no username
  std::uint16_t keep_alive = 300;  // seconds (SDK v1's default, E); the broker takes 30..1200
  bool clean_session = true;
  // QoS of the shadow subscriptions (the hub delivers responses and deltas at it) and of the
  // request publishes; SDK v2 uses 1 for both (E).
  mqtt::qos subscribe_qos = mqtt::qos::at_least_once;
  mqtt::qos request_qos = mqtt::qos::at_least_once;
  // Also subscribe to /update/documents (the documents handler sees them).
  bool subscribe_documents = false;
};

enum class shadow_operation : std::uint8_t { get, update, remove };
enum class shadow_message_kind : std::uint8_t { accepted, rejected, documents };

// "$aws/things/{thing}/shadow" or "$aws/things/{thing}/shadow/name/{shadow}" (B1).
[[nodiscard]] std::string aws_shadow_topic_prefix(std::string_view thing, std::string_view shadow);

// A shadow response topic taken apart: `$aws/things/T/shadow[/name/S]/{get|update|delete}/
// {accepted|rejected|delta|documents}`. Nothing for any other topic.
struct aws_shadow_topic {
  std::string_view thing;
  std::string_view shadow;  // empty: classic
  shadow_operation operation = shadow_operation::get;
  std::string_view suffix;  // "accepted", "rejected", "delta", "documents"
};
[[nodiscard]] std::optional<aws_shadow_topic> parse_aws_shadow_topic(std::string_view topic);

// An accepted, rejected or documents message as the observer hook sees it. Views and the
// document are valid during the call only.
struct shadow_message {
  std::string_view shadow;  // "" classic
  shadow_operation operation = shadow_operation::update;  // documents: update
  shadow_message_kind kind = shadow_message_kind::accepted;
  const json::object* document = nullptr;  // the parsed message
  bool own = false;  // it answers one of this session's requests (its clientToken)
  steady_time received{};
};

class aws_device_session {
 public:
  // Handlers run on the session's executor inside the connection's reader; move what you keep
  // out of the argument; do not block.
  using delta_handler = std::function<void(shadow_delta&)>;
  // Every accepted, rejected and documents message on the subscribed shadows, this session's
  // answers included (called before the request completes), others' too (REST updates, other
  // clients of the thing).
  using message_handler = std::function<void(const shadow_message&)>;
  // As azure_device_session::closed_handler.
  using closed_handler = std::function<void(boost::system::error_code)>;
  // Every message on a topic that is not a shadow topic (those of async_subscribe_topic(),
  // e.g. twinfleet's command topics, docs/PROFILES.md); views valid during the call only.
  using topic_handler = std::function<void(const mqtt::publish_packet&)>;

  aws_device_session(boost::asio::any_io_executor executor, aws_device_config config,
                     const net::client_options& options = {});
  // Drops the handlers, then aborts a live connection: no handler runs once the session is
  // gone, so a handler may refer to what owns the session without keeping it alive.
  ~aws_device_session();
  aws_device_session(aws_device_session&&) noexcept;
  aws_device_session& operator=(aws_device_session&&) noexcept;
  aws_device_session(const aws_device_session&) = delete;
  aws_device_session& operator=(const aws_device_session&) = delete;

  void set_delta_handler(delta_handler handler);
  void set_message_handler(message_handler handler);
  void set_closed_handler(closed_handler handler);
  void set_topic_handler(topic_handler handler);

  // CONNECT with the client id (and username when set); no password. Subscriptions start
  // empty. Errors: those of net::client_connection::async_connect (connack_errc::not_authorized
  // without a valid certificate on a strict hub, ...).
  boost::asio::awaitable<boost::system::error_code> async_connect(const boost::asio::ip::tcp::endpoint& server,
                                                                  const net::client_transport& transport,
                                                                  std::chrono::milliseconds timeout);
  boost::asio::awaitable<boost::system::error_code> async_connect(std::string_view host, std::uint16_t port,
                                                                  const net::client_transport& transport,
                                                                  std::chrono::milliseconds timeout);

  // Subscribes, in one SUBSCRIBE, to get/accepted, get/rejected, update/accepted,
  // update/rejected, update/delta, delete/accepted, delete/rejected (and update/documents when
  // configured) of `shadow` ("" for classic), and waits for the SUBACK. Requests on a shadow
  // need this first. Errors: device_errc::subscribe_refused, the connection's errors.
  boost::asio::awaitable<boost::system::error_code> async_subscribe_shadow(std::string_view shadow);

  // Subscribes to one topic filter outside the shadows (subscribe_qos) and waits for the
  // SUBACK; its messages go to the topic handler, and async_reconnect() subscribes it again.
  // Errors: device_errc::subscribe_refused, the connection's errors.
  boost::asio::awaitable<boost::system::error_code> async_subscribe_topic(std::string_view filter);

  // Publishes {"state": state, "clientToken": t[, "version": v]} to …/update and completes
  // with the /update/accepted document (version, state echo, metadata, clientToken).
  // `state` is the request's state object ({"desired": …, "reported": …}). With `version`
  // the update is conditional: 409 "Version conflict" when the shadow's differs.
  boost::asio::awaitable<device_result<json::object>> async_update(std::string_view shadow, const json::object& state,
                                                                   std::optional<std::int64_t> version,
                                                                   std::chrono::milliseconds timeout);
  // /get: completes with the /get/accepted document (state.desired/reported/delta, version).
  // 404 when the shadow does not exist.
  boost::asio::awaitable<device_result<json::object>> async_get(std::string_view shadow,
                                                                std::chrono::milliseconds timeout);
  // /delete: completes with the /delete/accepted document ({version, timestamp, clientToken}).
  // With `version`: 409 when it differs (E4).
  boost::asio::awaitable<device_result<json::object>> async_delete(std::string_view shadow,
                                                                   std::optional<std::int64_t> version,
                                                                   std::chrono::milliseconds timeout);

  // Reconnects (DISCONNECT when connected, CONNECT) and subscribes the shadows (then the
  // other topics) subscribed before again. The closed handler is not called for this disconnect. Deltas sent while away
  // are lost with a clean session (C2.6): the caller should GET afterwards.
  boost::asio::awaitable<boost::system::error_code> async_reconnect(const boost::asio::ip::tcp::endpoint& server,
                                                                    const net::client_transport& transport,
                                                                    std::chrono::milliseconds timeout);
  // As azure_device_session::async_disconnect() and abort().
  boost::asio::awaitable<boost::system::error_code> async_disconnect();
  void abort();

  [[nodiscard]] bool connected() const noexcept;
  // The shadows subscribed on the current connection ("" classic), in subscription order.
  [[nodiscard]] const std::vector<std::string>& subscribed_shadows() const noexcept;
  // The other topic filters subscribed on the current connection, in subscription order.
  [[nodiscard]] const std::vector<std::string>& subscribed_topics() const noexcept;
  [[nodiscard]] const aws_device_config& config() const noexcept;
  [[nodiscard]] net::client_connection& connection() noexcept;
  [[nodiscard]] std::size_t pending_requests() const noexcept;

  struct impl;

 private:
  std::shared_ptr<impl> impl_;
};

}  // namespace twinfleet::backends
