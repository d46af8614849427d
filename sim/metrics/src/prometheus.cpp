// The one translation unit that includes prometheus-cpp.
#include <twinfleet/metrics/prometheus.hpp>

#include <prometheus/collectable.h>
#include <prometheus/exposer.h>
#include <prometheus/metric_family.h>
#include <prometheus/text_serializer.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <exception>
#include <limits>
#include <optional>
#include <sstream>

namespace twinfleet::metrics {

namespace {

// Help for the names in the contracts (issue 5), for families registered without one.
std::string stock_help(const family_snapshot& f) {
  static const std::pair<std::string_view, std::string_view> known[] = {
      {"twinfleet_devices_planned", "Devices the scenario plans, by backend and profile"},
      {"twinfleet_devices_connected", "Devices connected now, by backend and profile"},
      {"twinfleet_connects_total", "Device connection attempts by outcome"},
      {"twinfleet_operations_total", "Operations by operation and outcome"},
      {"twinfleet_operation_duration_seconds", "Operation latency from the operation's intended start"},
      {"twinfleet_desired_writes_total", "Desired-property writes accepted by the back end"},
      {"twinfleet_desired_converged_total", "Desired writes the device acknowledged, as seen by the service"},
      {"twinfleet_sync_anomalies_total", "Sync anomalies found by the checker, by kind (outcome)"},
      {"twinfleet_engine_lag_seconds", "Engine event-loop lag: how late timers fire"},
      {"twinfleet_engine_threads", "Engine threads (one io_context each)"},
      {"twinfleet_run_elapsed_seconds", "Seconds since the run started"},
  };
  if (!f.help.empty()) return f.help;
  for (const auto& [name, help] : known)
    if (name == f.name) return std::string(help);
  return "twinfleet " + f.name;
}

std::vector<std::uint64_t> bucket_bounds_ns() {
  std::vector<std::uint64_t> ns;
  for (double s : prometheus_bucket_bounds_seconds) ns.push_back(static_cast<std::uint64_t>(std::llround(s * 1e9)));
  return ns;
}

std::vector<prometheus::MetricFamily> to_families(const registry_snapshot& snap) {
  static const auto bounds_ns = bucket_bounds_ns();
  std::vector<prometheus::MetricFamily> out;
  out.reserve(snap.families.size());
  for (const auto& f : snap.families) {
    prometheus::MetricFamily mf;
    mf.name = f.name;
    mf.help = stock_help(f);
    switch (f.kind) {
      case metric_kind::counter: mf.type = prometheus::MetricType::Counter; break;
      case metric_kind::gauge: mf.type = prometheus::MetricType::Gauge; break;
      case metric_kind::histogram: mf.type = prometheus::MetricType::Histogram; break;
    }
    for (const auto& s : f.series) {
      prometheus::ClientMetric m;
      for (const auto& l : s.labels) m.label.push_back({l.name, l.value});
      switch (f.kind) {
        case metric_kind::counter: m.counter.value = static_cast<double>(s.total); break;
        case metric_kind::gauge: m.gauge.value = s.value; break;
        case metric_kind::histogram: {
          m.histogram.sample_count = s.hist.count();
          m.histogram.sample_sum = static_cast<double>(s.hist.sum_ns()) / 1e9;
          const auto cumulative = s.hist.cumulative_counts(bounds_ns);
          for (std::size_t i = 0; i < cumulative.size(); ++i)
            m.histogram.bucket.push_back({cumulative[i], prometheus_bucket_bounds_seconds[i]});
          m.histogram.bucket.push_back({s.hist.count(), std::numeric_limits<double>::infinity()});
          break;
        }
      }
      mf.metric.push_back(std::move(m));
    }
    out.push_back(std::move(mf));
  }
  return out;
}

class registry_collectable final : public prometheus::Collectable {
 public:
  explicit registry_collectable(const registry& r) : registry_(r) {}
  std::vector<prometheus::MetricFamily> Collect() const override { return to_families(registry_.snapshot()); }

 private:
  const registry& registry_;
};

struct parsed_address {
  std::string host;  // as written, IPv6 with its brackets
  std::uint16_t port = 0;
};

std::optional<parsed_address> parse_address(std::string_view a) {
  const auto colon = a.rfind(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == a.size()) return std::nullopt;
  const auto port_text = a.substr(colon + 1);
  unsigned port = 0;
  auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc{} || end != port_text.data() + port_text.size() || port > 65535) return std::nullopt;
  return parsed_address{std::string(a.substr(0, colon)), static_cast<std::uint16_t>(port)};
}

// civetweb only says it could not bind; binding a socket ourselves names the reason.
std::string bind_failure_reason(const parsed_address& a) {
  sockaddr_storage storage{};
  socklen_t len = 0;
  int family = AF_INET;
  if (a.host.size() > 2 && a.host.front() == '[' && a.host.back() == ']') {
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&storage);
    if (inet_pton(AF_INET6, a.host.substr(1, a.host.size() - 2).c_str(), &in6->sin6_addr) != 1)
      return "not an IPv6 address";
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(a.port);
    family = AF_INET6;
    len = sizeof(sockaddr_in6);
  } else {
    auto* in4 = reinterpret_cast<sockaddr_in*>(&storage);
    if (inet_pton(AF_INET, a.host.c_str(), &in4->sin_addr) != 1) return "not an IPv4 address";
    in4->sin_family = AF_INET;
    in4->sin_port = htons(a.port);
    len = sizeof(sockaddr_in);
  }
  const int fd = ::socket(family, SOCK_STREAM, 0);
  if (fd < 0) return std::strerror(errno);
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);  // as civetweb binds
  std::string reason;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&storage), len) != 0) reason = std::strerror(errno);
  ::close(fd);
  return reason;
}

}  // namespace

std::shared_ptr<prometheus::Collectable> make_prometheus_collectable(const registry& r) {
  return std::make_shared<registry_collectable>(r);
}

std::string to_prometheus_text(const registry_snapshot& s) {
  return prometheus::TextSerializer().Serialize(to_families(s));
}

struct exposer::impl {
  explicit impl(const registry& r) : registry_(r) {}
  const registry& registry_;
  std::shared_ptr<prometheus::Collectable> collectable;
  std::unique_ptr<prometheus::Exposer> server;
  std::uint16_t port = 0;
};

exposer::exposer(const registry& r) : impl_(std::make_unique<impl>(r)) {}

exposer::~exposer() { stop(); }

result<void> exposer::start(std::string_view address) {
  auto fail = [&](const std::string& why) {
    return twin::error{1, "metrics endpoint " + std::string(address) + ": " + why};
  };
  if (impl_->server) return fail("already listening on port " + std::to_string(impl_->port));
  const auto parsed = parse_address(address);
  if (!parsed) return fail("expected HOST:PORT, e.g. 127.0.0.1:9464");
  try {
    // One server thread: scrapes are rare and each is one snapshot.
    impl_->server = std::make_unique<prometheus::Exposer>(std::string(address), 1);
  } catch (const std::exception& e) {
    auto reason = bind_failure_reason(*parsed);
    if (reason.empty()) reason = e.what();
    if (reason == std::strerror(EADDRINUSE))
      reason += " (another twinfleet run or exporter on port " + std::to_string(parsed->port) +
                "? choose another with --metrics-listen)";
    return fail("cannot listen: " + reason);
  }
  const auto ports = impl_->server->GetListeningPorts();
  impl_->port = ports.empty() ? parsed->port : static_cast<std::uint16_t>(ports.front());
  impl_->collectable = make_prometheus_collectable(impl_->registry_);
  impl_->server->RegisterCollectable(impl_->collectable);
  return {};
}

void exposer::stop() noexcept {
  impl_->server.reset();  // joins civetweb's threads
  impl_->collectable.reset();
  impl_->port = 0;
}

std::uint16_t exposer::port() const noexcept { return impl_->port; }

}  // namespace twinfleet::metrics
