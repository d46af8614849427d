// The Azure IoT Hub device dialect over MQTT (PROTOCOLS.md A4-A8, E) and the twin and method
// service operations that reach devices.
#include "core_state.hpp"

#include <twinfleet/auth/encoding.hpp>
#include <twinfleet/auth/sas.hpp>
#include <twinfleet/twin/names.hpp>

#include <boost/json/monotonic_resource.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <charconv>

namespace twinfleet::hub {

namespace {

constexpr std::string_view twin_get_prefix = "$iothub/twin/GET/";
constexpr std::string_view reported_prefix = "$iothub/twin/PATCH/properties/reported/";
constexpr std::string_view method_response_prefix = "$iothub/methods/res/";
constexpr std::string_view filter_twin_responses = "$iothub/twin/res/#";
constexpr std::string_view filter_desired = "$iothub/twin/PATCH/properties/desired/#";
constexpr std::string_view filter_methods = "$iothub/methods/POST/#";

// `$iothub/twin/GET/?$rid=1` → path "$iothub/twin/GET/", query "$rid=1".
std::pair<std::string_view, std::string_view> split_topic(std::string_view topic) {
  const auto q = topic.find('?');
  if (q == std::string_view::npos) return {topic, {}};
  return {topic.substr(0, q), topic.substr(q + 1)};
}

// The value of `name` in an Azure topic's query (`$rid=1&$version=5`), if present.
std::optional<std::string_view> query_param(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    const auto amp = query.find('&');
    const auto part = query.substr(0, amp);
    const auto eq = part.find('=');
    if (part.substr(0, eq) == name) return eq == std::string_view::npos ? std::string_view{} : part.substr(eq + 1);
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return std::nullopt;
}

std::optional<std::int64_t> parse_int(std::string_view text) {
  std::int64_t v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc{} || end != text.data() + text.size()) return std::nullopt;
  return v;
}

// The body of an error reply: the SDKs ignore the status in the topic and read this (E).
std::string error_body(const twin::error& e) {
  return json::serialize(json::object{{"errorCode", e.code}, {"message", e.message}});
}

std::string response_topic(int status, std::string_view rid, std::optional<std::int64_t> version = std::nullopt) {
  // One allocation: every reported patch is answered on one of these.
  constexpr std::string_view prefix = "$iothub/twin/res/";
  char digits[24];
  std::string topic;
  topic.reserve(prefix.size() + 4 + 7 + rid.size() + (version ? 10 + 20 : 0));
  topic += prefix;
  topic.append(digits, std::to_chars(digits, digits + sizeof digits, status).ptr);
  topic += "/?$rid=";
  topic += rid;
  if (version) {
    topic += "&$version=";
    topic.append(digits, std::to_chars(digits, digits + sizeof digits, *version).ptr);
  }
  return topic;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

// The model id a Plug and Play device announces in its username (`&model-id=<DTMI>`, A7).
std::string model_id_of(std::string_view username) {
  const auto q = username.find('?');
  if (q == std::string_view::npos) return {};
  auto value = query_param(username.substr(q + 1), "model-id");
  if (!value) return {};
  auto decoded = auth::url_decode(*value);
  return decoded ? *decoded : std::string(*value);
}

// Checks the CONNECT's credentials against the device's identity (A4, A9, A10).
bool credentials_hold(const hub_core::state& st, const azure_device& d, const mqtt::connect_packet& connect,
                      const link_info& info, time_point now, std::optional<time_point>& expiry) {
  if (connect.password && !connect.password->empty()) {
    auto token = auth::parse_sas_token(*connect.password);
    if (!token) return false;
    const auto host = std::string_view(token->resource).substr(0, token->resource.find('/'));
    const std::string resource = std::string(host) + "/devices/" + d.device_id;
    bool ok = false;
    if (token->policy_name) {
      // A policy with DeviceConnect may act for any device (A9).
      for (const auto& p : st.settings.policies) {
        if (p.name != *token->policy_name || !p.device_connect) continue;
        ok = auth::verify_sas_token(*token, p.primary_key, resource, now) ||
             auth::verify_sas_token(*token, p.secondary_key, resource, now);
      }
    } else if (d.auth_type == azure_auth_type::sas) {
      ok = (!d.primary_key.empty() && auth::verify_sas_token(*token, d.primary_key, resource, now)) ||
           (!d.secondary_key.empty() && auth::verify_sas_token(*token, d.secondary_key, resource, now));
    }
    if (ok) expiry = time_point(std::chrono::duration_cast<time_point::duration>(token->expiry.time_since_epoch()));
    return ok;
  }
  if (!info.certificate) return false;
  const auto& cert = *info.certificate;
  if (d.auth_type == azure_auth_type::self_signed) {
    for (const auto& thumb : {d.primary_thumbprint, d.secondary_thumbprint}) {
      if (!thumb.empty() && (iequals(thumb, cert.sha1_thumbprint) || iequals(thumb, cert.sha256_thumbprint))) return true;
    }
    return false;
  }
  // CA-signed: the certificate chains to the hub's CA and names the device (A10).
  const bool ca_allowed = d.auth_type == azure_auth_type::certificate_authority || st.settings.auth == auth_mode::open;
  return ca_allowed && cert.verified && cert.common_name == d.device_id;
}

}  // namespace

bool is_azure_connect(const mqtt::connect_packet& connect) {
  if (!connect.username || connect.client_id.empty()) return false;
  const std::string needle = "/" + std::string(connect.client_id) + "/";
  const auto at = connect.username->find(needle);
  return at != std::string_view::npos && at > 0 && connect.username->find('?', at) != std::string_view::npos;
}

mqtt::connect_return_code azure_connect(hub_core::state& st, link& device, const mqtt::connect_packet& connect,
                                        time_point now) {
  using rc = mqtt::connect_return_code;
  const std::string_view id = connect.client_id;
  if (!twin::is_valid_device_id(id)) return rc::identifier_rejected;  // module identities are not emulated yet
  auto* d = st.find_device(id);
  bool created = false;
  if (d == nullptr) {
    if (st.settings.auth == auth_mode::strict) return rc::not_authorized;
    d = &st.create_device(id, now);
    created = true;
  }
  if (!d->enabled) return rc::not_authorized;
  std::optional<time_point> expiry;
  if (!credentials_hold(st, *d, connect, device.info(), now, expiry)) {
    if (created) st.azure_devices.erase(std::string(id));  // a refused stranger leaves no identity behind
    return rc::not_authorized;
  }

  // One connection per device: the new one wins (400027, A4; C1.8), at once unless the
  // takeover_grace fault keeps the old one served a while.
  if (d->connection != nullptr && d->connection != &device) {
    ++st.counters.connections_taken_over;
    link* old = d->connection;
    d->connection = nullptr;
    if (old->core_state != nullptr) old->core_state->device = nullptr;  // served by identity, if at all
    st.close_taken_over(*old, now);
  }
  auto& cs = st.add_connection(device);
  cs.kind = dialect::azure;
  cs.device = d;
  cs.identity = std::string(id);
  cs.client_id = std::string(id);
  if (expiry) cs.expiry = st.expiries.emplace(*expiry, &device);
  d->connection = &device;
  d->twin.set_connected(true, now);
  if (auto model = model_id_of(*connect.username); !model.empty()) d->twin.set_model_id(std::move(model));
  return rc::accepted;
}

std::vector<mqtt::suback_code> azure_subscribe(hub_core::state& st, link&, connection_state& cs,
                                               std::span<const mqtt::subscription> filters) {
  std::vector<mqtt::suback_code> codes;
  codes.reserve(filters.size());
  const std::string c2d_own = "devices/" + cs.identity + "/messages/devicebound/#";
  for (const auto& f : filters) {
    // QoS 2 is granted as 1 (A4).
    const auto granted = std::min(f.qos, mqtt::qos::at_least_once);
    std::optional<mqtt::qos>* slot = nullptr;
    if (f.filter == filter_twin_responses) {
      slot = &cs.twin_responses;
    } else if (f.filter == filter_desired) {
      slot = &cs.desired_updates;
    } else if (f.filter == filter_methods) {
      slot = &cs.method_requests;
    } else if (f.filter == c2d_own || f.filter == "devices/+/messages/devicebound/#") {
      slot = &cs.cloud_to_device;
    }
    const std::size_t held = static_cast<std::size_t>(cs.twin_responses.has_value()) + cs.desired_updates.has_value() +
                             cs.method_requests.has_value() + cs.cloud_to_device.has_value();
    if (slot == nullptr || (!slot->has_value() && held >= st.settings.azure_max_subscriptions)) {
      codes.push_back(mqtt::suback_code::failure);  // only the documented filters work (A4)
      continue;
    }
    *slot = granted;
    codes.push_back(granted == mqtt::qos::at_most_once ? mqtt::suback_code::granted_qos0
                                                       : mqtt::suback_code::granted_qos1);
  }
  return codes;
}

void azure_device_publish(hub_core::state& st, link& device, connection_state& cs, const mqtt::publish_packet& publish,
                   time_point now) {
  // QoS 2 closes the connection (A4).
  if (publish.qos == mqtt::qos::exactly_once) {
    st.close_by_hub(device);
    return;
  }
  auto* d = st.device_of(cs);
  if (d == nullptr) {  // deleted while connected
    st.close_by_hub(device);
    return;
  }
  d->twin.record_activity(now);
  const auto [path, query] = split_topic(publish.topic);

  if (path == twin_get_prefix || path == reported_prefix) {
    const auto rid = query_param(query, "$rid");
    if (!rid) {  // nothing to answer to: IoT Hub drops such a connection
      st.close_by_hub(device);
      return;
    }
    const auto qos = cs.twin_responses.value_or(mqtt::qos::at_most_once);
    if (path == twin_get_prefix) {
      ++st.counters.azure_twin_gets;
      // Replies go only to the requesting connection, and only if it listens (A5, E).
      if (cs.twin_responses) st.send(device, response_topic(200, *rid), json::serialize(d->twin.device_view()), qos);
      return;
    }
    ++st.counters.azure_reported_patches;
    std::optional<std::int64_t> expected;
    if (auto v = query_param(query, "$version")) {
      expected = parse_int(*v);
      if (!expected) {
        ++st.counters.azure_reported_rejected;
        if (cs.twin_responses) {
          st.send(device, response_topic(400, *rid), error_body({400004, "$version must be an integer"}), qos);
        }
        return;
      }
    }
    boost::system::error_code ec;
    // The parsed patch lives only for this call (the twin copies what it keeps): parsed into
    // a buffer on the stack rather than one heap allocation per value.
    unsigned char scratch[2048];
    json::monotonic_resource arena(scratch, sizeof scratch);
    const auto patch = json::parse(publish.payload, ec, &arena);
    twin::result<std::int64_t> r = ec ? twin::result<std::int64_t>(twin::error{400004, "The patch is not valid JSON."})
                                      : d->twin.patch_reported(patch, expected, now);
    if (!r) ++st.counters.azure_reported_rejected;
    if (!cs.twin_responses) return;
    if (r) {
      st.send(device, response_topic(204, *rid, *r), {}, qos);
    } else {
      st.send(device, response_topic(r.error().http_status(), *rid), error_body(r.error()), qos);
    }
    return;
  }

  if (path.starts_with(method_response_prefix)) {
    auto status_text = path.substr(method_response_prefix.size());
    if (!status_text.empty() && status_text.back() == '/') status_text.remove_suffix(1);
    const auto status = parse_int(status_text);
    const auto rid = query_param(query, "$rid");
    if (!status || !rid) {
      st.close_by_hub(device);
      return;
    }
    auto it = st.methods.find(*rid);
    if (it == st.methods.end() || it->second.device_id != cs.identity) return;  // late or unknown: dropped
    boost::system::error_code ec;
    json::value payload = publish.payload.empty() ? json::value(nullptr) : json::parse(publish.payload, ec);
    if (ec) payload = json::string(publish.payload);  // not JSON: handed back as text
    auto done = std::move(it->second.done);
    st.method_deadlines.erase(it->second.deadline);
    st.methods.erase(it);
    done(method_response{static_cast<int>(*status), std::move(payload)});
    return;
  }

  const std::string events = "devices/" + cs.identity + "/messages/events/";
  if (publish.topic.starts_with(events) || publish.topic == std::string_view(events).substr(0, events.size() - 1)) {
    ++st.counters.azure_telemetry;
    return;
  }
  // Only the documented topics work; IoT Hub drops the connection otherwise (A4).
  ++st.counters.dropped_publishes;
  st.close_by_hub(device);
}

// ---------------------------------------------------------------------------------------------
// service operations that reach devices

twin::result<json::object> hub_core::azure_get_twin(std::string_view device_id) const {
  auto it = state_->azure_devices.find(device_id);
  if (it == state_->azure_devices.end()) {
    return twin::error{404001, "Device " + std::string(device_id) + " not found."};
  }
  return it->second.twin.to_json();
}

twin::result<json::object> hub_core::azure_update_twin(std::string_view device_id, const json::value& body,
                                                       const twin::if_match& match, bool replace, time_point now) {
  auto& st = *state_;
  st.tick(now);
  auto* d = st.find_device(device_id);
  if (d == nullptr) return twin::error{404001, "Device " + std::string(device_id) + " not found."};
  // Fault: the write skips desired version numbers (C1.3); a refused write gives them back.
  const auto skip = st.desired_versions_to_skip();
  d->twin.advance_desired_version(skip);
  auto change = replace ? d->twin.service_replace(body, match, now) : d->twin.service_patch(body, match, now);
  if (!change || !change->notification) d->twin.advance_desired_version(-skip);
  if (!change) return change.error();
  if (change->notification && d->connection != nullptr) {
    auto cs = st.connections.find(d->connection);
    // Notifications reach only connected, subscribed devices; nothing is queued (A5, C1).
    if (cs != st.connections.end() && cs->second.desired_updates) {
      ++st.counters.azure_desired_notifications;
      st.send(*d->connection, "$iothub/twin/PATCH/properties/desired/?$version=" + std::to_string(change->desired_version),
                          json::serialize(*change->notification), *cs->second.desired_updates);
    }
  }
  return d->twin.to_json();
}

void hub_core::azure_invoke_method(std::string_view device_id, const json::value& body, time_point now,
                                   method_callback done) {
  auto& st = *state_;
  st.tick(now);
  ++st.counters.azure_methods_invoked;
  auto fail = [&](int code, std::string message) {
    ++st.counters.azure_methods_failed;
    done(twin::error{code, std::move(message)});
  };
  if (!body.is_object()) return fail(400004, "The request body must be a JSON object.");
  const auto& o = body.get_object();
  const auto* name = o.if_contains("methodName");
  if (name == nullptr || !name->is_string() || !twin::is_valid_method_name(name->get_string())) {
    return fail(400004, "methodName is missing or not a valid method name.");
  }
  std::chrono::seconds timeout = st.settings.azure_default_method_timeout;
  if (const auto* t = o.if_contains("responseTimeoutInSeconds"); t != nullptr && !t->is_null()) {
    if (!t->is_int64() && !t->is_uint64()) return fail(400004, "responseTimeoutInSeconds must be an integer.");
    timeout = std::chrono::seconds(t->to_number<std::int64_t>());
    if (timeout < st.settings.azure_min_method_timeout || timeout > st.settings.azure_max_method_timeout) {
      return fail(400004, "responseTimeoutInSeconds must lie between " +
                              std::to_string(st.settings.azure_min_method_timeout.count()) + " and " +
                              std::to_string(st.settings.azure_max_method_timeout.count()) + ".");
    }
  }
  auto* d = st.find_device(device_id);
  if (d == nullptr) return fail(404001, "Device " + std::string(device_id) + " not found.");
  auto cs = d->connection == nullptr ? st.connections.end() : st.connections.find(d->connection);
  if (cs == st.connections.end() || !cs->second.method_requests) {
    return fail(404103, "Timed out waiting for device to connect.");
  }
  const auto* payload = o.if_contains("payload");
  const std::string rid = std::to_string(st.next_request_id++);
  auto deadline = st.method_deadlines.emplace(now + timeout, rid);
  st.methods.emplace(rid, pending_method{std::string(device_id), std::move(done), deadline});
  // Method requests are QoS 0 (A5).
  st.send(*d->connection, "$iothub/methods/POST/" + std::string(name->get_string()) + "/?$rid=" + rid,
                      payload == nullptr ? std::string("null") : json::serialize(*payload), mqtt::qos::at_most_once);
}

}  // namespace twinfleet::hub
