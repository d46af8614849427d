// Loading device profiles (device-profiles/*.yaml; docs/PROFILES.md) into device::profile.
//
// Every problem in the file is reported at once into `diags` as
// "file:line:column: key.path: message"; the functions return nullptr when there was any.
// Not thread-safe per call; calls on different diagnostics may run concurrently.
#pragma once

#include <twinfleet/config/diagnostics.hpp>
#include <twinfleet/device/profile.hpp>

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

namespace twinfleet::scenario {

// Loads `file`. The profile's name is its `name:` key, or the file name without ".yaml".
// `display_name` is how diagnostics name the file (default: the path as given).
[[nodiscard]] std::shared_ptr<const device::profile> load_profile(const std::filesystem::path& file,
                                                                  config::diagnostics& diags,
                                                                  std::optional<std::string> display_name = std::nullopt);

// Loads a profile from `text`, as if it were the file `display_name`.
[[nodiscard]] std::shared_ptr<const device::profile> load_profile_string(std::string_view text,
                                                                         const std::string& display_name,
                                                                         config::diagnostics& diags);

}  // namespace twinfleet::scenario
