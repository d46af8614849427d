// Value generators and distributions: deterministic per seed, within their bounds.
#include <twinfleet/device/distribution.hpp>
#include <twinfleet/device/generator.hpp>
#include <twinfleet/device/random.hpp>

#include <catch2/catch.hpp>

#include <boost/json.hpp>

#include <cmath>
#include <set>

namespace dv = twinfleet::device;
namespace json = boost::json;
using namespace std::chrono_literals;

namespace {

std::vector<json::value> run(const dv::generator_spec& spec, std::uint64_t seed, int n, const json::object* desired = nullptr,
                             dv::duration step = 1s) {
  dv::value_generator g(spec, seed);
  std::vector<json::value> out;
  for (int i = 0; i < n; ++i) out.push_back(g.next(step * i, desired));
  return out;
}

double num(const json::value& v) { return v.is_double() ? v.as_double() : static_cast<double>(v.as_int64()); }

}  // namespace

TEST_CASE("the rng repeats per seed and differs across seeds", "[device][random]") {
  dv::rng a(7), b(7), c(8);
  for (int i = 0; i < 100; ++i) {
    const auto x = a.next();
    CHECK(x == b.next());
    CHECK(x != c.next());
  }
  // Pinned values: the sequence must not change between releases (seeds name runs).
  dv::rng pinned(42);
  const auto first = pinned.next();
  dv::rng again(42);
  CHECK(again.next() == first);
  CHECK(dv::mix_seed(1, 2) != dv::mix_seed(2, 1));
  CHECK(dv::hash_name("temperature") != dv::hash_name("humidity"));
}

TEST_CASE("rng samples stay in range and have the right means", "[device][random]") {
  dv::rng r(123);
  double sum_u = 0, sum_n = 0, sum_e = 0;
  constexpr int n = 20000;
  for (int i = 0; i < n; ++i) {
    const double u = r.uniform01();
    REQUIRE(u >= 0);
    REQUIRE(u < 1);
    sum_u += u;
    sum_n += r.normal(10, 2);
    const double e = r.exponential(3);
    REQUIRE(e >= 0);
    sum_e += e;
    REQUIRE(r.below(7) < 7);
  }
  CHECK(sum_u / n == Approx(0.5).margin(0.02));
  CHECK(sum_n / n == Approx(10).margin(0.1));
  CHECK(sum_e / n == Approx(3).margin(0.15));
}

TEST_CASE("duration distributions are deterministic and never negative", "[device][distribution]") {
  const auto uni = dv::duration_distribution::uniform(100ms, 2s);
  const auto nor = dv::duration_distribution::normal(50ms, 100ms);
  const auto exp = dv::duration_distribution::exponential(30s);
  for (std::uint64_t seed : {1u, 2u, 99u}) {
    dv::rng r1(seed), r2(seed);
    for (int i = 0; i < 1000; ++i) {
      const auto u = uni.sample(r1);
      CHECK(u == uni.sample(r2));
      CHECK(u >= 100ms);
      CHECK(u <= 2s);
      CHECK(nor.sample(r1) >= 0ns);
      (void)nor.sample(r2);
      CHECK(exp.sample(r1) >= 0ns);
      (void)exp.sample(r2);
    }
  }
  dv::rng r(5);
  CHECK(dv::duration_distribution::constant(250ms).sample(r) == 250ms);
  CHECK(uni.mean() == 1050ms);
  CHECK(dv::duration_distribution{}.is_zero());
}

TEST_CASE("reconnect back-off grows, caps and jitters within bounds", "[device][distribution]") {
  dv::backoff b;  // 1 s × 2^n up to 60 s, ±20 %
  dv::rng r(3);
  for (unsigned attempt = 0; attempt < 12; ++attempt) {
    const double base = std::min(60.0, std::pow(2.0, attempt));
    const double got = std::chrono::duration<double>(b.delay(attempt, r)).count();
    CHECK(got >= base * 0.8 - 1e-9);
    CHECK(got <= base * 1.2 + 1e-9);
  }
}

TEST_CASE("a bounded random walk stays in bounds and repeats per seed", "[device][generator]") {
  const dv::generator_spec spec = dv::walk_generator{20, 0.5, 15, 30, std::nullopt, 2};
  for (std::uint64_t seed = 1; seed <= 20; ++seed) {
    const auto a = run(spec, seed, 500);
    CHECK(a == run(spec, seed, 500));
    CHECK(num(a[0]) == 20);
    for (const auto& v : a) {
      REQUIRE(num(v) >= 15);
      REQUIRE(num(v) <= 30);
      // Two decimals.
      REQUIRE(std::abs(num(v) * 100 - std::round(num(v) * 100)) < 1e-6);
    }
  }
  CHECK(run(spec, 1, 50) != run(spec, 2, 50));
}

TEST_CASE("a walk toward a desired property approaches it", "[device][generator]") {
  const dv::generator_spec spec = dv::walk_generator{15, 0.2, 5, 35, std::string("target"), std::nullopt};
  json::object desired{{"target", 25}};
  const auto values = run(spec, 9, 200, &desired);
  // 10 degrees at 0.2 a step (noise at most 0.05) takes ~50 steps; after 100 it hovers there.
  for (std::size_t i = 100; i < values.size(); ++i) CHECK(num(values[i]) == Approx(25).margin(0.3));
}

TEST_CASE("sine, uniform, cycle, counter, constant and mirror", "[device][generator]") {
  SECTION("sine stays within mean ± amplitude without noise and follows its period") {
    const dv::generator_spec spec = dv::sine_generator{45, 10, 60s, 0, false, std::nullopt};
    const auto v = run(spec, 1, 61, nullptr, 1s);
    for (const auto& x : v) {
      REQUIRE(num(x) >= 35 - 1e-9);
      REQUIRE(num(x) <= 55 + 1e-9);
    }
    CHECK(num(v[0]) == Approx(45));
    CHECK(num(v[15]) == Approx(55));
    CHECK(num(v[45]) == Approx(35));
    CHECK(num(v[60]) == Approx(45).margin(1e-9));
  }
  SECTION("uniform stays in [min, max] and rounds to integers with 0 decimals") {
    const dv::generator_spec spec = dv::uniform_generator{-20, 20, 0};
    for (const auto& x : run(spec, 4, 1000)) {
      REQUIRE(x.is_int64());
      REQUIRE(x.as_int64() >= -20);
      REQUIRE(x.as_int64() <= 20);
    }
  }
  SECTION("cycle goes round in order, or picks from the list") {
    const dv::generator_spec spec = dv::cycle_generator{{"off", "heat", "cool"}, false};
    const auto v = run(spec, 1, 4);
    CHECK(v == std::vector<json::value>{"off", "heat", "cool", "off"});
    const dv::generator_spec random = dv::cycle_generator{{1, 2, 3}, true};
    std::set<std::int64_t> seen;
    for (const auto& x : run(random, 5, 100)) seen.insert(x.as_int64());
    CHECK(seen == std::set<std::int64_t>{1, 2, 3});
  }
  SECTION("counter counts and wraps") {
    CHECK(run(dv::counter_generator{1, 1, std::nullopt}, 0, 3) == std::vector<json::value>{1, 2, 3});
    CHECK(run(dv::counter_generator{0, 5, 10}, 0, 5) == std::vector<json::value>{0, 5, 10, 0, 5});
  }
  SECTION("constant and mirror") {
    CHECK(run(dv::constant_generator{"2.3.1"}, 0, 2) == std::vector<json::value>{"2.3.1", "2.3.1"});
    const dv::generator_spec mirror = dv::mirror_generator{"on", false};
    dv::value_generator g(mirror, 1);
    CHECK(g.next(0s, nullptr) == json::value(false));
    json::object desired{{"on", true}};
    CHECK(g.next(1s, &desired) == json::value(true));
  }
  CHECK(std::string(dv::generator_name(dv::generator_spec{dv::sine_generator{}})) == "sine");
}

TEST_CASE("a periodic action keeps its place: the next time counts from when it was due, not from when it ran") {
  using tp = std::chrono::steady_clock::time_point;
  const tp t0{};
  // On time, and late within the interval: the next one is one interval after the due time.
  CHECK(dv::next_period(t0, 50ms, t0) == t0 + 50ms);
  CHECK(dv::next_period(t0, 50ms, t0 + 10ms) == t0 + 50ms);
  CHECK(dv::next_period(t0, 50ms, t0 + 49ms) == t0 + 50ms);
  // Whole intervals missed are skipped, not made up, and the phase stays.
  CHECK(dv::next_period(t0, 50ms, t0 + 50ms) == t0 + 100ms);
  CHECK(dv::next_period(t0, 50ms, t0 + 130ms) == t0 + 150ms);
  CHECK(dv::next_period(t0 + 7ms, 50ms, t0 + 1000ms) == t0 + 1007ms);
  // A zero interval: due again at once.
  CHECK(dv::next_period(t0, 0ms, t0 + 5ms) == t0 + 5ms);
}

TEST_CASE("a device wakes on its thread's grid: the first step at or after its time, never before") {
  using namespace std::chrono_literals;
  using tp = std::chrono::steady_clock::time_point;
  const tp t0{};  // a multiple of every step
  const auto now = t0 + 10ms;
  // Between two grid points: the next one.
  CHECK(dv::on_grid(t0 + 10ms + 1us, now, 1ms) == t0 + 11ms);
  CHECK(dv::on_grid(t0 + 10ms + 999us, now, 1ms) == t0 + 11ms);
  CHECK(dv::on_grid(t0 + 23'400us, now, 1ms) == t0 + 24ms);
  CHECK(dv::on_grid(t0 + 23'400us, now, 5ms) == t0 + 25ms);
  // On a grid point: that one.
  CHECK(dv::on_grid(t0 + 12ms, now, 1ms) == t0 + 12ms);
  // Due already, or no grid: the time itself (a late device is not made later).
  CHECK(dv::on_grid(t0 + 9'500us, now, 1ms) == t0 + 9'500us);
  CHECK(dv::on_grid(now, now, 1ms) == now);
  CHECK(dv::on_grid(t0 + 23'400us, now, 0ms) == t0 + 23'400us);
  // Two devices due within one step wake together; the clock's own epoch is the grid's.
  const tp real = std::chrono::steady_clock::now();
  const auto a = dv::on_grid(real + 5ms + 100us, real, 1ms);
  const auto b = dv::on_grid(real + 5ms + 100us + 300us, real, 1ms);
  CHECK((a == b || b - a == 1ms));
  CHECK(a.time_since_epoch() % 1ms == std::chrono::steady_clock::duration::zero());
  CHECK(a >= real + 5ms + 100us);
  CHECK(a - (real + 5ms + 100us) < 1ms);
}

TEST_CASE("devices' first periodic actions are spread over the first interval, the same for a seed") {
  CHECK(dv::first_phase(42, 3000) == dv::first_phase(42, 3000));
  CHECK(dv::first_phase(42, 3000) != dv::first_phase(42, 3001));
  int per_tenth[10] = {};
  for (std::uint64_t device = 0; device < 2000; ++device) {
    const double f = dv::first_phase(dv::mix_seed(1, device), 3000);
    REQUIRE(f >= 0.0);
    REQUIRE(f < 1.0);
    ++per_tenth[static_cast<int>(f * 10)];
  }
  // 200 expected in each tenth; a schedule in step would put all 2,000 in one.
  for (int n : per_tenth) {
    CHECK(n > 140);
    CHECK(n < 260);
  }
}
