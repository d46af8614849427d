// Test helpers for the MQTT module: hex byte strings, and a scripted peer on virtual time that
// plays the other end of a sans-I/O session (as Boost.MQTT5's tests fake a broker).
#pragma once

#include <twinfleet/mqtt/codec.hpp>
#include <twinfleet/mqtt/session.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

namespace twinfleet::mqtt::test {

using namespace std::chrono_literals;

// "10 24 00 04" -> the bytes; spaces ignored.
inline std::string from_hex(std::string_view hex) {
  std::string out;
  int high = -1;
  for (char c : hex) {
    int v;
    if (c >= '0' && c <= '9') v = c - '0';
    else if (c >= 'a' && c <= 'f') v = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F') v = c - 'A' + 10;
    else continue;
    if (high < 0) {
      high = v;
    } else {
      out.push_back(static_cast<char>(high * 16 + v));
      high = -1;
    }
  }
  REQUIRE(high < 0);
  return out;
}

inline std::string to_hex(std::string_view bytes) {
  static constexpr char digits[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : bytes) {
    if (!out.empty()) out.push_back(' ');
    out.push_back(digits[c >> 4]);
    out.push_back(digits[c & 0x0F]);
  }
  return out;
}

inline std::string encoded(const packet& p) {
  std::string out;
  const auto ec = encode(p, out);
  INFO(ec.message());
  REQUIRE_FALSE(ec);
  return out;
}

// One end of a connection on virtual time: drives a session the way the I/O layer will, and
// keeps every byte string it exchanged alive, so that packets and events holding views into them
// stay valid for the whole test.
class scripted_peer {
 public:
  explicit scripted_peer(mqtt::role r, const session_options& options = {}) : session_(r, now_, options) {}

  session& s() noexcept { return session_; }
  time_point now() const noexcept { return now_; }
  std::chrono::steady_clock::duration elapsed() const noexcept { return now_ - time_point{}; }

  // Moves the clock to `t`, firing the session's timers at their exact deadlines on the way.
  std::vector<session_event> advance_to(time_point t) {
    std::vector<session_event> events;
    for (auto d = session_.next_deadline(); d && *d <= t; d = session_.next_deadline()) {
      now_ = std::max(now_, *d);
      auto e = session_.on_timer(now_);
      collect_output();
      if (!std::holds_alternative<std::monostate>(e)) events.push_back(std::move(e));
      if (session_.closing()) break;
    }
    now_ = std::max(now_, t);
    return events;
  }
  std::vector<session_event> advance(std::chrono::steady_clock::duration d) { return advance_to(now_ + d); }

  // The peer sends `p` (after `delay`): the session decodes it. Returns the events it produced.
  std::vector<session_event> send(const packet& p, std::chrono::steady_clock::duration delay = 0ms) {
    return send_bytes(encoded(p), delay);
  }

  std::vector<session_event> send_bytes(std::string bytes, std::chrono::steady_clock::duration delay = 0ms) {
    auto events = advance(delay);
    // Bytes left over from an earlier call (a partial packet, or packets a server session would
    // not take before accept()) come first, as they would in the I/O layer's read buffer.
    inbound_.push_back(std::string(pending_) + bytes);
    std::string_view in = inbound_.back();
    for (;;) {
      auto step = session_.on_bytes(in, now_);
      collect_output();
      if (!std::holds_alternative<std::monostate>(step.event)) events.push_back(std::move(step.event));
      if (step.consumed == 0) break;
      in.remove_prefix(step.consumed);
    }
    pending_ = in;
    return events;
  }

  // Feeds again the bytes the session did not consume (after accept(), say).
  std::vector<session_event> resume() { return send_bytes({}); }

  // Bytes the session has not consumed yet.
  std::size_t unconsumed() const noexcept { return pending_.size(); }

  // Also picks up output produced by application calls made directly on s().
  void collect_output() {
    std::string out;
    session_.take_output(out);
    wire_ += out;
    for (;;) {
      auto r = decode(wire_);
      if (r.need_more()) break;
      INFO("session sent undecodable bytes: " << to_hex(wire_) << " (" << r.error.message() << ")");
      REQUIRE(r.ok());
      frames_.push_back(wire_.substr(0, r.consumed));
      wire_.erase(0, r.consumed);
    }
  }

  // The next packet the session sent, which must be a T.
  template <class T>
  T expect_sent() {
    collect_output();
    REQUIRE(next_frame_ < frames_.size());
    const std::string& frame = frames_[next_frame_++];
    auto r = decode(frame);
    REQUIRE(r.ok());
    INFO("sent " << to_string(type_of(*r.packet)) << ": " << to_hex(frame));
    REQUIRE(std::holds_alternative<T>(*r.packet));
    return std::get<T>(*r.packet);
  }

  // The raw bytes of the next packet the session sent.
  std::string expect_sent_bytes() {
    collect_output();
    REQUIRE(next_frame_ < frames_.size());
    return frames_[next_frame_++];
  }

  bool nothing_sent() {
    collect_output();
    return next_frame_ == frames_.size() && wire_.empty();
  }

  std::size_t sent_count() {
    collect_output();
    return frames_.size() - next_frame_;
  }

 private:
  time_point now_{};
  session session_;
  std::deque<std::string> inbound_;
  std::deque<std::string> frames_;
  std::size_t next_frame_ = 0;
  std::string wire_;
  std::string_view pending_;
};

template <class T>
const T& event_as(const std::vector<session_event>& events, std::size_t i = 0) {
  REQUIRE(i < events.size());
  REQUIRE(std::holds_alternative<T>(events[i]));
  return std::get<T>(events[i]);
}

}  // namespace twinfleet::mqtt::test
