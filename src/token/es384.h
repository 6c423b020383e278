// ECDSA P-384 with SHA-384 over OpenSSL 3 EVP. JWS wants the raw r||s signature (96 bytes);
// OpenSSL speaks DER, so sign() and verify() convert. Keys are immutable once built and safe to
// use from several threads at once (each call makes its own EVP_PKEY_CTX).
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "common/result.h"

typedef struct evp_pkey_st EVP_PKEY;

namespace presd {

inline constexpr std::size_t kEs384SignatureBytes = 96;

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
  explicit Es384PublicKey(std::shared_ptr<EVP_PKEY> key) : key_(std::move(key)) {}
  std::shared_ptr<EVP_PKEY> key_;
};

class Es384PrivateKey {
 public:
  static Es384PrivateKey generate();
  static Result<Es384PrivateKey> from_pem(std::string_view pem);  // PKCS#8 or SEC1, P-384 only

  std::string to_pem() const;  // PKCS#8
  Es384PublicKey public_key() const;
  // Raw r||s, 96 bytes, over SHA-384(message).
  std::string sign(std::string_view message) const;

 private:
  explicit Es384PrivateKey(std::shared_ptr<EVP_PKEY> key) : key_(std::move(key)) {}
  std::shared_ptr<EVP_PKEY> key_;
};

}  // namespace presd
