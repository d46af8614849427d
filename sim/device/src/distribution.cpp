#include <twinfleet/device/distribution.hpp>

#include <algorithm>
#include <cmath>

namespace twinfleet::device {

namespace {
duration from_double(double ns) noexcept {
  if (!(ns > 0)) return duration{0};
  if (ns > 9.2e18) return duration::max();
  return duration(static_cast<duration::rep>(std::llround(ns)));
}
}  // namespace

duration duration_distribution::sample(rng& r) const noexcept {
  switch (type) {
    case kind::constant:
      return a;
    case kind::uniform:
      return from_double(r.uniform(static_cast<double>(a.count()), static_cast<double>(b.count())));
    case kind::normal:
      return from_double(r.normal(static_cast<double>(a.count()), static_cast<double>(b.count())));
    case kind::exponential:
      return from_double(r.exponential(static_cast<double>(a.count())));
  }
  return a;
}

duration duration_distribution::mean() const noexcept {
  if (type == kind::uniform) return (a + b) / 2;
  return a;
}

duration backoff::delay(unsigned attempt, rng& r) const noexcept {
  double base = static_cast<double>(initial.count()) * std::pow(multiplier, static_cast<double>(std::min(attempt, 64u)));
  base = std::min(base, static_cast<double>(max.count()));
  const double spread = base * jitter;
  return from_double(base + (jitter > 0 ? r.uniform(-spread, spread) : 0.0));
}

}  // namespace twinfleet::device
