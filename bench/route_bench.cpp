// The local hub's AWS routing as the fleet grows: hub_core in this process, no sockets.
//
// N things connect, each subscribes as a twinfleet AWS device does (its classic shadow's seven
// topics and `twinfleet/things/{thing}/commands/+`), then 20,000 shadow updates go round the
// fleet, then every thing disconnects. Per N: CPU per connect + subscribe, per update (the
// hub parses, applies, publishes /update/accepted and routes /update/documents), per
// disconnect; medians of 5 runs. A hub whose routing does not depend on N shows ratios near 1
// against the smallest fleet.
//
// The baseline, measured here too: what routing one message by testing every wildcard filter
// costs (topic_matches over the N command filters, as the hub did before its subscription
// tree). Each update routes two messages.
//
//   build/bench/route_bench [--sizes 100,2000,19500] [--runs 5]
#include <twinfleet/hub/core.hpp>
#include <twinfleet/hub/link.hpp>
#include <twinfleet/mqtt/topic.hpp>

#include "bench_util.hpp"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace {

using namespace twinfleet;

// A connection that counts what the hub sends it.
class counting_link : public hub::link {
 public:
  void send(std::string_view, std::string_view payload, mqtt::qos) override { bytes += payload.size(); }
  void close() override {}
  [[nodiscard]] const hub::link_info& info() const override { return info_; }
  std::size_t bytes = 0;

 private:
  hub::link_info info_;
};

std::string thing_name(std::size_t i) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "thing-%05zu", i);
  return buf;
}

struct run_result {
  double connect_us = 0;     // per thing: CONNECT + SUBSCRIBE of 8 filters
  double update_us = 0;      // per shadow update
  double disconnect_us = 0;  // per thing
  double scan_us = 0;        // the baseline: one message tested against every command filter
};

run_result run_once(std::size_t n, std::size_t updates) {
  hub::hub_settings settings;
  settings.auth = hub::auth_mode::open;
  hub::hub_core core(settings);
  const hub::time_point t0 = hub::time_point{} + std::chrono::hours(24 * 365 * 56);
  std::vector<std::unique_ptr<counting_link>> links;
  std::vector<std::string> names;
  std::vector<std::string> command_filters;
  for (std::size_t i = 0; i < n; ++i) {
    links.push_back(std::make_unique<counting_link>());
    names.push_back(thing_name(i));
    command_filters.push_back("twinfleet/things/" + names.back() + "/commands/+");
  }
  static constexpr const char* suffixes[] = {"/get/accepted",    "/get/rejected",   "/update/accepted",
                                             "/update/rejected", "/update/delta",   "/delete/accepted",
                                             "/delete/rejected"};
  run_result r;

  double start = bench::process_cpu_seconds();
  for (std::size_t i = 0; i < n; ++i) {
    mqtt::connect_packet c;
    c.client_id = names[i];
    c.keep_alive = 300;
    if (core.on_connect(*links[i], c, t0) != mqtt::connect_return_code::accepted) {
      std::fprintf(stderr, "route_bench: connect of %s refused\n", names[i].c_str());
      std::exit(1);
    }
    std::vector<std::string> filters;
    for (const char* s : suffixes) filters.push_back("$aws/things/" + names[i] + "/shadow" + s);
    filters.push_back(command_filters[i]);
    std::vector<mqtt::subscription> subs;
    for (const auto& f : filters) subs.push_back({f, mqtt::qos::at_least_once});
    bench::keep(core.on_subscribe(*links[i], subs, t0));
  }
  r.connect_us = 1e6 * (bench::process_cpu_seconds() - start) / static_cast<double>(n);

  std::vector<std::string> topics;
  for (const auto& name : names) topics.push_back("$aws/things/" + name + "/shadow/update");
  std::string payload;
  start = bench::process_cpu_seconds();
  for (std::size_t k = 0; k < updates; ++k) {
    payload = R"({"state":{"reported":{"seq":)" + std::to_string(k) + "}}}";
    mqtt::publish_packet p;
    p.topic = topics[k % n];
    p.payload = payload;
    p.qos = mqtt::qos::at_least_once;
    p.packet_id = 1;
    core.on_publish(*links[k % n], p, t0 + std::chrono::milliseconds(k));
  }
  r.update_us = 1e6 * (bench::process_cpu_seconds() - start) / static_cast<double>(updates);

  // The baseline: a documents topic tested against every command filter.
  const std::size_t probes = std::max<std::size_t>(1, updates / 20);
  std::size_t hits = 0;
  start = bench::process_cpu_seconds();
  for (std::size_t k = 0; k < probes; ++k) {
    const std::string topic = "$aws/things/" + names[k % n] + "/shadow/update/documents";
    for (const auto& f : command_filters) hits += mqtt::topic_matches(f, topic) ? 1 : 0;
  }
  r.scan_us = 1e6 * (bench::process_cpu_seconds() - start) / static_cast<double>(probes);
  bench::keep(hits);

  start = bench::process_cpu_seconds();
  for (std::size_t i = 0; i < n; ++i) core.on_disconnect(*links[i], t0 + std::chrono::seconds(60));
  r.disconnect_us = 1e6 * (bench::process_cpu_seconds() - start) / static_cast<double>(n);
  return r;
}

std::vector<std::size_t> parse_sizes(const char* s) {
  std::vector<std::size_t> out;
  for (const char* p = s; *p;) {
    char* end = nullptr;
    const unsigned long v = std::strtoul(p, &end, 10);
    if (end == p || v == 0) return {};
    out.push_back(v);
    p = *end == ',' ? end + 1 : end;
    if (*end != ',' && *end != '\0') return {};
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::size_t> sizes{100, 2000, 19500};
  int runs = 5;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a == "--sizes" && i + 1 < argc) {
      sizes = parse_sizes(argv[++i]);
    } else if (a == "--runs" && i + 1 < argc) {
      runs = std::atoi(argv[++i]);
    } else {
      sizes.clear();
    }
    if (sizes.empty() || runs < 1) {
      std::fprintf(stderr, "usage: route_bench [--sizes N1,N2,...] [--runs R]\n");
      return 2;
    }
  }
  constexpr std::size_t updates = 20000;
  std::printf("route_bench: hub_core's AWS routing, %zu shadow updates per run, medians of %d runs (CPU time)\n",
              updates, runs);
  std::printf("%8s | %16s %6s | %16s %6s | %16s %6s | %s\n", "things", "connect+sub/thing", "ratio", "update",
              "ratio", "disconnect/thing", "ratio", "baseline: one message tested against every command filter");
  double base_connect = 0, base_update = 0, base_disconnect = 0;
  for (std::size_t si = 0; si < sizes.size(); ++si) {
    std::vector<double> c, u, d, s;
    for (int k = 0; k < runs; ++k) {
      const auto r = run_once(sizes[si], updates);
      c.push_back(r.connect_us);
      u.push_back(r.update_us);
      d.push_back(r.disconnect_us);
      s.push_back(r.scan_us);
    }
    const double mc = bench::median(c), mu = bench::median(u), md = bench::median(d), ms = bench::median(s);
    if (si == 0) {
      base_connect = mc;
      base_update = mu;
      base_disconnect = md;
    }
    std::printf("%8zu | %13.2f us %5.2fx | %13.2f us %5.2fx | %13.2f us %5.2fx | %.2f us (x2 per update = %.1fx this update)\n",
                sizes[si], mc, mc / base_connect, mu, mu / base_update, md, md / base_disconnect, ms, 2 * ms / mu);
  }
  return 0;
}
