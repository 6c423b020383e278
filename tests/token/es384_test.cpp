#include "token/es384.h"

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <gtest/gtest.h>

#include "token/base64.h"

namespace presd {
namespace {

TEST(Es384, SignVerifyRoundTrip) {
  auto key = Es384PrivateKey::generate();
  std::string sig = key.sign("hello");
  ASSERT_EQ(sig.size(), kEs384SignatureBytes);
  EXPECT_TRUE(key.public_key().verify("hello", sig));
  EXPECT_FALSE(key.public_key().verify("hellO", sig));
  sig[10] ^= 1;
  EXPECT_FALSE(key.public_key().verify("hello", sig));
}

TEST(Es384, RejectsWrongSignatureLength) {
  auto key = Es384PrivateKey::generate();
  std::string sig = key.sign("m");
  EXPECT_FALSE(key.public_key().verify("m", sig.substr(0, 95)));
  EXPECT_FALSE(key.public_key().verify("m", sig + "x"));
  EXPECT_FALSE(key.public_key().verify("m", std::string(96, '\0')));
}

TEST(Es384, OtherKeyDoesNotVerify) {
  auto a = Es384PrivateKey::generate();
  auto b = Es384PrivateKey::generate();
  EXPECT_FALSE(b.public_key().verify("m", a.sign("m")));
}

TEST(Es384, SpkiDerIs120BytesAndRoundTrips) {
  auto key = Es384PrivateKey::generate();
  std::string der = key.public_key().spki_der();
  EXPECT_EQ(der.size(), 120u);
  auto again = Es384PublicKey::from_spki_der(der);
  ASSERT_TRUE(again);
  EXPECT_TRUE(again->verify("x", key.sign("x")));
  EXPECT_EQ(b64::encode_std(der).substr(0, 20), "MHYwEAYHKoZIzj0CAQYF");  // the prefix PROTOCOL.md shows
}

TEST(Es384, PemRoundTrip) {
  auto key = Es384PrivateKey::generate();
  auto again = Es384PrivateKey::from_pem(key.to_pem());
  ASSERT_TRUE(again);
  EXPECT_TRUE(key.public_key().verify("x", again->sign("x")));
  auto pub = Es384PublicKey::from_pem(key.public_key().to_pem());
  ASSERT_TRUE(pub);
  EXPECT_EQ(pub->spki_der(), key.public_key().spki_der());
}

TEST(Es384, RejectsOtherCurvesAndGarbage) {
  EVP_PKEY* p256 = EVP_EC_gen("P-256");
  ASSERT_NE(p256, nullptr);
  unsigned char* out = nullptr;
  int n = i2d_PUBKEY(p256, &out);
  std::string der(reinterpret_cast<char*>(out), n);
  OPENSSL_free(out);
  EVP_PKEY_free(p256);
  auto r = Es384PublicKey::from_spki_der(der);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.code(), ErrorCode::token_unknown_key);

  EXPECT_FALSE(Es384PublicKey::from_spki_der("not der"));
  EXPECT_FALSE(Es384PublicKey::from_spki_der(""));
  auto good = Es384PrivateKey::generate().public_key().spki_der();
  EXPECT_FALSE(Es384PublicKey::from_spki_der(good + std::string(1, '\0')));  // trailing byte
}

TEST(Es384, RejectsOffCurvePoint) {
  std::string der = Es384PrivateKey::generate().public_key().spki_der();
  der[der.size() - 1] ^= 0x01;  // flips a bit of y: the point leaves the curve
  EXPECT_FALSE(Es384PublicKey::from_spki_der(der));
}

}  // namespace
}  // namespace presd
