// The local hub's settings: who may connect, with which keys, and the platform limits it
// enforces. Plain data; `twinfleet hub` fills it from flags and hub.yaml.
#pragma once

#include <twinfleet/hub/faults.hpp>
#include <twinfleet/twin/aws_shadow.hpp>
#include <twinfleet/twin/azure_twin.hpp>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace twinfleet::hub {

// strict: only registered Azure devices (SAS or X.509) and AWS client certificates signed by the
//         hub's CA whose CN names the thing they act for.
// open:   any device id; identities are created on first connect with the group-derived key
//         (device key = HMAC-SHA256(group key, device id)), so fleets need no registration.
enum class auth_mode { strict, open };

// An IoT Hub shared access policy (PROTOCOLS.md A9): a name, two keys, what it grants.
struct access_policy {
  std::string name;
  std::string primary_key;    // base64
  std::string secondary_key;  // base64
  bool registry_read = false;
  bool registry_write = false;
  bool service_connect = false;
  bool device_connect = false;
};

enum class permission { registry_read, registry_write, service_connect, device_connect };

struct aws_access_key {
  std::string access_key_id;
  std::string secret_access_key;
};

struct hub_settings {
  // The Azure IoT Hub host name devices and services use (HostName= in connection strings).
  // Tokens and usernames may carry any host: the hub checks the path part of resources.
  std::string host_name = "localhost";
  auth_mode auth = auth_mode::open;
  std::string group_key;  // base64; the DPS-style group enrollment key
  // Default: iothubowner, service, device, registryRead, registryReadWrite with fresh keys.
  std::vector<access_policy> policies;
  std::vector<aws_access_key> aws_keys;
  std::string aws_region = "us-east-1";
  // AWS client certificates whose CN is listed here act for every thing (back-end observers).
  std::vector<std::string> aws_admin_common_names{"twinfleet-backend"};

  twin::azure_limits azure_limits;
  twin::aws_shadow_limits aws_limits;
  std::size_t azure_max_subscriptions = 5;                 // A4
  std::chrono::seconds azure_default_method_timeout{30};   // A8
  std::chrono::seconds azure_min_method_timeout{5};
  std::chrono::seconds azure_max_method_timeout{300};
  std::uint16_t aws_min_keep_alive = 30;    // B9: below 30 counts as 30
  std::uint16_t aws_max_keep_alive = 1200;  // B9: 0 or above counts as 1200
  std::uint16_t azure_max_keep_alive = 1177;  // A4: 1.5 x 1177 s = the 1767 s idle cap

  // Off by default; the admin endpoint changes them at run time (hub_core::set_faults).
  fault_settings faults;
  throttle_settings throttle;
};

// The five default policies with keys drawn from `random_key()`.
[[nodiscard]] std::vector<access_policy> default_policies();

// 32 random bytes, base64: a fresh symmetric key.
[[nodiscard]] std::string random_key();

}  // namespace twinfleet::hub
