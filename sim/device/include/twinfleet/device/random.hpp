// Deterministic randomness: every random choice of a run derives from the scenario's seed.
//
// The standard distributions (std::normal_distribution, …) are implementation-defined, so the
// same seed would give other values on another standard library; these are written out here,
// so a seed means the same run everywhere. Not cryptographic.
#pragma once

#include <cstdint>
#include <limits>
#include <string_view>

namespace twinfleet::device {

// xoshiro256** seeded through splitmix64. 32 bytes; copyable (a copy repeats the sequence).
// Satisfies UniformRandomBitGenerator. Not thread-safe: one per device (or per purpose).
class rng {
 public:
  using result_type = std::uint64_t;
  explicit rng(std::uint64_t seed = 1) noexcept;

  static constexpr result_type min() noexcept { return 0; }
  static constexpr result_type max() noexcept { return std::numeric_limits<result_type>::max(); }
  result_type operator()() noexcept { return next(); }

  std::uint64_t next() noexcept;
  // Uniform in [0, 1).
  double uniform01() noexcept;
  // Uniform in [a, b) (a when a == b).
  double uniform(double a, double b) noexcept;
  // Uniform integer in [0, n); 0 when n == 0.
  std::uint64_t below(std::uint64_t n) noexcept;
  // Normal (Box–Muller, no cached second value, so each call consumes exactly two draws).
  double normal(double mean, double stddev) noexcept;
  // Exponential with the given mean (inter-arrival times of a Poisson process).
  double exponential(double mean) noexcept;
  // True with probability p.
  bool chance(double p) noexcept;

 private:
  std::uint64_t s_[4];
};

// A seed for one stream of a run: mix_seed(scenario_seed, device_index), then
// mix_seed(device_seed, hash_name("temperature")) for one property's generator. Streams with
// different inputs are independent for every practical purpose.
[[nodiscard]] std::uint64_t mix_seed(std::uint64_t seed, std::uint64_t stream) noexcept;
// FNV-1a of `name`, to name a stream.
[[nodiscard]] std::uint64_t hash_name(std::string_view name) noexcept;

}  // namespace twinfleet::device
