// JSON helpers shared by the Azure twin and the AWS shadow rules. Pure functions, no I/O.
#pragma once

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace twinfleet::twin {

namespace json = boost::json;

// The instant every operation is stamped with. Operations take it as a parameter so the rules
// run on virtual time in tests and on the real clock in the hub.
using time_point = std::chrono::system_clock::time_point;

// RFC 7396-style merge: each member of `patch` adds or overwrites the key in `target`, nested
// objects merge recursively, a null member deletes the key. Arrays are whole values.
void merge_patch(json::object& target, const json::object& patch);

// Deep equality for documents: objects by keys regardless of order, arrays element-wise,
// numbers by value across int64/uint64/double (1 == 1.0), as a JSON reader would compare them.
[[nodiscard]] bool json_equal(const json::value& a, const json::value& b) noexcept;

// True when `text` is well-formed UTF-8 (no overlongs, no surrogates, nothing above U+10FFFF).
[[nodiscard]] bool is_valid_utf8(std::string_view text) noexcept;

// Unicode code points in well-formed UTF-8 `text`.
[[nodiscard]] std::size_t utf8_length(std::string_view text) noexcept;

// "2017-03-09T18:30:52.3167248Z": UTC, seven fractional digits, as IoT Hub writes $lastUpdated.
[[nodiscard]] std::string format_iso8601(time_point t);

// The inverse of format_iso8601: "YYYY-MM-DDTHH:MM:SS[.f{1,9}]Z", UTC only; nothing when the
// text is not of that form or names no real date (persist.cpp).
[[nodiscard]] std::optional<time_point> parse_iso8601(std::string_view text) noexcept;

// Whole seconds since the Unix epoch, as AWS shadow timestamps are written.
[[nodiscard]] std::int64_t epoch_seconds(time_point t) noexcept;

// A dotted path for messages: join("properties.desired", "a") == "properties.desired.a".
[[nodiscard]] std::string join_path(std::string_view parent, std::string_view key);

}  // namespace twinfleet::twin
