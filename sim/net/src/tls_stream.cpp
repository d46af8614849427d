// TLS over TCP: OpenSSL on the socket itself, driven by readiness waits.
//
// Not asio::ssl::stream: it keeps two 17 KiB buffers of its own per stream (filled with zeros
// when the stream is made) and a BIO pair with two more, ~68 KiB per connection whether it is
// busy or idle; a TLS fleet held ~79 KiB per idle device (bench/README.md, TLS memory). Here
// OpenSSL reads and writes the socket through a small BIO of ours (send with MSG_NOSIGNAL: no
// SIGPIPE, recv), and with SSL_MODE_RELEASE_BUFFERS an idle connection holds no record buffer.
#include "streams.hpp"

#include <twinfleet/auth/tls.hpp>
#include <twinfleet/net/error.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <sys/socket.h>

#include <cerrno>

namespace twinfleet::net::detail {

namespace ssl = asio::ssl;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

// What the BIO reads and writes: the stream's socket, looked up at each call (the client opens
// its socket after the stream is made; after close() the calls fail with EBADF), and whether
// the peer ended the stream (BIO_CTRL_EOF: OpenSSL tells a truncation from a retry by it).
struct socket_bio_state {
  tcp::socket* socket = nullptr;
  bool eof = false;
};

int bio_write(BIO* bio, const char* data, std::size_t size, std::size_t* written) {
  auto* st = static_cast<socket_bio_state*>(BIO_get_data(bio));
  BIO_clear_retry_flags(bio);
  const auto n = ::send(st->socket->native_handle(), data, size, MSG_NOSIGNAL);
  if (n >= 0) {
    *written = static_cast<std::size_t>(n);
    return 1;
  }
  if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) BIO_set_retry_write(bio);
  return 0;
}

int bio_read(BIO* bio, char* data, std::size_t size, std::size_t* read) {
  auto* st = static_cast<socket_bio_state*>(BIO_get_data(bio));
  BIO_clear_retry_flags(bio);
  const auto n = ::recv(st->socket->native_handle(), data, size, 0);
  if (n > 0) {
    *read = static_cast<std::size_t>(n);
    return 1;
  }
  if (n == 0) {
    st->eof = true;
  } else if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
    BIO_set_retry_read(bio);
  }
  return 0;
}

long bio_ctrl(BIO* bio, int cmd, long, void*) {
  switch (cmd) {
    case BIO_CTRL_FLUSH: return 1;  // nothing is buffered here
    case BIO_CTRL_EOF: return static_cast<socket_bio_state*>(BIO_get_data(bio))->eof ? 1 : 0;
    default: return 0;
  }
}

int bio_create(BIO* bio) {
  BIO_set_init(bio, 1);
  return 1;
}

BIO_METHOD* socket_bio_method() {
  static BIO_METHOD* const method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "twinfleet socket");
    BIO_meth_set_write_ex(m, bio_write);
    BIO_meth_set_read_ex(m, bio_read);
    BIO_meth_set_ctrl(m, bio_ctrl);
    BIO_meth_set_create(m, bio_create);
    return m;
  }();
  return method;
}

// An OpenSSL failure as Asio's TLS stream reported it, so that callers see the same codes: the
// library's error in asio's SSL category, a peer that ended the stream without close_notify as
// ssl::error::stream_truncated, a socket error as itself.
// `sys_errno` is errno as the failed call left it.
error_code failure(int ssl_error, int sys_errno, const socket_bio_state& bio) {
  if (ssl_error == SSL_ERROR_ZERO_RETURN) return asio::error::eof;
  const auto err = ::ERR_get_error();
  if (ssl_error == SSL_ERROR_SSL && err != 0) {
    if (ERR_GET_REASON(err) == SSL_R_UNEXPECTED_EOF_WHILE_READING) return ssl::error::stream_truncated;
    return error_code(static_cast<int>(err), asio::error::get_ssl_category());
  }
  if (ssl_error == SSL_ERROR_SYSCALL && sys_errno != 0 && !bio.eof) return error_code(sys_errno, boost::system::system_category());
  if (bio.eof) return ssl::error::stream_truncated;
  return ssl::error::unspecified_system_error;
}

class tls_stream final : public transport_stream {
 public:
  tls_stream(tcp::socket&& socket, ssl::context& context) : socket_(std::move(socket)), ssl_(::SSL_new(context.native_handle())) {
    if (ssl_ == nullptr) return;
    SSL_set_mode(ssl_, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    prepare_tls(ssl_);
    // One recv takes what is there, not a record header and then its body.
    SSL_set_read_ahead(ssl_, 1);
    bio_.socket = &socket_;
    BIO* bio = BIO_new(socket_bio_method());
    if (bio == nullptr) return;
    BIO_set_data(bio, &bio_);
    SSL_set_bio(ssl_, bio, bio);  // one BIO both ways; the SSL frees it
  }
  ~tls_stream() override {
    if (ssl_ != nullptr) ::SSL_free(ssl_);
  }

  transport_kind kind() const noexcept override { return transport_kind::tls; }
  asio::any_io_executor executor() noexcept override { return socket_.get_executor(); }
  tcp::socket& socket() noexcept override { return socket_; }
  ssl_st* tls_handle() noexcept override { return ssl_; }

  void async_read_some(asio::mutable_buffer buffer, io_handler handler) override {
    read_buffer_ = buffer;
    read_handler_ = std::move(handler);
    try_read(true);
  }

  void async_write(asio::const_buffer buffer, io_handler handler) override {
    write_buffer_ = buffer;
    written_ = 0;
    write_handler_ = std::move(handler);
    try_write(true);
  }

  void async_shutdown(io_handler handler) override {
    // No close_notify: MQTT peers rarely answer one; a FIN ends the stream as brokers do.
    error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_send, ignored);
    asio::post(socket_.get_executor(), [handler = std::move(handler)] { handler(error_code{}); });
  }

  void close() noexcept override {
    closed_ = true;
    error_code ignored;
    socket_.close(ignored);
  }

  asio::awaitable<error_code> async_server_handshake(const server_handshake&) override {
    if (ssl_ == nullptr || SSL_get_rbio(ssl_) == nullptr) co_return asio::error::no_memory;
    SSL_set_accept_state(ssl_);
    co_return co_await handshake();
  }

  asio::awaitable<error_code> async_client_handshake(const client_handshake& params) override {
    if (ssl_ == nullptr || SSL_get_rbio(ssl_) == nullptr) co_return asio::error::no_memory;
    if (auto ec = prepare_tls_client(ssl_, params.server_name, params.alpn)) co_return ec;
    SSL_set_connect_state(ssl_);
    co_return co_await handshake();
  }

 private:
  asio::awaitable<error_code> handshake() {
    error_code ec;
    socket_.non_blocking(true, ec);
    if (ec) co_return ec;
    for (;;) {
      if (closed_) co_return asio::error::operation_aborted;
      ::ERR_clear_error();
      errno = 0;
      const int r = ::SSL_do_handshake(ssl_);
      const int sys_errno = errno;
      if (r == 1) co_return error_code{};
      const int e = ::SSL_get_error(ssl_, r);
      if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) co_return failure(e, sys_errno, bio_);
      const auto [wait_ec] = co_await socket_.async_wait(e == SSL_ERROR_WANT_READ ? tcp::socket::wait_read : tcp::socket::wait_write, use_tuple);
      if (wait_ec) co_return wait_ec;
    }
  }

  // Each try either completes its operation or waits for the socket and tries again. From the
  // initiating call (`first`) a completion is posted, never run inside the caller.
  void try_read(bool first) {
    if (closed_) return complete(read_handler_, asio::error::operation_aborted, 0, first);
    if (read_buffer_.size() == 0) return complete(read_handler_, error_code{}, 0, first);
    std::size_t got = 0;
    ::ERR_clear_error();
    errno = 0;
    const int r = ::SSL_read_ex(ssl_, read_buffer_.data(), read_buffer_.size(), &got);
    const int sys_errno = errno;
    if (r == 1) return complete(read_handler_, error_code{}, got, first);
    const int e = ::SSL_get_error(ssl_, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return wait(e, [this] { try_read(false); }, read_handler_);
    auto ec = failure(e, sys_errno, bio_);
    // MQTT peers commonly close TCP without close_notify: that is their way of ending.
    if (ec == asio::error::eof || ec == ssl::error::stream_truncated) ec = net_errc::connection_closed;
    complete(read_handler_, ec, 0, first);
  }

  void try_write(bool first) {
    const auto* data = static_cast<const unsigned char*>(write_buffer_.data());
    while (written_ < write_buffer_.size()) {
      if (closed_) return complete(write_handler_, asio::error::operation_aborted, written_, first);
      std::size_t n = 0;
      ::ERR_clear_error();
      errno = 0;
      const int r = ::SSL_write_ex(ssl_, data + written_, write_buffer_.size() - written_, &n);
      const int sys_errno = errno;
      if (r == 1) {
        written_ += n;
        continue;
      }
      const int e = ::SSL_get_error(ssl_, r);
      if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return wait(e, [this] { try_write(false); }, write_handler_);
      return complete(write_handler_, failure(e, sys_errno, bio_), written_, first);
    }
    complete(write_handler_, error_code{}, written_, first);
  }

  // Waits until the socket can do what OpenSSL wants, then `retry`; a failed wait (close():
  // operation_aborted) completes the operation with its error. The operation's handler keeps
  // the connection, and with it this stream, alive until it completes.
  template <class Retry>
  void wait(int ssl_error, Retry retry, io_handler& handler) {
    socket_.async_wait(ssl_error == SSL_ERROR_WANT_READ ? tcp::socket::wait_read : tcp::socket::wait_write,
                       [this, retry, &handler](error_code ec) {
                         if (ec) return complete(handler, ec, 0, false);
                         retry();
                       });
  }

  void complete(io_handler& slot, error_code ec, std::size_t n, bool post) {
    auto handler = std::move(slot);
    if (post) {
      asio::post(socket_.get_executor(), [handler = std::move(handler), ec, n] { handler(ec, n); });
    } else {
      handler(ec, n);
    }
  }

  tcp::socket socket_;
  ssl_st* ssl_;
  socket_bio_state bio_;
  bool closed_ = false;
  asio::mutable_buffer read_buffer_;
  io_handler read_handler_;
  asio::const_buffer write_buffer_;
  std::size_t written_ = 0;
  io_handler write_handler_;
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
