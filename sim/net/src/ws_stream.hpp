// Private to sim/net: MQTT over WebSocket (binary messages, subprotocol "mqtt") on a TCP or a
// TLS stream. Included by exactly one .cpp file per next layer, so that each instantiation of
// beast::websocket::stream is compiled once.
#pragma once

#include "streams.hpp"

#include <twinfleet/net/error.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/stream_base.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/stream_traits.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/websocket/rfc6455.hpp>
#include <boost/beast/websocket/stream.hpp>

#include <string>
#include <type_traits>

namespace twinfleet::net::detail {

namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace websocket = boost::beast::websocket;

// The subprotocol to answer for a Sec-WebSocket-Protocol offer: "mqtt" (MQTT 3.1.1 and later,
// what Azure IoT Hub expects), or "mqttv3.1" (what AWS IoT Device SDK v1 clients send); the
// client's first acceptable one wins. Empty when it offered neither, or nothing.
std::string_view select_mqtt_subprotocol(std::string_view offered) noexcept;

// The path of a request target: before any '?'.
std::string_view target_path(std::string_view target) noexcept;

// The size of the MQTT packet at the start of `bytes` (fixed header included), or 0 when its
// fixed header is incomplete or malformed.
std::size_t mqtt_packet_size(std::string_view bytes) noexcept;

template <class NextLayer>
class basic_ws_stream final : public transport_stream {
 public:
  static constexpr bool is_tls = !std::is_same_v<NextLayer, tcp::socket>;

  template <class... Args>
  explicit basic_ws_stream(Args&&... args) : ws_(std::forward<Args>(args)...) {
    if constexpr (is_tls) prepare_tls(ws_.next_layer().native_handle());
    ws_.binary(true);
    // Without fragmentation a server writes frames straight from the caller's buffers and never
    // allocates Beast's write buffer; a client needs it to mask, in small pieces.
    ws_.auto_fragment(false);
    ws_.write_buffer_bytes(1024);
  }

  transport_kind kind() const noexcept override { return is_tls ? transport_kind::wss : transport_kind::ws; }
  asio::any_io_executor executor() noexcept override { return ws_.get_executor(); }
  tcp::socket& socket() noexcept override { return beast::get_lowest_layer(ws_); }
  ssl_st* tls_handle() noexcept override {
    if constexpr (is_tls) {
      return ws_.next_layer().native_handle();
    } else {
      return nullptr;
    }
  }
  std::string_view request_target() const noexcept override { return target_; }

  void async_read_some(asio::mutable_buffer buffer, io_handler handler) override {
    ws_.async_read_some(buffer, [handler = std::move(handler)](error_code ec, std::size_t n) {
      if (ec == websocket::error::closed || ec == asio::error::eof || is_truncation(ec)) {
        ec = net_errc::connection_closed;
      }
      handler(ec, n);
    });
  }

  void async_write(asio::const_buffer buffer, io_handler handler) override {
    packet_writer{this, std::string_view(static_cast<const char*>(buffer.data()), buffer.size()), 0, 0,
                  std::move(handler)}
        .next();
  }

  void async_shutdown(io_handler handler) override {
    // The closing handshake; Beast bounds it with the handshake timeout set at the opening.
    if (!ws_.is_open()) {
      asio::post(ws_.get_executor(), [handler = std::move(handler)] { handler(error_code{}); });
      return;
    }
    ws_.async_close(websocket::close_code::normal, [handler = std::move(handler)](error_code ec) { handler(ec); });
  }

  void close() noexcept override {
    error_code ignored;
    beast::get_lowest_layer(ws_).close(ignored);
  }

  asio::awaitable<error_code> async_server_handshake(const server_handshake& params) override {
    if constexpr (is_tls) {
      auto [ec] = co_await ws_.next_layer().async_handshake(asio::ssl::stream_base::server, use_tuple());
      if (ec) co_return ec;
    }
    // The request is read here rather than by accept(), so that its target (an AWS presigned
    // URL carries the SigV4 signature in the query) and its offered subprotocols can be seen.
    beast::flat_buffer buffer(8192);
    http::request_parser<http::empty_body> parser;
    parser.header_limit(8192);
    auto [read_ec, read_n] = co_await http::async_read(ws_.next_layer(), buffer, parser, use_tuple());
    (void)read_n;
    if (read_ec) co_return read_ec;
    const auto& request = parser.get();
    if (!websocket::is_upgrade(request)) co_return co_await refuse(http::status::bad_request, request.version());
    target_.assign(request.target().data(), request.target().size());
    if (!params.ws_path.empty() && target_path(target_) != params.ws_path) {
      co_return co_await refuse(http::status::not_found, request.version());
    }
    const auto offered = request[http::field::sec_websocket_protocol];
    const std::string_view chosen = select_mqtt_subprotocol(std::string_view(offered.data(), offered.size()));
    ws_.set_option(websocket::stream_base::timeout{params.ws_timeout, websocket::stream_base::none(), false});
    ws_.set_option(websocket::stream_base::decorator([chosen](websocket::response_type& response) {
      if (!chosen.empty()) response.set(http::field::sec_websocket_protocol, chosen);
    }));
    auto [ec] = co_await ws_.async_accept(request, use_tuple());
    co_return ec;
  }

  asio::awaitable<error_code> async_client_handshake(const client_handshake& params) override {
    if constexpr (is_tls) {
      if (auto ec = prepare_tls_client(ws_.next_layer().native_handle(), params.server_name, params.alpn)) co_return ec;
      auto [ec] = co_await ws_.next_layer().async_handshake(asio::ssl::stream_base::client, use_tuple());
      if (ec) co_return ec;
    }
    std::string protocols;
    for (const auto& p : params.ws_subprotocols) {
      if (!protocols.empty()) protocols += ", ";
      protocols += p;
    }
    ws_.set_option(websocket::stream_base::timeout{params.ws_timeout, websocket::stream_base::none(), false});
    ws_.set_option(websocket::stream_base::decorator([protocols = std::move(protocols)](websocket::request_type& request) {
      if (!protocols.empty()) request.set(http::field::sec_websocket_protocol, protocols);
    }));
    websocket::response_type response;
    auto [ec] = co_await ws_.async_handshake(response, params.ws_host, params.ws_target, use_tuple());
    if (ec == websocket::error::upgrade_declined) ec = net_errc::websocket_upgrade_refused;
    co_return ec;
  }

 private:
  static constexpr auto use_tuple() { return asio::as_tuple(asio::use_awaitable); }

  static bool is_truncation(const error_code& ec) noexcept;

  asio::awaitable<error_code> refuse(http::status status, unsigned version) {
    http::response<http::string_body> response{status, version};
    response.set(http::field::connection, "close");
    response.body() = status == http::status::not_found ? "no MQTT endpoint at this path\n" : "WebSocket upgrade expected\n";
    response.prepare_payload();
    (void)co_await http::async_write(ws_.next_layer(), response, use_tuple());
    co_return make_error_code(net_errc::websocket_upgrade_refused);
  }

  // Writes one binary message per MQTT packet: MQTT allows several packets in one message, but
  // Paho C 1.3 reads only the first packet of each WebSocket frame and drops the rest.
  struct packet_writer {
    basic_ws_stream* self;
    std::string_view rest;
    std::size_t current;  // the size of the message being written
    std::size_t written;
    io_handler handler;

    void next() {
      current = mqtt_packet_size(rest);
      if (current == 0 || current > rest.size()) current = rest.size();  // not whole packets: as it is
      self->ws_.async_write(asio::buffer(rest.data(), current), std::move(*this));
    }

    void operator()(error_code ec, std::size_t n) {
      written += n;
      rest.remove_prefix(current);
      if (ec || rest.empty()) {
        handler(ec, written);
        return;
      }
      next();
    }
  };

  websocket::stream<NextLayer> ws_;
  std::string target_;  // server side: the upgrade request's target
};

}  // namespace twinfleet::net::detail
