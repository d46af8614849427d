#include <twinfleet/engine/file_limit.hpp>

#include <sys/resource.h>

#include <algorithm>

namespace twinfleet::engine {

fd_plan plan_file_limit(const fd_demand& demand, std::uint64_t soft, std::uint64_t hard) {
  fd_plan plan;
  plan.needed = demand.descriptors();
  plan.soft = soft;
  plan.hard = hard;
  const std::uint64_t overhead = demand.service_connections + demand.reserve;
  const std::uint64_t per_device = demand.embedded_hub ? 2 : 1;
  plan.devices_per_process = hard > overhead ? (hard - overhead) / per_device : 0;
  if (plan.needed <= soft) {
    plan.fits = true;
    return plan;
  }
  if (plan.needed <= hard) {
    plan.fits = true;
    plan.raise_to = plan.needed;
    return plan;
  }
  plan.fits = false;
  const std::uint64_t workers = plan.devices_per_process == 0
                                    ? 0
                                    : (demand.devices + plan.devices_per_process - 1) / plan.devices_per_process;
  plan.explanation = std::to_string(demand.devices) + " devices need about " + std::to_string(plan.needed) +
                     " open files in one process" +
                     (demand.embedded_hub ? " (two per device: the local hub runs in the same process)" : "") +
                     ", but this process may open at most " + std::to_string(hard) +
                     " (RLIMIT_NOFILE hard limit; raising it needs privileges). One process carries at most " +
                     std::to_string(plan.devices_per_process) + " such devices. Ways out: --workers " +
                     std::to_string(std::max<std::uint64_t>(workers, 2)) +
                     " to spread the fleet over that many processes";
  if (demand.embedded_hub) {
    plan.explanation += "; run the hub as its own process (`twinfleet hub`, target: hub) so each device costs one file";
  }
  plan.explanation += "; or raise the hard limit (`ulimit -Hn` as root, LimitNOFILE= in systemd, nofile in "
                      "/etc/security/limits.conf).";
  return plan;
}

fd_plan ensure_file_limit(const fd_demand& demand) {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) {
    fd_plan plan;
    plan.needed = demand.descriptors();
    plan.explanation = "cannot read RLIMIT_NOFILE";
    return plan;
  }
  auto as_u64 = [](rlim_t v) {
    return v == RLIM_INFINITY ? UINT64_MAX : static_cast<std::uint64_t>(v);
  };
  auto plan = plan_file_limit(demand, as_u64(limit.rlim_cur), as_u64(limit.rlim_max));
  if (plan.fits && plan.raise_to != 0) {
    limit.rlim_cur = static_cast<rlim_t>(plan.raise_to);
    if (::setrlimit(RLIMIT_NOFILE, &limit) != 0) {
      plan.fits = false;
      plan.explanation = "cannot raise the open-file limit to " + std::to_string(plan.raise_to);
    } else {
      plan.soft = plan.raise_to;
    }
  }
  return plan;
}

}  // namespace twinfleet::engine
