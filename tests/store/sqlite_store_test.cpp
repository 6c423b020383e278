// SQLite-only behaviour: the file, its pragmas, permissions, a full disk, a busy lock. What
// every backend shares is in store_contract_test.cpp.
#include "store/sqlite_store.h"

#include <SQLiteCpp/SQLiteCpp.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>

#include "store/store_test_util.h"

namespace presd {
namespace {

namespace fs = std::filesystem;

TEST(RoleNames, ToStringAndParse) {
  EXPECT_EQ(to_string(Role::observer), "observer");
  EXPECT_EQ(to_string(Role::member), "member");
  EXPECT_EQ(to_string(Role::moderator), "moderator");
  EXPECT_EQ(to_string(Role::admin), "admin");
  for (Role r : {Role::observer, Role::member, Role::moderator, Role::admin}) {
    EXPECT_EQ(parse_role(to_string(r)), r);
  }
  EXPECT_EQ(parse_role(""), std::nullopt);
  EXPECT_EQ(parse_role("Admin"), std::nullopt);
  EXPECT_EQ(parse_role("ADMIN"), std::nullopt);
  EXPECT_EQ(parse_role(" member"), std::nullopt);
  EXPECT_EQ(parse_role("member "), std::nullopt);
  EXPECT_EQ(parse_role("owner"), std::nullopt);
  EXPECT_EQ(parse_role("2"), std::nullopt);
  EXPECT_EQ(parse_role(std::string_view("member\0", 7)), std::nullopt);
}

TEST(RoleNames, OrderMatchesProtocol) {
  EXPECT_LT(Role::observer, Role::member);
  EXPECT_LT(Role::member, Role::moderator);
  EXPECT_LT(Role::moderator, Role::admin);
}

// ---- On-disk behaviour ----

TEST(SqliteStoreFile, ReopenKeepsData) {
  TempDir dir;
  const std::string path = dir.file("presd.db");
  {
    SqliteStore store(path);
    ASSERT_TRUE(store.create_context(make_context("c1", "o.example.net", "a.example.net", 5)).ok());
    ASSERT_TRUE(store.grant("c1", "bob.example.net", Role::member).ok());
    ASSERT_TRUE(store.grant("c1", "eve.example.net", Role::member).ok());
    ASSERT_TRUE(store.revoke("c1", "eve.example.net").ok());
    ASSERT_TRUE(store.add_tenant("a.example.net").ok());
    ASSERT_TRUE(store.add_key(make_key("a.example.net", "240101", 7, std::string("\0\1\2", 3))).ok());
  }
  ASSERT_TRUE(fs::exists(path));
  {
    SqliteStore store(path);
    auto ctx = store.find_context("c1");
    ASSERT_TRUE(ctx.ok() && ctx->has_value());
    EXPECT_EQ((*ctx)->created_at_s, 5);
    auto members = store.list_members("c1");
    ASSERT_TRUE(members.ok());
    ASSERT_EQ(members->size(), 2u);
    EXPECT_EQ((*members)[0].id_tag, "bob.example.net");
    EXPECT_FALSE((*members)[0].deleted);
    EXPECT_TRUE((*members)[1].deleted);
    auto has = store.has_tenant("a.example.net");
    ASSERT_TRUE(has.ok());
    EXPECT_TRUE(*has);
    auto keys = store.list_keys("a.example.net");
    ASSERT_TRUE(keys.ok());
    ASSERT_EQ(keys->size(), 1u);
    EXPECT_EQ((*keys)[0].public_der, std::string("\0\1\2", 3));
    // Constraints still hold after reopening (the schema was not recreated).
    EXPECT_EQ(store.create_context(make_context("c1", "o", "a", 1)).code(), ErrorCode::conflict);
  }
}

TEST(SqliteStoreFile, SchemaVersionAndPragmas) {
  TempDir dir;
  const std::string path = dir.file("presd.db");
  { SqliteStore store(path); }
  SQLite::Database db(path, SQLite::OPEN_READONLY);
  EXPECT_EQ(db.execAndGet("PRAGMA user_version").getInt(), 1);
  EXPECT_EQ(db.execAndGet("PRAGMA journal_mode").getString(), "wal");
  for (const char* table : {"tenants", "keys", "contexts", "members"}) {
    SQLite::Statement q(db, "SELECT count(*) FROM sqlite_master WHERE type='table' AND name=?");
    q.bind(1, table);
    ASSERT_TRUE(q.executeStep());
    EXPECT_EQ(q.getColumn(0).getInt(), 1) << table;
  }
  SQLite::Statement blob_type(db, "SELECT type FROM pragma_table_info('keys') WHERE name='public_der'");
  ASSERT_TRUE(blob_type.executeStep());
  EXPECT_EQ(blob_type.getColumn(0).getString(), "BLOB");
}

TEST(SqliteStoreFile, DerIsStoredAsBlob) {
  TempDir dir;
  const std::string path = dir.file("presd.db");
  {
    SqliteStore store(path);
    ASSERT_TRUE(store.add_key(make_key("a.example.net", "k1", 1, std::string("\x30\x00\x01", 3))).ok());
  }
  SQLite::Database db(path, SQLite::OPEN_READONLY);
  SQLite::Statement q(db, "SELECT typeof(public_der), length(public_der) FROM keys");
  ASSERT_TRUE(q.executeStep());
  EXPECT_EQ(q.getColumn(0).getString(), "blob");
  EXPECT_EQ(q.getColumn(1).getInt(), 3);
}

TEST(SqliteStoreFile, NewerSchemaIsRefused) {
  TempDir dir;
  const std::string path = dir.file("presd.db");
  {
    SQLite::Database db(path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    db.exec("PRAGMA user_version = 99");
  }
  try {
    SqliteStore store(path);
    FAIL() << "expected std::runtime_error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("99"), std::string::npos) << e.what();
  }
}

TEST(SqliteStoreFile, UnopenablePathThrows) {
  TempDir dir;
  EXPECT_THROW(SqliteStore(dir.file("no/such/dir/presd.db")), std::runtime_error);
  // A file that is not a database.
  const std::string junk = dir.file("junk.db");
  {
    FILE* f = std::fopen(junk.c_str(), "wb");
    ASSERT_NE(f, nullptr);
    std::string garbage(4096, 'x');
    std::fwrite(garbage.data(), 1, garbage.size(), f);
    std::fclose(f);
  }
  EXPECT_THROW(SqliteStore{junk}, std::runtime_error);
}

// Runs `body` in a forked child (optionally as the unprivileged user `nobody`) and returns
// what it reports: an empty string means success. Keeps process-wide changes (uid, rlimits)
// out of the test runner.
std::string run_in_child(bool drop_privileges, const std::function<std::string()>& body) {
  int fds[2];
  if (::pipe(fds) != 0) return "pipe failed";
  const pid_t pid = ::fork();
  if (pid < 0) return "fork failed";
  if (pid == 0) {
    ::close(fds[0]);
    std::string report;
    if (drop_privileges && (::setgid(65534) != 0 || ::setuid(65534) != 0)) {
      report = "SKIP: cannot drop privileges";
    } else {
      try {
        report = body();
      } catch (const std::exception& e) {
        report = std::string("exception: ") + e.what();
      } catch (...) {
        report = "unknown exception";
      }
    }
    if (report.empty()) report = "OK";
    (void)!::write(fds[1], report.data(), report.size());
    ::close(fds[1]);
    ::_exit(0);
  }
  ::close(fds[1]);
  std::string out;
  char buf[512];
  ssize_t n;
  while ((n = ::read(fds[0], buf, sizeof buf)) > 0) out.append(buf, static_cast<std::size_t>(n));
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (!WIFEXITED(status)) return "child crashed (signal " + std::to_string(WTERMSIG(status)) + ")";
  return out == "OK" ? std::string() : out;
}

std::string expect_unavailable(const char* what, const Status& s) {
  if (s.ok()) return std::string(what) + " succeeded; ";
  if (s.code() != ErrorCode::unavailable) {
    return std::string(what) + " gave " + std::string(to_string(s.code())) + ": " +
           s.error().message + "; ";
  }
  if (s.error().message.empty()) return std::string(what) + " has no message; ";
  return {};
}

// Opens a read-only copy of a populated database: reads work, every write is `unavailable`.
std::string read_only_scenario(const std::string& path) {
  SqliteStore store(path);
  std::string failures;
  auto ctx = store.find_context("c1");
  if (!ctx.ok() || !ctx->has_value()) failures += "read failed; ";
  auto keys = store.list_keys("a.example.net");
  if (!keys.ok() || keys->size() != 1) failures += "list_keys failed; ";
  failures += expect_unavailable("create_context",
                                 store.create_context(make_context("c2", "o", "a", 1)));
  failures += expect_unavailable("grant", store.grant("c1", "new.example.net", Role::member));
  failures += expect_unavailable("revoke", store.revoke("c1", "bob.example.net"));
  failures += expect_unavailable("delete_context", store.delete_context("c1"));
  failures += expect_unavailable("add_tenant", store.add_tenant("b.example.net"));
  failures += expect_unavailable("add_key", store.add_key(make_key("a.example.net", "k2", 2)));
  // Nothing changed.
  auto m = store.find_member("c1", "bob.example.net");
  if (!m.ok() || !m->has_value() || (*m)->deleted) failures += "member changed; ";
  return failures;
}

void populate(const std::string& path) {
  SqliteStore store(path);
  ASSERT_TRUE(store.create_context(make_context("c1", "o.example.net", "a.example.net", 1)).ok());
  ASSERT_TRUE(store.grant("c1", "bob.example.net", Role::member).ok());
  ASSERT_TRUE(store.add_tenant("a.example.net").ok());
  ASSERT_TRUE(store.add_key(make_key("a.example.net", "k1", 1)).ok());
}

constexpr fs::perms kReadOnly =
    fs::perms::owner_read | fs::perms::group_read | fs::perms::others_read;
constexpr fs::perms kReadOnlyDir = kReadOnly | fs::perms::owner_exec | fs::perms::group_exec |
                                   fs::perms::others_exec;

// Runs `scenario` against a file the process cannot write: directly when not root, else in a
// child running as `nobody` (root ignores file modes). Returns its report; "SKIP..." to skip.
std::string run_without_write_access(const std::string& path,
                                     const std::function<std::string()>& scenario) {
  if (::geteuid() != 0) {
    if (::access(path.c_str(), W_OK) == 0) return "SKIP: chmod had no effect";
    return run_in_child(false, scenario);
  }
  return run_in_child(true, [&] {
    if (::access(path.c_str(), W_OK) == 0) return std::string("SKIP: still writable");
    return scenario();
  });
}

// The database file is read-only (its directory is not, so SQLite can create the WAL index):
// the store opens, reads work and every write is `unavailable`.
TEST(SqliteStoreFile, ReadOnlyFileWritesAreUnavailable) {
  TempDir dir;
  const std::string path = dir.file("presd.db");
  populate(path);
  if (HasFatalFailure()) return;
  fs::permissions(path, kReadOnly);
  fs::permissions(dir.path(), fs::perms::all);  // `nobody` must be able to create -shm

  const std::string report = run_without_write_access(path, [&] { return read_only_scenario(path); });
  if (report.rfind("SKIP", 0) == 0) GTEST_SKIP() << report;
  EXPECT_EQ(report, "");
}

// File and directory read-only: SQLite cannot even read a WAL database without creating its
// -shm file, so start-up fails with a clean std::runtime_error (no crash, no partial store).
TEST(SqliteStoreFile, ReadOnlyFileAndDirectoryFailAtStartup) {
  TempDir dir;
  const std::string path = dir.file("presd.db");
  populate(path);
  if (HasFatalFailure()) return;
  fs::permissions(path, kReadOnly);
  fs::permissions(dir.path(), kReadOnlyDir);

  const std::string report = run_without_write_access(path, [&]() -> std::string {
    try {
      SqliteStore store(path);
      // If this SQLite can read it after all, writes must still be refused cleanly.
      return read_only_scenario(path);
    } catch (const std::runtime_error& e) {
      const std::string what = e.what();
      if (what.find(path) == std::string::npos) return "message lacks the path: " + what;
      return {};
    }
  });
  if (report.rfind("SKIP", 0) == 0) GTEST_SKIP() << report;
  EXPECT_EQ(report, "");
}

// A write that hits the file size limit (as on a full disk) is `unavailable`, not a crash, and
// the store keeps serving reads. RLIMIT_FSIZE applies to root too.
TEST(SqliteStoreFile, WriteFailureIsUnavailable) {
  TempDir dir;
  const std::string path = dir.file("presd.db");
  populate(path);
  if (HasFatalFailure()) return;

  const std::string report = run_in_child(false, [&]() -> std::string {
    SqliteStore store(path);
    ::signal(SIGXFSZ, SIG_IGN);
    rlimit lim{};
    lim.rlim_cur = lim.rlim_max = 256 * 1024;
    if (::setrlimit(RLIMIT_FSIZE, &lim) != 0) return "SKIP: setrlimit failed";
    std::string failures;
    StoredKey big = make_key("a.example.net", "big", 2, std::string(2 * 1024 * 1024, '\x5a'));
    failures += expect_unavailable("add_key", store.add_key(big));
    auto keys = store.list_keys("a.example.net");
    if (!keys.ok()) {
      failures += "read after failure: " + keys.error().message + "; ";
    } else if (keys->size() != 1) {
      failures += "partial write visible; ";
    }
    return failures;
  });
  if (report.rfind("SKIP", 0) == 0) GTEST_SKIP() << report;
  EXPECT_EQ(report, "");
}

TEST(SqliteStoreFile, BusyDatabaseIsUnavailable) {
  TempDir dir;
  const std::string path = dir.file("presd.db");
  populate(path);
  if (HasFatalFailure()) return;
  SqliteStore store(path);
  // Another connection holds the write lock past the busy timeout.
  SQLite::Database other(path, SQLite::OPEN_READWRITE);
  other.exec("BEGIN IMMEDIATE");
  other.exec("INSERT INTO tenants (id_tag, created_at) VALUES ('x.example.net', 1)");
  const auto start = std::time(nullptr);
  Status s = store.add_tenant("b.example.net");
  EXPECT_EQ(expect_unavailable("add_tenant", s), "");
  EXPECT_GE(std::time(nullptr) - start, 4);  // waited for busy_timeout (5 s)
  // Readers are not blocked by a writer in WAL mode.
  auto has = store.has_tenant("a.example.net");
  ASSERT_TRUE(has.ok());
  EXPECT_TRUE(*has);
  other.exec("ROLLBACK");
  EXPECT_TRUE(store.add_tenant("b.example.net").ok());
}

}  // namespace
}  // namespace presd

namespace presd {
namespace {

TEST(SqliteStoreFile, ExternalChangeCounterSeesOtherConnectionsOnly) {
  TempDir dir;
  SqliteStore server(dir.file("presd.db"));
  auto before = server.external_change_counter();
  ASSERT_TRUE(before);
  ASSERT_TRUE(server.create_context({"room:a", "o.example.net", "o.example.net", 1}));
  EXPECT_EQ(*server.external_change_counter(), *before);  // own writes do not count
  {
    SqliteStore cli(dir.file("presd.db"));
    ASSERT_TRUE(cli.grant("room:a", "u.example.net", Role::member));
  }
  EXPECT_NE(*server.external_change_counter(), *before);
}

}  // namespace
}  // namespace presd

namespace presd {
namespace {

// find_context and find_member keep their prepared statements between calls: each call must
// still read the latest commit of any connection (no read transaction left open), keep
// working after a failed call, and not stop another connection from checkpointing.
TEST(SqliteStoreFile, PreparedLookupsSeeEveryCommitOfOtherConnections) {
  TempDir dir;
  SqliteStore server(dir.file("presd.db"));
  ASSERT_TRUE(server.create_context({"room:a", "o.example.net", "o.example.net", 1}));
  SqliteStore cli(dir.file("presd.db"));
  EXPECT_FALSE(server.find_context("room:b")->has_value());
  EXPECT_FALSE(server.find_member("room:a", "u.example.net")->has_value());
  for (int round = 0; round < 3; ++round) {
    ASSERT_TRUE(cli.grant("room:a", "u.example.net", round == 1 ? Role::observer : Role::member));
    auto m = server.find_member("room:a", "u.example.net");
    ASSERT_TRUE(m && m->has_value());
    EXPECT_EQ((*m)->role, round == 1 ? Role::observer : Role::member);
    EXPECT_FALSE((*m)->deleted);
    auto listed = server.list_members("room:a");
    ASSERT_TRUE(listed.ok());
    ASSERT_EQ(listed->size(), 1u);
    EXPECT_EQ((*listed)[0].role, round == 1 ? Role::observer : Role::member);
    ASSERT_TRUE(cli.revoke("room:a", "u.example.net"));
    EXPECT_TRUE((*server.find_member("room:a", "u.example.net"))->deleted);
    EXPECT_TRUE((*server.list_members("room:a"))[0].deleted);
  }
  ASSERT_TRUE(cli.grant("room:a", "v.example.net", Role::member));
  EXPECT_EQ(server.list_members("room:a")->size(), 2u);
  ASSERT_TRUE(cli.create_context({"room:b", "o.example.net", "o.example.net", 2}));
  EXPECT_EQ((*server.find_context("room:b"))->id, "room:b");
  ASSERT_TRUE(cli.delete_context("room:b"));
  EXPECT_FALSE(server.find_context("room:b")->has_value());
  // The server's connection holds no snapshot: a full checkpoint by another connection succeeds.
  SQLite::Database other(dir.file("presd.db"), SQLite::OPEN_READWRITE);
  (void)server.find_context("room:a");
  (void)server.list_members("room:a");
  SQLite::Statement checkpoint(other, "PRAGMA wal_checkpoint(TRUNCATE)");
  ASSERT_TRUE(checkpoint.executeStep());
  EXPECT_EQ(checkpoint.getColumn(0).getInt(), 0) << "checkpoint blocked by an open read transaction";
}

}  // namespace
}  // namespace presd
