// run_scenario(): the engine's threads, the embedded hub, the fleet and the back end, composed.
#include <twinfleet/engine/fleet_run.hpp>

#include "run_stats.hpp"
#include "target.hpp"

#include <twinfleet/backends/service_aws.hpp>
#include <twinfleet/backends/service_aws_commands.hpp>
#include <twinfleet/backends/service_aws_observer.hpp>
#include <twinfleet/backends/service_hub_json.hpp>
#include <twinfleet/backends/service_azure.hpp>
#include <twinfleet/check/sync_checker.hpp>
#include <twinfleet/device/aws_runner.hpp>
#include <twinfleet/device/azure_runner.hpp>
#include <twinfleet/device/random.hpp>
#include <twinfleet/engine/file_limit.hpp>
#include <twinfleet/engine/pacing.hpp>
#include <twinfleet/hub/local_hub.hpp>
#include <twinfleet/metrics/json.hpp>
#include <twinfleet/metrics/prometheus.hpp>
#include <twinfleet/metrics/registry.hpp>
#include <twinfleet/scenario/plan.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <memory>
#include <new>
#include <mutex>
#include <thread>
#include <unordered_map>

#include <malloc.h>
#include <unistd.h>

namespace twinfleet::engine {

namespace {

namespace asio = boost::asio;
namespace json = boost::json;
using steady = std::chrono::steady_clock;
using ms_double = std::chrono::duration<double, std::milli>;

using detail::op;
using detail::run_stats;

// Fleet indices by the keys devices report under: a device id, and for AWS also each
// "thing/shadow" key (device::shadow_key).
using key_index = std::unordered_map<std::string, std::size_t>;

// Desired writes and their fate: propagation (write accepted → device received) and
// convergence (→ the device's acknowledgement accepted by the hub). The device and the back end
// run on different threads, so a device may hear of a version before the back end has noted
// its write: such early events wait here for the write they belong to.
class convergence_tracker {
 public:
  // `expect_writes`: the scenario writes desired state. Without writes no record is kept: a
  // record per device made by the first GET was 0.8 KiB of every idle device (heaptrack).
  convergence_tracker(run_stats& stats, bool expect_writes) : stats_(stats), expect_writes_(expect_writes) {}
  // `at`: when the write was sent (the hub answers it after the notification left).
  void written(const std::string& key, std::size_t dev, std::int64_t version, steady::time_point at) {
    std::lock_guard lock(m_);
    ++writes_;
    stats_.desired_written(dev);
    auto& d = devices_[key];
    if (auto early = d.early_received.find(version); early != d.early_received.end()) {
      stats_.record(dev, op::desired_propagation, early->second.first - at, true);
      if (early->second.second) stats_.record(dev, op::delta_delivery, early->second.first - at, true);
      d.early_received.erase(early);
    } else {
      d.awaiting_receipt.emplace(version, at);
    }
    if (d.applied_version >= version) {
      converge(dev, d.applied_at - at);
    } else {
      d.pending.push_back({version, at});
    }
  }
  // `delta`: an AWS /update/delta (its propagation is also the delta delivery latency).
  void received(const std::string& key, std::size_t dev, std::int64_t version, steady::time_point at, bool delta) {
    if (!expect_writes_) return;
    std::lock_guard lock(m_);
    auto& d = devices_[key];
    if (auto w = d.awaiting_receipt.find(version); w != d.awaiting_receipt.end()) {
      stats_.record(dev, op::desired_propagation, at - w->second, true);
      if (delta) stats_.record(dev, op::delta_delivery, at - w->second, true);
      d.awaiting_receipt.erase(w);
    } else if (d.early_received.size() < 64) {
      d.early_received.emplace(version, std::make_pair(at, delta));
    }
  }
  void applied(const std::string& key, std::size_t dev, std::int64_t version, steady::time_point at) {
    if (!expect_writes_) return;
    std::lock_guard lock(m_);
    auto& d = devices_[key];
    if (version > d.applied_version) {
      d.applied_version = version;
      d.applied_at = at;
    }
    // A device that applied version v has converged past every write up to v (a GET after a
    // reconnect applies the latest state at once).
    auto past = d.pending.begin();
    for (; past != d.pending.end() && past->version <= version; ++past) converge(dev, at - past->written);
    d.pending.erase(d.pending.begin(), past);
    // Versions it will never be told of one by one (a GET jumped past them).
    std::erase_if(d.awaiting_receipt, [&](const auto& w) { return w.first < version; });
  }
  std::uint64_t writes() {
    std::lock_guard lock(m_);
    return writes_;
  }
  std::uint64_t converged() {
    std::lock_guard lock(m_);
    return converged_;
  }
  // Writes not yet converged (the settle wait at the end watches it fall to 0).
  std::uint64_t pending() {
    std::lock_guard lock(m_);
    return writes_ - converged_;
  }

 private:
  void converge(std::size_t dev, steady::duration took) {
    stats_.record(dev, op::convergence, took, true);
    stats_.desired_converged(dev);
    ++converged_;
  }
  struct write {
    std::int64_t version;
    steady::time_point written;
  };
  struct device_writes {
    std::vector<write> pending;  // not yet acknowledged, in version order (a deque allocates 512 bytes at once)
    std::map<std::int64_t, steady::time_point> awaiting_receipt;
    std::map<std::int64_t, std::pair<steady::time_point, bool>> early_received;  // (when, by delta)
    std::int64_t applied_version = 0;
    steady::time_point applied_at{};
  };
  run_stats& stats_;
  const bool expect_writes_;
  std::mutex m_;
  std::unordered_map<std::string, device_writes> devices_;
  std::uint64_t writes_ = 0;
  std::uint64_t converged_ = 0;
};

check::delivery to_delivery(device::desired_via via) {
  switch (via) {
    case device::desired_via::notification: return check::delivery::patch;
    case device::desired_via::delta: return check::delivery::delta;
    case device::desired_via::get: return check::delivery::document;
  }
  return check::delivery::patch;
}

// What the devices do, told to the metrics, the live convergence tally and the sync checker.
class fleet_observer final : public device::device_observer {
 public:
  fleet_observer(run_stats& stats, convergence_tracker& tracker, check::sync_checker& checker, const key_index& index,
                 std::vector<std::atomic<bool>>& online, std::vector<std::atomic<bool>>& in_service)
      : stats_(stats),
        tracker_(tracker),
        checker_(checker),
        index_(index),
        online_(online),
        in_service_(in_service),
        // Zeroed pages the system hands out untouched: an idle device's entry costs no memory.
        checker_refs_(static_cast<check::sync_checker::key_ref*>(std::calloc(std::max<std::size_t>(1, online.size()),
                                                                              sizeof(check::sync_checker::key_ref))),
                      &std::free) {
    if (!checker_refs_) throw std::bad_alloc();
  }

  void session_started(std::string_view device, std::uint64_t session) override {
    checker_.session_started(device, session, steady::now());
  }
  void session_ended(std::string_view device, std::uint64_t session) override {
    checker_.session_ended(device, session, steady::now());
  }
  void desired_delivered(std::string_view key, std::int64_t version, device::desired_via via) override {
    const auto now = steady::now();
    last_delivery_.store(now.time_since_epoch().count(), std::memory_order_relaxed);
    checker_.desired_delivered(key, version, to_delivery(via), now);
    if (const auto i = find(key)) tracker_.received(std::string(key), *i, version, now, via == device::desired_via::delta);
  }
  void desired_applied_via(std::string_view key, std::int64_t version, device::desired_via via, int) override {
    checker_.desired_applied(key, version, to_delivery(via), steady::now());
  }
  void reported_accepted(std::string_view key, std::size_t slot, std::uint64_t session, std::uint64_t serial,
                         std::int64_t hub_version) override {
    // A device's first patch (what it reports on connecting; an idle device sends no other) is
    // searched for by name: its entry in checker_refs_ stays an untouched page then.
    if (slot >= online_.size() || serial <= 1) {
      checker_.reported_accepted(key, session, serial, hub_version, steady::now());
      return;
    }
    // The device's key record, searched for on its second accepted patch.
    auto& ref = checker_refs_.get()[slot];
    if (!ref) ref = checker_.ref(key);
    checker_.reported_accepted(ref, key, session, serial, hub_version, steady::now());
  }

  void connected(std::string_view device, std::chrono::nanoseconds latency) override {
    const auto i = find(device);
    if (!i) return;
    stats_.record(*i, op::connect, latency, true);
    if (!online_[*i].exchange(true)) {
      stats_.connection(*i, true);
      const auto now = ++connected_;
      auto peak = peak_.load();
      while (now > peak && !peak_.compare_exchange_weak(peak, now)) {
      }
    }
  }
  void connect_failed(std::string_view device, boost::system::error_code) override {
    ++failures_;
    if (const auto i = find(device)) {
      stats_.record(*i, op::connect, {}, false);
      stats_.connect_failed(*i);
    }
  }
  void disconnected(std::string_view device, boost::system::error_code) override { set_offline(device); }
  void twin_read(std::string_view device, std::chrono::nanoseconds latency, bool ok) override {
    if (const auto i = find(device)) stats_.record(*i, op::twin_get, latency, ok);
  }
  void reported(std::string_view device, std::size_t slot, std::chrono::nanoseconds latency, bool ok) override {
    if (slot < online_.size()) {
      stats_.record(slot, op::reported_patch, latency, ok);
    } else if (const auto i = find(device)) {
      stats_.record(*i, op::reported_patch, latency, ok);
    }
  }
  void subscribed(std::string_view device, std::chrono::nanoseconds latency, bool ok) override {
    if (const auto i = find(device)) stats_.record(*i, op::subscribe, latency, ok);
  }
  void synchronised(std::string_view device) override {
    if (const auto i = find(device)) in_service_[*i].store(true);
  }
  void desired_applied(std::string_view key, std::int64_t version, int) override {
    const auto i = find(key);
    if (!i) return;
    // AWS convergence: seen by the back end's shadow-documents observer while it watches
    // (run_scenario); the device's own apply would count it early, and twice.
    if (aws_by_service.load(std::memory_order_relaxed) && *i < aws_devices.size() && aws_devices[*i]) return;
    tracker_.applied(std::string(key), *i, version, steady::now());
  }
  // The fleet's AWS devices (by index), set before the devices start; aws_by_service goes
  // false again when the observer's connection is lost (the devices' path takes over).
  std::vector<bool> aws_devices;
  std::atomic<bool> aws_by_service{false};
  void desired_stale(std::string_view key, std::int64_t version) override {
    ++stale_;
    checker_.desired_dropped(key, version, steady::now());
  }
  void telemetry_sent(std::string_view device, std::chrono::nanoseconds latency, bool ok) override {
    if (const auto i = find(device)) stats_.record(*i, op::telemetry, latency, ok);
  }
  // The device coroutine has ended (disconnected for good).
  void finished(std::string_view device) { set_offline(device); }
  void finished(std::size_t i) { set_offline(i); }

  std::uint64_t connected_now() const { return connected_.load(); }
  std::uint64_t peak() const { return peak_.load(); }
  std::uint64_t failures() const { return failures_.load(); }
  std::uint64_t stale() const { return stale_.load(); }
  // When desired state last reached a device (a notification, a delta or a GET, stale or not).
  steady::time_point last_desired_delivery() const {
    return steady::time_point(steady::duration(last_delivery_.load(std::memory_order_relaxed)));
  }

 private:
  std::optional<std::size_t> find(std::string_view key) const {
    auto it = index_.find(std::string(key));
    if (it == index_.end()) return std::nullopt;
    return it->second;
  }
  void set_offline(std::string_view device) {
    if (const auto i = find(device)) set_offline(*i);
  }
  void set_offline(std::size_t i) {
    in_service_[i].store(false);
    if (online_[i].exchange(false)) {
      --connected_;
      stats_.connection(i, false);
    }
  }
  run_stats& stats_;
  convergence_tracker& tracker_;
  check::sync_checker& checker_;
  const key_index& index_;
  std::vector<std::atomic<bool>>& online_;
  std::vector<std::atomic<bool>>& in_service_;  // synchronised since it last connected
  // By device slot (the fleet index; device_observer): its sync checker record, set by the
  // device's thread on its second accepted patch. Devices report by slot (no search by name).
  std::unique_ptr<check::sync_checker::key_ref[], decltype(&std::free)> checker_refs_;
  std::atomic<std::uint64_t> connected_{0};
  std::atomic<steady::duration::rep> last_delivery_{0};
  std::atomic<std::uint64_t> peak_{0};
  std::atomic<std::uint64_t> failures_{0};
  std::atomic<std::uint64_t> stale_{0};
};

// A value the schema accepts, drawn from `r` (what a back end would write).
std::optional<json::value> random_value(const device::property_schema& schema, device::rng& r) {
  if (!schema.allowed.empty()) return schema.allowed[r.below(schema.allowed.size())];
  const double lo = schema.min.value_or(0);
  const double hi = schema.max.value_or(100);
  switch (schema.type) {
    case device::value_type::boolean: return json::value(r.below(2) == 1);
    case device::value_type::integer: {
      const auto a = static_cast<std::int64_t>(std::ceil(lo));
      const auto b = static_cast<std::int64_t>(std::floor(hi));
      if (b < a) return std::nullopt;
      return json::value(a + static_cast<std::int64_t>(r.below(static_cast<std::uint64_t>(b - a) + 1)));
    }
    case device::value_type::number: return json::value(std::round(r.uniform(lo, hi) * 100) / 100);
    case device::value_type::string: return json::value("v" + std::to_string(r.below(1000)));
    case device::value_type::object: {
      if (schema.fields.empty()) return std::nullopt;
      json::object o;
      for (const auto& f : schema.fields) {
        auto v = random_value(f, r);
        if (!v) return std::nullopt;
        o[f.name] = std::move(*v);
      }
      return json::value(std::move(o));
    }
  }
  return std::nullopt;
}

std::uint64_t peak_rss_bytes() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.starts_with("VmHWM:")) return std::stoull(line.substr(6)) * 1024;
  }
  return 0;
}

bool has_any(const std::vector<std::string>& names, std::string_view name) {
  return names.empty() || std::find(names.begin(), names.end(), name) != names.end();
}

// ---- the AWS back end's observer of shadow documents (issue 4 §3, issue 5's convergence) ----
// Where it connects and as whom. target: local and hub — hub.json's broker and back-end
// certificate (aws.backend_common_names, issued by the hub's CA when missing), dialled where
// the devices dial; plain MQTT when the devices use it (an open hub admits any client id).
// target: aws — the devices' endpoint and the shared certificate: on AWS IoT its policy must
// allow the wildcard subscriptions, and per-device certificates (certificate_dir) have no
// such identity. An error here is said in a note and the devices' path counts convergence.
twin::result<backends::aws_shadow_observer_options> shadow_observer_options(const scenario::scenario& s,
                                                                            const detail::run_target& target) {
  backends::aws_shadow_observer_options o;
  if (const auto* a = std::get_if<scenario::aws_target>(&s.target)) {
    if (a->certificate.empty()) return twin::error{1, "per-device certificates (target.certificate_dir) give no back-end identity"};
    o.host = a->endpoint;
    o.connect_host = target.device_endpoint.address().to_string();
    o.port = target.device_endpoint.port();
    o.ca_file = a->ca;
    o.certificate_file = a->certificate;
    o.private_key_file = a->key;
    return o;
  }
  if (target.hub_description.empty()) return twin::error{1, "no AWS broker in this target"};
  if (target.tls) {
    auto from_hub = backends::aws_shadow_observer_options_from_hub_json(target.hub_description);
    if (!from_hub) return twin::error{1, from_hub.error().message};
    o = std::move(*from_hub);
  } else {
    o.use_tls = false;
    o.host = target.device_endpoint.address().to_string();
  }
  o.connect_host = target.device_endpoint.address().to_string();
  o.port = target.device_endpoint.port();
  return o;
}

// What each observer connection subscribes to. 0 shadows per connection: one connection with
// the wildcard filters (an empty list). N: this process's AWS shadows, N to a connection, each
// by its documents topic — on AWS IoT one connection is sent at most 100 messages a second
// and holds at most 50 subscriptions, so a fleet whose shadows change faster needs several.
std::vector<std::vector<std::string>> observer_shards(const std::vector<scenario::device_spec>& fleet,
                                                      std::uint32_t shadows_per_connection) {
  if (shadows_per_connection == 0) return {{}};
  std::vector<std::vector<std::string>> shards;
  for (const auto& d : fleet) {
    if (d.via != scenario::dialect::aws) continue;
    for (const auto& shadow : d.shadows) {
      if (shards.empty() || shards.back().size() == shadows_per_connection) shards.emplace_back();
      shards.back().push_back(backends::shadow_documents_topic(d.id, shadow));
    }
  }
  return shards;
}

// On AWS IoT one connection is sent at most 100 messages a second: a note when the plan's
// writes alone (aws_write_documents_per_shadow) would send an observer connection more, with a
// shadows_per_connection that keeps each under 80 a second.
void warn_observer_load(const scenario::scenario& s, const std::vector<scenario::device_spec>& fleet, std::size_t connections,
                        const std::function<void(std::string_view)>& out) {
  std::uint64_t shadows = 0;
  for (const auto& d : fleet) {
    if (d.via == scenario::dialect::aws) shadows += d.shadows.size();
  }
  const double per_shadow = scenario::aws_write_documents_per_shadow(s);
  if (shadows == 0 || connections == 0 || per_shadow <= 0) return;
  const double per_connection = per_shadow * std::ceil(static_cast<double>(shadows) / static_cast<double>(connections));
  if (per_connection <= 100) return;
  const auto fits = std::clamp<std::uint64_t>(static_cast<std::uint64_t>(80 / per_shadow), 1, 50);
  out("note: the back end's writes alone make about " + std::to_string(static_cast<long long>(std::lround(per_connection))) +
      " shadow documents a second for each AWS observer connection, and AWS IoT sends a connection at most 100: "
      "set aws_observer.shadows_per_connection to " + std::to_string(fits) + " or fewer (docs/SCENARIOS.md)");
}

// The version a shadow document shows converged, if any: the service sees no delta left —
// every writable property of the profile that current.state.desired sets is mirrored in
// current.state.reported (check::mirrored, the audit's `mirror` rule). Properties the profile
// does not declare are not the run's business (a shadow may carry others); one with ack: false
// never converges here (the device never acknowledges it, so AWS keeps its delta).
//
// Versions: the tracker keys writes by the shadow version the data-plane update returned (w).
// A document's current.version V is the shadow's version after the update it reports — the
// write itself (V = w) or any later update, usually the device's reported mirror (V > w). The
// documents message carries current.state.desired too, so "converged past w" = V ≥ w and
// current desired ⊆ reported: whatever was written up to V is in force or overwritten by a
// later write that is. A write equal to what is already reported converges on its own
// document (V = w).
std::optional<std::int64_t> converged_version(const backends::shadow_document_event& e, const device::profile& profile) {
  static const json::object none;
  const auto side = [&](std::string_view name) -> const json::object& {
    const auto* v = e.current_state.if_contains(name);
    return v != nullptr && v->is_object() ? v->get_object() : none;
  };
  const auto& desired = side("desired");
  const auto& reported = side("reported");
  for (const auto& w : profile.desired) {
    const auto* want = desired.if_contains(w.name);
    if (want == nullptr || want->is_null()) continue;
    const auto* have = reported.if_contains(w.name);
    if (have == nullptr || !check::mirrored(*want, *have)) return std::nullopt;
  }
  return e.current_version;
}

// The back end's REST clients (the same code that serves the azure and aws targets), on the
// hub's thread, and the requests they have in flight.
struct service_clients {
  backends::azure_service_client* azure;
  backends::aws_service_client* aws;
  std::atomic<int> in_flight{0};
  backends::aws_command_client* aws_commands = nullptr;  // AWS devices' commands (docs/PROFILES.md)
};

// Everything the back-end driver and the progress line share; lives on the hub's thread.
struct backend_context {
  service_clients& svc;
  hub::local_hub* hub;  // the embedded hub; null for a separate `twinfleet hub`
  const scenario::scenario& s;
  const std::vector<scenario::device_spec>& devices;
  std::vector<std::atomic<bool>>& online;
  std::vector<std::atomic<bool>>& in_service;  // connected and synchronised (device_observer::synchronised)
  run_stats& stats;
  convergence_tracker& tracker;
  check::sync_checker& checker;
  steady::time_point start;
  steady::time_point end;
  const std::shared_ptr<std::atomic<bool>>& stop;
  device::rng random;
  double shards = 1;  // the back end's rates are shared by the worker processes

  bool running() const { return steady::now() < end && !(stop && stop->load()); }

  // A connected device of the fleet that `accept` takes, tried a few times at random; with
  // `synchronised`, only one that has also subscribed and read its twin since it connected.
  const scenario::device_spec* pick(const std::function<bool(const scenario::device_spec&)>& accept,
                                    bool synchronised = false) {
    for (int attempt = 0; attempt < 16; ++attempt) {
      const auto i = random.below(devices.size());
      const bool up = synchronised ? in_service[i].load() : online[i].load();
      if (up && accept(devices[i])) return &devices[i];
    }
    return nullptr;
  }
};

asio::awaitable<void> sleep_until(steady::time_point t) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  timer.expires_at(t);
  (void)co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
}

// The back end's operations, through the REST service APIs. Latency counts from the
// operation's intended start; the write's version goes to the convergence tracker.
asio::awaitable<void> write_op(backend_context& ctx, const scenario::device_spec* d, std::string shadow, json::object desired,
                               steady::time_point intended) {
  const auto sent = steady::now();
  if (d->via == scenario::dialect::azure) {
    auto r = co_await ctx.svc.azure->async_patch_twin_desired(d->id, desired);
    ctx.stats.record(d->index, op::desired_write, steady::now() - intended, r.has_value());
    if (r) {
      ctx.checker.desired_written(d->id, r->desired_version(), desired, sent);
      ctx.tracker.written(d->id, d->index, r->desired_version(), sent);
    }
  } else {
    json::object document{{"state", json::object{{"desired", desired}}}};
    auto r = co_await ctx.svc.aws->async_update_shadow(d->id, shadow, document);
    ctx.stats.record(d->index, op::shadow_update, steady::now() - intended, r.has_value());
    if (r) {
      if (const auto* v = r->if_contains("version"); v != nullptr && v->is_int64()) {
        const auto key = device::shadow_key(d->id, shadow);
        ctx.checker.desired_written(key, v->get_int64(), desired, sent);
        ctx.tracker.written(key, d->index, v->get_int64(), sent);
      }
    }
  }
  --ctx.svc.in_flight;
}

asio::awaitable<void> read_op(backend_context& ctx, const scenario::device_spec* d, std::string shadow,
                              steady::time_point intended) {
  if (d->via == scenario::dialect::azure) {
    auto r = co_await ctx.svc.azure->async_get_twin(d->id);
    ctx.stats.record(d->index, op::twin_read, steady::now() - intended, r.has_value());
  } else {
    auto r = co_await ctx.svc.aws->async_get_shadow(d->id, shadow);
    ctx.stats.record(d->index, op::shadow_read, steady::now() - intended, r.has_value() || r.error().not_found());
  }
  --ctx.svc.in_flight;
}

asio::awaitable<void> method_op(backend_context& ctx, const scenario::device_spec* d, std::string name,
                                steady::time_point intended) {
  const json::value payload = json::object{};
  if (d->via == scenario::dialect::azure) {
    auto r = co_await ctx.svc.azure->async_invoke_method(d->id, name, payload, std::chrono::seconds(10));
    ctx.stats.record(d->index, op::method, steady::now() - intended, r.has_value() && r->status < 400);
  } else {
    // twinfleet's command-topic convention: published through the data plane, answered on MQTT.
    auto r = co_await ctx.svc.aws_commands->async_invoke(d->id, name, payload, std::chrono::seconds(10));
    ctx.stats.record(d->index, op::method, steady::now() - intended, r.has_value() && r->status < 400);
  }
  --ctx.svc.in_flight;
}

// One kind of back-end load over the phases: writes, method calls or twin reads.
enum class load_kind { desired_writes, method_calls, twin_reads };

asio::awaitable<void> drive(backend_context& ctx, load_kind kind) {
  for (const auto& window : scenario::phase_timeline(ctx.s)) {
    const auto& ph = ctx.s.phases[window.phase];
    const auto& load = kind == load_kind::desired_writes ? ph.backend.desired_writes
                       : kind == load_kind::method_calls ? ph.backend.method_calls
                                                         : ph.backend.twin_reads;
    const auto phase_start = ctx.start + std::chrono::duration_cast<steady::duration>(window.start);
    const auto phase_end = std::min(ctx.end, ctx.start + std::chrono::duration_cast<steady::duration>(window.end));
    if (!load.any()) continue;
    const auto eligible = kind == load_kind::desired_writes ? scenario::eligible_for_writes(ctx.s, load)
                          : kind == load_kind::method_calls ? scenario::eligible_for_methods(ctx.s, load)
                                                            : ctx.s.device_count();
    paced_stream stream(load.per_second(eligible) / ctx.shards, phase_start);
    while (ctx.running()) {
      const auto due = stream.next();
      if (!due || *due >= phase_end) break;
      if (*due > steady::now()) co_await sleep_until(*due);
      if (!ctx.running()) co_return;
      const auto intended = *due;
      // Open model: each operation runs on its own, so a slow answer never delays the next.
      if (kind == load_kind::twin_reads) {
        const auto* d = ctx.pick([](const scenario::device_spec&) { return true; });
        if (d == nullptr) continue;
        std::string shadow;
        if (d->via == scenario::dialect::aws) shadow = d->shadows[ctx.random.below(d->shadows.size())];
        ++ctx.svc.in_flight;
        asio::co_spawn(co_await asio::this_coro::executor, read_op(ctx, d, shadow, intended), asio::detached);
      } else if (kind == load_kind::desired_writes) {
        const auto* d = ctx.pick([&](const scenario::device_spec& candidate) {
          for (const auto& w : candidate.profile->desired) {
            if (has_any(load.names, w.name)) return true;
          }
          return false;
        });
        if (d == nullptr) continue;
        std::vector<const device::writable_property*> props;
        for (const auto& w : d->profile->desired) {
          if (has_any(load.names, w.name)) props.push_back(&w);
        }
        const auto* prop = props[ctx.random.below(props.size())];
        auto value = random_value(prop->schema, ctx.random);
        if (!value) continue;
        std::string shadow;
        if (d->via == scenario::dialect::aws) shadow = d->shadows[ctx.random.below(d->shadows.size())];
        json::object desired{{prop->name, std::move(*value)}};
        ++ctx.svc.in_flight;
        asio::co_spawn(co_await asio::this_coro::executor,
                       write_op(ctx, d, shadow, std::move(desired), intended), asio::detached);
      } else {
        // To devices in service only: an AWS command published before the device's command
        // subscription delivers is lost, and its call times out (10 s).
        const auto* d = ctx.pick([&](const scenario::device_spec& candidate) {
          if (candidate.via == scenario::dialect::aws && ctx.svc.aws_commands == nullptr) return false;
          for (const auto& c : candidate.profile->commands) {
            if (has_any(load.names, c.name)) return true;
          }
          return false;
        }, true);
        if (d == nullptr) continue;
        std::vector<const device::command*> cmds;
        for (const auto& c : d->profile->commands) {
          if (has_any(load.names, c.name)) cmds.push_back(&c);
        }
        const auto* cmd = cmds[ctx.random.below(cmds.size())];
        ++ctx.svc.in_flight;
        asio::co_spawn(co_await asio::this_coro::executor, method_op(ctx, d, cmd->name, intended), asio::detached);
      }
    }
  }
}

// The scenario's fault schedule (local target): at each time, drop a share of the device
// connections and/or change the hub's fault knobs (the admin endpoint's JSON).
asio::awaitable<void> apply_faults(backend_context& ctx, const std::function<void(std::string_view)>& out) {
  if (ctx.hub == nullptr) {
    out("note: the scenario's faults apply to the embedded hub only (target: local); they are skipped");
    co_return;
  }
  for (const auto& f : ctx.s.faults) {
    co_await sleep_until(ctx.start + std::chrono::duration_cast<steady::duration>(f.at));
    if (!ctx.running()) co_return;
    if (f.hub) {
      auto knobs = hub::fault_settings_from_json(*f.hub);
      if (knobs) {
        ctx.hub->core().set_faults(std::move(*knobs), std::chrono::system_clock::now());
        out("fault: hub knobs changed");
      } else {
        out("fault: hub knobs refused: " + knobs.error().message);
      }
    }
    if (f.drop > 0) {
      std::optional<hub::dialect> only;
      if (f.only) only = *f.only == scenario::dialect::aws ? hub::dialect::aws : hub::dialect::azure;
      const auto n = ctx.hub->core().force_disconnect(f.drop, only);
      out("fault: " + std::to_string(n) + " device connections dropped");
    }
  }
}

// A hub on loopback is reached from 127.0.0.1 … 127.0.0.8 in turn: one source address gives
// ~28,000 ephemeral ports towards one address and port, a fleet spread over eight has eight
// times that (DESIGN.md, limits).
constexpr unsigned loopback_sources = 8;
std::optional<asio::ip::address> loopback_source(const asio::ip::tcp::endpoint& hub, std::size_t device) {
  if (!hub.address().is_v4() || !hub.address().is_loopback()) return std::nullopt;
  return asio::ip::address_v4(0x7f000001U + static_cast<unsigned>(device % loopback_sources));
}

// The final audit: every twin and shadow read back through the service API and handed to the
// checker with its profile's mapping. At most `parallel` reads at a time.
asio::awaitable<void> audit_all(backend_context& ctx, std::size_t parallel, steady::time_point deadline,
                                std::shared_ptr<std::atomic<std::size_t>> audited) {
  auto executor = co_await asio::this_coro::executor;
  std::atomic<std::size_t> next{0};
  std::vector<std::pair<const scenario::device_spec*, std::string>> keys;  // (device, shadow)
  for (const auto& d : ctx.devices) {
    if (d.via == scenario::dialect::azure) {
      keys.emplace_back(&d, std::string());
    } else {
      for (const auto& shadow : d.shadows) keys.emplace_back(&d, shadow);
    }
  }
  auto worker = [&ctx, &keys, &next, deadline, audited]() -> asio::awaitable<void> {
    for (;;) {
      const auto k = next++;
      if (k >= keys.size() || steady::now() >= deadline) co_return;
      const auto* d = keys[k].first;
      const auto& shadow = keys[k].second;
      check::device_mapping mapping;
      for (const auto& w : d->profile->desired) {
        if (!w.ack) continue;
        mapping.properties.push_back({w.name, w.name, d->via == scenario::dialect::azure ? check::ack_form::pnp_ack : check::ack_form::mirror});
      }
      if (d->via == scenario::dialect::azure) {
        auto twin = co_await ctx.svc.azure->async_get_twin(d->id);
        if (!twin) continue;
        static const json::object empty;
        const auto* props = twin->twin.if_contains("properties");
        if (props == nullptr || !props->is_object()) continue;
        const auto* desired = props->as_object().if_contains("desired");
        const auto* reported = props->as_object().if_contains("reported");
        ctx.checker.audit(d->id, desired != nullptr && desired->is_object() ? desired->as_object() : empty,
                          reported != nullptr && reported->is_object() ? reported->as_object() : empty, mapping, steady::now());
      } else {
        auto doc = co_await ctx.svc.aws->async_get_shadow(d->id, shadow);
        if (!doc) continue;  // no shadow: nothing was written to it
        static const json::object empty;
        const auto* state = doc->if_contains("state");
        const auto* desired = state != nullptr && state->is_object() ? state->as_object().if_contains("desired") : nullptr;
        const auto* reported = state != nullptr && state->is_object() ? state->as_object().if_contains("reported") : nullptr;
        ctx.checker.audit(device::shadow_key(d->id, shadow), desired != nullptr && desired->is_object() ? desired->as_object() : empty,
                          reported != nullptr && reported->is_object() ? reported->as_object() : empty, mapping, steady::now());
      }
      ++*audited;
    }
  };
  std::vector<std::shared_ptr<std::atomic<bool>>> done;
  auto remaining = std::make_shared<std::atomic<std::size_t>>(parallel);
  asio::steady_timer all_done(executor, steady::time_point::max());
  for (std::size_t i = 0; i < parallel; ++i) {
    asio::co_spawn(executor, worker(), [remaining, &all_done](std::exception_ptr) {
      if (--*remaining == 0) all_done.cancel();
    });
  }
  (void)co_await all_done.async_wait(asio::as_tuple(asio::use_awaitable));
}

// The live line: elapsed and phase, connected/target, operations per second by kind with the
// main latencies, errors, convergence and the engine's lag.
}  // namespace

std::string format_progress_line(const timeline_point& p, std::string_view phase, std::size_t planned, double seconds,
                                 std::uint64_t writes, std::uint64_t converged, double lag_p99_ms) {
  auto rate = [&](std::string_view name) {
    auto it = p.ops.find(std::string(name));
    return it == p.ops.end() ? 0.0 : static_cast<double>(it->second.count) / seconds;
  };
  auto p99 = [&](std::string_view name) {
    auto it = p.ops.find(std::string(name));
    return it == p.ops.end() ? 0.0 : it->second.p99_ms;
  };
  std::uint64_t errors = 0;
  for (const auto& [name, i] : p.ops) errors += i.errors;
  char line[512];
  std::snprintf(line, sizeof line,
                "[%5.0fs %s] connected %llu/%zu | reported %.0f/s p99 %.1fms | telemetry %.0f/s | desired %.0f/s, "
                "converged %llu/%llu | methods %.0f/s p99 %.1fms | reads %.0f/s | errors %llu/s | lag p99 %.1fms",
                p.t_s, std::string(phase).c_str(), static_cast<unsigned long long>(p.connected), planned,
                rate("reported_patch"), p99("reported_patch"), rate("telemetry"), rate("desired_write") + rate("shadow_update"),
                static_cast<unsigned long long>(converged), static_cast<unsigned long long>(writes), rate("method"), p99("method"),
                rate("twin_read") + rate("shadow_read"), static_cast<unsigned long long>(static_cast<double>(errors) / seconds),
                lag_p99_ms);
  return line;
}


twin::result<run_result> run_scenario(const scenario::scenario& s, const run_options& options) {
  auto out = options.console ? options.console : [](std::string_view line) {
    std::fwrite(line.data(), 1, line.size(), stdout);
    std::fputc('\n', stdout);
    std::fflush(stdout);
  };
  // Every device of both dialects, or this worker's share of them (renumbered from 0; each
  // keeps its id, seed and place on the whole fleet's ramp).
  auto all_devices = scenario::expand_fleet(s);
  const auto whole_ramp = scenario::ramp_schedule(s.ramp, all_devices.size(), s.seed);
  const auto shards = std::max<std::size_t>(1, options.shard_count);
  std::vector<scenario::device_spec> fleet;
  std::vector<scenario::duration> ramp;
  for (auto& d : all_devices) {
    if (d.index % shards != options.shard_index) continue;
    ramp.push_back(whole_ramp[d.index]);
    d.index = fleet.size();
    fleet.push_back(std::move(d));
  }
  all_devices.clear();
  const bool embedded_hub = std::holds_alternative<scenario::local_target>(s.target);
  // What each AWS observer connection will subscribe to; its connections count too when it
  // shares the shadows out (one connection is among the 16 service connections).
  auto observer_filter_sets = observer_shards(fleet, s.aws_observer.shadows_per_connection);
  const std::uint64_t observer_connections = s.aws_observer.shadows_per_connection > 0 ? observer_filter_sets.size() : 0;
  const auto plan = ensure_file_limit(
      fd_demand{.devices = fleet.size(), .embedded_hub = embedded_hub, .service_connections = 16 + observer_connections});
  if (!plan.fits) return twin::error{1, plan.explanation};

  // The target: the embedded hub on its own thread, a running `twinfleet hub`, or a cloud.
  asio::io_context hub_io(1);
  auto opened = detail::open_target(s, hub_io, out);
  if (!opened) return opened.error();
  auto& target = **opened;
  if (auto ready = detail::provision(target, s, fleet, hub_io, out); !ready) return ready.error();  // identities, keys, certificates
  service_clients svc{target.azure.get(), target.aws.get()};
  std::unique_ptr<backends::aws_command_client> aws_commands;  // connects at the first AWS command
  if (target.aws) {
    backends::aws_command_options command_options;
    command_options.broker = target.device_endpoint;
    // One per process: workers of `--workers N` must not take each other's client id over.
    command_options.client_id += "-" + std::to_string(::getpid());
    // The devices' way in (with per-device certificates, the first AWS thing's).
    const auto first_aws = std::find_if(fleet.begin(), fleet.end(), [](const auto& d) { return d.via == scenario::dialect::aws; });
    command_options.transport = target.transport(first_aws != fleet.end() ? std::string_view(first_aws->id) : std::string_view());
    aws_commands = std::make_unique<backends::aws_command_client>(hub_io.get_executor(), *target.aws, command_options);
    svc.aws_commands = aws_commands.get();
    // Their answers come back on that one connection, which AWS IoT sends at most 100 a second.
    const double calls = scenario::aws_command_calls_per_second(s) / static_cast<double>(shards);
    if (std::holds_alternative<scenario::aws_target>(s.target) && calls > 100) {
      out("note: this process calls about " + std::to_string(static_cast<long long>(std::lround(calls))) +
          " AWS commands a second, and their answers reach it on one MQTT connection, which AWS IoT sends at most "
          "100 messages a second: calls past that time out; --workers N gives each of N processes its own connection");
    }
  }

  // The registry and its endpoint outlive the run when the caller wants a last scrape
  // (run_result::metrics_endpoint).
  struct live_metrics {
    metrics::registry registry;
    std::optional<metrics::exposer> endpoint;
  };
  auto live = std::make_shared<live_metrics>();
  auto& registry = live->registry;
  auto& endpoint = live->endpoint;
  run_stats stats(registry, fleet);
  const bool writes_desired = std::any_of(s.phases.begin(), s.phases.end(), [](const auto& p) { return p.backend.desired_writes.any(); });
  convergence_tracker tracker(stats, writes_desired);
  key_index index;
  const auto start = steady::now() + std::chrono::milliseconds(100);
  const auto total = options.duration.value_or(s.total_duration());
  const auto end = start + std::chrono::duration_cast<steady::duration>(total);
  check::checker_options check_options;
  check_options.run_start = start;
  check_options.deadline = options.convergence_deadline;
  check_options.judge_writes_until = end;
  check_options.on_anomaly = [&stats, &index](check::anomaly_kind kind, std::string_view key) {
    if (auto it = index.find(std::string(key)); it != index.end()) stats.anomaly(it->second, check::to_string(kind));
  };
  check::sync_checker checker(std::move(check_options));
  for (std::size_t i = 0; i < fleet.size(); ++i) {
    index.emplace(fleet[i].id, i);
    for (const auto& shadow : fleet[i].shadows) {
      if (fleet[i].via == scenario::dialect::aws) index.emplace(device::shadow_key(fleet[i].id, shadow), i);
    }
  }
  std::vector<std::atomic<bool>> online(fleet.size());
  std::vector<std::atomic<bool>> in_service(fleet.size());
  fleet_observer observer(stats, tracker, checker, index, online, in_service);
  // ---- the AWS back end's observer of shadow documents: started before the devices ----
  // AWS convergence is the device's acknowledgement seen by the service (issue 5): Paho
  // connections subscribed to the shadows' /update/documents tell the tracker, on hub_io, when
  // a document shows no delta left (converged_version above). Azure keys keep the devices'
  // path. One connection with wildcard filters, or aws_observer.shadows_per_connection shadows
  // on each of several (observer_shards). When they cannot all start, a note says so and the
  // devices' path counts AWS too.
  std::vector<std::unique_ptr<backends::aws_shadow_observer>> shadow_observers;
  const bool aws_fleet = std::any_of(fleet.begin(), fleet.end(), [](const auto& d) { return d.via == scenario::dialect::aws; });
  if (target.aws && aws_fleet) {
    std::string failure;
    auto o = shadow_observer_options(s, target);
    if (!o) failure = o.error().message;
    auto on_document = [&tracker, &checker, &index, &fleet](const backends::shadow_document_event& e) {
      const auto key = e.shadow.empty() ? e.thing : device::shadow_key(e.thing, e.shadow);
      const auto it = index.find(key);
      if (it == index.end()) return;  // not this process's thing (another worker's, or not the fleet's)
      const auto& d = fleet[it->second];
      if (d.via != scenario::dialect::aws) return;
      if (const auto v = converged_version(e, *d.profile)) {
        tracker.applied(key, it->second, *v, e.received_steady);
        checker.service_in_sync(key, *v, e.received_steady);  // the checker's convergence time, too
      }
    };
    auto on_closed = [&observer, out](boost::system::error_code) {
      if (!observer.aws_by_service.exchange(false)) return;  // said once, for the first connection lost
      out("note: the AWS shadow-documents observer lost a connection; AWS convergence is counted from the devices' acknowledgements from now on");
    };
    auto& filter_sets = observer_filter_sets;
    if (std::holds_alternative<scenario::aws_target>(s.target)) warn_observer_load(s, fleet, filter_sets.size(), out);
    for (std::size_t k = 0; o && k < filter_sets.size(); ++k) {
      auto chosen = *o;
      // Unique per process: workers of `--workers N` must not take each other's client id over.
      chosen.client_id += "-" + std::to_string(::getpid());
      if (filter_sets.size() > 1) chosen.client_id += "-" + std::to_string(k);
      chosen.filters = std::move(filter_sets[k]);
      auto made = backends::aws_shadow_observer::create(hub_io.get_executor(), chosen);
      if (!made) {
        failure = "its TLS files: " + made.error().message();
        break;
      }
      (*made)->set_handler(on_document);
      (*made)->set_closed_handler(on_closed);
      shadow_observers.push_back(std::move(*made));
    }
    if (failure.empty() && !shadow_observers.empty()) {
      // hub_io runs on this thread until every start is done (the hub thread is not running yet).
      struct start_state {
        std::size_t done = 0;
        std::string failure;  // the first
      };
      auto started = std::make_shared<start_state>();
      for (auto& ob : shadow_observers) {
        asio::co_spawn(
            hub_io,
            [](backends::aws_shadow_observer& one, std::shared_ptr<start_state> r) -> asio::awaitable<void> {
              const auto ec = co_await one.async_start();
              if (ec && r->failure.empty()) {
                r->failure = ec.message();
                if (!one.last_error().empty()) r->failure += " (" + one.last_error() + ")";
              }
              ++r->done;
            }(*ob, started),
            asio::detached);
      }
      const auto bound = steady::now() + o->connect_timeout + std::chrono::seconds(5);
      detail::run_until(hub_io, [&] { return started->done == shadow_observers.size(); }, bound);
      if (started->done < shadow_observers.size()) failure = "no answer";
      if (!started->failure.empty()) failure = started->failure;
    }
    if (!failure.empty()) shadow_observers.clear();  // a start still running keeps what it needs
    if (!shadow_observers.empty()) {
      observer.aws_devices.resize(fleet.size());
      for (std::size_t i = 0; i < fleet.size(); ++i) observer.aws_devices[i] = fleet[i].via == scenario::dialect::aws;
      observer.aws_by_service = true;
    } else {
      out("note: the AWS back end cannot watch shadow documents (" + failure +
          "); AWS convergence is taken from the devices' acknowledgements accepted by the hub");
    }
  }
  if (!options.metrics_listen.empty()) {
    endpoint.emplace(registry);
    if (auto started = endpoint->start(options.metrics_listen); !started) {
      if (options.metrics_listen_required) return twin::error{1, started.error().message};
      out("note: " + started.error().message + "; the run goes on without a Prometheus endpoint");
      endpoint.reset();
    } else {
      out("metrics: http://" + options.metrics_listen.substr(0, options.metrics_listen.rfind(':')) + ":" +
          std::to_string(endpoint->port()) + "/metrics");
    }
  }

  runtime rt({.threads = options.threads, .on_lag = [&stats](std::chrono::nanoseconds late) { stats.lag(late); }});
  registry.gauge("twinfleet_engine_threads", {}, "Device threads of the engine").set(static_cast<double>(rt.threads()));
  const auto started_at = std::chrono::system_clock::now() + (start - steady::now());
  // Devices outlive the load by the settle time at most (the stop flag ends them sooner).
  const auto devices_until = end + std::chrono::duration_cast<steady::duration>(options.settle) + std::chrono::seconds(1);
  std::atomic<std::size_t> finished{0};
  auto stop = options.stop ? options.stop : std::make_shared<std::atomic<bool>>(false);
  auto devices_stop = std::make_shared<std::atomic<bool>>(false);
  // ---- the duplicate_connection quirk (PROTOCOLS.md C1.8, docs/RACES.md "Connection takeover") ----
  // Such a device runs a second client with the same id and credentials on its own connection
  // loop (a simulator that connects twice), so that each connection takes the other's over.
  // Both report to the run's one observer (metrics, tracker, checker) through a
  // shared_id_observer, which counts the device offline only when neither connection stands.
  // Both clients live inside the device's one coroutine: `finished` still counts one per device.
  struct shared_id_observer final : device::device_observer {
    explicit shared_id_observer(device::device_observer& o) : to(o) {}
    device::device_observer& to;
    int up = 0;  // connections standing; both clients run on the device's one thread
    void connected(std::string_view d, std::chrono::nanoseconds l) override {
      ++up;
      to.connected(d, l);
    }
    void connect_failed(std::string_view d, boost::system::error_code ec) override { to.connect_failed(d, ec); }
    void disconnected(std::string_view d, boost::system::error_code ec) override {
      if (up > 0 && --up == 0) to.disconnected(d, ec);
    }
    void twin_read(std::string_view d, std::chrono::nanoseconds l, bool ok) override { to.twin_read(d, l, ok); }
    void subscribed(std::string_view d, std::chrono::nanoseconds l, bool ok) override { to.subscribed(d, l, ok); }
    void reported(std::string_view d, std::size_t s, std::chrono::nanoseconds l, bool ok) override { to.reported(d, s, l, ok); }
    void desired_received(std::string_view d, std::int64_t v) override { to.desired_received(d, v); }
    void desired_applied(std::string_view d, std::int64_t v, int st) override { to.desired_applied(d, v, st); }
    void desired_stale(std::string_view d, std::int64_t v) override { to.desired_stale(d, v); }
    void method_answered(std::string_view d, std::string_view m, int st) override { to.method_answered(d, m, st); }
    void telemetry_sent(std::string_view d, std::chrono::nanoseconds l, bool ok) override { to.telemetry_sent(d, l, ok); }
    void session_started(std::string_view d, std::uint64_t n) override { to.session_started(d, n); }
    void session_ended(std::string_view d, std::uint64_t n) override { to.session_ended(d, n); }
    void desired_delivered(std::string_view k, std::int64_t v, device::desired_via via) override { to.desired_delivered(k, v, via); }
    void desired_applied_via(std::string_view k, std::int64_t v, device::desired_via via, int st) override {
      to.desired_applied_via(k, v, via, st);
    }
    void reported_accepted(std::string_view k, std::size_t s, std::uint64_t n, std::uint64_t w, std::int64_t v) override {
      to.reported_accepted(k, s, n, w, v);
    }
  };
  // The device coroutine of such a device: both clients, until both have ended. Captureless and
  // taking everything by value (the coroutine outlives this scope).
  // Both clients wait for the device's place on the ramp in their runners (start_at).
  auto run_twice = []<class Run>(Run first, std::size_t i, fleet_observer& o, steady::time_point until,
                                 std::shared_ptr<std::atomic<bool>> halt,
                                 asio::awaitable<void> (*run_device)(Run, device::device_observer&, steady::time_point,
                                                                    std::shared_ptr<const std::atomic<bool>>)) -> asio::awaitable<void> {
    auto shared = std::make_shared<shared_id_observer>(o);
    auto second = first;
    second.seed = device::mix_seed(first.seed, 0xC18);  // its own back-off jitter
    auto ex = co_await asio::this_coro::executor;
    auto done = std::make_shared<bool>(false);
    auto wake = std::make_shared<asio::steady_timer>(ex, steady::time_point::max());
    auto client = [](Run r, std::shared_ptr<shared_id_observer> obs, steady::time_point u, std::shared_ptr<std::atomic<bool>> h,
                     decltype(run_device) run) -> asio::awaitable<void> { co_await run(std::move(r), *obs, u, h); };
    asio::co_spawn(ex, client(std::move(second), shared, until, halt, run_device), [done, wake](std::exception_ptr) {
      *done = true;
      wake->cancel();
    });
    co_await run_device(std::move(first), *shared, until, halt);
    while (!*done) (void)co_await wake->async_wait(asio::as_tuple(asio::use_awaitable));
    o.finished(i);
  };
  // Each thread's share of ramp.max_connecting (0: no limit) and the wake grid, set before any
  // of its devices runs (posted first: each context runs its handlers in order).
  const auto per_thread = (s.ramp.max_connecting + rt.threads() - 1) / rt.threads();
  for (std::size_t t = 0; t < rt.threads(); ++t) {
    asio::post(rt.context(t), [per_thread, grid = options.wake_grid] {
      device::limit_connecting_on_this_thread(per_thread);
      device::wake_on_grid_on_this_thread(grid);
    });
  }
  // Starts device i on its thread, at its place on the ramp. The device waits for that place
  // itself (start_at): a coroutine of ours around it would keep a frame of about 1 KiB per
  // device for the whole run.
  // A device of its own starts without a coroutine of ours (start_*_device): an idle one then
  // holds no coroutine frame at all while nothing is due (bench/README.md, memory).
  auto spawn = [&]<class Run>(Run run, std::size_t i,
                              asio::awaitable<void> (*run_device)(Run, device::device_observer&, steady::time_point,
                                                                  std::shared_ptr<const std::atomic<bool>>),
                              void (*start_device)(asio::any_io_executor, Run, device::device_observer&, steady::time_point,
                                                   std::shared_ptr<const std::atomic<bool>>, std::function<void()>)) {
    target.configure(run, loopback_source(target.device_endpoint, i));
    run.start_at = start + std::chrono::duration_cast<steady::duration>(ramp[i]);
    if (fleet[i].profile->quirks.duplicate_connection) {  // C1.8: two clients of this id (run_twice above)
      asio::co_spawn(rt.executor_for(i), run_twice(std::move(run), i, observer, devices_until, devices_stop, run_device),
                     [&finished](std::exception_ptr) { ++finished; });
      return;
    }
    start_device(rt.executor_for(i), std::move(run), observer, devices_until, devices_stop, [&finished, &observer, i] {
      observer.finished(i);
      ++finished;
    });
  };
  auto start_one = [&](std::size_t i) {
    if (fleet[i].via == scenario::dialect::azure) {
      device::azure_device_run run;
      run.device_profile = fleet[i].profile;
      run.index = fleet[i].entry_index;
      run.slot = i;
      run.seed = fleet[i].seed;
      run.session.device_id = fleet[i].id;
      spawn(std::move(run), i, &device::run_azure_device, &device::start_azure_device);
    } else {
      device::aws_device_run run;
      run.device_profile = fleet[i].profile;
      run.index = fleet[i].entry_index;
      run.slot = i;
      run.seed = fleet[i].seed;
      run.session.thing_name = fleet[i].id;
      run.session.client_id = fleet[i].id;
      run.shadows = fleet[i].shadows;
      spawn(std::move(run), i, &device::run_aws_device, &device::start_aws_device);
    }
  };
  // Each device's run (its id, key, transport) is built on the device's own thread, not here:
  // what a device keeps then comes from its thread's malloc arena. Built here, the small strings
  // it keeps were scattered between the large posted handlers freed later, and held ~13 MB of
  // this thread's arena for 19,500 devices, 0.7 KiB a device (bench/README.md, memory).
  for (std::size_t i = 0; i < fleet.size(); ++i) {
    asio::post(rt.executor_for(i), [&start_one, i] { start_one(i); });
  }

  backend_context ctx{svc, target.embedded.get(), s, fleet, online, in_service, stats, tracker, checker, start, end, stop,
                      device::rng(device::mix_seed(s.seed, 7 + options.shard_index)), static_cast<double>(shards)};
  for (auto kind : {load_kind::desired_writes, load_kind::method_calls, load_kind::twin_reads}) {
    asio::co_spawn(hub_io, drive(ctx, kind), asio::detached);
  }
  if (!s.faults.empty()) asio::co_spawn(hub_io, apply_faults(ctx, out), asio::detached);
  std::thread hub_thread([&] {
    auto guard = asio::make_work_guard(hub_io);
    hub_io.run();
  });
  rt.start();

  // This thread samples the metrics each second — the timeline, the live line — while the
  // run goes: through the phases, then the settle time (the load has stopped; the run waits
  // for the last writes to converge, bounded), unless stopped.
  detail::timeline_sampler sampler;
  std::vector<timeline_point> timeline;
  const auto every = options.progress_every.count() > 0 ? std::chrono::duration_cast<steady::duration>(options.progress_every)
                                                        : steady::duration(std::chrono::seconds(1));
  auto next_sample = start + every;
  auto last_sample = start;
  const auto settle_until = end + std::chrono::duration_cast<steady::duration>(options.settle);
  bool settling_said = false;
  // Once the fleet has connected (a second after the last device did, or 5 s after the ramp's
  // end), the memory that connecting used for a moment (coroutine frames, requests in flight)
  // goes back to the system: glibc keeps the pages it freed, so an idle fleet would otherwise
  // hold its connect-time peak (bench/README.md, memory). Once, on this thread; it holds each
  // heap's lock for a few milliseconds.
  const auto last_start = ramp.empty() ? scenario::duration{0} : *std::max_element(ramp.begin(), ramp.end());
  auto trim_at = start + std::chrono::duration_cast<steady::duration>(last_start) + std::chrono::seconds(5);
  bool trimmed = false;
  bool all_connected = false;
  auto sample = [&](steady::time_point now) {
    const double t_s = std::chrono::duration<double>(now - start).count();
    stats.elapsed(t_s);
    auto snap = registry.snapshot();
    auto point = sampler.take(snap, t_s);
    if (options.progress_every.count() > 0) {
      const auto* ph = scenario::phase_at(s, std::chrono::duration_cast<scenario::duration>(now - start));
      const auto* lag = snap.find("twinfleet_engine_lag_seconds");
      double lag_p99 = 0;
      if (lag != nullptr && !lag->series.empty()) lag_p99 = static_cast<double>(lag->series[0].hist.value_at_quantile(0.99)) / 1e6;
      (options.progress ? options.progress : out)(format_progress_line(point, ph != nullptr ? std::string_view(ph->name) : "settle",
                                                                fleet.size(), std::chrono::duration<double>(now - last_sample).count(),
                                                                tracker.writes(), tracker.converged(), lag_p99));
    }
    last_sample = now;
    if (options.on_sample) options.on_sample(point, tracker.writes(), tracker.converged());
    timeline.push_back(std::move(point));
  };
  // The run has settled when every write has converged and no desired state has reached a device
  // for this long. Converged is not yet settled: a delayed AWS delta whose write a later one
  // undid (with no delta of its own, reported already equal to desired) still flips the
  // device's reported value when it arrives, and the delta that sets it right follows within a
  // delivery delay or two. Ending at convergence left such a device diverged at the final audit
  // (version-conflict race, C2.7: twice in ~50 CI runs; stop 14).
  constexpr auto settle_quiet = std::chrono::seconds(1);
  while (!stop->load()) {
    const auto now = steady::now();
    if (now >= end) {
      const bool quiet = now - observer.last_desired_delivery() >= settle_quiet;
      if (now >= settle_until || (tracker.pending() == 0 && quiet)) break;
      if (!settling_said && tracker.pending() > 0) {
        settling_said = true;
        out("settle: the load has ended; waiting up to " + std::to_string(std::chrono::duration_cast<std::chrono::seconds>(options.settle).count()) +
            " s for " + std::to_string(tracker.pending()) + " desired writes to converge");
      }
    }
    if (!all_connected && observer.connected_now() >= fleet.size()) {
      all_connected = true;
      trim_at = std::min(trim_at, now + std::chrono::seconds(1));
    }
    if (!trimmed && now >= trim_at) {
      trimmed = true;
      (void)::malloc_trim(0);
    }
    if (now >= next_sample) {
      sample(now);
      next_sample += every;
      if (next_sample < now) next_sample = now + every;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const bool interrupted = stop->load();
  stop->store(true);
  const auto hurried = [&] { return options.hurry && options.hurry->load(); };
  // Back-end requests still on their way finish first (bounded), while the devices can still
  // answer them: a method call waits for its device's response, which a stopped device never
  // sends (the drain used to come after the devices stopped, and waited its whole bound
  // whenever a method call was in flight at Ctrl-C).
  const auto drain = steady::now() + std::chrono::seconds(5);
  while (svc.in_flight.load() > 0 && steady::now() < drain && !hurried()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  devices_stop->store(true);
  for (std::size_t t = 0; t < rt.threads(); ++t) asio::post(rt.context(t), [] { device::wake_devices_on_this_thread(); });
  const auto grace = steady::now() + std::chrono::seconds(15);
  while (finished.load() < fleet.size() && steady::now() < grace && !hurried()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  rt.stop();
  const auto finished_at = steady::now();
  // The final audit: every twin and shadow read back through the service, as the checker's
  // last evidence (bounded; skipped after a second Ctrl-C).
  auto audited = std::make_shared<std::atomic<std::size_t>>(0);
  if (!hurried() && options.audit) {
    std::atomic<bool> audit_done{false};
    const auto audit_deadline = steady::now() + std::chrono::seconds(30);
    asio::co_spawn(hub_io, audit_all(ctx, 16, audit_deadline, audited), [&audit_done](std::exception_ptr) { audit_done = true; });
    while (!audit_done.load() && !hurried() && steady::now() < audit_deadline + std::chrono::seconds(5)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  const auto verdict = checker.finish(steady::now());
  // The anomalies judged at the end reach the metrics too (those found during the run already did).
  for (auto kind : {check::anomaly_kind::lost_update, check::anomaly_kind::unreconciled_after_reconnect, check::anomaly_kind::divergence}) {
    for (std::uint64_t n = 0; n < verdict.count(kind); ++n) {
      const auto& examples = verdict.examples_of(kind);
      const auto& key = examples.empty() ? std::string() : examples[std::min<std::size_t>(n, examples.size() - 1)].device;
      if (auto it = index.find(key); it != index.end()) stats.anomaly(it->second, check::to_string(kind));
    }
  }
  // The shadow-documents observer leaves before the hub closes (its handlers refer to this
  // scope): DISCONNECT, handlers cleared, its counts read on hub_io (bounded; skipped when hurried).
  json::object observer_summary;
  if (target.aws && aws_fleet) {
    observer_summary["convergence_from"] = observer.aws_by_service.load() ? "observer" : "devices";
  }
  if (!shadow_observers.empty()) {
    struct stop_state {
      std::uint64_t documents = 0;
      std::uint64_t malformed = 0;
      std::optional<std::uint64_t> hub_updates;
    };
    auto stopped = std::make_shared<stop_state>();
    auto count = std::make_shared<std::atomic<std::size_t>>(0);
    for (auto& ob : shadow_observers) {
      asio::co_spawn(
          hub_io,
          [](backends::aws_shadow_observer& one, hub::local_hub* hub, std::shared_ptr<stop_state> st) -> asio::awaitable<void> {
            co_await one.async_stop();
            one.set_handler({});
            one.set_closed_handler({});
            st->documents += one.stats().documents;
            st->malformed += one.stats().malformed;
            // Every accepted shadow update publishes one documents message: what the observer missed.
            if (hub != nullptr) st->hub_updates = hub->core().counters().aws_updates;
          }(*ob, target.embedded.get(), stopped),
          [count](std::exception_ptr) { ++*count; });
    }
    const auto bound = steady::now() + std::chrono::seconds(7);
    while (count->load() < shadow_observers.size() && !hurried() && steady::now() < bound) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (count->load() == shadow_observers.size()) {
      // Each accepted update (a device's, a back-end write) makes one documents message.
      const auto aws = detail::totals_by_operation(registry.snapshot(), "aws");
      const auto ok_of = [&](std::string_view op) {
        const auto it = aws.find(std::string(op));
        return it == aws.end() ? std::uint64_t{0} : it->second.ok;
      };
      const auto expected = ok_of("reported_patch") + ok_of("shadow_update");
      observer_summary["connections"] = shadow_observers.size();
      observer_summary["documents"] = stopped->documents;
      observer_summary["malformed"] = stopped->malformed;
      observer_summary["documents_expected"] = expected;
      observer_summary["documents_missed"] = expected > stopped->documents ? expected - stopped->documents : 0;
      if (stopped->hub_updates) observer_summary["hub_updates"] = *stopped->hub_updates;
      if (expected > stopped->documents && observer.aws_by_service.load()) {
        out("note: the AWS observer saw " + std::to_string(stopped->documents) + " of the " + std::to_string(expected) +
            " shadow documents the accepted updates made; AWS IoT delivers at most 100 messages a second to a connection: "
            "aws_observer.shadows_per_connection shares the shadows out over more (docs/SCENARIOS.md)");
      }
    }
  }
  asio::post(hub_io, [&] { target.close([&] { hub_io.stop(); }); });
  hub_thread.join();


  run_result r;
  r.scenario = s.name;
  r.seed = s.seed;
  r.target = scenario::target_name(s.target);
  r.started_at = started_at;
  r.duration_s = std::chrono::duration<double>(finished_at - start).count();
  r.interrupted = interrupted;
  r.devices_planned = fleet.size();
  r.devices_connected_peak = observer.peak();
  r.connect_failures = observer.failures();
  const auto snap = registry.snapshot();
  for (auto& [name, t] : detail::totals_by_operation(snap)) {
    if (t.ok + t.errors == 0) continue;
    operation_stats o;
    o.count = t.ok + t.errors;
    o.errors = t.errors;
    if (!t.latency.empty()) {
      o.p50_ms = static_cast<double>(t.latency.value_at_quantile(0.50)) / 1e6;
      o.p90_ms = static_cast<double>(t.latency.value_at_quantile(0.90)) / 1e6;
      o.p99_ms = static_cast<double>(t.latency.value_at_quantile(0.99)) / 1e6;
      o.max_ms = static_cast<double>(t.latency.max_ns()) / 1e6;
      o.mean_ms = t.latency.mean_ns() / 1e6;
    }
    o.latency = std::move(t.latency);
    r.operations.emplace(name, std::move(o));
  }
  for (std::size_t g = 0; g < stats.groups().size(); ++g) {
    const auto& group = stats.groups()[g];
    group_summary gs{group.backend, group.profile, group.planned, 0};
    for (std::size_t i = 0; i < fleet.size(); ++i) {
      if (stats.group_of(i) == g && online[i].load()) ++gs.connected_at_end;
    }
    r.by_group.push_back(gs);
  }
  r.desired_writes = verdict.desired_writes;
  r.converged = verdict.converged;
  r.convergence_ratio = verdict.convergence_ratio;
  r.deadline_s = verdict.deadline_s;
  r.converged_within_deadline = verdict.converged_within_deadline;
  r.stale_notifications_dropped = verdict.observed.stale_notifications_dropped;
  r.sync = verdict.to_json();
  r.sync["audited"] = audited->load();
  if (!observer_summary.empty()) r.sync["aws_observer"] = std::move(observer_summary);  // the observer's part (above)
  r.anomalies = verdict.total_anomalies();
  r.threads = rt.threads();
  r.wake_grid = options.wake_grid;
  if (const auto* lag = snap.find("twinfleet_engine_lag_seconds"); lag != nullptr && !lag->series.empty()) {
    r.lag_histogram = lag->series[0].hist;
  }
  r.lag = rt.lag();
  r.rss_bytes_peak = peak_rss_bytes();
  r.timeline = std::move(timeline);
  if (endpoint) r.metrics_endpoint = live;  // stopped when the last holder lets go
  return r;
}

std::string format_summary(const json::object& summary) {
  // Tolerant reads: a merged summary of worker processes has the same fields, and a field
  // missing from an older one prints as 0.
  auto at = [](const json::object& o, std::string_view key) -> const json::value* { return o.if_contains(key); };
  auto obj = [&](const json::object& o, std::string_view key) -> const json::object& {
    static const json::object none;
    const auto* v = at(o, key);
    return v != nullptr && v->is_object() ? v->as_object() : none;
  };
  auto num = [&](const json::object& o, std::string_view key) {
    const auto* v = at(o, key);
    return v != nullptr && v->is_number() ? v->to_number<double>() : 0.0;
  };
  auto count = [&](const json::object& o, std::string_view key) { return static_cast<unsigned long long>(num(o, key)); };
  auto text = [&](const json::object& o, std::string_view key) {
    const auto* v = at(o, key);
    return v != nullptr && v->is_string() ? std::string(v->as_string()) : std::string();
  };
  const auto* interrupted = at(summary, "interrupted");
  const auto& devices = obj(summary, "devices");
  std::string out;
  char line[256];
  std::snprintf(line, sizeof line, "\n%s (seed %llu): %.1f s%s, %llu devices planned, %llu connected at the peak, %llu connect failures\n",
                text(summary, "scenario").c_str(), count(summary, "seed"), num(summary, "duration_s"),
                interrupted != nullptr && interrupted->is_bool() && interrupted->as_bool() ? " (interrupted)" : "",
                count(devices, "planned"), count(devices, "connected_peak"), count(devices, "connect_failures"));
  out += line;
  std::snprintf(line, sizeof line, "  %-22s %10s %8s %10s %10s %10s %10s\n", "operation", "count", "errors", "p50 ms", "p90 ms",
                "p99 ms", "max ms");
  out += line;
  for (const auto& [name, o] : obj(summary, "operations")) {
    if (!o.is_object()) continue;
    const auto& l = obj(o.as_object(), "latency_ms");
    std::snprintf(line, sizeof line, "  %-22s %10llu %8llu %10.2f %10.2f %10.2f %10.2f\n", std::string(name).c_str(),
                  count(o.as_object(), "count"), count(o.as_object(), "errors"), num(l, "p50"), num(l, "p90"), num(l, "p99"),
                  num(l, "max"));
    out += line;
  }
  const auto& sync = obj(summary, "sync");
  std::snprintf(line, sizeof line,
                "  sync: %llu desired writes, %llu converged (ratio %.4f), %llu stale notifications dropped by devices\n",
                count(sync, "desired_writes"), count(sync, "converged"), num(sync, "convergence_ratio"),
                count(obj(sync, "observed"), "stale_notifications_dropped"));
  out += line;
  unsigned long long anomalies = 0;
  std::string found;
  for (const auto& [kind, n] : obj(sync, "anomalies")) {
    if (!n.is_number() || n.to_number<double>() <= 0) continue;
    anomalies += static_cast<unsigned long long>(n.to_number<double>());
    found += (found.empty() ? "" : ", ") + std::string(kind) + " " + json::serialize(n);
  }
  std::snprintf(line, sizeof line, "  converged within %.0f s: %llu; anomalies: %llu", num(sync, "deadline_s"),
                count(sync, "converged_within_deadline"), anomalies);
  out += line;
  if (!found.empty()) out += " (" + found + ")";
  out += '\n';
  for (const auto& [kind, list] : obj(sync, "examples")) {
    if (!list.is_array() || list.as_array().empty() || !list.as_array().front().is_object()) continue;
    const auto& first = list.as_array().front().as_object();
    out += "    e.g. " + std::string(kind) + ": " + text(first, "device") + ": " + text(first, "detail") + "\n";
  }
  const auto& engine = obj(summary, "engine");
  const auto& lag = obj(engine, "lag_ms");
  std::snprintf(line, sizeof line, "  engine: %llu threads, lag p50 %.2f ms p99 %.2f ms max %.2f ms, peak RSS %.1f MB",
                count(engine, "threads"), num(lag, "p50"), num(lag, "p99"), num(lag, "max"), num(engine, "rss_bytes_peak") / 1e6);
  out += line;
  if (const auto* grid = engine.if_contains("wake_grid_ms"); grid != nullptr && grid->is_number()) {
    const double ms = grid->to_number<double>();
    if (ms > 0) {
      std::snprintf(line, sizeof line, ", wake grid %g ms", ms);
      out += line;
    } else {
      out += ", exact wake times";
    }
  }
  out += "\n";
  return out;
}

json::object summary_json(const run_result& r) {
  auto ms = [](std::chrono::microseconds us) { return static_cast<double>(us.count()) / 1000.0; };
  auto hist_ms = [](const metrics::histogram& h, double q) { return static_cast<double>(h.value_at_quantile(q)) / 1e6; };
  json::object operations;
  for (const auto& [name, o] : r.operations) {
    operations[name] = json::object{
        {"count", o.count},
        {"errors", o.errors},
        {"latency_ms", json::object{{"p50", o.p50_ms}, {"p90", o.p90_ms}, {"p99", o.p99_ms}, {"max", o.max_ms}, {"mean", o.mean_ms}}},
        {"histogram", metrics::to_json(o.latency)}};
  }
  json::array by_group;
  for (const auto& g : r.by_group) {
    by_group.push_back(json::object{{"backend", g.backend},
                                    {"profile", g.profile},
                                    {"planned", g.planned},
                                    {"connected_at_end", g.connected_at_end}});
  }
  json::array timeline;
  for (const auto& p : r.timeline) {
    json::object ops;
    for (const auto& [name, i] : p.ops) {
      ops[name] = json::object{{"count", i.count}, {"errors", i.errors}, {"p50_ms", i.p50_ms}, {"p99_ms", i.p99_ms}};
    }
    timeline.push_back(json::object{{"t_s", std::round(p.t_s * 1000) / 1000}, {"connected", p.connected}, {"ops", std::move(ops)}});
  }
  const auto started = std::chrono::system_clock::to_time_t(r.started_at);
  std::tm utc{};
  gmtime_r(&started, &utc);
  char when[32];
  std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &utc);
  json::object lag_ms{{"p50", ms(r.lag.p50)}, {"p99", ms(r.lag.p99)}, {"max", ms(r.lag.max)}};
  if (!r.lag_histogram.empty()) {
    lag_ms = json::object{{"p50", hist_ms(r.lag_histogram, 0.5)},
                          {"p99", hist_ms(r.lag_histogram, 0.99)},
                          {"max", static_cast<double>(r.lag_histogram.max_ns()) / 1e6}};
  }
  return json::object{
      {"schema", 1},
      {"scenario", r.scenario},
      {"seed", r.seed},
      {"target", r.target},
      {"started_at", when},
      {"duration_s", r.duration_s},
      {"interrupted", r.interrupted},
      {"devices", json::object{{"planned", r.devices_planned},
                               {"connected_peak", r.devices_connected_peak},
                               {"connect_failures", r.connect_failures},
                               {"by_group", std::move(by_group)}}},
      {"operations", std::move(operations)},
      {"sync", r.sync},
      {"engine", json::object{{"threads", r.threads},
                              {"wake_grid_ms", std::chrono::duration<double, std::milli>(r.wake_grid).count()},
                              {"lag_ms", std::move(lag_ms)},
                              {"lag_histogram", metrics::to_json(r.lag_histogram)},
                              {"rss_bytes_peak", r.rss_bytes_peak},
                              {"workers", 1}}},
      {"timeline", std::move(timeline)}};
}

}  // namespace twinfleet::engine
