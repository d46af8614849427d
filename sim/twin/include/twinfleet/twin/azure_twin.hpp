// The Azure IoT Hub device twin: the authoritative document and every rule that changes it.
// Pure and sans-I/O: no sockets, no clock (each operation takes `now`), not thread-safe (one
// owner at a time, as every twin lives on one executor).
#pragma once

#include <twinfleet/twin/error.hpp>
#include <twinfleet/twin/json_util.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace twinfleet::twin {

// The documented limits (PROTOCOLS.md A3). Kept in one struct so a hub can loosen or tighten
// them to reproduce an older or a future service.
struct azure_limits {
  std::size_t max_key_bytes = 1024;
  std::size_t max_depth = 10;  // nested object levels inside tags / desired / reported
  std::size_t max_string_bytes = 4096;
  std::int64_t min_integer = -4503599627370496;  // -2^52
  std::int64_t max_integer = 4503599627370495;   //  2^52 - 1
  std::size_t max_tags_size = 8 * 1024;
  std::size_t max_desired_size = 32 * 1024;
  std::size_t max_reported_size = 32 * 1024;
};

enum class azure_section { tags, desired, reported };

// An IoT Hub-style etag: base64 of `counter` as an 8-byte big-endian number ("AAAAAAAAAAc=" for
// 7), as the twin etag and the identity's deviceEtag look (PROTOCOLS.md A1).
[[nodiscard]] std::string counter_etag(std::int64_t counter);

// The section's size as IoT Hub counts it (A3): the sum over every property of its key length
// plus its value length, keys and strings counted in characters without control characters,
// a number as 8, a boolean as 4, an object as the sum of its contents. Arrays (undocumented)
// count as the sum of their elements; `$version` and `$metadata` do not count.
[[nodiscard]] std::size_t azure_section_size(const json::object& section);

// Checks a patch or a replacement for one section against the key, depth, string and integer
// rules; `path` prefixes the message ("properties.desired"). Nulls are allowed (they delete).
// Errors: azure_code::invalid_argument naming the offending path.
[[nodiscard]] result<void> validate_azure_section(const json::object& section, std::string_view path,
                                                  const azure_limits& limits = {});

// An If-Match header as IoT Hub reads it: a quoted entity tag, `"*"`, or (unquoted, as buggy
// SDKs send it) nothing at all (PROTOCOLS.md A11, C1.5).
struct if_match {
  enum class kind { absent, any, tag };
  kind what = kind::absent;
  std::string tag;  // the etag without quotes (and without a weak W/ prefix) when what == tag

  static if_match parse(std::string_view header);
};

// What a service write did to desired properties.
struct desired_change {
  std::int64_t desired_version = 0;  // desired $version after the write
  // The body to publish on $iothub/twin/PATCH/properties/desired/?$version=N to connected
  // devices: the applied patch plus "$version". Empty when the write did not touch desired.
  std::optional<json::object> notification;
};

class azure_twin {
 public:
  azure_twin(std::string device_id, time_point created, azure_limits limits = {});

  // --- service side (REST /twins/{id}) ---

  // PATCH: merges `body.tags` and `body.properties.desired` (null deletes). Identity fields in
  // the body are read-only and ignored; `properties.reported` is refused.
  // Errors: 412001 when `match` names another etag; 400004 for a bad body; 403100 when a
  // section would outgrow its limit. A rejected write changes nothing.
  [[nodiscard]] result<desired_change> service_patch(const json::value& body, const if_match& match,
                                                     time_point now);

  // PUT: replaces tags and desired with the body's (absent means empty).
  // The notification is the new desired document with a null for every key that the
  // replacement removed, at every level: a device that applies notifications as merge patches
  // (as every SDK does) ends with exactly the new document. Microsoft documents only that the
  // device gets "the same form" of update (PROTOCOLS.md D1); the whole new document alone would
  // leave removed keys behind in such a device, so the nulls are added.
  [[nodiscard]] result<desired_change> service_replace(const json::value& body, const if_match& match,
                                                       time_point now);

  // --- device side (MQTT $iothub/twin/...) ---

  // PATCH reported: merges `patch` into reported and returns the new reported $version.
  // `expected_version` is the conditional form (&$version=N): a mismatch gives 412001.
  [[nodiscard]] result<std::int64_t> patch_reported(const json::value& patch,
                                                    std::optional<std::int64_t> expected_version,
                                                    time_point now);

  // The device's GET view: {"desired":{…,"$version":n},"reported":{…,"$version":m}}, no tags, no
  // `properties` wrapper, no $metadata.
  [[nodiscard]] json::object device_view() const;

  // The service's view: the full twin with identity fields, tags and $metadata.
  [[nodiscard]] json::object to_json() const;

  // --- identity and connection state, kept in the twin as IoT Hub shows them ---
  void set_connected(bool connected, time_point now);
  void set_enabled(bool enabled, time_point now);
  void record_activity(time_point now) { last_activity_ = now; }
  void set_model_id(std::string model_id) { model_id_ = std::move(model_id); }
  // Moves desired $version on by `by` (negative undoes it) without a write: the hub's fault
  // injection skips version numbers with it (PROTOCOLS.md C1.3: only "strictly increasing" is
  // documented, and clients that assume +1 break).
  void advance_desired_version(std::int64_t by) noexcept { desired_version_ += by; }

  [[nodiscard]] const std::string& device_id() const noexcept { return device_id_; }
  [[nodiscard]] std::string etag() const;  // unquoted, e.g. AAAAAAAAAAc=
  [[nodiscard]] std::int64_t version() const noexcept { return version_; }
  [[nodiscard]] std::int64_t desired_version() const noexcept { return desired_version_; }
  [[nodiscard]] std::int64_t reported_version() const noexcept { return reported_version_; }
  [[nodiscard]] const json::object& tags() const noexcept { return tags_; }
  [[nodiscard]] const json::object& desired() const noexcept { return desired_; }
  [[nodiscard]] const json::object& reported() const noexcept { return reported_; }
  [[nodiscard]] const json::object& desired_metadata() const noexcept { return desired_meta_; }
  [[nodiscard]] const json::object& reported_metadata() const noexcept { return reported_meta_; }
  [[nodiscard]] bool connected() const noexcept { return connected_; }
  [[nodiscard]] bool enabled() const noexcept { return enabled_; }

  // --- persistence (persist.cpp) ---

  // Everything that defines the twin, for a state file: device id, the twin, desired and
  // reported versions (the etag follows from the twin version), tags, desired and reported
  // with their $metadata, status, connection state, status and activity times (ISO 8601, 100 ns
  // as IoT Hub shows them), model id. The limits are configuration, not state: not included.
  // Members: deviceId, version, desiredVersion, reportedVersion, tags, desired, reported,
  // desiredMetadata, reportedMetadata, enabled, connected, statusUpdateTime,
  // lastActivityTime, modelId.
  [[nodiscard]] json::object to_snapshot() const;

  // Rebuilds a twin from to_snapshot()'s object, checking every member: types, a valid device id,
  // versions >= 1 that fit together, documents that follow the key/depth/value rules of
  // `limits` and their sizes, $metadata that covers exactly the properties, valid times.
  // Errors: azure_code::invalid_argument, the message naming the bad member
  // ("desiredMetadata.a: ..."). Never throws on bad input.
  [[nodiscard]] static result<azure_twin> from_snapshot(const json::object& snapshot, azure_limits limits = {});

 private:
  [[nodiscard]] result<void> check_etag(const if_match& match) const;
  [[nodiscard]] result<void> check_size(const json::object& section, azure_section which) const;

  std::string device_id_;
  azure_limits limits_;
  std::int64_t version_ = 1;
  std::int64_t desired_version_ = 1;
  std::int64_t reported_version_ = 1;
  json::object tags_;
  json::object desired_;
  json::object reported_;
  json::object desired_meta_;
  json::object reported_meta_;
  // At least the size of reported_ (azure_section_size); unknown_size until first needed.
  // A merge adds at most the patch's size, so most patches skip measuring the section.
  static constexpr std::size_t unknown_size = static_cast<std::size_t>(-1);
  std::size_t reported_size_bound_ = unknown_size;
  bool connected_ = false;
  bool enabled_ = true;
  time_point status_updated_;
  time_point last_activity_;
  std::string model_id_;
};

}  // namespace twinfleet::twin
