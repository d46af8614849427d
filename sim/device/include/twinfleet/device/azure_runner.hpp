// One virtual device of a profile, alive on Azure IoT Hub: the device coroutine. It connects
// (retrying with the profile's back-off), subscribes and reconciles in the documented order
// (subscribe → GET → drop stale notifications, PROTOCOLS.md A6/C1.2; the profile's quirks
// change that order on purpose), applies desired writes and acknowledges them with the IoT
// Plug and Play convention, reports its generated properties, answers its direct methods and
// sends its telemetry, until the run ends. Everything it does is reported to an observer: the
// engine's metrics and the sync checker listen there.
//
//   co_spawn(executor, device::run_azure_device(config, observer, until), detached);
//
// Threading: runs on the executor it is spawned on, which must be an io_context's (one device,
// one thread; any other executor throws std::invalid_argument); the observer is called there
// too. The same holds for the AWS device (aws_runner.hpp).
#pragma once

#include <twinfleet/backends/azure_device_session.hpp>
#include <twinfleet/device/profile.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <atomic>
#include <chrono>
#include <functional>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace twinfleet::device {

// How a desired version reached a device: an Azure desired notification (that version's patch
// only), an AWS /update/delta (cumulative), or a GET (the whole desired state).
enum class desired_via : std::uint8_t { notification, delta, get };

// What a device did, as it happened. Latencies are measured on the steady clock from the
// operation's start. Default: nothing.
class device_observer {
 public:
  // A device's `slot` (azure_device_run::slot, aws_device_run::slot): the observer's own number
  // for it, handed back with the calls a device makes for every reported patch, so that an
  // observer keeping per-device records indexes them instead of searching by name.
  // no_slot when the caller gave none.
  static constexpr std::size_t no_slot = static_cast<std::size_t>(-1);

  virtual ~device_observer() = default;
  virtual void connected(std::string_view /*device*/, std::chrono::nanoseconds /*latency*/) {}
  virtual void connect_failed(std::string_view /*device*/, boost::system::error_code) {}
  virtual void disconnected(std::string_view /*device*/, boost::system::error_code) {}
  virtual void twin_read(std::string_view /*device*/, std::chrono::nanoseconds, bool /*ok*/) {}
  // The connection's subscriptions granted (Azure: the $iothub topics; AWS: every shadow's and
  // the command topics), from the first SUBSCRIBE sent to the last SUBACK.
  virtual void subscribed(std::string_view /*device*/, std::chrono::nanoseconds, bool /*ok*/) {}
  // The connection is in service: subscribed, its twin or shadows read, its reports of the
  // connection sent. A method or command sent before this may find it not yet subscribed (an
  // AWS command is then lost: nothing tells the sender).
  virtual void synchronised(std::string_view /*device*/) {}
  virtual void reported(std::string_view /*device*/, std::size_t /*slot*/, std::chrono::nanoseconds, bool /*ok*/) {}
  // A desired version seen (a notification as it arrives, stale ones included, or a GET's),
  // then applied and acknowledged (called once the reported acknowledgement was accepted by
  // the hub, i.e. when the service can see it) with the acknowledgement's status.
  virtual void desired_received(std::string_view /*device*/, std::int64_t /*version*/) {}
  virtual void desired_applied(std::string_view /*device*/, std::int64_t /*version*/, int /*status*/) {}
  virtual void desired_stale(std::string_view /*device*/, std::int64_t /*version*/) {}
  virtual void method_answered(std::string_view /*device*/, std::string_view /*name*/, int /*status*/) {}
  virtual void telemetry_sent(std::string_view /*device*/, std::chrono::nanoseconds, bool /*ok*/) {}

  // For the sync checker (sim/check), alongside the calls above:
  // A connection came up (after CONNACK, before subscribing) or ended. `session` numbers
  // connections process-wide: unique, and larger for a later connection, also between two
  // devices that share an id. Named by the connection: the Azure device id, the AWS thing.
  virtual void session_started(std::string_view /*device*/, std::uint64_t /*session*/) {}
  virtual void session_ended(std::string_view /*device*/, std::uint64_t /*session*/) {}
  // A desired version reached the device (as desired_received, and also an AWS GET whose
  // document holds no desired state), and how; then applied and acknowledged, as
  // desired_applied, and from where.
  virtual void desired_delivered(std::string_view /*key*/, std::int64_t /*version*/, desired_via) {}
  virtual void desired_applied_via(std::string_view /*key*/, std::int64_t /*version*/, desired_via, int /*status*/) {}
  // The hub accepted reported write number `serial` of this device (numbered when sent, in
  // send order, across sessions) sent on `session`, as reported version `hub_version` (Azure
  // reported $version, AWS shadow version). `key` as for desired versions; `slot` the device's
  // when `key` is the device's id (Azure), no_slot for an AWS shadow's key.
  virtual void reported_accepted(std::string_view /*key*/, std::size_t /*slot*/, std::uint64_t /*session*/,
                                 std::uint64_t /*serial*/, std::int64_t /*hub_version*/) {}
};

// Wakes every device coroutine sleeping on this thread (call it on each device thread, e.g.
// by posting it to each executor, after setting the devices' stop flag): devices do not poll
// the flag more often than every 60 s, so a stop without it is seen late. The thread's stop
// lasts until its last device has ended.
void wake_devices_on_this_thread();

// At most `limit` devices of this thread connect and synchronise (connect, subscribe, the
// first twin or shadow GET) at once; the others wait their turn, first come first served
// (0: no limit, the default). Call it on the thread before its devices start (e.g. posted to
// its executor first). An all-at-once ramp of 19,500 devices otherwise has every device
// mid-connect together: each one's connect latency is then mostly the simulator's own queue,
// and the memory those connects use for a moment stays fragmented afterwards (bench/README.md).
void limit_connecting_on_this_thread(std::size_t limit) noexcept;

// Devices of this thread wake for what they do on their own (reports, telemetry, scheduled
// effects such as a blink's end) at the first multiple of `step` on the steady clock at or after
// its time (on_grid in distribution.hpp; 0: exact times, the default). Devices due within one
// step then wake together, and the thread sleeps and wakes once per step instead of once per
// device: at 40,000 reported patches/s, a 1 ms grid cut the simulator's CPU per patch by
// 15-25 % and the hub's context switches from ~19,000 to ~1,200 a second (bench/README.md,
// stop 14; less when the machine is too slow to keep up, as its threads then rarely sleep).
// What arrives (a write, a method call) still wakes a device at once, and apply delays and
// command latencies keep their exact times. An action due more often than once per step
// comes once per step. Call it on the thread (e.g. posted to its executor).
void wake_on_grid_on_this_thread(std::chrono::nanoseconds step) noexcept;

struct azure_device_run {
  std::shared_ptr<const profile> device_profile;
  std::uint64_t index = 0;   // the {index} of its id
  std::size_t slot = device_observer::no_slot;  // the observer's number for it (device_observer)
  std::uint64_t seed = 1;    // every random choice of this device
  backends::azure_device_config session;  // device_id, key, host name; keep-alive comes from the profile
  boost::asio::ip::tcp::endpoint hub;
  // Null: plain TCP. Otherwise tls (with a context that outlives the run) or another way in;
  // the device keeps it for its reconnects, so devices that connect alike may share one.
  std::shared_ptr<const net::client_transport> transport;
  std::chrono::milliseconds request_timeout{10'000};
  // When set, the device waits until then before it connects (its place on a ramp); a stop
  // ends the wait. Waiting here, not in a coroutine of the caller's, saves that coroutine's
  // frame (about 1 KiB a device).
  std::optional<std::chrono::steady_clock::time_point> start_at;
};

// Runs the device until `until` or until `stop` becomes true (a sleeping device sees the flag
// within 60 s, at once when wake_devices_on_this_thread() runs on its thread), then disconnects. Never throws; failures go to the observer and the device carries on as a
// real one would (reconnecting with back-off).
boost::asio::awaitable<void> run_azure_device(azure_device_run run, device_observer& observer,
                                              std::chrono::steady_clock::time_point until,
                                              std::shared_ptr<const std::atomic<bool>> stop = nullptr);

// The same device without a coroutine for the caller to keep: starts it on `executor` and
// returns at once (its state is built there, at once when called on that executor's thread,
// so that what it keeps comes from that thread's malloc arena); `on_end` runs on that executor once the device has ended (where
// run_azure_device would complete). A device with nothing due for 2 s or more keeps no
// coroutine frame meanwhile, only its timer's wait (~1.5 KiB less per idle device): what the
// fleet engine uses.
void start_azure_device(boost::asio::any_io_executor executor, azure_device_run run, device_observer& observer,
                        std::chrono::steady_clock::time_point until, std::shared_ptr<const std::atomic<bool>> stop,
                        std::function<void()> on_end);

}  // namespace twinfleet::device
