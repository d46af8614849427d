#include <twinfleet/scenario/plan.hpp>

#include <twinfleet/device/random.hpp>

#include <algorithm>
#include <cmath>

namespace twinfleet::scenario {

void scale_fleet(scenario& s, std::uint64_t devices) {
  const auto total = s.device_count();
  if (total == 0 || s.fleet.empty()) return;
  std::vector<std::pair<double, std::size_t>> remainders;
  std::uint64_t given = 0;
  for (std::size_t e = 0; e < s.fleet.size(); ++e) {
    const double share = static_cast<double>(s.fleet[e].count) * static_cast<double>(devices) / static_cast<double>(total);
    s.fleet[e].count = static_cast<std::uint64_t>(share);
    given += s.fleet[e].count;
    remainders.emplace_back(share - static_cast<double>(s.fleet[e].count), e);
  }
  // Ties go to the earlier entry, so the result does not depend on the sort's whims.
  std::stable_sort(remainders.begin(), remainders.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  for (std::size_t k = 0; given < devices; ++k, ++given) ++s.fleet[remainders[k % remainders.size()].second].count;
}

std::vector<device_spec> expand_fleet(const scenario& s) {
  std::vector<device_spec> out;
  out.reserve(s.device_count());
  std::uint64_t index = 0;
  for (std::size_t e = 0; e < s.fleet.size(); ++e) {
    const auto& entry = s.fleet[e];
    device::template_context ctx;
    ctx.profile = entry.profile ? std::string_view(entry.profile->name) : std::string_view{};
    for (std::uint64_t k = 0; k < entry.count; ++k, ++index) {
      device_spec d;
      d.index = index;
      d.entry = e;
      d.entry_index = entry.first_index + k;
      ctx.index = d.entry_index;
      d.id = entry.id.expand(ctx);
      d.profile = entry.profile;
      d.via = entry.via;
      if (entry.via == dialect::aws) d.shadows = entry.shadows;
      d.seed = device::mix_seed(s.seed, index);
      out.push_back(std::move(d));
    }
  }
  return out;
}

double ramp_rate(const ramp_spec& ramp, std::uint64_t devices) noexcept {
  if (ramp.over) {
    const double seconds = std::chrono::duration<double>(*ramp.over).count();
    return seconds > 0 ? static_cast<double>(devices) / seconds : 0.0;  // 0: all at once
  }
  return ramp.rate;
}

std::vector<duration> ramp_schedule(const ramp_spec& ramp, std::uint64_t devices, std::uint64_t seed) {
  std::vector<duration> out(devices);
  const double rate = ramp_rate(ramp, devices);
  if (rate <= 0) return out;  // a zero-length ramp: everyone at once
  const double gap_ns = 1e9 / rate;
  device::rng r(device::mix_seed(seed, device::hash_name("ramp")));
  for (std::uint64_t i = 0; i < devices; ++i) {
    double t = static_cast<double>(i) * gap_ns;
    if (ramp.jitter > 0) t += r.uniform(-ramp.jitter, ramp.jitter) * gap_ns;
    out[i] = duration(static_cast<duration::rep>(std::llround(std::max(0.0, t))));
  }
  return out;
}

std::vector<phase_window> phase_timeline(const scenario& s) {
  std::vector<phase_window> out;
  duration t{0};
  for (std::size_t i = 0; i < s.phases.size(); ++i) {
    out.push_back(phase_window{i, t, t + s.phases[i].length});
    t += s.phases[i].length;
  }
  return out;
}

const phase* phase_at(const scenario& s, duration t) noexcept {
  if (t < duration::zero()) return nullptr;
  duration start{0};
  for (const auto& p : s.phases) {
    if (t < start + p.length) return &p;
    start += p.length;
  }
  return nullptr;
}

namespace {
template <class Items>
bool has_any(const Items& items, const std::vector<std::string>& names) {
  if (names.empty()) return !items.empty();
  return std::any_of(items.begin(), items.end(), [&](const auto& i) {
    return std::find(names.begin(), names.end(), i.name) != names.end();
  });
}
}  // namespace

std::uint64_t eligible_for_writes(const scenario& s, const load_rate& l) noexcept {
  std::uint64_t n = 0;
  for (const auto& e : s.fleet) {
    if (e.profile && has_any(e.profile->desired, l.names)) n += e.count;
  }
  return n;
}

namespace {
// The operations a second of load `l` that go to AWS things: its rate over the devices whose
// profile has what it names (`items` of the profile: desired properties or commands), times
// the things' share of those devices, as the back end picks among them evenly.
template <class Items>
double aws_share_per_second(const scenario& s, const load_rate& l, Items device::profile::*items) {
  std::uint64_t eligible = 0;
  std::uint64_t aws = 0;
  for (const auto& e : s.fleet) {
    if (!e.profile || !has_any((*e.profile).*items, l.names)) continue;
    eligible += e.count;
    if (e.via == dialect::aws) aws += e.count;
  }
  if (!l.any() || eligible == 0) return 0;
  return l.per_second(eligible) * static_cast<double>(aws) / static_cast<double>(eligible);
}
}  // namespace

double aws_write_documents_per_shadow(const scenario& s) noexcept {
  std::uint64_t shadows = 0;
  for (const auto& e : s.fleet) {
    if (e.via == dialect::aws) shadows += e.count * e.shadows.size();
  }
  if (shadows == 0) return 0;
  double busiest = 0;  // documents a second: one for each write, one for its acknowledgement
  for (const auto& ph : s.phases) {
    busiest = std::max(busiest, 2 * aws_share_per_second(s, ph.backend.desired_writes, &device::profile::desired));
  }
  return busiest / static_cast<double>(shadows);
}

double aws_command_calls_per_second(const scenario& s) noexcept {
  double busiest = 0;
  for (const auto& ph : s.phases) {
    busiest = std::max(busiest, aws_share_per_second(s, ph.backend.method_calls, &device::profile::commands));
  }
  return busiest;
}

std::uint64_t eligible_for_methods(const scenario& s, const load_rate& l) noexcept {
  std::uint64_t n = 0;
  for (const auto& e : s.fleet) {
    if (e.profile && has_any(e.profile->commands, l.names)) n += e.count;
  }
  return n;
}

}  // namespace twinfleet::scenario
