// A sans-I/O MQTT 3.1.1 session, for either end of a connection: the client a simulated device
// runs, or the server side of one connection of the local hub.
//
// The session owns no socket, no timer and no clock. The I/O layer
// - feeds received bytes to `on_bytes()` (one packet per call) and acts on the event returned;
// - sends what `take_output()` hands over after every call;
// - arms one timer for `next_deadline()` and calls `on_timer()` when it fires;
// - closes the transport once `closing()` is true and the output is sent, then calls
//   `on_connection_lost()` (also when the transport fails on its own).
// Every call that can produce output takes `now`, the time it happens, so keep-alive and
// timeouts run on whatever clock the caller uses (virtual time in tests).
//
// The read side of an I/O layer, in outline:
//
//   std::string_view in = read_buffer;               // bytes received and not yet consumed
//   while (!s.closing()) {
//     auto step = s.on_bytes(in, now);
//     if (step.consumed == 0 && std::holds_alternative<std::monostate>(step.event)) break;
//     handle(step.event);                            // views into `in` are valid here
//     in.remove_prefix(step.consumed);
//     if (step.consumed == 0) break;                 // a closed_event
//   }
//   read_buffer.erase(0, read_buffer.size() - in.size());
//   s.take_output(write_buffer);  /* write it */     timer.expires_at(*s.next_deadline());
//
// Per-connection state is kept small (a fleet process holds ~20,000 sessions): no receive
// buffer (the I/O layer keeps its read buffer, and `on_bytes()` says how much it consumed),
// an output string that is empty between flushes, and small vectors for QoS 1 publishes in
// flight or queued and for subscriptions awaiting an answer.
//
// QoS 0 and 1 are implemented both ways. QoS 2 is not: a client cannot publish or subscribe
// with it; a server passes an incoming QoS 2 PUBLISH to the application unanswered (Azure IoT Hub
// closes the connection, AWS IoT ignores it; PROTOCOLS.md A4, B9).
//
// Not thread-safe: one session belongs to one executor (strand or io_context thread).
#pragma once

#include <twinfleet/mqtt/codec.hpp>
#include <twinfleet/mqtt/error.hpp>
#include <twinfleet/mqtt/packet.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace twinfleet::mqtt {

using time_point = std::chrono::steady_clock::time_point;

enum class role : std::uint8_t { client, server };

enum class session_state : std::uint8_t {
  idle,               // client: not connected (new, or after on_connection_lost); connect() starts
  connecting,         // client: CONNECT sent, waiting for CONNACK
  awaiting_connect,   // server: waiting for the client's CONNECT
  awaiting_decision,  // server: CONNECT handed to the application; accept() or refuse() is due
  connected,
  closing,  // the transport is to be closed once the output is sent
  closed,   // server: the connection is gone; the session is finished
};

// Settings shared by many sessions; copied into each.
struct session_options {
  // Incoming packets larger than this (fixed header included) close the connection with
  // packet_too_large before their body is read.
  std::uint32_t max_packet_size = 1024 * 1024;
  // Outgoing QoS 1 publishes sent and not yet acknowledged, at most. Further ones wait in order.
  std::uint16_t max_in_flight = 16;
  // Outgoing QoS 1 publishes waiting behind the in-flight ones, at most; publish() fails with
  // queue_full beyond.
  std::uint16_t max_queued = 1024;
  // Client: the longest wait for CONNACK after connect(). Server: the longest wait for CONNECT
  // (and for the application's accept/refuse) from construction. Zero waits forever.
  std::chrono::milliseconds connect_timeout{10'000};
  // Client: the longest wait for PINGRESP after a PINGREQ. Zero means the keep-alive interval.
  std::chrono::milliseconds ping_timeout{0};
  // Server: the connection closes after keep_alive x this factor without a packet from the
  // client (1.5 in MQTT 3.1.1 section 3.1.2.10, and at Azure and AWS).
  double keep_alive_factor = 1.5;
  // Keep-alive deadlines fall on a grid of this step (of the clock's epoch): a client pings up
  // to one step early, a server gives a silent client up to one step more. Connections whose
  // deadlines fall in one step then share one timer expiry, and a fleet's process wakes once
  // per step instead of once per connection (bench/README.md, stop 13). Zero: exact deadlines.
  std::chrono::milliseconds keep_alive_grid{100};
  // Server: take MQTT 3.1 ("MQIsdp", level 3) clients. Neither Azure nor AWS does; when false
  // they get CONNACK 0x01 like an MQTT 5 client.
  bool accept_mqtt_3_1 = false;
};

// The session closed the connection on its own: a protocol error, a decode error, a timeout, a
// refused CONNECT. Output may still hold a last packet (a CONNACK refusal) to send first.
struct closed_event {
  boost::system::error_code reason;
  friend bool operator==(const closed_event&, const closed_event&) = default;
};

// What a received packet or a timer means to the application. Packet alternatives carry the
// received packet (views into the bytes given to on_bytes(), valid as long as they are):
// - connect_packet (server): a client wants in; call accept() or refuse() before on_bytes().
// - connack_packet (client): the answer to connect(); when it is not `accepted`, the session is
//   closing with connection_refused.
// - publish_packet (both): an application message. QoS 1 has been acknowledged already (the
//   PUBACK is in the output). QoS 2 reaches only a server, unanswered.
// - puback_packet (both): the outgoing QoS 1 publish with this packet id was delivered.
// - subscribe_packet (server): answer with suback().
// - suback_packet (client): the answer to subscribe(), one code per filter.
// - unsubscribe_packet (server): the UNSUBACK is in the output already.
// - unsuback_packet (client): the answer to unsubscribe().
// - disconnect_packet (server): a clean disconnect (drop the will); the session is closing.
// - closed_event: see above.
// std::monostate: nothing for the application (PINGREQ/PINGRESP, an unknown PUBACK, a timer).
using session_event =
    std::variant<std::monostate, connect_packet, connack_packet, publish_packet, puback_packet,
                 subscribe_packet, suback_packet, unsubscribe_packet, unsuback_packet,
                 disconnect_packet, closed_event>;

// The result of on_bytes(). `consumed == 0` with no event: the input holds no whole packet;
// `needed` is how many bytes it must hold for progress. Otherwise drop `consumed` bytes from
// the input once done with the event's views.
struct session_step {
  std::size_t consumed = 0;
  std::size_t needed = 0;
  session_event event;
};

// What accept() tells the client and how the session then supervises it.
struct accept_params {
  // Sent as CONNACK's session-present flag; forced to false for a clean session or MQTT 3.1.
  bool session_present = false;
  // Replaces the client's keep-alive (seconds) for supervision, as brokers that clamp it do
  // (AWS: below 30 becomes 30). The client is not told, as MQTT 3.1.1 has no way to.
  std::optional<std::uint16_t> keep_alive;
};

class session {
 public:
  // A server session's connect_timeout runs from `now`.
  session(mqtt::role r, time_point now, const session_options& options = {});

  // --- the I/O layer ---

  // Decodes and handles the first packet in `input`; see session_step and session_event.
  // Consumes nothing while closing, closed, idle, or awaiting the application's decision on a
  // CONNECT. Protocol and decode errors come back as a closed_event (the session is then
  // closing); a server answers an unsupported protocol level (MQTT 5, or 3.1 when not accepted)
  // with CONNACK 0x01, and an empty client id without clean session with CONNACK 0x02.
  [[nodiscard]] session_step on_bytes(std::span<const std::uint8_t> input, time_point now);
  [[nodiscard]] session_step on_bytes(std::string_view input, time_point now);

  // When on_timer() must next be called; none when no timer is needed.
  [[nodiscard]] std::optional<time_point> next_deadline() const noexcept;

  // Handles deadlines that passed at `now` (calling early or twice is harmless). A client sends
  // PINGREQ after keep-alive without sending anything. Returns closed_event with
  // connect_timeout or keep_alive_timeout when one expired, else std::monostate.
  session_event on_timer(time_point now);

  [[nodiscard]] bool has_output() const noexcept { return !tx_.empty(); }
  // The bytes waiting to be sent; the view is valid until the next non-const call.
  [[nodiscard]] std::string_view output() const noexcept { return tx_; }
  // Hands the waiting bytes to the I/O layer: swapped into `buffer` when it is empty, so that
  // the two strings' capacities are recycled, appended to it otherwise.
  void take_output(std::string& buffer);

  // The transport is gone (closed after closing(), or failed). Unsent output is dropped.
  // A client goes idle and keeps its QoS 1 publishes (sent ones are resent, with DUP, after the
  // next connect() without clean session); subscriptions awaiting an answer are forgotten.
  // A server session is finished (state closed).
  void on_connection_lost();

  [[nodiscard]] bool closing() const noexcept { return state_ == session_state::closing; }
  // Why the session closed or is closing: empty for a clean DISCONNECT (either way), else an
  // mqtt_errc. Kept until the next connect().
  [[nodiscard]] boost::system::error_code close_reason() const noexcept;

  // --- the application, client role ---

  // Sends CONNECT. With clean_session, every queued or unacknowledged publish is dropped.
  // Allowed when idle or closing (the old connection counts as lost).
  // Errors: wrong_role, already_connected, and encode()'s errors for the packet.
  boost::system::error_code connect(const connect_packet& p, time_point now);

  // Sends SUBSCRIBE; the answer arrives as a suback_packet with the returned packet id.
  // Errors: wrong_role, not_connected, qos_not_supported (QoS 2), packet_id_exhausted,
  // encode()'s errors (no_topic_filters, bad_topic_filter, bad_utf8, string_too_long, ...).
  result<std::uint16_t> subscribe(std::span<const subscription> subscriptions, time_point now);

  // Sends UNSUBSCRIBE; the answer arrives as an unsuback_packet with the returned packet id.
  // Errors: as subscribe() but qos_not_supported.
  result<std::uint16_t> unsubscribe(std::span<const std::string_view> filters, time_point now);

  // Sends DISCONNECT and starts closing (with an empty close reason).
  // Errors: wrong_role, not_connected.
  boost::system::error_code disconnect(time_point now);

  // --- the application, server role ---

  // Answers the pending CONNECT with CONNACK 0 and starts keep-alive supervision.
  // Errors: wrong_role, no_pending_connect.
  boost::system::error_code accept(time_point now, const accept_params& params = {});

  // Answers the pending CONNECT with a non-zero CONNACK code and starts closing
  // (connection_refused). Errors: wrong_role, no_pending_connect, bad_return_code for accepted.
  boost::system::error_code refuse(connect_return_code code, time_point now);

  // Answers a SUBSCRIBE (delivered as a subscribe_packet) with one code per filter, in order.
  // Errors: wrong_role, not_connected, unknown_packet_id, bad_return_code (a code that is not
  // 0, 1, 2 or 0x80, or a count that differs from the SUBSCRIBE's).
  boost::system::error_code suback(std::uint16_t packet_id, std::span<const suback_code> codes,
                                   time_point now);

  // --- the application, both roles ---

  // Publishes a message. QoS 0 is sent at once and returns packet id 0. QoS 1 gets the next free
  // packet id (1..65535, wrapping, skipping ids in use), is sent when fewer than max_in_flight
  // are unacknowledged and queued in order otherwise; a puback_packet event reports delivery.
  // A client may publish QoS 1 while not connected: it is queued for the next connection.
  // `topic` and `payload` are copied for QoS 1.
  // Errors: not_connected (QoS 0 not connected; server not connected), qos_not_supported
  // (QoS 2), queue_full, packet_id_exhausted, encode()'s errors (bad_topic, bad_utf8,
  // string_too_long, packet_too_large).
  result<std::uint16_t> publish(std::string_view topic, std::string_view payload, mqtt::qos q,
                                bool retain, time_point now);

  // Starts closing without sending anything more (a server refusing a QoS 2 publish the Azure
  // way, a client giving up). Close reason: application_close. No effect when already closing.
  void close();

  // --- observers ---

  [[nodiscard]] mqtt::role role() const noexcept { return role_; }
  [[nodiscard]] session_state state() const noexcept { return state_; }
  // The keep-alive in force (seconds): the CONNECT's, or accept_params::keep_alive.
  [[nodiscard]] std::uint16_t keep_alive() const noexcept { return keep_alive_; }
  // The protocol version of the current connection's CONNECT.
  [[nodiscard]] protocol_version version() const noexcept { return version_; }
  // Outgoing QoS 1 publishes sent and not acknowledged, and waiting to be sent.
  [[nodiscard]] std::size_t in_flight() const noexcept { return in_flight_; }
  [[nodiscard]] std::size_t queued() const noexcept { return outbox_.size() - in_flight_; }
  [[nodiscard]] const session_options& options() const noexcept { return options_; }

 private:
  struct outgoing_publish {
    std::string bytes;  // the encoded PUBLISH; DUP is set in it once it has been sent
    std::uint16_t packet_id;
  };
  struct pending_ack {
    std::uint32_t count;  // filters in the SUBSCRIBE / UNSUBSCRIBE
    std::uint16_t packet_id;
    bool unsubscribe;
  };

  session_event receive_as_client(packet& p, time_point now);
  session_event receive_as_server(packet& p, time_point now);
  session_event acknowledge(std::uint16_t packet_id, time_point now);
  session_event fail(mqtt_errc reason);
  boost::system::error_code send(const packet& p, time_point now);
  void send_queued(time_point now);
  [[nodiscard]] std::uint16_t allocate_packet_id() noexcept;
  [[nodiscard]] bool packet_id_in_use(std::uint16_t id) const noexcept;
  [[nodiscard]] std::chrono::steady_clock::duration ping_timeout() const noexcept;

  session_options options_;
  std::string tx_;
  std::vector<outgoing_publish> outbox_;  // in submission order; the first in_flight_ are sent
  std::vector<pending_ack> acks_;  // client: own SUBSCRIBE/UNSUBSCRIBE; server: SUBSCRIBEs to answer
  time_point last_send_{};
  time_point last_receive_{};
  time_point mark_{};  // connect started (or server session created), or PINGREQ sent
  std::uint16_t in_flight_ = 0;
  std::uint16_t keep_alive_ = 0;
  std::uint16_t next_packet_id_ = 1;
  mqtt::role role_;
  session_state state_;
  mqtt_errc close_reason_{};
  protocol_version version_ = protocol_version::v3_1_1;
  bool ping_outstanding_ = false;
  bool clean_session_ = true;
};

}  // namespace twinfleet::mqtt
