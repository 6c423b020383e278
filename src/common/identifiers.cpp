#include "common/identifiers.h"

namespace presd {
namespace {

bool is_ldh_lower(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'; }

bool is_b64url(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_';
}

bool is_opaque_id_char(char c) {
  return is_b64url(c) || c == '.' || c == '~' || c == '@' || c == ':';
}

}  // namespace

bool is_canonical_id_tag(std::string_view s) {
  if (s.size() < 5 || s.size() > 253) return false;
  std::size_t labels = 0;
  std::size_t start = 0;
  while (start <= s.size()) {
    std::size_t dot = s.find('.', start);
    if (dot == std::string_view::npos) dot = s.size();
    std::string_view label = s.substr(start, dot - start);
    if (label.empty() || label.size() > 63) return false;
    if (label.front() == '-' || label.back() == '-') return false;
    for (char c : label)
      if (!is_ldh_lower(c)) return false;
    ++labels;
    start = dot + 1;
  }
  // An all-digit last label would make "127.0.0.1" an id_tag, and cl-o.<it> an IP literal.
  const std::string_view tld = s.substr(s.rfind('.') + 1);
  bool has_letter = false;
  for (char c : tld) has_letter = has_letter || (c >= 'a' && c <= 'z');
  return labels >= 2 && has_letter;
}

bool is_valid_context_id(std::string_view s) {
  if (s.empty() || s.size() > kMaxContextIdBytes) return false;
  if (s.starts_with("a1~")) {
    std::string_view rest = s.substr(3);
    if (rest.size() != 43) return false;
    for (char c : rest)
      if (!is_b64url(c)) return false;
    return true;
  }
  if (s.front() == '@') return is_canonical_id_tag(s.substr(1));
  for (char c : s)
    if (!is_opaque_id_char(c)) return false;
  return true;
}

std::string_view profile_context_owner(std::string_view context_id) {
  if (context_id.size() < 2 || context_id.front() != '@') return {};
  std::string_view tag = context_id.substr(1);
  return is_canonical_id_tag(tag) ? tag : std::string_view{};
}

}  // namespace presd
