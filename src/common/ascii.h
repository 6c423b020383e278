// ASCII case folding for protocol text (host names, HTTP field names): locale-free, only A-Z.
#pragma once

#include <string>
#include <string_view>

namespace presd {

inline char ascii_lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

inline void ascii_lowercase_in_place(std::string& s) {
  for (char& c : s) c = ascii_lower(c);
}

inline std::string ascii_lowercase(std::string_view s) {
  std::string out(s);
  ascii_lowercase_in_place(out);
  return out;
}

// `lowercase` must be lowercase already (a literal): no copy, no fold of its side.
inline bool ascii_iequals(std::string_view s, std::string_view lowercase) {
  if (s.size() != lowercase.size()) return false;
  for (std::size_t i = 0; i < s.size(); ++i)
    if (ascii_lower(s[i]) != lowercase[i]) return false;
  return true;
}

}  // namespace presd
