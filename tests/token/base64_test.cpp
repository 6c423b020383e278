#include "token/base64.h"

#include <gtest/gtest.h>

namespace presd {
namespace {

TEST(Base64, UrlRoundTripAllLengths) {
  std::string bytes;
  for (int n = 0; n < 70; ++n) {
    auto decoded = b64::decode_url_strict(b64::encode_url(bytes));
    ASSERT_TRUE(decoded) << n;
    EXPECT_EQ(*decoded, bytes);
    bytes += static_cast<char>(n * 37 + 255);
  }
}

TEST(Base64, UrlIsUnpaddedAndUrlSafe) {
  EXPECT_EQ(b64::encode_url("\xfb\xff"), "-_8");
  EXPECT_EQ(b64::encode_url("a"), "YQ");
}

TEST(Base64, UrlDecoderIsStrict) {
  EXPECT_FALSE(b64::decode_url_strict("YQ=="));   // padding
  EXPECT_FALSE(b64::decode_url_strict("Y+8"));    // standard alphabet
  EXPECT_FALSE(b64::decode_url_strict("Y/8"));
  EXPECT_FALSE(b64::decode_url_strict("Y Q"));    // whitespace
  EXPECT_FALSE(b64::decode_url_strict("YQAAA"));  // length % 4 == 1
  EXPECT_FALSE(b64::decode_url_strict("YR"));     // non-zero trailing bits ("YQ" is canonical)
  EXPECT_TRUE(b64::decode_url_strict("YQ"));
  EXPECT_TRUE(b64::decode_url_strict(""));
}

TEST(Base64, StandardPadded) {
  EXPECT_EQ(b64::encode_std("\xfb\xff"), "+/8=");
  EXPECT_EQ(*b64::decode_std("+/8="), "\xfb\xff");
  EXPECT_EQ(*b64::decode_std("YQ=="), "a");
  EXPECT_FALSE(b64::decode_std("YQ"));     // padding required
  EXPECT_FALSE(b64::decode_std("Y==="));
  EXPECT_FALSE(b64::decode_std("-_8="));   // url alphabet
}

}  // namespace
}  // namespace presd
