// The local hub's brain: identities, the twin and shadow store, and both platforms' device and
// service dialects (PROTOCOLS.md A4-A11, B1-B9). Sans-I/O: device connections come in as
// `link`s, time as `now`, deadlines go out through next_deadline()/on_timer(); the MQTT and
// HTTP front ends and the timer that drive it live in hub.hpp.
//
// Not thread-safe: one hub_core lives on one executor, and every call comes from it.
#pragma once

#include <twinfleet/hub/faults.hpp>
#include <twinfleet/hub/link.hpp>
#include <twinfleet/hub/settings.hpp>
#include <twinfleet/twin/aws_shadow.hpp>
#include <twinfleet/twin/azure_twin.hpp>
#include <twinfleet/twin/error.hpp>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <iosfwd>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace twinfleet::auth {
struct sigv4_received_request;
}

namespace twinfleet::hub {

namespace json = boost::json;
using time_point = twin::time_point;

// How long a timer waits for hub_core's `next` deadline from `now`: rounded up to the
// microsecond, so that it never wakes before the deadline, and at most `longest`. Rounded down to
// the millisecond (as before stop 14), a deadline less than 1 ms away gave 0, and the timer woke,
// found nothing due and re-armed with 0 again until the deadline passed: up to a millisecond of
// busy CPU for every delayed delivery, 5 % of a core at 100 a second.
[[nodiscard]] inline std::chrono::microseconds timer_wait(std::optional<time_point> next, time_point now,
                                                          std::chrono::microseconds longest) {
  if (!next) return longest;
  return std::clamp(std::chrono::ceil<std::chrono::microseconds>(*next - now), std::chrono::microseconds(0), longest);
}

enum class dialect { azure, aws };

// A direct method's answer as the service sees it (A8): the device's status and payload.
struct method_response {
  int status = 0;
  json::value payload;
};
using method_callback = std::function<void(twin::result<method_response>)>;

// What throttling meters (faults.hpp throttle_settings), one token bucket each: per hub for
// Azure, per thing and per account for AWS shadows.
enum class throttle_class : std::uint8_t {
  azure_connects,
  azure_twin_reads,
  azure_twin_updates,
  azure_d2c,
  azure_methods,
  azure_registry,
  aws_shadow_per_thing,
  aws_shadow_account,
  aws_connects,
  aws_connection_deliveries,  // per AWS connection; never queued (the excess is dropped)
};
inline constexpr std::size_t throttle_class_count = 10;
[[nodiscard]] std::string_view to_string(throttle_class c) noexcept;

// Counters the metrics endpoint exports. Single-threaded, plain integers.
struct hub_counters {
  std::uint64_t connections_accepted = 0;
  std::uint64_t connections_refused = 0;
  std::uint64_t connections_taken_over = 0;
  std::uint64_t connections_closed_by_hub = 0;  // protocol violations, QoS 2 on Azure, expiry
  std::uint64_t azure_twin_gets = 0;
  std::uint64_t azure_reported_patches = 0;
  std::uint64_t azure_reported_rejected = 0;
  std::uint64_t azure_desired_notifications = 0;
  std::uint64_t azure_methods_invoked = 0;
  std::uint64_t azure_methods_failed = 0;
  std::uint64_t azure_telemetry = 0;
  std::uint64_t aws_updates = 0;
  std::uint64_t aws_rejected = 0;
  std::uint64_t aws_gets = 0;
  std::uint64_t aws_deletes = 0;
  std::uint64_t aws_deltas = 0;
  std::uint64_t aws_messages_routed = 0;
  std::uint64_t dropped_publishes = 0;  // reserved or unknown topics that were not served
  std::uint64_t rest_requests = 0;
  std::uint64_t rest_unauthorized = 0;

  // Fault injection (faults.hpp), by outbound_kind where it applies.
  std::array<std::uint64_t, outbound_kind_count> faults_dropped{};
  std::array<std::uint64_t, outbound_kind_count> faults_duplicated{};
  std::array<std::uint64_t, outbound_kind_count> faults_delayed{};
  std::array<std::uint64_t, outbound_kind_count> faults_reordered{};
  std::array<std::uint64_t, outbound_kind_count> faults_not_yet_subscribed{};  // activation delay
  std::uint64_t faults_accepted_delta_swapped = 0;
  std::uint64_t faults_desired_versions_skipped = 0;
  std::uint64_t faults_forced_disconnects = 0;
  std::uint64_t faults_azure_reported_reordered = 0;  // reported PATCHes held back
  std::uint64_t faults_aws_reported_reordered = 0;    // shadow /update requests held back
  std::uint64_t faults_takeovers_delayed = 0;         // replaced connections kept for takeover_grace

  // Throttling, by throttle_class: requests that waited in a queue, and those refused (429 or
  // CONNACK 3) because the queue was full.
  std::array<std::uint64_t, throttle_class_count> throttle_queued{};
  std::array<std::uint64_t, throttle_class_count> throttle_rejected{};
};

class hub_core {
 public:
  explicit hub_core(hub_settings settings);
  ~hub_core();
  hub_core(const hub_core&) = delete;
  hub_core& operator=(const hub_core&) = delete;

  // ---- device side: one call per MQTT event of a connection ----

  // Decides a CONNECT: which dialect, which identity, whether the credentials hold. A new
  // connection for an identity already connected closes the old one (A4, B9).
  [[nodiscard]] mqtt::connect_return_code on_connect(link& device, const mqtt::connect_packet& connect,
                                                     time_point now);
  // Per filter: granted QoS (QoS 2 granted as 1) or failure (0x80): Azure allows only its
  // documented filters, at most five; AWS allows any valid filter.
  // The keep-alive (seconds) the hub supervises an accepted connection with, from the one the
  // client asked for: AWS takes 30..1200 (below 30 is 30; 0 or above 1200 is 1200, B9); Azure
  // caps its 1.5x idle timeout at 1767 s, so at most 1177 (and 0, no keep-alive, is 1177, A4).
  [[nodiscard]] std::uint16_t supervised_keep_alive(const link& device, std::uint16_t requested) const;

  [[nodiscard]] std::vector<mqtt::suback_code> on_subscribe(link& device, std::span<const mqtt::subscription> filters,
                                                            time_point now);
  void on_unsubscribe(link& device, std::span<const std::string_view> filters);
  // Serves one PUBLISH: twin GET/PATCH, method responses, telemetry (Azure); shadow
  // get/update/delete and ordinary pub/sub (AWS). May answer on `device`, notify other
  // connections, or close `device` where the platform would.
  void on_publish(link& device, const mqtt::publish_packet& publish, time_point now);
  // The connection is gone (closed by either side or lost).
  void on_disconnect(link& device, time_point now);

  // ---- timers: method timeouts, SAS expiry ----
  // The earliest deadline; call on_timer at or after it (timer_wait says how long to wait).
  [[nodiscard]] std::optional<time_point> next_deadline() const;
  void on_timer(time_point now);
  // Ends every pending direct method call now, as its timeout would (504101): for a hub that
  // stops, whose devices will not answer any more.
  void expire_methods();

  // ---- service side: authorization ----

  // Azure: an `Authorization: SharedAccessSignature …` policy token (skn) whose policy grants
  // `needed`, for a resource covering `{host}/devices/{device_id}` (or the hub).
  // Errors: 401003 with a message.
  [[nodiscard]] twin::result<void> authorize_azure(std::string_view authorization, std::string_view device_id,
                                                   permission needed, time_point now);
  // AWS: SigV4 (header or presigned) with one of the configured access keys.
  // Errors: 403 "Forbidden" family with AWS's wording.
  [[nodiscard]] twin::result<void> authorize_aws(const auth::sigv4_received_request& request, time_point now);

  // ---- service side: Azure twins (A11) and methods (A8) ----

  // The full twin. Errors: 404001 DeviceNotFound.
  [[nodiscard]] twin::result<json::object> azure_get_twin(std::string_view device_id) const;
  // PATCH (replace = false) or PUT (replace = true) of tags and desired; notifies the device
  // when it is connected and subscribed. Returns the updated twin.
  [[nodiscard]] twin::result<json::object> azure_update_twin(std::string_view device_id, const json::value& body,
                                                             const twin::if_match& match, bool replace,
                                                             time_point now);
  // POST /twins/{id}/methods with the A8 body. `done` is called exactly once: with the
  // device's answer, 404103 when the device is not connected and subscribed, 504101 when it
  // does not answer within responseTimeoutInSeconds, or 400004 for a bad body.
  void azure_invoke_method(std::string_view device_id, const json::value& body, time_point now, method_callback done);

  // ---- service side: Azure identity registry ----

  // PUT /devices/{id}: creates or updates {deviceId, status, authentication{type,
  // symmetricKey{primaryKey, secondaryKey}, x509Thumbprint{…}}}; keys are generated when
  // absent. Returns the device identity as IoT Hub shows it.
  // Errors: 400004 bad body or id, 409001 when `create_only` and it exists, 412001 etag.
  [[nodiscard]] twin::result<json::object> azure_put_device(std::string_view device_id, const json::value& body,
                                                            const twin::if_match& match, time_point now);
  [[nodiscard]] twin::result<json::object> azure_get_device(std::string_view device_id) const;
  // Errors: 404001, 412001.
  [[nodiscard]] twin::result<void> azure_delete_device(std::string_view device_id, const twin::if_match& match,
                                                       time_point now);
  [[nodiscard]] json::array azure_list_devices(std::size_t max) const;

  // ---- service side: AWS shadows (B8); every accepted update also reaches MQTT subscribers ----

  // Errors: the AWS codes and messages of twin::aws_shadow (404 when missing).
  [[nodiscard]] twin::result<json::object> aws_get_shadow(std::string_view thing, std::string_view shadow,
                                                          time_point now);
  [[nodiscard]] twin::result<json::object> aws_update_shadow(std::string_view thing, std::string_view shadow,
                                                             std::string_view payload, time_point now);
  [[nodiscard]] twin::result<json::object> aws_delete_shadow(std::string_view thing, std::string_view shadow,
                                                             time_point now);
  // ListNamedShadowsForThing: {"results":[…],"nextToken":…,"timestamp":T}; unknown things give
  // an empty list; the classic shadow is not listed.
  [[nodiscard]] json::object aws_list_named_shadows(std::string_view thing, std::string_view next_token,
                                                    std::size_t page_size, time_point now) const;

  // HTTPS publish (B8: POST /topics/{topic}?qos=): a shadow request topic is served as if a
  // device had published it (its answers go to MQTT subscribers); any other topic is routed
  // to subscribers. Errors: 400 for a topic that is not a valid topic name or another
  // reserved ($) topic, or a QoS above 1.
  [[nodiscard]] twin::result<void> aws_publish(std::string_view topic, std::string_view payload, mqtt::qos qos,
                                               time_point now);

  // ---- fault injection and throttling (faults.hpp; PROTOCOLS.md C3, A14, B7) ----

  // Replaces the fault settings: the generator restarts from their seed and the disconnect
  // schedule counts from `now`. hub_settings::faults are applied at construction.
  void set_faults(fault_settings faults, time_point now);
  [[nodiscard]] const fault_settings& faults() const noexcept;
  // Replaces the throttle settings; requests already queued keep their place.
  void set_throttle(throttle_settings throttle);
  [[nodiscard]] const throttle_settings& throttle() const noexcept;
  // Closes `fraction` (0..1) of the device connections of `backend` (both when nullopt),
  // chosen with the fault generator; counted as forced disconnects. Returns how many.
  std::size_t force_disconnect(double fraction, std::optional<dialect> backend);
  // Closes the connection of one Azure device id or AWS client id; false when none.
  bool force_disconnect(std::string_view id);
  // Admission through the `c` bucket keyed by `key` (a thing name, or empty for per-hub
  // limits) at `cost` tokens: `run` is called at once or, queued, from on_timer with the time
  // the request left the queue; `reject` is called at once when the queue is full. Without a
  // limit for `c`, `run(now)` at once.
  void throttle_admit(throttle_class c, std::string_view key, double cost, time_point now,
                      std::function<void(time_point)> run, std::function<void()> reject);
  [[nodiscard]] std::size_t throttle_queue_depth(throttle_class c) const noexcept;
  // Called whenever a deadline is added that may be earlier than the one next_deadline()
  // gave before (a delayed delivery, a queued request), so the I/O shell can re-arm its timer.
  void set_wakeup(std::function<void(time_point)> wakeup);

  // ---- introspection ----

  // The counters and gauges in Prometheus's text exposition format (version 0.0.4), names
  // prefixed twinfleet_hub_, labels backend, operation and outcome only.
  [[nodiscard]] std::string metrics_text() const;

  [[nodiscard]] const hub_settings& settings() const noexcept;
  [[nodiscard]] const hub_counters& counters() const noexcept;
  [[nodiscard]] hub_counters& counters() noexcept;
  [[nodiscard]] std::size_t connected_devices() const noexcept;
  [[nodiscard]] std::size_t twin_count() const noexcept;
  [[nodiscard]] std::size_t shadow_count() const noexcept;

  // Derives an Azure device's key from the group key (A9 group enrollment).
  [[nodiscard]] std::string device_key_for(std::string_view device_id) const;

  // ---- the state file (core_persist.cpp; the format is in docs/HUB.md, "State file") ----

  // Writes every Azure identity (keys, thumbprints, status, etag counter, creation time) with
  // its twin, and every AWS thing with its classic and named shadows (deleted ones too: their
  // version continues, B5), one JSON line per record, sorted. Not connections, subscriptions,
  // pending methods or counters. Streams: memory stays at one record, whatever the store size.
  void save_state(std::ostream& out, time_point now) const;
  // Replaces the identities and things with what `in` holds, after checking all of it: a bad
  // file changes nothing. Twins come back Disconnected. Only before any device connects.
  // Errors: code 0, the message naming the line and the member ("line 3: device 'd1':
  // twin.desired.a: ..."), a truncated file (fewer records than the header announces), a
  // format version other than 1, or connections already open.
  [[nodiscard]] twin::result<void> load_state(std::istream& in);

  // The implementation's state: opaque here, shared by the dialect sources.
  struct state;

 private:
  std::unique_ptr<state> state_;
};

// save_state() into `file` atomically: a temporary file beside it (mode 0600: it holds device
// keys) is written, synced and renamed over it. Errors: code 0, the message naming the file.
[[nodiscard]] twin::result<void> save_state_file(const hub_core& core, const std::filesystem::path& file,
                                                 time_point now);
// load_state() from `file`. Errors: code 0, the message naming the file, then load_state()'s.
[[nodiscard]] twin::result<void> load_state_file(hub_core& core, const std::filesystem::path& file);

}  // namespace twinfleet::hub
