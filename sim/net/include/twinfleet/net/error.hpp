// Errors of the network binding: why a connection could not be opened or ended, and the MQTT
// broker's refusal of a CONNECT as an error code.
//
// Two categories, both kept apart from mqtt_category() (the session's own reasons, which reach
// the application unchanged) and from Asio's, OpenSSL's and Beast's transport errors (passed
// through where they say more than "the peer went away"):
// - net_category() "twinfleet.net": net_errc below;
// - connack_category() "twinfleet.connack": a CONNACK return code other than 0, as connack_errc.
#pragma once

#include <twinfleet/mqtt/packet.hpp>

#include <boost/system/error_code.hpp>

#include <cstdint>
#include <optional>
#include <type_traits>

namespace twinfleet::net {

enum class net_errc {
  connect_timeout = 1,       // a client's async_connect did not finish (TCP, TLS, WebSocket and
                             // CONNACK together) within its timeout
  handshake_timeout,         // a server's TLS or WebSocket handshake did not finish in time
  connection_closed,         // the peer closed the connection (TCP FIN, TLS end of stream,
                             // WebSocket close frame) without an MQTT DISCONNECT
  connection_lost,           // an operation was pending when its connection ended
  aborted,                   // abort() was called (or the client_connection was destroyed)
  websocket_upgrade_refused, // a server answered the WebSocket upgrade with something else than
                             // 101, or a client asked for a path the server does not serve
  missing_tls_context,       // tls or wss without an ssl::context
  listener_stopped,          // the listener was stopped before or while this was attempted
  internal_error,            // an exception escaped a handler (a bug; written to stderr)
};

enum class connack_errc {
  unacceptable_protocol_version = 1,
  identifier_rejected = 2,
  server_unavailable = 3,
  bad_username_or_password = 4,
  not_authorized = 5,
};

// Constant categories; thread-safe.
[[nodiscard]] const boost::system::error_category& net_category() noexcept;
[[nodiscard]] const boost::system::error_category& connack_category() noexcept;

[[nodiscard]] inline boost::system::error_code make_error_code(net_errc e) noexcept {
  return {static_cast<int>(e), net_category()};
}
[[nodiscard]] inline boost::system::error_code make_error_code(connack_errc e) noexcept {
  return {static_cast<int>(e), connack_category()};
}

// The error a client reports for a CONNACK with this return code; empty for `accepted`.
[[nodiscard]] boost::system::error_code connack_error(mqtt::connect_return_code code) noexcept;

// Exceptions caught from connection handlers since the process started (each one is a bug in a
// handler or in this module, and is written to stderr). Thread-safe.
[[nodiscard]] std::uint64_t unexpected_exception_count() noexcept;

// The CONNACK return code behind an error of connack_category(), else nullopt.
[[nodiscard]] std::optional<mqtt::connect_return_code> refused_code(const boost::system::error_code& ec) noexcept;

}  // namespace twinfleet::net

template <>
struct boost::system::is_error_code_enum<twinfleet::net::net_errc> : std::true_type {};
template <>
struct boost::system::is_error_code_enum<twinfleet::net::connack_errc> : std::true_type {};
