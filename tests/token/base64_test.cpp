#include "token/base64.h"

#include <gtest/gtest.h>

#include <array>
#include <cstring>
#include <cstdint>
#include <optional>
#include <random>

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

// The decoder as it was before it was unrolled (one character at a time into a bit accumulator):
// the reference the word-at-a-time decoder must agree with on every input.
std::optional<std::string> reference_decode_url(std::string_view in) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  if (in.size() % 4 == 1) return std::nullopt;
  std::string out;
  std::uint32_t acc = 0;
  int bits = 0;
  for (char ch : in) {
    const char* at = ch ? std::strchr(kAlphabet, ch) : nullptr;
    if (!at) return std::nullopt;
    acc = (acc << 6) | static_cast<std::uint32_t>(at - kAlphabet);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xFF);
    }
  }
  if (bits > 0 && (acc & ((1u << bits) - 1)) != 0) return std::nullopt;
  return out;
}

TEST(Base64, UrlDecoderAgreesWithTheReferenceOnEveryShortInputAndRandomLongOnes) {
  // Every string of length 0..4 over characters that exercise each rule (alphabet edges,
  // trailing-bit values, the standard alphabet, padding, NUL, non-ASCII).
  const std::string chars = std::string("AQgwBhP_-9az+/=.") + '\0' + "\xff";
  std::vector<std::string> inputs{""};
  for (std::size_t len = 1, from = 0; len <= 4; ++len) {
    const std::size_t to = inputs.size();
    for (std::size_t i = from; i < to; ++i)
      for (char c : chars) inputs.push_back(inputs[i] + c);
    from = to;
  }
  std::mt19937 rng(7);
  const std::string url = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  for (int i = 0; i < 20000; ++i) {
    std::string s(rng() % 200, 'A');
    for (char& c : s) c = url[rng() % 64];
    if (!s.empty() && rng() % 4 == 0) s[rng() % s.size()] = static_cast<char>(rng() % 256);  // one stray byte
    inputs.push_back(std::move(s));
  }
  for (const std::string& in : inputs) {
    const auto want = reference_decode_url(in);
    const auto got = b64::decode_url_strict(in);
    ASSERT_EQ(got.has_value(), want.has_value()) << in;
    if (want) {
      ASSERT_EQ(*got, *want) << in;
    }
  }
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
