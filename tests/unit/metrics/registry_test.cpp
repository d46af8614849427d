// The registry: registration rules, merged snapshots, exact sums from several recording threads
// and snapshots taken while threads record.
#include <twinfleet/metrics/json.hpp>
#include <twinfleet/metrics/registry.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <random>
#include <thread>
#include <vector>

using namespace twinfleet;
using metrics::label_set;

namespace {
const label_set azure_connect = {{"backend", "azure"}, {"profile", "lightbulb"}, {"operation", "connect"}};
constexpr auto duration_name = "twinfleet_operation_duration_seconds";
}  // namespace

TEST_CASE("metrics registry: series are found again by name and labels in any order", "[metrics][registry]") {
  metrics::registry reg;
  auto a = reg.counter("twinfleet_connects_total", {{"outcome", "ok"}, {"backend", "aws"}, {"profile", "lightbulb"}},
                       "Connection attempts");
  auto b = reg.counter("twinfleet_connects_total", {{"backend", "aws"}, {"profile", "lightbulb"}, {"outcome", "ok"}});
  auto err = reg.counter("twinfleet_connects_total", {{"backend", "aws"}, {"profile", "lightbulb"}, {"outcome", "error"}});
  a.add();
  b.add(4);
  err.add(2);
  auto g = reg.gauge("twinfleet_engine_threads");
  g.set(2);
  auto connected = reg.gauge("twinfleet_devices_connected", {{"backend", "aws"}, {"profile", "lightbulb"}});
  connected.add(10);
  connected.add(-3);
  auto h = reg.histogram(duration_name, azure_connect);
  h.record(1'500);
  h.record(std::chrono::milliseconds(20));
  h.record(std::chrono::nanoseconds(-1));

  const auto snap = reg.snapshot();
  REQUIRE(snap.families.size() == 4);
  // Families by name, series by labels (in label_names order).
  CHECK(snap.families[0].name == "twinfleet_connects_total");
  CHECK(snap.families[0].help == "Connection attempts");
  CHECK(snap.families[0].kind == metrics::metric_kind::counter);
  REQUIRE(snap.families[0].series.size() == 2);
  CHECK(snap.families[0].series[0].labels ==
        label_set{{"backend", "aws"}, {"profile", "lightbulb"}, {"outcome", "error"}});
  CHECK(snap.families[0].series[0].total == 2);
  CHECK(snap.families[0].series[1].total == 5);
  CHECK(snap.find("twinfleet_connects_total", {{"outcome", "ok"}, {"profile", "lightbulb"}, {"backend", "aws"}})->total ==
        5);
  CHECK(snap.find("twinfleet_engine_threads", {})->value == 2);
  CHECK(snap.find("twinfleet_devices_connected", {{"backend", "aws"}, {"profile", "lightbulb"}})->value == 7);
  const auto* d = snap.find(duration_name, azure_connect);
  REQUIRE(d != nullptr);
  CHECK(d->hist.count() == 3);
  CHECK(d->hist.min_ns() == 0);
  CHECK(d->hist.max_ns() == 20'000'000);
  CHECK(d->hist.sum_ns() == 20'001'500);
  CHECK(snap.find(duration_name, {{"backend", "aws"}}) == nullptr);
  CHECK(snap.find("twinfleet_nothing") == nullptr);

  // A registered series that never recorded is present and zero.
  reg.histogram(duration_name, {{"backend", "aws"}, {"profile", "lightbulb"}, {"operation", "connect"}});
  const auto later = reg.snapshot();
  const auto* idle = later.find(duration_name, {{"backend", "aws"}, {"profile", "lightbulb"}, {"operation", "connect"}});
  REQUIRE(idle != nullptr);
  CHECK(idle->hist.empty());

  // Default handles do nothing.
  metrics::counter_handle{}.add(3);
  metrics::gauge_handle{}.set(1);
  metrics::histogram_handle{}.record(5);
}

TEST_CASE("metrics registry: bad names and labels and conflicting registrations are refused", "[metrics][registry]") {
  metrics::registry reg;
  reg.counter("twinfleet_ops_total", {{"backend", "azure"}});
  CHECK_THROWS_WITH(reg.counter("twinfleet ops"), Catch::Contains("not a Prometheus metric name"));
  CHECK_THROWS_WITH(reg.counter("9lives"), Catch::Contains("not a Prometheus metric name"));
  CHECK_THROWS_WITH(reg.counter("twinfleet_x_total", {{"device", "bulb-1"}}),
                    Catch::Contains("label \"device\" is not one of backend, profile, operation, outcome"));
  CHECK_THROWS_WITH(reg.counter("twinfleet_x_total", {{"backend", "a"}, {"backend", "b"}}), Catch::Contains("twice"));
  CHECK_THROWS_WITH(reg.counter("twinfleet_x_total", {{"backend", ""}}), Catch::Contains("empty value"));
  CHECK_THROWS_WITH(reg.gauge("twinfleet_ops_total", {{"backend", "azure"}}), Catch::Contains("is a counter, not a gauge"));
  CHECK_THROWS_WITH(reg.counter("twinfleet_ops_total", {{"profile", "lightbulb"}}),
                    Catch::Contains("other label names"));
  CHECK_THROWS_AS(reg.histogram("twinfleet_ops_total"), std::invalid_argument);
}

TEST_CASE("metrics registry: concurrent recording from several threads sums exactly after join", "[metrics][registry]") {
  metrics::registry reg;
  auto h = reg.histogram(duration_name, azure_connect);
  auto c = reg.counter("twinfleet_operations_total", {{"backend", "azure"}, {"operation", "connect"}, {"outcome", "ok"}});
  auto g = reg.gauge("twinfleet_devices_connected", {{"backend", "azure"}});
  constexpr int threads = 4;
  constexpr int per_thread = 50'000;
  // Each thread's values from its own seed, so the expected histogram can be rebuilt here.
  auto values = [](int t) {
    std::mt19937_64 rng(static_cast<std::uint64_t>(t) + 100);
    std::vector<std::uint64_t> v(per_thread);
    for (auto& x : v) x = rng() % 5'000'000'000'000ULL;  // also past one hour: overflow
    return v;
  };
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&, t] {
      for (auto v : values(t)) {
        h.record(v);
        c.add(2);
        g.add(1);
      }
    });
  for (auto& t : pool) t.join();
  // The threads have exited; their samples stay.
  metrics::histogram expected;
  for (int t = 0; t < threads; ++t)
    for (auto v : values(t)) expected.record(v);
  const auto snap = reg.snapshot();
  const auto& got = snap.find(duration_name, azure_connect)->hist;
  CHECK(got == expected);
  CHECK(got.overflow_count() == expected.overflow_count());
  CHECK(snap.find("twinfleet_operations_total", {{"backend", "azure"}, {"operation", "connect"}, {"outcome", "ok"}})
            ->total == 2ULL * threads * per_thread);
  CHECK(snap.find("twinfleet_devices_connected", {{"backend", "azure"}})->value == threads * per_thread);
}

TEST_CASE("metrics registry: snapshots taken while threads record are consistent and monotone", "[metrics][registry]") {
  metrics::registry reg;
  auto h = reg.histogram(duration_name, azure_connect);
  auto c = reg.counter("twinfleet_operations_total", {{"backend", "azure"}, {"outcome", "ok"}});
  constexpr int threads = 2;
  constexpr int per_thread = 200'000;
  std::atomic<int> started{0};
  std::atomic<int> finished{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&, t] {
      std::mt19937_64 rng(static_cast<std::uint64_t>(t));
      started.fetch_add(1);
      for (int i = 0; i < per_thread; ++i) {
        h.record(1'000 + rng() % 10'000'000);
        c.add();
        // A new series registered mid-run, from a recording thread.
        if (i == per_thread / 2) reg.counter("twinfleet_late_total", {{"backend", t ? "aws" : "azure"}}).add();
      }
      finished.fetch_add(1);
    });

  std::uint64_t last_count = 0;
  std::uint64_t last_total = 0;
  std::uint64_t last_sum = 0;
  int snapshots = 0;
  bool consistent = true;
  bool monotone = true;
  while (started.load() < threads) std::this_thread::yield();
  // Snapshot until every recorder is done (they finish on their own: the loop is bounded).
  while (finished.load() < threads || snapshots == 0) {
    const auto snap = reg.snapshot();
    ++snapshots;
    const auto& hist = snap.find(duration_name, azure_connect)->hist;
    const auto total = snap.find("twinfleet_operations_total", {{"backend", "azure"}, {"outcome", "ok"}})->total;
    // A snapshot's histogram is a valid document: min/max inside the buckets, counts add up.
    consistent = consistent && metrics::from_json(metrics::to_json(hist)).has_value();
    monotone = monotone && hist.count() >= last_count && total >= last_total && hist.sum_ns() >= last_sum;
    last_count = hist.count();
    last_total = total;
    last_sum = hist.sum_ns();
  }
  for (auto& t : pool) t.join();
  CHECK(consistent);
  CHECK(monotone);
  INFO("snapshots taken while recording: " << snapshots);
  const auto final_snap = reg.snapshot();
  CHECK(final_snap.find(duration_name, azure_connect)->hist.count() == threads * per_thread);
  CHECK(final_snap.find("twinfleet_late_total", {{"backend", "aws"}})->total == 1);
  CHECK(final_snap.find("twinfleet_late_total", {{"backend", "azure"}})->total == 1);
}

TEST_CASE("metrics registry: separate registries keep separate values on the same thread", "[metrics][registry]") {
  for (int round = 0; round < 3; ++round) {
    metrics::registry a;
    metrics::registry b;
    a.counter("twinfleet_x_total").add(1);
    b.counter("twinfleet_x_total").add(10);
    a.counter("twinfleet_x_total").add(1);
    CHECK(a.snapshot().find("twinfleet_x_total", {})->total == 2);
    CHECK(b.snapshot().find("twinfleet_x_total", {})->total == 10);
  }
}
