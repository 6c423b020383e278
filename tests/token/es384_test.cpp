#include "token/es384.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/param_build.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <iterator>
#include <sstream>
#include <thread>
#include <vector>

#include "token/base64.h"

namespace presd {
namespace {

// The order n of P-384, big-endian hex.
constexpr const char* kOrderHex =
    "ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973";

std::string from_hex(std::string_view hex) {
  std::string out;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2) out += static_cast<char>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16));
  return out;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in) << path;
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::string kat_file(const char* name) { return read_file(std::string(PRESD_SOURCE_DIR "/tests/token/data/es384_kat/") + name); }

// A reference ES384 built only from OpenSSL's high-level API (EVP_DigestSign/EVP_DigestVerify
// with DER signatures and ECDSA_SIG conversions), independent of token/es384.cpp: what presd
// used before the per-thread contexts, and what the cross-library tests check against.
namespace ref {

using Pkey = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;

Pkey private_key(const Es384PrivateKey& key) {
  const std::string pem = key.to_pem();
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  EVP_PKEY* k = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  return {k, EVP_PKEY_free};
}

Pkey public_key(const Es384PublicKey& key) {
  const std::string der = key.spki_der();
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  return {d2i_PUBKEY(nullptr, &p, static_cast<long>(der.size())), EVP_PKEY_free};
}

std::string der_to_raw(std::string_view der) {
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  ECDSA_SIG* sig = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size()));
  EXPECT_NE(sig, nullptr);
  std::string raw(96, '\0');
  auto* out = reinterpret_cast<unsigned char*>(raw.data());
  EXPECT_EQ(BN_bn2binpad(ECDSA_SIG_get0_r(sig), out, 48), 48);
  EXPECT_EQ(BN_bn2binpad(ECDSA_SIG_get0_s(sig), out + 48, 48), 48);
  ECDSA_SIG_free(sig);
  return raw;
}

std::string sign(EVP_PKEY* key, std::string_view msg) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  unsigned char der[128];
  std::size_t len = sizeof der;
  EXPECT_EQ(EVP_DigestSignInit(ctx, nullptr, EVP_sha384(), nullptr, key), 1);
  EXPECT_EQ(EVP_DigestSign(ctx, der, &len, reinterpret_cast<const unsigned char*>(msg.data()), msg.size()), 1);
  EVP_MD_CTX_free(ctx);
  return der_to_raw(std::string_view(reinterpret_cast<char*>(der), len));
}

bool verify(EVP_PKEY* key, std::string_view msg, std::string_view raw) {
  if (raw.size() != 96) return false;
  const auto* in = reinterpret_cast<const unsigned char*>(raw.data());
  ECDSA_SIG* sig = ECDSA_SIG_new();
  ECDSA_SIG_set0(sig, BN_bin2bn(in, 48, nullptr), BN_bin2bn(in + 48, 48, nullptr));
  unsigned char* der = nullptr;
  const int len = i2d_ECDSA_SIG(sig, &der);
  ECDSA_SIG_free(sig);
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  const bool ok = EVP_DigestVerifyInit(ctx, nullptr, EVP_sha384(), nullptr, key) == 1 &&
                  EVP_DigestVerify(ctx, der, static_cast<std::size_t>(len),
                                   reinterpret_cast<const unsigned char*>(msg.data()), msg.size()) == 1;
  EVP_MD_CTX_free(ctx);
  OPENSSL_free(der);
  return ok;
}

// n - s for a 48-byte big-endian s: the other ("high" or "low") s of the same signature.
std::string negate_scalar(std::string_view s) {
  BIGNUM* n = nullptr;
  BN_hex2bn(&n, kOrderHex);
  BIGNUM* x = BN_bin2bn(reinterpret_cast<const unsigned char*>(s.data()), static_cast<int>(s.size()), nullptr);
  BN_sub(x, n, x);
  std::string out(48, '\0');
  BN_bn2binpad(x, reinterpret_cast<unsigned char*>(out.data()), 48);
  BN_free(n);
  BN_free(x);
  return out;
}

bool is_high(std::string_view s) {  // s > n/2
  return negate_scalar(s) < std::string(s);  // n - s < s, as 48-byte big-endian strings
}

}  // namespace ref

std::string spki_der_of(EVP_PKEY* k) {
  unsigned char* out = nullptr;
  const int n = i2d_PUBKEY(k, &out);
  std::string der(reinterpret_cast<char*>(out), static_cast<std::size_t>(n));
  OPENSSL_free(out);
  return der;
}

std::string private_pem_of(EVP_PKEY* k) {
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(bio, k, nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  std::string pem(data, static_cast<std::size_t>(n));
  BIO_free(bio);
  return pem;
}

std::string public_pem_of(EVP_PKEY* k) {
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PUBKEY(bio, k);
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  std::string pem(data, static_cast<std::size_t>(n));
  BIO_free(bio);
  return pem;
}

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
  const auto pub = key.public_key();
  std::string sig = key.sign("m");
  ASSERT_TRUE(pub.verify("m", sig));
  EXPECT_FALSE(pub.verify("m", sig.substr(0, 95)));
  EXPECT_FALSE(pub.verify("m", sig + "x"));
  EXPECT_FALSE(pub.verify("m", ""));
  EXPECT_FALSE(pub.verify("m", sig.substr(0, 64)));           // an ES256 length
  EXPECT_FALSE(pub.verify("m", sig + std::string(36, '\0')));  // an ES512 length
  EXPECT_FALSE(pub.verify("m", std::string(96, '\0')));
  // The DER form of a valid signature is not accepted either: JWS signatures are raw r||s.
  auto ref_key = ref::private_key(key);
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  unsigned char der[128];
  std::size_t len = sizeof der;
  ASSERT_EQ(EVP_DigestSignInit(ctx, nullptr, EVP_sha384(), nullptr, ref_key.get()), 1);
  ASSERT_EQ(EVP_DigestSign(ctx, der, &len, reinterpret_cast<const unsigned char*>("m"), 1), 1);
  EVP_MD_CTX_free(ctx);
  EXPECT_FALSE(pub.verify("m", std::string(reinterpret_cast<char*>(der), len)));
}

TEST(Es384, OtherKeyDoesNotVerify) {
  auto a = Es384PrivateKey::generate();
  auto b = Es384PrivateKey::generate();
  EXPECT_FALSE(b.public_key().verify("m", a.sign("m")));
}

TEST(Es384, EveryTamperedByteIsRejected) {
  auto key = Es384PrivateKey::generate();
  const auto pub = key.public_key();
  const std::string msg = "header.payload";
  const std::string sig = key.sign(msg);
  ASSERT_TRUE(pub.verify(msg, sig));
  for (std::size_t i = 0; i < sig.size(); ++i) {
    std::string bad = sig;
    bad[i] = static_cast<char>(bad[i] ^ 0x01);
    EXPECT_FALSE(pub.verify(msg, bad)) << "signature byte " << i;
  }
  for (std::size_t i = 0; i < msg.size(); ++i) {
    std::string bad = msg;
    bad[i] = static_cast<char>(bad[i] ^ 0x20);
    EXPECT_FALSE(pub.verify(bad, sig)) << "message byte " << i;
  }
  EXPECT_FALSE(pub.verify(msg + ".", sig));
  EXPECT_FALSE(pub.verify(msg.substr(1), sig));
  EXPECT_FALSE(pub.verify("", sig));
  // r and s swapped.
  EXPECT_FALSE(pub.verify(msg, sig.substr(48) + sig.substr(0, 48)));
}

TEST(Es384, ScalarsOutOfRangeAreRejected) {
  auto key = Es384PrivateKey::generate();
  const auto pub = key.public_key();
  const std::string sig = key.sign("m");
  ASSERT_TRUE(pub.verify("m", sig));
  const std::string r = sig.substr(0, 48), s = sig.substr(48);
  const std::string zero(48, '\0'), n = from_hex(kOrderHex), ones(48, '\xff');
  std::string n_plus_1 = n;
  n_plus_1[47] = static_cast<char>(n_plus_1[47] + 1);
  for (const auto& bad : {zero, n, n_plus_1, ones}) {
    EXPECT_FALSE(pub.verify("m", bad + s));
    EXPECT_FALSE(pub.verify("m", r + bad));
    EXPECT_FALSE(pub.verify("m", bad + bad));
  }
  // The reference agrees (OpenSSL rejects these inside ECDSA_do_verify too).
  auto ref_pub = ref::public_key(pub);
  EXPECT_FALSE(ref::verify(ref_pub.get(), "m", zero + s));
  EXPECT_FALSE(ref::verify(ref_pub.get(), "m", r + n));
}

// ECDSA signatures are malleable: (r, n - s) verifies whenever (r, s) does. JWS (RFC 7518)
// has no low-s rule and OpenSSL has always accepted both, so presd accepts both as before.
// Replay protection must therefore not rely on the signature bytes alone being unique per
// token (the hub's replay filter keys on the signature: a re-encoded s is a second token that
// passes it; that is the issuer's own valid statement, rate-limited like any other).
TEST(Es384, HighAndLowSAreBothAccepted) {
  auto key = Es384PrivateKey::generate();
  const auto pub = key.public_key();
  auto ref_pub = ref::public_key(pub);
  for (int i = 0; i < 4; ++i) {
    const std::string msg = "m" + std::to_string(i);
    const std::string sig = key.sign(msg);
    const std::string flipped = sig.substr(0, 48) + ref::negate_scalar(sig.substr(48));
    ASSERT_NE(ref::is_high(sig.substr(48)), ref::is_high(flipped.substr(48)));
    EXPECT_TRUE(ref::verify(ref_pub.get(), msg, flipped));
    EXPECT_TRUE(pub.verify(msg, sig));
    EXPECT_TRUE(pub.verify(msg, flipped));
  }
}

// Signatures signed by the reference verify with presd, and the other way round.
TEST(Es384, CrossCheckedWithTheReferenceImplementation) {
  for (int k = 0; k < 3; ++k) {
    auto key = Es384PrivateKey::generate();
    const auto pub = key.public_key();
    auto ref_priv = ref::private_key(key);
    auto ref_pub = ref::public_key(pub);
    for (int i = 0; i < 4; ++i) {
      const std::string msg = std::string(kEs384SignatureBytes * i, 'x') + std::to_string(i);
      const std::string theirs = ref::sign(ref_priv.get(), msg);
      const std::string ours = key.sign(msg);
      EXPECT_TRUE(pub.verify(msg, theirs));
      EXPECT_TRUE(ref::verify(ref_pub.get(), msg, ours));
      EXPECT_FALSE(pub.verify(msg + "!", theirs));
      EXPECT_FALSE(ref::verify(ref_pub.get(), msg + "!", ours));
    }
  }
}

// r or s with leading zero bytes (about 1 signature in 128) are the edge of the r||s <-> DER
// conversions: DER drops leading zeros and adds one before a set top bit.
TEST(Es384, ScalarsWithLeadingZeroBytesRoundTrip) {
  auto key = Es384PrivateKey::generate();
  const auto pub = key.public_key();
  auto ref_priv = ref::private_key(key);
  auto ref_pub = ref::public_key(pub);
  bool ours_r = false, ours_s = false, theirs_r = false, theirs_s = false;
  for (int i = 0; i < 4000 && !(ours_r && ours_s && theirs_r && theirs_s); ++i) {
    const std::string msg = "leading zero " + std::to_string(i);
    const std::string ours = key.sign(msg);
    ASSERT_EQ(ours.size(), 96u);
    if (ours[0] == 0 || ours[48] == 0) {
      ours_r |= ours[0] == 0;
      ours_s |= ours[48] == 0;
      EXPECT_TRUE(pub.verify(msg, ours)) << i;
      EXPECT_TRUE(ref::verify(ref_pub.get(), msg, ours)) << i;
    }
    if (!(theirs_r && theirs_s)) {
      const std::string theirs = ref::sign(ref_priv.get(), msg);
      if (theirs[0] == 0 || theirs[48] == 0) {
        theirs_r |= theirs[0] == 0;
        theirs_s |= theirs[48] == 0;
        EXPECT_TRUE(pub.verify(msg, theirs)) << i;
      }
    }
  }
  EXPECT_TRUE(ours_r && ours_s && theirs_r && theirs_s) << "no leading zero byte seen in 4000 signatures";
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
  std::string der = spki_der_of(p256);
  EVP_PKEY_free(p256);
  auto r = Es384PublicKey::from_spki_der(der);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.code(), ErrorCode::token_unknown_key);

  EXPECT_FALSE(Es384PublicKey::from_spki_der("not der"));
  EXPECT_FALSE(Es384PublicKey::from_spki_der(""));
  auto good = Es384PrivateKey::generate().public_key().spki_der();
  EXPECT_FALSE(Es384PublicKey::from_spki_der(good + std::string(1, '\0')));  // trailing byte
}

// Every non-P-384 key is refused at load, public (DER and PEM) and private alike, including
// brainpoolP384r1: the same size, another curve.
TEST(Es384, RejectsKeysOfOtherCurvesAndAlgorithms) {
  std::vector<EVP_PKEY*> keys = {EVP_EC_gen("P-256"), EVP_EC_gen("P-521"), EVP_EC_gen("secp256k1"),
                                 EVP_EC_gen("brainpoolP384r1"), EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"),
                                 EVP_RSA_gen(1024)};
  for (EVP_PKEY* k : keys) {
    ASSERT_NE(k, nullptr);
    EXPECT_FALSE(Es384PublicKey::from_spki_der(spki_der_of(k))) << EVP_PKEY_get0_type_name(k);
    EXPECT_FALSE(Es384PublicKey::from_pem(public_pem_of(k))) << EVP_PKEY_get0_type_name(k);
    EXPECT_FALSE(Es384PrivateKey::from_pem(private_pem_of(k))) << EVP_PKEY_get0_type_name(k);
    EVP_PKEY_free(k);
  }
}

TEST(Es384, RejectsOffCurvePoint) {
  std::string der = Es384PrivateKey::generate().public_key().spki_der();
  der[der.size() - 1] ^= 0x01;  // flips a bit of y: the point leaves the curve
  EXPECT_FALSE(Es384PublicKey::from_spki_der(der));
}

// A fixed key and signature made with the openssl command line (tests/token/data/es384_kat).
TEST(Es384Kat, OpensslCliVectorVerifies) {
  const std::string msg = kat_file("msg.txt");
  const std::string sig = ref::der_to_raw(kat_file("sig.der"));
  EXPECT_EQ(sig, from_hex("2C172296AEF2122071CA2F6DB52E333FEBF41EBE5EF8CCB8B209DA9A3B87F58D281C4FF1D456AD629DC80937F378EFB1"
                          "FBA8DA0074A3CA4991FEC3ECC84E25E020E77D9DBC7B92838C328EFDEFDE220F12C98770708660DED8001F05DDE3629C"));
  EXPECT_TRUE(ref::is_high(sig.substr(48)));
  auto pub = Es384PublicKey::from_pem(kat_file("pub.pem"));
  ASSERT_TRUE(pub);
  EXPECT_TRUE(pub->verify(msg, sig));
  EXPECT_TRUE(pub->verify(msg, sig.substr(0, 48) + ref::negate_scalar(sig.substr(48))));  // its low-s twin
  EXPECT_FALSE(pub->verify(msg + " ", sig));
  // The JWS form of the same token: header.payload.base64url(r||s).
  const std::string token = msg + "." + b64::encode_url(sig);
  EXPECT_EQ(token.substr(token.rfind('.') + 1, 8), "LBcilq7y");

  auto priv = Es384PrivateKey::from_pem(kat_file("key.pem"));
  ASSERT_TRUE(priv);
  EXPECT_EQ(priv->public_key().spki_der(), pub->spki_der());
  const std::string ours = priv->sign(msg);
  EXPECT_TRUE(pub->verify(msg, ours));
  auto ref_pub = ref::public_key(*pub);
  EXPECT_TRUE(ref::verify(ref_pub.get(), msg, ours));
}

// RFC 6979 A.2.6: the P-384 key, and its SHA-384 signatures of "sample" and "test".
constexpr const char* kRfc6979X =
    "6B9D3DAD2E1B8C1C05B19875B6659F4DE23C3B667BF297BA9AA47740787137D896D5724E4C70A825F872C9EA60D2EDF5";
constexpr const char* kRfc6979Point =
    "04"
    "EC3A4E415B4E19A4568618029F427FA5DA9A8BC4AE92E02E06AAE5286B300C64DEF8F0EA9055866064A254515480BC13"
    "8015D9B72D7D57244EA8EF9AC0C621896708A59367F9DFB9F54CA84B3F1C9DB1288B231C3AE0D4FE7344FD2533264720";
constexpr const char* kRfc6979Sample =
    "94EDBB92A5ECB8AAD4736E56C691916B3F88140666CE9FA73D64C4EA95AD133C81A648152E44ACF96E36DD1E80FABE46"
    "99EF4AEB15F178CEA1FE40DB2603138F130E740A19624526203B6351D0A3A94FA329C145786E679E7B82C71A38628AC8";
constexpr const char* kRfc6979Test =
    "8203B63D3C853E8D77227FB377BCF7B7B772E97892A80F36AB775D509D7A5FEB0542A7F0812998DA8F1DD3CA3CF023DB"
    "DDD0760448D42D8A43AF45AF836FCE4DE8BE06B485E9B61B827C2F13173923E06A739F040649A667BF3B828246BAA5A5";
// The SubjectPublicKeyInfo prefix of every uncompressed P-384 key (ecPublicKey, secp384r1).
constexpr const char* kSpkiPrefix = "3076301006072a8648ce3d020106052b81040022036200";

TEST(Es384Kat, Rfc6979SignaturesVerify) {
  auto pub = Es384PublicKey::from_spki_der(from_hex(kSpkiPrefix) + from_hex(kRfc6979Point));
  ASSERT_TRUE(pub);
  EXPECT_TRUE(pub->verify("sample", from_hex(kRfc6979Sample)));
  EXPECT_TRUE(pub->verify("test", from_hex(kRfc6979Test)));
  EXPECT_FALSE(pub->verify("test", from_hex(kRfc6979Sample)));
}

// Signing is deterministic (RFC 6979, Botan's ECDSA with EMSA1(SHA-384)): the RFC's own key
// gives the RFC's signatures byte for byte, so the nonce never depends on a random generator.
TEST(Es384Kat, SigningIsRfc6979Deterministic) {
  const std::string x = from_hex(kRfc6979X), point = from_hex(kRfc6979Point);
  OSSL_PARAM_BLD* bld = OSSL_PARAM_BLD_new();
  BIGNUM* bn = BN_bin2bn(reinterpret_cast<const unsigned char*>(x.data()), static_cast<int>(x.size()), nullptr);
  ASSERT_EQ(OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "secp384r1", 0), 1);
  ASSERT_EQ(OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, bn), 1);
  ASSERT_EQ(OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size()), 1);
  OSSL_PARAM* params = OSSL_PARAM_BLD_to_param(bld);
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr);
  EVP_PKEY* pkey = nullptr;
  ASSERT_EQ(EVP_PKEY_fromdata_init(ctx), 1);
  ASSERT_EQ(EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_KEYPAIR, params), 1);
  const std::string pem = private_pem_of(pkey);
  EVP_PKEY_free(pkey);
  EVP_PKEY_CTX_free(ctx);
  OSSL_PARAM_free(params);
  BN_free(bn);
  OSSL_PARAM_BLD_free(bld);

  auto key = Es384PrivateKey::from_pem(pem);
  ASSERT_TRUE(key);
  EXPECT_EQ(key->public_key().spki_der(), from_hex(kSpkiPrefix) + point);
  EXPECT_EQ(key->sign("sample"), from_hex(kRfc6979Sample));
  EXPECT_EQ(key->sign("test"), from_hex(kRfc6979Test));
  EXPECT_EQ(key->sign("sample"), from_hex(kRfc6979Sample));  // again, from the cached signer
}

// A compressed public point (0x02/0x03 || x) is a valid encoding of the same key: accepted, as
// OpenSSL always did. The point at infinity (a single 0x00) is no key at all: refused since
// keys are also loaded into Botan (OpenSSL's d2i_PUBKEY accepts it, and so did presd before).
TEST(Es384, PointEncodings) {
  auto key = Es384PrivateKey::generate();
  const std::string der = key.public_key().spki_der();
  const std::string point = der.substr(der.size() - 97);
  ASSERT_EQ(point[0], '\x04');
  const char tag = static_cast<char>(0x02 | (point[96] & 1));
  const std::string compressed = from_hex("3046301006072a8648ce3d020106052b81040022033200") +
                                 std::string(1, tag) + point.substr(1, 48);
  auto pub = Es384PublicKey::from_spki_der(compressed);
  ASSERT_TRUE(pub);
  EXPECT_TRUE(pub->verify("m", key.sign("m")));
  std::string wrong_y = compressed;
  wrong_y[23] = static_cast<char>(wrong_y[23] ^ 1);  // the other y (p - y): the negated key
  auto other = Es384PublicKey::from_spki_der(wrong_y);
  ASSERT_TRUE(other);
  EXPECT_FALSE(other->verify("m", key.sign("m")));

  EXPECT_FALSE(Es384PublicKey::from_spki_der(from_hex("3016301006072a8648ce3d020106052b8104002203020000")));
}

// A key with static storage duration that signs and verifies must not crash the process when
// it is destroyed after main() (Botan's secure-memory pool must outlive it). gtest runs each
// test in its own process under ctest, so a crash at exit fails this test.
TEST(Es384, StaticKeysAreDestroyedSafelyAtExit) {
  static const Es384PrivateKey key = Es384PrivateKey::generate();
  static const Es384PublicKey pub = key.public_key();
  EXPECT_TRUE(pub.verify("m", key.sign("m")));
}

// The per-thread context caches: more keys than a cache holds, keys dropped and new ones made
// (possibly at the same address), and each result still belongs to the right key.
TEST(Es384Cache, ManyKeysAndDroppedKeysStayCorrect) {
  std::vector<Es384PrivateKey> keys;
  std::vector<Es384PublicKey> pubs;
  for (int i = 0; i < 40; ++i) {
    keys.push_back(Es384PrivateKey::generate());
    pubs.push_back(keys.back().public_key());
  }
  for (int round = 0; round < 2; ++round) {
    for (std::size_t i = 0; i < keys.size(); ++i) {
      const std::string msg = "round " + std::to_string(round) + " key " + std::to_string(i);
      const std::string sig = keys[i].sign(msg);
      EXPECT_TRUE(pubs[i].verify(msg, sig)) << i;
      EXPECT_FALSE(pubs[(i + 1) % pubs.size()].verify(msg, sig)) << i;
    }
  }
  for (int i = 0; i < 20; ++i) {
    std::string old_sig;
    {
      auto gone = Es384PrivateKey::generate();
      old_sig = gone.sign("m");
      EXPECT_TRUE(gone.public_key().verify("m", old_sig));
    }
    auto fresh = Es384PrivateKey::generate();
    const auto fresh_pub = fresh.public_key();
    EXPECT_FALSE(fresh_pub.verify("m", old_sig)) << i;
    EXPECT_TRUE(fresh_pub.verify("m", fresh.sign("m"))) << i;
  }
}

// Key objects are shared by several crypto threads at once: 8 threads sign and verify with the
// same three keys (and copies of them) concurrently; every result must be right.
TEST(Es384Cache, EightThreadsShareTheSameKeys) {
  std::vector<Es384PrivateKey> keys;
  std::vector<Es384PublicKey> pubs;
  std::vector<std::string> shared_sigs;
  for (int i = 0; i < 3; ++i) {
    keys.push_back(Es384PrivateKey::generate());
    pubs.push_back(keys.back().public_key());
    shared_sigs.push_back(keys.back().sign("shared"));
  }
  std::atomic<int> wrong{0}, checks{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int it = 0; it < 12; ++it) {
        const std::size_t k = static_cast<std::size_t>(t + it) % keys.size();
        const std::size_t other = (k + 1) % keys.size();
        const std::string msg = "thread " + std::to_string(t) + " iteration " + std::to_string(it);
        const std::string sig = keys[k].sign(msg);
        const Es384PublicKey copy = pubs[k];  // copies share the key
        std::string tampered = sig;
        tampered[it % 96] ^= 0x40;
        const bool results[] = {pubs[k].verify(msg, sig), copy.verify(msg, sig), !pubs[other].verify(msg, sig),
                                !pubs[k].verify(msg, tampered), pubs[k].verify("shared", shared_sigs[k]),
                                !pubs[k].verify("shared", shared_sigs[other])};
        for (bool ok : results) {
          checks.fetch_add(1);
          if (!ok) wrong.fetch_add(1);
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(checks.load(), 8 * 12 * 6);
  EXPECT_EQ(wrong.load(), 0);
}

}  // namespace
}  // namespace presd
