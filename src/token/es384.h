// ES384 for JWS (RFC 7518 3.4): ECDSA on P-384 with SHA-384, signatures as raw r||s of exactly
// 96 bytes. Only P-384 keys load (other curves, other algorithms, points off the curve or at
// infinity are refused); r and s outside [1, n-1] never verify; high-s is accepted, as it always
// was (JWS has no low-s rule). Signing is deterministic (RFC 6979): the same key and message
// give the same signature.
//
// Two libraries, each for what it does best (docs/performance.md, "ES384: OpenSSL versus
// Botan"): OpenSSL 3 parses, generates and serializes keys (PEM, DER); the signature math runs
// in Botan 2, which on this project's machine signs about 3x faster than OpenSSL 3.0 and
// verifies with about 20% less CPU.
//
// Key objects are immutable values: copies share one key, and every method may be called from
// several threads at once. Botan's signer and verifier objects are not thread-safe and cost more
// to make than to use (~0.1 ms each, plus ~0.35 ms the first time a private key signs at all),
// so each thread keeps its own for the 64 keys it used last (~9 KiB per verifier, ~2 KiB per
// signer).
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "common/result.h"

namespace presd {

inline constexpr std::size_t kEs384SignatureBytes = 96;

namespace es384_detail {
struct PublicState;
struct PrivateState;
}  // namespace es384_detail

class Es384PublicKey {
 public:
  // DER SubjectPublicKeyInfo (120 bytes for P-384). Rejects other curves and off-curve points.
  static Result<Es384PublicKey> from_spki_der(std::string_view der);
  static Result<Es384PublicKey> from_pem(std::string_view pem);

  std::string spki_der() const;
  std::string to_pem() const;
  // message is hashed with SHA-384; raw_signature must be exactly 96 bytes r||s.
  bool verify(std::string_view message, std::string_view raw_signature) const;

 private:
  explicit Es384PublicKey(std::shared_ptr<const es384_detail::PublicState> state) : state_(std::move(state)) {}
  std::shared_ptr<const es384_detail::PublicState> state_;
};

class Es384PrivateKey {
 public:
  static Es384PrivateKey generate();
  static Result<Es384PrivateKey> from_pem(std::string_view pem);  // PKCS#8 or SEC1, P-384 only

  std::string to_pem() const;  // PKCS#8
  Es384PublicKey public_key() const;
  // Raw r||s, 96 bytes, over SHA-384(message). Throws std::runtime_error if the library fails.
  std::string sign(std::string_view message) const;

 private:
  explicit Es384PrivateKey(std::shared_ptr<const es384_detail::PrivateState> state) : state_(std::move(state)) {}
  std::shared_ptr<const es384_detail::PrivateState> state_;
};

}  // namespace presd
