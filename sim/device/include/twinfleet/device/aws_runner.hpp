// One virtual device of a profile, alive on AWS IoT device shadows: the AWS device coroutine.
// It connects (retrying with the profile's back-off), subscribes to each of its shadows before
// it publishes (B9, C2.4), GETs them and applies the desired state, then applies deltas in
// version order (a stale delta is dropped, C2.1; the `shared_version_counter` quirk reproduces
// the SDK bug of C2.2), acknowledging each by reporting the value in force (the reported mirror
// that clears the delta), reports its generated properties on its first shadow and publishes
// telemetry on the profile's topic. Deltas that re-fire because a refused value stays desired
// (C2.5) are answered once, not in a loop.
//
// Observer calls name the device by thing name for the classic shadow and "thing/shadow" for a
// named one, so that a checker can follow each shadow's versions.
//
// Commands follow twinfleet's AWS command-topic convention (docs/PROFILES.md): after its shadow
// subscriptions the device subscribes to `twinfleet/things/{thing}/commands/+`; a request
// {"requestId": …, "payload": …} on `…/commands/{name}` runs the profile's command as an Azure
// direct method would (latency, status and response template, effects; unknown → 404) and is
// answered with {"requestId": …, "status": …, "payload": …} on `…/commands/{name}/response`
// (QoS 1). A request that is not a JSON object with a requestId is ignored.
#pragma once

#include <twinfleet/backends/aws_device_session.hpp>
#include <twinfleet/device/azure_runner.hpp>

namespace twinfleet::device {

struct aws_device_run {
  std::shared_ptr<const profile> device_profile;
  std::uint64_t index = 0;
  std::size_t slot = device_observer::no_slot;  // the observer's number for it (device_observer)
  std::uint64_t seed = 1;
  backends::aws_device_config session;  // thing name, client id; keep-alive comes from the profile
  std::vector<std::string> shadows{std::string{}};  // "" is the classic shadow
  boost::asio::ip::tcp::endpoint hub;
  // Null: plain TCP. Otherwise tls (with a context that outlives the run) or another way in;
  // the device keeps it for its reconnects, so devices that connect alike may share one.
  std::shared_ptr<const net::client_transport> transport;
  std::chrono::milliseconds request_timeout{10'000};
  // When set, the device waits until then before it connects (as azure_device_run::start_at).
  std::optional<std::chrono::steady_clock::time_point> start_at;
};

boost::asio::awaitable<void> run_aws_device(aws_device_run run, device_observer& observer,
                                            std::chrono::steady_clock::time_point until,
                                            std::shared_ptr<const std::atomic<bool>> stop = nullptr);

// The same device without a coroutine for the caller to keep: starts it on `executor` and
// returns at once (its state is built there, at once when called on that executor's thread,
// so that what it keeps comes from that thread's malloc arena); `on_end` runs on that executor once the device has ended (where
// run_aws_device would complete). A device with nothing due for 2 s or more keeps no
// coroutine frame meanwhile, only its timer's wait (~1.5 KiB less per idle device): what the
// fleet engine uses.
void start_aws_device(boost::asio::any_io_executor executor, aws_device_run run, device_observer& observer,
                        std::chrono::steady_clock::time_point until, std::shared_ptr<const std::atomic<bool>> stop,
                        std::function<void()> on_end);

// The observer's name for a shadow of a thing: "thing" (classic) or "thing/shadow".
[[nodiscard]] std::string shadow_key(std::string_view thing, std::string_view shadow);

// `twinfleet/things/{thing}/commands/`: the convention's prefix of a thing's command topics.
[[nodiscard]] std::string aws_command_topic_prefix(std::string_view thing);

}  // namespace twinfleet::device
