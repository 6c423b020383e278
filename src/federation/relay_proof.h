// The owner's relay proof (presd's answer to PROTOCOL.md section 3, "beyond"): when the owner of
// a context relays a member's PRES to the home instances of the other members, it attaches a
// small ES384 JWS, signed with the owner's own key, that binds the exact token (SHA-256) to the
// context. A receiving instance accepts a peer's PRES for a context it does not own only with a
// valid proof from that context's owner, so a non-owner cannot inject PRES, and the inner token
// is still verified with its issuer's key and the issuer's membership (docs/federation.md).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.h"
#include "token/es384.h"

namespace presd {

inline constexpr std::string_view kRelayType = "PRES-RELAY";  // never parses as a PRES token

struct RelayClaims {
  std::string owner;       // iss: the context's owner id_tag
  std::string key_id;      // k: the owner's key id
  std::string context;     // sub
  std::string token_hash;  // h: base64url(SHA-256(compact inner token))
  std::int64_t iat = 0;
};

struct RelayProof {
  RelayClaims claims;
  std::string compact;
  std::size_t signing_input_len = 0;
  std::string signature;  // raw r||s
  std::string_view signing_input() const { return std::string_view(compact).substr(0, signing_input_len); }
};

std::string token_hash(std::string_view compact_token);
std::string sign_relay_proof(const RelayClaims& claims, const Es384PrivateKey& key);
// Syntax only (no clock, no signature). Every failure is relay_invalid.
Result<RelayProof> parse_relay_proof(std::string_view compact);

}  // namespace presd
