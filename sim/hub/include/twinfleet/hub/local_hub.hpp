// The local hub as a running thing: certificates, MQTT listeners (TCP, TLS, WebSocket) and
// REST listeners (HTTP, HTTPS) around one hub_core, on one executor. `twinfleet hub` runs one
// in its own process; `twinfleet run` embeds one with a library call.
//
//   hub::local_hub hub(io.get_executor(), options);
//   if (auto ec = hub.start()) ...;          // certificates ready, every listener bound
//   write(hub.describe());                   // endpoints, keys, connection strings (hub.json)
//   ...
//   hub.async_stop([&] { io.stop(); });      // graceful: listeners, connections, then done
//
// Threading: everything runs on the executor given (single-threaded); call the members there,
// or before it runs.
#pragma once

#include <twinfleet/hub/core.hpp>
#include <twinfleet/hub/settings.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/json/object.hpp>
#include <boost/system/error_code.hpp>

#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace twinfleet::hub {

enum class listener_protocol { mqtt, mqtts, ws, wss, http, https };

// "mqtt", "mqtts", "ws", "wss", "http", "https".
[[nodiscard]] std::string_view to_string(listener_protocol p) noexcept;

struct listener_spec {
  listener_protocol protocol = listener_protocol::mqtts;
  boost::asio::ip::tcp::endpoint endpoint{boost::asio::ip::address_v4::loopback(), 0};  // port 0: ephemeral
  std::string ws_path;  // ws/wss: the path served ("/mqtt", "/$iothub/websocket"); empty serves any
};

struct hub_options {
  hub_settings settings;
  // Where the CA and the server certificate live; a development CA and a server certificate
  // for localhost, 127.0.0.1 and ::1 are written there when absent.
  std::filesystem::path certs_dir;
  std::vector<listener_spec> listeners;
  std::function<void(std::string_view)> log;  // start-up and error lines; stderr when empty
};

struct bound_listener {
  listener_protocol protocol;
  boost::asio::ip::tcp::endpoint endpoint;
  std::string ws_path;
};

class local_hub {
 public:
  local_hub(boost::asio::any_io_executor executor, hub_options options);
  ~local_hub();
  local_hub(const local_hub&) = delete;
  local_hub& operator=(const local_hub&) = delete;

  // Prepares the certificates and TLS contexts, binds every listener and starts serving.
  // Errors: file and certificate errors from sim/auth, bind errors (address_in_use, ...).
  boost::system::error_code start();

  // Stops accepting, closes every connection gracefully, then calls `done` on the executor.
  void async_stop(std::function<void()> done);

  [[nodiscard]] const std::vector<bound_listener>& listeners() const noexcept;
  [[nodiscard]] hub_core& core() noexcept;
  [[nodiscard]] const std::filesystem::path& ca_file() const noexcept;

  // What clients need to reach this hub, as hub.json holds it (documented in docs/HUB.md).
  [[nodiscard]] boost::json::object describe() const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace twinfleet::hub
