// The PRES action token (PROTOCOL.md section 1): strict parsing, freshness, ES384 signing and
// verification. Parsing does no crypto so every cheap rejection happens before verify().
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"
#include "token/es384.h"

namespace presd {

struct TokenLimits {
  std::size_t max_token_bytes = 4096;
  std::size_t max_content_bytes = 2048;  // serialized `c`
  std::size_t max_subtype_bytes = 32;
  std::size_t max_key_id_bytes = 64;
};

struct Freshness {
  std::int64_t ttl_s = 30;       // presence is stale at iat + ttl
  std::int64_t max_skew_s = 5;   // how far iat may lie in the future
};

struct PresClaims {
  std::string iss;
  std::string k;
  std::string subtype;  // "TYPING" for t = "PRES:TYPING"
  std::string sub;
  std::optional<std::string> aud;
  std::optional<std::string> content_json;  // `c`, a JSON object, re-serialized compactly
  std::int64_t iat = 0;
  std::optional<std::int64_t> exp;

  std::string type() const { return "PRES:" + subtype; }
};

struct PresToken {
  PresClaims claims;
  std::string compact;             // the token as received
  std::size_t signing_input_len = 0;  // compact[0, len) is "header.payload"
  std::string signature;           // raw r||s, 96 bytes

  std::string_view signing_input() const { return std::string_view(compact).substr(0, signing_input_len); }
};

// Syntax and claim checks only (no signature, no clock). Error codes: token_too_large,
// token_malformed, token_bad_base64, token_bad_header, token_bad_json, token_duplicate_claim,
// token_missing_claim, token_bad_claim, token_forbidden_claim, token_not_pres, token_bad_subtype.
Result<PresToken> parse_pres_token(std::string_view compact, const TokenLimits& limits = {});
// The same into a PresToken the caller reuses (its strings keep their capacity: no allocation
// per token), without the copy of the text (`compact` is left empty): for the hub's admission,
// which refuses most tokens it parses under load and copies only those it keeps. On an error,
// `token` holds no meaningful value.
Status parse_pres_token_into(std::string_view compact, const TokenLimits& limits, PresToken& token);

// The claim rules parse_pres_token applies (iss/aud canonical id_tags, k, subtype charset and
// length, sub a valid context id, c a JSON object within max_content_bytes,
// 0 <= iat <= kMaxUnixSeconds so time arithmetic cannot overflow, exp >= iat)
// for claims built in memory, e.g. before the server signs for a user.
Status validate_pres_claims(const PresClaims& claims, const TokenLimits& limits = {});

// token_expired when now >= expires_at_ms(); token_not_yet_valid when iat > now + max_skew.
Status check_freshness(const PresClaims& claims, std::int64_t now_ms, const Freshness& f = {});

// min(iat + ttl, exp) in milliseconds.
std::int64_t expires_at_ms(const PresClaims& claims, const Freshness& f = {});

// token_bad_signature when the signature does not verify under key.
Status verify_pres_signature(const PresToken& token, const Es384PublicKey& key);

// Serializes claims in the reference order (iss, k, t, c, aud, sub, iat, exp), signs with the
// fixed ES384 header. The caller guarantees the claims are valid.
std::string sign_pres_token(const PresClaims& claims, const Es384PrivateKey& key);

}  // namespace presd
