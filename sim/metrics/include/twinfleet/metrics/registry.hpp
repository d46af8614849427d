// The engine's metrics: named families of counters, gauges and latency histograms, labelled
// only by backend, profile, operation and outcome, recorded from any thread without locks and
// read as one merged snapshot.
//
// Public API (namespace twinfleet::metrics):
//   enum class metric_kind { counter, gauge, histogram };
//   struct label { std::string name, value; };  using label_set = std::vector<label>;
//   inline constexpr std::array<std::string_view, 4> label_names;   // backend profile operation outcome
//   class counter_handle   { void add(std::uint64_t n = 1) const; };
//   class gauge_handle     { void set(double v) const noexcept; void add(double d) const noexcept; };
//   class histogram_handle { void record(std::uint64_t ns) const;
//                            void record(std::chrono::nanoseconds d) const; };
//   struct series_snapshot { label_set labels; std::uint64_t total; double value; histogram hist; };
//   struct family_snapshot { std::string name, help; metric_kind kind; std::vector<series_snapshot> series;
//                            const series_snapshot* find(const label_set&) const; };
//   struct registry_snapshot { std::vector<family_snapshot> families;
//                              const family_snapshot* find(std::string_view name) const;
//                              const series_snapshot* find(std::string_view name, const label_set&) const; };
//   class registry {
//     counter_handle   counter(std::string_view name, label_set labels = {}, std::string_view help = {});
//     gauge_handle     gauge(std::string_view name, label_set labels = {}, std::string_view help = {});
//     histogram_handle histogram(std::string_view name, label_set labels = {}, std::string_view help = {});
//     registry_snapshot snapshot() const;
//   };
//
// Example:
//   metrics::registry reg;
//   auto connect = reg.histogram("twinfleet_operation_duration_seconds",
//                                {{"backend", "azure"}, {"profile", "lightbulb"}, {"operation", "connect"}});
//   connect.record(std::chrono::steady_clock::now() - intended_start);   // any thread
//   auto snap = reg.snapshot();                                          // any thread, any time
//
// Units: histograms record nanoseconds whatever the family's name says; the Prometheus
// exposition (prometheus.hpp) turns `_seconds` families into seconds.
//
// Thread-safety: registration and snapshot() take the registry's mutex and may run on any
// thread. add/set/record take no lock: each recording thread writes its own shard of the
// registry (found through a thread_local), with relaxed atomics, so a concurrent snapshot reads
// consistent-enough values (every count monotone between snapshots, histogram min/max inside
// the buckets seen; a histogram's sum may include a sample whose bucket is not yet visible).
// A thread's first record into a registry creates its shard, and its first record into each
// series allocates that series' storage (a counter: shared 4 KiB pages of slots; a histogram:
// 17 KiB); after that recording never allocates. The registry must outlive every handle's use
// and every recording thread's last record; a thread's samples stay in the registry after the
// thread exits.
#pragma once

#include <twinfleet/metrics/histogram.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace twinfleet::metrics {

enum class metric_kind { counter, gauge, histogram };

// The only label names a family may use (DESIGN.md: no per-device labels). A series' labels are
// kept in this order.
inline constexpr std::array<std::string_view, 4> label_names = {"backend", "profile", "operation", "outcome"};

struct label {
  std::string name;
  std::string value;
  friend auto operator<=>(const label&, const label&) = default;
};
using label_set = std::vector<label>;

namespace detail {
class registry_impl;
struct series;
}  // namespace detail

// A cheap, copyable reference to one counter series. A default-constructed handle ignores adds.
class counter_handle {
 public:
  counter_handle() = default;
  void add(std::uint64_t n = 1) const;

 private:
  friend class registry;
  counter_handle(detail::registry_impl* r, std::uint32_t id) : registry_(r), id_(id) {}
  detail::registry_impl* registry_ = nullptr;
  std::uint32_t id_ = 0;
};

// One gauge series: a single value shared by all threads (set is a relaxed store, add a
// compare-and-swap loop). A default-constructed handle ignores calls.
class gauge_handle {
 public:
  gauge_handle() = default;
  void set(double v) const noexcept;
  void add(double delta) const noexcept;

 private:
  friend class registry;
  explicit gauge_handle(detail::series* s) : series_(s) {}
  detail::series* series_ = nullptr;
};

// One histogram series, in nanoseconds. A default-constructed handle ignores records.
class histogram_handle {
 public:
  histogram_handle() = default;
  // Values above layout::highest_ns are clamped and counted as overflow, as histogram does.
  void record(std::uint64_t ns) const;
  // Negative durations count as 0 ns.
  void record(std::chrono::nanoseconds d) const {
    record(d.count() < 0 ? std::uint64_t{0} : static_cast<std::uint64_t>(d.count()));
  }

 private:
  friend class registry;
  histogram_handle(detail::registry_impl* r, std::uint32_t id) : registry_(r), id_(id) {}
  detail::registry_impl* registry_ = nullptr;
  std::uint32_t id_ = 0;
};

// One series' merged value: `total` for a counter, `value` for a gauge, `hist` for a histogram
// (the other members stay zero / empty).
struct series_snapshot {
  label_set labels;
  std::uint64_t total = 0;
  double value = 0;
  metrics::histogram hist;
};

struct family_snapshot {
  std::string name;
  std::string help;
  metric_kind kind = metric_kind::counter;
  std::vector<series_snapshot> series;  // ordered by labels

  // The series with exactly these labels (any order), or null.
  [[nodiscard]] const series_snapshot* find(const label_set& labels) const;
};

struct registry_snapshot {
  std::vector<family_snapshot> families;  // ordered by name

  [[nodiscard]] const family_snapshot* find(std::string_view name) const;
  [[nodiscard]] const series_snapshot* find(std::string_view name, const label_set& labels) const;
};

class registry {
 public:
  registry();
  ~registry();
  registry(const registry&) = delete;
  registry& operator=(const registry&) = delete;

  // The series `name` with `labels`, created on first use (then zero). The first registration
  // of a name fixes its kind and its label names; `help` is kept from the first non-empty one.
  // Calling again with the same name and labels returns a handle to the same series.
  // Throws std::invalid_argument (a bug at the caller, found at start-up) for a name that is
  // not a Prometheus metric name, a label name outside label_names, a repeated or empty label,
  // or a name registered before with another kind or other label names; std::length_error past
  // 16,384 series.
  counter_handle counter(std::string_view name, label_set labels = {}, std::string_view help = {});
  gauge_handle gauge(std::string_view name, label_set labels = {}, std::string_view help = {});
  histogram_handle histogram(std::string_view name, label_set labels = {}, std::string_view help = {});

  // Every series, merged over all threads' shards. Safe while other threads record.
  [[nodiscard]] registry_snapshot snapshot() const;

 private:
  std::unique_ptr<detail::registry_impl> impl_;
};

}  // namespace twinfleet::metrics
