#include "store/sqlite_store.h"

#include <SQLiteCpp/SQLiteCpp.h>
#include <sqlite3.h>

#include <ctime>
#include <exception>
#include <stdexcept>
#include <utility>

namespace presd {
namespace {

// Migrations, applied in order. Entry i takes the schema from user_version i to i + 1.
// Never edit a released entry: append a new one.
constexpr const char* kMigrations[] = {
    // 0 -> 1
    R"sql(
CREATE TABLE tenants (
  id_tag     TEXT    NOT NULL PRIMARY KEY,
  created_at INTEGER NOT NULL
);
CREATE TABLE keys (
  id_tag      TEXT    NOT NULL,
  key_id      TEXT    NOT NULL,
  private_pem TEXT    NOT NULL,
  public_der  BLOB    NOT NULL,
  created_at  INTEGER NOT NULL,
  expires_at  INTEGER NULL,
  PRIMARY KEY (id_tag, key_id)
);
CREATE TABLE contexts (
  id         TEXT    NOT NULL PRIMARY KEY,
  owner      TEXT    NOT NULL,
  creator    TEXT    NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE TABLE members (
  context_id TEXT    NOT NULL REFERENCES contexts (id) ON DELETE CASCADE,
  id_tag     TEXT    NOT NULL,
  role       INTEGER NOT NULL,
  deleted    INTEGER NOT NULL DEFAULT 0,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (context_id, id_tag)
);
)sql",
};
constexpr int kSchemaVersion = static_cast<int>(sizeof kMigrations / sizeof kMigrations[0]);

std::int64_t now_s() { return static_cast<std::int64_t>(std::time(nullptr)); }

std::string str(std::string_view s) { return std::string(s); }

// Maps a SQLite failure to a store error. `on_constraint`, when set, replaces constraint
// violations (duplicate keys, foreign keys) with a caller-specific error.
Error map_error(std::string_view op, const SQLite::Exception& e,
                const std::optional<Error>& on_constraint) {
  const int code = e.getErrorCode();
  const int primary = code >= 0 ? (code & 0xff) : code;
  if (primary == SQLITE_CONSTRAINT && on_constraint) return *on_constraint;
  std::string message = "store " + str(op) + ": " + e.what();
  switch (primary) {
    case SQLITE_READONLY:
    case SQLITE_FULL:
    case SQLITE_IOERR:
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_CANTOPEN:
      return Error(ErrorCode::unavailable, "store unavailable (" + str(op) + "): " + e.what());
    default:
      return Error(ErrorCode::internal, std::move(message));
  }
}

// Runs `fn`, turning every exception into an Error of the function's own return type.
template <typename F>
auto guarded(std::string_view op, F&& fn, std::optional<Error> on_constraint = std::nullopt)
    -> decltype(fn()) {
  try {
    return fn();
  } catch (const SQLite::Exception& e) {
    return map_error(op, e, on_constraint);
  } catch (const std::exception& e) {
    return Error(ErrorCode::internal, "store " + str(op) + ": " + e.what());
  }
}

Role read_role(const SQLite::Column& col) {
  const int r = col.getInt();
  if (r < static_cast<int>(Role::observer) || r > static_cast<int>(Role::admin)) {
    throw std::runtime_error("corrupt row: role " + std::to_string(r));
  }
  return static_cast<Role>(r);
}

std::string read_bytes(const SQLite::Column& col) {
  // getBlob() first: it may convert the value, after which getBytes() is the right size.
  const void* data = col.getBlob();
  const int size = col.getBytes();
  if (data == nullptr || size <= 0) return {};
  return std::string(static_cast<const char*>(data), static_cast<std::size_t>(size));
}

Context read_context(SQLite::Statement& q) {
  Context c;
  c.id = q.getColumn(0).getString();
  c.owner = q.getColumn(1).getString();
  c.creator = q.getColumn(2).getString();
  c.created_at_s = q.getColumn(3).getInt64();
  return c;
}

Member read_member(SQLite::Statement& q) {
  Member m;
  m.id_tag = q.getColumn(0).getString();
  m.role = read_role(q.getColumn(1));
  m.deleted = q.getColumn(2).getInt() != 0;
  m.updated_at_s = q.getColumn(3).getInt64();
  return m;
}

void migrate(SQLite::Database& db) {
  // IMMEDIATE: two processes opening a fresh file at once must not both create the tables.
  SQLite::Transaction tx(db, SQLite::TransactionBehavior::IMMEDIATE);
  int version = 0;
  {
    SQLite::Statement q(db, "PRAGMA user_version");
    if (q.executeStep()) version = q.getColumn(0).getInt();
  }
  if (version > kSchemaVersion) {
    throw std::runtime_error("database schema version " + std::to_string(version) +
                             " is newer than this presd supports (" +
                             std::to_string(kSchemaVersion) + ")");
  }
  if (version == kSchemaVersion) return;  // the transaction rolls back: nothing was written
  for (int v = version; v < kSchemaVersion; ++v) db.exec(kMigrations[v]);
  db.exec("PRAGMA user_version = " + std::to_string(kSchemaVersion));
  tx.commit();
}

// One call's use of a prepared statement: fresh bindings, and a reset on every way out, so
// that no read transaction stays open between calls (each call sees the latest commit, and
// checkpoints are never held back).
class Use {
 public:
  explicit Use(SQLite::Statement& q) : q_(q) {
    (void)q_.tryReset();
    q_.clearBindings();
  }
  ~Use() { (void)q_.tryReset(); }
  Use(const Use&) = delete;
  Use& operator=(const Use&) = delete;
  SQLite::Statement& operator*() { return q_; }
  SQLite::Statement* operator->() { return &q_; }

 private:
  SQLite::Statement& q_;
};

}  // namespace

// The lookups the hub makes per subscribe and per accepted PRES (the context, the sender's
// membership, the member list for relays to other instances), prepared on first use and kept:
// compiling the SQL cost more than running it (sqlite3_prepare_v2 + finalize were ~60% of a
// find_context). prepare_v2 statements recompile themselves if another process changes the schema.
struct SqliteStore::Lookups {
  std::unique_ptr<SQLite::Statement> find_context, find_member, list_members;
};

namespace {
SQLite::Statement& prepared(std::unique_ptr<SQLite::Statement>& slot, SQLite::Database& db, const char* sql) {
  if (!slot) slot = std::make_unique<SQLite::Statement>(db, sql);
  return *slot;
}
}  // namespace

SqliteStore::SqliteStore(const std::string& path) : lookups_(std::make_unique<Lookups>()) {
  try {
    db_ = std::make_unique<SQLite::Database>(path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    db_->setBusyTimeout(5000);
    db_->exec("PRAGMA foreign_keys = ON");
    const bool in_memory = path.empty() || path == ":memory:";
    if (!in_memory) {
      // Returns the resulting mode; a read-only or exotic file system may refuse WAL, which is
      // not fatal (reads still work and writes then fail as `unavailable`).
      try {
        SQLite::Statement q(*db_, "PRAGMA journal_mode = WAL");
        (void)q.executeStep();
      } catch (const SQLite::Exception& e) {
        if ((e.getErrorCode() & 0xff) != SQLITE_READONLY) throw;
      }
    }
    bool needs_migration = true;
    {
      SQLite::Statement q(*db_, "PRAGMA user_version");
      if (q.executeStep()) needs_migration = q.getColumn(0).getInt() != kSchemaVersion;
    }
    // Only take the write lock when there is work to do, so a read-only file still opens.
    if (needs_migration) migrate(*db_);
  } catch (const std::exception& e) {
    throw std::runtime_error("cannot open store '" + path + "': " + e.what());
  }
}

SqliteStore::~SqliteStore() = default;

// ---- MembershipStore ----

Status SqliteStore::create_context(const Context& ctx) {
  return guarded(
      "create_context",
      [&]() -> Status {
        SQLite::Statement q(*db_,
                            "INSERT INTO contexts (id, owner, creator, created_at) "
                            "VALUES (?, ?, ?, ?)");
        q.bind(1, ctx.id);
        q.bind(2, ctx.owner);
        q.bind(3, ctx.creator);
        q.bind(4, static_cast<std::int64_t>(ctx.created_at_s));
        q.exec();
        return Status::Ok();
      },
      Error(ErrorCode::conflict, "context '" + ctx.id + "' already exists"));
}

Result<std::optional<Context>> SqliteStore::find_context(std::string_view id) {
  return guarded("find_context", [&]() -> Result<std::optional<Context>> {
    Use q(prepared(lookups_->find_context, *db_,
                   "SELECT id, owner, creator, created_at FROM contexts WHERE id = ?"));
    q->bind(1, str(id));
    if (!q->executeStep()) return std::optional<Context>();
    return std::optional<Context>(read_context(*q));
  });
}

Result<std::vector<Context>> SqliteStore::list_contexts() {
  return guarded("list_contexts", [&]() -> Result<std::vector<Context>> {
    SQLite::Statement q(*db_,
                        "SELECT id, owner, creator, created_at FROM contexts "
                        "ORDER BY created_at, id");
    std::vector<Context> out;
    while (q.executeStep()) out.push_back(read_context(q));
    return out;
  });
}

Status SqliteStore::delete_context(std::string_view id) {
  return guarded("delete_context", [&]() -> Status {
    // members rows go with it (ON DELETE CASCADE).
    SQLite::Statement q(*db_, "DELETE FROM contexts WHERE id = ?");
    q.bind(1, str(id));
    if (q.exec() == 0) {
      return Error(ErrorCode::not_found, "context '" + str(id) + "' does not exist");
    }
    return Status::Ok();
  });
}

Status SqliteStore::grant(std::string_view context_id, std::string_view id_tag, Role role) {
  // One statement: the foreign key rejects an unknown context atomically.
  return guarded(
      "grant",
      [&]() -> Status {
        SQLite::Statement q(*db_,
                            "INSERT INTO members (context_id, id_tag, role, deleted, updated_at) "
                            "VALUES (?, ?, ?, 0, ?) "
                            "ON CONFLICT (context_id, id_tag) DO UPDATE SET "
                            "role = excluded.role, deleted = 0, updated_at = excluded.updated_at");
        q.bind(1, str(context_id));
        q.bind(2, str(id_tag));
        q.bind(3, static_cast<std::int32_t>(role));
        q.bind(4, now_s());
        q.exec();
        return Status::Ok();
      },
      Error(ErrorCode::context_unknown, "unknown context '" + str(context_id) + "'"));
}

Status SqliteStore::revoke(std::string_view context_id, std::string_view id_tag) {
  return guarded("revoke", [&]() -> Status {
    SQLite::Statement q(*db_,
                        "UPDATE members SET deleted = 1, updated_at = ? "
                        "WHERE context_id = ? AND id_tag = ? AND deleted = 0");
    q.bind(1, now_s());
    q.bind(2, str(context_id));
    q.bind(3, str(id_tag));
    if (q.exec() == 0) {
      return Error(ErrorCode::not_found, "'" + str(id_tag) + "' is not an active member of '" +
                                             str(context_id) + "'");
    }
    return Status::Ok();
  });
}

Result<std::optional<Member>> SqliteStore::find_member(std::string_view context_id,
                                                       std::string_view id_tag) {
  return guarded("find_member", [&]() -> Result<std::optional<Member>> {
    Use q(prepared(lookups_->find_member, *db_,
                   "SELECT id_tag, role, deleted, updated_at FROM members "
                   "WHERE context_id = ? AND id_tag = ?"));
    q->bind(1, str(context_id));
    q->bind(2, str(id_tag));
    if (!q->executeStep()) return std::optional<Member>();
    return std::optional<Member>(read_member(*q));
  });
}

Result<std::vector<Member>> SqliteStore::list_members(std::string_view context_id) {
  return guarded("list_members", [&]() -> Result<std::vector<Member>> {
    Use q(prepared(lookups_->list_members, *db_,
                   "SELECT id_tag, role, deleted, updated_at FROM members "
                   "WHERE context_id = ? ORDER BY id_tag"));
    q->bind(1, str(context_id));
    std::vector<Member> out;
    while (q->executeStep()) out.push_back(read_member(*q));
    return out;
  });
}

// ---- KeyStore ----

Status SqliteStore::add_tenant(std::string_view id_tag) {
  return guarded(
      "add_tenant",
      [&]() -> Status {
        SQLite::Statement q(*db_, "INSERT INTO tenants (id_tag, created_at) VALUES (?, ?)");
        q.bind(1, str(id_tag));
        q.bind(2, now_s());
        q.exec();
        return Status::Ok();
      },
      Error(ErrorCode::conflict, "tenant '" + str(id_tag) + "' is already hosted"));
}

Result<bool> SqliteStore::has_tenant(std::string_view id_tag) {
  return guarded("has_tenant", [&]() -> Result<bool> {
    SQLite::Statement q(*db_, "SELECT 1 FROM tenants WHERE id_tag = ?");
    q.bind(1, str(id_tag));
    return q.executeStep();
  });
}

Result<std::vector<std::string>> SqliteStore::list_tenants() {
  return guarded("list_tenants", [&]() -> Result<std::vector<std::string>> {
    SQLite::Statement q(*db_, "SELECT id_tag FROM tenants ORDER BY id_tag");
    std::vector<std::string> out;
    while (q.executeStep()) out.push_back(q.getColumn(0).getString());
    return out;
  });
}

Status SqliteStore::add_key(const StoredKey& key) {
  return guarded(
      "add_key",
      [&]() -> Status {
        SQLite::Statement q(*db_,
                            "INSERT INTO keys (id_tag, key_id, private_pem, public_der, "
                            "created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)");
        q.bind(1, key.id_tag);
        q.bind(2, key.key_id);
        q.bind(3, key.private_pem);
        // Always a BLOB (never NULL, even when empty): the bytes come back exactly.
        static const char kEmpty = 0;
        q.bind(4, key.public_der.empty() ? static_cast<const void*>(&kEmpty)
                                         : static_cast<const void*>(key.public_der.data()),
               static_cast<int>(key.public_der.size()));
        q.bind(5, static_cast<std::int64_t>(key.created_at_s));
        if (key.expires_at_s) {
          q.bind(6, static_cast<std::int64_t>(*key.expires_at_s));
        } else {
          q.bind(6);
        }
        q.exec();
        return Status::Ok();
      },
      Error(ErrorCode::conflict,
            "key '" + key.key_id + "' of '" + key.id_tag + "' already exists"));
}

Result<std::vector<StoredKey>> SqliteStore::list_keys(std::string_view id_tag) {
  return guarded("list_keys", [&]() -> Result<std::vector<StoredKey>> {
    SQLite::Statement q(*db_,
                        "SELECT id_tag, key_id, private_pem, public_der, created_at, expires_at "
                        "FROM keys WHERE id_tag = ? ORDER BY created_at DESC, rowid DESC");
    q.bind(1, str(id_tag));
    std::vector<StoredKey> out;
    while (q.executeStep()) {
      StoredKey k;
      k.id_tag = q.getColumn(0).getString();
      k.key_id = q.getColumn(1).getString();
      k.private_pem = q.getColumn(2).getString();
      k.public_der = read_bytes(q.getColumn(3));
      k.created_at_s = q.getColumn(4).getInt64();
      if (!q.getColumn(5).isNull()) k.expires_at_s = q.getColumn(5).getInt64();
      out.push_back(std::move(k));
    }
    return out;
  });
}

}  // namespace presd

namespace presd {

Result<std::int64_t> SqliteStore::external_change_counter() {
  return guarded("data_version", [&]() -> Result<std::int64_t> {
    return static_cast<std::int64_t>(db_->execAndGet("PRAGMA data_version").getInt64());
  });
}

}  // namespace presd
