// The machine's own noise floor, measured beside a benchmark: one TCP connection on 127.0.0.1
// between two threads of this process, a 64-byte ping every millisecond echoed back (TCP_NODELAY
// both ways), nothing of twinfleet in it. The round trips and how late each ping's wake-up came
// show what the kernel and the hypervisor add on their own while the benchmark runs: a
// reported-patch p99 cannot be much better than this probe's tail. Independent of the code it
// measures beside (no Asio; plain sockets and threads).
//
//   loopback_probe probe;           // starts pinging at once
//   ...                             // the window being measured
//   auto r = probe.stop();          // r.rtt_p99_ms, r.rtt_max_ms, r.late_max_ms, r.count
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <thread>
#include <vector>

namespace twinfleet::bench {

class loopback_probe {
 public:
  struct result {
    std::size_t count = 0;  // round trips measured
    double rtt_p50_ms = NAN, rtt_p99_ms = NAN, rtt_max_ms = NAN;
    double late_p99_ms = NAN, late_max_ms = NAN;  // how late the 1 ms sleep ended
  };

  loopback_probe() {
    listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (listener_ < 0 || ::bind(listener_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(listener_, 1) != 0 ||
        ::getsockname(listener_, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
      return;
    }
    client_ = ::socket(AF_INET, SOCK_STREAM, 0);
    if (client_ < 0 || ::connect(client_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return;
    server_ = ::accept(listener_, nullptr, nullptr);
    if (server_ < 0) return;
    const int one = 1;
    ::setsockopt(client_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    ::setsockopt(server_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    echo_ = std::thread([this] { echo(); });
    ping_ = std::thread([this] { ping(); });
  }
  ~loopback_probe() { (void)stop(); }
  loopback_probe(const loopback_probe&) = delete;
  loopback_probe& operator=(const loopback_probe&) = delete;

  // Stops both threads (the pinger within a millisecond, the echo thread when its socket closes)
  // and summarises. Empty (count 0) when the sockets could not be set up.
  result stop() {
    stopping_ = true;
    if (ping_.joinable()) ping_.join();
    if (client_ >= 0) ::shutdown(client_, SHUT_RDWR);
    if (server_ >= 0) ::shutdown(server_, SHUT_RDWR);
    if (echo_.joinable()) echo_.join();
    for (int* fd : {&client_, &server_, &listener_}) {
      if (*fd >= 0) ::close(*fd);
      *fd = -1;
    }
    result r;
    r.count = rtts_.size();
    if (rtts_.empty()) return r;
    auto at = [](std::vector<double> v, double q) {
      std::sort(v.begin(), v.end());
      return v[std::min(v.size() - 1, static_cast<std::size_t>(q * static_cast<double>(v.size())))];
    };
    r.rtt_p50_ms = at(rtts_, 0.5);
    r.rtt_p99_ms = at(rtts_, 0.99);
    r.rtt_max_ms = *std::max_element(rtts_.begin(), rtts_.end());
    r.late_p99_ms = at(lates_, 0.99);
    r.late_max_ms = *std::max_element(lates_.begin(), lates_.end());
    return r;
  }

 private:
  using clock = std::chrono::steady_clock;

  void echo() const {
    char b[64];
    for (;;) {
      const auto n = ::recv(server_, b, sizeof b, 0);
      if (n <= 0 || ::send(server_, b, static_cast<std::size_t>(n), MSG_NOSIGNAL) != n) return;
    }
  }

  void ping() {
    char b[64] = {};
    auto next = clock::now();
    while (!stopping_) {
      next += std::chrono::milliseconds(1);
      std::this_thread::sleep_until(next);
      const auto woke = clock::now();
      lates_.push_back(std::chrono::duration<double, std::milli>(woke - next).count());
      if (::send(client_, b, sizeof b, MSG_NOSIGNAL) != static_cast<ssize_t>(sizeof b)) return;
      std::size_t got = 0;
      while (got < sizeof b) {
        const auto n = ::recv(client_, b + got, sizeof b - got, 0);
        if (n <= 0) return;
        got += static_cast<std::size_t>(n);
      }
      const auto back = clock::now();
      rtts_.push_back(std::chrono::duration<double, std::milli>(back - woke).count());
      if (back > next) next = back;  // a late ping does not make the next ones bunch up
    }
  }

  int listener_ = -1, client_ = -1, server_ = -1;
  std::atomic<bool> stopping_{false};
  std::vector<double> rtts_, lates_;  // written by the pinger only, read after it joined
  std::thread echo_, ping_;
};

}  // namespace twinfleet::bench
