// WebSocket over TLS: the one instantiation of beast::websocket::stream<ssl::stream<tcp::socket>>.
#include "ws_stream.hpp"

#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/beast/websocket/ssl.hpp>

namespace twinfleet::net::detail {

using tls_layer = asio::ssl::stream<tcp::socket>;

template <>
bool basic_ws_stream<tls_layer>::is_truncation(const error_code& ec) noexcept {
  return ec == asio::ssl::error::stream_truncated;
}

std::unique_ptr<transport_stream> make_wss_stream(tcp::socket&& socket, asio::ssl::context& context) {
  return std::make_unique<basic_ws_stream<tls_layer>>(std::move(socket), context);
}

}  // namespace twinfleet::net::detail
