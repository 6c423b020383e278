#include "common/identifiers.h"

#include <gtest/gtest.h>

#include <string>

namespace presd {
namespace {

TEST(Identifiers, CanonicalIdTag) {
  EXPECT_TRUE(is_canonical_id_tag("alice.example.net"));
  EXPECT_TRUE(is_canonical_id_tag("a-b.c1.io"));
  EXPECT_FALSE(is_canonical_id_tag("Alice.example.net"));
  EXPECT_FALSE(is_canonical_id_tag("alice"));          // one label
  EXPECT_FALSE(is_canonical_id_tag("a.b"));            // shorter than 5
  EXPECT_FALSE(is_canonical_id_tag("-a.example.net"));
  EXPECT_FALSE(is_canonical_id_tag("a-.example.net"));
  EXPECT_FALSE(is_canonical_id_tag("a..example.net"));
  EXPECT_FALSE(is_canonical_id_tag(".example.net"));
  EXPECT_FALSE(is_canonical_id_tag("example.net."));
  EXPECT_FALSE(is_canonical_id_tag("ex_ample.net"));
  EXPECT_FALSE(is_canonical_id_tag("127.0.0.1"));   // an IP literal, not a domain
  EXPECT_FALSE(is_canonical_id_tag("10.0.0.1"));
  EXPECT_TRUE(is_canonical_id_tag("123.example.io"));
  EXPECT_FALSE(is_canonical_id_tag(std::string(64, 'a') + ".net"));
  EXPECT_TRUE(is_canonical_id_tag(std::string(63, 'a') + ".net"));
  std::string long_tag;
  while (long_tag.size() < 260) long_tag += "abcdefghi.";
  long_tag += "net";
  EXPECT_FALSE(is_canonical_id_tag(long_tag));
}

TEST(Identifiers, ContextIds) {
  EXPECT_TRUE(is_valid_context_id("a1~" + std::string(43, 'x')));
  EXPECT_FALSE(is_valid_context_id("a1~" + std::string(42, 'x')));
  EXPECT_FALSE(is_valid_context_id("a1~" + std::string(42, 'x') + "+"));
  EXPECT_TRUE(is_valid_context_id("@alice.example.net"));
  EXPECT_FALSE(is_valid_context_id("@Alice"));
  EXPECT_TRUE(is_valid_context_id("room:general"));
  EXPECT_FALSE(is_valid_context_id(""));
  EXPECT_FALSE(is_valid_context_id("has space"));
  EXPECT_FALSE(is_valid_context_id(std::string(257, 'x')));
  EXPECT_TRUE(is_valid_context_id(std::string(256, 'x')));
}

TEST(Identifiers, ProfileContextOwner) {
  EXPECT_EQ(profile_context_owner("@alice.example.net"), "alice.example.net");
  EXPECT_EQ(profile_context_owner("a1~" + std::string(43, 'x')), "");
  EXPECT_EQ(profile_context_owner("@"), "");
  EXPECT_EQ(profile_context_owner("@bad"), "");
}

}  // namespace
}  // namespace presd
