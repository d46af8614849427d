// Properties of the AWS shadow rules over random documents and patches. Each property runs a
// few hundred cases from a fixed-seed std::mt19937, so a failure reproduces exactly; the seed
// and the case number are in the failure message. Every expected result is computed here,
// independently of aws_shadow.cpp: merges by the RFC 7396 pseudo-code, deltas over leaf paths.
#include <catch2/catch.hpp>

#include "json_test_util.hpp"

#include <twinfleet/twin/aws_shadow.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <chrono>
#include <random>
#include <string>
#include <utility>
#include <vector>

using namespace twinfleet::twin;
using twinfleet::test::at;

namespace {

using rng_t = std::mt19937;
constexpr rng_t::result_type seed = 20240229;

int pick(rng_t& rng, int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); }
bool chance(rng_t& rng, double p) { return std::bernoulli_distribution(p)(rng); }

// ---------------------------------------------------------------------------------------------
// Random documents. Few keys and few values, so that patches hit existing keys and desired
// and reported often agree.

const char* const keys[] = {"a", "b", "c", "d"};

json::value random_scalar(rng_t& rng) {
  switch (pick(rng, 0, 7)) {
    case 0: return 0;
    case 1: return 1;
    case 2: return 1.0;  // equal to 1 as a number
    case 3: return 2.5;
    case 4: return "x";
    case 5: return "y";
    case 6: return true;
    default: return false;
  }
}

json::value random_value(rng_t& rng, int levels);

// An array never holds null (the shadow refuses that); `levels` is how many container levels
// the value may still use, itself included.
json::array random_array(rng_t& rng, int levels) {
  json::array out;
  const int n = pick(rng, 0, 3);
  for (int i = 0; i < n; ++i) out.push_back(levels > 1 && chance(rng, 0.3) ? random_value(rng, levels - 1) : random_scalar(rng));
  return out;
}

json::object random_object(rng_t& rng, int levels, int max_members = 3) {
  json::object out;
  const int n = pick(rng, 0, max_members);
  for (int i = 0; i < n; ++i) out[keys[pick(rng, 0, 3)]] = random_value(rng, levels - 1);
  return out;
}

json::value random_value(rng_t& rng, int levels) {
  if (levels <= 0) return random_scalar(rng);
  const int roll = pick(rng, 0, 9);
  if (roll < 5) return random_scalar(rng);
  if (roll < 7) return random_array(rng, levels);
  return random_object(rng, levels);
}

// A section patch: like a document, with nulls (deletions) and nested patches mixed in.
json::object random_patch(rng_t& rng, int levels) {
  json::object out;
  const int n = pick(rng, 0, 3);
  for (int i = 0; i < n; ++i) {
    const auto key = keys[pick(rng, 0, 3)];
    const int roll = pick(rng, 0, 9);
    if (roll < 2) {
      out[key] = nullptr;
    } else if (roll < 4 && levels > 1) {
      out[key] = random_patch(rng, levels - 1);
    } else {
      out[key] = random_value(rng, levels - 1);
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The expected results, computed independently.

// RFC 7396 section 2, MergePatch(Target, Patch), transcribed.
json::value rfc7396_merge(const json::value& target, const json::value& patch) {
  if (!patch.is_object()) return patch;
  json::object result = target.is_object() ? target.get_object() : json::object();
  for (const auto& member : patch.get_object()) {
    if (member.value().is_null()) {
      result.erase(member.key());
    } else {
      const json::value* current = result.if_contains(member.key());
      result[member.key()] = rfc7396_merge(current != nullptr ? *current : json::value(), member.value());
    }
  }
  return result;
}

using path_t = std::vector<std::string>;

// Leaves of a document: every non-object value, and every empty object, with its path.
void flatten(const json::object& doc, path_t& prefix, std::vector<std::pair<path_t, json::value>>& out) {
  for (const auto& member : doc) {
    prefix.emplace_back(member.key());
    const json::value& v = member.value();
    if (v.is_object() && !v.get_object().empty()) {
      flatten(v.get_object(), prefix, out);
    } else {
      out.emplace_back(prefix, v);
    }
    prefix.pop_back();
  }
}

std::vector<std::pair<path_t, json::value>> leaves(const json::object& doc) {
  std::vector<std::pair<path_t, json::value>> out;
  path_t prefix;
  flatten(doc, prefix, out);
  return out;
}

const json::value* find_path(const json::object& doc, const path_t& path) {
  const json::object* node = &doc;
  const json::value* found = nullptr;
  for (const auto& key : path) {
    if (node == nullptr) return nullptr;
    found = node->if_contains(key);
    if (found == nullptr) return nullptr;
    node = found->is_object() ? &found->get_object() : nullptr;
  }
  return found;
}

// A desired leaf is met when reported has an equal value at the same path (numbers by value);
// an empty desired object is met by any object there.
bool leaf_satisfied(const path_t& path, const json::value& desired_leaf, const json::object& reported) {
  const json::value* r = find_path(reported, path);
  if (r == nullptr) return false;
  if (desired_leaf.is_object()) return r->is_object();
  return json_equal(desired_leaf, *r);
}

std::string describe(const std::vector<std::pair<path_t, json::value>>& ls) {
  std::vector<std::string> lines;
  for (const auto& [path, v] : ls) {
    std::string line;
    for (const auto& k : path) line += "/" + k;
    lines.push_back(line + "=" + json::serialize(v));
  }
  std::sort(lines.begin(), lines.end());
  std::string out;
  for (const auto& l : lines) out += l + " ";
  return out;
}

// Metadata mirrors the state: same keys at every level, one entry per array element, and a
// {"timestamp": <integer>} leaf for everything else.
bool metadata_mirrors(const json::value& state, const json::value& meta) {
  if (state.is_object()) {
    if (!meta.is_object() || meta.get_object().size() != state.get_object().size()) return false;
    for (const auto& member : state.get_object()) {
      const json::value* m = meta.get_object().if_contains(member.key());
      if (m == nullptr || !metadata_mirrors(member.value(), *m)) return false;
    }
    return true;
  }
  if (state.is_array()) {
    if (!meta.is_array() || meta.get_array().size() != state.get_array().size()) return false;
    for (std::size_t i = 0; i < state.get_array().size(); ++i) {
      if (!metadata_mirrors(state.get_array()[i], meta.get_array()[i])) return false;
    }
    return true;
  }
  return meta.is_object() && meta.get_object().size() == 1 && meta.get_object().contains("timestamp") &&
         meta.get_object().at("timestamp").is_int64();
}

// Every timestamp leaf under `meta` equals `ts`.
bool all_stamped(const json::value& meta, std::int64_t ts) {
  if (meta.is_array()) {
    return std::all_of(meta.get_array().begin(), meta.get_array().end(), [&](const auto& e) { return all_stamped(e, ts); });
  }
  if (!meta.is_object()) return false;
  const auto& obj = meta.get_object();
  if (const auto* t = obj.if_contains("timestamp"); t != nullptr && t->is_int64() && obj.size() == 1) {
    return t->get_int64() == ts;
  }
  return std::all_of(obj.begin(), obj.end(), [&](const auto& m) { return all_stamped(m.value(), ts); });
}

// After merging `patch` (nullptr: not touched here) into a node whose metadata was `old_meta`
// (nullptr: none), whatever the patch wrote carries `ts` and everything else its old metadata.
bool timestamps_follow_writes(const json::value& state, const json::value& meta, const json::value* patch,
                              const json::value* old_meta, std::int64_t ts) {
  if (patch != nullptr && !patch->is_object()) return all_stamped(meta, ts);
  if (state.is_object()) {
    const json::object* old_obj = old_meta != nullptr && old_meta->is_object() ? &old_meta->get_object() : nullptr;
    for (const auto& member : state.get_object()) {
      const json::value* sub_patch = patch != nullptr ? patch->get_object().if_contains(member.key()) : nullptr;
      const json::value* sub_old = old_obj != nullptr ? old_obj->if_contains(member.key()) : nullptr;
      const json::value* m = meta.get_object().if_contains(member.key());
      if (m == nullptr || !timestamps_follow_writes(member.value(), *m, sub_patch, sub_old, ts)) return false;
    }
    return true;
  }
  // Not written by this patch: the metadata is the one it had.
  return old_meta != nullptr && *old_meta == meta;
}

// ---------------------------------------------------------------------------------------------

std::string payload_of(const json::object& request) { return json::serialize(request); }

json::object state_request(const std::optional<json::value>& desired, const std::optional<json::value>& reported) {
  json::object state;
  if (desired) state["desired"] = *desired;
  if (reported) state["reported"] = *reported;
  json::object request;
  request["state"] = std::move(state);
  return request;
}

struct shadow_state {
  bool exists;
  std::int64_t version;
  json::object desired, reported, desired_meta, reported_meta;
  friend bool operator==(const shadow_state&, const shadow_state&) = default;
};

shadow_state capture(const aws_shadow& s) {
  return {s.exists(), s.version(), s.desired(), s.reported(), s.desired_metadata(), s.reported_metadata()};
}

std::string show(const shadow_state& s) {
  return "exists=" + std::to_string(s.exists) + " version=" + std::to_string(s.version) +
         " desired=" + json::serialize(s.desired) + " reported=" + json::serialize(s.reported) +
         " desired_meta=" + json::serialize(s.desired_meta) + " reported_meta=" + json::serialize(s.reported_meta);
}

}  // namespace

TEST_CASE("property: the stored state is the RFC 7396 merge of every accepted patch", "[twin][aws][property]") {
  rng_t rng(seed);
  aws_shadow_limits roomy;
  roomy.max_state_bytes = 1 << 20;  // size is not under test here
  int stamped_writes = 0;
  for (int iteration = 0; iteration < 300; ++iteration) {
    aws_shadow shadow("prop-thing", "merge", roomy);
    json::value want_desired = json::object();
    json::value want_reported = json::object();
    const int steps = pick(rng, 1, 8);
    for (int step = 0; step < steps; ++step) {
      const double offset = iteration * 100 + step;
      const std::int64_t ts = epoch_seconds(at(offset));
      INFO("seed " << seed << " iteration " << iteration << " step " << step);

      std::optional<json::value> desired_patch;
      std::optional<json::value> reported_patch;
      bool state_null = false;
      const int roll = pick(rng, 0, 19);
      if (roll == 0) {
        state_null = true;
      } else {
        if (roll % 3 != 2) desired_patch = roll == 1 ? json::value() : json::value(random_patch(rng, 5));
        if (roll % 3 != 1) reported_patch = roll == 2 ? json::value() : json::value(random_patch(rng, 5));
      }
      json::object request = state_request(desired_patch, reported_patch);
      if (state_null) request["state"] = nullptr;
      const std::string payload = payload_of(request);
      INFO("request " << payload);

      const json::object old_desired_meta = shadow.desired_metadata();
      const json::object old_reported_meta = shadow.reported_metadata();
      auto out = shadow.update(payload, at(offset));
      REQUIRE(out.has_value());

      // Expected state, from the RFC; a section null or state null empties the section.
      if (state_null) {
        want_desired = json::object();
        want_reported = json::object();
      }
      if (desired_patch) {
        want_desired = desired_patch->is_null() ? json::object() : rfc7396_merge(want_desired, *desired_patch);
      }
      if (reported_patch) {
        want_reported = reported_patch->is_null() ? json::object() : rfc7396_merge(want_reported, *reported_patch);
      }
      INFO("expected desired " << json::serialize(want_desired) << " reported " << json::serialize(want_reported));
      INFO("actual desired " << json::serialize(shadow.desired()) << " reported " << json::serialize(shadow.reported()));
      REQUIRE(json::value(shadow.desired()) == want_desired);
      REQUIRE(json::value(shadow.reported()) == want_reported);

      // Reading back: GET shows the same sections (left out when empty), and so does
      // /update/documents' current side.
      auto got = shadow.get(std::nullopt, at(offset));
      REQUIRE(got.has_value());
      const auto& got_state = got->at("state").get_object();
      CHECK(got_state.contains("desired") == !want_desired.get_object().empty());
      CHECK(got_state.contains("reported") == !want_reported.get_object().empty());
      if (got_state.contains("desired")) CHECK(got_state.at("desired") == want_desired);
      if (got_state.contains("reported")) CHECK(got_state.at("reported") == want_reported);
      const auto& current = out->documents.at("current").at("state").get_object();
      CHECK(current.contains("desired") == !want_desired.get_object().empty());
      if (current.contains("desired")) CHECK(current.at("desired") == want_desired);
      if (current.contains("reported")) CHECK(current.at("reported") == want_reported);

      // Metadata keeps the state's shape; what this patch wrote carries this update's time,
      // the rest keeps its old timestamps.
      CHECK(metadata_mirrors(shadow.desired(), shadow.desired_metadata()));
      CHECK(metadata_mirrors(shadow.reported(), shadow.reported_metadata()));
      const json::value empty_meta = json::object();
      const json::value old_dm = old_desired_meta;
      const json::value old_rm = old_reported_meta;
      const bool desired_cleared = state_null || (desired_patch && desired_patch->is_null());
      const bool reported_cleared = state_null || (reported_patch && reported_patch->is_null());
      CHECK(timestamps_follow_writes(shadow.desired(), shadow.desired_metadata(),
                                     desired_patch && !desired_cleared ? &*desired_patch : nullptr,
                                     desired_cleared ? &empty_meta : &old_dm, ts));
      CHECK(timestamps_follow_writes(shadow.reported(), shadow.reported_metadata(),
                                     reported_patch && !reported_cleared ? &*reported_patch : nullptr,
                                     reported_cleared ? &empty_meta : &old_rm, ts));

      // /update/accepted echoes the request's sections exactly, every leaf stamped now.
      const auto& accepted_state = out->accepted.at("state").get_object();
      const auto& accepted_meta = out->accepted.at("metadata").get_object();
      if (!state_null) CHECK(accepted_state == request.at("state").get_object());
      for (const auto* section : {"desired", "reported"}) {
        if (accepted_state.contains(section)) {
          REQUIRE(accepted_meta.contains(section));
          CHECK(all_stamped(accepted_meta.at(section), ts));
          if (!accepted_state.at(section).is_null()) {
            CHECK(metadata_mirrors(accepted_state.at(section), accepted_meta.at(section)));
          }
          ++stamped_writes;
        }
      }
      CHECK(accepted_meta.size() == accepted_state.size());
    }
  }
  CHECK(stamped_writes > 500);  // the loop did exercise the property
}

TEST_CASE("property: the delta is empty exactly when every desired leaf is reported equal", "[twin][aws][property]") {
  rng_t rng(seed + 1);
  int in_sync = 0;
  int out_of_sync = 0;
  for (int iteration = 0; iteration < 500; ++iteration) {
    INFO("seed " << seed + 1 << " iteration " << iteration);
    const json::object desired = random_object(rng, 4, 4);

    // Reported: desired with a few random changes, some of which keep it equal (1 → 1.0).
    json::value reported_v = desired;
    const int mutations = chance(rng, 0.4) ? 0 : pick(rng, 1, 3);
    for (int m = 0; m < mutations; ++m) {
      // Walk to a random object node.
      json::object* node = &reported_v.get_object();
      while (!node->empty() && chance(rng, 0.5)) {
        auto it = node->begin() + pick(rng, 0, static_cast<int>(node->size()) - 1);
        if (!it->value().is_object()) break;
        node = &it->value().get_object();
      }
      const auto key = keys[pick(rng, 0, 3)];
      switch (pick(rng, 0, 4)) {
        case 0: node->erase(key); break;
        case 1: (*node)[key] = random_value(rng, 2); break;
        case 2: (*node)["extra"] = random_value(rng, 2); break;  // only in reported: never a delta
        case 3:
          if (auto* v = node->if_contains(key); v != nullptr && v->is_int64()) *v = static_cast<double>(v->get_int64());
          break;
        default: (*node)[key] = json::object(); break;
      }
    }
    const json::object& reported = reported_v.get_object();
    INFO("desired " << json::serialize(desired) << " reported " << json::serialize(reported));

    std::vector<std::pair<path_t, json::value>> unmet;
    for (const auto& [path, value] : leaves(desired)) {
      if (!leaf_satisfied(path, value, reported)) unmet.emplace_back(path, value);
    }
    const json::object delta = aws_shadow_delta(desired, reported);
    INFO("delta " << json::serialize(delta));

    // Empty exactly when every leaf is met, and otherwise made of exactly the unmet leaves.
    REQUIRE(delta.empty() == unmet.empty());
    CHECK(describe(leaves(delta)) == describe(unmet));
    (unmet.empty() ? in_sync : out_of_sync)++;

    // The shadow publishes a delta document exactly then, and GET shows the same delta.
    aws_shadow shadow("prop-thing");
    auto out = shadow.update(payload_of(state_request(json::value(desired), reported_v)), at(0));
    REQUIRE(out.has_value());
    REQUIRE(out->delta.has_value() == !unmet.empty());
    if (out->delta) CHECK(out->delta->at("state") == delta);
    const auto got = shadow.get(std::nullopt, at(0));
    REQUIRE(got.has_value());
    CHECK(got->at("state").get_object().contains("delta") == !unmet.empty());
    CHECK(shadow.delta() == delta);
  }
  // Both outcomes were exercised often enough for the equivalence to mean something.
  CHECK(in_sync > 100);
  CHECK(out_of_sync > 100);
}

namespace {

// A request the shadow must refuse, with the answer it must give.
struct bad_request_case {
  std::string payload;
  int code;
  std::string message;
};

// Builds a rejected update of a random kind against `shadow` (its current version matters for
// the 409 case). The limits are aws_shadow_limits{} except max_state_bytes == state_limit.
bad_request_case random_bad_update(rng_t& rng, const aws_shadow& shadow, std::size_t state_limit) {
  json::object request = state_request(json::value(random_patch(rng, 3)), json::value(random_patch(rng, 3)));
  if (chance(rng, 0.5)) request["clientToken"] = "tok-" + std::to_string(pick(rng, 0, 999));
  switch (pick(rng, 0, 12)) {
    case 0: {  // cut short
      const std::string full = payload_of(request);
      return {full.substr(0, static_cast<std::size_t>(pick(rng, 0, static_cast<int>(full.size()) - 1))), 400,
              "Invalid JSON"};
    }
    case 1: {  // ill-formed UTF-8 inside a key
      static const char* const bad_bytes[] = {"\xff", "\x80", "\xc0\x80", "\xed\xa0\x80", "\xe2\x82", "\xf4\x90\x80\x80"};
      request["state"].get_object()["reported"].get_object()["MARK"] = 1;
      std::string text = payload_of(request);
      text.replace(text.find("MARK"), 4, std::string("k") + bad_bytes[pick(rng, 0, 5)]);
      return {text, 415, "Unsupported documented encoding; supported encoding is UTF-8"};
    }
    case 2: {  // stale or future version
      std::int64_t v = shadow.version() + pick(rng, 1, 5) * (chance(rng, 0.5) ? 1 : -1);
      request["version"] = v;
      return {payload_of(request), 409, "Version conflict"};
    }
    case 3: {  // a section that is neither an object nor null
      const bool desired = chance(rng, 0.5);
      request["state"].get_object()[desired ? "desired" : "reported"] =
          chance(rng, 0.5) ? random_scalar(rng) : json::value(random_array(rng, 2));
      // Only this section is bad, so its own message is the answer.
      return {payload_of(request), 400, desired ? "Desired node must be an object" : "Reported node must be an object"};
    }
    case 4: {
      static const char* const nodes[] = {"delta", "metadata", "Desired", "version", ""};
      request["state"].get_object()[nodes[pick(rng, 0, 4)]] = json::object();
      return {payload_of(request), 400, "State contains an invalid node"};
    }
    case 5: {  // null somewhere inside an array
      json::array arr = random_array(rng, 2);
      arr.insert(arr.begin() + pick(rng, 0, static_cast<int>(arr.size())), nullptr);
      json::value wrapped = std::move(arr);
      if (chance(rng, 0.5)) wrapped = json::array{json::object{{"k", std::move(wrapped)}}};
      request["state"].get_object()["desired"].get_object()["arr"] = std::move(wrapped);
      return {payload_of(request), 400, "State contains an invalid node"};
    }
    case 6: {  // a seventh level counting the section
      json::value deep = json::object{{"leaf", 1}};
      for (int i = 0; i < 5; ++i) deep = chance(rng, 0.3) ? json::value(json::array{deep}) : json::value(json::object{{"n", deep}});
      request["state"].get_object()["reported"].get_object()["deep"] = std::move(deep);
      return {payload_of(request), 400, "JSON contains too many levels of nesting; maximum is 6"};
    }
    case 7: {  // over the state limit however the rest merges
      request["state"].get_object()[chance(rng, 0.5) ? "desired" : "reported"].get_object()["big"] =
          std::string(state_limit, 'z');
      return {payload_of(request), 413, "The payload exceeds the maximum size allowed"};
    }
    case 8: {
      static const char* const non_strings[] = {"0", "1.5", "true", "null", "[\"t\"]", "{}"};
      request["clientToken"] = chance(rng, 0.5)
                                   ? json::value(std::string(static_cast<std::size_t>(pick(rng, 65, 200)), 't'))
                                   : json::parse(non_strings[pick(rng, 0, 5)]);
      return {payload_of(request), 400, "Invalid clientToken"};
    }
    case 9: {
      static const char* const versions[] = {"\"1\"", "1.5", "null", "[]", "{}", "true", "1e3", "18446744073709551615"};
      std::string text = payload_of(request);
      text.insert(1, std::string("\"version\":") + versions[pick(rng, 0, 7)] + ",");
      return {text, 400, "Invalid version"};
    }
    case 10: {
      request.erase("state");
      return {payload_of(request), 400, "Missing required node: state"};
    }
    case 11: {
      request["state"] = chance(rng, 0.5) ? random_scalar(rng) : json::value(random_array(rng, 2));
      return {payload_of(request), 400, "State node must be an object"};
    }
    default: {
      static const char* const roots[] = {"[]", "1", "\"state\"", "null", "{\"state\":{}}}", "{,}"};
      return {roots[pick(rng, 0, 5)], 400, "Invalid JSON"};
    }
  }
}

}  // namespace

TEST_CASE("property: a rejected operation leaves state, metadata and version untouched", "[twin][aws][property]") {
  rng_t rng(seed + 2);
  aws_shadow_limits limits;
  limits.max_state_bytes = 600;
  int rejected = 0;
  for (int iteration = 0; iteration < 400; ++iteration) {
    INFO("seed " << seed + 2 << " iteration " << iteration);
    aws_shadow shadow("prop-thing", "", limits);
    // A random history: updates (some too big for this limit: they must change nothing
    // either), sometimes a delete.
    const int history = pick(rng, 0, 5);
    for (int i = 0; i < history; ++i) {
      const auto before = capture(shadow);
      auto out = shadow.update(payload_of(state_request(json::value(random_patch(rng, 4)), json::value(random_patch(rng, 4)))),
                               at(i));
      if (!out) {
        CHECK(out.error().code == 413);
        CHECK(capture(shadow) == before);
      }
    }
    if (shadow.exists() && chance(rng, 0.15)) REQUIRE(shadow.remove(std::nullopt, std::nullopt, at(10)).has_value());

    const auto before = capture(shadow);
    INFO("before: " << show(before));
    if (chance(rng, 0.15)) {
      // get and delete: 404 without a shadow, 409 for a delete with another version.
      const bool use_delete = chance(rng, 0.6);
      if (!shadow.exists()) {
        const auto res = use_delete ? shadow.remove(std::nullopt, std::nullopt, at(20))
                                    : shadow.get(std::nullopt, at(20));
        REQUIRE(res.has_error());
        CHECK(res.error() == error{404, "No shadow exists with name: 'prop-thing'"});
      } else {
        const auto res = shadow.remove("tk", shadow.version() + pick(rng, 1, 3), at(20));
        REQUIRE(res.has_error());
        CHECK(res.error() == error{409, "Version conflict"});
      }
    } else {
      const auto bad = random_bad_update(rng, shadow, limits.max_state_bytes);
      INFO("payload: " << bad.payload);
      const auto res = shadow.update(bad.payload, at(20));
      REQUIRE(res.has_error());
      CHECK(res.error().code == bad.code);
      CHECK(res.error().message == bad.message);
    }
    const auto after = capture(shadow);
    INFO("after: " << show(after));
    CHECK(after == before);
    ++rejected;
  }
  CHECK(rejected == 400);
}

TEST_CASE("property: versions never go down and rise by one per accepted update", "[twin][aws][property]") {
  rng_t rng(seed + 3);
  aws_shadow_limits limits;
  limits.max_state_bytes = 600;  // some updates are refused for size
  int accepted = 0;
  int refused = 0;
  int deleted = 0;
  for (int iteration = 0; iteration < 200; ++iteration) {
    aws_shadow shadow("prop-thing", "versions", limits);
    std::int64_t last_seen = 0;
    for (int step = 0; step < 20; ++step) {
      INFO("seed " << seed + 3 << " iteration " << iteration << " step " << step);
      const std::int64_t before = shadow.version();
      const bool existed = shadow.exists();
      const auto now = at(step);
      const int roll = pick(rng, 0, 9);
      if (roll < 6) {
        json::object request = state_request(json::value(random_patch(rng, 4)), json::value(random_patch(rng, 4)));
        const int v = pick(rng, 0, 3);
        if (v == 1) request["version"] = before;
        if (v == 2) request["version"] = before + pick(rng, -3, 3);
        auto out = shadow.update(payload_of(request), now);
        if (out) {
          ++accepted;
          CHECK(shadow.version() == before + 1);
          CHECK(out->version == before + 1);
          CHECK(out->accepted.at("version") == before + 1);
          CHECK(out->documents.at("current").at("version") == before + 1);
          if (out->delta) CHECK(out->delta->at("version") == before + 1);
          CHECK(out->documents.at("previous").is_null() == !existed);
          if (existed) CHECK(out->documents.at("previous").at("version") == before);
          CHECK(shadow.exists());
        } else {
          ++refused;
          CHECK((out.error().code == 409 || out.error().code == 413));
          CHECK(shadow.version() == before);
        }
      } else if (roll < 8) {
        auto got = shadow.get(std::nullopt, now);
        CHECK(got.has_value() == existed);
        if (got) CHECK(got->at("version") == before);
        CHECK(shadow.version() == before);
      } else {
        const int v = pick(rng, 0, 2);
        std::optional<std::int64_t> version;
        if (v == 1) version = before;
        if (v == 2) version = before + pick(rng, 1, 2);
        auto res = shadow.remove(std::nullopt, version, now);
        CHECK(res.has_value() == (existed && v != 2));
        if (res) {
          ++deleted;
          CHECK(res->at("version") == before);
          CHECK_FALSE(shadow.exists());
        }
        CHECK(shadow.version() == before);
      }
      CHECK(shadow.version() >= last_seen);
      last_seen = shadow.version();
    }
  }
  CHECK(accepted > 500);
  CHECK(refused > 100);
  CHECK(deleted > 50);
}
