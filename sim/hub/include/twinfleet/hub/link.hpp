// What the hub's device side needs from one device connection, whatever carries it (MQTT over
// TCP, TLS or WebSocket today, a test double in unit tests). The hub core never sees a socket.
#pragma once

#include <twinfleet/mqtt/packet.hpp>

#include <optional>
#include <string>
#include <string_view>

namespace twinfleet::hub {

struct connection_state;  // the hub core's record of a connection (core_state.hpp)

enum class transport_kind { tcp, tls, ws, wss };

// The client certificate a TLS connection presented.
struct peer_certificate {
  std::string common_name;
  std::string sha1_thumbprint;    // upper-case hex, as the Azure portal shows it
  std::string sha256_thumbprint;  // upper-case hex
  bool verified = false;          // chained to the hub's CA
};

struct link_info {
  std::string remote_endpoint;  // "127.0.0.1:53012"
  transport_kind transport = transport_kind::tcp;
  std::optional<peer_certificate> certificate;
  std::string alpn;       // negotiated ALPN protocol, empty when none
  std::string ws_target;  // WebSocket upgrade request-target (path and query), empty otherwise
  std::string ws_host;    // the upgrade request's Host header (SigV4 signs it)
};

// One device connection, as the hub core drives it. Calls come on the hub's executor only.
class link {
 public:
  virtual ~link() = default;

  // Queues a PUBLISH to the device; never blocks. QoS 2 is never used by the hub.
  virtual void send(std::string_view topic, std::string_view payload, mqtt::qos qos) = 0;

  // Ends the connection: queued output is flushed, then the transport closes. The hub core
  // is told through hub_core::on_disconnect, as for any other loss.
  virtual void close() = 0;

  [[nodiscard]] virtual const link_info& info() const = 0;

  // The hub core's record of this connection while the core holds one (after an accepted
  // CONNECT, until hub_core::on_disconnect): a publish then costs no search of the core's
  // connection table. Set and read by the hub core only.
  connection_state* core_state = nullptr;
};

}  // namespace twinfleet::hub
