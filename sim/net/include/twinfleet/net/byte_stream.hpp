// The transport boundary: one abstract byte stream that plain TCP, TLS, WebSocket over TCP and
// WebSocket over TLS implement, so that the MQTT connections (server.hpp, client.hpp) are
// written once and the heavy template instantiations (asio::ssl::stream, beast::websocket)
// stay in one .cpp file per transport.
//
// A stream is created, connected and handshaken by the listener or the client; the application
// sees it through server_connection::stream() and client_connection::stream(), for the socket
// (endpoints, options) and the TLS and WebSocket details.
//
// Not thread-safe: use a stream from its executor only.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <cstdint>
#include <string_view>

struct ssl_st;  // OpenSSL's SSL, so that this header needs no OpenSSL include

namespace twinfleet::net {

// How MQTT is carried: plain TCP (1883), TLS (8883), WebSocket (80) or WebSocket over TLS (443).
enum class transport_kind : std::uint8_t { tcp, tls, ws, wss };

// "tcp", "tls", "ws", "wss".
[[nodiscard]] std::string_view to_string(transport_kind kind) noexcept;

[[nodiscard]] constexpr bool uses_tls(transport_kind kind) noexcept {
  return kind == transport_kind::tls || kind == transport_kind::wss;
}
[[nodiscard]] constexpr bool uses_websocket(transport_kind kind) noexcept {
  return kind == transport_kind::ws || kind == transport_kind::wss;
}

// What the application sees of a connection's transport: the socket, TLS and WebSocket details.
// The connections drive the I/O themselves (through a private interface whose operations
// complete into callbacks of one concrete type: measured, a coroutine per read and per loop
// cost ~2.8 KB per idle connection, three times what the rest of the connection needs).
class byte_stream {
 public:
  virtual ~byte_stream() = default;
  byte_stream(const byte_stream&) = delete;
  byte_stream& operator=(const byte_stream&) = delete;

  [[nodiscard]] virtual transport_kind kind() const noexcept = 0;
  [[nodiscard]] virtual boost::asio::any_io_executor executor() noexcept = 0;

  // Closes the socket at once; pending operations complete with operation_aborted. Idempotent.
  virtual void close() noexcept = 0;

  // The TCP socket underneath (endpoints, TCP_NODELAY, the file descriptor).
  [[nodiscard]] virtual boost::asio::ip::tcp::socket& socket() noexcept = 0;

  // TLS and WSS: the OpenSSL connection, for auth::get_peer_certificate() and
  // auth::negotiated_alpn(); nullptr for tcp and ws.
  [[nodiscard]] virtual ssl_st* tls_handle() noexcept { return nullptr; }

  // WS and WSS on the server side: the request target of the HTTP upgrade, path and query as
  // received ("/mqtt?X-Amz-Algorithm=..."). Empty otherwise.
  [[nodiscard]] virtual std::string_view request_target() const noexcept { return {}; }

 protected:
  byte_stream() = default;
};

}  // namespace twinfleet::net
