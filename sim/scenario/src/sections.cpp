#include "sections.hpp"

#include <algorithm>
#include <cctype>

namespace twinfleet::scenario::detail {

using namespace std::chrono_literals;

std::optional<device::duration_distribution> read_distribution(const config::node& n) {
  if (!n.present()) return std::nullopt;
  if (n.is_scalar()) {
    const auto d = n.as_duration();
    if (!d) return std::nullopt;
    return device::duration_distribution::constant(*d);
  }
  if (!n.is_map()) {
    n.error("expected a duration (250ms) or a distribution ({uniform: [100ms, 2s]}, {normal: {mean: 1s, stddev: 200ms}}, "
            "{exponential: 30s}), got " + n.describe());
    return std::nullopt;
  }
  auto m = n.map();
  const auto count = m.at_most_one_of({"uniform", "normal", "exponential", "constant"});
  if (count == 0) {
    m.allow({"uniform", "normal", "exponential", "constant"});
    n.error("a distribution needs one of: uniform, normal, exponential, constant");
    return std::nullopt;
  }
  if (const auto c = m.get("constant"); c.present()) {
    const auto d = c.as_duration();
    return d ? std::optional(device::duration_distribution::constant(*d)) : std::nullopt;
  }
  if (const auto u = m.get("uniform"); u.present()) {
    const auto items = u.items();
    if (u.is_sequence() && items.size() != 2) {
      u.error("expected two durations [low, high], got " + std::to_string(items.size()) + " values");
      return std::nullopt;
    }
    if (items.size() != 2) return std::nullopt;
    const auto lo = items[0].as_duration();
    const auto hi = items[1].as_duration();
    if (!lo || !hi) return std::nullopt;
    if (*hi < *lo) {
      u.error("the high end is below the low end");
      return std::nullopt;
    }
    return device::duration_distribution::uniform(*lo, *hi);
  }
  if (const auto nn = m.get("normal"); nn.present()) {
    auto nm = nn.map();
    const auto mean = nm.require("mean").as_duration();
    const auto sd = nm.require("stddev").as_duration();
    if (!nn.is_map() || !mean || !sd) return std::nullopt;
    return device::duration_distribution::normal(*mean, *sd);
  }
  const auto e = m.get("exponential").as_duration(1ns);
  if (!e) return std::nullopt;
  return device::duration_distribution::exponential(*e);
}

device::quirk_set read_quirks(const config::node& n, device::quirk_set base) {
  auto m = n.map();
  auto flag = [&](const char* key, bool& out) {
    if (const auto v = m.get(key).as_bool()) out = *v;
  };
  flag("get_before_subscribe", base.get_before_subscribe);
  flag("no_reconcile_on_reconnect", base.no_reconcile_on_reconnect);
  flag("ignore_desired_version", base.ignore_desired_version);
  flag("shared_version_counter", base.shared_version_counter);
  flag("no_wait_between_reported", base.no_wait_between_reported);
  flag("duplicate_connection", base.duplicate_connection);
  flag("no_resync_on_gap", base.no_resync_on_gap);
  flag("no_get_retry", base.no_get_retry);
  return base;
}

device::lifecycle_spec read_lifecycle(const config::node& n, device::lifecycle_spec base) {
  auto m = n.map();
  if (const auto v = m.get("keep_alive").as_duration(1s, 65535s)) base.keep_alive = *v;
  if (const auto r = m.get("reconnect"); r.present()) {
    auto rm = r.map();
    if (const auto v = rm.get("initial").as_duration(1ms, 1h)) base.reconnect.initial = *v;
    if (const auto v = rm.get("max").as_duration(1ms, 24h)) base.reconnect.max = *v;
    if (const auto v = rm.get("multiplier").as_double(1, 10)) base.reconnect.multiplier = *v;
    if (const auto v = rm.get("jitter").as_fraction(0, 1)) base.reconnect.jitter = *v;
    if (r.is_map() && base.reconnect.max < base.reconnect.initial) {
      rm.get("max").error("must be at least 'initial'");
    }
  }
  if (const auto v = m.get("sas_token_lifetime").as_duration(1min, 24h * 365)) base.sas_token_lifetime = *v;
  if (const auto v = m.get("sas_renew_at").as_fraction(0.1, 1)) base.sas_renew_at = *v;
  if (const auto v = m.get("flaky_disconnects").as_rate(0, 1)) base.flaky_disconnects_per_second = *v;
  if (const auto v = m.get("connect_timeout").as_duration(100ms, 10min)) base.connect_timeout = *v;
  return base;
}

bool check_name(const config::node& at, const std::string& name, const char* what) {
  const bool ok = !name.empty() && name.size() <= 64 &&
                  (std::isalpha(static_cast<unsigned char>(name[0])) || name[0] == '_') &&
                  std::all_of(name.begin(), name.end(), [](char c) {
                    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
                  });
  if (!ok) {
    at.error(std::string("'") + name + "' is not a valid " + what +
             " name: use 1 to 64 ASCII letters, digits, '_' or '-', starting with a letter or '_'");
  }
  return ok;
}

}  // namespace twinfleet::scenario::detail
