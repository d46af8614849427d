// Property tests of the codec over random packets and random or mutated bytes (fixed seeds, so
// a failure reproduces): incremental decoding equals whole-buffer decoding, and no input makes
// the codec or a session crash, over-read or emit what it cannot read back.
#include <twinfleet/mqtt/codec.hpp>

#include "fuzz_entry.hpp"
#include "mqtt_test_util.hpp"

#include <catch2/catch.hpp>

#include <deque>
#include <random>

using namespace twinfleet::mqtt;
using twinfleet::mqtt::test::encoded;
using twinfleet::mqtt::test::to_hex;

namespace {

// Random valid packets. Strings mix ASCII, multi-byte UTF-8 and the characters with a meaning
// in topics; the generator owns them, so the packets' views stay valid while it lives.
class packet_generator {
 public:
  explicit packet_generator(std::uint32_t seed) : rng_(seed) {}

  int pick(int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng_); }
  bool coin() { return pick(2) == 0; }
  std::mt19937& rng() { return rng_; }

  std::string_view text(int max_pieces) {
    static const char* const pieces[] = {"a", "b", "dev", "42", "\xC3\xA9", "\xE2\x82\xAC", "\xF0\x9F\x8C\xA1",
                                         "$", " ", "-", "?", "=", "."};
    std::string s;
    for (int i = pick(max_pieces + 1); i > 0; --i) s += pieces[pick(std::size(pieces))];
    return keep(std::move(s));
  }

  std::string_view binary(int max_len) {
    std::string s(static_cast<std::size_t>(pick(max_len + 1)), '\0');
    for (auto& c : s) c = static_cast<char>(pick(256));
    return keep(std::move(s));
  }

  std::string_view topic_name() {
    std::string s;
    for (int i = pick(4); i >= 0; --i) {
      s += text(3);
      if (i > 0) s += '/';
    }
    if (s.empty()) s = "t";
    return keep(std::move(s));
  }

  std::string_view topic_filter() {
    std::string s;
    const int levels = pick(4);
    for (int i = 0; i <= levels; ++i) {
      if (i > 0) s += '/';
      s += pick(4) == 0 ? std::string_view("+") : text(3);
    }
    if (pick(4) == 0) s += "/#";
    if (s.empty()) s = "#";
    return keep(std::move(s));
  }

  qos any_qos(int max) { return static_cast<qos>(pick(max + 1)); }
  std::uint16_t packet_id() { return static_cast<std::uint16_t>(1 + pick(65535)); }

  packet any() {
    switch (pick(14)) {
      case 0: {
        connect_packet c;
        c.version = pick(8) == 0 ? protocol_version::v3_1 : protocol_version::v3_1_1;
        c.clean_session = coin();
        c.keep_alive = static_cast<std::uint16_t>(pick(65536));
        c.client_id = text(4);
        if (coin()) c.will = will_message{topic_name(), binary(20), any_qos(2), coin()};
        if (coin()) {
          c.username = text(6);
          if (coin()) c.password = binary(30);
        }
        return c;
      }
      case 1: {
        const auto code = static_cast<connect_return_code>(pick(6));
        return connack_packet{code == connect_return_code::accepted && coin(), code};
      }
      case 2: {
        publish_packet p{topic_name(), binary(pick(10) == 0 ? 300 : 40), any_qos(2), coin(), false, 0};
        if (p.qos != qos::at_most_once) {
          p.dup = coin();
          p.packet_id = packet_id();
        }
        return p;
      }
      case 3: return puback_packet{packet_id()};
      case 4: return pubrec_packet{packet_id()};
      case 5: return pubrel_packet{packet_id()};
      case 6: return pubcomp_packet{packet_id()};
      case 7: {
        subscribe_packet s{packet_id(), {}};
        for (int i = pick(4); i >= 0; --i) s.subscriptions.push_back({topic_filter(), any_qos(2)});
        return s;
      }
      case 8: {
        static const suback_code codes[] = {suback_code::granted_qos0, suback_code::granted_qos1,
                                            suback_code::granted_qos2, suback_code::failure};
        suback_packet s{packet_id(), {}};
        for (int i = pick(4); i >= 0; --i) s.return_codes.push_back(codes[pick(4)]);
        return s;
      }
      case 9: {
        unsubscribe_packet u{packet_id(), {}};
        for (int i = pick(4); i >= 0; --i) u.filters.push_back(topic_filter());
        return u;
      }
      case 10: return unsuback_packet{packet_id()};
      case 11: return pingreq_packet{};
      case 12: return pingresp_packet{};
      default: return disconnect_packet{};
    }
  }

 private:
  std::string_view keep(std::string s) {
    storage_.push_back(std::move(s));
    return storage_.back();
  }

  std::mt19937 rng_;
  std::deque<std::string> storage_;
};

std::span<const std::uint8_t> as_bytes(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

void require_fuzz_ok(std::string_view input) {
  const auto failure = twinfleet::mqtt::test::fuzz_check(as_bytes(input));
  if (!failure.empty()) {
    INFO("input: " << to_hex(input));
    FAIL(failure);
  }
}

}  // namespace

TEST_CASE("decoding one byte at a time gives the packets whole-buffer decoding gives", "[mqtt][codec][property]") {
  packet_generator gen(20240611);
  std::vector<packet> packets;
  std::string stream;
  for (int i = 0; i < 500; ++i) {
    packets.push_back(gen.any());
    stream += encoded(packets.back());
  }

  std::vector<packet> whole;
  std::string_view rest = stream;
  while (!rest.empty()) {
    const auto r = decode(rest);
    REQUIRE(r.ok());
    whole.push_back(*r.packet);
    rest.remove_prefix(r.consumed);
  }
  REQUIRE(whole.size() == packets.size());
  for (std::size_t i = 0; i < packets.size(); ++i) {
    INFO("packet " << i << ": " << to_string(type_of(packets[i])));
    CHECK(whole[i] == packets[i]);
  }

  // The I/O layer's way: append what arrives to a buffer, decode, drop what was consumed.
  std::string buffer;
  std::size_t next = 0;
  for (char byte : stream) {
    buffer.push_back(byte);
    const auto r = decode(buffer);
    if (r.need_more()) {
      REQUIRE(r.needed > buffer.size());
      continue;
    }
    REQUIRE(r.ok());
    REQUIRE(next < whole.size());
    CHECK(*r.packet == whole[next]);
    ++next;
    CHECK(r.consumed == buffer.size());
    buffer.erase(0, r.consumed);
  }
  CHECK(next == whole.size());
  CHECK(buffer.empty());
}

TEST_CASE("random bytes never crash the codec or a session", "[mqtt][codec][property]") {
  packet_generator gen(7);
  int decoded_somewhere = 0;
  for (int i = 0; i < 3000; ++i) {
    std::string input(static_cast<std::size_t>(gen.pick(64)), '\0');
    for (auto& c : input) c = static_cast<char>(gen.pick(256));
    // Half the time, a plausible first byte (a valid type with its usual flags) and a short
    // length, so that inputs get past the fixed header.
    if (!input.empty() && gen.coin()) {
      static const unsigned char firsts[] = {0x10, 0x20, 0x30, 0x32, 0x3B, 0x40, 0x50, 0x62, 0x70,
                                             0x82, 0x90, 0xA2, 0xB0, 0xC0, 0xD0, 0xE0};
      input[0] = static_cast<char>(firsts[gen.pick(std::size(firsts))]);
      if (input.size() > 1) input[1] = static_cast<char>(gen.pick(static_cast<int>(input.size())));
    }
    if (decode(input).ok()) ++decoded_somewhere;
    require_fuzz_ok(input);
  }
  CHECK(decoded_somewhere > 0);
}

TEST_CASE("mutated valid streams never crash the codec or a session", "[mqtt][codec][property]") {
  packet_generator gen(99);
  std::size_t decoded_packets = 0;
  for (int i = 0; i < 3000; ++i) {
    // A plausible conversation start: CONNECT for a server, CONNACK for a client, then more.
    std::string input = gen.coin() ? encoded(connect_packet{protocol_version::v3_1_1, true, 5, "d", {}, {}, {}})
                                   : encoded(connack_packet{});
    for (int n = gen.pick(6); n >= 0; --n) input += encoded(gen.any());

    switch (gen.pick(6)) {
      case 0:  // flip bits
        for (int n = 1 + gen.pick(3); n > 0; --n)
          input[static_cast<std::size_t>(gen.pick(static_cast<int>(input.size())))] ^=
              static_cast<char>(1 << gen.pick(8));
        break;
      case 1:  // overwrite a byte
        input[static_cast<std::size_t>(gen.pick(static_cast<int>(input.size())))] = static_cast<char>(gen.pick(256));
        break;
      case 2:  // truncate
        input.resize(static_cast<std::size_t>(gen.pick(static_cast<int>(input.size()))));
        break;
      case 3:  // insert a byte
        input.insert(static_cast<std::size_t>(gen.pick(static_cast<int>(input.size()) + 1)), 1,
                     static_cast<char>(gen.pick(256)));
        break;
      case 4:  // delete a byte
        input.erase(static_cast<std::size_t>(gen.pick(static_cast<int>(input.size()))), 1);
        break;
      default:  // unmutated: the sessions see valid, if unusual, conversations
        break;
    }

    std::string_view rest = input;
    for (auto r = decode(rest); r.ok(); r = decode(rest)) {
      ++decoded_packets;
      rest.remove_prefix(r.consumed);
    }
    require_fuzz_ok(input);
  }
  CHECK(decoded_packets > 3000);
}

TEST_CASE("the libFuzzer entry point accepts any input", "[mqtt][codec][property]") {
  CHECK(twinfleet_mqtt_fuzz_one(nullptr, 0) == 0);
  const auto bytes = encoded(pingreq_packet{});
  CHECK(twinfleet_mqtt_fuzz_one(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()) == 0);
}
