// The Azure device coroutine (azure_runner.hpp).
#include <twinfleet/device/azure_runner.hpp>

#include <twinfleet/backends/reconcile.hpp>
#include <twinfleet/device/desired.hpp>
#include <twinfleet/device/generator.hpp>
#include <twinfleet/device/random.hpp>
#include <twinfleet/device/template.hpp>

#include "runner_common.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <vector>

namespace twinfleet::device {

namespace {

namespace asio = boost::asio;
namespace json = boost::json;
using steady = std::chrono::steady_clock;
using backends::azure_subscription;

// Everything one device keeps; shared with the session's handlers and detached reports. The
// run's session settings move into the session; the state keeps only what it uses later.
struct device_state : detail::device_core {
  device_state(asio::any_io_executor ex, azure_device_run&& r, device_observer& o)
      : device_core(r.device_profile, r.index, r.slot, r.seed, r.session.device_id),
        observer(o),
        hub(r.hub),
        transport(std::move(r.transport)),
        request_timeout(r.request_timeout),
        renews_token(!r.session.sas_key.empty()),
        session(ex, std::move(r.session)),
        reconciler(backends::azure_desired_reconciler::options{p().quirks.ignore_desired_version}),
        wake(detail::context_executor(ex)) {}

  device_observer& observer;
  asio::ip::tcp::endpoint hub;
  std::shared_ptr<const net::client_transport> transport;  // null: plain TCP (the run's)
  std::chrono::milliseconds request_timeout;
  bool renews_token;  // SAS authentication: reconnect before the token expires
  backends::azure_device_session session;
  backends::azure_desired_reconciler reconciler;
  detail::wake_timer wake;
  detail::sleeper asleep{wake};  // woken by a stop
  detail::fifo<backends::desired_patch> inbox;
  detail::fifo<backends::method_request> methods;
  detail::device_life<device_state> life;  // what its life is bound by (start_device, device_main)
  bool lost = false;  // the connection ended (closed handler)
  bool first_connect = true;
  std::int64_t document_version = 0;  // the last GET's desired $version: patches up to it are in force
  bool resync_wanted = false;  // a desired $version gap was seen: GET the twin again (C1.3)

  void poke() { wake.cancel(); }
  bool has_pending() const { return !inbox.empty() || !methods.empty(); }
};

// Sends a reported patch and tells the observer; false when it failed.
asio::awaitable<bool> report(std::shared_ptr<device_state> s, json::object patch) {
  const auto start = steady::now();
  const auto session = s->session_serial;
  const auto serial = ++s->reported_serial;
  auto r = co_await s->session.async_patch_reported(patch, std::nullopt, s->request_timeout);
  s->observer.reported(s->id, s->observer_slot(), steady::now() - start, r.has_value());
  if (r) {
    for (const auto& [k, v] : patch) s->last_reported[k] = v;
    s->observer.reported_accepted(s->id, s->observer_slot(), session, serial, *r);
  }
  co_return r.has_value();
}

asio::awaitable<bool> nothing_sent() { co_return false; }

// Sends a reported patch (nothing when it is empty or the device is offline) and waits for its
// answer. Not a coroutine: the report's own awaitable is returned, so a report costs no frame
// of this function.
asio::awaitable<bool> send_report(std::shared_ptr<device_state> s, json::object patch) {
  if (patch.empty() || !s->session.connected()) return nothing_sent();
  if (s->p().quirks.no_wait_between_reported) {
    // The quirk: fire and forget, the next patch does not wait for this one's answer.
    asio::co_spawn(s->wake.get_executor(), report(s, std::move(patch)), asio::detached);
    return nothing_sent();
  }
  return report(std::move(s), std::move(patch));
}

// Applies one desired document or patch at `version`; returns the acknowledgement patch and
// the status (200, or the refusal's) for the observer.
std::pair<json::object, int> apply_desired(device_state& s, const json::object& desired, std::int64_t version) {
  json::object acks;
  int status = 200;
  for (const auto& [key, value] : desired) {
    if (key.starts_with("$")) continue;
    const auto* prop = s.p().find_desired(key);
    if (prop == nullptr) continue;  // not this device's property: real devices ignore it
    const auto* current = s.in_force.if_contains(key);
    const auto decision = decide_desired(*prop, value, current != nullptr ? *current : prop->initial);
    s.in_force[key] = decision.value;
    if (!decision.accepted) status = decision.status;
    if (prop->ack) {
      for (auto& [k, v] : azure_ack_patch(key, decision, version)) acks[k] = v;
    }
  }
  return {std::move(acks), status};
}

// A GET's desired state applied: its version and the acknowledgements still to send.
struct twin_applied {
  std::int64_t version;
  json::object acks;
  int status;
};

// GETs the twin and applies its desired state (both after a connect and after a $version gap):
// the notifications held since begin_sync() that are newer go to the inbox, and patches queued
// before it that the document covers are dropped when their turn comes. Nothing on failure.
asio::awaitable<std::optional<twin_applied>> get_and_apply(std::shared_ptr<device_state> s) {
  const auto start = steady::now();
  auto twin = co_await s->session.async_get_twin(s->request_timeout);
  s->observer.twin_read(s->id, steady::now() - start, twin.has_value());
  if (!twin) co_return std::nullopt;
  s->observer.desired_received(s->id, twin->desired_version);
  s->observer.desired_delivered(s->id, twin->desired_version, desired_via::get);
  auto [acks, status] = apply_desired(*s, twin->desired, twin->desired_version);
  s->document_version = twin->desired_version;
  for (auto& newer : s->reconciler.take_after_get(twin->desired_version)) s->inbox.push_back(std::move(newer));
  s->resync_wanted = false;  // this GET settles any gap seen before it
  twin_applied got{twin->desired_version, std::move(acks), status};
  co_return got;
}

// Sends a GET's acknowledgements; the state is then in force as the service sees it.
asio::awaitable<void> acknowledge(std::shared_ptr<device_state> s, twin_applied got) {
  (void)co_await send_report(s, std::move(got.acks));
  s->observer.desired_applied(s->id, got.version, got.status);
  s->observer.desired_applied_via(s->id, got.version, desired_via::get, got.status);
}

// Subscribes, GETs and reconciles, in the order the profile's quirks say (A6, C1.2).
asio::awaitable<bool> synchronise(std::shared_ptr<device_state> s, bool reconnect) {
  auto& q = s->p().quirks;
  const auto all = azure_subscription::twin_responses | azure_subscription::desired | azure_subscription::methods;
  if (reconnect && q.no_reconcile_on_reconnect) {
    // The quirk: back online without a GET; what changed meanwhile is never seen (C1.1).
    co_return !(co_await s->session.async_subscribe(all));
  }
  if (q.get_before_subscribe) {
    if (co_await s->session.async_subscribe(azure_subscription::twin_responses)) co_return false;
  } else {
    const auto subscribing = steady::now();
    const auto refused = co_await s->session.async_subscribe(all);
    s->observer.subscribed(s->id, steady::now() - subscribing, !refused);
    if (refused) co_return false;
    s->reconciler.begin_sync();
  }
  auto got = co_await get_and_apply(s);
  if (!got) co_return false;
  if (q.get_before_subscribe) {
    // The quirk's gap: a desired write between the GET and this SUBSCRIBE is never seen.
    if (co_await s->session.async_subscribe(azure_subscription::desired | azure_subscription::methods)) co_return false;
  }
  // Reported properties sent on each connection, with the acknowledgements.
  for (auto& [k, v] : s->connect_reports(s->first_connect)) got->acks[k] = std::move(v);
  co_await acknowledge(s, std::move(*got));
  co_return true;
}

// After a $version gap: GET the twin and apply its desired state, as after a connect.
// Notifications arriving meanwhile are held and sorted against the GET's version.
asio::awaitable<void> resync(std::shared_ptr<device_state> s) {
  s->reconciler.begin_sync();
  auto got = co_await get_and_apply(s);
  if (!got) {
    // No answer (the connection is going, or the hub is slow): release what was held; the
    // next connection GETs anyway.
    for (auto& n : s->reconciler.take_after_get(s->reconciler.applied_version())) s->inbox.push_back(std::move(n));
    co_return;
  }
  co_await acknowledge(s, std::move(*got));
}

asio::awaitable<void> answer_method(std::shared_ptr<device_state> s, backends::method_request request) {
  auto respond = [s, rid = request.rid](int status, const json::value& body) -> asio::awaitable<void> {
    (void)co_await s->session.async_respond_method(rid, status, body);
  };
  auto outcome = co_await detail::run_command(s, std::move(request.name), std::move(request.payload), respond);
  if (outcome.reboot) s->session.abort();
  if (!outcome.changes.empty()) (void)co_await send_report(s, std::move(outcome.changes));
  s->poke();
}

asio::awaitable<void> send_telemetry(std::shared_ptr<device_state> s, std::size_t message) {
  const auto& m = s->p().telemetry[message];
  backends::telemetry_properties props;
  props.content_type = m.content_type;
  props.content_encoding = m.content_encoding;
  const auto ctx = s->context(m.name);
  for (const auto& [key, value] : m.properties) props.application.emplace_back(key, value.expand(ctx));
  const auto payload = json::serialize(s->telemetry_body(message));
  const auto start = steady::now();
  const auto ec = co_await s->session.async_send_telemetry(payload, props);
  s->observer.telemetry_sent(s->id, steady::now() - start, !ec);
  bool reboot = false;
  auto changes = s->apply_effects(m.on_send, reboot);
  if (!changes.empty()) (void)co_await send_report(s, std::move(changes));
}

// The device, with its session's handlers set: they run inside the session's reader, keep what
// arrives and wake the device's loop. Not a coroutine, so none of this stays in a frame.
std::shared_ptr<device_state> make_device(asio::any_io_executor ex, azure_device_run&& run, device_observer& observer) {
  run.session.keep_alive = static_cast<std::uint16_t>(
      std::clamp<std::int64_t>(std::chrono::duration_cast<std::chrono::seconds>(run.device_profile->lifecycle.keep_alive).count(), 0, 65535));
  run.session.token_lifetime = std::chrono::duration_cast<std::chrono::seconds>(run.device_profile->lifecycle.sas_token_lifetime);
  if (run.session.model_id.empty()) run.session.model_id = run.device_profile->identity.azure.model_id;
  auto s = std::make_shared<device_state>(ex, std::move(run), observer);
  // The handlers hold a plain pointer: the session drops them before the state goes (its
  // destructor), and a std::function keeps a pointer without allocating (a weak_ptr, not
  // trivially copyable, took a heap block for each handler of every device).
  device_state* const st = s.get();
  s->session.set_desired_handler([st](backends::desired_patch& n) {
    st->observer.desired_received(st->id, n.version);
    st->observer.desired_delivered(st->id, n.version, desired_via::notification);
    const auto gaps = st->reconciler.gaps();
    switch (st->reconciler.on_notification(n)) {
      case backends::azure_desired_reconciler::verdict::apply: {
        st->inbox.push_back(std::move(n));
        // A jump past last + 1: a notification is missing, overtaken or lost. Applying the
        // newer one and dropping the older as stale when it comes would lose the older one's
        // properties; the twin's desired state settles what is in force (C1.3). The
        // no_resync_on_gap quirk is the device that trusts the newer patch alone.
        const auto& q = st->p().quirks;
        if (st->reconciler.gaps() > gaps && !q.ignore_desired_version && !q.no_resync_on_gap) st->resync_wanted = true;
        break;
      }
      case backends::azure_desired_reconciler::verdict::stale: st->observer.desired_stale(st->id, n.version); break;
      case backends::azure_desired_reconciler::verdict::buffered: break;
    }
    st->poke();
  });
  s->session.set_method_handler([st](backends::method_request& m) {
    st->methods.push_back(std::move(m));
    st->poke();
  });
  s->session.set_closed_handler([st](boost::system::error_code ec) { detail::connection_lost(*st, ec); });
  return s;
}

// What a connected device does when it wakes: token renewal, a flaky drop, desired patches,
// a resync, methods, reports and telemetry. True when the loop should come round again at once
// (the connection changed, or a resync ran); false when the device may sleep. Its own
// coroutine, so that its locals live in a frame only while it runs, not while the device sleeps.
asio::awaitable<bool> step(std::shared_ptr<device_state> s) {
  const auto& p = s->p();
  // SAS renewal: reconnect before the token expires, then reconcile (A4).
  if (s->renews_token && std::chrono::system_clock::now() >= s->session.token_renewal_due()) {
    const auto timeout = std::chrono::duration_cast<std::chrono::milliseconds>(p.lifecycle.connect_timeout);
    s->observer.session_ended(s->id, s->session_serial);  // a clean DISCONNECT: no closed handler
    if (!co_await s->session.async_reconnect(s->hub, detail::way_in(s->transport), timeout)) {
      s->session_serial = detail::next_session_serial();
      s->observer.session_started(s->id, s->session_serial);
      (void)co_await synchronise(s, true);
    }
    co_return true;
  }
  if (s->flaky_drop_due(steady::now())) {
    // The device's own network fails: the hub sees a lost connection, the device reconnects.
    s->session.abort();
    co_return true;
  }
  const auto answer_methods = [&s] {
    while (!s->methods.empty()) {
      asio::co_spawn(s->wake.get_executor(), answer_method(s, std::move(s->methods.front())), asio::detached);
      s->methods.pop_front();
    }
  };
  answer_methods();
  while (!s->inbox.empty()) {
    auto n = std::move(s->inbox.front());
    s->inbox.pop_front();
    if (n.version <= s->document_version && !s->p().quirks.ignore_desired_version) {
      // Queued before a GET (a reconnect, a gap's resync) whose desired state was as new.
      s->observer.desired_stale(s->id, n.version);
      continue;
    }
    co_await detail::wait_apply_delay(*s, n.patch, answer_methods);
    auto [acks, status] = apply_desired(*s, n.patch, n.version);
    (void)co_await send_report(s, std::move(acks));
    // Acknowledged: the service can see it now (convergence is measured to here).
    s->observer.desired_applied(s->id, n.version, status);
    s->observer.desired_applied_via(s->id, n.version, desired_via::notification, status);
  }
  if (s->resync_wanted && !s->lost) {
    s->resync_wanted = false;
    co_await resync(s);
    co_return true;
  }
  answer_methods();
  auto due_patch = s->due_reports(steady::now());
  if (!due_patch.empty()) (void)co_await send_report(s, std::move(due_patch));
  for (std::size_t m = 0; m < p.telemetry.size(); ++m) {
    if (auto& slot = s->telemetry[m]; slot.on && steady::now() >= slot.due) {
      slot.due = next_period(slot.due, s->telemetry_interval(p.telemetry[m]), steady::now());
      co_await send_telemetry(s, m);
    }
  }
  co_return false;
}

}  // namespace

// Not a coroutine itself: the run goes to the heap and only a pointer into the device's frame.
asio::awaitable<void> run_azure_device(azure_device_run run, device_observer& observer, steady::time_point until,
                                     std::shared_ptr<const std::atomic<bool>> stop) {
  return detail::device_main(std::make_unique<azure_device_run>(std::move(run)), observer, until, std::move(stop), &make_device, &synchronise,
                             &step);
}

void start_azure_device(asio::any_io_executor executor, azure_device_run run, device_observer& observer, steady::time_point until,
                        std::shared_ptr<const std::atomic<bool>> stop, std::function<void()> on_end) {
  detail::start_device(std::move(executor), std::move(run), observer, until, std::move(stop), &make_device, &synchronise,
                       &step, std::move(on_end));
}

}  // namespace twinfleet::device
