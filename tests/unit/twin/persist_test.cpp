// Snapshots of twins and shadows (persist.cpp): a restored object behaves exactly like the one
// it was taken from, and a corrupt snapshot is an error naming the bad member, never a crash.
// Random operation sequences come from fixed seeds, so a failure reproduces; the seed, trial
// and step are in the failure message.
#include <twinfleet/twin/aws_shadow.hpp>
#include <twinfleet/twin/azure_twin.hpp>

#include "json_test_util.hpp"

#include <catch2/catch.hpp>

#include <boost/json.hpp>

#include <functional>
#include <random>
#include <string>
#include <vector>

using namespace twinfleet::twin;
using twinfleet::test::at;
using twinfleet::test::jo;
using twinfleet::test::jv;

namespace {

using rng_t = std::mt19937;

int pick(rng_t& rng, int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); }

const char* const keys[] = {"a", "b", "c", "d"};

json::value scalar(rng_t& rng) {
  switch (pick(rng, 0, 6)) {
    case 0: return pick(rng, -50, 50);
    case 1: return pick(rng, 0, 1) == 1;
    case 2: return json::string(static_cast<std::size_t>(pick(rng, 0, 4)), 'x');
    case 3: return pick(rng, 0, 100) / 8.0;
    case 4: return json::array{1, "two", 3.5};
    case 5: return 0.1;  // not exact in binary: checks that doubles survive the text form
    default: return "é ünïcode";
  }
}

// A patch: nested objects, and nulls (deletions) when `nulls`.
json::object patch(rng_t& rng, int depth, bool nulls) {
  json::object o;
  for (int i = pick(rng, 0, 3); i >= 0; --i) {
    const char* key = keys[pick(rng, 0, 3)];
    const int roll = pick(rng, 0, 9);
    if (nulls && roll == 0) {
      o[key] = nullptr;
    } else if (depth > 1 && roll < 4) {
      o[key] = patch(rng, depth - 1, nulls);
    } else {
      o[key] = scalar(rng);
    }
  }
  return o;
}

std::string text(const json::value& v) { return json::serialize(v); }

template <class T>
std::string outcome(const result<T>& r) {
  if (!r) return "error " + std::to_string(r.error().code) + " " + r.error().message;
  if constexpr (std::is_same_v<T, desired_change>) {
    return "ok " + std::to_string(r->desired_version) + " " + (r->notification ? text(*r->notification) : "-");
  } else if constexpr (std::is_same_v<T, aws_shadow::update_outcome>) {
    return "ok " + text(r->accepted) + (r->delta ? text(*r->delta) : "-") + text(r->documents);
  } else if constexpr (std::is_same_v<T, json::object>) {
    return "ok " + text(*r);
  } else {
    return "ok " + std::to_string(*r);
  }
}

// Through the text a state file holds, as the hub writes and reads it.
json::object via_text(const json::object& snapshot) { return json::parse(json::serialize(snapshot)).as_object(); }

// One random Azure operation, applied the same way to any twin; returns what it answered.
std::string azure_step(azure_twin& twin, rng_t rng, double when) {
  const auto now = at(when);
  switch (pick(rng, 0, 8)) {
    case 0:
    case 1: {
      json::object body{{"properties", json::object{{"desired", patch(rng, 3, true)}}}};
      if (pick(rng, 0, 2) == 0) body["tags"] = patch(rng, 2, true);
      return outcome(twin.service_patch(body, if_match{}, now));
    }
    case 2: return outcome(twin.service_patch(json::object{{"tags", patch(rng, 3, true)}}, if_match{}, now));
    case 3: {
      // If-Match with the current etag, or an old one that must be refused.
      const auto tag = pick(rng, 0, 1) == 0 ? twin.etag() : counter_etag(twin.version() - 1);
      json::object body{{"properties", json::object{{"desired", patch(rng, 3, false)}}}};
      return outcome(twin.service_replace(body, if_match{if_match::kind::tag, tag}, now));
    }
    case 4:
    case 5: return outcome(twin.patch_reported(patch(rng, 3, true), std::nullopt, now));
    case 6: {
      const auto expected = twin.reported_version() - pick(rng, 0, 1);
      return outcome(twin.patch_reported(patch(rng, 2, false), expected, now));
    }
    case 7:
      twin.set_connected(pick(rng, 0, 1) == 1, now);
      twin.set_model_id("dtmi:com:example:T;" + std::to_string(pick(rng, 1, 3)));
      return "connected";
    default:
      twin.set_enabled(pick(rng, 0, 1) == 1, now);
      return "enabled";
  }
}

std::string azure_state(const azure_twin& twin) {
  return text(twin.to_json()) + text(twin.device_view()) + twin.etag() + " " + std::to_string(twin.version()) + " " +
         std::to_string(twin.desired_version()) + " " + std::to_string(twin.reported_version());
}

std::string aws_step(aws_shadow& shadow, rng_t rng, double when) {
  const auto now = at(when);
  switch (pick(rng, 0, 7)) {
    case 0:
    case 1:
    case 2: {
      json::object state;
      if (pick(rng, 0, 3) != 0) state["desired"] = patch(rng, 3, true);
      if (pick(rng, 0, 2) != 0) state["reported"] = patch(rng, 3, true);
      json::object request{{"state", std::move(state)}, {"clientToken", "t" + std::to_string(pick(rng, 0, 9))}};
      if (pick(rng, 0, 3) == 0) request["version"] = shadow.version() - pick(rng, 0, 1);
      return outcome(shadow.update(request, now));
    }
    case 3: return outcome(shadow.update(R"({"state":null})", now));
    case 4: return outcome(shadow.get("g", now));
    case 5:
    case 6: return outcome(shadow.remove("r", std::nullopt, now));
    default: return outcome(shadow.update(R"({"state":{"desired":{"a":[1,null]}}})", now));  // refused
  }
}

std::string aws_state(const aws_shadow& shadow, double when) {
  return outcome(shadow.get(std::nullopt, at(when))) + " v" + std::to_string(shadow.version()) +
         (shadow.exists() ? " exists" : " gone") + text(shadow.desired_metadata()) + text(shadow.reported_metadata());
}

}  // namespace

TEST_CASE("parse_iso8601 reads back what format_iso8601 writes", "[twin][persist]") {
  for (double s : {0.0, 0.5, 1.25, 86399.9999999, 1e6 + 0.0000001}) {
    const auto t = at(s);
    const auto text = format_iso8601(t);
    INFO(text);
    const auto back = parse_iso8601(text);
    REQUIRE(back);
    CHECK(format_iso8601(*back) == text);
  }
  CHECK(parse_iso8601("2024-01-15T10:00:00Z") == at(0));
  CHECK(parse_iso8601("2024-01-15T10:00:00.5Z") == at(0.5));
  for (const char* bad : {"", "2024-01-15", "2024-01-15T10:00:00", "2024-02-30T10:00:00Z", "2024-01-15T24:00:00Z",
                          "2024-01-15T10:00:00.Z", "2024-01-15T10:00:00.1234567890Z", "2024-01-15T10:00:00+01:00",
                          "0001-01-01T00:00:00Z", "20x4-01-15T10:00:00Z"}) {
    INFO(bad);
    CHECK_FALSE(parse_iso8601(bad));
  }
}

TEST_CASE("property: an Azure twin restored from its snapshot behaves byte for byte like the original",
          "[twin][azure][persist][property]") {
  constexpr rng_t::result_type seed = 20240301;
  rng_t rng(seed);
  for (int trial = 0; trial < 200; ++trial) {
    azure_twin original("dev-" + std::to_string(trial), at(0));
    const int before = pick(rng, 0, 12);
    double when = 1;
    for (int step = 0; step < before; ++step) (void)azure_step(original, rng_t(rng()), when++);

    const auto snapshot = original.to_snapshot();
    auto restored = azure_twin::from_snapshot(via_text(snapshot));
    INFO("seed " << seed << " trial " << trial << " snapshot " << text(snapshot));
    REQUIRE(restored);
    CHECK(text(restored->to_snapshot()) == text(snapshot));
    REQUIRE(azure_state(*restored) == azure_state(original));
    for (int step = 0; step < 8; ++step) {
      const auto op_seed = rng();
      const auto a = azure_step(original, rng_t(op_seed), when);
      const auto b = azure_step(*restored, rng_t(op_seed), when);
      ++when;
      INFO("step " << step);
      REQUIRE(b == a);
      REQUIRE(azure_state(*restored) == azure_state(original));
    }
  }
}

TEST_CASE("property: an AWS shadow restored from its snapshot behaves byte for byte like the original",
          "[twin][aws][persist][property]") {
  constexpr rng_t::result_type seed = 20240302;
  rng_t rng(seed);
  for (int trial = 0; trial < 200; ++trial) {
    aws_shadow original("thing-" + std::to_string(trial), trial % 2 == 0 ? "" : "cfg");
    const int before = pick(rng, 0, 12);
    double when = 1;
    for (int step = 0; step < before; ++step) (void)aws_step(original, rng_t(rng()), when++);

    const auto snapshot = original.to_snapshot();
    auto restored = aws_shadow::from_snapshot(via_text(snapshot));
    INFO("seed " << seed << " trial " << trial << " snapshot " << text(snapshot));
    REQUIRE(restored);
    CHECK(text(restored->to_snapshot()) == text(snapshot));
    CHECK(restored->thing_name() == original.thing_name());
    CHECK(restored->shadow_name() == original.shadow_name());
    REQUIRE(aws_state(*restored, when) == aws_state(original, when));
    for (int step = 0; step < 8; ++step) {
      const auto op_seed = rng();
      const auto a = aws_step(original, rng_t(op_seed), when);
      const auto b = aws_step(*restored, rng_t(op_seed), when);
      INFO("step " << step);
      REQUIRE(b == a);
      REQUIRE(aws_state(*restored, when) == aws_state(original, when));
      ++when;
    }
  }
}

TEST_CASE("a deleted shadow's version survives a snapshot and continues on re-creation (B5)", "[twin][aws][persist]") {
  aws_shadow shadow("lamp", "cfg");
  for (int i = 0; i < 3; ++i) REQUIRE(shadow.update(R"({"state":{"desired":{"on":true}}})", at(i)));
  REQUIRE(shadow.remove(std::nullopt, std::nullopt, at(4)));
  auto restored = aws_shadow::from_snapshot(via_text(shadow.to_snapshot()));
  REQUIRE(restored);
  CHECK_FALSE(restored->exists());
  CHECK(restored->get(std::nullopt, at(5)).error().code == 404);
  auto again = restored->update(R"({"state":{"reported":{"on":false}}})", at(6));
  REQUIRE(again);
  CHECK(again->version == 4);
  CHECK(again->documents.at("previous").is_null());
}

TEST_CASE("a twin restored from its snapshot still accepts its etag and refuses older ones", "[twin][azure][persist]") {
  azure_twin twin("dev1", at(0));
  REQUIRE(twin.service_patch(jv(R"({"properties":{"desired":{"x":1}}})"), if_match{}, at(1)));
  const auto old_etag = twin.etag();
  REQUIRE(twin.service_patch(jv(R"({"tags":{"site":"a"}})"), if_match{}, at(2)));
  auto restored = azure_twin::from_snapshot(via_text(twin.to_snapshot()));
  REQUIRE(restored);
  CHECK(restored->etag() == twin.etag());
  auto stale = restored->service_patch(jv(R"({"tags":{"site":"b"}})"), if_match::parse("\"" + old_etag + "\""), at(3));
  REQUIRE_FALSE(stale);
  CHECK(stale.error().code == azure_code::precondition_failed);
  CHECK(restored->service_patch(jv(R"({"tags":{"site":"b"}})"), if_match::parse("\"" + twin.etag() + "\""), at(3)));
}

namespace {

json::object azure_sample() {
  azure_twin twin("dev1", at(0));
  (void)twin.service_patch(jv(R"({"tags":{"t":1},"properties":{"desired":{"a":{"b":1},"c":[1,null]}}})"), if_match{},
                           at(1));
  (void)twin.patch_reported(jv(R"({"fw":{"v":"1.0"}})"), std::nullopt, at(2));
  return twin.to_snapshot();
}

json::object aws_sample() {
  aws_shadow shadow("lamp");
  (void)shadow.update(R"({"state":{"desired":{"a":{"b":1},"l":[1,{"x":2}]},"reported":{"a":{"b":2}}}})", at(1));
  return shadow.to_snapshot();
}

// Sets the member or element that `pointer` names ("/desired/a/0"; no escapes), adding a
// member that is not there.
json::object edited(json::object base, std::string_view pointer, json::value to) {
  json::value root = std::move(base);
  json::value* at_node = &root;
  while (!pointer.empty()) {
    pointer.remove_prefix(1);
    const auto slash = pointer.find('/');
    const std::string token(pointer.substr(0, slash));
    pointer = slash == std::string_view::npos ? std::string_view{} : pointer.substr(slash);
    at_node = at_node->is_array() ? &at_node->as_array().at(std::stoul(token)) : &at_node->as_object()[token];
  }
  *at_node = std::move(to);
  return std::move(root.as_object());
}

}  // namespace

TEST_CASE("a corrupt Azure twin snapshot is refused with the member named", "[twin][azure][persist]") {
  const auto base = azure_sample();
  REQUIRE(azure_twin::from_snapshot(base));
  struct corruption {
    json::object snapshot;
    std::string expected;  // in the message
  };
  auto set = [&](std::string_view pointer, json::value to) {
    return edited(base, pointer, std::move(to));
  };
  auto erase = [&](std::string key) {
    auto copy = base;
    copy.erase(key);
    return copy;
  };
  const corruption cases[] = {
      {erase("deviceId"), "deviceId: missing"},
      {set("/deviceId", "has space"), "deviceId: 'has space' is not a valid device id"},
      {set("/version", "3"), "version: must be an integer"},
      {set("/version", 0), "version: 0 is outside"},
      {set("/version", 1), "version: is below"},
      {set("/desiredVersion", 2.5), "desiredVersion: must be an integer"},
      {set("/tags", json::array{}), "tags: must be a JSON object"},
      {set("/desired/a/b", nullptr), "desired.a.b: a stored document holds no null member"},
      {set("/desired/c", std::int64_t{1} << 60), "desired.c"},
      {set("/reported/bad key", 1), "reported.bad key"},
      {set("/desiredMetadata/a", json::object{}), "desiredMetadata.a.$lastUpdated: missing"},
      {set("/desiredMetadata/a/b/$lastUpdatedVersion", 99), "desiredMetadata.a.b.$lastUpdatedVersion: 99 is outside"},
      {set("/desiredMetadata/zz", json::object{}), "desiredMetadata.zz: metadata for a property that does not exist"},
      {set("/reportedMetadata/fw/v/$lastUpdated", "yesterday"), "reportedMetadata.fw.v.$lastUpdated: 'yesterday'"},
      {set("/reportedMetadata/fw/v/$lastUpdatedVersion", 1), "reported properties carry no $lastUpdatedVersion"},
      {erase("reportedMetadata"), "reportedMetadata: missing"},
      {set("/enabled", "yes"), "enabled: must be true or false"},
      {set("/lastActivityTime", 5), "lastActivityTime: must be a string"},
      {set("/modelId", nullptr), "modelId: must be a string"},
      {set("/extra", 1), "extra: unknown member"},
  };
  for (const auto& c : cases) {
    INFO(text(c.snapshot));
    auto r = azure_twin::from_snapshot(c.snapshot);
    REQUIRE_FALSE(r);
    CHECK(r.error().code == azure_code::invalid_argument);
    CHECK_THAT(r.error().message, Catch::Contains(c.expected));
  }
  // Within the limits of the hub that loads it.
  azure_limits small;
  small.max_desired_size = 4;
  auto r = azure_twin::from_snapshot(base, small);
  REQUIRE_FALSE(r);
  CHECK_THAT(r.error().message, Catch::Contains("desired: 'Properties.Desired' size should be less than 4 bytes."));
}

TEST_CASE("a corrupt AWS shadow snapshot is refused with the member named", "[twin][aws][persist]") {
  const auto base = aws_sample();
  REQUIRE(aws_shadow::from_snapshot(base));
  auto set = [&](std::string_view pointer, json::value to) {
    return edited(base, pointer, std::move(to));
  };
  const std::pair<json::object, std::string> cases[] = {
      {set("/thingName", "no/slash"), "thingName: 'no/slash' is not a valid thing name"},
      {set("/shadowName", "has space"), "shadowName: 'has space' is not a valid shadow name"},
      {set("/exists", 1), "exists: must be true or false"},
      {set("/version", 0), "version: 0 is outside 1.."},
      {set("/version", -1), "version: -1 is outside"},
      {set("/desired/a/b", nullptr), "desired.a.b: a stored document holds no null member"},
      {set("/desired/l/0", nullptr), "desired.l[0]: null inside an array"},
      {set("/desired/a", jv(R"({"1":{"2":{"3":{"4":{"5":{}}}}}})")), "JSON contains too many levels of nesting"},
      {set("/desiredMetadata/a/b", json::object{{"timestamp", "1"}}), "desiredMetadata.a.b: must be {\"timestamp\""},
      {set("/desiredMetadata/l", json::array{}), "desiredMetadata.l: must be an array of one entry per element"},
      {set("/desiredMetadata/l/1", json::object{{"timestamp", 1}}), "desiredMetadata.l[1]: no metadata for x"},
      {set("/reportedMetadata/a", json::object{}), "reportedMetadata.a: must have exactly the state's members"},
      {set("/reportedMetadata", json::object{}), "reportedMetadata: must have exactly the state's members"},
      {set("/desired", "x"), "desired: must be a JSON object"},
      {set("/more", true), "more: unknown member"},
  };
  for (const auto& [snapshot, expected] : cases) {
    INFO(text(snapshot));
    auto r = aws_shadow::from_snapshot(snapshot);
    REQUIRE_FALSE(r);
    CHECK(r.error().code == aws_code::bad_request);
    CHECK_THAT(r.error().message, Catch::Contains(expected));
  }
  // A deleted shadow keeps nothing but its version.
  auto gone = base;
  gone["exists"] = false;
  auto r = aws_shadow::from_snapshot(gone);
  REQUIRE_FALSE(r);
  CHECK_THAT(r.error().message, Catch::Contains("desired: must be empty when the shadow does not exist"));
  aws_shadow_limits small;
  small.max_state_bytes = 10;
  r = aws_shadow::from_snapshot(base, small);
  REQUIRE_FALSE(r);
  CHECK_THAT(r.error().message, Catch::Contains("over the limit of 10 bytes"));
}

TEST_CASE("random damage to a snapshot gives an error or a valid object, never a crash", "[twin][persist][property]") {
  // Replaces one random node (any depth) with a value of another kind, many times over.
  rng_t rng(424242);
  const json::value replacements[] = {nullptr, 0, -1, 1.5, "", "x", true, json::array{}, json::object{},
                                      std::int64_t{1} << 62};
  std::function<void(json::value&, int)> damage = [&](json::value& v, int depth) {
    if (depth > 0 && (v.is_object() && !v.get_object().empty()) && pick(rng, 0, 2) != 0) {
      auto& o = v.get_object();
      auto it = o.begin() + pick(rng, 0, static_cast<int>(o.size()) - 1);
      if (pick(rng, 0, 5) == 0) {
        o.erase(it);
      } else {
        damage(it->value(), depth - 1);
      }
      return;
    }
    v = replacements[pick(rng, 0, static_cast<int>(std::size(replacements)) - 1)];
  };
  // The root stays an object: damage starts at one of its members.
  const auto damaged = [&](json::object snapshot) {
    auto it = snapshot.begin() + pick(rng, 0, static_cast<int>(snapshot.size()) - 1);
    damage(it->value(), 5);
    return snapshot;
  };
  int refused = 0;
  for (int i = 0; i < 2000; ++i) {
    const auto a = damaged(azure_sample());
    const auto b = damaged(aws_sample());
    INFO(text(a) << " / " << text(b));
    std::optional<result<azure_twin>> twin;
    std::optional<result<aws_shadow>> shadow;
    REQUIRE_NOTHROW(twin.emplace(azure_twin::from_snapshot(a)));
    REQUIRE_NOTHROW(shadow.emplace(aws_shadow::from_snapshot(b)));
    // What is accepted is exactly what the file said.
    if (*twin) CHECK(text((*twin)->to_snapshot()) == text(a));
    if (*shadow) CHECK(text((*shadow)->to_snapshot()) == text(b));
    refused += (*twin ? 0 : 1) + (*shadow ? 0 : 1);
  }
  CHECK(refused > 1000);
}
