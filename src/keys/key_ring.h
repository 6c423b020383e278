// Signing keys of the id_tags this instance hosts. Each tenant has one or more ES384 key pairs
// with key id "YYMMDD" of their creation day; rotation adds a key and keeps the old ones so
// tokens signed before rotation still verify. Keys are loaded once and cached in memory.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/result.h"
#include "store/store.h"
#include "token/es384.h"

namespace presd {

struct TenantKey {
  std::string key_id;
  Es384PrivateKey private_key;
  Es384PublicKey public_key;
  std::int64_t created_at_s = 0;
  std::optional<std::int64_t> expires_at_s;
};

// "YYMMDD" of a UTC time in seconds, e.g. 1732406400 -> "241124".
std::string key_id_for_day(std::int64_t unix_s);

class KeyRing {
 public:
  explicit KeyRing(KeyStore& store) : store_(store) {}

  // Adds the tenant if new and gives it a key if it has none. Idempotent.
  Status ensure_tenant(std::string_view id_tag, std::int64_t now_s);
  // A new key with today's id (suffixed "-2", "-3"... if today's id exists). Returns its id.
  Result<std::string> rotate(std::string_view id_tag, std::int64_t now_s);
  // (Re)loads every hosted tenant's keys from the store into memory.
  Status load();

  bool hosts(std::string_view id_tag) const;
  std::vector<std::string> tenants() const;
  // Newest key: the one used to sign. nullptr if the tenant is not hosted.
  const TenantKey* signing_key(std::string_view id_tag) const;
  const TenantKey* find(std::string_view id_tag, std::string_view key_id) const;
  const std::vector<TenantKey>* keys(std::string_view id_tag) const;  // newest first

  // The reference `/api/me` envelope for a hosted id_tag:
  // {"data":{"idTag":..,"name":..,"type":"person","keys":[{"keyId","publicKey","expiresAt"?}]},
  //  "time":"<ISO-8601 UTC>"}; publicKey is standard base64 of the SPKI DER.
  std::optional<std::string> me_json(std::string_view id_tag, std::int64_t now_s) const;

 private:
  KeyStore& store_;
  std::unordered_map<std::string, std::vector<TenantKey>> keys_;
};

}  // namespace presd
