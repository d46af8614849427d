// TLS over TCP: the one instantiation of asio::ssl::stream<tcp::socket>.
#include "streams.hpp"

#include <twinfleet/auth/tls.hpp>
#include <twinfleet/net/error.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <openssl/err.h>
#include <openssl/ssl.h>

namespace twinfleet::net::detail {

namespace ssl = asio::ssl;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

class tls_stream final : public transport_stream {
 public:
  tls_stream(tcp::socket&& socket, ssl::context& context) : stream_(std::move(socket), context) {
    prepare_tls(stream_.native_handle());
  }

  transport_kind kind() const noexcept override { return transport_kind::tls; }
  asio::any_io_executor executor() noexcept override { return stream_.get_executor(); }
  tcp::socket& socket() noexcept override { return stream_.next_layer(); }
  ssl_st* tls_handle() noexcept override { return stream_.native_handle(); }

  void async_read_some(asio::mutable_buffer buffer, io_handler handler) override {
    stream_.async_read_some(buffer, [handler = std::move(handler)](error_code ec, std::size_t n) {
      // MQTT peers commonly close TCP without close_notify: that is their way of ending.
      if (ec == asio::error::eof || ec == ssl::error::stream_truncated) ec = net_errc::connection_closed;
      handler(ec, n);
    });
  }

  void async_write(asio::const_buffer buffer, io_handler handler) override {
    asio::async_write(stream_, buffer, std::move(handler));
  }

  void async_shutdown(io_handler handler) override {
    // No close_notify: asio's async_shutdown waits for the peer's answer, which MQTT peers
    // rarely send; a FIN ends the stream as brokers do.
    error_code ignored;
    stream_.next_layer().shutdown(tcp::socket::shutdown_send, ignored);
    asio::post(stream_.get_executor(), [handler = std::move(handler)] { handler(error_code{}); });
  }

  void close() noexcept override {
    error_code ignored;
    stream_.next_layer().close(ignored);
  }

  asio::awaitable<error_code> async_server_handshake(const server_handshake&) override {
    auto [ec] = co_await stream_.async_handshake(ssl::stream_base::server, use_tuple);
    co_return ec;
  }

  asio::awaitable<error_code> async_client_handshake(const client_handshake& params) override {
    if (auto ec = prepare_tls_client(stream_.native_handle(), params.server_name, params.alpn)) co_return ec;
    auto [ec] = co_await stream_.async_handshake(ssl::stream_base::client, use_tuple);
    co_return ec;
  }

 private:
  ssl::stream<tcp::socket> stream_;
};

}  // namespace

std::unique_ptr<transport_stream> make_tls_stream(tcp::socket&& socket, ssl::context& context) {
  return std::make_unique<tls_stream>(std::move(socket), context);
}

void prepare_tls(ssl_st* ssl) noexcept { SSL_set_mode(ssl, SSL_MODE_RELEASE_BUFFERS); }

error_code prepare_tls_client(ssl_st* ssl, std::string_view server_name, std::span<const std::string> alpn) {
  if (!server_name.empty()) {
    // Skips SNI for an IP address, and makes verification check the name either way.
    if (auto r = auth::set_tls_server_name(ssl, server_name); !r) return r.error();
  }
  if (!alpn.empty()) {
    std::string wire;
    for (const auto& name : alpn) {
      if (name.empty() || name.size() > 255) return boost::system::errc::make_error_code(boost::system::errc::invalid_argument);
      wire.push_back(static_cast<char>(name.size()));
      wire.append(name);
    }
    // Unlike most of OpenSSL, SSL_set_alpn_protos returns 0 on success.
    if (SSL_set_alpn_protos(ssl, reinterpret_cast<const unsigned char*>(wire.data()),
                            static_cast<unsigned>(wire.size())) != 0) {
      ERR_clear_error();
      return boost::system::errc::make_error_code(boost::system::errc::invalid_argument);
    }
  }
  return {};
}

}  // namespace twinfleet::net::detail
