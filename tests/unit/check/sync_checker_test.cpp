// The sync checker on scripted event sequences (virtual time): each anomaly kind fires on the
// sequence its quirk and hub fault produce, with the right example, and a correct device under
// reordering, duplicates, delay, disconnects and the accepted/delta swap ends with none.
#include <twinfleet/check/sync_checker.hpp>

#include "json_test_util.hpp"

#include <boost/json.hpp>

#include <catch2/catch.hpp>

#include <thread>

using namespace twinfleet;
using namespace std::chrono_literals;
using check::anomaly_kind;
using check::delivery;
namespace json = boost::json;

namespace {

const check::time_point t0{std::chrono::seconds(1000)};
check::time_point at(std::chrono::milliseconds ms) { return t0 + ms; }

json::object patch(std::string_view text) { return test::jv(text).as_object(); }

check::checker_options options() {
  check::checker_options o;
  o.run_start = t0;
  o.deadline = 5s;
  return o;
}

const check::device_mapping bulb_azure{{{"brightness", "brightness", check::ack_form::pnp_ack},
                                        {"on", "on", check::ack_form::pnp_ack}}};
const check::device_mapping bulb_aws{{{"brightness", "brightness", check::ack_form::mirror},
                                      {"schedule", "schedule", check::ack_form::mirror}}};

std::string describe(const check::sync_report& r) {
  return json::serialize(r.to_json());
}

// A device that receives and applies a patch at once.
void deliver_and_apply(check::sync_checker& c, std::string_view key, std::int64_t v, delivery via, std::chrono::milliseconds when) {
  c.desired_delivered(key, v, via, at(when));
  c.desired_applied(key, v, via, at(when + 1ms));
}

}  // namespace

// ---- a correct device: zero anomalies ------------------------------------------------------

TEST_CASE("sync check: a correct device in order converges with no anomaly", "[check]") {
  check::sync_checker c(options());
  c.session_started("bulb-1", 1, at(0ms));
  deliver_and_apply(c, "bulb-1", 1, delivery::document, 10ms);
  for (int v = 2; v <= 4; ++v) {
    c.desired_written("bulb-1", v, patch(R"({"brightness":)" + std::to_string(v * 10) + "}"), at(v * 100ms));
    deliver_and_apply(c, "bulb-1", v, delivery::patch, v * 100ms + 5ms);
  }
  c.audit("bulb-1", patch(R"({"brightness":40,"$version":4,"$metadata":{"brightness":{"$lastUpdatedVersion":4}}})"),
          patch(R"({"brightness":{"value":40,"ac":200,"av":4,"ad":"applied"}})"), bulb_azure, at(2s));
  const auto r = c.finish(at(3s));
  INFO(describe(r));
  CHECK(r.total_anomalies() == 0);
  CHECK(r.desired_writes == 3);
  CHECK(r.converged == 3);
  CHECK(r.converged_within_deadline == 3);
  CHECK(r.convergence_ratio == 1.0);
}

TEST_CASE("sync check: reordered notifications the device drops as stale are observations, not anomalies", "[check]") {
  check::sync_checker c(options());
  c.session_started("bulb-1", 1, at(0ms));
  c.desired_written("bulb-1", 11, patch(R"({"brightness":11})"), at(100ms));
  c.desired_written("bulb-1", 12, patch(R"({"brightness":12})"), at(101ms));
  // 12 overtakes 11 (C2.1's RED/GREEN example); the device applies 12 and drops 11.
  deliver_and_apply(c, "bulb-1", 12, delivery::patch, 110ms);
  c.desired_delivered("bulb-1", 11, delivery::patch, at(160ms));
  c.desired_dropped("bulb-1", 11, at(160ms));
  const auto r = c.finish(at(3s));
  INFO(describe(r));
  CHECK(r.total_anomalies() == 0);
  CHECK(r.observed.out_of_order_deliveries == 1);
  CHECK(r.observed.stale_notifications_dropped == 1);
  // 12 rewrote everything 11 wrote, so applying 12 converged both.
  CHECK(r.converged == 2);
}

TEST_CASE("sync check: duplicate deliveries the device drops are observations, not anomalies", "[check]") {
  check::sync_checker c(options());
  c.session_started("thing-1/config", 1, at(0ms));
  c.desired_written("thing-1/config", 5, patch(R"({"brightness":5})"), at(100ms));
  deliver_and_apply(c, "thing-1/config", 5, delivery::delta, 105ms);
  c.desired_delivered("thing-1/config", 5, delivery::delta, at(106ms));  // QoS 0 duplicate (C2.3)
  c.desired_dropped("thing-1/config", 5, at(106ms));
  const auto r = c.finish(at(3s));
  INFO(describe(r));
  CHECK(r.total_anomalies() == 0);
  CHECK(r.observed.duplicate_deliveries == 1);
  CHECK(r.observed.stale_notifications_dropped == 1);
  CHECK(r.converged == 1);
}

TEST_CASE("sync check: a late version that arrives after a newer one is out of order once, then a duplicate", "[check]") {
  // The versions heard are kept sorted: 6 arriving after 7 must be found again when it repeats.
  check::sync_checker c(options());
  c.session_started("bulb-1", 1, at(0ms));
  for (auto [v, ms] : {std::pair{5, 100ms}, {7, 110ms}, {6, 120ms}, {6, 130ms}, {5, 140ms}}) {
    c.desired_delivered("bulb-1", v, delivery::patch, at(ms));
  }
  const auto r = c.finish(at(3s));
  INFO(describe(r));
  CHECK(r.observed.out_of_order_deliveries == 1);
  CHECK(r.observed.duplicate_deliveries == 2);
}

TEST_CASE("sync check: a device that hears of a write before the back end records it converges; a late one misses the deadline",
          "[check]") {
  check::sync_checker c(options());
  c.session_started("bulb-1", 1, at(0ms));
  // Different threads: the device's events arrive first.
  deliver_and_apply(c, "bulb-1", 2, delivery::patch, 105ms);
  c.desired_written("bulb-1", 2, patch(R"({"brightness":2})"), at(100ms));
  // Delivered after a long delay (traffic shaping): converged, but not within 5 s.
  c.desired_written("bulb-1", 3, patch(R"({"brightness":3})"), at(200ms));
  deliver_and_apply(c, "bulb-1", 3, delivery::patch, 7200ms);
  const auto r = c.finish(at(10s));
  INFO(describe(r));
  CHECK(r.total_anomalies() == 0);
  CHECK(r.converged == 2);
  CHECK(r.converged_within_deadline == 1);
}

TEST_CASE("sync check: an AWS write the service sees in sync at once (no delta: it equals what is reported) converges then, "
          "not at the next delta the device applies",
          "[check]") {
  check::sync_checker c(options());
  c.session_started("bulb-1", 1, at(0ms));
  deliver_and_apply(c, "bulb-1", 1, delivery::document, 10ms);
  // Version 2 equals reported: no delta; its own shadow document is in sync.
  c.desired_written("bulb-1", 2, patch(R"({"on":true})"), at(100ms));
  c.service_in_sync("bulb-1", 2, at(104ms));
  // Version 3, 8 s later, makes a delta the device applies.
  c.desired_written("bulb-1", 3, patch(R"({"brightness":30})"), at(8100ms));
  deliver_and_apply(c, "bulb-1", 3, delivery::delta, 8110ms);
  c.service_in_sync("bulb-1", 3, at(8120ms));
  // An older version said again changes nothing.
  c.service_in_sync("bulb-1", 2, at(8130ms));
  const auto r = c.finish(at(10s));
  INFO(describe(r));
  CHECK(r.total_anomalies() == 0);
  CHECK(r.desired_writes == 2);
  CHECK(r.converged == 2);
  CHECK(r.converged_within_deadline == 2);

  // Without the service's view, version 2 converges only with the delta of version 3, 8 s on.
  check::sync_checker d(options());
  d.session_started("bulb-1", 1, at(0ms));
  deliver_and_apply(d, "bulb-1", 1, delivery::document, 10ms);
  d.desired_written("bulb-1", 2, patch(R"({"on":true})"), at(100ms));
  d.desired_written("bulb-1", 3, patch(R"({"brightness":30})"), at(8100ms));
  deliver_and_apply(d, "bulb-1", 3, delivery::delta, 8110ms);
  const auto late = d.finish(at(10s));
  CHECK(late.converged == 2);
  CHECK(late.converged_within_deadline == 1);
}

TEST_CASE("sync check: writes while offline reconciled by the GET after reconnecting are no anomaly", "[check]") {
  check::sync_checker c(options());
  c.session_started("bulb-1", 1, at(0ms));
  deliver_and_apply(c, "bulb-1", 1, delivery::document, 10ms);
  c.session_ended("bulb-1", 1, at(1s));
  c.desired_written("bulb-1", 2, patch(R"({"brightness":20})"), at(1100ms));  // not stored for the device (C1.1)
  c.desired_written("bulb-1", 3, patch(R"({"on":true})"), at(1200ms));
  c.session_started("bulb-1", 2, at(1500ms));
  // Subscribe → GET → merge: a notification in between is buffered and dropped silently.
  c.desired_delivered("bulb-1", 3, delivery::patch, at(1510ms));
  deliver_and_apply(c, "bulb-1", 3, delivery::document, 1520ms);
  c.audit("bulb-1", patch(R"({"brightness":20,"on":true,"$version":3})"),
          patch(R"({"brightness":{"value":20,"ac":200,"av":3},"on":{"value":true,"ac":200,"av":3}})"), bulb_azure, at(3s));
  const auto r = c.finish(at(3s));
  INFO(describe(r));
  CHECK(r.total_anomalies() == 0);
  CHECK(r.converged == 2);
  CHECK(r.observed.reconnects == 1);
}

TEST_CASE("sync check: the AWS accepted/delta swap, and a write that makes no delta, are no anomaly for a correct device",
          "[check]") {
  check::sync_checker c(options());
  c.session_started("thing-1", 1, at(0ms));
  deliver_and_apply(c, "thing-1/config", 3, delivery::document, 10ms);
  c.desired_written("thing-1/config", 4, patch(R"({"brightness":40})"), at(100ms));
  // The delta comes after the accepted of the same version (the device keeps separate
  // counters, so nothing is dropped).
  deliver_and_apply(c, "thing-1/config", 4, delivery::delta, 120ms);
  // Its own mirror (version 5), then a write of the value already reported: no delta at all.
  c.reported_accepted("thing-1/config", 1, 1, 5, at(130ms));
  c.desired_written("thing-1/config", 6, patch(R"({"schedule":{"start":"08:00"}})"), at(200ms));
  c.audit("thing-1/config", patch(R"({"brightness":40,"schedule":{"start":"08:00"}})"),
          patch(R"({"brightness":40,"schedule":{"start":"08:00","end":"20:00"}})"), bulb_aws, at(3s));
  const auto r = c.finish(at(3s));
  INFO(describe(r));
  CHECK(r.total_anomalies() == 0);
  CHECK(r.converged == 2);
  CHECK(r.observed.writes_already_in_force == 1);
}

TEST_CASE("sync check: a refused desired value acknowledged with ac 400 is no divergence", "[check]") {
  check::sync_checker c(options());
  c.audit("bulb-1", patch(R"({"brightness":150,"$version":7,"$metadata":{"brightness":{"$lastUpdatedVersion":7}}})"),
          patch(R"({"brightness":{"value":40,"ac":400,"av":7,"ad":"out of range"}})"), bulb_azure, at(3s));
  CHECK(c.finish(at(3s)).total_anomalies() == 0);
}

// ---- each anomaly kind -----------------------------------------------------------------------

TEST_CASE("sync check: lost_update — GET before subscribe misses a write in the gap", "[check]") {
  check::sync_checker c(options());
  c.session_started("bulb-7", 1, at(0ms));
  deliver_and_apply(c, "bulb-7", 1, delivery::document, 10ms);    // the GET
  c.desired_written("bulb-7", 2, patch(R"({"brightness":40})"), at(12ms));  // lands before SUBSCRIBE
  c.desired_written("bulb-7", 3, patch(R"({"on":true})"), at(500ms));
  deliver_and_apply(c, "bulb-7", 3, delivery::patch, 505ms);  // a later patch of another property
  const auto r = c.finish(at(3s));
  INFO(describe(r));
  CHECK(r.count(anomaly_kind::lost_update) == 1);
  CHECK(r.total_anomalies() == 1);
  REQUIRE(r.examples_of(anomaly_kind::lost_update).size() == 1);
  const auto& e = r.examples_of(anomaly_kind::lost_update).front();
  CHECK(e.device == "bulb-7");
  CHECK(e.versions == std::vector<std::int64_t>{2});
  CHECK(e.at_s == Approx(0.012));
  CHECK(r.converged == 1);
  CHECK(r.desired_writes == 2);
}

TEST_CASE("sync check: a missed write that a later delivery rewrote is not lost", "[check]") {
  check::sync_checker c(options());
  c.session_started("bulb-7", 1, at(0ms));
  c.desired_written("bulb-7", 2, patch(R"({"brightness":40,"on":true})"), at(12ms));
  c.desired_written("bulb-7", 3, patch(R"({"brightness":50})"), at(100ms));
  c.desired_written("bulb-7", 4, patch(R"({"on":false})"), at(200ms));
  deliver_and_apply(c, "bulb-7", 3, delivery::patch, 105ms);
  deliver_and_apply(c, "bulb-7", 4, delivery::patch, 205ms);
  const auto r = c.finish(at(3s));
  INFO(describe(r));
  CHECK(r.total_anomalies() == 0);
  CHECK(r.converged == 3);
}

TEST_CASE("sync check: stale_apply — a version applied after a newer one", "[check]") {
  check::sync_checker c(options());
  c.session_started("bulb-3", 1, at(0ms));
  deliver_and_apply(c, "bulb-3", 12, delivery::patch, 100ms);
  deliver_and_apply(c, "bulb-3", 11, delivery::patch, 150ms);  // reordered, applied anyway
  const auto r = c.finish(at(3s));
  INFO(describe(r));
  CHECK(r.count(anomaly_kind::stale_apply) == 1);
  CHECK(r.total_anomalies() == 1);
  CHECK(c.anomalies_so_far(anomaly_kind::stale_apply) == 1);
  REQUIRE(r.examples_of(anomaly_kind::stale_apply).size() == 1);
  CHECK(r.examples_of(anomaly_kind::stale_apply)[0].versions == std::vector<std::int64_t>{12, 11});
  CHECK(r.examples_of(anomaly_kind::stale_apply)[0].at_s == Approx(0.151));
}

TEST_CASE("sync check: stale_apply — a notification older than the GET applied after it", "[check]") {
  check::sync_checker c(options());
  c.session_started("bulb-3", 1, at(0ms));
  c.desired_delivered("bulb-3", 9, delivery::patch, at(5ms));  // buffered during the GET
  deliver_and_apply(c, "bulb-3", 10, delivery::document, 10ms);
  c.desired_applied("bulb-3", 9, delivery::patch, at(12ms));  // released, not dropped
  const auto r = c.finish(at(3s));
  CHECK(r.count(anomaly_kind::stale_apply) == 1);
  CHECK(r.total_anomalies() == 1);
}

TEST_CASE("sync check: duplicate_apply — a duplicate delivery applied twice; a re-read GET is not", "[check]") {
  check::sync_checker c(options());
  c.session_started("bulb-4", 1, at(0ms));
  deliver_and_apply(c, "bulb-4", 5, delivery::document, 10ms);
  deliver_and_apply(c, "bulb-4", 5, delivery::document, 1000ms);  // the GET after a reconnect
  deliver_and_apply(c, "bulb-4", 6, delivery::patch, 1100ms);
  deliver_and_apply(c, "bulb-4", 6, delivery::patch, 1101ms);  // the duplicate, applied
  const auto r = c.finish(at(3s));
  INFO(describe(r));
  CHECK(r.count(anomaly_kind::duplicate_apply) == 1);
  CHECK(r.total_anomalies() == 1);
  REQUIRE(r.examples_of(anomaly_kind::duplicate_apply).size() == 1);
  CHECK(r.examples_of(anomaly_kind::duplicate_apply)[0].versions == std::vector<std::int64_t>{6});
  CHECK(r.observed.duplicate_deliveries == 1);
}

TEST_CASE("sync check: out_of_order — a delta dropped because /update/accepted advanced a shared counter", "[check]") {
  check::sync_checker c(options());
  c.session_started("thing-2", 1, at(0ms));
  deliver_and_apply(c, "thing-2", 3, delivery::document, 10ms);
  c.desired_written("thing-2", 4, patch(R"({"brightness":40})"), at(100ms));
  // /update/accepted 4 came first and moved the shared counter: the delta 4 looks stale.
  c.desired_delivered("thing-2", 4, delivery::delta, at(103ms));
  c.desired_dropped("thing-2", 4, at(103ms));
  const auto r = c.finish(at(3s));
  INFO(describe(r));
  CHECK(r.count(anomaly_kind::out_of_order) == 1);
  CHECK(r.count(anomaly_kind::lost_update) == 0);  // it was seen: its own kind, not lost
  CHECK(r.total_anomalies() == 1);
  REQUIRE(r.examples_of(anomaly_kind::out_of_order).size() == 1);
  CHECK(r.examples_of(anomaly_kind::out_of_order)[0].versions == std::vector<std::int64_t>{3, 4});
  CHECK(r.observed.stale_notifications_dropped == 0);
  CHECK(r.converged == 0);
}

TEST_CASE("sync check: unreconciled_after_reconnect — no GET after reconnecting, a write made offline never applied",
          "[check]") {
  check::sync_checker c(options());
  c.session_started("bulb-5", 1, at(0ms));
  deliver_and_apply(c, "bulb-5", 1, delivery::document, 10ms);
  c.session_ended("bulb-5", 1, at(1s));
  c.desired_written("bulb-5", 2, patch(R"({"brightness":20})"), at(1200ms));
  c.session_started("bulb-5", 2, at(1500ms));
  c.desired_written("bulb-5", 3, patch(R"({"on":true})"), at(2000ms));
  deliver_and_apply(c, "bulb-5", 3, delivery::patch, 2005ms);
  const auto r = c.finish(at(4s));
  INFO(describe(r));
  CHECK(r.count(anomaly_kind::unreconciled_after_reconnect) == 1);
  CHECK(r.count(anomaly_kind::lost_update) == 0);
  CHECK(r.total_anomalies() == 1);
  REQUIRE(r.examples_of(anomaly_kind::unreconciled_after_reconnect).size() == 1);
  const auto& e = r.examples_of(anomaly_kind::unreconciled_after_reconnect)[0];
  CHECK(e.versions == std::vector<std::int64_t>{2});
  CHECK(e.at_s == Approx(1.2));
}

TEST_CASE("sync check: a write to a device that went offline and never came back is not judged", "[check]") {
  check::sync_checker c(options());
  c.session_started("bulb-5", 1, at(0ms));
  c.desired_written("bulb-5", 2, patch(R"({"brightness":20})"), at(999ms));  // the hub dropped it just before
  c.session_ended("bulb-5", 1, at(1s));
  c.desired_written("bulb-5", 3, patch(R"({"brightness":30})"), at(2s));
  c.audit("bulb-5", patch(R"({"brightness":30})"), patch(R"({})"), bulb_azure, at(4s));
  const auto r = c.finish(at(4s));
  INFO(describe(r));
  CHECK(r.total_anomalies() == 0);
  CHECK(r.desired_writes == 0);
  CHECK(r.observed.writes_not_judged == 2);
}

TEST_CASE("sync check: a device connected long after a write it never heard lost it", "[check]") {
  check::sync_checker c(options());
  c.session_started("bulb-5", 1, at(0ms));
  c.desired_written("bulb-5", 2, patch(R"({"brightness":20})"), at(1s));
  c.session_ended("bulb-5", 1, at(9s));  // later than the 5 s deadline
  CHECK(c.finish(at(10s)).count(anomaly_kind::lost_update) == 1);
}

TEST_CASE("sync check: writes after the cutoff are not judged, nor audited", "[check]") {
  auto o = options();
  o.judge_writes_until = at(5s);
  check::sync_checker c(o);
  c.session_started("bulb-6", 1, at(0ms));
  c.desired_written("bulb-6", 2, patch(R"({"brightness":20})"), at(5500ms));  // still in flight
  c.audit("bulb-6", patch(R"({"brightness":20})"), patch(R"({"brightness":{"value":80,"ac":200,"av":1}})"), bulb_azure,
          at(6s));
  const auto r = c.finish(at(6s));
  INFO(describe(r));
  CHECK(r.total_anomalies() == 0);
  CHECK(r.desired_writes == 0);
  CHECK(r.observed.writes_not_judged == 1);
  CHECK(r.convergence_ratio == 1.0);
}

TEST_CASE("sync check: reported_overwrite — a stale session's write accepted after the newer session's", "[check]") {
  check::sync_checker c(options());
  // Two clients with one device id (C1.8): session 5 is taken over by 6, yet its write lands last.
  c.session_started("bulb-8", 5, at(0ms));
  c.reported_accepted("bulb-8", 5, 1, 10, at(100ms));
  c.session_started("bulb-8", 6, at(200ms));
  c.reported_accepted("bulb-8", 6, 1, 11, at(210ms));
  c.reported_accepted("bulb-8", 5, 2, 12, at(215ms));
  const auto r = c.finish(at(3s));
  INFO(describe(r));
  CHECK(r.count(anomaly_kind::reported_overwrite) == 1);
  CHECK(r.total_anomalies() == 1);
  REQUIRE(r.examples_of(anomaly_kind::reported_overwrite).size() == 1);
  const auto& e = r.examples_of(anomaly_kind::reported_overwrite)[0];
  CHECK(e.versions == std::vector<std::int64_t>{11, 12});
  CHECK_THAT(e.detail, Catch::Contains("newer session 6"));
}

TEST_CASE("sync check: reported_overwrite — writes not waited for, applied by the hub out of order", "[check]") {
  check::sync_checker c(options());
  c.session_started("bulb-9", 1, at(0ms));
  c.reported_accepted("bulb-9", 1, 2, 20, at(100ms));  // sent second, accepted first
  c.reported_accepted("bulb-9", 1, 1, 21, at(101ms));
  const auto r = c.finish(at(3s));
  CHECK(r.count(anomaly_kind::reported_overwrite) == 1);
  REQUIRE(r.examples_of(anomaly_kind::reported_overwrite).size() == 1);
  CHECK_THAT(r.examples_of(anomaly_kind::reported_overwrite)[0].detail, Catch::Contains("the same session"));
}

TEST_CASE("sync check: reported writes of a device that waits for each answer, across reconnects, are in order", "[check]") {
  check::sync_checker c(options());
  std::int64_t version = 1;
  std::uint64_t serial = 1;
  for (std::uint64_t session = 1; session <= 3; ++session) {
    c.session_started("bulb-9", session, at(std::chrono::milliseconds(session * 1000)));
    for (int i = 0; i < 5; ++i) {
      c.reported_accepted("bulb-9", session, serial++, version++, at(std::chrono::milliseconds(session * 1000 + i * 10)));
    }
  }
  CHECK(c.finish(at(5s)).total_anomalies() == 0);
}

TEST_CASE("sync check: divergence — the final audit finds desired and reported apart", "[check]") {
  check::sync_checker c(options());
  SECTION("Azure: acknowledged a different value") {
    c.audit("bulb-1", patch(R"({"brightness":40,"on":true,"$version":9})"),
            patch(R"({"brightness":{"value":30,"ac":200,"av":9},"on":{"value":true,"ac":200,"av":9}})"), bulb_azure, at(3s));
  }
  SECTION("Azure: acknowledged an older desired version") {
    c.audit("bulb-1", patch(R"({"brightness":40,"$version":9,"$metadata":{"brightness":{"$lastUpdatedVersion":9}}})"),
            patch(R"({"brightness":{"value":40,"ac":200,"av":8}})"), bulb_azure, at(3s));
  }
  SECTION("Azure: still applying (ac 202)") {
    c.audit("bulb-1", patch(R"({"brightness":40,"$version":9})"), patch(R"({"brightness":{"value":40,"ac":202,"av":9}})"),
            bulb_azure, at(3s));
  }
  SECTION("AWS: the mirror differs") {
    c.audit("bulb-1", patch(R"({"schedule":{"start":"08:00"}})"), patch(R"({"schedule":{"start":"07:00","end":"20:00"}})"),
            bulb_aws, at(3s));
  }
  SECTION("nothing reported") {
    c.audit("bulb-1", patch(R"({"brightness":40})"), patch(R"({})"), bulb_aws, at(3s));
  }
  const auto r = c.finish(at(3s));
  INFO(describe(r));
  CHECK(r.count(anomaly_kind::divergence) == 1);
  CHECK(r.total_anomalies() == 1);
  REQUIRE(r.examples_of(anomaly_kind::divergence).size() == 1);
  CHECK(r.examples_of(anomaly_kind::divergence)[0].device == "bulb-1");
  CHECK(r.examples_of(anomaly_kind::divergence)[0].at_s == Approx(3.0));
}

TEST_CASE("sync check: examples are capped per kind, counts are not, and the listener hears each online anomaly", "[check]") {
  auto o = options();
  o.examples_per_kind = 2;
  std::vector<std::pair<anomaly_kind, std::string>> heard;
  o.on_anomaly = [&](anomaly_kind k, std::string_view key) { heard.emplace_back(k, std::string(key)); };
  check::sync_checker c(o);
  for (int d = 0; d < 5; ++d) {
    const auto key = "bulb-" + std::to_string(d);
    deliver_and_apply(c, key, 3, delivery::patch, 10ms);
    deliver_and_apply(c, key, 2, delivery::patch, 20ms);
  }
  const auto r = c.finish(at(1s));
  CHECK(r.count(anomaly_kind::stale_apply) == 5);
  CHECK(r.examples_of(anomaly_kind::stale_apply).size() == 2);
  REQUIRE(heard.size() == 5);
  CHECK(heard[4] == std::pair<anomaly_kind, std::string>{anomaly_kind::stale_apply, "bulb-4"});
  // finish() again judges again without counting the online ones twice.
  CHECK(c.finish(at(1s)).count(anomaly_kind::stale_apply) == 5);
}

TEST_CASE("sync check: summary.json's sync object names every kind", "[check]") {
  check::sync_checker c(options());
  c.session_started("bulb-1", 1, at(0ms));
  deliver_and_apply(c, "bulb-1", 12, delivery::patch, 100ms);
  deliver_and_apply(c, "bulb-1", 11, delivery::patch, 150ms);
  const auto j = c.finish(at(1s)).to_json();
  INFO(json::serialize(j));
  for (auto name : {"lost_update", "stale_apply", "out_of_order", "duplicate_apply", "unreconciled_after_reconnect",
                    "reported_overwrite", "divergence"}) {
    CHECK(j.at("anomalies").as_object().contains(name));
    CHECK(check::anomaly_kind_from_string(name).has_value());
  }
  CHECK(j.at("anomalies").at("stale_apply") == 1);
  CHECK(j.at("examples").at("stale_apply").at(0).at("versions") == test::jv("[12,11]"));
  CHECK(j.at("examples").at("stale_apply").at(0).at("device") == "bulb-1");
  CHECK_FALSE(j.at("examples").as_object().contains("lost_update"));
  for (auto name : {"out_of_order_deliveries", "duplicate_deliveries", "stale_notifications_dropped"}) {
    CHECK(j.at("observed").as_object().contains(name));
  }
  CHECK(j.at("deadline_s") == 5.0);
}

TEST_CASE("sync check: devices on several threads at once are all counted", "[check]") {
  check::sync_checker c(options());
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&c, t] {
      for (int d = 0; d < 50; ++d) {
        const auto key = "dev-" + std::to_string(t) + "-" + std::to_string(d);
        c.session_started(key, static_cast<std::uint64_t>(t * 100 + d + 1), at(0ms));
        for (int v = 1; v <= 10; ++v) {
          c.desired_written(key, v, patch(R"({"brightness":1})"), at(std::chrono::milliseconds(v * 10)));
          deliver_and_apply(c, key, v, delivery::patch, std::chrono::milliseconds(v * 10 + 1));
        }
        deliver_and_apply(c, key, 9, delivery::document, 200ms);  // one stale apply each (a GET older than 10)
      }
    });
  }
  for (auto& th : threads) th.join();
  const auto r = c.finish(at(1s));
  CHECK(r.desired_writes == 2000);
  CHECK(r.converged == 2000);
  CHECK(r.count(anomaly_kind::stale_apply) == 200);
  CHECK(r.total_anomalies() == 200);
}
