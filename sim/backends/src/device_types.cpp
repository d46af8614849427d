#include <twinfleet/backends/device_types.hpp>

#include <stdexcept>

namespace twinfleet::backends {

namespace {

// Boost's category has a protected non-virtual destructor by design.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnon-virtual-dtor"
class device_category_impl final : public boost::system::error_category {
 public:
  [[nodiscard]] const char* name() const noexcept override { return "twinfleet.backends.device"; }
  [[nodiscard]] std::string message(int ev) const override {
    switch (static_cast<device_errc>(ev)) {
      case device_errc::rejected: return "the hub rejected the request";
      case device_errc::timeout: return "no answer within the request's timeout";
      case device_errc::not_connected: return "the session is not connected";
      case device_errc::subscribe_refused: return "the hub refused a subscription";
      case device_errc::bad_response: return "the hub's answer does not parse";
      case device_errc::not_subscribed: return "the answer topic is not subscribed";
    }
    return "unknown device session error";
  }
};
#pragma GCC diagnostic pop

}  // namespace

const boost::system::error_category& device_category() noexcept {
  static const device_category_impl category;
  return category;
}

bool device_error::rejected() const noexcept { return ec == device_errc::rejected; }

void throw_exception_from_error(const device_error& e, const boost::source_location&) {
  throw std::runtime_error("device request failed: " + e.ec.message() + " (status " + std::to_string(e.status) +
                           "): " + e.message);
}

}  // namespace twinfleet::backends
