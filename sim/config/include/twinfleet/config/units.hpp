// Text forms of durations, rates and percentages shared by every twinfleet file format.
// Pure functions, usable without YAML (command-line flags, `--set key=value`).
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace twinfleet::config {

// "250ms", "5s", "2m", "1h30m", "1.5s", "100us", "20ns", "1d", "0": a sequence of
// <decimal number><unit> with units ns, us (or µs), ms, s, m (or min), h, d. Blanks around
// the text are ignored; "0" alone needs no unit. Nothing when malformed, negative or beyond
// what nanoseconds hold.
[[nodiscard]] std::optional<std::chrono::nanoseconds> parse_duration(std::string_view text);

// "100/s", "5/m" (or "/min"), "12/h", "0.5/s", "0": a non-negative number of events per unit
// of time; returned per second. Nothing when malformed.
[[nodiscard]] std::optional<double> parse_rate(std::string_view text);

// "12.5%" → 0.125. Nothing when malformed (a missing % sign included).
[[nodiscard]] std::optional<double> parse_percent(std::string_view text);

// The shortest exact text parse_duration reads back: 1500ms → "1500ms", 2 min → "2m", 0 → "0s".
[[nodiscard]] std::string format_duration(std::chrono::nanoseconds d);

}  // namespace twinfleet::config
