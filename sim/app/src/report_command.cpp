// `twinfleet report …`: the reports rebuilt from summary.json files, without running anything.
//   twinfleet report merge DIR… --out DIR [--scenario FILE]   shard summaries → one run's reports
//   twinfleet report html SUMMARY.json [-o FILE]              summary.json → report.html
// Exit codes as `twinfleet run`: 0 done, 1 a report could not be written, 2 bad input (a
// missing file, not JSON, the wrong schema, a bad scenario), 99 a re-evaluated threshold failed.
#include "commands.hpp"

#include <twinfleet/config/diagnostics.hpp>
#include <twinfleet/reporters/html.hpp>
#include <twinfleet/reporters/junit.hpp>
#include <twinfleet/reporters/merge.hpp>
#include <twinfleet/reporters/summary.hpp>
#include <twinfleet/reporters/thresholds.hpp>
#include <twinfleet/scenario/scenario_loader.hpp>

#include <fmt/core.h>

#include <boost/json/value_to.hpp>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

namespace twinfleet::app {

namespace {

namespace fs = std::filesystem;

struct merge_flags {
  std::vector<std::string> inputs;
  std::string out;
  std::string scenario;
};

struct html_flags {
  std::string summary;
  std::string output;
};

constexpr int exit_threshold_failed = 99;

// A shard folder holds summary.json; a path to the file itself is taken as it is.
fs::path summary_path(const std::string& input) {
  const fs::path p(input);
  std::error_code ec;
  return fs::is_directory(p, ec) ? p / "summary.json" : p;
}

int fail(const char* command, const twin::error& e) {
  fmt::print(stderr, "twinfleet report {}: {}\n", command, e.message);
  return e.code == reporters::report_code::io_failure ? 1 : 2;
}

int merge(const merge_flags& flags) {
  std::vector<boost::json::object> shards;
  std::vector<std::string> sources;
  for (const auto& input : flags.inputs) {
    const auto path = summary_path(input);
    auto s = reporters::load_summary(path);
    if (!s) return fail("merge", s.error());
    shards.push_back(std::move(*s));
    sources.push_back(path.string());
  }

  std::optional<scenario::scenario> sc;
  if (!flags.scenario.empty()) {
    config::diagnostics diags;
    sc = scenario::load_scenario(flags.scenario, diags);
    if (!sc) {
      for (const auto& d : diags.items()) fmt::print(stderr, "{}\n", d.to_string());
      fmt::print(stderr, "twinfleet report merge: {} error{} in {}\n", diags.size(), diags.size() == 1 ? "" : "s", flags.scenario);
      return 2;
    }
  }

  auto merged = reporters::merge_summaries(std::move(shards), sources);
  if (!merged) return fail("merge", merged.error());
  if (sc && sc->name != boost::json::value_to<std::string>(merged->at("scenario"))) {
    fmt::print(stderr, "twinfleet report merge: note: {} is scenario '{}', the shards ran '{}'\n", flags.scenario, sc->name,
               boost::json::value_to<std::string>(merged->at("scenario")));
  }
  std::vector<reporters::threshold_result> results;
  if (sc) {
    results = reporters::evaluate_thresholds(sc->thresholds, *merged);
    reporters::store_threshold_results(*merged, results);
  } else if (!merged->empty()) {
    fmt::print("twinfleet report merge: thresholds not evaluated (give --scenario FILE to evaluate them on the merged run)\n");
  }

  const fs::path out(flags.out);
  std::error_code ec;
  fs::create_directories(out, ec);
  if (ec) return fail("merge", twin::error{reporters::report_code::io_failure, fmt::format("{}: cannot create: {}", out.string(), ec.message())});
  if (auto r = reporters::write_text_file(out / "summary.json", reporters::pretty_json(*merged)); !r) return fail("merge", r.error());
  if (auto r = reporters::write_junit(*merged, results, out / "junit.xml"); !r) return fail("merge", r.error());
  if (auto r = reporters::write_html(*merged, out / "report.html"); !r) return fail("merge", r.error());

  fmt::print("twinfleet report merge: {} shard{} of '{}' merged\n", flags.inputs.size(), flags.inputs.size() == 1 ? "" : "s",
             boost::json::value_to<std::string>(merged->at("scenario")));
  fmt::print("{}", reporters::console_report(results));
  fmt::print("  report: {}, {}, {}\n", (out / "summary.json").string(), (out / "junit.xml").string(), (out / "report.html").string());
  return reporters::all_passed(results) ? 0 : exit_threshold_failed;
}

int html(const html_flags& flags) {
  const fs::path in = summary_path(flags.summary);
  auto s = reporters::load_summary(in);
  if (!s) return fail("html", s.error());
  const fs::path out = flags.output.empty() ? in.parent_path() / "report.html" : fs::path(flags.output);
  if (auto r = reporters::write_html(*s, out); !r) return fail("html", r.error());
  fmt::print("  report: {}\n", out.string());
  return 0;
}

}  // namespace

void add_report_command(CLI::App& app) {
  auto* report = app.add_subcommand("report", "Rebuild reports from summary.json files: merge worker shards, render report.html");
  report->require_subcommand(1);

  auto mflags = std::make_shared<merge_flags>();
  auto* m = report->add_subcommand("merge", "Merge shard summaries (DIR/summary.json of each) into one run's summary.json, junit.xml and report.html");
  m->add_option("inputs", mflags->inputs, "Shard report folders (or their summary.json files)")->required();
  m->add_option("--out,-o", mflags->out, "The folder to write the merged reports into")->required();
  m->add_option("--scenario", mflags->scenario, "The run's scenario: evaluate its thresholds on the merged summary (exit 99 when one fails)");
  m->callback([mflags] {
    const int code = merge(*mflags);
    if (code != 0) throw CLI::RuntimeError(code);
  });

  auto hflags = std::make_shared<html_flags>();
  auto* h = report->add_subcommand("html", "Render report.html from a summary.json");
  h->add_option("summary", hflags->summary, "summary.json (or the folder holding it)")->required();
  h->add_option("-o,--output", hflags->output, "Where to write the page (default: report.html beside the summary)");
  h->callback([hflags] {
    const int code = html(*hflags);
    if (code != 0) throw CLI::RuntimeError(code);
  });
}

}  // namespace twinfleet::app
