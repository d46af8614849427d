// The device-side consistency rules of both platforms as small state machines, pure and
// sans-I/O, so the device coroutine only feeds them what arrives and does what they say.
//
// Azure (PROTOCOLS.md A6, C1.2): connect → subscribe desired → GET → ignore every notification
// whose $version ≤ the GET's desired $version, apply the newer ones in version order.
// azure_desired_reconciler buffers notifications that arrive between SUBSCRIBE and the GET's
// answer and releases the newer ones once the GET is known.
//
// AWS (PROTOCOLS.md C2.1, C2.2): deltas may come in any order and are cumulative, so a delta
// whose version ≤ the last applied state is stale. /update/accepted of an update and its
// /update/delta share one version and may come in either order: the counter that filters
// deltas must not be advanced by /update/accepted (an accepted document carries only what was
// sent, not the desired state). aws_delta_filter keeps separate counters, and reproduces the
// SDK bug of one shared counter on request.
//
// Neither class is thread-safe; each belongs to one device (one per shadow on AWS).
#pragma once

#include <twinfleet/backends/device_types.hpp>

#include <cstdint>
#include <optional>
#include <vector>

namespace twinfleet::backends {

class azure_desired_reconciler {
 public:
  enum class verdict {
    buffered,  // before the GET's answer: kept until take_after_get()
    apply,     // newer than everything applied: apply it now
    stale,     // $version ≤ the last applied desired $version: drop it
  };

  struct options {
    // The `ignore_desired_version` quirk: every notification is applied, stale ones included
    // (still buffered before the GET, then released in arrival order, none dropped).
    bool ignore_version = false;
  };

  azure_desired_reconciler() = default;
  explicit azure_desired_reconciler(options o) : options_(o) {}

  // A new connection: call after subscribing to desired notifications and before sending the
  // GET. Notifications are buffered from here until take_after_get(). Forgets the buffer, not
  // the last applied version.
  void begin_sync();

  // A notification arrived. On `buffered` the reconciler keeps `n` (moved from); on `apply`
  // the caller applies it (the version is recorded as applied); on `stale` it is dropped.
  verdict on_notification(desired_patch& n);

  // The GET answered with this desired $version (the twin's desired state, applied by the
  // caller). Returns the buffered notifications newer than it, sorted by $version (with
  // ignore_version: all of them, in arrival order), and ends buffering. The last applied
  // version becomes the highest of the GET's and those returned.
  std::vector<desired_patch> take_after_get(std::int64_t get_desired_version);

  // True between begin_sync() and take_after_get().
  [[nodiscard]] bool syncing() const noexcept { return syncing_; }
  // The highest desired $version applied (0 before any GET).
  [[nodiscard]] std::int64_t applied_version() const noexcept { return applied_; }
  // Notifications dropped as stale, and gaps seen (an applied $version above last + 1: the
  // device may have missed one and may re-GET, C1.3), since construction.
  [[nodiscard]] std::uint64_t stale_dropped() const noexcept { return stale_; }
  [[nodiscard]] std::uint64_t gaps() const noexcept { return gaps_; }

 private:
  void record_applied(std::int64_t version);

  options options_{};
  bool syncing_ = false;
  std::int64_t applied_ = 0;
  std::uint64_t stale_ = 0;
  std::uint64_t gaps_ = 0;
  std::vector<desired_patch> buffer_;
};

class aws_delta_filter {
 public:
  struct options {
    // The SDK bug (C2.2; aws-iot-device-sdk issues #71, #90, #94, #127): one "last version"
    // for every topic, so /update/accepted of version N that arrives before its delta makes
    // that delta look stale and it is dropped.
    bool shared_version_counter = false;
  };

  aws_delta_filter() = default;
  explicit aws_delta_filter(options o) : options_(o) {}

  // A delta of `version` arrived: true to apply it (it becomes the last applied), false when
  // it is stale (version ≤ the last applied) and must be dropped.
  bool on_delta(std::int64_t version);
  // /update/accepted of `version` (the device's own update or anybody's). Recorded as the
  // last accepted; advances the delta counter only with shared_version_counter.
  void on_update_accepted(std::int64_t version);
  // A full document was applied (/get/accepted, or /update/documents' current): its state
  // includes every delta up to `version`, so older deltas are stale.
  void on_document_applied(std::int64_t version);
  // The shadow was deleted: versions continue after a re-create (B5, C2.9), so the counters
  // stay; nothing to do but count it. Provided so callers need not know that.
  void on_deleted(std::int64_t version);
  // Forget everything (a client that resets its counters; C2.9's failure mode when the shadow
  // was re-created with continuing versions).
  void reset() noexcept;

  [[nodiscard]] std::int64_t last_applied() const noexcept { return applied_; }
  [[nodiscard]] std::int64_t last_accepted() const noexcept { return accepted_; }
  [[nodiscard]] std::uint64_t stale_dropped() const noexcept { return stale_; }

 private:
  options options_{};
  std::int64_t applied_ = 0;
  std::int64_t accepted_ = 0;
  std::uint64_t stale_ = 0;
};

}  // namespace twinfleet::backends
