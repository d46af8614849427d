// Open files, the limit that decides how many devices one process can carry. Every device
// connection is one file descriptor (two when the hub runs embedded in the same process: the
// device's end and the hub's end), and the hard RLIMIT_NOFILE cannot be raised without
// privileges (on the machines this project targets it is 20,000). The engine checks before it
// starts, raises the soft limit as far as the hard one allows, and otherwise explains the gap
// and the ways out instead of failing half-way through the ramp with EMFILE.
#pragma once

#include <cstdint>
#include <string>

namespace twinfleet::engine {

// What a run needs from one process.
struct fd_demand {
  std::uint64_t devices = 0;     // device connections this process opens
  bool embedded_hub = false;     // the local hub in this process: two descriptors a device
  std::uint64_t service_connections = 16;  // REST pools, observers, metrics endpoint
  std::uint64_t reserve = 64;    // files, logs, stdio, listeners, resolver, slack

  [[nodiscard]] std::uint64_t descriptors() const noexcept {
    return devices * (embedded_hub ? 2 : 1) + service_connections + reserve;
  }
};

struct fd_plan {
  std::uint64_t needed = 0;
  std::uint64_t soft = 0;
  std::uint64_t hard = 0;
  std::uint64_t raise_to = 0;  // the soft limit to set; 0: leave it
  bool fits = false;           // after raising
  // The most devices one process can carry under the hard limit with this demand's shape.
  std::uint64_t devices_per_process = 0;
  // When it does not fit: what is missing and what to do, in words for the console.
  std::string explanation;
};

// Pure: what to do with limits (soft, hard) for `demand`.
[[nodiscard]] fd_plan plan_file_limit(const fd_demand& demand, std::uint64_t soft, std::uint64_t hard);

// Reads RLIMIT_NOFILE, plans, and raises the soft limit when the plan says so. The returned
// plan's `fits` is false when even the hard limit is too low (nothing is changed then).
[[nodiscard]] fd_plan ensure_file_limit(const fd_demand& demand);

}  // namespace twinfleet::engine
