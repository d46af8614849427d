// The Prometheus side of the registry: the text format (names, cumulative buckets in seconds,
// _sum and _count) and the /metrics endpoint on 127.0.0.1, including a port already taken.
#include <twinfleet/metrics/prometheus.hpp>

#include <catch_printers.hpp>
#include <process.hpp>

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <sstream>
#include <string>

using namespace twinfleet;

namespace {

const metrics::label_set azure_connect = {{"backend", "azure"}, {"profile", "lightbulb"}, {"operation", "connect"}};

// GET `path` from 127.0.0.1:`port` over a plain socket (HTTP/1.0: the server closes after the
// answer). Every wait is bounded; an empty string on any failure.
std::string http_get(std::uint16_t port, const std::string& path) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return {};
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string response;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    const std::string request = "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(request.size())) {
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
      char buf[4096];
      while (std::chrono::steady_clock::now() < deadline) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 200) <= 0) continue;
        const auto n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) break;
        response.append(buf, static_cast<std::size_t>(n));
      }
    }
  }
  ::close(fd);
  return response;
}

// The sample lines of a text exposition: "name{labels}" → value text.
std::map<std::string, std::string> samples(const std::string& text) {
  std::map<std::string, std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    const auto space = line.rfind(' ');
    out[line.substr(0, space)] = line.substr(space + 1);
  }
  return out;
}

void fill(metrics::registry& reg) {
  auto h = reg.histogram("twinfleet_operation_duration_seconds", azure_connect);
  // 0.3 ms, 0.7 ms, 2 ms x2, 15 ms, 22 ms, 40 ms, 3 s, 2 min (above the last finite bucket): away
  // from bounds; 15 ms and 22 ms on either side of the 20 ms edge.
  for (std::uint64_t ns : {300'000ULL, 700'000ULL, 2'000'000ULL, 2'000'000ULL, 15'000'000ULL, 22'000'000ULL, 40'000'000ULL,
                           3'000'000'000ULL, 120'000'000'000ULL})
    h.record(ns);
  reg.counter("twinfleet_operations_total",
              {{"backend", "azure"}, {"profile", "lightbulb"}, {"operation", "connect"}, {"outcome", "ok"}})
      .add(7);
  reg.gauge("twinfleet_devices_connected", {{"backend", "azure"}, {"profile", "lightbulb"}}).set(42);
}

void check_exposition(const std::string& text) {
  CHECK_THAT(text, Catch::Contains("# TYPE twinfleet_operation_duration_seconds histogram"));
  CHECK_THAT(text, Catch::Contains("# TYPE twinfleet_operations_total counter"));
  CHECK_THAT(text, Catch::Contains("# TYPE twinfleet_devices_connected gauge"));
  CHECK_THAT(text, Catch::Contains("# HELP twinfleet_operation_duration_seconds "));
  const auto s = samples(text);
  const std::string series = R"(twinfleet_operation_duration_seconds_bucket{backend="azure",profile="lightbulb",operation="connect",le=")";
  const std::map<std::string, std::string> expected_buckets = {
      {"0.0005", "1"}, {"0.001", "2"}, {"0.0025", "4"}, {"0.005", "4"}, {"0.01", "4"}, {"0.02", "5"},
      {"0.025", "6"},  {"0.05", "7"},  {"0.1", "7"},   {"0.25", "7"},  {"0.5", "7"},  {"1", "7"},
      {"2.5", "7"},    {"5", "8"},     {"10", "8"},    {"30", "8"},    {"60", "8"},   {"+Inf", "9"}};
  for (const auto& [le, count] : expected_buckets) {
    INFO("le " << le);
    const auto it = s.find(series + le + "\"}");
    REQUIRE(it != s.end());
    CHECK(it->second == count);
  }
  CHECK(s.at(R"(twinfleet_operation_duration_seconds_count{backend="azure",profile="lightbulb",operation="connect"})") ==
        "9");
  CHECK(std::stod(s.at(
            R"(twinfleet_operation_duration_seconds_sum{backend="azure",profile="lightbulb",operation="connect"})")) ==
        Approx(123.082));
  CHECK(s.at(R"(twinfleet_operations_total{backend="azure",profile="lightbulb",operation="connect",outcome="ok"})") ==
        "7");
  CHECK(s.at(R"(twinfleet_devices_connected{backend="azure",profile="lightbulb"})") == "42");
}

}  // namespace

TEST_CASE("metrics prometheus: the text format has seconds and cumulative buckets with _sum and _count",
          "[metrics][prometheus]") {
  metrics::registry reg;
  fill(reg);
  const auto text = metrics::to_prometheus_text(reg.snapshot());
  INFO(text);
  check_exposition(text);
  // Bucket lines are cumulative: never decreasing in le order.
  std::uint64_t last = 0;
  std::istringstream in(text);
  std::string line;
  int buckets = 0;
  while (std::getline(in, line)) {
    if (line.rfind("twinfleet_operation_duration_seconds_bucket", 0) != 0) continue;
    const auto count = std::stoull(line.substr(line.rfind(' ') + 1));
    CHECK(count >= last);
    last = count;
    ++buckets;
  }
  CHECK(buckets == 18);  // 17 bounds and +Inf
}

TEST_CASE("metrics prometheus: the exposer serves /metrics on 127.0.0.1", "[metrics][prometheus]") {
  metrics::registry reg;
  fill(reg);
  metrics::exposer ex(reg);
  const auto port = test::free_local_port();
  auto started = ex.start("127.0.0.1:" + std::to_string(port));
  REQUIRE(started.has_value());
  CHECK(ex.port() == port);
  auto response = http_get(port, "/metrics");
  INFO(response);
  REQUIRE_THAT(response, Catch::StartsWith("HTTP/1.1 200") || Catch::StartsWith("HTTP/1.0 200"));
  check_exposition(response.substr(response.find("\r\n\r\n") + 4));
  // Each scrape is a fresh snapshot.
  reg.counter("twinfleet_operations_total",
              {{"backend", "azure"}, {"profile", "lightbulb"}, {"operation", "connect"}, {"outcome", "ok"}})
      .add(1);
  response = http_get(port, "/metrics");
  CHECK_THAT(response,
             Catch::Contains(R"(twinfleet_operations_total{backend="azure",profile="lightbulb",operation="connect",outcome="ok"} 8)"));
  ex.stop();
  CHECK(ex.port() == 0);
  CHECK(http_get(port, "/metrics").empty());
}

TEST_CASE("metrics prometheus: a taken port or a bad address is an error and not a crash", "[metrics][prometheus]") {
  metrics::registry reg;
  metrics::exposer first(reg);
  auto ok = first.start("127.0.0.1:0");  // port 0: the system picks one
  REQUIRE(ok.has_value());
  REQUIRE(first.port() != 0);
  const auto address = "127.0.0.1:" + std::to_string(first.port());

  metrics::exposer second(reg);
  auto taken = second.start(address);
  REQUIRE_FALSE(taken.has_value());
  CHECK_THAT(taken.error().message, Catch::Contains(address) && Catch::Contains("Address already in use") &&
                                        Catch::Contains("--metrics-listen"));
  CHECK(second.port() == 0);
  // The first one still serves.
  CHECK_THAT(http_get(first.port(), "/metrics"), Catch::StartsWith("HTTP/1."));

  CHECK_FALSE(first.start(address).has_value());  // already started
  for (std::string bad : {"9464", "127.0.0.1:", "127.0.0.1:70000", "127.0.0.1:http", ":9464"}) {
    INFO(bad);
    auto r = metrics::exposer(reg).start(bad);
    REQUIRE_FALSE(r.has_value());
    CHECK_THAT(r.error().message, Catch::Contains("HOST:PORT"));
  }
  auto foreign = metrics::exposer(reg).start("192.0.2.1:9464");  // TEST-NET-1: not this machine
  REQUIRE_FALSE(foreign.has_value());
  CHECK_THAT(foreign.error().message, Catch::Contains("cannot listen"));
}
