// What the Azure and AWS device coroutines share: generated values, telemetry bodies and
// intervals, and the profile's side effects. Not a public header.
#pragma once

#include <twinfleet/device/generator.hpp>
#include <twinfleet/device/profile.hpp>
#include <twinfleet/device/random.hpp>
#include <twinfleet/device/template.hpp>

#include <boost/json/object.hpp>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace twinfleet::device::detail {

using steady = std::chrono::steady_clock;

struct scheduled_report {
  steady::time_point due;
  boost::json::object patch;
};

// The profile-driven part of a device: values in force, what it reported, its generators and
// timers. Both platforms' coroutines keep one.
struct device_core {
  device_core(std::shared_ptr<const profile> p, std::uint64_t index, std::uint64_t seed, std::string id);

  std::shared_ptr<const profile> device_profile;
  std::uint64_t index;
  std::uint64_t seed;
  std::string id;
  rng random;
  boost::json::object in_force;       // writable properties' values in force
  boost::json::object last_reported;  // the reported values sent last
  std::vector<scheduled_report> later;
  std::vector<value_generator> generators;        // one per reported property
  std::vector<steady::time_point> report_due;     // one per reported property
  std::vector<value_generator> telemetry_values;  // one per telemetry field, all messages in order
  std::vector<steady::time_point> telemetry_due;  // one per telemetry message
  std::vector<bool> telemetry_on;
  steady::time_point started = steady::now();
  steady::time_point offline_until{};  // a reboot effect

  const profile& p() const { return *device_profile; }
  template_context context(std::string_view message = {}, const boost::json::value* request = nullptr) const;

  // Reported properties due now (interval and on-change), and scheduled ones (blink off).
  boost::json::object due_reports(steady::time_point now);
  // Values sent on each (re)connection: on_connect properties, and all on the first one.
  boost::json::object connect_reports(bool first);
  // A telemetry message's JSON body.
  boost::json::object telemetry_body(std::size_t message);
  // The interval of a telemetry message now: `every`, or the desired send interval it follows.
  steady::duration telemetry_interval(const telemetry_message& m);
  // Applies effects (set, blink, telemetry on/off, reboot); returns the reported changes.
  // `reboot` is set when the device must go offline now.
  boost::json::object apply_effects(const std::vector<effect>& effects, bool& reboot);
  // The earliest time something is due.
  steady::time_point next_due(steady::time_point until) const;

  // The profile's flaky network (lifecycle.flaky_disconnects, a Poisson rate): true when the
  // device's own network drops it now; the next drop is then drawn.
  bool flaky_drop_due(steady::time_point now);
  steady::time_point next_flaky = steady::time_point::max();
};

}  // namespace twinfleet::device::detail
