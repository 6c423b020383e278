// SQLite implementation of the store interfaces (one file, WAL mode, schema versioned with
// PRAGMA user_version). One instance per thread: it owns its connection.
#pragma once

#include <memory>
#include <string>

#include "store/store.h"

namespace SQLite { class Database; }

namespace presd {

class SqliteStore final : public Store {
 public:
  // Opens (creating if needed) and migrates. Throws std::runtime_error at start-up on failure:
  // this is an edge, not a hot path. ":memory:" gives a private in-memory database.
  explicit SqliteStore(const std::string& path);
  ~SqliteStore() override;

  Status create_context(const Context& ctx) override;
  Result<std::optional<Context>> find_context(std::string_view id) override;
  Result<std::vector<Context>> list_contexts() override;
  Status delete_context(std::string_view id) override;
  Status grant(std::string_view context_id, std::string_view id_tag, Role role) override;
  Status revoke(std::string_view context_id, std::string_view id_tag) override;
  Result<std::optional<Member>> find_member(std::string_view context_id,
                                            std::string_view id_tag) override;
  Result<std::vector<Member>> list_members(std::string_view context_id) override;
  Result<std::int64_t> external_change_counter() override;  // PRAGMA data_version

  Status add_tenant(std::string_view id_tag) override;
  Result<bool> has_tenant(std::string_view id_tag) override;
  Result<std::vector<std::string>> list_tenants() override;
  Status add_key(const StoredKey& key) override;
  Result<std::vector<StoredKey>> list_keys(std::string_view id_tag) override;

 private:
  struct Lookups;  // prepared once: see sqlite_store.cpp
  std::unique_ptr<SQLite::Database> db_;
  std::unique_ptr<Lookups> lookups_;  // declared after db_: finalized before it closes
};

}  // namespace presd
