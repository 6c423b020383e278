#include "token/pres_token.h"

#include <gtest/gtest.h>

#include "token/base64.h"

namespace presd {
namespace {

const std::string kHeader = b64::encode_url(R"({"typ":"JWT","alg":"ES384"})");
const std::string kConv = "a1~" + std::string(43, 'Q');

class PresTokenTest : public ::testing::Test {
 protected:
  Es384PrivateKey key = Es384PrivateKey::generate();

  // A token with an arbitrary header and payload, correctly signed.
  std::string craft(const std::string& payload_json, const std::string& header = kHeader) {
    std::string input = header + "." + b64::encode_url(payload_json);
    return input + "." + b64::encode_url(key.sign(input));
  }

  static PresClaims typing() {
    PresClaims c;
    c.iss = "alice.example.net";
    c.k = "241124";
    c.subtype = "TYPING";
    c.sub = kConv;
    c.iat = 1'700'000'000;
    return c;
  }

  ErrorCode parse_error(const std::string& token) {
    auto r = parse_pres_token(token);
    EXPECT_FALSE(r) << token;
    return r ? ErrorCode::internal : r.code();
  }
};

TEST_F(PresTokenTest, SignParseVerifyRoundTrip) {
  PresClaims c = typing();
  c.aud = "bob.example.org";
  c.content_json = R"({"draft":true})";
  c.exp = c.iat + 10;
  std::string compact = sign_pres_token(c, key);
  EXPECT_TRUE(compact.starts_with("eyJ0eXAiOiJKV1QiLCJhbGciOiJFUzM4NCJ9."));
  auto t = parse_pres_token(compact);
  ASSERT_TRUE(t) << t.error().message;
  EXPECT_EQ(t->claims.iss, c.iss);
  EXPECT_EQ(t->claims.k, c.k);
  EXPECT_EQ(t->claims.type(), "PRES:TYPING");
  EXPECT_EQ(t->claims.sub, c.sub);
  EXPECT_EQ(t->claims.aud, c.aud);
  EXPECT_EQ(t->claims.content_json, c.content_json);
  EXPECT_EQ(t->claims.iat, c.iat);
  EXPECT_EQ(t->claims.exp, c.exp);
  EXPECT_EQ(t->signature.size(), 96u);
  EXPECT_TRUE(verify_pres_signature(*t, key.public_key()));
  EXPECT_EQ(verify_pres_signature(*t, Es384PrivateKey::generate().public_key()).code(), ErrorCode::token_bad_signature);
}

TEST_F(PresTokenTest, ClaimOrderMatchesReference) {
  PresClaims c = typing();
  c.aud = "bob.example.org";
  c.content_json = "{}";
  std::string compact = sign_pres_token(c, key);
  std::string payload = *b64::decode_url_strict(compact.substr(compact.find('.') + 1, compact.rfind('.') - compact.find('.') - 1));
  EXPECT_EQ(payload, R"({"iss":"alice.example.net","k":"241124","t":"PRES:TYPING","c":{},"aud":"bob.example.org","sub":")" + kConv + R"(","iat":1700000000})");
}

TEST_F(PresTokenTest, TamperedPayloadFailsSignature) {
  std::string compact = sign_pres_token(typing(), key);
  std::string other = sign_pres_token([] { auto c = typing(); c.subtype = "ONLINE"; return c; }(), key);
  // Splice the other token's payload under this token's signature.
  std::size_t d1 = compact.find('.'), d2 = compact.rfind('.');
  std::size_t o1 = other.find('.'), o2 = other.rfind('.');
  std::string spliced = compact.substr(0, d1 + 1) + other.substr(o1 + 1, o2 - o1 - 1) + compact.substr(d2);
  auto t = parse_pres_token(spliced);
  ASSERT_TRUE(t);
  EXPECT_EQ(verify_pres_signature(*t, key.public_key()).code(), ErrorCode::token_bad_signature);
}

TEST_F(PresTokenTest, SizeAndSegments) {
  EXPECT_EQ(parse_error(std::string(5000, 'a')), ErrorCode::token_too_large);
  EXPECT_EQ(parse_error("abc"), ErrorCode::token_malformed);
  EXPECT_EQ(parse_error("a.b"), ErrorCode::token_malformed);
  std::string good = sign_pres_token(typing(), key);
  EXPECT_EQ(parse_error(good + ".x"), ErrorCode::token_malformed);
  EXPECT_EQ(parse_error(good.substr(0, good.rfind('.') + 1)), ErrorCode::token_malformed);  // empty signature
  EXPECT_EQ(parse_error(good.substr(0, good.size() - 4)), ErrorCode::token_malformed);       // short signature
}

TEST_F(PresTokenTest, StrictBase64) {
  std::string good = sign_pres_token(typing(), key);
  EXPECT_EQ(parse_error(good + "="), ErrorCode::token_bad_base64);
  std::string plus = good;
  plus[good.rfind('.') + 3] = '+';
  EXPECT_EQ(parse_error(plus), ErrorCode::token_bad_base64);
  std::size_t d1 = good.find('.');
  std::string bad_payload = good.substr(0, d1 + 1) + "e30=" + good.substr(good.rfind('.'));
  EXPECT_EQ(parse_error(bad_payload), ErrorCode::token_bad_base64);
}

TEST_F(PresTokenTest, HeaderIsPinnedToEs384) {
  const std::string p = R"({"iss":"alice.example.net","k":"1","t":"PRES:TYPING","sub":"@alice.example.net","iat":1})";
  EXPECT_EQ(parse_error(craft(p, b64::encode_url(R"({"typ":"JWT","alg":"none"})"))), ErrorCode::token_bad_header);
  EXPECT_EQ(parse_error(craft(p, b64::encode_url(R"({"typ":"JWT","alg":"HS384"})"))), ErrorCode::token_bad_header);
  EXPECT_EQ(parse_error(craft(p, b64::encode_url(R"({"typ":"JWT","alg":"ES256"})"))), ErrorCode::token_bad_header);
  EXPECT_EQ(parse_error(craft(p, b64::encode_url(R"({"alg":"ES384","crit":["x"]})"))), ErrorCode::token_bad_header);
  EXPECT_EQ(parse_error(craft(p, b64::encode_url(R"({"alg":"ES384","jwk":{}})"))), ErrorCode::token_bad_header);
  EXPECT_EQ(parse_error(craft(p, b64::encode_url(R"({"alg":"ES384","alg":"ES384"})"))), ErrorCode::token_bad_header);
  EXPECT_EQ(parse_error(craft(p, b64::encode_url("[]"))), ErrorCode::token_bad_header);
  // Other member order and a missing typ are accepted (jose and other signers).
  EXPECT_TRUE(parse_pres_token(craft(p, b64::encode_url(R"({"alg":"ES384","typ":"JWT"})"))));
  EXPECT_TRUE(parse_pres_token(craft(p, b64::encode_url(R"({"alg":"ES384"})"))));
}

TEST_F(PresTokenTest, PayloadJson) {
  EXPECT_EQ(parse_error(craft("not json")), ErrorCode::token_bad_json);
  EXPECT_EQ(parse_error(craft("[1,2]")), ErrorCode::token_bad_json);
  EXPECT_EQ(parse_error(craft(R"({"iss":"alice.example.net","iss":"mallory.example.net"})")),
            ErrorCode::token_duplicate_claim);
  EXPECT_EQ(parse_error(craft(R"({"c":{"x":1,"x":2},"iss":"alice.example.net"})")), ErrorCode::token_duplicate_claim);
}

TEST_F(PresTokenTest, RequiredClaims) {
  EXPECT_EQ(parse_error(craft(R"({"k":"1","t":"PRES:TYPING","sub":"@alice.example.net","iat":1})")), ErrorCode::token_missing_claim);
  EXPECT_EQ(parse_error(craft(R"({"iss":"alice.example.net","t":"PRES:TYPING","sub":"@alice.example.net","iat":1})")), ErrorCode::token_missing_claim);
  EXPECT_EQ(parse_error(craft(R"({"iss":"alice.example.net","k":"1","sub":"@alice.example.net","iat":1})")), ErrorCode::token_missing_claim);
  EXPECT_EQ(parse_error(craft(R"({"iss":"alice.example.net","k":"1","t":"PRES:TYPING","iat":1})")), ErrorCode::token_missing_claim);
  EXPECT_EQ(parse_error(craft(R"({"iss":"alice.example.net","k":"1","t":"PRES:TYPING","sub":"@alice.example.net"})")), ErrorCode::token_missing_claim);
}

TEST_F(PresTokenTest, ClaimTypesAndFormats) {
  auto with = [&](const std::string& extra) {
    return craft(R"({"k":"1","t":"PRES:TYPING","sub":"@alice.example.net",)" + extra + "}");
  };
  EXPECT_EQ(parse_error(with(R"("iss":"alice.example.net","iat":1.5)")), ErrorCode::token_bad_claim);
  EXPECT_EQ(parse_error(with(R"("iss":"alice.example.net","iat":"1")")), ErrorCode::token_bad_claim);
  EXPECT_EQ(parse_error(with(R"("iss":"alice.example.net","iat":18446744073709551615)")), ErrorCode::token_bad_claim);
  EXPECT_EQ(parse_error(with(R"("iss":"alice.example.net","iat":-1)")), ErrorCode::token_bad_claim);
  // Beyond year 9999 iat * 1000 (and iat + ttl near INT64_MAX) would overflow: found by UBSan.
  EXPECT_EQ(parse_error(with(R"("iss":"alice.example.net","iat":253402300800)")), ErrorCode::token_bad_claim);
  EXPECT_EQ(parse_error(with(R"("iss":"alice.example.net","iat":9223372036854775807)")), ErrorCode::token_bad_claim);
  EXPECT_TRUE(parse_pres_token(with(R"("iss":"alice.example.net","iat":253402300799)")));
  EXPECT_EQ(parse_error(with(R"("iss":"Alice.Example.net","iat":1)")), ErrorCode::token_bad_claim);
  EXPECT_EQ(parse_error(with(R"("iss":"alice","iat":1)")), ErrorCode::token_bad_claim);
  EXPECT_EQ(parse_error(with(R"("iss":7,"iat":1)")), ErrorCode::token_bad_claim);
  EXPECT_EQ(parse_error(with(R"("iss":"alice.example.net","iat":1,"aud":"BOB")")), ErrorCode::token_bad_claim);
  EXPECT_EQ(parse_error(with(R"("iss":"alice.example.net","iat":1,"c":"text")")), ErrorCode::token_bad_claim);
  EXPECT_EQ(parse_error(with(R"("iss":"alice.example.net","iat":1,"c":[1])")), ErrorCode::token_bad_claim);
  EXPECT_EQ(parse_error(with(R"("iss":"alice.example.net","iat":10,"exp":5)")), ErrorCode::token_bad_claim);
  EXPECT_EQ(parse_error(with(R"("iss":"alice.example.net","iat":1,"c":{"x":")" + std::string(2100, 'y') + "\"}")),
            ErrorCode::token_bad_claim);
  EXPECT_EQ(parse_error(craft(R"({"iss":"alice.example.net","k":"","t":"PRES:TYPING","sub":"@alice.example.net","iat":1})")),
            ErrorCode::token_bad_claim);
  EXPECT_EQ(parse_error(craft(R"({"iss":"alice.example.net","k":"1","t":"PRES:TYPING","sub":"a1~short","iat":1})")),
            ErrorCode::token_bad_claim);
  EXPECT_EQ(parse_error(craft(R"({"iss":"alice.example.net","k":"1","t":"PRES:TYPING","sub":"","iat":1})")),
            ErrorCode::token_bad_claim);
}

TEST_F(PresTokenTest, TypeAndSubtype) {
  auto with_t = [&](const std::string& t) {
    return craft(R"({"iss":"alice.example.net","k":"1","t":")" + t + R"(","sub":"@alice.example.net","iat":1})");
  };
  EXPECT_EQ(parse_error(with_t("MSG")), ErrorCode::token_not_pres);
  EXPECT_EQ(parse_error(with_t("POST:TYPING")), ErrorCode::token_not_pres);
  EXPECT_EQ(parse_error(with_t("PRES:")), ErrorCode::token_bad_subtype);
  EXPECT_EQ(parse_error(with_t("PRES:TYP ING")), ErrorCode::token_bad_subtype);
  EXPECT_EQ(parse_error(with_t("PRES:" + std::string(33, 'A'))), ErrorCode::token_bad_subtype);
  auto custom = parse_pres_token(with_t("PRES:APP_x-1"));
  ASSERT_TRUE(custom);
  EXPECT_EQ(custom->claims.subtype, "APP_x-1");
}

TEST_F(PresTokenTest, AttachmentsForbidden) {
  EXPECT_EQ(parse_error(craft(R"({"iss":"alice.example.net","k":"1","t":"PRES:TYPING","sub":"@alice.example.net","iat":1,"a":["x"]})")),
            ErrorCode::token_forbidden_claim);
}

TEST_F(PresTokenTest, UnknownClaimsAreIgnored) {
  EXPECT_TRUE(parse_pres_token(craft(R"({"iss":"alice.example.net","k":"1","t":"PRES:ONLINE","sub":"@alice.example.net","iat":1,"x":{"y":1}})")));
}

TEST(Freshness, TtlAndSkew) {
  PresClaims c;
  c.iat = 1000;
  Freshness f;  // 30 s TTL, 5 s skew
  EXPECT_EQ(expires_at_ms(c, f), 1'030'000);
  EXPECT_TRUE(check_freshness(c, 1'000'000, f));
  EXPECT_TRUE(check_freshness(c, 1'029'999, f));
  EXPECT_EQ(check_freshness(c, 1'030'000, f).code(), ErrorCode::token_expired);
  EXPECT_TRUE(check_freshness(c, 995'000, f));  // iat 5 s ahead: within skew
  EXPECT_EQ(check_freshness(c, 994'999, f).code(), ErrorCode::token_not_yet_valid);
  c.exp = 1010;
  EXPECT_EQ(expires_at_ms(c, f), 1'010'000);
  EXPECT_EQ(check_freshness(c, 1'010'000, f).code(), ErrorCode::token_expired);
  c.exp = 5000;  // exp beyond the TTL does not extend it
  EXPECT_EQ(expires_at_ms(c, f), 1'030'000);
}

TEST(ValidateClaims, BuiltInMemory) {
  PresClaims c;
  c.iss = "alice.example.net";
  c.k = "241124";
  c.subtype = "AWAY";
  c.sub = "@alice.example.net";
  c.iat = 5;
  EXPECT_TRUE(validate_pres_claims(c));
  c.content_json = "[]";
  EXPECT_EQ(validate_pres_claims(c).code(), ErrorCode::token_bad_claim);
  c.content_json.reset();
  c.subtype = "a/b";
  EXPECT_EQ(validate_pres_claims(c).code(), ErrorCode::token_bad_subtype);
}

}  // namespace
}  // namespace presd
