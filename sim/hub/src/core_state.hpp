// hub_core's internal state, shared by core.cpp (connections, timers, registry), core_azure.cpp
// and core_aws.cpp (the two dialects). Not a public header.
#pragma once

#include <twinfleet/auth/sigv4.hpp>
#include <twinfleet/hub/core.hpp>
#include <twinfleet/mqtt/subscription_tree.hpp>

#include <array>
#include <deque>
#include <functional>
#include <map>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

namespace twinfleet::hub {

// Hash and equality that let maps keyed by std::string be searched with a string_view.
struct string_hash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};
template <class T>
using string_map = std::unordered_map<std::string, T, string_hash, std::equal_to<>>;

enum class azure_auth_type { sas, self_signed, certificate_authority };

// The registry's name for each ("sas", "selfSigned", "certificateAuthority"), as IoT Hub
// shows it and as the state file keeps it.
inline std::string_view auth_type_name(azure_auth_type t) {
  switch (t) {
    case azure_auth_type::self_signed: return "selfSigned";
    case azure_auth_type::certificate_authority: return "certificateAuthority";
    default: return "sas";
  }
}

struct azure_device {
  azure_device(std::string id, time_point now, const twin::azure_limits& limits)
      : device_id(id), twin(std::move(id), now, limits), created(now) {}

  std::string device_id;
  azure_auth_type auth_type = azure_auth_type::sas;
  std::string primary_key;
  std::string secondary_key;
  std::string primary_thumbprint;
  std::string secondary_thumbprint;
  bool enabled = true;
  std::int64_t identity_version = 1;  // deviceEtag counter
  twin::azure_twin twin;
  time_point created;
  link* connection = nullptr;  // the device's current connection, if any
};

struct aws_thing {
  std::map<std::string, twin::aws_shadow, std::less<>> shadows;  // "" is the classic shadow
};

// A token bucket without a queue: what is over the rate is dropped (a plain pair, as every
// connection holds one).
struct token_bucket {
  double tokens = 0;
  time_point updated{};
};

// What the hub knows about one device connection.
struct connection_state {
  dialect kind = dialect::azure;
  std::string identity;  // Azure device id, or the AWS thing the certificate names
  std::string client_id;
  bool aws_admin = false;  // may act for every thing (back ends, open auth)
  // Azure: which documented filters the device subscribed, and at which QoS.
  std::optional<mqtt::qos> twin_responses;
  std::optional<mqtt::qos> desired_updates;
  std::optional<mqtt::qos> method_requests;
  std::optional<mqtt::qos> cloud_to_device;
  // AWS: the filters this connection holds, to route to and to remove on disconnect.
  std::vector<std::pair<std::string, mqtt::qos>> filters;
  std::optional<std::multimap<time_point, link*>::iterator> expiry;  // SAS `se`
  std::uint64_t serial = 0;  // tells this connection from a later one at the same address
  // Fault: when each Azure subscription starts delivering (subscription activation delay),
  // indexed by outbound_kind (twin responses, desired patches, method requests).
  std::array<time_point, 3> azure_active_from{};
  // Azure: the device's record, while this connection is the device's connection
  // (azure_device::connection); null once it is not (taken over, the identity deleted), when
  // the device is searched by `identity` instead.
  azure_device* device = nullptr;
  // Throttling (aws_connection_deliveries): the messages this AWS connection may still be sent.
  token_bucket deliveries;
};

struct pending_method {
  std::string device_id;
  method_callback done;
  std::multimap<time_point, std::string>::iterator deadline;
};

// One subscriber of a topic.
struct subscriber {
  link* connection;
  mqtt::qos qos;
  time_point active_from{};  // fault: the subscription activation delay
};

// A message whose delivery a fault delays.
struct delayed_send {
  link* connection;
  std::uint64_t serial;
  std::string topic;
  std::string payload;
  mqtt::qos qos;
};

// One throttle bucket and the requests waiting for its tokens.
struct throttle_waiting {
  double cost;
  std::function<void(time_point)> run;
};
struct throttle_bucket {
  double tokens = 0;
  time_point updated{};
  bool scheduled = false;  // an entry in throttle_due points here
  std::deque<throttle_waiting> queue;
};

struct hub_core::state {
  explicit state(hub_settings s) : settings(std::move(s)) {}

  hub_settings settings;
  hub_counters counters;
  string_map<azure_device> azure_devices;
  string_map<aws_thing> aws_things;
  // The records' addresses stay put (node-based): each link points at its own (core_state).
  std::unordered_map<link*, connection_state> connections;
  string_map<link*> aws_clients;  // client id → connection, for takeover

  // AWS routing: exact filters by topic, wildcard filters in a tree of levels (a scan of them
  // cost each message one match per AWS thing subscribed to its commands).
  string_map<std::vector<subscriber>> exact_subscriptions;
  mqtt::subscription_tree<subscriber> wildcard_subscriptions;

  // Direct methods waiting for the device, by request id, and their deadlines.
  string_map<pending_method> methods;
  std::multimap<time_point, std::string> method_deadlines;
  std::uint64_t next_request_id = 1;
  // Connections to close when their SAS token expires.
  std::multimap<time_point, link*> expiries;

  // ---- faults and throttling (core_faults.cpp) ----
  time_point clock{};  // the latest `now` any entry point was given
  std::uint64_t next_serial = 1;
  std::mt19937_64 rng{1};
  time_point faults_since{};
  std::size_t next_scheduled_disconnect = 0;
  time_point next_random_disconnect = time_point::max();
  std::multimap<time_point, delayed_send> delayed;
  std::array<string_map<throttle_bucket>, throttle_class_count> buckets;
  std::multimap<time_point, std::pair<throttle_class, std::string>> throttle_due;
  // Fault: device reported writes held back (reported_reorder), each served when due.
  std::multimap<time_point, std::function<void(time_point)>> held_requests;
  // Fault: connections taken over but still served (takeover_grace), with their serial, each
  // closed when due if it still stands.
  std::multimap<time_point, std::pair<link*, std::uint64_t>> taken_over;
  std::array<std::size_t, throttle_class_count> queue_depth{};
  std::function<void(time_point)> wakeup;

  // Sends to a device through the fault layer: activation delay, drop, duplicate, delay,
  // reorder. Without faults, straight to the link.
  void send(link& connection, std::string_view topic, std::string_view payload, mqtt::qos qos);
  // Throttling of what one AWS connection is sent (aws_connection_deliveries): false, and
  // counted, when its bucket has no token now.
  [[nodiscard]] bool admit_delivery(link& connection);
  [[nodiscard]] bool chance(double p);
  // Faults that change what the dialects do.
  [[nodiscard]] bool swap_accepted_delta();
  [[nodiscard]] std::int64_t desired_versions_to_skip();
  // Throttling of connects: false (and counted) when the bucket has no token now; no queue.
  [[nodiscard]] bool admit_connect(throttle_class c, std::string_view key, time_point now);
  // A connection another one took over (C1.8): closed at once, or with the takeover_grace
  // fault after that grace, served meanwhile. The caller has already moved the identity on.
  void close_taken_over(link& old, time_point now);
  void throttle_admit(throttle_class c, std::string_view key, double cost, time_point now,
                      std::function<void(time_point)> run, std::function<void()> reject);
  // Every entry point with a `now` calls this first: the clock faults schedule from.
  void tick(time_point now);
  void wake(time_point at) const {
    if (wakeup) wakeup(at);
  }

  // ---- helpers shared by the dialects (core.cpp) ----
  // The record of a connection the hub accepted, new (CONNECT) and pointed to by the link.
  connection_state& add_connection(link& device);
  // An Azure connection's device: the record it holds, else by identity; null once deleted.
  azure_device* device_of(connection_state& cs) { return cs.device != nullptr ? cs.device : find_device(cs.identity); }
  azure_device* find_device(std::string_view id);
  azure_device& create_device(std::string_view id, time_point now);  // with the group-derived key
  void route(std::string_view topic, std::string_view payload, mqtt::qos published_qos);
  void add_subscription(link& connection, connection_state& cs, std::string_view filter, mqtt::qos qos);
  void remove_subscription(link& connection, connection_state& cs, std::string_view filter);
  void close_by_hub(link& connection);
  // SigV4 options that look secrets up among settings.aws_keys.
  auth::sigv4_verify_options sigv4_options() const;
};

// The dialects (core_azure.cpp, core_aws.cpp).
mqtt::connect_return_code azure_connect(hub_core::state& st, link& device, const mqtt::connect_packet& connect,
                                        time_point now);
std::vector<mqtt::suback_code> azure_subscribe(hub_core::state& st, link& device, connection_state& cs,
                                               std::span<const mqtt::subscription> filters);
void azure_device_publish(hub_core::state& st, link& device, connection_state& cs, const mqtt::publish_packet& publish,
                   time_point now);

mqtt::connect_return_code aws_connect(hub_core::state& st, link& device, const mqtt::connect_packet& connect,
                                      time_point now);
std::vector<mqtt::suback_code> aws_subscribe(hub_core::state& st, link& device, connection_state& cs,
                                             std::span<const mqtt::subscription> filters);
void aws_device_publish(hub_core::state& st, link& device, connection_state& cs, const mqtt::publish_packet& publish,
                 time_point now);

// A device PUBLISH served at once (dispatch), or first through the reported_reorder fault and
// the throttle (core_faults.cpp).
void dispatch_device_publish(hub_core::state& st, link& device, connection_state& cs,
                             const mqtt::publish_packet& publish, time_point now);
void throttled_device_publish(hub_core::state& st, link& device, connection_state& cs,
                              const mqtt::publish_packet& publish, time_point now);

// Faults and throttling (core_faults.cpp): their share of next_deadline() and on_timer().
std::optional<time_point> faults_deadline(const hub_core::state& st);
void faults_on_timer(hub_core::state& st, time_point now);
std::size_t disconnect_random(hub_core::state& st, std::optional<std::size_t> count, double fraction,
                              std::optional<dialect> backend);

// Does this CONNECT speak Azure's dialect? Its username is `{host}/{clientId}/?api-version=…`.
bool is_azure_connect(const mqtt::connect_packet& connect);

}  // namespace twinfleet::hub
