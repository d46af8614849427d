#include <twinfleet/engine/runtime.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/as_tuple.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <optional>
#include <thread>
#include <vector>

namespace twinfleet::engine {

namespace asio = boost::asio;

namespace {

// Lag in log2 buckets of microseconds (bucket b holds [2^(b-1), 2^b) µs, bucket 0 holds 0):
// coarse, lock-free, and enough to tell 50 µs from 5 ms; the reporting layer brings exact
// histograms.
constexpr std::size_t lag_buckets = 40;

struct thread_state {
  std::unique_ptr<asio::io_context> context = std::make_unique<asio::io_context>(1);
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> guard;
  std::thread thread;
  std::array<std::atomic<std::uint64_t>, lag_buckets> lag{};
  std::atomic<std::uint64_t> lag_max_us{0};
  std::atomic<bool> probing{true};
};

asio::awaitable<void> probe(thread_state& t, std::chrono::milliseconds interval,
                            const std::function<void(std::chrono::nanoseconds)>& on_lag) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  while (t.probing.load(std::memory_order_relaxed)) {
    const auto due = std::chrono::steady_clock::now() + interval;
    timer.expires_at(due);
    auto [ec] = co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    if (ec) co_return;
    const auto late_ns = std::chrono::steady_clock::now() - due;
    if (on_lag) on_lag(std::max(std::chrono::nanoseconds(0), std::chrono::duration_cast<std::chrono::nanoseconds>(late_ns)));
    const auto late = std::chrono::duration_cast<std::chrono::microseconds>(late_ns);
    const auto us = static_cast<std::uint64_t>(std::max<std::int64_t>(0, late.count()));
    const auto bucket = std::min<std::size_t>(lag_buckets - 1, static_cast<std::size_t>(std::bit_width(us)));
    t.lag[bucket].fetch_add(1, std::memory_order_relaxed);
    auto seen = t.lag_max_us.load(std::memory_order_relaxed);
    while (us > seen && !t.lag_max_us.compare_exchange_weak(seen, us, std::memory_order_relaxed)) {
    }
  }
}

}  // namespace

struct runtime::impl {
  runtime_options options;
  std::vector<std::unique_ptr<thread_state>> threads;
  bool started = false;
};

runtime::runtime(runtime_options options) : impl_(std::make_unique<impl>()) {
  impl_->options = options;
  std::size_t n = options.threads != 0 ? options.threads : std::max(1u, std::thread::hardware_concurrency());
  for (std::size_t i = 0; i < n; ++i) impl_->threads.push_back(std::make_unique<thread_state>());
}

runtime::~runtime() { stop(); }

std::size_t runtime::threads() const noexcept { return impl_->threads.size(); }

asio::io_context& runtime::context(std::size_t thread) { return *impl_->threads.at(thread)->context; }

asio::any_io_executor runtime::executor_for(std::uint64_t index) {
  return impl_->threads[index % impl_->threads.size()]->context->get_executor();
}

void runtime::start() {
  if (impl_->started) return;
  impl_->started = true;
  for (auto& t : impl_->threads) {
    t->guard.emplace(t->context->get_executor());
    asio::co_spawn(*t->context, probe(*t, impl_->options.probe_interval, impl_->options.on_lag), asio::detached);
    t->thread = std::thread([ctx = t->context.get()] { ctx->run(); });
  }
}

void runtime::release_and_join() {
  for (auto& t : impl_->threads) {
    t->probing = false;
    t->guard.reset();
  }
  for (auto& t : impl_->threads) {
    if (t->thread.joinable()) t->thread.join();
  }
}

void runtime::stop() {
  for (auto& t : impl_->threads) {
    t->probing = false;
    t->guard.reset();
    t->context->stop();
  }
  for (auto& t : impl_->threads) {
    if (t->thread.joinable()) t->thread.join();
  }
}

lag_summary runtime::lag() const {
  std::array<std::uint64_t, lag_buckets> total{};
  lag_summary s;
  std::uint64_t max_us = 0;
  for (const auto& t : impl_->threads) {
    for (std::size_t b = 0; b < lag_buckets; ++b) total[b] += t->lag[b].load(std::memory_order_relaxed);
    max_us = std::max(max_us, t->lag_max_us.load(std::memory_order_relaxed));
  }
  for (auto v : total) s.samples += v;
  s.max = std::chrono::microseconds(max_us);
  if (s.samples == 0) return s;
  // A quantile is reported as its bucket's upper bound (at most 2x high), never above max.
  auto quantile = [&](double q) {
    const auto rank = static_cast<std::uint64_t>(q * static_cast<double>(s.samples - 1)) + 1;
    std::uint64_t seen = 0;
    for (std::size_t b = 0; b < lag_buckets; ++b) {
      seen += total[b];
      if (seen >= rank) {
        const std::uint64_t upper = b == 0 ? 0 : (std::uint64_t{1} << b) - 1;
        return std::chrono::microseconds(std::min(upper, max_us));
      }
    }
    return s.max;
  };
  s.p50 = quantile(0.50);
  s.p99 = quantile(0.99);
  return s;
}

}  // namespace twinfleet::engine
