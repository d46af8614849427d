// What the hub's state file costs at fleet size: 100,000 Azure twins and 100,000 AWS shadows
// with small documents. Save and load times (medians), file size, the hub's memory per twin,
// and what holding the whole store as one JSON tree would cost instead of streaming it.
//
// Run: build/bench/state_bench [twins] (default 100000). Reports; asserts nothing.
#include <twinfleet/hub/core.hpp>

#include "bench_util.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <unistd.h>

using namespace twinfleet;
namespace json = boost::json;

namespace {

// Resident and peak resident set, in bytes (/proc/self/status VmRSS, VmHWM).
std::pair<double, double> rss() {
  std::ifstream in("/proc/self/status");
  double now = 0, peak = 0;
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with("VmRSS:")) now = std::stod(line.substr(6)) * 1024;
    if (line.starts_with("VmHWM:")) peak = std::stod(line.substr(6)) * 1024;
  }
  return {now, peak};
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

hub::hub_settings settings() {
  hub::hub_settings s;
  s.group_key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
  s.policies = hub::default_policies();
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  const int n = argc > 1 ? std::stoi(argv[1]) : 100000;
  const auto now = std::chrono::system_clock::now();
  const auto file = std::filesystem::temp_directory_path() / ("state_bench-" + std::to_string(::getpid()) + ".jsonl");

  const auto [rss0, peak0] = rss();
  hub::hub_core core(settings());
  const std::string key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
  const json::value identity = json::parse(R"({"authentication":{"type":"sas","symmetricKey":{"primaryKey":")" + key +
                                           R"(","secondaryKey":")" + key + R"("}}})");
  const json::value desired = json::parse(R"({"properties":{"desired":{"interval":30,"mode":"eco"}}})");
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < n; ++i) {
    char id[32];
    std::snprintf(id, sizeof id, "thermo-%06d", i);
    (void)core.azure_put_device(id, identity, {}, now);
    (void)core.azure_update_twin(id, desired, {}, false, now);
  }
  const double azure_fill = seconds_since(start);
  const auto [rss1, peak1] = rss();
  start = std::chrono::steady_clock::now();
  for (int i = 0; i < n; ++i) {
    char id[32];
    std::snprintf(id, sizeof id, "lamp-%06d", i);
    (void)core.aws_update_shadow(id, "", R"({"state":{"desired":{"on":true,"level":3},"reported":{"on":false}}})", now);
  }
  const double aws_fill = seconds_since(start);
  const auto [rss2, peak2] = rss();

  std::vector<double> save_s;
  for (int i = 0; i < 5; ++i) {
    start = std::chrono::steady_clock::now();
    if (auto r = hub::save_state_file(core, file, now); !r) {
      std::fprintf(stderr, "save failed: %s\n", r.error().message.c_str());
      return 1;
    }
    save_s.push_back(seconds_since(start));
  }
  const auto [rss3, peak3] = rss();
  const auto size = std::filesystem::file_size(file);

  std::vector<double> load_s;
  double peak_load = 0;
  for (int i = 0; i < 5; ++i) {
    hub::hub_core fresh(settings());
    start = std::chrono::steady_clock::now();
    if (auto r = hub::load_state_file(fresh, file); !r) {
      std::fprintf(stderr, "load failed: %s\n", r.error().message.c_str());
      return 1;
    }
    load_s.push_back(seconds_since(start));
    peak_load = std::max(peak_load, rss().second);
    bench::keep(fresh.twin_count());
  }

  // The alternative not taken: the whole store as one JSON tree (every record parsed and kept).
  const auto [rss4, peak4] = rss();
  double tree_bytes = 0;
  {
    json::array tree;
    std::ifstream in(file);
    for (std::string line; std::getline(in, line);) tree.push_back(json::parse(line));
    tree_bytes = rss().first - rss4;
    bench::keep(tree);
  }
  std::filesystem::remove(file);

  std::printf("state file: %d Azure twins + %d AWS shadows, small documents\n", n, n);
  std::printf("  fill: Azure %.2f s, AWS %.2f s\n", azure_fill, aws_fill);
  std::printf("  hub_core RSS: %.0f bytes per Azure identity+twin, %.0f bytes per AWS shadow\n", (rss1 - rss0) / n,
              (rss2 - rss1) / n);
  std::printf("  save (median of 5): %.3f s   file %.1f MB (%.0f bytes per record)\n", median(save_s), size / 1e6,
              static_cast<double>(size) / (2.0 * n));
  std::printf("  load (median of 5): %.3f s\n", median(load_s));
  std::printf("  peak RSS: %.0f MB after fill, %.0f MB after saves, %.0f MB with a second hub loaded\n", peak2 / 1e6,
              peak3 / 1e6, peak_load / 1e6);
  std::printf("  the whole file as one JSON tree would add %.0f MB (streaming adds one record)\n", tree_bytes / 1e6);
  (void)peak0;
  (void)peak1;
  return 0;
}
