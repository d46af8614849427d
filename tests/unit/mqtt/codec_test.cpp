// Encoding and decoding of well-formed packets: byte-exact against encodings written by hand
// from the MQTT 3.1.1 specification, and round trips of every packet type.
#include <twinfleet/mqtt/codec.hpp>

#include "mqtt_test_util.hpp"

#include <catch2/catch.hpp>

using namespace twinfleet::mqtt;
using twinfleet::mqtt::test::encoded;
using twinfleet::mqtt::test::from_hex;
using twinfleet::mqtt::test::to_hex;

namespace {

void check_encoding(const packet& p, std::string_view hex) {
  const auto expected = from_hex(hex);
  const auto bytes = encoded(p);
  CHECK(to_hex(bytes) == to_hex(expected));

  auto size = encoded_size(p);
  REQUIRE(size);
  CHECK(*size == expected.size());

  const auto r = decode(expected);
  REQUIRE(r.ok());
  CHECK(r.consumed == expected.size());
  CHECK(*r.packet == p);
}

}  // namespace

TEST_CASE("CONNECT with will, user name and password encodes byte for byte", "[mqtt][codec]") {
  connect_packet c;
  c.client_id = "dev1";
  c.keep_alive = 60;
  c.clean_session = true;
  c.will = will_message{"w/t", "bye", qos::at_least_once, true};
  c.username = "user";
  c.password = "pw";
  // flags: user 0x80 | password 0x40 | will retain 0x20 | will QoS 1 0x08 | will 0x04 | clean 0x02
  check_encoding(c,
                 "10 24"
                 " 00 04 4D 51 54 54 04 EE 00 3C"
                 " 00 04 64 65 76 31"
                 " 00 03 77 2F 74 00 03 62 79 65"
                 " 00 04 75 73 65 72"
                 " 00 02 70 77");
}

TEST_CASE("a minimal CONNECT and an MQTT 3.1 CONNECT encode byte for byte", "[mqtt][codec]") {
  connect_packet c;
  c.client_id = "a";
  c.clean_session = false;
  c.keep_alive = 0;
  check_encoding(c, "10 0D 00 04 4D 51 54 54 04 00 00 00 00 01 61");

  c.version = protocol_version::v3_1;
  c.clean_session = true;
  c.keep_alive = 10;
  check_encoding(c, "10 0F 00 06 4D 51 49 73 64 70 03 02 00 0A 00 01 61");
  CHECK(decode(encoded(c)).protocol_level == 3);
}

TEST_CASE("CONNACK, acks and the empty packets encode byte for byte", "[mqtt][codec]") {
  check_encoding(connack_packet{true, connect_return_code::accepted}, "20 02 01 00");
  check_encoding(connack_packet{false, connect_return_code::not_authorized}, "20 02 00 05");
  check_encoding(puback_packet{10}, "40 02 00 0A");
  check_encoding(pubrec_packet{0x1234}, "50 02 12 34");
  check_encoding(pubrel_packet{10}, "62 02 00 0A");
  check_encoding(pubcomp_packet{65535}, "70 02 FF FF");
  check_encoding(unsuback_packet{7}, "B0 02 00 07");
  check_encoding(pingreq_packet{}, "C0 00");
  check_encoding(pingresp_packet{}, "D0 00");
  check_encoding(disconnect_packet{}, "E0 00");
}

TEST_CASE("PUBLISH encodes its flags, packet id and payload", "[mqtt][codec]") {
  check_encoding(publish_packet{"a/b", "hi", qos::at_most_once, false, false, 0}, "30 07 00 03 61 2F 62 68 69");
  check_encoding(publish_packet{"a/b", "hi", qos::at_least_once, true, true, 10},
                 "3B 09 00 03 61 2F 62 00 0A 68 69");
  check_encoding(publish_packet{"a/b", "", qos::exactly_once, false, false, 1}, "34 07 00 03 61 2F 62 00 01");
  // Binary payloads are not text: NUL and invalid UTF-8 are fine.
  check_encoding(publish_packet{"t", std::string_view("\0\xFF", 2), qos::at_most_once, false, false, 0},
                 "30 05 00 01 74 00 FF");
}

TEST_CASE("SUBSCRIBE, SUBACK and UNSUBSCRIBE encode byte for byte", "[mqtt][codec]") {
  // The example of the specification (section 3.8.3.1), with the reserved flags 0010.
  check_encoding(subscribe_packet{10, {{"a/b", qos::at_least_once}, {"c/d", qos::exactly_once}}},
                 "82 0E 00 0A 00 03 61 2F 62 01 00 03 63 2F 64 02");
  check_encoding(suback_packet{10, {suback_code::granted_qos1, suback_code::failure}}, "90 04 00 0A 01 80");
  check_encoding(unsubscribe_packet{10, {"a/b", "c/#"}}, "A2 0C 00 0A 00 03 61 2F 62 00 03 63 2F 23");
}

TEST_CASE("remaining length uses 1 to 4 bytes at the spec's boundaries", "[mqtt][codec]") {
  struct boundary {
    std::size_t remaining;
    const char* hex;
  };
  // Section 2.2.3, table 2.4.
  const boundary boundaries[] = {
      {0, "00"},           {127, "7F"},           {128, "80 01"},          {321, "C1 02"},
      {16'383, "FF 7F"},   {16'384, "80 80 01"},  {2'097'151, "FF FF 7F"}, {2'097'152, "80 80 80 01"},
      {268'435'455, "FF FF FF 7F"},
  };
  for (const auto& b : boundaries) {
    INFO("remaining length " << b.remaining);
    // A header alone: the decoder must read the length and then ask for exactly the whole packet.
    const auto header = std::string("\x30", 1) + from_hex(b.hex);
    const auto r = decode(header, decode_options{std::size_t{300'000'000}});
    if (b.remaining == 0) {
      CHECK(r.error == mqtt_errc::malformed_packet);  // PUBLISH needs at least a topic length
      continue;
    }
    REQUIRE(r.need_more());
    CHECK(r.needed == header.size() + b.remaining);
  }

  // And the encoder picks the same sizes for real packets.
  std::string payload(321 - 5, 'x');
  const auto bytes = encoded(publish_packet{"a/b", payload, qos::at_most_once, false, false, 0});
  CHECK(to_hex(bytes.substr(0, 3)) == "30 C1 02");
  CHECK(bytes.size() == 3 + 321);
  payload.assign(16'384 - 5, 'y');
  CHECK(to_hex(encoded(publish_packet{"a/b", payload, qos::at_most_once, false, false, 0}).substr(0, 4)) ==
        "30 80 80 01");
}

TEST_CASE("every packet type survives a round trip", "[mqtt][codec]") {
  connect_packet full;
  full.client_id = "thermo-00001";
  full.keep_alive = 240;
  full.clean_session = false;
  full.will = will_message{"devices/thermo-00001/messages/events/", "{\"gone\":true}", qos::at_most_once, false};
  full.username = "hub.azure-devices.net/thermo-00001/?api-version=2021-04-12";
  full.password = "SharedAccessSignature sr=x&sig=y&se=1";

  const std::vector<packet> packets = {
      full,
      connect_packet{},
      connack_packet{false, connect_return_code::bad_username_or_password},
      publish_packet{"$iothub/twin/PATCH/properties/reported/?$rid=1", "{\"t\":21.5}", qos::at_most_once, true,
                     false, 0},
      publish_packet{"$aws/things/t/shadow/update", "{}", qos::at_least_once, false, true, 65535},
      puback_packet{1},
      pubrec_packet{2},
      pubrel_packet{3},
      pubcomp_packet{4},
      subscribe_packet{5, {{"$iothub/twin/res/#", qos::at_most_once}, {"+/x/+", qos::at_least_once}}},
      suback_packet{5, {suback_code::granted_qos0, suback_code::granted_qos2, suback_code::failure}},
      unsubscribe_packet{6, {"#"}},
      unsuback_packet{6},
      pingreq_packet{},
      pingresp_packet{},
      disconnect_packet{},
  };
  std::string stream;
  for (const auto& p : packets) {
    INFO(to_string(type_of(p)));
    std::string bytes;
    REQUIRE_FALSE(encode(p, bytes));
    const auto r = decode(bytes);
    REQUIRE(r.ok());
    CHECK(r.consumed == bytes.size());
    CHECK(*r.packet == p);

    std::vector<std::uint8_t> as_vector;
    REQUIRE_FALSE(encode(p, as_vector));
    CHECK(std::string(as_vector.begin(), as_vector.end()) == bytes);
    stream += bytes;
  }

  // Back to back in one buffer, each decode consumes exactly one packet.
  std::string_view rest = stream;
  for (const auto& p : packets) {
    const auto r = decode(rest);
    REQUIRE(r.ok());
    CHECK(*r.packet == p);
    rest.remove_prefix(r.consumed);
  }
  CHECK(rest.empty());
}

TEST_CASE("decode gives views into the input, not copies", "[mqtt][codec]") {
  const auto bytes = encoded(publish_packet{"a/b", "payload", qos::at_least_once, false, false, 9});
  const auto r = decode(bytes);
  REQUIRE(r.ok());
  const auto& p = std::get<publish_packet>(*r.packet);
  CHECK(p.topic.data() == bytes.data() + 4);
  CHECK(p.payload.data() == bytes.data() + 9);
  CHECK(p.payload.data() + p.payload.size() == bytes.data() + bytes.size());
}

TEST_CASE("encode appends to what the buffer holds", "[mqtt][codec]") {
  std::string out = "xy";
  REQUIRE_FALSE(encode(pingreq_packet{}, out));
  CHECK(to_hex(out) == "78 79 C0 00");

  // A failed encode leaves the buffer as it was.
  CHECK(encode(puback_packet{0}, out) == mqtt_errc::zero_packet_id);
  CHECK(to_hex(out) == "78 79 C0 00");
}

TEST_CASE("need more bytes is reported with nothing consumed", "[mqtt][codec]") {
  const auto bytes = encoded(publish_packet{"a/b", "hello", qos::at_least_once, false, false, 3});
  auto r = decode(std::string_view{});
  CHECK(r.need_more());
  CHECK(r.needed == 1);
  r = decode(std::string_view(bytes).substr(0, 1));
  CHECK(r.need_more());
  CHECK(r.needed == 2);
  for (std::size_t n = 2; n < bytes.size(); ++n) {
    r = decode(std::string_view(bytes).substr(0, n));
    CHECK(r.need_more());
    CHECK(r.consumed == 0);
    CHECK_FALSE(r.error);
    CHECK(r.needed == bytes.size());
  }
}

TEST_CASE("packet types have names for logs", "[mqtt][codec]") {
  CHECK(to_string(packet_type::subscribe) == "SUBSCRIBE");
  CHECK(to_string(static_cast<packet_type>(0)) == "RESERVED");
  CHECK(type_of(packet{pingresp_packet{}}) == packet_type::pingresp);
  CHECK(make_error_code(mqtt_errc::bad_topic).message() == "invalid topic name");
  CHECK(std::string(mqtt_category().name()) == "twinfleet.mqtt");
}

TEST_CASE("a remaining length in more bytes than needed is accepted", "[mqtt][codec]") {
  // 3.1.1 does not require the shortest form; re-encoding gives it.
  const auto r = decode(from_hex("C0 80 00"));
  REQUIRE(r.ok());
  CHECK(r.consumed == 3);
  CHECK(std::holds_alternative<pingreq_packet>(*r.packet));
  CHECK(to_hex(encoded(*r.packet)) == "C0 00");
}
