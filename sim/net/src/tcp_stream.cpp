// Plain TCP, and what every transport shares.
#include "readable_wait.hpp"
#include "streams.hpp"

#include <twinfleet/net/error.hpp>

#include <boost/asio/post.hpp>
#include <boost/asio/bind_allocator.hpp>
#include <boost/asio/write.hpp>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <cerrno>
#include <cstring>

namespace twinfleet::net {

std::string_view to_string(transport_kind kind) noexcept {
  switch (kind) {
    case transport_kind::tcp: return "tcp";
    case transport_kind::tls: return "tls";
    case transport_kind::ws: return "ws";
    case transport_kind::wss: return "wss";
  }
  return "unknown";
}

namespace detail {

namespace {

class tcp_stream final : public transport_stream {
 public:
  explicit tcp_stream(tcp::socket&& socket) : socket_(std::move(socket)), waiter_(socket_) {}

  transport_kind kind() const noexcept override { return transport_kind::tcp; }
  asio::any_io_executor executor() noexcept override { return socket_.get_executor(); }
  tcp::socket& socket() noexcept override { return socket_; }

  void async_read_some(asio::mutable_buffer buffer, io_handler handler) override {
    socket_.async_read_some(buffer, [handler = std::move(handler)](error_code ec, std::size_t n) {
      if (ec == asio::error::eof) ec = net_errc::connection_closed;
      handler(ec, n);
    });
  }

  bool reads_when_ready() const noexcept override { return true; }

  void async_wait_readable(io_handler handler, bool drained) override {
    if (drained) {
      waiter_.async_wait(socket_, readable{std::move(handler)});
    } else {
      // Allocated to its own size, not from Asio's recycling cache (see connection_core.cpp).
      socket_.async_wait(tcp::socket::wait_read, asio::bind_allocator(std::allocator<void>(), readable{std::move(handler)}));
    }
  }

  // recvmsg() and send() with MSG_DONTWAIT: no descriptor flag to set, and Asio's own
  // operations on the socket are unaffected.
  std::size_t read_now(asio::mutable_buffer buffer, error_code& ec, bool& drained) override {
    if (!inq_checked_) {
      // TCP_INQ (Linux 4.18): each read says how many bytes the socket still holds, and 1 once
      // the peer's FIN is all that is left. Without it nothing counts as drained.
      inq_checked_ = true;
      const int on = 1;
      inq_ = ::setsockopt(socket_.native_handle(), IPPROTO_TCP, TCP_INQ, &on, sizeof on) == 0;
    }
    drained = false;
    iovec iov{buffer.data(), buffer.size()};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    if (inq_) {
      msg.msg_control = control;
      msg.msg_controllen = sizeof control;
    }
    ssize_t n;
    do {
      n = ::recvmsg(socket_.native_handle(), &msg, MSG_DONTWAIT);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
      ec = error_code(errno, asio::error::get_system_category());
      drained = ec == asio::error::would_block || ec == asio::error::try_again;
      return 0;
    }
    if (n == 0 && buffer.size() > 0) {
      ec = net_errc::connection_closed;
      return 0;
    }
    ec = {};
    for (auto* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level == SOL_TCP && c->cmsg_type == TCP_CM_INQ && c->cmsg_len >= CMSG_LEN(sizeof(int))) {
        int left = 0;
        std::memcpy(&left, CMSG_DATA(c), sizeof left);
        drained = left == 0;
      }
    }
    return static_cast<std::size_t>(n);
  }

  bool writes_now() const noexcept override { return true; }

  std::size_t write_now(asio::const_buffer buffer, error_code& ec) override {
    ssize_t n;
    do {
      // MSG_NOSIGNAL: a peer gone is an error here, not SIGPIPE.
      n = ::send(socket_.native_handle(), buffer.data(), buffer.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
      ec = error_code(errno, asio::error::get_system_category());
      return 0;
    }
    ec = {};
    return static_cast<std::size_t>(n);
  }

  void async_write(asio::const_buffer buffer, io_handler handler) override {
    asio::async_write(socket_, buffer, std::move(handler));
  }

  void async_shutdown(io_handler handler) override {
    error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_send, ignored);
    // Completes through the executor like any operation, never inside the caller.
    asio::post(socket_.get_executor(), [handler = std::move(handler)] { handler(error_code{}); });
  }

  void close() noexcept override {
    error_code ignored;
    socket_.close(ignored);
  }

  asio::awaitable<error_code> async_server_handshake(const server_handshake&) override { co_return error_code{}; }
  asio::awaitable<error_code> async_client_handshake(const client_handshake&) override { co_return error_code{}; }

 private:
  struct readable {
    io_handler handler;
    void operator()(error_code ec) const { handler(ec, 0); }
  };

  tcp::socket socket_;
  bool inq_checked_ = false;
  bool inq_ = false;  // TCP_INQ is on
  // An idle connection's one pending operation, inside the stream: no allocation per wait.
  drained_waiter<readable> waiter_;
};

}  // namespace

std::unique_ptr<transport_stream> make_tcp_stream(tcp::socket&& socket) {
  return std::make_unique<tcp_stream>(std::move(socket));
}

std::unique_ptr<transport_stream> make_stream(transport_kind kind, tcp::socket&& socket, asio::ssl::context* context) {
  switch (kind) {
    case transport_kind::tcp: return make_tcp_stream(std::move(socket));
    case transport_kind::ws: return make_ws_stream(std::move(socket));
    case transport_kind::tls:
      if (context == nullptr) return nullptr;
      return make_tls_stream(std::move(socket), *context);
    case transport_kind::wss:
      if (context == nullptr) return nullptr;
      return make_wss_stream(std::move(socket), *context);
  }
  return nullptr;
}

void set_no_delay(tcp::socket& socket) noexcept {
  error_code ignored;  // fails only on a closed socket, which the next read reports
  socket.set_option(tcp::no_delay(true), ignored);
}

}  // namespace detail
}  // namespace twinfleet::net
