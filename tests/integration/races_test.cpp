// The shipped race scenarios (scenarios/races/, docs/RACES.md), each run twice through the real
// `twinfleet run` against the embedded hub with the same hub faults: with the fleet's buggy
// quirk the sync checker reports the race's anomaly kind, with an example naming one of the
// fleet's devices, and the scenario's `anomalies: count == 0` threshold fails (exit 99); with the
// quirk switched off by --set the same faults end with no anomaly of any kind (exit 0).
#include "process.hpp"
#include "test_data.hpp"

#include <boost/json.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <fstream>
#include <string>

using namespace std::chrono_literals;
using twinfleet::test::run_program;
using twinfleet::test::temp_dir;

namespace {

struct race {
  const char* scenario;    // under scenarios/races/
  const char* quirk;       // fleet[0]'s quirk that makes the device buggy
  const char* kind;        // the anomaly it gives
  const char* id_prefix;   // the fleet's device ids
  const char* observed;    // sync.observed.<name> that shows the fault struck (or "")
  // More checks of the buggy run's summary.json, for a race whose proof needs them.
  void (*also_buggy)(const boost::json::object& summary) = nullptr;
  // The same for the correct run.
  void (*also_correct)(const boost::json::object& summary) = nullptr;
};

struct outcome {
  twinfleet::test::run_result run;
  boost::json::object summary;
};

outcome run_race(const race& r, bool buggy) {
  temp_dir dir;
  const auto file = std::filesystem::path(TWINFLEET_SOURCE_DIR) / "scenarios/races" / r.scenario;
  const auto report = dir.path() / "report";
  std::vector<std::string> args{"run", file.string(), "--quiet", "--report-dir", report.string(),
                                "--metrics-listen", "127.0.0.1:0"};
  if (!buggy) {
    args.emplace_back("--set");
    args.emplace_back(std::string("fleet.0.overrides.quirks.") + r.quirk + "=false");
  }
  outcome o;
  // Each scenario lasts about 10 s plus the settle wait (at most 5 s) and the audit.
  o.run = run_program(TWINFLEET_CLI, args, 90s);
  std::ifstream in(report / "summary.json");
  if (in) {
    auto v = boost::json::parse(std::string(std::istreambuf_iterator<char>(in), {}));
    if (v.is_object()) o.summary = std::move(v.as_object());
  }
  return o;
}

std::int64_t number_at(const boost::json::object& o, std::string_view section, std::string_view name) {
  const auto* s = o.if_contains(section);
  if (s == nullptr || !s->is_object()) return -1;
  const auto* v = s->as_object().if_contains(name);
  return v != nullptr && v->is_number() ? v->to_number<std::int64_t>() : -1;
}

void check_race(const race& r) {
  INFO("scenario " << r.scenario);
  {
    const auto buggy = run_race(r, true);
    INFO("buggy run (" << r.quirk << ": true)\nstdout: " << buggy.run.out << "\nstderr: " << buggy.run.err);
    REQUIRE_FALSE(buggy.run.timed_out);
    CHECK(buggy.run.exit_code == 99);  // the scenario's `anomalies: count == 0` failed
    REQUIRE(buggy.summary.contains("sync"));
    const auto& sync = buggy.summary.at("sync").as_object();
    INFO("sync: " << boost::json::serialize(sync));
    CHECK(sync.at("desired_writes").to_number<std::int64_t>() > 0);
    CHECK(number_at(sync, "anomalies", r.kind) > 0);
    // An example names the device (a key of this fleet) and the versions involved.
    const auto* examples = sync.at("examples").as_object().if_contains(r.kind);
    REQUIRE(examples != nullptr);
    REQUIRE(!examples->as_array().empty());
    const auto& first = examples->as_array().front().as_object();
    CHECK(std::string(first.at("device").as_string()).starts_with(r.id_prefix));
    CHECK(!first.at("versions").as_array().empty());
    if (r.also_buggy != nullptr) r.also_buggy(buggy.summary);
  }
  {
    const auto correct = run_race(r, false);
    INFO("correct run (" << r.quirk << ": false)\nstdout: " << correct.run.out << "\nstderr: " << correct.run.err);
    REQUIRE_FALSE(correct.run.timed_out);
    CHECK(correct.run.exit_code == 0);
    REQUIRE(correct.summary.contains("sync"));
    const auto& sync = correct.summary.at("sync").as_object();
    INFO("sync: " << boost::json::serialize(sync));
    CHECK(sync.at("desired_writes").to_number<std::int64_t>() > 0);
    for (const auto& [kind, count] : sync.at("anomalies").as_object()) {
      INFO("anomaly kind " << kind);
      CHECK(count.to_number<std::int64_t>() == 0);
    }
    CHECK(sync.at("examples").as_object().empty());
    // The same faults struck the correct device, which handled them.
    if (*r.observed != '\0') CHECK(number_at(sync, "observed", r.observed) > 0);
    CHECK(sync.at("convergence_ratio").to_number<double>() == 1.0);
    if (r.also_correct != nullptr) r.also_correct(correct.summary);
  }
}

// operations.<op>.<field> of a summary (count, errors), or -1.
std::int64_t operation(const boost::json::object& summary, std::string_view op, std::string_view field) {
  const auto* ops = summary.if_contains("operations");
  if (ops == nullptr || !ops->is_object()) return -1;
  return number_at(ops->as_object(), op, field);
}

}  // namespace

TEST_CASE("races: GET before subscribe misses writes in the gap (C1.2) — lost_update", "[races][integration]") {
  check_race({"get-before-subscribe.yaml", "get_before_subscribe", "lost_update", "gbs-bulb-", ""});
}

TEST_CASE("races: writes in flight when the connection drops, no GET after reconnecting (C1.1) — unreconciled_after_reconnect",
          "[races][integration]") {
  check_race({"offline-reconnect.yaml", "no_reconcile_on_reconnect", "unreconciled_after_reconnect", "off-bulb-",
              "reconnects"});
}

TEST_CASE("races: reordered Azure desired notifications applied without a version check — stale_apply",
          "[races][integration]") {
  check_race({"azure-out-of-order.yaml", "ignore_desired_version", "stale_apply", "ooo-bulb-",
              "out_of_order_deliveries"});
}

TEST_CASE("races: duplicated notifications applied twice (C2.3) — duplicate_apply", "[races][integration]") {
  check_race({"qos0-duplicates.yaml", "ignore_desired_version", "duplicate_apply", "dup-bulb-", "duplicate_deliveries"});
}

TEST_CASE("races: AWS accepted/delta in either order with a shared version counter (C2.2) — out_of_order",
          "[races][integration]") {
  check_race({"aws-accepted-delta-swap.yaml", "shared_version_counter", "out_of_order", "swap-bulb-", ""});
}

TEST_CASE("races: back end and device update one shadow at once, deltas and accepted crossing (C2.7) — out_of_order",
          "[races][integration]") {
  check_race({"version-conflict.yaml", "shared_version_counter", "out_of_order", "ver-bulb-", "out_of_order_deliveries"});
}

TEST_CASE("races: reported patches not waited for, applied by the hub out of order (C1.4) — reported_overwrite",
          "[races][integration]") {
  check_race({"reported-reorder.yaml", "no_wait_between_reported", "reported_overwrite", "rep-bulb-", ""});
}

TEST_CASE("races: two clients with one device id take each other over (C1.8) — reported_overwrite across sessions",
          "[races][integration]") {
  check_race({"duplicate-client-id.yaml", "duplicate_connection", "reported_overwrite", "twice-bulb-", "",
              [](const boost::json::object& summary) {
                const auto& sync = summary.at("sync").as_object();
                // The inversions are between sessions (the replaced client's write applied after
                // the newer session's), not within one session as in C1.4.
                for (const auto& e : sync.at("examples").as_object().at("reported_overwrite").as_array()) {
                  INFO(e.at("detail").as_string());
                  CHECK(std::string(e.at("detail").as_string()).find("of newer session") != std::string::npos);
                }
                // The two clients took each other over many times, and each applied deliveries
                // the other had applied too: a notification one received and a GET of the other.
                CHECK(number_at(sync, "observed", "reconnects") > 100);
                CHECK(number_at(sync, "anomalies", "duplicate_apply") > 0);
                CHECK(number_at(sync, "anomalies", "lost_update") == 0);
                CHECK(number_at(sync, "anomalies", "unreconciled_after_reconnect") == 0);
                // Two connections per device id, yet the device counts once.
                const auto& devices = summary.at("devices").as_object();
                CHECK(devices.at("planned").to_number<std::int64_t>() == 20);
                CHECK(devices.at("connected_peak").to_number<std::int64_t>() == 20);
                CHECK(devices.at("connect_failures").to_number<std::int64_t>() == 0);
              }});
}

TEST_CASE("races: Azure patches of different properties reordered, no GET on a $version gap (C1.3) — divergence",
          "[races][integration]") {
  race r{"azure-gap-reorder.yaml", "no_resync_on_gap", "divergence", "gap-bulb-", "out_of_order_deliveries"};
  r.also_buggy = [](const boost::json::object& summary) {
    const auto& sync = summary.at("sync").as_object();
    // The overtaken patch was delivered and dropped by version, as it should be: nothing is
    // lost or applied stale, the harm is only the property the dropped patch alone carried.
    CHECK(number_at(sync, "anomalies", "lost_update") == 0);
    CHECK(number_at(sync, "anomalies", "stale_apply") == 0);
    CHECK(number_at(sync, "observed", "stale_notifications_dropped") > 0);
    CHECK(sync.at("converged").to_number<std::int64_t>() < sync.at("desired_writes").to_number<std::int64_t>());
    // One GET per device, at its connect: no resync.
    CHECK(operation(summary, "twin_get", "count") == 30);
  };
  r.also_correct = [](const boost::json::object& summary) {
    // The gaps made the correct device GET its twin again (C1.3), many times.
    CHECK(operation(summary, "twin_get", "count") > 30 + 20);
    CHECK(operation(summary, "twin_get", "errors") == 0);
  };
  check_race(r);
}

TEST_CASE("races: AWS /get right after SUBACK loses its answer, the device waits its whole request timeout (C2.4) — lost_update",
          "[races][integration]") {
  race r{"subscription-activation.yaml", "no_get_retry", "lost_update", "sub-bulb-", ""};
  r.also_buggy = [](const boost::json::object& summary) {
    const auto& sync = summary.at("sync").as_object();
    // Every /get went unanswered, and the device, still waiting, applied nothing: no write
    // converged (but a write of the value already reported, which makes no delta, B4), and the
    // bulbs written to diverge.
    CHECK(operation(summary, "twin_get", "count") == 20);
    CHECK(operation(summary, "twin_get", "errors") == 20);
    CHECK(sync.at("converged").to_number<std::int64_t>() <=
          std::max<std::int64_t>(0, number_at(sync, "observed", "writes_already_in_force")));
    CHECK(number_at(sync, "anomalies", "divergence") > 0);
  };
  r.also_correct = [](const boost::json::object& summary) {
    // The first /get of each device was lost too; the second, 0.5 s later, was answered
    // (twin_get times the device's whole read, tries included) and brought every write.
    CHECK(operation(summary, "twin_get", "count") == 20);
    CHECK(operation(summary, "twin_get", "errors") == 0);
    const auto& latency = summary.at("operations").at("twin_get").at("latency_ms").as_object();
    CHECK(latency.at("p50").to_number<double>() >= 450.0);
  };
  check_race(r);
}
