// The behaviour every store backend must share, run against SQLite (in memory and on disk) and
// PostgreSQL (a throw-away server, tests/store/postgres_server.h). Backend-specific behaviour
// (files, permissions, schema tables, outages) is tested in sqlite_store_test.cpp and
// postgres_store_test.cpp.
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "store/postgres_store.h"
#include "store/sqlite_store.h"
#include "store/postgres_environment.h"
#include "store/store_test_util.h"

namespace presd {
namespace {

enum class Backend { sqlite_memory, sqlite_file, postgres };

class StoreContractTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    switch (GetParam()) {
      case Backend::sqlite_memory: store_ = std::make_unique<SqliteStore>(":memory:"); break;
      case Backend::sqlite_file: store_ = std::make_unique<SqliteStore>(dir_.file("presd.db")); break;
      case Backend::postgres:
        store_ = std::make_unique<PostgresStore>(testing::postgres_server().fresh_database());
        break;
    }
  }

  TempDir dir_;
  std::unique_ptr<Store> store_;
};

// "Postgres" in the test name: tests/CMakeLists.txt runs those in one process (one server).
INSTANTIATE_TEST_SUITE_P(Backends, StoreContractTest,
                         ::testing::Values(Backend::sqlite_memory, Backend::sqlite_file, Backend::postgres),
                         [](const ::testing::TestParamInfo<Backend>& info) {
                           switch (info.param) {
                             case Backend::sqlite_memory: return "SqliteMemory";
                             case Backend::sqlite_file: return "SqliteFile";
                             case Backend::postgres: return "Postgres";
                           }
                           return "Unknown";
                         });

TEST_P(StoreContractTest, ContextRoundtrip) {
  const auto ctx = make_context("a1~abc", "owner.example.net", "alice.example.net", 1700000000);
  ASSERT_TRUE(store_->create_context(ctx).ok());

  auto found = store_->find_context("a1~abc");
  ASSERT_TRUE(found.ok());
  ASSERT_TRUE(found->has_value());
  EXPECT_EQ((*found)->id, "a1~abc");
  EXPECT_EQ((*found)->owner, "owner.example.net");
  EXPECT_EQ((*found)->creator, "alice.example.net");
  EXPECT_EQ((*found)->created_at_s, 1700000000);

  auto missing = store_->find_context("a1~nope");
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(missing->has_value());
}

TEST_P(StoreContractTest, CreateContextDuplicateIsConflict) {
  ASSERT_TRUE(store_->create_context(make_context("c1", "o.example.net", "a.example.net", 1)).ok());
  Status again = store_->create_context(make_context("c1", "x.example.net", "y.example.net", 2));
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.code(), ErrorCode::conflict);
  EXPECT_NE(again.error().message.find("c1"), std::string::npos);
  // The original row is untouched.
  auto found = store_->find_context("c1");
  ASSERT_TRUE(found.ok() && found->has_value());
  EXPECT_EQ((*found)->creator, "a.example.net");
}

TEST_P(StoreContractTest, ListContexts) {
  auto empty = store_->list_contexts();
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());

  ASSERT_TRUE(store_->create_context(make_context("c2", "o.example.net", "a.example.net", 20)).ok());
  ASSERT_TRUE(store_->create_context(make_context("c1", "o.example.net", "b.example.net", 10)).ok());
  ASSERT_TRUE(store_->create_context(make_context("c3", "o.example.net", "c.example.net", 30)).ok());
  auto all = store_->list_contexts();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 3u);
  EXPECT_EQ((*all)[0].id, "c1");
  EXPECT_EQ((*all)[1].id, "c2");
  EXPECT_EQ((*all)[2].id, "c3");
  EXPECT_EQ((*all)[0].creator, "b.example.net");
}

TEST_P(StoreContractTest, DeleteContextDropsMembers) {
  Status absent = store_->delete_context("c1");
  ASSERT_FALSE(absent.ok());
  EXPECT_EQ(absent.code(), ErrorCode::not_found);

  ASSERT_TRUE(store_->create_context(make_context("c1", "o.example.net", "a.example.net", 1)).ok());
  ASSERT_TRUE(store_->create_context(make_context("c2", "o.example.net", "a.example.net", 1)).ok());
  ASSERT_TRUE(store_->grant("c1", "bob.example.net", Role::member).ok());
  ASSERT_TRUE(store_->grant("c2", "bob.example.net", Role::member).ok());

  ASSERT_TRUE(store_->delete_context("c1").ok());
  auto found = store_->find_context("c1");
  ASSERT_TRUE(found.ok());
  EXPECT_FALSE(found->has_value());

  // Cascade: the members went with it, even if the id is reused.
  auto member = store_->find_member("c1", "bob.example.net");
  ASSERT_TRUE(member.ok());
  EXPECT_FALSE(member->has_value());
  ASSERT_TRUE(store_->create_context(make_context("c1", "o.example.net", "a.example.net", 2)).ok());
  auto members = store_->list_members("c1");
  ASSERT_TRUE(members.ok());
  EXPECT_TRUE(members->empty());

  // Other contexts keep theirs.
  auto other = store_->find_member("c2", "bob.example.net");
  ASSERT_TRUE(other.ok());
  EXPECT_TRUE(other->has_value());

  Status twice = store_->delete_context("c2");
  ASSERT_TRUE(twice.ok());
  twice = store_->delete_context("c2");
  ASSERT_FALSE(twice.ok());
  EXPECT_EQ(twice.code(), ErrorCode::not_found);
}

TEST_P(StoreContractTest, GrantRoundtripAndUpsert) {
  ASSERT_TRUE(store_->create_context(make_context("c1", "o.example.net", "a.example.net", 1)).ok());
  const auto before = now_s();
  ASSERT_TRUE(store_->grant("c1", "bob.example.net", Role::observer).ok());

  auto m = store_->find_member("c1", "bob.example.net");
  ASSERT_TRUE(m.ok());
  ASSERT_TRUE(m->has_value());
  EXPECT_EQ((*m)->id_tag, "bob.example.net");
  EXPECT_EQ((*m)->role, Role::observer);
  EXPECT_FALSE((*m)->deleted);
  EXPECT_GE((*m)->updated_at_s, before);
  EXPECT_LE((*m)->updated_at_s, now_s());

  // Upsert: the same member gets a new role, still one row.
  ASSERT_TRUE(store_->grant("c1", "bob.example.net", Role::moderator).ok());
  m = store_->find_member("c1", "bob.example.net");
  ASSERT_TRUE(m.ok() && m->has_value());
  EXPECT_EQ((*m)->role, Role::moderator);
  auto list = store_->list_members("c1");
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->size(), 1u);

  auto none = store_->find_member("c1", "carol.example.net");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  none = store_->find_member("c-unknown", "bob.example.net");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
}

TEST_P(StoreContractTest, EveryRoleRoundtrips) {
  ASSERT_TRUE(store_->create_context(make_context("c1", "o.example.net", "a.example.net", 1)).ok());
  for (Role r : {Role::observer, Role::member, Role::moderator, Role::admin}) {
    ASSERT_TRUE(store_->grant("c1", "u.example.net", r).ok());
    auto m = store_->find_member("c1", "u.example.net");
    ASSERT_TRUE(m.ok() && m->has_value());
    EXPECT_EQ((*m)->role, r) << to_string(r);
  }
}

TEST_P(StoreContractTest, GrantUnknownContext) {
  Status s = store_->grant("c-missing", "bob.example.net", Role::member);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), ErrorCode::context_unknown);
  EXPECT_NE(s.error().message.find("c-missing"), std::string::npos);
  auto m = store_->find_member("c-missing", "bob.example.net");
  ASSERT_TRUE(m.ok());
  EXPECT_FALSE(m->has_value());
}

TEST_P(StoreContractTest, RevokeThenRegrant) {
  ASSERT_TRUE(store_->create_context(make_context("c1", "o.example.net", "a.example.net", 1)).ok());

  Status s = store_->revoke("c1", "bob.example.net");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), ErrorCode::not_found);
  s = store_->revoke("c-missing", "bob.example.net");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), ErrorCode::not_found);

  ASSERT_TRUE(store_->grant("c1", "bob.example.net", Role::moderator).ok());
  ASSERT_TRUE(store_->revoke("c1", "bob.example.net").ok());
  auto m = store_->find_member("c1", "bob.example.net");
  ASSERT_TRUE(m.ok() && m->has_value());
  EXPECT_TRUE((*m)->deleted);
  EXPECT_EQ((*m)->role, Role::moderator);  // history kept
  EXPECT_GE((*m)->updated_at_s, now_s() - 5);

  // Already revoked: no active member.
  s = store_->revoke("c1", "bob.example.net");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), ErrorCode::not_found);

  // Deleted members are still listed.
  auto list = store_->list_members("c1");
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 1u);
  EXPECT_TRUE((*list)[0].deleted);

  ASSERT_TRUE(store_->grant("c1", "bob.example.net", Role::observer).ok());
  m = store_->find_member("c1", "bob.example.net");
  ASSERT_TRUE(m.ok() && m->has_value());
  EXPECT_FALSE((*m)->deleted);
  EXPECT_EQ((*m)->role, Role::observer);
  ASSERT_TRUE(store_->revoke("c1", "bob.example.net").ok());
}

TEST_P(StoreContractTest, ListMembersOrderedByIdTag) {
  ASSERT_TRUE(store_->create_context(make_context("c1", "o.example.net", "a.example.net", 1)).ok());
  ASSERT_TRUE(store_->create_context(make_context("c2", "o.example.net", "a.example.net", 1)).ok());
  ASSERT_TRUE(store_->grant("c1", "zed.example.net", Role::member).ok());
  ASSERT_TRUE(store_->grant("c1", "amy.example.net", Role::admin).ok());
  ASSERT_TRUE(store_->grant("c1", "mia.example.net", Role::observer).ok());
  ASSERT_TRUE(store_->grant("c2", "bob.example.net", Role::member).ok());
  ASSERT_TRUE(store_->revoke("c1", "mia.example.net").ok());

  auto list = store_->list_members("c1");
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 3u);
  EXPECT_EQ((*list)[0].id_tag, "amy.example.net");
  EXPECT_EQ((*list)[0].role, Role::admin);
  EXPECT_FALSE((*list)[0].deleted);
  EXPECT_EQ((*list)[1].id_tag, "mia.example.net");
  EXPECT_TRUE((*list)[1].deleted);
  EXPECT_EQ((*list)[2].id_tag, "zed.example.net");
  EXPECT_EQ((*list)[2].role, Role::member);

  auto unknown = store_->list_members("c-none");
  ASSERT_TRUE(unknown.ok());
  EXPECT_TRUE(unknown->empty());
}

TEST_P(StoreContractTest, TenantsRoundtripAndConflict) {
  auto has = store_->has_tenant("alice.example.net");
  ASSERT_TRUE(has.ok());
  EXPECT_FALSE(*has);
  auto empty = store_->list_tenants();
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());

  ASSERT_TRUE(store_->add_tenant("carol.example.net").ok());
  ASSERT_TRUE(store_->add_tenant("alice.example.net").ok());
  has = store_->has_tenant("alice.example.net");
  ASSERT_TRUE(has.ok());
  EXPECT_TRUE(*has);
  has = store_->has_tenant("bob.example.net");
  ASSERT_TRUE(has.ok());
  EXPECT_FALSE(*has);

  Status dup = store_->add_tenant("alice.example.net");
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.code(), ErrorCode::conflict);
  EXPECT_NE(dup.error().message.find("alice.example.net"), std::string::npos);

  auto list = store_->list_tenants();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0], "alice.example.net");
  EXPECT_EQ((*list)[1], "carol.example.net");
}

TEST_P(StoreContractTest, KeysNewestFirstWithExactBytes) {
  std::string der("\x30\x76\x30\x10\x06\x07\x2a\x86\x48\xce\x3d\x02\x01\x00\x00\xff\x80", 17);
  ASSERT_EQ(der.size(), 17u);
  ASSERT_TRUE(store_->add_key(make_key("alice.example.net", "240101", 1704067200, der)).ok());
  ASSERT_TRUE(store_->add_key(make_key("alice.example.net", "240301", 1709251200, std::string(1, '\0'),
                                       1717200000))
                  .ok());
  ASSERT_TRUE(store_->add_key(make_key("alice.example.net", "240201", 1706745600)).ok());
  // Same created_at: insertion order breaks the tie, the later key first.
  ASSERT_TRUE(store_->add_key(make_key("alice.example.net", "240202", 1706745600)).ok());
  ASSERT_TRUE(store_->add_key(make_key("bob.example.net", "250101", 1900000000)).ok());

  auto keys = store_->list_keys("alice.example.net");
  ASSERT_TRUE(keys.ok());
  ASSERT_EQ(keys->size(), 4u);
  EXPECT_EQ((*keys)[0].key_id, "240301");
  EXPECT_EQ((*keys)[1].key_id, "240202");
  EXPECT_EQ((*keys)[2].key_id, "240201");
  EXPECT_EQ((*keys)[3].key_id, "240101");

  EXPECT_EQ((*keys)[0].public_der, std::string(1, '\0'));
  ASSERT_TRUE((*keys)[0].expires_at_s.has_value());
  EXPECT_EQ(*(*keys)[0].expires_at_s, 1717200000);

  const StoredKey& oldest = (*keys)[3];
  EXPECT_EQ(oldest.id_tag, "alice.example.net");
  EXPECT_EQ(oldest.public_der, der);
  EXPECT_EQ(oldest.public_der.size(), 17u);
  EXPECT_EQ(oldest.private_pem, make_key("alice.example.net", "240101", 0).private_pem);
  EXPECT_EQ(oldest.created_at_s, 1704067200);
  EXPECT_FALSE(oldest.expires_at_s.has_value());

  auto none = store_->list_keys("nobody.example.net");
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

TEST_P(StoreContractTest, SameSecondRotationsKeepInsertionOrder) {
  for (const char* id : {"240101", "240101-2", "240101-9", "240101-10", "240101-11"})
    ASSERT_TRUE(store_->add_key(make_key("alice.example.net", id, 1704067200)).ok());
  auto keys = store_->list_keys("alice.example.net");
  ASSERT_TRUE(keys.ok());
  ASSERT_EQ(keys->size(), 5u);
  EXPECT_EQ((*keys)[0].key_id, "240101-11");  // text order would put "-9" first
  EXPECT_EQ((*keys)[1].key_id, "240101-10");
  EXPECT_EQ((*keys)[4].key_id, "240101");
}

TEST_P(StoreContractTest, EmptyDerRoundtrips) {
  ASSERT_TRUE(store_->add_key(make_key("alice.example.net", "240101", 1, std::string())).ok());
  auto keys = store_->list_keys("alice.example.net");
  ASSERT_TRUE(keys.ok());
  ASSERT_EQ(keys->size(), 1u);
  EXPECT_TRUE((*keys)[0].public_der.empty());
}

TEST_P(StoreContractTest, DuplicateKeyIsConflict) {
  ASSERT_TRUE(store_->add_key(make_key("alice.example.net", "240101", 1)).ok());
  Status dup = store_->add_key(make_key("alice.example.net", "240101", 2));
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.code(), ErrorCode::conflict);
  // Same key id for another tenant is fine.
  EXPECT_TRUE(store_->add_key(make_key("bob.example.net", "240101", 1)).ok());
  auto keys = store_->list_keys("alice.example.net");
  ASSERT_TRUE(keys.ok());
  ASSERT_EQ(keys->size(), 1u);
  EXPECT_EQ((*keys)[0].created_at_s, 1);
}

TEST_P(StoreContractTest, UsableThroughInterfaces) {
  MembershipStore& ms = *store_;
  KeyStore& ks = *store_;
  ASSERT_TRUE(ms.create_context(make_context("c1", "o.example.net", "a.example.net", 1)).ok());
  ASSERT_TRUE(ks.add_tenant("a.example.net").ok());
  auto has = ks.has_tenant("a.example.net");
  ASSERT_TRUE(has.ok());
  EXPECT_TRUE(*has);
}


}  // namespace
}  // namespace presd
