#include <twinfleet/twin/aws_shadow.hpp>

#include <twinfleet/twin/names.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <utility>

namespace twinfleet::twin {
namespace {

constexpr std::string_view key_state = "state";
constexpr std::string_view key_desired = "desired";
constexpr std::string_view key_reported = "reported";
constexpr std::string_view key_delta = "delta";
constexpr std::string_view key_metadata = "metadata";
constexpr std::string_view key_version = "version";
constexpr std::string_view key_timestamp = "timestamp";
constexpr std::string_view key_client_token = "clientToken";
constexpr std::string_view key_previous = "previous";
constexpr std::string_view key_current = "current";

error make_error(int code, std::string_view message) { return error{code, std::string(message)}; }

error bad_request(std::string_view message) { return make_error(aws_code::bad_request, message); }

error too_deep(const aws_shadow_limits& limits) {
  return error{aws_code::bad_request, aws_too_deep_message(limits.max_depth)};
}

// The metadata leaf every written value gets: {"timestamp": <epoch seconds>} (B3.2).
json::object timestamp_leaf(std::int64_t ts) {
  json::object leaf;
  leaf[key_timestamp] = ts;
  return leaf;
}

// Metadata for a value as written: objects mirror their members, arrays get one entry per
// element (B3.2 "ColorRGB":[{"timestamp":…},…]), anything else (null included: the accepted
// document stamps deletions too) is a timestamp leaf.
json::value metadata_of(const json::value& v, std::int64_t ts) {
  if (v.is_object()) {
    json::object out;
    for (const auto& member : v.get_object()) out[member.key()] = metadata_of(member.value(), ts);
    return out;
  }
  if (v.is_array()) {
    json::array out;
    out.reserve(v.get_array().size());
    for (const auto& element : v.get_array()) out.push_back(metadata_of(element, ts));
    return out;
  }
  return timestamp_leaf(ts);
}

// Merges one section patch into the stored section and its metadata together, so the metadata
// keeps the state's shape: RFC 7396 rules (null deletes, objects merge, anything else replaces
// whole, an object patch over a non-object starts from {} and drops its own nulls), and every
// value written gets a fresh timestamp. Kept apart from json_util's merge_patch because the
// metadata has to follow the state's decisions (a scalar replaced by an object must lose its
// timestamp leaf, not merge into it).
// Empty objects stay, as RFC 7396 and json_util's merge_patch keep them: {"a":{}} stores an
// empty `a`, and {"a":{"b":null}} leaves `a` as {} once b is gone. AWS does not document this;
// AWS's own Greengrass shadow manager drops such empty objects instead, a difference to check
// against the real service before relying on it.
void merge_with_metadata(json::object& state, json::object& meta, const json::object& patch, std::int64_t ts) {
  for (const auto& member : patch) {
    const auto key = member.key();
    const json::value& value = member.value();
    if (value.is_null()) {
      state.erase(key);
      meta.erase(key);
      continue;
    }
    if (value.is_object()) {
      auto* existing = state.if_contains(key);
      if (existing == nullptr || !existing->is_object()) {
        state[key] = json::object();
        meta[key] = json::object();
      } else if (auto* m = meta.if_contains(key); m == nullptr || !m->is_object()) {
        meta[key] = json::object();  // repairs a metadata tree that lost the state's shape
      }
      merge_with_metadata(state[key].get_object(), meta[key].get_object(), value.get_object(), ts);
      continue;
    }
    state[key] = value;
    meta[key] = metadata_of(value, ts);
  }
}

// True when no object or array inside `v` sits deeper than `max_depth`; `level` is the level
// `v` itself would have if it is a container.
bool within_depth(const json::value& v, std::size_t level, std::size_t max_depth) {
  if (v.is_object()) {
    if (level > max_depth) return false;
    return std::all_of(v.get_object().begin(), v.get_object().end(),
                       [&](const auto& m) { return within_depth(m.value(), level + 1, max_depth); });
  }
  if (v.is_array()) {
    if (level > max_depth) return false;
    return std::all_of(v.get_array().begin(), v.get_array().end(),
                       [&](const auto& e) { return within_depth(e, level + 1, max_depth); });
  }
  return true;
}

// A null anywhere inside an array value (directly or in an object or array nested in it).
bool has_null_in_array(const json::value& v, bool inside_array) {
  if (v.is_null()) return inside_array;
  if (v.is_object()) {
    return std::any_of(v.get_object().begin(), v.get_object().end(),
                       [&](const auto& m) { return has_null_in_array(m.value(), inside_array); });
  }
  if (v.is_array()) {
    return std::any_of(v.get_array().begin(), v.get_array().end(),
                       [](const auto& e) { return has_null_in_array(e, true); });
  }
  return false;
}

// The desired metadata of exactly the keys in `delta` (B3.4): objects in the delta recurse,
// other values take their metadata whole (a whole array or a whole object that reported did
// not have as an object: its full metadata subtree is the projection anyway).
json::object project_metadata(const json::object& delta, const json::object& meta) {
  json::object out;
  for (const auto& member : delta) {
    const auto* m = meta.if_contains(member.key());
    if (m == nullptr) continue;
    if (member.value().is_object() && m->is_object()) {
      out[member.key()] = project_metadata(member.value().get_object(), m->get_object());
    } else {
      out[member.key()] = *m;
    }
  }
  return out;
}

// {"desired":…, "reported":…} with empty sections left out, as AWS leaves them out of every
// document that shows the whole state (B3.3: "Empty or absent sections are left out").
json::object sections(const json::object& desired, const json::object& reported) {
  json::object out;
  if (!desired.empty()) out[key_desired] = desired;
  if (!reported.empty()) out[key_reported] = reported;
  return out;
}

void add_client_token(json::object& doc, const std::optional<std::string>& token) {
  if (token) doc[key_client_token] = *token;
}

void add_client_token(json::object& doc, std::optional<std::string_view> token) {
  if (token) doc[key_client_token] = *token;
}

// One side of /update/documents: {"state":{…},"metadata":{…},"version":N}. Takes its parts by
// value so a caller that no longer needs them can move them in.
json::object snapshot(json::object desired, json::object reported, json::object desired_meta,
                      json::object reported_meta, std::int64_t version) {
  json::object out;
  json::object state;
  json::object meta;
  // Empty sections are left out (see sections()); metadata sections follow the state's:
  // present exactly when the state section is.
  if (!desired.empty()) {
    state[key_desired] = std::move(desired);
    meta[key_desired] = std::move(desired_meta);
  }
  if (!reported.empty()) {
    state[key_reported] = std::move(reported);
    meta[key_reported] = std::move(reported_meta);
  }
  out[key_state] = std::move(state);
  out[key_metadata] = std::move(meta);
  out[key_version] = version;
  return out;
}

// Boost.JSON reads a number beyond double's range (1e400) as infinity and would write it back
// as `Infinity`, which is not JSON: every document published after it would be unreadable.
bool has_non_finite_number(const json::value& v) {
  if (v.is_double()) return !std::isfinite(v.get_double());
  if (v.is_object()) {
    return std::any_of(v.get_object().begin(), v.get_object().end(),
                       [](const auto& m) { return has_non_finite_number(m.value()); });
  }
  if (v.is_array()) return std::any_of(v.get_array().begin(), v.get_array().end(), has_non_finite_number);
  return false;
}

// An upper bound of json::serialize(v).size() that costs a walk instead of a serialization:
// a string byte takes at most 6 bytes escaped (\u00XX), a number at most 32 characters
// (Boost.JSON writes at most 27), and the punctuation is counted as written.
std::size_t serialized_size_bound(const json::value& v);

std::size_t serialized_size_bound(const json::object& o) {
  std::size_t n = 2 + o.size();  // braces; one ':' and one ',' per member, minus one
  for (const auto& member : o) n += 2 + 6 * member.key().size() + 1 + serialized_size_bound(member.value());
  return n;
}

std::size_t serialized_size_bound(const json::value& v) {
  switch (v.kind()) {
    case json::kind::object:
      return serialized_size_bound(v.get_object());
    case json::kind::array: {
      std::size_t n = 2 + v.get_array().size();
      for (const auto& element : v.get_array()) n += serialized_size_bound(element);
      return n;
    }
    case json::kind::string:
      return 2 + 6 * v.get_string().size();
    case json::kind::bool_:
    case json::kind::null:
      return 5;
    default:
      return 32;
  }
}

// aws_state_size(desired, reported) <= max, serializing only when the cheap bound is over it
// (serializing the whole state on every update was a large share of an update's cost).
bool state_fits(const json::object& desired, const json::object& reported, std::size_t max) {
  std::size_t bound = 0;
  if (!desired.empty()) bound += serialized_size_bound(desired);
  if (!reported.empty()) bound += serialized_size_bound(reported);
  return bound <= max || aws_state_size(desired, reported) <= max;
}

bool is_blank(std::string_view text) {
  return std::all_of(text.begin(), text.end(),
                     [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; });
}

}  // namespace

std::string aws_too_deep_message(std::size_t max_depth) {
  return std::string(aws_message::too_deep_prefix) + std::to_string(max_depth);
}

std::string aws_no_shadow_message(std::string_view name) {
  std::string out(aws_message::no_shadow_prefix);
  out += '\'';
  out += name;
  out += '\'';
  return out;
}

result<json::object> parse_aws_request(std::string_view payload, const aws_shadow_limits& limits) {
  // 415 before parsing: Boost.JSON would reject bad UTF-8 inside strings as a syntax error,
  // but AWS tells the encoding apart from the syntax.
  if (!is_valid_utf8(payload)) return make_error(aws_code::unsupported_encoding, aws_message::unsupported_encoding);
  json::parse_options options;
  // The root object and `state` sit above the sections, whose levels the limit counts.
  options.max_depth = std::max<std::size_t>(64, limits.max_depth + 2);
  boost::system::error_code ec;
  json::value parsed = json::parse(payload, ec, {}, options);
  if (ec == json::error::too_deep) return too_deep(limits);
  // A JSON document that is not an object cannot be a shadow request at all; "Missing required
  // node: state" would suggest adding a member to something that has none.
  if (ec || !parsed.is_object()) return bad_request(aws_message::invalid_json);
  // Not representable, so refused as unreadable rather than stored changed.
  if (has_non_finite_number(parsed)) return bad_request(aws_message::invalid_json);
  return std::move(parsed.get_object());
}

result<aws_request_fields> parse_aws_request_fields(const json::object& request, const aws_shadow_limits& limits) {
  aws_request_fields fields;
  if (const auto* token = request.if_contains(key_client_token)) {
    // Strict: a null or numeric token cannot be echoed as the client sent it, so it is refused
    // rather than silently dropped (the client matches replies by it).
    if (!token->is_string() || token->get_string().size() > limits.max_client_token_bytes) {
      return bad_request(aws_message::invalid_client_token);
    }
    fields.client_token = std::string(token->get_string());
  }
  if (const auto* version = request.if_contains(key_version)) {
    // Only JSON integers: Boost.JSON keeps 17.0 and 1e1 as doubles, and gives uint64 only to
    // values beyond int64, which no shadow version reaches.
    if (!version->is_int64()) return bad_request(aws_message::invalid_version);
    fields.version = version->get_int64();
  }
  return fields;
}

result<aws_request_fields> parse_aws_control_request(std::string_view payload, const aws_shadow_limits& limits) {
  if (is_blank(payload)) return aws_request_fields{};
  auto request = parse_aws_request(payload, limits);
  if (!request) return request.error();
  return parse_aws_request_fields(*request, limits);
}

std::optional<std::string> aws_echo_client_token(std::string_view payload, const aws_shadow_limits& limits) {
  auto request = parse_aws_request(payload, limits);
  if (!request) return std::nullopt;
  const auto* token = request->if_contains(key_client_token);
  if (token == nullptr || !token->is_string() || token->get_string().size() > limits.max_client_token_bytes) {
    return std::nullopt;
  }
  return std::string(token->get_string());
}

json::object make_aws_error_document(const error& e, std::optional<std::string_view> client_token, time_point now) {
  json::object doc;
  doc["code"] = e.code;
  doc["message"] = e.message;
  doc[key_timestamp] = epoch_seconds(now);
  add_client_token(doc, client_token);
  return doc;
}

json::object aws_shadow_delta(const json::object& desired, const json::object& reported) {
  json::object out;
  for (const auto& member : desired) {
    const json::value& d = member.value();
    const json::value* r = reported.if_contains(member.key());
    if (d.is_object() && r != nullptr && r->is_object()) {
      json::object sub = aws_shadow_delta(d.get_object(), r->get_object());
      if (!sub.empty()) out[member.key()] = std::move(sub);
    } else if (r == nullptr || !json_equal(d, *r)) {
      out[member.key()] = d;
    }
  }
  return out;
}

std::size_t aws_state_size(const json::object& desired, const json::object& reported) {
  std::size_t size = 0;
  if (!desired.empty()) size += json::serialize(desired).size();
  if (!reported.empty()) size += json::serialize(reported).size();
  return size;
}

aws_shadow::aws_shadow(std::string thing_name, std::string shadow_name, aws_shadow_limits limits)
    : thing_name_(std::move(thing_name)), shadow_name_(std::move(shadow_name)), limits_(limits) {
  if (!is_valid_thing_name(thing_name_)) throw std::invalid_argument("invalid AWS thing name: " + thing_name_);
  if (!shadow_name_.empty() && !is_valid_shadow_name(shadow_name_)) {
    throw std::invalid_argument("invalid AWS shadow name: " + shadow_name_);
  }
}

result<aws_shadow::update_outcome> aws_shadow::update(std::string_view payload, time_point now) {
  auto request = parse_aws_request(payload, limits_);
  if (!request) return request.error();
  return update(*request, now);
}

result<aws_shadow::update_outcome> aws_shadow::update(const json::object& request, time_point now) {
  auto fields = parse_aws_request_fields(request, limits_);
  if (!fields) return fields.error();

  const json::value* state = request.if_contains(key_state);
  if (state == nullptr) return bad_request(aws_message::missing_state);
  if (!state->is_null() && !state->is_object()) return bad_request(aws_message::state_not_object);

  // `"state": null` clears both sections (B3.1) and is handled as the request
  // {"state":{"desired":null,"reported":null}} in every respect, the /update/accepted echo
  // included: AWS does not document its reply (PROTOCOLS.md D12), and this form tells a client
  // in the documented vocabulary (section nulls, B3.2) that both sections are gone, can be
  // applied by the same code that applies any accepted document, and fits the SDK models whose
  // `state` holds nullable desired/reported (a null `state` reads there like an absent one).
  json::object expanded_state;
  if (state->is_null()) {
    expanded_state[key_desired] = nullptr;
    expanded_state[key_reported] = nullptr;
  }
  const json::object& sections_in = state->is_null() ? expanded_state : state->get_object();

  for (const auto& member : sections_in) {
    if (member.key() != key_desired && member.key() != key_reported) {
      return bad_request(aws_message::invalid_state_node);
    }
  }
  const json::value* desired_patch = sections_in.if_contains(key_desired);
  const json::value* reported_patch = sections_in.if_contains(key_reported);
  if (desired_patch != nullptr && !desired_patch->is_null() && !desired_patch->is_object()) {
    return bad_request(aws_message::desired_not_object);
  }
  if (reported_patch != nullptr && !reported_patch->is_null() && !reported_patch->is_object()) {
    return bad_request(aws_message::reported_not_object);
  }
  for (const json::value* patch : {desired_patch, reported_patch}) {
    if (patch != nullptr && !within_depth(*patch, 1, limits_.max_depth)) return too_deep(limits_);
  }
  // Arrays are whole values (B3.1), so a null inside one would be stored as data, while
  // everywhere else in a shadow null means "delete". AWS rejects such arrays; its message is
  // not documented. "State contains an invalid node" is B6's message for content of `state`
  // that the service does not accept, which this is; "Invalid JSON" would claim a syntax error
  // in a payload that parses.
  for (const json::value* patch : {desired_patch, reported_patch}) {
    if (patch != nullptr && has_null_in_array(*patch, false)) return bad_request(aws_message::invalid_state_node);
  }
  // The current version is compared even when the shadow does not exist: it is 0 before the
  // first update and the deleted shadow's version after remove(), so `version` 0 creates a new
  // shadow and a client that remembers the version across a delete still matches.
  if (fields->version && *fields->version != version_) return make_error(aws_code::conflict, aws_message::version_conflict);

  // Work on copies and commit at the end, so a 413 leaves everything as it was.
  const std::int64_t ts = epoch_seconds(now);
  json::object desired = desired_;
  json::object reported = reported_;
  json::object desired_meta = desired_meta_;
  json::object reported_meta = reported_meta_;
  json::object accepted_state;
  json::object accepted_meta;
  const auto apply = [&](std::string_view name, const json::value* patch, json::object& section,
                         json::object& meta) {
    if (patch == nullptr) return;
    accepted_state[name] = *patch;
    if (patch->is_null()) {
      // B3.2: a deleted section is echoed as null with a timestamp leaf in its place.
      section.clear();
      meta.clear();
      accepted_meta[name] = timestamp_leaf(ts);
      return;
    }
    merge_with_metadata(section, meta, patch->get_object(), ts);
    accepted_meta[name] = metadata_of(*patch, ts);
  };
  apply(key_desired, desired_patch, desired, desired_meta);
  apply(key_reported, reported_patch, reported, reported_meta);

  if (!state_fits(desired, reported, limits_.max_state_bytes)) {
    return make_error(aws_code::payload_too_large, aws_message::payload_too_large);
  }

  update_outcome out;
  out.version = version_ + 1;

  out.accepted[key_state] = std::move(accepted_state);
  out.accepted[key_metadata] = std::move(accepted_meta);
  out.accepted[key_version] = out.version;
  out.accepted[key_timestamp] = ts;
  add_client_token(out.accepted, fields->client_token);

  // B3.5: previous is null when this update creates the shadow, a re-creation after remove()
  // included (the deleted state is gone; only its version number lives on).
  // The old state is replaced below, so `previous` takes it over instead of copying it.
  if (exists_) {
    out.documents[key_previous] = snapshot(std::move(desired_), std::move(reported_), std::move(desired_meta_),
                                           std::move(reported_meta_), version_);
  } else {
    out.documents[key_previous] = nullptr;
  }
  out.documents[key_current] = snapshot(desired, reported, desired_meta, reported_meta, out.version);
  out.documents[key_timestamp] = ts;
  add_client_token(out.documents, fields->client_token);

  // B4: published after every accepted update that leaves desired and reported different,
  // reported-only updates included (embedded-C #229), with every differing key. "Different"
  // means a non-empty delta: keys that only reported has never make one.
  json::object delta = aws_shadow_delta(desired, reported);
  if (!delta.empty()) {
    json::object delta_meta = project_metadata(delta, desired_meta);
    json::object doc;
    doc[key_state] = std::move(delta);
    doc[key_metadata] = std::move(delta_meta);
    doc[key_version] = out.version;
    doc[key_timestamp] = ts;
    add_client_token(doc, fields->client_token);
    out.delta = std::move(doc);
  }

  desired_ = std::move(desired);
  reported_ = std::move(reported);
  desired_meta_ = std::move(desired_meta);
  reported_meta_ = std::move(reported_meta);
  version_ = out.version;
  exists_ = true;
  return out;
}

result<json::object> aws_shadow::get(std::optional<std::string_view> client_token, time_point now) const {
  if (!exists_) return make_error(aws_code::not_found, aws_no_shadow_message(display_name()));
  json::object doc;
  json::object state = sections(desired_, reported_);
  json::object delta = aws_shadow_delta(desired_, reported_);
  if (!delta.empty()) state[key_delta] = std::move(delta);
  doc[key_state] = std::move(state);
  // Only desired and reported metadata: whether AWS adds metadata.delta to GET is open
  // (PROTOCOLS.md D10); the delta's metadata is desired's anyway.
  json::object meta;
  if (!desired_.empty()) meta[key_desired] = desired_meta_;
  if (!reported_.empty()) meta[key_reported] = reported_meta_;
  doc[key_metadata] = std::move(meta);
  doc[key_version] = version_;
  doc[key_timestamp] = epoch_seconds(now);
  add_client_token(doc, client_token);
  return doc;
}

result<json::object> aws_shadow::remove(std::optional<std::string_view> client_token,
                                        std::optional<std::int64_t> version, time_point now) {
  if (!exists_) return make_error(aws_code::not_found, aws_no_shadow_message(display_name()));
  if (version && *version != version_) return make_error(aws_code::conflict, aws_message::version_conflict);
  // The reply carries the deleted shadow's version, unchanged: the shadow-sandbox sample of the
  // AWS IoT Device SDK v2 shows a delete answering version 9 right after the update that made
  // version 9, and B5 has a re-creation continue from it.
  json::object doc;
  doc[key_version] = version_;
  doc[key_timestamp] = epoch_seconds(now);
  add_client_token(doc, client_token);
  desired_.clear();
  reported_.clear();
  desired_meta_.clear();
  reported_meta_.clear();
  exists_ = false;
  return doc;
}

json::object aws_shadow::delta() const { return aws_shadow_delta(desired_, reported_); }

}  // namespace twinfleet::twin
