// Test support for JSON documents: parsing literals, printing on failure, fixed instants.
#pragma once

#include <boost/json.hpp>

#include "catch_printers.hpp"

#include <catch2/catch.hpp>

#include <chrono>
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
