#include "keys/key_ring.h"

#include <boost/json/parse.hpp>
#include <gtest/gtest.h>

#include "store/sqlite_store.h"
#include "token/base64.h"
#include "token/es384.h"
#include "token/pres_token.h"

namespace presd {
namespace {

constexpr std::int64_t kDay = 1732406400;  // 2024-11-24T00:00:00Z

TEST(KeyId, IsYYMMDDOfTheUtcDay) {
  EXPECT_EQ(key_id_for_day(kDay), "241124");
  EXPECT_EQ(key_id_for_day(kDay + 86399), "241124");
  EXPECT_EQ(key_id_for_day(kDay + 86400), "241125");
}

TEST(KeyRing, EnsureTenantCreatesOneKeyIdempotently) {
  SqliteStore store(":memory:");
  KeyRing ring(store);
  ASSERT_TRUE(ring.ensure_tenant("alice.example.net", kDay));
  ASSERT_TRUE(ring.ensure_tenant("alice.example.net", kDay + 5));
  ASSERT_TRUE(ring.hosts("alice.example.net"));
  EXPECT_FALSE(ring.hosts("bob.example.net"));
  ASSERT_EQ(ring.keys("alice.example.net")->size(), 1u);
  EXPECT_EQ(ring.signing_key("alice.example.net")->key_id, "241124");
  EXPECT_EQ(ring.signing_key("bob.example.net"), nullptr);
  EXPECT_EQ(ring.ensure_tenant("Not Canonical", kDay).code(), ErrorCode::bad_request);
}

// Another node sharing the store inserts the tenant's first key between our look and our
// insert (nodes started together with the same --tenant).
// `after_first_list`: the other node commits right after our first look at the keys (it saw
// none either), before we insert.
class RacingKeyStore final : public KeyStore {
 public:
  explicit RacingKeyStore(KeyStore& inner, bool after_first_list = false)
      : inner_(inner), after_first_list_(after_first_list) {}
  Status add_tenant(std::string_view id_tag) override { return inner_.add_tenant(id_tag); }
  Result<bool> has_tenant(std::string_view id_tag) override { return inner_.has_tenant(id_tag); }
  Result<std::vector<std::string>> list_tenants() override { return inner_.list_tenants(); }
  Result<std::vector<StoredKey>> list_keys(std::string_view id_tag) override {
    auto keys = inner_.list_keys(id_tag);
    if (after_first_list_ && !raced_ && keys.ok() && keys->empty()) {
      StoredKey theirs{std::string(id_tag), key_id_for_day(kDay), "", "", kDay, std::nullopt};
      if (Status s = insert_theirs(theirs); !s) return s.error();
    }
    return keys;
  }
  Status add_key(const StoredKey& key) override {
    if (!after_first_list_ && !raced_) {
      if (Status s = insert_theirs(key); !s) return s;
    }
    return inner_.add_key(key);
  }
  std::string winner_pem_;

 private:
  Status insert_theirs(StoredKey theirs) {
    raced_ = true;
    const Es384PrivateKey k = Es384PrivateKey::generate();
    theirs.private_pem = k.to_pem();
    theirs.public_der = k.public_key().spki_der();
    winner_pem_ = theirs.private_pem;
    return inner_.add_key(theirs);
  }
  KeyStore& inner_;
  bool after_first_list_;
  bool raced_ = false;
};

TEST(KeyRing, EnsureTenantLosingTheFirstKeyRaceUsesTheWinnersKey) {
  SqliteStore store(":memory:");
  RacingKeyStore racing(store);
  KeyRing ring(racing);
  Status s = ring.ensure_tenant("alice.example.net", kDay);
  ASSERT_TRUE(s) << s.error().message;
  ASSERT_EQ(ring.keys("alice.example.net")->size(), 1u);
  auto stored = store.list_keys("alice.example.net");
  ASSERT_TRUE(stored.ok());
  ASSERT_EQ(stored->size(), 1u);
  EXPECT_EQ((*stored)[0].private_pem, racing.winner_pem_);
}

TEST(KeyRing, EnsureTenantRacedBeforeItsInsertStillEndsWithOneKey) {
  SqliteStore store(":memory:");
  RacingKeyStore racing(store, /*after_first_list=*/true);
  KeyRing ring(racing);
  Status s = ring.ensure_tenant("alice.example.net", kDay);
  ASSERT_TRUE(s) << s.error().message;
  auto stored = store.list_keys("alice.example.net");
  ASSERT_TRUE(stored.ok());
  ASSERT_EQ(stored->size(), 1u) << "a second first key was added";
  EXPECT_EQ((*stored)[0].private_pem, racing.winner_pem_);
  EXPECT_EQ(ring.keys("alice.example.net")->size(), 1u);
}

TEST(KeyRing, RotationKeepsOldKeysVerifiable) {
  SqliteStore store(":memory:");
  KeyRing ring(store);
  ASSERT_TRUE(ring.ensure_tenant("alice.example.net", kDay));
  PresClaims c;
  c.iss = "alice.example.net";
  c.k = ring.signing_key(c.iss)->key_id;
  c.subtype = "TYPING";
  c.sub = "@alice.example.net";
  c.iat = kDay;
  const std::string old_token = sign_pres_token(c, ring.signing_key(c.iss)->private_key);

  auto same_day = ring.rotate("alice.example.net", kDay + 10);
  ASSERT_TRUE(same_day);
  EXPECT_EQ(*same_day, "241124-2");
  auto next_day = ring.rotate("alice.example.net", kDay + 86400);
  ASSERT_TRUE(next_day);
  EXPECT_EQ(*next_day, "241125");
  EXPECT_EQ(ring.signing_key("alice.example.net")->key_id, "241125");
  ASSERT_EQ(ring.keys("alice.example.net")->size(), 3u);

  auto parsed = parse_pres_token(old_token);
  ASSERT_TRUE(parsed);
  const TenantKey* old_key = ring.find("alice.example.net", "241124");
  ASSERT_NE(old_key, nullptr);
  EXPECT_TRUE(verify_pres_signature(*parsed, old_key->public_key));
  EXPECT_EQ(ring.rotate("nobody.example.net", kDay).code(), ErrorCode::issuer_not_hosted);
}

TEST(KeyRing, KeysSurviveReload) {
  SqliteStore store(":memory:");
  std::string der;
  {
    KeyRing ring(store);
    ASSERT_TRUE(ring.ensure_tenant("alice.example.net", kDay));
    der = ring.signing_key("alice.example.net")->public_key.spki_der();
  }
  KeyRing again(store);
  ASSERT_TRUE(again.load());
  ASSERT_TRUE(again.hosts("alice.example.net"));
  EXPECT_EQ(again.signing_key("alice.example.net")->public_key.spki_der(), der);
}

TEST(KeyRing, MeJsonHasTheReferenceEnvelope) {
  SqliteStore store(":memory:");
  KeyRing ring(store);
  ASSERT_TRUE(ring.ensure_tenant("alice.example.net", kDay));
  auto me = ring.me_json("alice.example.net", kDay + 60);
  ASSERT_TRUE(me);
  auto v = boost::json::parse(*me);
  EXPECT_EQ(v.at("time").as_string(), "2024-11-24T00:01:00Z");
  const auto& data = v.at("data").as_object();
  EXPECT_EQ(data.at("idTag").as_string(), "alice.example.net");
  EXPECT_EQ(data.at("type").as_string(), "person");
  const auto& key = data.at("keys").as_array().at(0).as_object();
  EXPECT_EQ(key.at("keyId").as_string(), "241124");
  auto der = b64::decode_std(std::string(key.at("publicKey").as_string()));
  ASSERT_TRUE(der);
  EXPECT_EQ(der->size(), 120u);
  EXPECT_TRUE(Es384PublicKey::from_spki_der(*der));
  EXPECT_FALSE(ring.me_json("bob.example.net", kDay));
}

}  // namespace
}  // namespace presd
