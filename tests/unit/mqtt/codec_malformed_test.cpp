// Every way a packet can break the MQTT 3.1.1 rules gives its own error, and the encoder refuses
// to produce what the decoder would refuse.
#include <twinfleet/mqtt/codec.hpp>

#include "mqtt_test_util.hpp"

#include <catch2/catch.hpp>

using namespace twinfleet::mqtt;
using twinfleet::mqtt::test::from_hex;

namespace {

boost::system::error_code decode_error(std::string_view hex, decode_options options = {}) {
  const auto bytes = from_hex(hex);
  const auto r = decode(bytes, options);
  CHECK_FALSE(r.ok());
  CHECK(r.consumed == 0);
  return r.error;
}

// A CONNECT for 3.1.1 with the given flags byte and payload (hex), its length computed.
std::string connect_hex(std::string_view flags, std::string_view payload_hex) {
  const auto body = from_hex("00 04 4D 51 54 54 04") + from_hex(flags) + from_hex("00 3C") + from_hex(payload_hex);
  REQUIRE(body.size() < 128);
  return twinfleet::mqtt::test::to_hex(std::string(1, '\x10') + static_cast<char>(body.size()) + body);
}

}  // namespace

TEST_CASE("remaining length longer than four bytes is malformed", "[mqtt][codec][malformed]") {
  CHECK(decode_error("30 FF FF FF FF 01") == mqtt_errc::malformed_remaining_length);
  // Refused as soon as the fourth byte says "more follows", without waiting for a fifth.
  CHECK(decode_error("30 80 80 80 80") == mqtt_errc::malformed_remaining_length);
  CHECK(decode_error("C0 FF FF FF FF") == mqtt_errc::malformed_remaining_length);
}

TEST_CASE("a packet above the maximum size is refused from its header alone", "[mqtt][codec][malformed]") {
  // 3 bytes of header announcing 200 bytes of body, with a 100-byte limit.
  CHECK(decode_error("30 C8 01", decode_options{100}) == mqtt_errc::packet_too_large);
  // The limit counts the whole packet: 2 + 98 = 100 passes, 2 + 99 does not.
  CHECK(decode(from_hex("30 62"), decode_options{100}).need_more());
  CHECK(decode_error("30 63", decode_options{100}) == mqtt_errc::packet_too_large);
  // The default limit (1 MiB) refuses the largest length MQTT can express.
  CHECK(decode_error("30 FF FF FF 7F") == mqtt_errc::packet_too_large);
}

TEST_CASE("reserved packet types are refused", "[mqtt][codec][malformed]") {
  CHECK(decode_error("00 00") == mqtt_errc::bad_packet_type);
  CHECK(decode_error("F0 00") == mqtt_errc::bad_packet_type);
  CHECK(decode_error("F0") == mqtt_errc::bad_packet_type);
}

TEST_CASE("reserved fixed-header flags must match the packet type", "[mqtt][codec][malformed]") {
  CHECK(decode_error("80 08 00 01 00 03 61 2F 62 00") == mqtt_errc::bad_flags);  // SUBSCRIBE with 0000
  CHECK(decode_error("83 08 00 01 00 03 61 2F 62 00") == mqtt_errc::bad_flags);  // SUBSCRIBE with 0011
  CHECK(decode_error("A0 07 00 01 00 03 61 2F 62") == mqtt_errc::bad_flags);     // UNSUBSCRIBE with 0000
  CHECK(decode_error("60 02 00 01") == mqtt_errc::bad_flags);                    // PUBREL with 0000
  CHECK(decode_error("41 02 00 01") == mqtt_errc::bad_flags);                    // PUBACK with 0001
  CHECK(decode_error("12 00") == mqtt_errc::bad_flags);                          // CONNECT with 0010
  CHECK(decode_error("C8 00") == mqtt_errc::bad_flags);                          // PINGREQ with 1000
  CHECK(decode_error("E1 00") == mqtt_errc::bad_flags);                          // DISCONNECT with 0001
  // Flags are checked from the first byte, before the length arrives.
  CHECK(decode_error("60") == mqtt_errc::bad_flags);
  // DUP on a QoS 0 PUBLISH [MQTT-3.3.1-2].
  CHECK(decode_error("38 05 00 03 61 2F 62") == mqtt_errc::bad_flags);
}

TEST_CASE("QoS 3 is refused wherever a QoS appears", "[mqtt][codec][malformed]") {
  CHECK(decode_error("36 07 00 03 61 2F 62 00 01") == mqtt_errc::bad_qos);                  // PUBLISH
  CHECK(decode_error("82 08 00 01 00 03 61 2F 62 03") == mqtt_errc::bad_qos);               // SUBSCRIBE
  CHECK(decode_error("82 08 00 01 00 03 61 2F 62 05") == mqtt_errc::bad_qos);               // reserved bit 2
  CHECK(decode_error("82 08 00 01 00 03 61 2F 62 81") == mqtt_errc::bad_qos);               // reserved bit 7
  CHECK(decode_error(connect_hex("1C", "00 01 61 00 01 74 00 00")) == mqtt_errc::bad_qos);  // will QoS 3
}

TEST_CASE("CONNECT protocol name and level", "[mqtt][codec][malformed]") {
  CHECK(decode_error("10 0D 00 04 4D 51 54 58 04 02 00 3C 00 01 61") == mqtt_errc::bad_protocol_name);
  CHECK(decode_error("10 0C 00 03 4D 51 54 04 02 00 3C 00 01 61") == mqtt_errc::bad_protocol_name);

  // MQTT 5: the level is reported, so that a server can answer CONNACK 0x01.
  const auto v5 = decode(from_hex("10 11 00 04 4D 51 54 54 05 02 00 3C 00 00 04 64 65 76 31"));
  CHECK(v5.error == mqtt_errc::unsupported_protocol_level);
  CHECK(v5.protocol_level == 5);
  // A name and a level that do not go together.
  CHECK(decode_error("10 0D 00 04 4D 51 54 54 03 02 00 3C 00 01 61") == mqtt_errc::unsupported_protocol_level);
  CHECK(decode_error("10 0F 00 06 4D 51 49 73 64 70 04 02 00 3C 00 01 61") == mqtt_errc::unsupported_protocol_level);

  // MQTT 3.1 is recognised and parsed.
  const auto v31 = decode(from_hex("10 0F 00 06 4D 51 49 73 64 70 03 02 00 3C 00 01 61"));
  REQUIRE(v31.ok());
  CHECK(v31.protocol_level == 3);
  CHECK(std::get<connect_packet>(*v31.packet).version == protocol_version::v3_1);
}

TEST_CASE("CONNECT flags must be consistent", "[mqtt][codec][malformed]") {
  CHECK(decode(from_hex(connect_hex("02", "00 01 61"))).ok());
  CHECK(decode_error(connect_hex("03", "00 01 61")) == mqtt_errc::bad_connect_flags);  // reserved bit 0
  CHECK(decode_error(connect_hex("22", "00 01 61")) == mqtt_errc::bad_connect_flags);  // will retain, no will
  CHECK(decode_error(connect_hex("0A", "00 01 61")) == mqtt_errc::bad_connect_flags);  // will QoS 1, no will
  CHECK(decode_error(connect_hex("42", "00 01 61 00 02 70 77")) == mqtt_errc::password_without_username);
  // Fields announced by the flags must be there, and nothing after them.
  CHECK(decode_error(connect_hex("82", "00 01 61")) == mqtt_errc::malformed_packet);
  CHECK(decode_error(connect_hex("02", "00 01 61 00")) == mqtt_errc::malformed_packet);
  CHECK(decode_error(connect_hex("02", "00 05 61")) == mqtt_errc::malformed_packet);
  CHECK(decode_error("10 05 00 04 4D 51 54") == mqtt_errc::malformed_packet);
}

TEST_CASE("strings must be MQTT UTF-8", "[mqtt][codec][malformed]") {
  CHECK(decode_error(connect_hex("02", "00 02 C0 80")) == mqtt_errc::bad_utf8);            // overlong NUL
  CHECK(decode_error(connect_hex("02", "00 03 ED A0 80")) == mqtt_errc::bad_utf8);         // surrogate U+D800
  CHECK(decode_error(connect_hex("02", "00 01 00")) == mqtt_errc::bad_utf8);               // U+0000
  CHECK(decode_error(connect_hex("02", "00 01 FF")) == mqtt_errc::bad_utf8);
  CHECK(decode_error(connect_hex("82", "00 01 61 00 02 C3 28")) == mqtt_errc::bad_utf8);   // user name
  CHECK(decode_error(connect_hex("06", "00 01 61 00 01 80 00 00")) == mqtt_errc::bad_utf8);  // will topic
  CHECK(decode_error("30 04 00 02 E2 82") == mqtt_errc::bad_utf8);                         // truncated sequence
  CHECK(decode_error("82 06 00 01 00 01 FE 00") == mqtt_errc::bad_utf8);                   // filter
  CHECK(decode_error("A2 05 00 01 00 01 C1") == mqtt_errc::bad_utf8);                      // unsubscribe filter

  // Passwords and will payloads are binary.
  CHECK(decode(from_hex(connect_hex("C2", "00 01 61 00 01 75 00 02 00 FF"))).ok());
  CHECK(decode(from_hex(connect_hex("06", "00 01 61 00 01 74 00 02 00 FF"))).ok());
}

TEST_CASE("MQTT UTF-8 validation", "[mqtt][codec]") {
  CHECK(is_valid_mqtt_utf8(""));
  CHECK(is_valid_mqtt_utf8("plain ascii/topic"));
  CHECK(is_valid_mqtt_utf8("\xC3\xA9t\xC3\xA9"));      // été
  CHECK(is_valid_mqtt_utf8("\xE2\x82\xAC"));           // U+20AC
  CHECK(is_valid_mqtt_utf8("\xEF\xBF\xBF"));           // U+FFFF (a non-character is allowed)
  CHECK(is_valid_mqtt_utf8("\xF0\x9F\x8C\xA1"));       // U+1F321
  CHECK(is_valid_mqtt_utf8("\xF4\x8F\xBF\xBF"));       // U+10FFFF
  CHECK(is_valid_mqtt_utf8("\xED\x9F\xBF"));           // U+D7FF, just below the surrogates
  CHECK(is_valid_mqtt_utf8("\x01\x7F"));               // control characters are allowed

  CHECK_FALSE(is_valid_mqtt_utf8(std::string_view("a\0b", 3)));
  CHECK_FALSE(is_valid_mqtt_utf8("\xED\xA0\x80"));     // U+D800
  CHECK_FALSE(is_valid_mqtt_utf8("\xED\xBF\xBF"));     // U+DFFF
  CHECK_FALSE(is_valid_mqtt_utf8("\xC0\xAF"));         // overlong '/'
  CHECK_FALSE(is_valid_mqtt_utf8("\xE0\x80\xAF"));     // overlong '/'
  CHECK_FALSE(is_valid_mqtt_utf8("\xF0\x80\x80\xAF")); // overlong '/'
  CHECK_FALSE(is_valid_mqtt_utf8("\xF4\x90\x80\x80")); // above U+10FFFF
  CHECK_FALSE(is_valid_mqtt_utf8("\xF5\x80\x80\x80"));
  CHECK_FALSE(is_valid_mqtt_utf8("\x80"));             // stray continuation
  CHECK_FALSE(is_valid_mqtt_utf8("\xC3"));             // truncated
  CHECK_FALSE(is_valid_mqtt_utf8("\xE2\x82"));
  CHECK_FALSE(is_valid_mqtt_utf8("\xF0\x9F\x8C"));
  CHECK_FALSE(is_valid_mqtt_utf8("\xC3\x28"));
}

TEST_CASE("MQTT UTF-8 validation of long strings: a bad byte anywhere, also inside the 8-byte ASCII steps", "[mqtt][codec]") {
  // Long ASCII runs are checked eight bytes at a time: a NUL, a stray continuation byte or a
  // truncated sequence must be found at every offset, and a valid sequence after ASCII passes.
  for (std::size_t length : {7, 8, 9, 16, 17, 47, 64}) {
    const std::string ascii(length, 'a');
    INFO("length " << length);
    CHECK(is_valid_mqtt_utf8(ascii));
    CHECK(is_valid_mqtt_utf8(ascii + "\xC3\xA9" + ascii));
    for (std::size_t at = 0; at < length; ++at) {
      INFO("at " << at);
      auto with = [&](std::string_view bad) { return ascii.substr(0, at) + std::string(bad) + ascii.substr(at); };
      CHECK_FALSE(is_valid_mqtt_utf8(with(std::string_view("\0", 1))));
      CHECK_FALSE(is_valid_mqtt_utf8(with("\x80")));
      CHECK_FALSE(is_valid_mqtt_utf8(with("\xC3")));
      CHECK_FALSE(is_valid_mqtt_utf8(with("\xED\xA0\x80")));
      CHECK(is_valid_mqtt_utf8(with("\xE2\x82\xAC")));
      CHECK(is_valid_mqtt_utf8(with("\x7F")));
    }
  }
}

TEST_CASE("PUBLISH topic names may not be empty or hold wildcards", "[mqtt][codec][malformed]") {
  CHECK(decode_error("30 02 00 00") == mqtt_errc::bad_topic);
  CHECK(decode_error("30 05 00 03 61 2F 2B") == mqtt_errc::bad_topic);  // a/+
  CHECK(decode_error("30 03 00 01 23") == mqtt_errc::bad_topic);        // #
  CHECK(decode_error("30 05 00 03 61 23 62") == mqtt_errc::bad_topic);  // a#b
  CHECK(decode_error(connect_hex("06", "00 01 61 00 01 23 00 00")) == mqtt_errc::bad_topic);  // will topic #
  CHECK(decode_error("30 04 00 05 61 2F") == mqtt_errc::malformed_packet);  // topic runs past the packet
}

TEST_CASE("SUBSCRIBE and UNSUBSCRIBE filters follow the wildcard rules", "[mqtt][codec][malformed]") {
  // "a/#/b", "a#", "a/b+", "+a", "", "##"
  CHECK(decode_error("82 0A 00 01 00 05 61 2F 23 2F 62 00") == mqtt_errc::bad_topic_filter);
  CHECK(decode_error("82 07 00 01 00 02 61 23 00") == mqtt_errc::bad_topic_filter);
  CHECK(decode_error("82 09 00 01 00 04 61 2F 62 2B 00") == mqtt_errc::bad_topic_filter);
  CHECK(decode_error("82 07 00 01 00 02 2B 61 00") == mqtt_errc::bad_topic_filter);
  CHECK(decode_error("82 05 00 01 00 00 00") == mqtt_errc::bad_topic_filter);
  CHECK(decode_error("A2 06 00 01 00 02 23 23") == mqtt_errc::bad_topic_filter);
  CHECK(decode_error("82 06 00 01 00 05 61 2F") == mqtt_errc::malformed_packet);  // runs past the packet
  // A filter without its QoS byte.
  CHECK(decode_error("82 07 00 01 00 03 61 2F 62") == mqtt_errc::malformed_packet);
}

TEST_CASE("SUBSCRIBE and UNSUBSCRIBE need at least one filter", "[mqtt][codec][malformed]") {
  CHECK(decode_error("82 02 00 01") == mqtt_errc::no_topic_filters);
  CHECK(decode_error("A2 02 00 01") == mqtt_errc::no_topic_filters);
}

TEST_CASE("packet identifiers must not be zero", "[mqtt][codec][malformed]") {
  CHECK(decode_error("32 07 00 03 61 2F 62 00 00") == mqtt_errc::zero_packet_id);  // QoS 1 PUBLISH
  CHECK(decode_error("82 08 00 00 00 03 61 2F 62 00") == mqtt_errc::zero_packet_id);
  CHECK(decode_error("A2 07 00 00 00 03 61 2F 62") == mqtt_errc::zero_packet_id);
  CHECK(decode_error("90 03 00 00 00") == mqtt_errc::zero_packet_id);
  CHECK(decode_error("40 02 00 00") == mqtt_errc::zero_packet_id);
  CHECK(decode_error("50 02 00 00") == mqtt_errc::zero_packet_id);
  CHECK(decode_error("62 02 00 00") == mqtt_errc::zero_packet_id);
  CHECK(decode_error("70 02 00 00") == mqtt_errc::zero_packet_id);
  CHECK(decode_error("B0 02 00 00") == mqtt_errc::zero_packet_id);
  // QoS 0 has no packet identifier: these two bytes are payload.
  CHECK(decode(from_hex("30 07 00 03 61 2F 62 00 00")).ok());
}

TEST_CASE("fixed-length packets must have exactly their length", "[mqtt][codec][malformed]") {
  CHECK(decode_error("40 03 00 01 00") == mqtt_errc::malformed_packet);
  CHECK(decode_error("40 01 00") == mqtt_errc::malformed_packet);
  CHECK(decode_error("20 03 00 00 00") == mqtt_errc::malformed_packet);
  CHECK(decode_error("C0 01 00") == mqtt_errc::malformed_packet);
  CHECK(decode_error("D0 01") == mqtt_errc::malformed_packet);  // refused before the body arrives
  CHECK(decode_error("E0 7F") == mqtt_errc::malformed_packet);
  CHECK(decode_error("90 02 00 01") == mqtt_errc::malformed_packet);  // SUBACK without codes
}

TEST_CASE("CONNACK flags and return codes", "[mqtt][codec][malformed]") {
  CHECK(decode_error("20 02 02 00") == mqtt_errc::bad_connack_flags);
  CHECK(decode_error("20 02 01 05") == mqtt_errc::bad_connack_flags);  // session present on a refusal
  CHECK(decode_error("20 02 00 06") == mqtt_errc::bad_return_code);
  CHECK(decode_error("90 03 00 01 03") == mqtt_errc::bad_return_code);  // SUBACK code 3
  CHECK(decode_error("90 04 00 01 00 81") == mqtt_errc::bad_return_code);
}

TEST_CASE("the encoder refuses what the decoder would refuse", "[mqtt][codec][malformed]") {
  std::string out;
  CHECK(encode(publish_packet{"", "x"}, out) == mqtt_errc::bad_topic);
  CHECK(encode(publish_packet{"a/#", "x"}, out) == mqtt_errc::bad_topic);
  CHECK(encode(publish_packet{"\xC0\x80", "x"}, out) == mqtt_errc::bad_utf8);
  CHECK(encode(publish_packet{"a", "x", qos::at_least_once, false, false, 0}, out) == mqtt_errc::zero_packet_id);
  CHECK(encode(publish_packet{"a", "x", qos::at_most_once, false, true, 0}, out) == mqtt_errc::bad_flags);
  CHECK(encode(publish_packet{"a", "x", static_cast<qos>(3), false, false, 1}, out) == mqtt_errc::bad_qos);
  CHECK(encode(subscribe_packet{1, {}}, out) == mqtt_errc::no_topic_filters);
  CHECK(encode(subscribe_packet{0, {{"a", qos::at_most_once}}}, out) == mqtt_errc::zero_packet_id);
  CHECK(encode(subscribe_packet{1, {{"a/#/b", qos::at_most_once}}}, out) == mqtt_errc::bad_topic_filter);
  CHECK(encode(subscribe_packet{1, {{"a", static_cast<qos>(3)}}}, out) == mqtt_errc::bad_qos);
  CHECK(encode(unsubscribe_packet{1, {}}, out) == mqtt_errc::no_topic_filters);
  CHECK(encode(unsubscribe_packet{1, {"+x"}}, out) == mqtt_errc::bad_topic_filter);
  CHECK(encode(suback_packet{1, {}}, out) == mqtt_errc::malformed_packet);
  CHECK(encode(suback_packet{1, {static_cast<suback_code>(3)}}, out) == mqtt_errc::bad_return_code);
  CHECK(encode(connack_packet{true, connect_return_code::not_authorized}, out) == mqtt_errc::bad_connack_flags);
  CHECK(encode(connack_packet{false, static_cast<connect_return_code>(6)}, out) == mqtt_errc::bad_return_code);

  connect_packet c;
  c.password = "pw";
  CHECK(encode(c, out) == mqtt_errc::password_without_username);
  c.username = std::string_view("u\0", 2);
  CHECK(encode(c, out) == mqtt_errc::bad_utf8);
  c.username = "u";
  c.will = will_message{"w/+", "", qos::at_most_once, false};
  CHECK(encode(c, out) == mqtt_errc::bad_topic);
  c.will = will_message{"w", "", static_cast<qos>(3), false};
  CHECK(encode(c, out) == mqtt_errc::bad_qos);
  c.will.reset();
  c.version = static_cast<protocol_version>(5);
  CHECK(encode(c, out) == mqtt_errc::unsupported_protocol_level);

  const std::string long_string(65'536, 'a');
  CHECK(encode(publish_packet{long_string, "x"}, out) == mqtt_errc::string_too_long);
  c = connect_packet{};
  c.username = "u";
  c.password = long_string;
  CHECK(encode(c, out) == mqtt_errc::string_too_long);
  CHECK(out.empty());
  CHECK(encoded_size(publish_packet{long_string, "x"}).error() == mqtt_errc::string_too_long);

  // A 65,535-byte string is the longest allowed.
  CHECK_FALSE(encode(publish_packet{std::string_view(long_string).substr(1), "x"}, out));
}
