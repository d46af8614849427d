// hub.yaml: the local hub's configuration file (`twinfleet hub --config hub.yaml`, and the
// `hub:` block a scenario may embed). Every key is optional; command-line flags override the
// file. Documented with an example in docs/HUB.md.
//
//   hub_name: localhost
//   auth: open                 # or strict
//   certs: ./twinfleet-hub
//   state_file: ./hub-state.jsonl
//   listen: {mqtts: 127.0.0.1:8883, https: 127.0.0.1:8443, mqtt: "off", http: "off", ws: "off", wss: "off"}
//   faults:
//     seed: 7
//     delivery:
//       - kinds: [azure.desired_patch, aws.delta]
//         delay: 20ms
//         jitter: 10ms
//         drop: 1%
//         duplicate: 0.5%
//         reorder: 2%
//         reorder_hold: 50ms
//     aws_swap_accepted_delta: 50%
//     azure_skip_desired_versions: 10%
//     azure_skip_max: 3
//     subscription_activation_delay: 200ms
//     disconnects: 0.5/s
//     disconnect_schedule:
//       - {at: 30s, fraction: 10%, backend: aws}
//   throttle:
//     azure_tier: S1
//     azure_units: 1
//     azure_twin_updates: {rate: 50/s, burst: 50, queue: 500}
//     aws: true                # the B7 per-thing limit (20/s, 10 waiting)
//     aws_shadow_account: {rate: 400/s}
#pragma once

#include <twinfleet/config/diagnostics.hpp>
#include <twinfleet/config/reader.hpp>
#include <twinfleet/hub/faults.hpp>

#include <filesystem>
#include <map>
#include <optional>
#include <string>

namespace twinfleet::hub {

struct hub_file_config {
  std::optional<std::string> hub_name;
  std::optional<std::string> auth;  // "open" | "strict"
  std::optional<std::string> certs;
  std::optional<std::string> state_file;
  std::map<std::string, std::string> listen;  // "mqtts" → "127.0.0.1:8883" or "off"
  std::optional<fault_settings> faults;
  std::optional<throttle_settings> throttle;
};

// Reads a hub configuration from a map node (a hub.yaml root, or a scenario's `hub:` block);
// every problem goes to the node's diagnostics with file:line:column and key path.
[[nodiscard]] hub_file_config read_hub_config(const config::node& root);

// Loads hub.yaml; nullopt when it cannot be read or parsed, or any diagnostic was recorded.
[[nodiscard]] std::optional<hub_file_config> load_hub_config(const std::filesystem::path& file,
                                                             config::diagnostics& diags);

}  // namespace twinfleet::hub
