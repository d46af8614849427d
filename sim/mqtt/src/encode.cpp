#include <twinfleet/mqtt/codec.hpp>
#include <twinfleet/mqtt/topic.hpp>

namespace twinfleet::mqtt {

namespace {

using boost::system::error_code;

constexpr std::size_t max_field_length = 65535;

std::size_t remaining_length_size(std::size_t n) noexcept {
  return n < 128 ? 1 : n < 16'384 ? 2 : n < 2'097'152 ? 3 : 4;
}

bool valid_qos(qos q) noexcept { return static_cast<std::uint8_t>(q) <= 2; }

error_code check_binary(std::string_view s) {
  return s.size() > max_field_length ? error_code{mqtt_errc::string_too_long} : error_code{};
}

error_code check_string(std::string_view s) {
  if (s.size() > max_field_length) return mqtt_errc::string_too_long;
  if (!is_valid_mqtt_utf8(s)) return mqtt_errc::bad_utf8;
  return {};
}

error_code check_topic_name(std::string_view s) {
  if (auto ec = check_string(s)) return ec;
  return is_valid_topic_name(s) ? error_code{} : error_code{mqtt_errc::bad_topic};
}

error_code check_topic_filter(std::string_view s) {
  if (auto ec = check_string(s)) return ec;
  return is_valid_topic_filter(s) ? error_code{} : error_code{mqtt_errc::bad_topic_filter};
}

error_code check_packet_id(std::uint16_t id) {
  return id == 0 ? error_code{mqtt_errc::zero_packet_id} : error_code{};
}

std::string_view protocol_name(protocol_version v) noexcept { return v == protocol_version::v3_1 ? "MQIsdp" : "MQTT"; }

// Validates a packet the way decode() would and returns its remaining length, so that what
// encode() writes always decodes.
struct body_size {
  result<std::size_t> operator()(const connect_packet& c) const {
    if (c.version != protocol_version::v3_1 && c.version != protocol_version::v3_1_1)
      return mqtt_errc::unsupported_protocol_level;
    if (c.password && !c.username) return mqtt_errc::password_without_username;
    std::size_t n = 2 + protocol_name(c.version).size() + 1 + 1 + 2;
    if (auto ec = check_string(c.client_id)) return ec;
    n += 2 + c.client_id.size();
    if (c.will) {
      if (auto ec = check_topic_name(c.will->topic)) return ec;
      if (auto ec = check_binary(c.will->payload)) return ec;
      if (!valid_qos(c.will->qos)) return mqtt_errc::bad_qos;
      n += 2 + c.will->topic.size() + 2 + c.will->payload.size();
    }
    if (c.username) {
      if (auto ec = check_string(*c.username)) return ec;
      n += 2 + c.username->size();
    }
    if (c.password) {
      if (auto ec = check_binary(*c.password)) return ec;
      n += 2 + c.password->size();
    }
    return n;
  }

  result<std::size_t> operator()(const connack_packet& c) const {
    if (static_cast<std::uint8_t>(c.return_code) > 5) return mqtt_errc::bad_return_code;
    if (c.session_present && c.return_code != connect_return_code::accepted) return mqtt_errc::bad_connack_flags;
    return std::size_t{2};
  }

  result<std::size_t> operator()(const publish_packet& p) const {
    if (!valid_qos(p.qos)) return mqtt_errc::bad_qos;
    if (p.qos == qos::at_most_once && p.dup) return mqtt_errc::bad_flags;
    if (p.qos != qos::at_most_once) {
      if (auto ec = check_packet_id(p.packet_id)) return ec;
    }
    if (auto ec = check_topic_name(p.topic)) return ec;
    return 2 + p.topic.size() + (p.qos != qos::at_most_once ? 2 : 0) + p.payload.size();
  }

  result<std::size_t> ack(std::uint16_t id) const {
    if (auto ec = check_packet_id(id)) return ec;
    return std::size_t{2};
  }
  result<std::size_t> operator()(const puback_packet& a) const { return ack(a.packet_id); }
  result<std::size_t> operator()(const pubrec_packet& a) const { return ack(a.packet_id); }
  result<std::size_t> operator()(const pubrel_packet& a) const { return ack(a.packet_id); }
  result<std::size_t> operator()(const pubcomp_packet& a) const { return ack(a.packet_id); }
  result<std::size_t> operator()(const unsuback_packet& a) const { return ack(a.packet_id); }

  result<std::size_t> operator()(const subscribe_packet& s) const {
    if (auto ec = check_packet_id(s.packet_id)) return ec;
    if (s.subscriptions.empty()) return mqtt_errc::no_topic_filters;
    std::size_t n = 2;
    for (const auto& sub : s.subscriptions) {
      if (auto ec = check_topic_filter(sub.filter)) return ec;
      if (!valid_qos(sub.qos)) return mqtt_errc::bad_qos;
      n += 2 + sub.filter.size() + 1;
    }
    return n;
  }

  result<std::size_t> operator()(const suback_packet& s) const {
    if (auto ec = check_packet_id(s.packet_id)) return ec;
    if (s.return_codes.empty()) return mqtt_errc::malformed_packet;
    for (auto code : s.return_codes) {
      const auto v = static_cast<std::uint8_t>(code);
      if (v > 2 && v != 0x80) return mqtt_errc::bad_return_code;
    }
    return 2 + s.return_codes.size();
  }

  result<std::size_t> operator()(const unsubscribe_packet& u) const {
    if (auto ec = check_packet_id(u.packet_id)) return ec;
    if (u.filters.empty()) return mqtt_errc::no_topic_filters;
    std::size_t n = 2;
    for (auto filter : u.filters) {
      if (auto ec = check_topic_filter(filter)) return ec;
      n += 2 + filter.size();
    }
    return n;
  }

  result<std::size_t> operator()(const pingreq_packet&) const { return std::size_t{0}; }
  result<std::size_t> operator()(const pingresp_packet&) const { return std::size_t{0}; }
  result<std::size_t> operator()(const disconnect_packet&) const { return std::size_t{0}; }
};

// Writes into memory already sized by body_size; no bounds checks needed past that point.
class writer {
 public:
  explicit writer(std::uint8_t* p) noexcept : p_(p) {}

  void u8(std::uint8_t v) noexcept { *p_++ = v; }
  void u16(std::uint16_t v) noexcept {
    u8(static_cast<std::uint8_t>(v >> 8));
    u8(static_cast<std::uint8_t>(v & 0xFF));
  }
  void bytes(std::string_view s) noexcept {
    for (char c : s) u8(static_cast<std::uint8_t>(c));
  }
  void prefixed(std::string_view s) noexcept {
    u16(static_cast<std::uint16_t>(s.size()));
    bytes(s);
  }
  void remaining_length(std::size_t n) noexcept {
    do {
      auto b = static_cast<std::uint8_t>(n & 0x7F);
      n >>= 7;
      if (n != 0) b |= 0x80;
      u8(b);
    } while (n != 0);
  }

 private:
  std::uint8_t* p_;
};

std::uint8_t first_byte(packet_type t, std::uint8_t flags) noexcept {
  return static_cast<std::uint8_t>((static_cast<std::uint8_t>(t) << 4) | flags);
}

struct body_writer {
  writer& w;

  void operator()(const connect_packet& c) const {
    w.prefixed(protocol_name(c.version));
    w.u8(static_cast<std::uint8_t>(c.version));
    std::uint8_t flags = 0;
    if (c.username) flags |= 0x80;
    if (c.password) flags |= 0x40;
    if (c.will) {
      flags |= 0x04;
      flags |= static_cast<std::uint8_t>(static_cast<std::uint8_t>(c.will->qos) << 3);
      if (c.will->retain) flags |= 0x20;
    }
    if (c.clean_session) flags |= 0x02;
    w.u8(flags);
    w.u16(c.keep_alive);
    w.prefixed(c.client_id);
    if (c.will) {
      w.prefixed(c.will->topic);
      w.prefixed(c.will->payload);
    }
    if (c.username) w.prefixed(*c.username);
    if (c.password) w.prefixed(*c.password);
  }
  void operator()(const connack_packet& c) const {
    w.u8(c.session_present ? 1 : 0);
    w.u8(static_cast<std::uint8_t>(c.return_code));
  }
  void operator()(const publish_packet& p) const {
    w.prefixed(p.topic);
    if (p.qos != qos::at_most_once) w.u16(p.packet_id);
    w.bytes(p.payload);
  }
  void operator()(const puback_packet& a) const { w.u16(a.packet_id); }
  void operator()(const pubrec_packet& a) const { w.u16(a.packet_id); }
  void operator()(const pubrel_packet& a) const { w.u16(a.packet_id); }
  void operator()(const pubcomp_packet& a) const { w.u16(a.packet_id); }
  void operator()(const unsuback_packet& a) const { w.u16(a.packet_id); }
  void operator()(const subscribe_packet& s) const {
    w.u16(s.packet_id);
    for (const auto& sub : s.subscriptions) {
      w.prefixed(sub.filter);
      w.u8(static_cast<std::uint8_t>(sub.qos));
    }
  }
  void operator()(const suback_packet& s) const {
    w.u16(s.packet_id);
    for (auto code : s.return_codes) w.u8(static_cast<std::uint8_t>(code));
  }
  void operator()(const unsubscribe_packet& u) const {
    w.u16(u.packet_id);
    for (auto filter : u.filters) w.prefixed(filter);
  }
  void operator()(const pingreq_packet&) const {}
  void operator()(const pingresp_packet&) const {}
  void operator()(const disconnect_packet&) const {}
};

std::uint8_t fixed_header_flags(const packet& p) noexcept {
  if (const auto* pub = std::get_if<publish_packet>(&p)) {
    return static_cast<std::uint8_t>((pub->dup ? 0x08 : 0) | (static_cast<std::uint8_t>(pub->qos) << 1) |
                                     (pub->retain ? 0x01 : 0));
  }
  const auto t = type_of(p);
  return t == packet_type::pubrel || t == packet_type::subscribe || t == packet_type::unsubscribe ? 0x02 : 0x00;
}

template <class Buffer>
error_code encode_into(const packet& p, Buffer& out) {
  auto body = std::visit(body_size{}, p);
  if (!body) return body.error();
  if (*body > max_remaining_length) return mqtt_errc::packet_too_large;
  const std::size_t total = 1 + remaining_length_size(*body) + *body;
  const std::size_t start = out.size();
  out.resize(start + total);
  writer w(reinterpret_cast<std::uint8_t*>(out.data() + start));
  w.u8(first_byte(type_of(p), fixed_header_flags(p)));
  w.remaining_length(*body);
  std::visit(body_writer{w}, p);
  return {};
}

}  // namespace

result<std::size_t> encoded_size(const packet& p) {
  auto body = std::visit(body_size{}, p);
  if (!body) return body.error();
  if (*body > max_remaining_length) return mqtt_errc::packet_too_large;
  return 1 + remaining_length_size(*body) + *body;
}

error_code encode(const packet& p, std::string& out) { return encode_into(p, out); }
error_code encode(const packet& p, std::vector<std::uint8_t>& out) { return encode_into(p, out); }

}  // namespace twinfleet::mqtt
