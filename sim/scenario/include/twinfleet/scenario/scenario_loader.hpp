// Loading scenarios (scenarios/*.yaml; docs/SCENARIOS.md) and telling file kinds apart.
//
// Every problem in the scenario and in the profiles it uses is reported at once into `diags`
// ("file:line:column: key.path: message"); load_scenario returns nullopt when there was any.
#pragma once

#include <twinfleet/config/diagnostics.hpp>
#include <twinfleet/scenario/scenario.hpp>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace twinfleet::scenario {

struct load_options {
  // Where `profile: NAME` is looked for, in order, as NAME.yaml. Empty: default_profile_dirs().
  std::vector<std::filesystem::path> profile_dirs;
  // `twinfleet run --set key.path=value`: applied to the scenario's YAML before it is read
  // (config::document::set), so the values are checked like the file's own.
  std::vector<std::pair<std::string, std::string>> overrides;
};

// The scenario file's ../device-profiles and ./device-profiles, $TWINFLEET_PROFILES (':'
// separated), ./device-profiles of the working directory, and the installed share folder.
[[nodiscard]] std::vector<std::filesystem::path> default_profile_dirs(const std::filesystem::path& scenario_file);

[[nodiscard]] std::optional<scenario> load_scenario(const std::filesystem::path& file, config::diagnostics& diags,
                                                    const load_options& options = {});
// From text, as if it were the file `display_name` (relative profile paths resolve against
// the display name's folder).
[[nodiscard]] std::optional<scenario> load_scenario_string(std::string_view text, const std::string& display_name,
                                                           config::diagnostics& diags, const load_options& options = {});

enum class file_kind { profile, scenario, unknown };
// A scenario has a top-level `fleet`, `phases` or `target`; a profile has `identity`,
// `reported`, `desired`, `commands` or `telemetry`. Reads the file (unknown when it cannot be
// read or parsed; the loaders then say why).
[[nodiscard]] file_kind detect_file_kind(const std::filesystem::path& file);

}  // namespace twinfleet::scenario
