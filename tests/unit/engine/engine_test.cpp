// The engine's building blocks: open-model pacing, token buckets, the open-file budget, and the
// threads with their lag probes.
#include <twinfleet/engine/file_limit.hpp>
#include <twinfleet/engine/pacing.hpp>
#include <twinfleet/engine/runtime.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <set>
#include <thread>

using namespace twinfleet;
using namespace std::chrono_literals;
using steady = engine::clock;

TEST_CASE("engine: an even paced stream plans from the rate alone", "[engine][pacing]") {
  const auto t0 = steady::time_point{} + 1h;
  engine::paced_stream s(100, t0);
  CHECK(s.next() == t0);
  CHECK(s.next() == t0 + 10ms);
  CHECK(s.next() == t0 + 20ms);
  // A rate change continues from the last intended time: no burst, no gap.
  s.set_rate(10);
  CHECK(s.next() == t0 + 120ms);
  s.set_rate(0);
  CHECK_FALSE(s.next().has_value());
}

TEST_CASE("engine: a Poisson stream has the right mean gap and repeats per seed", "[engine][pacing]") {
  const auto t0 = steady::time_point{};
  auto run = [&](std::uint64_t seed) {
    engine::paced_stream s(1000, t0, true, seed);
    std::vector<steady::time_point> times;
    for (int i = 0; i < 20000; ++i) times.push_back(*s.next());
    return times;
  };
  const auto a = run(7);
  CHECK(a == run(7));
  CHECK(a != run(8));
  const double mean_gap = std::chrono::duration<double>(a.back() - t0).count() / static_cast<double>(a.size());
  CHECK(mean_gap == Approx(0.001).epsilon(0.03));  // 20,000 gaps: the mean is within 3 %
  CHECK(std::is_sorted(a.begin(), a.end()));
}

TEST_CASE("engine: a token bucket spends its burst, then refills at its rate", "[engine][pacing]") {
  const auto t0 = steady::time_point{} + 1s;
  engine::token_bucket b(10, 3, t0);
  CHECK(b.try_take(t0));
  CHECK(b.try_take(t0));
  CHECK(b.try_take(t0));
  CHECK_FALSE(b.try_take(t0));
  CHECK(b.when_available(t0) == t0 + 100ms);
  CHECK_FALSE(b.try_take(t0 + 99ms));
  CHECK(b.try_take(t0 + 100ms));
  CHECK(b.tokens(t0 + 10s) == Approx(3));  // never more than the burst
  b.set_rate(0, 1, t0 + 10s);
  CHECK(b.try_take(t0 + 10s));
  CHECK(b.when_available(t0 + 10s) == steady::time_point::max());
}

TEST_CASE("engine: the open-file budget raises the soft limit or explains the ways out", "[engine][limits]") {
  engine::fd_demand small{.devices = 1000};
  auto plan = engine::plan_file_limit(small, 1024, 20000);
  CHECK(plan.fits);
  CHECK(plan.raise_to == 1080);

  engine::fd_demand fits{.devices = 100};
  plan = engine::plan_file_limit(fits, 1024, 20000);
  CHECK(plan.fits);
  CHECK(plan.raise_to == 0);

  // 12,000 devices with the hub embedded need 24,080 files: over the 20,000 hard limit.
  engine::fd_demand embedded{.devices = 12000, .embedded_hub = true};
  plan = engine::plan_file_limit(embedded, 1024, 20000);
  CHECK_FALSE(plan.fits);
  CHECK(plan.needed == 24080);
  CHECK(plan.devices_per_process == 9960);
  CHECK(plan.explanation.find("--workers 2") != std::string::npos);
  CHECK(plan.explanation.find("twinfleet hub") != std::string::npos);
  CHECK(plan.explanation.find("20000") != std::string::npos);

  engine::fd_demand big{.devices = 50000};
  plan = engine::plan_file_limit(big, 1024, 20000);
  CHECK_FALSE(plan.fits);
  CHECK(plan.devices_per_process == 19920);
  CHECK(plan.explanation.find("--workers 3") != std::string::npos);
  CHECK(plan.explanation.find("twinfleet hub") == std::string::npos);

  // The real process: a small demand fits and leaves the limit at least as high as needed.
  auto real = engine::ensure_file_limit(engine::fd_demand{.devices = 10});
  CHECK(real.fits);
  CHECK(real.soft >= real.needed);
}

TEST_CASE("engine: devices spread round-robin over the threads, and the lag probes report", "[engine][runtime]") {
  engine::runtime rt({.threads = 2, .probe_interval = 1ms});
  REQUIRE(rt.threads() == 2);
  std::mutex m;
  std::set<std::thread::id> seen_by_even, seen_by_odd;
  std::atomic<int> done{0};
  for (std::uint64_t i = 0; i < 1000; ++i) {
    boost::asio::post(rt.executor_for(i), [&, i] {
      std::lock_guard lock(m);
      (i % 2 == 0 ? seen_by_even : seen_by_odd).insert(std::this_thread::get_id());
      ++done;
    });
  }
  rt.start();
  for (int i = 0; i < 500 && done < 1000; ++i) std::this_thread::sleep_for(10ms);
  REQUIRE(done == 1000);
  // Let the probes take a few samples (a bounded wait on a condition, not a timing assertion).
  for (int i = 0; i < 500 && rt.lag().samples < 20; ++i) std::this_thread::sleep_for(5ms);
  rt.release_and_join();
  CHECK(seen_by_even.size() == 1);
  CHECK(seen_by_odd.size() == 1);
  CHECK(*seen_by_even.begin() != *seen_by_odd.begin());
  const auto lag = rt.lag();
  CHECK(lag.samples >= 20);
  CHECK(lag.p50 <= lag.p99);
  CHECK(lag.p99 <= lag.max);
}
