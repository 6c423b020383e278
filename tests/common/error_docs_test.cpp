// docs/errors.md must list every error code with its HTTP status, and nothing else.
#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "common/error_code.h"

namespace presd {
namespace {

TEST(ErrorDocs, TableMatchesTheCode) {
  std::ifstream in(PRESD_SOURCE_DIR "/docs/errors.md");
  ASSERT_TRUE(in) << "docs/errors.md missing";
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string doc = ss.str();

  std::set<std::string> documented;
  const std::regex row(R"(\n\| `([a-z0-9_]+)` \| (\d+) \|)");
  for (auto it = std::sregex_iterator(doc.begin(), doc.end(), row); it != std::sregex_iterator(); ++it) {
    const std::string name = (*it)[1];
    documented.insert(name);
    bool known = false;
    for (int i = 0; i < kErrorCodeCount; ++i) {
      const auto code = static_cast<ErrorCode>(i);
      if (to_string(code) != name) continue;
      known = true;
      EXPECT_EQ(std::to_string(http_status(code)), std::string((*it)[2])) << name;
    }
    EXPECT_TRUE(known) << name << " is documented but not in the code";
  }
  for (int i = 0; i < kErrorCodeCount; ++i)
    EXPECT_TRUE(documented.contains(std::string(to_string(static_cast<ErrorCode>(i)))))
        << to_string(static_cast<ErrorCode>(i)) << " is not documented";
}

}  // namespace
}  // namespace presd
