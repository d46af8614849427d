// `twinfleet run SCENARIO`: the main job — a fleet of virtual devices from a scenario, with a
// live progress line and a summary at the end (also after Ctrl-C).
#include "commands.hpp"

#include <twinfleet/config/units.hpp>
#include <twinfleet/engine/fleet_run.hpp>
#include <twinfleet/reporters/html.hpp>
#include <twinfleet/reporters/junit.hpp>
#include <twinfleet/reporters/summary.hpp>
#include <twinfleet/reporters/thresholds.hpp>
#include <twinfleet/scenario/plan.hpp>
#include <twinfleet/scenario/scenario_loader.hpp>

#include <fmt/core.h>

#include <boost/json/serialize.hpp>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <vector>

#include <unistd.h>

namespace twinfleet::app {

namespace {

struct run_flags {
  std::string scenario;
  std::size_t threads = 0;
  std::string duration;
  std::string settle;
  std::optional<std::uint64_t> devices;
  std::optional<std::uint64_t> seed;
  std::vector<std::string> sets;  // key.path=value
  bool quiet = false;
  std::string report;  // a folder for summary.json
  std::string metrics_listen = "127.0.0.1:9464";
  bool metrics_listen_given = false;
};

std::shared_ptr<std::atomic<bool>>& stop_flag() {
  static auto flag = std::make_shared<std::atomic<bool>>(false);
  return flag;
}
std::shared_ptr<std::atomic<bool>>& hurry_flag() {
  static auto flag = std::make_shared<std::atomic<bool>>(false);
  return flag;
}
std::atomic<int> interrupts{0};

// Ctrl-C once: stop the load, let in-flight work finish (bounded), disconnect, report.
// Twice: skip the waiting, report what there is. A third time: leave now.
extern "C" void on_interrupt(int) {
  const int n = ++interrupts;
  // write(2) is async-signal-safe; stdio is not.
  auto say = [](const char* text) { (void)!::write(2, text, std::strlen(text)); };
  if (n == 1) {
    stop_flag()->store(true);
    say("\ntwinfleet run: stopping: the load ends, devices disconnect (Ctrl-C again to stop waiting)\n");
  }
  if (n == 2) {
    hurry_flag()->store(true);
    say("twinfleet run: stopping now, writing what was measured\n");
  }
  if (n >= 3) std::_Exit(130);
}

int run(const run_flags& flags) {
  config::diagnostics diags;
  scenario::load_options load;
  for (const auto& set : flags.sets) {
    const auto eq = set.find('=');
    if (eq == std::string::npos || eq == 0) {
      fmt::print(stderr, "twinfleet run: --set {}: expected key.path=value, e.g. --set phases.0.duration=30s\n", set);
      return 2;
    }
    load.overrides.emplace_back(set.substr(0, eq), set.substr(eq + 1));
  }
  auto s = scenario::load_scenario(flags.scenario, diags, load);
  if (!s) {
    for (const auto& d : diags.items()) fmt::print(stderr, "{}\n", d.to_string());
    fmt::print(stderr, "twinfleet run: {} error{} in {}\n", diags.size(), diags.size() == 1 ? "" : "s", flags.scenario);
    return 2;
  }
  if (flags.seed) s->seed = *flags.seed;
  if (flags.devices) scenario::scale_fleet(*s, *flags.devices);
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
  if (!flags.settle.empty()) {
    auto d = config::parse_duration(flags.settle);
    if (!d) {
      fmt::print(stderr, "twinfleet run: --settle {}: expected a duration such as 0s or 10s\n", flags.settle);
      return 2;
    }
    options.settle = *d;
  }
  if (flags.quiet) options.progress_every = std::chrono::milliseconds(0);
  if (flags.metrics_listen != "off") {
    options.metrics_listen = flags.metrics_listen;
    options.metrics_listen_required = flags.metrics_listen_given;
  }
  // On a terminal the live line is rewritten in place; elsewhere (CI logs, pipes) it is one
  // plain line a second.
  static bool line_open = false;
  if (::isatty(STDOUT_FILENO) == 1) {
    options.progress = [](std::string_view line) {
      std::fputs("\r\033[K", stdout);
      std::fwrite(line.data(), 1, line.size(), stdout);
      std::fflush(stdout);
      line_open = true;
    };
    options.console = [](std::string_view line) {
      if (line_open) std::fputc('\n', stdout);
      line_open = false;
      std::fwrite(line.data(), 1, line.size(), stdout);
      std::fputc('\n', stdout);
      std::fflush(stdout);
    };
  }
  options.stop = stop_flag();
  options.hurry = hurry_flag();
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
  if (line_open) std::fputc('\n', stdout);
  fmt::print("{}", engine::format_summary(*result));
  // The thresholds, k6-style: each one's verdict on the console, in summary.json and as a
  // JUnit test case; any failure makes the exit code 99.
  auto summary = engine::summary_json(*result);
  const auto verdicts = reporters::evaluate_thresholds(s->thresholds, summary);
  reporters::store_threshold_results(summary, verdicts);
  if (!verdicts.empty()) fmt::print("{}", reporters::console_report(verdicts));
  std::fflush(stdout);
  if (!flags.report.empty()) {
    // Written after Ctrl-C too: what ran is never lost.
    const std::filesystem::path dir(flags.report);
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    auto written = reporters::write_text_file(dir / "summary.json", reporters::pretty_json(summary));
    if (written) written = reporters::write_junit(summary, verdicts, dir / "junit.xml");
    if (written) written = reporters::write_html(summary, dir / "report.html");
    if (!written) {
      fmt::print(stderr, "twinfleet run: {}\n", written.error().message);
      return 1;
    }
    fmt::print("  report: {} (summary.json, junit.xml, report.html)\n", dir.string());
  }
  if (hurry_flag()->load()) return 130;
  if (!reporters::all_passed(verdicts)) return 99;  // console_report said which and by how much
  return 0;
}

}  // namespace

void add_run_command(CLI::App& app) {
  auto flags = std::make_shared<run_flags>();
  auto* cmd = app.add_subcommand("run", "Run a scenario: a fleet of virtual devices and the back end that drives it");
  cmd->add_option("scenario", flags->scenario, "The scenario file (scenarios/quickstart.yaml)")->required();
  cmd->add_option("--threads", flags->threads, "Device threads (default: the cores)");
  cmd->add_option("--duration", flags->duration, "Run this long instead of the phases' total (30s, 2m)");
  cmd->add_option("--settle", flags->settle,
                  "After the load, wait up to this long for the last desired writes to converge (default 5s)");
  cmd->add_option("--devices", flags->devices, "Scale the fleet to this many devices, each entry keeping its share");
  cmd->add_option("--seed", flags->seed, "The seed every random choice derives from (default: the scenario's)");
  cmd->add_option("--set", flags->sets, "Override a scenario value before loading: key.path=value (repeatable)");
  cmd->add_flag("--quiet", flags->quiet, "No live progress line");
  cmd->add_option("--metrics-listen", flags->metrics_listen,
                  "The Prometheus endpoint during the run, ADDR:PORT (default 127.0.0.1:9464; a busy default port is "
                  "skipped with a notice); off: none")
      ->each([flags](const std::string&) { flags->metrics_listen_given = true; });
  cmd->add_option("--report-dir,--report", flags->report, "Write the reports into this folder (also after Ctrl-C)");
  cmd->callback([flags] {
    const int code = run(*flags);
    if (code != 0) throw CLI::RuntimeError(code);
  });
}

}  // namespace twinfleet::app
