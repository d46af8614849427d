// The AWS device coroutine (aws_runner.hpp).
#include <twinfleet/device/aws_runner.hpp>

#include <twinfleet/backends/reconcile.hpp>
#include <twinfleet/device/desired.hpp>

#include "runner_common.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>

namespace twinfleet::device {

namespace {

namespace asio = boost::asio;
namespace json = boost::json;
using steady = std::chrono::steady_clock;

struct shadow_state {
  std::string name;  // "" classic
  std::string key;   // the observer's name
  backends::aws_delta_filter filter;
  json::object mirrored;  // what this shadow's reported holds for the writable properties
  detail::fifo<backends::shadow_delta> inbox;
  std::int64_t document_version = 0;  // the last GET's: deltas up to it are in force already
};

// A command request received on the convention's topic (aws_runner.hpp).
struct command_request {
  std::string name;
  json::value request_id;
  json::value payload;
};

struct device_state : detail::device_core {
  device_state(asio::any_io_executor ex, aws_device_run&& r, device_observer& o)
      : device_core(r.device_profile, r.index, r.slot, r.seed, r.session.thing_name),
        observer(o),
        hub(r.hub),
        transport(std::move(r.transport)),
        request_timeout(r.request_timeout),
        command_prefix(aws_command_topic_prefix(r.session.thing_name)),
        session(ex, std::move(r.session)),
        wake(detail::context_executor(ex)) {
    for (auto& name : r.shadows) {
      shadow_state sh;
      sh.key = shadow_key(id, name);
      sh.name = std::move(name);
      sh.filter = backends::aws_delta_filter(backends::aws_delta_filter::options{p().quirks.shared_version_counter});
      shadows.push_back(std::move(sh));
    }
  }

  device_observer& observer;
  asio::ip::tcp::endpoint hub;
  std::shared_ptr<const net::client_transport> transport;  // null: plain TCP (the run's)
  std::chrono::milliseconds request_timeout;
  std::string command_prefix;
  backends::aws_device_session session;
  detail::wake_timer wake;
  detail::sleeper asleep{wake};  // woken by a stop
  std::vector<shadow_state> shadows;
  detail::fifo<command_request> commands;
  detail::device_life<device_state> life;  // what its life is bound by (start_device, device_main)
  bool lost = false;
  bool first_connect = true;

  shadow_state* find(std::string_view name) {
    for (auto& s : shadows) {
      if (s.name == name) return &s;
    }
    return nullptr;
  }
  void poke() { wake.cancel(); }
  bool has_pending() const {
    if (!commands.empty()) return true;
    for (const auto& sh : shadows) {
      if (!sh.inbox.empty()) return true;
    }
    return false;
  }
};

// Sends {"reported": patch} to a shadow; returns the accepted version, or nothing.
asio::awaitable<std::optional<std::int64_t>> report(std::shared_ptr<device_state> s, std::string shadow,
                                                    json::object patch) {
  const auto start = steady::now();
  const auto session = s->session_serial;
  const auto serial = ++s->reported_serial;
  json::object state{{"reported", patch}};
  auto r = co_await s->session.async_update(shadow, state, std::nullopt, s->request_timeout);
  s->observer.reported(s->id, s->observer_slot(), steady::now() - start, r.has_value());
  if (!r) co_return std::nullopt;
  for (const auto& [k, v] : patch) s->last_reported[k] = v;
  const auto* version = r->if_contains("version");
  if (version == nullptr || !version->is_int64()) co_return std::nullopt;
  s->observer.reported_accepted(shadow_key(s->id, shadow), device_observer::no_slot, session, serial, version->get_int64());
  co_return version->get_int64();
}

// Applies desired `state` (a delta, or a GET's desired) of `version` to one shadow, and
// acknowledges it by reporting the values in force that changed (the mirror).
asio::awaitable<void> apply(std::shared_ptr<device_state> s, shadow_state& sh, const json::object& desired,
                            std::int64_t version, desired_via via) {
  json::object mirror;
  int status = 200;
  for (const auto& [key, value] : desired) {
    const auto* prop = s->p().find_desired(key);
    if (prop == nullptr) continue;
    const auto* current = s->in_force.if_contains(key);
    const auto decision = decide_desired(*prop, value, current != nullptr ? *current : prop->initial);
    s->in_force[key] = decision.value;
    if (!decision.accepted) status = decision.status;
    if (!prop->ack) continue;
    // Report only what this shadow does not already hold: a refused value that stays desired
    // re-fires the delta after every update (C2.5), and answering it again would loop.
    const auto* held = sh.mirrored.if_contains(key);
    if (held != nullptr && *held == decision.value) continue;
    for (auto& [k, v] : aws_reported_mirror(key, decision)) mirror[k] = v;
  }
  if (!mirror.empty()) {
    const std::string shadow = sh.name;
    const auto accepted = co_await report(s, shadow, mirror);
    if (accepted) {
      for (const auto& [k, v] : mirror) sh.mirrored[k] = v;
    } else {
      // No answer is not a refusal: the hub may have applied the update and lost its
      // /update/accepted. What the shadow holds for these keys is unknown now, so the next
      // delta that names them is answered even with a value this device reported before.
      for (const auto& [k, v] : mirror) sh.mirrored.erase(k);
    }
  }
  s->observer.desired_applied(sh.key, version, status);
  s->observer.desired_applied_via(sh.key, version, via, status);
}

// The convention's command requests, subscribed after the shadows (aws_runner.hpp).
asio::awaitable<bool> subscribe_commands(std::shared_ptr<device_state> s) {
  const std::string filter = s->command_prefix + "+";
  co_return !(co_await s->session.async_subscribe_topic(filter));
}

// A /get that retries sooner than the request timeout. SUBACK does not mean delivery has
// started (C2.4): a /get sent right after it can lose its answer, and a device that waited the
// whole request timeout (10 s) would apply nothing meanwhile. Each try is a new request with a
// new clientToken (an answer to an earlier one is then ignored), after 0.5 s, 1 s, 2 s, ...,
// within the request timeout in all. The no_get_retry quirk is the device that waits.
asio::awaitable<backends::device_result<json::object>> get_shadow(device_state& s, std::string_view shadow) {
  if (s.p().quirks.no_get_retry) {
    auto doc = co_await s.session.async_get(shadow, s.request_timeout);
    co_return doc;
  }
  const auto deadline = steady::now() + s.request_timeout;
  std::chrono::milliseconds wait{500};
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady::now());
    const auto timeout = std::max(std::chrono::milliseconds(1), std::min(wait, left));
    auto doc = co_await s.session.async_get(shadow, timeout);
    if (doc || doc.error().ec != backends::device_errc::timeout || timeout >= left) co_return doc;
    wait *= 2;
  }
}

asio::awaitable<bool> synchronise(std::shared_ptr<device_state> s, bool reconnect) {
  const auto& q = s->p().quirks;
  if (!q.get_before_subscribe) {
    const auto subscribing = steady::now();
    bool ok = true;
    for (auto& sh : s->shadows) {
      if (co_await s->session.async_subscribe_shadow(sh.name)) {
        ok = false;
        break;
      }
    }
    if (ok) ok = co_await subscribe_commands(s);
    s->observer.subscribed(s->id, steady::now() - subscribing, ok);
    if (!ok) co_return false;
  }
  if (!(reconnect && q.no_reconcile_on_reconnect)) {
    for (auto& sh : s->shadows) {
      if (q.get_before_subscribe) {
        // The quirk: the GET's answer topics are not subscribed yet, so subscribe just the
        // shadow being read, then its deltas arrive only from here on.
        if (co_await s->session.async_subscribe_shadow(sh.name)) co_return false;
      }
      const auto start = steady::now();
      auto doc = co_await get_shadow(*s, sh.name);
      s->observer.twin_read(sh.key, steady::now() - start, doc.has_value() || doc.error().status == 404);
      if (!doc) {
        if (doc.error().status != 404) co_return false;
        // No shadow yet: create it with the values in force (desired may come later).
        json::object initial;
        for (const auto& w : s->p().desired) {
          if (const auto* v = s->in_force.if_contains(w.name)) initial[w.name] = *v;
        }
        const std::string name = sh.name;
        // The filter is not advanced to this update's version: its /update/accepted says
        // nothing of desired state (C2.2), and a back end's write that created the shadow
        // first (a lower version) is still due here as a delta, then re-fired at this one.
        if (co_await report(s, name, initial)) sh.mirrored = initial;
        continue;
      }
      const auto version = doc->at("version").to_number<std::int64_t>();
      const auto& state = doc->at("state").as_object();
      if (const auto* reported = state.if_contains("reported"); reported != nullptr && reported->is_object()) {
        for (const auto& w : s->p().desired) {
          if (const auto* v = reported->as_object().if_contains(w.name)) sh.mirrored[w.name] = *v;
        }
      }
      sh.filter.on_document_applied(version);
      sh.document_version = version;
      s->observer.desired_delivered(sh.key, version, desired_via::get);
      if (const auto* desired = state.if_contains("desired"); desired != nullptr && desired->is_object()) {
        s->observer.desired_received(sh.key, version);
        co_await apply(s, sh, desired->as_object(), version, desired_via::get);
      }
    }
  } else {
    for (auto& sh : s->shadows) {
      if (q.get_before_subscribe && co_await s->session.async_subscribe_shadow(sh.name)) co_return false;
    }
  }
  if (q.get_before_subscribe && !co_await subscribe_commands(s)) co_return false;
  auto first = s->connect_reports(s->first_connect);
  if (!first.empty() && !s->shadows.empty()) (void)co_await report(s, s->shadows.front().name, std::move(first));
  co_return true;
}

// Answers one command request on `…/commands/{name}/response` (aws_runner.hpp).
asio::awaitable<void> answer_command(std::shared_ptr<device_state> s, command_request request) {
  auto respond = [s, topic = s->command_prefix + request.name + "/response",
                  id = request.request_id](int status, const json::value& body) -> asio::awaitable<void> {
    const json::object response{{"requestId", id}, {"status", status}, {"payload", body}};
    const std::string payload = json::serialize(response);
    (void)co_await s->session.connection().async_publish(topic, payload, mqtt::qos::at_least_once);
  };
  auto outcome = co_await detail::run_command(s, std::move(request.name), std::move(request.payload), respond);
  if (outcome.reboot) s->session.abort();
  if (!outcome.changes.empty() && !s->shadows.empty() && s->session.connected()) {
    (void)co_await report(s, s->shadows.front().name, std::move(outcome.changes));
  }
  s->poke();
}

}  // namespace

std::string aws_command_topic_prefix(std::string_view thing) {
  std::string p = "twinfleet/things/";
  p += thing;
  p += "/commands/";
  return p;
}

std::string shadow_key(std::string_view thing, std::string_view shadow) {
  return shadow.empty() ? std::string(thing) : std::string(thing) + "/" + std::string(shadow);
}

namespace {

// The device, with its session's handlers set (as make_device in azure_runner.cpp).
std::shared_ptr<device_state> make_device(asio::any_io_executor ex, aws_device_run&& run, device_observer& observer) {
  run.session.keep_alive = static_cast<std::uint16_t>(std::clamp<std::int64_t>(
      std::chrono::duration_cast<std::chrono::seconds>(run.device_profile->lifecycle.keep_alive).count(), 30, 1200));
  if (run.shadows.empty()) run.shadows.emplace_back();
  auto s = std::make_shared<device_state>(ex, std::move(run), observer);
  // The handlers hold a plain pointer: the session drops them before the state goes (its
  // destructor; as in azure_runner.cpp), and a std::function keeps a pointer without allocating (a weak_ptr, not
  // trivially copyable, took a heap block for each handler of every device).
  device_state* const st = s.get();
  s->session.set_delta_handler([st](backends::shadow_delta& d) {
    auto* sh = st->find(d.shadow);
    if (sh == nullptr) return;
    st->observer.desired_received(sh->key, d.version);
    st->observer.desired_delivered(sh->key, d.version, desired_via::delta);
    if (!sh->filter.on_delta(d.version)) {
      st->observer.desired_stale(sh->key, d.version);
      return;
    }
    sh->inbox.push_back(std::move(d));
    st->poke();
  });
  s->session.set_message_handler([st](const backends::shadow_message& m) {
    if (m.document == nullptr) return;
    auto* sh = st->find(m.shadow);
    if (sh == nullptr) return;
    if (m.operation == backends::shadow_operation::update && m.kind == backends::shadow_message_kind::accepted) {
      if (const auto* v = m.document->if_contains("version"); v != nullptr && v->is_int64()) {
        sh->filter.on_update_accepted(v->get_int64());
      }
    }
  });
  s->session.set_topic_handler([st](const mqtt::publish_packet& m) {
    if (!m.topic.starts_with(st->command_prefix)) return;
    const auto name = m.topic.substr(st->command_prefix.size());
    if (name.empty() || name.find('/') != std::string_view::npos) return;
    boost::system::error_code ec;
    auto body = json::parse(m.payload, ec);
    if (ec || !body.is_object()) return;
    auto& o = body.get_object();
    const auto* id = o.if_contains("requestId");
    if (id == nullptr || id->is_null()) return;
    command_request r;
    r.name = std::string(name);
    r.request_id = *id;
    if (auto* payload = o.if_contains("payload")) r.payload = std::move(*payload);
    st->commands.push_back(std::move(r));
    st->poke();
  });
  s->session.set_closed_handler([st](boost::system::error_code ec) { detail::connection_lost(*st, ec); });

  return s;
}

// What a connected device does when it wakes (as step in azure_runner.cpp): a flaky drop,
// commands, deltas, reports and telemetry. True when the loop should come round again at once.
asio::awaitable<bool> step(std::shared_ptr<device_state> s) {
  const auto& p = s->p();
  if (s->flaky_drop_due(steady::now())) {
    // The device's own network fails: the hub sees a lost connection, the device reconnects.
    s->session.abort();
    co_return true;
  }
  const auto answer_commands = [&s] {
    while (!s->commands.empty()) {
      asio::co_spawn(s->wake.get_executor(), answer_command(s, std::move(s->commands.front())), asio::detached);
      s->commands.pop_front();
    }
  };
  answer_commands();
  for (auto& sh : s->shadows) {
    while (!sh.inbox.empty()) {
      auto d = std::move(sh.inbox.front());
      sh.inbox.pop_front();
      if (d.version <= sh.document_version) {
        // Queued before a GET whose document was as new: applying it now would apply it
        // twice, or an older state over the document's.
        s->observer.desired_stale(sh.key, d.version);
        continue;
      }
      co_await detail::wait_apply_delay(*s, d.state, answer_commands);
      co_await apply(s, sh, d.state, d.version, desired_via::delta);
    }
  }
  auto due = s->due_reports(steady::now());
  if (!due.empty()) (void)co_await report(s, s->shadows.front().name, std::move(due));
  for (std::size_t m = 0; m < p.telemetry.size(); ++m) {
    auto& slot = s->telemetry[m];
    if (!slot.on || steady::now() < slot.due) continue;
    const auto& msg = p.telemetry[m];
    slot.due = next_period(slot.due, s->telemetry_interval(msg), steady::now());
    const auto topic = msg.aws_topic.expand(s->context(msg.name));
    const auto payload = json::serialize(s->telemetry_body(m));
    const auto start = steady::now();
    const auto ec = co_await s->session.connection().async_publish(topic, payload, mqtt::qos::at_least_once);
    s->observer.telemetry_sent(s->id, steady::now() - start, !ec);
    bool reboot = false;
    auto changes = s->apply_effects(msg.on_send, reboot);
    if (!changes.empty()) (void)co_await report(s, s->shadows.front().name, std::move(changes));
  }
  co_return false;
}

}  // namespace

// Not a coroutine itself: the run goes to the heap and only a pointer into the device's frame.
asio::awaitable<void> run_aws_device(aws_device_run run, device_observer& observer, steady::time_point until,
                                     std::shared_ptr<const std::atomic<bool>> stop) {
  return detail::device_main(std::make_unique<aws_device_run>(std::move(run)), observer, until, std::move(stop), &make_device, &synchronise,
                             &step);
}

void start_aws_device(asio::any_io_executor executor, aws_device_run run, device_observer& observer, steady::time_point until,
                        std::shared_ptr<const std::atomic<bool>> stop, std::function<void()> on_end) {
  detail::start_device(std::move(executor), std::move(run), observer, until, std::move(stop), &make_device, &synchronise,
                       &step, std::move(on_end));
}

}  // namespace twinfleet::device
