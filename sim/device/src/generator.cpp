#include <twinfleet/device/generator.hpp>

#include <algorithm>
#include <cmath>
#include <numbers>

namespace twinfleet::device {

namespace {

template <class... F>
struct overloaded : F... {
  using F::operator()...;
};
template <class... F>
overloaded(F...) -> overloaded<F...>;

boost::json::value rounded(double v, const std::optional<int>& decimals) {
  if (!decimals) return v;
  if (*decimals == 0) return static_cast<std::int64_t>(std::llround(v));
  const double scale = std::pow(10.0, *decimals);
  return std::round(v * scale) / scale;
}

std::optional<double> number_of(const boost::json::value* v) {
  if (!v) return std::nullopt;
  if (v->is_double()) return v->as_double();
  if (v->is_int64()) return static_cast<double>(v->as_int64());
  if (v->is_uint64()) return static_cast<double>(v->as_uint64());
  return std::nullopt;
}

}  // namespace

const char* generator_name(const generator_spec& spec) noexcept {
  static constexpr const char* names[] = {"constant", "walk", "sine", "uniform", "cycle", "counter", "mirror"};
  return names[spec.index()];
}

const std::string* desired_dependency(const generator_spec& spec) noexcept {
  if (const auto* w = std::get_if<walk_generator>(&spec); w && w->toward) return &*w->toward;
  if (const auto* m = std::get_if<mirror_generator>(&spec)) return &m->desired;
  return nullptr;
}

value_generator::value_generator(const generator_spec& spec, std::uint64_t seed) noexcept : spec_(&spec), rng_(seed) {
  if (const auto* w = std::get_if<walk_generator>(&spec)) walk_ = w->start;
  if (const auto* s = std::get_if<sine_generator>(&spec); s && s->random_phase) phase_ = rng_.uniform(0, 2 * std::numbers::pi);
}

boost::json::value value_generator::next(duration elapsed, const boost::json::object* desired) {
  const std::uint64_t n = count_++;
  return std::visit(
      overloaded{
          [&](const constant_generator& g) -> boost::json::value { return g.value; },
          [&](const walk_generator& g) -> boost::json::value {
            if (n == 0) return rounded(std::clamp(walk_, g.min, g.max), g.decimals);
            const boost::json::value* target_value = (desired && g.toward) ? desired->if_contains(*g.toward) : nullptr;
            if (const auto target = number_of(target_value)) {
              walk_ += std::clamp(*target - walk_, -g.step, g.step) + rng_.uniform(-g.step / 4, g.step / 4);
            } else {
              walk_ += rng_.uniform(-g.step, g.step);
            }
            walk_ = std::clamp(walk_, g.min, g.max);
            return rounded(walk_, g.decimals);
          },
          [&](const sine_generator& g) -> boost::json::value {
            const double t = static_cast<double>(elapsed.count()) / static_cast<double>(std::max<duration::rep>(1, g.period.count()));
            double v = g.mean + g.amplitude * std::sin(2 * std::numbers::pi * t + phase_);
            if (g.noise > 0) v += rng_.normal(0, g.noise);
            return rounded(v, g.decimals);
          },
          [&](const uniform_generator& g) -> boost::json::value { return rounded(rng_.uniform(g.min, g.max), g.decimals); },
          [&](const cycle_generator& g) -> boost::json::value {
            if (g.values.empty()) return nullptr;
            return g.values[g.random ? rng_.below(g.values.size()) : n % g.values.size()];
          },
          [&](const counter_generator& g) -> boost::json::value {
            if (g.wrap && g.step != 0) {
              // Values run start, start+step, … up to and including wrap, then start again.
              const auto span = (*g.wrap - g.start) / g.step + 1;
              if (span > 0) return g.start + g.step * static_cast<std::int64_t>(n % static_cast<std::uint64_t>(span));
            }
            return g.start + g.step * static_cast<std::int64_t>(n);
          },
          [&](const mirror_generator& g) -> boost::json::value {
            if (desired) {
              if (const auto* v = desired->if_contains(g.desired)) return *v;
            }
            return g.fallback;
          },
      },
      *spec_);
}

}  // namespace twinfleet::device
