#include "token/pres_token.h"

#include <boost/json/serialize.hpp>

#include "common/fast_path.h"
#include "common/identifiers.h"
#include "common/plain_json.h"
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

// Fast path for a decoded header: a flat object of plain strings (common/plain_json.h). False
// when it is anything else; the general path then decides.
bool check_plain_header(std::string_view decoded, Status& verdict) {
  plain_json::Scanner s(decoded);
  bool has_alg = false;
  std::string_view alg, disallowed;
  bool found_disallowed = false;
  const bool plain = s.object([&](std::string_view key) {
    std::string_view v;
    if (!s.string(v)) return false;
    if (key == "alg") {
      has_alg = true;
      alg = v;
    } else if (!(key == "typ" && v == "JWT") && !found_disallowed) {
      found_disallowed = true;
      disallowed = key;
    }
    return true;
  }) && s.at_end();
  if (!plain) return false;
  if (!has_alg || alg != "ES384") {
    verdict = bad(ErrorCode::token_bad_header, "alg must be ES384");
  } else if (found_disallowed) {
    verdict = bad(ErrorCode::token_bad_header, "header member '" + std::string(disallowed) + "' is not allowed");
  } else {
    verdict = {};
  }
  return true;
}

// Other implementations may order or space the header differently; what matters is that alg is
// ES384 and nothing else (crit, jwk, jku, kid...) could change how the token is read.
Status check_header(std::string_view segment) {
  if (segment == kEs384JwtHeader) return {};
  if (segment.size() > kMaxHeaderSegment) return bad(ErrorCode::token_bad_header, "header too long");
  auto decoded = b64::decode_url_strict(segment);
  if (!decoded) return bad(ErrorCode::token_bad_base64, "header is not strict base64url");
  if (Status verdict; fast_path::enabled() && check_plain_header(*decoded, verdict)) return verdict;
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

namespace {

// content_is_object: `c` is known to be a JSON object already (the fast path read it as one),
// so it is not parsed again.
Status validate_claims(const PresClaims& c, const TokenLimits& limits, bool content_is_object) {
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
    if (!content_is_object) {
      StrictJson content = parse_strict_json(*c.content_json);
      if (!content.ok() || !content.value.is_object()) return bad(ErrorCode::token_bad_claim, "c must be a JSON object");
    }
  }
  if (c.iat < 0 || c.iat > kMaxUnixSeconds)
    return bad(ErrorCode::token_bad_claim, "iat must be 0.." + std::to_string(kMaxUnixSeconds) + " (Unix seconds)");
  if (c.exp && *c.exp < c.iat) return bad(ErrorCode::token_bad_claim, "exp is before iat");
  return {};
}

// The claims as the payload states them, before the rules that do not depend on how it was read.
struct ReadClaims {
  PresClaims& c;
  bool has_iss = false, has_k = false, has_t = false, has_sub = false, has_iat = false;
};

// Empties c; the strings keep their capacity, so a token parsed into a reused PresToken costs
// no allocation for its usual claims.
void clear_claims(PresClaims& c) {
  c.iss.clear();
  c.k.clear();
  c.subtype.clear();
  c.sub.clear();
  c.aud.reset();
  c.content_json.reset();
  c.iat = 0;
  c.exp.reset();
}

// The general path: strict JSON (duplicates refused at any depth), claims in document order,
// the first claim of a wrong type refused.
Status read_claims(std::string_view payload, ReadClaims& r) {
  StrictJson parsed = parse_strict_json(payload);
  if (parsed.problem == JsonProblem::duplicate_key)
    return bad(ErrorCode::token_duplicate_claim, "duplicate claim '" + parsed.detail + "'");
  if (!parsed.ok() || !parsed.value.is_object())
    return bad(ErrorCode::token_bad_json, "payload is not a JSON object");

  PresClaims& c = r.c;
  for (const auto& kv : parsed.value.get_object()) {
    const std::string_view name = kv.key();
    const json::value& v = kv.value();
    if (name == "iss") {
      auto s = string_claim(v, name);
      if (!s) return s.error();
      c.iss = std::move(*s);
      r.has_iss = true;
    } else if (name == "k") {
      auto s = string_claim(v, name);
      if (!s) return s.error();
      c.k = std::move(*s);
      r.has_k = true;
    } else if (name == "t") {
      auto s = string_claim(v, name);
      if (!s) return s.error();
      if (!s->starts_with("PRES:")) return bad(ErrorCode::token_not_pres, "t must be PRES:<SUBTYPE>");
      c.subtype = s->substr(5);
      r.has_t = true;
    } else if (name == "sub") {
      auto s = string_claim(v, name);
      if (!s) return s.error();
      c.sub = std::move(*s);
      r.has_sub = true;
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
      r.has_iat = true;
    } else if (name == "exp") {
      auto i = int_claim(v, name);
      if (!i) return i.error();
      c.exp = *i;
    } else if (name == "a") {
      return bad(ErrorCode::token_forbidden_claim, "PRES tokens must not carry attachments (a)");
    }
    // Other claims are ignored: the token is forwarded verbatim, never re-signed.
  }
  return {};
}

// The fast path: a payload in plain JSON (common/plain_json.h) whose claims all have their
// types, read in one pass without a DOM. False whenever it is anything else (a duplicate, an
// escape, a float iat, a wrong type, `a`, `t` not PRES:...): read_claims then decides and words
// the refusal. On true, r holds what read_claims would have read.
bool read_plain_claims(std::string_view payload, ReadClaims& r) {
  plain_json::Scanner s(payload);
  PresClaims& c = r.c;
  const bool plain = s.object([&](std::string_view name) {
    std::string_view v;
    if (name == "iss") {
      if (!s.string(v)) return false;
      c.iss.assign(v);
      return r.has_iss = true;
    }
    if (name == "k") {
      if (!s.string(v)) return false;
      c.k.assign(v);
      return r.has_k = true;
    }
    if (name == "t") {
      if (!s.string(v) || !v.starts_with("PRES:")) return false;
      c.subtype.assign(v.substr(5));
      return r.has_t = true;
    }
    if (name == "sub") {
      if (!s.string(v)) return false;
      c.sub.assign(v);
      return r.has_sub = true;
    }
    if (name == "aud") {
      if (!s.string(v)) return false;
      c.aud.emplace(v);
      return true;
    }
    if (name == "c") {
      if (!s.peek('{')) return false;
      const char* start = s.pos();
      if (!s.value(2)) return false;
      c.content_json = plain_json::compact(std::string_view(start, static_cast<std::size_t>(s.pos() - start)));
      return true;
    }
    if (name == "iat") {
      if (!s.integer(c.iat)) return false;
      return r.has_iat = true;
    }
    if (name == "exp") {
      std::int64_t exp;
      if (!s.integer(exp)) return false;
      c.exp = exp;
      return true;
    }
    if (name == "a") return false;
    return s.value(2);
  });
  return plain && s.at_end();
}

}  // namespace

Status validate_pres_claims(const PresClaims& c, const TokenLimits& limits) { return validate_claims(c, limits, false); }

Status parse_pres_token_into(std::string_view compact, const TokenLimits& limits, PresToken& token) {
  token.compact.clear();
  if (compact.size() > limits.max_token_bytes)
    return bad(ErrorCode::token_too_large, "token is longer than " + std::to_string(limits.max_token_bytes) + " bytes");
  const auto parts = split_compact_jws(compact);
  if (!parts) return bad(ErrorCode::token_malformed, "a token has exactly three dot-separated segments");

  if (Status s = check_header(parts->header); !s) return s;

  // The payload is only read here: decoded into a buffer this thread reuses.
  thread_local std::string payload;
  if (!b64::decode_url_strict_into(parts->payload, payload))
    return bad(ErrorCode::token_bad_base64, "payload is not strict base64url");
  if (!b64::decode_url_strict_into(parts->signature, token.signature))
    return bad(ErrorCode::token_bad_base64, "signature is not strict base64url");
  if (token.signature.size() != kEs384SignatureBytes)
    return bad(ErrorCode::token_malformed, "an ES384 signature is 96 bytes (raw r||s)");

  clear_claims(token.claims);
  ReadClaims plain_read{token.claims};
  const bool plain = fast_path::enabled() && read_plain_claims(payload, plain_read);
  ReadClaims general_read{token.claims};
  if (!plain) {
    clear_claims(token.claims);
    if (Status s = read_claims(payload, general_read); !s) return s;
  }
  const ReadClaims& r = plain ? plain_read : general_read;
  if (!r.has_iss) return bad(ErrorCode::token_missing_claim, "iss is required");
  if (!r.has_k) return bad(ErrorCode::token_missing_claim, "k is required");
  if (!r.has_t) return bad(ErrorCode::token_missing_claim, "t is required");
  if (!r.has_sub) return bad(ErrorCode::token_missing_claim, "sub is required for PRES");
  if (!r.has_iat) return bad(ErrorCode::token_missing_claim, "iat is required");
  if (Status s = validate_claims(token.claims, limits, plain); !s) return s;
  token.signing_input_len = parts->signing_input.size();
  return {};
}

Result<PresToken> parse_pres_token(std::string_view compact, const TokenLimits& limits) {
  PresToken token;
  if (Status s = parse_pres_token_into(compact, limits, token); !s) return std::move(s).error();
  token.compact = std::string(compact);
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
