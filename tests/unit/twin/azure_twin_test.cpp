// The Azure device twin rules, case by case, from PROTOCOLS.md A1-A3, A5-A7 and A11.
#include <twinfleet/twin/azure_twin.hpp>

#include "json_test_util.hpp"

#include <catch2/catch.hpp>

using namespace twinfleet::twin;
using twinfleet::test::at;
using twinfleet::test::jo;
using twinfleet::test::jv;

namespace {

const if_match no_match{};

json::value desired_body(std::string_view desired) {
  json::object body;
  body["properties"] = json::object{{"desired", jv(desired)}};
  return body;
}

json::value tags_body(std::string_view tags) { return json::object{{"tags", jv(tags)}}; }

// A twin with a few writes behind it, used where history matters.
azure_twin seeded_twin() {
  azure_twin twin("devA", at(0));
  REQUIRE(twin.service_patch(desired_body(R"({"a":1,"b":{"c":2,"d":3}})"), no_match, at(1)));
  return twin;
}

}  // namespace

TEST_CASE("a new twin has both sections at $version 1 and the identity fields", "[twin][azure]") {
  azure_twin twin("devA", at(0));
  CHECK(json::value(twin.device_view()) == jv(R"({"desired":{"$version":1},"reported":{"$version":1}})"));

  const auto full = twin.to_json();
  CHECK(full.at("deviceId") == "devA");
  CHECK(full.at("etag") == "AAAAAAAAAAE=");
  CHECK(full.at("version") == 1);
  CHECK(full.at("status") == "enabled");
  CHECK(full.at("connectionState") == "Disconnected");
  CHECK(full.at("tags") == json::object{});
  const auto& desired = full.at("properties").at("desired").as_object();
  CHECK(desired.at("$version") == 1);
  CHECK(desired.at("$metadata").at("$lastUpdated") == "2024-01-15T10:00:00.0000000Z");
  CHECK(desired.at("$metadata").at("$lastUpdatedVersion") == 1);
  const auto& reported_meta = full.at("properties").at("reported").at("$metadata").as_object();
  CHECK(reported_meta.at("$lastUpdated") == "2024-01-15T10:00:00.0000000Z");
  CHECK_FALSE(reported_meta.contains("$lastUpdatedVersion"));
}

TEST_CASE("the etag is base64 of the twin version as an 8-byte counter", "[twin][azure]") {
  azure_twin twin("devA", at(0));
  REQUIRE(twin.service_patch(tags_body(R"({"x":1})"), no_match, at(1)));
  CHECK(twin.etag() == "AAAAAAAAAAI=");  // the A1 sample for 2
  for (int i = 0; i < 5; ++i) REQUIRE(twin.patch_reported(jv(R"({"n":1})"), std::nullopt, at(2 + i)));
  CHECK(twin.version() == 7);
  CHECK(twin.etag() == "AAAAAAAAAAc=");  // the A1 sample for 7
}

TEST_CASE("service PATCH merges desired, null deletes, and notifies the applied patch plus $version",
          "[twin][azure]") {
  auto twin = seeded_twin();
  REQUIRE(twin.desired_version() == 2);

  auto change = twin.service_patch(desired_body(R"({"b":{"c":null,"e":4},"f":"x"})"), no_match, at(2));
  REQUIRE(change);
  CHECK(json::value(twin.desired()) == jv(R"({"a":1,"b":{"d":3,"e":4},"f":"x"})"));
  CHECK(change->desired_version == 3);
  CHECK(twin.desired_version() == 3);
  REQUIRE(change->notification);
  CHECK(json::value(*change->notification) == jv(R"({"b":{"c":null,"e":4},"f":"x","$version":3})"));
}

TEST_CASE("the desired notification matches the A5 example", "[twin][azure]") {
  azure_twin twin("devA", at(0));
  for (int i = 0; i < 6; ++i) {
    REQUIRE(twin.service_patch(desired_body(R"({"route":"r"})"), no_match, at(i + 1)));
  }
  auto change = twin.service_patch(desired_body(R"({"telemetrySendFrequency":"5m","route":null})"), no_match, at(9));
  REQUIRE(change);
  REQUIRE(change->notification);
  CHECK(json::value(*change->notification) == jv(R"({"telemetrySendFrequency":"5m","route":null,"$version":8})"));
  CHECK_FALSE(twin.desired().contains("route"));
}

TEST_CASE("$metadata stamps every object node, desired with $lastUpdatedVersion", "[twin][azure]") {
  auto twin = seeded_twin();  // a, b.c, b.d written at t=1 (desired $version 2)
  REQUIRE(twin.service_patch(desired_body(R"({"b":{"c":null,"e":4}})"), no_match, at(5.25)));
  const auto& meta = twin.desired_metadata();
  const char* const t1 = "2024-01-15T10:00:01.0000000Z";
  const char* const t5 = "2024-01-15T10:00:05.2500000Z";

  CHECK(meta.at("$lastUpdated") == t5);
  CHECK(meta.at("$lastUpdatedVersion") == 3);
  CHECK(meta.at("a").at("$lastUpdated") == t1);  // untouched leaf keeps its stamp
  CHECK(meta.at("a").at("$lastUpdatedVersion") == 2);
  CHECK(meta.at("b").at("$lastUpdated") == t5);  // the parent of a deletion is stamped
  CHECK(meta.at("b").at("$lastUpdatedVersion") == 3);
  CHECK_FALSE(meta.at("b").as_object().contains("c"));
  CHECK(meta.at("b").at("d").at("$lastUpdated") == t1);
  CHECK(meta.at("b").at("e").at("$lastUpdated") == t5);

  REQUIRE(twin.patch_reported(jv(R"({"x":{"y":true}})"), std::nullopt, at(7)));
  const auto& rmeta = twin.reported_metadata();
  CHECK(rmeta.at("x").at("$lastUpdated") == "2024-01-15T10:00:07.0000000Z");
  CHECK(rmeta.at("x").at("y").at("$lastUpdated") == "2024-01-15T10:00:07.0000000Z");
  CHECK_FALSE(rmeta.at("x").at("y").as_object().contains("$lastUpdatedVersion"));
}

TEST_CASE("tags merge without touching desired or notifying devices", "[twin][azure]") {
  auto twin = seeded_twin();
  const auto etag_before = twin.etag();
  auto change = twin.service_patch(tags_body(R"({"site":{"building":43,"floor":1}})"), no_match, at(3));
  REQUIRE(change);
  CHECK_FALSE(change->notification);
  CHECK(twin.desired_version() == 2);
  CHECK(twin.etag() != etag_before);
  REQUIRE(twin.service_patch(tags_body(R"({"site":{"floor":null}})"), no_match, at(4)));
  CHECK(json::value(twin.tags()) == jv(R"({"site":{"building":43}})"));
  CHECK_FALSE(twin.device_view().contains("tags"));
}

TEST_CASE("the service may not write reported properties", "[twin][azure]") {
  auto twin = seeded_twin();
  const auto before = twin.to_json();
  auto r = twin.service_patch(jv(R"({"properties":{"reported":{"x":1}}})"), no_match, at(3));
  REQUIRE_FALSE(r);
  CHECK(r.error().code == 400004);
  CHECK(r.error().http_status() == 400);
  CHECK_THAT(r.error().message, Catch::Contains("properties.reported"));
  CHECK(twin.to_json() == before);
}

TEST_CASE("If-Match: quoted etags are checked, * always matches, unquoted ones are ignored", "[twin][azure]") {
  auto twin = seeded_twin();
  const auto current = "\"" + twin.etag() + "\"";

  SECTION("the current etag, quoted, succeeds") {
    CHECK(twin.service_patch(desired_body(R"({"k":1})"), if_match::parse(current), at(3)));
    CHECK(twin.service_patch(desired_body(R"({"k":2})"), if_match::parse("W/\"" + twin.etag() + "\""), at(4)));
  }
  SECTION("another quoted etag fails with 412001 and changes nothing") {
    const auto before = twin.to_json();
    auto r = twin.service_patch(desired_body(R"({"k":1})"), if_match::parse("\"AAAAAAAAAAc=\""), at(3));
    REQUIRE_FALSE(r);
    CHECK(r.error().code == 412001);
    CHECK(r.error().http_status() == 412);
    CHECK(twin.to_json() == before);
    auto put = twin.service_replace(desired_body("{}"), if_match::parse("\"AAAAAAAAAAc=\""), at(3));
    REQUIRE_FALSE(put);
    CHECK(put.error().code == 412001);
  }
  SECTION("\"*\" and the old C SDK's bare * are unconditional") {
    CHECK(twin.service_patch(desired_body(R"({"k":1})"), if_match::parse("\"*\""), at(3)));
    CHECK(twin.service_patch(desired_body(R"({"k":2})"), if_match::parse("*"), at(4)));
  }
  SECTION("an unquoted etag is treated as absent, so a stale one does not stop the write") {
    CHECK(if_match::parse("AAAAAAAAAAc=").what == if_match::kind::absent);
    CHECK(twin.service_patch(desired_body(R"({"k":1})"), if_match::parse("AAAAAAAAAAc="), at(3)));
    CHECK(twin.desired().at("k") == 1);
  }
}

TEST_CASE("service PUT replaces tags and desired and notifies the new document with nulls for removals",
          "[twin][azure]") {
  auto twin = seeded_twin();  // desired {"a":1,"b":{"c":2,"d":3}}
  REQUIRE(twin.service_patch(tags_body(R"({"old":true})"), no_match, at(2)));
  const json::object old_desired = twin.desired();

  auto change = twin.service_replace(jv(R"({"tags":{"new":1},"properties":{"desired":{"b":{"d":4},"z":[1,2]}}})"),
                                     no_match, at(3));
  REQUIRE(change);
  CHECK(json::value(twin.tags()) == jv(R"({"new":1})"));
  CHECK(json::value(twin.desired()) == jv(R"({"b":{"d":4},"z":[1,2]})"));
  REQUIRE(change->notification);
  CHECK(json::value(*change->notification) == jv(R"({"a":null,"b":{"c":null,"d":4},"z":[1,2],"$version":3})"));

  // A device applying it as a merge patch ends with exactly the new document.
  json::object replica = old_desired;
  json::object patch = *change->notification;
  patch.erase("$version");
  merge_patch(replica, patch);
  CHECK(replica == twin.desired());
}

TEST_CASE("service PUT accepts a twin read back from GET, ignoring read-only members", "[twin][azure]") {
  auto twin = seeded_twin();
  json::value body = twin.to_json();
  body.at("properties").as_object().erase("reported");
  body.at("properties").at("desired").as_object()["a"] = 5;
  REQUIRE(twin.service_replace(body, no_match, at(3)));
  CHECK(twin.desired().at("a") == 5);
  CHECK_FALSE(twin.desired().contains("$metadata"));
  CHECK_FALSE(twin.desired().contains("$version"));
}

TEST_CASE("device PATCH of reported merges and returns the new reported $version", "[twin][azure]") {
  azure_twin twin("devA", at(0));
  auto v = twin.patch_reported(jv(R"({"temperature":21.5,"fw":{"version":"1.0","build":7}})"), std::nullopt, at(1));
  REQUIRE(v);
  CHECK(*v == 2);
  v = twin.patch_reported(jv(R"({"fw":{"build":null},"mode":"heat"})"), std::nullopt, at(2));
  REQUIRE(v);
  CHECK(*v == 3);
  CHECK(json::value(twin.reported()) == jv(R"({"temperature":21.5,"fw":{"version":"1.0"},"mode":"heat"})"));
  CHECK(json::value(twin.device_view()) ==
        jv(R"({"desired":{"$version":1},"reported":{"temperature":21.5,"fw":{"version":"1.0"},"mode":"heat","$version":3}})"));
}

TEST_CASE("conditional reported PATCH: $version mismatch is 412 and changes nothing", "[twin][azure]") {
  azure_twin twin("devA", at(0));
  REQUIRE(twin.patch_reported(jv(R"({"x":1})"), std::nullopt, at(1)));  // reported $version 2
  auto ok = twin.patch_reported(jv(R"({"x":2})"), 2, at(2));
  REQUIRE(ok);
  CHECK(*ok == 3);
  const auto before = twin.to_json();
  auto stale = twin.patch_reported(jv(R"({"x":3})"), 2, at(3));
  REQUIRE_FALSE(stale);
  CHECK(stale.error().code == 412001);
  CHECK(twin.to_json() == before);
}

TEST_CASE("an IoT Plug and Play writable-property acknowledgement is an ordinary reported object", "[twin][azure]") {
  azure_twin twin("thermo-00001", at(0));
  auto change = twin.service_patch(desired_body(R"({"targetTemperature":21.5})"), no_match, at(1));
  REQUIRE(change);
  auto ack = json::object{{"targetTemperature", json::object{{"value", 21.5}, {"ac", 200}, {"av", change->desired_version}, {"ad", "applied"}}}};
  REQUIRE(twin.patch_reported(ack, std::nullopt, at(2)));
  CHECK(twin.reported().at("targetTemperature").at("av") == 2);
  CHECK(twin.reported().at("targetTemperature").at("ac") == 200);
}

TEST_CASE("arrays are whole values: a patch replaces the array", "[twin][azure]") {
  azure_twin twin("devA", at(0));
  REQUIRE(twin.service_patch(desired_body(R"({"list":[1,2,3],"o":{"arr":[{"x":1}]}})"), no_match, at(1)));
  REQUIRE(twin.service_patch(desired_body(R"({"list":[9],"o":{"arr":[]}})"), no_match, at(2)));
  CHECK(json::value(twin.desired()) == jv(R"({"list":[9],"o":{"arr":[]}})"));
  CHECK(twin.desired_metadata().at("list").at("$lastUpdatedVersion") == 3);
}

TEST_CASE("read-only $version and $metadata in a patch are ignored; other $ keys are refused", "[twin][azure]") {
  azure_twin twin("devA", at(0));
  REQUIRE(twin.patch_reported(jv(R"({"x":1,"$version":99,"$metadata":{}})"), std::nullopt, at(1)));
  CHECK(json::value(twin.reported()) == jv(R"({"x":1})"));
  CHECK(twin.reported_version() == 2);
  auto r = twin.patch_reported(jv(R"({"$foo":1})"), std::nullopt, at(2));
  REQUIRE_FALSE(r);
  CHECK(r.error().code == 400004);
}

TEST_CASE("key rules: at most 1 KB, no '.', '$', space or control characters", "[twin][azure][limits]") {
  azure_twin twin("devA", at(0));
  auto reject = [&](const json::object& patch, std::string_view path) {
    const auto before = twin.to_json();
    auto r = twin.patch_reported(patch, std::nullopt, at(1));
    REQUIRE_FALSE(r);
    CHECK(r.error().code == 400004);
    CHECK_THAT(r.error().message, Catch::StartsWith(std::string(path)));
    CHECK(twin.to_json() == before);
  };
  reject(json::object{{"outer", json::object{{"a.b", 1}}}}, "properties.reported.outer.a.b");
  reject(json::object{{"a$b", 1}}, "properties.reported.a$b");
  reject(json::object{{"a b", 1}}, "properties.reported.a b");
  reject(json::object{{"a\x01", 1}}, "properties.reported.a");
  reject(json::object{{"a\xc2\x85", 1}}, "properties.reported.a");  // U+0085, a C1 control
  reject(json::object{{"", 1}}, "properties.reported");
  reject(json::object{{std::string(1025, 'k'), 1}}, "properties.reported.kkk");

  CHECK(twin.patch_reported(json::object{{std::string(1024, 'k'), 1}}, std::nullopt, at(2)));
  CHECK(twin.patch_reported(json::object{{"caf\xc3\xa9-_:#", 1}}, std::nullopt, at(3)));
}

TEST_CASE("depth: ten nested object levels are allowed, an eleventh is refused", "[twin][azure][limits]") {
  auto nested = [](int levels) {
    json::value v = 1;
    for (int i = levels; i >= 1; --i) v = json::object{{"l" + std::to_string(i), std::move(v)}};
    return v;
  };
  azure_twin twin("devA", at(0));
  // tags.one.two...ten.property: ten objects, then a leaf.
  CHECK(twin.service_patch(json::object{{"tags", nested(11)}}, no_match, at(1)));
  auto r = twin.service_patch(json::object{{"tags", nested(12)}}, no_match, at(2));
  REQUIRE_FALSE(r);
  CHECK(r.error().code == 400004);
  CHECK_THAT(r.error().message, Catch::StartsWith("tags.l1.l2.l3.l4.l5.l6.l7.l8.l9.l10.l11"));
  CHECK_THAT(r.error().message, Catch::Contains("depth of 10"));
}

TEST_CASE("string values are at most 4 KB", "[twin][azure][limits]") {
  azure_twin twin("devA", at(0));
  CHECK(twin.service_patch(desired_body("{\"s\":\"" + std::string(4096, 'v') + "\"}"), no_match, at(1)));
  auto r = twin.service_patch(desired_body("{\"s\":\"" + std::string(4097, 'v') + "\"}"), no_match, at(2));
  REQUIRE_FALSE(r);
  CHECK(r.error().code == 400004);
  CHECK_THAT(r.error().message, Catch::StartsWith("properties.desired.s"));
}

TEST_CASE("integers must lie within -2^52 .. 2^52-1", "[twin][azure][limits]") {
  azure_twin twin("devA", at(0));
  CHECK(twin.patch_reported(jv(R"({"i":4503599627370495,"j":-4503599627370496,"d":1e300})"), std::nullopt, at(1)));
  for (const auto* bad : {R"({"i":4503599627370496})", R"({"i":-4503599627370497})", R"({"i":18446744073709551615})",
                          R"({"a":[1,{"i":4503599627370496}]})"}) {
    INFO(bad);
    auto r = twin.patch_reported(jv(bad), std::nullopt, at(2));
    REQUIRE_FALSE(r);
    CHECK(r.error().code == 400004);
  }
  // The message names where the value sits, array indexes included.
  auto r = twin.patch_reported(jv(R"({"a":[1,{"i":4503599627370496}]})"), std::nullopt, at(3));
  REQUIRE_FALSE(r);
  CHECK_THAT(r.error().message, Catch::StartsWith("properties.reported.a[1].i: integer 4503599627370496 is outside"));
}

TEST_CASE("section size follows the documented algorithm", "[twin][azure][limits]") {
  CHECK(azure_section_size(jo(R"({"ab":"xyz"})")) == 5);
  CHECK(azure_section_size(jo(R"({"n":1,"d":2.5})")) == 18);
  CHECK(azure_section_size(jo(R"({"b":true})")) == 5);
  CHECK(azure_section_size(jo(R"({"a":{"bc":true}})")) == 7);
  CHECK(azure_section_size(jo(R"({"s":"caf\u00e9"})")) == 5);    // characters, not bytes
  CHECK(azure_section_size(jo(R"({"s":"a\u0001\tb"})")) == 3);   // control characters do not count
  CHECK(azure_section_size(jo(R"({"arr":[1,"xy",true]})")) == 3 + 8 + 2 + 4);
  CHECK(azure_section_size(jo(R"({"x":1,"$version":4,"$metadata":{"$lastUpdated":"t"}})")) == 9);
}

TEST_CASE("a section over its size limit is refused with IoT Hub's code and message", "[twin][azure][limits]") {
  // Each member "kNNNN": 4000-char string counts 5 + 4000; fill to the byte, then one more.
  auto fill = [](std::size_t total) {
    json::object o;
    std::size_t i = 0;
    while (total > 0) {
      const std::string key = "k" + std::to_string(1000 + i++);
      const std::size_t value = std::min<std::size_t>(4000, total - key.size());
      o[key] = std::string(value, 'v');
      total -= key.size() + value;
    }
    return o;
  };
  REQUIRE(azure_section_size(fill(32768)) == 32768);

  azure_twin twin("devA", at(0));
  CHECK(twin.patch_reported(fill(32768), std::nullopt, at(1)));
  const auto before = twin.to_json();
  auto r = twin.patch_reported(jv(R"({"one":true})"), std::nullopt, at(2));
  REQUIRE_FALSE(r);
  CHECK(r.error().code == 403100);
  CHECK(r.error().message == "'Properties.Reported' size should be less than 32768 bytes.");
  CHECK(twin.to_json() == before);

  auto d = twin.service_patch(json::object{{"properties", json::object{{"desired", fill(32769)}}}}, no_match, at(3));
  REQUIRE_FALSE(d);
  CHECK(d.error().message == "'Properties.Desired' size should be less than 32768 bytes.");
  auto t = twin.service_patch(json::object{{"tags", fill(8193)}}, no_match, at(4));
  REQUIRE_FALSE(t);
  CHECK(t.error().message == "'Tags' size should be less than 8192 bytes.");
  CHECK(twin.service_patch(json::object{{"tags", fill(8192)}}, no_match, at(5)));
  CHECK(twin.to_json().at("properties").at("reported") == before.at("properties").at("reported"));
}

TEST_CASE("deleting keys shrinks a full section so later writes fit", "[twin][azure][limits]") {
  azure_twin twin("devA", at(0));
  json::object big;
  for (int i = 0; i < 8; ++i) big["k" + std::to_string(i)] = std::string(4000, 'v');
  REQUIRE(twin.patch_reported(big, std::nullopt, at(1)));
  CHECK_FALSE(twin.patch_reported(json::object{{"x", std::string(1000, 'v')}}, std::nullopt, at(2)));
  CHECK(twin.patch_reported(jv(R"({"k0":null,"x":"small"})"), std::nullopt, at(3)));
}

TEST_CASE("the size check keeps a bound across patches: overwriting one key never fills the section", "[twin][azure][limits]") {
  // Each patch counts 1 + 4000; the section holds one such member however often it is written,
  // while the patches' sizes add up to far more than the limit.
  azure_twin twin("devA", at(0));
  for (int i = 0; i < 40; ++i) {
    INFO("patch " << i);
    const std::string value(4000, static_cast<char>('a' + i % 26));
    REQUIRE(twin.patch_reported(json::object{{"k", value}}, std::nullopt, at(1 + i)));
    CHECK(twin.reported().at("k").as_string() == value);
  }
  // What does not fit is still refused, and the section is as it was.
  json::object big;
  for (int i = 0; i < 7; ++i) big["b" + std::to_string(i)] = std::string(4000, 'v');
  REQUIRE(twin.patch_reported(big, std::nullopt, at(50)));  // 4001 + 7 x 4002 = 32015
  const auto before = twin.to_json();
  auto r = twin.patch_reported(json::object{{"x", std::string(800, 'v')}}, std::nullopt, at(51));
  REQUIRE_FALSE(r);
  CHECK(r.error().code == 403100);
  CHECK(twin.to_json() == before);
  // Overwriting a member with a value of the same size still fits, near the limit too.
  CHECK(twin.patch_reported(json::object{{"b0", std::string(4000, 'w')}}, std::nullopt, at(52)));
  CHECK(twin.patch_reported(json::object{{"x", std::string(700, 'v')}}, std::nullopt, at(53)));
}

TEST_CASE("a leaf reported again gets a fresh $lastUpdated; a leaf that turns object and back keeps no stale nodes", "[twin][azure]") {
  azure_twin twin("devA", at(0));
  REQUIRE(twin.patch_reported(jv(R"({"t":1})"), std::nullopt, at(1)));
  REQUIRE(twin.patch_reported(jv(R"({"t":2})"), std::nullopt, at(2)));
  CHECK(json::value(twin.reported_metadata().at("t")) == jv(R"({"$lastUpdated":"2024-01-15T10:00:02.0000000Z"})"));
  REQUIRE(twin.patch_reported(jv(R"({"t":{"a":1}})"), std::nullopt, at(3)));
  CHECK(json::value(twin.reported_metadata().at("t")) ==
        jv(R"({"$lastUpdated":"2024-01-15T10:00:03.0000000Z","a":{"$lastUpdated":"2024-01-15T10:00:03.0000000Z"}})"));
  REQUIRE(twin.patch_reported(jv(R"({"t":5})"), std::nullopt, at(4)));
  CHECK(json::value(twin.reported_metadata().at("t")) == jv(R"({"$lastUpdated":"2024-01-15T10:00:04.0000000Z"})"));
  CHECK(twin.reported_metadata().at("$lastUpdated") == "2024-01-15T10:00:04.0000000Z");
}

TEST_CASE("bad service bodies are refused with 400004", "[twin][azure]") {
  azure_twin twin("devA", at(0));
  for (const auto* bad : {R"([1,2])", R"({"tags":5})", R"({"properties":[]})", R"({"properties":{"desired":"x"}})",
                          R"({"properties":{"other":{}}})"}) {
    INFO(bad);
    auto r = twin.service_patch(jv(bad), no_match, at(1));
    REQUIRE_FALSE(r);
    CHECK(r.error().code == 400004);
  }
  CHECK(twin.version() == 1);
  CHECK_FALSE(twin.patch_reported(jv("[]"), std::nullopt, at(1)));
}

TEST_CASE("an empty PATCH body changes nothing", "[twin][azure]") {
  azure_twin twin("devA", at(0));
  auto r = twin.service_patch(jv("{}"), no_match, at(1));
  REQUIRE(r);
  CHECK_FALSE(r->notification);
  CHECK(twin.version() == 1);
  CHECK(twin.etag() == "AAAAAAAAAAE=");
}

TEST_CASE("connection state, status and model id appear in the service view", "[twin][azure]") {
  azure_twin twin("devA", at(0));
  twin.set_connected(true, at(5));
  twin.set_enabled(false, at(6));
  twin.set_model_id("dtmi:com:example:Thermostat;1");
  const auto full = twin.to_json();
  CHECK(full.at("connectionState") == "Connected");
  CHECK(full.at("lastActivityTime") == "2024-01-15T10:00:05.0000000Z");
  CHECK(full.at("status") == "disabled");
  CHECK(full.at("statusUpdateTime") == "2024-01-15T10:00:06.0000000Z");
  CHECK(full.at("modelId") == "dtmi:com:example:Thermostat;1");
}
