#include <twinfleet/metrics/registry.hpp>

#include <algorithm>
#include <atomic>
#include <deque>
#include <map>
#include <mutex>
#include <stdexcept>

namespace twinfleet::metrics {

namespace detail {

// One thread's histogram storage for one series. Only its thread writes it, so updates are a
// load and a store (no read-modify-write); the snapshot reads it concurrently. Each bucket is
// stored with release after min, max, sum and overflow, so a snapshot that sees a bucket's
// count also sees those updates.
struct histogram_cell {
  histogram_cell() : buckets(std::make_unique<std::atomic<std::uint64_t>[]>(layout::bucket_count)) {}

  void record(std::uint64_t ns) noexcept {
    if (ns > layout::highest_ns) {
      ns = layout::highest_ns;
      overflow.store(overflow.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    }
    if (ns < min.load(std::memory_order_relaxed)) min.store(ns, std::memory_order_relaxed);
    if (ns > max.load(std::memory_order_relaxed)) max.store(ns, std::memory_order_relaxed);
    sum.store(sum.load(std::memory_order_relaxed) + ns, std::memory_order_relaxed);
    auto& b = buckets[layout::index_of(ns)];
    b.store(b.load(std::memory_order_relaxed) + 1, std::memory_order_release);
  }

  // Adds what this cell holds now to `out`, straight into its buckets (no temporary).
  void merge_into(histogram& out) const {
    // Only the buckets between min and max can hold samples: scanning that range (a few hundred
    // buckets for latencies) instead of all 2153 is most of a snapshot's cost. A sample recorded
    // outside it meanwhile simply counts from the next snapshot on.
    const auto lowest = min.load(std::memory_order_relaxed);
    const auto highest = max.load(std::memory_order_relaxed);
    if (lowest > highest) return;  // nothing recorded yet
    std::uint64_t count = 0;
    std::size_t first = layout::bucket_count;
    std::size_t last = 0;
    std::uint64_t top = 0;
    const auto end = layout::index_of(highest) + 1;
    for (std::size_t i = layout::index_of(lowest); i < end; ++i) {
      const auto n = buckets[i].load(std::memory_order_acquire);
      if (n == 0) continue;
      out.unchecked_add_bucket(i, n);
      count += n;
      first = std::min(first, i);
      last = i;
      top = n;
    }
    if (count == 0) return;
    // Read after the buckets: these may already include samples whose bucket was not seen.
    // Keep min and max inside the buckets seen and overflow within the top bucket's count.
    const auto min_ns = std::max(min.load(std::memory_order_relaxed), layout::lower_ns(first));
    const auto max_ns = std::min(max.load(std::memory_order_relaxed), layout::upper_ns(last) - 1);
    const auto overflowed =
        last == layout::bucket_count - 1 ? std::min(overflow.load(std::memory_order_relaxed), top) : 0;
    histogram::totals t;
    t.count = out.count() + count;
    t.sum_ns = out.sum_ns() + sum.load(std::memory_order_relaxed);
    t.min_ns = out.empty() ? min_ns : std::min(out.min_ns(), min_ns);
    t.max_ns = out.empty() ? max_ns : std::max(out.max_ns(), max_ns);
    t.overflow = out.overflow_count() + overflowed;
    out.unchecked_set_totals(t);
  }

  std::atomic<std::uint64_t> min{UINT64_MAX};
  std::atomic<std::uint64_t> max{0};
  std::atomic<std::uint64_t> sum{0};
  std::atomic<std::uint64_t> overflow{0};
  std::unique_ptr<std::atomic<std::uint64_t>[]> buckets;
};

// One series' storage in one thread's shard.
struct slot {
  std::atomic<std::uint64_t> counter{0};
  std::atomic<histogram_cell*> hist{nullptr};
};

inline constexpr std::size_t slots_per_chunk = 256;
inline constexpr std::size_t max_chunks = 64;
inline constexpr std::size_t max_series = slots_per_chunk * max_chunks;

// A recording thread's storage: a two-level table indexed by series id, so the table never
// moves while a snapshot reads it. Chunks and cells are created by the owning thread and
// published with release; only the registry's destructor frees them.
struct shard {
  shard() = default;
  shard(const shard&) = delete;
  shard& operator=(const shard&) = delete;
  ~shard() {
    for (auto& c : chunks) {
      auto* chunk = c.load(std::memory_order_relaxed);
      if (!chunk) continue;
      for (auto& s : *chunk) delete s.hist.load(std::memory_order_relaxed);
      delete chunk;
    }
  }

  // Owner thread only.
  slot& at(std::uint32_t id) {
    auto& c = chunks[id / slots_per_chunk];
    auto* chunk = c.load(std::memory_order_relaxed);
    if (!chunk) {
      chunk = new std::array<slot, slots_per_chunk>();
      c.store(chunk, std::memory_order_release);
    }
    return (*chunk)[id % slots_per_chunk];
  }

  // Any thread; null when the owner never touched the series.
  const slot* find(std::uint32_t id) const {
    const auto* chunk = chunks[id / slots_per_chunk].load(std::memory_order_acquire);
    return chunk ? &(*chunk)[id % slots_per_chunk] : nullptr;
  }

  std::array<std::atomic<std::array<slot, slots_per_chunk>*>, max_chunks> chunks{};
};

struct series {
  std::uint32_t id = 0;
  std::size_t family = 0;
  label_set labels;
  std::atomic<double> gauge{0.0};
};

struct family {
  std::string name;
  std::string help;
  metric_kind kind = metric_kind::counter;
  std::vector<std::string> label_names;
};

namespace {

std::atomic<std::uint64_t> next_registry_id{1};

// The calling thread's shard of each registry it recorded into. Registry ids are never reused,
// so an entry of a destroyed registry is never matched again (and never dereferenced).
struct shard_entry {
  std::uint64_t registry = 0;
  shard* s = nullptr;
};
thread_local shard_entry tl_last_shard;
thread_local std::vector<shard_entry> tl_shards;

bool is_metric_name(std::string_view n) {
  if (n.empty()) return false;
  auto ok = [](char c, bool first) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' || (!first && c >= '0' && c <= '9');
  };
  for (std::size_t i = 0; i < n.size(); ++i)
    if (!ok(n[i], i == 0)) return false;
  return true;
}

std::size_t label_rank(std::string_view name) {
  return static_cast<std::size_t>(std::find(label_names.begin(), label_names.end(), name) - label_names.begin());
}

// Sorted into label_names order; throws on names outside it, repeats and empty values.
label_set canonical(label_set labels, std::string_view metric) {
  for (const auto& l : labels) {
    if (label_rank(l.name) == label_names.size())
      throw std::invalid_argument("metric " + std::string(metric) + ": label \"" + l.name +
                                  "\" is not one of backend, profile, operation, outcome");
    if (l.value.empty())
      throw std::invalid_argument("metric " + std::string(metric) + ": label \"" + l.name + "\" has an empty value");
  }
  std::sort(labels.begin(), labels.end(),
            [](const label& a, const label& b) { return label_rank(a.name) < label_rank(b.name); });
  for (std::size_t i = 1; i < labels.size(); ++i)
    if (labels[i].name == labels[i - 1].name)
      throw std::invalid_argument("metric " + std::string(metric) + ": label \"" + labels[i].name + "\" given twice");
  return labels;
}

const char* kind_name(metric_kind k) {
  switch (k) {
    case metric_kind::counter: return "counter";
    case metric_kind::gauge: return "gauge";
    case metric_kind::histogram: return "histogram";
  }
  return "?";
}

}  // namespace

class registry_impl {
 public:
  series& find_or_add(std::string_view name, label_set labels, std::string_view help, metric_kind kind) {
    if (!is_metric_name(name))
      throw std::invalid_argument("\"" + std::string(name) + "\" is not a Prometheus metric name");
    labels = canonical(std::move(labels), name);
    std::vector<std::string> names;
    for (const auto& l : labels) names.push_back(l.name);

    std::lock_guard lock(mutex_);
    auto [fit, added] = family_by_name_.try_emplace(std::string(name), families_.size());
    if (added) {
      families_.push_back(family{std::string(name), std::string(help), kind, names});
    } else {
      auto& f = families_[fit->second];
      if (f.kind != kind)
        throw std::invalid_argument("metric " + std::string(name) + " is a " + kind_name(f.kind) + ", not a " +
                                    kind_name(kind));
      if (f.label_names != names)
        throw std::invalid_argument("metric " + std::string(name) +
                                    " was registered with other label names; a family's label names are fixed");
      if (f.help.empty()) f.help = help;
    }
    const auto family_index = fit->second;
    auto key = std::make_pair(family_index, labels);
    if (auto sit = series_by_key_.find(key); sit != series_by_key_.end()) return series_[sit->second];
    if (series_.size() >= max_series)
      throw std::length_error("metrics registry: more than " + std::to_string(max_series) + " series");
    auto& s = series_.emplace_back();
    s.id = static_cast<std::uint32_t>(series_.size() - 1);
    s.family = family_index;
    s.labels = std::move(labels);
    series_by_key_.emplace(std::move(key), s.id);
    return s;
  }

  shard& local_shard() {
    if (tl_last_shard.registry == id_) return *tl_last_shard.s;
    auto it = std::find_if(tl_shards.begin(), tl_shards.end(), [&](const shard_entry& e) { return e.registry == id_; });
    if (it == tl_shards.end()) {
      std::lock_guard lock(mutex_);
      shards_.push_back(std::make_unique<shard>());
      tl_shards.push_back({id_, shards_.back().get()});
      it = tl_shards.end() - 1;
    }
    tl_last_shard = *it;
    return *it->s;
  }

  registry_snapshot snapshot() const {
    std::lock_guard lock(mutex_);
    registry_snapshot out;
    out.families.reserve(families_.size());
    for (const auto& f : families_) out.families.push_back(family_snapshot{f.name, f.help, f.kind, {}});
    for (const auto& s : series_) {
      auto& fs = out.families[s.family];
      series_snapshot v;
      v.labels = s.labels;
      switch (fs.kind) {
        case metric_kind::gauge: v.value = s.gauge.load(std::memory_order_relaxed); break;
        case metric_kind::counter:
          for (const auto& sh : shards_)
            if (const auto* sl = sh->find(s.id)) v.total += sl->counter.load(std::memory_order_relaxed);
          break;
        case metric_kind::histogram:
          for (const auto& sh : shards_)
            if (const auto* sl = sh->find(s.id))
              if (const auto* cell = sl->hist.load(std::memory_order_acquire)) cell->merge_into(v.hist);
          break;
      }
      fs.series.push_back(std::move(v));
    }
    for (auto& f : out.families)
      std::sort(f.series.begin(), f.series.end(),
                [](const series_snapshot& a, const series_snapshot& b) { return a.labels < b.labels; });
    std::sort(out.families.begin(), out.families.end(),
              [](const family_snapshot& a, const family_snapshot& b) { return a.name < b.name; });
    return out;
  }

 private:
  const std::uint64_t id_ = next_registry_id.fetch_add(1);
  mutable std::mutex mutex_;
  std::vector<family> families_;
  std::map<std::string, std::size_t, std::less<>> family_by_name_;
  std::deque<series> series_;  // stable addresses: gauge handles point into it
  std::map<std::pair<std::size_t, label_set>, std::uint32_t> series_by_key_;
  std::vector<std::unique_ptr<shard>> shards_;
};

}  // namespace detail

void counter_handle::add(std::uint64_t n) const {
  if (!registry_) return;
  auto& c = registry_->local_shard().at(id_).counter;
  c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}

void gauge_handle::set(double v) const noexcept {
  if (series_) series_->gauge.store(v, std::memory_order_relaxed);
}

void gauge_handle::add(double delta) const noexcept {
  if (series_) series_->gauge.fetch_add(delta, std::memory_order_relaxed);
}

void histogram_handle::record(std::uint64_t ns) const {
  if (!registry_) return;
  auto& s = registry_->local_shard().at(id_);
  auto* cell = s.hist.load(std::memory_order_relaxed);
  if (!cell) {
    cell = new detail::histogram_cell();
    s.hist.store(cell, std::memory_order_release);
  }
  cell->record(ns);
}

const series_snapshot* family_snapshot::find(const label_set& labels) const {
  label_set sorted = labels;
  std::sort(sorted.begin(), sorted.end(), [](const label& a, const label& b) {
    return detail::label_rank(a.name) < detail::label_rank(b.name);
  });
  for (const auto& s : series)
    if (s.labels == sorted) return &s;
  return nullptr;
}

const family_snapshot* registry_snapshot::find(std::string_view name) const {
  for (const auto& f : families)
    if (f.name == name) return &f;
  return nullptr;
}

const series_snapshot* registry_snapshot::find(std::string_view name, const label_set& labels) const {
  const auto* f = find(name);
  return f ? f->find(labels) : nullptr;
}

registry::registry() : impl_(std::make_unique<detail::registry_impl>()) {}
registry::~registry() = default;

registry_snapshot registry::snapshot() const { return impl_->snapshot(); }

counter_handle registry::counter(std::string_view name, label_set labels, std::string_view help) {
  return {impl_.get(), impl_->find_or_add(name, std::move(labels), help, metric_kind::counter).id};
}

gauge_handle registry::gauge(std::string_view name, label_set labels, std::string_view help) {
  return gauge_handle(&impl_->find_or_add(name, std::move(labels), help, metric_kind::gauge));
}

histogram_handle registry::histogram(std::string_view name, label_set labels, std::string_view help) {
  return {impl_.get(), impl_->find_or_add(name, std::move(labels), help, metric_kind::histogram).id};
}

}  // namespace twinfleet::metrics
