#include <twinfleet/metrics/histogram.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

namespace twinfleet::metrics {

static_assert(layout::bucket_count == 2153, "the JSON format version 1 fixes this layout");

histogram::histogram(const histogram& other)
    : count_(other.count_), sum_(other.sum_), min_(other.min_), max_(other.max_), overflow_(other.overflow_) {
  if (other.counts_) {
    counts_ = std::make_unique<std::uint64_t[]>(layout::bucket_count);
    std::memcpy(counts_.get(), other.counts_.get(), layout::bucket_count * sizeof(std::uint64_t));
  }
}

histogram& histogram::operator=(const histogram& other) {
  if (this != &other) {
    histogram copy(other);
    *this = std::move(copy);
  }
  return *this;
}

void histogram::reserve() {
  // make_unique<T[]> value-initialises: every count starts at zero.
  if (!counts_) counts_ = std::make_unique<std::uint64_t[]>(layout::bucket_count);
}

void histogram::record_n(std::uint64_t ns, std::uint64_t n) {
  if (n == 0) return;
  if (!counts_) reserve();
  if (ns > layout::highest_ns) {
    ns = layout::highest_ns;
    overflow_ += n;
  }
  counts_[layout::index_of(ns)] += n;
  count_ += n;
  sum_ += ns * n;
  min_ = std::min(min_, ns);
  max_ = std::max(max_, ns);
}

void histogram::add(const histogram& other) {
  if (other.count_ == 0) return;
  reserve();
  for (std::size_t i = 0; i < layout::bucket_count; ++i) counts_[i] += other.counts_[i];
  count_ += other.count_;
  sum_ += other.sum_;
  min_ = std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
  overflow_ += other.overflow_;
}

result<void> histogram::subtract(const histogram& earlier) {
  if (earlier.count_ == 0) return {};
  auto refuse = [](const std::string& what) {
    return twin::error{error_code::not_an_earlier_snapshot,
                       "histogram subtract: the earlier histogram has " + what + " than this one"};
  };
  if (earlier.count_ > count_) return refuse("more samples");
  if (earlier.sum_ > sum_) return refuse("a larger sum");
  if (earlier.overflow_ > overflow_) return refuse("more overflow samples");
  // count_ >= earlier.count_ > 0, so both have storage.
  for (std::size_t i = 0; i < layout::bucket_count; ++i)
    if (earlier.counts_[i] > counts_[i])
      return refuse("more samples in bucket " + std::to_string(i) + " [" + std::to_string(layout::lower_ns(i)) +
                    ", " + std::to_string(layout::upper_ns(i)) + ") ns");

  std::size_t first = layout::bucket_count;
  std::size_t last = 0;
  for (std::size_t i = 0; i < layout::bucket_count; ++i) {
    counts_[i] -= earlier.counts_[i];
    if (counts_[i] != 0) {
      first = std::min(first, i);
      last = i;
    }
  }
  count_ -= earlier.count_;
  sum_ -= earlier.sum_;
  overflow_ -= earlier.overflow_;
  if (count_ == 0) {
    min_ = UINT64_MAX;
    max_ = 0;
    sum_ = 0;
    return {};
  }
  // The interval's samples lie in [lower(first), upper(last)) and within the overall [min, max].
  min_ = std::max(min_, layout::lower_ns(first));
  max_ = std::min(max_, layout::upper_ns(last) - 1);
  return {};
}

std::uint64_t histogram::value_at_quantile(double q) const noexcept {
  if (count_ == 0) return 0;
  if (!(q > 0)) return min_;  // also NaN
  if (q >= 1) return max_;
  auto rank = static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(count_)));
  rank = std::clamp<std::uint64_t>(rank, 1, count_);
  if (rank == 1) return min_;
  if (rank == count_) return max_;
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < layout::bucket_count; ++i) {
    seen += counts_[i];
    if (seen >= rank) return std::clamp(layout::representative_ns(i), min_, max_);
  }
  return max_;  // unreachable while the counts add up to count_
}

std::uint64_t histogram::count_at_or_below(std::uint64_t ns) const noexcept {
  if (count_ == 0 || ns < min_) return 0;
  if (ns >= max_) return count_;
  std::uint64_t total = 0;
  // Bucket i lies entirely at or below ns when upper_ns(i) - 1 <= ns.
  for (std::size_t i = 0; i < layout::bucket_count && layout::upper_ns(i) <= ns + 1; ++i) total += counts_[i];
  return total;
}

std::vector<std::uint64_t> histogram::cumulative_counts(std::span<const std::uint64_t> bounds_ns) const {
  std::vector<std::uint64_t> out;
  out.reserve(bounds_ns.size());
  std::uint64_t total = 0;
  std::size_t i = 0;
  for (const std::uint64_t bound : bounds_ns) {
    if (count_ == 0 || bound < min_) {
      out.push_back(0);
      continue;
    }
    if (bound >= max_) {
      out.push_back(count_);
      continue;
    }
    for (; i < layout::bucket_count && layout::upper_ns(i) <= bound + 1; ++i) total += counts_[i];
    out.push_back(total);
  }
  return out;
}

bool operator==(const histogram& a, const histogram& b) noexcept {
  if (a.count_ != b.count_ || a.sum_ != b.sum_ || a.overflow_ != b.overflow_) return false;
  if (a.count_ == 0) return true;
  if (a.min_ != b.min_ || a.max_ != b.max_) return false;
  return std::memcmp(a.counts_.get(), b.counts_.get(), layout::bucket_count * sizeof(std::uint64_t)) == 0;
}

void histogram::unchecked_add_bucket(std::size_t index, std::uint64_t n) {
  reserve();
  counts_[index] += n;
}

void histogram::unchecked_set_totals(const totals& t) noexcept {
  count_ = t.count;
  sum_ = t.sum_ns;
  overflow_ = t.overflow;
  min_ = t.count ? t.min_ns : UINT64_MAX;
  max_ = t.count ? t.max_ns : 0;
}

}  // namespace twinfleet::metrics
