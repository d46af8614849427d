#include "fuzz_entry.hpp"

#include <twinfleet/mqtt/codec.hpp>
#include <twinfleet/mqtt/session.hpp>

#include <chrono>
#include <string_view>
#include <vector>

namespace twinfleet::mqtt::test {

namespace {

using namespace std::chrono_literals;

// Small, so that random length bytes often hit the limit.
constexpr std::size_t fuzz_max_packet_size = 4096;

std::string check_codec(std::span<const std::uint8_t> in) {
  while (true) {
    const auto r = decode(in, decode_options{fuzz_max_packet_size});
    if (r.need_more()) {
      if (r.needed <= in.size()) return "need_more asks for no more bytes than it has";
      return {};
    }
    if (r.error) return r.consumed == 0 ? std::string{} : "an error consumed bytes";
    if (r.consumed == 0 || r.consumed > in.size()) return "a packet consumed 0 bytes or more than the input";

    std::string again;
    if (auto ec = encode(*r.packet, again)) return "a decoded packet does not re-encode: " + ec.message();
    if (again.size() > r.consumed) return "a re-encoded packet is longer than the original";
    const auto r2 = decode(again);
    if (!r2.ok()) return "a re-encoded packet does not decode: " + r2.error.message();
    if (r2.consumed != again.size()) return "a re-encoded packet decodes to a different size";
    if (*r2.packet != *r.packet) return "a re-encoded packet decodes to a different packet";
    std::string third;
    if (encode(*r2.packet, third) || third != again) return "re-encoding is not stable";
    in = in.subspan(r.consumed);
  }
}

std::string check_output(session& s) {
  std::string out;
  s.take_output(out);
  std::string_view rest = out;
  while (!rest.empty()) {
    const auto r = decode(rest);
    if (!r.ok()) return "a session sent bytes that do not decode";
    rest.remove_prefix(r.consumed);
  }
  return {};
}

// Plays the application: accepts everything, grants every subscription, echoes publishes.
std::string check_session(std::span<const std::uint8_t> in, role r) {
  session_options options;
  options.max_packet_size = fuzz_max_packet_size;
  options.max_in_flight = 2;
  options.max_queued = 4;
  auto now = time_point{} + 1h;
  session s(r, now, options);
  if (r == role::client) {
    connect_packet c;
    c.client_id = "fuzz";
    c.keep_alive = 5;
    c.clean_session = false;
    if (s.connect(c, now)) return "client connect failed";
    (void)s.publish("queued/before/connack", "x", qos::at_least_once, false, now);
  }
  if (auto failure = check_output(s); !failure.empty()) return failure;

  // Each round consumes at least one byte or stops, so the loop ends; the bound is a backstop.
  for (std::size_t round = 0; round <= in.size() + 1; ++round) {
    now += 700ms;
    (void)s.on_timer(now);
    auto step = s.on_bytes(in, now);
    if (step.consumed > in.size()) return "a session consumed more than the input";
    if (auto* c = std::get_if<connect_packet>(&step.event)) {
      if (s.accept(now, accept_params{!c->clean_session, std::nullopt})) return "accept failed after CONNECT";
    } else if (auto* sub = std::get_if<subscribe_packet>(&step.event)) {
      const std::vector<suback_code> codes(sub->subscriptions.size(), suback_code::granted_qos1);
      if (s.suback(sub->packet_id, codes, now)) return "suback failed after SUBSCRIBE";
    } else if (auto* pub = std::get_if<publish_packet>(&step.event)) {
      (void)s.publish(pub->topic, pub->payload, pub->qos == qos::at_most_once ? qos::at_most_once : qos::at_least_once,
                      pub->retain, now);
    }
    if (auto failure = check_output(s); !failure.empty()) return failure;
    if (std::holds_alternative<closed_event>(step.event) && !s.closing())
      return "a closed_event without the session closing";
    if (step.consumed == 0) break;
    in = in.subspan(step.consumed);
  }
  (void)s.on_timer(now + 24h);
  if (auto failure = check_output(s); !failure.empty()) return failure;
  s.on_connection_lost();
  return {};
}

}  // namespace

std::string fuzz_check(std::span<const std::uint8_t> data) {
  if (auto failure = check_codec(data); !failure.empty()) return "codec: " + failure;
  if (auto failure = check_session(data, role::server); !failure.empty()) return "server: " + failure;
  if (auto failure = check_session(data, role::client); !failure.empty()) return "client: " + failure;
  return {};
}

}  // namespace twinfleet::mqtt::test

extern "C" int twinfleet_mqtt_fuzz_one(const std::uint8_t* data, std::size_t size) {
  if (!twinfleet::mqtt::test::fuzz_check({data, size}).empty()) __builtin_trap();
  return 0;
}
