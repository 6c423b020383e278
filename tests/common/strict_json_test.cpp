#include "common/strict_json.h"

#include <gtest/gtest.h>

namespace presd {
namespace {

TEST(StrictJson, ParsesValidJson) {
  auto r = parse_strict_json(R"({"a":1,"b":{"c":[1,2,{"d":null}]}})");
  ASSERT_TRUE(r.ok()) << r.detail;
  EXPECT_EQ(r.value.at("a").as_int64(), 1);
}

TEST(StrictJson, RejectsDuplicatesAtAnyDepth) {
  auto top = parse_strict_json(R"({"a":1,"a":2})");
  EXPECT_EQ(top.problem, JsonProblem::duplicate_key);
  EXPECT_EQ(top.detail, "a");
  EXPECT_EQ(parse_strict_json(R"({"x":{"k":1,"k":1}})").problem, JsonProblem::duplicate_key);
  EXPECT_EQ(parse_strict_json(R"([{"k":1},{"k":1}])").problem, JsonProblem::none);  // siblings are fine
  EXPECT_EQ(parse_strict_json(R"({"k":{"k":1}})").problem, JsonProblem::none);       // other level
}

TEST(StrictJson, SyntaxAndDepth) {
  EXPECT_EQ(parse_strict_json("{").problem, JsonProblem::syntax);
  EXPECT_EQ(parse_strict_json("{} x").problem, JsonProblem::syntax);
  EXPECT_EQ(parse_strict_json("").problem, JsonProblem::syntax);
  EXPECT_EQ(parse_strict_json(std::string(40, '[') + std::string(40, ']')).problem, JsonProblem::too_deep);
  EXPECT_EQ(parse_strict_json("[[1]]", 1).problem, JsonProblem::too_deep);
}

}  // namespace
}  // namespace presd
