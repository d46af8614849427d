// The sync-correctness oracle (sync_checker.hpp); docs/SYNC-CHECK.md defines every rule.
#include <twinfleet/check/sync_checker.hpp>

#include <twinfleet/twin/json_util.hpp>

#include <boost/json/serialize.hpp>

#include <algorithm>
#include <atomic>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <unordered_map>

namespace twinfleet::check {

namespace json = boost::json;

namespace {

constexpr std::array<std::string_view, anomaly_kind_count> kind_names{
    "lost_update",  "stale_apply", "out_of_order", "duplicate_apply", "unreconciled_after_reconnect", "reported_overwrite",
    "divergence"};

// Reported writes kept per key to find an older one accepted after a newer one: writes that
// far apart are never in flight together.
constexpr std::size_t reported_window = 32;

std::string_view connection_of(std::string_view key) { return key.substr(0, key.find('/')); }

// The leaf paths a desired patch writes ("brightness", "schedule.start"): what a later patch
// must rewrite to supersede it. Nulls (deletes), arrays and scalars are leaves; "$" members at
// the top (Azure's $version, $metadata) are not the patch's.
void leaf_paths(const json::object& o, const std::string& prefix, std::vector<std::string>& out) {
  for (const auto& [k, v] : o) {
    if (prefix.empty() && k.starts_with("$")) continue;
    std::string path = prefix.empty() ? std::string(k) : prefix + "." + std::string(k);
    if (v.is_object() && !v.as_object().empty()) {
      leaf_paths(v.as_object(), path, out);
    } else {
      out.push_back(std::move(path));
    }
  }
}

std::string top_of(std::string_view path) { return std::string(path.substr(0, path.find('.'))); }

// A later write of `later` supersedes what was written at `earlier` when one path contains the
// other: the same leaf, a whole object replaced or deleted above it, or a scalar replaced by an
// object merged in below it (merge-patch semantics).
bool supersedes(std::string_view later, std::string_view earlier) {
  auto within = [](std::string_view inner, std::string_view outer) {
    return inner.size() > outer.size() && inner.starts_with(outer) && inner[outer.size()] == '.';
  };
  return later == earlier || within(earlier, later) || within(later, earlier);
}

// Every member of `want` is in `have` with an equal value (objects recursively): the AWS delta
// rule, so a partial desired object is in sync with a whole reported one.
bool contained(const json::value& want, const json::value& have) {
  if (want.is_object() && have.is_object()) {
    const auto& h = have.as_object();
    for (const auto& [k, v] : want.as_object()) {
      const auto* hv = h.if_contains(k);
      if (v.is_null()) {
        if (hv != nullptr && !hv->is_null()) return false;
        continue;
      }
      if (hv == nullptr || !contained(v, *hv)) return false;
    }
    return true;
  }
  return twin::json_equal(want, have);
}

std::string short_json(const json::value& v) {
  auto s = json::serialize(v);
  if (s.size() > 80) s = s.substr(0, 77) + "...";
  return s;
}

struct write_record {
  std::int64_t version;
  time_point at;
  std::vector<std::string> paths;
};

struct event_record {
  std::int64_t version;
  delivery via;
  time_point at;
};

struct reported_record {
  std::uint64_t session;
  std::uint64_t serial;
  std::int64_t hub_version;
  time_point at;
  bool before(const reported_record& o) const { return session != o.session ? session < o.session : serial < o.serial; }
};

struct audit_record {
  json::object desired;
  json::object reported;
  device_mapping mapping;
  time_point at;
};

// A set of versions as a sorted vector: versions mostly come in order, so an insert is an
// append, and a version costs 8 bytes instead of a 48-byte tree node.
class version_set {
 public:
  [[nodiscard]] bool contains(std::int64_t v) const { return std::binary_search(v_.begin(), v_.end(), v); }
  void insert(std::int64_t v) {
    const auto at = std::lower_bound(v_.begin(), v_.end(), v);
    if (at == v_.end() || *at != v) v_.insert(at, v);
  }

 private:
  std::vector<std::int64_t> v_;
};

// What a key holds once it is written to, reports or is audited: a key that only connected
// and read its twin (every idle device) holds none of it.
struct key_extra {
  std::vector<write_record> writes;
  std::vector<std::pair<std::int64_t, time_point>> in_sync;  // service_in_sync, in arrival order
  // The last reported_window accepted writes, a ring (reported_next: the slot the next one
  // replaces once it is full). A vector, not a deque: std::deque allocates 512 bytes on
  // construction, for every key, written or not (heaptrack).
  std::vector<reported_record> reported;
  std::size_t reported_next = 0;
  // The latest write and the highest version of all accepted so far: a write after the one
  // and above the other inverts none of the window (the usual case, so the window is not
  // searched for it).
  std::optional<reported_record> reported_latest;
  std::int64_t reported_max_version = std::numeric_limits<std::int64_t>::min();
  std::unique_ptr<audit_record> audit;  // most keys hold none until the final audit
};

// One key's record. Every device has one for the whole run: it is kept small (an idle
// device's was 312 bytes and a tree node; bench/README.md, memory).
struct key_state {
  std::vector<event_record> delivered;  // in arrival order
  std::vector<event_record> applied;    // in arrival order
  // Online rules.
  std::int64_t max_delivered = 0;
  std::int64_t max_delivered_before_last = 0;  // before the latest delivery
  std::int64_t last_delivered = -1;
  std::int64_t max_notified = 0;  // patches and deltas only
  version_set notified;
  std::int64_t max_applied = 0;
  version_set applied_versions;
  std::unique_ptr<key_extra> extra;

  key_extra& more() {
    if (!extra) extra = std::make_unique<key_extra>();
    return *extra;
  }
  [[nodiscard]] const key_extra& more_or_none() const {
    static const key_extra none;
    return extra ? *extra : none;
  }
};

struct session_record {
  std::uint64_t session;
  time_point start;
  std::optional<time_point> end;
};

struct connection_state {
  std::vector<session_record> sessions;
};

struct shard {
  std::mutex m;
  std::unordered_map<std::string, key_state> keys;
  std::unordered_map<std::string, connection_state> connections;
  std::uint64_t reconnects = 0;
  std::uint64_t out_of_order_deliveries = 0;
  std::uint64_t duplicate_deliveries = 0;
  std::uint64_t stale_dropped = 0;
};

struct found {
  anomaly_kind kind;
  anomaly_example example;
};

}  // namespace

bool mirrored(const json::value& desired, const json::value& reported) { return contained(desired, reported); }

struct sync_checker::impl {
  explicit impl(checker_options o) : options(std::move(o)), shards(std::max<std::size_t>(1, options.shards)) {}

  checker_options options;
  std::vector<shard> shards;
  std::array<std::atomic<std::uint64_t>, anomaly_kind_count> online_counts{};
  mutable std::mutex examples_m;
  std::array<std::vector<anomaly_example>, anomaly_kind_count> online_examples;

  shard& shard_for(std::string_view key) {
    return shards[std::hash<std::string_view>{}(connection_of(key)) % shards.size()];
  }
  double rel(time_point t) const { return std::chrono::duration<double>(t - options.run_start).count(); }

  // A reported write accepted, for `record`, whose shard `held` locks: checks it against the
  // writes before, records it, and reports what it found once the lock is released.
  void reported_accepted(std::unique_lock<std::mutex> held, key_state& record, std::string_view key, std::uint64_t session,
                         std::uint64_t serial, std::int64_t hub_version, time_point at);

  // Records anomalies found online; called with no shard lock held.
  void report(std::vector<found>& list) {
    for (auto& f : list) {
      const auto k = static_cast<std::size_t>(f.kind);
      ++online_counts[k];
      {
        std::lock_guard lock(examples_m);
        if (online_examples[k].size() < options.examples_per_kind) online_examples[k].push_back(f.example);
      }
      if (options.on_anomaly) options.on_anomaly(f.kind, f.example.device);
    }
  }
};

std::string_view to_string(anomaly_kind k) noexcept { return kind_names[static_cast<std::size_t>(k)]; }

std::optional<anomaly_kind> anomaly_kind_from_string(std::string_view name) noexcept {
  for (std::size_t i = 0; i < kind_names.size(); ++i) {
    if (kind_names[i] == name) return static_cast<anomaly_kind>(i);
  }
  return std::nullopt;
}

std::uint64_t sync_report::total_anomalies() const noexcept {
  std::uint64_t n = 0;
  for (auto c : anomalies) n += c;
  return n;
}

json::object sync_report::to_json() const {
  json::object counts;
  json::object ex;
  for (std::size_t i = 0; i < anomaly_kind_count; ++i) {
    counts[kind_names[i]] = anomalies[i];
    if (examples[i].empty()) continue;
    json::array list;
    for (const auto& e : examples[i]) {
      json::array versions;
      for (auto v : e.versions) versions.push_back(v);
      list.push_back(json::object{{"device", e.device}, {"versions", std::move(versions)}, {"at_s", e.at_s}, {"detail", e.detail}});
    }
    ex[kind_names[i]] = std::move(list);
  }
  return json::object{
      {"desired_writes", desired_writes},
      {"converged", converged},
      {"convergence_ratio", convergence_ratio},
      {"deadline_s", deadline_s},
      {"converged_within_deadline", converged_within_deadline},
      {"anomalies", std::move(counts)},
      {"examples", std::move(ex)},
      {"observed", json::object{{"out_of_order_deliveries", observed.out_of_order_deliveries},
                                {"duplicate_deliveries", observed.duplicate_deliveries},
                                {"stale_notifications_dropped", observed.stale_notifications_dropped},
                                {"reconnects", observed.reconnects},
                                {"writes_not_judged", observed.writes_not_judged},
                                {"writes_already_in_force", observed.writes_already_in_force}}}};
}

sync_checker::sync_checker(checker_options options) : impl_(std::make_unique<impl>(std::move(options))) {}
sync_checker::~sync_checker() = default;

void sync_checker::desired_written(std::string_view key, std::int64_t version, const json::object& patch, time_point at) {
  write_record w{version, at, {}};
  leaf_paths(patch, {}, w.paths);
  auto& sh = impl_->shard_for(key);
  std::lock_guard lock(sh.m);
  sh.keys[std::string(key)].more().writes.push_back(std::move(w));
}

void sync_checker::session_started(std::string_view connection, std::uint64_t session, time_point at) {
  auto& sh = impl_->shard_for(connection);
  std::lock_guard lock(sh.m);
  auto& c = sh.connections[std::string(connection)];
  if (!c.sessions.empty()) ++sh.reconnects;
  c.sessions.push_back({session, at, std::nullopt});
}

void sync_checker::session_ended(std::string_view connection, std::uint64_t session, time_point at) {
  auto& sh = impl_->shard_for(connection);
  std::lock_guard lock(sh.m);
  auto& c = sh.connections[std::string(connection)];
  for (auto& s : c.sessions) {
    if (s.session == session && !s.end) s.end = at;
  }
}

void sync_checker::desired_delivered(std::string_view key, std::int64_t version, delivery via, time_point at) {
  auto& sh = impl_->shard_for(key);
  std::lock_guard lock(sh.m);
  auto& k = sh.keys[std::string(key)];
  k.delivered.push_back({version, via, at});
  if (via != delivery::document) {
    // Observations only: the device's handling of them is judged by the drop and apply rules.
    if (k.notified.contains(version)) {
      ++sh.duplicate_deliveries;
    } else if (version < k.max_notified) {
      ++sh.out_of_order_deliveries;
    }
    k.notified.insert(version);
    k.max_notified = std::max(k.max_notified, version);
  }
  k.max_delivered_before_last = k.max_delivered;
  k.last_delivered = version;
  k.max_delivered = std::max(k.max_delivered, version);
}

void sync_checker::service_in_sync(std::string_view key, std::int64_t version, time_point at) {
  auto& sh = impl_->shard_for(key);
  std::lock_guard lock(sh.m);
  auto& in_sync = sh.keys[std::string(key)].more().in_sync;
  // Only a newer version says more; the first time each version was seen in sync is kept.
  if (in_sync.empty() || version > in_sync.back().first) in_sync.emplace_back(version, at);
}

void sync_checker::desired_dropped(std::string_view key, std::int64_t version, time_point at) {
  std::vector<found> out;
  {
    auto& sh = impl_->shard_for(key);
    std::lock_guard lock(sh.m);
    auto& k = sh.keys[std::string(key)];
    // The newest version the device had heard of before this delivery: a drop is right only
    // when that is at least as new (C1.2, C2.1).
    const auto newest = k.last_delivered == version ? k.max_delivered_before_last : k.max_delivered;
    if (newest >= version) {
      ++sh.stale_dropped;
    } else {
      out.push_back({anomaly_kind::out_of_order,
                     {std::string(key), {newest, version}, impl_->rel(at),
                      "dropped version " + std::to_string(version) + " as stale, but the newest version delivered before was " +
                          std::to_string(newest) + " (a version counter advanced by another topic, C2.2)"}});
    }
  }
  impl_->report(out);
}

void sync_checker::desired_applied(std::string_view key, std::int64_t version, delivery via, time_point at) {
  std::vector<found> out;
  {
    auto& sh = impl_->shard_for(key);
    std::lock_guard lock(sh.m);
    auto& k = sh.keys[std::string(key)];
    k.applied.push_back({version, via, at});
    if (via != delivery::document && k.applied_versions.contains(version)) {
      out.push_back({anomaly_kind::duplicate_apply,
                     {std::string(key), {version}, impl_->rel(at),
                      "applied version " + std::to_string(version) + " again from a " +
                          (via == delivery::patch ? "notification" : "delta") + " (a duplicate delivery not filtered)"}});
    } else if (version < k.max_applied) {
      out.push_back({anomaly_kind::stale_apply,
                     {std::string(key), {k.max_applied, version}, impl_->rel(at),
                      "applied version " + std::to_string(version) + " after version " + std::to_string(k.max_applied) +
                          (via == delivery::document ? " (from a GET)" : " (a stale delivery not dropped)")}});
    }
    k.applied_versions.insert(version);
    k.max_applied = std::max(k.max_applied, version);
  }
  impl_->report(out);
}

void sync_checker::impl::reported_accepted(std::unique_lock<std::mutex> held, key_state& record, std::string_view key,
                                           std::uint64_t session, std::uint64_t serial, std::int64_t hub_version,
                                           time_point at) {
  std::vector<found> out;
  auto& x = record.more();
  auto& reported = x.reported;
  const reported_record r{session, serial, hub_version, at};
  const bool in_order = !x.reported_latest || (x.reported_latest->before(r) && r.hub_version > x.reported_max_version);
  for (const auto& e : in_order ? std::span<const reported_record>() : std::span<const reported_record>(reported)) {
    // An inversion: the write sent first (or from the older session) holds the higher
    // version, so the hub applied it last and its values replaced the newer ones.
    const bool r_stale = r.before(e) && r.hub_version > e.hub_version;
    const bool e_stale = e.before(r) && e.hub_version > r.hub_version;
    if (!r_stale && !e_stale) continue;
    const auto& older = r_stale ? r : e;
    const auto& newer = r_stale ? e : r;
    std::string detail = "reported write #" + std::to_string(older.serial) + " of session " + std::to_string(older.session) +
                         " was accepted as version " + std::to_string(older.hub_version) + " after write #" +
                         std::to_string(newer.serial) + " of " +
                         (older.session == newer.session ? std::string("the same session")
                                                         : "newer session " + std::to_string(newer.session)) +
                         " (version " + std::to_string(newer.hub_version) + ")";
    out.push_back({anomaly_kind::reported_overwrite,
                   {std::string(key), {newer.hub_version, older.hub_version}, rel(at), std::move(detail)}});
    break;
  }
  if (reported.size() < reported_window) {
    reported.push_back(r);
  } else {
    reported[x.reported_next] = r;
    x.reported_next = (x.reported_next + 1) % reported_window;
  }
  if (!x.reported_latest || x.reported_latest->before(r)) x.reported_latest = r;
  x.reported_max_version = std::max(x.reported_max_version, r.hub_version);
  held.unlock();
  report(out);
}

void sync_checker::reported_accepted(std::string_view key, std::uint64_t session, std::uint64_t serial,
                                     std::int64_t hub_version, time_point at) {
  auto& sh = impl_->shard_for(key);
  std::unique_lock lock(sh.m);
  auto& record = sh.keys[std::string(key)];
  impl_->reported_accepted(std::move(lock), record, key, session, serial, hub_version, at);
}

sync_checker::key_ref sync_checker::ref(std::string_view key) {
  auto& sh = impl_->shard_for(key);
  std::lock_guard lock(sh.m);
  key_ref r;
  r.shard_ = &sh;
  r.record_ = &sh.keys[std::string(key)];  // a node of the map: its address stays put
  return r;
}

void sync_checker::reported_accepted(key_ref ref, std::string_view key, std::uint64_t session, std::uint64_t serial,
                                     std::int64_t hub_version, time_point at) {
  std::unique_lock lock(static_cast<shard*>(ref.shard_)->m);
  impl_->reported_accepted(std::move(lock), *static_cast<key_state*>(ref.record_), key, session, serial, hub_version, at);
}

void sync_checker::audit(std::string_view key, const json::object& desired, const json::object& reported,
                         const device_mapping& mapping, time_point at) {
  auto& sh = impl_->shard_for(key);
  std::lock_guard lock(sh.m);
  sh.keys[std::string(key)].more().audit = std::make_unique<audit_record>(audit_record{desired, reported, mapping, at});
}

std::uint64_t sync_checker::anomalies_so_far(anomaly_kind k) const noexcept {
  return impl_->online_counts[static_cast<std::size_t>(k)].load();
}

namespace {

// The earliest instant `events` (in arrival order) cover write `w`: its own version, a
// cumulative delivery (delta, document) at or after it, or later patches that together
// rewrote every path it wrote. Nothing when they never do.
std::optional<time_point> covered_at(const write_record& w, const std::vector<event_record>& events,
                                     const std::map<std::int64_t, const write_record*>& by_version) {
  std::vector<std::string_view> remaining(w.paths.begin(), w.paths.end());
  for (const auto& e : events) {
    if (e.version < w.version) continue;
    if (e.version == w.version || e.via != delivery::patch) return e.at;
    auto it = by_version.find(e.version);
    if (it == by_version.end()) continue;
    std::erase_if(remaining, [&](std::string_view p) {
      return std::any_of(it->second->paths.begin(), it->second->paths.end(),
                         [&](const std::string& q) { return supersedes(q, p); });
    });
    if (remaining.empty()) return e.at;
  }
  return std::nullopt;
}

// Whether desired property `m` is in sync in an audit, and a description of the mismatch.
std::optional<std::string> mismatch(const property_mapping& m, const audit_record& a) {
  const auto* want = a.desired.if_contains(m.desired);
  if (want == nullptr || want->is_null()) return std::nullopt;  // nothing desired
  const auto* have = a.reported.if_contains(m.reported);
  if (have == nullptr) return m.desired + ": desired " + short_json(*want) + ", nothing reported";
  if (m.form == ack_form::mirror) {
    if (contained(*want, *have)) return std::nullopt;
    return m.desired + ": desired " + short_json(*want) + ", reported " + short_json(*have);
  }
  // IoT Plug and Play: the acknowledgement must answer the property's latest desired version
  // (when the twin's metadata tells it), and either carry the desired value (ac 200) or say
  // it was refused (ac ≥ 400, the value in force reported truthfully: the device did its part).
  const auto describe = [&] { return m.desired + ": desired " + short_json(*want) + ", reported " + short_json(*have); };
  if (!have->is_object()) return describe();
  const auto& ack = have->as_object();
  const auto* ac = ack.if_contains("ac");
  const auto* av = ack.if_contains("av");
  if (ac == nullptr || !ac->is_number() || av == nullptr || !av->is_number()) return describe();
  if (const auto* meta = a.desired.if_contains("$metadata"); meta != nullptr && meta->is_object()) {
    if (const auto* pm = meta->as_object().if_contains(m.desired); pm != nullptr && pm->is_object()) {
      if (const auto* luv = pm->as_object().if_contains("$lastUpdatedVersion"); luv != nullptr && luv->is_number()) {
        if (av->to_number<double>() < luv->to_number<double>()) return describe() + " (acknowledges an older version)";
      }
    }
  }
  const auto code = ac->to_number<double>();
  if (code >= 400) return std::nullopt;
  const auto* value = ack.if_contains("value");
  if (code >= 200 && code < 300 && code != 202 && value != nullptr && contained(*want, *value)) return std::nullopt;
  return describe();
}

}  // namespace

sync_report sync_checker::finish(time_point) const {
  const auto& opt = impl_->options;
  sync_report r;
  r.deadline_s = std::chrono::duration<double>(opt.deadline).count();
  for (std::size_t i = 0; i < anomaly_kind_count; ++i) r.anomalies[i] = impl_->online_counts[i].load();
  {
    std::lock_guard lock(impl_->examples_m);
    r.examples = impl_->online_examples;
  }
  auto add = [&](anomaly_kind kind, anomaly_example e) {
    const auto i = static_cast<std::size_t>(kind);
    ++r.anomalies[i];
    if (r.examples[i].size() < opt.examples_per_kind) r.examples[i].push_back(std::move(e));
  };

  for (auto& sh : impl_->shards) {
    std::lock_guard lock(sh.m);
    r.observed.reconnects += sh.reconnects;
    r.observed.out_of_order_deliveries += sh.out_of_order_deliveries;
    r.observed.duplicate_deliveries += sh.duplicate_deliveries;
    r.observed.stale_notifications_dropped += sh.stale_dropped;
    // Sorted, so examples and results do not depend on hashing.
    std::map<std::string_view, const key_state*> keys;
    for (const auto& [name, k] : sh.keys) keys.emplace(name, &k);
    for (const auto& [name, kp] : keys) {
      const auto& k = *kp;
      const auto& x = k.more_or_none();
      const connection_state* conn = nullptr;
      if (auto c = sh.connections.find(std::string(connection_of(name))); c != sh.connections.end()) conn = &c->second;
      std::map<std::int64_t, const write_record*> by_version;
      for (const auto& w : x.writes) by_version.emplace(w.version, &w);
      // Which mapped properties the audit shows out of sync.
      std::map<std::string, std::string> out_of_sync;
      std::set<std::string> mapped;
      if (x.audit) {
        for (const auto& m : x.audit->mapping.properties) {
          mapped.insert(m.desired);
          if (auto why = mismatch(m, *x.audit)) out_of_sync.emplace(m.desired, std::move(*why));
        }
      }
      std::set<std::string> unjudged_tops;  // written by writes not judged: not audited either
      for (const auto& [version, wp] : by_version) {
        const auto& w = *wp;
        auto not_judged = [&] {
          ++r.observed.writes_not_judged;
          for (const auto& p : w.paths) unjudged_tops.insert(top_of(p));
        };
        if (opt.judge_writes_until && w.at > *opt.judge_writes_until) {
          not_judged();
          continue;
        }
        auto t = covered_at(w, k.applied, by_version);
        // Seen in sync by the service at a version ≥ the write's: in force from then on
        // (in_sync grows by version, so the first such entry is the earliest).
        const auto seen = std::lower_bound(x.in_sync.begin(), x.in_sync.end(), w.version,
                                           [](const auto& e, std::int64_t v) { return e.first < v; });
        if (seen != x.in_sync.end() && (!t || seen->second < *t)) t = seen->second;
        if (t) {
          ++r.desired_writes;
          ++r.converged;
          if (*t - w.at <= opt.deadline) ++r.converged_within_deadline;
          continue;
        }
        if (covered_at(w, k.delivered, by_version)) {
          ++r.desired_writes;  // seen, not applied: short of convergence, not an anomaly here
          continue;
        }
        // Never delivered. When the audit shows every property it wrote in sync, the device
        // already had those values (an AWS write that equals reported makes no delta).
        const bool in_force = x.audit && !w.paths.empty() && std::all_of(w.paths.begin(), w.paths.end(), [&](const std::string& p) {
          const auto top = top_of(p);
          return mapped.contains(top) && !out_of_sync.contains(top);
        });
        if (in_force) {
          ++r.desired_writes;
          ++r.converged;
          ++r.converged_within_deadline;
          ++r.observed.writes_already_in_force;
          continue;
        }
        // Whose fault: a session begun after the write should have reconciled it (GET); the
        // session current at the write should have heard it, unless it ended too soon after.
        const session_record* current = nullptr;
        const session_record* later = nullptr;
        if (conn != nullptr) {
          for (const auto& s : conn->sessions) {
            if (s.start <= w.at && (current == nullptr || s.start >= current->start)) current = &s;
            if (s.start > w.at && later == nullptr) later = &s;
          }
          if (current != nullptr && current->end && *current->end < w.at) current = nullptr;
        }
        std::string v = std::to_string(w.version);
        if (later != nullptr) {
          ++r.desired_writes;
          add(anomaly_kind::unreconciled_after_reconnect,
              {std::string(name), {w.version}, impl_->rel(w.at),
               "version " + v + ", written " + (current == nullptr ? "while the device was offline" : "before a reconnect") +
                   ", never delivered after it reconnected at " + std::to_string(impl_->rel(later->start)).substr(0, 6) + " s"});
        } else if (conn == nullptr || conn->sessions.empty() ||
                   (current != nullptr && (!current->end || *current->end - w.at > opt.deadline))) {
          ++r.desired_writes;
          add(anomaly_kind::lost_update,
              {std::string(name), {w.version}, impl_->rel(w.at),
               "version " + v + " was never delivered, and no later delivery superseded it"});
        } else {
          not_judged();  // offline, or dropped right after it, and never back
        }
      }
      if (x.audit) {
        std::vector<std::string> details;
        for (const auto& [prop, why] : out_of_sync) {
          if (!unjudged_tops.contains(prop)) details.push_back(why);
        }
        if (!details.empty()) {
          std::vector<std::int64_t> versions;
          if (const auto* dv = x.audit->desired.if_contains("$version"); dv != nullptr && dv->is_int64()) {
            versions.push_back(dv->get_int64());
          }
          std::string detail = details.front();
          if (details.size() > 1) detail += " (and " + std::to_string(details.size() - 1) + " more)";
          add(anomaly_kind::divergence, {std::string(name), std::move(versions), impl_->rel(x.audit->at), std::move(detail)});
        }
      }
    }
  }
  r.convergence_ratio = r.desired_writes == 0 ? 1.0 : static_cast<double>(r.converged) / static_cast<double>(r.desired_writes);
  return r;
}

}  // namespace twinfleet::check
