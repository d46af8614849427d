// Random durations: apply delays of desired writes, command latencies, telemetry intervals,
// reconnect back-off. Small value types; sampling takes the caller's rng, so the sequence is
// deterministic per seed.
#pragma once

#include <twinfleet/device/random.hpp>

#include <chrono>

namespace twinfleet::device {

using duration = std::chrono::nanoseconds;

struct duration_distribution {
  enum class kind : std::uint8_t {
    constant,     // always `a`
    uniform,      // uniform in [a, b]
    normal,       // mean a, standard deviation b, truncated at 0
    exponential,  // mean a (a Poisson process's gaps)
  };
  kind type = kind::constant;
  duration a{0};
  duration b{0};

  static duration_distribution constant(duration d) noexcept { return {kind::constant, d, d}; }
  static duration_distribution uniform(duration lo, duration hi) noexcept { return {kind::uniform, lo, hi}; }
  static duration_distribution normal(duration mean, duration stddev) noexcept { return {kind::normal, mean, stddev}; }
  static duration_distribution exponential(duration mean) noexcept { return {kind::exponential, mean, duration{0}}; }

  // One sample, never negative. A constant consumes no randomness.
  [[nodiscard]] duration sample(rng& r) const noexcept;
  // The expected value (for planning: rates, capacity).
  [[nodiscard]] duration mean() const noexcept;
  [[nodiscard]] bool is_zero() const noexcept { return type == kind::constant && a.count() == 0; }

  friend bool operator==(const duration_distribution&, const duration_distribution&) = default;
};

// Periodic actions (reported properties every `every`, telemetry messages): fixed-rate, each
// device at its own phase.
//
// next_period: the next due time of an action that was due at `due` and ran at `now` — one
// interval on from `due`, not from `now`. A device that ran late (its thread was busy) keeps its
// place; counted from `now`, the devices a busy thread served late would come due together again
// and keep the thread busy in bursts. Whole intervals it missed (offline, far behind) are
// skipped, not made up. A zero interval gives `now`.
template <class TimePoint>
[[nodiscard]] TimePoint next_period(TimePoint due, duration interval, TimePoint now) noexcept {
  const auto step = std::chrono::duration_cast<typename TimePoint::duration>(interval);
  if (step <= TimePoint::duration::zero()) return now;
  auto next = due + step;
  if (next <= now) next += ((now - next) / step + 1) * step;
  return next;
}

// on_grid: when a device that has something due at `t` wakes, with its thread's wake grid
// `step` (wake_on_grid_on_this_thread): at the first multiple of `step` of its clock at or after
// `t`, so that the devices of a thread due within one step wake together. Due already (`t` <=
// `now`), or a zero step: `t` itself.
template <class TimePoint>
[[nodiscard]] TimePoint on_grid(TimePoint t, TimePoint now, duration step) noexcept {
  const auto g = std::chrono::duration_cast<typename TimePoint::duration>(step);
  if (g <= TimePoint::duration::zero() || t <= now) return t;
  const auto since = t.time_since_epoch();
  const auto rest = since % g;
  return rest == TimePoint::duration::zero() ? t : TimePoint(since - rest + g);
}

// first_phase: where in its first interval an action of a device first comes due, as a fraction
// in [0, 1), from the device's seed and the action's own stream (so that the device's other
// draws do not move): devices started together do not act in step.
[[nodiscard]] inline double first_phase(std::uint64_t device_seed, std::uint64_t stream) noexcept {
  rng r(mix_seed(device_seed, stream));
  return r.uniform01();
}

// Reconnect back-off: attempt n (0-based) waits min(max, initial × multiplier^n), spread by
// ±jitter (a fraction) around it.
struct backoff {
  duration initial = std::chrono::seconds(1);
  duration max = std::chrono::seconds(60);
  double multiplier = 2.0;
  double jitter = 0.2;

  [[nodiscard]] duration delay(unsigned attempt, rng& r) const noexcept;
  friend bool operator==(const backoff&, const backoff&) = default;
};

}  // namespace twinfleet::device
