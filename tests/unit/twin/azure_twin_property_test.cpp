// Property tests of the Azure twin over random documents and patches (fixed seeds, so a
// failure reproduces). Each property is checked against a model written independently of the
// implementation: a flat map from key paths to values.
#include <twinfleet/twin/azure_twin.hpp>

#include "json_test_util.hpp"

#include <catch2/catch.hpp>

#include <map>
#include <random>

using namespace twinfleet::twin;
using twinfleet::test::at;

namespace {

// A small key alphabet so that random patches collide with what is there.
const std::vector<std::string> keys = {"a", "b", "c", "d", "e"};

struct generator {
  std::mt19937 rng;

  int pick(int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng); }

  json::value scalar() {
    switch (pick(5)) {
      case 0: return std::int64_t{pick(2000) - 1000};
      case 1: return pick(2) == 0;
      case 2: return json::string(static_cast<std::size_t>(pick(6)), static_cast<char>('p' + pick(5)));
      case 3: return pick(1000) / 8.0;
      default: {
        json::array arr;
        for (int i = pick(3); i > 0; --i) arr.push_back(std::int64_t{pick(10)});
        return arr;
      }
    }
  }

  // A document (no nulls) or a patch (nulls allowed) of at most `depth` object levels.
  json::object object(int depth, bool with_nulls) {
    json::object o;
    for (int i = pick(4); i >= 0; --i) {
      const auto& key = keys[static_cast<std::size_t>(pick(static_cast<int>(keys.size())))];
      const int roll = pick(10);
      if (with_nulls && roll == 0) {
        o[key] = nullptr;
      } else if (depth > 1 && roll < 4) {
        o[key] = object(depth - 1, with_nulls);
      } else {
        o[key] = scalar();
      }
    }
    return o;
  }
};

// --- the model: a document as a map from key path to value, objects as explicit markers ---

using path = std::vector<std::string>;
using flat = std::map<path, json::value>;  // object nodes map to an empty object marker

void flatten(const json::object& o, path& prefix, flat& out) {
  for (const auto& member : o) {
    prefix.emplace_back(member.key());
    if (member.value().is_object()) {
      out[prefix] = json::object{};
      flatten(member.value().get_object(), prefix, out);
    } else {
      out[prefix] = member.value();
    }
    prefix.pop_back();
  }
}

bool has_prefix(const path& p, const path& prefix) {
  return p.size() >= prefix.size() && std::equal(prefix.begin(), prefix.end(), p.begin());
}

void erase_subtree(flat& doc, const path& p) {
  for (auto it = doc.lower_bound(p); it != doc.end() && has_prefix(it->first, p);) it = doc.erase(it);
}

// Applies a merge patch to the model: the documented rules, one path at a time.
void model_patch(flat& doc, const json::object& patch, path& prefix) {
  for (const auto& member : patch) {
    prefix.emplace_back(member.key());
    const auto& v = member.value();
    if (v.is_null()) {
      erase_subtree(doc, prefix);
    } else if (v.is_object()) {
      auto it = doc.find(prefix);
      if (it == doc.end() || !it->second.is_object()) {
        erase_subtree(doc, prefix);
        doc[prefix] = json::object{};
      }
      model_patch(doc, v.get_object(), prefix);
    } else {
      erase_subtree(doc, prefix);
      doc[prefix] = v;
    }
    prefix.pop_back();
  }
}

flat flat_of(const json::object& o) {
  flat out;
  path prefix;
  flatten(o, prefix, out);
  return out;
}

json::value body_with_desired(const json::object& desired) {
  return json::object{{"properties", json::object{{"desired", desired}}}};
}

// Every key of the data has a metadata node and vice versa, and every object node is stamped.
bool metadata_mirrors(const json::object& data, const json::object& meta, bool desired) {
  if (!meta.contains("$lastUpdated")) return false;
  if (desired && !meta.contains("$lastUpdatedVersion")) return false;
  std::size_t meta_keys = 0;
  for (const auto& member : meta) {
    if (member.key().starts_with("$")) continue;
    ++meta_keys;
    if (!data.contains(member.key())) return false;
  }
  if (meta_keys != data.size()) return false;
  for (const auto& member : data) {
    const auto& node = meta.at(member.key());
    if (!node.is_object()) return false;
    if (member.value().is_object()) {
      if (!metadata_mirrors(member.value().get_object(), node.get_object(), desired)) return false;
    } else if (!node.get_object().contains("$lastUpdated")) {
      return false;
    }
  }
  return true;
}

}  // namespace

TEST_CASE("property: merge-patching desired then reading back equals the model's merge", "[twin][azure][property]") {
  generator gen{std::mt19937{20240115}};
  for (int trial = 0; trial < 300; ++trial) {
    azure_twin twin("devA", at(0));
    flat model;
    for (int step = 0; step < 8; ++step) {
      const auto patch = gen.object(4, true);
      INFO("trial " << trial << " step " << step << " patch " << json::serialize(patch));
      REQUIRE(twin.service_patch(body_with_desired(patch), if_match{}, at(step + 1)));
      path prefix;
      model_patch(model, patch, prefix);
      REQUIRE(flat_of(twin.desired()) == model);
      REQUIRE(metadata_mirrors(twin.desired(), twin.desired_metadata(), true));
    }
  }
}

TEST_CASE("property: reported patches merge like the model and the device view shows them",
          "[twin][azure][property]") {
  generator gen{std::mt19937{7}};
  for (int trial = 0; trial < 300; ++trial) {
    azure_twin twin("devA", at(0));
    flat model;
    for (int step = 0; step < 8; ++step) {
      const auto patch = gen.object(4, true);
      INFO("trial " << trial << " patch " << json::serialize(patch));
      auto v = twin.patch_reported(patch, std::nullopt, at(step + 1));
      REQUIRE(v);
      REQUIRE(*v == step + 2);
      path prefix;
      model_patch(model, patch, prefix);
      auto view = twin.device_view().at("reported").as_object();
      view.erase("$version");
      REQUIRE(flat_of(view) == model);
      REQUIRE(metadata_mirrors(twin.reported(), twin.reported_metadata(), false));
    }
  }
}

TEST_CASE("property: a PUT's notification, merged into the old desired, gives the new desired",
          "[twin][azure][property]") {
  generator gen{std::mt19937{99}};
  for (int trial = 0; trial < 300; ++trial) {
    azure_twin twin("devA", at(0));
    REQUIRE(twin.service_patch(body_with_desired(gen.object(4, false)), if_match{}, at(1)));
    json::object replica = twin.desired();
    const auto replacement = gen.object(4, false);
    auto change = twin.service_replace(body_with_desired(replacement), if_match{}, at(2));
    REQUIRE(change);
    REQUIRE(change->notification);
    json::object patch = *change->notification;
    REQUIRE(patch.at("$version") == twin.desired_version());
    patch.erase("$version");
    merge_patch(replica, patch);
    INFO("replacement " << json::serialize(replacement));
    REQUIRE(json::value(replica) == json::value(replacement));
    REQUIRE(json::value(twin.desired()) == json::value(replacement));
  }
}

TEST_CASE("property: versions never go down and the etag changes exactly when the version does",
          "[twin][azure][property]") {
  generator gen{std::mt19937{4242}};
  azure_twin twin("devA", at(0));
  std::int64_t version = twin.version();
  std::int64_t desired = twin.desired_version();
  std::int64_t reported = twin.reported_version();
  std::string etag = twin.etag();
  for (int step = 0; step < 2000; ++step) {
    const auto now = at(step + 1);
    switch (gen.pick(5)) {
      case 0: (void)twin.service_patch(body_with_desired(gen.object(3, true)), if_match{}, now); break;
      case 1: (void)twin.service_replace(body_with_desired(gen.object(3, false)), if_match{}, now); break;
      case 2: (void)twin.patch_reported(gen.object(3, true), std::nullopt, now); break;
      case 3: (void)twin.patch_reported(gen.object(3, true), reported - gen.pick(2), now); break;  // sometimes stale
      default: (void)twin.service_patch(json::object{{"tags", gen.object(3, true)}},
                                        if_match::parse("\"" + (gen.pick(2) ? twin.etag() : std::string("AAAA")) + "\""), now);
    }
    REQUIRE(twin.version() >= version);
    REQUIRE(twin.desired_version() >= desired);
    REQUIRE(twin.reported_version() >= reported);
    REQUIRE((twin.etag() != etag) == (twin.version() != version));
    version = twin.version();
    desired = twin.desired_version();
    reported = twin.reported_version();
    etag = twin.etag();
  }
  CHECK(version > 500);  // most operations were accepted, so the property saw real changes
}

TEST_CASE("property: a rejected operation leaves the twin untouched", "[twin][azure][property]") {
  generator gen{std::mt19937{31337}};
  // Ways to spoil an otherwise good patch, each one rule of A3.
  const std::vector<std::pair<std::string, json::value>> spoilers = {
      {"bad.key", 1},
      {"$bad", 1},
      {"long", json::string(4097, 'x')},
      {"int", std::int64_t{4503599627370496}},
      {"deep", json::parse(R"({"1":{"2":{"3":{"4":{"5":{"6":{"7":{"8":{"9":{"10":{"11":{}}}}}}}}}}}})")},
      {"big", [] {
         json::object o;
         for (int i = 0; i < 9; ++i) o["k" + std::to_string(i)] = json::string(4000, 'v');
         return json::value(o);
       }()},
  };
  for (int trial = 0; trial < 300; ++trial) {
    azure_twin twin("devA", at(0));
    REQUIRE(twin.service_patch(body_with_desired(gen.object(3, false)), if_match{}, at(1)));
    REQUIRE(twin.patch_reported(gen.object(3, false), std::nullopt, at(2)));
    const auto before = twin.to_json();

    auto patch = gen.object(3, true);
    const auto& spoil = spoilers[static_cast<std::size_t>(gen.pick(static_cast<int>(spoilers.size())))];
    // Bury the bad member somewhere inside the patch.
    json::object* target = &patch;
    while (gen.pick(2) == 0) {
      auto& slot = (*target)["n"];
      if (!slot.is_object()) slot = json::object{};
      target = &slot.get_object();
    }
    (*target)[spoil.first] = spoil.second;
    INFO("patch " << json::serialize(patch));

    if (gen.pick(2) == 0) {
      REQUIRE_FALSE(twin.patch_reported(patch, std::nullopt, at(3)));
    } else {
      REQUIRE_FALSE(twin.service_patch(json::object{{"tags", patch}, {"properties", json::object{{"desired", patch}}}},
                                       if_match{}, at(3)));
    }
    REQUIRE(twin.to_json() == before);
  }
}
