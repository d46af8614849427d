#include <twinfleet/backends/service_error.hpp>

#include <stdexcept>
#include <sstream>

namespace twinfleet::backends {

const char* to_string(service_failure f) noexcept {
  switch (f) {
    case service_failure::http: return "http";
    case service_failure::timeout: return "timeout";
    case service_failure::connect: return "connect";
    case service_failure::tls: return "tls";
    case service_failure::io: return "io";
    case service_failure::bad_response: return "bad_response";
    case service_failure::bad_request: return "bad_request";
    case service_failure::cancelled: return "cancelled";
  }
  return "?";
}

std::ostream& operator<<(std::ostream& os, const service_error& e) {
  os << to_string(e.kind);
  if (e.http_status != 0) os << ' ' << e.http_status;
  if (e.azure_code != 0) os << ' ' << e.azure_code;
  if (!e.error_type.empty()) os << ' ' << e.error_type;
  os << ": " << e.message;
  if (e.transport) os << " (" << e.transport.message() << ')';
  return os;
}

void throw_exception_from_error(const service_error& e, const boost::source_location&) {
  std::ostringstream text;
  text << "service error: " << e;
  throw std::runtime_error(text.str());
}

}  // namespace twinfleet::backends
