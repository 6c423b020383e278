#include "token/es384.h"

#include <openssl/bio.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <array>
#include <cstring>
#include <stdexcept>

namespace presd {
namespace {

constexpr std::size_t kScalarBytes = 48;
constexpr std::size_t kDigestBytes = 48;
constexpr std::size_t kMaxDerBytes = 2 + 2 * (2 + 1 + kScalarBytes);  // 104 = ECDSA_size(P-384)

// The order n of P-384 (SEC 2, secp384r1), big-endian: r and s must lie in [1, n-1].
constexpr std::array<unsigned char, kScalarBytes> kOrder = {
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xc7, 0x63, 0x4d, 0x81, 0xf4, 0x37, 0x2d, 0xdf,
    0x58, 0x1a, 0x0d, 0xb2, 0x48, 0xb0, 0xa7, 0x7a, 0xec, 0xec, 0x19, 0x6a, 0xcc, 0xc5, 0x29, 0x73};

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
struct MdFree { void operator()(EVP_MD* m) const { EVP_MD_free(m); } };
struct PkeyCtxFree { void operator()(EVP_PKEY_CTX* c) const { EVP_PKEY_CTX_free(c); } };
using BioPtr = std::unique_ptr<BIO, BioFree>;
using PkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, PkeyCtxFree>;

// SHA-384, fetched from the provider once. EVP_sha384() is a legacy handle that OpenSSL 3
// re-fetches (a locked lookup in the method store) on every EVP_DigestInit.
const EVP_MD* sha384() {
  static const std::unique_ptr<EVP_MD, MdFree> md(EVP_MD_fetch(nullptr, "SHA2-384", nullptr));
  if (!md) throw std::runtime_error("EVP_MD_fetch(SHA2-384) failed");
  return md.get();
}

bool digest(std::string_view message, unsigned char (&out)[kDigestBytes]) {
  unsigned int n = 0;
  return EVP_Digest(message.data(), message.size(), out, &n, sha384(), nullptr) == 1 && n == kDigestBytes;
}

// 1 <= x <= n-1 for a 48-byte big-endian scalar (not constant time: r and s are public).
bool in_scalar_range(const unsigned char* x) {
  bool zero = true;
  for (std::size_t i = 0; i < kScalarBytes && zero; ++i) zero = x[i] == 0;
  return !zero && std::memcmp(x, kOrder.data(), kScalarBytes) < 0;
}

// Minimal DER INTEGER of a positive 48-byte big-endian scalar; returns the bytes written.
std::size_t put_der_integer(const unsigned char* x, unsigned char* out) {
  std::size_t skip = 0;
  while (skip + 1 < kScalarBytes && x[skip] == 0) ++skip;
  const std::size_t len = kScalarBytes - skip;
  const bool pad = (x[skip] & 0x80) != 0;  // a set top bit would read as negative
  std::size_t pos = 0;
  out[pos++] = 0x02;
  out[pos++] = static_cast<unsigned char>(len + (pad ? 1 : 0));
  if (pad) out[pos++] = 0x00;
  std::memcpy(out + pos, x + skip, len);
  return pos + len;
}

// JWS r||s to the DER ECDSA-Sig-Value OpenSSL verifies (short-form lengths: at most 104 bytes).
std::size_t raw_to_der(const unsigned char* raw, unsigned char (&der)[kMaxDerBytes]) {
  std::size_t pos = 2;
  pos += put_der_integer(raw, der + pos);
  pos += put_der_integer(raw + kScalarBytes, der + pos);
  der[0] = 0x30;
  der[1] = static_cast<unsigned char>(pos - 2);
  return pos;
}

// OpenSSL's DER ECDSA-Sig-Value back to r||s. Strict: exactly SEQUENCE { INTEGER, INTEGER },
// positive, at most 48 significant bytes each, nothing trailing.
bool der_to_raw(const unsigned char* der, std::size_t len, unsigned char* raw) {
  if (len < 8 || der[0] != 0x30 || der[1] != len - 2) return false;
  std::size_t pos = 2;
  for (std::size_t half = 0; half < 2; ++half) {
    if (pos + 2 > len || der[pos] != 0x02) return false;
    std::size_t n = der[pos + 1];
    pos += 2;
    if (n == 0 || n > kScalarBytes + 1 || pos + n > len || (der[pos] & 0x80) != 0) return false;
    const unsigned char* p = der + pos;
    pos += n;
    if (n == kScalarBytes + 1) {
      if (p[0] != 0) return false;
      ++p;
      --n;
    }
    unsigned char* dst = raw + half * kScalarBytes;
    std::memset(dst, 0, kScalarBytes - n);
    std::memcpy(dst + kScalarBytes - n, p, n);
  }
  return pos == len;
}

// EVP_PKEY_CTXs initialised once per (key, operation) and reused, per thread: initialising one
// (EVP_DigestVerifyInit and friends) fetches the signature implementation and the digest and
// costs ~10% of a P-384 verify. A context is never shared between threads (OpenSSL contexts are
// not thread-safe); a key is (EVP_PKEY is immutable here), so one EVP_PKEY serves all threads.
//
// Lookup is by the EVP_PKEY's address. That is safe because a cached context holds a
// reference to its EVP_PKEY (EVP_PKEY_CTX_new up-refs it), so the address cannot be reused by
// another key while the entry exists. The weak_ptr tells which entries belong to keys the
// program has dropped: those are replaced first, so a rotated-out private key does not stay in
// memory longer than necessary (at most until this thread next misses the cache).
class PkeyCtxCache {
 public:
  using Init = int (*)(EVP_PKEY_CTX*);
  explicit PkeyCtxCache(Init init) : init_(init) {}

  // nullptr if the context cannot be made (out of memory); the caller fails the operation.
  EVP_PKEY_CTX* get(const std::shared_ptr<EVP_PKEY>& key) {
    for (auto& e : entries_)
      if (e.key == key.get()) return e.ctx.get();
    PkeyCtxPtr ctx(EVP_PKEY_CTX_new(key.get(), nullptr));
    if (!ctx || init_(ctx.get()) != 1) return nullptr;
    Entry& slot = victim();
    slot.key = key.get();
    slot.owner = key;
    slot.ctx = std::move(ctx);
    return slot.ctx.get();
  }

 private:
  static constexpr std::size_t kSlots = 16;
  struct Entry {
    const EVP_PKEY* key = nullptr;
    std::weak_ptr<EVP_PKEY> owner;
    PkeyCtxPtr ctx;
  };

  Entry& victim() {
    for (auto& e : entries_)
      if (!e.ctx || e.owner.expired()) return e;
    Entry& e = entries_[next_];
    next_ = (next_ + 1) % kSlots;
    return e;
  }

  Init init_;
  std::array<Entry, kSlots> entries_;
  std::size_t next_ = 0;
};

EVP_PKEY_CTX* verify_ctx(const std::shared_ptr<EVP_PKEY>& key) {
  thread_local PkeyCtxCache cache(EVP_PKEY_verify_init);
  return cache.get(key);
}

EVP_PKEY_CTX* sign_ctx(const std::shared_ptr<EVP_PKEY>& key) {
  thread_local PkeyCtxCache cache(EVP_PKEY_sign_init);
  return cache.get(key);
}

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
  const auto* sig = reinterpret_cast<const unsigned char*>(raw_signature.data());
  // OpenSSL refuses r, s outside [1, n-1] too, but only after a DER round trip and with an
  // entry on the error queue; checking the bytes here is cheaper and states the rule.
  if (!in_scalar_range(sig) || !in_scalar_range(sig + kScalarBytes)) return false;
  unsigned char der[kMaxDerBytes];
  const std::size_t der_len = raw_to_der(sig, der);
  unsigned char md[kDigestBytes];
  EVP_PKEY_CTX* ctx = verify_ctx(key_);
  if (!ctx || !digest(message, md)) {
    ERR_clear_error();
    return false;
  }
  if (EVP_PKEY_verify(ctx, der, der_len, md, sizeof md) == 1) return true;
  ERR_clear_error();  // a failed verify may leave entries on this thread's queue
  return false;
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
  unsigned char md[kDigestBytes];
  if (!digest(message, md)) throw std::runtime_error("SHA-384 failed");
  EVP_PKEY_CTX* ctx = sign_ctx(key_);
  if (!ctx) throw std::runtime_error("EVP_PKEY_sign_init failed");
  unsigned char der[kMaxDerBytes];
  std::size_t der_len = sizeof der;
  if (EVP_PKEY_sign(ctx, der, &der_len, md, sizeof md) != 1) throw std::runtime_error("EVP_PKEY_sign failed");
  std::string raw(kEs384SignatureBytes, '\0');
  if (!der_to_raw(der, der_len, reinterpret_cast<unsigned char*>(raw.data())))
    throw std::runtime_error("EVP_PKEY_sign returned an unexpected signature encoding");
  return raw;
}

}  // namespace presd
