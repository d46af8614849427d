// Small pieces shared by the service clients (private to sim/backends): error helpers,
// Retry-After, request ids, path encoding and the registry pacing bucket.
#pragma once

#include "service_http.hpp"

#include <twinfleet/auth/encoding.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <charconv>
#include <chrono>
#include <cstdio>
#include <random>

namespace twinfleet::backends::detail {

inline service_error bad_argument(std::string message) {
  service_error e;
  e.kind = service_failure::bad_request;
  e.message = std::move(message);
  return e;
}

inline service_error bad_response(std::string message, const http_response& r) {
  service_error e;
  e.kind = service_failure::bad_response;
  e.http_status = r.status;
  e.message = std::move(message) + " (" + r.body.substr(0, 200) + ")";
  return e;
}

// Retry-After as delta-seconds (what IoT Hub and AWS send); an HTTP date is ignored.
inline std::optional<std::chrono::milliseconds> parse_retry_after(const http_response& r) {
  const auto value = r.header("Retry-After");
  if (!value) return std::nullopt;
  std::int64_t seconds = 0;
  const auto [end, ec] = std::from_chars(value->data(), value->data() + value->size(), seconds);
  if (ec != std::errc{} || end != value->data() + value->size() || seconds < 0) return std::nullopt;
  return std::chrono::milliseconds(seconds * 1000);
}

// One path segment, percent-encoded (device ids may hold '#', '?', '%', ...).
inline std::string path_segment(std::string_view s) { return auth::url_encode(s); }

// Request-Id values in the form azure-iothub sends (a UUID v4).
class request_ids {
 public:
  request_ids() : rng_(std::random_device{}()) {}
  std::string next() {
    const auto a = rng_();
    const auto b = rng_();
    std::array<char, 37> text{};
    std::snprintf(text.data(), text.size(), "%08x-%04x-4%03x-%04x-%012llx", static_cast<unsigned>(a >> 32),
                  static_cast<unsigned>((a >> 16) & 0xffff), static_cast<unsigned>(a & 0xfff),
                  static_cast<unsigned>(0x8000 | ((b >> 48) & 0x3fff)),
                  static_cast<unsigned long long>(b & 0xffffffffffffULL));
    return std::string(text.data(), 36);
  }

 private:
  std::mt19937_64 rng_;
};

// A token bucket as a GCRA: `rate` operations a second, `burst` of them back to back after a
// quiet spell. wait() returns at once or after a timer; callers on one executor are served
// in call order. rate <= 0: no pacing.
class pacer {
 public:
  pacer() = default;
  pacer(boost::asio::any_io_executor executor, double rate, double burst)
      : executor_(std::move(executor)), rate_(rate), burst_(burst < 1 ? 1 : burst) {}

  boost::asio::awaitable<void> wait() {
    if (rate_ <= 0) co_return;
    using clock = std::chrono::steady_clock;
    const auto interval = std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(1.0 / rate_));
    const auto now = clock::now();
    if (tat_ < now) tat_ = now;
    const auto allowed = tat_ - std::chrono::duration_cast<clock::duration>(interval * (burst_ - 1));
    tat_ += interval;
    if (allowed <= now) co_return;
    ++paced_;
    boost::asio::steady_timer timer(executor_, allowed);
    co_await timer.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
  }

  [[nodiscard]] std::uint64_t paced() const noexcept { return paced_; }

 private:
  boost::asio::any_io_executor executor_;
  double rate_ = 0;
  double burst_ = 1;
  std::chrono::steady_clock::time_point tat_{};
  std::uint64_t paced_ = 0;
};

}  // namespace twinfleet::backends::detail
