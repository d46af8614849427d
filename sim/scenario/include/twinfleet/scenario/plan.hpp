// The planner basics: a loaded scenario turned into what the engine schedules — one spec per
// device, each device's intended connect time, and the phase timeline. Pure and deterministic
// from the scenario's seed.
#pragma once

#include <twinfleet/scenario/scenario.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace twinfleet::scenario {

// One device of the fleet.
struct device_spec {
  std::uint64_t index = 0;        // 0 … N-1 over the whole fleet, in fleet order
  std::size_t entry = 0;          // which fleet entry
  std::uint64_t entry_index = 0;  // the {index} of its id (first_index + position in the entry)
  std::string id;
  std::shared_ptr<const device::profile> profile;
  dialect via = dialect::azure;
  std::vector<std::string> shadows;  // aws: "" = classic
  std::uint64_t seed = 0;            // device::mix_seed(scenario.seed, index): every random choice of this device
};

// `twinfleet run --devices N`: the fleet's entries rescaled so they hold N devices together,
// each keeping its share (largest remainders get the odd devices; an entry may drop to 0).
void scale_fleet(scenario& s, std::uint64_t devices);

// Every device, in fleet order. Profiles are shared, not copied.
[[nodiscard]] std::vector<device_spec> expand_fleet(const scenario& s);

// When each device (by fleet index) is meant to start connecting, from the run's start:
// device i at i / rate (rate = devices / ramp.over when `over` is set), moved by a uniform
// ±jitter × (1 / rate), never before 0. Deterministic from `seed`.
[[nodiscard]] std::vector<duration> ramp_schedule(const ramp_spec& ramp, std::uint64_t devices, std::uint64_t seed);

// The effective connection rate of a ramp for `devices` devices.
[[nodiscard]] double ramp_rate(const ramp_spec& ramp, std::uint64_t devices) noexcept;

// A phase's place on the timeline. Phases follow each other from the run's start (the ramp
// overlaps the first phases; back-end load goes to connected devices only).
struct phase_window {
  std::size_t phase = 0;
  duration start{0};
  duration end{0};
};
[[nodiscard]] std::vector<phase_window> phase_timeline(const scenario& s);
// The phase running at `t` since the start; nullptr after the last one.
[[nodiscard]] const phase* phase_at(const scenario& s, duration t) noexcept;

// How many devices a back-end load can target: those whose profile has at least one of the
// load's names (desired properties for writes, commands for method calls), or any desired
// property / command when the load names none. Twin reads target every device.
[[nodiscard]] std::uint64_t eligible_for_writes(const scenario& s, const load_rate& l) noexcept;
[[nodiscard]] std::uint64_t eligible_for_methods(const scenario& s, const load_rate& l) noexcept;

// The AWS shadow documents (/update/documents) the back end's desired writes make a second at
// the busiest phase, per AWS shadow: each accepted write makes one, and the device's
// acknowledgement (the reported mirror) another. Device reports of their own add more. 0 when
// the fleet has no AWS shadows or no writes reach them. What one observer connection of
// aws_observer must carry: shadows_per_connection × this.
[[nodiscard]] double aws_write_documents_per_shadow(const scenario& s) noexcept;

// The method calls a second that go to AWS things (commands, docs/PROFILES.md) at the busiest
// phase: their answers reach the back end on one MQTT connection.
[[nodiscard]] double aws_command_calls_per_second(const scenario& s) noexcept;

}  // namespace twinfleet::scenario
