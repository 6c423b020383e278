#include "token/access_token.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <boost/json/serialize.hpp>

#include "common/identifiers.h"
#include "common/strict_json.h"
#include "token/compact_jws.h"
#include "token/base64.h"

namespace presd {
namespace json = boost::json;
namespace {

constexpr std::size_t kMaxAccessTokenBytes = 4096;

std::string hmac_sha256(std::string_view secret, std::string_view message) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(message.data()), message.size(), mac, &len);
  return std::string(reinterpret_cast<char*>(mac), len);
}

Error invalid(std::string why) { return Error(ErrorCode::auth_invalid, std::move(why)); }

}  // namespace

std::string issue_access_token(const AccessClaims& c, std::string_view secret) {
  std::string payload = "{\"iss\":" + json::serialize(json::string(c.iss)) +
                        ",\"sub\":" + json::serialize(json::string(c.sub)) +
                        ",\"exp\":" + std::to_string(c.exp) + "}";
  std::string token = b64::encode_url(R"({"typ":"JWT","alg":"HS256"})");
  token += '.';
  token += b64::encode_url(payload);
  const std::string mac = hmac_sha256(secret, token);
  token += '.';
  token += b64::encode_url(mac);
  return token;
}

Result<AccessClaims> verify_access_token(std::string_view token, std::string_view secret, std::int64_t now_s) {
  if (token.empty()) return Error(ErrorCode::auth_required, "no access token");
  if (token.size() > kMaxAccessTokenBytes) return invalid("access token too long");
  const auto parts = split_compact_jws(token);
  if (!parts) return invalid("access token must have three segments");

  auto header = b64::decode_url_strict(parts->header);
  if (!header) return invalid("access token header is not base64url");
  StrictJson h = parse_strict_json(*header, 2);
  if (!h.ok() || !h.value.is_object()) return invalid("access token header is not a JSON object");
  for (const auto& kv : h.value.get_object()) {
    const bool ok = (kv.key() == "alg" && kv.value().is_string() && kv.value().get_string() == "HS256") ||
                    (kv.key() == "typ" && kv.value().is_string() && kv.value().get_string() == "JWT");
    if (!ok) return invalid("access token header must be {\"alg\":\"HS256\"} (typ JWT optional)");
  }
  if (!h.value.get_object().contains("alg")) return invalid("access token header has no alg");

  auto mac = b64::decode_url_strict(parts->signature);
  if (!mac) return invalid("access token signature is not base64url");
  const std::string expected = hmac_sha256(secret, parts->signing_input);
  if (mac->size() != expected.size() || CRYPTO_memcmp(mac->data(), expected.data(), expected.size()) != 0)
    return invalid("access token signature does not verify");

  auto payload = b64::decode_url_strict(parts->payload);
  if (!payload) return invalid("access token payload is not base64url");
  StrictJson p = parse_strict_json(*payload);
  if (!p.ok() || !p.value.is_object()) return invalid("access token payload is not a JSON object");
  const json::object& o = p.value.get_object();

  AccessClaims claims;
  const json::value* iss = o.if_contains("iss");
  if (!iss || !iss->is_string() || !is_canonical_id_tag(iss->get_string()))
    return invalid("access token iss must be a canonical id_tag");
  claims.iss = std::string(iss->get_string());
  if (const json::value* sub = o.if_contains("sub")) {
    if (!sub->is_string() || !is_canonical_id_tag(sub->get_string()))
      return invalid("access token sub must be a canonical id_tag");
    claims.sub = std::string(sub->get_string());
  } else {
    claims.sub = claims.iss;
  }
  const json::value* exp = o.if_contains("exp");
  if (!exp || !exp->is_int64()) return invalid("access token exp must be an integer");
  claims.exp = exp->get_int64();
  if (claims.exp <= now_s) return invalid("access token expired");
  return claims;
}

}  // namespace presd
