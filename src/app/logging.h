// Log set-up for `presd serve`: human-readable lines (default) or JSON lines for collectors.
#pragma once

#include <string>

namespace presd::app {

// level: trace|debug|info|warn|error; format: text|json. Throws std::runtime_error otherwise.
// JSON lines look like {"time":"2026-11-24T10:00:00.123Z","level":"info","msg":"..."}.
void configure_logging(const std::string& level, const std::string& format);

}  // namespace presd::app
