// The AWS IoT Device Shadow: one classic or named shadow of one thing, and every rule that
// changes it (PROTOCOLS.md B3–B7, C2). Pure and sans-I/O: no sockets, no clock (each operation
// takes `now`), not thread-safe (one owner at a time, as every shadow lives on one executor).
//
// Every operation answers with the documents AWS would publish, ready to serialize:
// update → /update/accepted, /update/delta (when desired and reported differ afterwards) and
// /update/documents; get → /get/accepted; remove → /delete/accepted. A rejected operation
// returns a twin::error {code, message} with B6's code and exact text and changes nothing;
// make_aws_error_document() turns it into the */rejected document.
#pragma once

#include <twinfleet/twin/error.hpp>
#include <twinfleet/twin/json_util.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace twinfleet::twin {

// Codes of the shadow error document (B6). The HTTP status equals the code.
namespace aws_code {
inline constexpr int bad_request = 400;
inline constexpr int unauthorized = 401;
inline constexpr int forbidden = 403;
inline constexpr int not_found = 404;
inline constexpr int conflict = 409;
inline constexpr int payload_too_large = 413;
inline constexpr int unsupported_encoding = 415;
inline constexpr int too_many_requests = 429;
inline constexpr int internal_failure = 500;
}  // namespace aws_code

// Messages of the shadow error document, word for word as AWS sends them (B6).
namespace aws_message {
inline constexpr std::string_view invalid_json = "Invalid JSON";
inline constexpr std::string_view missing_state = "Missing required node: state";
inline constexpr std::string_view state_not_object = "State node must be an object";
inline constexpr std::string_view desired_not_object = "Desired node must be an object";
inline constexpr std::string_view reported_not_object = "Reported node must be an object";
inline constexpr std::string_view invalid_version = "Invalid version";
inline constexpr std::string_view invalid_client_token = "Invalid clientToken";
inline constexpr std::string_view invalid_state_node = "State contains an invalid node";
inline constexpr std::string_view unauthorized = "Unauthorized";
inline constexpr std::string_view forbidden = "Forbidden";
inline constexpr std::string_view thing_not_found = "Thing not found";
inline constexpr std::string_view version_conflict = "Version conflict";
inline constexpr std::string_view payload_too_large = "The payload exceeds the maximum size allowed";
inline constexpr std::string_view unsupported_encoding =
    "Unsupported documented encoding; supported encoding is UTF-8";
inline constexpr std::string_view internal_failure = "Internal service failure";
// The two messages that carry a value: use aws_too_deep_message() and aws_no_shadow_message().
inline constexpr std::string_view too_deep_prefix = "JSON contains too many levels of nesting; maximum is ";
inline constexpr std::string_view no_shadow_prefix = "No shadow exists with name: ";
}  // namespace aws_message

// "JSON contains too many levels of nesting; maximum is 6" for max_depth 6.
[[nodiscard]] std::string aws_too_deep_message(std::size_t max_depth);
// "No shadow exists with name: 'simShadow1'" (the name quoted, as real payloads show it).
[[nodiscard]] std::string aws_no_shadow_message(std::string_view name);

// The documented limits (B7). Kept in one struct so a hub can loosen or tighten them: the
// current AWS quotas are not certain (PROTOCOLS.md D9).
struct aws_shadow_limits {
  // desired + reported, metadata excluded, measured as aws_state_size() does.
  std::size_t max_state_bytes = 8 * 1024;
  // JSON nesting levels inside `state`, counting the section object (`desired`/`reported`)
  // itself as level 1, and every nested object or array as one more level. 6 accepts
  // desired.one.two.three.four.five (five an object) and rejects a sixth nested level below
  // desired, as the 2019 quota and the message "maximum is 6" describe.
  std::size_t max_depth = 6;
  std::size_t max_client_token_bytes = 64;
};

// The optional fields every shadow request may carry.
struct aws_request_fields {
  std::optional<std::string> client_token;
  std::optional<std::int64_t> version;
};

// Parses a raw request payload. Errors: 415 when it is not UTF-8; 400 "Invalid JSON" when it
// does not parse, is not a JSON object, or holds a number beyond double's range; 400 too-deep when it nests deeper than the parser
// allows (64 levels, or more when limits.max_depth needs it: a state within the limit always
// parses).
[[nodiscard]] result<json::object> parse_aws_request(std::string_view payload,
                                                     const aws_shadow_limits& limits = {});

// Reads `clientToken` and `version` from a request. Errors: 400 "Invalid clientToken" when the
// token is not a string or longer than the limit (bytes); 400 "Invalid version" when the
// version is not a JSON integer (a fraction, a string, null, a number beyond int64). Other
// members are not looked at.
[[nodiscard]] result<aws_request_fields> parse_aws_request_fields(const json::object& request,
                                                                  const aws_shadow_limits& limits = {});

// The /get and /delete payloads: empty (or only whitespace) means no fields, anything else is
// parsed as parse_aws_request() and parse_aws_request_fields() do. Members other than
// clientToken and version are ignored (B2).
[[nodiscard]] result<aws_request_fields> parse_aws_control_request(std::string_view payload,
                                                                   const aws_shadow_limits& limits = {});

// The clientToken to echo in a */rejected document for `payload`, when one can be read: the
// payload is UTF-8 JSON with a valid clientToken. Never fails.
[[nodiscard]] std::optional<std::string> aws_echo_client_token(std::string_view payload,
                                                               const aws_shadow_limits& limits = {});

// The */rejected document: {"code":…, "message":…, "timestamp":T, "clientToken":…}; the
// token only when given.
[[nodiscard]] json::object make_aws_error_document(const error& e, std::optional<std::string_view> client_token,
                                                   time_point now);

// The delta of B4: every desired key whose value differs from reported, or that reported
// lacks. Nested objects recurse and keep their path; other values (arrays included) are
// compared whole, numbers by value (1 == 1.0), and go into the delta whole; an object in
// desired facing a non-object in reported goes in whole. Keys only in reported never appear.
[[nodiscard]] json::object aws_shadow_delta(const json::object& desired, const json::object& reported);

// The size the state limit is checked against: the bytes of the compact JSON serialization
// (Boost.JSON's) of desired plus that of reported, an empty section counting 0 because
// documents leave it out. Metadata, version and the request's other members do not count.
[[nodiscard]] std::size_t aws_state_size(const json::object& desired, const json::object& reported);

class aws_shadow {
 public:
  // The documents of one accepted update.
  struct update_outcome {
    json::object accepted;              // /update/accepted
    std::optional<json::object> delta;  // /update/delta, when desired and reported differ after it
    json::object documents;             // /update/documents
    std::int64_t version = 0;           // the shadow's version after the update
  };

  // `shadow_name` empty means the classic shadow. Throws std::invalid_argument when a name
  // breaks the B1 rules (names come from topics the caller has already validated; a bad one
  // here is a bug). The shadow does not exist until its first update.
  explicit aws_shadow(std::string thing_name, std::string shadow_name = {}, aws_shadow_limits limits = {});

  // /update (and REST POST): applies `payload`, the raw request bytes.
  // Errors, first match wins: 415 not UTF-8; 400 "Invalid JSON"; 400 "Invalid clientToken";
  // 400 "Invalid version"; 400 "Missing required node: state"; 400 "State node must be an
  // object"; 400 "State contains an invalid node" (a member other than desired/reported);
  // 400 "Desired node must be an object" / "Reported node must be an object"; 400 too-deep;
  // 400 "State contains an invalid node" for a null inside an array (see aws_shadow.cpp);
  // 409 "Version conflict" when `version` is given and is not the current one; 413 when the
  // resulting state is over the limit. A rejected update changes nothing.
  // An update creates the shadow when it does not exist (also after remove()).
  [[nodiscard]] result<update_outcome> update(std::string_view payload, time_point now);
  // The same for a request already parsed (REST bodies, tests).
  [[nodiscard]] result<update_outcome> update(const json::object& request, time_point now);

  // /get (and REST GET): the whole shadow with its delta. `version` in a get request is
  // ignored, as AWS does (PROTOCOLS.md E, pitfall 4).
  // Errors: 404 "No shadow exists with name: '<name>'" (display_name()).
  [[nodiscard]] result<json::object> get(std::optional<std::string_view> client_token, time_point now) const;

  // /delete (and REST DELETE): {"version":N,"timestamp":T[,"clientToken"]} where N is the
  // version of the deleted shadow. The version is kept, so the next update gives N+1 (B5; the
  // reset after 48 h is out of scope).
  // Errors: 404 as get(); 409 "Version conflict" when `version` is given and differs.
  [[nodiscard]] result<json::object> remove(std::optional<std::string_view> client_token,
                                            std::optional<std::int64_t> version, time_point now);

  [[nodiscard]] const std::string& thing_name() const noexcept { return thing_name_; }
  [[nodiscard]] const std::string& shadow_name() const noexcept { return shadow_name_; }
  [[nodiscard]] bool is_classic() const noexcept { return shadow_name_.empty(); }
  // The name AWS puts in the 404 message: the shadow name, or the thing name for the classic
  // shadow (as the service answers for a classic shadow).
  [[nodiscard]] const std::string& display_name() const noexcept {
    return is_classic() ? thing_name_ : shadow_name_;
  }
  [[nodiscard]] const aws_shadow_limits& limits() const noexcept { return limits_; }

  [[nodiscard]] bool exists() const noexcept { return exists_; }
  // 0 before the first update; kept by remove().
  [[nodiscard]] std::int64_t version() const noexcept { return version_; }
  [[nodiscard]] const json::object& desired() const noexcept { return desired_; }
  [[nodiscard]] const json::object& reported() const noexcept { return reported_; }
  // Same shape as the state, each leaf {"timestamp":T} (arrays: one entry per element).
  [[nodiscard]] const json::object& desired_metadata() const noexcept { return desired_meta_; }
  [[nodiscard]] const json::object& reported_metadata() const noexcept { return reported_meta_; }
  // aws_shadow_delta(desired(), reported()).
  [[nodiscard]] json::object delta() const;

  // --- persistence (persist.cpp) ---

  // Everything that defines the shadow, for a state file: thingName, shadowName ("" for the
  // classic shadow), exists, version (kept across remove(), B5), desired, reported,
  // desiredMetadata, reportedMetadata. The limits are configuration: not included.
  [[nodiscard]] json::object to_snapshot() const;

  // Rebuilds a shadow from to_snapshot()'s object, checking every member: valid names, a version
  // >= 0 (>= 1 when the shadow exists), empty sections when it does not exist, sections that
  // hold no null member, no null in an array, nest within `limits` and fit its size, metadata
  // of exactly the state's shape with an integer timestamp at every leaf.
  // Errors: aws_code::bad_request, the message naming the bad member. Never throws on bad input.
  [[nodiscard]] static result<aws_shadow> from_snapshot(const json::object& snapshot, aws_shadow_limits limits = {});

 private:
  std::string thing_name_;
  std::string shadow_name_;
  aws_shadow_limits limits_;
  bool exists_ = false;
  std::int64_t version_ = 0;
  json::object desired_;
  json::object reported_;
  json::object desired_meta_;
  json::object reported_meta_;
};

}  // namespace twinfleet::twin
