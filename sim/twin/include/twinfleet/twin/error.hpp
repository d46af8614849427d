// Errors of the document model: a platform code plus a message that names the offending path.
#pragma once

#include <boost/assert/source_location.hpp>
#include <boost/system/result.hpp>

#include <ostream>
#include <stdexcept>
#include <string>

namespace twinfleet::twin {

// A rejected twin or shadow operation.
//
// `code` is the platform's own number, as a client would see it:
// - Azure: the six-digit IoT Hub error code (400004, 412001, 413001, ...); the HTTP status is
//   its first three digits.
// - AWS: the HTTP-like code of the shadow error document (400, 404, 409, 413, 415, ...), with
//   `message` exactly as AWS words it.
struct error {
  error() = default;
  error(int c, std::string m) : code(c), message(std::move(m)) {}

  int code = 0;
  std::string message;

  // The HTTP status that carries this error (400 for 400004, 409 for 409).
  [[nodiscard]] int http_status() const noexcept { return code >= 1000 ? code / 1000 : code; }

  friend bool operator==(const error&, const error&) = default;

  // "400004: properties.desired.a.b: ...", for logs and test failure messages.
  friend std::ostream& operator<<(std::ostream& os, const error& e) { return os << e.code << ": " << e.message; }
};

// Azure IoT Hub error codes used by the twin rules (PROTOCOLS.md A11).
namespace azure_code {
inline constexpr int invalid_argument = 400004;     // bad body, bad key, depth, value range
inline constexpr int precondition_failed = 412001;  // If-Match etag or reported $version mismatch
// A section over its size limit. IoT Hub answered a 32 KB overflow with
// {"message":"'Properties.Reported' size should be less than 32768 bytes.","errorCode":403100}
// (Azure/iotedge issue #7035); the status is not in Microsoft's docs (PROTOCOLS.md D2).
inline constexpr int section_too_large = 403100;
}  // namespace azure_code

template <class T>
using result = boost::system::result<T, error>;

// Lets result<T>::value() throw when it holds an error (a bug at the caller: check first).
[[noreturn]] inline void throw_exception_from_error(const error& e, const boost::source_location&) {
  throw std::runtime_error("twin error " + std::to_string(e.code) + ": " + e.message);
}

}  // namespace twinfleet::twin
