#include <twinfleet/device/profile.hpp>

#include <algorithm>

namespace twinfleet::device {

const char* to_string(value_type t) noexcept {
  switch (t) {
    case value_type::boolean:
      return "boolean";
    case value_type::integer:
      return "integer";
    case value_type::number:
      return "number";
    case value_type::string:
      return "string";
    case value_type::object:
      return "object";
  }
  return "?";
}

bool quirk_set::any() const noexcept { return *this != quirk_set{}; }

namespace {
template <class T>
const T* find_named(const std::vector<T>& items, std::string_view name) noexcept {
  const auto it = std::find_if(items.begin(), items.end(), [&](const T& i) { return i.name == name; });
  return it == items.end() ? nullptr : &*it;
}
}  // namespace

const writable_property* profile::find_desired(std::string_view n) const noexcept { return find_named(desired, n); }
const reported_property* profile::find_reported(std::string_view n) const noexcept { return find_named(reported, n); }
const command* profile::find_command(std::string_view n) const noexcept { return find_named(commands, n); }
const telemetry_message* profile::find_telemetry(std::string_view n) const noexcept { return find_named(telemetry, n); }

std::string profile::device_id(std::uint64_t index) const {
  template_context ctx;
  ctx.index = index;
  ctx.profile = name;
  return identity.id.expand(ctx);
}

boost::json::object profile::initial_desired() const {
  boost::json::object o;
  for (const auto& p : desired) {
    if (!p.initial.is_null()) o[p.name] = p.initial;
  }
  return o;
}

}  // namespace twinfleet::device
