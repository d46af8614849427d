// The client side: one MQTT connection of a simulated device, over TCP, TLS, WebSocket or
// WebSocket over TLS, as C++20 coroutines.
//
//   net::client_connection c(co_await asio::this_coro::executor);
//   c.set_message_handler([&](const mqtt::publish_packet& p) { ... });
//   mqtt::connect_packet hello{.keep_alive = 60, .client_id = "thermo-00001"};
//   if (auto ec = co_await c.async_connect(endpoint, transport, hello, 10s)) ...;
//   auto codes = co_await c.async_subscribe(subscriptions);
//   auto ec = co_await c.async_publish("devices/thermo-00001/messages/events/", json, mqtt::qos::at_least_once);
//   co_await c.async_disconnect();
//
// Every operation is a coroutine on the connection's executor: call and co_await it from a
// coroutine running there (the device's io_context thread or strand). Arguments passed by
// reference or view must stay valid until the co_await completes (as they do when the call is
// awaited directly). Nothing here is thread-safe.
//
// Operations that wait for the broker (connect, QoS 1 publish, subscribe, unsubscribe,
// disconnect, wait_closed) complete exactly once: with the answer, or with an error when the
// connection ends first (net_errc::connection_lost), or with operation_aborted when the
// awaiting coroutine is cancelled (for example by `op || timer` with awaitable_operators). A
// cancelled wait does not take back what was sent: a QoS 1 publish stays in the session's queue
// and may still be delivered (after a reconnect too, without clean session). Cancelling
// async_connect aborts the connection attempt.
//
// Incoming messages go to the message handler (a callback rather than a channel: a
// std::function is the cheapest per connection, and a device reacts to a message in place).
// Keep-alive PINGREQs are sent automatically from the CONNECT's keep_alive.
//
// Memory: the handle is one shared_ptr; measured, ~2 KB of heap per connected idle plain TCP
// client (TLS: ~97 KB, see server.hpp), a few hundred bytes between connections (the session
// and its queued QoS 1 publishes stay, the socket and buffers do not).
#pragma once

#include <twinfleet/mqtt/packet.hpp>
#include <twinfleet/mqtt/session.hpp>
#include <twinfleet/net/byte_stream.hpp>
#include <twinfleet/net/error.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace boost::asio::ssl {
class context;
}

namespace twinfleet::net {

// How to reach the broker. Read during async_connect() only; one value may serve many
// connections.
//
// Deliberately not an aggregate (hence no designated initializers): GCC 12 destroys an
// aggregate-initialized temporary with non-trivial members wrongly when it appears in a
// co_await expression (`co_await c.async_connect(ep, {}, hello, 5s)` frees garbage), while a
// value-initialized one is sound.
struct client_transport {
  client_transport() = default;

  transport_kind kind = transport_kind::tcp;
  // For tls and wss: the client context (trust anchors, client certificate); shared, and must
  // outlive the connect.
  boost::asio::ssl::context* tls = nullptr;
  // TLS: the name sent as SNI (not for an IP address) and checked against the server's
  // certificate. Empty: the host given to async_connect, or the endpoint's address.
  std::string server_name;
  // TLS: the ALPN protocols to offer (e.g. {"x-amzn-mqtt-ca"} for AWS IoT on port 443);
  // empty: the context's list.
  std::vector<std::string> alpn;
  // WS and WSS: the request target, path and optional query (an AWS SigV4 presigned URL puts
  // the signature there), e.g. "/mqtt?X-Amz-Algorithm=..." or "/$iothub/websocket".
  std::string ws_target = "/mqtt";
  // WS and WSS: the Host header. Empty: host:port as given to async_connect, or the endpoint.
  std::string ws_host;
  // WS and WSS: offered in Sec-WebSocket-Protocol; empty: "mqtt". (AWS IoT SDK v1 clients
  // offer "mqttv3.1".)
  std::vector<std::string> ws_subprotocols;
  // The source address to connect from (bound before connecting to an address, not a host
  // name); unset: the kernel's choice. Loopback fleets spread over 127.0.0.x with it.
  std::optional<boost::asio::ip::address> local_address;
};

struct client_options {
  // Copied into the session: QoS 1 window and queue, max packet size, CONNACK and PINGRESP
  // timeouts.
  mqtt::session_options session;
  // The read buffer a connection starts with and returns to after large packets. Every idle
  // connection holds one: a device's packets are mostly small (twin acknowledgements ~60
  // bytes, PINGRESP 2, notifications 100–200), and a larger one grows it for the next read.
  std::uint32_t read_buffer_size = 256;
  // The longest async_disconnect() (and any graceful close) waits for the broker to close its
  // side before the socket is closed regardless.
  std::chrono::milliseconds close_timeout{5'000};
};

namespace detail {
class client_impl;
}

class client_connection {
 public:
  // Called for every PUBLISH received (QoS 1 is acknowledged already), on the connection's
  // executor, inside the connection's reader: the packet's views are valid during the call
  // only. It may call publish(), abort() and start coroutines; it must not block.
  using message_handler = std::function<void(const mqtt::publish_packet&)>;
  // Called once when a connection that async_connect() established ends, with the reason (see
  // async_wait_closed()); not for a failed connect, whose error async_connect() returns.
  using closed_handler = std::function<void(boost::system::error_code)>;

  explicit client_connection(boost::asio::any_io_executor executor, const client_options& options = {});
  // Aborts a live connection (no DISCONNECT: the broker publishes the will); pending
  // operations complete with connection_lost (connect: aborted).
  ~client_connection();
  client_connection(client_connection&&) noexcept;
  client_connection& operator=(client_connection&&) noexcept;
  client_connection(const client_connection&) = delete;
  client_connection& operator=(const client_connection&) = delete;

  void set_message_handler(message_handler handler);
  void set_closed_handler(closed_handler handler);

  // Connects: TCP (TCP_NODELAY set), the TLS and/or WebSocket handshake, CONNECT, and CONNACK;
  // `timeout` bounds all of it. Completes with success once CONNACK 0 arrived; afterwards the
  // connection runs until async_disconnect(), abort(), or its loss (see async_wait_closed()).
  // Also for a reconnect after a loss: the session keeps its unacknowledged QoS 1 publishes
  // when `connect.clean_session` is false.
  // Errors: mqtt_errc::already_connected (connecting or connected), net_errc::connect_timeout,
  // net_errc::missing_tls_context, connack_errc (CONNACK refused: compare with
  // connack_errc::not_authorized, ...), net_errc::connection_closed, net_errc::aborted,
  // operation_aborted (cancelled), resolver, socket, TLS and WebSocket errors, encode errors
  // of the CONNECT (mqtt_errc::bad_utf8, ...), and the session's (mqtt_errc::connect_timeout,
  // protocol_violation). When it fails the connection is fully torn down: a retry may follow
  // at once.
  boost::asio::awaitable<boost::system::error_code> async_connect(const boost::asio::ip::tcp::endpoint& server,
                                                                  const client_transport& transport,
                                                                  const mqtt::connect_packet& connect,
                                                                  std::chrono::milliseconds timeout);
  // The same for a host name or address (resolved first; the resolution counts in `timeout`).
  boost::asio::awaitable<boost::system::error_code> async_connect(std::string_view host, std::uint16_t port,
                                                                  const client_transport& transport,
                                                                  const mqtt::connect_packet& connect,
                                                                  std::chrono::milliseconds timeout);

  // Publishes. QoS 0 completes once the packet has been written to the transport, QoS 1 once
  // its PUBACK has arrived (packets beyond the session's in-flight window wait in its queue).
  // Topic and payload are copied at the call.
  // Errors: mqtt_errc::not_connected, queue_full, qos_not_supported (QoS 2), bad_topic, ...;
  // net_errc::connection_lost; operation_aborted.
  boost::asio::awaitable<boost::system::error_code> async_publish(std::string_view topic, std::string_view payload,
                                                                  mqtt::qos qos, bool retain = false);

  // Queues a publish and returns at once (for the message handler, and for fire-and-forget
  // telemetry). Errors: as async_publish()'s immediate ones.
  boost::system::error_code publish(std::string_view topic, std::string_view payload, mqtt::qos qos,
                                    bool retain = false);

  // Subscribes; completes with the SUBACK's codes, one per subscription in order (failure is
  // suback_code::failure, not an error). Errors: mqtt_errc::not_connected,
  // qos_not_supported, bad_topic_filter, ...; net_errc::connection_lost; operation_aborted.
  boost::asio::awaitable<mqtt::result<std::vector<mqtt::suback_code>>> async_subscribe(
      std::span<const mqtt::subscription> subscriptions);

  // Unsubscribes; completes at UNSUBACK. Errors: as async_subscribe().
  boost::asio::awaitable<boost::system::error_code> async_unsubscribe(std::span<const std::string_view> filters);

  // Sends DISCONNECT and completes once the connection has ended (the broker closes it, or
  // after client_options::close_timeout). Success: the error code is empty.
  // Errors: mqtt_errc::not_connected; operation_aborted (the disconnect still goes on).
  boost::asio::awaitable<boost::system::error_code> async_disconnect();

  // Completes when the current connection ends, with its reason: empty after
  // async_disconnect(); net_errc::connection_closed (the broker closed it), net_errc::aborted,
  // mqtt_errc::keep_alive_timeout (no PINGRESP), mqtt_errc::protocol_violation, a transport
  // error... Immediately mqtt_errc::not_connected when there is no connection (also while a
  // connect is in progress). Cancellable (operation_aborted).
  boost::asio::awaitable<boost::system::error_code> async_wait_closed();

  // Closes the transport at once (no DISCONNECT); the reason is net_errc::aborted.
  // Idempotent; also aborts a connect in progress.
  void abort();

  // connected: CONNACK 0 received and not closing.
  [[nodiscard]] bool connected() const noexcept;
  [[nodiscard]] const mqtt::session& session() const noexcept;
  // The transport while a connection is open, else nullptr.
  [[nodiscard]] byte_stream* stream() noexcept;
  [[nodiscard]] boost::asio::any_io_executor executor() const noexcept;

 private:
  std::shared_ptr<detail::client_impl> impl_;
};

}  // namespace twinfleet::net
