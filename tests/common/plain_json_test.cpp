// The plain-JSON scanner promises (common/plain_json.h): whatever it accepts, parse_strict_json
// accepts too, with the values it read, and boost::json::serialize prints as compact() does.
#include "common/plain_json.h"

#include <gtest/gtest.h>

#include <boost/json/serialize.hpp>

#include <random>

#include "common/strict_json.h"

namespace presd {
namespace {

namespace json = boost::json;

bool scan_value(std::string_view text) {
  plain_json::Scanner s(text);
  return s.value(1) && s.at_end();
}

// The promise, for one text. Returns whether the scanner accepted it.
bool check(const std::string& text) {
  const bool plain = scan_value(text);
  if (plain) {
    StrictJson general = parse_strict_json(text);
    EXPECT_TRUE(general.ok()) << "plain but refused by the general parser: " << text << " (" << general.detail << ")";
    if (general.ok()) {
      EXPECT_EQ(json::serialize(general.value), plain_json::compact(text)) << text;
    }
  }
  return plain;
}

TEST(PlainJson, AcceptsThePlainSubset) {
  for (const char* t : {R"({})", R"([])", R"({"a":"b"})", R"( { "a" : [ 1 , -2 , 0 , true , false , null ] } )",
                        R"({"a":{"b":{"c":"d e f"}}})", R"("x")", "123", "-123", "0", "null",
                        R"({"k":"~!@#$%^&*()_+`-={}[]|:;'<>?,./"})", "999999999999999999", "-999999999999999999"})
    EXPECT_TRUE(check(t)) << t;
}

TEST(PlainJson, LeavesEverythingElseToTheGeneralParser) {
  for (const char* t : {R"({"a":1,"a":2})", R"({"a":"\n"})", R"({"a":"é"})", R"({"a":1.0})", R"({"a":1e3})", "-0",
                        "01", "1000000000000000000", R"({"a":"b"} x)", R"({"a" "b"})", R"({"a":})", R"({,})",
                        R"([1,])", R"({"a":1,})", "tru", "nul", "", "   ", R"([[[[[[[[[1]]]]]]]]])", "\"\x7f\"",
                        "\"\x1f\"", "\"abc", "[1 2]", "{\"a\":\"b\"\x0b}"})
    EXPECT_FALSE(check(t)) << t;
}

TEST(PlainJson, ObjectMembersInOrderAndIntegers) {
  plain_json::Scanner s(R"( {"id": -42, "cmd" :"ping","data":null} )");
  std::vector<std::string> keys;
  std::int64_t id = 0;
  std::string_view cmd;
  ASSERT_TRUE(s.object([&](std::string_view key) {
    keys.emplace_back(key);
    if (key == "id") return s.integer(id);
    if (key == "cmd") return s.string(cmd);
    return s.value(2);
  }));
  EXPECT_TRUE(s.at_end());
  EXPECT_EQ(keys, (std::vector<std::string>{"id", "cmd", "data"}));
  EXPECT_EQ(id, -42);
  EXPECT_EQ(cmd, "ping");
}

TEST(PlainJson, LongStringsAcrossTheWordLoop) {
  // Every position of a special byte within and around the 8-byte words.
  for (std::size_t len = 0; len < 40; ++len)
    for (char special : {'"', '\\', '\x01', '\x7f', '\x80', ' '}) {
      for (std::size_t at = 0; at <= len; ++at) {
        std::string body(len, 'a');
        if (at < len) body[at] = special;
        const std::string text = "\"" + body + "\"";
        const bool want = at == len || special == ' ';
        EXPECT_EQ(check(text), want) << len << " " << at << " " << int(special);
        std::string_view out;
        plain_json::Scanner s(text);
        if (want) {
          ASSERT_TRUE(s.string(out));
          EXPECT_EQ(out, body);
        }
      }
    }
}

// Random texts from JSON-ish fragments: the scanner must never accept what the general parser
// refuses, nor read it differently.
TEST(PlainJson, NeverAcceptsWhatTheGeneralParserRefusesOrReadsItDifferently) {
  const std::vector<std::string> atoms = {"{", "}", "[", "]", ",", ":", "\"a\"", "\"b\"", "\"a b\"", "1", "-1", "0",
                                          "12", "1.5", "1e2", "true", "false", "null", " ", "\n", "\"\\n\"",
                                          "\"é\"", "-", "00", "tru", "\"", "x"};
  std::mt19937 rng(11);
  int accepted = 0;
  for (int i = 0; i < 200000; ++i) {
    std::string t;
    for (int n = 1 + static_cast<int>(rng() % 12); n > 0; --n) t += atoms[rng() % atoms.size()];
    accepted += check(t);
  }
  EXPECT_GT(accepted, 1000);
}

}  // namespace
}  // namespace presd
