// A log-linear latency histogram over nanoseconds (HdrHistogram's bucket scheme, one fixed
// layout), mergeable exactly within a process and, through its JSON form (json.hpp), across
// processes.
//
// Public API (namespace twinfleet::metrics):
//   namespace layout { unit_shift, sub_bucket_bits, highest_ns, bucket_count,
//                      index_of(ns), lower_ns(i), upper_ns(i), representative_ns(i) }
//   class histogram {
//     histogram();  void reserve();
//     void record(std::uint64_t ns);  void record(std::chrono::nanoseconds);
//     void record_n(std::uint64_t ns, std::uint64_t n);
//     void add(const histogram&);                               // exact merge
//     twin::result<void> subtract(const histogram& earlier);    // per-interval view
//     count() sum_ns() min_ns() max_ns() mean_ns() overflow_count() empty()
//     value_at_quantile(double q)  count_at_or_below(std::uint64_t ns)
//     cumulative_counts(std::span<const std::uint64_t> bounds_ns)
//     buckets()  (dense counts, empty span while nothing was recorded)
//     operator==
//   }
//   namespace error_code { malformed, incompatible_layout, not_an_earlier_snapshot }
//
// Precision: a value v ≥ 1024 ns falls in a bucket of width ≤ v/64; quantiles report the bucket's
// midpoint, so their relative error is ≤ 1/128 (0.79 %) from 1 µs to 1 h. Below 1024 ns buckets
// are 8 ns wide (absolute error ≤ 4 ns, 0.4 % at 1 µs). Values above one hour are clamped to one
// hour and counted in overflow_count(). count, sum, min and max are exact (of the clamped
// values); rank 1 and rank count() quantiles return the exact min and max.
//
// Thread-safety: a plain value type, as std::vector is. The registry (registry.hpp) is the
// lock-free, multi-thread recording front; it produces these.
#pragma once

#include <twinfleet/twin/error.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

namespace twinfleet::metrics {

template <class T>
using result = twin::result<T>;

// twin::error codes of this module.
namespace error_code {
inline constexpr int malformed = 1;                // JSON that is not a histogram document
inline constexpr int incompatible_layout = 2;      // a histogram written with other bucket parameters
inline constexpr int not_an_earlier_snapshot = 3;  // subtract(): `earlier` has counts this one lacks
}  // namespace error_code

// The one bucket layout. Every histogram, in every process and every JSON document of format
// version 1, uses these parameters; a decoder rejects a document that names others.
//
// With u = ns >> unit_shift (ns clamped to highest_ns):
//   u <  2^sub_bucket_bits:  index = u                          (linear region, 8 ns steps)
//   u >= 2^sub_bucket_bits:  s = floor(log2(u)) - (sub_bucket_bits - 1)
//                            index = s * 2^(sub_bucket_bits-1) + (u >> s)
// so each further power of two is split into 64 equal buckets.
namespace layout {
inline constexpr unsigned unit_shift = 3;        // 8 ns: the width of the narrowest bucket
inline constexpr unsigned sub_bucket_bits = 7;   // 128 linear buckets, then 64 per octave
inline constexpr std::uint64_t highest_ns = 3'600'000'000'000ULL;  // one hour

[[nodiscard]] constexpr std::size_t index_of(std::uint64_t ns) noexcept {
  if (ns > highest_ns) ns = highest_ns;
  const std::uint64_t u = ns >> unit_shift;
  if (u < (std::uint64_t{1} << sub_bucket_bits)) return static_cast<std::size_t>(u);
  const unsigned msb = 63U - static_cast<unsigned>(__builtin_clzll(u));
  const unsigned s = msb - (sub_bucket_bits - 1);
  return (static_cast<std::size_t>(s) << (sub_bucket_bits - 1)) + static_cast<std::size_t>(u >> s);
}

// Bucket i holds the values [lower_ns(i), upper_ns(i)).
[[nodiscard]] constexpr std::uint64_t lower_ns(std::size_t i) noexcept {
  constexpr std::size_t half = std::size_t{1} << (sub_bucket_bits - 1);
  if (i < 2 * half) return std::uint64_t{i} << unit_shift;
  const std::size_t s = i / half - 1;
  const std::uint64_t sub = i % half + half;
  return (sub << s) << unit_shift;
}
[[nodiscard]] constexpr std::uint64_t width_ns(std::size_t i) noexcept {
  constexpr std::size_t half = std::size_t{1} << (sub_bucket_bits - 1);
  const std::size_t s = i < 2 * half ? 0 : i / half - 1;
  return (std::uint64_t{1} << s) << unit_shift;
}
[[nodiscard]] constexpr std::uint64_t upper_ns(std::size_t i) noexcept { return lower_ns(i) + width_ns(i); }
// The value a quantile reports for a sample in bucket i: the bucket's midpoint.
[[nodiscard]] constexpr std::uint64_t representative_ns(std::size_t i) noexcept {
  return lower_ns(i) + width_ns(i) / 2;
}

// 2153 buckets (17 KiB of 64-bit counts).
inline constexpr std::size_t bucket_count = index_of(highest_ns) + 1;

static_assert(index_of(lower_ns(bucket_count - 1)) == bucket_count - 1);
static_assert(lower_ns(128) == 1024 && upper_ns(127) == 1024 && width_ns(128) == 16);
}  // namespace layout

class histogram {
 public:
  // An empty histogram owns no bucket storage until the first record (or reserve()).
  histogram() noexcept = default;
  histogram(const histogram& other);
  histogram& operator=(const histogram& other);
  histogram(histogram&&) noexcept = default;
  histogram& operator=(histogram&&) noexcept = default;
  ~histogram() = default;

  // Allocates the bucket storage now, so record() never allocates.
  void reserve();

  // O(1). Allocates once, on the first record into an empty histogram without storage.
  // Values above layout::highest_ns are recorded as highest_ns and counted as overflow.
  void record(std::uint64_t ns) { record_n(ns, 1); }
  // Negative durations count as 0 ns.
  void record(std::chrono::nanoseconds d) { record(d.count() < 0 ? 0 : static_cast<std::uint64_t>(d.count())); }
  void record_n(std::uint64_t ns, std::uint64_t n);

  // Exact merge: afterwards *this is what recording both sets of samples into one would give.
  void add(const histogram& other);

  // Removes `earlier`'s samples: for per-interval views, snapshot(t).subtract(snapshot(t-1)).
  // Counts, sum and overflow are exact; min and max become the tightest bounds the buckets and
  // this histogram's own min/max allow (exact when the interval's extremes are the overall ones,
  // else within one bucket). Error not_an_earlier_snapshot, leaving *this unchanged, when any
  // of earlier's bucket counts (or its sum or overflow) exceeds this one's.
  [[nodiscard]] result<void> subtract(const histogram& earlier);

  [[nodiscard]] std::uint64_t count() const noexcept { return count_; }
  [[nodiscard]] bool empty() const noexcept { return count_ == 0; }
  // Sum of the (clamped) samples; wraps past 2^64 ns (584 years of latency).
  [[nodiscard]] std::uint64_t sum_ns() const noexcept { return sum_; }
  // 0 when empty.
  [[nodiscard]] std::uint64_t min_ns() const noexcept { return count_ ? min_ : 0; }
  [[nodiscard]] std::uint64_t max_ns() const noexcept { return max_; }
  [[nodiscard]] double mean_ns() const noexcept {
    return count_ ? static_cast<double>(sum_) / static_cast<double>(count_) : 0.0;
  }
  // Samples above layout::highest_ns (recorded as highest_ns).
  [[nodiscard]] std::uint64_t overflow_count() const noexcept { return overflow_; }

  // The sample of rank ceil(q * count) (nearest rank, 1-based, q clamped to [0, 1]; q = 0 is
  // the minimum), as its bucket's midpoint clamped to [min, max]. 0 when empty.
  [[nodiscard]] std::uint64_t value_at_quantile(double q) const noexcept;

  // Samples known to be ≤ ns: all of them when ns ≥ max, none when ns < min, otherwise the
  // buckets that lie entirely at or below ns. It never over-counts; it may under-count the
  // samples in the one bucket that straddles ns (values within 1/64 below ns).
  [[nodiscard]] std::uint64_t count_at_or_below(std::uint64_t ns) const noexcept;

  // count_at_or_below for each bound, in one pass; `bounds_ns` must be ascending.
  [[nodiscard]] std::vector<std::uint64_t> cumulative_counts(std::span<const std::uint64_t> bounds_ns) const;

  // Dense per-bucket counts (layout::bucket_count entries), or an empty span when this
  // histogram never had storage (then every count is 0).
  [[nodiscard]] std::span<const std::uint64_t> buckets() const noexcept {
    return counts_ ? std::span<const std::uint64_t>(counts_.get(), layout::bucket_count)
                   : std::span<const std::uint64_t>();
  }

  // Same samples: count, sum, min, max, overflow and every bucket count (storage or not).
  friend bool operator==(const histogram& a, const histogram& b) noexcept;

  // For decoders and the registry's shard merge, which hold buckets and totals separately:
  // unchecked_add_bucket adds `n` to bucket `index` (< layout::bucket_count) without touching
  // the totals; unchecked_set_totals then sets them. The caller keeps them consistent (the
  // count equal to the bucket sum, min and max inside the first and last non-empty buckets).
  struct totals {
    std::uint64_t count = 0;
    std::uint64_t sum_ns = 0;
    std::uint64_t min_ns = 0;
    std::uint64_t max_ns = 0;
    std::uint64_t overflow = 0;
  };
  void unchecked_add_bucket(std::size_t index, std::uint64_t n);
  void unchecked_set_totals(const totals& t) noexcept;

 private:
  std::unique_ptr<std::uint64_t[]> counts_;  // layout::bucket_count entries, or null
  std::uint64_t count_ = 0;
  std::uint64_t sum_ = 0;
  std::uint64_t min_ = UINT64_MAX;
  std::uint64_t max_ = 0;
  std::uint64_t overflow_ = 0;
};

}  // namespace twinfleet::metrics
