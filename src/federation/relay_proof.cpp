#include "federation/relay_proof.h"

#include <openssl/evp.h>

#include <boost/json/serialize.hpp>

#include "common/identifiers.h"
#include "common/strict_json.h"
#include "common/time_format.h"
#include "token/compact_jws.h"
#include "token/base64.h"

namespace presd {
namespace json = boost::json;
namespace {

constexpr std::size_t kMaxProofBytes = 2048;

Error invalid(std::string why) { return Error(ErrorCode::relay_invalid, "relay proof: " + std::move(why)); }

}  // namespace

std::string token_hash(std::string_view compact_token) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(compact_token.data(), compact_token.size(), digest, &len, EVP_sha256(), nullptr);
  return b64::encode_url(std::string_view(reinterpret_cast<const char*>(digest), len));
}

std::string sign_relay_proof(const RelayClaims& c, const Es384PrivateKey& key) {
  const std::string payload = "{\"iss\":" + json::serialize(json::string(c.owner)) +
                              ",\"k\":" + json::serialize(json::string(c.key_id)) + ",\"t\":\"" + std::string(kRelayType) +
                              "\",\"sub\":" + json::serialize(json::string(c.context)) +
                              ",\"h\":" + json::serialize(json::string(c.token_hash)) + ",\"iat\":" + std::to_string(c.iat) + "}";
  std::string compact = std::string(kEs384JwtHeader) + "." + b64::encode_url(payload);
  const std::string sig = key.sign(compact);
  return compact + "." + b64::encode_url(sig);
}

Result<RelayProof> parse_relay_proof(std::string_view compact) {
  if (compact.size() > kMaxProofBytes) return invalid("too long");
  const auto parts = split_compact_jws(compact);
  if (!parts) return invalid("not three segments");
  if (parts->header != kEs384JwtHeader) return invalid("header must be {\"typ\":\"JWT\",\"alg\":\"ES384\"}");
  auto payload = b64::decode_url_strict(parts->payload);
  auto signature = b64::decode_url_strict(parts->signature);
  if (!payload || !signature || signature->size() != kEs384SignatureBytes) return invalid("bad base64url or signature size");
  StrictJson parsed = parse_strict_json(*payload, 2);
  if (!parsed.ok() || !parsed.value.is_object()) return invalid("payload is not a JSON object");
  const json::object& o = parsed.value.get_object();
  auto str = [&](std::string_view name) -> const json::string* {
    const json::value* v = o.if_contains(name);
    return v && v->is_string() ? &v->get_string() : nullptr;
  };
  const json::string *iss = str("iss"), *k = str("k"), *t = str("t"), *sub = str("sub"), *h = str("h");
  const json::value* iat = o.if_contains("iat");
  if (!iss || !k || !t || !sub || !h || !iat || !iat->is_int64()) return invalid("iss, k, t, sub, h, iat are required");
  if (*t != kRelayType) return invalid("t must be PRES-RELAY");
  if (iat->get_int64() < 0 || iat->get_int64() > kMaxUnixSeconds) return invalid("iat is not a Unix time in seconds");
  if (!is_canonical_id_tag(*iss)) return invalid("iss is not a canonical id_tag");
  if (k->empty() || k->size() > 64) return invalid("bad k");
  if (!is_valid_context_id(*sub)) return invalid("bad sub");
  if (h->size() != 43) return invalid("h must be base64url of a SHA-256");

  RelayProof proof;
  proof.claims = RelayClaims{std::string(*iss), std::string(*k), std::string(*sub), std::string(*h), iat->get_int64()};
  proof.compact = std::string(compact);
  proof.signing_input_len = parts->signing_input.size();
  proof.signature = std::move(*signature);
  return proof;
}

}  // namespace presd
