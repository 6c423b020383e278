#include "keys/key_ring.h"

#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <algorithm>
#include <cstdio>

#include "common/identifiers.h"
#include "common/time_format.h"
#include "token/base64.h"

namespace presd {
namespace json = boost::json;

std::string key_id_for_day(std::int64_t unix_s) {
  // iso8601_utc gives "YYYY-MM-DDT..."; the key id is YYMMDD of that date.
  const std::string iso = iso8601_utc(unix_s);
  return iso.substr(2, 2) + iso.substr(5, 2) + iso.substr(8, 2);
}

namespace {

// A new P-384 key pair as the store keeps it.
StoredKey new_stored_key(std::string_view id_tag, std::string key_id, std::int64_t now_s) {
  Es384PrivateKey priv = Es384PrivateKey::generate();
  return StoredKey{std::string(id_tag), std::move(key_id), priv.to_pem(), priv.public_key().spki_der(), now_s,
                   std::nullopt};
}

Result<TenantKey> to_tenant_key(const StoredKey& stored) {
  auto priv = Es384PrivateKey::from_pem(stored.private_pem);
  if (!priv) return Error(ErrorCode::internal, "stored key " + stored.id_tag + "/" + stored.key_id + ": " + priv.error().message);
  Es384PublicKey pub = priv->public_key();
  if (pub.spki_der() != stored.public_der)
    return Error(ErrorCode::internal, "stored key " + stored.id_tag + "/" + stored.key_id + ": public key does not match");
  return TenantKey{stored.key_id, std::move(priv).value(), std::move(pub), stored.created_at_s, stored.expires_at_s};
}

}  // namespace

Status KeyRing::ensure_tenant(std::string_view id_tag, std::int64_t now_s) {
  if (!is_canonical_id_tag(id_tag)) return Error(ErrorCode::bad_request, std::string(id_tag) + " is not a canonical id_tag");
  auto hosted = store_.has_tenant(id_tag);
  if (!hosted) return hosted.error();
  if (!*hosted) {
    if (Status s = store_.add_tenant(id_tag); !s && s.code() != ErrorCode::conflict) return s;
  }
  auto existing = store_.list_keys(id_tag);
  if (!existing) return existing.error();
  if (existing->empty()) {
    // Always the day's plain key id, not rotate()'s next free one: a node sharing the store that
    // creates the first key at the same moment (nodes started together with the same --tenant)
    // makes our insert a conflict, and its key serves as well as ours would. rotate() would
    // re-list, see that key and add a second one ("-2").
    const StoredKey first = new_stored_key(id_tag, key_id_for_day(now_s), now_s);
    if (Status s = store_.add_key(first); !s && s.code() != ErrorCode::conflict) return s;
  }
  return load();
}

Result<std::string> KeyRing::rotate(std::string_view id_tag, std::int64_t now_s) {
  auto hosted = store_.has_tenant(id_tag);
  if (!hosted) return hosted.error();
  if (!*hosted) return Error(ErrorCode::issuer_not_hosted, std::string(id_tag) + " is not hosted here");
  auto existing = store_.list_keys(id_tag);
  if (!existing) return existing.error();

  const std::string day = key_id_for_day(now_s);
  std::string key_id = day;
  for (int n = 2;; ++n) {
    const bool taken = std::any_of(existing->begin(), existing->end(),
                                   [&](const StoredKey& k) { return k.key_id == key_id; });
    if (!taken) break;
    key_id = day + "-" + std::to_string(n);
  }
  if (Status s = store_.add_key(new_stored_key(id_tag, key_id, now_s)); !s) return s.error();
  if (Status s = load(); !s) return s.error();
  return key_id;
}

Status KeyRing::load() {
  auto tenants = store_.list_tenants();
  if (!tenants) return tenants.error();
  std::unordered_map<std::string, std::vector<TenantKey>> loaded;
  for (const std::string& tag : *tenants) {
    auto stored = store_.list_keys(tag);
    if (!stored) return stored.error();
    std::vector<TenantKey>& ring = loaded[tag];
    for (const StoredKey& s : *stored) {
      auto key = to_tenant_key(s);
      if (!key) return key.error();
      ring.push_back(std::move(key).value());
    }
  }
  keys_ = std::move(loaded);
  return {};
}

bool KeyRing::hosts(std::string_view id_tag) const { return keys_.contains(std::string(id_tag)); }

std::vector<std::string> KeyRing::tenants() const {
  std::vector<std::string> out;
  out.reserve(keys_.size());
  for (const auto& [tag, ring] : keys_) out.push_back(tag);
  std::sort(out.begin(), out.end());
  return out;
}

const std::vector<TenantKey>* KeyRing::keys(std::string_view id_tag) const {
  auto it = keys_.find(std::string(id_tag));
  return it == keys_.end() ? nullptr : &it->second;
}

const TenantKey* KeyRing::signing_key(std::string_view id_tag) const {
  const auto* ring = keys(id_tag);
  return ring && !ring->empty() ? &ring->front() : nullptr;
}

const TenantKey* KeyRing::find(std::string_view id_tag, std::string_view key_id) const {
  const auto* ring = keys(id_tag);
  if (!ring) return nullptr;
  for (const TenantKey& k : *ring)
    if (k.key_id == key_id) return &k;
  return nullptr;
}

std::optional<std::string> KeyRing::me_json(std::string_view id_tag, std::int64_t now_s) const {
  const auto* ring = keys(id_tag);
  if (!ring) return std::nullopt;
  json::array keys;
  for (const TenantKey& k : *ring) {
    json::object entry{{"keyId", k.key_id}, {"publicKey", b64::encode_std(k.public_key.spki_der())}};
    if (k.expires_at_s) entry["expiresAt"] = iso8601_utc(*k.expires_at_s);
    keys.push_back(std::move(entry));
  }
  const std::string tag(id_tag);
  json::object data{{"idTag", tag}, {"name", tag.substr(0, tag.find('.'))}, {"type", "person"}, {"keys", std::move(keys)}};
  return json::serialize(json::object{{"data", std::move(data)}, {"time", iso8601_utc(now_s)}});
}

}  // namespace presd
