#include "federation/me_document.h"

#include <boost/json.hpp>

#include <limits>
#include <unordered_set>

#include "common/strict_json.h"
#include "common/time_format.h"
#include "token/base64.h"

namespace presd {
namespace json = boost::json;

namespace {

Error unknown_key(std::string_view id_tag, std::string_view why) {
  return Error(ErrorCode::token_unknown_key,
               "key document of " + std::string(id_tag) + " rejected: " + std::string(why));
}

bool printable_ascii(std::string_view s) {
  for (char ch : s) {
    if (ch < 0x21 || ch > 0x7e) return false;
  }
  return true;
}

// Truncated and made printable for messages: key ids come from the remote side.
std::string quoted(std::string_view s) {
  std::string out = "\"";
  for (char ch : s.substr(0, 64)) out += (ch >= 0x20 && ch <= 0x7e) ? ch : '?';
  if (s.size() > 64) out += "...";
  return out + "\"";
}

}  // namespace

const RemoteKey* MeDocument::find(std::string_view key_id) const {
  for (const RemoteKey& k : keys) {
    if (k.key_id == key_id) return &k;
  }
  return nullptr;
}

Result<MeDocument> parse_me_document(std::string_view body, std::string_view expected_id_tag, std::int64_t now_s) {
  const std::string_view tag = expected_id_tag;
  if (body.size() > kMaxMeDocumentBytes)
    return unknown_key(tag, "body is " + std::to_string(body.size()) + " bytes, over the " +
                                std::to_string(kMaxMeDocumentBytes) + "-byte limit");
  StrictJson parsed = parse_strict_json(body);
  switch (parsed.problem) {
    case JsonProblem::none: break;
    case JsonProblem::duplicate_key: return unknown_key(tag, "duplicate JSON member " + quoted(parsed.detail));
    case JsonProblem::too_deep: return unknown_key(tag, "JSON nested too deeply");
    case JsonProblem::syntax: return unknown_key(tag, "not JSON (" + parsed.detail + ")");
  }
  const json::object* root = parsed.value.if_object();
  if (!root) return unknown_key(tag, "body is not a JSON object");
  const json::value* data_v = root->if_contains("data");
  const json::object* data = data_v ? data_v->if_object() : nullptr;
  if (!data) return unknown_key(tag, "no \"data\" object");

  const json::value* id_v = data->if_contains("idTag");
  if (!id_v || !id_v->is_string()) return unknown_key(tag, "data.idTag missing or not a string");
  const std::string_view id = id_v->get_string();
  if (id != expected_id_tag) return unknown_key(tag, "data.idTag is " + quoted(id) + ", not the issuer");

  const json::value* keys_v = data->if_contains("keys");
  if (!keys_v || !keys_v->is_array()) return unknown_key(tag, "data.keys missing or not an array");
  const json::array& keys = keys_v->get_array();
  if (keys.size() > kMaxMeDocumentKeys)
    return unknown_key(tag, std::to_string(keys.size()) + " keys, more than " + std::to_string(kMaxMeDocumentKeys));

  MeDocument doc;
  doc.id_tag = std::string(expected_id_tag);
  std::unordered_set<std::string> seen;
  for (std::size_t i = 0; i < keys.size(); ++i) {
    const std::string where = "data.keys[" + std::to_string(i) + "]";
    const json::object* entry = keys[i].if_object();
    if (!entry) return unknown_key(tag, where + " is not an object");

    const json::value* kid_v = entry->if_contains("keyId");
    if (!kid_v || !kid_v->is_string()) return unknown_key(tag, where + ".keyId missing or not a string");
    const std::string key_id(kid_v->get_string());
    if (key_id.empty() || key_id.size() > kMaxRemoteKeyIdBytes || !printable_ascii(key_id))
      return unknown_key(tag, where + ".keyId must be 1.." + std::to_string(kMaxRemoteKeyIdBytes) +
                                  " printable ASCII characters");
    if (!seen.insert(key_id).second) return unknown_key(tag, "keyId " + quoted(key_id) + " appears twice");

    const json::value* pk_v = entry->if_contains("publicKey");
    if (!pk_v || !pk_v->is_string()) return unknown_key(tag, where + ".publicKey missing or not a string");

    std::optional<std::int64_t> expires_at;
    if (const json::value* exp_v = entry->if_contains("expiresAt"); exp_v && !exp_v->is_null()) {
      if (exp_v->is_string()) {
        expires_at = parse_iso8601_utc(exp_v->get_string());
        if (!expires_at) return unknown_key(tag, where + ".expiresAt is not an ISO-8601 UTC time");
      } else if (exp_v->is_int64()) {
        expires_at = exp_v->get_int64();
      } else if (exp_v->is_uint64()) {
        // Beyond int64: never expires in practice.
        expires_at = std::numeric_limits<std::int64_t>::max();
      } else {
        return unknown_key(tag, where + ".expiresAt must be an ISO string or integer seconds");
      }
    }

    if (expires_at && *expires_at <= now_s) {
      doc.skipped.push_back({key_id, "expired at " + std::to_string(*expires_at)});
      continue;
    }
    const auto der = b64::decode_std(pk_v->get_string());
    if (!der) {
      doc.skipped.push_back({key_id, "publicKey is not standard base64"});
      continue;
    }
    auto key = Es384PublicKey::from_spki_der(*der);
    if (!key) {
      doc.skipped.push_back({key_id, "publicKey is not a P-384 SubjectPublicKeyInfo"});
      continue;
    }
    doc.keys.push_back(RemoteKey{key_id, std::move(key).value(), expires_at});
  }
  if (doc.keys.empty()) {
    if (doc.skipped.empty()) return unknown_key(tag, "no keys");
    std::string why = "no usable key:";
    for (const SkippedKey& s : doc.skipped) why += " " + quoted(s.key_id) + " " + s.reason + ";";
    why.pop_back();
    return unknown_key(tag, why);
  }
  return doc;
}

}  // namespace presd
