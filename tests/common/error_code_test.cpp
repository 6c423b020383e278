#include "common/error_code.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace presd {
namespace {

// The names are a wire contract: unique, snake_case, each with a real HTTP status and text.
TEST(ErrorCode, EveryCodeHasUniqueNameStatusAndText) {
  std::set<std::string> names;
  for (int i = 0; i < kErrorCodeCount; ++i) {
    const auto code = static_cast<ErrorCode>(i);
    const std::string name{to_string(code)};
    EXPECT_TRUE(names.insert(name).second) << name;
    for (char c : name) EXPECT_TRUE((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_') << name;
    EXPECT_GE(http_status(code), 400) << name;
    EXPECT_LT(http_status(code), 600) << name;
    EXPECT_FALSE(describe(code).empty()) << name;
  }
  EXPECT_EQ(to_string(ErrorCode::token_bad_signature), "token_bad_signature");
  EXPECT_EQ(http_status(ErrorCode::rate_limited), 429);
  EXPECT_EQ(http_status(ErrorCode::payload_too_large), 413);
  EXPECT_EQ(to_string(ErrorCode::internal), "internal");
}

}  // namespace
}  // namespace presd
