// Private to sim/net: the transports behind byte_stream, with their handshakes. Each transport
// lives in its own .cpp file (tcp_stream.cpp, tls_stream.cpp, ws_stream.cpp, wss_stream.cpp)
// so that asio::ssl::stream and beast::websocket are instantiated once, in parallel builds.
#pragma once

#include <twinfleet/net/byte_stream.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/error.hpp>
#include <boost/system/error_code.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

namespace boost::asio::ssl {
class context;
}

namespace twinfleet::net::detail {

namespace asio = boost::asio;
using boost::system::error_code;
using tcp = asio::ip::tcp;

// What the server side of a handshake checks and answers.
struct server_handshake {
  std::string_view ws_path;  // empty: any path is served
  std::chrono::milliseconds ws_timeout{10'000};  // Beast's own bound on the closing handshake
};

// What a client sends in its handshakes.
struct client_handshake {
  std::string_view server_name;  // TLS: SNI and the name the certificate must match; may be empty
  std::span<const std::string> alpn;  // TLS: overrides the context's list when not empty
  std::string_view ws_host;      // the Host header
  std::string_view ws_target;    // path and query
  std::span<const std::string> ws_subprotocols;
  std::chrono::milliseconds ws_timeout{10'000};
};

// What a stream operation completes into: the connection, one object per connection.
enum class io_event : std::uint8_t { read, readable, write, shutdown };

class io_target {
 public:
  virtual void on_io(io_event event, error_code ec, std::size_t bytes) = 0;

 protected:
  ~io_target() = default;
};

// The completion handler of every stream operation: one concrete type, so that each transport
// instantiates its operations once, nothing is type-erased per operation, and an idle
// connection holds one small Asio operation (its pending read) instead of a stack of
// coroutine frames. The shared_ptr keeps the connection alive while the operation is pending.
struct io_handler {
  std::shared_ptr<io_target> target;
  io_event event;

  void operator()(error_code ec, std::size_t bytes = 0) const { target->on_io(event, ec, bytes); }
};

// A byte stream with its handshakes and I/O primitives. At most one read and one write (or
// shutdown) may be pending at a time. The connections bound the handshake with a timer that
// calls close().
class transport_stream : public byte_stream {
 public:
  // Reads at least one byte (WebSocket: payload bytes of any message, boundaries ignored).
  // Completes with the count, or with net_errc::connection_closed when the peer ended the
  // stream (TCP end of stream, TLS with or without close_notify, a WebSocket close frame),
  // another transport error, or operation_aborted after close().
  virtual void async_read_some(asio::mutable_buffer buffer, io_handler handler) = 0;
  // Plain TCP only (reads_when_ready()): waits, holding no buffer, until the socket has
  // something to read (or an error, or operation_aborted after close()); then read_now()
  // takes what is there without blocking: a count, or would_block once drained, or
  // net_errc::connection_closed at the end of the stream. An idle connection then keeps no
  // read buffer of its own.
  [[nodiscard]] virtual bool reads_when_ready() const noexcept { return false; }
  // `drained`: the last read_now() left the socket empty (see read_now()), so that the wait
  // need not re-arm the descriptor (readable_wait.hpp).
  virtual void async_wait_readable(io_handler handler, bool /*drained*/) {
    handler(asio::error::operation_not_supported, 0);
  }
  // `drained` is set when the socket is known to hold nothing more after this read: no byte
  // and no end of stream still to read (TCP_INQ). A short read alone does not say so: a FIN
  // that arrived with the data raises no further edge.
  virtual std::size_t read_now(asio::mutable_buffer /*buffer*/, error_code& ec, bool& drained) {
    drained = false;
    ec = asio::error::operation_not_supported;
    return 0;
  }
  // Writes all of `buffer` (WebSocket: one binary message per MQTT packet in it); the buffer
  // must stay valid until completion.
  virtual void async_write(asio::const_buffer buffer, io_handler handler) = 0;
  // Plain TCP only (writes_now()): sends what the socket takes of `buffer` at once, without
  // blocking: a count (all of it, usually; fewer when the send buffer is full), or
  // would_block. A write that completes here costs no Asio operation and no completion handler.
  [[nodiscard]] virtual bool writes_now() const noexcept { return false; }
  virtual std::size_t write_now(asio::const_buffer /*buffer*/, error_code& ec) {
    ec = asio::error::operation_not_supported;
    return 0;
  }
  // Ends the sending direction: a WebSocket close frame (its handshake bounded by the
  // WebSocket timeout), else a TCP FIN (TLS: no close_notify, as MQTT brokers commonly do).
  // The error, if any, does not matter.
  virtual void async_shutdown(io_handler handler) = 0;

  // Server side: TLS handshake and/or WebSocket upgrade (the HTTP request is checked: upgrade
  // headers, path; a refusal is answered with 400 or 404 and websocket_upgrade_refused).
  virtual asio::awaitable<error_code> async_server_handshake(const server_handshake& params) = 0;
  // Client side: TLS handshake (SNI, ALPN, server verification as the context says) and/or
  // the WebSocket upgrade.
  virtual asio::awaitable<error_code> async_client_handshake(const client_handshake& params) = 0;
};

std::unique_ptr<transport_stream> make_tcp_stream(tcp::socket&& socket);
std::unique_ptr<transport_stream> make_tls_stream(tcp::socket&& socket, asio::ssl::context& context);
std::unique_ptr<transport_stream> make_ws_stream(tcp::socket&& socket);
std::unique_ptr<transport_stream> make_wss_stream(tcp::socket&& socket, asio::ssl::context& context);

// By kind; nullptr when a TLS kind has no context.
std::unique_ptr<transport_stream> make_stream(transport_kind kind, tcp::socket&& socket, asio::ssl::context* context);

// TLS details shared by tls and wss (tls_stream.cpp).
// Every connection: OpenSSL frees its record buffers while the connection is idle, which is
// most of the time for a simulated device (DESIGN.md: TLS state is the memory cost).
void prepare_tls(ssl_st* ssl) noexcept;
// Client: SNI and host name check, and a per-connection ALPN list.
error_code prepare_tls_client(ssl_st* ssl, std::string_view server_name, std::span<const std::string> alpn);

// TCP_NODELAY (DESIGN.md: Nagle held answers ~43 ms behind the PUBACK sent first).
void set_no_delay(tcp::socket& socket) noexcept;

}  // namespace twinfleet::net::detail
