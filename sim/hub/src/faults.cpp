// Fault and throttle settings: names, presets and the JSON forms the admin endpoint reads.
#include <twinfleet/hub/faults.hpp>

#include <boost/json/serialize.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <functional>
#include <map>
#include <sstream>

namespace twinfleet::hub {

namespace json = boost::json;

namespace {

constexpr std::array<std::string_view, outbound_kind_count> kind_names{
    "azure.twin_response", "azure.desired_patch", "azure.method_request", "aws.accepted",
    "aws.rejected",        "aws.delta",           "aws.documents",        "aws.message"};

// Errors name the key path; 400 is what the admin endpoint answers with.
twin::error bad(const std::string& path, std::string_view what) {
  return twin::error{400, path + ": " + std::string(what)};
}

// 1 → "1", 0.5 → "0.5" (Boost.JSON would write 1E0).
std::string number_text(double d) {
  if (std::floor(d) == d && std::abs(d) < 1e15) return std::to_string(static_cast<long long>(d));
  std::ostringstream out;
  out << d;
  return out.str();
}

// Reads an object's members by name, remembering which were read, so that whatever is left is
// an unknown key.
class object_reader {
 public:
  object_reader(const json::object& o, std::string path) : o_(o), path_(std::move(path)) {}

  const json::value* get(std::string_view key) {
    seen_.emplace_back(key);
    return o_.if_contains(key);
  }
  [[nodiscard]] std::string path(std::string_view key) const {
    return path_.empty() ? std::string(key) : path_ + "." + std::string(key);
  }
  twin::result<void> number(std::string_view key, double& out, double lo, double hi) {
    const auto* v = get(key);
    if (v == nullptr) return {};
    if (!v->is_number()) return bad(path(key), "must be a number");
    const double d = v->to_number<double>();
    if (!(d >= lo && d <= hi)) {
      return bad(path(key), "must lie in [" + number_text(lo) + ", " + number_text(hi) + "]");
    }
    out = d;
    return {};
  }
  template <class Duration>
  twin::result<void> millis(std::string_view key, Duration& out) {
    double ms = 0;
    const bool present = o_.contains(key);
    if (auto r = number(key, ms, 0, 86'400'000.0); !r) return r;
    if (present) out = std::chrono::duration_cast<Duration>(std::chrono::duration<double, std::milli>(ms));
    return {};
  }
  twin::result<void> finish() const {
    for (const auto& [key, value] : o_) {
      if (std::find(seen_.begin(), seen_.end(), std::string_view(key)) == seen_.end()) {
        return bad(path(key), "unknown key");
      }
    }
    return {};
  }

 private:
  const json::object& o_;
  std::string path_;
  std::vector<std::string_view> seen_;
};

double ms_of(auto d) { return std::chrono::duration<double, std::milli>(d).count(); }

json::object rate_json(const rate_limit& r) {
  return json::object{{"per_second", r.per_second}, {"burst", r.burst}, {"queue", r.queue}};
}

twin::result<void> read_rate(const json::value& v, const std::string& path, rate_limit& out) {
  if (!v.is_object()) return bad(path, "must be an object {per_second, burst, queue}");
  object_reader r(v.get_object(), path);
  double queue = static_cast<double>(out.queue);
  if (auto e = r.number("per_second", out.per_second, 0, 1e9); !e) return e;
  if (auto e = r.number("burst", out.burst, 0, 1e9); !e) return e;
  if (auto e = r.number("queue", queue, 0, 1e8); !e) return e;
  out.queue = static_cast<std::size_t>(queue);
  return r.finish();
}

}  // namespace

std::span<const named_limit> throttle_limits() noexcept {
  static constexpr named_limit limits[] = {{"azure_connects", &throttle_settings::azure_connects},
                                           {"azure_twin_reads", &throttle_settings::azure_twin_reads},
                                           {"azure_twin_updates", &throttle_settings::azure_twin_updates},
                                           {"azure_d2c", &throttle_settings::azure_d2c},
                                           {"azure_methods", &throttle_settings::azure_methods},
                                           {"azure_registry", &throttle_settings::azure_registry},
                                           {"aws_shadow_per_thing", &throttle_settings::aws_shadow_per_thing},
                                           {"aws_shadow_account", &throttle_settings::aws_shadow_account},
                                           {"aws_connects", &throttle_settings::aws_connects},
                                           {"aws_connection_deliveries", &throttle_settings::aws_connection_deliveries}};
  return limits;
}

std::string_view to_string(outbound_kind k) noexcept { return kind_names[static_cast<std::size_t>(k)]; }

std::optional<outbound_kind> outbound_kind_from_string(std::string_view name) noexcept {
  for (std::size_t i = 0; i < kind_names.size(); ++i) {
    if (kind_names[i] == name) return static_cast<outbound_kind>(i);
  }
  return std::nullopt;
}

outbound_kind classify_outbound(std::string_view topic) noexcept {
  if (topic.starts_with("$iothub/twin/res/")) return outbound_kind::azure_twin_response;
  if (topic.starts_with("$iothub/twin/PATCH/properties/desired")) return outbound_kind::azure_desired_patch;
  if (topic.starts_with("$iothub/methods/POST/")) return outbound_kind::azure_method_request;
  if (topic.starts_with("$aws/things/")) {
    if (topic.ends_with("/update/delta")) return outbound_kind::aws_delta;
    if (topic.ends_with("/update/documents")) return outbound_kind::aws_documents;
    if (topic.ends_with("/accepted")) return outbound_kind::aws_accepted;
    if (topic.ends_with("/rejected")) return outbound_kind::aws_rejected;
  }
  return outbound_kind::aws_message;
}

bool fault_settings::any() const noexcept {
  return !delivery.empty() || aws_swap_accepted_delta > 0 || azure_skip_desired_versions > 0 ||
         subscription_activation_delay.count() > 0 || disconnects_per_second > 0 || !disconnect_schedule.empty() ||
         reported_reorder > 0 || takeover_grace.count() > 0;
}

bool throttle_settings::any() const noexcept {
  for (const auto& [name, member] : throttle_limits()) {
    const bool aws_default = member == &throttle_settings::aws_shadow_per_thing ||
                             member == &throttle_settings::aws_connection_deliveries;
    if (aws_default && !aws_enabled) continue;
    if ((this->*member).limited()) return true;
  }
  return false;
}

twin::result<throttle_settings> azure_tier_preset(std::string_view tier, int units) {
  if (units < 1 || units > 200) return bad("azure_units", "must lie in [1, 200]");
  const double u = units;
  // A14: a limit and a queue of ten seconds of it; a one-second burst.
  auto limit = [](double per_second) { return rate_limit{per_second, per_second, static_cast<std::size_t>(per_second * 10)}; };
  throttle_settings t;
  if (tier == "F1" || tier == "B1" || tier == "S1") {
    t.azure_connects = limit(std::max(100.0, 12 * u));
    t.azure_d2c = limit(std::max(100.0, 12 * u));
    t.azure_twin_reads = limit(100);
    t.azure_twin_updates = limit(50);
    t.azure_methods = limit(40 * u);  // 160 KB/s/unit in 4 KB units
    t.azure_registry = limit(1.67 * u);
  } else if (tier == "B2" || tier == "S2") {
    t.azure_connects = limit(120 * u);
    t.azure_d2c = limit(120 * u);
    t.azure_twin_reads = limit(std::max(100.0, 10 * u));
    t.azure_twin_updates = limit(std::max(50.0, 5 * u));
    t.azure_methods = limit(120 * u);  // 480 KB/s/unit
    t.azure_registry = limit(1.67 * u);
  } else if (tier == "B3" || tier == "S3") {
    t.azure_connects = limit(6000 * u);
    t.azure_d2c = limit(6000 * u);
    t.azure_twin_reads = limit(500 * u);
    t.azure_twin_updates = limit(250 * u);
    t.azure_methods = limit(6000 * u);  // 24 MB/s/unit
    t.azure_registry = limit(83.33 * u);
  } else {
    return bad("azure_tier", "must be one of F1, B1, B2, B3, S1, S2, S3");
  }
  // Registry queues stay short: at 1.67/s ten seconds is 16 requests.
  t.azure_registry.burst = std::max(t.azure_registry.burst, 1.0);
  return t;
}

json::object to_json(const fault_settings& f) {
  json::object out;
  out["seed"] = f.seed;
  json::array rules;
  for (const auto& d : f.delivery) {
    json::array kinds;
    for (auto k : d.kinds) kinds.emplace_back(to_string(k));
    rules.emplace_back(json::object{{"kinds", std::move(kinds)},
                                    {"delay_ms", ms_of(d.delay)},
                                    {"jitter_ms", ms_of(d.jitter)},
                                    {"drop", d.drop},
                                    {"duplicate", d.duplicate},
                                    {"reorder", d.reorder},
                                    {"reorder_hold_ms", ms_of(d.reorder_hold)}});
  }
  out["delivery"] = std::move(rules);
  out["aws_swap_accepted_delta"] = f.aws_swap_accepted_delta;
  out["azure_skip_desired_versions"] = f.azure_skip_desired_versions;
  out["azure_skip_max"] = f.azure_skip_max;
  out["subscription_activation_delay_ms"] = ms_of(f.subscription_activation_delay);
  out["reported_reorder"] = f.reported_reorder;
  out["reported_reorder_hold_ms"] = ms_of(f.reported_reorder_hold);
  out["takeover_grace_ms"] = ms_of(f.takeover_grace);
  out["disconnects_per_second"] = f.disconnects_per_second;
  json::array schedule;
  for (const auto& e : f.disconnect_schedule) {
    json::object o{{"at_ms", e.at.count()}, {"fraction", e.fraction}};
    if (e.backend) o["backend"] = *e.backend;
    schedule.emplace_back(std::move(o));
  }
  out["disconnect_schedule"] = std::move(schedule);
  return out;
}

twin::result<fault_settings> fault_settings_from_json(const json::value& v) {
  if (!v.is_object()) return bad("faults", "must be a JSON object");
  fault_settings f;
  object_reader r(v.get_object(), "");
  if (const auto* seed = r.get("seed")) {
    if (!seed->is_int64() && !seed->is_uint64()) return bad("seed", "must be a non-negative integer");
    if (seed->is_int64() && seed->get_int64() < 0) return bad("seed", "must be a non-negative integer");
    f.seed = seed->to_number<std::uint64_t>();
  }
  if (const auto* rules = r.get("delivery")) {
    if (!rules->is_array()) return bad("delivery", "must be an array of rules");
    std::size_t i = 0;
    for (const auto& rule : rules->get_array()) {
      const std::string path = "delivery[" + std::to_string(i++) + "]";
      if (!rule.is_object()) return bad(path, "must be an object");
      object_reader rr(rule.get_object(), path);
      delivery_fault d;
      if (const auto* kinds = rr.get("kinds")) {
        if (!kinds->is_array()) return bad(rr.path("kinds"), "must be an array of message kinds");
        for (const auto& k : kinds->get_array()) {
          auto kind = k.is_string() ? outbound_kind_from_string(k.get_string()) : std::nullopt;
          if (!kind) {
            std::string names;
            for (auto n : kind_names) names += (names.empty() ? "" : ", ") + std::string(n);
            return bad(rr.path("kinds"), "unknown message kind " + json::serialize(k) + "; one of " + names);
          }
          d.kinds.push_back(*kind);
        }
      }
      if (auto e = rr.millis("delay_ms", d.delay); !e) return e.error();
      if (auto e = rr.millis("jitter_ms", d.jitter); !e) return e.error();
      if (auto e = rr.number("drop", d.drop, 0, 1); !e) return e.error();
      if (auto e = rr.number("duplicate", d.duplicate, 0, 1); !e) return e.error();
      if (auto e = rr.number("reorder", d.reorder, 0, 1); !e) return e.error();
      if (auto e = rr.millis("reorder_hold_ms", d.reorder_hold); !e) return e.error();
      if (auto e = rr.finish(); !e) return e.error();
      f.delivery.push_back(std::move(d));
    }
  }
  if (auto e = r.number("aws_swap_accepted_delta", f.aws_swap_accepted_delta, 0, 1); !e) return e.error();
  if (auto e = r.number("azure_skip_desired_versions", f.azure_skip_desired_versions, 0, 1); !e) return e.error();
  double skip_max = static_cast<double>(f.azure_skip_max);
  if (auto e = r.number("azure_skip_max", skip_max, 1, 1000); !e) return e.error();
  f.azure_skip_max = static_cast<std::int64_t>(skip_max);
  if (auto e = r.millis("subscription_activation_delay_ms", f.subscription_activation_delay); !e) return e.error();
  if (auto e = r.number("reported_reorder", f.reported_reorder, 0, 1); !e) return e.error();
  if (auto e = r.millis("reported_reorder_hold_ms", f.reported_reorder_hold); !e) return e.error();
  if (auto e = r.millis("takeover_grace_ms", f.takeover_grace); !e) return e.error();
  if (auto e = r.number("disconnects_per_second", f.disconnects_per_second, 0, 1e6); !e) return e.error();
  if (const auto* schedule = r.get("disconnect_schedule")) {
    if (!schedule->is_array()) return bad("disconnect_schedule", "must be an array of {at_ms, fraction, backend}");
    std::size_t i = 0;
    for (const auto& item : schedule->get_array()) {
      const std::string path = "disconnect_schedule[" + std::to_string(i++) + "]";
      if (!item.is_object()) return bad(path, "must be an object");
      object_reader er(item.get_object(), path);
      disconnect_event e;
      if (!item.get_object().contains("at_ms")) return bad(er.path("at_ms"), "is required");
      if (auto x = er.millis("at_ms", e.at); !x) return x.error();
      if (!item.get_object().contains("fraction")) return bad(er.path("fraction"), "is required");
      if (auto x = er.number("fraction", e.fraction, 0, 1); !x) return x.error();
      if (const auto* b = er.get("backend")) {
        if (!b->is_string() || (b->get_string() != "azure" && b->get_string() != "aws")) {
          return bad(er.path("backend"), "must be \"azure\" or \"aws\"");
        }
        e.backend = std::string(b->get_string());
      }
      if (auto x = er.finish(); !x) return x.error();
      f.disconnect_schedule.push_back(std::move(e));
    }
    std::stable_sort(f.disconnect_schedule.begin(), f.disconnect_schedule.end(),
                     [](const auto& a, const auto& b) { return a.at < b.at; });
  }
  if (auto e = r.finish(); !e) return e.error();
  return f;
}

json::object to_json(const throttle_settings& t) {
  json::object out;
  for (const auto& [name, member] : throttle_limits()) out[name] = rate_json(t.*member);
  out["aws_enabled"] = t.aws_enabled;
  return out;
}

twin::result<throttle_settings> throttle_settings_from_json(const json::value& v) {
  if (!v.is_object()) return bad("throttle", "must be a JSON object");
  const auto& o = v.get_object();
  object_reader r(o, "");
  throttle_settings t;
  const auto* tier = r.get("azure_tier");
  const auto* units = r.get("azure_units");
  if (tier != nullptr) {
    if (!tier->is_string()) return bad("azure_tier", "must be a string such as \"S1\"");
    int n = 1;
    if (units != nullptr) {
      if (!units->is_int64()) return bad("azure_units", "must be an integer");
      n = static_cast<int>(std::clamp<std::int64_t>(units->get_int64(), -1, 1000));
    }
    auto preset = azure_tier_preset(tier->get_string(), n);
    if (!preset) return preset.error();
    t = *preset;
  } else if (units != nullptr) {
    return bad("azure_units", "needs azure_tier");
  }
  for (const auto& [name, member] : throttle_limits()) {
    if (const auto* limit = r.get(name)) {
      if (auto e = read_rate(*limit, std::string(name), t.*member); !e) return e.error();
    }
  }
  if (const auto* aws = r.get("aws_enabled")) {
    if (!aws->is_bool()) return bad("aws_enabled", "must be true or false");
    t.aws_enabled = aws->get_bool();
  }
  if (auto e = r.finish(); !e) return e.error();
  return t;
}

}  // namespace twinfleet::hub
