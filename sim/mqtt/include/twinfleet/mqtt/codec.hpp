// MQTT 3.1.1 packet encoding and incremental, zero-copy decoding.
//
// Pure functions: no I/O, no allocation except a SUBSCRIBE/SUBACK/UNSUBSCRIBE's list of
// filters or codes, and the growth of the caller's output buffer. Thread-safe (no shared state).
//
// The codec is strict where the specification says MUST, so that a server built on it
// refuses what a conforming server refuses, and symmetric: a packet `encode()` accepts is one
// `decode()` accepts (payload bytes excepted, which are never checked).
#pragma once

#include <twinfleet/mqtt/error.hpp>
#include <twinfleet/mqtt/packet.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace twinfleet::mqtt {

// The largest remaining length four length bytes can express.
inline constexpr std::uint32_t max_remaining_length = 268'435'455;

struct decode_options {
  // The largest whole packet (fixed header included) accepted. Larger packets are refused as
  // soon as their fixed header is read, before their body is buffered, so a peer cannot make
  // the I/O layer allocate more than this.
  std::size_t max_packet_size = 1024 * 1024;
};

// What `decode()` found at the start of the input: one of
// - a packet: `packet` holds it and `consumed` is its size in bytes (> 0);
// - need more bytes: `consumed == 0`, no packet, no error; `needed` is the size the input must
//   reach before decoding can progress (the whole packet's size once its fixed header is in);
// - an error: `error` is set, `consumed == 0`. The stream cannot be resynchronised after an
//   error: the connection should be closed.
struct decode_result {
  std::optional<mqtt::packet> packet;
  std::size_t consumed = 0;
  std::size_t needed = 0;
  boost::system::error_code error;
  // The protocol level byte of a CONNECT, set once it has been read, including when the error
  // is unsupported_protocol_level (5 for MQTT 5), so that a server can answer CONNACK 0x01
  // and log what the client spoke. 0 otherwise.
  std::uint8_t protocol_level = 0;

  [[nodiscard]] bool ok() const noexcept { return packet.has_value(); }
  [[nodiscard]] bool need_more() const noexcept { return !packet && !error; }
};

// Decodes the first packet in `input`. Views in the returned packet point into `input`.
// Never reads outside `input`, never throws (except std::bad_alloc for the filter or code list
// of a SUBSCRIBE, SUBACK or UNSUBSCRIBE, whose length max_packet_size bounds).
// A remaining length written in more bytes than needed (80 00 for 0) is accepted, as 3.1.1
// does not forbid it; a fifth length byte is not. The password-needs-a-user-name rule of 3.1.1
// is applied to MQTT 3.1 CONNECTs too.
// Errors: every `mqtt_errc` of the "Framing", "CONNECT / CONNACK" and "Fields" groups except
// string_too_long.
[[nodiscard]] decode_result decode(std::span<const std::uint8_t> input, const decode_options& options = {});
[[nodiscard]] decode_result decode(std::string_view input, const decode_options& options = {});

// The encoded size of `p` in bytes, or the error `encode()` would give.
[[nodiscard]] result<std::size_t> encoded_size(const packet& p);

// Appends the encoding of `p` to `out`. On error `out` is left unchanged.
// Errors: the ones decode() would give for the same packet (bad_utf8, bad_topic,
// bad_topic_filter, no_topic_filters, zero_packet_id, bad_qos, bad_flags for DUP on QoS 0,
// password_without_username, bad_connack_flags, bad_return_code, malformed_packet for an empty
// SUBACK), string_too_long, and packet_too_large above max_remaining_length.
boost::system::error_code encode(const packet& p, std::string& out);
boost::system::error_code encode(const packet& p, std::vector<std::uint8_t>& out);

// MQTT's rules for UTF-8 strings (section 1.5.3): well-formed UTF-8 (no overlong forms, no
// code points above U+10FFFF), no surrogates U+D800..U+DFFF, no U+0000. The length limit of
// 65,535 bytes is not checked here.
[[nodiscard]] bool is_valid_mqtt_utf8(std::string_view s) noexcept;

}  // namespace twinfleet::mqtt
