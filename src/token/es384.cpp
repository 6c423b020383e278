#include "token/es384.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cstring>
#include <stdexcept>

namespace presd {
namespace {

constexpr std::size_t kScalarBytes = 48;

std::shared_ptr<EVP_PKEY> own(EVP_PKEY* k) { return {k, EVP_PKEY_free}; }

// Only P-384 keys: a token signed with another curve must not verify even if the math works.
bool is_p384(EVP_PKEY* k) {
  if (EVP_PKEY_get_base_id(k) != EVP_PKEY_EC) return false;
  char group[64] = {0};
  std::size_t len = 0;
  if (EVP_PKEY_get_group_name(k, group, sizeof group, &len) != 1) return false;
  return std::strcmp(group, "secp384r1") == 0;
}

std::string bio_to_string(BIO* bio) {
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<std::size_t>(n));
}

struct BioFree { void operator()(BIO* b) const { BIO_free(b); } };
struct MdCtxFree { void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); } };
struct SigFree { void operator()(ECDSA_SIG* s) const { ECDSA_SIG_free(s); } };
using BioPtr = std::unique_ptr<BIO, BioFree>;
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, MdCtxFree>;
using SigPtr = std::unique_ptr<ECDSA_SIG, SigFree>;

}  // namespace

Result<Es384PublicKey> Es384PublicKey::from_spki_der(std::string_view der) {
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  EVP_PKEY* raw = d2i_PUBKEY(nullptr, &p, static_cast<long>(der.size()));
  if (!raw) return Error(ErrorCode::token_unknown_key, "public key is not a valid DER SubjectPublicKeyInfo");
  auto key = own(raw);
  if (p != reinterpret_cast<const unsigned char*>(der.data()) + der.size())
    return Error(ErrorCode::token_unknown_key, "trailing bytes after the public key");
  if (!is_p384(raw)) return Error(ErrorCode::token_unknown_key, "public key is not on curve P-384");
  return Es384PublicKey(std::move(key));
}

Result<Es384PublicKey> Es384PublicKey::from_pem(std::string_view pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  EVP_PKEY* raw = bio ? PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr) : nullptr;
  if (!raw) return Error(ErrorCode::token_unknown_key, "not a PEM public key");
  auto key = own(raw);
  if (!is_p384(raw)) return Error(ErrorCode::token_unknown_key, "public key is not on curve P-384");
  return Es384PublicKey(std::move(key));
}

std::string Es384PublicKey::spki_der() const {
  unsigned char* out = nullptr;
  int n = i2d_PUBKEY(key_.get(), &out);
  if (n <= 0) throw std::runtime_error("i2d_PUBKEY failed");
  std::string der(reinterpret_cast<char*>(out), static_cast<std::size_t>(n));
  OPENSSL_free(out);
  return der;
}

std::string Es384PublicKey::to_pem() const {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PUBKEY(bio.get(), key_.get()) != 1) throw std::runtime_error("PEM_write_bio_PUBKEY failed");
  return bio_to_string(bio.get());
}

bool Es384PublicKey::verify(std::string_view message, std::string_view raw_signature) const {
  if (raw_signature.size() != kEs384SignatureBytes) return false;
  const auto* sig_bytes = reinterpret_cast<const unsigned char*>(raw_signature.data());
  SigPtr sig(ECDSA_SIG_new());
  BIGNUM* r = BN_bin2bn(sig_bytes, kScalarBytes, nullptr);
  BIGNUM* s = BN_bin2bn(sig_bytes + kScalarBytes, kScalarBytes, nullptr);
  if (!sig || !r || !s || ECDSA_SIG_set0(sig.get(), r, s) != 1) {
    BN_free(r);
    BN_free(s);
    return false;
  }
  unsigned char der[128];
  unsigned char* out = der;
  int der_len = i2d_ECDSA_SIG(sig.get(), &out);
  if (der_len <= 0) return false;

  MdCtxPtr ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha384(), nullptr, key_.get()) != 1) return false;
  return EVP_DigestVerify(ctx.get(), der, static_cast<std::size_t>(der_len),
                          reinterpret_cast<const unsigned char*>(message.data()), message.size()) == 1;
}

Es384PrivateKey Es384PrivateKey::generate() {
  EVP_PKEY* raw = EVP_EC_gen("P-384");
  if (!raw) throw std::runtime_error("EVP_EC_gen(P-384) failed");
  return Es384PrivateKey(own(raw));
}

Result<Es384PrivateKey> Es384PrivateKey::from_pem(std::string_view pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  EVP_PKEY* raw = bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr) : nullptr;
  if (!raw) return Error(ErrorCode::bad_request, "not a PEM private key");
  auto key = own(raw);
  if (!is_p384(raw)) return Error(ErrorCode::bad_request, "private key is not on curve P-384");
  return Es384PrivateKey(std::move(key));
}

std::string Es384PrivateKey::to_pem() const {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PrivateKey(bio.get(), key_.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1)
    throw std::runtime_error("PEM_write_bio_PrivateKey failed");
  return bio_to_string(bio.get());
}

Es384PublicKey Es384PrivateKey::public_key() const {
  unsigned char* out = nullptr;
  int n = i2d_PUBKEY(key_.get(), &out);
  if (n <= 0) throw std::runtime_error("i2d_PUBKEY failed");
  std::string der(reinterpret_cast<char*>(out), static_cast<std::size_t>(n));
  OPENSSL_free(out);
  auto pub = Es384PublicKey::from_spki_der(der);
  if (!pub) throw std::runtime_error("own public key did not parse: " + pub.error().message);
  return std::move(pub).value();
}

std::string Es384PrivateKey::sign(std::string_view message) const {
  MdCtxPtr ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha384(), nullptr, key_.get()) != 1)
    throw std::runtime_error("EVP_DigestSignInit failed");
  unsigned char der[128];
  std::size_t der_len = sizeof der;
  if (EVP_DigestSign(ctx.get(), der, &der_len, reinterpret_cast<const unsigned char*>(message.data()),
                     message.size()) != 1)
    throw std::runtime_error("EVP_DigestSign failed");
  const unsigned char* p = der;
  SigPtr sig(d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der_len)));
  if (!sig) throw std::runtime_error("d2i_ECDSA_SIG failed");
  std::string raw(kEs384SignatureBytes, '\0');
  auto* dst = reinterpret_cast<unsigned char*>(raw.data());
  if (BN_bn2binpad(ECDSA_SIG_get0_r(sig.get()), dst, kScalarBytes) != kScalarBytes ||
      BN_bn2binpad(ECDSA_SIG_get0_s(sig.get()), dst + kScalarBytes, kScalarBytes) != kScalarBytes)
    throw std::runtime_error("signature scalar too large");
  return raw;
}

}  // namespace presd
