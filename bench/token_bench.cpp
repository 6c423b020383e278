// What a PRES costs before and during verification: the cheap rejections must be orders of
// magnitude below the ES384 verify that bounds ingest. ES384 is measured three ways: through the
// token API (BM_VerifyEs384, BM_SignEs384), through token/es384.h alone (BM_Es384Verify,
// BM_Es384Sign) and as the raw primitive the way `openssl speed ecdsap384` runs it (BM_Raw*: one
// EVP_PKEY_CTX initialised before the loop, a precomputed SHA-384 digest, DER signatures), so
// that the wrapper's overhead is the difference of two numbers from the same process.
#include <benchmark/benchmark.h>

#include <openssl/ec.h>
#include <openssl/evp.h>

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

// The raw OpenSSL primitive, set up like `openssl speed ecdsap384` (apps/speed.c): its own P-384
// key, the context initialised once, SHA-384 computed once outside the loop.
struct RawOpenssl {
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key{EVP_EC_gen("P-384"), EVP_PKEY_free};
  std::unique_ptr<EVP_PKEY_CTX, decltype(&EVP_PKEY_CTX_free)> sign_ctx{nullptr, EVP_PKEY_CTX_free};
  std::unique_ptr<EVP_PKEY_CTX, decltype(&EVP_PKEY_CTX_free)> verify_ctx{nullptr, EVP_PKEY_CTX_free};
  unsigned char digest[48];
  unsigned char der[128];
  std::size_t der_len = sizeof der;

  RawOpenssl() {
    const std::string msg = signing_input();
    unsigned int n = 0;
    sign_ctx.reset(EVP_PKEY_CTX_new(key.get(), nullptr));
    verify_ctx.reset(EVP_PKEY_CTX_new(key.get(), nullptr));
    if (!key || !sign_ctx || !verify_ctx || EVP_PKEY_sign_init(sign_ctx.get()) != 1 ||
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

}  // namespace
}  // namespace presd
