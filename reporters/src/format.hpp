// Internal helpers shared by the reporters: reading numbers out of a summary, formatting
// figures for people, escaping text for XML and HTML.
#pragma once

#include <boost/json.hpp>

#include <optional>
#include <string>
#include <string_view>

namespace twinfleet::reporters::detail {

// The field at a dotted path ("sync.anomalies.lost_update"), or null when any step is missing
// or not an object.
[[nodiscard]] const boost::json::value* find_path(const boost::json::object& o, std::string_view dotted);

// A JSON number (int64, uint64 or double) as a double; nothing for any other kind.
[[nodiscard]] std::optional<double> as_number(const boost::json::value* v);
[[nodiscard]] std::optional<double> number_at(const boost::json::object& o, std::string_view dotted);
[[nodiscard]] std::string string_at(const boost::json::object& o, std::string_view dotted, std::string_view fallback = "");
[[nodiscard]] const boost::json::object* object_at(const boost::json::object& o, std::string_view dotted);
[[nodiscard]] const boost::json::array* array_at(const boost::json::object& o, std::string_view dotted);

// A figure for a person: integers as integers, otherwise about three significant digits with
// at most `max_decimals` after the point, trailing zeros dropped ("61.2", "0.31", "0.984").
[[nodiscard]] std::string format_number(double v, int significant = 3);

// Formats `observed` with enough digits that it does not read as equal to `bound` when it is
// not (0.9985 against 0.999 prints "0.9985", not "0.999").
[[nodiscard]] std::string format_distinct(double observed, double bound);

// "1.2 GB", "185 MB", "512 B".
[[nodiscard]] std::string format_bytes(double bytes);

// Text safe in XML 1.0 content and in attribute values of either quote: & < > " ' escaped,
// characters XML 1.0 forbids (control characters but tab, newline, return) replaced by U+FFFD.
[[nodiscard]] std::string xml_escape(std::string_view text);

// The same for HTML: content and quoted attribute values.
[[nodiscard]] std::string html_escape(std::string_view text);

}  // namespace twinfleet::reporters::detail
