// Private to sim/net: waiting for a drained socket to become readable without an epoll_ctl.
//
// Asio's socket.async_wait(wait_read) re-arms the descriptor with epoll_ctl(EPOLL_CTL_MOD) on
// every wait: its epoll registration is edge-triggered, and a wait may start with data already
// there, which no new edge would report. A connection that waits only after a read drained the
// socket (would_block, or a read after which TCP_INQ counts nothing left) needs no re-arm: any
// byte that arrives after the drain raises a new edge. A short read is not enough: a FIN that
// arrived together with the data raised its edge already, and the wait would never see it (a
// server's last answer and its close, read at once, left the client waiting; TCP_INQ counts
// the FIN as one byte left). One epoll_ctl per packet was 3.5–5 % of the run's and the hub's CPU at
// 40,000 reported patches/s (bench/README.md, stop 15).
//
// drained_waiter::async_wait() therefore queues its own operation in Asio's epoll reactor, as a
// speculative read would, which costs no system call when the reactor has seen no edge since the
// last wait completed:
// - started with an edge pending (data may have arrived since the drain), it peeks one byte
//   (MSG_PEEK | MSG_DONTWAIT) and completes at once when there is something to read;
// - completed by an edge, it reports the socket exhausted, so that the next wait is queued
//   without a peek. The caller reads until the socket is drained again; a byte arriving
//   in between raises another edge, which at worst wakes a wait that then finds nothing.
// Errors and hang-ups complete the wait too; the caller's read reports them. (A reset that
// arrives together with data the read then takes is not counted by TCP_INQ: the connection
// learns of it at its next write, a keep-alive at the latest.)
// The edge completion reports the socket exhausted, which stops Asio from performing other read
// operations queued behind it until the next edge: the socket must have no other read or wait
// pending (connection_core keeps one read at a time; TLS, whose writes may wait to read, uses
// async_wait).
//
// It uses Asio's detail API as Boost 1.81's epoll reactor has it; elsewhere (another Boost, the
// io_uring or select backends, an executor other than a plain io_context's) it falls back to
// async_wait(wait_read). The reactor is looked up once per socket: a cache per thread keyed by
// the io_context's address handed a dead reactor to a new io_context built where an old one
// had been (a test's segfault). The handler runs on the thread running the io_context, as a socket
// operation's handler with no associated executor does.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/version.hpp>

#include <sys/socket.h>

#include <cerrno>
#include <memory>
#include <optional>
#include <utility>

#if BOOST_VERSION == 108100 && defined(BOOST_ASIO_HAS_EPOLL) && !defined(BOOST_ASIO_HAS_IO_URING_AS_DEFAULT) && \
    !defined(BOOST_ASIO_DISABLE_EPOLL)
#define TWINFLEET_NET_DRAINED_WAIT 1
#include <boost/asio/detail/epoll_reactor.hpp>
#include <boost/asio/detail/reactor_op.hpp>
#else
#define TWINFLEET_NET_DRAINED_WAIT 0
#endif

namespace twinfleet::net::detail {

#if TWINFLEET_NET_DRAINED_WAIT

namespace drained_wait {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

// The socket's implementation (descriptor and reactor registration), protected in basic_socket.
struct socket_access : tcp::socket {
  static auto& implementation(tcp::socket& socket) {
    constexpr auto member = &socket_access::impl_;
    return (socket.*member).get_implementation();
  }
};

// The operation being started on this thread: its speculative perform() runs inside start_op().
inline thread_local const void* starting = nullptr;

}  // namespace drained_wait

// Waits on one socket, one wait at a time. The operation lives inside the waiter, so a wait
// allocates nothing: the waiter must outlive its pending wait, which the handler guarantees
// when it keeps the waiter's owner alive (connection_core's handlers hold the connection). It
// finds the socket's reactor once, when made: the socket must not move to another io_context
// afterwards (a socket never does).
template <class Handler>
class drained_waiter final : private boost::asio::detail::reactor_op {
 public:
  explicit drained_waiter(boost::asio::ip::tcp::socket& socket)
      : reactor_op(boost::system::error_code(), &drained_waiter::perform, &drained_waiter::complete) {
    namespace asio = boost::asio;
    const auto executor = socket.get_executor();
    if (const auto* io = executor.target<asio::io_context::executor_type>(); io != nullptr) {
      reactor_ = &asio::use_service<asio::detail::epoll_reactor>(io->context());
    }
  }
  drained_waiter(const drained_waiter&) = delete;
  drained_waiter& operator=(const drained_waiter&) = delete;

  // Calls handler(error_code) once the socket, drained by the caller's last read, has
  // something to read, an error or the end of the stream; operation_aborted when the socket
  // is closed. At most one wait may be pending.
  void async_wait(boost::asio::ip::tcp::socket& socket, Handler handler) {
    using reactor = boost::asio::detail::epoll_reactor;
    if (reactor_ == nullptr || !socket.is_open()) {
      socket.async_wait(boost::asio::ip::tcp::socket::wait_read, std::move(handler));
      return;
    }
    auto& impl = drained_wait::socket_access::implementation(socket);
    descriptor_ = impl.socket_;
    ec_ = boost::system::error_code();
    handler_.emplace(std::move(handler));
    drained_wait::starting = this;
    reactor_->start_op(reactor::read_op, impl.socket_, impl.reactor_data_, this, false, true);
    drained_wait::starting = nullptr;
  }

 private:
  static status perform(reactor_op* base) {
    auto* self = static_cast<drained_waiter*>(base);
    if (drained_wait::starting != self) return done_and_exhausted;  // an edge (or an error): readable
    char byte;
    const auto n = ::recv(self->descriptor_, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return not_done;  // queued for the next edge
    return done;  // data, the end of the stream or an error: the caller's read tells which
  }

  static void complete(void* owner, boost::asio::detail::scheduler_operation* base, const boost::system::error_code&,
                       std::size_t) {
    auto* self = static_cast<drained_waiter*>(base);
    // Moved out first: the handler may own the waiter, which may go with it.
    Handler handler(std::move(*self->handler_));
    self->handler_.reset();
    const boost::system::error_code ec = self->ec_;
    if (owner != nullptr) handler(ec);  // null: the io_context is being destroyed
  }

  boost::asio::detail::epoll_reactor* reactor_ = nullptr;  // null: Asio's wait (a strand, say)
  std::optional<Handler> handler_;
  int descriptor_ = -1;
};

#else

template <class Handler>
class drained_waiter {
 public:
  explicit drained_waiter(boost::asio::ip::tcp::socket&) noexcept {}
  void async_wait(boost::asio::ip::tcp::socket& socket, Handler handler) {
    socket.async_wait(boost::asio::ip::tcp::socket::wait_read, std::move(handler));
  }
};

#endif

}  // namespace twinfleet::net::detail
