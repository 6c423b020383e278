// Subcommands of the single `presd` binary, each group in its own file.
#pragma once

namespace CLI { class App; }

namespace presd::app {

void add_serve_command(CLI::App& root);  // serve.cpp
void add_token_commands(CLI::App& root);  // cmd_token.cpp: keygen, token sign|verify|issue
void add_admin_commands(CLI::App& root);  // cmd_admin.cpp: tenant, keys, context

}  // namespace presd::app
