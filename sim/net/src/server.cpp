#include <twinfleet/net/server.hpp>

#include "connection_core.hpp"

#include <twinfleet/auth/tls.hpp>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <atomic>
#include <mutex>

namespace twinfleet::net {

namespace detail {

namespace {
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
}

class server_connection_impl;

struct listener_state {
  listener_state(asio::any_io_executor ex, listener_options o, server_handler& h)
      : executor(ex), options(std::move(o)), handler(&h), acceptor(ex) {}

  void add(server_connection_impl* c);
  void remove(server_connection_impl* c) noexcept;
  void stop();
  void end_accepting() noexcept;
  [[nodiscard]] bool stopping_now() const {
    const std::lock_guard lock(mutex);
    return stopping;
  }

  asio::any_io_executor executor;
  const listener_options options;
  server_handler* handler;
  tcp::acceptor acceptor;
  tcp::endpoint bound;
  std::uint64_t next_id = 1;  // the accept loop's

  // Guards the registry and the stop state: connections may live on other executors.
  mutable std::mutex mutex;
  server_connection_impl* first = nullptr;  // intrusive list: 16 bytes per connection, O(1) removal
  std::uint64_t active = 0;
  bool stopping = false;
  bool accepting = false;
  struct stop_waiter {
    asio::any_io_executor executor;  // the awaiting coroutine's
    asio::any_completion_handler<void()> handler;
  };
  std::vector<stop_waiter> stop_waiters;

  std::atomic<std::uint64_t> accepted{0};
  std::atomic<std::uint64_t> handshake_failures{0};
  std::atomic<std::uint64_t> handshake_timeouts{0};
  std::atomic<std::uint64_t> accept_errors{0};
  std::atomic<std::uint64_t> handler_exceptions{0};

 private:
  // Called with the mutex held; returns the waiters to complete once it is released.
  std::vector<stop_waiter> take_waiters_if_stopped();
  static void complete(std::vector<stop_waiter> waiters);
};

class server_connection_impl final : public server_connection, public connection_core {
 public:
  server_connection_impl(std::shared_ptr<listener_state> listener, std::unique_ptr<transport_stream> stream,
                         const tcp::endpoint& remote, std::uint64_t id, asio::any_io_executor ex)
      : connection_core(std::move(ex), listener->options.read_buffer_size, listener->options.close_timeout),
        listener_(std::move(listener)),
        remote_(remote),
        id_(id),
        kind_(stream->kind()) {
    stream_ = std::move(stream);
  }

  ~server_connection_impl() override {
    // Normally done in on_finished(); this covers an io_context destroyed with the
    // connection's coroutines still suspended.
    if (registered_) listener_->remove(this);
  }

  static asio::awaitable<void> run(std::shared_ptr<server_connection_impl> self) {
    auto& c = *self;
    const auto& o = c.listener_->options;
    if (c.kind_ != transport_kind::tcp) {
      c.arm_handshake_watchdog(clock::now() + o.handshake_timeout);
      const auto ec = co_await c.stream_->async_server_handshake(server_handshake{o.ws_path, o.handshake_timeout});
      const bool in_time = c.end_handshake();
      if (ec || c.closed_) {
        if (!c.stop_requested_) {
          ++c.listener_->handshake_failures;
          if (!in_time) ++c.listener_->handshake_timeouts;
        }
        c.close_stream();
        c.listener_->remove(&c);
        co_return;
      }
    }
    // The session's CONNECT timeout runs from here, after the handshake.
    c.session_.emplace(mqtt::role::server, clock::now(), o.session);
    c.start_io();
  }

  // --- server_connection ---

  error_code accept(const mqtt::accept_params& params) {
    if (!session_ || closed_) return mqtt::mqtt_errc::no_pending_connect;
    const auto ec = session_->accept(clock::now(), params);
    if (!ec) after_session_change();
    return ec;
  }

  error_code refuse(mqtt::connect_return_code code) {
    if (!session_ || closed_) return mqtt::mqtt_errc::no_pending_connect;
    const auto ec = session_->refuse(code, clock::now());
    if (!ec) after_session_change();
    return ec;
  }

  mqtt::result<std::uint16_t> publish(std::string_view topic, std::string_view payload, mqtt::qos q, bool retain) {
    if (!session_ || closed_) return mqtt::mqtt_errc::not_connected;
    auto r = session_->publish(topic, payload, q, retain, clock::now());
    if (r) after_session_change();
    return r;
  }

  void close() {
    if (closed_) return;
    if (!session_) {  // still in the TLS or WebSocket handshake: nothing to flush
      note_reason(mqtt::mqtt_errc::application_close);
      close_stream();
      return;
    }
    session_->close();
    after_session_change();
  }

  void abort() {
    note_reason(net_errc::aborted);
    close_stream();
  }

  // run() failed with an exception (before the loops started, which finish on their own).
  void fail_run() noexcept {
    note_reason(net_errc::internal_error);
    close_stream();
    if (!session_) listener_->remove(this);
  }

  void stop_close() {
    stop_requested_ = true;
    note_reason(net_errc::listener_stopped);
    close();
  }

  asio::any_io_executor executor() const noexcept { return connection_core::executor(); }
  std::uint64_t id() const noexcept { return id_; }
  transport_kind kind() const noexcept { return kind_; }
  const tcp::endpoint& remote() const noexcept { return remote_; }
  byte_stream* stream() noexcept { return stream_.get(); }
  const mqtt::session* session() const noexcept { return session_ ? &*session_ : nullptr; }
  std::any& user() noexcept { return user_; }
  std::shared_ptr<server_connection_impl> shared() {
    return std::static_pointer_cast<server_connection_impl>(shared_from_this());
  }

  // The listener's registry.
  server_connection_impl* prev_ = nullptr;
  server_connection_impl* next_ = nullptr;
  bool registered_ = false;

 protected:
  void dispatch(mqtt::session_event& event, time_point now) override {
    auto& handler = *listener_->handler;
    if (auto* pub = std::get_if<mqtt::publish_packet>(&event)) {
      handler.on_publish(*this, *pub);
    } else if (auto* ack = std::get_if<mqtt::puback_packet>(&event)) {
      handler.on_puback(*this, ack->packet_id);
    } else if (auto* sub = std::get_if<mqtt::subscribe_packet>(&event)) {
      const auto codes = handler.on_subscribe(*this, sub->subscriptions);
      if (closed_ || session_->closing()) return;  // the handler closed the connection
      if (const auto ec = session_->suback(sub->packet_id, codes, now)) {
        note_reason(ec);
        session_->close();
      }
    } else if (auto* unsub = std::get_if<mqtt::unsubscribe_packet>(&event)) {
      handler.on_unsubscribe(*this, unsub->filters);
    } else if (auto* connect = std::get_if<mqtt::connect_packet>(&event)) {
      connect_seen_ = true;
      handler.on_connect(*this, *connect);
    }
    // disconnect_packet and closed_event: the session is closing; after_session_change()
    // notes its reason.
  }

  void on_finished() override {
    if (connect_seen_) {
      try {
        listener_->handler->on_closed(*this, reason_);
      } catch (...) {
        report_exception("server_handler::on_closed", std::current_exception());
        on_exception();
      }
    }
    // A holder of shared() keeps the object, not the socket and the TLS state.
    stream_.reset();
    listener_->remove(this);
  }

  void on_exception() noexcept override { ++listener_->handler_exceptions; }

 private:
  std::shared_ptr<listener_state> listener_;
  std::any user_;
  tcp::endpoint remote_;
  std::uint64_t id_;
  transport_kind kind_;
  bool connect_seen_ = false;
  bool stop_requested_ = false;
};

void listener_state::add(server_connection_impl* c) {
  const std::lock_guard lock(mutex);
  c->next_ = first;
  if (first != nullptr) first->prev_ = c;
  first = c;
  c->registered_ = true;
  ++active;
}

void listener_state::remove(server_connection_impl* c) noexcept {
  std::vector<stop_waiter> waiters;
  {
    const std::lock_guard lock(mutex);
    if (!c->registered_) return;
    c->registered_ = false;
    if (c->prev_ != nullptr) c->prev_->next_ = c->next_;
    if (c->next_ != nullptr) c->next_->prev_ = c->prev_;
    if (first == c) first = c->next_;
    c->prev_ = c->next_ = nullptr;
    --active;
    waiters = take_waiters_if_stopped();
  }
  complete(std::move(waiters));
}

void listener_state::stop() {
  std::vector<std::shared_ptr<server_connection_impl>> connections;
  std::vector<stop_waiter> waiters;
  {
    const std::lock_guard lock(mutex);
    if (stopping) return;
    stopping = true;
    connections.reserve(active);
    for (auto* c = first; c != nullptr; c = c->next_) {
      // A connection whose last owner is going away is finishing on its own.
      if (auto owner = c->weak_from_this().lock()) {
        connections.push_back(std::static_pointer_cast<server_connection_impl>(std::move(owner)));
      }
    }
    waiters = take_waiters_if_stopped();
  }
  error_code ignored;
  acceptor.close(ignored);  // the accept loop ends with operation_aborted
  for (auto& c : connections) {
    auto ex = c->executor();
    asio::post(ex, [c = std::move(c)] { c->stop_close(); });
  }
  complete(std::move(waiters));
}

void listener_state::end_accepting() noexcept {
  std::vector<stop_waiter> waiters;
  {
    const std::lock_guard lock(mutex);
    accepting = false;
    waiters = take_waiters_if_stopped();
  }
  complete(std::move(waiters));
}

std::vector<listener_state::stop_waiter> listener_state::take_waiters_if_stopped() {
  if (!stopping || accepting || active != 0) return {};
  return std::move(stop_waiters);
}

void listener_state::complete(std::vector<stop_waiter> waiters) {
  // Each on its own executor, and never inside the caller's stack.
  for (auto& w : waiters) {
    asio::post(w.executor, [h = std::move(w.handler)]() mutable { std::move(h)(); });
  }
}

namespace {

asio::awaitable<void> accept_loop(std::shared_ptr<listener_state> st) {
  asio::steady_timer backoff(st->executor);
  const auto& o = st->options;
  for (;;) {
    auto ex = o.connection_executor ? o.connection_executor() : st->executor;
    auto [ec, socket] = co_await st->acceptor.async_accept(ex, use_tuple);
    if (st->stopping_now()) break;
    if (ec) {
      if (ec == asio::error::operation_aborted || !st->acceptor.is_open()) break;
      // EMFILE and the like: the pending connection stays in the backlog; retrying at once
      // would spin.
      ++st->accept_errors;
      backoff.expires_after(std::chrono::milliseconds(50));
      (void)co_await backoff.async_wait(use_tuple);
      continue;
    }
    ++st->accepted;
    set_no_delay(socket);
    error_code remote_ec;
    const auto remote = socket.remote_endpoint(remote_ec);
    if (remote_ec) continue;  // gone already
    auto stream = make_stream(o.transport, std::move(socket), o.tls);
    auto conn = std::make_shared<server_connection_impl>(st, std::move(stream), remote, st->next_id++, ex);
    st->add(conn.get());
    asio::co_spawn(ex, server_connection_impl::run(conn), [conn](std::exception_ptr e) {
      if (!e) return;
      report_exception("an MQTT server handshake", e);
      conn->fail_run();
    });
  }
}

}  // namespace

}  // namespace detail

// --- server_connection ---

namespace {
detail::server_connection_impl& impl(server_connection& c) { return static_cast<detail::server_connection_impl&>(c); }
const detail::server_connection_impl& impl(const server_connection& c) {
  return static_cast<const detail::server_connection_impl&>(c);
}
}  // namespace

boost::system::error_code server_connection::accept(const mqtt::accept_params& params) { return impl(*this).accept(params); }
boost::system::error_code server_connection::refuse(mqtt::connect_return_code code) { return impl(*this).refuse(code); }
mqtt::result<std::uint16_t> server_connection::publish(std::string_view topic, std::string_view payload, mqtt::qos qos,
                                                       bool retain) {
  return impl(*this).publish(topic, payload, qos, retain);
}
void server_connection::close() { impl(*this).close(); }
void server_connection::abort() { impl(*this).abort(); }
std::uint64_t server_connection::id() const noexcept { return impl(*this).id(); }
transport_kind server_connection::transport() const noexcept { return impl(*this).kind(); }
const boost::asio::ip::tcp::endpoint& server_connection::remote_endpoint() const noexcept { return impl(*this).remote(); }
byte_stream* server_connection::stream() noexcept { return impl(*this).stream(); }
const mqtt::session* server_connection::session() const noexcept { return impl(*this).session(); }
boost::asio::any_io_executor server_connection::executor() const noexcept { return impl(*this).executor(); }
std::any& server_connection::user_data() noexcept { return impl(*this).user(); }
std::shared_ptr<server_connection> server_connection::shared() { return impl(*this).shared(); }

std::optional<auth::peer_certificate> server_connection::peer_certificate() const {
  auto* s = const_cast<detail::server_connection_impl&>(impl(*this)).stream();
  ssl_st* ssl = s != nullptr ? s->tls_handle() : nullptr;
  if (ssl == nullptr) return std::nullopt;
  return auth::get_peer_certificate(ssl);
}

std::string server_connection::alpn() const {
  auto* s = const_cast<detail::server_connection_impl&>(impl(*this)).stream();
  ssl_st* ssl = s != nullptr ? s->tls_handle() : nullptr;
  if (ssl == nullptr) return {};
  return auth::negotiated_alpn(ssl);
}

std::string_view server_connection::ws_request_target() const noexcept {
  auto* s = const_cast<detail::server_connection_impl&>(impl(*this)).stream();
  return s != nullptr ? s->request_target() : std::string_view{};
}

// --- mqtt_listener ---

mqtt_listener::mqtt_listener(boost::asio::any_io_executor executor, listener_options options, server_handler& handler)
    : state_(std::make_shared<detail::listener_state>(std::move(executor), std::move(options), handler)) {}

mqtt_listener::~mqtt_listener() { stop(); }

boost::system::error_code mqtt_listener::listen() {
  auto& st = *state_;
  const auto& o = st.options;
  if (uses_tls(o.transport) && o.tls == nullptr) return net_errc::missing_tls_context;
  boost::system::error_code ec;
  st.acceptor.open(o.endpoint.protocol(), ec);
  if (!ec) st.acceptor.set_option(boost::asio::socket_base::reuse_address(true), ec);
  if (!ec) st.acceptor.bind(o.endpoint, ec);
  if (!ec) st.acceptor.listen(o.backlog, ec);
  if (!ec) st.bound = st.acceptor.local_endpoint(ec);
  if (ec) {
    boost::system::error_code ignored;
    st.acceptor.close(ignored);
    return ec;
  }
  {
    const std::lock_guard lock(st.mutex);
    st.accepting = true;
  }
  boost::asio::co_spawn(st.executor, detail::accept_loop(state_), [state = state_](std::exception_ptr e) {
    if (e) detail::report_exception("the MQTT accept loop", e);
    state->end_accepting();
  });
  return {};
}

boost::asio::ip::tcp::endpoint mqtt_listener::local_endpoint() const { return state_->bound; }

void mqtt_listener::stop() {
  // On the listener's executor: the acceptor belongs to it.
  boost::asio::post(state_->executor, [state = state_] { state->stop(); });
}

boost::asio::awaitable<void> mqtt_listener::async_wait_stopped() {
  auto keep_alive = state_;
  auto* state = keep_alive.get();
  // A raw pointer, not the shared_ptr: GCC 12 destroys a lambda temporary with non-trivial
  // captures twice when it appears in a co_await expression.
  co_await boost::asio::async_initiate<const boost::asio::use_awaitable_t<>&, void()>(
      [state](auto handler) {
        // Taken before type erasure: Boost 1.81's any_completion_handler cannot be posted to
        // its own associated executor.
        auto ex = boost::asio::get_associated_executor(handler, state->executor);
        std::unique_lock lock(state->mutex);
        if (state->stopping && !state->accepting && state->active == 0) {
          lock.unlock();
          boost::asio::post(ex, [h = std::move(handler)]() mutable { std::move(h)(); });
          return;
        }
        state->stop_waiters.push_back({std::move(ex), std::move(handler)});
      },
      boost::asio::use_awaitable);
}

listener_stats mqtt_listener::stats() const {
  const auto& st = *state_;
  listener_stats s;
  s.accepted = st.accepted.load(std::memory_order_relaxed);
  s.handshake_failures = st.handshake_failures.load(std::memory_order_relaxed);
  s.handshake_timeouts = st.handshake_timeouts.load(std::memory_order_relaxed);
  s.accept_errors = st.accept_errors.load(std::memory_order_relaxed);
  s.handler_exceptions = st.handler_exceptions.load(std::memory_order_relaxed);
  const std::lock_guard lock(st.mutex);
  s.active = st.active;
  return s;
}

const listener_options& mqtt_listener::options() const noexcept { return state_->options; }

}  // namespace twinfleet::net
