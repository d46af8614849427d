#include <twinfleet/twin/names.hpp>

#include <algorithm>

namespace twinfleet::twin {
namespace {

// Locale-free ASCII classification: std::isalnum depends on the C locale and takes int.
constexpr bool is_ascii_alnum(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

constexpr bool is_in(char c, std::string_view set) noexcept {
  return set.find(c) != std::string_view::npos;
}

template <class Pred>
bool all_of_bounded(std::string_view s, std::size_t max_length, Pred pred) noexcept {
  return !s.empty() && s.size() <= max_length && std::all_of(s.begin(), s.end(), pred);
}

// Characters A8 forbids in method and property names, besides non-printables, space and tab.
constexpr std::string_view azure_name_separators = "$()<>@,;:\\\"/[]?={}";

bool is_valid_azure_name(std::string_view name) noexcept {
  return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
           // 0x21..0x7E is printable US-ASCII without space; a signed char above 0x7F is < 0.
           return c >= '!' && c <= '~' && !is_in(c, azure_name_separators);
         });
}

}  // namespace

bool is_valid_thing_name(std::string_view name) noexcept {
  return all_of_bounded(name, max_thing_name_length,
                        [](char c) { return is_ascii_alnum(c) || is_in(c, ":_-"); });
}

bool is_valid_shadow_name(std::string_view name) noexcept {
  return all_of_bounded(name, max_shadow_name_length,
                        [](char c) { return is_ascii_alnum(c) || is_in(c, "$:_-"); });
}

bool is_valid_device_id(std::string_view id) noexcept {
  return all_of_bounded(id, max_device_id_length,
                        [](char c) { return is_ascii_alnum(c) || is_in(c, "-:.+%_#*?!(),=@;$'"); });
}

bool is_valid_method_name(std::string_view name) noexcept { return is_valid_azure_name(name); }

bool is_valid_property_name(std::string_view name) noexcept { return is_valid_azure_name(name); }

}  // namespace twinfleet::twin
