#include "federation/me_document.h"

#include <boost/json.hpp>
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <algorithm>

#include "common/time_format.h"
#include "token/base64.h"

namespace presd {
namespace {
namespace json = boost::json;

constexpr std::int64_t kNow = 1'764'000'000;  // 2025-11-24
constexpr const char* kAlice = "alice.example.net";

std::string spki_of(const Es384PrivateKey& k) { return k.public_key().spki_der(); }

std::string p256_spki() {
  EVP_PKEY* pkey = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
  EXPECT_NE(pkey, nullptr);
  unsigned char* der = nullptr;
  const int len = i2d_PUBKEY(pkey, &der);
  std::string out(reinterpret_cast<const char*>(der), static_cast<std::size_t>(len));
  OPENSSL_free(der);
  EVP_PKEY_free(pkey);
  return out;
}

json::object key_entry(std::string key_id, std::string_view spki, std::optional<json::value> expires = std::nullopt) {
  json::object o{{"keyId", key_id}, {"publicKey", b64::encode_std(spki)}};
  if (expires) o["expiresAt"] = *expires;
  return o;
}

// The shape KeyRing::me_json serves.
std::string me_body(std::string_view id_tag, json::array keys) {
  json::object data{{"idTag", id_tag}, {"name", "alice"}, {"type", "person"}, {"keys", std::move(keys)}};
  return json::serialize(json::object{{"data", std::move(data)}, {"time", iso8601_utc(kNow)}});
}

class MeDocumentTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    k1_ = new Es384PrivateKey(Es384PrivateKey::generate());
    k2_ = new Es384PrivateKey(Es384PrivateKey::generate());
  }
  static void TearDownTestSuite() {
    delete k1_;
    delete k2_;
  }
  static Es384PrivateKey* k1_;
  static Es384PrivateKey* k2_;

  Error expect_error(std::string_view body, std::string_view message_part, std::string_view tag = kAlice) {
    auto doc = parse_me_document(body, tag, kNow);
    EXPECT_FALSE(doc) << body.substr(0, 200);
    if (doc) return Error(ErrorCode::internal);
    EXPECT_EQ(doc.code(), ErrorCode::token_unknown_key);
    EXPECT_NE(doc.error().message.find(message_part), std::string::npos) << doc.error().message;
    return doc.error();
  }
};
Es384PrivateKey* MeDocumentTest::k1_ = nullptr;
Es384PrivateKey* MeDocumentTest::k2_ = nullptr;

TEST_F(MeDocumentTest, ParsesAValidDocumentWithUsableKeys) {
  const std::string body = me_body(kAlice, {key_entry("250205", spki_of(*k1_), json::value(iso8601_utc(kNow + 86400))),
                                            key_entry("250206", spki_of(*k2_))});
  auto doc = parse_me_document(body, kAlice, kNow);
  ASSERT_TRUE(doc) << doc.error().message;
  EXPECT_EQ(doc->id_tag, kAlice);
  ASSERT_EQ(doc->keys.size(), 2u);
  EXPECT_TRUE(doc->skipped.empty());
  EXPECT_EQ(doc->keys[0].key_id, "250205");
  EXPECT_EQ(doc->keys[0].expires_at_s, kNow + 86400);
  EXPECT_EQ(doc->keys[1].key_id, "250206");
  EXPECT_FALSE(doc->keys[1].expires_at_s);

  // The parsed keys are the real ones: they verify signatures of the matching private keys.
  const std::string sig = k2_->sign("hello");
  ASSERT_NE(doc->find("250206"), nullptr);
  EXPECT_TRUE(doc->find("250206")->key.verify("hello", sig));
  EXPECT_FALSE(doc->find("250205")->key.verify("hello", sig));
  EXPECT_EQ(doc->find("nope"), nullptr);
}

TEST_F(MeDocumentTest, ExpiresAtMayBeIsoIntegerNullOrAbsent) {
  const std::string body = me_body(kAlice, {key_entry("iso", spki_of(*k1_), json::value("2030-01-01T00:00:00Z")),
                                            key_entry("isofrac", spki_of(*k1_), json::value("2030-01-01T00:00:00.123Z")),
                                            key_entry("int", spki_of(*k1_), json::value(kNow + 10)),
                                            key_entry("null", spki_of(*k1_), json::value(nullptr)),
                                            key_entry("absent", spki_of(*k1_))});
  auto doc = parse_me_document(body, kAlice, kNow);
  ASSERT_TRUE(doc) << doc.error().message;
  ASSERT_EQ(doc->keys.size(), 5u);
  EXPECT_EQ(doc->find("iso")->expires_at_s, 1893456000);
  EXPECT_EQ(doc->find("isofrac")->expires_at_s, 1893456000);
  EXPECT_EQ(doc->find("int")->expires_at_s, kNow + 10);
  EXPECT_FALSE(doc->find("null")->expires_at_s);
  EXPECT_FALSE(doc->find("absent")->expires_at_s);
}

TEST_F(MeDocumentTest, BadExpiresAtRejectsTheDocument) {
  for (json::value v : {json::value("tomorrow"), json::value("2030-01-01"), json::value(1.5e9), json::value(true),
                        json::value(json::array{}), json::value(json::object{})}) {
    expect_error(me_body(kAlice, {key_entry("k", spki_of(*k1_), v)}), "expiresAt");
  }
}

TEST_F(MeDocumentTest, ExpiredKeysAreSkippedButNotAllOfThem) {
  const std::string some = me_body(kAlice, {key_entry("old", spki_of(*k1_), json::value(kNow)),
                                            key_entry("older", spki_of(*k1_), json::value("2020-01-01T00:00:00Z")),
                                            key_entry("new", spki_of(*k2_), json::value(kNow + 1))});
  auto doc = parse_me_document(some, kAlice, kNow);
  ASSERT_TRUE(doc) << doc.error().message;
  ASSERT_EQ(doc->keys.size(), 1u);
  EXPECT_EQ(doc->keys[0].key_id, "new");
  ASSERT_EQ(doc->skipped.size(), 2u);
  EXPECT_EQ(doc->skipped[0].key_id, "old");

  expect_error(me_body(kAlice, {key_entry("old", spki_of(*k1_), json::value(kNow - 1))}), "expired");
  expect_error(me_body(kAlice, {}), "no keys");
}

TEST_F(MeDocumentTest, IdTagMustBeTheIssuer) {
  const std::string body = me_body("mallory.example.net", {key_entry("k", spki_of(*k1_))});
  expect_error(body, "idTag");
  EXPECT_TRUE(parse_me_document(body, "mallory.example.net", kNow));
  // Exact match: no case folding, no trailing dot.
  expect_error(me_body("Alice.Example.Net", {key_entry("k", spki_of(*k1_))}), "idTag");
  expect_error(me_body("alice.example.net.", {key_entry("k", spki_of(*k1_))}), "idTag");
  expect_error(R"({"data":{"keys":[]}})", "idTag");
  expect_error(R"({"data":{"idTag":7,"keys":[]}})", "idTag");
}

TEST_F(MeDocumentTest, BadBase64AndForeignCurvesAreSkipped) {
  json::object bad_b64{{"keyId", "b64"}, {"publicKey", "not base64!!"}};
  json::object url_b64{{"keyId", "url"}, {"publicKey", b64::encode_url(spki_of(*k1_))}};
  json::object garbage{{"keyId", "garbage"}, {"publicKey", b64::encode_std("not a DER key")}};
  const std::string only_bad = me_body(kAlice, {bad_b64});
  expect_error(only_bad, "base64");
  expect_error(me_body(kAlice, {key_entry("p256", p256_spki())}), "P-384");
  expect_error(me_body(kAlice, {garbage}), "P-384");

  auto doc = parse_me_document(me_body(kAlice, {bad_b64, url_b64, garbage, key_entry("p256", p256_spki()),
                                                key_entry("good", spki_of(*k1_))}),
                               kAlice, kNow);
  ASSERT_TRUE(doc) << doc.error().message;
  ASSERT_EQ(doc->keys.size(), 1u);
  EXPECT_EQ(doc->keys[0].key_id, "good");
  EXPECT_EQ(doc->skipped.size(), 4u);
  EXPECT_EQ(doc->find("p256"), nullptr);
}

// The bad-input catalogue's off-curve class: a P-384 SPKI whose point is not on the curve (an
// invalid-curve attack would feed such points to ECDSA) is skipped like any unusable key.
TEST_F(MeDocumentTest, OffCurvePublicKeyIsSkipped) {
  std::string off = spki_of(*k1_);
  off.back() = static_cast<char>(off.back() ^ 0x01);  // flips a bit of y: the point leaves the curve
  std::string infinity = spki_of(*k1_);
  // The point encoding starts 23 bytes in (04 || x || y); all-zero coordinates are no point at all.
  std::fill(infinity.begin() + 24, infinity.end(), '\0');
  expect_error(me_body(kAlice, {key_entry("off", off)}), "P-384");
  expect_error(me_body(kAlice, {key_entry("zero", infinity)}), "P-384");

  auto doc = parse_me_document(me_body(kAlice, {key_entry("off", off), key_entry("good", spki_of(*k2_))}), kAlice, kNow);
  ASSERT_TRUE(doc) << doc.error().message;
  ASSERT_EQ(doc->keys.size(), 1u);
  EXPECT_EQ(doc->keys[0].key_id, "good");
  EXPECT_EQ(doc->find("off"), nullptr);
  ASSERT_EQ(doc->skipped.size(), 1u);
  EXPECT_EQ(doc->skipped[0].key_id, "off");
}

TEST_F(MeDocumentTest, SizeLimit) {
  std::string body = me_body(kAlice, {key_entry("k", spki_of(*k1_))});
  body.append(kMaxMeDocumentBytes - body.size(), ' ');  // trailing whitespace is valid JSON
  ASSERT_EQ(body.size(), kMaxMeDocumentBytes);
  EXPECT_TRUE(parse_me_document(body, kAlice, kNow));
  body.push_back(' ');
  expect_error(body, "limit");
}

TEST_F(MeDocumentTest, AtMost32Keys) {
  json::array keys;
  for (int i = 0; i < 32; ++i) keys.push_back(key_entry("k" + std::to_string(i), spki_of(*k1_)));
  auto doc = parse_me_document(me_body(kAlice, keys), kAlice, kNow);
  ASSERT_TRUE(doc) << doc.error().message;
  EXPECT_EQ(doc->keys.size(), 32u);
  keys.push_back(key_entry("k32", spki_of(*k1_)));
  expect_error(me_body(kAlice, keys), "33 keys");
}

TEST_F(MeDocumentTest, DuplicatesAreRejected) {
  const std::string pk = b64::encode_std(spki_of(*k1_));
  expect_error(R"({"data":{"idTag":"alice.example.net","idTag":"alice.example.net","keys":[{"keyId":"k","publicKey":")" +
                   pk + R"("}]}})",
               "duplicate JSON member");
  expect_error(R"({"data":{"idTag":"alice.example.net","keys":[{"keyId":"k","keyId":"j","publicKey":")" + pk +
                   R"("}]}})",
               "duplicate JSON member");
  expect_error(R"({"data":{"idTag":"alice.example.net","keys":[]},"data":{}})", "duplicate JSON member");
  expect_error(me_body(kAlice, {key_entry("k", spki_of(*k1_)), key_entry("k", spki_of(*k2_))}), "appears twice");
}

TEST_F(MeDocumentTest, StructuralErrors) {
  const std::string pk = b64::encode_std(spki_of(*k1_));
  expect_error("", "not JSON");
  expect_error("<html>502 Bad Gateway</html>", "not JSON");
  expect_error(R"({"data":)", "not JSON");
  expect_error("[]", "not a JSON object");
  expect_error(R"({"idTag":"alice.example.net","keys":[]})", "\"data\"");
  expect_error(R"({"data":[]})", "\"data\"");
  expect_error(R"({"data":{"idTag":"alice.example.net"}})", "keys");
  expect_error(R"({"data":{"idTag":"alice.example.net","keys":{}}})", "keys");
  expect_error(R"({"data":{"idTag":"alice.example.net","keys":["x"]}})", "not an object");
  expect_error(R"({"data":{"idTag":"alice.example.net","keys":[{"publicKey":")" + pk + R"("}]}})", "keyId");
  expect_error(R"({"data":{"idTag":"alice.example.net","keys":[{"keyId":5,"publicKey":")" + pk + R"("}]}})", "keyId");
  expect_error(R"({"data":{"idTag":"alice.example.net","keys":[{"keyId":"","publicKey":")" + pk + R"("}]}})", "keyId");
  expect_error(R"({"data":{"idTag":"alice.example.net","keys":[{"keyId":"a b","publicKey":")" + pk + R"("}]}})", "keyId");
  expect_error(R"({"data":{"idTag":"alice.example.net","keys":[{"keyId":")" + std::string(65, 'k') + R"(","publicKey":")" +
                   pk + R"("}]}})",
               "keyId");
  expect_error(R"({"data":{"idTag":"alice.example.net","keys":[{"keyId":"k"}]}})", "publicKey");
  expect_error(R"({"data":{"idTag":"alice.example.net","keys":[{"keyId":"k","publicKey":null}]}})", "publicKey");
  std::string deep(100, '[');
  expect_error(R"({"data":{"idTag":"alice.example.net","keys":[],"x":)" + deep + std::string(100, ']') + "}}", "deep");
}

TEST_F(MeDocumentTest, UnknownMembersAreIgnored) {
  const std::string pk = b64::encode_std(spki_of(*k1_));
  auto doc = parse_me_document(R"({"data":{"idTag":"alice.example.net","keys":[{"keyId":"k","publicKey":")" + pk +
                                   R"(","alg":"ES384","use":"sig"}],"extra":{"a":1}},"meta":1})",
                               kAlice, kNow);
  ASSERT_TRUE(doc) << doc.error().message;
  EXPECT_EQ(doc->keys.size(), 1u);
}

}  // namespace
}  // namespace presd
