#include "format.hpp"

#include <fmt/core.h>

#include <cmath>

namespace twinfleet::reporters::detail {

namespace json = boost::json;

const json::value* find_path(const json::object& o, std::string_view dotted) {
  const json::object* cur = &o;
  while (true) {
    const auto dot = dotted.find('.');
    const auto key = dotted.substr(0, dot);
    const auto* v = cur->if_contains(key);
    if (!v) return nullptr;
    if (dot == std::string_view::npos) return v;
    cur = v->if_object();
    if (!cur) return nullptr;
    dotted.remove_prefix(dot + 1);
  }
}

std::optional<double> as_number(const json::value* v) {
  if (!v) return std::nullopt;
  if (v->is_int64()) return static_cast<double>(v->get_int64());
  if (v->is_uint64()) return static_cast<double>(v->get_uint64());
  if (v->is_double()) return v->get_double();
  return std::nullopt;
}

std::optional<double> number_at(const json::object& o, std::string_view dotted) { return as_number(find_path(o, dotted)); }

std::string string_at(const json::object& o, std::string_view dotted, std::string_view fallback) {
  const auto* v = find_path(o, dotted);
  if (v && v->is_string()) return std::string(v->get_string());
  return std::string(fallback);
}

const json::object* object_at(const json::object& o, std::string_view dotted) {
  const auto* v = find_path(o, dotted);
  return v ? v->if_object() : nullptr;
}

const json::array* array_at(const json::object& o, std::string_view dotted) {
  const auto* v = find_path(o, dotted);
  return v ? v->if_array() : nullptr;
}

namespace {

std::string trim_zeros(std::string s) {
  if (s.find('.') == std::string::npos) return s;
  while (!s.empty() && s.back() == '0') s.pop_back();
  if (!s.empty() && s.back() == '.') s.pop_back();
  return s;
}

}  // namespace

std::string format_number(double v, int significant) {
  if (!std::isfinite(v)) return std::isnan(v) ? "NaN" : (v > 0 ? "inf" : "-inf");
  if (v == std::floor(v) && std::fabs(v) < 1e15) return fmt::format("{:.0f}", v);
  const double a = std::fabs(v);
  // Decimals so that `significant` digits show, but no more than needed for large values.
  int decimals = significant - 1 - static_cast<int>(std::floor(std::log10(a)));
  if (decimals < 1) decimals = a >= 10 ? 1 : 0;
  if (decimals > 12) decimals = 12;
  return trim_zeros(fmt::format("{:.{}f}", v, decimals));
}

std::string format_distinct(double observed, double bound) {
  std::string s;
  for (int significant = 3; significant <= 15; ++significant) {
    s = format_number(observed, significant);
    if (observed == bound || s != format_number(bound, significant)) break;
  }
  return s;
}

std::string format_bytes(double bytes) {
  static constexpr const char* units[] = {"B", "KB", "MB", "GB", "TB"};
  int u = 0;
  while (bytes >= 1000 && u < 4) {
    bytes /= 1000;
    ++u;
  }
  return format_number(bytes) + " " + units[u];
}

namespace {

// Appends `text` escaped; `apos` is the entity for the single quote (XML knows &apos;, HTML4
// does not, so HTML gets the numeric form).
std::string escape(std::string_view text, const char* apos) {
  std::string out;
  out.reserve(text.size() + text.size() / 8);
  for (const char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += apos;
        break;
      case '\t':
      case '\n':
      case '\r':
        out += ch;
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          out += "\xEF\xBF\xBD";  // U+FFFD: XML 1.0 cannot carry these at all
        } else {
          out += ch;
        }
    }
  }
  return out;
}

}  // namespace

std::string xml_escape(std::string_view text) { return escape(text, "&apos;"); }
std::string html_escape(std::string_view text) { return escape(text, "&#39;"); }

}  // namespace twinfleet::reporters::detail
