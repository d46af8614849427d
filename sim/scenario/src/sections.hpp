// Readers for profile sections shared by the profile loader and the scenario loader (a fleet
// entry's `overrides` reuse the quirks and lifecycle readers over the profile's values).
#pragma once

#include <twinfleet/config/reader.hpp>
#include <twinfleet/device/profile.hpp>

#include <optional>

namespace twinfleet::scenario::detail {

// A duration or {uniform: [a, b]} / {normal: {mean, stddev}} / {exponential: mean}.
std::optional<device::duration_distribution> read_distribution(const config::node& n);

// Reads `quirks:` over `base` (keys absent keep base's values).
device::quirk_set read_quirks(const config::node& n, device::quirk_set base);
// Reads `lifecycle:` over `base`.
device::lifecycle_spec read_lifecycle(const config::node& n, device::lifecycle_spec base);

// A property, command or field name: ASCII letters, digits, '_' and '-', starting with a
// letter or '_', at most 64 characters (fits Azure twin keys, AWS shadow keys, PnP names).
bool check_name(const config::node& at, const std::string& name, const char* what);

}  // namespace twinfleet::scenario::detail
