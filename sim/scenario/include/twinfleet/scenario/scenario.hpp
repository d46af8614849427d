// The scenario model: what `twinfleet run` runs. Plain data, loaded from YAML by
// scenario_loader.hpp and documented key by key in docs/SCENARIOS.md. Every profile a fleet
// entry uses is resolved and loaded (with the entry's overrides applied), so the engine needs
// nothing but this struct.
#pragma once

#include <twinfleet/device/profile.hpp>
#include <twinfleet/scenario/threshold.hpp>

#include <boost/json/object.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace twinfleet::scenario {

using duration = std::chrono::nanoseconds;

enum class dialect : std::uint8_t { azure, aws };
[[nodiscard]] const char* to_string(dialect d) noexcept;

enum class transport : std::uint8_t { tls, tcp };

// ---- targets ----------------------------------------------------------------------------
// Strings marked "secret" may be written as "env:NAME": the value is read from the
// environment variable NAME when the run starts (resolve_secret), so files need no secrets.

// The hub embedded in the twinfleet process (the default).
struct local_target {
  transport via = transport::tls;
};

// A running `twinfleet hub`, found through the hub.json it wrote.
struct hub_target {
  std::filesystem::path hub_json = "hub.json";  // relative paths: to the scenario file
  transport via = transport::tls;
};

// Azure IoT Hub. Device identities are created through the registry REST API when missing,
// at most `registry_rate` per second (the registry throttle), unless `group_key` is given
// (devices then derive their keys from it, as with DPS group enrollment).
struct azure_target {
  std::string connection_string;  // secret: "HostName=…;SharedAccessKeyName=…;SharedAccessKey=…"
  std::string group_key;          // secret, optional
  bool create_devices = true;
  double registry_rate = 100.0 / 60.0;  // per second; S1 allows 100/min/unit
  // For testing against `twinfleet hub` or a proxy: where to dial instead of HostName:8883
  // (devices) and the connection string's HostName[:port] (REST), as "host:port"; the TLS name
  // check, SAS resources and Host headers keep HostName. `ca`: trust anchors instead of the
  // system's.
  std::string device_endpoint;
  std::string rest_endpoint;
  std::filesystem::path ca;
};

// AWS IoT Core: devices over mutual TLS, the back end over the shadow data-plane REST API
// signed with SigV4 plus one MQTT observer.
struct aws_target {
  std::string endpoint;  // "abc123-ats.iot.eu-west-1.amazonaws.com"
  std::string region;    // "eu-west-1"
  std::filesystem::path ca;
  std::filesystem::path certificate;      // one certificate for every device, or…
  std::filesystem::path key;
  std::filesystem::path certificate_dir;  // …per device: {id}.cert.pem and {id}.private.key here
  std::string access_key_id;              // secret; "" = the AWS_* environment variables
  std::string secret_access_key;          // secret
  std::string session_token;              // secret, optional
  // For testing against `twinfleet hub` or a proxy: "host:port" to dial instead of
  // endpoint:8883 (devices) and endpoint:443 (REST); TLS names, SigV4's Host keep `endpoint`.
  std::string device_endpoint;
  std::string rest_endpoint;
};

using target_spec = std::variant<local_target, hub_target, azure_target, aws_target>;
[[nodiscard]] const char* target_name(const target_spec& t) noexcept;

// "env:NAME" → the environment variable's value (nullopt when unset); anything else as is.
[[nodiscard]] std::optional<std::string> resolve_secret(const std::string& value);

// ---- fleet ------------------------------------------------------------------------------

struct fleet_entry {
  std::string profile_ref;  // as written: "lightbulb" or "../my/profile.yaml"
  std::shared_ptr<const device::profile> profile;  // resolved, overrides applied
  std::uint64_t count = 0;
  dialect via = dialect::azure;
  // Device ids: the profile's pattern unless the entry gives its own; {index} runs from
  // first_index to first_index + count - 1.
  device::string_template id;
  std::uint64_t first_index = 0;
  // AWS shadows each device keeps: "" is the classic shadow (written "classic").
  std::vector<std::string> shadows{std::string{}};
};

// ---- ramp, phases, faults ---------------------------------------------------------------

// Devices connect at `rate` per second (or spread evenly over `over`); each start moves by a
// uniform ±jitter × the gap between starts.
struct ramp_spec {
  double rate = 500;             // connections per second
  std::optional<duration> over;  // when set, rate = devices / over
  double jitter = 0;             // fraction of the gap, [0, 1]
  // At most this many devices of a process connecting and synchronising at once; the others
  // wait their turn (0: no limit). Bounds the simulator's own queue in a connect storm.
  std::uint64_t max_connecting = 500;
};

// Back-end load of one kind: `rate` per second over the fleet, or per device when per_device.
struct load_rate {
  double rate = 0;
  bool per_device = false;
  // Which properties (desired writes) or methods (method calls) to use; empty: all that the
  // targeted devices' profiles have. Devices whose profile has none of them are not targeted.
  std::vector<std::string> names;

  [[nodiscard]] bool any() const noexcept { return rate > 0; }
  // Operations per second over `eligible_devices`.
  [[nodiscard]] double per_second(std::uint64_t eligible_devices) const noexcept {
    return per_device ? rate * static_cast<double>(eligible_devices) : rate;
  }
};

struct backend_load {
  load_rate desired_writes;
  load_rate method_calls;
  load_rate twin_reads;
};

struct phase {
  std::string name;
  duration length{0};
  backend_load backend;
  double telemetry_multiplier = 1.0;  // 0 silences telemetry, 2 doubles it
};

// At `at` after the start: drop `drop` of the device connections (of `only` when set), and/or
// change the hub's fault knobs to `hub` (the JSON the hub's admin endpoint takes; local and
// hub targets only).
struct fault {
  duration at{0};
  double drop = 0;
  std::optional<dialect> only;
  std::optional<boost::json::object> hub;
};

// The AWS back end's observer of shadow documents (docs/SCENARIOS.md, "The AWS observer").
struct aws_observer_spec {
  // 0: one connection subscribed to every shadow's documents with two wildcard filters.
  // N (1..50): the process's AWS shadows shared out over connections of N shadows each, every
  // one subscribed to its shadows' documents topics exactly — AWS IoT delivers at most 100
  // messages a second to a connection and takes at most 50 subscriptions on one.
  std::uint32_t shadows_per_connection = 0;
};

// ---- the scenario -----------------------------------------------------------------------

struct scenario {
  std::string name;
  std::string description;
  std::filesystem::path source;  // the file it was loaded from
  std::uint64_t seed = 1;
  target_spec target = local_target{};
  std::vector<fleet_entry> fleet;
  ramp_spec ramp;
  std::vector<phase> phases;
  std::vector<fault> faults;
  std::vector<threshold> thresholds;
  aws_observer_spec aws_observer;

  [[nodiscard]] std::uint64_t device_count() const noexcept;
  [[nodiscard]] duration total_duration() const noexcept;  // the phases' lengths summed
};

}  // namespace twinfleet::scenario
