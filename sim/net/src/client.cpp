#include <twinfleet/net/client.hpp>

#include "connection_core.hpp"

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <optional>

namespace twinfleet::net {

namespace detail {

namespace {
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
}

class client_impl final : public connection_core {
 public:
  enum class phase : std::uint8_t {
    idle,        // no transport
    opening,     // TCP connect and handshakes
    connecting,  // CONNECT sent, waiting for CONNACK
    connected,   // CONNACK 0 received (closing included, until the loops end)
  };

  client_impl(asio::any_io_executor executor, const client_options& options)
      : connection_core(std::move(executor), options.read_buffer_size, options.close_timeout) {
    session_.emplace(mqtt::role::client, clock::now(), options.session);
  }

  ~client_impl() override {
    // Only reached with operations pending when the io_context was destroyed first: their
    // slots must not call into this object any more.
    for (auto& op : ops_) op.handler.get_cancellation_slot().clear();
  }

  static asio::awaitable<error_code> connect(std::shared_ptr<client_impl> self, std::optional<tcp::endpoint> endpoint,
                                             std::string_view host, std::uint16_t port,
                                             const client_transport& transport, const mqtt::connect_packet& packet,
                                             std::chrono::milliseconds timeout) {
    auto& c = *self;
    if (c.phase_ != phase::idle) co_return mqtt::mqtt_errc::already_connected;
    if (uses_tls(transport.kind) && transport.tls == nullptr) co_return net_errc::missing_tls_context;
    const auto deadline = clock::now() + timeout;
    c.phase_ = phase::opening;
    c.reason_ = {};
    c.reason_set_ = false;
    c.closed_ = false;
    c.stream_ = make_stream(transport.kind, tcp::socket(c.executor()), transport.tls);
    c.arm_handshake_watchdog(deadline);

    error_code ec;
    if (!endpoint) {
      // A literal address needs no resolver.
      const auto address = asio::ip::make_address(std::string(host), ec);
      if (!ec) endpoint.emplace(address, port);
    }
    if (endpoint && transport.local_address) {
      // A source address of our choosing (127.0.0.x): each one has its own ~28,000 ephemeral
      // ports towards one server address and port.
      auto& socket = c.stream_->socket();
      socket.open(endpoint->protocol(), ec);
      if (!ec) socket.bind(tcp::endpoint(*transport.local_address, 0), ec);
    }
    if (endpoint && !ec) {
      const auto [connect_ec] = co_await c.stream_->socket().async_connect(*endpoint, use_tuple);
      ec = connect_ec;
    } else if (endpoint) {
      // The bind failed: reported as the connect's error.
    } else {
      // Not bounded by the watchdog (closing the socket does not stop getaddrinfo), but by the
      // resolver's own timeouts; simulated fleets connect to addresses or to localhost.
      tcp::resolver resolver(c.executor());
      const auto [resolve_ec, results] = co_await resolver.async_resolve(std::string(host), std::to_string(port), use_tuple);
      ec = resolve_ec;
      if (!ec && !c.closed_) {
        const auto [connect_ec, chosen] = co_await asio::async_connect(c.stream_->socket(), results, use_tuple);
        ec = connect_ec;
        endpoint = chosen;
      }
    }
    if (!ec && !c.closed_) {
      set_no_delay(c.stream_->socket());
      const std::string name = !transport.server_name.empty() ? transport.server_name
                               : !host.empty()                ? std::string(host)
                                                              : endpoint->address().to_string();
      std::string ws_host = transport.ws_host;
      if (ws_host.empty()) {
        ws_host = !host.empty() ? std::string(host) : endpoint->address().to_string();
        ws_host += ':' + std::to_string(endpoint->port());
      }
      static const std::string default_subprotocol[] = {"mqtt"};
      const auto remaining = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now());
      ec = co_await c.stream_->async_client_handshake(client_handshake{
          name, transport.alpn, ws_host, transport.ws_target,
          transport.ws_subprotocols.empty() ? std::span<const std::string>(default_subprotocol)
                                            : std::span<const std::string>(transport.ws_subprotocols),
          std::max(remaining, std::chrono::milliseconds(1))});
    }
    if (!c.end_handshake()) {
      ec = net_errc::connect_timeout;
    } else if (c.closed_) {
      ec = c.reason_set_ ? c.reason_ : make_error_code(net_errc::aborted);
    }
    if (!ec) ec = c.session_->connect(packet, clock::now());
    if (ec) {
      c.close_stream();
      c.stream_.reset();
      c.phase_ = phase::idle;
      co_return ec;
    }

    c.phase_ = phase::connecting;
    c.connect_deadline_ = deadline;
    c.start_io();  // the writer sends the CONNECT
    const auto [result, codes] = co_await c.wait(op_kind::connect, 0);
    co_return result;
  }

  static asio::awaitable<error_code> publish(std::shared_ptr<client_impl> self, std::string_view topic,
                                             std::string_view payload, mqtt::qos q, bool retain) {
    auto& c = *self;
    if (!c.usable()) co_return mqtt::mqtt_errc::not_connected;
    const auto r = c.session_->publish(topic, payload, q, retain, clock::now());
    if (!r) co_return r.error();
    op_kind kind = op_kind::publish1;
    std::uint32_t key = *r;
    if (q == mqtt::qos::at_most_once) {
      kind = op_kind::publish0;
      key = ++c.out_generation_;
    }
    c.after_session_change();
    // A QoS 0 publish is done once written, which plain TCP usually does at once.
    if (kind == op_kind::publish0 && c.written_through(key)) co_return error_code{};
    const auto [ec, codes] = co_await c.wait(kind, key);
    co_return ec;
  }

  error_code publish_now(std::string_view topic, std::string_view payload, mqtt::qos q, bool retain) {
    if (!usable()) return mqtt::mqtt_errc::not_connected;
    const auto r = session_->publish(topic, payload, q, retain, clock::now());
    if (!r) return r.error();
    after_session_change();
    return {};
  }

  static asio::awaitable<mqtt::result<std::vector<mqtt::suback_code>>> subscribe(
      std::shared_ptr<client_impl> self, std::span<const mqtt::subscription> subscriptions) {
    auto& c = *self;
    if (!c.usable()) co_return mqtt::mqtt_errc::not_connected;
    const auto r = c.session_->subscribe(subscriptions, clock::now());
    if (!r) co_return r.error();
    c.after_session_change();
    auto [ec, codes] = co_await c.wait(op_kind::subscribe, *r);
    if (ec) co_return ec;
    co_return std::move(codes);
  }

  static asio::awaitable<error_code> unsubscribe(std::shared_ptr<client_impl> self,
                                                 std::span<const std::string_view> filters) {
    auto& c = *self;
    if (!c.usable()) co_return mqtt::mqtt_errc::not_connected;
    const auto r = c.session_->unsubscribe(filters, clock::now());
    if (!r) co_return r.error();
    c.after_session_change();
    const auto [ec, codes] = co_await c.wait(op_kind::unsubscribe, *r);
    co_return ec;
  }

  static asio::awaitable<error_code> disconnect(std::shared_ptr<client_impl> self) {
    auto& c = *self;
    if (!c.usable()) co_return mqtt::mqtt_errc::not_connected;
    if (const auto ec = c.session_->disconnect(clock::now())) co_return ec;
    c.after_session_change();
    const auto [ec, codes] = co_await c.wait(op_kind::closed, 0);
    co_return ec;
  }

  static asio::awaitable<error_code> wait_closed(std::shared_ptr<client_impl> self) {
    auto& c = *self;
    if (c.phase_ != phase::connected) co_return mqtt::mqtt_errc::not_connected;
    const auto [ec, codes] = co_await c.wait(op_kind::closed, 0);
    co_return ec;
  }

  void abort() noexcept {
    if (phase_ == phase::idle) return;
    note_reason(net_errc::aborted);
    close_stream();
  }

  [[nodiscard]] bool connected() const noexcept { return usable(); }
  [[nodiscard]] const mqtt::session& session() const noexcept { return *session_; }
  [[nodiscard]] byte_stream* stream() noexcept { return stream_.get(); }

  client_connection::message_handler on_message_;
  client_connection::closed_handler on_closed_;

 protected:
  void dispatch(mqtt::session_event& event, time_point /*now*/) override {
    if (auto* pub = std::get_if<mqtt::publish_packet>(&event)) {
      if (on_message_) on_message_(*pub);
    } else if (auto* ack = std::get_if<mqtt::puback_packet>(&event)) {
      complete_first(op_kind::publish1, ack->packet_id, {});
    } else if (auto* sub = std::get_if<mqtt::suback_packet>(&event)) {
      complete_first(op_kind::subscribe, sub->packet_id, {}, std::move(sub->return_codes));
    } else if (auto* unsub = std::get_if<mqtt::unsuback_packet>(&event)) {
      complete_first(op_kind::unsubscribe, unsub->packet_id, {});
    } else if (auto* connack = std::get_if<mqtt::connack_packet>(&event)) {
      if (connack->return_code == mqtt::connect_return_code::accepted) {
        phase_ = phase::connected;
        complete_first(op_kind::connect, 0, {});
      } else {
        // The session is closing; async_connect() completes once the connection is gone.
        note_reason(connack_error(connack->return_code));
      }
    }
  }

  void on_written(std::uint32_t generation) override {
    complete_if([generation](const pending_op& op) {
      return op.kind == op_kind::publish0 && static_cast<std::int32_t>(op.key - generation) <= 0;
    }, {});
  }

  std::optional<time_point> watchdog_deadline() const noexcept override {
    if (phase_ == phase::connecting) return connect_deadline_;
    return std::nullopt;
  }

  void on_watchdog() override {
    if (phase_ != phase::connecting) return;
    note_reason(net_errc::connect_timeout);
    close_stream();
  }

  void on_finished() override {
    stream_.reset();
    const bool was_connected = phase_ == phase::connected;
    phase_ = phase::idle;
    const error_code reason = reason_;
    auto ops = std::move(ops_);
    ops_.clear();
    for (auto& op : ops) {
      error_code ec = net_errc::connection_lost;
      if (op.kind == op_kind::closed) ec = reason;
      if (op.kind == op_kind::connect) ec = reason ? reason : make_error_code(net_errc::connection_closed);
      complete(op, ec, {});
    }
    if (was_connected && on_closed_) on_closed_(reason);
  }

 private:
  enum class op_kind : std::uint8_t { connect, publish0, publish1, subscribe, unsubscribe, closed };
  using op_handler = asio::any_completion_handler<void(error_code, std::vector<mqtt::suback_code>)>;
  struct pending_op {
    op_handler handler;
    std::uint32_t id;   // for cancellation
    std::uint32_t key;  // packet id, or output generation for QoS 0
    op_kind kind;

    pending_op(op_handler&& h, std::uint32_t i, std::uint32_t k, op_kind kd) noexcept
        : handler(std::move(h)), id(i), key(k), kind(kd) {}
    pending_op(pending_op&&) noexcept = default;
    // Boost 1.81's any_completion_handler move assignment wraps the source in a new handler
    // that wraps itself, endlessly; moving through the move constructor and swap() is sound.
    pending_op& operator=(pending_op&& other) noexcept {
      op_handler taken(std::move(other.handler));
      handler.swap(taken);
      id = other.id;
      key = other.key;
      kind = other.kind;
      return *this;
    }
  };

  [[nodiscard]] bool usable() const noexcept {
    return phase_ == phase::connected && !closed_ && !session_->closing();
  }

  // An awaitable for the completion of one pending operation: (error, SUBACK codes).
  asio::awaitable<std::tuple<error_code, std::vector<mqtt::suback_code>>> wait(op_kind kind, std::uint32_t key) {
    return asio::async_initiate<decltype(use_tuple), void(error_code, std::vector<mqtt::suback_code>)>(
        [this, kind, key](auto handler) { add_op(std::move(handler), kind, key); }, use_tuple);
  }

  template <class Handler>
  void add_op(Handler&& handler, op_kind kind, std::uint32_t key) {
    const auto id = ++next_op_id_;
    auto slot = asio::get_associated_cancellation_slot(handler);
    if (slot.is_connected()) {
      slot.assign([weak = weak_from_this(), id](asio::cancellation_type type) {
        if (type == asio::cancellation_type::none) return;
        if (auto self = weak.lock()) static_cast<client_impl&>(*self).cancel_op(id);
      });
    }
    ops_.emplace_back(op_handler(std::forward<Handler>(handler)), id, key, kind);
  }

  // Runs inside the cancellation slot's handler: the slot must not be cleared here.
  void cancel_op(std::uint32_t id) {
    const auto it = std::find_if(ops_.begin(), ops_.end(), [id](const pending_op& op) { return op.id == id; });
    if (it == ops_.end()) return;
    if (it->kind == op_kind::connect) {
      // A cancelled connect gives up the attempt; it completes once torn down, so that a retry
      // finds the connection idle.
      note_reason(asio::error::operation_aborted);
      close_stream();
      return;
    }
    auto op = std::move(*it);
    ops_.erase(it);
    post_completion(std::move(op.handler), asio::error::operation_aborted, {});
  }

  void complete(pending_op& op, error_code ec, std::vector<mqtt::suback_code> codes) {
    op.handler.get_cancellation_slot().clear();
    post_completion(std::move(op.handler), ec, std::move(codes));
  }

  // Posted: the awaiting coroutine must not resume inside the reader's loop. To the
  // connection's executor, where callers await (Boost 1.81's any_completion_handler cannot be
  // posted to its own associated executor).
  void post_completion(op_handler handler, error_code ec, std::vector<mqtt::suback_code> codes) {
    asio::post(executor(), [handler = std::move(handler), ec, codes = std::move(codes)]() mutable {
      std::move(handler)(ec, std::move(codes));
    });
  }

  void complete_first(op_kind kind, std::uint32_t key, error_code ec, std::vector<mqtt::suback_code> codes = {}) {
    const auto it = std::find_if(ops_.begin(), ops_.end(),
                                 [&](const pending_op& op) { return op.kind == kind && op.key == key; });
    if (it == ops_.end()) return;
    auto op = std::move(*it);
    ops_.erase(it);
    complete(op, ec, std::move(codes));
  }

  template <class Pred>
  void complete_if(Pred pred, error_code ec) {
    for (auto it = ops_.begin(); it != ops_.end();) {
      if (pred(*it)) {
        auto op = std::move(*it);
        it = ops_.erase(it);
        complete(op, ec, {});
      } else {
        ++it;
      }
    }
  }

  std::vector<pending_op> ops_;
  time_point connect_deadline_{};
  std::uint32_t next_op_id_ = 0;
  phase phase_ = phase::idle;
};

}  // namespace detail

client_connection::client_connection(boost::asio::any_io_executor executor, const client_options& options)
    : impl_(std::make_shared<detail::client_impl>(std::move(executor), options)) {}

client_connection::~client_connection() {
  if (!impl_) return;
  // The owner is going away: nothing may call back into it.
  impl_->on_message_ = nullptr;
  impl_->on_closed_ = nullptr;
  impl_->abort();
}

client_connection::client_connection(client_connection&&) noexcept = default;

client_connection& client_connection::operator=(client_connection&& other) noexcept {
  if (this != &other) {
    if (impl_) {
      impl_->on_message_ = nullptr;
      impl_->on_closed_ = nullptr;
      impl_->abort();
    }
    impl_ = std::move(other.impl_);
  }
  return *this;
}

void client_connection::set_message_handler(message_handler handler) { impl_->on_message_ = std::move(handler); }
void client_connection::set_closed_handler(closed_handler handler) { impl_->on_closed_ = std::move(handler); }

boost::asio::awaitable<boost::system::error_code> client_connection::async_connect(
    const boost::asio::ip::tcp::endpoint& server, const client_transport& transport,
    const mqtt::connect_packet& connect, std::chrono::milliseconds timeout) {
  return detail::client_impl::connect(impl_, server, {}, 0, transport, connect, timeout);
}

boost::asio::awaitable<boost::system::error_code> client_connection::async_connect(
    std::string_view host, std::uint16_t port, const client_transport& transport, const mqtt::connect_packet& connect,
    std::chrono::milliseconds timeout) {
  return detail::client_impl::connect(impl_, std::nullopt, host, port, transport, connect, timeout);
}

boost::asio::awaitable<boost::system::error_code> client_connection::async_publish(std::string_view topic,
                                                                                   std::string_view payload,
                                                                                   mqtt::qos qos, bool retain) {
  return detail::client_impl::publish(impl_, topic, payload, qos, retain);
}

boost::system::error_code client_connection::publish(std::string_view topic, std::string_view payload, mqtt::qos qos,
                                                     bool retain) {
  return impl_->publish_now(topic, payload, qos, retain);
}

boost::asio::awaitable<mqtt::result<std::vector<mqtt::suback_code>>> client_connection::async_subscribe(
    std::span<const mqtt::subscription> subscriptions) {
  return detail::client_impl::subscribe(impl_, subscriptions);
}

boost::asio::awaitable<boost::system::error_code> client_connection::async_unsubscribe(
    std::span<const std::string_view> filters) {
  return detail::client_impl::unsubscribe(impl_, filters);
}

boost::asio::awaitable<boost::system::error_code> client_connection::async_disconnect() {
  return detail::client_impl::disconnect(impl_);
}

boost::asio::awaitable<boost::system::error_code> client_connection::async_wait_closed() {
  return detail::client_impl::wait_closed(impl_);
}

void client_connection::abort() { impl_->abort(); }
bool client_connection::connected() const noexcept { return impl_->connected(); }
const mqtt::session& client_connection::session() const noexcept { return impl_->session(); }
byte_stream* client_connection::stream() noexcept { return impl_->stream(); }
boost::asio::any_io_executor client_connection::executor() const noexcept { return impl_->executor(); }

}  // namespace twinfleet::net
