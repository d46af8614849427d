// Open-model pacing: when each operation is *meant* to start, whatever happened to the ones
// before it. A load generator that waits for an answer before sending the next request
// (closed model) slows down exactly when the system under test does, and hides the latency a
// real fleet would see ("coordinated omission"). The engine therefore plans intended start
// times from the rate alone, starts each operation as close to its time as it can, and
// measures every latency from the intended start; how late it actually started is the
// engine's own lag.
//
// Pure and deterministic (virtual time in, times out); one instance per coroutine or thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>

namespace twinfleet::engine {

using clock = std::chrono::steady_clock;
using duration = std::chrono::nanoseconds;

// Intended start times of a stream of operations at `per_second`, from `start`: evenly spaced
// (the default), or with exponential gaps (a Poisson process, `poisson = true`) drawn from
// `seed`. A rate of 0 never fires.
class paced_stream {
 public:
  paced_stream(double per_second, clock::time_point start, bool poisson = false, std::uint64_t seed = 1);

  // The next intended start time; nullopt when the rate is 0.
  [[nodiscard]] std::optional<clock::time_point> next();
  // Changes the rate from the next operation on (phases change rates); the plan continues
  // from the last intended time, so a rate change never bunches or skips operations.
  void set_rate(double per_second);
  [[nodiscard]] double rate() const noexcept { return per_second_; }

 private:
  double per_second_;
  clock::time_point last_;
  bool poisson_;
  std::uint64_t state_;
  bool first_ = true;
};

// A token bucket: `per_second` tokens a second, at most `burst` saved. try_take() answers at
// once; when_available() tells when `n` tokens will be there (for a waiting caller).
class token_bucket {
 public:
  token_bucket(double per_second, double burst, clock::time_point now);

  [[nodiscard]] bool try_take(clock::time_point now, double n = 1);
  [[nodiscard]] clock::time_point when_available(clock::time_point now, double n = 1);
  void set_rate(double per_second, double burst, clock::time_point now);
  [[nodiscard]] double tokens(clock::time_point now);

 private:
  void refill(clock::time_point now);
  double per_second_;
  double burst_;
  double tokens_;
  clock::time_point updated_;
};

}  // namespace twinfleet::engine
