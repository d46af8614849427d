// The local hub's fault injection and throttling knobs (PROTOCOLS.md C3, A14, B7): plain data,
// off by default, read from hub.yaml or the admin REST endpoint as JSON and applied by hub_core.
//
// Every random choice comes from one generator seeded with `fault_settings::seed`, in the order
// the hub meets the messages, so a run with the same traffic order repeats the same faults.
#pragma once

#include <twinfleet/twin/error.hpp>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace twinfleet::hub {

// What the hub sends to devices, by kind: the unit that delivery faults select. The names
// ("azure.desired_patch", ...) are the ones hub.yaml, the admin endpoint and the metrics use.
enum class outbound_kind : std::uint8_t {
  azure_twin_response,   // $iothub/twin/res/{status}/?$rid=…
  azure_desired_patch,   // $iothub/twin/PATCH/properties/desired/?$version=…
  azure_method_request,  // $iothub/methods/POST/{name}/?$rid=…
  aws_accepted,          // …/shadow/…/{get,update,delete}/accepted
  aws_rejected,          // …/rejected
  aws_delta,             // …/update/delta
  aws_documents,         // …/update/documents
  aws_message,           // any other topic routed to subscribers
};
inline constexpr std::size_t outbound_kind_count = 8;

[[nodiscard]] std::string_view to_string(outbound_kind k) noexcept;
[[nodiscard]] std::optional<outbound_kind> outbound_kind_from_string(std::string_view name) noexcept;
// Which kind a message the hub sends on `topic` is.
[[nodiscard]] outbound_kind classify_outbound(std::string_view topic) noexcept;

// One delivery rule: what happens to the messages it selects. A message takes the first rule
// whose `kinds` contains its kind (an empty list selects every kind).
struct delivery_fault {
  std::vector<outbound_kind> kinds;
  std::chrono::microseconds delay{0};   // added to every selected message
  std::chrono::microseconds jitter{0};  // plus uniform [0, jitter)
  double drop = 0;                      // probability the message is never sent
  double duplicate = 0;                 // probability it is sent twice (the copy right after)
  double reorder = 0;                   // probability it is held back by `reorder_hold`, so
  std::chrono::microseconds reorder_hold{std::chrono::milliseconds(50)};  // later ones overtake it
};

// Forced disconnects at a moment: `fraction` of the connections of `backend` (both when
// empty), chosen at random, are closed by the hub.
struct disconnect_event {
  std::chrono::milliseconds at{0};  // after the fault settings were applied
  double fraction = 0;
  std::optional<std::string> backend;  // "azure" or "aws"
};

struct fault_settings {
  std::uint64_t seed = 1;
  std::vector<delivery_fault> delivery;
  // AWS: probability that an update's /update/delta goes out before its /update/accepted (C2.2).
  double aws_swap_accepted_delta = 0;
  // Azure: probability that a service desired write skips 1..azure_skip_max version numbers
  // (C1.3), so devices that assume +1 see a gap.
  double azure_skip_desired_versions = 0;
  std::int64_t azure_skip_max = 3;
  // After a SUBACK, messages for the new subscription are dropped for this long (C2.4).
  std::chrono::milliseconds subscription_activation_delay{0};
  // Reported writes a device sends (Azure reported PATCH, AWS shadow /update): probability that
  // one is held back by `reported_reorder_hold` before the hub serves it, so the connection's
  // later requests overtake it (C1.4: no ordering guarantee for concurrent requests). A held
  // request is served only if its connection still stands.
  double reported_reorder = 0;
  std::chrono::milliseconds reported_reorder_hold{50};
  // Connection takeover (C1.8; an emulator knob, [X]): when a new connection takes a device id
  // (Azure) or client id (AWS) over, the replaced one is closed only this long after, and is
  // served meanwhile (its reported writes are applied, its requests answered; Azure desired
  // notifications and methods go to the new connection): a hub whose gateways learn of the
  // new connection late. 0 (the default): the replaced connection is closed at once.
  std::chrono::milliseconds takeover_grace{0};
  // Forced disconnects: a Poisson rate over all device connections, and a schedule.
  double disconnects_per_second = 0;
  std::vector<disconnect_event> disconnect_schedule;

  [[nodiscard]] bool any() const noexcept;
};

// A token bucket with a waiting queue: `per_second` tokens a second (0: unlimited), up to
// `burst` saved, and up to `queue` requests waiting for a token; beyond that, 429 (A14, B7).
struct rate_limit {
  double per_second = 0;
  double burst = 0;  // 0: one second's worth
  std::size_t queue = 0;

  [[nodiscard]] bool limited() const noexcept { return per_second > 0; }
};

// Throttling, off unless a limit is set. Azure limits are per hub; AWS shadow limits per thing
// and per account; connection limits refuse the CONNECT (CONNACK 3) instead of queueing.
struct throttle_settings {
  rate_limit azure_connects;      // new device connections
  rate_limit azure_twin_reads;    // device GET and service GET /twins
  rate_limit azure_twin_updates;  // reported PATCH, service PATCH/PUT /twins
  rate_limit azure_d2c;           // telemetry
  rate_limit azure_methods;       // direct methods, metered in 4 KB units
  rate_limit azure_registry;      // identity registry operations
  rate_limit aws_shadow_per_thing{20, 20, 10};  // 20 requests/s per thing, 10 in flight (B7)
  rate_limit aws_shadow_account;  // account-wide shadow API TPS
  rate_limit aws_connects;        // CONNECTs per account
  // Messages the broker delivers to one AWS connection a second (the message broker's 100
  // publishes a second per connection, which AWS applies to a subscriber that fans in too).
  // No queue: the excess is dropped, as AWS IoT drops a QoS 0 message it throttles.
  rate_limit aws_connection_deliveries{100, 100, 0};
  bool aws_enabled = false;       // the per-thing and per-connection defaults apply only when enabled

  [[nodiscard]] bool any() const noexcept;
};

// Every limit of throttle_settings with its name in hub.yaml and the admin endpoint.
struct named_limit {
  std::string_view name;  // "azure_twin_updates"
  rate_limit throttle_settings::*member;
};
[[nodiscard]] std::span<const named_limit> throttle_limits() noexcept;

// The Azure tier presets of PROTOCOLS.md A14 ("S1", "S2", "S3", "F1", "B1".."B3" read as their
// S counterparts for twins), for `units` units; queues default to 10 seconds of the rate.
// Errors: an unknown tier or units < 1.
[[nodiscard]] twin::result<throttle_settings> azure_tier_preset(std::string_view tier, int units);

// JSON forms (the admin endpoint's bodies and hub.json). Durations are milliseconds as
// numbers ("delay_ms"), probabilities numbers in [0, 1]. Unknown keys, wrong types and values
// out of range are errors naming the key path ("delivery[1].drop: must lie in [0, 1]").
[[nodiscard]] boost::json::object to_json(const fault_settings& f);
[[nodiscard]] twin::result<fault_settings> fault_settings_from_json(const boost::json::value& v);
[[nodiscard]] boost::json::object to_json(const throttle_settings& t);
// Accepts {"azure_tier":"S1","azure_units":2, …limits…}: the preset first, then the limits given.
[[nodiscard]] twin::result<throttle_settings> throttle_settings_from_json(const boost::json::value& v);

}  // namespace twinfleet::hub
