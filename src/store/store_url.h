// Which store `--store` names: absent = the SQLite file in the data dir, `sqlite:PATH` another
// SQLite file, `postgres://...` / `postgresql://...` a PostgreSQL database (libpq URL).
#pragma once

#include <string>
#include <string_view>

#include "common/result.h"

namespace presd {

enum class StoreBackend { sqlite, postgres };

struct StoreLocation {
  StoreBackend backend = StoreBackend::sqlite;
  std::string target;  // the SQLite path, or the libpq URL as given (with its password)
};

// bad_request for an unknown scheme or an empty path.
Result<StoreLocation> parse_store_url(std::string_view url, std::string_view default_sqlite_path);

// The URL with its password (user:PASSWORD@ and ?password=...) replaced by "***": the only
// form that may be logged or put into an error message.
std::string redact_store_url(std::string_view url);

}  // namespace presd
