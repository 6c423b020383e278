// ES384 (ECDSA P-384, SHA-384) in Botan 2 next to OpenSSL 3 (our Es384 wrappers), same
// message, same process: the measurement issue 4 asks for before choosing a library. Built only
// when libbotan-2-dev is installed (bench/CMakeLists.txt).
#include <benchmark/benchmark.h>

#include <botan/auto_rng.h>
#include <botan/ec_group.h>
#include <botan/ecdsa.h>
#include <botan/pubkey.h>

#include <string>

#include "token/es384.h"

namespace {

// A typical signing input: base64url header "." base64url claims of a PRES.
const std::string kMessage = std::string(36, 'h') + "." + std::string(260, 'p');

struct BotanKey {
  Botan::AutoSeeded_RNG rng;
  Botan::ECDSA_PrivateKey key{rng, Botan::EC_Group("secp384r1")};
};

BotanKey& botan_key() {
  static BotanKey k;
  return k;
}

void BM_BotanSignEs384(benchmark::State& state) {
  auto& k = botan_key();
  Botan::PK_Signer signer(k.key, k.rng, "EMSA1(SHA-384)");  // raw r||s, as JWS wants
  const auto* msg = reinterpret_cast<const std::uint8_t*>(kMessage.data());
  for (auto _ : state) benchmark::DoNotOptimize(signer.sign_message(msg, kMessage.size(), k.rng));
}
BENCHMARK(BM_BotanSignEs384);

void BM_BotanVerifyEs384(benchmark::State& state) {
  auto& k = botan_key();
  Botan::PK_Signer signer(k.key, k.rng, "EMSA1(SHA-384)");
  const auto* msg = reinterpret_cast<const std::uint8_t*>(kMessage.data());
  const auto sig = signer.sign_message(msg, kMessage.size(), k.rng);
  Botan::PK_Verifier verifier(k.key, "EMSA1(SHA-384)");
  if (!verifier.verify_message(msg, kMessage.size(), sig.data(), sig.size())) state.SkipWithError("botan: bad signature");
  for (auto _ : state) benchmark::DoNotOptimize(verifier.verify_message(msg, kMessage.size(), sig.data(), sig.size()));
}
BENCHMARK(BM_BotanVerifyEs384);

void BM_OpensslSignEs384(benchmark::State& state) {
  static const presd::Es384PrivateKey key = presd::Es384PrivateKey::generate();
  for (auto _ : state) benchmark::DoNotOptimize(key.sign(kMessage));
}
BENCHMARK(BM_OpensslSignEs384);

void BM_OpensslVerifyEs384(benchmark::State& state) {
  static const presd::Es384PrivateKey key = presd::Es384PrivateKey::generate();
  const presd::Es384PublicKey pub = key.public_key();
  const std::string sig = key.sign(kMessage);
  if (!pub.verify(kMessage, sig)) state.SkipWithError("openssl: bad signature");
  for (auto _ : state) benchmark::DoNotOptimize(pub.verify(kMessage, sig));
}
BENCHMARK(BM_OpensslVerifyEs384);

}  // namespace
