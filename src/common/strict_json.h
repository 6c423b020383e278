// JSON parsing for untrusted input. Boost.JSON keeps the last of duplicate keys silently; a
// token whose claims can be read two ways is an attack vector, so duplicates are rejected at any
// depth, and nesting is bounded.
#pragma once

#include <boost/json/value.hpp>

#include <cstddef>
#include <string>
#include <string_view>

namespace presd {

enum class JsonProblem { none, syntax, duplicate_key, too_deep };

struct StrictJson {
  boost::json::value value;
  JsonProblem problem = JsonProblem::none;
  std::string detail;  // the duplicated key, or the parser's message

  bool ok() const { return problem == JsonProblem::none; }
};

StrictJson parse_strict_json(std::string_view text, std::size_t max_depth = 16);

}  // namespace presd
