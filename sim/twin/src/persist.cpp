// Snapshots of twins and shadows for the hub's state file, and their validated restore.
//
// A restore trusts nothing in the file: every member is type-checked and every invariant that
// the operations keep (versions that fit together, $metadata of the document's exact shape,
// documents within the limits) is checked, so a restored object behaves exactly as one that
// lived through the operations, and a corrupt file is an error that names the bad member
// rather than a twin that later misbehaves. Snapshots copy the documents as they are, key order
// included, so documents served after a restore are byte-identical to those served before.
#include <twinfleet/twin/aws_shadow.hpp>
#include <twinfleet/twin/azure_twin.hpp>
#include <twinfleet/twin/names.hpp>

#include <algorithm>
#include <cmath>
#include <initializer_list>

namespace twinfleet::twin {

namespace {

// The largest integer a JavaScript or double-based reader keeps exactly: versions beyond it
// cannot come from a real run and would lose precision in every client.
constexpr std::int64_t max_version = std::int64_t{1} << 53;

// Reads the members of one snapshot object, each failure an error with the member's path.
struct reader {
  const json::object& object;
  std::string path;  // of `object`, "" at the root
  int code;

  [[nodiscard]] std::string where(std::string_view key) const { return join_path(path, key); }
  [[nodiscard]] error fail(std::string_view key, std::string_view what) const {
    return error{code, where(key) + ": " + std::string(what)};
  }

  [[nodiscard]] result<const json::value*> member(std::string_view key) const {
    const auto* v = object.if_contains(key);
    if (v == nullptr) return fail(key, "missing");
    return v;
  }

  [[nodiscard]] result<std::int64_t> integer(std::string_view key, std::int64_t min, std::int64_t max) const {
    auto v = member(key);
    if (!v) return v.error();
    if (!(*v)->is_int64()) return fail(key, "must be an integer");
    const auto n = (*v)->get_int64();
    if (n < min || n > max) {
      return fail(key, std::to_string(n) + " is outside " + std::to_string(min) + ".." + std::to_string(max));
    }
    return n;
  }

  [[nodiscard]] result<std::string> string(std::string_view key) const {
    auto v = member(key);
    if (!v) return v.error();
    if (!(*v)->is_string()) return fail(key, "must be a string");
    return std::string((*v)->get_string());
  }

  [[nodiscard]] result<bool> boolean(std::string_view key) const {
    auto v = member(key);
    if (!v) return v.error();
    if (!(*v)->is_bool()) return fail(key, "must be true or false");
    return (*v)->get_bool();
  }

  [[nodiscard]] result<const json::object*> obj(std::string_view key) const {
    auto v = member(key);
    if (!v) return v.error();
    if (!(*v)->is_object()) return fail(key, "must be a JSON object");
    return &(*v)->get_object();
  }

  [[nodiscard]] result<time_point> time(std::string_view key) const {
    auto s = string(key);
    if (!s) return s.error();
    auto t = parse_iso8601(*s);
    if (!t) return fail(key, "'" + *s + "' is not a UTC time of the form 2024-01-15T10:00:00.0000000Z");
    return *t;
  }

  // Members other than `known` are refused: they mean a file from another format version or
  // an edit that would be silently lost.
  [[nodiscard]] result<void> only(std::initializer_list<std::string_view> known) const {
    for (const auto& m : object) {
      if (std::find(known.begin(), known.end(), m.key()) == known.end()) return fail(m.key(), "unknown member");
    }
    return {};
  }
};

// A number Boost.JSON read as infinity would be written back as something that is not JSON.
result<void> finite_numbers(const json::value& v, const std::string& path, int code) {
  if (v.is_double() && !std::isfinite(v.get_double())) return error{code, path + ": the number is not finite"};
  if (v.is_object()) {
    for (const auto& m : v.get_object()) {
      if (auto r = finite_numbers(m.value(), join_path(path, m.key()), code); !r) return r;
    }
  }
  if (v.is_array()) {
    std::size_t i = 0;
    for (const auto& e : v.get_array()) {
      if (auto r = finite_numbers(e, path + "[" + std::to_string(i++) + "]", code); !r) return r;
    }
  }
  return {};
}

// A stored document never holds a null member: null in a patch deletes. (Inside arrays a null
// is data for Azure and refused by AWS, checked separately.)
result<void> no_null_members(const json::object& o, const std::string& path, int code) {
  for (const auto& m : o) {
    const auto child = join_path(path, m.key());
    if (m.value().is_null()) return error{code, child + ": a stored document holds no null member"};
    if (m.value().is_object()) {
      if (auto r = no_null_members(m.value().get_object(), child, code); !r) return r;
    }
  }
  return {};
}

// ---- Azure $metadata: every object node carries the stamp of its last write, and so does
// every leaf (arrays are leaves); desired stamps also carry $lastUpdatedVersion.

constexpr std::string_view last_updated = "$lastUpdated";
constexpr std::string_view last_updated_version = "$lastUpdatedVersion";

bool is_stamp_key(std::string_view k) { return k == last_updated || k == last_updated_version; }

result<void> check_stamp(const json::object& meta, const std::string& path, bool desired, std::int64_t desired_version) {
  const reader r{meta, path, azure_code::invalid_argument};
  if (auto t = r.time(last_updated); !t) return t.error();
  if (desired) {
    if (auto v = r.integer(last_updated_version, 1, desired_version); !v) return v.error();
  } else if (meta.contains(last_updated_version)) {
    return r.fail(last_updated_version, "reported properties carry no $lastUpdatedVersion");
  }
  return {};
}

result<void> check_azure_metadata(const json::object& data, const json::object& meta, const std::string& path,
                                  bool desired, std::int64_t desired_version) {
  if (auto r = check_stamp(meta, path, desired, desired_version); !r) return r;
  for (const auto& m : data) {
    const auto child = join_path(path, m.key());
    const auto* node = meta.if_contains(m.key());
    if (node == nullptr || !node->is_object()) {
      return error{azure_code::invalid_argument, child + ": missing or not an object (the property " +
                                                     std::string(m.key()) + " has no metadata)"};
    }
    if (m.value().is_object()) {
      if (auto r = check_azure_metadata(m.value().get_object(), node->get_object(), child, desired, desired_version); !r) {
        return r;
      }
      continue;
    }
    if (auto r = check_stamp(node->get_object(), child, desired, desired_version); !r) return r;
    for (const auto& s : node->get_object()) {
      if (!is_stamp_key(s.key())) {
        return error{azure_code::invalid_argument, join_path(child, s.key()) + ": a leaf's metadata holds only its stamp"};
      }
    }
  }
  for (const auto& m : meta) {
    if (!is_stamp_key(m.key()) && !data.contains(m.key())) {
      return error{azure_code::invalid_argument,
                   join_path(path, m.key()) + ": metadata for a property that does not exist"};
    }
  }
  return {};
}

// ---- AWS metadata: the state's shape, objects mirrored, arrays element by element, every
// other value a {"timestamp": seconds} leaf (B3.2).

result<void> check_aws_metadata(const json::value& state, const json::value& meta, const std::string& path) {
  const auto bad = [&](std::string_view what) { return error{aws_code::bad_request, path + ": " + std::string(what)}; };
  if (state.is_object()) {
    if (!meta.is_object()) return bad("must be an object, as the state is");
    const auto& s = state.get_object();
    const auto& m = meta.get_object();
    if (s.size() != m.size()) return bad("must have exactly the state's members");
    for (const auto& member : s) {
      const auto* node = m.if_contains(member.key());
      if (node == nullptr) return bad("no metadata for " + std::string(member.key()));
      if (auto r = check_aws_metadata(member.value(), *node, join_path(path, member.key())); !r) return r;
    }
    return {};
  }
  if (state.is_array()) {
    if (!meta.is_array() || meta.get_array().size() != state.get_array().size()) {
      return bad("must be an array of one entry per element");
    }
    for (std::size_t i = 0; i < state.get_array().size(); ++i) {
      auto r = check_aws_metadata(state.get_array()[i], meta.get_array()[i], path + "[" + std::to_string(i) + "]");
      if (!r) return r;
    }
    return {};
  }
  if (!meta.is_object() || meta.get_object().size() != 1 || !meta.get_object().contains("timestamp") ||
      !meta.get_object().at("timestamp").is_int64()) {
    return bad("must be {\"timestamp\": <integer>}");
  }
  return {};
}

// Mirrors the update rules' depth and null checks (aws_shadow.cpp), with a path in the message.
result<void> check_aws_value(const json::value& v, const std::string& path, std::size_t level, bool in_array,
                             const aws_shadow_limits& limits) {
  const auto bad = [&](std::string_view what) { return error{aws_code::bad_request, path + ": " + std::string(what)}; };
  if (v.is_null()) return bad(in_array ? "null inside an array is refused by the update rules"
                                       : "a stored document holds no null member");
  if (v.is_object() || v.is_array()) {
    if (level > limits.max_depth) return bad(aws_too_deep_message(limits.max_depth));
  }
  if (v.is_object()) {
    for (const auto& m : v.get_object()) {
      if (auto r = check_aws_value(m.value(), join_path(path, m.key()), level + 1, false, limits); !r) return r;
    }
  }
  if (v.is_array()) {
    std::size_t i = 0;
    for (const auto& e : v.get_array()) {
      if (auto r = check_aws_value(e, path + "[" + std::to_string(i++) + "]", level + 1, true, limits); !r) return r;
    }
  }
  return {};
}

int digits(std::string_view text, std::size_t at, std::size_t n, bool& ok) {
  int v = 0;
  if (at + n > text.size()) {
    ok = false;
    return 0;
  }
  for (std::size_t i = at; i < at + n; ++i) {
    if (text[i] < '0' || text[i] > '9') ok = false;
    v = v * 10 + (text[i] - '0');
  }
  return v;
}

}  // namespace

std::optional<time_point> parse_iso8601(std::string_view text) noexcept {
  using namespace std::chrono;
  // 2024-01-15T10:00:00.0000000Z
  bool ok = text.size() >= 20 && text[4] == '-' && text[7] == '-' && text[10] == 'T' && text[13] == ':' &&
            text[16] == ':' && text.back() == 'Z';
  if (!ok) return std::nullopt;
  const int y = digits(text, 0, 4, ok);
  const int mo = digits(text, 5, 2, ok);
  const int d = digits(text, 8, 2, ok);
  const int h = digits(text, 11, 2, ok);
  const int mi = digits(text, 14, 2, ok);
  const int s = digits(text, 17, 2, ok);
  // Years within int64 nanoseconds of the epoch with room to spare.
  if (!ok || y < 1900 || y > 2200 || h > 23 || mi > 59 || s > 59) return std::nullopt;
  const year_month_day date{year{y}, month{static_cast<unsigned>(mo)}, day{static_cast<unsigned>(d)}};
  if (!date.ok()) return std::nullopt;
  std::int64_t nanos = 0;
  const auto rest = text.substr(19, text.size() - 20);
  if (!rest.empty()) {
    if (rest.front() != '.' || rest.size() < 2 || rest.size() > 10) return std::nullopt;
    const auto frac = rest.substr(1);
    nanos = digits(frac, 0, frac.size(), ok);
    if (!ok) return std::nullopt;
    for (std::size_t i = frac.size(); i < 9; ++i) nanos *= 10;
  }
  const auto t = sys_days{date} + hours{h} + minutes{mi} + seconds{s} + nanoseconds{nanos};
  return time_point(duration_cast<time_point::duration>(t.time_since_epoch()));
}

// ---------------------------------------------------------------------------------------------
// Azure

json::object azure_twin::to_snapshot() const {
  json::object out;
  out["deviceId"] = device_id_;
  out["version"] = version_;
  out["desiredVersion"] = desired_version_;
  out["reportedVersion"] = reported_version_;
  out["tags"] = tags_;
  out["desired"] = desired_;
  out["reported"] = reported_;
  out["desiredMetadata"] = desired_meta_;
  out["reportedMetadata"] = reported_meta_;
  out["enabled"] = enabled_;
  out["connected"] = connected_;
  out["statusUpdateTime"] = format_iso8601(status_updated_);
  out["lastActivityTime"] = format_iso8601(last_activity_);
  out["modelId"] = model_id_;
  return out;
}

result<azure_twin> azure_twin::from_snapshot(const json::object& snapshot, azure_limits limits) {
  constexpr int code = azure_code::invalid_argument;
  const reader r{snapshot, "", code};
  if (auto k = r.only({"deviceId", "version", "desiredVersion", "reportedVersion", "tags", "desired", "reported",
                       "desiredMetadata", "reportedMetadata", "enabled", "connected", "statusUpdateTime",
                       "lastActivityTime", "modelId"});
      !k) {
    return k.error();
  }
  auto id = r.string("deviceId");
  if (!id) return id.error();
  if (!is_valid_device_id(*id)) return r.fail("deviceId", "'" + *id + "' is not a valid device id");
  auto version = r.integer("version", 1, max_version);
  auto desired_version = r.integer("desiredVersion", 1, max_version);
  auto reported_version = r.integer("reportedVersion", 1, max_version);
  if (!version) return version.error();
  if (!desired_version) return desired_version.error();
  if (!reported_version) return reported_version.error();
  // Every desired or reported write also counts in the twin version (tags-only writes too).
  if (*version < *desired_version + *reported_version - 1) {
    return r.fail("version", "is below desiredVersion + reportedVersion - 1, which no run of the twin can give");
  }
  auto tags = r.obj("tags");
  if (!tags) return tags.error();
  auto desired = r.obj("desired");
  if (!desired) return desired.error();
  auto reported = r.obj("reported");
  if (!reported) return reported.error();
  auto desired_meta = r.obj("desiredMetadata");
  if (!desired_meta) return desired_meta.error();
  auto reported_meta = r.obj("reportedMetadata");
  if (!reported_meta) return reported_meta.error();
  auto enabled = r.boolean("enabled");
  if (!enabled) return enabled.error();
  auto connected = r.boolean("connected");
  if (!connected) return connected.error();
  auto status_updated = r.time("statusUpdateTime");
  if (!status_updated) return status_updated.error();
  auto last_activity = r.time("lastActivityTime");
  if (!last_activity) return last_activity.error();
  auto model_id = r.string("modelId");
  if (!model_id) return model_id.error();

  azure_twin twin(std::move(*id), *status_updated, limits);
  const std::pair<const json::object*, azure_section> sections[] = {
      {*tags, azure_section::tags}, {*desired, azure_section::desired}, {*reported, azure_section::reported}};
  for (const auto& [section, which] : sections) {
    const char* name = which == azure_section::tags ? "tags" : which == azure_section::desired ? "desired" : "reported";
    if (auto c = no_null_members(*section, name, code); !c) return c.error();
    if (auto c = finite_numbers(*section, name, code); !c) return c.error();
    if (auto c = validate_azure_section(*section, name, limits); !c) return c.error();
    if (auto c = twin.check_size(*section, which); !c) return error{code, std::string(name) + ": " + c.error().message};
  }
  if (auto c = check_azure_metadata(**desired, **desired_meta, "desiredMetadata", true, *desired_version); !c) {
    return c.error();
  }
  if (auto c = check_azure_metadata(**reported, **reported_meta, "reportedMetadata", false, 0); !c) return c.error();

  twin.version_ = *version;
  twin.desired_version_ = *desired_version;
  twin.reported_version_ = *reported_version;
  twin.tags_ = **tags;
  twin.desired_ = **desired;
  twin.reported_ = **reported;
  twin.reported_size_bound_ = azure_twin::unknown_size;
  twin.desired_meta_ = **desired_meta;
  twin.reported_meta_ = **reported_meta;
  twin.enabled_ = *enabled;
  twin.connected_ = *connected;
  twin.status_updated_ = *status_updated;
  twin.last_activity_ = *last_activity;
  twin.model_id_ = std::move(*model_id);
  return twin;
}

// ---------------------------------------------------------------------------------------------
// AWS

json::object aws_shadow::to_snapshot() const {
  json::object out;
  out["thingName"] = thing_name_;
  out["shadowName"] = shadow_name_;
  out["exists"] = exists_;
  out["version"] = version_;
  out["desired"] = desired_;
  out["reported"] = reported_;
  out["desiredMetadata"] = desired_meta_;
  out["reportedMetadata"] = reported_meta_;
  return out;
}

result<aws_shadow> aws_shadow::from_snapshot(const json::object& snapshot, aws_shadow_limits limits) {
  constexpr int code = aws_code::bad_request;
  const reader r{snapshot, "", code};
  if (auto k = r.only({"thingName", "shadowName", "exists", "version", "desired", "reported", "desiredMetadata",
                       "reportedMetadata"});
      !k) {
    return k.error();
  }
  auto thing = r.string("thingName");
  if (!thing) return thing.error();
  if (!is_valid_thing_name(*thing)) return r.fail("thingName", "'" + *thing + "' is not a valid thing name");
  auto shadow = r.string("shadowName");
  if (!shadow) return shadow.error();
  if (!shadow->empty() && !is_valid_shadow_name(*shadow)) {
    return r.fail("shadowName", "'" + *shadow + "' is not a valid shadow name");
  }
  auto exists = r.boolean("exists");
  if (!exists) return exists.error();
  auto version = r.integer("version", *exists ? 1 : 0, max_version);
  if (!version) return version.error();
  auto desired = r.obj("desired");
  if (!desired) return desired.error();
  auto reported = r.obj("reported");
  if (!reported) return reported.error();
  auto desired_meta = r.obj("desiredMetadata");
  if (!desired_meta) return desired_meta.error();
  auto reported_meta = r.obj("reportedMetadata");
  if (!reported_meta) return reported_meta.error();
  if (!*exists) {
    // remove() keeps only the version (B5).
    for (const auto& [name, section] : {std::pair{"desired", *desired}, std::pair{"reported", *reported},
                                        std::pair{"desiredMetadata", *desired_meta},
                                        std::pair{"reportedMetadata", *reported_meta}}) {
      if (!section->empty()) return r.fail(name, "must be empty when the shadow does not exist");
    }
  }
  for (const auto& [name, section] : {std::pair{"desired", *desired}, std::pair{"reported", *reported}}) {
    for (const auto& m : *section) {
      if (auto c = check_aws_value(m.value(), join_path(name, m.key()), 2, false, limits); !c) return c.error();
    }
    if (auto c = finite_numbers(*section, name, code); !c) return c.error();
  }
  if (auto c = check_aws_metadata(**desired, **desired_meta, "desiredMetadata"); !c) return c.error();
  if (auto c = check_aws_metadata(**reported, **reported_meta, "reportedMetadata"); !c) return c.error();
  if (aws_state_size(**desired, **reported) > limits.max_state_bytes) {
    return error{code, "desired, reported: the state is over the limit of " + std::to_string(limits.max_state_bytes) +
                           " bytes"};
  }

  aws_shadow out(std::move(*thing), std::move(*shadow), limits);
  out.exists_ = *exists;
  out.version_ = *version;
  out.desired_ = **desired;
  out.reported_ = **reported;
  out.desired_meta_ = **desired_meta;
  out.reported_meta_ = **reported_meta;
  return out;
}

}  // namespace twinfleet::twin
