// What a PRES costs before and during verification: the cheap rejections must be orders of
// magnitude below the ES384 verify that bounds ingest. ES384 is measured through the token API
// (BM_VerifyEs384, BM_SignEs384), through token/es384.h alone (BM_Es384Verify, BM_Es384Sign;
// *NewKey: a key this thread has not used yet) and as the raw primitive of both libraries:
// BM_RawOpenssl* the way `openssl speed ecdsap384` runs it (one EVP_PKEY_CTX initialised before
// the loop, a precomputed SHA-384 digest, DER signatures), BM_RawBotan* with one PK_Signer /
// PK_Verifier. The wrapper's overhead and the choice of library (docs/performance.md, "ES384:
// OpenSSL versus Botan") are then differences of numbers measured in the same process.
#include <benchmark/benchmark.h>

#include <botan/auto_rng.h>
#include <botan/ec_group.h>
#include <botan/ecdsa.h>
#include <botan/pubkey.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <memory>
#include <stdexcept>

#include "token/base64.h"
#include "token/pres_token.h"

namespace presd {
namespace {

const Es384PrivateKey& key() {
  static const Es384PrivateKey k = Es384PrivateKey::generate();
  return k;
}

std::string valid_token() {
  PresClaims c;
  c.iss = "alice.example.net";
  c.k = "241124";
  c.subtype = "TYPING";
  c.sub = "a1~" + std::string(43, 'Q');
  c.aud = "bob.example.org";
  c.iat = 1'800'000'000;
  return sign_pres_token(c, key());
}

void BM_ParseValid(benchmark::State& state) {
  const std::string t = valid_token();
  for (auto _ : state) benchmark::DoNotOptimize(parse_pres_token(t));
}
BENCHMARK(BM_ParseValid);

void BM_RejectBadHeader(benchmark::State& state) {
  std::string t = valid_token();
  t.replace(0, t.find('.'), b64::encode_url(R"({"typ":"JWT","alg":"HS384"})"));
  for (auto _ : state) benchmark::DoNotOptimize(parse_pres_token(t));
}
BENCHMARK(BM_RejectBadHeader);

void BM_RejectOversize(benchmark::State& state) {
  const std::string t(8192, 'a');
  for (auto _ : state) benchmark::DoNotOptimize(parse_pres_token(t));
}
BENCHMARK(BM_RejectOversize);

void BM_RejectExpired(benchmark::State& state) {
  auto t = parse_pres_token(valid_token());
  for (auto _ : state) benchmark::DoNotOptimize(check_freshness(t->claims, 1'900'000'000'000));
}
BENCHMARK(BM_RejectExpired);

void BM_VerifyEs384(benchmark::State& state) {
  auto t = parse_pres_token(valid_token());
  const Es384PublicKey pub = key().public_key();
  for (auto _ : state) benchmark::DoNotOptimize(verify_pres_signature(*t, pub));
}
BENCHMARK(BM_VerifyEs384);

void BM_SignEs384(benchmark::State& state) {
  PresClaims c = parse_pres_token(valid_token())->claims;
  for (auto _ : state) benchmark::DoNotOptimize(sign_pres_token(c, key()));
}
BENCHMARK(BM_SignEs384);

// The signing input of a typical PRES ("header.payload"), as the hub hands it to verify().
std::string signing_input() { return std::string(parse_pres_token(valid_token())->signing_input()); }

void BM_Es384Verify(benchmark::State& state) {
  const std::string msg = signing_input();
  const std::string sig = key().sign(msg);
  const Es384PublicKey pub = key().public_key();
  if (!pub.verify(msg, sig)) state.SkipWithError("bad signature");
  for (auto _ : state) benchmark::DoNotOptimize(pub.verify(msg, sig));
}
BENCHMARK(BM_Es384Verify);

void BM_Es384Sign(benchmark::State& state) {
  const std::string msg = signing_input();
  for (auto _ : state) benchmark::DoNotOptimize(key().sign(msg));
}
BENCHMARK(BM_Es384Sign);

// A key used for the first time on this thread (a remote key just fetched, or a miss in the
// per-thread cache): parse the SPKI, then verify.
void BM_Es384VerifyNewKey(benchmark::State& state) {
  const std::string msg = signing_input();
  const std::string sig = key().sign(msg);
  const std::string der = key().public_key().spki_der();
  for (auto _ : state) benchmark::DoNotOptimize(Es384PublicKey::from_spki_der(der)->verify(msg, sig));
}
BENCHMARK(BM_Es384VerifyNewKey);

// The same for signing: load the PEM, then sign.
void BM_Es384SignNewKey(benchmark::State& state) {
  const std::string msg = signing_input();
  const std::string pem = key().to_pem();
  for (auto _ : state) benchmark::DoNotOptimize(Es384PrivateKey::from_pem(pem)->sign(msg));
}
BENCHMARK(BM_Es384SignNewKey);

// The raw OpenSSL primitive, set up like `openssl speed ecdsap384` (apps/speed.c): its own P-384
// key, the context initialised once, SHA-384 computed once outside the loop.
// The verifying key is public-only, parsed from its SubjectPublicKeyInfo like every key presd
// verifies with (speed.c verifies with the key pair it generated; no measurable difference).
struct RawOpenssl {
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key{EVP_EC_gen("P-384"), EVP_PKEY_free};
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> pub{nullptr, EVP_PKEY_free};
  std::unique_ptr<EVP_PKEY_CTX, decltype(&EVP_PKEY_CTX_free)> sign_ctx{nullptr, EVP_PKEY_CTX_free};
  std::unique_ptr<EVP_PKEY_CTX, decltype(&EVP_PKEY_CTX_free)> verify_ctx{nullptr, EVP_PKEY_CTX_free};
  unsigned char digest[48];
  unsigned char der[128];
  std::size_t der_len = sizeof der;

  RawOpenssl() {
    const std::string msg = signing_input();
    unsigned int n = 0;
    unsigned char* spki = nullptr;
    const int spki_len = i2d_PUBKEY(key.get(), &spki);
    const unsigned char* p = spki;
    if (spki_len > 0) pub.reset(d2i_PUBKEY(nullptr, &p, spki_len));
    OPENSSL_free(spki);
    sign_ctx.reset(EVP_PKEY_CTX_new(key.get(), nullptr));
    verify_ctx.reset(EVP_PKEY_CTX_new(pub.get(), nullptr));
    if (!key || !pub || !sign_ctx || !verify_ctx || EVP_PKEY_sign_init(sign_ctx.get()) != 1 ||
        EVP_PKEY_verify_init(verify_ctx.get()) != 1 ||
        EVP_Digest(msg.data(), msg.size(), digest, &n, EVP_sha384(), nullptr) != 1 ||
        EVP_PKEY_sign(sign_ctx.get(), der, &der_len, digest, sizeof digest) != 1 ||
        EVP_PKEY_verify(verify_ctx.get(), der, der_len, digest, sizeof digest) != 1)
      throw std::runtime_error("raw OpenSSL ECDSA P-384 setup failed");
  }
};

RawOpenssl& raw_openssl() {
  static RawOpenssl r;
  return r;
}

void BM_RawOpensslVerify(benchmark::State& state) {
  auto& r = raw_openssl();
  for (auto _ : state)
    benchmark::DoNotOptimize(EVP_PKEY_verify(r.verify_ctx.get(), r.der, r.der_len, r.digest, sizeof r.digest));
}
BENCHMARK(BM_RawOpensslVerify);

void BM_RawOpensslSign(benchmark::State& state) {
  auto& r = raw_openssl();
  unsigned char der[128];
  for (auto _ : state) {
    std::size_t len = sizeof der;
    benchmark::DoNotOptimize(EVP_PKEY_sign(r.sign_ctx.get(), der, &len, r.digest, sizeof r.digest));
  }
}
BENCHMARK(BM_RawOpensslSign);

// The raw Botan 2 primitive: its own P-384 key, PK_Signer/PK_Verifier made once (EMSA1(SHA-384)
// hashes the message inside, IEEE 1363 r||s as JWS wants). The verifying key is public-only,
// decoded from its uncompressed encoding like every key presd verifies with.
struct RawBotan {
  Botan::AutoSeeded_RNG rng;
  Botan::ECDSA_PrivateKey key{rng, Botan::EC_Group("secp384r1")};
  Botan::ECDSA_PublicKey pub{key.domain(), key.domain().OS2ECP(key.public_point().encode(Botan::PointGFp::UNCOMPRESSED))};
  Botan::PK_Signer signer{key, rng, "EMSA1(SHA-384)"};
  Botan::PK_Verifier verifier{pub, "EMSA1(SHA-384)"};
  std::string msg = signing_input();
  std::vector<std::uint8_t> sig;

  RawBotan() {
    sig = signer.sign_message(data(), msg.size(), rng);
    if (!verifier.verify_message(data(), msg.size(), sig.data(), sig.size()))
      throw std::runtime_error("raw Botan ECDSA P-384 setup failed");
  }
  const std::uint8_t* data() const { return reinterpret_cast<const std::uint8_t*>(msg.data()); }
};

RawBotan& raw_botan() {
  static RawBotan r;
  return r;
}

void BM_RawBotanVerify(benchmark::State& state) {
  auto& r = raw_botan();
  for (auto _ : state)
    benchmark::DoNotOptimize(r.verifier.verify_message(r.data(), r.msg.size(), r.sig.data(), r.sig.size()));
}
BENCHMARK(BM_RawBotanVerify);

void BM_RawBotanSign(benchmark::State& state) {
  auto& r = raw_botan();
  for (auto _ : state) benchmark::DoNotOptimize(r.signer.sign_message(r.data(), r.msg.size(), r.rng));
}
BENCHMARK(BM_RawBotanSign);

}  // namespace
}  // namespace presd
