#include <twinfleet/mqtt/error.hpp>

#include <string>

namespace twinfleet::mqtt {

namespace {

// boost::system::error_category has a protected non-virtual destructor by design (categories
// are never deleted through the base); -Wnon-virtual-dtor cannot tell.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnon-virtual-dtor"
class mqtt_category_impl final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "twinfleet.mqtt"; }

  std::string message(int ev) const override {
    switch (static_cast<mqtt_errc>(ev)) {
      case mqtt_errc::malformed_remaining_length: return "malformed remaining length (more than 4 bytes)";
      case mqtt_errc::packet_too_large: return "packet too large";
      case mqtt_errc::bad_packet_type: return "reserved packet type";
      case mqtt_errc::bad_flags: return "invalid fixed-header flags";
      case mqtt_errc::malformed_packet: return "malformed packet";
      case mqtt_errc::bad_protocol_name: return "unknown protocol name";
      case mqtt_errc::unsupported_protocol_level: return "unsupported protocol level";
      case mqtt_errc::bad_connect_flags: return "invalid CONNECT flags";
      case mqtt_errc::password_without_username: return "password without user name";
      case mqtt_errc::bad_connack_flags: return "invalid CONNACK flags";
      case mqtt_errc::bad_return_code: return "invalid return code";
      case mqtt_errc::bad_utf8: return "invalid UTF-8 string";
      case mqtt_errc::bad_topic: return "invalid topic name";
      case mqtt_errc::bad_topic_filter: return "invalid topic filter";
      case mqtt_errc::no_topic_filters: return "no topic filter";
      case mqtt_errc::zero_packet_id: return "packet identifier 0";
      case mqtt_errc::bad_qos: return "invalid QoS";
      case mqtt_errc::string_too_long: return "string longer than 65535 bytes";
      case mqtt_errc::protocol_violation: return "protocol violation";
      case mqtt_errc::connect_timeout: return "connect timed out";
      case mqtt_errc::keep_alive_timeout: return "keep-alive timed out";
      case mqtt_errc::connection_refused: return "connection refused";
      case mqtt_errc::application_close: return "closed by the application";
      case mqtt_errc::not_connected: return "not connected";
      case mqtt_errc::already_connected: return "already connected or connecting";
      case mqtt_errc::wrong_role: return "call not available in this session role";
      case mqtt_errc::qos_not_supported: return "QoS not supported";
      case mqtt_errc::queue_full: return "publish queue full";
      case mqtt_errc::packet_id_exhausted: return "no free packet identifier";
      case mqtt_errc::unknown_packet_id: return "unknown packet identifier";
      case mqtt_errc::no_pending_connect: return "no CONNECT awaiting a decision";
    }
    return "unknown twinfleet.mqtt error " + std::to_string(ev);
  }
};
#pragma GCC diagnostic pop

}  // namespace

const boost::system::error_category& mqtt_category() noexcept {
  static const mqtt_category_impl instance;
  return instance;
}

}  // namespace twinfleet::mqtt
