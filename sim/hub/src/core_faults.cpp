// hub_core's fault injection and throttling (faults.hpp; PROTOCOLS.md C3, A14, B7).
//
// Faults act on what the hub sends to devices (state::send and state::route): a subscription
// not yet active drops, then the first delivery rule for the message's kind may drop it,
// duplicate it, delay it (plus jitter) or hold it back so later messages overtake it. Delayed
// messages wait in `delayed` and leave from on_timer; a connection that is gone by then (its
// serial no longer matches) gets nothing. The dialects ask for the two faults that change what
// they do: the accepted/delta swap and skipped desired versions. Reported writes a device sends
// may be held back (held_requests, reported_reorder) before they go on to the throttle. A
// connection taken over may stay served for takeover_grace (taken_over) before it is closed.
//
// Throttling is a token bucket per throttle_class (and per thing for AWS shadows) with a FIFO of
// requests waiting for tokens; a full FIFO refuses. Device publishes pass through it in
// hub_core::on_publish, REST requests in the router (throttle_admit), CONNECTs in on_connect
// (refused at once with CONNACK 3, never queued).
#include "core_state.hpp"

#include <twinfleet/twin/aws_shadow.hpp>

#include <boost/json/serialize.hpp>

#include <algorithm>
#include <cmath>

namespace twinfleet::hub {

namespace {

using std::chrono::duration_cast;
using std::chrono::microseconds;

std::size_t index(outbound_kind k) { return static_cast<std::size_t>(k); }
std::size_t index(throttle_class c) { return static_cast<std::size_t>(c); }

const delivery_fault* rule_for(const fault_settings& f, outbound_kind kind) {
  for (const auto& rule : f.delivery) {
    if (rule.kinds.empty() || std::find(rule.kinds.begin(), rule.kinds.end(), kind) != rule.kinds.end()) {
      return &rule;
    }
  }
  return nullptr;
}

const rate_limit& limit_of(const throttle_settings& t, throttle_class c) {
  switch (c) {
    case throttle_class::azure_connects: return t.azure_connects;
    case throttle_class::azure_twin_reads: return t.azure_twin_reads;
    case throttle_class::azure_twin_updates: return t.azure_twin_updates;
    case throttle_class::azure_d2c: return t.azure_d2c;
    case throttle_class::azure_methods: return t.azure_methods;
    case throttle_class::azure_registry: return t.azure_registry;
    case throttle_class::aws_shadow_per_thing: return t.aws_shadow_per_thing;
    case throttle_class::aws_shadow_account: return t.aws_shadow_account;
    case throttle_class::aws_connects: return t.aws_connects;
    case throttle_class::aws_connection_deliveries: return t.aws_connection_deliveries;
  }
  return t.azure_connects;
}

bool applies(const throttle_settings& t, throttle_class c) {
  if ((c == throttle_class::aws_shadow_per_thing || c == throttle_class::aws_connection_deliveries) && !t.aws_enabled) {
    return false;
  }
  return limit_of(t, c).limited();
}

double capacity(const rate_limit& l) { return std::max(1.0, l.burst > 0 ? l.burst : l.per_second); }

template <class Bucket>  // throttle_bucket or token_bucket
void refill(Bucket& b, const rate_limit& l, time_point now) {
  if (b.updated == time_point{}) {
    b.tokens = capacity(l);
  } else if (now > b.updated) {
    const double seconds = std::chrono::duration<double>(now - b.updated).count();
    b.tokens = std::min(capacity(l), b.tokens + seconds * l.per_second);
  }
  b.updated = std::max(b.updated, now);
}

// When a bucket `deficit` tokens short at `now` has them back, at `rate` a second: rounded up
// to the clock's tick, so that a refill then finds them, and never `now` itself. Truncated, it
// fell a fraction of a token short (up to rate × 1 ns); the wait for that fraction truncated to
// zero, and on_timer rescheduled the request at `now`, for ever: a hub that spun in on_timer
// and answered nothing more, not even SIGTERM (stop 14).
time_point refilled_at(time_point now, double deficit, double rate) {
  const auto wait = std::chrono::ceil<time_point::duration>(std::chrono::duration<double>(std::max(0.0, deficit) / rate));
  return now + std::max(wait, time_point::duration(1));
}

// The exponential gap before the next random forced disconnect.
time_point next_poisson(std::mt19937_64& rng, double per_second, time_point from) {
  if (per_second <= 0) return time_point::max();
  std::exponential_distribution<double> gap(per_second);
  return from + duration_cast<time_point::duration>(std::chrono::duration<double>(gap(rng)));
}

}  // namespace

std::string_view to_string(throttle_class c) noexcept {
  switch (c) {
    case throttle_class::azure_connects: return "connect";
    case throttle_class::azure_twin_reads: return "twin_read";
    case throttle_class::azure_twin_updates: return "twin_update";
    case throttle_class::azure_d2c: return "telemetry";
    case throttle_class::azure_methods: return "method";
    case throttle_class::azure_registry: return "registry";
    case throttle_class::aws_shadow_per_thing: return "shadow_per_thing";
    case throttle_class::aws_shadow_account: return "shadow_account";
    case throttle_class::aws_connects: return "connect";
    case throttle_class::aws_connection_deliveries: return "connection_delivery";
  }
  return "unknown";
}

// ---------------------------------------------------------------------------------------------
// delivery faults

bool hub_core::state::chance(double p) {
  if (p <= 0) return false;
  if (p >= 1) return true;
  return std::uniform_real_distribution<double>(0.0, 1.0)(rng) < p;
}

bool hub_core::state::admit_delivery(link& to) {
  auto* cs = to.core_state;
  if (cs == nullptr || cs->kind != dialect::aws) return true;
  const auto& t = settings.throttle;
  if (!applies(t, throttle_class::aws_connection_deliveries)) return true;
  refill(cs->deliveries, t.aws_connection_deliveries, clock);
  if (cs->deliveries.tokens >= 1) {
    cs->deliveries.tokens -= 1;
    return true;
  }
  ++counters.throttle_rejected[index(throttle_class::aws_connection_deliveries)];
  return false;
}

void hub_core::state::send(link& to, std::string_view topic, std::string_view payload, mqtt::qos qos) {
  // AWS: at most aws_connection_deliveries a second to one connection; the excess is lost.
  if (settings.throttle.aws_enabled && !admit_delivery(to)) return;
  const auto& f = settings.faults;
  if (!f.any()) {
    to.send(topic, payload, qos);
    return;
  }
  const auto kind = classify_outbound(topic);
  if (index(kind) < 3) {  // Azure: each documented subscription has its own activation time
    auto cs = connections.find(&to);
    if (cs != connections.end() && cs->second.azure_active_from[index(kind)] > clock) {
      ++counters.faults_not_yet_subscribed[index(kind)];
      return;
    }
  }
  const auto* rule = rule_for(f, kind);
  if (rule == nullptr) {
    to.send(topic, payload, qos);
    return;
  }
  if (chance(rule->drop)) {
    ++counters.faults_dropped[index(kind)];
    return;
  }
  const int copies = chance(rule->duplicate) ? 2 : 1;
  if (copies == 2) ++counters.faults_duplicated[index(kind)];
  auto delay = duration_cast<time_point::duration>(rule->delay);
  if (rule->jitter.count() > 0) {
    delay += duration_cast<time_point::duration>(
        microseconds(std::uniform_int_distribution<std::int64_t>(0, rule->jitter.count() - 1)(rng)));
  }
  if (chance(rule->reorder)) {
    ++counters.faults_reordered[index(kind)];
    delay += duration_cast<time_point::duration>(rule->reorder_hold);
  }
  if (delay.count() <= 0) {
    for (int i = 0; i < copies; ++i) to.send(topic, payload, qos);
    return;
  }
  auto cs = connections.find(&to);
  if (cs == connections.end()) return;
  ++counters.faults_delayed[index(kind)];
  const auto due = clock + delay;
  for (int i = 0; i < copies; ++i) {
    delayed.emplace(due, delayed_send{&to, cs->second.serial, std::string(topic), std::string(payload), qos});
  }
  wake(due);
}

bool hub_core::state::swap_accepted_delta() {
  if (!chance(settings.faults.aws_swap_accepted_delta)) return false;
  ++counters.faults_accepted_delta_swapped;
  return true;
}

std::int64_t hub_core::state::desired_versions_to_skip() {
  if (!chance(settings.faults.azure_skip_desired_versions)) return 0;
  const auto n = std::uniform_int_distribution<std::int64_t>(1, std::max<std::int64_t>(1, settings.faults.azure_skip_max))(rng);
  counters.faults_desired_versions_skipped += static_cast<std::uint64_t>(n);
  return n;
}

void hub_core::set_faults(fault_settings faults, time_point now) {
  auto& st = *state_;
  st.clock = std::max(st.clock, now);
  st.settings.faults = std::move(faults);
  st.rng.seed(st.settings.faults.seed);
  st.faults_since = now;
  st.next_scheduled_disconnect = 0;
  st.next_random_disconnect = next_poisson(st.rng, st.settings.faults.disconnects_per_second, now);
  if (!st.settings.faults.disconnect_schedule.empty()) st.wake(now + st.settings.faults.disconnect_schedule.front().at);
  st.wake(st.next_random_disconnect);
}

const fault_settings& hub_core::faults() const noexcept { return state_->settings.faults; }

void hub_core::state::close_taken_over(link& old, time_point now) {
  const auto grace = settings.faults.takeover_grace;
  auto cs = connections.find(&old);
  if (grace.count() <= 0 || cs == connections.end()) {
    old.close();
    return;
  }
  // Fault (C1.8): the replaced connection lives on for the grace, as on a hub whose gateways
  // learn of the new connection late; what it sends meanwhile is served, so its reported
  // writes can land after the new connection's. Closed when due, if it is still the same one.
  ++counters.faults_takeovers_delayed;
  const auto due = std::max(clock, now) + duration_cast<time_point::duration>(grace);
  taken_over.emplace(due, std::pair{&old, cs->second.serial});
  wake(due);
}

// A back end's observer connection (its certificate CN is an admin name), not a device.
bool is_backend_observer(const hub_core::state& st, const link& connection, const connection_state& cs) {
  if (cs.kind != dialect::aws || !cs.aws_admin) return false;
  const auto& cert = connection.info().certificate;
  if (!cert) return false;
  const auto& names = st.settings.aws_admin_common_names;
  return std::find(names.begin(), names.end(), cert->common_name) != names.end();
}

// Closes `count` device connections of `backend` (all when nullopt) chosen with the fault
// generator, or `fraction` of them when count is nullopt.
std::size_t disconnect_random(hub_core::state& st, std::optional<std::size_t> count, double fraction,
                              std::optional<dialect> backend) {
  std::vector<std::pair<std::uint64_t, link*>> candidates;
  for (const auto& [connection, cs] : st.connections) {
    if (is_backend_observer(st, *connection, cs)) continue;  // the harness, not the fleet
    if (backend && cs.kind != *backend) continue;
    candidates.emplace_back(cs.serial, connection);
  }
  // A stable order first, so that the seeded choice does not depend on hash-table layout.
  std::sort(candidates.begin(), candidates.end());
  const auto n = count ? *count
                       : static_cast<std::size_t>(
                             std::llround(std::clamp(fraction, 0.0, 1.0) * static_cast<double>(candidates.size())));
  std::shuffle(candidates.begin(), candidates.end(), st.rng);
  candidates.resize(std::min(n, candidates.size()));
  for (auto& [serial, connection] : candidates) {
    ++st.counters.faults_forced_disconnects;
    connection->close();
  }
  return candidates.size();
}

std::size_t hub_core::force_disconnect(double fraction, std::optional<dialect> backend) {
  return disconnect_random(*state_, std::nullopt, fraction, backend);
}

bool hub_core::force_disconnect(std::string_view id) {
  auto& st = *state_;
  link* target = nullptr;
  if (auto* d = st.find_device(id); d != nullptr && d->connection != nullptr) target = d->connection;
  if (target == nullptr) {
    if (auto it = st.aws_clients.find(id); it != st.aws_clients.end()) target = it->second;
  }
  if (target == nullptr) return false;
  ++st.counters.faults_forced_disconnects;
  target->close();
  return true;
}

// ---------------------------------------------------------------------------------------------
// throttling

void hub_core::set_throttle(throttle_settings throttle) { state_->settings.throttle = std::move(throttle); }
const throttle_settings& hub_core::throttle() const noexcept { return state_->settings.throttle; }
std::size_t hub_core::throttle_queue_depth(throttle_class c) const noexcept { return state_->queue_depth[index(c)]; }
void hub_core::set_wakeup(std::function<void(time_point)> wakeup) { state_->wakeup = std::move(wakeup); }

void hub_core::throttle_admit(throttle_class c, std::string_view key, double cost, time_point now,
                              std::function<void(time_point)> run, std::function<void()> reject) {
  state_->clock = std::max(state_->clock, now);
  state_->throttle_admit(c, key, cost, now, std::move(run), std::move(reject));
}

bool hub_core::state::admit_connect(throttle_class c, std::string_view key, time_point now) {
  if (!applies(settings.throttle, c)) return true;
  const auto& limit = limit_of(settings.throttle, c);
  auto& b = buckets[index(c)][std::string(key)];
  refill(b, limit, now);
  if (b.tokens >= 1) {
    b.tokens -= 1;
    return true;
  }
  ++counters.throttle_rejected[index(c)];
  return false;
}

void hub_core::state::throttle_admit(throttle_class c, std::string_view key, double cost, time_point now,
                                     std::function<void(time_point)> run, std::function<void()> reject) {
  if (!applies(settings.throttle, c)) {
    run(now);
    return;
  }
  const auto& limit = limit_of(settings.throttle, c);
  cost = std::clamp(cost, 0.0, capacity(limit));  // a request bigger than the bucket still passes, slowly
  auto [it, inserted] = buckets[index(c)].try_emplace(std::string(key));
  auto& b = it->second;
  refill(b, limit, now);
  if (b.queue.empty() && b.tokens >= cost) {
    b.tokens -= cost;
    run(now);
    return;
  }
  if (b.queue.size() >= limit.queue) {
    ++counters.throttle_rejected[index(c)];
    reject();
    return;
  }
  ++counters.throttle_queued[index(c)];
  ++queue_depth[index(c)];
  b.queue.push_back(throttle_waiting{cost, std::move(run)});
  if (!b.scheduled) {
    const auto due = refilled_at(now, b.queue.front().cost - b.tokens, limit.per_second);
    throttle_due.emplace(due, std::pair{c, it->first});
    b.scheduled = true;
    wake(due);
  }
}

namespace {

// What a device publish costs, and from which bucket: nullopt when no limit meters it.
struct metered {
  throttle_class c;
  std::string key;
};

std::optional<metered> meter_of(const connection_state& cs, std::string_view topic) {
  if (cs.kind == dialect::azure) {
    if (topic.starts_with("$iothub/twin/GET/")) return metered{throttle_class::azure_twin_reads, {}};
    if (topic.starts_with("$iothub/twin/PATCH/properties/reported/")) {
      return metered{throttle_class::azure_twin_updates, {}};
    }
    if (topic.starts_with("devices/")) return metered{throttle_class::azure_d2c, {}};
    return std::nullopt;
  }
  constexpr std::string_view prefix = "$aws/things/";
  if (!topic.starts_with(prefix)) return std::nullopt;
  const auto rest = topic.substr(prefix.size());
  const auto slash = rest.find('/');
  if (slash == std::string_view::npos || rest.substr(slash).find("/shadow/") != 0) return std::nullopt;
  if (!topic.ends_with("/get") && !topic.ends_with("/update") && !topic.ends_with("/delete")) return std::nullopt;
  return metered{throttle_class::aws_shadow_per_thing, std::string(rest.substr(0, slash))};
}

// The value of `$rid` in an Azure topic's query, or empty.
std::string_view rid_of(std::string_view topic) {
  const auto q = topic.find("?");
  if (q == std::string_view::npos) return {};
  auto query = topic.substr(q + 1);
  while (!query.empty()) {
    const auto amp = query.find('&');
    const auto pair = query.substr(0, amp);
    if (pair.starts_with("$rid=")) return pair.substr(5);
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return {};
}

// The platform's refusal when the queue is full: Azure answers a twin request 429 (IoT Hub's
// ThrottlingException, 429001) and ends a device that floods telemetry past its backlog; AWS
// answers 429 on the request's /rejected topic.
void refuse_throttled(hub_core::state& st, link& device, const connection_state& cs, std::string_view topic,
                      std::string_view payload) {
  if (cs.kind == dialect::azure) {
    if (topic.starts_with("devices/")) {
      st.close_by_hub(device);
      return;
    }
    const auto rid = rid_of(topic);
    if (!cs.twin_responses || rid.empty()) return;
    const json::object body{{"errorCode", 429001},
                            {"message", "ThrottlingException: the operation was throttled; retry later."}};
    st.send(device, "$iothub/twin/res/429/?$rid=" + std::string(rid), json::serialize(body), *cs.twin_responses);
    return;
  }
  const auto token = twin::aws_echo_client_token(payload, st.settings.aws_limits);
  const auto document = twin::make_aws_error_document(twin::error{429, "Too Many Requests"}, token, st.clock);
  st.route(std::string(topic) + "/rejected", json::serialize(document), mqtt::qos::at_least_once);
}

// A request that waits (in a throttle queue, or held back by a fault): its bytes, kept until
// it is served.
struct held {
  std::string topic;
  std::string payload;
  mqtt::qos qos;
  bool retain;
  std::uint16_t packet_id;

  static std::shared_ptr<held> of(const mqtt::publish_packet& publish) {
    return std::make_shared<held>(
        held{std::string(publish.topic), std::string(publish.payload), publish.qos, publish.retain, publish.packet_id});
  }
  [[nodiscard]] mqtt::publish_packet packet() const {
    mqtt::publish_packet p;
    p.topic = topic;
    p.payload = payload;
    p.qos = qos;
    p.retain = retain;
    p.packet_id = packet_id;
    return p;
  }
};

// The device publishes that `reported_reorder` may hold back: writes of reported state.
bool is_reported_write(const connection_state& cs, std::string_view topic) {
  if (cs.kind == dialect::azure) return topic.starts_with("$iothub/twin/PATCH/properties/reported/");
  return topic.starts_with("$aws/things/") && topic.find("/shadow/") != std::string_view::npos &&
         topic.ends_with("/update");
}

// Through the throttle, then dispatched.
void admit_device_publish(hub_core::state& st, link& device, connection_state& cs, const mqtt::publish_packet& publish,
                          time_point now) {
  auto meter = meter_of(cs, publish.topic);
  if (!meter) {
    dispatch_device_publish(st, device, cs, publish, now);
    return;
  }
  // The request may wait: keep its bytes, and serve it only if the same connection still
  // stands when it leaves the queue.
  auto h = held::of(publish);
  const auto serial = cs.serial;
  auto serve = [&st, &device, serial, h](time_point at) {
    auto it = st.connections.find(&device);
    if (it == st.connections.end() || it->second.serial != serial) return;
    dispatch_device_publish(st, device, it->second, h->packet(), at);
  };
  auto refuse = [&st, &device, serial, h] {
    auto it = st.connections.find(&device);
    if (it == st.connections.end() || it->second.serial != serial) return;
    refuse_throttled(st, device, it->second, h->topic, h->payload);
  };
  if (meter->c == throttle_class::aws_shadow_per_thing) {
    // Per thing first, then the account's rate (B7).
    auto account = [&st, serve, refuse](time_point at) {
      st.throttle_admit(throttle_class::aws_shadow_account, "", 1, at, serve, refuse);
    };
    st.throttle_admit(meter->c, meter->key, 1, now, std::move(account), std::move(refuse));
    return;
  }
  st.throttle_admit(meter->c, meter->key, 1, now, std::move(serve), std::move(refuse));
}

}  // namespace

void throttled_device_publish(hub_core::state& st, link& device, connection_state& cs,
                              const mqtt::publish_packet& publish, time_point now) {
  const auto& f = st.settings.faults;
  if (f.reported_reorder > 0 && is_reported_write(cs, publish.topic) && st.chance(f.reported_reorder)) {
    // Fault: held back, so that the connection's later requests overtake it (C1.4); then it
    // goes on as if it had just arrived, if the same connection still stands.
    ++(cs.kind == dialect::azure ? st.counters.faults_azure_reported_reordered
                                 : st.counters.faults_aws_reported_reordered);
    auto h = held::of(publish);
    const auto serial = cs.serial;
    const auto due = now + duration_cast<time_point::duration>(f.reported_reorder_hold);
    st.held_requests.emplace(due, [&st, &device, serial, h](time_point at) {
      auto it = st.connections.find(&device);
      if (it == st.connections.end() || it->second.serial != serial) return;
      admit_device_publish(st, device, it->second, h->packet(), at);
    });
    st.wake(due);
    return;
  }
  admit_device_publish(st, device, cs, publish, now);
}

// ---------------------------------------------------------------------------------------------
// the timer's share: delayed deliveries, queued requests, forced disconnects

std::optional<time_point> faults_deadline(const hub_core::state& st) {
  std::optional<time_point> next;
  auto consider = [&](time_point t) {
    if (!next || t < *next) next = t;
  };
  if (!st.delayed.empty()) consider(st.delayed.begin()->first);
  if (!st.throttle_due.empty()) consider(st.throttle_due.begin()->first);
  if (!st.held_requests.empty()) consider(st.held_requests.begin()->first);
  if (!st.taken_over.empty()) consider(st.taken_over.begin()->first);
  const auto& schedule = st.settings.faults.disconnect_schedule;
  if (st.next_scheduled_disconnect < schedule.size()) {
    consider(st.faults_since + schedule[st.next_scheduled_disconnect].at);
  }
  if (st.next_random_disconnect != time_point::max()) consider(st.next_random_disconnect);
  return next;
}

void faults_on_timer(hub_core::state& st, time_point now) {
  while (!st.delayed.empty() && st.delayed.begin()->first <= now) {
    auto node = st.delayed.extract(st.delayed.begin());
    const auto& d = node.mapped();
    auto cs = st.connections.find(d.connection);
    if (cs != st.connections.end() && cs->second.serial == d.serial) d.connection->send(d.topic, d.payload, d.qos);
  }
  while (!st.held_requests.empty() && st.held_requests.begin()->first <= now) {
    auto node = st.held_requests.extract(st.held_requests.begin());
    node.mapped()(now);
  }
  while (!st.taken_over.empty() && st.taken_over.begin()->first <= now) {
    const auto [connection, serial] = st.taken_over.begin()->second;
    st.taken_over.erase(st.taken_over.begin());
    auto cs = st.connections.find(connection);
    if (cs != st.connections.end() && cs->second.serial == serial) connection->close();
  }
  while (!st.throttle_due.empty() && st.throttle_due.begin()->first <= now) {
    auto node = st.throttle_due.extract(st.throttle_due.begin());
    const auto [c, key] = node.mapped();
    auto& map = st.buckets[index(c)];
    auto it = map.find(key);
    if (it == map.end()) continue;
    auto& b = it->second;
    b.scheduled = false;
    const auto& limit = limit_of(st.settings.throttle, c);
    if (!limit.limited()) {  // throttling was switched off: let everyone through
      b.tokens = static_cast<double>(b.queue.size()) + capacity(limit);
    } else {
      refill(b, limit, now);
    }
    // A request runs when its tokens are there; the small tolerance absorbs the rounding of
    // the due time.
    while (!b.queue.empty() && b.tokens + 1e-9 >= b.queue.front().cost) {
      b.tokens -= b.queue.front().cost;
      auto run = std::move(b.queue.front().run);
      b.queue.pop_front();
      --st.queue_depth[index(c)];
      run(now);
    }
    if (!b.queue.empty()) {
      const double rate = limit.limited() ? limit.per_second : 1e9;
      st.throttle_due.emplace(refilled_at(now, b.queue.front().cost - b.tokens, rate), std::pair{c, key});
      b.scheduled = true;
    }
  }
  const auto& f = st.settings.faults;
  while (st.next_scheduled_disconnect < f.disconnect_schedule.size() &&
         st.faults_since + f.disconnect_schedule[st.next_scheduled_disconnect].at <= now) {
    const auto& e = f.disconnect_schedule[st.next_scheduled_disconnect++];
    std::optional<dialect> backend;
    if (e.backend) backend = *e.backend == "aws" ? dialect::aws : dialect::azure;
    (void)disconnect_random(st, std::nullopt, e.fraction, backend);
  }
  while (st.next_random_disconnect <= now) {
    (void)disconnect_random(st, 1, 0, std::nullopt);
    st.next_random_disconnect = next_poisson(st.rng, f.disconnects_per_second, st.next_random_disconnect);
  }
}

}  // namespace twinfleet::hub
