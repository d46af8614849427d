// WebSocket over TCP: the one instantiation of beast::websocket::stream<tcp::socket>, and the
// helpers both WebSocket transports use.
#include "ws_stream.hpp"

namespace twinfleet::net::detail {

template <>
bool basic_ws_stream<tcp::socket>::is_truncation(const error_code&) noexcept {
  return false;
}

std::unique_ptr<transport_stream> make_ws_stream(tcp::socket&& socket) {
  return std::make_unique<basic_ws_stream<tcp::socket>>(std::move(socket));
}

std::string_view select_mqtt_subprotocol(std::string_view offered) noexcept {
  while (!offered.empty()) {
    const auto comma = offered.find(',');
    std::string_view token = offered.substr(0, comma);
    offered = comma == std::string_view::npos ? std::string_view{} : offered.substr(comma + 1);
    while (!token.empty() && (token.front() == ' ' || token.front() == '\t')) token.remove_prefix(1);
    while (!token.empty() && (token.back() == ' ' || token.back() == '\t')) token.remove_suffix(1);
    if (token == "mqtt") return "mqtt";
    if (token == "mqttv3.1") return "mqttv3.1";
  }
  return {};
}

std::size_t mqtt_packet_size(std::string_view bytes) noexcept {
  std::size_t remaining = 0;
  for (std::size_t i = 1; i < bytes.size() && i <= 4; ++i) {
    const auto b = static_cast<std::uint8_t>(bytes[i]);
    remaining |= static_cast<std::size_t>(b & 0x7f) << (7 * (i - 1));
    if ((b & 0x80) == 0) return 1 + i + remaining;
  }
  return 0;
}

std::string_view target_path(std::string_view target) noexcept {
  return target.substr(0, target.find('?'));
}

}  // namespace twinfleet::net::detail
