// Client access tokens: HS256 JWTs {iss: tenant id_tag, sub: user id_tag, exp} signed with a
// shared secret, the reference server's form, so presd can share a secret with an existing node.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.h"

namespace presd {

struct AccessClaims {
  std::string iss;  // tenant the client connected to
  std::string sub;  // the user; equals iss when the token has no sub
  std::int64_t exp = 0;  // seconds
};

std::string issue_access_token(const AccessClaims& claims, std::string_view secret);

// Only {"alg":"HS256"} headers are accepted (typ optional); the MAC is compared in constant
// time; exp is required and must be in the future; iss (and sub if present) must be canonical
// id_tags; other claims are ignored. Every failure is auth_invalid with a reason.
Result<AccessClaims> verify_access_token(std::string_view token, std::string_view secret,
                                         std::int64_t now_s);

}  // namespace presd
