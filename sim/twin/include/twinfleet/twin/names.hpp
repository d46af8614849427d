// Name rules for the identifiers that appear in topics, URLs and documents of both platforms.
// Pure functions over bytes: no allocation, no locale, safe from any thread.
#pragma once

#include <cstddef>
#include <string_view>

namespace twinfleet::twin {

// Length limits, in bytes (every valid name is ASCII, so bytes == characters).
inline constexpr std::size_t max_thing_name_length = 128;   // AWS thingName (PROTOCOLS.md B1, B7)
inline constexpr std::size_t max_shadow_name_length = 64;   // AWS shadowName (B1, B7)
inline constexpr std::size_t max_device_id_length = 128;    // Azure deviceId (A1)

// AWS thingName: 1–128 characters of `[a-zA-Z0-9:_-]`.
[[nodiscard]] bool is_valid_thing_name(std::string_view name) noexcept;

// AWS named-shadow name: 1–64 characters of `[$a-zA-Z0-9:_-]`. The classic shadow has no name;
// the empty string is not a valid shadow name (aws_shadow uses "" to mean "classic").
[[nodiscard]] bool is_valid_shadow_name(std::string_view name) noexcept;

// Azure deviceId: 1–128 characters, case-sensitive, ASCII letters and digits plus
// `- : . + % _ # * ? ! ( ) , = @ ; $ '`.
[[nodiscard]] bool is_valid_device_id(std::string_view id) noexcept;

// Azure direct-method name (PROTOCOLS.md A8): at least one character, printable US-ASCII
// (0x21–0x7E) except `$ ( ) < > @ , ; : \ " / [ ] ? = { }`; space and tab are excluded too.
// No maximum length is documented, so none is enforced.
[[nodiscard]] bool is_valid_method_name(std::string_view name) noexcept;

// Azure message (application) property name, A8: the same character rule as method names.
// Not the rule for twin document keys (A3: UTF-8, no `.`, `$`, space or control characters),
// which the twin rules check themselves.
[[nodiscard]] bool is_valid_property_name(std::string_view name) noexcept;

}  // namespace twinfleet::twin
