#include "common/time_format.h"

#include <gtest/gtest.h>

namespace presd {
namespace {

TEST(TimeFormat, FormatsKnownInstants) {
  EXPECT_EQ(iso8601_utc(0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(iso8601_utc(1732406400), "2024-11-24T00:00:00Z");
  EXPECT_EQ(iso8601_utc(1798761599), "2026-12-31T23:59:59Z");
  EXPECT_EQ(iso8601_utc(951782400), "2000-02-29T00:00:00Z");  // leap day of a /400 year
}

TEST(TimeFormat, ParsesWhatItFormats) {
  for (std::int64_t t : {0LL, 951782400LL, 1732406400LL, 1798761599LL, 4102444800LL})
    EXPECT_EQ(parse_iso8601_utc(iso8601_utc(t)), t);
  EXPECT_EQ(parse_iso8601_utc("2027-01-01T00:00:00.123Z"), 1798761600);
}

TEST(TimeFormat, RejectsOtherForms) {
  for (const char* s : {"", "2027-01-01", "2027-01-01T00:00:00", "2027-01-01T00:00:00+01:00",
                        "2027-13-01T00:00:00Z", "2027-01-01T24:00:00Z", "2027-01-01T00:00:00.Z",
                        "2027-01-01 00:00:00Z", "2027-0a-01T00:00:00Z", "2027-01-01T00:00:00Zx"})
    EXPECT_FALSE(parse_iso8601_utc(s).has_value()) << s;
}

}  // namespace
}  // namespace presd
