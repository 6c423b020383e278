#include "common/error_code.h"

namespace presd {
namespace {

struct Info {
  std::string_view name;
  int status;
  std::string_view text;
};

constexpr Info kInfo[kErrorCodeCount] = {
    {"bad_request", 400, "malformed JSON, or a missing or invalid field"},
    {"payload_too_large", 413, "body or frame larger than its limit"},
    {"unknown_command", 400, "the /ws/bus command is not recognised"},
    {"not_found", 404, "no such route or object"},
    {"method_not_allowed", 405, "HTTP method not allowed on this route"},
    {"header_too_large", 431, "HTTP request header larger than its limit"},
    {"unsupported_encoding", 415, "HTTP body with a Content-Encoding or Transfer-Encoding presd does not accept"},
    {"request_timeout", 408, "HTTP request not complete within the read timeout"},
    {"auth_required", 401, "no credentials presented"},
    {"auth_invalid", 401, "credentials malformed, badly signed or expired"},
    {"token_too_large", 413, "compact JWT longer than the limit"},
    {"token_malformed", 400, "token is not exactly three dot-separated segments"},
    {"token_bad_base64", 400, "a segment is not strict unpadded base64url"},
    {"token_bad_header", 400, "header alg is not ES384, or it has members other than alg and typ \"JWT\""},
    {"token_bad_json", 400, "payload is not a JSON object"},
    {"token_duplicate_claim", 400, "a claim name appears more than once"},
    {"token_missing_claim", 400, "a required claim (iss, k, t, sub, iat) is absent"},
    {"token_bad_claim", 400, "a claim has the wrong type or format"},
    {"token_forbidden_claim", 400, "a claim PRES forbids (a) is present"},
    {"token_not_pres", 400, "t does not start with PRES:"},
    {"token_bad_subtype", 400, "subtype empty, too long or outside [A-Za-z0-9_-]"},
    {"token_expired", 400, "token is past iat + TTL (or its exp)"},
    {"token_not_yet_valid", 400, "iat is further in the future than the allowed clock skew"},
    {"token_duplicate", 409, "this token was already accepted"},
    {"token_unknown_key", 401, "no public key known for (iss, k)"},
    {"token_bad_signature", 401, "ES384 signature does not verify"},
    {"context_unknown", 404, "sub names no context known here"},
    {"access_denied", 403, "the user may not do this in this context"},
    {"audience_no_access", 403, "aud names a user without access to the context"},
    {"issuer_not_hosted", 403, "this instance does not host the id_tag"},
    {"relay_required", 403, "the context is owned by another instance: only its owner's relay is accepted"},
    {"relay_invalid", 401, "the owner's relay proof is malformed, stale, for another token or badly signed"},
    {"bus_bad_message", 400, "a cluster bus message is malformed, of an unknown version or from an invalid node id"},
    {"bus_overflow", 503, "a node fell too far behind the cluster bus: the message was dropped"},
    {"rate_limited", 429, "a rate limit refused the request; retry after retryAfter ms"},
    {"too_many_subscriptions", 429, "the connection's subscription limit is reached"},
    {"too_many_connections", 429, "this IP has as many open connections as it may"},
    {"conflict", 409, "the object already exists"},
    {"unavailable", 503, "a dependency is not available now"},
    {"internal", 500, "internal error (logged)"},
};

}  // namespace

std::string_view to_string(ErrorCode code) { return kInfo[static_cast<int>(code)].name; }
int http_status(ErrorCode code) { return kInfo[static_cast<int>(code)].status; }
std::string_view describe(ErrorCode code) { return kInfo[static_cast<int>(code)].text; }

}  // namespace presd
