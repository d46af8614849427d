// Threshold expressions: the k6-like syntax, good and bad.
#include <twinfleet/scenario/threshold.hpp>

#include <catch2/catch.hpp>

namespace sc = twinfleet::scenario;
using namespace std::chrono_literals;

namespace {
sc::threshold ok(std::string_view metric, std::string_view text) {
  std::string error;
  auto t = sc::parse_threshold(metric, text, error);
  INFO(error);
  REQUIRE(t);
  return *t;
}
std::string bad(std::string_view metric, std::string_view text) {
  std::string error;
  CHECK_FALSE(sc::parse_threshold(metric, text, error));
  return error;
}
}  // namespace

TEST_CASE("good thresholds parse into their parts", "[scenario][threshold]") {
  auto t = ok("reported_patch", "p99 < 50ms");
  CHECK(t.aggregate == sc::threshold_aggregate::percentile);
  CHECK(t.percentile == 99);
  CHECK(t.op == sc::comparison::less);
  CHECK(t.unit == sc::threshold_unit::duration);
  CHECK(t.bound == Approx(0.05));
  CHECK(t.holds(0.049));
  CHECK_FALSE(t.holds(0.05));

  t = ok("convergence", "ratio >= 0.999 within 5s");
  CHECK(t.aggregate == sc::threshold_aggregate::ratio);
  CHECK(t.bound == Approx(0.999));
  CHECK(t.within == 5s);

  t = ok("", "anomalies.lost_update == 0");
  CHECK(t.metric == "anomalies.lost_update");
  CHECK(t.aggregate == sc::threshold_aggregate::value);
  CHECK(t.op == sc::comparison::equal);

  t = ok("connect", "p(99.9)<=2s");
  CHECK(t.percentile == Approx(99.9));
  CHECK(t.op == sc::comparison::less_equal);
  t = ok("errors", "rate < 1/s");
  CHECK(t.unit == sc::threshold_unit::rate);
  t = ok("convergence", "ratio > 99.5% within 1m");
  CHECK(t.bound == Approx(0.995));
  t = ok("anomalies", "count == 0");
  CHECK(t.aggregate == sc::threshold_aggregate::count);
  CHECK(ok("method", "avg < 20ms").aggregate == sc::threshold_aggregate::avg);
  CHECK(ok("disconnects", "!= 3").op == sc::comparison::not_equal);
}

TEST_CASE("bad thresholds say what is wrong", "[scenario][threshold]") {
  CHECK(bad("reported_patc", "p99 < 50ms").starts_with("unknown metric 'reported_patc' (did you mean 'reported_patch'?)"));
  CHECK(bad("reported_patch", "p99 < 50") == "a latency bound needs a unit, as in 50ms");
  CHECK(bad("reported_patch", "p999 < 50ms") == "bad percentile 'p999': write p50, p99, p99.9 or p(N) with 0 < N <= 100");
  CHECK(bad("reported_patch", "p99 =< 50ms") == "expected a comparison (<, <=, >, >=, ==, !=), got '='");
  CHECK(bad("reported_patch", "p99") == "expected a comparison (<, <=, >, >=, ==, !=) and a value, as in \"p99 < 50ms\"");
  CHECK(bad("reported_patch", "p99 <") == "expected a value after '<'");
  CHECK(bad("reported_patch", "median < 5ms").starts_with("unknown aggregate 'median'"));
  CHECK(bad("errors", "p99 < 5ms") == "'errors' is not a latency: percentiles, avg, min and max apply to latency metrics only");
  CHECK(bad("convergence", "ratio >= 1.5 within 5s") == "a ratio lies in [0, 1] (or 0% to 100%), got 1.5");
  CHECK(bad("convergence", "ratio >= 0.99") == "a convergence ratio needs a deadline, as in \"ratio >= 0.999 within 5s\"");
  CHECK(bad("reported_patch", "p99 < 5ms within 1s") == "'within' applies to convergence only");
  CHECK(bad("convergence", "ratio >= 0.9 within soon") == "bad duration after 'within': 'soon' (write e.g. 5s)");
  CHECK(bad("connect", "p99 < 5ms extra") == "unexpected 'extra' after the value; only \"within <duration>\" may follow");
  CHECK(bad("errors", "rate < 5") == "a rate bound needs a unit of time, as in 5/s");
  CHECK(bad("", "== 0") == "expected a metric name first, as in \"anomalies.lost_update == 0\"");
  CHECK(bad("errors", "count < lots").starts_with("bad value 'lots'"));
}
