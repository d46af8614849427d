#include <twinfleet/backends/reconcile.hpp>

#include <algorithm>

namespace twinfleet::backends {

void azure_desired_reconciler::begin_sync() {
  syncing_ = true;
  buffer_.clear();
}

void azure_desired_reconciler::record_applied(std::int64_t version) {
  // A jump of more than one means a notification this device never saw (C1.3). Before the
  // first GET nothing is known, so no gap can be told.
  if (applied_ > 0 && version > applied_ + 1) ++gaps_;
  applied_ = std::max(applied_, version);
}

azure_desired_reconciler::verdict azure_desired_reconciler::on_notification(desired_patch& n) {
  if (syncing_) {
    buffer_.push_back(std::move(n));
    return verdict::buffered;
  }
  if (!options_.ignore_version && n.version <= applied_) {
    ++stale_;
    return verdict::stale;
  }
  record_applied(n.version);
  return verdict::apply;
}

std::vector<desired_patch> azure_desired_reconciler::take_after_get(std::int64_t get_desired_version) {
  syncing_ = false;
  // The GET's state is the base: what it holds is applied, even when older than what an
  // earlier connection applied (a quirky client may have applied stale patches).
  applied_ = options_.ignore_version ? std::max(applied_, get_desired_version) : get_desired_version;
  std::vector<desired_patch> out;
  out.reserve(buffer_.size());
  if (options_.ignore_version) {
    out = std::move(buffer_);
  } else {
    // Stable: two notifications with one $version (a duplicate delivery) keep their order;
    // the second is then dropped below as stale.
    std::stable_sort(buffer_.begin(), buffer_.end(),
                     [](const desired_patch& a, const desired_patch& b) { return a.version < b.version; });
    for (auto& n : buffer_) {
      if (n.version <= applied_) {
        ++stale_;
        continue;
      }
      record_applied(n.version);
      out.push_back(std::move(n));
    }
  }
  buffer_.clear();
  return out;
}

bool aws_delta_filter::on_delta(std::int64_t version) {
  if (version <= applied_) {
    ++stale_;
    return false;
  }
  applied_ = version;
  return true;
}

void aws_delta_filter::on_update_accepted(std::int64_t version) {
  accepted_ = std::max(accepted_, version);
  if (options_.shared_version_counter) applied_ = std::max(applied_, version);
}

void aws_delta_filter::on_document_applied(std::int64_t version) {
  applied_ = std::max(applied_, version);
  accepted_ = std::max(accepted_, version);
}

void aws_delta_filter::on_deleted(std::int64_t version) { accepted_ = std::max(accepted_, version); }

void aws_delta_filter::reset() noexcept {
  applied_ = 0;
  accepted_ = 0;
}

}  // namespace twinfleet::backends
