// The log-linear histogram: its error bound against exact sorted samples over 1 µs..1 h, exact
// merge and subtract, and the count-at-or-below used for deadlines and Prometheus buckets.
#include <twinfleet/metrics/histogram.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

using namespace twinfleet;
using metrics::histogram;
namespace layout = metrics::layout;

namespace {

// Samples spread evenly over the logarithm of [lo, hi] ns, with a fixed seed.
std::vector<std::uint64_t> log_uniform(std::uint64_t seed, std::size_t n, double lo, double hi) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> e(std::log(lo), std::log(hi));
  std::vector<std::uint64_t> out(n);
  for (auto& v : out) v = static_cast<std::uint64_t>(std::exp(e(rng)));
  return out;
}

histogram of(const std::vector<std::uint64_t>& samples) {
  histogram h;
  for (auto v : samples) h.record(v);
  return h;
}

// The nearest-rank quantile of sorted samples, as value_at_quantile defines it.
std::uint64_t exact_quantile(const std::vector<std::uint64_t>& sorted, double q) {
  auto rank = static_cast<std::size_t>(std::ceil(q * static_cast<double>(sorted.size())));
  rank = std::clamp<std::size_t>(rank, 1, sorted.size());
  return sorted[rank - 1];
}

double relative_error(std::uint64_t got, std::uint64_t exact) {
  return std::abs(static_cast<double>(got) - static_cast<double>(exact)) / static_cast<double>(exact);
}

constexpr std::uint64_t us = 1'000;
constexpr std::uint64_t hour = 3'600'000'000'000ULL;

}  // namespace

TEST_CASE("metrics: the layout pins its bucket indexes (the JSON format depends on them)", "[metrics][histogram]") {
  CHECK(layout::bucket_count == 2153);
  CHECK(layout::index_of(0) == 0);
  CHECK(layout::index_of(7) == 0);
  CHECK(layout::index_of(8) == 1);
  CHECK(layout::index_of(1000) == 125);
  CHECK(layout::index_of(1023) == 127);
  CHECK(layout::index_of(1024) == 128);
  CHECK(layout::index_of(1500) == 157);
  CHECK(layout::index_of(hour) == 2152);
  CHECK(layout::index_of(UINT64_MAX) == 2152);
  // Every bucket's bounds map back to it, and the buckets tile the range without gaps.
  for (std::size_t i = 0; i < layout::bucket_count; ++i) {
    INFO("bucket " << i);
    REQUIRE(layout::index_of(layout::lower_ns(i)) == i);
    REQUIRE(layout::index_of(layout::upper_ns(i) - 1) == std::min(i, layout::bucket_count - 1));
    if (i + 1 < layout::bucket_count) REQUIRE(layout::upper_ns(i) == layout::lower_ns(i + 1));
  }
}

TEST_CASE("metrics: every value from 1 us to 1 h is represented within 1 percent", "[metrics][histogram]") {
  double worst = 0;
  auto check = [&](std::uint64_t v) {
    const auto rep = layout::representative_ns(layout::index_of(v));
    worst = std::max(worst, relative_error(rep, v));
  };
  // Both edges of every bucket (where the error peaks), then random values.
  for (std::size_t i = layout::index_of(us); i < layout::bucket_count - 1; ++i) {
    check(std::max(us, layout::lower_ns(i)));
    check(layout::upper_ns(i) - 1);
  }
  for (auto v : log_uniform(7, 200'000, 1e3, 3.6e12)) check(v);
  CHECK(worst <= 1.0 / 128);
  // Below 1 µs the error is absolute: at most half the 8 ns bucket.
  for (std::uint64_t v = 0; v < us; ++v) {
    const auto rep = layout::representative_ns(layout::index_of(v));
    REQUIRE((rep > v ? rep - v : v - rep) <= 4);
  }
}

TEST_CASE("metrics: quantiles stay within 1 percent of the exact sorted samples over many magnitudes",
          "[metrics][histogram]") {
  struct range {
    double lo, hi;
  };
  const std::vector<range> ranges = {{1e3, 3.6e12}, {1e3, 1e4}, {5e4, 2e6}, {1e6, 1e9}, {2e9, 3.6e12}, {3e5, 3.1e5}};
  const std::vector<double> qs = {0, 0.001, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 0.9999, 1};
  std::uint64_t seed = 1;
  for (const auto& r : ranges) {
    for (std::size_t n : {1UL, 2UL, 7UL, 1000UL, 100'000UL}) {
      auto samples = log_uniform(seed++, n, r.lo, r.hi);
      const auto h = of(samples);
      std::sort(samples.begin(), samples.end());
      for (double q : qs) {
        INFO("range " << r.lo << ".." << r.hi << ", n " << n << ", q " << q);
        const auto exact = exact_quantile(samples, q);
        CHECK(relative_error(h.value_at_quantile(q), exact) <= 0.01);
      }
      // count, sum, min, max and mean are exact.
      CHECK(h.count() == n);
      CHECK(h.min_ns() == samples.front());
      CHECK(h.max_ns() == samples.back());
      std::uint64_t sum = 0;
      for (auto v : samples) sum += v;
      CHECK(h.sum_ns() == sum);
      CHECK(h.mean_ns() == Approx(static_cast<double>(sum) / static_cast<double>(n)));
      CHECK(h.value_at_quantile(0) == samples.front());
      CHECK(h.value_at_quantile(1) == samples.back());
    }
  }
}

TEST_CASE("metrics: an empty histogram answers zeros and owns no buckets", "[metrics][histogram]") {
  histogram h;
  CHECK(h.empty());
  CHECK(h.buckets().empty());
  CHECK(h.count() == 0);
  CHECK(h.min_ns() == 0);
  CHECK(h.max_ns() == 0);
  CHECK(h.mean_ns() == 0);
  CHECK(h.value_at_quantile(0.5) == 0);
  CHECK(h.count_at_or_below(hour) == 0);
  histogram reserved;
  reserved.reserve();
  CHECK(reserved.buckets().size() == layout::bucket_count);
  CHECK(reserved == h);
  // Recording after reserve() keeps the same storage: no allocation on the hot path.
  const auto* storage = reserved.buckets().data();
  for (std::uint64_t v = 1; v < hour; v *= 3) reserved.record(v);
  CHECK(reserved.buckets().data() == storage);
}

TEST_CASE("metrics: values above one hour clamp to one hour and count as overflow", "[metrics][histogram]") {
  histogram h;
  h.record(hour + 1);
  h.record(UINT64_MAX);
  h.record(std::chrono::nanoseconds(-5));  // a negative duration is 0
  h.record(std::chrono::hours(1));
  CHECK(h.count() == 4);
  CHECK(h.overflow_count() == 2);
  CHECK(h.max_ns() == hour);
  CHECK(h.min_ns() == 0);
  CHECK(h.sum_ns() == 3 * hour);
  CHECK(h.value_at_quantile(0.9) == hour);
}

TEST_CASE("metrics: merging histograms equals recording everything into one", "[metrics][histogram]") {
  const auto all = log_uniform(11, 30'000, 1e2, 5e12);  // also below 1 µs and above 1 h
  histogram whole = of(all);
  histogram parts[3];
  for (std::size_t i = 0; i < all.size(); ++i) parts[i % 3].record(all[i]);
  histogram merged;
  merged.add(histogram{});  // merging an empty one changes nothing
  for (auto& p : parts) merged.add(p);
  CHECK(merged == whole);
  CHECK(merged.overflow_count() == whole.overflow_count());
  CHECK(merged.overflow_count() > 0);
  for (double q : {0.1, 0.5, 0.99}) CHECK(merged.value_at_quantile(q) == whole.value_at_quantile(q));

  // record_n(v, n) is n records of v.
  histogram a, b;
  a.record_n(12'345, 5);
  for (int i = 0; i < 5; ++i) b.record(12'345);
  CHECK(a == b);
  histogram c = a;
  c.record(1);
  CHECK_FALSE(c == a);
}

TEST_CASE("metrics: subtracting an earlier snapshot leaves exactly the interval's samples", "[metrics][histogram]") {
  const auto before = log_uniform(21, 5'000, 1e3, 1e9);
  const auto during = log_uniform(22, 3'000, 5e4, 2e7);
  histogram running = of(before);
  const histogram earlier = running;
  for (auto v : during) running.record(v);
  const histogram interval_only = of(during);

  histogram interval = running;
  REQUIRE(interval.subtract(earlier).has_value());
  CHECK(interval.count() == interval_only.count());
  CHECK(interval.sum_ns() == interval_only.sum_ns());
  CHECK(interval.overflow_count() == 0);
  CHECK(std::equal(interval.buckets().begin(), interval.buckets().end(), interval_only.buckets().begin()));
  // min and max are bounds within the interval's extreme buckets.
  CHECK(interval.min_ns() <= interval_only.min_ns());
  CHECK(layout::index_of(interval.min_ns()) == layout::index_of(interval_only.min_ns()));
  CHECK(interval.max_ns() >= interval_only.max_ns());
  CHECK(layout::index_of(interval.max_ns()) == layout::index_of(interval_only.max_ns()));
  auto sorted = during;
  std::sort(sorted.begin(), sorted.end());
  for (double q : {0.01, 0.5, 0.9, 0.99})
    CHECK(relative_error(interval.value_at_quantile(q), exact_quantile(sorted, q)) <= 0.01);

  // Subtracting itself leaves an empty histogram; a later snapshot cannot be subtracted.
  histogram same = running;
  REQUIRE(same.subtract(running).has_value());
  CHECK(same == histogram{});
  histogram older = earlier;
  auto refused = older.subtract(running);
  REQUIRE_FALSE(refused.has_value());
  CHECK(refused.error().code == metrics::error_code::not_an_earlier_snapshot);
  CHECK(older == earlier);  // unchanged
  // Same count but different buckets is refused too, and names the bucket.
  histogram x, y;
  x.record(900'000);
  y.record(2'000);
  auto mismatch = x.subtract(y);
  REQUIRE_FALSE(mismatch.has_value());
  CHECK_THAT(mismatch.error().message, Catch::Contains("bucket"));
}

TEST_CASE("metrics: count_at_or_below never over-counts and is exact at bucket bounds and extremes",
          "[metrics][histogram]") {
  auto samples = log_uniform(31, 20'000, 1e3, 2e10);
  const auto h = of(samples);
  std::sort(samples.begin(), samples.end());
  auto exact_at_or_below = [&](std::uint64_t ns) {
    return static_cast<std::uint64_t>(std::upper_bound(samples.begin(), samples.end(), ns) - samples.begin());
  };
  for (std::uint64_t ns : {std::uint64_t{0}, std::uint64_t{999}, std::uint64_t{5'000'000}, std::uint64_t{123'456'789},
                           std::uint64_t{5'000'000'000}, samples.front(), samples.back(), samples.back() - 1, hour}) {
    INFO("ns " << ns);
    const auto got = h.count_at_or_below(ns);
    const auto exact = exact_at_or_below(ns);
    CHECK(got <= exact);
    // The shortfall is at most the samples in the bucket that straddles ns.
    const auto straddle_low = layout::lower_ns(layout::index_of(ns));
    CHECK(exact - got <= exact - exact_at_or_below(straddle_low == 0 ? 0 : straddle_low - 1));
  }
  CHECK(h.count_at_or_below(samples.back()) == h.count());
  CHECK(h.count_at_or_below(samples.front() - 1) == 0);
  for (std::size_t i : {200UL, 900UL, 1500UL}) {
    const auto bound = layout::upper_ns(i) - 1;
    CHECK(h.count_at_or_below(bound) == exact_at_or_below(bound));
  }
  // cumulative_counts is the same thing for many bounds at once, and it is cumulative.
  const std::vector<std::uint64_t> bounds = {500'000, 1'000'000, 10'000'000, 100'000'000, 1'000'000'000,
                                             5'000'000'000, 60'000'000'000};
  const auto cumulative = h.cumulative_counts(bounds);
  REQUIRE(cumulative.size() == bounds.size());
  for (std::size_t k = 0; k < bounds.size(); ++k) {
    CHECK(cumulative[k] == h.count_at_or_below(bounds[k]));
    if (k) CHECK(cumulative[k] >= cumulative[k - 1]);
  }
  CHECK(cumulative.back() == h.count());
}
