// presd: signed, federated, ephemeral presence. One binary, one subcommand per job.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <exception>

#include "app/commands.h"

int main(int argc, char** argv) {
  CLI::App app{"presd: a server for signed, ephemeral presence (Cloudillo PRES tokens)"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "presd 0.1.0");
  presd::app::add_serve_command(app);
  presd::app::add_token_commands(app);
  presd::app::add_admin_commands(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::RuntimeError& e) {
    // Our commands fail with "<error_code>: <message>"; CLI11's exit() would print nothing.
    if (*e.what()) std::fprintf(stderr, "error: %s\n", e.what());
    return e.get_exit_code();
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
