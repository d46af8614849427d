// The device profile model: one platform-neutral description of a kind of device, bound to
// Azure IoT Hub or AWS IoT at run time. Plain data, loaded from YAML by sim/scenario
// (profile_loader.hpp) and documented key by key in docs/PROFILES.md. A loaded profile is
// immutable and shared by every device of its kind (std::shared_ptr<const profile>).
#pragma once

#include <twinfleet/device/distribution.hpp>
#include <twinfleet/device/generator.hpp>
#include <twinfleet/device/template.hpp>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace twinfleet::device {

// ---- identity ---------------------------------------------------------------------------

struct azure_identity {
  // Twin tags; string leaves are label templates ({index}, {id}, {profile}, {choice:a,b}).
  boost::json::object tags;
  std::string model_id;  // IoT Plug and Play model id (DTMI) sent at connect; "" for none
};

struct aws_identity {
  std::string thing_type;  // "" for none
  std::vector<std::pair<std::string, string_template>> attributes;
  // Thing groups, each as its path from the root group: {"building-43", "floor-1"} means
  // group floor-1 inside building-43 (AWS groups nest).
  std::vector<std::vector<std::string>> groups;
};

struct identity_spec {
  string_template id;  // an id pattern: `bulb-{index:05}`
  azure_identity azure;
  aws_identity aws;
};

// ---- properties -------------------------------------------------------------------------

enum class value_type : std::uint8_t { boolean, integer, number, string, object };
[[nodiscard]] const char* to_string(value_type t) noexcept;

// What values a writable property accepts. For objects, `fields` lists the members (each with
// its `name`); members not listed are refused.
struct property_schema {
  std::string name;  // the member name when this schema is an object field
  value_type type = value_type::number;
  std::optional<double> min;  // integer, number
  std::optional<double> max;
  std::vector<boost::json::value> allowed;  // when not empty, the value must be one of these
  std::optional<std::size_t> max_length;   // string
  // integer/number properties that are durations: one unit of the value is this long
  // ("interval: 2000" with unit ms). Telemetry can take its interval from such a property.
  std::optional<duration> unit;
  std::vector<property_schema> fields;  // object
};

// A writable (desired) property: the back end writes it, the device validates it, applies it
// after `apply_after`, and acknowledges it (Azure: the IoT Plug and Play {value, ac, av, ad}
// reported under the same name; AWS: the reported mirror that clears the delta).
struct writable_property {
  std::string name;
  property_schema schema;
  boost::json::value initial;  // in force before any desired write; null for none
  duration_distribution apply_after;
  bool ack = true;  // false: the device applies silently (reproduces never-acknowledging devices)
};

enum class report_trigger : std::uint8_t {
  interval,    // every `every`
  on_connect,  // once after each (re)connection
  on_change,   // whenever the generated value differs from the last one reported
};

// A read-only reported property and where its values come from.
struct reported_property {
  std::string name;
  generator_spec generator;
  report_trigger trigger = report_trigger::interval;
  duration_distribution every = duration_distribution::constant(std::chrono::seconds(60));
};

// ---- side effects and commands -----------------------------------------------------------

// Sets a property the device owns (a reported property, or a writable property's value in
// force) and reports it.
struct set_effect {
  std::string property;
  boost::json::value value;
};
// Disconnects, stays away for `after`, reconnects (a reboot).
struct reboot_effect {
  duration_distribution after = duration_distribution::constant(std::chrono::seconds(5));
};
// Sets boolean `property` true for `on_time`, then false, `count` times (an LED).
struct blink_effect {
  std::string property;
  int count = 1;
  duration on_time = std::chrono::milliseconds(500);
};
// Starts or stops every telemetry message (the Raspberry Pi's start/stop methods).
struct telemetry_effect {
  bool enable = true;
};
using effect = std::variant<set_effect, reboot_effect, blink_effect, telemetry_effect>;

// A command: an Azure direct method; on AWS, the request arrives on
// `twinfleet/things/{thing}/commands/{name}` and the response goes to the same topic with
// `/response` appended (docs/PROFILES.md describes the convention).
struct command {
  std::string name;
  duration_distribution latency;
  int status = 200;
  boost::json::value response;  // a JSON template: {request}, {request.key}, {id}, … (template.hpp)
  std::vector<effect> effects;  // applied after the response
};

// ---- telemetry --------------------------------------------------------------------------

// A telemetry field: a generator of its own, or the current value of a property.
struct telemetry_field {
  enum class source : std::uint8_t { generator, reported, desired };
  std::string name;
  source from = source::generator;
  generator_spec generator;  // source::generator
  std::string property;      // source::reported / desired
};

// One kind of telemetry message and how often it is sent.
struct telemetry_message {
  std::string name;
  duration_distribution every = duration_distribution::constant(std::chrono::seconds(10));
  // When set, the interval is this writable property's value times its unit (a desired send
  // interval); `every` applies until the property has a value.
  std::optional<std::string> every_from;
  std::vector<telemetry_field> fields;
  std::string content_type = "application/json";  // Azure $.ct
  std::string content_encoding = "utf-8";          // Azure $.ce
  std::vector<std::pair<std::string, string_template>> properties;  // Azure application properties
  string_template aws_topic;  // topic_placeholders; default "twinfleet/{profile}/{id}/{message}"
  std::vector<effect> on_send;  // e.g. blink the LED on each send
  bool enabled = true;          // sending from the start (a stop/start command toggles it)
};

// ---- lifecycle and quirks ----------------------------------------------------------------

struct lifecycle_spec {
  duration keep_alive = std::chrono::seconds(60);
  backoff reconnect;
  duration sas_token_lifetime = std::chrono::hours(1);
  double sas_renew_at = 0.8;  // renew when this fraction of the lifetime has passed
  // Random disconnects by the device's own network, per second (a Poisson rate); 0: none.
  double flaky_disconnects_per_second = 0;
  duration connect_timeout = std::chrono::seconds(30);
};

// Deliberate client bugs, each off by default, to reproduce desired/reported sync races.
struct quirk_set {
  bool get_before_subscribe = false;       // GET the twin before subscribing to desired updates
  bool no_reconcile_on_reconnect = false;  // after a reconnect, no GET: desired writes meanwhile are lost
  bool ignore_desired_version = false;     // apply desired patches even when stale
  bool shared_version_counter = false;     // AWS SDK bug: a delta is dropped as stale when
                                           // update/accepted of the same version came first
  bool no_wait_between_reported = false;   // send reported patches back to back, not after each ack
  bool duplicate_connection = false;       // a second client runs with the same id and credentials
                                           // (a simulator that connects twice, C1.8): each
                                           // connection takes the other's over. The engine
                                           // runs the second client; the device code ignores it.
  bool no_resync_on_gap = false;           // Azure: no GET on a desired $version gap (C1.3), so a
                                           // notification overtaken by a newer one of another
                                           // property is dropped as stale and its values lost
  bool no_get_retry = false;               // AWS: a /get left unanswered (C2.4) is not asked again;
                                           // the device waits its whole request timeout

  [[nodiscard]] bool any() const noexcept;
  friend bool operator==(const quirk_set&, const quirk_set&) = default;
};

// ---- the profile ------------------------------------------------------------------------

struct profile {
  std::string name;         // "lightbulb"
  std::string description;
  std::string source;       // the file it was loaded from, for messages
  identity_spec identity;
  std::vector<reported_property> reported;
  std::vector<writable_property> desired;
  std::vector<command> commands;
  std::vector<telemetry_message> telemetry;
  lifecycle_spec lifecycle;
  quirk_set quirks;

  [[nodiscard]] const writable_property* find_desired(std::string_view name) const noexcept;
  [[nodiscard]] const reported_property* find_reported(std::string_view name) const noexcept;
  [[nodiscard]] const command* find_command(std::string_view name) const noexcept;
  [[nodiscard]] const telemetry_message* find_telemetry(std::string_view name) const noexcept;

  // The device id of device `index` of this profile (identity.id expanded).
  [[nodiscard]] std::string device_id(std::uint64_t index) const;
  // The desired values in force at start: every writable property with a non-null initial.
  [[nodiscard]] boost::json::object initial_desired() const;
};

}  // namespace twinfleet::device
