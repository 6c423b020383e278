#include "app/env_options.h"

#include <CLI/CLI.hpp>

#include <cctype>
#include <cstring>

namespace presd::app {

std::string env_name_for(const std::string& long_option) {
  std::string env = "PRESD_";
  for (char c : long_option) env += c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return env;
}

std::vector<std::string> with_env_options(std::vector<std::string> args, const CLI::App& sub, char** environ_ptr) {
  if (args.empty() || args.front() != sub.get_name()) return args;
  for (const CLI::Option* opt : sub.get_options()) {
    if (opt->get_lnames().empty()) continue;
    const std::string name = opt->get_lnames().front();
    if (name == "help") continue;
    const std::string flag = "--" + name;
    bool given = false;
    for (const std::string& a : args) given = given || a == flag || a.rfind(flag + "=", 0) == 0;
    if (given) continue;
    const std::string key = env_name_for(name) + "=";
    for (char** e = environ_ptr; e && *e; ++e) {
      if (std::strncmp(*e, key.c_str(), key.size()) != 0) continue;
      const std::string value = *e + key.size();
      std::size_t start = 0;
      while (start <= value.size()) {
        std::size_t comma = opt->get_expected_max() > 1 ? value.find(',', start) : std::string::npos;
        if (comma == std::string::npos) comma = value.size();
        args.push_back(flag);
        args.push_back(value.substr(start, comma - start));
        start = comma + 1;
      }
    }
  }
  return args;
}

}  // namespace presd::app
