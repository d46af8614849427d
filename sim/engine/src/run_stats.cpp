#include "run_stats.hpp"

#include <algorithm>

namespace twinfleet::engine::detail {

namespace {

constexpr std::array<std::string_view, op_count> names = {
    "connect",     "subscribe",  "twin_get",           "reported_patch", "telemetry",   "desired_write", "shadow_update",
    "desired_propagation", "convergence", "method", "twin_read", "shadow_read", "delta_delivery"};

}  // namespace

std::string_view op_name(op o) noexcept { return names[static_cast<std::size_t>(o)]; }

run_stats::run_stats(metrics::registry& registry, const std::vector<scenario::device_spec>& fleet) : registry_(registry) {
  device_group_.reserve(fleet.size());
  for (const auto& d : fleet) {
    const std::string backend = scenario::to_string(d.via);
    const std::string profile = d.profile ? d.profile->name : std::string("unknown");
    auto it = std::find_if(groups_.begin(), groups_.end(),
                           [&](const device_group& g) { return g.backend == backend && g.profile == profile; });
    if (it == groups_.end()) {
      groups_.push_back({backend, profile, 0});
      it = std::prev(groups_.end());
    }
    ++it->planned;
    device_group_.push_back(static_cast<std::uint32_t>(it - groups_.begin()));
  }
  handles_.resize(groups_.size());
  for (std::size_t g = 0; g < groups_.size(); ++g) {
    const auto& group = groups_[g];
    auto& h = handles_[g];
    const metrics::label_set base{{"backend", group.backend}, {"profile", group.profile}};
    auto with = [&](std::initializer_list<metrics::label> more) {
      auto labels = base;
      labels.insert(labels.end(), more);
      return labels;
    };
    for (std::size_t o = 0; o < op_count; ++o) {
      const std::string operation(names[o]);
      h.latency[o] = registry_.histogram("twinfleet_operation_duration_seconds", with({{"operation", operation}}),
                                         "Latency of each operation from its intended start");
      h.ok[o] = registry_.counter("twinfleet_operations_total", with({{"operation", operation}, {"outcome", "ok"}}),
                                  "Operations finished, by outcome");
      h.errors[o] = registry_.counter("twinfleet_operations_total", with({{"operation", operation}, {"outcome", "error"}}),
                                      "Operations finished, by outcome");
    }
    registry_.gauge("twinfleet_devices_planned", base, "Devices of the fleet").set(static_cast<double>(group.planned));
    h.connected = registry_.gauge("twinfleet_devices_connected", base, "Devices connected now");
    h.connects_ok = registry_.counter("twinfleet_connects_total", with({{"outcome", "ok"}}), "Connection attempts, by outcome");
    h.connects_failed = registry_.counter("twinfleet_connects_total", with({{"outcome", "error"}}), "Connection attempts, by outcome");
    h.writes = registry_.counter("twinfleet_desired_writes_total", base, "Desired writes accepted by the service");
    h.converged = registry_.counter("twinfleet_desired_converged_total", base,
                                    "Desired writes whose version the device applied and acknowledged");
    // Present from the start (at 0), so dashboards and alerts see the family before any anomaly.
    (void)registry_.counter("twinfleet_sync_anomalies_total", with({{"outcome", "lost_update"}}),
                            "Sync anomalies found by the checker, by kind (outcome)");
  }
  lag_ = registry_.histogram("twinfleet_engine_lag_seconds", {}, "How late the engine's probe timers fired");
  elapsed_ = registry_.gauge("twinfleet_run_elapsed_seconds", {}, "Seconds since the run started");
}

void run_stats::record(std::size_t device, op o, std::chrono::nanoseconds latency, bool ok) {
  auto& h = handles_[device_group_[device]];
  const auto i = static_cast<std::size_t>(o);
  if (ok) {
    h.ok[i].add();
    h.latency[i].record(latency);
  } else {
    h.errors[i].add();
  }
}

void run_stats::connection(std::size_t device, bool up) {
  auto& h = handles_[device_group_[device]];
  h.connected.add(up ? 1.0 : -1.0);
  if (up) h.connects_ok.add();
}
void run_stats::connect_failed(std::size_t device) { handles_[device_group_[device]].connects_failed.add(); }
void run_stats::desired_written(std::size_t device) { handles_[device_group_[device]].writes.add(); }
void run_stats::desired_converged(std::size_t device) { handles_[device_group_[device]].converged.add(); }
void run_stats::lag(std::chrono::nanoseconds late) { lag_.record(late); }
void run_stats::elapsed(double seconds) { elapsed_.set(seconds); }

void run_stats::anomaly(std::size_t device, std::string_view kind) {
  const auto g = device_group_[device];
  metrics::counter_handle h;
  {
    std::lock_guard lock(anomalies_m_);
    auto key = std::make_pair(static_cast<std::size_t>(g), std::string(kind));
    auto it = anomalies_.find(key);
    if (it == anomalies_.end()) {
      const auto& group = groups_[g];
      it = anomalies_
               .emplace(key, registry_.counter("twinfleet_sync_anomalies_total",
                                               {{"backend", group.backend}, {"profile", group.profile}, {"outcome", std::string(kind)}},
                                               "Sync anomalies found by the checker, by kind (outcome)"))
               .first;
    }
    h = it->second;
  }
  h.add();
}

std::map<std::string, op_totals> totals_by_operation(const metrics::registry_snapshot& snap, std::string_view backend) {
  std::map<std::string, op_totals> out;
  auto label_of = [](const metrics::series_snapshot& s, std::string_view name) -> std::string_view {
    for (const auto& l : s.labels) {
      if (l.name == name) return l.value;
    }
    return {};
  };
  const auto wanted = [&](const metrics::series_snapshot& s) { return backend.empty() || label_of(s, "backend") == backend; };
  if (const auto* f = snap.find("twinfleet_operation_duration_seconds")) {
    for (const auto& s : f->series) {
      if (wanted(s)) out[std::string(label_of(s, "operation"))].latency.add(s.hist);
    }
  }
  if (const auto* f = snap.find("twinfleet_operations_total")) {
    for (const auto& s : f->series) {
      if (!wanted(s)) continue;
      auto& t = out[std::string(label_of(s, "operation"))];
      (label_of(s, "outcome") == "ok" ? t.ok : t.errors) += s.total;
    }
  }
  return out;
}

double family_total(const metrics::registry_snapshot& snap, std::string_view name) {
  double sum = 0;
  if (const auto* f = snap.find(name)) {
    for (const auto& s : f->series) sum += f->kind == metrics::metric_kind::gauge ? s.value : static_cast<double>(s.total);
  }
  return sum;
}

engine::timeline_point timeline_sampler::take(const metrics::registry_snapshot& snap, double t_s) {
  engine::timeline_point p;
  p.t_s = t_s;
  p.connected = static_cast<std::uint64_t>(std::max(0.0, family_total(snap, "twinfleet_devices_connected")));
  auto now = totals_by_operation(snap);
  for (auto& [name, t] : now) {
    auto interval = t;
    if (auto it = previous_.find(name); it != previous_.end()) {
      if (!interval.latency.subtract(it->second.latency)) interval.latency = t.latency;  // cannot happen: counts only grow
      interval.ok -= std::min(interval.ok, it->second.ok);
      interval.errors -= std::min(interval.errors, it->second.errors);
    }
    if (interval.ok + interval.errors == 0) continue;
    engine::timeline_point::interval i;
    i.count = interval.ok + interval.errors;
    i.errors = interval.errors;
    if (!interval.latency.empty()) {
      i.p50_ms = static_cast<double>(interval.latency.value_at_quantile(0.50)) / 1e6;
      i.p99_ms = static_cast<double>(interval.latency.value_at_quantile(0.99)) / 1e6;
    }
    p.ops.emplace(name, i);
  }
  previous_ = std::move(now);
  return p;
}

}  // namespace twinfleet::engine::detail
