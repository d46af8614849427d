// Sub-command registration: each family of commands adds itself to the CLI11 app.
#pragma once

#include <CLI/CLI.hpp>

namespace twinfleet::app {

// `twinfleet sas …` and `twinfleet certs …`: SAS tokens and a development CA.
void add_auth_commands(CLI::App& app);

// `twinfleet hub …`: the local hub in this process.
void add_hub_command(CLI::App& app);

// `twinfleet validate FILE…`: check device profiles and scenarios (exit 2 on any error).
void add_validate_command(CLI::App& app);

// `twinfleet profiles`: the device profiles a scenario can name.
void add_profiles_command(CLI::App& app);

// `twinfleet run SCENARIO`: the fleet, the back end, progress and a summary.
void add_run_command(CLI::App& app);

// `twinfleet report merge|html …`: reports rebuilt from summary.json files (shard merge).
void add_report_command(CLI::App& app);

}  // namespace twinfleet::app
