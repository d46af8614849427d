// twinfleet: the composition root. Each command family registers itself; main only parses.
#include "commands.hpp"

#include <twinfleet/version.hpp>

#include <CLI/CLI.hpp>

#include <cstdio>
#include <exception>

int main(int argc, char** argv) {
  CLI::App app{
      "twinfleet: a fleet of virtual devices for Azure IoT Hub device twins and AWS IoT device "
      "shadows, with a local hub that emulates both."};
  app.set_version_flag("--version", std::string("twinfleet ") + twinfleet::version_string);
  app.require_subcommand(0, 1);

  twinfleet::app::add_hub_command(app);
  twinfleet::app::add_auth_commands(app);
  twinfleet::app::add_run_command(app);
  twinfleet::app::add_report_command(app);
  twinfleet::app::add_validate_command(app);
  twinfleet::app::add_profiles_command(app);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (app.get_subcommands().empty()) {
    std::fputs(app.help().c_str(), stdout);
  }
  return 0;
}
