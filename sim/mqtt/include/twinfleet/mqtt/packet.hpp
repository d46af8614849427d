// The fourteen MQTT 3.1.1 control packets as plain values.
//
// Every string and binary field is a view: when a packet comes out of `decode()`, the views
// point into the bytes that were decoded and are valid exactly as long as those bytes are (the
// I/O layer must not move or overwrite its read buffer while it still uses the packet). When a
// packet is built for `encode()`, the views must outlive the call only. Payloads and passwords
// are arbitrary bytes held in a `std::string_view` (not necessarily UTF-8), because what devices
// and the hub exchange is mostly JSON text.
//
// Plain values with defaulted equality; the usual rules for sharing values between threads apply.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <variant>
#include <vector>

namespace twinfleet::mqtt {

// The 4-bit type in the first byte of every packet (0 and 15 are reserved).
enum class packet_type : std::uint8_t {
  connect = 1,
  connack = 2,
  publish = 3,
  puback = 4,
  pubrec = 5,
  pubrel = 6,
  pubcomp = 7,
  subscribe = 8,
  suback = 9,
  unsubscribe = 10,
  unsuback = 11,
  pingreq = 12,
  pingresp = 13,
  disconnect = 14,
};

enum class qos : std::uint8_t { at_most_once = 0, at_least_once = 1, exactly_once = 2 };

// The protocol level byte of CONNECT for the versions this codec parses.
enum class protocol_version : std::uint8_t {
  v3_1 = 3,    // protocol name "MQIsdp"
  v3_1_1 = 4,  // protocol name "MQTT"
};

// CONNACK return codes (MQTT 3.1.1 section 3.2.2.3).
enum class connect_return_code : std::uint8_t {
  accepted = 0,
  unacceptable_protocol_version = 1,
  identifier_rejected = 2,
  server_unavailable = 3,
  bad_username_or_password = 4,
  not_authorized = 5,
};

// SUBACK return codes: the granted QoS, or failure.
enum class suback_code : std::uint8_t {
  granted_qos0 = 0x00,
  granted_qos1 = 0x01,
  granted_qos2 = 0x02,
  failure = 0x80,
};

struct will_message {
  std::string_view topic;    // a topic name: no wildcards
  std::string_view payload;  // bytes
  mqtt::qos qos = mqtt::qos::at_most_once;
  bool retain = false;

  friend bool operator==(const will_message&, const will_message&) = default;
};

struct connect_packet {
  protocol_version version = protocol_version::v3_1_1;
  bool clean_session = true;
  std::uint16_t keep_alive = 0;  // seconds; 0 turns keep-alive off
  std::string_view client_id;    // may be empty (3.1.1) when clean_session is set
  std::optional<will_message> will;
  std::optional<std::string_view> username;
  std::optional<std::string_view> password;  // bytes; only together with a username

  friend bool operator==(const connect_packet&, const connect_packet&) = default;
};

struct connack_packet {
  bool session_present = false;  // must be false when return_code is not accepted
  connect_return_code return_code = connect_return_code::accepted;

  friend bool operator==(const connack_packet&, const connack_packet&) = default;
};

struct publish_packet {
  std::string_view topic;    // a topic name: non-empty, no wildcards
  std::string_view payload;  // bytes, possibly empty
  mqtt::qos qos = mqtt::qos::at_most_once;
  bool retain = false;
  bool dup = false;             // only with QoS > 0
  std::uint16_t packet_id = 0;  // non-zero with QoS > 0; ignored and decoded as 0 with QoS 0

  friend bool operator==(const publish_packet&, const publish_packet&) = default;
};

struct puback_packet {
  std::uint16_t packet_id = 0;
  friend bool operator==(const puback_packet&, const puback_packet&) = default;
};
struct pubrec_packet {
  std::uint16_t packet_id = 0;
  friend bool operator==(const pubrec_packet&, const pubrec_packet&) = default;
};
struct pubrel_packet {
  std::uint16_t packet_id = 0;
  friend bool operator==(const pubrel_packet&, const pubrel_packet&) = default;
};
struct pubcomp_packet {
  std::uint16_t packet_id = 0;
  friend bool operator==(const pubcomp_packet&, const pubcomp_packet&) = default;
};

struct subscription {
  std::string_view filter;  // a topic filter: + and # allowed, each alone in its level
  mqtt::qos qos = mqtt::qos::at_most_once;  // the maximum QoS requested

  friend bool operator==(const subscription&, const subscription&) = default;
};

struct subscribe_packet {
  std::uint16_t packet_id = 0;
  std::vector<subscription> subscriptions;  // at least one

  friend bool operator==(const subscribe_packet&, const subscribe_packet&) = default;
};

struct suback_packet {
  std::uint16_t packet_id = 0;
  std::vector<suback_code> return_codes;  // one per filter of the SUBSCRIBE, in its order

  friend bool operator==(const suback_packet&, const suback_packet&) = default;
};

struct unsubscribe_packet {
  std::uint16_t packet_id = 0;
  std::vector<std::string_view> filters;  // at least one

  friend bool operator==(const unsubscribe_packet&, const unsubscribe_packet&) = default;
};

struct unsuback_packet {
  std::uint16_t packet_id = 0;
  friend bool operator==(const unsuback_packet&, const unsuback_packet&) = default;
};

struct pingreq_packet {
  friend bool operator==(const pingreq_packet&, const pingreq_packet&) = default;
};
struct pingresp_packet {
  friend bool operator==(const pingresp_packet&, const pingresp_packet&) = default;
};
struct disconnect_packet {
  friend bool operator==(const disconnect_packet&, const disconnect_packet&) = default;
};

// Alternatives are in packet_type order, so `index() + 1` is the packet type.
using packet = std::variant<connect_packet, connack_packet, publish_packet, puback_packet,
                            pubrec_packet, pubrel_packet, pubcomp_packet, subscribe_packet,
                            suback_packet, unsubscribe_packet, unsuback_packet, pingreq_packet,
                            pingresp_packet, disconnect_packet>;

[[nodiscard]] inline packet_type type_of(const packet& p) noexcept {
  return static_cast<packet_type>(p.index() + 1);
}

// "CONNECT", "PUBLISH", ... for logs; "RESERVED" for values outside 1..14.
[[nodiscard]] std::string_view to_string(packet_type t) noexcept;

}  // namespace twinfleet::mqtt
