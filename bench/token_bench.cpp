// What a PRES costs before and during verification: the cheap rejections must be orders of
// magnitude below the ES384 verify that bounds ingest.
#include <benchmark/benchmark.h>

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

}  // namespace
}  // namespace presd
