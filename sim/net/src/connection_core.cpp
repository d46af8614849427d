#include "connection_core.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/bind_allocator.hpp>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>

namespace twinfleet::net {

namespace {
std::atomic<std::uint64_t> exceptions_caught{0};
}

std::uint64_t unexpected_exception_count() noexcept { return exceptions_caught.load(std::memory_order_relaxed); }

namespace detail {

namespace {

// A read that fills the buffer suggests more is waiting: the buffer doubles, up to this size,
// and shrinks back to its initial size once a larger packet has been handled.
constexpr std::uint32_t busy_read_buffer = 4096;
// A write buffer grown past this by a burst is released rather than kept by an idle connection.
constexpr std::size_t idle_write_buffer = 1024;

struct timer_handler {
  std::shared_ptr<connection_core> self;
  std::uint32_t generation;
  void operator()(error_code ec) const { self->on_timer(generation, ec); }
};

}  // namespace

void report_exception(std::string_view where, const std::exception_ptr& e) noexcept {
  exceptions_caught.fetch_add(1, std::memory_order_relaxed);
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    std::fprintf(stderr, "twinfleet.net: exception in %.*s: %s\n", static_cast<int>(where.size()), where.data(), ex.what());
  } catch (...) {
    std::fprintf(stderr, "twinfleet.net: unknown exception in %.*s\n", static_cast<int>(where.size()), where.data());
  }
}

connection_core::connection_core(asio::any_io_executor executor, std::uint32_t read_buffer_size,
                                 std::chrono::milliseconds close_timeout)
    : timer_(std::move(executor)),
      read_buffer_size_(std::max<std::uint32_t>(read_buffer_size, 16)),
      close_timeout_ms_(static_cast<std::uint32_t>(std::max<std::int64_t>(close_timeout.count(), 1))) {}

connection_core::~connection_core() = default;

// --- lifecycle ---

void connection_core::start_io() {
  started_ = true;
  finished_ = false;
  closed_ = false;
  reading_ = false;
  read_paused_ = false;
  writing_ = false;
  shutdown_started_ = false;
  close_armed_ = false;
  timer_waiting_ = false;
  last_read_filled_ = false;
  drained_ = false;
  read_used_ = 0;
  read_needed_ = 0;
  ++timer_generation_;  // a handshake watchdog's completion is stale now
  start_read();
  pump_writer();
  arm_timer();
}

void connection_core::note_reason(const error_code& ec) noexcept {
  if (reason_set_) return;
  reason_ = ec;
  reason_set_ = true;
}

void connection_core::close_stream() noexcept {
  if (closed_) return;
  closed_ = true;
  if (stream_) stream_->close();
  ++timer_generation_;
  timer_waiting_ = false;
  timer_.cancel();
  // Pending operations complete with errors and finish the connection; when none is pending,
  // this does. Posted either way: never inside the caller (the application's abort(), a
  // handler), which must not see on_closed() re-entrantly.
  if (started_) asio::post(executor(), [self = shared_from_this()] { self->maybe_finish(); });
}

void connection_core::maybe_finish() noexcept {
  if (!started_ || finished_ || !closed_ || reading_ || writing_) return;
  finished_ = true;
  finish();
}

void connection_core::finish() noexcept {
  if (stream_) stream_->close();
  timer_.cancel();
  if (session_) session_->on_connection_lost();
  if (!reason_set_) note_reason(net_errc::connection_closed);
  // An ended connection (a device waiting to reconnect, an object kept by shared()) keeps no
  // buffers.
  read_buffer_.reset();
  read_capacity_ = 0;
  read_used_ = 0;
  std::string().swap(write_buffer_);
  try {
    on_finished();
  } catch (...) {
    report_exception("on_closed", std::current_exception());
    on_exception();
  }
}

void connection_core::fail_with_exception(const std::exception_ptr& e) noexcept {
  report_exception("an MQTT connection handler", e);
  on_exception();
  note_reason(net_errc::internal_error);
  close_stream();
}

// --- the session changed ---

void connection_core::after_session_change() {
  if (!session_ || closed_ || !started_) return;
  auto& s = *session_;
  if (s.closing() && !close_armed_) {
    note_reason(s.close_reason());
    // A peer that stops reading would hold a graceful close forever; so would one that never
    // answers a WebSocket close frame or never closes its side.
    close_armed_ = true;
    close_deadline_ = clock::now() + std::chrono::milliseconds(close_timeout_ms_);
  }
  pump_writer();
  if (read_paused_ && s.state() != mqtt::session_state::awaiting_decision) {
    // Resumed from the executor, not inside the application's accept(): packets the client
    // sent after CONNECT are dispatched from there, not into the caller's stack.
    read_paused_ = false;
    reading_ = true;  // counts as a pending read until then
    asio::post(executor(), [self = shared_from_this()] {
      self->reading_ = false;
      if (!self->closed_) {
        try {
          self->process_input();
        } catch (...) {
          self->fail_with_exception(std::current_exception());
        }
        self->start_read();
      }
      self->maybe_finish();
    });
  }
  arm_timer();
}

// --- reading ---

void connection_core::start_read() {
  if (closed_ || reading_) return;
  if (session_->state() == mqtt::session_state::awaiting_decision) {
    read_paused_ = true;
    return;
  }
  if (stream_->reads_when_ready()) {
    // Plain TCP: wait for the socket with no buffer held (an idle connection's case; a partial
    // packet stays in read_buffer_), then read_ready() reads what is there. The wait skips
    // Asio's re-arm when the last read drained the socket (readable_wait.hpp).
    if (read_used_ == 0 && read_capacity_ > 0) {
      read_buffer_.reset();
      read_capacity_ = 0;
    }
    reading_ = true;
    stream_->async_wait_readable(handler(io_event::readable), drained_);
    return;
  }
  // A closing session takes no more input; reading goes on, discarding, until the peer
  // closes (a lingering close, so that it receives our last packet rather than a reset) or the
  // close deadline passes.
  if (session_->closing()) read_used_ = 0;
  prepare_read_buffer();
  reading_ = true;
  stream_->async_read_some(asio::buffer(read_buffer_.get() + read_used_, read_capacity_ - read_used_),
                           handler(io_event::read));
}

std::uint32_t connection_core::feed(const char* bytes, std::uint32_t size) {
  const auto now = clock::now();
  std::uint32_t offset = 0;
  feeding_ = true;
  struct fed {
    bool& flag;
    ~fed() { flag = false; }
  } done{feeding_};
  while (!closed_) {  // also with nothing left: the session then says what the next packet needs
    auto step = session_->on_bytes(std::string_view(bytes + offset, size - offset), now);
    if (step.consumed == 0 && std::holds_alternative<std::monostate>(step.event)) {
      read_needed_ = static_cast<std::uint32_t>(step.needed);  // counted from `offset`
      break;
    }
    // The event's views point into `bytes`, which stay put until this returns.
    offset += static_cast<std::uint32_t>(step.consumed);
    dispatch(step.event, now);
    if (step.consumed == 0) break;  // the session closed the connection
  }
  return offset;
}

void connection_core::process_input() {
  if (closed_ || read_used_ == 0) return;
  const std::uint32_t offset = feed(read_buffer_.get(), read_used_);
  if (offset > 0) {
    // read_needed_ counted from `offset`, the new start.
    read_used_ -= offset;
    if (read_used_ > 0) std::memmove(read_buffer_.get(), read_buffer_.get() + offset, read_used_);
  }
  after_session_change();
}

void connection_core::read_ready() {
  // Bigger than any read of an idle or a busy connection needs at once; one per thread.
  constexpr std::uint32_t scratch_size = 16 * 1024;
  thread_local const std::unique_ptr<char[]> scratch = std::make_unique_for_overwrite<char[]>(scratch_size);
  // Reads until the socket is drained (would_block, or TCP_INQ counts nothing left), so that the next wait
  // may skip the re-arm, or until the session wants no more for now: a closing session's input
  // is discarded, a CONNECT the application has still to decide on pauses reading (drained_
  // then says whether the socket may still hold data). A peer that keeps the socket full gets
  // at most 16 reads at a time; the other connections of the thread are served in between.
  for (int reads = 0; reads < 16 && !closed_ && session_->state() != mqtt::session_state::awaiting_decision; ++reads) {
    const bool discard = session_->closing();
    if (discard) read_used_ = 0;
    char* into = scratch.get();
    std::uint32_t space = scratch_size;
    if (read_used_ > 0) {  // the rest of a partial packet goes after it
      prepare_read_buffer();
      into = read_buffer_.get() + read_used_;
      space = read_capacity_ - read_used_;
    }
    error_code ec;
    bool drained = false;
    const auto n = static_cast<std::uint32_t>(stream_->read_now(asio::buffer(into, space), ec, drained));
    // Not drained after the 16th read: the next wait re-arms, and completes at once.
    drained_ = drained;
    if (ec == asio::error::would_block || ec == asio::error::try_again) break;
    if (ec) {
      note_reason(ec);
      close_stream();
      return;
    }
    if (discard) {
      // nothing to do with it
    } else if (into == scratch.get()) {
      consume(scratch.get(), n);
    } else {
      took_into_buffer(n);
    }
    if (drained_) break;
  }
}

void connection_core::took_into_buffer(std::uint32_t bytes) {
  last_read_filled_ = read_used_ + bytes == read_capacity_;
  read_used_ += bytes;
  process_input();
}

void connection_core::consume(const char* bytes, std::uint32_t size) {
  const std::uint32_t offset = feed(bytes, size);
  if (!closed_ && offset < size && !session_->closing()) {
    // An incomplete packet (or what follows a CONNECT still to be decided): kept in
    // read_buffer_, where the buffered reads carry on.
    const std::uint32_t left = size - offset;
    const std::uint32_t want = std::max({read_needed_, left + 1, read_buffer_size_});
    if (want > read_capacity_) {
      read_buffer_ = std::make_unique_for_overwrite<char[]>(want);
      read_capacity_ = want;
    }
    std::memcpy(read_buffer_.get(), bytes + offset, left);
    read_used_ = left;
  }
  after_session_change();
}

void connection_core::prepare_read_buffer() {
  std::uint32_t want = std::max({read_needed_, read_used_ + 1, read_buffer_size_});
  if (last_read_filled_ && read_capacity_ < busy_read_buffer) want = std::max(want, read_capacity_ * 2);
  if (read_used_ == 0 && read_capacity_ > busy_read_buffer && want <= busy_read_buffer) {
    // After a large packet: back to the small idle buffer.
    read_buffer_ = std::make_unique_for_overwrite<char[]>(want);
    read_capacity_ = want;
    return;
  }
  if (want <= read_capacity_) return;
  auto bigger = std::make_unique_for_overwrite<char[]>(want);
  if (read_used_ > 0) std::memcpy(bigger.get(), read_buffer_.get(), read_used_);
  read_buffer_ = std::move(bigger);
  read_capacity_ = want;
}

// --- writing ---

void connection_core::pump_writer() {
  // While input is fed to the session, the answers it produces wait for the end of the read:
  // they leave together, in one write (consume() and process_input() end here).
  if (closed_ || writing_ || !started_ || feeding_) return;
  auto& s = *session_;
  while (s.has_output()) {
    written_generation_ = out_generation_;
    s.take_output(write_buffer_);
    if (stream_->writes_now()) {
      // Plain TCP: written at once, as Asio's write would start with, but with no operation to
      // allocate and no completion to run. What the socket does not take is written the
      // usual way.
      error_code ec;
      const auto n = stream_->write_now(asio::buffer(write_buffer_), ec);
      if (ec && ec != asio::error::would_block && ec != asio::error::try_again) {
        note_reason(ec);
        close_stream();
        return;
      }
      if (!ec) {
        if (n == write_buffer_.size()) {
          written();
          continue;
        }
        write_buffer_.erase(0, n);
      }
    }
    writing_ = true;
    stream_->async_write(asio::buffer(write_buffer_), handler(io_event::write));
    return;
  }
  if (s.closing() && !shutdown_started_) {
    shutdown_started_ = true;
    writing_ = true;
    stream_->async_shutdown(handler(io_event::shutdown));
  }
}

void connection_core::written() {
  write_buffer_.clear();
  // With nothing more queued the buffer goes: an idle connection kept the last packets'
  // buffers (CONNECT's and a request's, ~290 bytes with the session's) for good; a busy
  // one pays a malloc per write instead.
  if (write_buffer_.capacity() > idle_write_buffer || !session_->has_output()) std::string().swap(write_buffer_);
  written_through_ = written_generation_;
  on_written(written_generation_);
}

void connection_core::on_io(io_event event, error_code ec, std::size_t bytes) {
  switch (event) {
    case io_event::read:
    case io_event::readable:
      reading_ = false;
      if (ec) {
        note_reason(ec);
        close_stream();
        break;
      }
      if (closed_) break;
      try {
        if (event == io_event::readable) {
          read_ready();  // the socket is ready; nothing has been read yet
        } else if (!session_->closing()) {
          took_into_buffer(static_cast<std::uint32_t>(bytes));
        }
      } catch (...) {
        fail_with_exception(std::current_exception());
      }
      start_read();
      break;

    case io_event::write:
      writing_ = false;
      if (ec) {
        note_reason(ec);
        close_stream();
        break;
      }
      written();
      pump_writer();
      arm_timer();
      break;

    case io_event::shutdown:
      writing_ = false;
      // A silent peer will not close its side: no lingering for it.
      if (reason_ == mqtt::mqtt_errc::keep_alive_timeout || reason_ == mqtt::mqtt_errc::connect_timeout) {
        close_stream();
      }
      break;
  }
  maybe_finish();
}

// --- the timer ---

time_point connection_core::next_wakeup() const noexcept {
  if (close_armed_) return close_deadline_;
  auto deadline = session_->next_deadline();
  if (const auto w = watchdog_deadline(); w && (!deadline || *w < *deadline)) deadline = w;
  return deadline.value_or(time_point::max());
}

void connection_core::arm_timer() {
  if (closed_ || !started_) return;
  const auto at = next_wakeup();
  // A pending wait that expires first stays: its handler recomputes. Moving a deadline later
  // (every packet sent or received does) costs nothing.
  if (timer_waiting_ && timer_at_ <= at) return;
  if (at == time_point::max()) return;
  timer_at_ = at;
  timer_waiting_ = true;
  timer_.expires_at(at);  // cancels the previous wait, whose completion is stale by generation
  // Long-lived (a keep-alive period): allocated to its own size, not into a block of Asio's
  // per-thread recycling cache (bench/README.md, stop 13).
  timer_.async_wait(asio::bind_allocator(std::allocator<void>(), timer_handler{shared_from_this(), ++timer_generation_}));
}

void connection_core::on_timer(std::uint32_t generation, error_code ec) {
  if (generation != timer_generation_) return;
  timer_waiting_ = false;
  if (ec || closed_) return;
  const auto now = clock::now();
  if (close_armed_) {
    if (now >= close_deadline_) {
      close_stream();
      return;
    }
  } else if (const auto w = watchdog_deadline(); w && now >= *w) {
    on_watchdog();
  } else {
    (void)session_->on_timer(now);  // a closed_event shows as closing()
    after_session_change();
  }
  arm_timer();
}

// --- handshakes ---

void connection_core::arm_handshake_watchdog(time_point deadline) {
  handshaking_ = true;
  handshake_timed_out_ = false;
  const auto generation = ++timer_generation_;
  timer_.expires_at(deadline);
  timer_.async_wait([self = shared_from_this(), generation](error_code ec) {
    if (ec || !self->handshaking_ || generation != self->timer_generation_) return;
    self->handshake_timed_out_ = true;
    self->close_stream();
  });
}

bool connection_core::end_handshake() noexcept {
  handshaking_ = false;
  ++timer_generation_;
  timer_.cancel();
  return !handshake_timed_out_;
}

}  // namespace detail
}  // namespace twinfleet::net
