#include "membership/access.h"

#include <gtest/gtest.h>

#include <string>

#include "store/sqlite_store.h"

namespace presd {
namespace {

constexpr Role kRoles[] = {Role::observer, Role::member, Role::moderator, Role::admin};
constexpr Access kAccesses[] = {Access::subscribe, Access::send, Access::receive};

const char* name(Access a) {
  switch (a) {
    case Access::subscribe: return "subscribe";
    case Access::send: return "send";
    case Access::receive: return "receive";
  }
  return "?";
}

bool expected_allowed(Role r, Access a) {
  return a == Access::send ? r >= Role::member : true;
}

Context make_context(std::string id, std::string owner, std::string creator) {
  Context c;
  c.id = std::move(id);
  c.owner = std::move(owner);
  c.creator = std::move(creator);
  c.created_at_s = 1700000000;
  return c;
}

Member make_member(std::string id_tag, Role role, bool deleted = false) {
  Member m;
  m.id_tag = std::move(id_tag);
  m.role = role;
  m.deleted = deleted;
  return m;
}

// ---- Pure functions ----

TEST(EffectiveRole, CreatorIsAdmin) {
  const Context ctx = make_context("c1", "owner.example.net", "alice.example.net");
  EXPECT_EQ(effective_role(ctx, std::nullopt, "alice.example.net"), Role::admin);
  // Even if the creator's own membership row says less, or was revoked.
  EXPECT_EQ(effective_role(ctx, make_member("alice.example.net", Role::observer),
                           "alice.example.net"),
            Role::admin);
  EXPECT_EQ(effective_role(ctx, make_member("alice.example.net", Role::member, true),
                           "alice.example.net"),
            Role::admin);
}

TEST(EffectiveRole, OwnerIsNotImplicitlyAdmin) {
  const Context ctx = make_context("c1", "owner.example.net", "alice.example.net");
  EXPECT_EQ(effective_role(ctx, std::nullopt, "owner.example.net"), std::nullopt);
}

TEST(EffectiveRole, ActiveMembershipDecides) {
  const Context ctx = make_context("c1", "owner.example.net", "alice.example.net");
  for (Role r : kRoles) {
    EXPECT_EQ(effective_role(ctx, make_member("bob.example.net", r), "bob.example.net"), r);
    EXPECT_EQ(effective_role(ctx, make_member("bob.example.net", r, true), "bob.example.net"),
              std::nullopt);
  }
  EXPECT_EQ(effective_role(ctx, std::nullopt, "bob.example.net"), std::nullopt);
}

TEST(EffectiveRole, EmptyUserIsNeverCreator) {
  const Context ctx = make_context("c1", "", "");
  EXPECT_EQ(effective_role(ctx, std::nullopt, ""), std::nullopt);
}

TEST(RoleAllows, EveryRoleAgainstEveryAccess) {
  for (Role r : kRoles) {
    for (Access a : kAccesses) {
      EXPECT_EQ(role_allows(r, a), expected_allowed(r, a)) << to_string(r) << " " << name(a);
    }
  }
  for (Access a : kAccesses) EXPECT_FALSE(role_allows(std::nullopt, a)) << name(a);
}

// ---- AccessChecker over a real store ----

class AccessCheckerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(store_.create_context(make_context(kCtx, "owner.example.net", kCreator)).ok());
  }

  static constexpr const char* kCtx = "a1~Y29udGV4dC1vbmUtMTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMg";
  static constexpr const char* kCreator = "alice.example.net";

  SqliteStore store_{":memory:"};
  AccessChecker checker_{store_};
};

TEST_F(AccessCheckerTest, ContextFromStore) {
  auto ctx = checker_.context(kCtx);
  ASSERT_TRUE(ctx.ok());
  EXPECT_EQ(ctx->id, kCtx);
  EXPECT_EQ(ctx->owner, "owner.example.net");
  EXPECT_EQ(ctx->creator, kCreator);
}

TEST_F(AccessCheckerTest, EveryRoleAgainstEveryAccess) {
  for (Role r : kRoles) {
    ASSERT_TRUE(store_.grant(kCtx, "bob.example.net", r).ok());
    auto role = checker_.role_of(kCtx, "bob.example.net");
    ASSERT_TRUE(role.ok());
    EXPECT_EQ(*role, r);
    for (Access a : kAccesses) {
      Status s = checker_.check(kCtx, "bob.example.net", a);
      if (expected_allowed(r, a)) {
        EXPECT_TRUE(s.ok()) << to_string(r) << " " << name(a) << ": " << s.error().message;
      } else {
        ASSERT_FALSE(s.ok()) << to_string(r) << " " << name(a);
        EXPECT_EQ(s.code(), ErrorCode::access_denied) << to_string(r) << " " << name(a);
      }
    }
  }
}

TEST_F(AccessCheckerTest, CreatorHasAdminWithoutMembership) {
  auto role = checker_.role_of(kCtx, kCreator);
  ASSERT_TRUE(role.ok());
  EXPECT_EQ(*role, Role::admin);
  for (Access a : kAccesses) EXPECT_TRUE(checker_.check(kCtx, kCreator, a).ok()) << name(a);

  // A revoked row for the creator changes nothing.
  ASSERT_TRUE(store_.grant(kCtx, kCreator, Role::observer).ok());
  ASSERT_TRUE(store_.revoke(kCtx, kCreator).ok());
  for (Access a : kAccesses) EXPECT_TRUE(checker_.check(kCtx, kCreator, a).ok()) << name(a);
}

TEST_F(AccessCheckerTest, NonMemberIsDenied) {
  auto role = checker_.role_of(kCtx, "mallory.example.net");
  ASSERT_TRUE(role.ok());
  EXPECT_EQ(*role, std::nullopt);

  Status sub = checker_.check(kCtx, "mallory.example.net", Access::subscribe);
  ASSERT_FALSE(sub.ok());
  EXPECT_EQ(sub.code(), ErrorCode::access_denied);
  EXPECT_NE(sub.error().message.find("mallory.example.net"), std::string::npos)
      << sub.error().message;
  EXPECT_NE(sub.error().message.find(kCtx), std::string::npos) << sub.error().message;

  Status send = checker_.check(kCtx, "mallory.example.net", Access::send);
  ASSERT_FALSE(send.ok());
  EXPECT_EQ(send.code(), ErrorCode::access_denied);
  EXPECT_NE(send.error().message.find("mallory.example.net"), std::string::npos);
  EXPECT_NE(send.error().message.find(kCtx), std::string::npos);
}

TEST_F(AccessCheckerTest, ObserverSendMessageNamesUserAndContext) {
  ASSERT_TRUE(store_.grant(kCtx, "olga.example.net", Role::observer).ok());
  Status s = checker_.check(kCtx, "olga.example.net", Access::send);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), ErrorCode::access_denied);
  EXPECT_NE(s.error().message.find("olga.example.net"), std::string::npos) << s.error().message;
  EXPECT_NE(s.error().message.find(kCtx), std::string::npos) << s.error().message;
}

TEST_F(AccessCheckerTest, DeletedMemberHasNoAccess) {
  ASSERT_TRUE(store_.grant(kCtx, "bob.example.net", Role::admin).ok());
  ASSERT_TRUE(store_.revoke(kCtx, "bob.example.net").ok());
  auto role = checker_.role_of(kCtx, "bob.example.net");
  ASSERT_TRUE(role.ok());
  EXPECT_EQ(*role, std::nullopt);
  EXPECT_EQ(checker_.check(kCtx, "bob.example.net", Access::subscribe).code(),
            ErrorCode::access_denied);
  EXPECT_EQ(checker_.check(kCtx, "bob.example.net", Access::send).code(),
            ErrorCode::access_denied);
  EXPECT_EQ(checker_.check(kCtx, "bob.example.net", Access::receive).code(),
            ErrorCode::audience_no_access);

  // Re-granting restores access.
  ASSERT_TRUE(store_.grant(kCtx, "bob.example.net", Role::member).ok());
  EXPECT_TRUE(checker_.check(kCtx, "bob.example.net", Access::send).ok());
}

TEST_F(AccessCheckerTest, ReceiveWithoutAccessIsAudienceNoAccess) {
  Status s = checker_.check(kCtx, "carol.example.net", Access::receive);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), ErrorCode::audience_no_access);
  EXPECT_NE(s.error().message.find("carol.example.net"), std::string::npos) << s.error().message;
  EXPECT_NE(s.error().message.find(kCtx), std::string::npos) << s.error().message;
  // Observers may receive.
  ASSERT_TRUE(store_.grant(kCtx, "carol.example.net", Role::observer).ok());
  EXPECT_TRUE(checker_.check(kCtx, "carol.example.net", Access::receive).ok());
}

TEST_F(AccessCheckerTest, OwnerWithoutMembershipIsDenied) {
  // PROTOCOL.md section 6 grants access to the creator and members only.
  EXPECT_EQ(checker_.check(kCtx, "owner.example.net", Access::subscribe).code(),
            ErrorCode::access_denied);
}

TEST_F(AccessCheckerTest, UnknownContext) {
  const char* unknown = "a1~dW5rbm93bi11bmtub3duLXVua25vd24tdW5rbm93bi0x";
  auto ctx = checker_.context(unknown);
  ASSERT_FALSE(ctx.ok());
  EXPECT_EQ(ctx.code(), ErrorCode::context_unknown);
  EXPECT_NE(ctx.error().message.find(unknown), std::string::npos);

  auto role = checker_.role_of(unknown, kCreator);
  ASSERT_FALSE(role.ok());
  EXPECT_EQ(role.code(), ErrorCode::context_unknown);

  for (Access a : kAccesses) {
    Status s = checker_.check(unknown, kCreator, a);
    ASSERT_FALSE(s.ok()) << name(a);
    EXPECT_EQ(s.code(), ErrorCode::context_unknown) << name(a);
  }
  // Not a profile context either.
  EXPECT_EQ(checker_.context("@").code(), ErrorCode::context_unknown);
  EXPECT_EQ(checker_.context("alice.example.net").code(), ErrorCode::context_unknown);
  EXPECT_EQ(checker_.context("").code(), ErrorCode::context_unknown);
}

TEST_F(AccessCheckerTest, ImplicitProfileContext) {
  auto ctx = checker_.context("@x.example.net");
  ASSERT_TRUE(ctx.ok()) << ctx.error().message;
  EXPECT_EQ(ctx->id, "@x.example.net");
  EXPECT_EQ(ctx->owner, "x.example.net");
  EXPECT_EQ(ctx->creator, "x.example.net");

  auto role = checker_.role_of("@x.example.net", "x.example.net");
  ASSERT_TRUE(role.ok());
  EXPECT_EQ(*role, Role::admin);
  for (Access a : kAccesses) {
    EXPECT_TRUE(checker_.check("@x.example.net", "x.example.net", a).ok()) << name(a);
  }

  role = checker_.role_of("@x.example.net", "y.example.net");
  ASSERT_TRUE(role.ok());
  EXPECT_EQ(*role, std::nullopt);
  EXPECT_EQ(checker_.check("@x.example.net", "y.example.net", Access::subscribe).code(),
            ErrorCode::access_denied);
  EXPECT_EQ(checker_.check("@x.example.net", "y.example.net", Access::send).code(),
            ErrorCode::access_denied);
  EXPECT_EQ(checker_.check("@x.example.net", "y.example.net", Access::receive).code(),
            ErrorCode::audience_no_access);
}

TEST_F(AccessCheckerTest, ProfileContextRowWinsAndGrantsMembers) {
  // Once a row exists (e.g. to hold members), it is used; memberships apply as usual.
  ASSERT_TRUE(
      store_.create_context(make_context("@x.example.net", "x.example.net", "x.example.net")).ok());
  ASSERT_TRUE(store_.grant("@x.example.net", "fan.example.net", Role::observer).ok());
  EXPECT_TRUE(checker_.check("@x.example.net", "fan.example.net", Access::subscribe).ok());
  EXPECT_EQ(checker_.check("@x.example.net", "fan.example.net", Access::send).code(),
            ErrorCode::access_denied);
  EXPECT_TRUE(checker_.check("@x.example.net", "x.example.net", Access::send).ok());

  ASSERT_TRUE(
      store_.create_context(make_context("@z.example.net", "z.example.net", "other.example.net"))
          .ok());
  auto ctx = checker_.context("@z.example.net");
  ASSERT_TRUE(ctx.ok());
  EXPECT_EQ(ctx->creator, "other.example.net");
}

// ---- Store errors propagate ----

class FailingStore final : public MembershipStore {
 public:
  bool fail_find_context = false;
  bool fail_find_member = false;
  Context row = make_context("c1", "o.example.net", "a.example.net");

  Status create_context(const Context&) override { return Error(ErrorCode::internal, "unused"); }
  Result<std::optional<Context>> find_context(std::string_view) override {
    if (fail_find_context) return Error(ErrorCode::unavailable, "disk on fire");
    return std::optional<Context>(row);
  }
  Result<std::vector<Context>> list_contexts() override {
    return Error(ErrorCode::internal, "unused");
  }
  Status delete_context(std::string_view) override { return Error(ErrorCode::internal, "unused"); }
  Status grant(std::string_view, std::string_view, Role) override {
    return Error(ErrorCode::internal, "unused");
  }
  Status revoke(std::string_view, std::string_view) override {
    return Error(ErrorCode::internal, "unused");
  }
  Result<std::optional<Member>> find_member(std::string_view, std::string_view) override {
    if (fail_find_member) return Error(ErrorCode::unavailable, "member table gone");
    return std::optional<Member>();
  }
  Result<std::vector<Member>> list_members(std::string_view) override {
    return Error(ErrorCode::internal, "unused");
  }
  Result<std::int64_t> external_change_counter() override { return Error(ErrorCode::internal, "unused"); }
};

TEST(AccessCheckerErrors, FindContextErrorPropagates) {
  FailingStore store;
  store.fail_find_context = true;
  AccessChecker checker(store);
  EXPECT_EQ(checker.context("c1").code(), ErrorCode::unavailable);
  EXPECT_EQ(checker.context("@x.example.net").code(), ErrorCode::unavailable);
  EXPECT_EQ(checker.role_of("c1", "b.example.net").code(), ErrorCode::unavailable);
  for (Access a : kAccesses) {
    Status s = checker.check("c1", "b.example.net", a);
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.code(), ErrorCode::unavailable) << name(a);
    EXPECT_EQ(s.error().message, "disk on fire");
  }
}

TEST(AccessCheckerErrors, FindMemberErrorPropagates) {
  FailingStore store;
  store.fail_find_member = true;
  AccessChecker checker(store);
  EXPECT_EQ(checker.role_of("c1", "b.example.net").code(), ErrorCode::unavailable);
  for (Access a : kAccesses) {
    EXPECT_EQ(checker.check("c1", "b.example.net", a).code(), ErrorCode::unavailable) << name(a);
  }
  // The creator needs no membership lookup.
  EXPECT_TRUE(checker.check("c1", "a.example.net", Access::send).ok());
}

}  // namespace
}  // namespace presd
