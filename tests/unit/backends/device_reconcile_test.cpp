// The device-side consistency rules (reconcile.hpp) and the pure topic helpers of the device
// sessions, without sockets.
#include <twinfleet/backends/aws_device_session.hpp>
#include <twinfleet/backends/azure_device_session.hpp>
#include <twinfleet/backends/reconcile.hpp>

#include "json_test_util.hpp"

#include <catch2/catch.hpp>

using namespace twinfleet;
using backends::azure_desired_reconciler;
using verdict = azure_desired_reconciler::verdict;
using test::jo;

namespace {

backends::desired_patch patch(std::int64_t version, std::string_view body = R"({"a":1})") {
  backends::desired_patch p;
  p.patch = jo(body);
  p.version = version;
  return p;
}

std::vector<std::int64_t> versions(const std::vector<backends::desired_patch>& v) {
  std::vector<std::int64_t> out;
  for (const auto& p : v) out.push_back(p.version);
  return out;
}

}  // namespace

TEST_CASE("azure reconciler buffers until the GET, drops what the GET covers, releases newer in order",
          "[backends][reconcile]") {
  azure_desired_reconciler r;
  r.begin_sync();
  CHECK(r.syncing());
  for (std::int64_t v : {7, 5, 9, 8, 6}) {
    auto p = patch(v);
    CHECK(r.on_notification(p) == verdict::buffered);
  }
  const auto released = r.take_after_get(7);
  CHECK(versions(released) == std::vector<std::int64_t>{8, 9});
  CHECK_FALSE(r.syncing());
  CHECK(r.applied_version() == 9);
  CHECK(r.stale_dropped() == 3);

  auto old = patch(9);
  CHECK(r.on_notification(old) == verdict::stale);
  auto next = patch(10);
  CHECK(r.on_notification(next) == verdict::apply);
  CHECK(r.applied_version() == 10);
  CHECK(r.gaps() == 0);
  auto jump = patch(13);
  CHECK(r.on_notification(jump) == verdict::apply);
  CHECK(r.gaps() == 1);
}

TEST_CASE("azure reconciler: a duplicate delivery in the buffer is released once", "[backends][reconcile]") {
  azure_desired_reconciler r;
  r.begin_sync();
  auto a = patch(4, R"({"x":1})");
  auto b = patch(4, R"({"x":1})");
  r.on_notification(a);
  r.on_notification(b);
  const auto released = r.take_after_get(3);
  REQUIRE(released.size() == 1);
  CHECK(released[0].patch == jo(R"({"x":1})"));
}

TEST_CASE("azure reconciler: a new connection starts buffering again and keeps the applied version",
          "[backends][reconcile]") {
  azure_desired_reconciler r;
  r.begin_sync();
  CHECK(r.take_after_get(2).empty());
  auto p3 = patch(3);
  CHECK(r.on_notification(p3) == verdict::apply);
  r.begin_sync();
  auto p5 = patch(5);
  CHECK(r.on_notification(p5) == verdict::buffered);
  CHECK(versions(r.take_after_get(4)) == std::vector<std::int64_t>{5});
}

TEST_CASE("azure reconciler with ignore_version applies stale patches in arrival order", "[backends][reconcile]") {
  azure_desired_reconciler r(azure_desired_reconciler::options{true});
  r.begin_sync();
  for (std::int64_t v : {6, 4}) {
    auto p = patch(v);
    r.on_notification(p);
  }
  CHECK(versions(r.take_after_get(5)) == std::vector<std::int64_t>{6, 4});
  auto old = patch(2);
  CHECK(r.on_notification(old) == verdict::apply);
  CHECK(r.stale_dropped() == 0);
}

TEST_CASE("aws delta filter drops deltas at or below the last applied version", "[backends][reconcile]") {
  backends::aws_delta_filter f;
  CHECK(f.on_delta(12));
  CHECK_FALSE(f.on_delta(11));  // the doc's RED/GREEN example: 12 then 11
  CHECK_FALSE(f.on_delta(12));  // a duplicate
  CHECK(f.on_delta(13));
  CHECK(f.stale_dropped() == 2);
  f.on_document_applied(20);
  CHECK_FALSE(f.on_delta(19));
  CHECK(f.on_delta(21));
}

TEST_CASE("aws delta filter keeps accepted and delta counters apart, the shared counter drops the delta",
          "[backends][reconcile]") {
  SECTION("separate counters (correct)") {
    backends::aws_delta_filter f;
    f.on_update_accepted(5);  // accepted of version 5 arrives before its delta
    CHECK(f.last_accepted() == 5);
    CHECK(f.on_delta(5));
    CHECK(f.last_applied() == 5);
  }
  SECTION("shared_version_counter reproduces the SDK bug (C2.2)") {
    backends::aws_delta_filter f(backends::aws_delta_filter::options{true});
    f.on_update_accepted(5);
    CHECK_FALSE(f.on_delta(5));
    CHECK(f.stale_dropped() == 1);
  }
  SECTION("delete keeps the counters; reset forgets them") {
    backends::aws_delta_filter f;
    CHECK(f.on_delta(3));
    f.on_deleted(3);
    CHECK_FALSE(f.on_delta(3));
    f.reset();
    CHECK(f.on_delta(1));
  }
}

TEST_CASE("azure telemetry topic encodes system and application properties", "[backends][topics]") {
  backends::telemetry_properties p;
  CHECK(backends::azure_telemetry_topic("d1", p) == "devices/d1/messages/events/");
  p.content_type = "application/json";
  p.content_encoding = "utf-8";
  p.message_id = "m 1";
  p.application.emplace_back("alert", "high&low");
  p.application.emplace_back("k=", "");
  CHECK(backends::azure_telemetry_topic("d1", p) ==
        "devices/d1/messages/events/%24.mid=m%201&%24.ct=application%2Fjson&%24.ce=utf-8&alert=high%26low&k%3D=");
}

TEST_CASE("azure username and twin response topics", "[backends][topics]") {
  backends::azure_device_config c;
  c.host_name = "hub.example";
  c.device_id = "bulb-1";
  CHECK(backends::azure_username(c) == "hub.example/bulb-1/?api-version=2021-04-12");
  c.model_id = "dtmi:com:example:Thermostat;1";
  CHECK(backends::azure_username(c) ==
        "hub.example/bulb-1/?api-version=2021-04-12&model-id=dtmi%3Acom%3Aexample%3AThermostat%3B1");

  auto ok = backends::parse_azure_twin_response_topic("$iothub/twin/res/204/?$rid=17&$version=5");
  REQUIRE(ok);
  CHECK(ok->status == 204);
  CHECK(ok->rid == "17");
  CHECK(ok->version == 5);
  auto err = backends::parse_azure_twin_response_topic("$iothub/twin/res/412/?$rid=3");
  REQUIRE(err);
  CHECK(err->status == 412);
  CHECK_FALSE(err->version);
  CHECK_FALSE(backends::parse_azure_twin_response_topic("$iothub/twin/res/abc/?$rid=3"));
  CHECK_FALSE(backends::parse_azure_twin_response_topic("$iothub/twin/res/200/"));
  CHECK_FALSE(backends::parse_azure_twin_response_topic("$iothub/twin/res/200/?$rid=1&$version=x"));
}

TEST_CASE("aws shadow topics", "[backends][topics]") {
  CHECK(backends::aws_shadow_topic_prefix("t1", "") == "$aws/things/t1/shadow");
  CHECK(backends::aws_shadow_topic_prefix("t1", "cfg") == "$aws/things/t1/shadow/name/cfg");
  auto classic = backends::parse_aws_shadow_topic("$aws/things/t1/shadow/update/delta");
  REQUIRE(classic);
  CHECK(classic->thing == "t1");
  CHECK(classic->shadow.empty());
  CHECK(classic->operation == backends::shadow_operation::update);
  CHECK(classic->suffix == "delta");
  auto named = backends::parse_aws_shadow_topic("$aws/things/t1/shadow/name/cfg/delete/rejected");
  REQUIRE(named);
  CHECK(named->shadow == "cfg");
  CHECK(named->operation == backends::shadow_operation::remove);
  CHECK(named->suffix == "rejected");
  CHECK_FALSE(backends::parse_aws_shadow_topic("$aws/things/t1/shadow/get/delta"));
  CHECK_FALSE(backends::parse_aws_shadow_topic("$aws/things/t1/shadow/update"));
  CHECK_FALSE(backends::parse_aws_shadow_topic("$aws/things/t1/other/update/accepted"));
}
