// The CPU this virtual machine actually gets, measured beside a benchmark. One thread per CPU of
// the process's affinity, pinned to it and, when allowed, SCHED_FIFO (so that the benchmark's own
// processes cannot delay it: it measures the host, not them), runs a fixed loop of register
// arithmetic (~80 µs) every 10 ms and times it. Nothing in the loop touches memory, so on a CPU
// that is there the loop always takes the same time; when the hypervisor takes the virtual CPU
// away (other tenants, throttling), the loop's wall time stretches.
//
// Each loop's stretch is its wall time over the fastest loop that thread ever ran. Per 100 ms
// slot and CPU, the mean stretch of its loops: a slot at 2 or more is a "slow spell" (that CPU
// ran at half speed or less for the slot). /proc/stat's steal column does not show these here
// (30 Nov 2026: spells of 3-10x every ~2 s with the machine otherwise idle, steal 0).
//
//   cpu_probe probe(origin);        // starts at once; slot times are seconds since `origin`
//   ...                             // the window being measured
//   auto r = probe.stop();          // r.slow_share, r.worst_stretch, r.slow_between(a, b) ...
//
// Costs ~1 % of each CPU. Independent of the code it measures beside (no Asio; plain threads).
#pragma once

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <thread>
#include <vector>

namespace twinfleet::bench {

// One timed loop: when it started (seconds since the origin) and how long it took (seconds).
struct cpu_probe_loop {
  double at_s = 0;
  double took_s = 0;
};

struct cpu_probe_result {
  bool realtime = false;       // the threads ran SCHED_FIFO (else they compete with the benchmark)
  std::size_t cpus = 0;        // threads that ran
  std::size_t slots = 0;       // 100 ms slots × CPUs with at least one loop
  std::size_t slow_slots = 0;  // of those, the slots whose mean stretch was >= 2
  double slow_share = NAN;     // slow_slots / slots
  double worst_stretch = NAN;  // the largest mean stretch of any slot
  std::set<long> slow_slot_index;  // k of each slow slot [k × 0.1 s, (k + 1) × 0.1 s), on any CPU

  // Whether a slow slot overlaps [from_s, to_s) (seconds since the origin).
  bool slow_between(double from_s, double to_s) const {
    auto it = slow_slot_index.lower_bound(static_cast<long>(std::floor(from_s * 10)));
    return it != slow_slot_index.end() && static_cast<double>(*it) / 10 < to_s;
  }
};

// The arithmetic (separate from the threads, for fleet_bench --self-test): `loops[c]` are CPU c's
// loops. Slots are [k × 0.1 s, (k + 1) × 0.1 s) since the origin.
inline cpu_probe_result summarize_cpu_probe(const std::vector<std::vector<cpu_probe_loop>>& loops, bool realtime) {
  cpu_probe_result r;
  r.realtime = realtime;
  double worst = 0;
  for (const auto& cpu : loops) {
    if (cpu.empty()) continue;
    ++r.cpus;
    double fastest = INFINITY;
    for (const auto& l : cpu) fastest = std::min(fastest, l.took_s);
    if (!(fastest > 0)) continue;
    std::map<long, std::pair<double, int>> slot;  // slot -> (sum of stretches, loops)
    for (const auto& l : cpu) {
      auto& s = slot[static_cast<long>(std::floor(l.at_s * 10))];
      s.first += l.took_s / fastest;
      ++s.second;
    }
    for (const auto& [k, s] : slot) {
      const double mean = s.first / s.second;
      ++r.slots;
      worst = std::max(worst, mean);
      if (mean >= 2) {
        ++r.slow_slots;
        r.slow_slot_index.insert(k);
      }
    }
  }
  if (r.slots > 0) {
    r.slow_share = static_cast<double>(r.slow_slots) / static_cast<double>(r.slots);
    r.worst_stretch = worst;
  }
  return r;
}

class cpu_probe {
 public:
  explicit cpu_probe(std::chrono::steady_clock::time_point origin = std::chrono::steady_clock::now()) : origin_(origin) {
    cpu_set_t mine;
    CPU_ZERO(&mine);
    if (::sched_getaffinity(0, sizeof mine, &mine) != 0) return;
    std::vector<int> cpus;
    for (int c = 0; c < CPU_SETSIZE; ++c) {
      if (CPU_ISSET(c, &mine)) cpus.push_back(c);
    }
    loops_.resize(cpus.size());
    realtime_.resize(cpus.size());
    for (std::size_t i = 0; i < cpus.size(); ++i) {
      threads_.emplace_back([this, i, cpu = cpus[i]] { run(i, cpu); });
    }
  }
  ~cpu_probe() { (void)stop(); }
  cpu_probe(const cpu_probe&) = delete;
  cpu_probe& operator=(const cpu_probe&) = delete;

  // Stops the threads (each within 10 ms) and summarises. Empty (cpus 0) if none could run.
  cpu_probe_result stop() {
    stopping_ = true;
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
    bool all_realtime = !realtime_.empty();
    for (auto rt : realtime_) all_realtime = all_realtime && rt != 0;
    return summarize_cpu_probe(loops_, all_realtime);
  }

 private:
  void run(std::size_t index, int cpu) {
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    (void)::pthread_setaffinity_np(::pthread_self(), sizeof one, &one);
    sched_param param{};
    param.sched_priority = 10;
    realtime_[index] = ::pthread_setschedparam(::pthread_self(), SCHED_FIFO, &param) == 0 ? 1 : 0;
    auto& out = loops_[index];
    out.reserve(4096);
    auto next = std::chrono::steady_clock::now();
    while (!stopping_.load(std::memory_order_relaxed)) {
      const auto a = std::chrono::steady_clock::now();
      std::uint64_t x = 1;
      for (int i = 0; i < 40000; ++i) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        x ^= x >> 17;
      }
      sink_.store(x, std::memory_order_relaxed);
      const auto b = std::chrono::steady_clock::now();
      out.push_back({std::chrono::duration<double>(a - origin_).count(), std::chrono::duration<double>(b - a).count()});
      next += std::chrono::milliseconds(10);
      if (next < b) next = b + std::chrono::milliseconds(10);
      std::this_thread::sleep_until(next);
    }
  }

  std::chrono::steady_clock::time_point origin_;
  std::vector<std::vector<cpu_probe_loop>> loops_;
  std::vector<char> realtime_;
  std::vector<std::thread> threads_;
  std::atomic<bool> stopping_{false};
  std::atomic<std::uint64_t> sink_{0};
};

}  // namespace twinfleet::bench
