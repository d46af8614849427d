// The sync-correctness oracle: fed with the back end's accepted desired writes, each device's
// observations (sessions, desired versions delivered, dropped and applied, reported writes and
// the versions the hub gave them) and the back end's final read-backs, it tells whether every
// twin/shadow converged, and counts by kind what went wrong, with a few concrete examples.
// docs/SYNC-CHECK.md defines each kind; the principle is that it must not cry wolf: a correct
// device under faults the protocol tolerates (delay, duplicates, reordering, disconnects) ends
// with zero anomalies, while reordering or duplication the device handled correctly is only
// counted as an observation.
//
//   check::sync_checker checker({.run_start = start, .judge_writes_until = load_end});
//   checker.desired_written("bulb-007", 12, patch, at);                 // back-end thread
//   checker.desired_delivered("bulb-007", 12, check::delivery::patch, at);  // device threads
//   checker.desired_applied("bulb-007", 12, check::delivery::patch, at);
//   checker.audit("bulb-007", desired, reported, mapping, at);          // after the settle period
//   check::sync_report r = checker.finish(at);
//
// Keys: one twin or shadow each — the Azure device id, or an AWS "thing/shadow" key (the thing
// name alone for the classic shadow), as device::shadow_key() names them. Session events name
// the connection (the Azure device id or the AWS thing name); a key's connection is the part of
// the key before its first '/'.
//
// Time: every event carries its instant on the steady clock (virtual time in tests). The
// checker never reads a clock.
//
// Threading: every member may be called from any thread, concurrently. State is sharded by
// connection (one mutex per shard), so devices on different threads rarely contend and events
// of one twin are serialised. Events of one key may arrive in any order relative to the back
// end's writes (a device may hear of version 12 before the back end has recorded writing it):
// the rules that depend on that are judged in finish().
#pragma once

#include <boost/json/object.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace twinfleet::check {

using clock = std::chrono::steady_clock;
using time_point = clock::time_point;

// The anomaly kinds; their names (to_string) are the contract of summary.json and of the
// metric label `outcome`.
enum class anomaly_kind : std::uint8_t {
  lost_update,                   // a desired version the device never saw and never converged past
  stale_apply,                   // a version applied after a newer one
  out_of_order,                  // a delivery dropped as stale though nothing as new had arrived
  duplicate_apply,               // one version applied twice from deliveries
  unreconciled_after_reconnect,  // written before a reconnect, never picked up after it
  reported_overwrite,            // an older reported write accepted after a newer one
  divergence,                    // the final audit: desired ≠ reported through the mapping
};
inline constexpr std::size_t anomaly_kind_count = 7;
[[nodiscard]] std::string_view to_string(anomaly_kind k) noexcept;
[[nodiscard]] std::optional<anomaly_kind> anomaly_kind_from_string(std::string_view name) noexcept;

// How a desired version reached a device, which says what it covers.
enum class delivery : std::uint8_t {
  patch,     // an Azure desired notification: only that version's patch
  delta,     // an AWS /update/delta: cumulative, every desired value that differs from reported
  document,  // a GET (Azure twin, AWS /get/accepted): the whole desired state at that version
};

// How a desired property shows in reported once the device acknowledged it.
enum class ack_form : std::uint8_t {
  pnp_ack,  // Azure IoT Plug and Play: reported[name] = {"value", "ac", "av", "ad"} (A7)
  mirror,   // AWS: reported[name] is the value in force
};

// One writable property of a profile: its desired name, its reported name, and the form.
struct property_mapping {
  std::string desired;
  std::string reported;
  ack_form form = ack_form::mirror;
};
// The properties of one twin/shadow that the audit compares (a profile's acknowledged
// writable properties). Properties not listed are not compared.
struct device_mapping {
  std::vector<property_mapping> properties;
};

// The `mirror` rule of the audit (docs/SYNC-CHECK.md, divergence): every member of `desired`
// is in `reported` with an equal value, objects recursively, numbers by value — no AWS delta
// would be left. For others that judge shadows the same way (the engine's observer of shadow
// documents).
[[nodiscard]] bool mirrored(const boost::json::value& desired, const boost::json::value& reported);

struct checker_options {
  time_point run_start{};                        // examples' times are relative to it
  std::chrono::nanoseconds deadline = std::chrono::seconds(5);  // "converged within"
  // Writes accepted after this are not judged (still in flight when the run ended): they
  // count in `writes_not_judged`, not in desired_writes, and properties they wrote are not
  // compared by the audit. Nothing: every write is judged.
  std::optional<time_point> judge_writes_until;
  std::size_t examples_per_kind = 5;
  std::size_t shards = 64;
  // Called on the reporting thread for each anomaly as it is found (outside the checker's
  // locks), with the key it concerns: for live metrics. May be empty.
  std::function<void(anomaly_kind, std::string_view key)> on_anomaly;
};

// One concrete case of an anomaly.
struct anomaly_example {
  std::string device;                  // the key
  std::vector<std::int64_t> versions;  // the versions involved, as the kind's definition says
  double at_s = 0;                     // when it was found or happened, from run_start
  std::string detail;                  // one line
};

// Counted, not anomalies: what the protocol allows and the device handled.
struct sync_observations {
  std::uint64_t out_of_order_deliveries = 0;      // a notification/delta older than one delivered before
  std::uint64_t duplicate_deliveries = 0;         // a notification/delta of a version delivered before
  std::uint64_t stale_notifications_dropped = 0;  // dropped as stale, rightly
  std::uint64_t reconnects = 0;                   // sessions after each connection's first
  std::uint64_t writes_not_judged = 0;            // after judge_writes_until, or to a device that never came back
  std::uint64_t writes_already_in_force = 0;      // never delivered, but the audit shows them in force
};

struct sync_report {
  std::uint64_t desired_writes = 0;  // judged writes
  std::uint64_t converged = 0;       // judged writes the device applied (or covered) by the end
  std::uint64_t converged_within_deadline = 0;
  double convergence_ratio = 1.0;    // converged / desired_writes (1 when there are none)
  double deadline_s = 5;
  std::array<std::uint64_t, anomaly_kind_count> anomalies{};
  std::array<std::vector<anomaly_example>, anomaly_kind_count> examples{};
  sync_observations observed;

  [[nodiscard]] std::uint64_t count(anomaly_kind k) const noexcept { return anomalies[static_cast<std::size_t>(k)]; }
  [[nodiscard]] const std::vector<anomaly_example>& examples_of(anomaly_kind k) const noexcept {
    return examples[static_cast<std::size_t>(k)];
  }
  [[nodiscard]] std::uint64_t total_anomalies() const noexcept;
  // summary.json's "sync" object (contracts.md): desired_writes, converged, convergence_ratio,
  // deadline_s, converged_within_deadline, anomalies (every kind, zeros included), examples
  // (kinds with any), observed.
  [[nodiscard]] boost::json::object to_json() const;
};

class sync_checker {
 public:
  explicit sync_checker(checker_options options = {});
  ~sync_checker();
  sync_checker(const sync_checker&) = delete;
  sync_checker& operator=(const sync_checker&) = delete;

  // ---- the back end ----
  // The hub accepted a desired write of `key` that made its desired version `version` (Azure
  // desired $version, AWS shadow version); `patch` is what was written (the desired object),
  // `at` when the write was sent.
  void desired_written(std::string_view key, std::int64_t version, const boost::json::object& patch, time_point at);

  // ---- the devices ----
  // A connection came up / went down. `session` is unique per connection and larger for a
  // later one, also across devices sharing an id (device_observer's session serial).
  void session_started(std::string_view connection, std::uint64_t session, time_point at);
  void session_ended(std::string_view connection, std::uint64_t session, time_point at);
  // Desired version `version` reached the device (stale and duplicate deliveries included).
  void desired_delivered(std::string_view key, std::int64_t version, delivery via, time_point at);
  // The device dropped a delivered version as stale (right after its desired_delivered).
  void desired_dropped(std::string_view key, std::int64_t version, time_point at);
  // The device applied version `version` (and sent its acknowledgement), from `via`.
  void desired_applied(std::string_view key, std::int64_t version, delivery via, time_point at);
  // A reported write of `key`, number `serial` of its device (numbered in send order) sent on
  // `session`, was accepted by the hub as reported version `hub_version` (Azure reported
  // $version, AWS shadow version). Failed writes need no call.
  void reported_accepted(std::string_view key, std::uint64_t session, std::uint64_t serial, std::int64_t hub_version,
                         time_point at);
  // A key's record, searched for once (ref()): reported_accepted() given it skips the search by
  // name each call otherwise makes (a reporting device makes one per patch). Valid for the
  // checker's life, on any thread. Empty (false) until set.
  class key_ref {
   public:
    [[nodiscard]] explicit operator bool() const noexcept { return record_ != nullptr; }

   private:
    friend class sync_checker;
    void* shard_ = nullptr;
    void* record_ = nullptr;
  };
  [[nodiscard]] key_ref ref(std::string_view key);
  // As above, for the key `ref` refers to (`key`: its name, for the anomalies' examples).
  void reported_accepted(key_ref ref, std::string_view key, std::uint64_t session, std::uint64_t serial,
                         std::int64_t hub_version, time_point at);

  // The service saw `key` in sync at `version`: a shadow document whose desired state is all
  // mirrored in reported (the engine's observer of AWS shadow documents). Every write up to
  // `version` counts as converged from `at` on — also one the device never had to apply (an
  // AWS write equal to what is reported makes no delta). No online rule looks at it.
  void service_in_sync(std::string_view key, std::int64_t version, time_point at);

  // ---- the final audit ----
  // The twin/shadow read back through the service API: `desired` and `reported` documents
  // (Azure properties.desired / properties.reported, "$" members allowed; AWS state.desired /
  // state.reported), compared through `mapping`. Call once per key, after the settle period.
  void audit(std::string_view key, const boost::json::object& desired, const boost::json::object& reported,
             const device_mapping& mapping, time_point at);

  // Judges what needs the whole run (lost updates, unreconciled writes, convergence,
  // divergence) and returns the report. May be called more than once; each call judges again
  // from everything recorded so far (the online anomalies are not counted twice).
  [[nodiscard]] sync_report finish(time_point at) const;

  // Anomalies found so far by the rules judged as events arrive (stale_apply, out_of_order,
  // duplicate_apply, reported_overwrite); the others show only in finish().
  [[nodiscard]] std::uint64_t anomalies_so_far(anomaly_kind k) const noexcept;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace twinfleet::check
