// PostgreSQL-only behaviour: schema and migration, start-up failures, outages and reconnection,
// change detection between nodes. The shared behaviour is in store_contract_test.cpp. Every test
// here has "Postgres" in its name: tests/CMakeLists.txt runs them in one process, one server.
#include "store/postgres_store.h"

#include <gtest/gtest.h>

#include <future>
#include <stdexcept>
#include <string>
#include <thread>

#include "store/postgres_connection.h"
#include "store/postgres_environment.h"
#include "store/store_test_util.h"

namespace presd {
namespace {

using testing::postgres_server;

std::string db_of(const std::string& url) { return url.substr(url.rfind('/') + 1); }

TEST(PostgresStore, CreatesVersionedSchema) {
  const std::string url = postgres_server().fresh_database();
  PostgresStore store(url);
  auto& pg = postgres_server();
  EXPECT_EQ(pg.query_value(db_of(url), "SELECT version FROM presd_schema"), std::to_string(PostgresStore::schema_version()));
  EXPECT_EQ(PostgresStore::schema_version(), 1);
  for (const char* table : {"presd_tenants", "presd_keys", "presd_contexts", "presd_members", "presd_change"})
    EXPECT_EQ(pg.query_value(db_of(url), std::string("SELECT to_regclass('") + table + "') IS NOT NULL"), "t") << table;
  EXPECT_EQ(pg.query_value(db_of(url), "SELECT data_type FROM information_schema.columns "
                                       "WHERE table_name = 'presd_keys' AND column_name = 'public_der'"),
            "bytea");
  // Byte order like SQLite, whatever the database's locale.
  EXPECT_EQ(pg.query_value(db_of(url), "SELECT collation_name FROM information_schema.columns "
                                       "WHERE table_name = 'presd_members' AND column_name = 'id_tag'"),
            "C");
  EXPECT_EQ(pg.query_value(db_of(url), "SELECT version FROM presd_change"), "0");
}

TEST(PostgresStore, ReopenKeepsDataWithoutMigratingAgain) {
  const std::string url = postgres_server().fresh_database();
  {
    PostgresStore store(url);
    ASSERT_TRUE(store.create_context(make_context("c1", "o.example.net", "a.example.net", 5)).ok());
    ASSERT_TRUE(store.grant("c1", "bob.example.net", Role::admin).ok());
    ASSERT_TRUE(store.add_key(make_key("a.example.net", "k1", 7, std::string("\0\1\2", 3))).ok());
  }
  PostgresStore store(url);
  auto m = store.find_member("c1", "bob.example.net");
  ASSERT_TRUE(m.ok() && m->has_value());
  EXPECT_EQ((*m)->role, Role::admin);
  auto keys = store.list_keys("a.example.net");
  ASSERT_TRUE(keys.ok());
  ASSERT_EQ(keys->size(), 1u);
  EXPECT_EQ((*keys)[0].public_der, std::string("\0\1\2", 3));
  EXPECT_EQ(store.create_context(make_context("c1", "o", "a", 1)).code(), ErrorCode::conflict);
  EXPECT_EQ(postgres_server().query_value(db_of(url), "SELECT count(*) FROM presd_schema"), "1");
}

TEST(PostgresStore, NodesStartingTogetherMigrateOnce) {
  const std::string url = postgres_server().fresh_database();
  auto open = [&] {
    PostgresStore store(url);
    return store.add_tenant("t" + std::to_string(std::hash<std::thread::id>()(std::this_thread::get_id()) % 100000) +
                            ".example.net")
        .ok();
  };
  auto a = std::async(std::launch::async, open);
  auto b = std::async(std::launch::async, open);
  auto c = std::async(std::launch::async, open);
  EXPECT_TRUE(a.get());
  EXPECT_TRUE(b.get());
  EXPECT_TRUE(c.get());
  EXPECT_EQ(postgres_server().query_value(db_of(url), "SELECT count(*) FROM presd_tenants"), "3");
}

TEST(PostgresStore, NewerSchemaIsRefused) {
  const std::string url = postgres_server().fresh_database();
  postgres_server().sql(db_of(url),
                        "CREATE TABLE presd_schema (id SMALLINT PRIMARY KEY, version INTEGER NOT NULL);"
                        "INSERT INTO presd_schema VALUES (1, 99)");
  try {
    PostgresStore store(url);
    FAIL() << "expected std::runtime_error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("99"), std::string::npos) << e.what();
  }
}

TEST(PostgresStore, UnreachableServerFailsStartupWithoutThePassword) {
  const int closed_port = testing::free_loopback_port();
  const std::string url = "postgresql://presd:s3cret-pw@127.0.0.1:" + std::to_string(closed_port) + "/x";
  try {
    PostgresStore store(url);
    FAIL() << "expected std::runtime_error";
  } catch (const std::runtime_error& e) {
    const std::string what = e.what();
    EXPECT_EQ(what.find("s3cret-pw"), std::string::npos) << what;
    EXPECT_NE(what.find("presd:***@127.0.0.1"), std::string::npos) << what;
    EXPECT_NE(what.find("unavailable"), std::string::npos) << what;
  }
}

TEST(PostgresStore, MalformedUrlFailsStartup) {
  try {
    PostgresStore store("postgresql://127.0.0.1/db?password=hunter2&no_such_option=1");
    FAIL() << "expected std::runtime_error";
  } catch (const std::runtime_error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("no_such_option"), std::string::npos) << what;
    EXPECT_EQ(what.find("hunter2"), std::string::npos) << what;
  }
}

// The database goes down under a running store: every call is `unavailable` (no crash, no
// hang); once it is back the same object works again, reconnecting by itself.
TEST(PostgresStore, ServerDownIsUnavailableThenTheSameStoreRecovers) {
  auto& pg = postgres_server();
  const std::string url = pg.fresh_database();
  PostgresStore store(url);
  ASSERT_TRUE(store.create_context(make_context("c1", "o.example.net", "a.example.net", 1)).ok());
  ASSERT_TRUE(store.grant("c1", "bob.example.net", Role::member).ok());

  pg.stop();
  struct Restart {  // the other tests need the server even if an assertion below fails
    ~Restart() { postgres_server().start(); }
  } restart;
  const auto expect_unavailable = [](ErrorCode code, const char* what) { EXPECT_EQ(code, ErrorCode::unavailable) << what; };
  expect_unavailable(store.find_context("c1").code(), "find_context");
  expect_unavailable(store.find_member("c1", "bob.example.net").code(), "find_member");
  expect_unavailable(store.list_members("c1").code(), "list_members");
  expect_unavailable(store.grant("c1", "eve.example.net", Role::member).code(), "grant");
  expect_unavailable(store.revoke("c1", "bob.example.net").code(), "revoke");
  expect_unavailable(store.add_tenant("a.example.net").code(), "add_tenant");
  expect_unavailable(store.list_keys("a.example.net").code(), "list_keys");
  expect_unavailable(store.external_change_counter().code(), "external_change_counter");
  Status s = store.create_context(make_context("c2", "o", "a", 1));
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("unavailable"), std::string::npos) << s.error().message;

  pg.start();
  auto m = store.find_member("c1", "bob.example.net");
  ASSERT_TRUE(m.ok()) << m.error().message;
  ASSERT_TRUE(m->has_value());
  EXPECT_FALSE((*m)->deleted);  // the revoke during the outage did not happen
  EXPECT_TRUE(store.grant("c1", "eve.example.net", Role::member).ok());
  EXPECT_TRUE(store.external_change_counter().ok());
}

// A connection the server dropped (restart, idle timeout, failover) is replaced on the next
// call: reads and writes succeed at once instead of failing once.
TEST(PostgresStore, DroppedConnectionIsReplacedTransparently) {
  auto& pg = postgres_server();
  const std::string url = pg.fresh_database();
  PostgresStore store(url);
  ASSERT_TRUE(store.add_tenant("a.example.net").ok());
  const std::string kill = "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                           "WHERE application_name = 'presd' AND datname = '" + db_of(url) + "'";

  EXPECT_EQ(pg.query_value("postgres", kill), "1");
  auto has = store.has_tenant("a.example.net");
  ASSERT_TRUE(has.ok()) << has.error().message;
  EXPECT_TRUE(*has);

  EXPECT_EQ(pg.query_value("postgres", kill), "1");
  Status s = store.add_tenant("b.example.net");
  EXPECT_TRUE(s.ok()) << s.error().message;
  auto tenants = store.list_tenants();
  ASSERT_TRUE(tenants.ok());
  EXPECT_EQ(tenants->size(), 2u);
}

// Several nodes on one database: each sees the others' commits (and the CLI's) through the
// change counter, not its own, and not failed writes.
TEST(PostgresStore, ChangeCounterSeesOtherNodesOnly) {
  const std::string url = postgres_server().fresh_database();
  PostgresStore a(url);
  PostgresStore b(url);
  auto a0 = a.external_change_counter();
  auto b0 = b.external_change_counter();
  ASSERT_TRUE(a0.ok() && b0.ok());

  ASSERT_TRUE(a.create_context(make_context("c1", "o.example.net", "o.example.net", 1)).ok());
  ASSERT_TRUE(a.grant("c1", "u.example.net", Role::member).ok());
  EXPECT_EQ(*a.external_change_counter(), *a0);  // own writes do not count
  auto b1 = b.external_change_counter();
  ASSERT_TRUE(b1.ok());
  EXPECT_NE(*b1, *b0);

  // Failed writes change nothing anywhere.
  EXPECT_EQ(b.create_context(make_context("c1", "x", "y", 1)).code(), ErrorCode::conflict);
  EXPECT_EQ(b.revoke("c1", "nobody.example.net").code(), ErrorCode::not_found);
  EXPECT_EQ(b.grant("c-missing", "u.example.net", Role::member).code(), ErrorCode::context_unknown);
  EXPECT_EQ(*a.external_change_counter(), *a0);
  EXPECT_EQ(*b.external_change_counter(), *b1);

  {
    PostgresStore cli(url);  // `presd context revoke --store ...`
    ASSERT_TRUE(cli.revoke("c1", "u.example.net").ok());
  }
  EXPECT_NE(*a.external_change_counter(), *a0);
  EXPECT_NE(*b.external_change_counter(), *b1);
}

TEST(PostgresStore, TextTheDatabaseCannotHoldIsBadRequest) {
  const std::string url = postgres_server().fresh_database();
  PostgresStore store(url);
  Status nul = store.add_tenant(std::string("a\0b.example.net", 15));
  ASSERT_FALSE(nul.ok());
  EXPECT_EQ(nul.code(), ErrorCode::bad_request);
  Status utf8 = store.create_context(make_context("c\xff\xfe", "o.example.net", "a.example.net", 1));
  ASSERT_FALSE(utf8.ok());
  EXPECT_EQ(utf8.code(), ErrorCode::bad_request) << utf8.error().message;
  // The failed transaction was rolled back: the connection keeps working.
  EXPECT_TRUE(store.add_tenant("a.example.net").ok());
  auto tenants = store.list_tenants();
  ASSERT_TRUE(tenants.ok());
  EXPECT_EQ(tenants->size(), 1u);
}

TEST(PostgresSqlstate, MapsToStoreCodes) {
  const std::optional<Error> conflict = Error(ErrorCode::conflict, "exists");
  EXPECT_EQ(pg::map_sqlstate("op", "23505", "dup", conflict).code, ErrorCode::conflict);
  EXPECT_EQ(pg::map_sqlstate("op", "23503", "fk", conflict).code, ErrorCode::conflict);
  EXPECT_EQ(pg::map_sqlstate("op", "23505", "dup", std::nullopt).code, ErrorCode::internal);
  for (const char* s : {"08006", "57P01", "57P03", "53300", "40001", "40P01", "55P03", "25006", "58030"})
    EXPECT_EQ(pg::map_sqlstate("op", s, "x", std::nullopt).code, ErrorCode::unavailable) << s;
  EXPECT_EQ(pg::map_sqlstate("op", "22021", "bad utf8", std::nullopt).code, ErrorCode::bad_request);
  EXPECT_EQ(pg::map_sqlstate("op", "42P01", "no table", std::nullopt).code, ErrorCode::internal);
  EXPECT_EQ(pg::map_sqlstate("op", "", "no state", std::nullopt).code, ErrorCode::internal);
}

}  // namespace
}  // namespace presd
