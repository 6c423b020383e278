#include "store/postgres_store.h"

#include <libpq-fe.h>

#include <ctime>
#include <exception>
#include <stdexcept>
#include <utility>
#include <vector>

#include "store/postgres_connection.h"

namespace presd {
namespace {

using pg::Param;
using pg::Retry;

// Migrations, applied in order. Entry i takes presd_schema.version from i to i + 1. Never edit
// a released entry: append a new one. Text is COLLATE "C" so ORDER BY matches SQLite's byte
// order whatever the database's locale.
constexpr const char* kMigrations[] = {
    // 0 -> 1
    R"sql(
CREATE TABLE presd_tenants (
  id_tag     TEXT COLLATE "C" NOT NULL PRIMARY KEY,
  created_at BIGINT NOT NULL
);
CREATE TABLE presd_keys (
  seq         BIGINT GENERATED ALWAYS AS IDENTITY,  -- insertion order, the newest-first tie-break
  id_tag      TEXT COLLATE "C" NOT NULL,
  key_id      TEXT COLLATE "C" NOT NULL,
  private_pem TEXT   NOT NULL,
  public_der  BYTEA  NOT NULL,
  created_at  BIGINT NOT NULL,
  expires_at  BIGINT NULL,
  PRIMARY KEY (id_tag, key_id)
);
CREATE TABLE presd_contexts (
  id         TEXT COLLATE "C" NOT NULL PRIMARY KEY,
  owner      TEXT COLLATE "C" NOT NULL,
  creator    TEXT COLLATE "C" NOT NULL,
  created_at BIGINT NOT NULL
);
CREATE TABLE presd_members (
  context_id TEXT COLLATE "C" NOT NULL REFERENCES presd_contexts (id) ON DELETE CASCADE,
  id_tag     TEXT COLLATE "C" NOT NULL,
  role       SMALLINT NOT NULL CHECK (role BETWEEN 1 AND 4),
  deleted    BOOLEAN  NOT NULL DEFAULT FALSE,
  updated_at BIGINT   NOT NULL,
  PRIMARY KEY (context_id, id_tag)
);
-- One row, bumped in the same transaction as every write: nodes poll it to notice each other's
-- (and the CLI's) changes.
CREATE TABLE presd_change (
  id      SMALLINT PRIMARY KEY CHECK (id = 1),
  version BIGINT NOT NULL
);
INSERT INTO presd_change (id, version) VALUES (1, 0);
)sql",
};
constexpr int kSchemaVersion = static_cast<int>(sizeof kMigrations / sizeof kMigrations[0]);
// pg_advisory_xact_lock key: two nodes starting on a fresh database must not both migrate.
constexpr const char* kMigrationLock = "7301947712";

std::int64_t now_s() { return static_cast<std::int64_t>(std::time(nullptr)); }

std::string str(std::string_view s) { return std::string(s); }

// Runs `fn`, turning a corrupt-row exception (or bad_alloc) into an Error of its return type.
template <typename F>
auto guarded(std::string_view op, F&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const std::exception& e) {
    return Error(ErrorCode::internal, "store " + str(op) + ": " + e.what());
  }
}

template <typename T>
T must(Result<T> r, const std::string& what) {
  if (!r) throw std::runtime_error(what + ": " + r.error().message);
  return std::move(r).value();
}

Role read_role(const pg::Rows& rows, int row, int col) {
  const std::int64_t r = rows.integer(row, col);
  if (r < static_cast<int>(Role::observer) || r > static_cast<int>(Role::admin))
    throw std::runtime_error("corrupt row: role " + std::to_string(r));
  return static_cast<Role>(r);
}

Context read_context(const pg::Rows& rows, int i) {
  Context c;
  c.id = rows.text(i, 0);
  c.owner = rows.text(i, 1);
  c.creator = rows.text(i, 2);
  c.created_at_s = rows.integer(i, 3);
  return c;
}

Member read_member(const pg::Rows& rows, int i) {
  Member m;
  m.id_tag = rows.text(i, 0);
  m.role = read_role(rows, i, 1);
  m.deleted = rows.boolean(i, 2);
  m.updated_at_s = rows.integer(i, 3);
  return m;
}

int read_schema_version(pg::Connection& c) {
  auto exists = must(c.exec("migrate", "SELECT to_regclass('presd_schema') IS NOT NULL"), "reading the schema version");
  if (!exists.boolean(0, 0)) return 0;
  auto v = must(c.exec("migrate", "SELECT version FROM presd_schema WHERE id = 1"), "reading the schema version");
  return v.size() == 0 ? 0 : static_cast<int>(v.integer(0, 0));
}

// Start-up only: a failed step throws with what it was doing.
void run(pg::Connection& c, const std::string& what, const std::string& sql, const std::vector<Param>& params = {}) {
  Status s = params.empty() ? c.exec_script("migrate", sql) : [&]() -> Status {
    auto r = c.exec("migrate", sql, params);
    return r ? Status::Ok() : Status(r.error());
  }();
  if (!s) throw std::runtime_error(what + ": " + s.error().message);
}

void migrate(pg::Connection& c) {
  // Only take the lock when there is work to do, so a read-only role can still open a migrated database.
  if (read_schema_version(c) == kSchemaVersion) return;
  run(c, "starting the migration", "BEGIN");
  try {
    run(c, "locking the schema", "SELECT pg_advisory_xact_lock($1)", {Param::text(kMigrationLock)});
    run(c, "creating presd_schema",
        "CREATE TABLE IF NOT EXISTS presd_schema (id SMALLINT PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL)");
    const int version = read_schema_version(c);  // again: another node may have migrated meanwhile
    if (version > kSchemaVersion)
      throw std::runtime_error("database schema version " + std::to_string(version) +
                               " is newer than this presd supports (" + std::to_string(kSchemaVersion) + ")");
    for (int v = version; v < kSchemaVersion; ++v)
      run(c, "migration to version " + std::to_string(v + 1), kMigrations[v]);
    run(c, "recording the schema version",
        "INSERT INTO presd_schema (id, version) VALUES (1, $1) ON CONFLICT (id) DO UPDATE SET version = excluded.version",
        {Param::integer(kSchemaVersion)});
    run(c, "committing the migration", "COMMIT");
  } catch (...) {
    c.rollback();
    throw;
  }
}

}  // namespace

PostgresStore::PostgresStore(const std::string& url) : conn_(std::make_unique<pg::Connection>(url)) {
  const std::string shown = conn_->redacted_url();
  char* parse_error = nullptr;
  PQconninfoOption* opts = PQconninfoParse(url.c_str(), &parse_error);
  if (opts == nullptr) {
    const std::string why = parse_error ? parse_error : "malformed URL";
    PQfreemem(parse_error);
    throw std::runtime_error("cannot open store '" + shown + "': " + why);
  }
  PQconninfoFree(opts);
  try {
    if (Status s = conn_->connect("open"); !s) throw std::runtime_error(s.error().message);
    migrate(*conn_);
  } catch (const std::exception& e) {
    throw std::runtime_error("cannot open store '" + shown + "': " + e.what());
  }
}

PostgresStore::~PostgresStore() = default;

int PostgresStore::schema_version() { return kSchemaVersion; }

template <typename Body>
Status PostgresStore::write(std::string_view op, Body&& body) {
  if (auto begin = conn_->exec(op, "BEGIN", {}, Retry::once_if_stale); !begin) return begin.error();
  Status s;
  try {
    s = body();
  } catch (const std::exception& e) {
    s = Error(ErrorCode::internal, "store " + str(op) + ": " + e.what());
  }
  if (s) {
    auto bump = conn_->exec(op, "UPDATE presd_change SET version = version + 1 WHERE id = 1");
    if (!bump) s = bump.error();
  }
  if (!s) {
    conn_->rollback();
    return s;
  }
  if (auto commit = conn_->exec(op, "COMMIT"); !commit) return commit.error();
  ++own_writes_;
  return Status::Ok();
}

// ---- MembershipStore ----

Status PostgresStore::create_context(const Context& ctx) {
  return write("create_context", [&]() -> Status {
    auto r = conn_->exec("create_context",
                         "INSERT INTO presd_contexts (id, owner, creator, created_at) VALUES ($1, $2, $3, $4)",
                         {Param::text(ctx.id), Param::text(ctx.owner), Param::text(ctx.creator),
                          Param::integer(ctx.created_at_s)},
                         Retry::no, Error(ErrorCode::conflict, "context '" + ctx.id + "' already exists"));
    return r ? Status::Ok() : Status(r.error());
  });
}

Result<std::optional<Context>> PostgresStore::find_context(std::string_view id) {
  return guarded("find_context", [&]() -> Result<std::optional<Context>> {
    auto r = conn_->exec("find_context", "SELECT id, owner, creator, created_at FROM presd_contexts WHERE id = $1",
                         {Param::text(id)}, Retry::once_if_stale);
    if (!r) return r.error();
    if (r->size() == 0) return std::optional<Context>();
    return std::optional<Context>(read_context(*r, 0));
  });
}

Result<std::vector<Context>> PostgresStore::list_contexts() {
  return guarded("list_contexts", [&]() -> Result<std::vector<Context>> {
    auto r = conn_->exec("list_contexts",
                         "SELECT id, owner, creator, created_at FROM presd_contexts ORDER BY created_at, id", {},
                         Retry::once_if_stale);
    if (!r) return r.error();
    std::vector<Context> out;
    for (int i = 0; i < r->size(); ++i) out.push_back(read_context(*r, i));
    return out;
  });
}

Status PostgresStore::delete_context(std::string_view id) {
  return write("delete_context", [&]() -> Status {
    // presd_members rows go with it (ON DELETE CASCADE).
    auto r = conn_->exec("delete_context", "DELETE FROM presd_contexts WHERE id = $1", {Param::text(id)});
    if (!r) return r.error();
    if (r->affected() == 0) return Error(ErrorCode::not_found, "context '" + str(id) + "' does not exist");
    return Status::Ok();
  });
}

Status PostgresStore::grant(std::string_view context_id, std::string_view id_tag, Role role) {
  // One statement: the foreign key rejects an unknown context atomically.
  return write("grant", [&]() -> Status {
    auto r = conn_->exec("grant",
                         "INSERT INTO presd_members (context_id, id_tag, role, deleted, updated_at) "
                         "VALUES ($1, $2, $3, FALSE, $4) "
                         "ON CONFLICT (context_id, id_tag) DO UPDATE SET "
                         "role = excluded.role, deleted = FALSE, updated_at = excluded.updated_at",
                         {Param::text(context_id), Param::text(id_tag), Param::integer(static_cast<int>(role)),
                          Param::integer(now_s())},
                         Retry::no, Error(ErrorCode::context_unknown, "unknown context '" + str(context_id) + "'"));
    return r ? Status::Ok() : Status(r.error());
  });
}

Status PostgresStore::revoke(std::string_view context_id, std::string_view id_tag) {
  return write("revoke", [&]() -> Status {
    auto r = conn_->exec("revoke",
                         "UPDATE presd_members SET deleted = TRUE, updated_at = $1 "
                         "WHERE context_id = $2 AND id_tag = $3 AND NOT deleted",
                         {Param::integer(now_s()), Param::text(context_id), Param::text(id_tag)});
    if (!r) return r.error();
    if (r->affected() == 0)
      return Error(ErrorCode::not_found,
                   "'" + str(id_tag) + "' is not an active member of '" + str(context_id) + "'");
    return Status::Ok();
  });
}

Result<std::optional<Member>> PostgresStore::find_member(std::string_view context_id, std::string_view id_tag) {
  return guarded("find_member", [&]() -> Result<std::optional<Member>> {
    auto r = conn_->exec("find_member",
                         "SELECT id_tag, role, deleted, updated_at FROM presd_members "
                         "WHERE context_id = $1 AND id_tag = $2",
                         {Param::text(context_id), Param::text(id_tag)}, Retry::once_if_stale);
    if (!r) return r.error();
    if (r->size() == 0) return std::optional<Member>();
    return std::optional<Member>(read_member(*r, 0));
  });
}

Result<std::vector<Member>> PostgresStore::list_members(std::string_view context_id) {
  return guarded("list_members", [&]() -> Result<std::vector<Member>> {
    auto r = conn_->exec("list_members",
                         "SELECT id_tag, role, deleted, updated_at FROM presd_members "
                         "WHERE context_id = $1 ORDER BY id_tag",
                         {Param::text(context_id)}, Retry::once_if_stale);
    if (!r) return r.error();
    std::vector<Member> out;
    for (int i = 0; i < r->size(); ++i) out.push_back(read_member(*r, i));
    return out;
  });
}

Result<std::int64_t> PostgresStore::external_change_counter() {
  return guarded("change_version", [&]() -> Result<std::int64_t> {
    auto r = conn_->exec("change_version", "SELECT version FROM presd_change WHERE id = 1", {}, Retry::once_if_stale);
    if (!r) return r.error();
    if (r->size() != 1) return Error(ErrorCode::internal, "store change_version: presd_change has no row");
    return r->integer(0, 0) - own_writes_;
  });
}

// ---- KeyStore ----

Status PostgresStore::add_tenant(std::string_view id_tag) {
  return write("add_tenant", [&]() -> Status {
    auto r = conn_->exec("add_tenant", "INSERT INTO presd_tenants (id_tag, created_at) VALUES ($1, $2)",
                         {Param::text(id_tag), Param::integer(now_s())}, Retry::no,
                         Error(ErrorCode::conflict, "tenant '" + str(id_tag) + "' is already hosted"));
    return r ? Status::Ok() : Status(r.error());
  });
}

Result<bool> PostgresStore::has_tenant(std::string_view id_tag) {
  return guarded("has_tenant", [&]() -> Result<bool> {
    auto r = conn_->exec("has_tenant", "SELECT 1 FROM presd_tenants WHERE id_tag = $1", {Param::text(id_tag)},
                         Retry::once_if_stale);
    if (!r) return r.error();
    return r->size() > 0;
  });
}

Result<std::vector<std::string>> PostgresStore::list_tenants() {
  return guarded("list_tenants", [&]() -> Result<std::vector<std::string>> {
    auto r = conn_->exec("list_tenants", "SELECT id_tag FROM presd_tenants ORDER BY id_tag", {}, Retry::once_if_stale);
    if (!r) return r.error();
    std::vector<std::string> out;
    for (int i = 0; i < r->size(); ++i) out.push_back(r->text(i, 0));
    return out;
  });
}

Status PostgresStore::add_key(const StoredKey& key) {
  return write("add_key", [&]() -> Status {
    auto r = conn_->exec("add_key",
                         "INSERT INTO presd_keys (id_tag, key_id, private_pem, public_der, created_at, expires_at) "
                         "VALUES ($1, $2, $3, $4, $5, $6)",
                         {Param::text(key.id_tag), Param::text(key.key_id), Param::text(key.private_pem),
                          Param::bytes(key.public_der), Param::integer(key.created_at_s),
                          key.expires_at_s ? Param::integer(*key.expires_at_s) : Param::null()},
                         Retry::no,
                         Error(ErrorCode::conflict, "key '" + key.key_id + "' of '" + key.id_tag + "' already exists"));
    return r ? Status::Ok() : Status(r.error());
  });
}

Result<std::vector<StoredKey>> PostgresStore::list_keys(std::string_view id_tag) {
  return guarded("list_keys", [&]() -> Result<std::vector<StoredKey>> {
    auto r = conn_->exec("list_keys",
                         "SELECT id_tag, key_id, private_pem, public_der, created_at, expires_at "
                         "FROM presd_keys WHERE id_tag = $1 ORDER BY created_at DESC, seq DESC",
                         {Param::text(id_tag)}, Retry::once_if_stale);
    if (!r) return r.error();
    std::vector<StoredKey> out;
    for (int i = 0; i < r->size(); ++i) {
      StoredKey k;
      k.id_tag = r->text(i, 0);
      k.key_id = r->text(i, 1);
      k.private_pem = r->text(i, 2);
      k.public_der = r->bytes(i, 3);
      k.created_at_s = r->integer(i, 4);
      if (!r->is_null(i, 5)) k.expires_at_s = r->integer(i, 5);
      out.push_back(std::move(k));
    }
    return out;
  });
}

}  // namespace presd
