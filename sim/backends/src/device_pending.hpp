// A request waiting for its answer, shared by the Azure and AWS device sessions.
//
// The awaiting coroutine owns the entry (on its frame) and registers it in the session's
// list; the message handler fills it and cancels its timer to wake the coroutine. One timer
// per request is both the deadline and the wake-up: cheaper than a channel, and cancelling
// the awaiting coroutine (awaitable operators, a cancellation signal) cancels the wait.
#pragma once

#include <twinfleet/backends/device_types.hpp>
#include <twinfleet/net/error.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/value.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

namespace twinfleet::backends::detail {

struct pending_request {
  pending_request(boost::asio::any_io_executor ex, std::uint64_t request_id, std::chrono::milliseconds timeout)
      : id(request_id), timer(std::move(ex), timeout) {}

  std::uint64_t id;
  boost::asio::steady_timer timer;
  bool done = false;
  boost::system::error_code ec;  // set when the request ended without an answer
  int status = 0;                // Azure: topic status; AWS: 200 accepted or the error code
  std::optional<std::int64_t> version;
  json::value body;
  std::string topic_kind;        // AWS: which operation answered (informational)

  void complete() {
    done = true;
    timer.cancel();
  }
  void fail(boost::system::error_code why) {
    ec = why;
    complete();
  }
};

// The requests of one session.
class pending_list {
 public:
  void add(pending_request* p) { items_.push_back(p); }
  void remove(pending_request* p) { std::erase(items_, p); }
  [[nodiscard]] pending_request* find(std::uint64_t id) const {
    for (auto* p : items_) {
      if (p->id == id && !p->done) return p;
    }
    return nullptr;
  }
  // The connection ended: every waiting request completes with `why`.
  void fail_all(boost::system::error_code why) {
    for (auto* p : items_) {
      if (!p->done) p->fail(why);
    }
  }
  [[nodiscard]] std::size_t size() const noexcept { return items_.size(); }

 private:
  std::vector<pending_request*> items_;
};

// Registers `p` for its lifetime.
class pending_guard {
 public:
  pending_guard(pending_list& list, pending_request& p) : list_(list), p_(p) { list_.add(&p_); }
  ~pending_guard() { list_.remove(&p_); }
  pending_guard(const pending_guard&) = delete;
  pending_guard& operator=(const pending_guard&) = delete;

 private:
  pending_list& list_;
  pending_request& p_;
};

// Waiting for `p`'s answer, in the caller's coroutine (a coroutine of its own here cost a frame
// per request):
//   if (!p.done) { auto w = co_await wait_for_answer(p); ec = answer_outcome(p, w); }
// The wait ends when `p` is answered or failed (complete() cancels the timer), times out, or the
// caller's coroutine is cancelled. Start it only while p.done is false: a timer cancelled before the wait
// began would wait the whole timeout.
inline auto wait_for_answer(pending_request& p) {
  return p.timer.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
}

// What the wait came to: empty when an answer (or a failure) came (p.done), otherwise
// device_errc::timeout, or operation_aborted when the caller was cancelled.
inline boost::system::error_code answer_outcome(const pending_request& p, std::tuple<boost::system::error_code> waited) {
  if (p.done) return {};
  if (!std::get<0>(waited)) return make_error_code(device_errc::timeout);
  return boost::asio::error::operation_aborted;
}

inline device_error local_error(boost::system::error_code ec) {
  device_error e;
  e.ec = ec;
  e.message = ec.message();
  return e;
}

}  // namespace twinfleet::backends::detail
