// The server side of MQTT over TCP, TLS, WebSocket and WebSocket over TLS: a listener that
// accepts connections and drives one mqtt::session (server role) per connection, handing what
// the clients do to the application through a server_handler.
//
//   struct my_hub : net::server_handler { ... };
//   my_hub hub;
//   net::mqtt_listener listener(io.get_executor(), {.endpoint = {addr, 8883},
//                               .transport = net::transport_kind::tls, .tls = &tls_context}, hub);
//   if (auto ec = listener.listen()) ...;            // bound; listener.local_endpoint()
//   ...
//   listener.stop();                                 // graceful
//   co_await listener.async_wait_stopped();          // every on_closed() has run
//
// Threading: by default everything runs on the listener's executor (one io_context, one
// thread). With listener_options::connection_executor, connections are spread over other
// executors (one io_context per thread); each connection and its handler calls then stay on
// that connection's executor, and the handler must be safe to call from all of them.
// A server_connection is not thread-safe: call it on its executor() only.
//
// Memory, measured with 5,000 idle connections: ~1.8 KB of heap per plain TCP connection (the
// session, a 512-byte read buffer, the socket, one pending read and one timer wait; no
// coroutine stays suspended per connection). TLS costs ~97 KB: asio::ssl::stream keeps two
// 17 KB record buffers and a 2 x 17 KB BIO pair (~70 KB), OpenSSL ~19 KB with its record
// buffers released while idle. WebSocket adds Beast's stream (~2 KB).
#pragma once

#include <twinfleet/mqtt/packet.hpp>
#include <twinfleet/mqtt/session.hpp>
#include <twinfleet/net/byte_stream.hpp>
#include <twinfleet/net/error.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/socket_base.hpp>

#include <any>
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
namespace twinfleet::auth {
struct peer_certificate;  // <twinfleet/auth/tls.hpp>
}

namespace twinfleet::net {

class server_connection;

// What the application does with its clients. One handler serves a whole listener; every call
// is made on the connection's executor, never concurrently for one connection. Packet views
// are valid during the call only. The handler must outlive the listener's connections (until
// async_wait_stopped() has completed).
//
// An exception escaping a handler call is a bug: it is written to stderr, counted
// (listener_stats::handler_exceptions, unexpected_exception_count()) and the connection is
// closed with net_errc::internal_error.
class server_handler {
 public:
  virtual ~server_handler() = default;

  // A client sent CONNECT (the session has checked it). The handler must call conn.accept()
  // or conn.refuse(), now or later (for example after an asynchronous credential check); until
  // then the connection reads nothing more, and the session's connect_timeout still runs.
  virtual void on_connect(server_connection& conn, const mqtt::connect_packet& packet) = 0;

  // A SUBSCRIBE: return one code per subscription, in order (the granted QoS or failure).
  // Returning another count closes the connection (mqtt_errc::bad_return_code).
  virtual std::vector<mqtt::suback_code> on_subscribe(server_connection& conn,
                                                      std::span<const mqtt::subscription> subscriptions) = 0;

  // An UNSUBSCRIBE; the UNSUBACK has been queued already.
  virtual void on_unsubscribe(server_connection& conn, std::span<const std::string_view> filters) = 0;

  // A PUBLISH. QoS 1 is acknowledged already; QoS 2 arrives unanswered (the handler may
  // conn.close() it the Azure way or ignore it the AWS way).
  virtual void on_publish(server_connection& conn, const mqtt::publish_packet& packet) = 0;

  // The client acknowledged our QoS 1 publish with this packet id.
  virtual void on_puback(server_connection& /*conn*/, std::uint16_t /*packet_id*/) {}

  // The connection has ended; called exactly once for every connection whose on_connect()
  // was called, last. `reason`: empty after a client's DISCONNECT; mqtt_errc from the session
  // (keep_alive_timeout, protocol_violation, connection_refused after refuse(),
  // application_close after close(), ...); net_errc::connection_closed when the client closed
  // without DISCONNECT, net_errc::aborted after abort(), net_errc::listener_stopped after
  // mqtt_listener::stop(); or a transport error (connection_reset, ...).
  // The connection object stays valid during the call; publish() no longer works.
  virtual void on_closed(server_connection& conn, boost::system::error_code reason) = 0;
};

// One client connection. Created by the listener, handed to the handler by reference; valid
// until on_closed() has returned, longer for holders of shared().
class server_connection {
 public:
  server_connection(const server_connection&) = delete;
  server_connection& operator=(const server_connection&) = delete;

  // Answers the pending CONNECT with CONNACK 0 (see mqtt::accept_params). Errors:
  // mqtt_errc::no_pending_connect (no CONNECT awaiting a decision, or already closing).
  boost::system::error_code accept(const mqtt::accept_params& params = {});

  // Answers the pending CONNECT with a non-zero CONNACK code and closes the connection once
  // it is sent. Errors: no_pending_connect, bad_return_code for `accepted`.
  boost::system::error_code refuse(mqtt::connect_return_code code);

  // Queues a PUBLISH to the client (QoS 0 or 1; see mqtt::session::publish for the in-flight
  // window and the queue). The packet id for QoS 1 (0 for QoS 0); on_puback() reports the
  // acknowledgement. Returns at once; the connection's writer sends it. Topic and payload are
  // copied. Errors: those of mqtt::session::publish (not_connected before accept() or once
  // closing, queue_full, qos_not_supported, bad_topic, ...).
  mqtt::result<std::uint16_t> publish(std::string_view topic, std::string_view payload, mqtt::qos qos,
                                      bool retain = false);

  // Graceful close: what is queued is still sent, then the transport is shut down and closed
  // (bounded by listener_options::close_timeout). on_closed() follows with application_close.
  // During a TLS or WebSocket handshake it closes at once. Idempotent.
  void close();

  // Closes the transport at once, dropping what is queued; on_closed() follows with
  // net_errc::aborted. Idempotent.
  void abort();

  // A number unique within the listener, from 1.
  [[nodiscard]] std::uint64_t id() const noexcept;
  [[nodiscard]] transport_kind transport() const noexcept;
  [[nodiscard]] const boost::asio::ip::tcp::endpoint& remote_endpoint() const noexcept;
  // The client's certificate (TLS and WSS), as auth::get_peer_certificate() sees it; nullopt
  // when the client sent none or the transport has no TLS. Include <twinfleet/auth/tls.hpp>.
  [[nodiscard]] std::optional<auth::peer_certificate> peer_certificate() const;
  // The ALPN protocol settled on (TLS and WSS), or empty.
  [[nodiscard]] std::string alpn() const;
  // WS and WSS: the HTTP upgrade's request target, path and query as received; else empty.
  [[nodiscard]] std::string_view ws_request_target() const noexcept;
  // The transport (socket options, endpoints), or nullptr once the connection has ended.
  [[nodiscard]] byte_stream* stream() noexcept;
  // The MQTT session (state, keep-alive in force, QoS 1 in flight). Set from the moment the
  // transport's handshake completed.
  [[nodiscard]] const mqtt::session* session() const noexcept;
  [[nodiscard]] boost::asio::any_io_executor executor() const noexcept;

  // The application's per-connection state (the hub's device record, ...). Empty at first;
  // destroyed with the connection object.
  [[nodiscard]] std::any& user_data() noexcept;

  // Shares ownership of this object (not of the connection: it still ends as it would), for
  // code that publishes to it later; publish() then fails with not_connected.
  [[nodiscard]] std::shared_ptr<server_connection> shared();

 protected:
  server_connection() = default;
  ~server_connection() = default;
};

struct listener_options {
  // Where to listen; port 0 picks an ephemeral port (see mqtt_listener::local_endpoint()).
  boost::asio::ip::tcp::endpoint endpoint{boost::asio::ip::address_v4::loopback(), 0};
  transport_kind transport = transport_kind::tcp;
  // For tls and wss: shared by every connection; must outlive the listener's connections.
  boost::asio::ssl::context* tls = nullptr;
  // For ws and wss: the path served (the request target's part before '?'), e.g. "/mqtt" (AWS)
  // or "/$iothub/websocket" (Azure). Empty: any path. Other paths are answered 404.
  std::string ws_path = "/mqtt";
  // The longest a TLS and/or WebSocket handshake may take from the TCP accept.
  std::chrono::milliseconds handshake_timeout{10'000};
  // The longest a graceful close may take (flushing, WebSocket close handshake, waiting for the
  // client to close its side) before the socket is closed regardless.
  std::chrono::milliseconds close_timeout{5'000};
  // Copied into each connection's session (max packet size, QoS 1 window, CONNECT timeout,
  // keep-alive factor, ...).
  mqtt::session_options session;
  // The read buffer a connection starts with and returns to after large packets.
  std::uint32_t read_buffer_size = 512;
  int backlog = boost::asio::socket_base::max_listen_connections;
  // Picks the executor of each accepted connection (round-robin over io_contexts, ...). Empty:
  // the listener's executor. Called on the listener's executor.
  std::function<boost::asio::any_io_executor()> connection_executor;
};

struct listener_stats {
  std::uint64_t accepted = 0;            // TCP connections accepted
  std::uint64_t active = 0;              // connection objects alive (handshaking included)
  std::uint64_t handshake_failures = 0;  // TLS or WebSocket handshakes that failed or timed out
  std::uint64_t handshake_timeouts = 0;  // of which timed out
  std::uint64_t accept_errors = 0;       // accept() failures (EMFILE, ...)
  std::uint64_t handler_exceptions = 0;  // exceptions escaped from the handler
};

namespace detail {
struct listener_state;
}

class mqtt_listener {
 public:
  // Does not listen yet (see listen()). `handler` must outlive every connection.
  mqtt_listener(boost::asio::any_io_executor executor, listener_options options, server_handler& handler);
  // Stops (see stop()) without waiting: connections end later on their executors, and still
  // call the handler. Prefer stop() and async_wait_stopped() first.
  ~mqtt_listener();
  mqtt_listener(const mqtt_listener&) = delete;
  mqtt_listener& operator=(const mqtt_listener&) = delete;

  // Opens, binds and listens, then accepts on the listener's executor. Call once, on the
  // listener's executor or before the io_context runs. Errors: net_errc::missing_tls_context,
  // the system's (address_in_use, access_denied, ...).
  boost::system::error_code listen();

  // The bound address and port (the ephemeral port chosen for port 0); unspecified before
  // listen().
  [[nodiscard]] boost::asio::ip::tcp::endpoint local_endpoint() const;

  // Stops accepting and closes every connection gracefully (their on_closed() reason is
  // net_errc::listener_stopped). Returns at once; thread-safe; idempotent.
  void stop();

  // Completes once stop() was called, the accept loop has ended and every connection has
  // finished (its on_closed() has returned). Completes on the awaiting coroutine's executor.
  // Not cancellable (bound it with a timer if the connections' executors may not run).
  boost::asio::awaitable<void> async_wait_stopped();

  // Thread-safe snapshots.
  [[nodiscard]] listener_stats stats() const;
  [[nodiscard]] const listener_options& options() const noexcept;

 private:
  std::shared_ptr<detail::listener_state> state_;
};

}  // namespace twinfleet::net
