// How Catch2 prints the project's value types when an assertion fails. Include it instead of
// writing a StringMaker in a test file.
#pragma once

#include <boost/json.hpp>
#include <boost/system/result.hpp>

#include <catch2/catch.hpp>

#include <sstream>
#include <string>
#include <type_traits>

namespace twinfleet::test::detail {

template <class E>
std::string describe_error(const E& e) {
  if constexpr (requires { e.message(); }) {
    return e.message();  // error_code: its text, not "category:value"
  } else {
    std::ostringstream os;
    os << e;
    return os.str();
  }
}

}  // namespace twinfleet::test::detail

namespace Catch {

// Catch2 would pick boost::system::result's operator<<, which does not compile for value types
// without one: print {ok} or {error <what>} instead.
template <class T, class E>
struct StringMaker<boost::system::result<T, E>> {
  static std::string convert(const boost::system::result<T, E>& r) {
    return r ? std::string("{ok}") : "{error " + twinfleet::test::detail::describe_error(r.error()) + "}";
  }
};

template <>
struct StringMaker<boost::json::value> {
  static std::string convert(const boost::json::value& v) { return boost::json::serialize(v); }
};

template <>
struct StringMaker<boost::json::object> {
  static std::string convert(const boost::json::object& v) { return boost::json::serialize(v); }
};

}  // namespace Catch
