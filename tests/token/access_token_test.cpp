#include "token/access_token.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <gtest/gtest.h>

#include "token/base64.h"

namespace presd {
namespace {

TEST(AccessToken, IssueVerify) {
  std::string t = issue_access_token({"alice.example.net", "bob.example.org", 2000}, "s3cret");
  auto c = verify_access_token(t, "s3cret", 1999);
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->iss, "alice.example.net");
  EXPECT_EQ(c->sub, "bob.example.org");
  EXPECT_EQ(c->exp, 2000);
}

TEST(AccessToken, Failures) {
  std::string t = issue_access_token({"alice.example.net", "bob.example.org", 2000}, "s3cret");
  EXPECT_EQ(verify_access_token(t, "other", 1000).code(), ErrorCode::auth_invalid);
  EXPECT_EQ(verify_access_token(t, "s3cret", 2000).code(), ErrorCode::auth_invalid);  // expired
  EXPECT_EQ(verify_access_token("", "s3cret", 1000).code(), ErrorCode::auth_required);
  EXPECT_EQ(verify_access_token("a.b", "s3cret", 1000).code(), ErrorCode::auth_invalid);
  std::string tampered = t;
  tampered[tampered.find('.') + 5] ^= 1;
  EXPECT_EQ(verify_access_token(tampered, "s3cret", 1000).code(), ErrorCode::auth_invalid);
}

TEST(AccessToken, RejectsAlgConfusion) {
  auto forge = [](const std::string& header, const std::string& payload) {
    return b64::encode_url(header) + "." + b64::encode_url(payload) + ".";
  };
  std::string p = R"({"iss":"alice.example.net","exp":9999999999})";
  EXPECT_EQ(verify_access_token(forge(R"({"alg":"none"})", p), "s", 1).code(), ErrorCode::auth_invalid);
  EXPECT_EQ(verify_access_token(forge(R"({"alg":"HS512"})", p), "s", 1).code(), ErrorCode::auth_invalid);
}

TEST(AccessToken, SubDefaultsToIss) {
  // A reference-style token without sub, MAC computed independently with OpenSSL HMAC.
  std::string input = b64::encode_url(R"({"typ":"JWT","alg":"HS256"})") + "." +
                      b64::encode_url(R"({"iss":"alice.example.net","exp":50})");
  unsigned char mac[32];
  unsigned int len = 0;
  HMAC(EVP_sha256(), "k", 1, reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &len);
  std::string t = input + "." + b64::encode_url(std::string(reinterpret_cast<char*>(mac), len));
  auto c = verify_access_token(t, "k", 1);
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->sub, "alice.example.net");
}

}  // namespace
}  // namespace presd
