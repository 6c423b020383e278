// PRESD_<OPTION> environment variables for `presd serve`, e.g. PRESD_PRES_TTL=10 or
// PRESD_TENANT=alice.test,bob.test. They are turned into command-line options before parsing so
// the precedence is: command line, then environment, then the --config file (CLI11 fills from the
// file only what the command line left unset).
#pragma once

#include <string>
#include <vector>

namespace CLI { class App; }

namespace presd::app {

// "pres-ttl" -> "PRESD_PRES_TTL".
std::string env_name_for(const std::string& long_option);

// args = argv[1..]. For every long option of `sub` that has PRESD_<NAME> set and is absent from
// args, appends "--name" "value" (comma-separated values become repeated options). Only when
// args[0] is the subcommand's name.
std::vector<std::string> with_env_options(std::vector<std::string> args, const CLI::App& sub,
                                          char** environ_ptr);

}  // namespace presd::app
