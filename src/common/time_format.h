// ISO-8601 UTC timestamps as the reference emits them: "2026-11-24T10:00:00Z".
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace presd {

// The last second of year 9999. Times read from untrusted input (iat) are bounded by it, so
// converting them to milliseconds and adding TTLs cannot overflow std::int64_t.
inline constexpr std::int64_t kMaxUnixSeconds = 253'402'300'799;

std::string iso8601_utc(std::int64_t unix_s);
// Accepts "YYYY-MM-DDTHH:MM:SS[.fff]Z" (fraction ignored). nullopt on anything else.
std::optional<std::int64_t> parse_iso8601_utc(std::string_view s);

}  // namespace presd
