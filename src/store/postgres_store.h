// PostgreSQL implementation of the store interfaces (libpq), for several presd nodes sharing one
// database. Schema versioned in presd_schema, every table prefixed presd_ (docs/storage.md).
// One instance per thread: it owns its connection, which it re-opens after the server went away.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "store/store.h"

namespace presd {

namespace pg { class Connection; }

class PostgresStore final : public Store {
 public:
  // Connects to the libpq URL and migrates. Throws std::runtime_error (password redacted) at
  // start-up when the URL is malformed, the server unreachable or the schema too new.
  explicit PostgresStore(const std::string& url);
  ~PostgresStore() override;

  Status create_context(const Context& ctx) override;
  Result<std::optional<Context>> find_context(std::string_view id) override;
  Result<std::vector<Context>> list_contexts() override;
  Status delete_context(std::string_view id) override;
  Status grant(std::string_view context_id, std::string_view id_tag, Role role) override;
  Status revoke(std::string_view context_id, std::string_view id_tag) override;
  Result<std::optional<Member>> find_member(std::string_view context_id,
                                            std::string_view id_tag) override;
  Result<std::vector<Member>> list_members(std::string_view context_id) override;
  // presd_change.version (bumped by every write transaction) minus this object's own writes.
  Result<std::int64_t> external_change_counter() override;

  Status add_tenant(std::string_view id_tag) override;
  Result<bool> has_tenant(std::string_view id_tag) override;
  Result<std::vector<std::string>> list_tenants() override;
  Status add_key(const StoredKey& key) override;
  Result<std::vector<StoredKey>> list_keys(std::string_view id_tag) override;

  static int schema_version();  // what this build migrates to

 private:
  // Runs `body` (statements that must all apply) in a transaction that also bumps the change
  // version; rolls back when it fails.
  template <typename Body>
  Status write(std::string_view op, Body&& body);

  std::unique_ptr<pg::Connection> conn_;
  std::int64_t own_writes_ = 0;  // committed through this object: not "external" changes
};

}  // namespace presd
