#include <twinfleet/net/error.hpp>

#include <string>

namespace twinfleet::net {

namespace {

// Categories are never deleted through the base; -Wnon-virtual-dtor cannot tell.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnon-virtual-dtor"
class net_category_impl final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "twinfleet.net"; }

  std::string message(int ev) const override {
    switch (static_cast<net_errc>(ev)) {
      case net_errc::connect_timeout: return "connect timed out";
      case net_errc::handshake_timeout: return "TLS or WebSocket handshake timed out";
      case net_errc::connection_closed: return "connection closed by the peer";
      case net_errc::connection_lost: return "connection lost while the operation was pending";
      case net_errc::aborted: return "connection aborted";
      case net_errc::websocket_upgrade_refused: return "WebSocket upgrade refused";
      case net_errc::missing_tls_context: return "TLS transport without a TLS context";
      case net_errc::listener_stopped: return "listener stopped";
      case net_errc::internal_error: return "internal error (an exception escaped a handler)";
    }
    return "unknown twinfleet.net error " + std::to_string(ev);
  }
};

class connack_category_impl final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "twinfleet.connack"; }

  std::string message(int ev) const override {
    switch (static_cast<connack_errc>(ev)) {
      case connack_errc::unacceptable_protocol_version: return "CONNACK 1: unacceptable protocol version";
      case connack_errc::identifier_rejected: return "CONNACK 2: identifier rejected";
      case connack_errc::server_unavailable: return "CONNACK 3: server unavailable";
      case connack_errc::bad_username_or_password: return "CONNACK 4: bad user name or password";
      case connack_errc::not_authorized: return "CONNACK 5: not authorized";
    }
    return "CONNACK " + std::to_string(ev);
  }
};
#pragma GCC diagnostic pop

}  // namespace

const boost::system::error_category& net_category() noexcept {
  static const net_category_impl category;
  return category;
}

const boost::system::error_category& connack_category() noexcept {
  static const connack_category_impl category;
  return category;
}

boost::system::error_code connack_error(mqtt::connect_return_code code) noexcept {
  if (code == mqtt::connect_return_code::accepted) return {};
  return {static_cast<int>(code), connack_category()};
}

std::optional<mqtt::connect_return_code> refused_code(const boost::system::error_code& ec) noexcept {
  if (ec.category() != connack_category()) return std::nullopt;
  return static_cast<mqtt::connect_return_code>(ec.value());
}

}  // namespace twinfleet::net
