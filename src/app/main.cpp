// presd: signed, federated, ephemeral presence. One binary, one subcommand per job.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <string>
#include <vector>
#include <exception>

#include "app/commands.h"
#include "app/env_options.h"

extern char** environ;

int main(int argc, char** argv) {
  // A file size limit (RLIMIT_FSIZE, e.g. systemd LimitFSIZE=) would otherwise kill the process
  // on the write that crosses it; ignored, the write fails and SQLite reports it (`unavailable`).
  std::signal(SIGXFSZ, SIG_IGN);
  CLI::App app{"presd: a server for signed, ephemeral presence (Cloudillo PRES tokens)"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "presd 0.1.0");
  app.set_config("--config", "", "TOML config file; a [serve] section sets `presd serve` options (docs/configuration.md)");
  presd::app::add_serve_command(app);
  presd::app::add_token_commands(app);
  presd::app::add_admin_commands(app);
  try {
    std::vector<std::string> args(argv + 1, argv + argc);
    args = presd::app::with_env_options(std::move(args), *app.get_subcommand("serve"), environ);
    std::reverse(args.begin(), args.end());  // CLI11 parses a vector from the back
    app.parse(args);
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
