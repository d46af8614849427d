#include <twinfleet/reporters/merge.hpp>
#include <twinfleet/reporters/summary.hpp>

#include "format.hpp"
#include "histogram.hpp"

#include <boost/json.hpp>

#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>

namespace twinfleet::reporters {

namespace json = boost::json;

namespace {

// Sums stay integers in the JSON when they are (counts must not turn into 12.0).
json::value number_value(double v) {
  if (v == std::floor(v) && std::fabs(v) < 9007199254740992.0) return static_cast<std::int64_t>(v);
  return v;
}

// Adds numeric members of `from` into `into` (members of other kinds are left alone).
void add_numbers(json::object& into, const json::object& from) {
  for (const auto& [k, v] : from) {
    const auto x = detail::as_number(&v);
    if (!x) continue;
    const double prev = detail::number_at(into, k).value_or(0);
    into[k] = number_value(prev + *x);
  }
}

// One latency: the shards' histograms merged while every shard has one, and the figures
// every shard wrote, for the fallback.
class latency_merge {
 public:
  // Returns an error message when the shard's histogram does not decode.
  std::string add(const json::value* histogram, const json::object* latency_ms, double count, const std::string& where) {
    ++shards_;
    total_count_ += count;
    auto d = detail::decode_histogram(histogram, where);
    if (!d.error.empty()) return d.error;
    if (d.histogram && all_histograms_) {
      if (merged_) {
        merged_->add(*d.histogram);
      } else {
        merged_ = std::move(d.histogram);
      }
    } else {
      all_histograms_ = false;
      merged_.reset();
    }
    if (latency_ms) {
      for (const auto& [k, v] : *latency_ms) {
        const auto x = detail::as_number(&v);
        if (!x) continue;
        if (k == "mean") {
          mean_weighted_ += *x * count;
          mean_weight_ += count;
          continue;
        }
        auto& slot = bounds_[std::string(k)];
        slot = slot ? (k == "min" ? std::min(*slot, *x) : std::max(*slot, *x)) : *x;
      }
    }
    return {};
  }

  [[nodiscard]] const std::optional<metrics::histogram>& histogram() const { return merged_; }

  // latency_ms of the merged operation: exact from the histogram, else the shards' bounds.
  [[nodiscard]] json::object latency_ms() const {
    if (merged_ && merged_->count() > 0) return detail::latency_ms_of(*merged_);
    json::object o;
    for (const auto& [k, v] : bounds_) {
      if (v) o[k] = *v;
    }
    if (mean_weight_ > 0) o["mean"] = mean_weighted_ / mean_weight_;
    return o;
  }

 private:
  std::size_t shards_ = 0;
  double total_count_ = 0;
  bool all_histograms_ = true;
  std::optional<metrics::histogram> merged_;
  std::map<std::string, std::optional<double>> bounds_;
  double mean_weighted_ = 0;
  double mean_weight_ = 0;
};

struct op_merge {
  double count = 0;
  double errors = 0;
  latency_merge latency;
};

struct timeline_entry {
  double t_s = 0;
  double connected = 0;
  bool has_connected = false;
  std::map<std::string, op_merge> ops;
  std::map<std::string, std::pair<std::optional<double>, std::optional<double>>> fallback;  // p50_ms, p99_ms maxima
};

std::string source_name(const std::vector<std::string>& sources, std::size_t i) {
  return i < sources.size() ? sources[i] : fmt::format("shard {}", i + 1);
}

std::optional<double> max_opt(std::optional<double> a, std::optional<double> b) {
  if (!a) return b;
  if (!b) return a;
  return std::max(*a, *b);
}

}  // namespace

twin::result<json::object> merge_summaries(std::vector<json::object> shards, const std::vector<std::string>& sources) {
  if (shards.empty()) return twin::error{report_code::bad_input, "nothing to merge: no shard summaries"};

  const auto scenario = detail::string_at(shards[0], "scenario");
  for (std::size_t i = 1; i < shards.size(); ++i) {
    const auto other = detail::string_at(shards[i], "scenario");
    if (other != scenario) {
      return twin::error{report_code::bad_input,
                         fmt::format("{}: scenario '{}' differs from {}'s '{}': shards of one run share their scenario",
                                     source_name(sources, i), other, source_name(sources, 0), scenario)};
    }
  }

  json::object out;
  out["schema"] = summary_schema;
  out["scenario"] = scenario;
  if (const auto* seed = shards[0].if_contains("seed")) out["seed"] = *seed;
  if (const auto t = detail::string_at(shards[0], "target"); !t.empty()) out["target"] = t;

  std::string started;
  double duration = 0;
  bool interrupted = false;
  json::object devices;
  std::vector<std::pair<std::pair<std::string, std::string>, json::object>> groups;
  std::map<std::string, op_merge> ops;
  std::vector<std::string> op_order;
  json::object sync;
  json::object anomalies;
  json::object examples;
  json::object observed;
  json::object aws_observer;  // numbers summed; convergence_from "observer" only when every shard's was
  bool any_sync = false;
  bool any_anomalies = false;
  std::optional<double> deadline;
  json::object engine;
  bool any_engine = false;
  latency_merge lag;
  bool any_lag = false;
  double workers = 0;
  std::map<long long, timeline_entry> timeline;
  bool any_timeline = false;

  for (std::size_t i = 0; i < shards.size(); ++i) {
    const auto& s = shards[i];
    const auto where = source_name(sources, i);

    if (const auto t = detail::string_at(s, "started_at"); !t.empty() && (started.empty() || t < started)) started = t;
    duration = std::max(duration, detail::number_at(s, "duration_s").value_or(0));
    if (const auto* v = s.if_contains("interrupted"); v && v->is_bool() && v->get_bool()) interrupted = true;

    if (const auto* d = detail::object_at(s, "devices")) {
      add_numbers(devices, *d);
      if (const auto* g = detail::array_at(*d, "by_group")) {
        for (const auto& e : *g) {
          if (!e.is_object()) continue;
          const auto key = std::make_pair(detail::string_at(e.get_object(), "backend"), detail::string_at(e.get_object(), "profile"));
          auto it = std::find_if(groups.begin(), groups.end(), [&](const auto& p) { return p.first == key; });
          if (it == groups.end()) {
            groups.emplace_back(key, json::object{{"backend", key.first}, {"profile", key.second}});
            it = groups.end() - 1;
          }
          add_numbers(it->second, e.get_object());
        }
      }
    }

    if (const auto* o = detail::object_at(s, "operations")) {
      for (const auto& [name_sv, v] : *o) {
        if (!v.is_object()) continue;
        const std::string name(name_sv);
        const auto& op = v.get_object();
        if (!ops.contains(name)) op_order.push_back(name);
        auto& m = ops[name];
        const double count = detail::number_at(op, "count").value_or(0);
        m.count += count;
        m.errors += detail::number_at(op, "errors").value_or(0);
        if (auto e = m.latency.add(op.if_contains("histogram"), detail::object_at(op, "latency_ms"), count,
                                   "operations." + name + ".histogram");
            !e.empty()) {
          return twin::error{report_code::bad_input, where + ": " + e};
        }
      }
    }

    if (const auto* sy = detail::object_at(s, "sync")) {
      any_sync = true;
      for (const auto& [k, v] : *sy) {
        if (k == "convergence_ratio" || k == "deadline_s") continue;
        if (const auto x = detail::as_number(&v)) sync[k] = number_value(detail::number_at(sync, k).value_or(0) + *x);
      }
      if (const auto d = detail::number_at(*sy, "deadline_s")) {
        if (deadline && std::fabs(*deadline - *d) > 1e-9) {
          return twin::error{report_code::bad_input, fmt::format("{}: sync.deadline_s {} differs from the other shards' {}", where,
                                                                 detail::format_number(*d), detail::format_number(*deadline))};
        }
        deadline = d;
      }
      if (const auto* a = detail::object_at(*sy, "anomalies")) {
        any_anomalies = true;
        add_numbers(anomalies, *a);
      }
      if (const auto* ex = detail::object_at(*sy, "examples")) {
        for (const auto& [kind, list] : *ex) {
          if (!list.is_array()) continue;
          auto& into = examples[kind];
          if (!into.is_array()) into = json::array{};
          for (const auto& e : list.get_array()) {
            if (into.get_array().size() >= max_examples_per_kind) break;
            into.get_array().push_back(e);
          }
        }
      }
      if (const auto* ob = detail::object_at(*sy, "observed")) add_numbers(observed, *ob);
      if (const auto* ao = detail::object_at(*sy, "aws_observer")) {
        add_numbers(aws_observer, *ao);
        if (const auto* from = ao->if_contains("convergence_from"); from != nullptr && from->is_string()) {
          const auto* had = aws_observer.if_contains("convergence_from");
          if (had == nullptr || *had == *from) {
            aws_observer["convergence_from"] = *from;
          } else {
            aws_observer["convergence_from"] = "mixed";  // some shards fell back to the devices' path
          }
        }
      }
    }

    if (const auto* en = detail::object_at(s, "engine")) {
      any_engine = true;
      for (const auto& key : {"threads", "rss_bytes_peak"}) {
        if (const auto x = detail::number_at(*en, key)) engine[key] = number_value(detail::number_at(engine, key).value_or(0) + *x);
      }
      workers += detail::number_at(*en, "workers").value_or(1);
      // Every worker runs with the same grid: the first one's is the run's.
      if (const auto g = detail::number_at(*en, "wake_grid_ms"); g && !engine.contains("wake_grid_ms")) engine["wake_grid_ms"] = number_value(*g);
      const auto* hist = en->if_contains("lag_histogram");
      const auto* lag_ms = detail::object_at(*en, "lag_ms");
      if (hist || lag_ms) {
        any_lag = true;
        if (auto e = lag.add(hist, lag_ms, 1, "engine.lag_histogram"); !e.empty()) return twin::error{report_code::bad_input, where + ": " + e};
      }
    } else {
      workers += 1;
    }

    if (const auto* tl = detail::array_at(s, "timeline")) {
      any_timeline = true;
      for (const auto& e : *tl) {
        if (!e.is_object()) continue;
        const auto& o = e.get_object();
        const auto t = detail::number_at(o, "t_s");
        if (!t) continue;
        // Shards sample on the same second boundaries; a millisecond key absorbs float noise.
        auto& slot = timeline[std::llround(*t * 1000)];
        slot.t_s = *t;
        if (const auto c = detail::number_at(o, "connected")) {
          slot.connected += *c;
          slot.has_connected = true;
        }
        const auto* tops = detail::object_at(o, "ops");
        if (!tops) continue;
        for (const auto& [name_sv, v] : *tops) {
          if (!v.is_object()) continue;
          const std::string name(name_sv);
          const auto& op = v.get_object();
          auto& m = slot.ops[name];
          const double count = detail::number_at(op, "count").value_or(0);
          m.count += count;
          m.errors += detail::number_at(op, "errors").value_or(0);
          if (auto err = m.latency.add(op.if_contains("histogram"), nullptr, count,
                                       fmt::format("timeline t_s={} ops.{}.histogram", detail::format_number(*t), name));
              !err.empty()) {
            return twin::error{report_code::bad_input, where + ": " + err};
          }
          auto& fb = slot.fallback[name];
          fb.first = max_opt(fb.first, detail::number_at(op, "p50_ms"));
          fb.second = max_opt(fb.second, detail::number_at(op, "p99_ms"));
        }
      }
    }
  }

  if (!started.empty()) out["started_at"] = started;
  out["duration_s"] = duration;
  out["interrupted"] = interrupted;
  out["shards"] = shards.size();

  if (!groups.empty()) {
    json::array g;
    for (auto& [key, o] : groups) g.push_back(std::move(o));
    devices["by_group"] = std::move(g);
  }
  if (!devices.empty()) out["devices"] = std::move(devices);

  json::object operations;
  for (const auto& name : op_order) {
    const auto& m = ops.at(name);
    json::object o{{"count", number_value(m.count)}, {"errors", number_value(m.errors)}, {"latency_ms", m.latency.latency_ms()}};
    if (m.latency.histogram()) o["histogram"] = detail::encode_histogram(*m.latency.histogram());
    operations[name] = std::move(o);
  }
  out["operations"] = std::move(operations);

  if (any_sync) {
    const auto writes = detail::number_at(sync, "desired_writes");
    const auto converged = detail::number_at(sync, "converged");
    if (writes && converged && *writes > 0) sync["convergence_ratio"] = *converged / *writes;
    if (deadline) sync["deadline_s"] = number_value(*deadline);
    if (any_anomalies) sync["anomalies"] = std::move(anomalies);
    if (!examples.empty()) sync["examples"] = std::move(examples);
    if (!observed.empty()) sync["observed"] = std::move(observed);
    if (!aws_observer.empty()) sync["aws_observer"] = std::move(aws_observer);
    out["sync"] = std::move(sync);
  }

  if (any_engine) {
    engine["workers"] = number_value(workers);
    if (any_lag) {
      auto l = lag.latency_ms();
      l.erase("mean");
      l.erase("p90");
      engine["lag_ms"] = std::move(l);
      if (lag.histogram()) engine["lag_histogram"] = detail::encode_histogram(*lag.histogram());
    }
    out["engine"] = std::move(engine);
  }

  if (any_timeline) {
    json::array tl;
    for (auto& [key, slot] : timeline) {
      json::object e{{"t_s", number_value(slot.t_s)}};
      if (slot.has_connected) e["connected"] = number_value(slot.connected);
      json::object tops;
      for (auto& [name, m] : slot.ops) {
        json::object o{{"count", number_value(m.count)}, {"errors", number_value(m.errors)}};
        const auto& h = m.latency.histogram();
        if (h && h->count() > 0) {
          o["p50_ms"] = detail::ns_to_ms(static_cast<double>(h->value_at_quantile(0.5)));
          o["p99_ms"] = detail::ns_to_ms(static_cast<double>(h->value_at_quantile(0.99)));
        } else {
          const auto& fb = slot.fallback[name];
          if (fb.first) o["p50_ms"] = *fb.first;
          if (fb.second) o["p99_ms"] = *fb.second;
        }
        if (h) o["histogram"] = detail::encode_histogram(*h);
        tops[name] = std::move(o);
      }
      if (!tops.empty()) e["ops"] = std::move(tops);
      tl.push_back(std::move(e));
    }
    out["timeline"] = std::move(tl);
  }
  return out;
}

}  // namespace twinfleet::reporters
