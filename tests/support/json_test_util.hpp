// Test support for JSON documents: parsing literals, printing on failure, fixed instants.
#pragma once

#include <boost/json.hpp>
#include <boost/system/result.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <sstream>
#include <string>

namespace twinfleet::test {

// Parses a JSON literal written in a test; a typo fails loudly.
inline boost::json::value jv(std::string_view text) { return boost::json::parse(text); }
inline boost::json::object jo(std::string_view text) { return boost::json::parse(text).as_object(); }

// 2024-01-15T10:00:00Z plus `seconds`: the virtual clock of the document tests.
inline std::chrono::system_clock::time_point at(double seconds = 0) {
  using namespace std::chrono;
  const auto base = sys_days{year{2024} / January / 15} + hours{10};
  return base + round<system_clock::duration>(duration<double>(seconds));
}

}  // namespace twinfleet::test

// Catch2 prints json values through this when an assertion fails.
namespace Catch {
template <>
struct StringMaker<boost::json::value> {
  static std::string convert(const boost::json::value& v) { return boost::json::serialize(v); }
};
template <>
struct StringMaker<boost::json::object> {
  static std::string convert(const boost::json::object& v) { return boost::json::serialize(v); }
};
// A result prints as {ok} or {error <the error>}, whatever its value type.
template <class T, class E>
struct StringMaker<boost::system::result<T, E>> {
  static std::string convert(const boost::system::result<T, E>& r) {
    if (r) return "{ok}";
    std::ostringstream os;
    os << "{error " << r.error() << "}";
    return os.str();
  }
};
}  // namespace Catch
