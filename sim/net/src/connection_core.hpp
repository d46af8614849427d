// Private to sim/net: what the server and the client connection share — driving an
// mqtt::session over a transport_stream, per the session header's recipe.
//
// Callback-driven rather than coroutines (the public API stays coroutines): an idle connection
// then holds one pending read and one timer wait, two small Asio operations, instead of two
// spawned coroutine stacks (measured: ~2.8 KB of frames per connection before, ~4.6 KB in all).
// Everything runs on the connection's executor:
// - reading: one read pending at a time; bytes go to the session, events to dispatch(). While
//   the application has a CONNECT to decide, reading pauses (after_session_change() resumes it).
//   Over plain TCP, a connection with no partial packet in hand waits for the socket to be
//   readable without a buffer, then reads into a per-thread scratch buffer until the socket
//   is drained: an idle connection keeps no read buffer, and a wait after a drain costs no
//   system call at all (readable_wait.hpp).
// - writing: one write pending at a time, of everything the session has queued; once the
//   session is closing and its output is sent, the sending side is shut down. Over plain
//   TCP, output is first written at once (non-blocking); only what the socket does not take
//   waits for an Asio write. Answers to the packets of one read leave together after it.
// - one steady_timer for the earliest of: the session's deadline (keep-alive, CONNECT/CONNACK
//   timeout), the derived class's watchdog (the client's connect deadline), the close deadline
//   (a graceful close may take at most close_timeout). Before the I/O starts, it bounds the
//   TLS / WebSocket handshake instead.
// When the transport is closed and no read or write is pending, finish() runs once: the
// session learns the connection is lost and the derived class reports it (on_finished()).
//
// Memory: no per-message allocation beyond what the session needs and Asio's recycled
// operations; the read buffer starts small, grows to the packet in hand and shrinks back after
// large packets; the write buffer is swapped with the session's and released once everything
// queued is written.
#pragma once

#include "streams.hpp"

#include <twinfleet/mqtt/session.hpp>
#include <twinfleet/net/error.hpp>

#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <string>

namespace twinfleet::net::detail {

using clock = std::chrono::steady_clock;
using mqtt::time_point;

// Writes one line about an exception that escaped a connection's handler to stderr and counts
// it (unexpected_exception_count()).
void report_exception(std::string_view where, const std::exception_ptr& e) noexcept;

class connection_core : public io_target, public std::enable_shared_from_this<connection_core> {
 public:
  connection_core(const connection_core&) = delete;
  connection_core& operator=(const connection_core&) = delete;

  // The timer's: each connection keeps its executor once (Asio 1.81's get_executor() is not const).
  [[nodiscard]] asio::any_io_executor executor() const noexcept {
    return const_cast<asio::steady_timer&>(timer_).get_executor();
  }

  void on_io(io_event event, error_code ec, std::size_t bytes) override;
  void on_timer(std::uint32_t generation, error_code ec);

 protected:
  connection_core(asio::any_io_executor executor, std::uint32_t read_buffer_size,
                  std::chrono::milliseconds close_timeout);
  virtual ~connection_core();

  // Starts reading, writing and the timer; the session and the handshaken stream must be set.
  void start_io();

  // Sends new output, notes a closing session's reason and bounds its close, resumes reading
  // after the application's CONNECT decision, moves the timer closer. Call after every
  // application call into the session.
  void after_session_change();

  // The first reason noted is the one reported.
  void note_reason(const error_code& ec) noexcept;

  // Closes the transport at once (idempotent); the connection finishes soon after, never
  // inside this call.
  void close_stream() noexcept;

  // Bounds a handshake: closes the transport at `deadline` unless end_handshake() came first.
  void arm_handshake_watchdog(time_point deadline);
  // Returns false when the watchdog fired.
  bool end_handshake() noexcept;

  // --- hooks for the derived connection ---

  // A session event (views valid during the call).
  virtual void dispatch(mqtt::session_event& event, time_point now) = 0;
  // Output up to `generation` (see out_generation_) has been written: at once, inside the
  // call that queued it (plain TCP, usually), or later from the executor.
  virtual void on_written(std::uint32_t /*generation*/) {}
  // Output up to `generation` has been written already.
  [[nodiscard]] bool written_through(std::uint32_t generation) const noexcept {
    return static_cast<std::int32_t>(generation - written_through_) <= 0;
  }
  // An extra deadline for the timer, and what to do when it passes.
  [[nodiscard]] virtual std::optional<time_point> watchdog_deadline() const noexcept { return std::nullopt; }
  virtual void on_watchdog() {}
  // The connection has ended and the session knows; report it. Runs once per start_io().
  virtual void on_finished() = 0;
  // An exception escaped dispatch(): a bug in the application's handler or here.
  virtual void on_exception() noexcept {}

  std::optional<mqtt::session> session_;
  std::unique_ptr<transport_stream> stream_;
  asio::steady_timer timer_;
  error_code reason_;
  // Incremented by the client for each QoS 0 publish, so that it can tell when it was written.
  std::uint32_t out_generation_ = 0;
  bool closed_ = false;  // the transport is closed (or being torn down)
  bool reason_set_ = false;

 private:
  void start_read();
  void pump_writer();
  // The write of write_buffer_ (output up to written_generation_) has completed.
  void written();
  void arm_timer();
  void maybe_finish() noexcept;
  void finish() noexcept;
  void process_input();
  // Reads what a ready socket holds into the thread's scratch buffer and hands it to the
  // session; a partial packet left over moves into read_buffer_, where the next reads
  // continue it (io_event::readable, plain TCP).
  void read_ready();
  // Feeds `bytes` (not read_buffer_) to the session; keeps an incomplete packet's bytes.
  void consume(const char* bytes, std::uint32_t size);
  // `bytes` more were read into read_buffer_ after what it held: hands them to the session.
  void took_into_buffer(std::uint32_t bytes);
  // Hands `bytes` to the session packet by packet, dispatching each event; returns how many
  // it took (the rest is an incomplete packet, or input after a close).
  std::uint32_t feed(const char* bytes, std::uint32_t size);
  void prepare_read_buffer();
  void fail_with_exception(const std::exception_ptr& e) noexcept;
  [[nodiscard]] time_point next_wakeup() const noexcept;
  [[nodiscard]] io_handler handler(io_event event) { return io_handler{shared_from_this(), event}; }

  std::unique_ptr<char[]> read_buffer_;
  std::string write_buffer_;
  time_point timer_at_{};        // when the pending timer wait expires
  time_point close_deadline_{};  // once the session is closing
  std::uint32_t read_capacity_ = 0;
  std::uint32_t read_used_ = 0;
  std::uint32_t read_needed_ = 0;  // bytes the input must hold for the next packet
  std::uint32_t read_buffer_size_;  // the initial and idle size
  std::uint32_t close_timeout_ms_;
  std::uint32_t written_generation_ = 0;  // the output in write_buffer_ goes up to this
  std::uint32_t written_through_ = 0;     // output up to this has been written
  std::uint32_t timer_generation_ = 0;  // the current wait's; older completions are stale
  bool started_ = false;
  bool finished_ = false;
  bool reading_ = false;
  bool read_paused_ = false;  // waiting for the application's CONNECT decision
  bool writing_ = false;      // a write or the shutdown is pending
  bool shutdown_started_ = false;
  bool timer_waiting_ = false;
  bool close_armed_ = false;
  bool handshaking_ = false;
  bool handshake_timed_out_ = false;
  bool last_read_filled_ = false;
  bool drained_ = false;  // plain TCP: the last read left the socket empty (would_block, or TCP_INQ said 0)
  bool feeding_ = false;  // feed() is handing input to the session
};

}  // namespace twinfleet::net::detail
