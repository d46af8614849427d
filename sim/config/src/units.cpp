#include <twinfleet/config/units.hpp>

#include <charconv>
#include <cmath>
#include <cstdint>
#include <limits>

namespace twinfleet::config {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// A non-negative decimal number at the front of `s` ("1", "1.5", ".5"); advances `s`.
std::optional<double> take_number(std::string_view& s) {
  std::size_t n = 0;
  bool digits = false;
  while (n < s.size() && s[n] >= '0' && s[n] <= '9') {
    ++n;
    digits = true;
  }
  if (n < s.size() && s[n] == '.') {
    ++n;
    while (n < s.size() && s[n] >= '0' && s[n] <= '9') {
      ++n;
      digits = true;
    }
  }
  if (!digits) return std::nullopt;
  double value = 0;
  const auto r = std::from_chars(s.data(), s.data() + n, value);
  if (r.ec != std::errc{}) return std::nullopt;
  s.remove_prefix(n);
  return value;
}

// Nanoseconds in one `unit`, 0 when the unit is unknown. Longest units first where prefixes clash.
double unit_nanoseconds(std::string_view unit) {
  if (unit == "ns") return 1;
  if (unit == "us" || unit == "\xC2\xB5s") return 1e3;
  if (unit == "ms") return 1e6;
  if (unit == "s") return 1e9;
  if (unit == "m" || unit == "min") return 60e9;
  if (unit == "h") return 3600e9;
  if (unit == "d") return 86400e9;
  return 0;
}

}  // namespace

std::optional<std::chrono::nanoseconds> parse_duration(std::string_view text) {
  text = trim(text);
  if (text.empty()) return std::nullopt;
  if (text == "0") return std::chrono::nanoseconds::zero();
  long double total = 0;
  while (!text.empty()) {
    const auto number = take_number(text);
    if (!number) return std::nullopt;
    std::size_t u = 0;
    while (u < text.size() && !(text[u] >= '0' && text[u] <= '9') && text[u] != '.') ++u;
    const double scale = unit_nanoseconds(text.substr(0, u));
    if (scale == 0) return std::nullopt;
    total += static_cast<long double>(*number) * scale;
    text.remove_prefix(u);
  }
  if (total > static_cast<long double>(std::numeric_limits<std::int64_t>::max())) return std::nullopt;
  return std::chrono::nanoseconds(static_cast<std::int64_t>(std::llround(total)));
}

std::optional<double> parse_rate(std::string_view text) {
  text = trim(text);
  if (text == "0") return 0.0;
  const auto slash = text.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  std::string_view number_text = trim(text.substr(0, slash));
  const auto number = take_number(number_text);
  if (!number || !number_text.empty()) return std::nullopt;
  const std::string_view unit = trim(text.substr(slash + 1));
  // Per-day and sub-millisecond units are units of time but not plausible rates.
  if (!(unit == "s" || unit == "ms" || unit == "m" || unit == "min" || unit == "h")) return std::nullopt;
  const double scale = unit_nanoseconds(unit);
  return *number * (1e9 / scale);
}

std::optional<double> parse_percent(std::string_view text) {
  text = trim(text);
  if (text.empty() || text.back() != '%') return std::nullopt;
  text.remove_suffix(1);
  text = trim(text);
  const auto number = take_number(text);
  if (!number || !text.empty()) return std::nullopt;
  return *number / 100.0;
}

std::string format_duration(std::chrono::nanoseconds d) {
  using namespace std::chrono;
  const auto n = d.count();
  if (n == 0) return "0s";
  struct unit {
    std::int64_t ns;
    const char* name;
  };
  static constexpr unit units[] = {{3600'000'000'000, "h"}, {60'000'000'000, "m"}, {1'000'000'000, "s"},
                                   {1'000'000, "ms"},       {1'000, "us"},         {1, "ns"}};
  std::string sign = n < 0 ? "-" : "";
  const std::int64_t abs = n < 0 ? -n : n;
  for (const auto& u : units) {
    if (abs % u.ns == 0) return sign + std::to_string(abs / u.ns) + u.name;
  }
  return sign + std::to_string(abs) + "ns";
}

}  // namespace twinfleet::config
