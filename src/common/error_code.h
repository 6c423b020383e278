// Stable error codes. Their string names are part of the wire protocol (HTTP bodies, WebSocket
// error acks, logs): never rename one, only add. Every code is listed in docs/errors.md.
#pragma once

#include <cstdint>
#include <string_view>

namespace presd {

enum class ErrorCode : std::uint8_t {
  // Request framing.
  bad_request,         // malformed JSON or missing/invalid field
  payload_too_large,   // body or frame over its size limit
  unknown_command,     // /ws/bus cmd not recognised
  not_found,           // HTTP route or object does not exist
  method_not_allowed,  // HTTP method not allowed on the route
  header_too_large,      // HTTP request header over its limit
  unsupported_encoding,  // HTTP body with a Content-Encoding (or Transfer-Encoding) other than identity/chunked
  request_timeout,       // HTTP request (header + body) not complete within the read timeout
  // Authentication (access tokens, admin token).
  auth_required,  // no credentials presented
  auth_invalid,   // credentials malformed, badly signed or expired
  // PRES token syntax.
  token_too_large,        // compact JWT longer than the limit
  token_malformed,        // not exactly three segments
  token_bad_base64,       // a segment is not strict unpadded base64url
  token_bad_header,       // alg is not ES384, or members other than alg/typ:"JWT"
  token_bad_json,         // payload is not a JSON object
  token_duplicate_claim,  // a claim name appears twice
  token_missing_claim,    // iss, k, t, sub or iat absent
  token_bad_claim,        // a claim has the wrong type or format
  token_forbidden_claim,  // `a` (attachments) or another claim PRES forbids
  token_not_pres,         // t does not start with "PRES:"
  token_bad_subtype,      // subtype empty, too long or outside [A-Za-z0-9_-]
  // PRES token semantics.
  token_expired,        // iat + ttl (or exp) is in the past
  token_not_yet_valid,  // iat further in the future than the allowed skew
  token_duplicate,      // the same token was already accepted within its TTL
  token_unknown_key,    // no public key for (iss, k)
  token_bad_signature,  // ES384 signature does not verify
  // Membership and access.
  context_unknown,       // sub names no context this instance knows
  access_denied,         // the user may not do this in this context
  audience_no_access,    // aud names a user who has no access to the context
  issuer_not_hosted,     // server-side signing for an id_tag this instance does not host
  relay_required,        // a peer sent a PRES for a context owned elsewhere without the owner's relay proof
  relay_invalid,         // the owner's relay proof is malformed, stale, for another token, or badly signed
  // Cluster bus (between presd nodes; never sent to clients, logged and counted).
  bus_bad_message,  // a bus message is malformed, of an unknown version or from an invalid node id
  bus_overflow,     // the hub fell too far behind the bus: the message was dropped (slow consumer)
  // Limits.
  rate_limited,           // a rate limit refused the request; retryAfter says when to retry
  too_many_subscriptions, // per-connection subscription cap reached
  too_many_connections,   // per-IP connection cap reached
  // Store and server.
  conflict,     // object already exists
  unavailable,  // a dependency (store, key server) is not available now
  internal,     // a bug: logged with detail, reported without
};

// The stable wire name, e.g. "token_bad_signature".
std::string_view to_string(ErrorCode code);
// HTTP status that best matches the code (400, 401, 403, 404, 408, 409, 413, 415, 429, 431, 500, 503).
int http_status(ErrorCode code);
// One-line human description (used by docs and by `presd errors`).
std::string_view describe(ErrorCode code);
// Every code, in declaration order (for docs and tests).
inline constexpr int kErrorCodeCount = static_cast<int>(ErrorCode::internal) + 1;

}  // namespace presd
