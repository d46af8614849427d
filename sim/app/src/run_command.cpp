// `twinfleet run SCENARIO`: the main job — a fleet of virtual devices from a scenario, with a
// live progress line and a summary at the end (also after Ctrl-C).
#include "commands.hpp"

#include <twinfleet/config/units.hpp>
#include <twinfleet/engine/file_limit.hpp>
#include <twinfleet/engine/fleet_run.hpp>
#include <twinfleet/reporters/html.hpp>
#include <twinfleet/reporters/junit.hpp>
#include <twinfleet/reporters/merge.hpp>
#include <twinfleet/reporters/summary.hpp>
#include <twinfleet/reporters/thresholds.hpp>
#include <twinfleet/scenario/plan.hpp>
#include <twinfleet/scenario/scenario_loader.hpp>

#include <fmt/core.h>

#include <boost/json.hpp>

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

#include <thread>

#include <fcntl.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

namespace twinfleet::app {

namespace {

struct run_flags {
  std::string scenario;
  std::size_t threads = 0;
  std::string duration;
  std::string settle;
  std::string wake_grid;
  std::string metrics_linger;
  std::optional<std::uint64_t> devices;
  std::optional<std::uint64_t> seed;
  std::vector<std::string> sets;  // key.path=value
  bool quiet = false;
  std::string report;  // a folder for summary.json
  std::string metrics_listen = "127.0.0.1:9464";
  bool metrics_listen_given = false;
  std::optional<std::size_t> workers;  // 0 or absent: one process unless the fleet needs more
  std::string shard;                   // "i/N": this process is worker i of N (set by the parent)
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

// ---- worker processes ----------------------------------------------------------------
// `--workers N` (or a fleet larger than one process's open-file limit) runs the fleet as N
// processes of this binary, each `twinfleet run … --shard i/N` with its share of the devices
// (and of the back end's rates) and its own report folder; this parent shows one live line
// for all of them, forwards Ctrl-C, and merges their summaries into one report
// (reporters::merge_summaries: counts add, percentiles come from the merged histograms).

// A worker's live sample, sent to the parent as one line: "@progress {json}".
constexpr std::string_view progress_tag = "@progress ";

std::string progress_json(const engine::timeline_point& p, std::uint64_t writes, std::uint64_t converged) {
  boost::json::object ops;
  for (const auto& [name, i] : p.ops) {
    ops[name] = boost::json::object{{"count", i.count}, {"errors", i.errors}, {"p50_ms", i.p50_ms}, {"p99_ms", i.p99_ms}};
  }
  return std::string(progress_tag) + boost::json::serialize(boost::json::object{
                                         {"t_s", p.t_s}, {"connected", p.connected}, {"ops", std::move(ops)},
                                         {"writes", writes}, {"converged", converged}});
}

struct worker_process {
  pid_t pid = -1;
  int out = -1;  // its stdout
  std::string pending;  // a partial line
  boost::json::object last;  // its latest progress sample
  int exit_code = -1;
};

// Starts this binary with `args`, in a process group of its own (so that a terminal's Ctrl-C
// reaches the parent only, which forwards it once), stdout to a pipe, stderr shared.
std::optional<worker_process> spawn_worker(const std::vector<std::string>& args) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return std::nullopt;
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(fds[0]);
    ::close(fds[1]);
    return std::nullopt;
  }
  if (pid == 0) {
    ::setpgid(0, 0);
    ::dup2(fds[1], STDOUT_FILENO);
    std::vector<char*> argv;
    std::string self = "twinfleet";
    argv.push_back(self.data());
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv("/proc/self/exe", argv.data());
    std::_Exit(127);
  }
  ::close(fds[1]);
  worker_process w;
  w.pid = pid;
  w.out = fds[0];
  return w;
}

// The combined live line: sums of the workers' latest samples (p99: the largest of theirs).
std::string combined_progress(const std::vector<worker_process>& workers, std::size_t planned, const scenario::scenario& s) {
  engine::timeline_point p;
  std::uint64_t writes = 0, converged = 0;
  for (const auto& w : workers) {
    if (w.last.empty()) continue;
    p.t_s = std::max(p.t_s, w.last.at("t_s").to_number<double>());
    p.connected += w.last.at("connected").to_number<std::uint64_t>();
    writes += w.last.at("writes").to_number<std::uint64_t>();
    converged += w.last.at("converged").to_number<std::uint64_t>();
    for (const auto& [name, v] : w.last.at("ops").as_object()) {
      auto& i = p.ops[std::string(name)];
      i.count += v.at("count").to_number<std::uint64_t>();
      i.errors += v.at("errors").to_number<std::uint64_t>();
      i.p50_ms = std::max(i.p50_ms, v.at("p50_ms").to_number<double>());
      i.p99_ms = std::max(i.p99_ms, v.at("p99_ms").to_number<double>());
    }
  }
  const auto* ph = scenario::phase_at(s, std::chrono::duration_cast<scenario::duration>(std::chrono::duration<double>(p.t_s)));
  return engine::format_progress_line(p, ph != nullptr ? std::string_view(ph->name) : "settle", planned, 1.0, writes,
                                      converged, 0.0);
}

int finish_report(const run_flags& flags, const scenario::scenario& s, boost::json::object summary);

int run_workers(const run_flags& flags, const scenario::scenario& s, std::size_t count) {
  namespace fs = std::filesystem;
  const fs::path report = flags.report.empty() ? fs::temp_directory_path() / ("twinfleet-workers-" + std::to_string(::getpid()))
                                               : fs::path(flags.report);
  std::vector<worker_process> workers;
  std::vector<fs::path> shard_dirs;
  for (std::size_t i = 0; i < count; ++i) {
    const auto dir = report / "workers" / std::to_string(i);
    std::error_code ec;
    fs::remove_all(dir, ec);
    fs::create_directories(dir, ec);
    std::vector<std::string> args{"run", flags.scenario, "--shard", std::to_string(i) + "/" + std::to_string(count),
                                  "--report-dir", dir.string()};
    if (!flags.duration.empty()) args.insert(args.end(), {"--duration", flags.duration});
    if (!flags.settle.empty()) args.insert(args.end(), {"--settle", flags.settle});
    if (!flags.wake_grid.empty()) args.insert(args.end(), {"--wake-grid", flags.wake_grid});
    if (!flags.metrics_linger.empty()) args.insert(args.end(), {"--metrics-linger", flags.metrics_linger});
    if (flags.devices) args.insert(args.end(), {"--devices", std::to_string(*flags.devices)});
    if (flags.seed) args.insert(args.end(), {"--seed", std::to_string(*flags.seed)});
    for (const auto& set : flags.sets) args.insert(args.end(), {"--set", set});
    // The cores are shared: each worker gets its share of the threads (at least one).
    const auto cores = std::max<std::size_t>(1, flags.threads != 0 ? flags.threads : std::thread::hardware_concurrency());
    args.insert(args.end(), {"--threads", std::to_string(std::max<std::size_t>(1, cores / count))});
    // Each worker serves its own Prometheus endpoint, on consecutive ports from the given one.
    std::string listen = "off";
    if (flags.metrics_listen != "off") {
      const auto colon = flags.metrics_listen.rfind(':');
      const auto port = colon == std::string::npos ? 0 : std::atoi(flags.metrics_listen.c_str() + colon + 1);
      listen = flags.metrics_listen.substr(0, colon) + ":" + std::to_string(port == 0 ? 0 : port + static_cast<int>(i));
    }
    args.insert(args.end(), {"--metrics-listen", listen});
    auto w = spawn_worker(args);
    if (!w) {
      fmt::print(stderr, "twinfleet run: cannot start worker {}: {}\n", i, std::strerror(errno));
      for (auto& started : workers) ::kill(started.pid, SIGTERM);
      return 1;
    }
    workers.push_back(std::move(*w));
    shard_dirs.push_back(dir);
  }
  fmt::print("twinfleet run: {} ({} devices, {}) in {} worker processes, Ctrl-C ends it early\n", s.name, s.device_count(),
             scenario::target_name(s.target), count);
  std::fflush(stdout);
  const bool tty = ::isatty(STDOUT_FILENO) == 1;
  bool line_open = false;
  bool stop_sent = false, hurry_sent = false;
  auto last_line = std::chrono::steady_clock::now();
  std::size_t running = workers.size();
  while (running > 0) {
    if (stop_flag()->load() && !stop_sent) {
      stop_sent = true;
      for (auto& w : workers) ::kill(w.pid, SIGINT);
    }
    if (hurry_flag()->load() && !hurry_sent) {
      hurry_sent = true;
      for (auto& w : workers) ::kill(w.pid, SIGINT);
    }
    std::vector<pollfd> fds;
    for (auto& w : workers) fds.push_back({w.out, POLLIN, 0});
    (void)::poll(fds.data(), fds.size(), 100);
    for (std::size_t i = 0; i < workers.size(); ++i) {
      auto& w = workers[i];
      if (w.out < 0 || (fds[i].revents & (POLLIN | POLLHUP)) == 0) continue;
      char buf[8192];
      const auto n = ::read(w.out, buf, sizeof buf);
      if (n <= 0) {
        ::close(w.out);
        w.out = -1;
        continue;
      }
      w.pending.append(buf, static_cast<std::size_t>(n));
      for (auto nl = w.pending.find('\n'); nl != std::string::npos; nl = w.pending.find('\n')) {
        const auto line = w.pending.substr(0, nl);
        w.pending.erase(0, nl + 1);
        if (line.starts_with(progress_tag)) {
          boost::system::error_code ec;
          auto v = boost::json::parse(line.substr(progress_tag.size()), ec);
          if (!ec && v.is_object()) w.last = std::move(v.as_object());
          continue;
        }
        if (line.empty() || line.starts_with("twinfleet run: ")) continue;  // the worker's own banner
        if (line_open) std::fputc('\n', stdout);
        line_open = false;
        fmt::print("[worker {}] {}\n", i, line);
      }
    }
    if (!flags.quiet && std::chrono::steady_clock::now() - last_line >= std::chrono::seconds(1)) {
      last_line = std::chrono::steady_clock::now();
      const auto text = combined_progress(workers, s.device_count(), s);
      if (tty) {
        fmt::print("\r\033[K{}", text);
        line_open = true;
      } else {
        fmt::print("{}\n", text);
      }
      std::fflush(stdout);
    }
    for (auto& w : workers) {
      if (w.exit_code >= 0) continue;
      int status = 0;
      if (::waitpid(w.pid, &status, WNOHANG) == w.pid) {
        w.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        --running;
      }
    }
  }
  if (line_open) std::fputc('\n', stdout);
  for (auto& w : workers) {
    if (w.out >= 0) ::close(w.out);
  }
  // Bad input fails every worker alike: say so once.
  for (std::size_t i = 0; i < workers.size(); ++i) {
    if (workers[i].exit_code == 2) return 2;
  }
  std::vector<boost::json::object> shards;
  std::vector<std::string> sources;
  for (std::size_t i = 0; i < workers.size(); ++i) {
    auto summary = reporters::load_summary(shard_dirs[i] / "summary.json");
    if (!summary) {
      fmt::print(stderr, "twinfleet run: worker {} (exit {}) left no summary: {}\n", i, workers[i].exit_code,
                 summary.error().message);
      continue;
    }
    shards.push_back(std::move(*summary));
    sources.push_back((shard_dirs[i] / "summary.json").string());
  }
  if (shards.empty()) return 1;
  auto merged = reporters::merge_summaries(std::move(shards), sources);
  if (!merged) {
    fmt::print(stderr, "twinfleet run: merging the workers' summaries: {}\n", merged.error().message);
    return 1;
  }
  if (auto* engine = merged->if_contains("engine"); engine != nullptr && engine->is_object()) {
    engine->as_object()["workers"] = count;
  }
  fmt::print("{}", engine::format_summary(*merged));
  const int code = finish_report(flags, s, std::move(*merged));
  if (flags.report.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(report, ec);
  }
  return code;
}

// A duration flag (empty: not given). A bad one is said, and false returned, before anything
// starts, so that worker processes never each say it again.
bool read_duration(const char* flag, const std::string& text, const char* example,
                   std::optional<std::chrono::nanoseconds>& out) {
  if (text.empty()) return true;
  out = config::parse_duration(text);
  if (!out) fmt::print(stderr, "twinfleet run: {} {}: expected a duration such as {}\n", flag, text, example);
  return out.has_value();
}

int run(const run_flags& flags) {
  std::optional<std::chrono::nanoseconds> duration, settle, wake_grid, metrics_linger;
  if (!read_duration("--duration", flags.duration, "30s or 2m", duration) ||
      !read_duration("--settle", flags.settle, "0s or 10s", settle) ||
      !read_duration("--wake-grid", flags.wake_grid, "1ms or 0", wake_grid) ||
      !read_duration("--metrics-linger", flags.metrics_linger, "15s", metrics_linger)) {
    return 2;
  }
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
  const bool is_shard = !flags.shard.empty();
  if (is_shard) {
    unsigned index = 0, count = 0;
    if (std::sscanf(flags.shard.c_str(), "%u/%u", &index, &count) != 2 || count == 0 || index >= count) {
      fmt::print(stderr, "twinfleet run: --shard {}: expected I/N with 0 <= I < N\n", flags.shard);
      return 2;
    }
    options.shard_index = index;
    options.shard_count = count;
  } else {
    // More devices than one process may hold connections for: spread them over workers.
    std::size_t workers = flags.workers.value_or(0);
    if (workers == 0) {
      rlimit limit{};
      (void)::getrlimit(RLIMIT_NOFILE, &limit);
      const auto plan = engine::plan_file_limit(
          engine::fd_demand{.devices = s->device_count(), .embedded_hub = std::holds_alternative<scenario::local_target>(s->target)},
          limit.rlim_cur, limit.rlim_max);
      if (!plan.fits && plan.devices_per_process > 0) {
        workers = static_cast<std::size_t>((s->device_count() + plan.devices_per_process - 1) / plan.devices_per_process);
        fmt::print("twinfleet run: {} devices exceed what one process may hold open (at most {} devices with the "
                   "open-file limit of {}): running {} worker processes (--workers sets the number)\n",
                   s->device_count(), plan.devices_per_process, static_cast<unsigned long long>(limit.rlim_max), workers);
      }
    }
    if (workers > 1) {
      std::signal(SIGINT, on_interrupt);
      std::signal(SIGTERM, on_interrupt);
      return run_workers(flags, *s, workers);
    }
  }
  options.duration = duration;
  if (settle) options.settle = *settle;
  if (wake_grid) options.wake_grid = *wake_grid;
  if (flags.quiet || is_shard) options.progress_every = std::chrono::milliseconds(0);
  if (is_shard) {
    options.on_sample = [](const engine::timeline_point& p, std::uint64_t writes, std::uint64_t converged) {
      const auto line = progress_json(p, writes, converged) + "\n";
      std::fwrite(line.data(), 1, line.size(), stdout);
      std::fflush(stdout);
    };
  }
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
  if (!is_shard) {
    fmt::print("twinfleet run: {} ({} devices, {}), Ctrl-C ends it early\n", s->name, s->device_count(),
               scenario::target_name(s->target));
  }
  std::fflush(stdout);
  auto result = engine::run_scenario(*s, options);
  if (!result) {
    fmt::print(stderr, "twinfleet run: {}\n", result.error().message);
    return 1;
  }
  if (line_open) std::fputc('\n', stdout);
  if (is_shard) {
    // The parent merges, judges the thresholds and prints; a worker only leaves its summary.
    auto summary = engine::summary_json(*result);
    auto written = reporters::write_text_file(std::filesystem::path(flags.report) / "summary.json", reporters::pretty_json(summary));
    if (!written) {
      fmt::print(stderr, "twinfleet run: {}\n", written.error().message);
      return 1;
    }
    return hurry_flag()->load() ? 130 : 0;
  }
  auto summary = engine::summary_json(*result);
  fmt::print("{}", engine::format_summary(summary));
  const int code = finish_report(flags, *s, std::move(summary));
  if (result->metrics_endpoint && metrics_linger && metrics_linger->count() > 0) {
    // A last scrape sees the final values, the anomalies judged at the end included.
    fmt::print("  metrics: the endpoint stays up for {} (Ctrl-C ends it)\n", config::format_duration(*metrics_linger));
    std::fflush(stdout);
    const int seen = interrupts.load();
    const auto until = std::chrono::steady_clock::now() + *metrics_linger;
    while (std::chrono::steady_clock::now() < until && interrupts.load() == seen) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  return code;
}

// The thresholds, k6-style: each one's verdict on the console, in summary.json and as a JUnit
// test case; the report folder (also after Ctrl-C: what ran is never lost); the exit code.
int finish_report(const run_flags& flags, const scenario::scenario& s, boost::json::object summary) {
  const auto verdicts = reporters::evaluate_thresholds(s.thresholds, summary);
  reporters::store_threshold_results(summary, verdicts);
  if (!verdicts.empty()) fmt::print("{}", reporters::console_report(verdicts));
  std::fflush(stdout);
  if (!flags.report.empty()) {
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
  cmd->add_option("--wake-grid", flags->wake_grid,
                  "Devices wake for their reports and telemetry on this grid, so that a thread wakes once for all "
                  "the devices due in one step (default 1ms; 0: exact times)");
  cmd->add_option("--devices", flags->devices, "Scale the fleet to this many devices, each entry keeping its share");
  cmd->add_option("--seed", flags->seed, "The seed every random choice derives from (default: the scenario's)");
  cmd->add_option("--set", flags->sets, "Override a scenario value before loading: key.path=value (repeatable)");
  cmd->add_flag("--quiet", flags->quiet, "No live progress line");
  cmd->add_option("--metrics-listen", flags->metrics_listen,
                  "The Prometheus endpoint during the run, ADDR:PORT (default 127.0.0.1:9464; a busy default port is "
                  "skipped with a notice); off: none")
      ->each([flags](const std::string&) { flags->metrics_listen_given = true; });
  cmd->add_option("--metrics-linger", flags->metrics_linger,
                  "Keep the Prometheus endpoint up this long after the verdict (a last scrape sees the final anomalies)");
  cmd->add_option("--report-dir,--report", flags->report, "Write the reports into this folder (also after Ctrl-C)");
  cmd->add_option("--workers", flags->workers,
                  "Run the fleet in this many processes (default: one, or as many as the open-file limit needs)");
  cmd->add_option("--shard", flags->shard, "Internal: run worker I of N (I/N), as --workers starts them")->group("");
  cmd->callback([flags] {
    const int code = run(*flags);
    if (code != 0) throw CLI::RuntimeError(code);
  });
}

}  // namespace twinfleet::app
