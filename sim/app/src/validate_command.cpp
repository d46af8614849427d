// `twinfleet validate FILE…`: load device profiles and scenarios without running anything and
// print every problem as file:line:column: key.path: message. Exit 2 on any problem.
#include "commands.hpp"

#include <twinfleet/config/diagnostics.hpp>
#include <twinfleet/config/reader.hpp>
#include <twinfleet/config/units.hpp>
#include <twinfleet/scenario/profile_loader.hpp>
#include <twinfleet/scenario/scenario_loader.hpp>

#include <fmt/core.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace twinfleet::app {

namespace {

namespace sc = twinfleet::scenario;

std::string plural(std::size_t n, const char* one, const char* many) { return fmt::format("{} {}", n, n == 1 ? one : many); }

std::string profile_summary(const device::profile& p) {
  return fmt::format("profile {}: {}, {}, {}, {}", p.name, plural(p.reported.size(), "reported property", "reported properties"),
                     plural(p.desired.size(), "desired property", "desired properties"),
                     plural(p.commands.size(), "command", "commands"),
                     plural(p.telemetry.size(), "telemetry message", "telemetry messages"));
}

std::string scenario_summary(const sc::scenario& s) {
  std::uint64_t azure = 0;
  std::uint64_t aws = 0;
  std::vector<std::string> profiles;
  for (const auto& e : s.fleet) {
    (e.via == sc::dialect::azure ? azure : aws) += e.count;
    if (e.profile && std::find(profiles.begin(), profiles.end(), e.profile->name) == profiles.end()) profiles.push_back(e.profile->name);
  }
  return fmt::format("scenario {}: {} ({} azure, {} aws; {}), {} over {}, target {}, seed {}", s.name,
                     plural(s.device_count(), "device", "devices"), azure, aws, plural(profiles.size(), "profile", "profiles"),
                     plural(s.phases.size(), "phase", "phases"), config::format_duration(s.total_duration()),
                     sc::target_name(s.target), s.seed);
}

int validate(const std::vector<std::string>& files, bool quiet) {
  std::size_t bad_files = 0;
  std::size_t errors = 0;
  for (const auto& file : files) {
    config::diagnostics diags;
    std::string summary;
    switch (sc::detect_file_kind(file)) {
      case sc::file_kind::scenario:
        if (const auto s = sc::load_scenario(file, diags)) summary = scenario_summary(*s);
        break;
      case sc::file_kind::profile:
        if (const auto p = sc::load_profile(file, diags)) summary = profile_summary(*p);
        break;
      case sc::file_kind::unknown:
        // Unreadable or not YAML: the loader's diagnostics say why. Readable but neither kind:
        // say so rather than list every key as unknown.
        if (config::document::load_file(file, diags)) {
          diags.add(config::diagnostic{file, 0, 0, "",
                                       "neither a scenario (no fleet, phases or target) nor a device profile "
                                       "(no identity, reported, desired, commands or telemetry)"});
        }
        break;
    }
    if (diags.empty()) {
      if (!quiet) std::fputs(fmt::format("{}: ok: {}\n", file, summary).c_str(), stdout);
      continue;
    }
    ++bad_files;
    errors += diags.size();
    diags.sort();
    std::fputs(diags.to_string().c_str(), stderr);
  }
  if (bad_files > 0) {
    std::fputs(fmt::format("{} in {} of {}\n", plural(errors, "error", "errors"), plural(bad_files, "file", "files"),
                           files.size()).c_str(), stderr);
    return 2;
  }
  return 0;
}

// `twinfleet profiles`: every profile a scenario can name, where it was found, and what it has.
int list_profiles(const std::vector<std::string>& extra_dirs) {
  std::vector<std::filesystem::path> dirs(extra_dirs.begin(), extra_dirs.end());
  for (auto& d : sc::default_profile_dirs("./scenario.yaml")) dirs.push_back(std::move(d));
  // Next to the binary: build/twinfleet of a checkout finds the checkout's device-profiles.
  std::error_code ec;
  if (const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec); !ec) {
    dirs.push_back((exe.parent_path() / ".." / "device-profiles").lexically_normal());
  }
  std::vector<std::string> seen;
  std::size_t shown = 0;
  for (const auto& dir : dirs) {
    std::vector<std::filesystem::path> files;
    for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
      if (entry.path().extension() == ".yaml") files.push_back(entry.path());
    }
    std::sort(files.begin(), files.end());
    for (const auto& file : files) {
      const auto name = file.stem().string();
      if (std::find(seen.begin(), seen.end(), name) != seen.end()) continue;  // an earlier folder wins
      seen.push_back(name);
      config::diagnostics diags;
      const auto p = sc::load_profile(file, diags);
      if (!p) {
        std::fputs(fmt::format("{:<16} {} (does not load: {} — run `twinfleet validate` on it)\n", name, file.string(),
                               plural(diags.size(), "error", "errors")).c_str(), stdout);
        continue;
      }
      ++shown;
      std::fputs(fmt::format("{:<16} {}\n{:<16} {}\n", p->name, p->description.empty() ? "(no description)" : p->description,
                             "", profile_summary(*p) + " — " + file.string()).c_str(), stdout);
    }
  }
  if (shown == 0) {
    std::fputs("no device profiles found (looked in ./device-profiles, $TWINFLEET_PROFILES and next to the binary)\n", stderr);
    return 1;
  }
  return 0;
}

}  // namespace

void add_profiles_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("profiles", "List the device profiles scenarios can name (profile: NAME)");
  auto dirs = std::make_shared<std::vector<std::string>>();
  cmd->add_option("--dir", *dirs, "Also look in this folder (first)");
  cmd->callback([dirs] {
    const int code = list_profiles(*dirs);
    std::fflush(stdout);
    if (code != 0) throw CLI::RuntimeError(code);
  });
}

void add_validate_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("validate", "Check device profiles and scenarios without running them; "
                                             "exit 2 when any file has an error");
  auto files = std::make_shared<std::vector<std::string>>();
  auto quiet = std::make_shared<bool>(false);
  cmd->add_option("files", *files, "Profile or scenario YAML files")->required();
  cmd->add_flag("-q,--quiet", *quiet, "Print only the errors");
  cmd->callback([files, quiet] {
    const int code = validate(*files, *quiet);
    std::fflush(stdout);
    if (code != 0) throw CLI::RuntimeError(code);
  });
}

}  // namespace twinfleet::app
