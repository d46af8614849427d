// The AWS IoT device dialect over MQTT (PROTOCOLS.md B1-B9, E): shadow topics, ordinary
// pub/sub with wildcards, client-id takeover; and the shadow data-plane operations.
#include "core_state.hpp"

#include <twinfleet/auth/sigv4.hpp>
#include <twinfleet/mqtt/topic.hpp>
#include <twinfleet/twin/names.hpp>

#include <boost/json/serialize.hpp>

#include <algorithm>

namespace twinfleet::hub {

namespace {

constexpr std::string_view things_prefix = "$aws/things/";
constexpr std::size_t max_subscriptions = 50;  // per connection (B7)

enum class shadow_op { get, update, remove };

struct shadow_request {
  std::string_view thing;
  std::string_view shadow;  // empty: classic
  shadow_op op;
};

// `$aws/things/T/shadow/get`, `$aws/things/T/shadow/name/S/update`, … → the request, or
// nothing for any other topic (response topics included: they are the service's to publish).
std::optional<shadow_request> parse_shadow_topic(std::string_view topic) {
  if (!topic.starts_with(things_prefix)) return std::nullopt;
  topic.remove_prefix(things_prefix.size());
  const auto slash = topic.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  shadow_request r{topic.substr(0, slash), {}, shadow_op::get};
  topic.remove_prefix(slash + 1);
  if (!topic.starts_with("shadow/")) return std::nullopt;
  topic.remove_prefix(7);
  if (topic.starts_with("name/")) {
    topic.remove_prefix(5);
    const auto s = topic.find('/');
    if (s == std::string_view::npos) return std::nullopt;
    r.shadow = topic.substr(0, s);
    topic.remove_prefix(s + 1);
  }
  if (topic == "get") {
    r.op = shadow_op::get;
  } else if (topic == "update") {
    r.op = shadow_op::update;
  } else if (topic == "delete") {
    r.op = shadow_op::remove;
  } else {
    return std::nullopt;
  }
  return r;
}

std::string topic_prefix(std::string_view thing, std::string_view shadow) {
  std::string p = "$aws/things/" + std::string(thing) + "/shadow";
  if (!shadow.empty()) p += "/name/" + std::string(shadow);
  return p;
}

twin::aws_shadow* find_shadow(hub_core::state& st, std::string_view thing, std::string_view shadow) {
  auto t = st.aws_things.find(thing);
  if (t == st.aws_things.end()) return nullptr;
  auto s = t->second.shadows.find(shadow);
  return s == t->second.shadows.end() ? nullptr : &s->second;
}

twin::error no_shadow(std::string_view thing, std::string_view shadow) {
  return twin::error{404, twin::aws_no_shadow_message(shadow.empty() ? thing : shadow)};
}

// Every accepted update publishes accepted, then the delta when desired ≠ reported, then
// documents (B2, B3); REST updates too (B2).
twin::result<json::object> serve_update(hub_core::state& st, std::string_view thing, std::string_view shadow,
                                        std::string_view payload, time_point now) {
  auto& shadows = st.aws_things[std::string(thing)].shadows;
  auto it = shadows.find(shadow);
  const bool created = it == shadows.end();
  if (created) {
    it = shadows.emplace(std::string(shadow), twin::aws_shadow(std::string(thing), std::string(shadow), st.settings.aws_limits))
             .first;
  }
  auto outcome = it->second.update(payload, now);
  if (!outcome) {
    if (created) shadows.erase(it);  // a refused first update creates nothing
    ++st.counters.aws_rejected;
    return outcome.error();
  }
  ++st.counters.aws_updates;
  const auto prefix = topic_prefix(thing, shadow);
  // Fault: the delta of this version goes out before its accepted (C2.2).
  const bool swap = outcome->delta && st.swap_accepted_delta();
  if (!swap) st.route(prefix + "/update/accepted", json::serialize(outcome->accepted), mqtt::qos::at_least_once);
  if (outcome->delta) {
    ++st.counters.aws_deltas;
    st.route(prefix + "/update/delta", json::serialize(*outcome->delta), mqtt::qos::at_least_once);
  }
  if (swap) st.route(prefix + "/update/accepted", json::serialize(outcome->accepted), mqtt::qos::at_least_once);
  st.route(prefix + "/update/documents", json::serialize(outcome->documents), mqtt::qos::at_least_once);
  return std::move(outcome->accepted);
}

twin::result<json::object> serve_get(hub_core::state& st, std::string_view thing, std::string_view shadow,
                                     std::optional<std::string_view> client_token, time_point now) {
  ++st.counters.aws_gets;
  auto* sh = find_shadow(st, thing, shadow);
  if (sh == nullptr) return no_shadow(thing, shadow);
  return sh->get(client_token, now);
}

twin::result<json::object> serve_delete(hub_core::state& st, std::string_view thing, std::string_view shadow,
                                        std::optional<std::string_view> client_token,
                                        std::optional<std::int64_t> version, time_point now) {
  auto* sh = find_shadow(st, thing, shadow);
  if (sh == nullptr) return no_shadow(thing, shadow);
  auto r = sh->remove(client_token, version, now);
  if (r) {
    ++st.counters.aws_deletes;
    st.route(topic_prefix(thing, shadow) + "/delete/accepted", json::serialize(*r), mqtt::qos::at_least_once);
  }
  return r;
}

void reject(hub_core::state& st, const std::string& prefix, std::string_view op, const twin::error& e,
            std::optional<std::string> client_token, time_point now) {
  st.route(prefix + "/" + std::string(op) + "/rejected",
           json::serialize(twin::make_aws_error_document(e, client_token, now)), mqtt::qos::at_least_once);
}

}  // namespace

mqtt::connect_return_code aws_connect(hub_core::state& st, link& device, const mqtt::connect_packet& connect,
                                      time_point now) {
  using rc = mqtt::connect_return_code;
  const auto& info = device.info();
  std::string identity;
  bool admin = false;
  bool authenticated = false;
  if (info.certificate && info.certificate->verified) {
    identity = info.certificate->common_name;
    admin = std::find(st.settings.aws_admin_common_names.begin(), st.settings.aws_admin_common_names.end(), identity) !=
            st.settings.aws_admin_common_names.end();
    authenticated = true;
  } else if (!info.ws_target.empty() && info.ws_target.find("X-Amz-Signature=") != std::string::npos) {
    // MQTT over WSS with a SigV4 presigned URL: IAM credentials act for every thing (B9, B10).
    const auth::http_header host{"Host", info.ws_host};
    const auth::sigv4_received_request request{"GET", info.ws_target, std::span(&host, 1), {}};
    if (!auth::verify_sigv4(request, st.sigv4_options(), now)) return rc::not_authorized;
    admin = authenticated = true;
  }
  if (st.settings.auth == auth_mode::open) {
    admin = true;
    authenticated = true;
    if (identity.empty()) identity = std::string(connect.client_id);
  }
  if (!authenticated) return rc::not_authorized;

  // A new connection with a client id in use takes over (B9), at once unless the
  // takeover_grace fault keeps the old one served a while (it keeps its subscriptions).
  if (auto it = st.aws_clients.find(connect.client_id); it != st.aws_clients.end() && it->second != &device) {
    ++st.counters.connections_taken_over;
    link* old = it->second;
    st.aws_clients.erase(it);
    st.close_taken_over(*old, now);
  }
  auto& cs = st.add_connection(device);
  cs.kind = dialect::aws;
  cs.identity = std::move(identity);
  cs.client_id = std::string(connect.client_id);
  cs.aws_admin = admin;
  st.aws_clients[cs.client_id] = &device;
  return rc::accepted;
}

std::vector<mqtt::suback_code> aws_subscribe(hub_core::state& st, link& device, connection_state& cs,
                                             std::span<const mqtt::subscription> filters) {
  std::vector<mqtt::suback_code> codes;
  codes.reserve(filters.size());
  const std::string own = "$aws/things/" + cs.identity + "/";
  for (const auto& f : filters) {
    const bool reserved = f.filter.starts_with("$aws/");
    const bool allowed = !reserved || cs.aws_admin || f.filter.starts_with(own);
    const bool known = std::any_of(cs.filters.begin(), cs.filters.end(), [&](const auto& p) { return p.first == f.filter; });
    // QoS 2 subscriptions get no SUBACK on AWS (B9); the session answers what we return, so
    // such a filter is refused rather than granted.
    if (!allowed || f.qos == mqtt::qos::exactly_once || (!known && cs.filters.size() >= max_subscriptions)) {
      codes.push_back(mqtt::suback_code::failure);
      continue;
    }
    st.add_subscription(device, cs, f.filter, f.qos);
    codes.push_back(f.qos == mqtt::qos::at_most_once ? mqtt::suback_code::granted_qos0
                                                     : mqtt::suback_code::granted_qos1);
  }
  return codes;
}

void aws_device_publish(hub_core::state& st, link& device, connection_state& cs, const mqtt::publish_packet& publish,
                 time_point now) {
  // QoS 2: no acknowledgement and no delivery (B9).
  if (publish.qos == mqtt::qos::exactly_once) {
    ++st.counters.dropped_publishes;
    return;
  }
  const bool reserved = publish.topic.starts_with("$");
  if (reserved && publish.retain) {  // retained messages are not allowed on reserved topics (B9)
    st.close_by_hub(device);
    return;
  }
  if (!reserved) {
    st.route(publish.topic, publish.payload, publish.qos);
    return;
  }
  const auto request = parse_shadow_topic(publish.topic);
  if (!request) {
    ++st.counters.dropped_publishes;
    return;
  }
  if (!twin::is_valid_thing_name(request->thing) ||
      (!request->shadow.empty() && !twin::is_valid_shadow_name(request->shadow))) {
    ++st.counters.dropped_publishes;
    return;
  }
  if (!cs.aws_admin && request->thing != cs.identity) {  // not this certificate's thing: AWS disconnects
    st.close_by_hub(device);
    return;
  }
  const auto prefix = topic_prefix(request->thing, request->shadow);
  const auto& limits = st.settings.aws_limits;
  switch (request->op) {
    case shadow_op::update: {
      auto r = serve_update(st, request->thing, request->shadow, publish.payload, now);
      if (!r) {
        reject(st, prefix, "update", r.error(), twin::aws_echo_client_token(publish.payload, limits), now);
      }
      return;
    }
    case shadow_op::get:
    case shadow_op::remove: {
      const auto op = request->op == shadow_op::get ? std::string_view("get") : std::string_view("delete");
      auto fields = twin::parse_aws_control_request(publish.payload, limits);
      if (!fields) {
        ++st.counters.aws_rejected;
        reject(st, prefix, op, fields.error(), twin::aws_echo_client_token(publish.payload, limits), now);
        return;
      }
      std::optional<std::string_view> token;
      if (fields->client_token) token = *fields->client_token;
      if (request->op == shadow_op::get) {
        auto r = serve_get(st, request->thing, request->shadow, token, now);
        if (r) {
          st.route(prefix + "/get/accepted", json::serialize(*r), mqtt::qos::at_least_once);
        } else {
          ++st.counters.aws_rejected;
          reject(st, prefix, op, r.error(), fields->client_token, now);
        }
      } else {
        auto r = serve_delete(st, request->thing, request->shadow, token, fields->version, now);
        if (!r) {
          ++st.counters.aws_rejected;
          reject(st, prefix, op, r.error(), fields->client_token, now);
        }
      }
      return;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// the data plane (B8)

twin::result<json::object> hub_core::aws_get_shadow(std::string_view thing, std::string_view shadow, time_point now) {
  state_->tick(now);
  return serve_get(*state_, thing, shadow, std::nullopt, now);
}

twin::result<json::object> hub_core::aws_update_shadow(std::string_view thing, std::string_view shadow,
                                                       std::string_view payload, time_point now) {
  state_->tick(now);
  if (!twin::is_valid_thing_name(thing) || (!shadow.empty() && !twin::is_valid_shadow_name(shadow))) {
    return twin::error{400, "Invalid thing or shadow name"};
  }
  return serve_update(*state_, thing, shadow, payload, now);
}

twin::result<json::object> hub_core::aws_delete_shadow(std::string_view thing, std::string_view shadow,
                                                       time_point now) {
  state_->tick(now);
  return serve_delete(*state_, thing, shadow, std::nullopt, std::nullopt, now);
}

twin::result<void> hub_core::aws_publish(std::string_view topic, std::string_view payload, mqtt::qos qos,
                                         time_point now) {
  state_->tick(now);
  auto& st = *state_;
  if (!mqtt::is_valid_topic_name(topic) || qos == mqtt::qos::exactly_once) {
    return twin::error{400, "Invalid topic or qos"};
  }
  if (!topic.starts_with("$")) {
    st.route(topic, payload, qos);
    return {};
  }
  const auto request = parse_shadow_topic(topic);
  if (!request || !twin::is_valid_thing_name(request->thing) ||
      (!request->shadow.empty() && !twin::is_valid_shadow_name(request->shadow))) {
    return twin::error{400, "Publishing to this reserved topic is not allowed"};
  }
  // Served as a device's publish would be, by an identity that may act for every thing.
  connection_state service;
  service.kind = dialect::aws;
  service.aws_admin = true;
  struct no_link final : link {
    void send(std::string_view, std::string_view, mqtt::qos) override {}
    void close() override {}
    [[nodiscard]] const link_info& info() const override { return info_; }
    link_info info_;
  } none;
  mqtt::publish_packet publish;
  publish.topic = topic;
  publish.payload = payload;
  publish.qos = qos;
  aws_device_publish(st, none, service, publish, now);
  return {};
}

json::object hub_core::aws_list_named_shadows(std::string_view thing, std::string_view next_token,
                                              std::size_t page_size, time_point now) const {
  json::array results;
  std::string next;
  if (auto t = state_->aws_things.find(thing); t != state_->aws_things.end()) {
    // Names in order; the token is the last name of the previous page.
    auto it = next_token.empty() ? t->second.shadows.begin() : t->second.shadows.upper_bound(next_token);
    for (; it != t->second.shadows.end(); ++it) {
      if (it->first.empty() || !it->second.exists()) continue;  // the classic shadow is not listed
      if (results.size() == page_size) {
        next = results.back().as_string().c_str();
        break;
      }
      results.emplace_back(it->first);
    }
  }
  json::object out;
  out["results"] = std::move(results);
  out["nextToken"] = next.empty() ? json::value(nullptr) : json::value(next);
  out["timestamp"] = twin::epoch_seconds(now);
  return out;
}

}  // namespace twinfleet::hub
