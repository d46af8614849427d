// Value generators: where a reported property's or a telemetry field's values come from.
// The specs are plain data (from the profile); a `value_generator` is one device's running
// state for one spec, deterministic from its seed.
#pragma once

#include <twinfleet/device/distribution.hpp>
#include <twinfleet/device/random.hpp>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace twinfleet::device {

// The same value every time.
struct constant_generator {
  boost::json::value value;
};

// A bounded random walk: each step moves by a uniform amount in [-step, step] and stays in
// [min, max]. With `toward` (a desired property name), each step first moves up to `step`
// toward that property's current value (a thermostat approaching its target), then adds noise
// of up to `step / 4`.
struct walk_generator {
  double start = 0;
  double step = 1;
  double min = 0;
  double max = 100;
  std::optional<std::string> toward;
  std::optional<int> decimals;  // round to this many decimals; 0 gives integers
};

// mean + amplitude × sin(2π t / period + phase) + normal noise (stddev `noise`). The phase is
// drawn once per device from its seed unless `random_phase` is false (then 0).
struct sine_generator {
  double mean = 0;
  double amplitude = 1;
  duration period = std::chrono::minutes(1);
  double noise = 0;
  bool random_phase = true;
  std::optional<int> decimals;
};

// Uniform in [min, max] on every call.
struct uniform_generator {
  double min = 0;
  double max = 1;
  std::optional<int> decimals;
};

// The listed values in turn (or, when `random`, one at random each time).
struct cycle_generator {
  std::vector<boost::json::value> values;
  bool random = false;
};

// start, start + step, … ; back to `start` after passing `wrap` when set.
struct counter_generator {
  std::int64_t start = 0;
  std::int64_t step = 1;
  std::optional<std::int64_t> wrap;
};

// The current value of a desired (writable) property: what a device reports as in force. The
// profile loader fills `fallback` with the desired property's initial value.
struct mirror_generator {
  std::string desired;
  boost::json::value fallback;
};

using generator_spec = std::variant<constant_generator, walk_generator, sine_generator, uniform_generator,
                                    cycle_generator, counter_generator, mirror_generator>;

// "constant", "walk", … as the YAML spells them.
[[nodiscard]] const char* generator_name(const generator_spec& spec) noexcept;
// The desired property a generator reads (walk.toward, mirror.desired), if any.
[[nodiscard]] const std::string* desired_dependency(const generator_spec& spec) noexcept;

// One device's generator for one spec. `spec` must outlive it (profiles are shared and live
// for the whole run). 40 bytes plus the spec pointer; no allocation after construction.
class value_generator {
 public:
  value_generator(const generator_spec& spec, std::uint64_t seed) noexcept;

  // The next value. `elapsed` is the time since the device started (sine reads it);
  // `desired` is the device's desired values in force (mirror and walk.toward read it; may be
  // null, then the fallback or the walk's own drift applies).
  boost::json::value next(duration elapsed, const boost::json::object* desired);

 private:
  const generator_spec* spec_;
  rng rng_;
  double walk_ = 0;
  double phase_ = 0;
  std::uint64_t count_ = 0;
};

}  // namespace twinfleet::device
