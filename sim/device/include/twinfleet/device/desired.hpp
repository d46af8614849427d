// Desired (writable) property handling as pure functions: validate a requested value, decide
// what is in force afterwards, and build the acknowledgement each platform expects.
//
// Azure (IoT Plug and Play convention): the device reports, under the property's name,
//   {"value": <value in force>, "ac": <status>, "av": <desired $version>, "ad": <description>}
// with ac 200 when applied, 202 while an apply delay runs, 400 when refused.
// AWS: the device reports the value in force under the property's name; when it equals the
// desired value the shadow's delta clears. A refused value leaves the previous value in force,
// so the refusal shows as a delta that stays — the same rule as Azure's ac 400, where the
// acknowledged value is also the one in force.
#pragma once

#include <twinfleet/device/profile.hpp>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <cstdint>
#include <optional>
#include <string>

namespace twinfleet::device {

// Why `value` does not fit `schema` ("must lie in [0, 100], got 150"), or nullopt when it fits.
// Integers accept whole-valued numbers (2.0); numbers accept integers.
[[nodiscard]] std::optional<std::string> check_value(const property_schema& schema, const boost::json::value& value);

// The outcome of one desired write.
struct desired_decision {
  bool accepted = false;
  boost::json::value value;  // in force afterwards (the request when accepted, else the current)
  int status = 200;          // 200 applied, 400 refused
  std::string description;   // "applied", or why it was refused
};

// Decides a desired write of `requested` for `property` while `current` is in force (null
// when nothing is). Objects merge: a partial object (an AWS delta, an Azure desired patch)
// updates the named members of `current` only, and the merged object is checked. A null
// request (the desired property deleted) returns to the property's initial value.
[[nodiscard]] desired_decision decide_desired(const writable_property& property, const boost::json::value& requested,
                                              const boost::json::value& current);

// {"value", "ac", "av", "ad"} for a decision on desired version `desired_version`.
[[nodiscard]] boost::json::object azure_ack(const desired_decision& d, std::int64_t desired_version);
// {"value": requested, "ac": 202, "av": version, "ad": "applying"}: sent when an apply delay starts.
[[nodiscard]] boost::json::object azure_pending_ack(const boost::json::value& requested, std::int64_t desired_version);
// The reported patch acknowledging `name` on Azure: {name: azure_ack(d, version)}.
[[nodiscard]] boost::json::object azure_ack_patch(std::string_view name, const desired_decision& d, std::int64_t desired_version);
// The reported patch for `name` on AWS: {name: d.value}.
[[nodiscard]] boost::json::object aws_reported_mirror(std::string_view name, const desired_decision& d);

}  // namespace twinfleet::device
