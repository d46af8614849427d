// Text templates of profiles and scenarios: device id patterns (`bulb-{index:05}`), Azure tag
// and AWS attribute values (`{choice:lab,plant,office}`), telemetry topics
// (`dt/{profile}/{id}/telemetry`) and command response payloads (`{request.times}`).
//
// Placeholders:
//   {index}        the device's index in its fleet entry (0, 1, 2 …)
//   {index:05}     the same, zero-padded to 5 digits (any width 1–20)
//   {id}           the device id (not inside an id pattern)
//   {profile}      the profile name
//   {choice:a,b,c} one of the listed words, the same for a device on every run with one seed
//   {message}      the telemetry message name (topics only)
//   {request}, {request.key}  the command's request payload or one of its members (responses only)
// `{{` and `}}` stand for literal braces. Pure; safe to share between threads once parsed.
#pragma once

#include <boost/json/value.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace twinfleet::device {

// Which placeholders a template may use (a bit set of `placeholder`).
enum class placeholder : unsigned {
  index = 1,
  id = 2,
  profile = 4,
  choice = 8,
  message = 16,
  request = 32,
};
[[nodiscard]] constexpr unsigned operator|(placeholder a, placeholder b) noexcept {
  return static_cast<unsigned>(a) | static_cast<unsigned>(b);
}
[[nodiscard]] constexpr unsigned operator|(unsigned a, placeholder b) noexcept { return a | static_cast<unsigned>(b); }

// The sets each kind of template accepts.
inline constexpr unsigned id_placeholders = placeholder::index | placeholder::profile;
inline constexpr unsigned label_placeholders = placeholder::index | placeholder::id | placeholder::profile | placeholder::choice;
inline constexpr unsigned topic_placeholders = placeholder::index | placeholder::id | placeholder::profile | placeholder::message;
inline constexpr unsigned response_placeholders = placeholder::index | placeholder::id | placeholder::profile | placeholder::request;

// What a template is expanded for.
struct template_context {
  std::uint64_t index = 0;
  std::string_view id;
  std::string_view profile;
  std::string_view message;
  std::uint64_t seed = 0;  // the device's seed: picks {choice:…}
  const boost::json::value* request = nullptr;
};

class string_template {
 public:
  string_template() = default;

  // Parses `text`; nullopt with `error` set ("unknown placeholder {idx}; …") when malformed or
  // when it uses a placeholder outside `allowed`.
  static std::optional<string_template> parse(std::string_view text, unsigned allowed, std::string& error);

  [[nodiscard]] std::string expand(const template_context& ctx) const;
  // Appends the expansion to `out` (no allocation when `out` has room: the engine's hot path).
  void expand_to(std::string& out, const template_context& ctx) const;
  [[nodiscard]] const std::string& text() const noexcept { return text_; }
  [[nodiscard]] bool is_literal() const noexcept { return parts_.size() <= 1 && (parts_.empty() || parts_[0].kind == part_kind::literal); }
  [[nodiscard]] bool uses(placeholder p) const noexcept;

 private:
  enum class part_kind : std::uint8_t { literal, index, id, profile, choice, message, request };
  struct part {
    part_kind kind = part_kind::literal;
    int width = 0;                    // index: zero-padded width
    std::string text;                 // literal text; request: the member name ("" = whole)
    std::vector<std::string> choices; // choice
  };
  std::string text_;
  std::vector<part> parts_;
};

// A device id pattern: a string_template with id_placeholders that must contain {index}
// (otherwise every device of the entry would share one id).
[[nodiscard]] std::optional<string_template> parse_id_pattern(std::string_view text, std::string& error);

// A JSON value whose strings are templates: a string that is exactly "{request}" or
// "{request.key}" becomes that JSON value (a number stays a number); other strings expand as
// text. Objects and arrays are walked. Errors name the member ("response.text: …").
[[nodiscard]] bool check_json_template(const boost::json::value& tmpl, unsigned allowed, std::string& error);
[[nodiscard]] boost::json::value render_json_template(const boost::json::value& tmpl, const template_context& ctx);

}  // namespace twinfleet::device
