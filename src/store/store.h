// Durable store interfaces. SQLite is the embedded default (store/sqlite_store.h); other
// backends (PostgreSQL) implement the same interfaces and run the same tests.
// Errors: conflict, not_found, context_unknown, unavailable (I/O, read-only, disk full).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "store/model.h"

namespace presd {

class MembershipStore {
 public:
  virtual ~MembershipStore() = default;

  virtual Status create_context(const Context& ctx) = 0;  // conflict if the id exists
  virtual Result<std::optional<Context>> find_context(std::string_view id) = 0;
  virtual Result<std::vector<Context>> list_contexts() = 0;
  virtual Status delete_context(std::string_view id) = 0;  // not_found if absent; drops members

  // Upsert: sets the role and clears `deleted`. context_unknown if the context does not exist.
  virtual Status grant(std::string_view context_id, std::string_view id_tag, Role role) = 0;
  // Marks the member deleted. not_found if there is no such (active) member.
  virtual Status revoke(std::string_view context_id, std::string_view id_tag) = 0;
  virtual Result<std::optional<Member>> find_member(std::string_view context_id,
                                                    std::string_view id_tag) = 0;
  // Active and deleted members, ordered by id_tag.
  virtual Result<std::vector<Member>> list_members(std::string_view context_id) = 0;

  // "Did anything change since last time?": a value that changes whenever another process,
  // connection or node commits to the store, so a running server notices `presd context ...`
  // CLI edits and other nodes' writes (it polls this every second). Writes through this object
  // do not change it. Only equality between two readings is meaningful. SQLite: PRAGMA
  // data_version; PostgreSQL: a version row bumped by every write transaction.
  virtual Result<std::int64_t> external_change_counter() = 0;
};

class KeyStore {
 public:
  virtual ~KeyStore() = default;

  virtual Status add_tenant(std::string_view id_tag) = 0;  // conflict if hosted already
  virtual Result<bool> has_tenant(std::string_view id_tag) = 0;
  virtual Result<std::vector<std::string>> list_tenants() = 0;

  virtual Status add_key(const StoredKey& key) = 0;  // conflict on (id_tag, key_id)
  // Newest first (by created_at_s, then insertion order: "-10" is newer than "-9").
  virtual Result<std::vector<StoredKey>> list_keys(std::string_view id_tag) = 0;
};

// Both halves in one backend object: what `presd serve` and the admin CLI open (store/open_store.h).
class Store : public MembershipStore, public KeyStore {};

}  // namespace presd
