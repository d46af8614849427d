// sim/metrics: what recording costs on the engine's hot path (a plain histogram, a registry
// handle from one thread and from two at once), and what a snapshot of a run's ~200 series, its
// Prometheus text and a histogram's JSON round trip cost. Medians of 9 samples.
#include "bench_util.hpp"

#include <twinfleet/metrics/json.hpp>
#include <twinfleet/metrics/prometheus.hpp>
#include <twinfleet/metrics/registry.hpp>

#include <boost/json.hpp>

#include <cstdio>
#include <random>
#include <string>
#include <thread>
#include <vector>

using namespace twinfleet;
using bench::measure;

namespace {

// Latency-like values (1 µs .. 1 s, log-spread) so the bucket index varies as in a run.
std::vector<std::uint64_t> latencies(std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> e(std::log(1e3), std::log(1e9));
  std::vector<std::uint64_t> v(4096);
  for (auto& x : v) x = static_cast<std::uint64_t>(std::exp(e(rng)));
  return v;
}

// The engine's series: 13 operations × 2 back ends × 4 profiles histograms and operation
// counters, plus connects, devices and anomalies: 248 series.
std::vector<metrics::histogram_handle> register_run(metrics::registry& reg) {
  std::vector<metrics::histogram_handle> hs;
  const char* ops[] = {"connect",       "subscribe",     "twin_get",    "reported_patch",      "telemetry",
                       "desired_write", "shadow_update", "desired_propagation", "convergence", "method",
                       "twin_read",     "shadow_read",   "delta_delivery"};
  for (const char* backend : {"azure", "aws"})
    for (const char* profile : {"lightbulb", "thermostat", "raspberry-pi", "mxchip-devkit"}) {
      reg.gauge("twinfleet_devices_connected", {{"backend", backend}, {"profile", profile}}).set(100);
      reg.counter("twinfleet_connects_total", {{"backend", backend}, {"profile", profile}, {"outcome", "ok"}}).add(100);
      reg.counter("twinfleet_sync_anomalies_total", {{"backend", backend}, {"profile", profile}, {"outcome", "lost_update"}});
      for (const char* op : ops) {
        hs.push_back(reg.histogram("twinfleet_operation_duration_seconds",
                                   {{"backend", backend}, {"profile", profile}, {"operation", op}}));
        reg.counter("twinfleet_operations_total",
                    {{"backend", backend}, {"profile", profile}, {"operation", op}, {"outcome", "ok"}})
            .add(1);
      }
    }
  return hs;
}

}  // namespace

int main() {
  const auto values = latencies(1);
  std::size_t k = 0;
  auto next = [&] { return values[k++ & 4095]; };

  std::vector<bench::sample_set> rows;
  {
    metrics::histogram plain;
    plain.reserve();
    rows.push_back(measure("histogram::record (plain value)", [&] { plain.record(next()); }, 200'000));
    bench::keep(plain);
  }
  metrics::registry reg;
  auto handles = register_run(reg);
  auto one = handles[3];
  rows.push_back(measure("histogram_handle::record, 1 thread", [&] { one.record(next()); }, 200'000));
  auto counter = reg.counter("twinfleet_operations_total",
                             {{"backend", "azure"}, {"profile", "lightbulb"}, {"operation", "connect"}, {"outcome", "ok"}});
  rows.push_back(measure("counter_handle::add, 1 thread", [&] { counter.add(); }, 200'000));

  // Two threads recording into the same series at once: each measures its own cost.
  bench::sample_set two[2];
  {
    std::vector<std::thread> pool;
    for (int t = 0; t < 2; ++t)
      pool.emplace_back([&, t] {
        const auto mine = latencies(static_cast<std::uint64_t>(t) + 10);
        std::size_t j = 0;
        two[t] = measure("histogram_handle::record, 2 threads (thread " + std::to_string(t) + ")",
                         [&] { one.record(mine[j++ & 4095]); }, 200'000);
      });
    for (auto& t : pool) t.join();
  }
  rows.push_back(two[0]);
  rows.push_back(two[1]);
  bench::report("metrics: recording (ns per record)", rows);

  // Fill every histogram from two shards (the main thread and one helper), as a run would; the
  // two recording threads above left shards too.
  for (auto& h : handles)
    for (int i = 0; i < 1000; ++i) h.record(next());
  std::thread([&] {
    for (auto& h : handles)
      for (int i = 0; i < 1000; ++i) h.record(next());
  }).join();
  const auto snap = reg.snapshot();
  std::size_t series = 0;
  for (const auto& f : snap.families) series += f.series.size();

  std::vector<bench::sample_set> rows2;
  rows2.push_back(measure("registry::snapshot (" + std::to_string(series) + " series, 4 thread shards)",
                          [&] { bench::keep(reg.snapshot()); }, 20));
  rows2.push_back(measure("to_prometheus_text of that snapshot", [&] { bench::keep(metrics::to_prometheus_text(snap)); },
                          20));
  const auto& h = snap.find("twinfleet_operation_duration_seconds",
                            {{"backend", "azure"}, {"profile", "lightbulb"}, {"operation", "connect"}})
                      ->hist;
  rows2.push_back(measure("histogram JSON round trip (text, 3,000 samples)", [&] {
    auto back = metrics::from_json(boost::json::parse(boost::json::serialize(metrics::to_json(h))));
    bench::keep(back);
  }, 200));
  rows2.push_back(measure("histogram::add (merge)", [&] {
    metrics::histogram m = h;
    m.add(h);
    bench::keep(m);
  }, 2000));
  rows2.push_back(measure("histogram::value_at_quantile(0.99)", [&] { bench::keep(h.value_at_quantile(0.99)); }, 2000));
  bench::report("metrics: snapshots and encodings (ns per operation)", rows2);
  std::printf("  prometheus text: %zu bytes; JSON of one histogram: %zu bytes\n",
              metrics::to_prometheus_text(snap).size(), boost::json::serialize(metrics::to_json(h)).size());
  return 0;
}
