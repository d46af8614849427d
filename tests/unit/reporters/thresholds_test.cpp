// Threshold evaluation against a hand-built summary: every aggregate and comparison both
// holding and failing, the figures it reports, and metrics the summary lacks.
#include "sample_summary.hpp"

#include <twinfleet/reporters/thresholds.hpp>

#include <json_test_util.hpp>

using namespace twinfleet;
using namespace twinfleet::test;
using reporters::evaluate_threshold;
using Catch::Matchers::Contains;

namespace {

reporters::threshold_result eval(std::string_view metric, std::string_view text, const boost::json::object& s = sample_summary()) {
  return evaluate_threshold(condition(metric, text), s);
}

}  // namespace

TEST_CASE("percentiles come from the operation's histogram, in milliseconds", "[reporters][thresholds]") {
  const auto fail = eval("reported_patch", "p99 < 50ms");
  CHECK_FALSE(fail.ok);
  REQUIRE(fail.value);
  CHECK(*fail.value == Approx(99.0).epsilon(0.01));
  CHECK(fail.unit == "ms");
  CHECK(fail.name == "reported_patch");
  CHECK(fail.expr == "p99 < 50ms");
  CHECK_THAT(fail.message, Contains("reported_patch p99 = ") && Contains("ms, limit < 50 ms (over by "));
  CHECK_THAT(fail.detail, Contains("over by 4"));

  const auto pass = eval("reported_patch", "p50 < 60ms");
  CHECK(pass.ok);
  CHECK(*pass.value == Approx(50.0).epsilon(0.01));
  CHECK(pass.detail.empty());

  // Any percentile the histogram can answer, not only the ones latency_ms lists.
  const auto p95 = eval("reported_patch", "p(95) <= 96ms");
  CHECK(p95.ok);
  CHECK(*p95.value == Approx(95.0).epsilon(0.01));
  const auto p999 = eval("reported_patch", "p99.9 < 99ms");
  CHECK_FALSE(p999.ok);
  CHECK(*p999.value == Approx(99.9).epsilon(0.01));
}

TEST_CASE("avg, min and max of a latency", "[reporters][thresholds]") {
  CHECK(eval("reported_patch", "avg < 51ms").ok);
  const auto avg = eval("reported_patch", "avg < 40ms");
  CHECK_FALSE(avg.ok);
  CHECK(*avg.value == Approx(50.05).epsilon(0.001));  // the mean is exact: sum / count
  CHECK(eval("reported_patch", "min >= 0.1ms").ok);
  CHECK_FALSE(eval("reported_patch", "min > 0.1ms").ok);
  CHECK(eval("reported_patch", "max <= 100ms").ok);
  const auto max = eval("reported_patch", "max < 80ms");
  CHECK_FALSE(max.ok);
  CHECK(*max.value == Approx(100.0));
  CHECK_THAT(max.detail, Contains("over by 20 ms"));
}

TEST_CASE("without a histogram, latency_ms answers the percentiles it lists and nothing else", "[reporters][thresholds]") {
  auto s = sample_summary();
  auto& op = s["operations"].as_object()["reported_patch"].as_object();
  op.erase("histogram");
  op["latency_ms"] = jv(R"({"p50": 12.5, "p90": 30, "p99": 61.2, "max": 90, "mean": 14})");
  const auto p99 = eval("reported_patch", "p99 < 50ms", s);
  CHECK_FALSE(p99.ok);
  CHECK(*p99.value == Approx(61.2));
  CHECK(p99.message == "reported_patch p99 = 61.2 ms, limit < 50 ms (over by 11.2 ms)");
  CHECK(eval("reported_patch", "p90 <= 30ms", s).ok);
  CHECK(eval("reported_patch", "avg < 15ms", s).ok);

  const auto p95 = eval("reported_patch", "p95 < 50ms", s);
  CHECK_FALSE(p95.ok);
  CHECK_FALSE(p95.value);
  CHECK_THAT(p95.message, Contains("no histogram for reported_patch and no p95 in its latency_ms"));
}

TEST_CASE("count, value and rate of an operation", "[reporters][thresholds]") {
  CHECK(eval("reported_patch", "count == 1000").ok);
  const auto count = eval("reported_patch", "count > 2000");
  CHECK_FALSE(count.ok);
  CHECK(*count.value == 1000);
  CHECK(count.unit.empty());
  CHECK(count.detail == "under by 1000");
  CHECK(eval("reported_patch", "total >= 1000").ok);

  const auto rate = eval("reported_patch", "rate >= 100/s");  // 1000 in 10 s
  CHECK(rate.ok);
  CHECK(*rate.value == Approx(100));
  CHECK(rate.unit == "/s");
  const auto slow = eval("reported_patch", "rate > 150/s");
  CHECK_FALSE(slow.ok);
  CHECK(slow.message == "reported_patch rate = 100/s, limit > 150/s (under by 50/s)");
}

TEST_CASE("ratio of an operation is its error ratio", "[reporters][thresholds]") {
  const auto ok = eval("reported_patch", "ratio < 0.01");  // 5 errors in 1000
  CHECK(ok.ok);
  CHECK(*ok.value == Approx(0.005));
  CHECK_FALSE(eval("reported_patch", "ratio <= 0.1%").ok);
}

TEST_CASE("convergence ratio within a deadline", "[reporters][thresholds]") {
  // The deadline the run tracked: sync.converged_within_deadline / sync.desired_writes.
  const auto held = eval("convergence", "ratio >= 0.96 within 5s");
  CHECK(held.ok);
  CHECK(*held.value == Approx(0.96));
  const auto failed = eval("convergence", "ratio >= 0.999 within 5s");
  CHECK_FALSE(failed.ok);
  CHECK(failed.message == "convergence ratio within 5s = 0.96, limit >= 0.999 (under by 0.039)");
  CHECK(reporters::console_line(failed) == "\u2717 convergence ratio >= 0.999 within 5s (0.96, under by 0.039)");

  // Another deadline: counted from the convergence histogram (480 by 4.8 s, 492 by 6 s).
  const auto ten = eval("convergence", "ratio >= 99.9% within 10s");
  CHECK_FALSE(ten.ok);
  CHECK(*ten.value == Approx(492.0 / 500));
  const auto two = eval("convergence", "ratio >= 0.3 within 2s");
  // 200 by 2 s; count_at_or_below may miss the few (10 ms apart) in the bucket straddling 2 s.
  CHECK(*two.value <= 200.0 / 500);
  CHECK(*two.value == Approx(200.0 / 500).margin(0.008));

  // A value printed with the digits that tell it from the limit.
  auto s = sample_summary();
  s["sync"].as_object()["converged_within_deadline"] = 49925;
  s["sync"].as_object()["desired_writes"] = 50000;
  const auto close = eval("convergence", "ratio >= 0.999 within 5s", s);
  CHECK_FALSE(close.ok);
  CHECK_THAT(close.message, Contains("= 0.9985,"));

  s["sync"].as_object()["desired_writes"] = 0;
  const auto none = eval("convergence", "ratio >= 0.999 within 5s", s);
  CHECK_FALSE(none.ok);
  CHECK_THAT(none.message, Contains("no desired writes were made"));
}

TEST_CASE("errors add up over every operation", "[reporters][thresholds]") {
  CHECK(eval("errors", "== 5").ok);
  const auto rate = eval("errors", "rate < 0.1/s");  // 5 errors in 10 s
  CHECK_FALSE(rate.ok);
  CHECK(*rate.value == Approx(0.5));
  // 5 of 1100 requests: the convergence timings are not requests.
  const auto ratio = eval("errors", "ratio < 0.001");
  CHECK_FALSE(ratio.ok);
  CHECK(*ratio.value == Approx(5.0 / 1100));
}

TEST_CASE("anomaly counts, all kinds and one kind", "[reporters][thresholds]") {
  CHECK(eval("", "anomalies.lost_update == 0").ok);
  const auto stale = eval("", "anomalies.stale_apply == 0");
  CHECK_FALSE(stale.ok);
  CHECK(stale.name == "anomalies.stale_apply");
  CHECK(stale.expr == "== 0");
  CHECK(stale.message == "anomalies.stale_apply = 3, limit == 0 (over by 3)");
  CHECK(reporters::console_line(stale) == "\u2717 anomalies.stale_apply == 0 (3, over by 3)");
  CHECK_FALSE(eval("anomalies", "< 1").ok);
  CHECK(eval("anomalies", "<= 3").ok);
  CHECK(*eval("anomalies", "rate < 1/s").value == Approx(0.3));

  // A kind the checker did not count is not silently zero.
  const auto missing = eval("", "anomalies.duplicate_apply == 0");
  CHECK_FALSE(missing.ok);
  CHECK_FALSE(missing.value);
  CHECK_THAT(missing.message, Contains("no 'duplicate_apply' count (it has: lost_update, stale_apply)"));
}

TEST_CASE("every comparison both holds and fails", "[reporters][thresholds]") {
  // anomalies.stale_apply is 3.
  const std::pair<const char*, const char*> cases[] = {
      {"< 4", "< 3"}, {"<= 3", "<= 2"}, {"> 2", "> 3"}, {">= 3", ">= 4"}, {"== 3", "== 2"}, {"!= 2", "!= 3"},
  };
  for (const auto& [holds, fails] : cases) {
    INFO(holds << " / " << fails);
    CHECK(eval("anomalies.stale_apply", holds).ok);
    const auto f = eval("anomalies.stale_apply", fails);
    CHECK_FALSE(f.ok);
    CHECK_FALSE(f.detail.empty());
  }
  CHECK(eval("anomalies.stale_apply", "!= 3").detail == "equal to the limit");
}

TEST_CASE("summary numbers by path: devices.* and sync.*", "[reporters][thresholds]") {
  CHECK(eval("devices.connect_failures", "<= 2").ok);
  CHECK_FALSE(eval("devices.connect_failures", "== 0").ok);
  CHECK(eval("devices.connected_peak", ">= 198").ok);
  CHECK(eval("sync.convergence_ratio", ">= 98%").ok);
  CHECK_FALSE(eval("sync.converged", "== 500").ok);
  const auto ratio = eval("devices.connect_failures", "ratio < 0.5");
  CHECK_FALSE(ratio.ok);
  CHECK_THAT(ratio.message, Contains("a ratio is not defined for devices.connect_failures"));
}

TEST_CASE("engine lag from engine.lag_ms", "[reporters][thresholds]") {
  const auto lag = eval("engine_lag", "p99 < 50ms");
  CHECK_FALSE(lag.ok);
  CHECK(*lag.value == Approx(65.5));
  CHECK(eval("engine_lag", "max < 200ms").ok);
}

TEST_CASE("desired_write adds Azure PATCHes and AWS shadow updates; desired_apply reads desired_propagation", "[reporters][thresholds]") {
  auto s = sample_summary();
  metrics::histogram azure;
  azure.record_n(10'000'000, 90);  // 90 at 10 ms
  metrics::histogram aws;
  aws.record_n(100'000'000, 10);  // 10 at 100 ms
  s["operations"].as_object()["desired_write"] = operation(azure, 1);
  s["operations"].as_object()["shadow_update"] = operation(aws, 0);
  s["operations"].as_object()["desired_propagation"] = operation(connect_latencies(), 0);
  CHECK(*eval("desired_write", "count == 100", s).value == 100);
  // p95 of the union lies in the AWS samples, which neither part's p95 alone shows.
  CHECK(*eval("desired_write", "p95 < 50ms", s).value == Approx(100).epsilon(0.01));
  CHECK(*eval("desired_write", "p50 < 50ms", s).value == Approx(10).epsilon(0.01));
  CHECK(*eval("desired_apply", "p99 < 50ms", s).value == Approx(5).epsilon(0.01));
}

TEST_CASE("a metric the summary lacks fails with a reason instead of passing or throwing", "[reporters][thresholds]") {
  const auto method = eval("method", "p99 < 100ms");
  CHECK_FALSE(method.ok);
  CHECK_FALSE(method.value);
  CHECK(method.message == "method p99 < 100ms: no method operations were recorded");
  CHECK(reporters::console_line(method) == "\u2717 method p99 < 100ms (no method operations were recorded)");
  CHECK_THAT(eval("disconnects", "< 10").message, Contains("devices.disconnects is not in the summary"));

  const auto bare = jo(R"({"scenario":"x","duration_s":0,"operations":{}})");
  for (const auto& [metric, text] : std::vector<std::pair<std::string, std::string>>{
           {"reported_patch", "p99 < 50ms"}, {"convergence", "ratio >= 0.9 within 5s"}, {"errors", "rate < 1/s"},
           {"anomalies", "== 0"}, {"engine_lag", "p99 < 1s"}, {"sync.converged", "> 0"}, {"connect", "count > 0"}}) {
    INFO(metric << " " << text);
    const auto r = eval(metric, text, bare);
    CHECK_FALSE(r.ok);
    CHECK_FALSE(r.value);
    CHECK_FALSE(r.message.empty());
  }
}

TEST_CASE("results go into summary.thresholds and come back", "[reporters][thresholds]") {
  auto s = sample_summary();
  const std::vector<scenario::threshold> ts{condition("reported_patch", "p50 < 60ms"), condition("", "anomalies.stale_apply == 0"),
                                            condition("method", "p99 < 1s")};
  const auto results = reporters::evaluate_thresholds(ts, s);
  REQUIRE(results.size() == 3);
  CHECK_FALSE(reporters::all_passed(results));
  reporters::store_threshold_results(s, results);
  const auto& stored = s.at("thresholds").as_array();
  REQUIRE(stored.size() == 3);
  CHECK(stored[0].at("name") == "reported_patch");
  CHECK(stored[0].at("expr") == "p50 < 60ms");
  CHECK(stored[0].at("unit") == "ms");
  CHECK(stored[0].at("ok") == true);
  CHECK(stored[1].at("value").to_number<double>() == 3);
  CHECK(stored[2].at("value").is_null());
  CHECK(stored[2].at("ok") == false);

  const auto back = reporters::threshold_results_from(s);
  REQUIRE(back.size() == 3);
  for (std::size_t i = 0; i < 3; ++i) {
    CHECK(back[i].name == results[i].name);
    CHECK(back[i].ok == results[i].ok);
    CHECK(back[i].message == results[i].message);
    CHECK(reporters::console_line(back[i]) == reporters::console_line(results[i]));
  }
  const auto text = reporters::console_report(results);
  CHECK_THAT(text, Contains("  \u2713 reported_patch p50 < 60ms (") && Contains("2 of 3 thresholds failed"));
  CHECK(reporters::console_report({}).empty());
}
