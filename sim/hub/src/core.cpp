// hub_core: connections, routing, timers, service authorization and the identity registry.
// The two device dialects live in core_azure.cpp and core_aws.cpp.
#include "core_state.hpp"

#include <twinfleet/auth/sas.hpp>
#include <twinfleet/auth/sigv4.hpp>
#include <twinfleet/mqtt/topic.hpp>
#include <twinfleet/twin/names.hpp>

#include <algorithm>

namespace twinfleet::hub {

namespace {

twin::error azure_error(int code, std::string message) { return twin::error{code, std::move(message)}; }

json::object identity_json(const azure_device& d) {
  json::object out;
  out["deviceId"] = d.device_id;
  out["generationId"] = std::to_string(std::chrono::duration_cast<std::chrono::microseconds>(
                                            d.created.time_since_epoch()).count());
  out["etag"] = twin::counter_etag(d.identity_version);
  out["connectionState"] = d.connection != nullptr ? "Connected" : "Disconnected";
  out["status"] = d.enabled ? "enabled" : "disabled";
  out["statusReason"] = nullptr;
  out["connectionStateUpdatedTime"] = twin::format_iso8601(d.created);
  out["statusUpdatedTime"] = twin::format_iso8601(d.created);
  out["lastActivityTime"] = d.twin.to_json().at("lastActivityTime");
  out["cloudToDeviceMessageCount"] = 0;
  json::object auth;
  auth["type"] = auth_type_name(d.auth_type);
  auth["symmetricKey"] = json::object{{"primaryKey", d.primary_key}, {"secondaryKey", d.secondary_key}};
  auth["x509Thumbprint"] = json::object{
      {"primaryThumbprint", d.primary_thumbprint.empty() ? json::value(nullptr) : json::value(d.primary_thumbprint)},
      {"secondaryThumbprint",
       d.secondary_thumbprint.empty() ? json::value(nullptr) : json::value(d.secondary_thumbprint)}};
  out["authentication"] = std::move(auth);
  out["capabilities"] = json::object{{"iotEdge", false}};
  return out;
}

// A string member of `o`, or empty when absent or null; `ok` false when present and not a string.
std::string string_member(const json::object& o, std::string_view key, bool& ok) {
  const auto* v = o.if_contains(key);
  if (v == nullptr || v->is_null()) return {};
  if (!v->is_string()) {
    ok = false;
    return {};
  }
  return std::string(v->get_string());
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// state helpers

azure_device* hub_core::state::find_device(std::string_view id) {
  auto it = azure_devices.find(id);
  return it == azure_devices.end() ? nullptr : &it->second;
}

connection_state& hub_core::state::add_connection(link& device) {
  auto& cs = connections[&device];
  cs = connection_state{};
  device.core_state = &cs;
  return cs;
}

azure_device& hub_core::state::create_device(std::string_view id, time_point now) {
  auto [it, inserted] = azure_devices.try_emplace(std::string(id), std::string(id), now, settings.azure_limits);
  if (inserted && !settings.group_key.empty()) {
    auto key = auth::derive_device_key(settings.group_key, id);
    if (key) {
      it->second.primary_key = *key;
      it->second.secondary_key = *key;
    }
  }
  return it->second;
}

void hub_core::state::route(std::string_view topic, std::string_view payload, mqtt::qos published_qos) {
  // Deliver once per connection at the highest QoS its matching filters grant, capped by the
  // QoS the message was published with (MQTT 3.1.1 4.3).
  std::vector<subscriber> targets;
  auto add = [&](const subscriber& s) {
    for (auto& t : targets) {
      if (t.connection == s.connection) {
        t.qos = std::max(t.qos, s.qos);
        return;
      }
    }
    targets.push_back(s);
  };
  // A subscription still inside its activation delay (a fault) does not deliver yet.
  auto consider = [&](const subscriber& s) {
    if (s.active_from > clock) {
      ++counters.faults_not_yet_subscribed[static_cast<std::size_t>(classify_outbound(topic))];
      return;
    }
    add(s);
  };
  if (auto it = exact_subscriptions.find(topic); it != exact_subscriptions.end()) {
    for (const auto& s : it->second) consider(s);
  }
  wildcard_subscriptions.match(topic, [&](const subscriber& s) { consider(s); });
  for (const auto& t : targets) {
    send(*t.connection, topic, payload, std::min(t.qos, published_qos));
    ++counters.aws_messages_routed;
  }
}

void hub_core::state::add_subscription(link& connection, connection_state& cs, std::string_view filter,
                                       mqtt::qos qos) {
  remove_subscription(connection, cs, filter);  // a repeated SUBSCRIBE replaces it (MQTT 3.1.1 3.8.4)
  cs.filters.emplace_back(std::string(filter), qos);
  if (mqtt::has_wildcard(filter)) {
    wildcard_subscriptions.insert(filter, subscriber{&connection, qos});
  } else {
    exact_subscriptions[std::string(filter)].push_back(subscriber{&connection, qos});
  }
}

void hub_core::state::remove_subscription(link& connection, connection_state& cs, std::string_view filter) {
  std::erase_if(cs.filters, [&](const auto& p) { return p.first == filter; });
  if (auto it = exact_subscriptions.find(filter); it != exact_subscriptions.end()) {
    std::erase_if(it->second, [&](const subscriber& s) { return s.connection == &connection; });
    if (it->second.empty()) exact_subscriptions.erase(it);
  }
  if (mqtt::has_wildcard(filter)) {
    wildcard_subscriptions.erase_if(filter, [&](const subscriber& s) { return s.connection == &connection; });
  }
}

auth::sigv4_verify_options hub_core::state::sigv4_options() const {
  auth::sigv4_verify_options options;
  options.lookup_secret = [this](std::string_view id) -> std::optional<std::string> {
    for (const auto& key : settings.aws_keys) {
      if (key.access_key_id == id) return key.secret_access_key;
    }
    return std::nullopt;
  };
  return options;
}

void hub_core::state::close_by_hub(link& connection) {
  ++counters.connections_closed_by_hub;
  connection.close();
}

// ---------------------------------------------------------------------------------------------

hub_core::hub_core(hub_settings settings) : state_(std::make_unique<state>(std::move(settings))) {
  if (state_->settings.policies.empty()) state_->settings.policies = default_policies();
  if (state_->settings.group_key.empty()) state_->settings.group_key = random_key();
  state_->rng.seed(state_->settings.faults.seed);
}

void hub_core::state::tick(time_point now) {
  if (clock == time_point{} && settings.faults.any()) {
    // The configured faults start with the first event the hub sees.
    faults_since = now;
    if (settings.faults.disconnects_per_second > 0) {
      next_random_disconnect = now + std::chrono::duration_cast<time_point::duration>(std::chrono::duration<double>(
                                         std::exponential_distribution<double>(settings.faults.disconnects_per_second)(rng)));
    }
  }
  clock = std::max(clock, now);
}

hub_core::~hub_core() = default;

const hub_settings& hub_core::settings() const noexcept { return state_->settings; }
const hub_counters& hub_core::counters() const noexcept { return state_->counters; }
hub_counters& hub_core::counters() noexcept { return state_->counters; }
std::size_t hub_core::connected_devices() const noexcept { return state_->connections.size(); }
std::size_t hub_core::twin_count() const noexcept { return state_->azure_devices.size(); }

std::size_t hub_core::shadow_count() const noexcept {
  std::size_t n = 0;
  for (const auto& [name, thing] : state_->aws_things) n += thing.shadows.size();
  return n;
}

std::string hub_core::metrics_text() const {
  const auto& c = state_->counters;
  std::string out;
  auto family = [&](std::string_view name, std::string_view type, std::string_view help) {
    out += "# HELP twinfleet_hub_" + std::string(name) + " " + std::string(help) + "\n";
    out += "# TYPE twinfleet_hub_" + std::string(name) + " " + std::string(type) + "\n";
  };
  auto sample = [&](std::string_view name, std::string_view labels, std::uint64_t value) {
    out += "twinfleet_hub_" + std::string(name);
    if (!labels.empty()) out += "{" + std::string(labels) + "}";
    out += " " + std::to_string(value) + "\n";
  };
  family("connections_total", "counter", "MQTT CONNECTs decided by the hub, by outcome.");
  sample("connections_total", R"(outcome="accepted")", c.connections_accepted);
  sample("connections_total", R"(outcome="refused")", c.connections_refused);
  family("disconnects_total", "counter", "Connections the hub ended, by reason.");
  sample("disconnects_total", R"(outcome="taken_over")", c.connections_taken_over);
  sample("disconnects_total", R"(outcome="closed_by_hub")", c.connections_closed_by_hub);
  family("operations_total", "counter", "Device and service operations served, by backend, operation and outcome.");
  const auto op_family = [&](std::string_view name, std::string_view backend, std::string_view operation,
                             std::string_view outcome, std::uint64_t v) {
    sample(name,
           "backend=\"" + std::string(backend) + "\",operation=\"" + std::string(operation) + "\",outcome=\"" +
               std::string(outcome) + "\"",
           v);
  };
  const auto op = [&](std::string_view backend, std::string_view operation, std::string_view outcome, std::uint64_t v) {
    op_family("operations_total", backend, operation, outcome, v);
  };
  op("azure", "twin_get", "ok", c.azure_twin_gets);
  op("azure", "reported_patch", "ok", c.azure_reported_patches - c.azure_reported_rejected);
  op("azure", "reported_patch", "error", c.azure_reported_rejected);
  op("azure", "desired_notification", "ok", c.azure_desired_notifications);
  op("azure", "method", "ok", c.azure_methods_invoked - c.azure_methods_failed);
  op("azure", "method", "error", c.azure_methods_failed);
  op("azure", "telemetry", "ok", c.azure_telemetry);
  op("aws", "shadow_update", "ok", c.aws_updates);
  op("aws", "shadow_get", "ok", c.aws_gets);
  op("aws", "shadow_delete", "ok", c.aws_deletes);
  op("aws", "shadow_request", "rejected", c.aws_rejected);
  op("aws", "shadow_delta", "ok", c.aws_deltas);
  op("aws", "message_routed", "ok", c.aws_messages_routed);
  family("publishes_dropped_total", "counter", "Device publishes on topics the hub does not serve.");
  sample("publishes_dropped_total", "", c.dropped_publishes);
  family("rest_requests_total", "counter", "REST service requests, by outcome.");
  sample("rest_requests_total", R"(outcome="all")", c.rest_requests);
  sample("rest_requests_total", R"(outcome="unauthorized")", c.rest_unauthorized);
  family("faults_total", "counter", "Faults the hub injected, by backend, operation and outcome.");
  const std::pair<const std::array<std::uint64_t, outbound_kind_count>*, std::string_view> per_kind[] = {
      {&c.faults_dropped, "dropped"},     {&c.faults_duplicated, "duplicated"},
      {&c.faults_delayed, "delayed"},     {&c.faults_reordered, "reordered"},
      {&c.faults_not_yet_subscribed, "not_yet_subscribed"}};
  for (const auto& [values, outcome] : per_kind) {
    for (std::size_t k = 0; k < outbound_kind_count; ++k) {
      const auto name = to_string(static_cast<outbound_kind>(k));  // "azure.desired_patch"
      const auto dot = name.find('.');
      op_family("faults_total", name.substr(0, dot), name.substr(dot + 1), outcome, (*values)[k]);
    }
  }
  op_family("faults_total", "aws", "accepted_delta", "swapped", c.faults_accepted_delta_swapped);
  op_family("faults_total", "azure", "desired_version", "skipped", c.faults_desired_versions_skipped);
  op_family("faults_total", "all", "connection", "forced_disconnect", c.faults_forced_disconnects);
  op_family("faults_total", "azure", "reported_patch", "reordered", c.faults_azure_reported_reordered);
  op_family("faults_total", "aws", "shadow_update", "reordered", c.faults_aws_reported_reordered);
  op_family("faults_total", "all", "connection", "takeover_delayed", c.faults_takeovers_delayed);
  family("throttled_total", "counter", "Requests throttling queued or refused, by backend, operation and outcome.");
  family("throttle_queue_depth", "gauge", "Requests waiting for a throttle token now.");
  for (std::size_t i = 0; i < throttle_class_count; ++i) {
    const auto tc = static_cast<throttle_class>(i);
    const std::string_view backend = tc >= throttle_class::aws_shadow_per_thing ? "aws" : "azure";
    op_family("throttled_total", backend, to_string(tc), "queued", c.throttle_queued[i]);
    op_family("throttled_total", backend, to_string(tc), "rejected", c.throttle_rejected[i]);
  }
  for (std::size_t i = 0; i < throttle_class_count; ++i) {
    const auto tc = static_cast<throttle_class>(i);
    const std::string_view backend = tc >= throttle_class::aws_shadow_per_thing ? "aws" : "azure";
    sample("throttle_queue_depth",
           "backend=\"" + std::string(backend) + "\",operation=\"" + std::string(to_string(tc)) + "\"",
           state_->queue_depth[i]);
  }
  family("connected_devices", "gauge", "Device connections the hub holds now.");
  sample("connected_devices", "", state_->connections.size());
  family("twins", "gauge", "Azure device identities and their twins.");
  sample("twins", "", state_->azure_devices.size());
  family("shadows", "gauge", "AWS shadows, classic and named.");
  sample("shadows", "", shadow_count());
  return out;
}

std::string hub_core::device_key_for(std::string_view device_id) const {
  auto key = auth::derive_device_key(state_->settings.group_key, device_id);
  return key ? *key : std::string{};
}

mqtt::connect_return_code hub_core::on_connect(link& device, const mqtt::connect_packet& connect, time_point now) {
  state_->tick(now);
  const bool azure = is_azure_connect(connect);
  // The connection throttle limits the rate of new connections (A14, B7): no queue, CONNACK 3.
  if (!state_->admit_connect(azure ? throttle_class::azure_connects : throttle_class::aws_connects, "", now)) {
    ++state_->counters.connections_refused;
    return mqtt::connect_return_code::server_unavailable;
  }
  const auto code = azure ? azure_connect(*state_, device, connect, now) : aws_connect(*state_, device, connect, now);
  if (code == mqtt::connect_return_code::accepted) {
    if (auto it = state_->connections.find(&device); it != state_->connections.end()) {
      it->second.serial = state_->next_serial++;
    }
    ++state_->counters.connections_accepted;
  } else {
    ++state_->counters.connections_refused;
  }
  return code;
}

std::uint16_t hub_core::supervised_keep_alive(const link& device, std::uint16_t requested) const {
  const auto& s = state_->settings;
  auto it = state_->connections.find(const_cast<link*>(&device));
  const bool aws = it != state_->connections.end() && it->second.kind == dialect::aws;
  if (aws) {
    if (requested == 0 || requested > s.aws_max_keep_alive) return s.aws_max_keep_alive;
    return std::max(requested, s.aws_min_keep_alive);
  }
  if (requested == 0 || requested > s.azure_max_keep_alive) return s.azure_max_keep_alive;
  return requested;
}

std::vector<mqtt::suback_code> hub_core::on_subscribe(link& device, std::span<const mqtt::subscription> filters,
                                                      time_point now) {
  auto& st = *state_;
  st.tick(now);
  auto it = st.connections.find(&device);
  if (it == st.connections.end()) return std::vector<mqtt::suback_code>(filters.size(), mqtt::suback_code::failure);
  auto& cs = it->second;
  auto codes = cs.kind == dialect::azure ? azure_subscribe(st, device, cs, filters) : aws_subscribe(st, device, cs, filters);
  // Fault: SUBACK does not mean delivery has started (C2.4).
  const auto delay = st.settings.faults.subscription_activation_delay;
  if (delay.count() > 0) {
    const auto from = now + delay;
    for (std::size_t i = 0; i < filters.size() && i < codes.size(); ++i) {
      if (codes[i] == mqtt::suback_code::failure) continue;
      const auto& filter = filters[i].filter;
      if (cs.kind == dialect::azure) {
        if (filter == "$iothub/twin/res/#") cs.azure_active_from[0] = from;
        if (filter == "$iothub/twin/PATCH/properties/desired/#") cs.azure_active_from[1] = from;
        if (filter == "$iothub/methods/POST/#") cs.azure_active_from[2] = from;
        continue;
      }
      auto stamp = [&](subscriber& s) {
        if (s.connection == &device) s.active_from = from;
      };
      if (auto e = st.exact_subscriptions.find(filter); e != st.exact_subscriptions.end()) {
        for (auto& s : e->second) stamp(s);
      }
      st.wildcard_subscriptions.for_filter(filter, stamp);
    }
  }
  return codes;
}

void hub_core::on_unsubscribe(link& device, std::span<const std::string_view> filters) {
  auto it = state_->connections.find(&device);
  if (it == state_->connections.end()) return;
  auto& cs = it->second;
  for (auto filter : filters) {
    if (cs.kind == dialect::aws) {
      state_->remove_subscription(device, cs, filter);
    } else if (filter == "$iothub/twin/res/#") {
      cs.twin_responses.reset();
    } else if (filter == "$iothub/twin/PATCH/properties/desired/#") {
      cs.desired_updates.reset();
    } else if (filter == "$iothub/methods/POST/#") {
      cs.method_requests.reset();
    } else {
      cs.cloud_to_device.reset();
    }
  }
}

void hub_core::on_publish(link& device, const mqtt::publish_packet& publish, time_point now) {
  auto& st = *state_;
  st.tick(now);
  auto* cs = device.core_state;
  if (cs == nullptr) return;
  if (st.settings.throttle.any() || st.settings.faults.reported_reorder > 0) {
    throttled_device_publish(st, device, *cs, publish, now);
  } else {
    dispatch_device_publish(st, device, *cs, publish, now);
  }
}

void dispatch_device_publish(hub_core::state& st, link& device, connection_state& cs,
                             const mqtt::publish_packet& publish, time_point now) {
  if (cs.kind == dialect::azure) {
    azure_device_publish(st, device, cs, publish, now);
  } else {
    aws_device_publish(st, device, cs, publish, now);
  }
}

void hub_core::on_disconnect(link& device, time_point now) {
  state_->tick(now);
  auto it = state_->connections.find(&device);
  if (it == state_->connections.end()) return;
  auto& cs = it->second;
  if (cs.expiry) state_->expiries.erase(*cs.expiry);
  if (cs.kind == dialect::azure) {
    if (auto* d = state_->find_device(cs.identity); d != nullptr && d->connection == &device) {
      d->connection = nullptr;
      d->twin.set_connected(false, now);
    }
  } else {
    while (!cs.filters.empty()) state_->remove_subscription(device, cs, std::string(cs.filters.back().first));
    if (auto c = state_->aws_clients.find(cs.client_id); c != state_->aws_clients.end() && c->second == &device) {
      state_->aws_clients.erase(c);
    }
  }
  device.core_state = nullptr;
  state_->connections.erase(it);
}

std::optional<time_point> hub_core::next_deadline() const {
  std::optional<time_point> next;
  if (!state_->method_deadlines.empty()) next = state_->method_deadlines.begin()->first;
  if (!state_->expiries.empty() && (!next || state_->expiries.begin()->first < *next)) {
    next = state_->expiries.begin()->first;
  }
  if (auto f = faults_deadline(*state_); f && (!next || *f < *next)) next = f;
  return next;
}

namespace {
// Pending method calls whose deadline is at or before `until` time out (504101).
void expire_methods_until(hub_core::state& st, time_point until) {
  while (!st.method_deadlines.empty() && st.method_deadlines.begin()->first <= until) {
    const std::string rid = st.method_deadlines.begin()->second;
    st.method_deadlines.erase(st.method_deadlines.begin());
    auto it = st.methods.find(rid);
    if (it == st.methods.end()) continue;
    auto done = std::move(it->second.done);
    st.methods.erase(it);
    ++st.counters.azure_methods_failed;
    done(azure_error(504101, "Timed out waiting for the response from device."));
  }
}
}  // namespace

void hub_core::expire_methods() { expire_methods_until(*state_, time_point::max()); }

void hub_core::on_timer(time_point now) {
  auto& st = *state_;
  st.tick(now);
  faults_on_timer(st, now);
  expire_methods_until(st, now);
  // An expired SAS token ends the connection: MQTT 3.1.1 cannot re-authenticate (A4).
  while (!st.expiries.empty() && st.expiries.begin()->first <= now) {
    link* connection = st.expiries.begin()->second;
    auto conn = st.connections.find(connection);
    if (conn != st.connections.end()) conn->second.expiry.reset();
    st.expiries.erase(st.expiries.begin());
    st.close_by_hub(*connection);
  }
}

// ---------------------------------------------------------------------------------------------
// service authorization

twin::result<void> hub_core::authorize_azure(std::string_view authorization, std::string_view device_id,
                                             permission needed, time_point now) {
  auto& st = *state_;
  auto token = auth::parse_sas_token(authorization);
  if (!token) return azure_error(401003, "The SharedAccessSignature token is malformed: " + token.error().message());
  if (!token->policy_name) {
    return azure_error(401003, "A device token cannot be used for this operation; use a shared access policy (skn).");
  }
  const auto policy = std::find_if(st.settings.policies.begin(), st.settings.policies.end(),
                                   [&](const access_policy& p) { return p.name == *token->policy_name; });
  if (policy == st.settings.policies.end()) {
    return azure_error(401003, "Unknown shared access policy '" + *token->policy_name + "'.");
  }
  const bool granted = (needed == permission::registry_read && policy->registry_read) ||
                       (needed == permission::registry_write && policy->registry_write) ||
                       (needed == permission::service_connect && policy->service_connect) ||
                       (needed == permission::device_connect && policy->device_connect);
  if (!granted) return azure_error(401003, "The policy '" + policy->name + "' does not grant this operation.");
  // The token must cover the device's resource; its host part is whatever the caller used.
  const auto host = std::string_view(token->resource).substr(0, token->resource.find('/'));
  const std::string resource =
      device_id.empty() ? std::string(host) : std::string(host) + "/devices/" + std::string(device_id);
  auto ok = auth::verify_sas_token(*token, policy->primary_key, resource, now);
  if (!ok && ok.error() == auth::auth_errc::bad_signature) ok = auth::verify_sas_token(*token, policy->secondary_key, resource, now);
  if (!ok) return azure_error(401003, "Unauthorized: " + ok.error().message());
  return {};
}

twin::result<void> hub_core::authorize_aws(const auth::sigv4_received_request& request, time_point now) {
  auto ok = auth::verify_sigv4(request, state_->sigv4_options(), now);
  if (ok) return {};
  using auth::auth_errc;
  const auto e = ok.error();
  if (e == auth_errc::missing_authentication) return twin::error{403, "Missing Authentication Token"};
  if (e == auth_errc::unknown_access_key) return twin::error{403, "The security token included in the request is invalid."};
  if (e == auth_errc::bad_signature) {
    return twin::error{403,
                       "The request signature we calculated does not match the signature you provided. Check your AWS "
                       "Secret Access Key and signing method. Consult the service documentation for details."};
  }
  if (e == auth_errc::request_time_skewed || e == auth_errc::expired) return twin::error{403, "Signature expired."};
  return twin::error{403, "Credential should be scoped correctly: " + e.message()};
}

// ---------------------------------------------------------------------------------------------
// the identity registry

twin::result<json::object> hub_core::azure_put_device(std::string_view device_id, const json::value& body,
                                                      const twin::if_match& match, time_point now) {
  auto& st = *state_;
  if (!twin::is_valid_device_id(device_id)) return azure_error(400004, "The device id '" + std::string(device_id) + "' is not valid.");
  if (!body.is_object()) return azure_error(400004, "The request body must be a JSON object.");
  const auto& o = body.get_object();
  bool ok = true;
  const auto body_id = string_member(o, "deviceId", ok);
  if (!ok || (!body_id.empty() && body_id != device_id)) {
    return azure_error(400004, "deviceId in the body does not match the device id in the path.");
  }
  const auto status = string_member(o, "status", ok);
  if (!ok || (!status.empty() && status != "enabled" && status != "disabled")) {
    return azure_error(400004, "status must be 'enabled' or 'disabled'.");
  }
  azure_auth_type type = azure_auth_type::sas;
  std::string primary, secondary, thumb1, thumb2;
  if (const auto* a = o.if_contains("authentication"); a != nullptr && !a->is_null()) {
    if (!a->is_object()) return azure_error(400004, "authentication must be an object.");
    const auto& ao = a->get_object();
    const auto type_name = string_member(ao, "type", ok);
    if (type_name == "selfSigned") {
      type = azure_auth_type::self_signed;
    } else if (type_name == "certificateAuthority") {
      type = azure_auth_type::certificate_authority;
    } else if (!type_name.empty() && type_name != "sas") {
      return azure_error(400004, "authentication.type must be sas, selfSigned or certificateAuthority.");
    }
    if (const auto* k = ao.if_contains("symmetricKey"); k != nullptr && k->is_object()) {
      primary = string_member(k->get_object(), "primaryKey", ok);
      secondary = string_member(k->get_object(), "secondaryKey", ok);
    }
    if (const auto* t = ao.if_contains("x509Thumbprint"); t != nullptr && t->is_object()) {
      thumb1 = string_member(t->get_object(), "primaryThumbprint", ok);
      thumb2 = string_member(t->get_object(), "secondaryThumbprint", ok);
    }
    if (!ok) return azure_error(400004, "authentication members must be strings.");
  }
  for (const auto& key : {primary, secondary}) {
    if (!key.empty() && !auth::base64_decode(key)) return azure_error(400004, "Symmetric keys must be base64.");
  }
  if (type == azure_auth_type::self_signed && thumb1.empty()) {
    return azure_error(400004, "A selfSigned device needs x509Thumbprint.primaryThumbprint.");
  }

  auto* existing = st.find_device(device_id);
  if (existing != nullptr) {
    if (match.what == twin::if_match::kind::absent) {
      return azure_error(409001, "A device with id '" + std::string(device_id) + "' already exists.");
    }
    if (match.what == twin::if_match::kind::tag && match.tag != twin::counter_etag(existing->identity_version)) {
      return azure_error(412001, "The If-Match etag does not match the device identity's etag.");
    }
  }
  auto& d = existing != nullptr ? *existing : st.create_device(device_id, now);
  if (existing != nullptr) ++d.identity_version;
  d.auth_type = type;
  if (type == azure_auth_type::sas) {
    d.primary_key = primary.empty() ? (existing != nullptr && !d.primary_key.empty() ? d.primary_key : random_key()) : primary;
    d.secondary_key =
        secondary.empty() ? (existing != nullptr && !d.secondary_key.empty() ? d.secondary_key : random_key()) : secondary;
  } else {
    d.primary_key.clear();
    d.secondary_key.clear();
  }
  d.primary_thumbprint = thumb1;
  d.secondary_thumbprint = thumb2;
  d.enabled = status != "disabled";
  d.twin.set_enabled(d.enabled, now);
  if (!d.enabled && d.connection != nullptr) st.close_by_hub(*d.connection);
  return identity_json(d);
}

twin::result<json::object> hub_core::azure_get_device(std::string_view device_id) const {
  auto it = state_->azure_devices.find(device_id);
  if (it == state_->azure_devices.end()) return azure_error(404001, "Device " + std::string(device_id) + " not found.");
  return identity_json(it->second);
}

twin::result<void> hub_core::azure_delete_device(std::string_view device_id, const twin::if_match& match,
                                                 time_point) {
  auto& st = *state_;
  auto it = st.azure_devices.find(device_id);
  if (it == st.azure_devices.end()) return azure_error(404001, "Device " + std::string(device_id) + " not found.");
  if (match.what == twin::if_match::kind::tag && match.tag != twin::counter_etag(it->second.identity_version)) {
    return azure_error(412001, "The If-Match etag does not match the device identity's etag.");
  }
  if (it->second.connection != nullptr) {
    link* connection = it->second.connection;
    it->second.connection = nullptr;
    if (auto c = st.connections.find(connection); c != st.connections.end()) {
      c->second.identity.clear();
      c->second.device = nullptr;
    }
    st.close_by_hub(*connection);
  }
  st.azure_devices.erase(it);
  return {};
}

json::array hub_core::azure_list_devices(std::size_t max) const {
  json::array out;
  for (const auto& [id, d] : state_->azure_devices) {
    if (out.size() >= max) break;
    out.push_back(identity_json(d));
  }
  return out;
}

}  // namespace twinfleet::hub
