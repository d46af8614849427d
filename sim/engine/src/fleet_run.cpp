// run_scenario(): the engine's threads, the embedded hub, the fleet and the back end, composed.
#include <twinfleet/engine/fleet_run.hpp>

#include "target.hpp"

#include <twinfleet/backends/service_aws.hpp>
#include <twinfleet/backends/service_azure.hpp>
#include <twinfleet/device/aws_runner.hpp>
#include <twinfleet/device/azure_runner.hpp>
#include <twinfleet/device/random.hpp>
#include <twinfleet/engine/file_limit.hpp>
#include <twinfleet/engine/pacing.hpp>
#include <twinfleet/hub/local_hub.hpp>
#include <twinfleet/scenario/plan.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <deque>
#include <fstream>
#include <mutex>
#include <thread>
#include <unordered_map>

#include <unistd.h>

namespace twinfleet::engine {

namespace {

namespace asio = boost::asio;
namespace json = boost::json;
using steady = std::chrono::steady_clock;
using ms_double = std::chrono::duration<double, std::milli>;

// ---- statistics: exact samples for now (the reporting layer brings mergeable histograms) ----

struct series {
  std::vector<double> ms;
  std::uint64_t count = 0;
  std::uint64_t errors = 0;
};

class run_stats {
 public:
  void record(std::string_view op, std::chrono::nanoseconds latency, bool ok) {
    std::lock_guard lock(m_);
    auto& s = ops_[std::string(op)];
    ++s.count;
    if (!ok) {
      ++s.errors;
      return;
    }
    s.ms.push_back(ms_double(latency).count());
  }
  std::uint64_t count(std::string_view op) {
    std::lock_guard lock(m_);
    auto it = ops_.find(std::string(op));
    return it == ops_.end() ? 0 : it->second.count;
  }
  std::optional<double> p99(std::string_view op) {
    std::lock_guard lock(m_);
    auto it = ops_.find(std::string(op));
    if (it == ops_.end() || it->second.ms.empty()) return std::nullopt;
    auto v = it->second.ms;
    const auto k = static_cast<std::size_t>(0.99 * static_cast<double>(v.size() - 1));
    std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
    return v[k];
  }
  std::map<std::string, operation_stats> summarize() {
    std::lock_guard lock(m_);
    std::map<std::string, operation_stats> out;
    for (auto& [name, s] : ops_) {
      operation_stats o;
      o.count = s.count;
      o.errors = s.errors;
      if (!s.ms.empty()) {
        std::sort(s.ms.begin(), s.ms.end());
        auto q = [&](double p) { return s.ms[static_cast<std::size_t>(p * static_cast<double>(s.ms.size() - 1))]; };
        o.p50_ms = q(0.50);
        o.p90_ms = q(0.90);
        o.p99_ms = q(0.99);
        o.max_ms = s.ms.back();
      }
      out[name] = o;
    }
    return out;
  }

 private:
  std::mutex m_;
  std::map<std::string, series> ops_;
};

// Desired writes and their fate: propagation (write accepted → device received) and
// convergence (→ the device's acknowledgement accepted by the hub). The device and the back end
// run on different threads, so a device may hear of a version before the back end has noted
// its write: such early events wait here for the write they belong to.
class convergence_tracker {
 public:
  // `at`: when the write was sent (the hub answers it after the notification left).
  void written(const std::string& device, std::int64_t version, steady::time_point at, run_stats& stats) {
    std::lock_guard lock(m_);
    ++writes_;
    auto& d = devices_[device];
    if (auto early = d.early_received.find(version); early != d.early_received.end()) {
      stats.record("desired_propagation", early->second - at, true);
      d.early_received.erase(early);
    } else {
      d.awaiting_receipt.emplace(version, at);
    }
    if (d.applied_version >= version) {
      stats.record("convergence", d.applied_at - at, true);
      ++converged_;
    } else {
      d.pending.push_back({version, at});
    }
  }
  void received(const std::string& device, std::int64_t version, steady::time_point at, run_stats& stats) {
    std::lock_guard lock(m_);
    auto& d = devices_[device];
    if (auto w = d.awaiting_receipt.find(version); w != d.awaiting_receipt.end()) {
      stats.record("desired_propagation", at - w->second, true);
      d.awaiting_receipt.erase(w);
    } else if (d.early_received.size() < 64) {
      d.early_received.emplace(version, at);
    }
  }
  void applied(const std::string& device, std::int64_t version, steady::time_point at, run_stats& stats) {
    std::lock_guard lock(m_);
    auto& d = devices_[device];
    if (version > d.applied_version) {
      d.applied_version = version;
      d.applied_at = at;
    }
    // A device that applied version v has converged past every write up to v (a GET after a
    // reconnect applies the latest state at once).
    while (!d.pending.empty() && d.pending.front().version <= version) {
      stats.record("convergence", at - d.pending.front().written, true);
      ++converged_;
      d.pending.pop_front();
    }
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

 private:
  struct write {
    std::int64_t version;
    steady::time_point written;
  };
  struct device_writes {
    std::deque<write> pending;  // not yet acknowledged, in version order
    std::map<std::int64_t, steady::time_point> awaiting_receipt;
    std::map<std::int64_t, steady::time_point> early_received;
    std::int64_t applied_version = 0;
    steady::time_point applied_at{};
  };
  std::mutex m_;
  std::unordered_map<std::string, device_writes> devices_;
  std::uint64_t writes_ = 0;
  std::uint64_t converged_ = 0;
};

class fleet_observer final : public device::device_observer {
 public:
  fleet_observer(run_stats& stats, convergence_tracker& tracker, const std::unordered_map<std::string, std::size_t>& index,
                 std::vector<std::atomic<bool>>& online)
      : stats_(stats), tracker_(tracker), index_(index), online_(online) {}

  void connected(std::string_view device, std::chrono::nanoseconds latency) override {
    stats_.record("connect", latency, true);
    set_online(device, true);
    const auto now = ++connected_;
    auto peak = peak_.load();
    while (now > peak && !peak_.compare_exchange_weak(peak, now)) {
    }
  }
  void connect_failed(std::string_view, boost::system::error_code) override {
    stats_.record("connect", {}, false);
    ++failures_;
  }
  void disconnected(std::string_view device, boost::system::error_code) override { set_online(device, false); }
  void twin_read(std::string_view, std::chrono::nanoseconds latency, bool ok) override {
    stats_.record("twin_get", latency, ok);
  }
  void reported(std::string_view, std::chrono::nanoseconds latency, bool ok) override {
    stats_.record("reported_patch", latency, ok);
  }
  void desired_received(std::string_view device, std::int64_t version) override {
    tracker_.received(std::string(device), version, steady::now(), stats_);
  }
  void desired_applied(std::string_view device, std::int64_t version, int) override {
    tracker_.applied(std::string(device), version, steady::now(), stats_);
  }
  void desired_stale(std::string_view, std::int64_t) override { ++stale_; }
  void telemetry_sent(std::string_view, std::chrono::nanoseconds latency, bool ok) override {
    stats_.record("telemetry", latency, ok);
  }
  // The device coroutine has ended (disconnected for good).
  void finished(std::string_view device) { (void)set_online(device, false); }

  std::uint64_t connected_now() const { return connected_.load(); }
  std::uint64_t peak() const { return peak_.load(); }
  std::uint64_t failures() const { return failures_.load(); }
  std::uint64_t stale() const { return stale_.load(); }

 private:
  bool set_online(std::string_view device, bool on) {
    auto it = index_.find(std::string(device));
    if (it == index_.end()) return false;
    const bool was = online_[it->second].exchange(on);
    if (was && !on) --connected_;
    return was != on;
  }
  run_stats& stats_;
  convergence_tracker& tracker_;
  const std::unordered_map<std::string, std::size_t>& index_;
  std::vector<std::atomic<bool>>& online_;
  std::atomic<std::uint64_t> connected_{0};
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

// The back end's REST clients (the same code that serves the azure and aws targets), on the
// hub's thread, and the requests they have in flight.
struct service_clients {
  backends::azure_service_client* azure;
  backends::aws_service_client* aws;
  std::atomic<int> in_flight{0};
};

// Everything the back-end driver and the progress line share; lives on the hub's thread.
struct backend_context {
  service_clients& svc;
  hub::local_hub* hub;  // the embedded hub; null for a separate `twinfleet hub`
  const scenario::scenario& s;
  const std::vector<scenario::device_spec>& devices;
  std::vector<std::atomic<bool>>& online;
  run_stats& stats;
  convergence_tracker& tracker;
  steady::time_point start;
  steady::time_point end;
  const std::shared_ptr<std::atomic<bool>>& stop;
  device::rng random;

  bool running() const { return steady::now() < end && !(stop && stop->load()); }

  // A connected device of the fleet that `accept` takes, tried a few times at random.
  const scenario::device_spec* pick(const std::function<bool(const scenario::device_spec&)>& accept) {
    for (int attempt = 0; attempt < 16; ++attempt) {
      const auto i = random.below(devices.size());
      if (online[i].load() && accept(devices[i])) return &devices[i];
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
asio::awaitable<void> write_op(backend_context& ctx, std::string id, scenario::dialect via, std::string shadow,
                               json::object desired, steady::time_point intended) {
  const auto sent = steady::now();
  if (via == scenario::dialect::azure) {
    auto r = co_await ctx.svc.azure->async_patch_twin_desired(id, desired);
    ctx.stats.record("desired_write", steady::now() - intended, r.has_value());
    if (r) ctx.tracker.written(id, r->desired_version(), sent, ctx.stats);
  } else {
    json::object document{{"state", json::object{{"desired", std::move(desired)}}}};
    auto r = co_await ctx.svc.aws->async_update_shadow(id, shadow, document);
    ctx.stats.record("shadow_update", steady::now() - intended, r.has_value());
    if (r) {
      if (const auto* v = r->if_contains("version"); v != nullptr && v->is_int64()) {
        ctx.tracker.written(device::shadow_key(id, shadow), v->get_int64(), sent, ctx.stats);
      }
    }
  }
  --ctx.svc.in_flight;
}

asio::awaitable<void> read_op(backend_context& ctx, std::string id, scenario::dialect via, std::string shadow,
                              steady::time_point intended) {
  if (via == scenario::dialect::azure) {
    auto r = co_await ctx.svc.azure->async_get_twin(id);
    ctx.stats.record("twin_read", steady::now() - intended, r.has_value());
  } else {
    auto r = co_await ctx.svc.aws->async_get_shadow(id, shadow);
    ctx.stats.record("shadow_read", steady::now() - intended, r.has_value() || r.error().not_found());
  }
  --ctx.svc.in_flight;
}

asio::awaitable<void> method_op(backend_context& ctx, std::string id, std::string name, steady::time_point intended) {
  const json::value payload = json::object{};
  auto r = co_await ctx.svc.azure->async_invoke_method(id, name, payload, std::chrono::seconds(10));
  ctx.stats.record("method", steady::now() - intended, r.has_value() && r->status < 400);
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
    paced_stream stream(load.per_second(eligible), phase_start);
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
        asio::co_spawn(co_await asio::this_coro::executor, read_op(ctx, d->id, d->via, shadow, intended), asio::detached);
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
                       write_op(ctx, d->id, d->via, shadow, std::move(desired), intended), asio::detached);
      } else {
        const auto* d = ctx.pick([&](const scenario::device_spec& candidate) {
          if (candidate.via != scenario::dialect::azure) return false;
          for (const auto& c : candidate.profile->commands) {
            if (has_any(load.names, c.name)) return true;
          }
          return false;
        });
        if (d == nullptr) continue;
        std::vector<const device::command*> cmds;
        for (const auto& c : d->profile->commands) {
          if (has_any(load.names, c.name)) cmds.push_back(&c);
        }
        const auto* cmd = cmds[ctx.random.below(cmds.size())];
        ++ctx.svc.in_flight;
        asio::co_spawn(co_await asio::this_coro::executor, method_op(ctx, d->id, cmd->name, intended), asio::detached);
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

asio::awaitable<void> progress(backend_context& ctx, fleet_observer& observer, runtime& rt,
                               std::chrono::milliseconds every, const std::function<void(std::string_view)>& out) {
  std::uint64_t last_reported = 0, last_telemetry = 0, last_writes = 0;
  auto last = steady::now();
  while (ctx.running()) {
    co_await sleep_until(std::min(ctx.end, steady::now() + every));
    const auto now = steady::now();
    const double secs = std::max(1e-3, std::chrono::duration<double>(now - last).count());
    last = now;
    const auto reported = ctx.stats.count("reported_patch");
    const auto telemetry = ctx.stats.count("telemetry");
    const auto writes = ctx.tracker.writes();
    const auto converged = ctx.tracker.converged();
    const auto p99 = ctx.stats.p99("reported_patch");
    char line[256];
    std::snprintf(line, sizeof line,
                  "[%5.0fs] connected %llu/%zu | reported %.0f/s p99 %.1fms | telemetry %.0f/s | desired %.0f/s, "
                  "converged %llu/%llu | lag p99 %.1fms",
                  std::chrono::duration<double>(now - ctx.start).count(),
                  static_cast<unsigned long long>(observer.connected_now()), ctx.devices.size(),
                  static_cast<double>(reported - last_reported) / secs, p99.value_or(0),
                  static_cast<double>(telemetry - last_telemetry) / secs, static_cast<double>(writes - last_writes) / secs,
                  static_cast<unsigned long long>(converged), static_cast<unsigned long long>(writes),
                  static_cast<double>(rt.lag().p99.count()) / 1000.0);
    out(line);
    last_reported = reported;
    last_telemetry = telemetry;
    last_writes = writes;
  }
}

}  // namespace

twin::result<run_result> run_scenario(const scenario::scenario& s, const run_options& options) {
  auto out = options.console ? options.console : [](std::string_view line) {
    std::fwrite(line.data(), 1, line.size(), stdout);
    std::fputc('\n', stdout);
    std::fflush(stdout);
  };
  const auto fleet = scenario::expand_fleet(s);  // every device, both dialects
  const bool embedded_hub = std::holds_alternative<scenario::local_target>(s.target);
  const auto plan = ensure_file_limit(fd_demand{.devices = fleet.size(), .embedded_hub = embedded_hub});
  if (!plan.fits) return twin::error{1, plan.explanation};

  // The target: the embedded hub on its own thread, a running `twinfleet hub`, or a cloud.
  asio::io_context hub_io(1);
  auto opened = detail::open_target(s, hub_io, out);
  if (!opened) return opened.error();
  auto& target = **opened;
  if (auto ready = detail::provision(target, s, fleet, hub_io, out); !ready) return ready.error();  // identities, keys, certificates
  service_clients svc{target.azure.get(), target.aws.get()};

  run_stats stats;
  convergence_tracker tracker;
  std::unordered_map<std::string, std::size_t> index;
  for (std::size_t i = 0; i < fleet.size(); ++i) index.emplace(fleet[i].id, i);
  std::vector<std::atomic<bool>> online(fleet.size());
  fleet_observer observer(stats, tracker, index, online);

  runtime rt({.threads = options.threads});
  const auto start = steady::now() + std::chrono::milliseconds(100);
  const auto total = options.duration.value_or(s.total_duration());
  const auto end = start + std::chrono::duration_cast<steady::duration>(total);
  const auto ramp = scenario::ramp_schedule(s.ramp, fleet.size(), s.seed);
  std::atomic<std::size_t> finished{0};
  auto stop = options.stop ? options.stop : std::make_shared<std::atomic<bool>>(false);
  for (std::size_t i = 0; i < fleet.size(); ++i) {
    const auto at = start + std::chrono::duration_cast<steady::duration>(ramp[i]);
    auto wait_for_start = [](steady::time_point begin, const std::shared_ptr<std::atomic<bool>>& halt) -> asio::awaitable<void> {
      asio::steady_timer t(co_await asio::this_coro::executor);
      while (steady::now() < begin && !halt->load()) {
        t.expires_at(std::min(begin, steady::now() + std::chrono::milliseconds(250)));
        (void)co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
      }
    };
    if (fleet[i].via == scenario::dialect::azure) {
      device::azure_device_run run;
      run.device_profile = fleet[i].profile;
      run.index = fleet[i].entry_index;
      run.seed = fleet[i].seed;
      run.session.device_id = fleet[i].id;
      target.configure(run);
      auto device = [wait_for_start](device::azure_device_run r, fleet_observer& o, steady::time_point begin,
                                     steady::time_point until, std::shared_ptr<std::atomic<bool>> halt) -> asio::awaitable<void> {
        co_await wait_for_start(begin, halt);
        const std::string id = r.session.device_id;
        if (!halt->load()) co_await device::run_azure_device(std::move(r), o, until, halt);
        o.finished(id);
      };
      asio::co_spawn(rt.executor_for(i), device(std::move(run), observer, at, end, stop),
                     [&finished](std::exception_ptr) { ++finished; });
    } else {
      device::aws_device_run run;
      run.device_profile = fleet[i].profile;
      run.index = fleet[i].entry_index;
      run.seed = fleet[i].seed;
      run.session.thing_name = fleet[i].id;
      run.session.client_id = fleet[i].id;
      run.shadows = fleet[i].shadows;
      target.configure(run);
      auto device = [wait_for_start](device::aws_device_run r, fleet_observer& o, steady::time_point begin,
                                     steady::time_point until, std::shared_ptr<std::atomic<bool>> halt) -> asio::awaitable<void> {
        co_await wait_for_start(begin, halt);
        const std::string id = r.session.thing_name;
        if (!halt->load()) co_await device::run_aws_device(std::move(r), o, until, halt);
        o.finished(id);
      };
      asio::co_spawn(rt.executor_for(i), device(std::move(run), observer, at, end, stop),
                     [&finished](std::exception_ptr) { ++finished; });
    }
  }

  backend_context ctx{svc, target.embedded.get(), s, fleet, online, stats, tracker, start, end, stop, device::rng(device::mix_seed(s.seed, 7))};
  for (auto kind : {load_kind::desired_writes, load_kind::method_calls, load_kind::twin_reads}) {
    asio::co_spawn(hub_io, drive(ctx, kind), asio::detached);
  }
  if (!s.faults.empty()) asio::co_spawn(hub_io, apply_faults(ctx, out), asio::detached);
  if (options.progress_every.count() > 0) {
    asio::co_spawn(hub_io, progress(ctx, observer, rt, options.progress_every, out), asio::detached);
  }
  std::thread hub_thread([&] {
    auto guard = asio::make_work_guard(hub_io);
    hub_io.run();
  });
  rt.start();
  // Wait for the end (or a stop), then for the devices to disconnect.
  while (steady::now() < end && !stop->load()) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  const bool interrupted = stop->load();
  stop->store(true);
  const auto grace = steady::now() + std::chrono::seconds(15);
  while (finished.load() < fleet.size() && steady::now() < grace) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  rt.stop();
  const auto finished_at = steady::now();
  // Back-end requests still on their way finish (bounded), then the clients go, on the hub's
  // thread, before the hub stops.
  const auto drain = steady::now() + std::chrono::seconds(5);
  while (svc.in_flight.load() > 0 && steady::now() < drain) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  asio::post(hub_io, [&] { target.close([&] { hub_io.stop(); }); });
  hub_thread.join();

  run_result r;
  r.scenario = s.name;
  r.seed = s.seed;
  r.duration_s = std::chrono::duration<double>(finished_at - start).count();
  r.interrupted = interrupted;
  r.devices_planned = fleet.size();
  r.devices_connected_peak = observer.peak();
  r.connect_failures = observer.failures();
  r.operations = stats.summarize();
  r.desired_writes = tracker.writes();
  r.converged = tracker.converged();
  r.convergence_ratio = r.desired_writes == 0 ? 1.0 : static_cast<double>(r.converged) / static_cast<double>(r.desired_writes);
  r.stale_notifications_dropped = observer.stale();
  r.threads = rt.threads();
  r.lag = rt.lag();
  r.rss_bytes_peak = peak_rss_bytes();
  return r;
}

std::string format_summary(const run_result& r) {
  std::string out;
  char line[256];
  std::snprintf(line, sizeof line, "\n%s (seed %llu): %.1f s%s, %llu devices planned, %llu connected at the peak, %llu connect failures\n",
                r.scenario.c_str(), static_cast<unsigned long long>(r.seed), r.duration_s, r.interrupted ? " (interrupted)" : "",
                static_cast<unsigned long long>(r.devices_planned), static_cast<unsigned long long>(r.devices_connected_peak),
                static_cast<unsigned long long>(r.connect_failures));
  out += line;
  std::snprintf(line, sizeof line, "  %-22s %10s %8s %10s %10s %10s %10s\n", "operation", "count", "errors", "p50 ms", "p90 ms",
                "p99 ms", "max ms");
  out += line;
  for (const auto& [name, o] : r.operations) {
    std::snprintf(line, sizeof line, "  %-22s %10llu %8llu %10.2f %10.2f %10.2f %10.2f\n", name.c_str(),
                  static_cast<unsigned long long>(o.count), static_cast<unsigned long long>(o.errors), o.p50_ms, o.p90_ms,
                  o.p99_ms, o.max_ms);
    out += line;
  }
  std::snprintf(line, sizeof line,
                "  sync: %llu desired writes, %llu converged (ratio %.4f), %llu stale notifications dropped by devices\n",
                static_cast<unsigned long long>(r.desired_writes), static_cast<unsigned long long>(r.converged),
                r.convergence_ratio, static_cast<unsigned long long>(r.stale_notifications_dropped));
  out += line;
  std::snprintf(line, sizeof line, "  engine: %zu threads, lag p50 %.2f ms p99 %.2f ms max %.2f ms, peak RSS %.1f MB\n",
                r.threads, static_cast<double>(r.lag.p50.count()) / 1000.0, static_cast<double>(r.lag.p99.count()) / 1000.0,
                static_cast<double>(r.lag.max.count()) / 1000.0, static_cast<double>(r.rss_bytes_peak) / 1e6);
  out += line;
  return out;
}

json::object summary_json(const run_result& r) {
  auto ms = [](std::chrono::microseconds us) { return static_cast<double>(us.count()) / 1000.0; };
  json::object operations;
  for (const auto& [name, o] : r.operations) {
    operations[name] = json::object{
        {"count", o.count},
        {"errors", o.errors},
        {"latency_ms", json::object{{"p50", o.p50_ms}, {"p90", o.p90_ms}, {"p99", o.p99_ms}, {"max", o.max_ms}}}};
  }
  return json::object{
      {"scenario", r.scenario},
      {"seed", r.seed},
      {"duration_s", r.duration_s},
      {"interrupted", r.interrupted},
      {"devices", json::object{{"planned", r.devices_planned},
                               {"connected_peak", r.devices_connected_peak},
                               {"connect_failures", r.connect_failures}}},
      {"operations", std::move(operations)},
      {"sync", json::object{{"desired_writes", r.desired_writes},
                            {"converged", r.converged},
                            {"convergence_ratio", r.convergence_ratio},
                            {"stale_notifications_dropped", r.stale_notifications_dropped}}},
      {"engine", json::object{{"threads", r.threads},
                              {"lag_ms", json::object{{"p50", ms(r.lag.p50)}, {"p99", ms(r.lag.p99)}, {"max", ms(r.lag.max)}}},
                              {"rss_bytes_peak", r.rss_bytes_peak}}}};
}

}  // namespace twinfleet::engine
