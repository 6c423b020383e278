// Private to src/transport: URL helpers shared by http_types.cpp and server.cpp.
#pragma once

#include <string>
#include <string_view>

namespace presd::transport::detail {

// Decodes %XX escapes; a malformed escape is kept verbatim. With plus_as_space (query strings,
// application/x-www-form-urlencoded) '+' becomes ' '; paths keep '+'.
std::string percent_decode(std::string_view in, bool plus_as_space);

}  // namespace presd::transport::detail
