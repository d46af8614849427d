// hub.yaml → hub_file_config, every error at once (sim/config).
#include <twinfleet/hub/hub_config.hpp>

#include <chrono>

namespace twinfleet::hub {

namespace {

using std::chrono::duration_cast;
using std::chrono::microseconds;
using std::chrono::milliseconds;

constexpr std::chrono::hours max_delay{24};

void read_rate(const config::node& n, rate_limit& out) {
  auto m = n.map();
  if (auto r = m.get("rate").as_rate(); r) out.per_second = *r;
  if (auto b = m.get("burst").as_double(0, 1e9); b) out.burst = *b;
  if (auto q = m.get("queue").as_int(0, 100'000'000); q) out.queue = static_cast<std::size_t>(*q);
}

fault_settings read_faults(const config::node& n) {
  fault_settings f;
  auto m = n.map();
  if (auto seed = m.get("seed").as_uint64()) f.seed = *seed;
  for (const auto& item : m.get("delivery").items()) {
    auto r = item.map();
    delivery_fault d;
    const auto kinds = r.get("kinds");
    for (const auto& k : kinds.items()) {
      auto name = k.as_string();
      if (!name) continue;
      if (auto kind = outbound_kind_from_string(*name)) {
        d.kinds.push_back(*kind);
      } else {
        std::string names;
        for (std::size_t i = 0; i < outbound_kind_count; ++i) {
          names += (i ? ", " : "") + std::string(to_string(static_cast<outbound_kind>(i)));
        }
        k.error("unknown message kind '" + *name + "'; one of " + names);
      }
    }
    if (auto v = r.get("delay").as_duration(config::duration::zero(), max_delay)) d.delay = duration_cast<microseconds>(*v);
    if (auto v = r.get("jitter").as_duration(config::duration::zero(), max_delay)) d.jitter = duration_cast<microseconds>(*v);
    if (auto v = r.get("drop").as_fraction()) d.drop = *v;
    if (auto v = r.get("duplicate").as_fraction()) d.duplicate = *v;
    if (auto v = r.get("reorder").as_fraction()) d.reorder = *v;
    if (auto v = r.get("reorder_hold").as_duration(config::duration::zero(), max_delay)) {
      d.reorder_hold = duration_cast<microseconds>(*v);
    }
    f.delivery.push_back(std::move(d));
  }
  if (auto v = m.get("aws_swap_accepted_delta").as_fraction()) f.aws_swap_accepted_delta = *v;
  if (auto v = m.get("azure_skip_desired_versions").as_fraction()) f.azure_skip_desired_versions = *v;
  if (auto v = m.get("azure_skip_max").as_int(1, 1000)) f.azure_skip_max = *v;
  if (auto v = m.get("subscription_activation_delay").as_duration(config::duration::zero(), max_delay)) {
    f.subscription_activation_delay = duration_cast<milliseconds>(*v);
  }
  if (auto v = m.get("reported_reorder").as_fraction()) f.reported_reorder = *v;
  if (auto v = m.get("reported_reorder_hold").as_duration(config::duration::zero(), max_delay)) {
    f.reported_reorder_hold = duration_cast<milliseconds>(*v);
  }
  if (auto v = m.get("takeover_grace").as_duration(config::duration::zero(), max_delay)) {
    f.takeover_grace = duration_cast<milliseconds>(*v);
  }
  if (auto v = m.get("disconnects").as_rate(0, 1e6)) f.disconnects_per_second = *v;
  for (const auto& item : m.get("disconnect_schedule").items()) {
    auto r = item.map();
    disconnect_event e;
    if (auto at = r.require("at").as_duration(config::duration::zero(), max_delay)) e.at = duration_cast<milliseconds>(*at);
    if (auto fraction = r.require("fraction").as_fraction()) e.fraction = *fraction;
    if (auto backend = r.get("backend").as_enum({"azure", "aws"})) e.backend = *backend == 0 ? "azure" : "aws";
    f.disconnect_schedule.push_back(std::move(e));
  }
  std::stable_sort(f.disconnect_schedule.begin(), f.disconnect_schedule.end(),
                   [](const auto& a, const auto& b) { return a.at < b.at; });
  return f;
}

throttle_settings read_throttle(const config::node& n) {
  throttle_settings t;
  auto m = n.map();
  const auto tier = m.get("azure_tier");
  const auto units = m.get("azure_units").as_int(1, 200);
  if (auto name = tier.as_enum({"F1", "B1", "B2", "B3", "S1", "S2", "S3"})) {
    static constexpr const char* names[] = {"F1", "B1", "B2", "B3", "S1", "S2", "S3"};
    if (auto preset = azure_tier_preset(names[*name], static_cast<int>(units.value_or(1)))) t = *preset;
  }
  for (const auto& [name, member] : throttle_limits()) {
    const auto limit = m.get(name);
    if (limit.present()) read_rate(limit, t.*member);
  }
  if (auto aws = m.get("aws").as_bool()) t.aws_enabled = *aws;
  return t;
}

}  // namespace

hub_file_config read_hub_config(const config::node& root) {
  hub_file_config c;
  auto m = root.map();
  c.hub_name = m.get("hub_name").as_nonempty_string();
  if (auto auth = m.get("auth").as_enum({"open", "strict"})) c.auth = *auth == 0 ? "open" : "strict";
  c.certs = m.get("certs").as_nonempty_string();
  c.state_file = m.get("state_file").as_nonempty_string();
  auto listen = m.get("listen").map();
  for (const char* protocol : {"mqtts", "https", "mqtt", "http", "wss", "ws"}) {
    if (auto address = listen.get(protocol).as_nonempty_string()) c.listen[protocol] = *address;
  }
  if (const auto faults = m.get("faults"); faults.present()) c.faults = read_faults(faults);
  if (const auto throttle = m.get("throttle"); throttle.present()) c.throttle = read_throttle(throttle);
  return c;
}

std::optional<hub_file_config> load_hub_config(const std::filesystem::path& file, config::diagnostics& diags) {
  const auto before = diags.size();
  auto doc = config::document::load_file(file, diags);
  if (!doc) return std::nullopt;
  auto c = read_hub_config(doc->root());
  if (diags.size() != before) return std::nullopt;
  return c;
}

}  // namespace twinfleet::hub
