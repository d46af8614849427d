// Where a run's devices and back end go: the embedded hub (target: local), a running
// `twinfleet hub` (target: hub), Azure IoT Hub (target: azure) or AWS IoT (target: aws).
// Whatever the target, the rest of the run sees the same things: the endpoint devices connect
// to and how (TLS context, per-device credentials), and the back end's service clients — the
// same REST clients for the hub's emulation and for the clouds.
//
// Internal to engine_run. Threading: opened, used by the back end and closed on the hub's
// io_context thread (`hub_io`); configure() is called on the device threads as devices start
// (it only reads the target, but for the transports it shares, which it guards).
#pragma once

#include <twinfleet/backends/service_aws.hpp>
#include <twinfleet/backends/service_azure.hpp>
#include <twinfleet/device/aws_runner.hpp>
#include <twinfleet/device/azure_runner.hpp>
#include <twinfleet/hub/local_hub.hpp>
#include <twinfleet/scenario/plan.hpp>
#include <twinfleet/scenario/scenario.hpp>
#include <twinfleet/twin/error.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/json/object.hpp>

#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace twinfleet::engine::detail {

class run_target {
 public:
  // The device-side facts every device of the run shares.
  boost::asio::ip::tcp::endpoint device_endpoint;
  bool tls = true;
  std::optional<boost::asio::ssl::context> device_tls;  // when tls
  std::string server_name;                              // SNI / certificate name check
  std::string azure_host_name = "localhost";            // the SAS resource's host part
  std::string group_key;                                // devices derive their SAS keys from it
  // target: azure without a group key: each device's primary key, as the registry holds it
  // (filled by provision()).
  std::unordered_map<std::string, std::string> device_keys;
  // target: aws with certificate_dir: one context per thing with its own certificate (filled
  // by provision()); otherwise every device shares device_tls.
  std::unordered_map<std::string, std::unique_ptr<boost::asio::ssl::context>> device_contexts;

  // The back end's clients (null when the target has no such dialect).
  std::unique_ptr<backends::azure_service_client> azure;
  std::unique_ptr<backends::aws_service_client> aws;

  // target: local and hub — what the hub says of itself (hub.json, or the embedded hub's
  // describe()): listeners, keys, the back-end certificate.
  boost::json::object hub_description;

  // The embedded hub (target: local) or null; faults of the scenario apply to it only.
  std::unique_ptr<hub::local_hub> embedded;
  std::filesystem::path scratch;  // files of the embedded hub, removed by close()

  // The transport and credentials of one device (`device_id` picks its own TLS context when
  // there is one).
  [[nodiscard]] net::client_transport transport(std::string_view device_id = {}) const;
  // A device's endpoint, transport and credentials; it connects from `source` when set. The
  // transport is shared by every device that connects the same way: a device keeps it for its
  // reconnects, and a copy of its own was 192 bytes of every idle device.
  void configure(device::azure_device_run& run, std::optional<boost::asio::ip::address> source = {}) const;
  void configure(device::aws_device_run& run, std::optional<boost::asio::ip::address> source = {}) const;

  // Stops the clients and the embedded hub; `done` runs on hub_io when all is closed.
  void close(std::function<void()> done);
  ~run_target();

 private:
  [[nodiscard]] std::shared_ptr<const net::client_transport> shared_transport(std::string_view device_id,
                                                                              std::optional<boost::asio::ip::address> source) const;
  using transport_key = std::pair<const boost::asio::ssl::context*, std::optional<boost::asio::ip::address>>;
  mutable std::mutex transports_m_;
  mutable std::map<transport_key, std::shared_ptr<const net::client_transport>> transports_;
};

// Drives `hub_io` on this thread until `done()` or the deadline, before the hub thread runs
// it (provisioning, the AWS observer's start); true when done.
bool run_until(boost::asio::io_context& hub_io, const std::function<bool()>& done, std::chrono::steady_clock::time_point deadline);

// Opens the scenario's target: starts the embedded hub or reads hub.json, or for azure and aws
// resolves the secrets, loads the certificates, checks that the device endpoint answers and
// builds the TLS context and the service clients. Errors are one line naming the setting
// (`target.connection_string: the environment variable IOTHUB_CS is not set`); the run then
// exits 1.
[[nodiscard]] twin::result<std::unique_ptr<run_target>> open_target(const scenario::scenario& s,
                                                                    boost::asio::io_context& hub_io,
                                                                    const std::function<void(std::string_view)>& out);

// What must exist before the devices start, for the targets that need it (nothing for local
// and hub): azure without group_key — every device identity of the fleet read from the
// registry, created when missing (create_devices), paced to registry_rate, progress through
// `out`, and its primary key kept; azure with group_key — one twin read that proves the
// connection string; aws — one shadow read that proves the SigV4 credentials, and with
// certificate_dir each thing's TLS context. Runs `hub_io` on the calling thread until done
// (call it before the hub thread starts), then leaves it restartable.
[[nodiscard]] twin::result<void> provision(run_target& target, const scenario::scenario& s,
                                           const std::vector<scenario::device_spec>& fleet,
                                           boost::asio::io_context& hub_io,
                                           const std::function<void(std::string_view)>& out);

}  // namespace twinfleet::engine::detail
