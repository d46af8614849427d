#include <twinfleet/mqtt/session.hpp>

#include <algorithm>

namespace twinfleet::mqtt {

using boost::system::error_code;

session::session(mqtt::role r, time_point now, const session_options& options)
    : options_(options),
      mark_(now),
      role_(r),
      state_(r == role::client ? session_state::idle : session_state::awaiting_connect) {
  // A cap of zero would queue every QoS 1 publish forever.
  options_.max_in_flight = std::max<std::uint16_t>(options_.max_in_flight, 1);
}

// --- the I/O layer ---

session_step session::on_bytes(std::span<const std::uint8_t> input, time_point now) {
  session_step step;
  if (state_ != session_state::connecting && state_ != session_state::connected &&
      state_ != session_state::awaiting_connect)
    return step;

  auto decoded = decode(input, decode_options{options_.max_packet_size});
  if (decoded.need_more()) {
    step.needed = decoded.needed;
    return step;
  }
  if (decoded.error) {
    const auto reason = static_cast<mqtt_errc>(decoded.error.value());
    if (role_ == role::server && state_ == session_state::awaiting_connect &&
        reason == mqtt_errc::unsupported_protocol_level) {
      // [MQTT-3.1.2-2]: tell the client why, so that it can fall back to 3.1.1.
      send(connack_packet{false, connect_return_code::unacceptable_protocol_version}, now);
    }
    step.event = fail(reason);
    return step;
  }

  step.consumed = decoded.consumed;
  last_receive_ = now;
  step.event = role_ == role::client ? receive_as_client(*decoded.packet, now) : receive_as_server(*decoded.packet, now);
  return step;
}

session_step session::on_bytes(std::string_view input, time_point now) {
  return on_bytes(std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(input.data()), input.size()),
                  now);
}

session_event session::receive_as_client(packet& p, time_point now) {
  if (state_ == session_state::connecting) {
    // [MQTT-3.2.0-1]: the first packet from the server is CONNACK.
    auto* ack = std::get_if<connack_packet>(&p);
    if (ack == nullptr) return fail(mqtt_errc::protocol_violation);
    if (ack->return_code != connect_return_code::accepted) {
      state_ = session_state::closing;
      close_reason_ = mqtt_errc::connection_refused;
      return *ack;
    }
    state_ = session_state::connected;
    // Unacknowledged publishes go first, in their original order, then the queue [MQTT-4.4.0-1].
    send_queued(now);
    return *ack;
  }

  if (auto* pub = std::get_if<publish_packet>(&p)) {
    // This client never subscribes with QoS 2, so a server may not send it [MQTT-3.8.4-6].
    if (pub->qos == qos::exactly_once) return fail(mqtt_errc::protocol_violation);
    if (pub->qos == qos::at_least_once) send(puback_packet{pub->packet_id}, now);
    return *pub;
  }
  if (auto* ack = std::get_if<puback_packet>(&p)) return acknowledge(ack->packet_id, now);
  if (auto* sub = std::get_if<suback_packet>(&p)) {
    auto it = std::find_if(acks_.begin(), acks_.end(),
                           [&](const pending_ack& a) { return !a.unsubscribe && a.packet_id == sub->packet_id; });
    // An answer to a SUBSCRIBE sent on an earlier connection, or a duplicate: nothing waits for it.
    if (it == acks_.end()) return std::monostate{};
    if (it->count != sub->return_codes.size()) return fail(mqtt_errc::protocol_violation);
    acks_.erase(it);
    return std::move(*sub);
  }
  if (auto* unsub = std::get_if<unsuback_packet>(&p)) {
    auto it = std::find_if(acks_.begin(), acks_.end(),
                           [&](const pending_ack& a) { return a.unsubscribe && a.packet_id == unsub->packet_id; });
    if (it == acks_.end()) return std::monostate{};
    acks_.erase(it);
    return *unsub;
  }
  if (std::holds_alternative<pingresp_packet>(p)) {
    ping_outstanding_ = false;
    return std::monostate{};
  }
  // CONNACK again, server-bound packets, and the QoS 2 flow this client never starts.
  return fail(mqtt_errc::protocol_violation);
}

session_event session::receive_as_server(packet& p, time_point now) {
  if (state_ == session_state::awaiting_connect) {
    // [MQTT-3.1.0-1]: the first packet from the client is CONNECT.
    auto* c = std::get_if<connect_packet>(&p);
    if (c == nullptr) return fail(mqtt_errc::protocol_violation);
    version_ = c->version;
    keep_alive_ = c->keep_alive;
    clean_session_ = c->clean_session;
    if (c->version == protocol_version::v3_1 && !options_.accept_mqtt_3_1) {
      send(connack_packet{false, connect_return_code::unacceptable_protocol_version}, now);
      return fail(mqtt_errc::unsupported_protocol_level);
    }
    // [MQTT-3.1.3-8]: a server cannot keep a session for a client it cannot name. MQTT 3.1
    // required a client id in every case.
    if (c->client_id.empty() && (!c->clean_session || c->version == protocol_version::v3_1)) {
      send(connack_packet{false, connect_return_code::identifier_rejected}, now);
      return fail(mqtt_errc::connection_refused);
    }
    state_ = session_state::awaiting_decision;
    return *c;
  }

  if (auto* pub = std::get_if<publish_packet>(&p)) {
    // QoS 2 is left unanswered: the application decides (Azure closes, AWS ignores).
    if (pub->qos == qos::at_least_once) send(puback_packet{pub->packet_id}, now);
    return *pub;
  }
  if (auto* ack = std::get_if<puback_packet>(&p)) return acknowledge(ack->packet_id, now);
  if (auto* sub = std::get_if<subscribe_packet>(&p)) {
    acks_.push_back(pending_ack{static_cast<std::uint32_t>(sub->subscriptions.size()), sub->packet_id, false});
    return std::move(*sub);
  }
  if (auto* unsub = std::get_if<unsubscribe_packet>(&p)) {
    // [MQTT-3.10.4-5]: UNSUBACK is due even when nothing matched, so the session answers.
    send(unsuback_packet{unsub->packet_id}, now);
    return std::move(*unsub);
  }
  if (std::holds_alternative<pingreq_packet>(p)) {
    send(pingresp_packet{}, now);
    return std::monostate{};
  }
  if (std::holds_alternative<disconnect_packet>(p)) {
    state_ = session_state::closing;
    close_reason_ = mqtt_errc{};
    return disconnect_packet{};
  }
  // A second CONNECT [MQTT-3.1.0-2], client-bound packets, and QoS 2 flow packets.
  return fail(mqtt_errc::protocol_violation);
}

session_event session::acknowledge(std::uint16_t packet_id, time_point now) {
  const auto sent_end = outbox_.begin() + in_flight_;
  const auto it = std::find_if(outbox_.begin(), sent_end,
                               [&](const outgoing_publish& o) { return o.packet_id == packet_id; });
  // A late duplicate, or an ack for a publish dropped by a clean session: harmless.
  if (it == sent_end) return std::monostate{};
  outbox_.erase(it);
  --in_flight_;
  send_queued(now);
  return puback_packet{packet_id};
}

namespace {

// `t` moved down (client) or up (server) onto the keep-alive grid; unchanged when the step is
// zero or not shorter than the period `t` ends.
time_point on_grid(time_point t, std::chrono::milliseconds step, std::chrono::milliseconds period, bool up) noexcept {
  const auto g = std::chrono::duration_cast<time_point::duration>(step);
  if (g <= time_point::duration::zero() || step >= period) return t;
  const auto since = t.time_since_epoch();
  auto down = since - since % g;
  if (up && down != since) down += g;
  return time_point(down);
}

}  // namespace

std::optional<time_point> session::next_deadline() const noexcept {
  switch (state_) {
    case session_state::connecting:
    case session_state::awaiting_connect:
    case session_state::awaiting_decision:
      if (options_.connect_timeout.count() <= 0) return std::nullopt;
      // A client's CONNACK wait ends on the grid too: its keep-alive deadline, on the grid and
      // counted from a later packet, then never comes before it, so the connection's pending
      // wait stays and is not re-armed (an extra timer operation per device mid-connect).
      if (role_ == role::client) return on_grid(mark_ + options_.connect_timeout, options_.keep_alive_grid, options_.connect_timeout, false);
      return mark_ + options_.connect_timeout;
    case session_state::connected:
      if (keep_alive_ == 0) return std::nullopt;
      if (role_ == role::client) {
        if (ping_outstanding_) return mark_ + ping_timeout();
        return on_grid(last_send_ + std::chrono::seconds(keep_alive_), options_.keep_alive_grid, std::chrono::seconds(keep_alive_), false);
      }
      return on_grid(last_receive_ + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                         std::chrono::duration<double>(keep_alive_ * options_.keep_alive_factor)),
                     options_.keep_alive_grid, std::chrono::seconds(keep_alive_), true);
    default: return std::nullopt;
  }
}

session_event session::on_timer(time_point now) {
  const auto deadline = next_deadline();
  if (!deadline || now < *deadline) return std::monostate{};
  if (state_ != session_state::connected) return fail(mqtt_errc::connect_timeout);
  if (role_ == role::server || ping_outstanding_) return fail(mqtt_errc::keep_alive_timeout);
  send(pingreq_packet{}, now);
  ping_outstanding_ = true;
  mark_ = now;
  return std::monostate{};
}

void session::take_output(std::string& buffer) {
  if (buffer.empty()) {
    buffer.swap(tx_);
  } else {
    buffer.append(tx_);
  }
  tx_.clear();
}

void session::on_connection_lost() {
  // An idle device may wait long for its reconnect: it should not hold a send buffer meanwhile.
  std::string().swap(tx_);
  in_flight_ = 0;
  ping_outstanding_ = false;
  acks_.clear();
  if (role_ == role::client) {
    state_ = session_state::idle;
  } else {
    state_ = session_state::closed;
    outbox_.clear();
  }
}

error_code session::close_reason() const noexcept {
  return close_reason_ == mqtt_errc{} ? error_code{} : make_error_code(close_reason_);
}

void session::close() {
  if (state_ == session_state::closing || state_ == session_state::closed || state_ == session_state::idle) return;
  state_ = session_state::closing;
  close_reason_ = mqtt_errc::application_close;
}

// --- client ---

error_code session::connect(const connect_packet& p, time_point now) {
  if (role_ != role::client) return mqtt_errc::wrong_role;
  if (state_ == session_state::closing) on_connection_lost();
  if (state_ != session_state::idle) return mqtt_errc::already_connected;
  if (auto ec = encode(p, tx_)) return ec;
  if (p.clean_session) {
    outbox_.clear();
    acks_.clear();
  }
  keep_alive_ = p.keep_alive;
  version_ = p.version;
  clean_session_ = p.clean_session;
  close_reason_ = mqtt_errc{};
  ping_outstanding_ = false;
  state_ = session_state::connecting;
  mark_ = now;
  last_send_ = now;
  last_receive_ = now;
  return {};
}

result<std::uint16_t> session::subscribe(std::span<const subscription> subscriptions, time_point now) {
  if (role_ != role::client) return mqtt_errc::wrong_role;
  if (state_ != session_state::connected) return mqtt_errc::not_connected;
  for (const auto& s : subscriptions) {
    if (s.qos == qos::exactly_once) return mqtt_errc::qos_not_supported;
  }
  const auto id = allocate_packet_id();
  if (id == 0) return mqtt_errc::packet_id_exhausted;
  const subscribe_packet p{id, {subscriptions.begin(), subscriptions.end()}};
  if (auto ec = send(p, now)) return ec;
  acks_.push_back(pending_ack{static_cast<std::uint32_t>(subscriptions.size()), id, false});
  return id;
}

result<std::uint16_t> session::unsubscribe(std::span<const std::string_view> filters, time_point now) {
  if (role_ != role::client) return mqtt_errc::wrong_role;
  if (state_ != session_state::connected) return mqtt_errc::not_connected;
  const auto id = allocate_packet_id();
  if (id == 0) return mqtt_errc::packet_id_exhausted;
  const unsubscribe_packet p{id, {filters.begin(), filters.end()}};
  if (auto ec = send(p, now)) return ec;
  acks_.push_back(pending_ack{static_cast<std::uint32_t>(filters.size()), id, true});
  return id;
}

error_code session::disconnect(time_point now) {
  if (role_ != role::client) return mqtt_errc::wrong_role;
  if (state_ != session_state::connected) return mqtt_errc::not_connected;
  send(disconnect_packet{}, now);
  state_ = session_state::closing;
  close_reason_ = mqtt_errc{};
  return {};
}

// --- server ---

error_code session::accept(time_point now, const accept_params& params) {
  if (role_ != role::server) return mqtt_errc::wrong_role;
  if (state_ != session_state::awaiting_decision) return mqtt_errc::no_pending_connect;
  // [MQTT-3.2.2-1]: no session is present after a clean start; MQTT 3.1 had no such flag.
  const bool present = params.session_present && !clean_session_ && version_ == protocol_version::v3_1_1;
  send(connack_packet{present, connect_return_code::accepted}, now);
  if (params.keep_alive) keep_alive_ = *params.keep_alive;
  state_ = session_state::connected;
  last_receive_ = now;
  return {};
}

error_code session::refuse(connect_return_code code, time_point now) {
  if (role_ != role::server) return mqtt_errc::wrong_role;
  if (state_ != session_state::awaiting_decision) return mqtt_errc::no_pending_connect;
  if (code == connect_return_code::accepted || static_cast<std::uint8_t>(code) > 5) return mqtt_errc::bad_return_code;
  send(connack_packet{false, code}, now);
  state_ = session_state::closing;
  close_reason_ = mqtt_errc::connection_refused;
  return {};
}

error_code session::suback(std::uint16_t packet_id, std::span<const suback_code> codes, time_point now) {
  if (role_ != role::server) return mqtt_errc::wrong_role;
  if (state_ != session_state::connected) return mqtt_errc::not_connected;
  const auto it = std::find_if(acks_.begin(), acks_.end(),
                               [&](const pending_ack& a) { return a.packet_id == packet_id; });
  if (it == acks_.end()) return mqtt_errc::unknown_packet_id;
  if (codes.size() != it->count) return mqtt_errc::bad_return_code;
  if (auto ec = send(suback_packet{packet_id, {codes.begin(), codes.end()}}, now)) return ec;
  acks_.erase(it);
  return {};
}

// --- both ---

result<std::uint16_t> session::publish(std::string_view topic, std::string_view payload, mqtt::qos q, bool retain,
                                       time_point now) {
  if (q == qos::exactly_once) return mqtt_errc::qos_not_supported;
  if (q != qos::at_most_once && q != qos::at_least_once) return mqtt_errc::bad_qos;
  if (q == qos::at_most_once) {
    if (state_ != session_state::connected) return mqtt_errc::not_connected;
    if (auto ec = send(publish_packet{topic, payload, q, retain, false, 0}, now)) return ec;
    return std::uint16_t{0};
  }

  if (role_ == role::server && state_ != session_state::connected) return mqtt_errc::not_connected;
  if (outbox_.size() >= std::size_t{options_.max_in_flight} + options_.max_queued) return mqtt_errc::queue_full;
  const auto id = allocate_packet_id();
  if (id == 0) return mqtt_errc::packet_id_exhausted;
  // Kept encoded: a retransmission is the same bytes with DUP set, and the application's topic
  // and payload need not outlive the call.
  std::string bytes;
  if (auto ec = encode(publish_packet{topic, payload, q, retain, false, id}, bytes)) return ec;
  outbox_.push_back(outgoing_publish{std::move(bytes), id});
  send_queued(now);
  return id;
}

// --- internals ---

session_event session::fail(mqtt_errc reason) {
  state_ = session_state::closing;
  close_reason_ = reason;
  ping_outstanding_ = false;
  return closed_event{make_error_code(reason)};
}

error_code session::send(const packet& p, time_point now) {
  if (auto ec = encode(p, tx_)) return ec;
  last_send_ = now;
  return {};
}

void session::send_queued(time_point now) {
  if (state_ != session_state::connected) return;
  while (in_flight_ < outbox_.size() && in_flight_ < options_.max_in_flight) {
    auto& o = outbox_[in_flight_++];
    tx_.append(o.bytes);
    // Any later transmission of this packet is a retransmission [MQTT-3.3.1-1].
    o.bytes[0] = static_cast<char>(o.bytes[0] | 0x08);
    last_send_ = now;
  }
}

std::uint16_t session::allocate_packet_id() noexcept {
  for (std::uint32_t tries = 0; tries < 65535; ++tries) {
    const auto id = next_packet_id_;
    next_packet_id_ = id == 65535 ? 1 : static_cast<std::uint16_t>(id + 1);
    if (!packet_id_in_use(id)) return id;
  }
  return 0;
}

bool session::packet_id_in_use(std::uint16_t id) const noexcept {
  const bool in_outbox = std::any_of(outbox_.begin(), outbox_.end(),
                                     [&](const outgoing_publish& o) { return o.packet_id == id; });
  if (in_outbox) return true;
  // A server's acks_ hold the client's packet ids, a separate number space.
  return role_ == role::client &&
         std::any_of(acks_.begin(), acks_.end(), [&](const pending_ack& a) { return a.packet_id == id; });
}

std::chrono::steady_clock::duration session::ping_timeout() const noexcept {
  if (options_.ping_timeout.count() > 0) return options_.ping_timeout;
  return std::chrono::seconds(keep_alive_);
}

}  // namespace twinfleet::mqtt
