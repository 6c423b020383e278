// Syntax of the identifiers that cross the wire. Cheap checks, run before any crypto.
#pragma once

#include <cstddef>
#include <string_view>

namespace presd {

inline constexpr std::size_t kMaxContextIdBytes = 256;

// Canonical id_tag: lowercase LDH domain, at least two labels, labels 1..63 chars not starting or
// ending with '-', total 5..253 chars, a last label with a letter (never an IPv4 literal).
// E.g. "alice.example.net".
bool is_canonical_id_tag(std::string_view s);

// A PRES `sub`: "a1~" + 43 base64url chars (action id), "@" + canonical id_tag (profile), or
// another opaque id of 1..256 chars from [A-Za-z0-9._~@:-].
bool is_valid_context_id(std::string_view s);

// For "@alice.example.net" returns "alice.example.net"; empty for every other context id.
std::string_view profile_context_owner(std::string_view context_id);

}  // namespace presd
