// The AWS shadow rules, one example at a time: every example of PROTOCOLS.md part B, and the
// decisions aws_shadow.cpp documents where AWS does not.
#include <catch2/catch.hpp>

#include "json_test_util.hpp"

#include <twinfleet/twin/aws_shadow.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <stdexcept>
#include <string>

using namespace twinfleet::twin;
using twinfleet::test::at;

namespace {

json::value parse(std::string_view text) { return twinfleet::test::jv(text); }

// test::at(0) in epoch seconds: the expected documents below spell timestamps out as
// 1705312800 + the offset passed to at().
constexpr std::int64_t epoch_at_0 = 1'705'312'800;

// Exact comparison (Boost.JSON ==: same kinds, so a version written as 1.0 fails), object
// member order ignored; both sides printed when they differ.
#define CHECK_JSON(actual, expected_text)                           \
  do {                                                              \
    const json::value actual_ = json::value(actual);                \
    const json::value expected_ = parse(expected_text);             \
    INFO("actual:   " << json::serialize(actual_));                 \
    INFO("expected: " << json::serialize(expected_));               \
    CHECK(actual_ == expected_);                                    \
  } while (false)

#define CHECK_ERROR(res, expected_code, expected_message) \
  do {                                                    \
    const auto& res_ = (res);                             \
    REQUIRE(res_.has_error());                            \
    CHECK(res_.error().code == (expected_code));          \
    CHECK(res_.error().message == (expected_message));    \
  } while (false)

// Applies an update that the test expects to succeed.
aws_shadow::update_outcome must_update(aws_shadow& shadow, std::string_view payload, double seconds) {
  auto out = shadow.update(payload, at(seconds));
  if (!out) FAIL("update rejected: " << out.error().code << " " << out.error().message);
  return *out;
}

// Everything a rejected operation must leave alone.
struct shadow_state {
  bool exists;
  std::int64_t version;
  json::object desired, reported, desired_meta, reported_meta;
  friend bool operator==(const shadow_state&, const shadow_state&) = default;
};

shadow_state capture(const aws_shadow& s) {
  return {s.exists(), s.version(), s.desired(), s.reported(), s.desired_metadata(), s.reported_metadata()};
}

}  // namespace

TEST_CASE("the test clock starts where the expected timestamps assume", "[twin][aws]") {
  REQUIRE(epoch_seconds(at(0)) == epoch_at_0);
  REQUIRE(epoch_seconds(at(12)) == epoch_at_0 + 12);
}

// ---------------------------------------------------------------------------------------------
// B4: the delta function

TEST_CASE("delta keeps the path of a nested difference (B4 lights example)", "[twin][aws][delta]") {
  const auto desired = parse(R"({"lights":{"color":{"r":255,"g":255,"b":255}}})").get_object();
  const auto reported = parse(R"({"lights":{"color":{"r":255,"g":0,"b":255}}})").get_object();
  CHECK_JSON(aws_shadow_delta(desired, reported), R"({"lights":{"color":{"g":255}}})");
}

TEST_CASE("delta carries a differing array whole", "[twin][aws][delta]") {
  const auto desired = parse(R"({"colors":["RED","GREEN","BLUE"],"same":[1,2]})").get_object();
  CHECK_JSON(aws_shadow_delta(desired, parse(R"({"colors":["RED","GREEN"],"same":[1,2]})").get_object()),
             R"({"colors":["RED","GREEN","BLUE"]})");
  // Order matters inside an array: it is one value.
  CHECK_JSON(aws_shadow_delta(desired, parse(R"({"colors":["GREEN","RED","BLUE"],"same":[1,2]})").get_object()),
             R"({"colors":["RED","GREEN","BLUE"]})");
  CHECK_JSON(aws_shadow_delta(desired, parse(R"({"colors":["RED","GREEN","BLUE"],"same":[1,2]})").get_object()),
             "{}");
  // An array of objects is compared whole too, not merged per element.
  CHECK_JSON(aws_shadow_delta(parse(R"({"a":[{"x":1,"y":2}]})").get_object(),
                              parse(R"({"a":[{"x":1}]})").get_object()),
             R"({"a":[{"x":1,"y":2}]})");
}

TEST_CASE("delta holds desired keys that reported lacks and never keys only reported has", "[twin][aws][delta]") {
  const auto desired = parse(R"({"a":1,"b":{"c":2}})").get_object();
  const auto reported = parse(R"({"extra":true,"b":{"c":2,"d":3}})").get_object();
  CHECK_JSON(aws_shadow_delta(desired, reported), R"({"a":1})");
  CHECK_JSON(aws_shadow_delta(json::object{}, reported), "{}");
  CHECK_JSON(aws_shadow_delta(desired, json::object{}), R"({"a":1,"b":{"c":2}})");
}

TEST_CASE("delta takes a desired object whole when reported has a non-object there", "[twin][aws][delta]") {
  CHECK_JSON(aws_shadow_delta(parse(R"({"a":{"b":1,"c":2}})").get_object(), parse(R"({"a":7})").get_object()),
             R"({"a":{"b":1,"c":2}})");
  CHECK_JSON(aws_shadow_delta(parse(R"({"a":5})").get_object(), parse(R"({"a":{"b":1}})").get_object()),
             R"({"a":5})");
}

TEST_CASE("delta compares numbers by value and kinds strictly", "[twin][aws][delta]") {
  CHECK_JSON(aws_shadow_delta(parse(R"({"n":1,"m":2.5})").get_object(), parse(R"({"n":1.0,"m":2.5})").get_object()),
             "{}");
  CHECK_JSON(aws_shadow_delta(parse(R"({"n":1})").get_object(), parse(R"({"n":"1"})").get_object()), R"({"n":1})");
  CHECK_JSON(aws_shadow_delta(parse(R"({"n":true})").get_object(), parse(R"({"n":1})").get_object()),
             R"({"n":true})");
}

// ---------------------------------------------------------------------------------------------
// Construction and names

TEST_CASE("a shadow needs valid names and does not exist before its first update", "[twin][aws]") {
  aws_shadow classic("thermo-00001");
  CHECK(classic.is_classic());
  CHECK(classic.display_name() == "thermo-00001");
  CHECK_FALSE(classic.exists());
  CHECK(classic.version() == 0);

  aws_shadow named("thermo-00001", "config");
  CHECK_FALSE(named.is_classic());
  CHECK(named.display_name() == "config");

  CHECK_THROWS_AS(aws_shadow("bad thing"), std::invalid_argument);
  CHECK_THROWS_AS(aws_shadow(""), std::invalid_argument);
  CHECK_THROWS_AS(aws_shadow("thing", "bad/shadow"), std::invalid_argument);
  CHECK_THROWS_AS(aws_shadow("thing", std::string(65, 's')), std::invalid_argument);
}

// ---------------------------------------------------------------------------------------------
// B3.2 /update/accepted

TEST_CASE("update/accepted echoes only what was sent, with a timestamp per leaf", "[twin][aws][update]") {
  aws_shadow shadow("thing1");
  must_update(shadow, R"({"state":{"reported":{"color":"red","lights":{"on":true,"level":3}}}})", 0);

  auto out = must_update(
      shadow, R"({"state":{"desired":{"color":"green","lights":{"level":5}}},"clientToken":"tok-1","ignored":1})",
      10);
  CHECK_JSON(out.accepted, R"({
      "state":{"desired":{"color":"green","lights":{"level":5}}},
      "metadata":{"desired":{"color":{"timestamp":1705312810},"lights":{"level":{"timestamp":1705312810}}}},
      "version":2,"timestamp":1705312810,"clientToken":"tok-1"})");
  CHECK(out.version == 2);
}

TEST_CASE("update/accepted echoes key nulls and stamps them", "[twin][aws][update]") {
  aws_shadow shadow("thing1");
  must_update(shadow, R"({"state":{"reported":{"a":1,"b":2}}})", 0);
  auto out = must_update(shadow, R"({"state":{"reported":{"a":null}}})", 1);
  CHECK_JSON(out.accepted, R"({"state":{"reported":{"a":null}},
      "metadata":{"reported":{"a":{"timestamp":1705312801}}},"version":2,"timestamp":1705312801})");
  CHECK_JSON(shadow.reported(), R"({"b":2})");
  CHECK_JSON(shadow.reported_metadata(), R"({"b":{"timestamp":1705312800}})");
}

TEST_CASE("array metadata has one timestamp entry per element (B3.2 ColorRGB)", "[twin][aws][update]") {
  aws_shadow shadow("thing1");
  auto out = must_update(shadow, R"({"state":{"reported":{"ColorRGB":[255,0,128],"grid":[[1,2],{"k":"v"}]}}})", 0);
  CHECK_JSON(out.accepted["metadata"], R"({"reported":{
      "ColorRGB":[{"timestamp":1705312800},{"timestamp":1705312800},{"timestamp":1705312800}],
      "grid":[[{"timestamp":1705312800},{"timestamp":1705312800}],{"k":{"timestamp":1705312800}}]}})");
  CHECK_JSON(shadow.reported_metadata(), R"({
      "ColorRGB":[{"timestamp":1705312800},{"timestamp":1705312800},{"timestamp":1705312800}],
      "grid":[[{"timestamp":1705312800},{"timestamp":1705312800}],{"k":{"timestamp":1705312800}}]})");
  // An update replaces the whole array, and its metadata with it.
  must_update(shadow, R"({"state":{"reported":{"ColorRGB":[1]}}})", 5);
  CHECK_JSON(shadow.reported().at("ColorRGB"), "[1]");
  CHECK_JSON(shadow.reported_metadata().at("ColorRGB"), R"([{"timestamp":1705312805}])");
}

TEST_CASE("nested updates merge and keep the timestamps of untouched keys", "[twin][aws][update]") {
  aws_shadow shadow("thing1");
  must_update(shadow, R"({"state":{"desired":{"lights":{"color":{"r":1,"g":2},"on":true}}}})", 0);
  must_update(shadow, R"({"state":{"desired":{"lights":{"color":{"g":20,"b":30}}}}})", 7);
  CHECK_JSON(shadow.desired(), R"({"lights":{"color":{"r":1,"g":20,"b":30},"on":true}})");
  CHECK_JSON(shadow.desired_metadata(), R"({"lights":{"color":{
      "r":{"timestamp":1705312800},"g":{"timestamp":1705312807},"b":{"timestamp":1705312807}},
      "on":{"timestamp":1705312800}}})");
}

TEST_CASE("metadata follows a value that changes between scalar and object", "[twin][aws][update]") {
  aws_shadow shadow("thing1");
  must_update(shadow, R"({"state":{"reported":{"a":5,"b":{"x":1}}}})", 0);
  must_update(shadow, R"({"state":{"reported":{"a":{"y":2,"z":null},"b":"flat"}}})", 1);
  CHECK_JSON(shadow.reported(), R"({"a":{"y":2},"b":"flat"})");
  CHECK_JSON(shadow.reported_metadata(), R"({"a":{"y":{"timestamp":1705312801}},"b":{"timestamp":1705312801}})");
}

TEST_CASE("empty objects are kept as RFC 7396 keeps them (documented decision)", "[twin][aws][update]") {
  aws_shadow shadow("thing1");
  auto out = must_update(shadow, R"({"state":{"desired":{"a":{},"b":{"c":null}}}})", 0);
  CHECK_JSON(shadow.desired(), R"({"a":{},"b":{}})");
  CHECK_JSON(shadow.desired_metadata(), R"({"a":{},"b":{}})");
  // B4 applied as written: an empty desired object that reported lacks is a difference.
  REQUIRE(out.delta.has_value());
  CHECK_JSON(out.delta->at("state"), R"({"a":{},"b":{}})");
  auto met = must_update(shadow, R"({"state":{"reported":{"a":{"x":1},"b":{}}}})", 1);
  CHECK_FALSE(met.delta.has_value());
}

TEST_CASE("members outside state are ignored", "[twin][aws][update]") {
  aws_shadow shadow("thing1");
  auto out = must_update(shadow, R"({"state":{"reported":{"a":1}},"metadata":{"x":1},"delta":{"q":2},"foo":[null]})",
                         0);
  CHECK_JSON(out.accepted["state"], R"({"reported":{"a":1}})");
  CHECK_JSON(shadow.reported(), R"({"a":1})");
  CHECK(shadow.desired().empty());
}

// ---------------------------------------------------------------------------------------------
// B3.1 section null and state null

TEST_CASE("a section null removes the section and is echoed as null with a timestamp", "[twin][aws][update]") {
  aws_shadow shadow("thing1");
  must_update(shadow, R"({"state":{"desired":{"a":1,"b":{"c":2}},"reported":{"a":0}}})", 0);
  auto out = must_update(shadow, R"({"state":{"desired":null},"clientToken":"clr"})", 3);
  CHECK_JSON(out.accepted, R"({"state":{"desired":null},"metadata":{"desired":{"timestamp":1705312803}},
      "version":2,"timestamp":1705312803,"clientToken":"clr"})");
  CHECK(shadow.desired().empty());
  CHECK(shadow.desired_metadata().empty());
  CHECK_JSON(shadow.reported(), R"({"a":0})");
  CHECK_FALSE(out.delta.has_value());  // nothing desired any more
  auto got = shadow.get(std::nullopt, at(4));
  REQUIRE(got);
  CHECK_JSON(*got, R"({"state":{"reported":{"a":0}},"metadata":{"reported":{"a":{"timestamp":1705312800}}},
      "version":2,"timestamp":1705312804})");
}

TEST_CASE("state null clears both sections, keeps the shadow and bumps the version", "[twin][aws][update]") {
  aws_shadow shadow("thing1");
  must_update(shadow, R"({"state":{"desired":{"a":1},"reported":{"a":2}}})", 0);
  auto out = must_update(shadow, R"({"state":null,"clientToken":"wipe"})", 1);
  // Decision (aws_shadow.cpp): echoed as both section nulls.
  CHECK_JSON(out.accepted, R"({"state":{"desired":null,"reported":null},
      "metadata":{"desired":{"timestamp":1705312801},"reported":{"timestamp":1705312801}},
      "version":2,"timestamp":1705312801,"clientToken":"wipe"})");
  CHECK_FALSE(out.delta.has_value());
  CHECK(shadow.exists());
  CHECK(shadow.version() == 2);
  CHECK(shadow.desired().empty());
  CHECK(shadow.reported().empty());
  CHECK(shadow.desired_metadata().empty());
  CHECK(shadow.reported_metadata().empty());
  auto got = shadow.get(std::nullopt, at(2));
  REQUIRE(got);
  CHECK_JSON(*got, R"({"state":{},"metadata":{},"version":2,"timestamp":1705312802})");
  CHECK(must_update(shadow, R"({"state":{"reported":{"b":1}}})", 3).version == 3);
}

TEST_CASE("state null on a shadow that does not exist creates an empty one", "[twin][aws][update]") {
  aws_shadow shadow("thing1");
  auto out = must_update(shadow, R"({"state":null})", 0);
  CHECK(shadow.exists());
  CHECK(out.version == 1);
  CHECK(out.documents["previous"].is_null());
}

// ---------------------------------------------------------------------------------------------
// B3.4 /update/delta and the reported-only re-fire (#229)

TEST_CASE("an update that leaves desired and reported different publishes all the differences",
          "[twin][aws][delta]") {
  aws_shadow shadow("thing1");
  must_update(shadow, R"({"state":{"reported":{"color":"green","status":"ok"}}})", 0);
  must_update(shadow, R"({"state":{"desired":{"status":"great"}}})", 1);
  auto out = must_update(shadow, R"({"state":{"desired":{"color":"red"}},"clientToken":"app-7"})", 2);
  REQUIRE(out.delta.has_value());
  // Both differing keys, not only the one this update wrote; metadata is desired's.
  CHECK_JSON(*out.delta, R"({"state":{"color":"red","status":"great"},
      "metadata":{"color":{"timestamp":1705312802},"status":{"timestamp":1705312801}},
      "version":3,"timestamp":1705312802,"clientToken":"app-7"})");
  CHECK(out.delta->at("version") == out.accepted.at("version"));
}

TEST_CASE("a reported-only update re-fires the delta while desired still differs (#229)", "[twin][aws][delta]") {
  aws_shadow shadow("lock-01");
  auto first = must_update(shadow, R"({"state":{"desired":{"lock":"unlock"}}})", 0);
  REQUIRE(first.delta.has_value());
  CHECK_JSON(first.delta->at("state"), R"({"lock":"unlock"})");

  // The device reports "locked" by hand: the stale desired comes straight back.
  auto report = must_update(shadow, R"({"state":{"reported":{"lock":"locked"}},"clientToken":"dev-1"})", 5);
  REQUIRE(report.delta.has_value());
  CHECK_JSON(*report.delta, R"({"state":{"lock":"unlock"},"metadata":{"lock":{"timestamp":1705312800}},
      "version":2,"timestamp":1705312805,"clientToken":"dev-1"})");

  // An update of an unrelated reported key fires it again, with the next version.
  auto unrelated = must_update(shadow, R"({"state":{"reported":{"battery":80}}})", 6);
  REQUIRE(unrelated.delta.has_value());
  CHECK_JSON(unrelated.delta->at("state"), R"({"lock":"unlock"})");
  CHECK(unrelated.delta->at("version") == 3);
  CHECK_FALSE(unrelated.delta->contains("clientToken"));

  // Desired is never cleared automatically: once reported matches, no delta, desired stays.
  auto in_sync = must_update(shadow, R"({"state":{"reported":{"lock":"unlock"}}})", 7);
  CHECK_FALSE(in_sync.delta.has_value());
  CHECK_JSON(shadow.desired(), R"({"lock":"unlock"})");
  CHECK(shadow.delta().empty());
}

TEST_CASE("a key deleted from reported but still desired is back in the delta", "[twin][aws][delta]") {
  aws_shadow shadow("thing1");
  must_update(shadow, R"({"state":{"desired":{"a":1},"reported":{"a":1}}})", 0);
  CHECK(shadow.delta().empty());
  auto out = must_update(shadow, R"({"state":{"reported":{"a":null}}})", 1);
  REQUIRE(out.delta.has_value());
  CHECK_JSON(out.delta->at("state"), R"({"a":1})");
}

TEST_CASE("the nested delta example reaches the delta document and GET", "[twin][aws][delta]") {
  aws_shadow shadow("thing1");
  must_update(shadow, R"({"state":{"reported":{"lights":{"color":{"r":255,"g":0,"b":255}}}}})", 0);
  auto out = must_update(shadow, R"({"state":{"desired":{"lights":{"color":{"r":255,"g":255,"b":255}}}}})", 1);
  REQUIRE(out.delta.has_value());
  CHECK_JSON(out.delta->at("state"), R"({"lights":{"color":{"g":255}}})");
  CHECK_JSON(out.delta->at("metadata"), R"({"lights":{"color":{"g":{"timestamp":1705312801}}}})");
  auto got = shadow.get(std::nullopt, at(2));
  REQUIRE(got);
  CHECK_JSON(got->at("state").at("delta"), R"({"lights":{"color":{"g":255}}})");
}

TEST_CASE("the array delta example reaches the delta document with per-element metadata", "[twin][aws][delta]") {
  aws_shadow shadow("thing1");
  must_update(shadow, R"({"state":{"reported":{"seq":["RED","GREEN"]}}})", 0);
  auto out = must_update(shadow, R"({"state":{"desired":{"seq":["RED","GREEN","BLUE"]}}})", 1);
  REQUIRE(out.delta.has_value());
  CHECK_JSON(out.delta->at("state"), R"({"seq":["RED","GREEN","BLUE"]})");
  CHECK_JSON(out.delta->at("metadata"),
             R"({"seq":[{"timestamp":1705312801},{"timestamp":1705312801},{"timestamp":1705312801}]})");
  auto same = must_update(shadow, R"({"state":{"reported":{"seq":["RED","GREEN","BLUE"]}}})", 2);
  CHECK_FALSE(same.delta.has_value());
}

TEST_CASE("no delta when the update leaves desired equal to reported", "[twin][aws][delta]") {
  aws_shadow shadow("thing1");
  auto out = must_update(shadow, R"({"state":{"desired":{"a":1,"b":[1,2]},"reported":{"a":1.0,"b":[1,2],"c":3}}})",
                         0);
  CHECK_FALSE(out.delta.has_value());
  auto only_reported = must_update(shadow, R"({"state":{"reported":{"d":4}}})", 1);
  CHECK_FALSE(only_reported.delta.has_value());
}

// ---------------------------------------------------------------------------------------------
// B3.5 /update/documents

TEST_CASE("update/documents has previous null when the update creates the shadow", "[twin][aws][documents]") {
  aws_shadow shadow("thing1", "simShadow1");
  auto out = must_update(shadow, R"({"state":{"reported":{"Color":"green"}},"clientToken":"c1"})", 0);
  CHECK_JSON(out.documents, R"({"previous":null,
      "current":{"state":{"reported":{"Color":"green"}},"metadata":{"reported":{"Color":{"timestamp":1705312800}}},
                 "version":1},
      "timestamp":1705312800,"clientToken":"c1"})");
}

TEST_CASE("update/documents shows the whole state before and after, without delta", "[twin][aws][documents]") {
  aws_shadow shadow("thing1");
  must_update(shadow, R"({"state":{"desired":{"Color":"green"},"reported":{"Color":"green"}}})", 0);
  auto out = must_update(shadow, R"({"state":{"desired":{"Color":"red"}}})", 10);
  CHECK_JSON(out.documents, R"({
      "previous":{"state":{"desired":{"Color":"green"},"reported":{"Color":"green"}},
                  "metadata":{"desired":{"Color":{"timestamp":1705312800}},"reported":{"Color":{"timestamp":1705312800}}},
                  "version":1},
      "current":{"state":{"desired":{"Color":"red"},"reported":{"Color":"green"}},
                 "metadata":{"desired":{"Color":{"timestamp":1705312810}},"reported":{"Color":{"timestamp":1705312800}}},
                 "version":2},
      "timestamp":1705312810})");
}

// ---------------------------------------------------------------------------------------------
// B3.3 /get/accepted

TEST_CASE("get returns state with delta, metadata, version, timestamp and the token", "[twin][aws][get]") {
  aws_shadow shadow("thing1");
  must_update(shadow, R"({"state":{"desired":{"Color":"red","Status":"Great"},"reported":{"Color":"red"}}})", 0);
  must_update(shadow, R"({"state":{"reported":{"Status":"Awful"}}})", 1);
  auto got = shadow.get(std::string_view("get-1"), at(9));
  REQUIRE(got);
  CHECK_JSON(*got, R"({
      "state":{"desired":{"Color":"red","Status":"Great"},"reported":{"Color":"red","Status":"Awful"},
               "delta":{"Status":"Great"}},
      "metadata":{"desired":{"Color":{"timestamp":1705312800},"Status":{"timestamp":1705312800}},
                  "reported":{"Color":{"timestamp":1705312800},"Status":{"timestamp":1705312801}}},
      "version":2,"timestamp":1705312809,"clientToken":"get-1"})");
}

TEST_CASE("get leaves out empty sections and an empty delta", "[twin][aws][get]") {
  aws_shadow shadow("thing1");
  must_update(shadow, R"({"state":{"reported":{"a":1}}})", 0);
  auto got = shadow.get(std::nullopt, at(0));
  REQUIRE(got);
  CHECK_JSON(*got, R"({"state":{"reported":{"a":1}},"metadata":{"reported":{"a":{"timestamp":1705312800}}},
      "version":1,"timestamp":1705312800})");
}

// ---------------------------------------------------------------------------------------------
// 404: get and delete on a shadow that does not exist

TEST_CASE("404 names the shadow, or the thing for the classic shadow", "[twin][aws][get]") {
  aws_shadow named("mySimulatedThing", "simShadow1");
  CHECK_ERROR(named.get(std::nullopt, at(0)), 404, "No shadow exists with name: 'simShadow1'");
  CHECK_ERROR(named.remove(std::nullopt, std::nullopt, at(0)), 404, "No shadow exists with name: 'simShadow1'");

  aws_shadow classic("mySimulatedThing");
  CHECK_ERROR(classic.get(std::nullopt, at(0)), 404, "No shadow exists with name: 'mySimulatedThing'");
  CHECK(make_aws_error_document(classic.get(std::string_view("tk"), at(0)).error(), "tk", at(0)) ==
        parse(R"({"code":404,"message":"No shadow exists with name: 'mySimulatedThing'",
                  "timestamp":1705312800,"clientToken":"tk"})"));
}

// ---------------------------------------------------------------------------------------------
// B5 versions and delete

TEST_CASE("versions start at 1 and rise by one per accepted update", "[twin][aws][version]") {
  aws_shadow shadow("thing1");
  for (std::int64_t v = 1; v <= 5; ++v) {
    auto out = must_update(shadow, R"({"state":{"reported":{"n":1}}})", v);
    CHECK(out.version == v);
    CHECK(out.accepted.at("version") == v);
    CHECK(out.documents.at("current").at("version") == v);
    if (v > 1) CHECK(out.documents.at("previous").at("version") == v - 1);
    CHECK(shadow.version() == v);
  }
}

TEST_CASE("a version that is not the current one is a 409 and changes nothing", "[twin][aws][version]") {
  aws_shadow shadow("thing1");
  must_update(shadow, R"({"state":{"desired":{"a":1}}})", 0);
  must_update(shadow, R"({"state":{"desired":{"a":2}}})", 1);
  const auto before = capture(shadow);
  const std::string stale = R"({"state":{"desired":{"a":3}},"version":1,"clientToken":"opt-1"})";
  auto res = shadow.update(stale, at(2));
  CHECK_ERROR(res, 409, "Version conflict");
  CHECK(capture(shadow) == before);
  // The rejected document echoes the token.
  CHECK(make_aws_error_document(res.error(), aws_echo_client_token(stale), at(2)) ==
        parse(R"({"code":409,"message":"Version conflict","timestamp":1705312802,"clientToken":"opt-1"})"));
  CHECK_ERROR(shadow.update(R"({"state":{"desired":{"a":3}},"version":3})", at(2)), 409, "Version conflict");

  auto ok = must_update(shadow, R"({"state":{"desired":{"a":3}},"version":2})", 3);
  CHECK(ok.version == 3);
  CHECK_JSON(shadow.desired(), R"({"a":3})");
}

TEST_CASE("version 0 matches a shadow that was never created", "[twin][aws][version]") {
  aws_shadow shadow("thing1");
  CHECK_ERROR(shadow.update(R"({"state":{"reported":{"a":1}},"version":1})", at(0)), 409, "Version conflict");
  CHECK_FALSE(shadow.exists());
  CHECK(must_update(shadow, R"({"state":{"reported":{"a":1}},"version":0})", 0).version == 1);
}

TEST_CASE("delete keeps the version and a re-create continues from it", "[twin][aws][delete]") {
  aws_shadow shadow("thing1", "cfg");
  for (int i = 0; i < 3; ++i) must_update(shadow, R"({"state":{"desired":{"a":1},"reported":{"a":0}}})", i);
  REQUIRE(shadow.version() == 3);

  auto deleted = shadow.remove(std::string_view("del-1"), std::nullopt, at(10));
  REQUIRE(deleted);
  CHECK_JSON(*deleted, R"({"version":3,"timestamp":1705312810,"clientToken":"del-1"})");
  CHECK_FALSE(shadow.exists());
  CHECK(shadow.version() == 3);
  CHECK(shadow.desired().empty());
  CHECK(shadow.reported().empty());
  CHECK(shadow.desired_metadata().empty());
  CHECK_ERROR(shadow.get(std::nullopt, at(11)), 404, "No shadow exists with name: 'cfg'");
  CHECK_ERROR(shadow.remove(std::nullopt, std::nullopt, at(11)), 404, "No shadow exists with name: 'cfg'");

  auto recreated = must_update(shadow, R"({"state":{"reported":{"b":2}}})", 12);
  CHECK(recreated.version == 4);
  CHECK(recreated.documents.at("previous").is_null());  // the old state is gone
  CHECK_JSON(shadow.reported(), R"({"b":2})");
  CHECK(shadow.desired().empty());  // nothing of the deleted desired came back
  CHECK_FALSE(recreated.delta.has_value());
}

TEST_CASE("delete with a version that is not the current one is a 409", "[twin][aws][delete]") {
  aws_shadow shadow("thing1");
  must_update(shadow, R"({"state":{"reported":{"a":1}}})", 0);
  must_update(shadow, R"({"state":{"reported":{"a":2}}})", 0);
  const auto before = capture(shadow);
  CHECK_ERROR(shadow.remove(std::nullopt, std::int64_t{1}, at(0)), 409, "Version conflict");
  CHECK(capture(shadow) == before);
  auto ok = shadow.remove(std::nullopt, std::int64_t{2}, at(0));
  REQUIRE(ok);
  CHECK_JSON(*ok, R"({"version":2,"timestamp":1705312800})");
}

// ---------------------------------------------------------------------------------------------
// clientToken

TEST_CASE("the clientToken is echoed on every document of the request and absent otherwise",
          "[twin][aws][token]") {
  aws_shadow shadow("thing1");
  auto with = must_update(shadow, R"({"state":{"desired":{"a":1}},"clientToken":"58de9848-e4db"})", 0);
  CHECK(with.accepted.at("clientToken") == "58de9848-e4db");
  CHECK(with.documents.at("clientToken") == "58de9848-e4db");
  REQUIRE(with.delta.has_value());
  CHECK(with.delta->at("clientToken") == "58de9848-e4db");

  auto without = must_update(shadow, R"({"state":{"desired":{"a":2}}})", 0);
  CHECK_FALSE(without.accepted.contains("clientToken"));
  CHECK_FALSE(without.documents.contains("clientToken"));
  REQUIRE(without.delta.has_value());
  CHECK_FALSE(without.delta->contains("clientToken"));

  CHECK_FALSE(shadow.get(std::nullopt, at(0))->contains("clientToken"));
  CHECK(shadow.get(std::string_view("g"), at(0))->at("clientToken") == "g");
}

TEST_CASE("a clientToken of 64 bytes is accepted and one of 65 bytes is not", "[twin][aws][token][errors]") {
  aws_shadow shadow("thing1");
  const std::string ok_token(64, 't');
  const std::string long_token(65, 't');
  auto out = must_update(shadow, R"({"state":{"reported":{"a":1}},"clientToken":")" + ok_token + "\"}", 0);
  CHECK(out.accepted.at("clientToken").as_string() == ok_token);
  const auto before = capture(shadow);
  const std::string bad = R"({"state":{"reported":{"a":2}},"clientToken":")" + long_token + "\"}";
  CHECK_ERROR(shadow.update(bad, at(0)), 400, "Invalid clientToken");
  CHECK(capture(shadow) == before);
  CHECK_FALSE(aws_echo_client_token(bad).has_value());  // not echoable
  // 64 bytes, not 64 characters: 22 three-byte characters are 66 bytes.
  std::string euros;
  for (int i = 0; i < 22; ++i) euros += "\xe2\x82\xac";
  CHECK_ERROR(shadow.update(R"({"state":{},"clientToken":")" + euros + "\"}", at(0)), 400, "Invalid clientToken");
  CHECK_ERROR(shadow.update(R"({"state":{},"clientToken":42})", at(0)), 400, "Invalid clientToken");
  CHECK_ERROR(shadow.update(R"({"state":{},"clientToken":null})", at(0)), 400, "Invalid clientToken");
}

// ---------------------------------------------------------------------------------------------
// B6: every 400 message, the 413 and the 415

TEST_CASE("unparsable payloads are Invalid JSON", "[twin][aws][errors]") {
  aws_shadow shadow("thing1");
  for (const char* payload : {"", "   ", "{", "{\"state\":", "not json", "{\"state\":{}}x", "{'state':{}}",
                              "{\"state\":{},}", "[]", "[{\"state\":{}}]", "42", "\"state\"", "null"}) {
    INFO("payload: " << payload);
    CHECK_ERROR(shadow.update(payload, at(0)), 400, "Invalid JSON");
  }
  CHECK_FALSE(shadow.exists());
  CHECK(shadow.version() == 0);
}

TEST_CASE("a number beyond double's range is refused instead of stored as infinity", "[twin][aws][errors]") {
  aws_shadow shadow("thing1");
  CHECK_ERROR(shadow.update(R"({"state":{"reported":{"a":1e400}}})", at(0)), 400, "Invalid JSON");
  CHECK_ERROR(shadow.update(R"({"state":{"desired":{"a":{"b":[-1e999]}}}})", at(0)), 400, "Invalid JSON");
  CHECK_FALSE(shadow.exists());
  // Large but finite numbers, and integers beyond int64, are kept.
  must_update(shadow, R"({"state":{"reported":{"a":1e300,"b":18446744073709551615}}})", 0);
  CHECK(shadow.reported().at("a").as_double() == 1e300);
  CHECK(shadow.reported().at("b").as_uint64() == 18446744073709551615ULL);
}

TEST_CASE("invalid UTF-8 is a 415 before anything else", "[twin][aws][errors]") {
  aws_shadow shadow("thing1");
  const std::string msg = "Unsupported documented encoding; supported encoding is UTF-8";
  CHECK_ERROR(shadow.update("{\"state\":{\"reported\":{\"a\":\"\xff\"}}}", at(0)), 415, msg);
  CHECK_ERROR(shadow.update("{\"state\":{\"reported\":{\"\xc0\xaf\":1}}}", at(0)), 415, msg);   // overlong '/'
  CHECK_ERROR(shadow.update("{\"state\":{\"reported\":{\"a\":\"\xed\xa0\x80\"}}}", at(0)), 415, msg);  // surrogate
  CHECK_ERROR(shadow.update("{\"state\":{\"reported\":{\"a\":\"\xe2\x82\"}}}", at(0)), 415, msg);  // truncated
  CHECK_ERROR(shadow.update("\xfe{", at(0)), 415, msg);  // not even JSON: the encoding is checked first
  CHECK_FALSE(shadow.exists());
  // Well-formed multi-byte text is fine.
  must_update(shadow, "{\"state\":{\"reported\":{\"caf\xc3\xa9\":\"\xe2\x82\xac \xf0\x9f\x92\xa1\"}}}", 0);
  CHECK(shadow.reported().at("caf\xc3\xa9") == "\xe2\x82\xac \xf0\x9f\x92\xa1");
}

TEST_CASE("structural 400 messages", "[twin][aws][errors]") {
  aws_shadow shadow("thing1");
  must_update(shadow, R"({"state":{"reported":{"a":1}}})", 0);
  const auto before = capture(shadow);
  struct bad_case {
    const char* payload;
    const char* message;
  };
  const bad_case cases[] = {
      {R"({})", "Missing required node: state"},
      {R"({"clientToken":"x","version":1})", "Missing required node: state"},
      {R"({"State":{}})", "Missing required node: state"},
      {R"({"state":5})", "State node must be an object"},
      {R"({"state":"on"})", "State node must be an object"},
      {R"({"state":[]})", "State node must be an object"},
      {R"({"state":true})", "State node must be an object"},
      {R"({"state":{"delta":{"a":1}}})", "State contains an invalid node"},
      {R"({"state":{"desired":{"a":1},"metadata":{}}})", "State contains an invalid node"},
      {R"({"state":{"Desired":{"a":1}}})", "State contains an invalid node"},
      {R"({"state":{"desired":5}})", "Desired node must be an object"},
      {R"({"state":{"desired":[{"a":1}]}})", "Desired node must be an object"},
      {R"({"state":{"desired":"x","reported":{}}})", "Desired node must be an object"},
      {R"({"state":{"reported":true}})", "Reported node must be an object"},
      {R"({"state":{"reported":[]}})", "Reported node must be an object"},
      {R"({"state":{"reported":{}},"version":"1"})", "Invalid version"},
      {R"({"state":{"reported":{}},"version":1.5})", "Invalid version"},
      {R"({"state":{"reported":{}},"version":1.0})", "Invalid version"},
      {R"({"state":{"reported":{}},"version":null})", "Invalid version"},
      {R"({"state":{"reported":{}},"version":[1]})", "Invalid version"},
      {R"({"state":{"reported":{}},"version":18446744073709551615})", "Invalid version"},
  };
  for (const auto& c : cases) {
    INFO("payload: " << c.payload);
    CHECK_ERROR(shadow.update(c.payload, at(1)), 400, c.message);
  }
  CHECK(capture(shadow) == before);
}

TEST_CASE("an array containing null is refused", "[twin][aws][errors]") {
  aws_shadow shadow("thing1");
  const auto msg = "State contains an invalid node";
  CHECK_ERROR(shadow.update(R"({"state":{"desired":{"a":[1,null,3]}}})", at(0)), 400, msg);
  CHECK_ERROR(shadow.update(R"({"state":{"reported":{"a":{"b":[null]}}}})", at(0)), 400, msg);
  CHECK_ERROR(shadow.update(R"({"state":{"reported":{"a":[[1],[null]]}}})", at(0)), 400, msg);
  CHECK_ERROR(shadow.update(R"({"state":{"reported":{"a":[{"k":null}]}}})", at(0)), 400, msg);
  CHECK_FALSE(shadow.exists());
  // Nulls outside arrays are deletions, and arrays without nulls are fine.
  must_update(shadow, R"({"state":{"reported":{"a":null,"b":[1,[2],{"c":"d"}],"e":[]}}})", 0);
  CHECK_JSON(shadow.reported(), R"({"b":[1,[2],{"c":"d"}],"e":[]})");
}

TEST_CASE("depth: desired.one.two.three.four.five is the deepest accepted", "[twin][aws][errors]") {
  aws_shadow shadow("thing1");
  const std::string too_deep = "JSON contains too many levels of nesting; maximum is 6";
  // five is an object, the sixth level counting desired: accepted.
  must_update(shadow, R"({"state":{"desired":{"one":{"two":{"three":{"four":{"five":{"leaf":1}}}}}}}})", 0);
  must_update(shadow, R"({"state":{"reported":{"one":{"two":{"three":{"four":{"five":{}}}}}}}})", 0);
  // A sixth nested object below desired, even an empty one: refused.
  const auto before = capture(shadow);
  CHECK_ERROR(shadow.update(R"({"state":{"desired":{"one":{"two":{"three":{"four":{"five":{"six":{}}}}}}}}})",
                            at(1)),
              400, too_deep);
  CHECK_ERROR(shadow.update(R"({"state":{"reported":{"one":{"two":{"three":{"four":{"five":{"six":{"x":1}}}}}}}}})",
                            at(1)),
              400, too_deep);
  // Arrays are levels too.
  must_update(shadow, R"({"state":{"reported":{"a":[[[[1]]]]}}})", 2);  // reported + 4 arrays = 5
  must_update(shadow, R"({"state":{"reported":{"a":[[[[[1]]]]]}}})", 2);  // 6
  const auto after_arrays = capture(shadow);
  CHECK_ERROR(shadow.update(R"({"state":{"reported":{"a":[[[[[[1]]]]]]}}})", at(3)), 400, too_deep);
  CHECK_ERROR(shadow.update(R"({"state":{"reported":{"a":[{"b":[{"c":{"d":[]}}]}]}}})", at(3)), 400, too_deep);
  CHECK(capture(shadow) == after_arrays);
  CHECK(before.version + 2 == after_arrays.version);
}

TEST_CASE("depth limit is configurable and named in the message", "[twin][aws][errors]") {
  aws_shadow_limits limits;
  limits.max_depth = 3;
  aws_shadow shadow("thing1", "", limits);
  must_update(shadow, R"({"state":{"desired":{"a":{"b":{"c":1}}}}})", 0);
  CHECK_ERROR(shadow.update(R"({"state":{"desired":{"a":{"b":{"c":{}}}}}})", at(0)), 400,
              "JSON contains too many levels of nesting; maximum is 3");
  // Nesting beyond what the parser accepts at all is reported the same way, not as bad JSON.
  std::string deep = R"({"state":{"desired":{"a":)";
  for (int i = 0; i < 200; ++i) deep += "[";
  for (int i = 0; i < 200; ++i) deep += "]";
  deep += "}}}";
  CHECK_ERROR(shadow.update(deep, at(0)), 400, "JSON contains too many levels of nesting; maximum is 3");
}

TEST_CASE("413 when the resulting state passes 8192 bytes, metadata not counted", "[twin][aws][errors]") {
  aws_shadow shadow("thing1");
  // {"k":"…"} is 8 bytes plus the string: 8184 characters make exactly 8192 bytes.
  const std::string fits(8184, 'x');
  auto out = must_update(shadow, R"({"state":{"reported":{"k":")" + fits + "\"}}}", 0);
  REQUIRE(aws_state_size(shadow.desired(), shadow.reported()) == 8192);
  CHECK(out.version == 1);

  // One more byte anywhere in the state is over: in the same section, or in the other one.
  const auto before = capture(shadow);
  CHECK_ERROR(shadow.update(R"({"state":{"reported":{"k":")" + fits + "y\"}}}", at(1)), 413,
              "The payload exceeds the maximum size allowed");
  CHECK_ERROR(shadow.update(R"({"state":{"desired":{"":""}}})", at(1)), 413,  // {"":""} is 7 bytes
              "The payload exceeds the maximum size allowed");
  CHECK(capture(shadow) == before);

  // The result counts, not the request: shrinking a full shadow is fine, and so is a request
  // that deletes as much as it adds.
  must_update(shadow, R"({"state":{"reported":{"k":null,"j":")" + fits + "\"}}}", 2);
  CHECK(aws_state_size(shadow.desired(), shadow.reported()) == 8192);
}

TEST_CASE("the state size limit sums both sections and is configurable", "[twin][aws][errors]") {
  aws_shadow_limits limits;
  limits.max_state_bytes = 20;
  aws_shadow shadow("thing1", "", limits);
  must_update(shadow, R"({"state":{"desired":{"a":"12345"}}})", 0);  // {"a":"12345"} = 13
  CHECK(aws_state_size(shadow.desired(), shadow.reported()) == 13);
  must_update(shadow, R"({"state":{"reported":{"b":1}}})", 0);  // {"b":1} = 7, total 20
  CHECK_ERROR(shadow.update(R"({"state":{"reported":{"b":12}}})", at(0)), 413,
              "The payload exceeds the maximum size allowed");
  CHECK(shadow.version() == 2);
  // Metadata is large here (timestamps of 10 digits) and does not count.
  CHECK(json::serialize(shadow.desired_metadata()).size() > 20);
}

TEST_CASE("errors are checked in the documented order", "[twin][aws][errors]") {
  aws_shadow shadow("thing1");
  must_update(shadow, R"({"state":{"reported":{"a":1}}})", 0);
  // A bad token wins over a missing state; a bad version over bad sections; 400s over 409.
  CHECK_ERROR(shadow.update(R"({"clientToken":7})", at(0)), 400, "Invalid clientToken");
  CHECK_ERROR(shadow.update(R"({"version":"x","state":5})", at(0)), 400, "Invalid version");
  CHECK_ERROR(shadow.update(R"({"version":9,"state":{"desired":[]}})", at(0)), 400,
              "Desired node must be an object");
  CHECK_ERROR(shadow.update(R"({"version":9,"state":{"desired":{"a":[null]}}})", at(0)), 400,
              "State contains an invalid node");
  // 409 before 413.
  const std::string big(9000, 'x');
  CHECK_ERROR(shadow.update(R"({"version":9,"state":{"desired":{"a":")" + big + "\"}}}", at(0)), 409,
              "Version conflict");
  CHECK_ERROR(shadow.update(R"({"version":1,"state":{"desired":{"a":")" + big + "\"}}}", at(0)), 413,
              "The payload exceeds the maximum size allowed");
}

// ---------------------------------------------------------------------------------------------
// Request helpers and the error document

TEST_CASE("get and delete payloads may be empty or carry a token and a version", "[twin][aws][request]") {
  auto empty = parse_aws_control_request("");
  REQUIRE(empty);
  CHECK_FALSE(empty->client_token.has_value());
  CHECK_FALSE(empty->version.has_value());
  CHECK(parse_aws_control_request(" \r\n")->client_token == std::nullopt);

  auto full = parse_aws_control_request(R"({"clientToken":"abc","version":17,"other":[1]})");
  REQUIRE(full);
  CHECK(full->client_token == "abc");
  CHECK(full->version == 17);

  CHECK_ERROR(parse_aws_control_request("{"), 400, "Invalid JSON");
  CHECK_ERROR(parse_aws_control_request("\xff"), 415, "Unsupported documented encoding; supported encoding is UTF-8");
  CHECK_ERROR(parse_aws_control_request(R"({"clientToken":1})"), 400, "Invalid clientToken");
  CHECK_ERROR(parse_aws_control_request(R"({"version":-1.5})"), 400, "Invalid version");
  // A negative integer is a version, one that never matches.
  CHECK(parse_aws_control_request(R"({"version":-1})")->version == -1);
}

TEST_CASE("the token of a rejected request is echoed when it can be read", "[twin][aws][request]") {
  CHECK(aws_echo_client_token(R"({"clientToken":"t1","state":5})") == "t1");
  CHECK(aws_echo_client_token(R"({"clientToken":"t1","version":"x"})") == "t1");
  CHECK_FALSE(aws_echo_client_token(R"({"state":5})").has_value());
  CHECK_FALSE(aws_echo_client_token(R"({"clientToken":"t1")").has_value());  // unparsable
  CHECK_FALSE(aws_echo_client_token(R"({"clientToken":5})").has_value());
}

TEST_CASE("the error document carries code, message, timestamp and an optional token", "[twin][aws][errors]") {
  const error e{400, "Invalid JSON"};
  CHECK_JSON(make_aws_error_document(e, std::nullopt, at(0)),
             R"({"code":400,"message":"Invalid JSON","timestamp":1705312800})");
  CHECK_JSON(make_aws_error_document(e, "tok", at(0)),
             R"({"code":400,"message":"Invalid JSON","timestamp":1705312800,"clientToken":"tok"})");
  CHECK(aws_too_deep_message(8) == "JSON contains too many levels of nesting; maximum is 8");
  CHECK(aws_no_shadow_message("x") == "No shadow exists with name: 'x'");
}

TEST_CASE("a parsed request object gives the same answer as its bytes", "[twin][aws][update]") {
  aws_shadow a("thing1");
  aws_shadow b("thing1");
  const std::string text = R"({"state":{"desired":{"x":[1,2],"y":{"z":true}},"reported":{"x":[1]}},"clientToken":"c"})";
  auto from_bytes = a.update(text, at(0));
  auto from_object = b.update(parse(text).get_object(), at(0));
  REQUIRE(from_bytes);
  REQUIRE(from_object);
  CHECK(from_bytes->accepted == from_object->accepted);
  CHECK(from_bytes->documents == from_object->documents);
  CHECK(from_bytes->delta == from_object->delta);
  CHECK_ERROR(b.update(parse(R"({"state":{"desired":3}})").get_object(), at(0)), 400,
              "Desired node must be an object");
}
