#include "federation/inbox_body.h"

#include <gtest/gtest.h>

namespace presd {
namespace {

TEST(InboxBody, TokenOnly) {
  auto b = parse_inbox_body(R"({"token":"a.b.c"})");
  ASSERT_TRUE(b) << b.error().message;
  EXPECT_EQ(b->token, "a.b.c");
  EXPECT_FALSE(b->relay);
}

TEST(InboxBody, TokenWithRelayProofAndUnknownMembersIgnored) {
  auto b = parse_inbox_body(R"({"token":"a.b.c","relay":"r.s.t","note":1})");
  ASSERT_TRUE(b) << b.error().message;
  EXPECT_EQ(b->token, "a.b.c");
  ASSERT_TRUE(b->relay);
  EXPECT_EQ(*b->relay, "r.s.t");
}

// The usual body is read in place (the token is a view into it); one with an escape is decoded
// into storage the result owns, which stays valid when the result is moved.
TEST(InboxBody, TokenIsAViewIntoThePlainBodyOrOwnedWhenDecoded) {
  const std::string plain = R"({"token":"a.b.c"})";
  auto b = parse_inbox_body(plain);
  ASSERT_TRUE(b);
  EXPECT_GE(b->token.data(), plain.data());
  EXPECT_LT(b->token.data(), plain.data() + plain.size());

  auto escaped = parse_inbox_body(R"({"token":"a\/b.c.d"})");
  ASSERT_TRUE(escaped);
  InboxBody moved = std::move(escaped).value();
  EXPECT_EQ(moved.token, "a/b.c.d");
}

TEST(InboxBody, RefusesWhatIsNotAnObjectWithAStringToken) {
  for (const char* body : {"", "[]", "\"a.b.c\"", "{", "{}", R"({"token":1})", R"({"token":null})",
                           R"({"token":"a","token":"b"})", R"({"token":"a.b.c","relay":{}})"}) {
    auto b = parse_inbox_body(body);
    ASSERT_FALSE(b) << body;
    EXPECT_EQ(b.code(), ErrorCode::bad_request) << body;
  }
}

}  // namespace
}  // namespace presd
