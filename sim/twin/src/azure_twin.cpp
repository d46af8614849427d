#include <twinfleet/twin/azure_twin.hpp>

#include <algorithm>
#include <array>
#include <optional>

namespace twinfleet::twin {

namespace {

error invalid(std::string message) { return error{azure_code::invalid_argument, std::move(message)}; }

// A code point that IoT Hub forbids in a key: C0 and C1 controls, DEL, '.', '$' and space.
bool forbidden_in_key(std::uint32_t cp) noexcept {
  return cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp <= 0x9F) || cp == '.' || cp == '$' || cp == ' ';
}

// Decodes well-formed UTF-8 (Boost.JSON has validated it) one code point at a time.
template <class F>
void for_each_code_point(std::string_view text, F&& f) {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const auto* end = p + text.size();
  while (p < end) {
    std::uint32_t cp = *p;
    std::size_t extra = cp < 0x80 ? 0 : cp < 0xE0 ? 1 : cp < 0xF0 ? 2 : 3;
    if (extra > 0) cp &= (0x3Fu >> extra);
    for (std::size_t i = 1; i <= extra && p + i < end; ++i) cp = (cp << 6) | (p[i] & 0x3F);
    f(cp);
    p += extra + 1;
  }
}

std::size_t counted_chars(std::string_view text) {
  std::size_t n = 0;
  for_each_code_point(text, [&](std::uint32_t cp) {
    if (!(cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp <= 0x9F))) ++n;
  });
  return n;
}

std::size_t value_size(const json::value& v);

std::size_t object_size(const json::object& o) {
  std::size_t n = 0;
  for (const auto& member : o) {
    if (member.key() == "$version" || member.key() == "$metadata") continue;
    n += counted_chars(member.key()) + value_size(member.value());
  }
  return n;
}

std::size_t value_size(const json::value& v) {
  switch (v.kind()) {
    case json::kind::object:
      return object_size(v.get_object());
    case json::kind::array: {
      std::size_t n = 0;
      for (const auto& e : v.get_array()) n += value_size(e);
      return n;
    }
    case json::kind::string:
      return counted_chars(v.get_string());
    case json::kind::bool_:
      return 4;
    case json::kind::null:
      return 0;
    default:
      return 8;  // int64, uint64, double
  }
}

// Where a value sits ("properties.reported.a.b[2]"), as a chain of views on the validator's
// stack: the text is built only for an error message, not for every member of every patch.
struct path_ref {
  const path_ref* parent = nullptr;
  std::string_view key;  // a member's name, or the root's whole path
  std::size_t index = 0;
  bool is_index = false;

  [[nodiscard]] std::string str() const {
    if (parent == nullptr) return std::string(key);
    std::string out = parent->str();
    if (is_index) return out + "[" + std::to_string(index) + "]";
    return join_path(out, key);
  }
};

struct validator {
  const azure_limits& limits;

  result<void> key(std::string_view k, const path_ref& path) const {
    if (k.empty()) return invalid(path.str() + ": a property name must not be empty");
    if (k.size() > limits.max_key_bytes) {
      return invalid(path.str() + ": property name is " + std::to_string(k.size()) + " bytes, the maximum is " +
                     std::to_string(limits.max_key_bytes));
    }
    bool bad = false;
    for_each_code_point(k, [&](std::uint32_t cp) { bad = bad || forbidden_in_key(cp); });
    if (bad) {
      return invalid(path.str() + ": property names must not contain '.', '$', space or control characters");
    }
    return {};
  }

  // `level` is the nesting level of the object or array `v` lives in (1 for a section member).
  result<void> value(const json::value& v, const path_ref& path, std::size_t level) const {
    switch (v.kind()) {
      case json::kind::object:
        if (level > limits.max_depth) {
          return invalid(path.str() + ": nesting goes past the maximum depth of " + std::to_string(limits.max_depth));
        }
        return object(v.get_object(), path, level + 1);
      case json::kind::array: {
        std::size_t i = 0;
        for (const auto& e : v.get_array()) {
          const path_ref element{&path, {}, i++, true};
          auto r = value(e, element, level);
          if (!r) return r;
        }
        return {};
      }
      case json::kind::string:
        if (v.get_string().size() > limits.max_string_bytes) {
          return invalid(path.str() + ": Property or Tag value should be maximum " +
                         std::to_string(limits.max_string_bytes) + " bytes");
        }
        return {};
      case json::kind::int64:
        if (v.get_int64() < limits.min_integer || v.get_int64() > limits.max_integer) {
          return invalid(path.str() + ": integer " + std::to_string(v.get_int64()) + " is outside -2^52 .. 2^52-1");
        }
        return {};
      case json::kind::uint64:
        if (v.get_uint64() > static_cast<std::uint64_t>(limits.max_integer)) {
          return invalid(path.str() + ": integer " + std::to_string(v.get_uint64()) + " is outside -2^52 .. 2^52-1");
        }
        return {};
      default:
        return {};
    }
  }

  result<void> object(const json::object& o, const path_ref& path, std::size_t level) const {
    for (const auto& member : o) {
      const path_ref child{&path, member.key()};
      if (auto r = key(member.key(), child); !r) return r;
      if (auto r = value(member.value(), child, level); !r) return r;
    }
    return {};
  }

  result<void> object(const json::object& o, std::string_view root, std::size_t level) const {
    return object(o, path_ref{nullptr, root}, level);
  }
};

// The stamp IoT Hub writes into $metadata for everything a write touched.
json::object make_stamp(const std::string& when, std::optional<std::int64_t> desired_version) {
  json::object stamp;
  stamp["$lastUpdated"] = when;
  if (desired_version) stamp["$lastUpdatedVersion"] = *desired_version;
  return stamp;
}

// Writes the stamp's members into `meta`. A string already there is overwritten in place,
// reusing its storage: every patch stamps the section's root and each node it touches again.
void set_stamp(json::object& meta, const json::object& stamp) {
  for (const auto& member : stamp) {
    auto& slot = meta[member.key()];
    if (slot.is_string() && member.value().is_string()) {
      slot.get_string().assign(member.value().get_string());
    } else {
      slot = member.value();
    }
  }
}

// A written leaf's $metadata node becomes `stamp`. A node that is already a stamp of the same
// keys is overwritten in place: a property reported again and again then reuses its node and
// its $lastUpdated string instead of allocating both anew.
void stamp_leaf(json::object& meta, std::string_view key, const json::object& stamp) {
  auto* node = meta.if_contains(key);
  if (node != nullptr && node->is_object() && node->get_object().size() == stamp.size() &&
      std::all_of(stamp.begin(), stamp.end(), [&](const auto& m) { return node->get_object().contains(m.key()); })) {
    set_stamp(node->get_object(), stamp);
    return;
  }
  meta[key] = stamp;
}

// Merges `patch` into `data` and keeps `meta` (the $metadata node of `data`) in step: every
// object on the way gets the stamp, every written leaf a fresh node, deleted keys lose theirs.
void apply_with_metadata(json::object& data, json::object& meta, const json::object& patch, const json::object& stamp) {
  set_stamp(meta, stamp);
  for (const auto& member : patch) {
    const auto key = member.key();
    const auto& v = member.value();
    if (v.is_null()) {
      data.erase(key);
      meta.erase(key);
      continue;
    }
    if (v.is_object()) {
      auto it = data.find(key);
      if (it == data.end() || !it->value().is_object()) {
        data[key] = json::object{};
        meta[key] = json::object{};
      } else if (auto* m = meta.if_contains(key); m == nullptr || !m->is_object()) {
        meta[key] = json::object{};
      }
      apply_with_metadata(data[key].get_object(), meta[key].get_object(), v.get_object(), stamp);
      continue;
    }
    data[key] = v;
    stamp_leaf(meta, key, stamp);
  }
}

// The new document with a null for every key of `before` that it no longer has, recursively.
json::object replacement_notification(const json::object& before, const json::object& after) {
  json::object out = after;
  for (const auto& member : before) {
    auto* now = out.if_contains(member.key());
    if (now == nullptr) {
      out[member.key()] = nullptr;
    } else if (now->is_object() && member.value().is_object()) {
      *now = replacement_notification(member.value().get_object(), now->get_object());
    }
  }
  return out;
}

// The read-only members a client may echo back from a GET: ignored, never stored.
json::object without_read_only(const json::object& section) {
  json::object out = section;
  out.erase("$version");
  out.erase("$metadata");
  return out;
}


struct service_body {
  std::optional<json::object> tags;
  std::optional<json::object> desired;
};

result<service_body> parse_service_body(const json::value& body, const azure_limits& limits) {
  if (!body.is_object()) return invalid("the request body must be a JSON object");
  service_body out;
  const auto& root = body.get_object();
  if (const auto* tags = root.if_contains("tags"); tags != nullptr && !tags->is_null()) {
    if (!tags->is_object()) return invalid("tags: must be a JSON object");
    out.tags = tags->get_object();
  }
  if (const auto* props = root.if_contains("properties"); props != nullptr && !props->is_null()) {
    if (!props->is_object()) return invalid("properties: must be a JSON object");
    for (const auto& member : props->get_object()) {
      if (member.key() == "reported") {
        return invalid("properties.reported: reported properties are read-only for the service");
      }
      if (member.key() != "desired") return invalid(join_path("properties", member.key()) + ": unknown section");
    }
    if (const auto* desired = props->get_object().if_contains("desired"); desired != nullptr && !desired->is_null()) {
      if (!desired->is_object()) return invalid("properties.desired: must be a JSON object");
      out.desired = without_read_only(desired->get_object());
    }
  }
  const validator check{limits};
  if (out.tags) {
    if (auto r = check.object(*out.tags, "tags", 1); !r) return r.error();
  }
  if (out.desired) {
    if (auto r = check.object(*out.desired, "properties.desired", 1); !r) return r.error();
  }
  return out;
}

}  // namespace

std::string counter_etag(std::int64_t value) {
  auto counter = static_cast<std::uint64_t>(value);
  static constexpr char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::array<unsigned char, 8> bytes{};
  for (int i = 7; i >= 0; --i) {
    bytes[static_cast<std::size_t>(i)] = static_cast<unsigned char>(counter & 0xFF);
    counter >>= 8;
  }
  std::string out;
  for (std::size_t i = 0; i < bytes.size(); i += 3) {
    const std::size_t n = std::min<std::size_t>(3, bytes.size() - i);
    std::uint32_t chunk = 0;
    for (std::size_t j = 0; j < 3; ++j) chunk = (chunk << 8) | (j < n ? bytes[i + j] : 0);
    out.push_back(alphabet[(chunk >> 18) & 63]);
    out.push_back(alphabet[(chunk >> 12) & 63]);
    out.push_back(n > 1 ? alphabet[(chunk >> 6) & 63] : '=');
    out.push_back(n > 2 ? alphabet[chunk & 63] : '=');
  }
  return out;
}

std::size_t azure_section_size(const json::object& section) { return object_size(section); }

result<void> validate_azure_section(const json::object& section, std::string_view path, const azure_limits& limits) {
  return validator{limits}.object(section, path, 1);
}

if_match if_match::parse(std::string_view header) {
  // Trim optional whitespace around the field value.
  while (!header.empty() && (header.front() == ' ' || header.front() == '\t')) header.remove_prefix(1);
  while (!header.empty() && (header.back() == ' ' || header.back() == '\t')) header.remove_suffix(1);
  if (header == "*" || header == "\"*\"") return {kind::any, {}};
  if (header.starts_with("W/")) header.remove_prefix(2);
  if (header.size() >= 2 && header.front() == '"' && header.back() == '"') {
    return {kind::tag, std::string(header.substr(1, header.size() - 2))};
  }
  // Unquoted: IoT Hub silently ignores it (Java SDK #574, Node SDK #606). So do we.
  return {kind::absent, {}};
}

azure_twin::azure_twin(std::string device_id, time_point created, azure_limits limits)
    : device_id_(std::move(device_id)),
      limits_(limits),
      status_updated_(created),
      last_activity_(created) {
  const auto when = format_iso8601(created);
  desired_meta_ = make_stamp(when, desired_version_);
  reported_meta_ = make_stamp(when, std::nullopt);
}

std::string azure_twin::etag() const { return counter_etag(version_); }

result<void> azure_twin::check_etag(const if_match& match) const {
  if (match.what == if_match::kind::tag && match.tag != etag()) {
    return error{azure_code::precondition_failed,
                 "the If-Match etag \"" + match.tag + "\" does not match the twin's \"" + etag() + "\""};
  }
  return {};
}

result<void> azure_twin::check_size(const json::object& section, azure_section which) const {
  const auto size = azure_section_size(section);
  std::size_t max = 0;
  const char* name = "";
  switch (which) {
    case azure_section::tags:
      max = limits_.max_tags_size;
      name = "Tags";
      break;
    case azure_section::desired:
      max = limits_.max_desired_size;
      name = "Properties.Desired";
      break;
    case azure_section::reported:
      max = limits_.max_reported_size;
      name = "Properties.Reported";
      break;
  }
  if (size > max) {
    return error{azure_code::section_too_large, "'" + std::string(name) + "' size should be less than " +
                                                    std::to_string(max) + " bytes."};
  }
  return {};
}

result<desired_change> azure_twin::service_patch(const json::value& body, const if_match& match, time_point now) {
  if (auto r = check_etag(match); !r) return r.error();
  auto parsed = parse_service_body(body, limits_);
  if (!parsed) return parsed.error();
  if (!parsed->tags && !parsed->desired) return desired_change{desired_version_, std::nullopt};

  const auto when = format_iso8601(now);
  // Work on copies so that a write over a size limit leaves the twin as it was.
  json::object tags = tags_;
  json::object desired = desired_;
  json::object desired_meta = desired_meta_;
  json::object tags_meta;  // tags carry no $metadata in IoT Hub
  if (parsed->tags) {
    apply_with_metadata(tags, tags_meta, *parsed->tags, json::object{});
    if (auto r = check_size(tags, azure_section::tags); !r) return r.error();
  }
  if (parsed->desired) {
    apply_with_metadata(desired, desired_meta, *parsed->desired, make_stamp(when, desired_version_ + 1));
    if (auto r = check_size(desired, azure_section::desired); !r) return r.error();
  }

  if (parsed->tags) tags_ = std::move(tags);
  ++version_;
  if (!parsed->desired) return desired_change{desired_version_, std::nullopt};
  desired_ = std::move(desired);
  desired_meta_ = std::move(desired_meta);
  ++desired_version_;
  json::object note = std::move(*parsed->desired);
  note["$version"] = desired_version_;
  return desired_change{desired_version_, std::move(note)};
}

result<desired_change> azure_twin::service_replace(const json::value& body, const if_match& match, time_point now) {
  if (auto r = check_etag(match); !r) return r.error();
  auto parsed = parse_service_body(body, limits_);
  if (!parsed) return parsed.error();

  const auto when = format_iso8601(now);
  json::object tags;
  json::object tags_meta;
  json::object desired;
  json::object desired_meta;
  apply_with_metadata(tags, tags_meta, parsed->tags.value_or(json::object{}), json::object{});
  apply_with_metadata(desired, desired_meta, parsed->desired.value_or(json::object{}),
                      make_stamp(when, desired_version_ + 1));
  if (auto r = check_size(tags, azure_section::tags); !r) return r.error();
  if (auto r = check_size(desired, azure_section::desired); !r) return r.error();

  json::object note = replacement_notification(desired_, desired);
  tags_ = std::move(tags);
  desired_ = std::move(desired);
  desired_meta_ = std::move(desired_meta);
  ++version_;
  ++desired_version_;
  note["$version"] = desired_version_;
  return desired_change{desired_version_, std::move(note)};
}

result<std::int64_t> azure_twin::patch_reported(const json::value& patch, std::optional<std::int64_t> expected_version,
                                                time_point now) {
  if (expected_version && *expected_version != reported_version_) {
    return error{azure_code::precondition_failed, "reported $version is " + std::to_string(reported_version_) +
                                                      ", the request expected " + std::to_string(*expected_version)};
  }
  if (!patch.is_object()) return invalid("properties.reported: the patch must be a JSON object");
  // The read-only members are dropped; a patch without them (the usual case) is used as it is.
  const auto& given = patch.get_object();
  std::optional<json::object> copy;
  if (given.contains("$version") || given.contains("$metadata")) copy = without_read_only(given);
  const json::object& clean = copy ? *copy : given;
  if (auto r = validator{limits_}.object(clean, "properties.reported", 1); !r) return r.error();

  const json::object stamp = make_stamp(format_iso8601(now), std::nullopt);
  // The section size is additive over members, and a merge keeps only members of the old
  // section or the patch, so the result is at most old + patch: when that fits, no 413 is
  // possible and the patch goes straight into the twin. Otherwise it is applied to copies that
  // are kept only if they fit. (Copying the section and its metadata tree on every report was
  // most of the cost of a PATCH on a twin of a few KB.) The old size is a bound kept across
  // patches; it is measured again only when the bound says the patch might not fit.
  const auto patch_size = azure_section_size(clean);
  if (reported_size_bound_ == unknown_size || reported_size_bound_ + patch_size > limits_.max_reported_size) {
    reported_size_bound_ = azure_section_size(reported_);
  }
  if (reported_size_bound_ + patch_size <= limits_.max_reported_size) {
    apply_with_metadata(reported_, reported_meta_, clean, stamp);
    reported_size_bound_ += patch_size;
  } else {
    json::object reported = reported_;
    json::object meta = reported_meta_;
    apply_with_metadata(reported, meta, clean, stamp);
    if (auto r = check_size(reported, azure_section::reported); !r) return r.error();
    reported_ = std::move(reported);
    reported_meta_ = std::move(meta);
    reported_size_bound_ = unknown_size;
  }
  ++reported_version_;
  ++version_;
  last_activity_ = now;
  return reported_version_;
}

json::object azure_twin::device_view() const {
  json::object desired = desired_;
  desired["$version"] = desired_version_;
  json::object reported = reported_;
  reported["$version"] = reported_version_;
  json::object out;
  out["desired"] = std::move(desired);
  out["reported"] = std::move(reported);
  return out;
}

json::object azure_twin::to_json() const {
  json::object desired = desired_;
  desired["$metadata"] = desired_meta_;
  desired["$version"] = desired_version_;
  json::object reported = reported_;
  reported["$metadata"] = reported_meta_;
  reported["$version"] = reported_version_;
  json::object properties;
  properties["desired"] = std::move(desired);
  properties["reported"] = std::move(reported);

  json::object out;
  out["deviceId"] = device_id_;
  out["etag"] = etag();
  out["deviceEtag"] = counter_etag(1);
  out["version"] = version_;
  out["status"] = enabled_ ? "enabled" : "disabled";
  out["statusUpdateTime"] = format_iso8601(status_updated_);
  out["connectionState"] = connected_ ? "Connected" : "Disconnected";
  out["lastActivityTime"] = format_iso8601(last_activity_);
  out["cloudToDeviceMessageCount"] = 0;
  out["authenticationType"] = "sas";
  out["modelId"] = model_id_;
  out["capabilities"] = json::object{{"iotEdge", false}};
  out["tags"] = tags_;
  out["properties"] = std::move(properties);
  return out;
}

void azure_twin::set_connected(bool connected, time_point now) {
  connected_ = connected;
  last_activity_ = now;
}

void azure_twin::set_enabled(bool enabled, time_point now) {
  enabled_ = enabled;
  status_updated_ = now;
}

}  // namespace twinfleet::twin
