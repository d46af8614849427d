// Merging shard summaries: counts add, histograms merge exactly and percentiles are recomputed
// from them (not averaged), timelines add by second, and what cannot merge is refused clearly.
#include "sample_summary.hpp"

#include <twinfleet/reporters/merge.hpp>
#include <twinfleet/reporters/summary.hpp>
#include <twinfleet/reporters/thresholds.hpp>

#include <json_test_util.hpp>

using namespace twinfleet;
using namespace twinfleet::test;
using Catch::Matchers::Contains;
namespace json = boost::json;

namespace {

double num(const json::value& v) { return v.to_number<double>(); }

// A shard whose reported_patch latencies are all `ms` (n of them), and its own timeline.
json::object shard(double ms, std::uint64_t n, int connected, double duration, const char* started) {
  metrics::histogram h;
  h.record_n(static_cast<std::uint64_t>(ms * 1e6), n);
  metrics::histogram lag;
  lag.record_n(static_cast<std::uint64_t>(ms * 1e5), 10);
  json::array timeline;
  for (int t = 1; t <= 2; ++t) {
    timeline.push_back(json::object{{"t_s", t},
                                    {"connected", connected},
                                    {"ops", json::object{{"reported_patch", json::object{{"count", n / 2}, {"errors", 1}, {"p50_ms", ms}, {"p99_ms", ms},
                                                                                         {"histogram", metrics::to_json(h)}}}}}});
  }
  return json::object{
      {"schema", 1},
      {"scenario", "fleet"},
      {"seed", 7},
      {"target", "local"},
      {"started_at", started},
      {"duration_s", duration},
      {"interrupted", false},
      {"devices", json::object{{"planned", connected}, {"connected_peak", connected}, {"connect_failures", 1},
                               {"by_group", json::array{json::object{{"backend", "azure"}, {"profile", "lightbulb"}, {"planned", connected}, {"connected_peak", connected}}}}}},
      {"operations", json::object{{"reported_patch", json::object{{"count", n}, {"errors", 2}, {"latency_ms", latency_ms(h)}, {"histogram", metrics::to_json(h)}}}}},
      {"sync", json::object{{"desired_writes", 100},
                            {"converged", 90},
                            {"convergence_ratio", 0.9},
                            {"deadline_s", 5},
                            {"converged_within_deadline", 80},
                            {"anomalies", json::object{{"lost_update", 1}, {"stale_apply", 0}}},
                            {"examples", json::object{{"lost_update", json::array{json::object{{"device", started}, {"versions", json::array{3}}}}}}},
                            {"observed", json::object{{"duplicate_deliveries", 2}}}}},
      {"engine", json::object{{"threads", 2}, {"wake_grid_ms", 1}, {"lag_ms", latency_ms(lag)}, {"lag_histogram", metrics::to_json(lag)}, {"rss_bytes_peak", 1000}, {"workers", 1}}},
      {"timeline", std::move(timeline)},
      {"thresholds", json::array{json::object{{"name", "x"}, {"expr", "== 0"}, {"ok", true}}}}};
}

}  // namespace

TEST_CASE("merging two shards adds counts and recomputes percentiles from the merged histograms", "[reporters][merge]") {
  // 900 samples at 10 ms and 100 at 200 ms: the merged p99 is 200 ms, though neither shard's
  // p99 averaged (or the first shard's alone) says so; p50 is 10 ms.
  auto merged = reporters::merge_summaries({shard(10, 900, 60, 30.5, "2026-11-29T12:00:01Z"), shard(200, 100, 40, 31.0, "2026-11-29T12:00:00Z")});
  REQUIRE(merged);
  const auto& m = *merged;
  CHECK(m.at("schema") == 1);
  CHECK(m.at("scenario") == "fleet");
  CHECK(m.at("seed") == 7);
  CHECK(m.at("shards") == 2);
  CHECK(m.at("started_at") == "2026-11-29T12:00:00Z");
  CHECK(num(m.at("duration_s")) == 31.0);

  const auto& op = m.at("operations").at("reported_patch").as_object();
  CHECK(op.at("count") == 1000);
  CHECK(op.at("errors") == 4);
  CHECK(num(op.at("latency_ms").at("p50")) == Approx(10).epsilon(0.01));
  CHECK(num(op.at("latency_ms").at("p90")) == Approx(10).epsilon(0.01));
  CHECK(num(op.at("latency_ms").at("p99")) == Approx(200).epsilon(0.01));
  CHECK(num(op.at("latency_ms").at("max")) == Approx(200).epsilon(0.01));
  CHECK(num(op.at("latency_ms").at("mean")) == Approx(29).epsilon(0.01));
  const auto h = metrics::from_json(op.at("histogram"));
  REQUIRE(h);
  CHECK(h->count() == 1000);

  const auto& devices = m.at("devices").as_object();
  CHECK(devices.at("planned") == 100);
  CHECK(devices.at("connected_peak") == 100);
  CHECK(devices.at("connect_failures") == 2);
  REQUIRE(devices.at("by_group").as_array().size() == 1);
  CHECK(devices.at("by_group").at(0).at("planned") == 100);

  const auto& sync = m.at("sync").as_object();
  CHECK(sync.at("desired_writes") == 200);
  CHECK(sync.at("converged") == 180);
  CHECK(num(sync.at("convergence_ratio")) == Approx(0.9));
  CHECK(sync.at("converged_within_deadline") == 160);
  CHECK(sync.at("deadline_s") == 5);
  CHECK(sync.at("anomalies").at("lost_update") == 2);
  CHECK(sync.at("anomalies").at("stale_apply") == 0);
  CHECK(sync.at("examples").at("lost_update").as_array().size() == 2);
  CHECK(sync.at("observed").at("duplicate_deliveries") == 4);

  const auto& engine = m.at("engine").as_object();
  CHECK(engine.at("threads") == 4);
  CHECK(engine.at("workers") == 2);
  CHECK(num(engine.at("wake_grid_ms")) == 1);  // the same in every worker, kept once
  CHECK(num(engine.at("lag_ms").at("max")) == Approx(20).epsilon(0.01));
  CHECK(engine.contains("lag_histogram"));

  const auto& tl = m.at("timeline").as_array();
  REQUIRE(tl.size() == 2);
  CHECK(tl[0].at("t_s") == 1);
  CHECK(tl[0].at("connected") == 100);
  const auto& rp = tl[1].at("ops").at("reported_patch");
  CHECK(rp.at("count") == 500);
  CHECK(rp.at("errors") == 2);
  CHECK(num(rp.at("p50_ms")) == Approx(10).epsilon(0.01));
  CHECK(num(rp.at("p99_ms")) == Approx(200).epsilon(0.01));

  // Shard verdicts say nothing about the whole run.
  CHECK_FALSE(m.contains("thresholds"));
  CHECK(reporters::check_summary(m, "merged"));

  // Thresholds on the merged summary see the whole fleet.
  const auto r = reporters::evaluate_threshold(condition("reported_patch", "p99 < 100ms"), m);
  CHECK_FALSE(r.ok);
}

TEST_CASE("merging keeps the AWS observer's figures: counts added, the convergence source kept or marked mixed",
          "[reporters][merge]") {
  auto with_observer = [](json::object s, const char* from, int documents) {
    s["sync"].as_object()["aws_observer"] =
        json::object{{"convergence_from", from}, {"documents", documents}, {"malformed", 1}, {"hub_updates", documents + 5}};
    return s;
  };
  auto a = shard(10, 10, 5, 30, "2026-11-29T12:00:00Z");
  auto b = shard(10, 10, 5, 30, "2026-11-29T12:00:01Z");
  auto same = reporters::merge_summaries({with_observer(a, "observer", 100), with_observer(b, "observer", 50)});
  REQUIRE(same);
  const auto& o = same->at("sync").at("aws_observer").as_object();
  CHECK(o.at("convergence_from") == "observer");
  CHECK(o.at("documents") == 150);
  CHECK(o.at("malformed") == 2);
  CHECK(o.at("hub_updates") == 160);
  auto mixed = reporters::merge_summaries({with_observer(a, "observer", 100), with_observer(b, "devices", 0)});
  REQUIRE(mixed);
  CHECK(mixed->at("sync").at("aws_observer").at("convergence_from") == "mixed");
  // Shards without an observer (Azure only) merge to none.
  auto none = reporters::merge_summaries({a, b});
  REQUIRE(none);
  CHECK_FALSE(none->at("sync").as_object().contains("aws_observer"));
}

TEST_CASE("merging is exact: the merged histogram equals one recorded from all samples", "[reporters][merge]") {
  auto a = shard(3, 10, 1, 1, "2026-11-29T12:00:00Z");
  auto b = shard(70, 30, 1, 1, "2026-11-29T12:00:00Z");
  auto c = shard(0.5, 5, 1, 1, "2026-11-29T12:00:00Z");
  const auto merged = reporters::merge_summaries({a, b, c});
  REQUIRE(merged);
  metrics::histogram all;
  all.record_n(3'000'000, 10);
  all.record_n(70'000'000, 30);
  all.record_n(500'000, 5);
  const auto h = metrics::from_json(merged->at("operations").at("reported_patch").at("histogram"));
  REQUIRE(h);
  CHECK(*h == all);
}

TEST_CASE("shards without histograms merge to the largest shard figure", "[reporters][merge]") {
  auto a = jo(R"({"scenario":"s","duration_s":5,"operations":{"connect":{"count":10,"errors":0,"latency_ms":{"p50":1,"p99":9,"max":12,"mean":2}}},
                  "timeline":[{"t_s":1,"connected":3,"ops":{"connect":{"count":2,"errors":0,"p50_ms":1,"p99_ms":4}}}]})");
  auto b = jo(R"({"scenario":"s","duration_s":6,"operations":{"connect":{"count":30,"errors":1,"latency_ms":{"p50":3,"p99":5,"max":20,"mean":4}}},
                  "timeline":[{"t_s":1,"connected":4,"ops":{"connect":{"count":5,"errors":1,"p50_ms":2,"p99_ms":3}}},{"t_s":2,"connected":4}]})");
  const auto merged = reporters::merge_summaries({a, b}, {"a/summary.json", "b/summary.json"});
  REQUIRE(merged);
  const auto& op = merged->at("operations").at("connect");
  CHECK(op.at("count") == 40);
  CHECK(op.at("errors") == 1);
  CHECK(num(op.at("latency_ms").at("p50")) == 3);
  CHECK(num(op.at("latency_ms").at("p99")) == 9);
  CHECK(num(op.at("latency_ms").at("max")) == 20);
  CHECK(num(op.at("latency_ms").at("mean")) == Approx((10 * 2 + 30 * 4) / 40.0));
  CHECK_FALSE(op.as_object().contains("histogram"));
  const auto& tl = merged->at("timeline").as_array();
  REQUIRE(tl.size() == 2);
  CHECK(tl[0].at("connected") == 7);
  CHECK(tl[0].at("ops").at("connect").at("count") == 7);
  CHECK(num(tl[0].at("ops").at("connect").at("p99_ms")) == 4);
  CHECK(tl[1].at("connected") == 4);
}

TEST_CASE("merge refuses what cannot be one run", "[reporters][merge]") {
  const auto none = reporters::merge_summaries({});
  REQUIRE_FALSE(none);
  CHECK(none.error().code == reporters::report_code::bad_input);

  auto a = jo(R"({"scenario":"one","duration_s":1,"operations":{}})");
  auto b = jo(R"({"scenario":"two","duration_s":1,"operations":{}})");
  const auto mixed = reporters::merge_summaries({a, b}, {"a/summary.json", "b/summary.json"});
  REQUIRE_FALSE(mixed);
  CHECK(mixed.error().message == "b/summary.json: scenario 'two' differs from a/summary.json's 'one': shards of one run share their scenario");

  auto c = jo(R"({"scenario":"one","duration_s":1,"operations":{"connect":{"count":1,"histogram":{"format":"nope"}}}})");
  const auto bad = reporters::merge_summaries({a, c});
  REQUIRE_FALSE(bad);
  CHECK_THAT(bad.error().message, Contains("shard 2: operations.connect.histogram: not a histogram"));
}
