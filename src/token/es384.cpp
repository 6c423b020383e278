#include "token/es384.h"

#include <botan/bigint.h>
#include <botan/ec_group.h>
#include <botan/ecdsa.h>
#include <botan/exceptn.h>
#include <botan/mem_ops.h>
#include <botan/pubkey.h>
#include <botan/system_rng.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <vector>

namespace presd {
namespace {

constexpr std::size_t kScalarBytes = 48;
constexpr const char* kEmsa = "EMSA1(SHA-384)";  // hash with SHA-384; IEEE 1363 r||s is Botan's default format

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
using BioPtr = std::unique_ptr<BIO, BioFree>;

// Botan keeps private scalars and bignums in an mlock'ed pool, a singleton made on first use and
// unmapped when static objects are destroyed. A key object destroyed after it (a static key
// made before Botan's first use, or any key still alive then) would zero unmapped memory and
// crash at exit (randombit/botan#2613). Making the pool now, while this library's statics are
// initialised, and again in every key state's constructor, lets it outlive them all.
const Botan::Allocator_Initializer botan_allocator_first;

const Botan::EC_Group& p384() {
  static const Botan::EC_Group group("secp384r1");
  return group;
}

// The public point as Botan sees it, from OpenSSL's encoding (uncompressed or compressed, as the
// key was given). Throws (Botan) if the bytes are not a point on P-384.
Botan::PointGFp public_point(EVP_PKEY* k) {
  unsigned char buf[1 + 2 * kScalarBytes];
  std::size_t len = 0;
  if (EVP_PKEY_get_octet_string_param(k, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, buf, sizeof buf, &len) != 1)
    throw std::runtime_error("no public point");
  Botan::PointGFp point = p384().OS2ECP(buf, len);
  if (point.is_zero() || !point.on_the_curve()) throw std::runtime_error("public point is not a P-384 point");
  return point;
}

// 1 <= x <= n-1 for a 48-byte big-endian scalar (not constant time: r and s are public).
bool in_scalar_range(const unsigned char* x) {
  bool zero = true;
  for (std::size_t i = 0; i < kScalarBytes && zero; ++i) zero = x[i] == 0;
  return !zero && std::memcmp(x, kOrder.data(), kScalarBytes) < 0;
}

std::uint64_t next_serial() {
  static std::atomic<std::uint64_t> serial{0};
  return serial.fetch_add(1, std::memory_order_relaxed) + 1;
}

}  // namespace

namespace es384_detail {

// What a key object shares with its copies. `serial` names the key in the per-thread caches:
// unlike an address it is never reused, so a cache entry can never be mistaken for a newer key.
struct PublicState {
  PublicState(std::shared_ptr<EVP_PKEY> k, Botan::PointGFp point)
      : serial((Botan::initialize_allocator(), next_serial())), evp(std::move(k)), botan(p384(), point) {}
  const std::uint64_t serial;
  const std::shared_ptr<EVP_PKEY> evp;   // parsing and serialization
  const Botan::ECDSA_PublicKey botan;    // verification
};

struct PrivateState {
  explicit PrivateState(std::shared_ptr<EVP_PKEY> k)
      : serial((Botan::initialize_allocator(), next_serial())), evp(std::move(k)) {}
  const std::uint64_t serial;
  const std::shared_ptr<EVP_PKEY> evp;

  // Made on first use (Botan computes the public point: ~0.3 ms), not at load: a key ring loads
  // every hosted key at start-up but signs with few of them.
  const Botan::ECDSA_PrivateKey& botan() const {
    std::call_once(once_, [this] {
      BIGNUM* bn = nullptr;
      if (EVP_PKEY_get_bn_param(evp.get(), OSSL_PKEY_PARAM_PRIV_KEY, &bn) != 1)
        throw std::runtime_error("private scalar not available");
      Botan::secure_vector<std::uint8_t> x(kScalarBytes);  // zeroed when freed
      const int n = BN_is_zero(bn) ? 0 : BN_bn2binpad(bn, x.data(), static_cast<int>(x.size()));
      BN_clear_free(bn);
      if (n != static_cast<int>(kScalarBytes)) throw std::runtime_error("private scalar out of range");
      auto key = std::make_unique<Botan::ECDSA_PrivateKey>(Botan::system_rng(), p384(),
                                                            Botan::BigInt(x.data(), x.size()));
      // Both libraries must agree on the key before Botan signs with it.
      if (key->public_point() != public_point(evp.get()))
        throw std::runtime_error("Botan and OpenSSL disagree on the public point");
      botan_ = std::move(key);
    });
    return *botan_;
  }

 private:
  mutable std::once_flag once_;
  mutable std::unique_ptr<const Botan::ECDSA_PrivateKey> botan_;
};

}  // namespace es384_detail

namespace {

// Per-thread signers/verifiers for the 64 keys a thread used last. Botan's PK_Signer and
// PK_Verifier hold per-operation state (the hash, blinding values) and must not be shared
// between threads; making one costs ~0.13 ms for a signer (RFC 6979 and blinding set-up) and
// ~0.1 ms for a verifier (a precomputed table for the public point), so each thread keeps its
// own. Entries of keys the program has dropped are reused first, so a rotated-out private
// key does not stay in memory after this thread's next miss.
template <typename State, typename Op>
class PerThreadOps {
 public:
  template <typename Make>
  Op& get(const std::shared_ptr<const State>& state, Make&& make) {
    for (auto& e : slots_)
      if (e.op && e.serial == state->serial) return *e.op;
    std::unique_ptr<Op> op = make(*state);
    Slot& slot = victim();
    slot.serial = state->serial;
    slot.owner = state;
    slot.op = std::move(op);
    return *slot.op;
  }

  // After an exception the object may hold half an operation: never reuse it.
  void drop(const State& state) {
    for (auto& e : slots_)
      if (e.serial == state.serial) e = Slot{};
  }

 private:
  // A verifier holds ~9 KiB (its point table), a signer ~2 KiB: 64 of each keep a busy node's
  // issuers warm for at most ~0.7 MiB per crypto thread. A linear scan of 64 serials is nothing
  // next to a 0.4 to 1 ms signature.
  static constexpr std::size_t kSlots = 64;
  struct Slot {
    std::uint64_t serial = 0;
    std::weak_ptr<const State> owner;
    std::unique_ptr<Op> op;
  };

  Slot& victim() {
    for (auto& e : slots_)
      if (!e.op || e.owner.expired()) return e;
    Slot& e = slots_[next_];
    next_ = (next_ + 1) % kSlots;
    return e;
  }

  std::array<Slot, kSlots> slots_;
  std::size_t next_ = 0;
};

// P-384 only, and a point Botan accepts (on the curve, not the point at infinity).
Result<std::shared_ptr<const es384_detail::PublicState>> public_state(std::shared_ptr<EVP_PKEY> key) {
  if (!is_p384(key.get())) return Error(ErrorCode::token_unknown_key, "public key is not on curve P-384");
  try {
    Botan::PointGFp point = public_point(key.get());
    return std::make_shared<const es384_detail::PublicState>(std::move(key), std::move(point));
  } catch (const std::exception&) {
    return Error(ErrorCode::token_unknown_key, "public key is not a point of P-384");
  }
}

}  // namespace

Result<Es384PublicKey> Es384PublicKey::from_spki_der(std::string_view der) {
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  EVP_PKEY* raw = d2i_PUBKEY(nullptr, &p, static_cast<long>(der.size()));
  if (!raw) return Error(ErrorCode::token_unknown_key, "public key is not a valid DER SubjectPublicKeyInfo");
  auto key = own(raw);
  if (p != reinterpret_cast<const unsigned char*>(der.data()) + der.size())
    return Error(ErrorCode::token_unknown_key, "trailing bytes after the public key");
  auto state = public_state(std::move(key));
  if (!state) return state.error();
  return Es384PublicKey(std::move(state).value());
}

Result<Es384PublicKey> Es384PublicKey::from_pem(std::string_view pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  EVP_PKEY* raw = bio ? PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr) : nullptr;
  if (!raw) return Error(ErrorCode::token_unknown_key, "not a PEM public key");
  auto state = public_state(own(raw));
  if (!state) return state.error();
  return Es384PublicKey(std::move(state).value());
}

std::string Es384PublicKey::spki_der() const {
  unsigned char* out = nullptr;
  int n = i2d_PUBKEY(state_->evp.get(), &out);
  if (n <= 0) throw std::runtime_error("i2d_PUBKEY failed");
  std::string der(reinterpret_cast<char*>(out), static_cast<std::size_t>(n));
  OPENSSL_free(out);
  return der;
}

std::string Es384PublicKey::to_pem() const {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PUBKEY(bio.get(), state_->evp.get()) != 1)
    throw std::runtime_error("PEM_write_bio_PUBKEY failed");
  return bio_to_string(bio.get());
}

bool Es384PublicKey::verify(std::string_view message, std::string_view raw_signature) const {
  if (raw_signature.size() != kEs384SignatureBytes) return false;
  const auto* sig = reinterpret_cast<const std::uint8_t*>(raw_signature.data());
  // Botan checks the range too; stating the rule here keeps it whatever the library does.
  if (!in_scalar_range(sig) || !in_scalar_range(sig + kScalarBytes)) return false;
  thread_local PerThreadOps<es384_detail::PublicState, Botan::PK_Verifier> verifiers;
  try {
    Botan::PK_Verifier& verifier = verifiers.get(state_, [](const es384_detail::PublicState& s) {
      return std::make_unique<Botan::PK_Verifier>(s.botan, kEmsa, Botan::IEEE_1363);
    });
    return verifier.verify_message(reinterpret_cast<const std::uint8_t*>(message.data()), message.size(), sig,
                                   raw_signature.size());
  } catch (const std::exception&) {
    verifiers.drop(*state_);
    return false;
  }
}

Es384PrivateKey Es384PrivateKey::generate() {
  EVP_PKEY* raw = EVP_EC_gen("P-384");
  if (!raw) throw std::runtime_error("EVP_EC_gen(P-384) failed");
  return Es384PrivateKey(std::make_shared<const es384_detail::PrivateState>(own(raw)));
}

Result<Es384PrivateKey> Es384PrivateKey::from_pem(std::string_view pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  EVP_PKEY* raw = bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr) : nullptr;
  if (!raw) return Error(ErrorCode::bad_request, "not a PEM private key");
  auto key = own(raw);
  if (!is_p384(raw)) return Error(ErrorCode::bad_request, "private key is not on curve P-384");
  return Es384PrivateKey(std::make_shared<const es384_detail::PrivateState>(std::move(key)));
}

std::string Es384PrivateKey::to_pem() const {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PrivateKey(bio.get(), state_->evp.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1)
    throw std::runtime_error("PEM_write_bio_PrivateKey failed");
  return bio_to_string(bio.get());
}

Es384PublicKey Es384PrivateKey::public_key() const {
  unsigned char* out = nullptr;
  int n = i2d_PUBKEY(state_->evp.get(), &out);
  if (n <= 0) throw std::runtime_error("i2d_PUBKEY failed");
  std::string der(reinterpret_cast<char*>(out), static_cast<std::size_t>(n));
  OPENSSL_free(out);
  auto pub = Es384PublicKey::from_spki_der(der);
  if (!pub) throw std::runtime_error("own public key did not parse: " + pub.error().message);
  return std::move(pub).value();
}

std::string Es384PrivateKey::sign(std::string_view message) const {
  thread_local PerThreadOps<es384_detail::PrivateState, Botan::PK_Signer> signers;
  try {
    Botan::PK_Signer& signer = signers.get(state_, [](const es384_detail::PrivateState& s) {
      return std::make_unique<Botan::PK_Signer>(s.botan(), Botan::system_rng(), kEmsa, Botan::IEEE_1363);
    });
    const std::vector<std::uint8_t> sig =
        signer.sign_message(reinterpret_cast<const std::uint8_t*>(message.data()), message.size(), Botan::system_rng());
    if (sig.size() != kEs384SignatureBytes) throw std::runtime_error("signature is not 96 bytes");
    return std::string(sig.begin(), sig.end());
  } catch (const std::exception& e) {
    signers.drop(*state_);
    throw std::runtime_error(std::string("ES384 sign failed: ") + e.what());
  }
}

}  // namespace presd
