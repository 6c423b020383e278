#include "token/pres_token.h"

#include <boost/json/serialize.hpp>

#include "common/identifiers.h"
#include "common/strict_json.h"
#include "common/time_format.h"
#include "token/compact_jws.h"
#include "token/base64.h"

namespace presd {
namespace json = boost::json;
namespace {

constexpr std::size_t kMaxHeaderSegment = 256;

Error bad(ErrorCode code, std::string msg) { return Error(code, std::move(msg)); }

bool is_subtype_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

bool is_printable_ascii(std::string_view s) {
  for (char c : s)
    if (c < 0x21 || c > 0x7e) return false;
  return true;
}

// Other implementations may order or space the header differently; what matters is that alg is
// ES384 and nothing else (crit, jwk, jku, kid...) could change how the token is read.
Status check_header(std::string_view segment) {
  if (segment == kEs384JwtHeader) return {};
  if (segment.size() > kMaxHeaderSegment) return bad(ErrorCode::token_bad_header, "header too long");
  auto decoded = b64::decode_url_strict(segment);
  if (!decoded) return bad(ErrorCode::token_bad_base64, "header is not strict base64url");
  StrictJson h = parse_strict_json(*decoded, 2);
  if (!h.ok() || !h.value.is_object()) return bad(ErrorCode::token_bad_header, "header is not a JSON object");
  const json::object& o = h.value.get_object();
  const json::value* alg = o.if_contains("alg");
  if (!alg || !alg->is_string() || alg->get_string() != "ES384")
    return bad(ErrorCode::token_bad_header, "alg must be ES384");
  for (const auto& kv : o) {
    if (kv.key() == "alg") continue;
    if (kv.key() == "typ" && kv.value().is_string() && kv.value().get_string() == "JWT") continue;
    return bad(ErrorCode::token_bad_header, "header member '" + std::string(kv.key()) + "' is not allowed");
  }
  return {};
}

Result<std::string> string_claim(const json::value& v, std::string_view name) {
  if (!v.is_string()) return bad(ErrorCode::token_bad_claim, std::string(name) + " must be a string");
  return std::string(v.get_string());
}

Result<std::int64_t> int_claim(const json::value& v, std::string_view name) {
  if (!v.is_int64()) return bad(ErrorCode::token_bad_claim, std::string(name) + " must be an integer (seconds)");
  return v.get_int64();
}

}  // namespace

Status validate_pres_claims(const PresClaims& c, const TokenLimits& limits) {
  if (!is_canonical_id_tag(c.iss)) return bad(ErrorCode::token_bad_claim, "iss is not a canonical id_tag");
  if (c.k.empty() || c.k.size() > limits.max_key_id_bytes || !is_printable_ascii(c.k))
    return bad(ErrorCode::token_bad_claim, "k must be 1.." + std::to_string(limits.max_key_id_bytes) +
                                               " printable ASCII characters");
  if (c.subtype.empty() || c.subtype.size() > limits.max_subtype_bytes)
    return bad(ErrorCode::token_bad_subtype, "subtype must be 1.." + std::to_string(limits.max_subtype_bytes) + " characters");
  for (char ch : c.subtype)
    if (!is_subtype_char(ch)) return bad(ErrorCode::token_bad_subtype, "subtype allows only A-Z a-z 0-9 _ -");
  if (!is_valid_context_id(c.sub)) return bad(ErrorCode::token_bad_claim, "sub is not a valid context id");
  if (c.aud && !is_canonical_id_tag(*c.aud)) return bad(ErrorCode::token_bad_claim, "aud is not a canonical id_tag");
  if (c.content_json) {
    if (c.content_json->size() > limits.max_content_bytes)
      return bad(ErrorCode::token_bad_claim, "c is larger than " + std::to_string(limits.max_content_bytes) + " bytes");
    StrictJson content = parse_strict_json(*c.content_json);
    if (!content.ok() || !content.value.is_object()) return bad(ErrorCode::token_bad_claim, "c must be a JSON object");
  }
  if (c.iat < 0 || c.iat > kMaxUnixSeconds)
    return bad(ErrorCode::token_bad_claim, "iat must be 0.." + std::to_string(kMaxUnixSeconds) + " (Unix seconds)");
  if (c.exp && *c.exp < c.iat) return bad(ErrorCode::token_bad_claim, "exp is before iat");
  return {};
}

Result<PresToken> parse_pres_token(std::string_view compact, const TokenLimits& limits) {
  if (compact.size() > limits.max_token_bytes)
    return bad(ErrorCode::token_too_large, "token is longer than " + std::to_string(limits.max_token_bytes) + " bytes");
  const auto parts = split_compact_jws(compact);
  if (!parts) return bad(ErrorCode::token_malformed, "a token has exactly three dot-separated segments");

  if (Status s = check_header(parts->header); !s) return s.error();

  auto payload = b64::decode_url_strict(parts->payload);
  if (!payload) return bad(ErrorCode::token_bad_base64, "payload is not strict base64url");
  auto signature = b64::decode_url_strict(parts->signature);
  if (!signature) return bad(ErrorCode::token_bad_base64, "signature is not strict base64url");
  if (signature->size() != kEs384SignatureBytes)
    return bad(ErrorCode::token_malformed, "an ES384 signature is 96 bytes (raw r||s)");

  StrictJson parsed = parse_strict_json(*payload);
  if (parsed.problem == JsonProblem::duplicate_key)
    return bad(ErrorCode::token_duplicate_claim, "duplicate claim '" + parsed.detail + "'");
  if (!parsed.ok() || !parsed.value.is_object())
    return bad(ErrorCode::token_bad_json, "payload is not a JSON object");

  PresToken token;
  PresClaims& c = token.claims;
  bool has_iss = false, has_k = false, has_t = false, has_sub = false, has_iat = false;
  for (const auto& kv : parsed.value.get_object()) {
    const std::string_view name = kv.key();
    const json::value& v = kv.value();
    if (name == "iss") {
      auto s = string_claim(v, name);
      if (!s) return s.error();
      c.iss = std::move(*s);
      has_iss = true;
    } else if (name == "k") {
      auto s = string_claim(v, name);
      if (!s) return s.error();
      c.k = std::move(*s);
      has_k = true;
    } else if (name == "t") {
      auto s = string_claim(v, name);
      if (!s) return s.error();
      if (!s->starts_with("PRES:")) return bad(ErrorCode::token_not_pres, "t must be PRES:<SUBTYPE>");
      c.subtype = s->substr(5);
      has_t = true;
    } else if (name == "sub") {
      auto s = string_claim(v, name);
      if (!s) return s.error();
      c.sub = std::move(*s);
      has_sub = true;
    } else if (name == "aud") {
      auto s = string_claim(v, name);
      if (!s) return s.error();
      c.aud = std::move(*s);
    } else if (name == "c") {
      if (!v.is_object()) return bad(ErrorCode::token_bad_claim, "c must be a JSON object");
      c.content_json = json::serialize(v);
    } else if (name == "iat") {
      auto i = int_claim(v, name);
      if (!i) return i.error();
      c.iat = *i;
      has_iat = true;
    } else if (name == "exp") {
      auto i = int_claim(v, name);
      if (!i) return i.error();
      c.exp = *i;
    } else if (name == "a") {
      return bad(ErrorCode::token_forbidden_claim, "PRES tokens must not carry attachments (a)");
    }
    // Other claims are ignored: the token is forwarded verbatim, never re-signed.
  }
  if (!has_iss) return bad(ErrorCode::token_missing_claim, "iss is required");
  if (!has_k) return bad(ErrorCode::token_missing_claim, "k is required");
  if (!has_t) return bad(ErrorCode::token_missing_claim, "t is required");
  if (!has_sub) return bad(ErrorCode::token_missing_claim, "sub is required for PRES");
  if (!has_iat) return bad(ErrorCode::token_missing_claim, "iat is required");
  if (Status s = validate_pres_claims(c, limits); !s) return s.error();

  token.compact = std::string(compact);
  token.signing_input_len = parts->signing_input.size();
  token.signature = std::move(*signature);
  return token;
}

std::int64_t expires_at_ms(const PresClaims& c, const Freshness& f) {
  std::int64_t end_s = c.iat + f.ttl_s;
  if (c.exp && *c.exp < end_s) end_s = *c.exp;
  return end_s * 1000;
}

Status check_freshness(const PresClaims& c, std::int64_t now_ms, const Freshness& f) {
  if (now_ms >= expires_at_ms(c, f))
    return bad(ErrorCode::token_expired, "token is stale: iat + " + std::to_string(f.ttl_s) + " s (or exp) has passed");
  if (c.iat * 1000 > now_ms + f.max_skew_s * 1000)
    return bad(ErrorCode::token_not_yet_valid, "iat is more than " + std::to_string(f.max_skew_s) + " s in the future");
  return {};
}

Status verify_pres_signature(const PresToken& token, const Es384PublicKey& key) {
  if (!key.verify(token.signing_input(), token.signature))
    return bad(ErrorCode::token_bad_signature, "ES384 signature does not verify under key " + token.claims.k);
  return {};
}

std::string sign_pres_token(const PresClaims& c, const Es384PrivateKey& key) {
  std::string payload = "{\"iss\":" + json::serialize(json::string(c.iss));
  payload += ",\"k\":" + json::serialize(json::string(c.k));
  payload += ",\"t\":" + json::serialize(json::string(c.type()));
  if (c.content_json) payload += ",\"c\":" + *c.content_json;
  if (c.aud) payload += ",\"aud\":" + json::serialize(json::string(*c.aud));
  payload += ",\"sub\":" + json::serialize(json::string(c.sub));
  payload += ",\"iat\":" + std::to_string(c.iat);
  if (c.exp) payload += ",\"exp\":" + std::to_string(*c.exp);
  payload += '}';

  std::string compact(kEs384JwtHeader);
  compact += '.';
  compact += b64::encode_url(payload);
  const std::string signature = key.sign(compact);
  compact += '.';
  compact += b64::encode_url(signature);
  return compact;
}

}  // namespace presd
