// What waking a sleeping thread costs on this machine, nothing of twinfleet in it: two threads
// pass a token back and forth over a pair of eventfds, each blocking in read() until the other
// writes. Both threads pinned to one CPU (the wake-up stays on that CPU), then to two CPUs (every
// wake-up crosses to a CPU that may be halted: an inter-processor interrupt, which in a virtual
// machine is an exit to the hypervisor). Printed: the round trip's wall time and the CPU both
// threads spent per round trip (the process's CPU clock), medians of 5 runs of 20,000 round trips.
//
// Why it is here: at 40,000 reported patches/s the hub's answers wake the run's device threads
// ~6,500 times a second across CPUs (ipi:ipi_send_cpu, bench/README.md "stop 18"). This program
// gives the price of one such wake-up on the machine at hand, for reading those figures.
//
//   build/bench/wakeup_bench [--round-trips N]
#include <pthread.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "bench_util.hpp"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

namespace {

using twinfleet::bench::median;
using twinfleet::bench::process_cpu_seconds;

bool pin(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return ::pthread_setaffinity_np(::pthread_self(), sizeof set, &set) == 0;
}

struct sample {
  double rtt_us = 0, cpu_us = 0;
};

// One run: the main thread on CPU a, the echoing thread on CPU b.
bool ping_pong(int a, int b, int round_trips, sample& out) {
  const int there = ::eventfd(0, EFD_CLOEXEC), back = ::eventfd(0, EFD_CLOEXEC);
  if (there < 0 || back < 0) return false;
  bool pinned = pin(a);
  std::thread echo([&] {
    pinned = pin(b) && pinned;
    std::uint64_t v = 0;
    for (int i = 0; i < round_trips; ++i) {
      if (::read(there, &v, sizeof v) != sizeof v || ::write(back, &v, sizeof v) != sizeof v) return;
    }
  });
  const double c0 = process_cpu_seconds();
  const auto t0 = std::chrono::steady_clock::now();
  std::uint64_t v = 1;
  bool ok = true;
  for (int i = 0; i < round_trips && ok; ++i) {
    ok = ::write(there, &v, sizeof v) == sizeof v && ::read(back, &v, sizeof v) == sizeof v;
  }
  const auto t1 = std::chrono::steady_clock::now();
  echo.join();
  const double c1 = process_cpu_seconds();
  ::close(there);
  ::close(back);
  out.rtt_us = std::chrono::duration<double, std::micro>(t1 - t0).count() / round_trips;
  out.cpu_us = 1e6 * (c1 - c0) / round_trips;
  return ok && pinned;
}

}  // namespace

int main(int argc, char** argv) {
  int round_trips = 20000;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--round-trips" && i + 1 < argc) {
      round_trips = std::max(100, std::atoi(argv[++i]));
    } else {
      std::fprintf(stderr, "wakeup_bench: unknown argument %s (usage: wakeup_bench [--round-trips N])\n", a.c_str());
      return 2;
    }
  }
  const unsigned cpus = std::thread::hardware_concurrency();
  std::printf("wakeup_bench: a token passed between two threads over eventfds, %d round trips, medians of 5 runs, %u CPUs\n",
              round_trips, cpus);
  struct setup {
    const char* name;
    int a, b;
  };
  std::vector<setup> setups{{"both threads on CPU 0", 0, 0}};
  if (cpus >= 2) setups.push_back({"threads on CPUs 0 and 1", 0, 1});
  double same_cpu = 0;
  for (const auto& s : setups) {
    std::vector<double> rtt, cpu;
    for (int r = 0; r < 5; ++r) {
      sample x;
      if (!ping_pong(s.a, s.b, round_trips, x)) {
        std::printf("  %-26s could not run (pinning or eventfd failed)\n", s.name);
        break;
      }
      rtt.push_back(x.rtt_us);
      cpu.push_back(x.cpu_us);
    }
    if (rtt.empty()) continue;
    std::printf("  %-26s round trip %7.2f us   CPU per round trip (2 wake-ups) %7.2f us\n", s.name, median(rtt), median(cpu));
    if (s.b == s.a) {
      same_cpu = median(cpu);
    } else if (same_cpu > 0) {
      std::printf("  a wake-up across CPUs costs %.1f us of CPU more than one on the same CPU\n", (median(cpu) - same_cpu) / 2);
    }
  }
  return 0;
}
