// The engine's threads: one io_context per thread (`--threads`, default: the cores), devices
// spread over them round-robin so that a device's coroutine, its connection and its timers
// live on one thread and need no locks. Each thread also runs a lag probe: a timer that should
// fire every `probe_interval` and records how late it woke — the engine's own lag, which says
// whether the load generator kept up with its plan (a late engine makes latencies look worse
// than the system under test made them).
//
//   engine::runtime rt({.threads = 2});
//   boost::asio::co_spawn(rt.executor_for(device_index), device_loop(...), boost::asio::detached);
//   rt.start();
//   ...
//   rt.stop();                 // or rt.release(); rt.join(); to let the work run out
//   auto lag = rt.lag();       // p99 and max over all threads
#pragma once

#include <boost/asio/any_io_executor.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>

namespace boost::asio {
class io_context;
}

namespace twinfleet::engine {

struct runtime_options {
  std::size_t threads = 0;  // 0: std::thread::hardware_concurrency()
  // 50 ms: a stall shorter than that can go unseen, but every probe wakes its thread; at 10 ms
  // the probes of two threads were most of an idle run's CPU (bench/README.md, idle CPU).
  std::chrono::milliseconds probe_interval{50};
  // Each probe's lateness, on the probing thread (e.g. into a metrics histogram); optional.
  std::function<void(std::chrono::nanoseconds)> on_lag;
};

// The engine lag seen by the probes so far (all threads).
struct lag_summary {
  std::uint64_t samples = 0;
  std::chrono::microseconds p50{0};
  std::chrono::microseconds p99{0};
  std::chrono::microseconds max{0};
};

class runtime {
 public:
  explicit runtime(runtime_options options = {});
  ~runtime();  // stop() and join
  runtime(const runtime&) = delete;
  runtime& operator=(const runtime&) = delete;

  [[nodiscard]] std::size_t threads() const noexcept;
  [[nodiscard]] boost::asio::io_context& context(std::size_t thread);
  // The executor of thread `index % threads()`.
  [[nodiscard]] boost::asio::any_io_executor executor_for(std::uint64_t index);

  // Starts the threads (and the lag probes). Work may be spawned before or after.
  void start();
  // Lets each thread return once its work is done (the probes stop too), then waits for them.
  void release_and_join();
  // Stops every context now and joins the threads. Idempotent.
  void stop();

  // Safe from any thread while running.
  [[nodiscard]] lag_summary lag() const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace twinfleet::engine
