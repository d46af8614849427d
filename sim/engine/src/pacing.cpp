#include <twinfleet/engine/pacing.hpp>

#include <algorithm>
#include <cmath>

namespace twinfleet::engine {

namespace {

// splitmix64: a small, good enough generator for exponential gaps; no <random> state to carry.
std::uint64_t next_u64(std::uint64_t& state) {
  std::uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

clock::duration seconds(double s) {
  return std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(s));
}

}  // namespace

paced_stream::paced_stream(double per_second, clock::time_point start, bool poisson, std::uint64_t seed)
    : per_second_(std::max(0.0, per_second)), last_(start), poisson_(poisson), state_(seed) {}

std::optional<clock::time_point> paced_stream::next() {
  if (per_second_ <= 0) return std::nullopt;
  double gap = 1.0 / per_second_;
  if (poisson_) {
    // Uniform in (0, 1]: never log(0).
    const double u = (static_cast<double>(next_u64(state_) >> 11) + 1.0) * 0x1.0p-53;
    gap = -std::log(u) / per_second_;
  }
  if (first_ && !poisson_) {
    first_ = false;  // the first operation of an even stream starts at once
    return last_;
  }
  first_ = false;
  last_ += seconds(gap);
  return last_;
}

void paced_stream::set_rate(double per_second) { per_second_ = std::max(0.0, per_second); }

token_bucket::token_bucket(double per_second, double burst, clock::time_point now)
    : per_second_(std::max(0.0, per_second)), burst_(std::max(1.0, burst)), tokens_(burst_), updated_(now) {}

void token_bucket::refill(clock::time_point now) {
  if (now <= updated_) return;
  tokens_ = std::min(burst_, tokens_ + std::chrono::duration<double>(now - updated_).count() * per_second_);
  updated_ = now;
}

bool token_bucket::try_take(clock::time_point now, double n) {
  refill(now);
  if (tokens_ + 1e-9 < n) return false;
  tokens_ -= n;
  return true;
}

clock::time_point token_bucket::when_available(clock::time_point now, double n) {
  refill(now);
  if (tokens_ >= n) return now;
  if (per_second_ <= 0) return clock::time_point::max();
  return now + seconds((n - tokens_) / per_second_);
}

void token_bucket::set_rate(double per_second, double burst, clock::time_point now) {
  refill(now);
  per_second_ = std::max(0.0, per_second);
  burst_ = std::max(1.0, burst);
  tokens_ = std::min(tokens_, burst_);
}

double token_bucket::tokens(clock::time_point now) {
  refill(now);
  return tokens_;
}

}  // namespace twinfleet::engine
