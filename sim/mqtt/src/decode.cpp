#include <twinfleet/mqtt/codec.hpp>
#include <twinfleet/mqtt/topic.hpp>

namespace twinfleet::mqtt {

namespace {

using boost::system::error_code;

// Bounds-checked reads over one packet's body: each read either succeeds or leaves the reader
// unchanged and reports failure, so no field can run past the packet.
class reader {
 public:
  explicit reader(std::span<const std::uint8_t> body) noexcept : p_(body.data()), end_(body.data() + body.size()) {}

  [[nodiscard]] bool empty() const noexcept { return p_ == end_; }
  [[nodiscard]] std::size_t left() const noexcept { return static_cast<std::size_t>(end_ - p_); }

  bool u8(std::uint8_t& v) noexcept {
    if (empty()) return false;
    v = *p_++;
    return true;
  }

  bool u16(std::uint16_t& v) noexcept {
    if (left() < 2) return false;
    v = static_cast<std::uint16_t>((p_[0] << 8) | p_[1]);
    p_ += 2;
    return true;
  }

  bool bytes(std::size_t n, std::string_view& v) noexcept {
    if (left() < n) return false;
    v = {reinterpret_cast<const char*>(p_), n};
    p_ += n;
    return true;
  }

  // A two-byte length followed by that many bytes (MQTT's strings and binary data).
  bool prefixed(std::string_view& v) noexcept {
    const auto* start = p_;
    std::uint16_t n = 0;
    if (u16(n) && bytes(n, v)) return true;
    p_ = start;
    return false;
  }

  std::string_view rest() noexcept {
    std::string_view v{reinterpret_cast<const char*>(p_), left()};
    p_ = end_;
    return v;
  }

 private:
  const std::uint8_t* p_;
  const std::uint8_t* end_;
};

error_code read_string(reader& r, std::string_view& out) {
  if (!r.prefixed(out)) return mqtt_errc::malformed_packet;
  if (!is_valid_mqtt_utf8(out)) return mqtt_errc::bad_utf8;
  return {};
}

error_code read_packet_id(reader& r, std::uint16_t& id) {
  if (!r.u16(id)) return mqtt_errc::malformed_packet;
  if (id == 0) return mqtt_errc::zero_packet_id;
  return {};
}

error_code finish(const reader& r) {
  return r.empty() ? error_code{} : error_code{mqtt_errc::malformed_packet};
}

error_code decode_connect(reader& r, connect_packet& c, std::uint8_t& level_out) {
  std::string_view name;
  if (!r.prefixed(name)) return mqtt_errc::malformed_packet;
  if (name != "MQTT" && name != "MQIsdp") return mqtt_errc::bad_protocol_name;
  std::uint8_t level = 0;
  if (!r.u8(level)) return mqtt_errc::malformed_packet;
  level_out = level;
  if (name == "MQTT" && level == 4) {
    c.version = protocol_version::v3_1_1;
  } else if (name == "MQIsdp" && level == 3) {
    c.version = protocol_version::v3_1;
  } else {
    // Stop here: the rest of an MQTT 5 CONNECT (properties) is not ours to parse, and the
    // server's answer (CONNACK 0x01) does not depend on it.
    return mqtt_errc::unsupported_protocol_level;
  }

  std::uint8_t flags = 0;
  if (!r.u8(flags) || !r.u16(c.keep_alive)) return mqtt_errc::malformed_packet;
  const bool has_will = (flags & 0x04) != 0;
  const auto will_qos = static_cast<std::uint8_t>((flags >> 3) & 0x03);
  const bool will_retain = (flags & 0x20) != 0;
  const bool has_username = (flags & 0x80) != 0;
  const bool has_password = (flags & 0x40) != 0;
  if ((flags & 0x01) != 0) return mqtt_errc::bad_connect_flags;
  if (!has_will && (will_qos != 0 || will_retain)) return mqtt_errc::bad_connect_flags;
  if (will_qos == 3) return mqtt_errc::bad_qos;
  if (has_password && !has_username) return mqtt_errc::password_without_username;
  c.clean_session = (flags & 0x02) != 0;

  if (auto ec = read_string(r, c.client_id)) return ec;
  if (has_will) {
    will_message w;
    if (auto ec = read_string(r, w.topic)) return ec;
    if (!is_valid_topic_name(w.topic)) return mqtt_errc::bad_topic;
    if (!r.prefixed(w.payload)) return mqtt_errc::malformed_packet;
    w.qos = static_cast<mqtt::qos>(will_qos);
    w.retain = will_retain;
    c.will = w;
  }
  if (has_username) {
    std::string_view username;
    if (auto ec = read_string(r, username)) return ec;
    c.username = username;
  }
  if (has_password) {
    std::string_view password;
    if (!r.prefixed(password)) return mqtt_errc::malformed_packet;
    c.password = password;
  }
  return finish(r);
}

error_code decode_connack(reader& r, connack_packet& c) {
  std::uint8_t flags = 0;
  std::uint8_t code = 0;
  if (!r.u8(flags) || !r.u8(code)) return mqtt_errc::malformed_packet;
  if ((flags & 0xFE) != 0) return mqtt_errc::bad_connack_flags;
  if (code > 5) return mqtt_errc::bad_return_code;
  c.session_present = (flags & 0x01) != 0;
  c.return_code = static_cast<connect_return_code>(code);
  if (c.session_present && code != 0) return mqtt_errc::bad_connack_flags;
  return finish(r);
}

error_code decode_publish(reader& r, std::uint8_t flags, publish_packet& p) {
  p.dup = (flags & 0x08) != 0;
  p.qos = static_cast<mqtt::qos>((flags >> 1) & 0x03);
  p.retain = (flags & 0x01) != 0;
  if (auto ec = read_string(r, p.topic)) return ec;
  if (!is_valid_topic_name(p.topic)) return mqtt_errc::bad_topic;
  if (p.qos != qos::at_most_once) {
    if (auto ec = read_packet_id(r, p.packet_id)) return ec;
  }
  p.payload = r.rest();
  return {};
}

template <class Ack>
error_code decode_ack(reader& r, Ack& a) {
  if (auto ec = read_packet_id(r, a.packet_id)) return ec;
  return finish(r);
}

error_code read_filter(reader& r, std::string_view& filter) {
  if (auto ec = read_string(r, filter)) return ec;
  if (!is_valid_topic_filter(filter)) return mqtt_errc::bad_topic_filter;
  return {};
}

error_code decode_subscribe(reader& r, subscribe_packet& s) {
  if (auto ec = read_packet_id(r, s.packet_id)) return ec;
  if (r.empty()) return mqtt_errc::no_topic_filters;
  while (!r.empty()) {
    subscription sub;
    if (auto ec = read_filter(r, sub.filter)) return ec;
    std::uint8_t requested = 0;
    if (!r.u8(requested)) return mqtt_errc::malformed_packet;
    if (requested > 2) return mqtt_errc::bad_qos;  // QoS 3, or reserved bits 7..2 set
    sub.qos = static_cast<mqtt::qos>(requested);
    s.subscriptions.push_back(sub);
  }
  return {};
}

error_code decode_suback(reader& r, suback_packet& s) {
  if (auto ec = read_packet_id(r, s.packet_id)) return ec;
  if (r.empty()) return mqtt_errc::malformed_packet;
  s.return_codes.reserve(r.left());
  while (!r.empty()) {
    std::uint8_t code = 0;
    r.u8(code);
    if (code > 2 && code != 0x80) return mqtt_errc::bad_return_code;
    s.return_codes.push_back(static_cast<suback_code>(code));
  }
  return {};
}

error_code decode_unsubscribe(reader& r, unsubscribe_packet& u) {
  if (auto ec = read_packet_id(r, u.packet_id)) return ec;
  if (r.empty()) return mqtt_errc::no_topic_filters;
  while (!r.empty()) {
    std::string_view filter;
    if (auto ec = read_filter(r, filter)) return ec;
    u.filters.push_back(filter);
  }
  return {};
}

// The flags every type but PUBLISH must carry in the low nibble of byte 0 (section 2.2.2).
constexpr std::uint8_t required_flags(packet_type t) noexcept {
  return t == packet_type::pubrel || t == packet_type::subscribe || t == packet_type::unsubscribe ? 0x02 : 0x00;
}

error_code check_fixed_header(packet_type t, std::uint8_t flags) {
  if (t != packet_type::publish) {
    return flags == required_flags(t) ? error_code{} : error_code{mqtt_errc::bad_flags};
  }
  const auto q = (flags >> 1) & 0x03;
  if (q == 3) return mqtt_errc::bad_qos;
  if (q == 0 && (flags & 0x08) != 0) return mqtt_errc::bad_flags;  // DUP on QoS 0 [MQTT-3.3.1-2]
  return {};
}

// Packets whose remaining length is fixed are refused as soon as their header is read,
// rather than after a peer has made us wait for (and buffer) a body that cannot be right.
bool has_fixed_length(packet_type t, std::uint32_t& length) noexcept {
  switch (t) {
    case packet_type::connack:
    case packet_type::puback:
    case packet_type::pubrec:
    case packet_type::pubrel:
    case packet_type::pubcomp:
    case packet_type::unsuback: length = 2; return true;
    case packet_type::pingreq:
    case packet_type::pingresp:
    case packet_type::disconnect: length = 0; return true;
    default: return false;
  }
}

error_code decode_body(packet_type t, std::uint8_t flags, reader& r, decode_result& out) {
  error_code ec;
  switch (t) {
    case packet_type::connect: {
      connect_packet c;
      ec = decode_connect(r, c, out.protocol_level);
      if (!ec) out.packet.emplace(c);
      break;
    }
    case packet_type::connack: {
      connack_packet c;
      ec = decode_connack(r, c);
      if (!ec) out.packet.emplace(c);
      break;
    }
    case packet_type::publish: {
      publish_packet p;
      ec = decode_publish(r, flags, p);
      if (!ec) out.packet.emplace(p);
      break;
    }
    case packet_type::puback: {
      puback_packet a;
      ec = decode_ack(r, a);
      if (!ec) out.packet.emplace(a);
      break;
    }
    case packet_type::pubrec: {
      pubrec_packet a;
      ec = decode_ack(r, a);
      if (!ec) out.packet.emplace(a);
      break;
    }
    case packet_type::pubrel: {
      pubrel_packet a;
      ec = decode_ack(r, a);
      if (!ec) out.packet.emplace(a);
      break;
    }
    case packet_type::pubcomp: {
      pubcomp_packet a;
      ec = decode_ack(r, a);
      if (!ec) out.packet.emplace(a);
      break;
    }
    case packet_type::subscribe: {
      subscribe_packet s;
      ec = decode_subscribe(r, s);
      if (!ec) out.packet.emplace(std::move(s));
      break;
    }
    case packet_type::suback: {
      suback_packet s;
      ec = decode_suback(r, s);
      if (!ec) out.packet.emplace(std::move(s));
      break;
    }
    case packet_type::unsubscribe: {
      unsubscribe_packet u;
      ec = decode_unsubscribe(r, u);
      if (!ec) out.packet.emplace(std::move(u));
      break;
    }
    case packet_type::unsuback: {
      unsuback_packet a;
      ec = decode_ack(r, a);
      if (!ec) out.packet.emplace(a);
      break;
    }
    case packet_type::pingreq: out.packet.emplace(pingreq_packet{}); break;
    case packet_type::pingresp: out.packet.emplace(pingresp_packet{}); break;
    case packet_type::disconnect: out.packet.emplace(disconnect_packet{}); break;
  }
  return ec;
}

}  // namespace

decode_result decode(std::span<const std::uint8_t> input, const decode_options& options) {
  decode_result out;
  if (input.empty()) {
    out.needed = 1;
    return out;
  }

  const std::uint8_t type_bits = input[0] >> 4;
  const auto flags = static_cast<std::uint8_t>(input[0] & 0x0F);
  if (type_bits == 0 || type_bits == 15) {
    out.error = mqtt_errc::bad_packet_type;
    return out;
  }
  const auto type = static_cast<packet_type>(type_bits);
  if (auto ec = check_fixed_header(type, flags)) {
    out.error = ec;
    return out;
  }

  std::uint32_t remaining = 0;
  std::size_t pos = 1;
  for (unsigned shift = 0;; shift += 7) {
    if (pos >= input.size()) {
      out.needed = input.size() + 1;
      return out;
    }
    const std::uint8_t b = input[pos++];
    remaining |= static_cast<std::uint32_t>(b & 0x7F) << shift;
    if ((b & 0x80) == 0) break;
    if (pos == 5) {  // the 4th length byte still says "more follows"
      out.error = mqtt_errc::malformed_remaining_length;
      return out;
    }
  }

  std::uint32_t fixed_length = 0;
  if (has_fixed_length(type, fixed_length) && remaining != fixed_length) {
    out.error = mqtt_errc::malformed_packet;
    return out;
  }
  const std::size_t total = pos + remaining;
  if (total > options.max_packet_size) {
    out.error = mqtt_errc::packet_too_large;
    return out;
  }
  if (input.size() < total) {
    out.needed = total;
    return out;
  }

  reader body(input.subspan(pos, remaining));
  if (auto ec = decode_body(type, flags, body, out)) {
    out.packet.reset();
    out.error = ec;
    return out;
  }
  out.consumed = total;
  return out;
}

decode_result decode(std::string_view input, const decode_options& options) {
  return decode(std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(input.data()), input.size()),
                options);
}

}  // namespace twinfleet::mqtt
