#include "broker/bus_message.h"

#include <gtest/gtest.h>

namespace presd {
namespace {

TEST(BusMessage, PresRoundTripsWithVersionAndOrigin) {
  const BusMessage m{BusMessage::Kind::pres, "node-1", "aaa.bbb.ccc"};
  const std::string wire = encode_bus_message(m);
  EXPECT_NE(wire.find("\"v\":1"), std::string::npos) << wire;
  auto back = decode_bus_message(wire);
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->kind, BusMessage::Kind::pres);
  EXPECT_EQ(back->origin, "node-1");
  EXPECT_EQ(back->token, "aaa.bbb.ccc");
}

TEST(BusMessage, SyncRoundTripsWithoutToken) {
  const std::string wire = encode_bus_message(BusMessage{BusMessage::Kind::sync, "n_2", "ignored"});
  EXPECT_EQ(wire.find("token"), std::string::npos) << wire;
  auto back = decode_bus_message(wire);
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->kind, BusMessage::Kind::sync);
  EXPECT_EQ(back->origin, "n_2");
}

TEST(BusMessage, EverythingElseIsBusBadMessage) {
  const char* bad[] = {
      "",
      "not json",
      "[1]",
      R"({"kind":"pres","node":"a","token":"t"})",              // no version
      R"({"v":2,"kind":"pres","node":"a","token":"t"})",        // a newer version
      R"({"v":"1","kind":"pres","node":"a","token":"t"})",      // version not an integer
      R"({"v":1,"kind":"pres","token":"t"})",                   // no node
      R"({"v":1,"kind":"pres","node":"a.b","token":"t"})",      // node id not a subject token
      R"({"v":1,"kind":"pres","node":"","token":"t"})",
      R"({"v":1,"kind":"hello","node":"a"})",                   // unknown kind
      R"({"v":1,"kind":"pres","node":"a"})",                    // pres without token
      R"({"v":1,"kind":"pres","node":"a","token":""})",
      R"({"v":1,"kind":"pres","node":"a","token":"t","x":1})",  // unknown member
      R"({"v":1,"kind":"sync","node":"a","token":"t"})",
      R"({"v":1,"v":1,"kind":"sync","node":"a"})",              // duplicate key
  };
  for (const char* payload : bad) {
    auto r = decode_bus_message(payload);
    ASSERT_FALSE(r.ok()) << payload;
    EXPECT_EQ(r.code(), ErrorCode::bus_bad_message) << payload;
    EXPECT_FALSE(r.error().message.empty());
  }
  auto huge = decode_bus_message(std::string(9000, ' '));
  ASSERT_FALSE(huge.ok());
  EXPECT_EQ(huge.code(), ErrorCode::bus_bad_message);
}

TEST(BusMessage, NodeIds) {
  EXPECT_TRUE(is_valid_node_id("node-1"));
  EXPECT_TRUE(is_valid_node_id(std::string(64, 'a')));
  EXPECT_FALSE(is_valid_node_id(std::string(65, 'a')));
  EXPECT_FALSE(is_valid_node_id(""));
  EXPECT_FALSE(is_valid_node_id("a b"));
  EXPECT_FALSE(is_valid_node_id("a*"));
  const std::string a = random_node_id(), b = random_node_id();
  EXPECT_TRUE(is_valid_node_id(a));
  EXPECT_NE(a, b);
}

}  // namespace
}  // namespace presd
