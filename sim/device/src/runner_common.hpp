// What the Azure and AWS device coroutines share: generated values, telemetry bodies and
// intervals, and the profile's side effects. Not a public header.
#pragma once

#include <twinfleet/device/azure_runner.hpp>
#include <twinfleet/device/generator.hpp>
#include <twinfleet/device/profile.hpp>
#include <twinfleet/device/random.hpp>
#include <twinfleet/device/template.hpp>
#include <twinfleet/net/client.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_allocator.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/object.hpp>

#include <atomic>

#include <chrono>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

namespace twinfleet::device::detail {

using steady = std::chrono::steady_clock;

struct scheduled_report {
  steady::time_point due;
  boost::json::object patch;
};

// The profile-driven part of a device: values in force, what it reported, its generators and
// timers. Both platforms' coroutines keep one.
struct device_core {
  device_core(std::shared_ptr<const profile> p, std::uint64_t index, std::size_t slot, std::uint64_t seed, std::string id);

  std::shared_ptr<const profile> device_profile;
  // 32 bits each, in the 8 bytes `index` had alone: a scenario's indices stay below
  // 1,001,000,000 and its fleet at 10,000,000 devices (scenario_loader.cpp).
  std::uint32_t index;
  std::uint32_t observer_number;  // device_observer's slot, or ~0 for no_slot
  std::uint64_t seed;
  std::string id;
  rng random;
  boost::json::object in_force;       // writable properties' values in force
  boost::json::object last_reported;  // the reported values sent last
  std::vector<scheduled_report> later;
  // One per reported property: its generator and when it is due next. One vector of both, not
  // two (24 bytes less in every device, and one allocation less for a device that reports).
  struct reported_slot {
    value_generator generator;
    steady::time_point due;
  };
  std::vector<reported_slot> reporting;
  std::vector<value_generator> telemetry_values;  // one per telemetry field, all messages in order
  // One per telemetry message: when it is due next, and whether it is sent at all (a telemetry
  // effect turns it on and off). 40 bytes less than a vector<time_point> and a vector<bool>.
  struct telemetry_slot {
    steady::time_point due;
    bool on;
  };
  std::vector<telemetry_slot> telemetry;
  steady::time_point started = steady::now();
  steady::time_point offline_until{};  // a reboot effect
  std::uint64_t session_serial = 0;    // the current connection's (device_observer::session_started)
  std::uint64_t reported_serial = 0;   // reported writes sent so far

  const profile& p() const { return *device_profile; }
  [[nodiscard]] std::size_t observer_slot() const noexcept {
    return observer_number == std::numeric_limits<std::uint32_t>::max() ? device_observer::no_slot : observer_number;
  }
  template_context context(std::string_view message = {}, const boost::json::value* request = nullptr) const;

  // Reported properties due now (interval and on-change), and scheduled ones (blink off).
  boost::json::object due_reports(steady::time_point now);
  // Values sent on each (re)connection: on_connect properties, and all on the first one.
  boost::json::object connect_reports(bool first);
  // A telemetry message's JSON body.
  boost::json::object telemetry_body(std::size_t message);
  // The interval of a telemetry message now: `every`, or the desired send interval it follows.
  steady::duration telemetry_interval(const telemetry_message& m);
  // Applies effects (set, blink, telemetry on/off, reboot); returns the reported changes.
  // `reboot` is set when the device must go offline now.
  boost::json::object apply_effects(const std::vector<effect>& effects, bool& reboot);
  // The earliest time something is due.
  steady::time_point next_due(steady::time_point until) const;

  // The profile's apply delay for a desired write: the device takes this long before the new
  // values are in force and acknowledged (the longest of the properties written).
  steady::duration apply_delay(const boost::json::object& desired);

  // The profile's flaky network (lifecycle.flaky_disconnects, a Poisson rate): true when the
  // device's own network drops it now; the next drop is then drawn.
  bool flaky_drop_due(steady::time_point now);
  steady::time_point next_flaky = steady::time_point::max();
};

// A first-in first-out queue that allocates nothing until something is queued. std::deque
// allocates a 512-byte block on construction; the device states keep two or three queues each,
// which came to 1.1 KiB of every idle device's memory (heaptrack, 4,000 idle devices).
template <class T>
class fifo {
 public:
  bool empty() const noexcept { return head_ == items_.size(); }
  std::size_t size() const noexcept { return items_.size() - head_; }
  T& front() noexcept { return items_[head_]; }
  void push_back(T v) { items_.push_back(std::move(v)); }
  void pop_front() {
    if (++head_ == items_.size()) {
      items_.clear();
      head_ = 0;
    } else if (head_ >= 16 && head_ * 2 >= items_.size()) {
      // A queue that never drains would otherwise grow without bound.
      items_.erase(items_.begin(), items_.begin() + static_cast<std::ptrdiff_t>(head_));
      head_ = 0;
    }
  }

 private:
  std::vector<T> items_;
  std::size_t head_ = 0;
};

// A run's transport: plain TCP when it names none.
inline const net::client_transport& way_in(const std::shared_ptr<const net::client_transport>& t) {
  static const net::client_transport tcp;
  return t ? *t : tcp;
}

// A device's `wake` timer (below) on its io_context's own executor type rather than
// any_io_executor: 48 bytes less in every device state, and as much in the wait a parked
// device keeps pending (bench/README.md, memory). Devices therefore run on an io_context.
using wake_timer = boost::asio::basic_waitable_timer<steady, boost::asio::wait_traits<steady>, boost::asio::io_context::executor_type>;

// The io_context executor `ex` holds; throws std::invalid_argument for any other executor.
[[nodiscard]] boost::asio::io_context::executor_type context_executor(const boost::asio::any_io_executor& ex);

// The next connection's session serial: process-wide, so a later connection has a larger one.
std::uint64_t next_session_serial() noexcept;

// A device's `wake` timer, known to its thread for the device's lifetime, so that a stop wakes
// every sleeping device at once (wake_devices_on_this_thread) and sleeping devices need not poll
// the stop flag: 19,500 devices polling every 250 ms cost 29 % of a core (bench/README.md).
class sleeper {
 public:
  explicit sleeper(wake_timer& wake);
  ~sleeper();
  sleeper(const sleeper&) = delete;
  sleeper& operator=(const sleeper&) = delete;

 private:
  wake_timer* wake_;
};

// Both platforms' device states keep a `wake` timer that their session handlers cancel when
// something arrives, and a stop cancels too; a device sleeps on it until `t`, at most 60 s at a
// time (a safety net for a stop flag set without a wake-up). The net was 5 s: 19,500 idle
// devices then woke 3,900 times a second, about 2 % of a core (bench/README.md, idle CPU).
// True once wake_devices_on_this_thread() ran here: a device about to sleep does not (a wake-up
// that came while it was busy would otherwise be missed until the safety net).
[[nodiscard]] bool stopping_on_this_thread() noexcept;

// The thread's limit on devices connecting at once (limit_connecting_on_this_thread): takes a
// place when one is free; otherwise queues `wake` (cancelled when a place frees) and returns
// false.
[[nodiscard]] bool enter_connecting(wake_timer& wake);
void leave_connecting() noexcept;

// The thread's wake grid (wake_on_grid_on_this_thread); zero: exact wake times.
[[nodiscard]] steady::duration wake_grid_on_this_thread() noexcept;

// Sets the device's wake timer to `t`, moved onto the thread's wake grid (on_grid): at most 60 s
// ahead, and now once the thread is stopping.
template <class State>
void arm_wake(State& s, steady::time_point t) {
  const auto now = steady::now();
  s.wake.expires_at(stopping_on_this_thread() ? now
                                              : std::min(on_grid(t, now, wake_grid_on_this_thread()), now + std::chrono::seconds(60)));
}

// Not a coroutine: the wait's own awaitable is returned, so a sleeping device keeps no frame of
// this function (every idle device sleeps here).
template <class State>
boost::asio::awaitable<std::tuple<boost::system::error_code>> sleep_until(State& s, steady::time_point t) {
  arm_wake(s, t);
  return s.wake.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
}

// Waits the apply delay of `desired` (a write's new values). The wait is the device's own wake
// timer, so that what arrives meanwhile wakes it: methods and commands are answered at once by
// `answer_requests` (a device applying a setting still answers a method; the SDKs call a method
// handler whatever else the firmware is doing), and it waits on for the rest of the delay, so a
// notification does not cut the delay short. Methods used to wait behind the applies in the
// device's loop: up to 5.6 s for a 20-80 ms command in the demo. While the thread's devices
// stop, the rest of the delay runs on a timer of its own, as before.
template <class State, class AnswerRequests>
boost::asio::awaitable<void> wait_apply_delay(State& s, const boost::json::object& desired, AnswerRequests answer_requests) {
  const auto delay = s.apply_delay(desired);
  if (delay.count() <= 0) co_return;
  const auto until = steady::now() + delay;
  while (steady::now() < until) {
    if (stopping_on_this_thread()) {
      boost::asio::steady_timer t(co_await boost::asio::this_coro::executor);
      t.expires_at(until);
      (void)co_await t.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
      break;
    }
    (void)co_await sleep_until(s, until);
    answer_requests();
  }
}

// What answering a command left to do: the reported changes its effects made, and whether a
// reboot effect takes the device offline now.
struct command_outcome {
  boost::json::object changes;
  bool reboot = false;
};

// A profile command, the same on both platforms (an Azure direct method, an AWS command topic
// of docs/PROFILES.md): an unknown name is answered at once with 404 {"message": "no such
// method"}; otherwise the profile's latency passes, `respond(status, payload)` (a callable
// returning awaitable<void>) sends the status and the response template rendered with the
// request, and the effects apply. The observer hears of the answer either way. The caller
// reboots and reports what the outcome says.
template <class State, class Respond>
boost::asio::awaitable<command_outcome> run_command(std::shared_ptr<State> s, std::string name,
                                                    boost::json::value request, Respond respond) {
  command_outcome out;
  const auto* cmd = s->p().find_command(name);
  if (cmd == nullptr) {
    const boost::json::value unknown = boost::json::object{{"message", "no such method"}};
    co_await respond(404, unknown);
    s->observer.method_answered(s->id, name, 404);
    co_return out;
  }
  const auto latency = cmd->latency.sample(s->random);
  if (latency.count() > 0) {
    boost::asio::steady_timer t(co_await boost::asio::this_coro::executor);
    t.expires_after(latency);
    (void)co_await t.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
  }
  const auto response = render_json_template(cmd->response, s->context({}, &request));
  co_await respond(cmd->status, response);
  s->observer.method_answered(s->id, name, cmd->status);
  out.changes = s->apply_effects(cmd->effects, out.reboot);
  co_return out;
}

// What a device's life is bound by, kept in its state (State::life) and read by the coroutines
// that run it one after another (start_device: a device with nothing due for a while ends its
// coroutine and a new one takes over when its timer fires).
template <class State>
struct device_life {
  steady::time_point until;
  std::shared_ptr<const std::atomic<bool>> stop;
  std::optional<steady::time_point> start_at;  // its place on the ramp, until reached
  boost::asio::awaitable<bool> (*synchronise)(std::shared_ptr<State>, bool) = nullptr;
  boost::asio::awaitable<bool> (*step)(std::shared_ptr<State>) = nullptr;
  std::function<void()> on_end;  // start_device: runs once the device has ended

  [[nodiscard]] bool running() const { return steady::now() < until && !(stop && stop->load()); }
};

// Connects (after a reboot effect's offline time), then the life's `synchronise(s, reconnect)`;
// on any failure waits the profile's back-off and tries again, while the device's life runs.
// The same on both platforms: only the session and the synchronisation differ.
template <class State>
boost::asio::awaitable<void> connect_and_sync(std::shared_ptr<State> s) {
  const auto& life = s->life;
  unsigned attempt = 0;
  while (life.running()) {
    if (steady::now() < s->offline_until) {
      co_await sleep_until(*s, s->offline_until);
      continue;
    }
    if (!enter_connecting(s->wake)) {
      co_await sleep_until(*s, life.until);  // a place freeing up wakes it, and so does a stop
      continue;
    }
    {
      struct leave_on_exit {  // the place is given up before any back-off
        ~leave_on_exit() { leave_connecting(); }
      } leave;
      const auto start = steady::now();
      const auto timeout = std::chrono::duration_cast<std::chrono::milliseconds>(s->p().lifecycle.connect_timeout);
      const auto ec = co_await s->session.async_connect(s->hub, way_in(s->transport), timeout);
      if (!ec) {
        s->observer.connected(s->id, steady::now() - start);
        s->session_serial = next_session_serial();
        s->observer.session_started(s->id, s->session_serial);
        s->lost = false;
        if (co_await life.synchronise(s, !s->first_connect)) {
          s->first_connect = false;
          s->observer.synchronised(s->id);
          co_return;
        }
        s->session.abort();
      } else {
        s->observer.connect_failed(s->id, ec);
      }
    }
    const auto delay = s->p().lifecycle.reconnect.delay(attempt++, s->random);
    const auto wait_until = steady::now() + std::chrono::duration_cast<steady::duration>(delay);
    while (steady::now() < wait_until && life.running()) {
      co_await sleep_until(*s, wait_until);
    }
  }
}

// A session's closed handler, the same on both platforms: the connection ended other than by
// the device's own disconnect; the device's loop wakes and reconnects.
template <class State>
void connection_lost(State& s, boost::system::error_code ec) {
  s.lost = true;
  s.observer.disconnected(s.id, ec);
  s.observer.session_ended(s.id, s.session_serial);
  s.poke();
}


// A device with nothing due for at least this long parks (start_device): it keeps no
// coroutine frame while it waits, only its timer's pending wait. Busy devices keep theirs:
// starting a coroutine costs more than sleeping in one.
inline constexpr auto park_after = std::chrono::seconds(2);

template <class State>
boost::asio::awaitable<bool> device_loop(std::shared_ptr<State> s, bool may_park);

// Ends the caller's coroutine's work: the device's timer alone waits until `t` (or a wake-up:
// something arrived, a stop), then a new coroutine carries on.
template <class State>
void park(const std::shared_ptr<State>& s, steady::time_point t);

template <class State>
void resume_device(std::shared_ptr<State> s) {
  auto ex = s->wake.get_executor();
  auto loop = device_loop<State>(s, true);
  boost::asio::co_spawn(std::move(ex), std::move(loop), [s = std::move(s)](std::exception_ptr e, bool ended) {
    if (!e && !ended) return;  // parked
    if (auto end = std::move(s->life.on_end)) end();
  });
}

template <class State>
void park(const std::shared_ptr<State>& s, steady::time_point t) {
  arm_wake(*s, t);
  // The wait lives as long as the device sleeps: its operation is allocated to its own size
  // (std::allocator), not into a block of Asio's per-thread recycling cache, which hands out
  // the first cached block big enough (bench/README.md, stop 13: ~70 B per idle device).
  s->wake.async_wait(boost::asio::bind_allocator(std::allocator<void>(),
                                                 [s](boost::system::error_code) mutable { resume_device(std::move(s)); }));
}

// The device's life, the same on both platforms: it waits for its place on the ramp, then
// connects and synchronises whenever it is not connected, runs `step` when awake (true: come
// round again at once), sleeps until the next thing is due when nothing is pending
// (State::has_pending()), and disconnects at the end. Returns true when the device has ended,
// false when it parked instead of sleeping (may_park: nothing due for park_after or more).
template <class State>
boost::asio::awaitable<bool> device_loop(std::shared_ptr<State> s, bool may_park) {
  auto& life = s->life;
  // Its place on the ramp (the wake timer is known to the thread, so a stop ends the wait).
  if (life.start_at) {
    const auto at = *life.start_at;
    while (life.running() && steady::now() < at) {
      if (may_park && !stopping_on_this_thread()) {
        park(s, at);
        co_return false;
      }
      co_await sleep_until(*s, at);
    }
    life.start_at.reset();
  }
  while (life.running()) {
    if (!s->session.connected()) {
      co_await connect_and_sync<State>(s);
      continue;
    }
    if (co_await life.step(s)) continue;
    if (s->has_pending() || s->lost) continue;
    // Sleep until the next thing is due (what arrives wakes the device earlier).
    const auto due = s->next_due(life.until);
    if (may_park && due - steady::now() >= park_after && !stopping_on_this_thread()) {
      park(s, due);
      co_return false;
    }
    co_await sleep_until(*s, due);
  }
  if (s->session.connected()) {
    (void)co_await s->session.async_disconnect();
    s->observer.session_ended(s->id, s->session_serial);
  }
  co_return true;
}

// The device's whole life in one coroutine (run_azure_device, run_aws_device): `make` builds
// the device state (with its session's handlers) from the run, then device_loop runs without
// parking. It takes the run by pointer: a coroutine frame keeps its parameters for its
// lifetime, and the run (~400 bytes) moves into the device state at once.
template <class State, class Run, class Observer>
boost::asio::awaitable<void> device_main(std::unique_ptr<Run> run, Observer& observer, steady::time_point until,
                                         std::shared_ptr<const std::atomic<bool>> stop,
                                         std::shared_ptr<State> (*make)(boost::asio::any_io_executor, Run&&, Observer&),
                                         boost::asio::awaitable<bool> (*synchronise)(std::shared_ptr<State>, bool),
                                         boost::asio::awaitable<bool> (*step)(std::shared_ptr<State>)) {
  const auto start_at = run->start_at;
  auto s = make(co_await boost::asio::this_coro::executor, std::move(*run), observer);
  run.reset();
  s->life = device_life<State>{until, std::move(stop), start_at, synchronise, step, {}};
  (void)co_await device_loop<State>(std::move(s), false);
}

// The same life without a coroutine for the caller to keep (start_azure_device,
// start_aws_device): the device is built on its thread, and between things to do it holds no
// coroutine frame at all when nothing is due for park_after (an idle device of the benchmark
// held three: co_spawn's entry, its loop, and the timer wait's; ~1.5 KiB). `on_end` runs on
// the device's thread once it has ended.
template <class State, class Run, class Observer>
void start_device(boost::asio::any_io_executor ex, Run run, Observer& observer, steady::time_point until,
                  std::shared_ptr<const std::atomic<bool>> stop,
                  std::shared_ptr<State> (*make)(boost::asio::any_io_executor, Run&&, Observer&),
                  boost::asio::awaitable<bool> (*synchronise)(std::shared_ptr<State>, bool),
                  boost::asio::awaitable<bool> (*step)(std::shared_ptr<State>), std::function<void()> on_end) {
  device_life<State> life{until, std::move(stop), run.start_at, synchronise, step, std::move(on_end)};
  // Built on its own thread: the device registers its timer with that thread (sleeper). Called
  // there already, it is built at once (no handler holding the run is allocated).
  boost::asio::dispatch(ex, [ex, run = std::move(run), &observer, make, life = std::move(life)]() mutable {
    auto s = make(ex, std::move(run), observer);
    s->life = std::move(life);
    resume_device(std::move(s));
  });
}

}  // namespace twinfleet::device::detail
