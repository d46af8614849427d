// `twinfleet run SCENARIO`: the main job — a fleet of virtual devices from a scenario, with a
// live progress line and a summary at the end (also after Ctrl-C).
#include "commands.hpp"

#include <twinfleet/config/units.hpp>
#include <twinfleet/engine/fleet_run.hpp>
#include <twinfleet/scenario/scenario_loader.hpp>

#include <fmt/core.h>

#include <boost/json/serialize.hpp>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <csignal>
#include <memory>

namespace twinfleet::app {

namespace {

struct run_flags {
  std::string scenario;
  std::size_t threads = 0;
  std::string duration;
  bool quiet = false;
  std::string report;  // a folder for summary.json
};

std::shared_ptr<std::atomic<bool>>& stop_flag() {
  static auto flag = std::make_shared<std::atomic<bool>>(false);
  return flag;
}

extern "C" void on_interrupt(int) { stop_flag()->store(true); }

int run(const run_flags& flags) {
  config::diagnostics diags;
  auto s = scenario::load_scenario(flags.scenario, diags);
  if (!s) {
    for (const auto& d : diags.items()) fmt::print(stderr, "{}\n", d.to_string());
    fmt::print(stderr, "twinfleet run: {} error{} in {}\n", diags.size(), diags.size() == 1 ? "" : "s", flags.scenario);
    return 2;
  }
  engine::run_options options;
  options.threads = flags.threads;
  if (!flags.duration.empty()) {
    auto d = config::parse_duration(flags.duration);
    if (!d) {
      fmt::print(stderr, "twinfleet run: --duration {}: expected a duration such as 30s or 2m\n", flags.duration);
      return 2;
    }
    options.duration = *d;
  }
  if (flags.quiet) options.progress_every = std::chrono::milliseconds(0);
  options.stop = stop_flag();
  std::signal(SIGINT, on_interrupt);
  std::signal(SIGTERM, on_interrupt);
  fmt::print("twinfleet run: {} ({} devices, {}), Ctrl-C ends it early\n", s->name, s->device_count(),
             scenario::target_name(s->target));
  std::fflush(stdout);
  auto result = engine::run_scenario(*s, options);
  if (!result) {
    fmt::print(stderr, "twinfleet run: {}\n", result.error().message);
    return 1;
  }
  fmt::print("{}", engine::format_summary(*result));
  std::fflush(stdout);
  if (!flags.report.empty()) {
    // Written after Ctrl-C too: what ran is never lost.
    std::error_code ec;
    std::filesystem::create_directories(flags.report, ec);
    const auto file = std::filesystem::path(flags.report) / "summary.json";
    std::ofstream out(file, std::ios::trunc);
    out << boost::json::serialize(engine::summary_json(*result)) << '\n';
    if (!out) {
      fmt::print(stderr, "twinfleet run: cannot write {}\n", file.string());
      return 1;
    }
    fmt::print("  report: {}\n", file.string());
  }
  return 0;
}

}  // namespace

void add_run_command(CLI::App& app) {
  auto flags = std::make_shared<run_flags>();
  auto* cmd = app.add_subcommand("run", "Run a scenario: a fleet of virtual devices and the back end that drives it");
  cmd->add_option("scenario", flags->scenario, "The scenario file (scenarios/quickstart.yaml)")->required();
  cmd->add_option("--threads", flags->threads, "Device threads (default: the cores)");
  cmd->add_option("--duration", flags->duration, "Run this long instead of the phases' total (30s, 2m)");
  cmd->add_flag("--quiet", flags->quiet, "No live progress line");
  cmd->add_option("--report", flags->report, "Write summary.json into this folder (also after Ctrl-C)");
  cmd->callback([flags] {
    const int code = run(*flags);
    if (code != 0) throw CLI::RuntimeError(code);
  });
}

}  // namespace twinfleet::app
