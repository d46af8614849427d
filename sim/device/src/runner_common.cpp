#include "runner_common.hpp"

#include <algorithm>
#include <deque>
#include <stdexcept>
#include <unordered_set>

namespace twinfleet::device::detail {

namespace json = boost::json;

namespace {
thread_local std::unordered_set<wake_timer*> sleepers;
thread_local bool stopping = false;
thread_local std::size_t connecting_limit = 0;  // limit_connecting_on_this_thread
thread_local steady::duration grid{0};           // wake_on_grid_on_this_thread
thread_local std::size_t connecting = 0;
// The devices waiting for a place, in order of arrival. A device woken for another reason
// (a stop) may still have an entry here: only the members of `waiting` count, and a device is
// queued once however often it asks. A place that frees goes straight to the first waiter
// (`granted`), so a device arriving meanwhile cannot take it.
thread_local std::deque<wake_timer*> connect_queue;
thread_local std::unordered_set<wake_timer*> waiting;
thread_local std::unordered_set<wake_timer*> granted;
}  // namespace

bool stopping_on_this_thread() noexcept { return stopping; }
steady::duration wake_grid_on_this_thread() noexcept { return grid; }

sleeper::sleeper(wake_timer& wake) : wake_(&wake) { sleepers.insert(wake_); }
sleeper::~sleeper() {
  sleepers.erase(wake_);
  waiting.erase(wake_);
  if (granted.erase(wake_) > 0) leave_connecting();  // a place given to a device that ended first
  // A thread's stop ends with its last device: devices started here later sleep again (tests
  // run one device after another on one thread).
  if (sleepers.empty()) stopping = false;
}

bool enter_connecting(wake_timer& wake) {
  if (granted.erase(&wake) > 0) return true;  // handed over by leave_connecting()
  if (connecting_limit == 0 || connecting < connecting_limit) {
    ++connecting;
    waiting.erase(&wake);
    return true;
  }
  if (waiting.insert(&wake).second) connect_queue.push_back(&wake);
  return false;
}

void leave_connecting() noexcept {
  while (!connect_queue.empty()) {
    auto* next = connect_queue.front();
    connect_queue.pop_front();
    if (waiting.erase(next) > 0) {
      granted.insert(next);  // the place stays counted, now the next device's
      next->cancel();
      return;
    }
  }
  if (connecting > 0) --connecting;
}

boost::asio::io_context::executor_type context_executor(const boost::asio::any_io_executor& ex) {
  if (const auto* own = ex.target<boost::asio::io_context::executor_type>()) return *own;
  throw std::invalid_argument("a device runs on an io_context's executor");
}

std::uint64_t next_session_serial() noexcept {
  static std::atomic<std::uint64_t> serial{0};
  return ++serial;
}

device_core::device_core(std::shared_ptr<const profile> prof, std::uint64_t idx, std::size_t sl, std::uint64_t sd,
                         std::string name)
    : device_profile(std::move(prof)),
      index(static_cast<std::uint32_t>(idx)),
      observer_number(sl == device_observer::no_slot ? std::numeric_limits<std::uint32_t>::max() : static_cast<std::uint32_t>(sl)),
      seed(sd),
      id(std::move(name)),
      random(sd) {
  const auto& pr = p();
  for (std::size_t i = 0; i < pr.reported.size(); ++i) {
    // The first report comes at the device's own point of the first interval.
    const auto first = pr.reported[i].every.sample(random) * first_phase(seed, 3000 + i);
    reporting.push_back({value_generator(pr.reported[i].generator, mix_seed(seed, 1000 + i)),
                         steady::now() + std::chrono::duration_cast<steady::duration>(first)});
  }
  for (const auto& w : pr.desired) {
    if (!w.initial.is_null()) in_force[w.name] = w.initial;
  }
  for (std::size_t m = 0; m < pr.telemetry.size(); ++m) {
    for (std::size_t f = 0; f < pr.telemetry[m].fields.size(); ++f) {
      telemetry_values.emplace_back(pr.telemetry[m].fields[f].generator, mix_seed(seed, 2000 + 100 * m + f));
    }
    const auto first = telemetry_interval(pr.telemetry[m]) * first_phase(seed, 3500 + m);
    telemetry.push_back({steady::now() + std::chrono::duration_cast<steady::duration>(first), pr.telemetry[m].enabled});
  }
}

steady::duration device_core::apply_delay(const json::object& desired) {
  steady::duration delay{0};
  for (const auto& [key, value] : desired) {
    if (const auto* prop = p().find_desired(key)) {
      delay = std::max(delay, std::chrono::duration_cast<steady::duration>(prop->apply_after.sample(random)));
    }
  }
  return delay;
}

bool device_core::flaky_drop_due(steady::time_point now) {
  const double rate = p().lifecycle.flaky_disconnects_per_second;
  if (rate <= 0) return false;
  auto gap = [&] {
    return std::chrono::duration_cast<steady::duration>(std::chrono::duration<double>(random.exponential(1.0 / rate)));
  };
  if (next_flaky == steady::time_point::max()) {
    next_flaky = now + gap();
    return false;
  }
  if (now < next_flaky) return false;
  next_flaky = now + gap();
  return true;
}

template_context device_core::context(std::string_view message, const json::value* request) const {
  template_context ctx;
  ctx.index = index;
  ctx.id = id;
  ctx.profile = p().name;
  ctx.message = message;
  ctx.seed = seed;
  ctx.request = request;
  return ctx;
}

json::object device_core::due_reports(steady::time_point now) {
  json::object patch;
  const auto& pr = p();
  for (std::size_t i = 0; i < pr.reported.size(); ++i) {
    const auto& rp = pr.reported[i];
    auto& slot = reporting[i];
    if (rp.trigger == report_trigger::on_connect || now < slot.due) continue;
    slot.due = next_period(slot.due, rp.every.sample(random), now);
    auto value = slot.generator.next(now - started, &in_force);
    const auto* last = last_reported.if_contains(rp.name);
    if (rp.trigger == report_trigger::on_change && last != nullptr && *last == value) continue;
    patch[rp.name] = std::move(value);
  }
  for (auto it = later.begin(); it != later.end();) {
    if (it->due <= now) {
      for (auto& [k, v] : it->patch) patch[k] = v;
      it = later.erase(it);
    } else {
      ++it;
    }
  }
  return patch;
}

json::object device_core::connect_reports(bool first) {
  json::object patch;
  const auto& pr = p();
  for (std::size_t i = 0; i < pr.reported.size(); ++i) {
    if (pr.reported[i].trigger == report_trigger::on_connect || first) {
      patch[pr.reported[i].name] = reporting[i].generator.next(steady::now() - started, &in_force);
    }
  }
  return patch;
}

json::object device_core::telemetry_body(std::size_t message) {
  std::size_t first = 0;
  for (std::size_t m = 0; m < message; ++m) first += p().telemetry[m].fields.size();
  const auto& msg = p().telemetry[message];
  json::object body;
  for (std::size_t f = 0; f < msg.fields.size(); ++f) {
    const auto& field = msg.fields[f];
    switch (field.from) {
      case telemetry_field::source::generator:
        body[field.name] = telemetry_values[first + f].next(steady::now() - started, &in_force);
        break;
      case telemetry_field::source::reported:
        if (const auto* v = last_reported.if_contains(field.property)) body[field.name] = *v;
        break;
      case telemetry_field::source::desired:
        if (const auto* v = in_force.if_contains(field.property)) body[field.name] = *v;
        break;
    }
  }
  return body;
}

steady::duration device_core::telemetry_interval(const telemetry_message& m) {
  if (m.every_from) {
    const auto* prop = p().find_desired(*m.every_from);
    const auto* v = in_force.if_contains(*m.every_from);
    if (prop != nullptr && v != nullptr && v->is_number()) {
      const double n = v->to_number<double>();
      const auto unit = prop->schema.unit.value_or(std::chrono::seconds(1));
      if (n > 0) return std::chrono::duration_cast<steady::duration>(unit * n);
    }
  }
  return std::chrono::duration_cast<steady::duration>(m.every.sample(random));
}

json::object device_core::apply_effects(const std::vector<effect>& effects, bool& reboot) {
  json::object changes;
  for (const auto& e : effects) {
    if (const auto* set = std::get_if<set_effect>(&e)) {
      changes[set->property] = set->value;
    } else if (const auto* blink = std::get_if<blink_effect>(&e)) {
      changes[blink->property] = true;
      later.push_back({steady::now() + std::chrono::duration_cast<steady::duration>(blink->on_time),
                       json::object{{blink->property, false}}});
    } else if (const auto* tel = std::get_if<telemetry_effect>(&e)) {
      for (auto& t : telemetry) t.on = tel->enable;
    } else if (const auto* rb = std::get_if<reboot_effect>(&e)) {
      offline_until = steady::now() + std::chrono::duration_cast<steady::duration>(rb->after.sample(random));
      reboot = true;
    }
  }
  return changes;
}

steady::time_point device_core::next_due(steady::time_point until) const {
  auto next = until;
  for (const auto& r : reporting) next = std::min(next, r.due);
  for (const auto& t : telemetry) {
    if (t.on) next = std::min(next, t.due);
  }
  for (const auto& l : later) next = std::min(next, l.due);
  next = std::min(next, next_flaky);
  return next;
}

}  // namespace twinfleet::device::detail

namespace twinfleet::device {

void limit_connecting_on_this_thread(std::size_t limit) noexcept { detail::connecting_limit = limit; }

void wake_on_grid_on_this_thread(std::chrono::nanoseconds step) noexcept {
  detail::grid = std::chrono::duration_cast<detail::steady::duration>(std::max(step, std::chrono::nanoseconds(0)));
}

void wake_devices_on_this_thread() {
  // Cancelling a timer only queues its handler: no device runs (or unregisters) meanwhile.
  // Devices busy now see the flag before their next sleep.
  detail::stopping = true;
  for (auto* wake : detail::sleepers) wake->cancel();
}

}  // namespace twinfleet::device
