// Errors of the MQTT module: why a packet was refused by the codec, why a session closed its
// connection, why an application call was refused.
//
// They are `error_code`s in `mqtt_category()` ("twinfleet.mqtt"), kept apart from the broker's
// own answers (CONNACK return codes, SUBACK failure codes), which are values in packet.hpp.
// The hub and the device engine count them in metrics by code.
#pragma once

#include <boost/system/error_code.hpp>
#include <boost/system/result.hpp>

#include <type_traits>

namespace twinfleet::mqtt {

enum class mqtt_errc {
  // Framing (fixed header)
  malformed_remaining_length = 1,  // a fifth remaining-length byte (continuation bit on the 4th)
  packet_too_large,                // the packet is bigger than the configured maximum (or than
                                   // 268,435,455 bytes of remaining length when encoding)
  bad_packet_type,                 // packet type 0 or 15
  bad_flags,                       // reserved fixed-header flags wrong for the type, or DUP on QoS 0
  malformed_packet,                // a field runs past the packet, bytes left over, wrong length

  // CONNECT / CONNACK
  bad_protocol_name,           // neither "MQTT" nor "MQIsdp"
  unsupported_protocol_level,  // a known name with a level other than 4 ("MQTT") or 3 ("MQIsdp")
  bad_connect_flags,           // reserved bit set, or will QoS/retain without the will flag
  password_without_username,   // password flag set, user name flag clear
  bad_connack_flags,           // reserved CONNACK flag bits, or session present on a refusal
  bad_return_code,             // CONNACK code above 5, SUBACK code not 0/1/2/0x80, wrong count

  // Fields
  bad_utf8,           // ill-formed UTF-8, U+0000, or a surrogate code point
  bad_topic,          // empty topic name, or one with + or #
  bad_topic_filter,   // empty filter, or + / # not alone in their level, or # not last
  no_topic_filters,   // SUBSCRIBE or UNSUBSCRIBE without any filter
  zero_packet_id,     // packet identifier 0 where one is required
  bad_qos,            // QoS 3, or reserved bits set in a SUBSCRIBE's requested-QoS byte
  string_too_long,    // encoding a string or binary field of more than 65,535 bytes

  // Session: why the connection is being closed
  protocol_violation,      // a packet not allowed in this state or direction (no CONNECT first,
                           // a second CONNECT, a CONNACK to a server, a QoS 2 PUBLISH to a client)
  connect_timeout,         // no CONNECT (server) or CONNACK (client) in time
  keep_alive_timeout,      // no PINGRESP in time (client), 1.5 x keep-alive silence (server)
  connection_refused,      // a CONNACK with a non-zero return code was received or sent
  application_close,       // session::close() was called

  // Session: why an application call was refused
  not_connected,        // the call needs an established connection
  already_connected,    // connect() on a session that is connecting or connected
  wrong_role,           // a client call on a server session or the reverse
  qos_not_supported,    // QoS 2 publish or subscribe (this module implements QoS 0 and 1)
  queue_full,           // more QoS 1 publishes waiting than session_options::max_queued
  packet_id_exhausted,  // all 65,535 packet identifiers are in use
  unknown_packet_id,    // suback() for a packet id with no SUBSCRIBE awaiting an answer
  no_pending_connect,   // accept() or refuse() without a CONNECT awaiting the decision
};

// The category of `mqtt_errc`; its name is "twinfleet.mqtt". Thread-safe (a constant).
[[nodiscard]] const boost::system::error_category& mqtt_category() noexcept;

[[nodiscard]] inline boost::system::error_code make_error_code(mqtt_errc e) noexcept {
  return {static_cast<int>(e), mqtt_category()};
}

// A value or an error_code in `mqtt_category()`. `.value()` throws boost::system::system_error.
template <class T>
using result = boost::system::result<T>;

}  // namespace twinfleet::mqtt

template <>
struct boost::system::is_error_code_enum<twinfleet::mqtt::mqtt_errc> : std::true_type {};
