#include "federation/remote_keys.h"

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include <deque>
#include <map>

#include "common/time_format.h"
#include "token/base64.h"

namespace presd {
namespace {
namespace json = boost::json;

const std::string kAlice = "alice.example.net";
const std::string kBob = "bob.example.net";

// A test double for the HTTPS client: records every fetch and lets the test complete it later,
// or answers inline when `auto_answer` holds a response for the id_tag.
class FakeFetcher {
 public:
  struct Call {
    std::string id_tag;
    std::function<void(KeyFetchResult)> done;
  };

  KeyFetcher fetcher() {
    return [this](const std::string& id_tag, std::function<void(KeyFetchResult)> done) {
      ++total;
      if (auto it = auto_answer.find(id_tag); it != auto_answer.end()) {
        done(it->second);
        return;
      }
      pending.push_back({id_tag, std::move(done)});
    };
  }

  // Completes the oldest pending fetch.
  std::string complete(KeyFetchResult r) {
    EXPECT_FALSE(pending.empty());
    if (pending.empty()) return {};
    Call c = std::move(pending.front());
    pending.pop_front();
    c.done(std::move(r));
    return c.id_tag;
  }

  std::deque<Call> pending;
  std::map<std::string, KeyFetchResult> auto_answer;
  int total = 0;
};

KeyFetchResult ok(std::string body) { return {200, std::move(body), std::nullopt}; }
KeyFetchResult status(int s) { return {s, "{}", std::nullopt}; }
KeyFetchResult transport(std::string why) { return {0, {}, Error(ErrorCode::unavailable, std::move(why))}; }

struct K {
  std::string id;
  const Es384PrivateKey* key;
  std::optional<std::int64_t> expires_at_s;
};

std::string me_body(const std::string& id_tag, std::vector<K> keys) {
  json::array arr;
  for (const K& k : keys) {
    json::object e{{"keyId", k.id}, {"publicKey", b64::encode_std(k.key->public_key().spki_der())}};
    if (k.expires_at_s) e["expiresAt"] = iso8601_utc(*k.expires_at_s);
    arr.push_back(std::move(e));
  }
  json::object data{{"idTag", id_tag}, {"name", "x"}, {"type", "person"}, {"keys", std::move(arr)}};
  return json::serialize(json::object{{"data", std::move(data)}, {"time", "2026-11-24T10:00:00Z"}});
}

// Collects lookup answers.
struct Answers {
  std::vector<std::optional<Result<Es384PublicKey>>> slots;

  RemoteKeys::Done slot() {
    slots.emplace_back();
    const std::size_t i = slots.size() - 1;
    return [this, i](Result<Es384PublicKey> r) {
      EXPECT_FALSE(slots[i].has_value()) << "done called twice";
      slots[i] = std::move(r);
    };
  }
  bool answered(std::size_t i) const { return slots[i].has_value(); }
  const Result<Es384PublicKey>& at(std::size_t i) const { return *slots[i]; }
  std::size_t count() const {
    std::size_t n = 0;
    for (const auto& s : slots) n += s.has_value();
    return n;
  }
};

class RemoteKeysTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    a1_ = new Es384PrivateKey(Es384PrivateKey::generate());
    a2_ = new Es384PrivateKey(Es384PrivateKey::generate());
    b1_ = new Es384PrivateKey(Es384PrivateKey::generate());
  }
  static void TearDownTestSuite() {
    delete a1_;
    delete a2_;
    delete b1_;
  }

  // The key answered is the one of `priv`.
  static bool is_key(const Result<Es384PublicKey>& r, const Es384PrivateKey& priv) {
    return r.ok() && r->spki_der() == priv.public_key().spki_der();
  }

  std::int64_t now_s() const { return clock_.now_s(); }

  static Es384PrivateKey* a1_;
  static Es384PrivateKey* a2_;
  static Es384PrivateKey* b1_;
  ManualClock clock_;
  FakeFetcher fake_;
  RemoteKeysConfig config_;
};
Es384PrivateKey* RemoteKeysTest::a1_ = nullptr;
Es384PrivateKey* RemoteKeysTest::a2_ = nullptr;
Es384PrivateKey* RemoteKeysTest::b1_ = nullptr;

TEST_F(RemoteKeysTest, FetchesOnceThenAnswersFromCache) {
  RemoteKeys keys(config_, clock_, fake_.fetcher());
  Answers ans;
  keys.lookup(kAlice, "a1", ans.slot());
  EXPECT_FALSE(ans.answered(0));
  ASSERT_EQ(fake_.pending.size(), 1u);
  EXPECT_EQ(fake_.pending[0].id_tag, kAlice);
  EXPECT_EQ(keys.fetches_in_flight(), 1u);

  fake_.complete(ok(me_body(kAlice, {{"a1", a1_}, {"a2", a2_}})));
  ASSERT_TRUE(ans.answered(0));
  EXPECT_TRUE(is_key(ans.at(0), *a1_));
  EXPECT_TRUE(ans.at(0)->verify("m", a1_->sign("m")));
  EXPECT_EQ(keys.fetches_in_flight(), 0u);

  keys.lookup(kAlice, "a2", ans.slot());  // answered synchronously from the cache
  ASSERT_TRUE(ans.answered(1));
  EXPECT_TRUE(is_key(ans.at(1), *a2_));
  keys.lookup(kAlice, "a1", ans.slot());
  EXPECT_TRUE(is_key(ans.at(2), *a1_));
  EXPECT_EQ(keys.fetches_started(), 1u);
  EXPECT_EQ(keys.size(), 1u);
  EXPECT_EQ(me_document_host(kAlice), "cl-o.alice.example.net");
}

TEST_F(RemoteKeysTest, SingleFlight) {
  RemoteKeys keys(config_, clock_, fake_.fetcher());
  Answers ans;
  for (int i = 0; i < 100; ++i) keys.lookup(kAlice, i % 10 == 9 ? "nope" : "a1", ans.slot());
  EXPECT_EQ(keys.fetches_started(), 1u);
  EXPECT_EQ(fake_.pending.size(), 1u);
  EXPECT_EQ(ans.count(), 0u);

  fake_.complete(ok(me_body(kAlice, {{"a1", a1_}})));
  ASSERT_EQ(ans.count(), 100u);
  for (int i = 0; i < 100; ++i) {
    if (i % 10 == 9) {
      ASSERT_FALSE(ans.at(i));
      EXPECT_EQ(ans.at(i).code(), ErrorCode::token_unknown_key);
      EXPECT_NE(ans.at(i).error().message.find("nope"), std::string::npos);
    } else {
      EXPECT_TRUE(is_key(ans.at(i), *a1_)) << i;
    }
  }
  EXPECT_EQ(keys.fetches_started(), 1u);
}

TEST_F(RemoteKeysTest, SingleFlightIsPerIssuer) {
  RemoteKeys keys(config_, clock_, fake_.fetcher());
  Answers ans;
  keys.lookup(kAlice, "a1", ans.slot());
  keys.lookup(kBob, "b1", ans.slot());
  keys.lookup(kAlice, "a1", ans.slot());
  EXPECT_EQ(keys.fetches_started(), 2u);
  EXPECT_EQ(fake_.complete(ok(me_body(kAlice, {{"a1", a1_}}))), kAlice);
  EXPECT_TRUE(ans.answered(0));
  EXPECT_FALSE(ans.answered(1));
  EXPECT_TRUE(ans.answered(2));
  fake_.complete(ok(me_body(kBob, {{"b1", b1_}})));
  EXPECT_TRUE(is_key(ans.at(1), *b1_));
}

TEST_F(RemoteKeysTest, InlineFetcherAndReentrantCallbacks) {
  fake_.auto_answer[kAlice] = ok(me_body(kAlice, {{"a1", a1_}}));
  RemoteKeys keys(config_, clock_, fake_.fetcher());
  int answers = 0;
  keys.lookup(kAlice, "a1", [&](Result<Es384PublicKey> r) {
    EXPECT_TRUE(is_key(r, *a1_));
    ++answers;
    // A callback may look up again (here: from the cache, inline).
    keys.lookup(kAlice, "a1", [&](Result<Es384PublicKey> r2) {
      EXPECT_TRUE(r2.ok());
      ++answers;
    });
  });
  EXPECT_EQ(answers, 2);
  EXPECT_EQ(keys.fetches_started(), 1u);
  EXPECT_EQ(keys.fetches_in_flight(), 0u);
}

TEST_F(RemoteKeysTest, NegativeCacheForBadAnswers) {
  config_.negative_ttl_s = 300;
  RemoteKeys keys(config_, clock_, fake_.fetcher());
  Answers ans;
  keys.lookup(kAlice, "a1", ans.slot());
  fake_.complete(status(404));
  ASSERT_TRUE(ans.answered(0));
  EXPECT_EQ(ans.at(0).code(), ErrorCode::token_unknown_key);
  EXPECT_NE(ans.at(0).error().message.find("HTTP 404"), std::string::npos);
  EXPECT_NE(ans.at(0).error().message.find("https://cl-o.alice.example.net/api/me"), std::string::npos);

  clock_.advance_ms(299'000);
  keys.lookup(kAlice, "a1", ans.slot());  // answered at once from the negative cache
  ASSERT_TRUE(ans.answered(1));
  EXPECT_EQ(ans.at(1).code(), ErrorCode::token_unknown_key);
  EXPECT_NE(ans.at(1).error().message.find("cached"), std::string::npos);
  EXPECT_EQ(keys.fetches_started(), 1u);
  EXPECT_FALSE(keys.invalidate_after_failed_verify(kAlice));  // nothing cached to refetch

  clock_.advance_ms(1'000);
  keys.lookup(kAlice, "a1", ans.slot());
  EXPECT_EQ(keys.fetches_started(), 2u);
  fake_.complete(ok(me_body(kAlice, {{"a1", a1_}})));
  EXPECT_TRUE(is_key(ans.at(2), *a1_));
}

TEST_F(RemoteKeysTest, BadDocumentIsNegativeCached) {
  RemoteKeys keys(config_, clock_, fake_.fetcher());
  Answers ans;
  keys.lookup(kAlice, "a1", ans.slot());
  fake_.complete(ok(me_body("mallory.example.net", {{"a1", a1_}})));
  EXPECT_EQ(ans.at(0).code(), ErrorCode::token_unknown_key);
  EXPECT_NE(ans.at(0).error().message.find("idTag"), std::string::npos);
  keys.lookup(kAlice, "a1", ans.slot());
  EXPECT_EQ(ans.at(1).code(), ErrorCode::token_unknown_key);
  EXPECT_EQ(keys.fetches_started(), 1u);
  clock_.advance_ms(config_.negative_ttl_s * 1000);
  keys.lookup(kAlice, "a1", ans.slot());
  EXPECT_EQ(keys.fetches_started(), 2u);
}

TEST_F(RemoteKeysTest, TransportErrorsAndOverloadAreUnavailableForAShorterTime) {
  config_.unavailable_ttl_s = 30;
  RemoteKeys keys(config_, clock_, fake_.fetcher());
  Answers ans;
  keys.lookup(kAlice, "a1", ans.slot());
  fake_.complete(transport("connect timed out"));
  EXPECT_EQ(ans.at(0).code(), ErrorCode::unavailable);
  EXPECT_NE(ans.at(0).error().message.find("connect timed out"), std::string::npos);

  clock_.advance_ms(29'000);
  keys.lookup(kAlice, "a1", ans.slot());
  EXPECT_EQ(ans.at(1).code(), ErrorCode::unavailable);
  EXPECT_EQ(keys.fetches_started(), 1u);

  clock_.advance_ms(1'000);
  keys.lookup(kAlice, "a1", ans.slot());
  EXPECT_EQ(keys.fetches_started(), 2u);
  fake_.complete(status(503));
  EXPECT_EQ(ans.at(2).code(), ErrorCode::unavailable);
  EXPECT_NE(ans.at(2).error().message.find("HTTP 503"), std::string::npos);

  clock_.advance_ms(30'000);
  keys.lookup(kAlice, "a1", ans.slot());
  fake_.complete(status(429));
  EXPECT_EQ(ans.at(3).code(), ErrorCode::unavailable);
  EXPECT_EQ(keys.fetches_started(), 3u);
}

TEST_F(RemoteKeysTest, DocumentExpiresAfterDefaultTtl) {
  config_.default_ttl_s = 3600;
  RemoteKeys keys(config_, clock_, fake_.fetcher());
  Answers ans;
  keys.lookup(kAlice, "a1", ans.slot());
  fake_.complete(ok(me_body(kAlice, {{"a1", a1_}})));
  clock_.advance_ms(3599'000);
  keys.lookup(kAlice, "a1", ans.slot());
  EXPECT_TRUE(ans.answered(1));
  EXPECT_EQ(keys.fetches_started(), 1u);

  clock_.advance_ms(1'000);
  keys.lookup(kAlice, "a1", ans.slot());
  EXPECT_FALSE(ans.answered(2));
  EXPECT_EQ(keys.fetches_started(), 2u);
  // The issuer rotated in the meantime: a1 is gone.
  fake_.complete(ok(me_body(kAlice, {{"a2", a2_}})));
  EXPECT_EQ(ans.at(2).code(), ErrorCode::token_unknown_key);
}

TEST_F(RemoteKeysTest, MaxTtlCapsTheDefault) {
  config_.default_ttl_s = 100000;
  config_.max_ttl_s = 600;
  RemoteKeys keys(config_, clock_, fake_.fetcher());
  Answers ans;
  keys.lookup(kAlice, "a1", ans.slot());
  fake_.complete(ok(me_body(kAlice, {{"a1", a1_}})));
  clock_.advance_ms(600'000);
  keys.lookup(kAlice, "a1", ans.slot());
  EXPECT_EQ(keys.fetches_started(), 2u);
}

TEST_F(RemoteKeysTest, KeyLivesUntilItsExpiresAt) {
  RemoteKeys keys(config_, clock_, fake_.fetcher());
  Answers ans;
  keys.lookup(kAlice, "a1", ans.slot());
  fake_.complete(ok(me_body(kAlice, {{"a1", a1_, now_s() + 120}, {"a2", a2_}})));
  EXPECT_TRUE(is_key(ans.at(0), *a1_));

  clock_.advance_ms(119'000);
  keys.lookup(kAlice, "a1", ans.slot());
  EXPECT_TRUE(is_key(ans.at(1), *a1_));

  clock_.advance_ms(1'000);  // a1 expired; a2 still cached
  keys.lookup(kAlice, "a2", ans.slot());
  EXPECT_TRUE(is_key(ans.at(2), *a2_));
  EXPECT_EQ(keys.fetches_started(), 1u);
  keys.lookup(kAlice, "a1", ans.slot());  // expired: refetch (the issuer may have extended it)
  EXPECT_EQ(keys.fetches_started(), 2u);
  fake_.complete(ok(me_body(kAlice, {{"a1", a1_, now_s() - 1}, {"a2", a2_}})));
  EXPECT_EQ(ans.at(3).code(), ErrorCode::token_unknown_key);
}

TEST_F(RemoteKeysTest, UnknownKeyIdRefetchesAtMostEveryMinInterval) {
  config_.refetch_min_interval_s = 60;
  RemoteKeys keys(config_, clock_, fake_.fetcher());
  Answers ans;
  keys.lookup(kAlice, "a1", ans.slot());
  fake_.complete(ok(me_body(kAlice, {{"a1", a1_}})));

  clock_.advance_ms(10'000);
  keys.lookup(kAlice, "a2", ans.slot());  // fetched 10 s ago: no refetch
  ASSERT_TRUE(ans.answered(1));
  EXPECT_EQ(ans.at(1).code(), ErrorCode::token_unknown_key);
  EXPECT_NE(ans.at(1).error().message.find("a2"), std::string::npos);
  EXPECT_EQ(keys.fetches_started(), 1u);

  clock_.advance_ms(50'000);
  keys.lookup(kAlice, "a2", ans.slot());  // 60 s: the issuer may have rotated
  EXPECT_FALSE(ans.answered(2));
  EXPECT_EQ(keys.fetches_started(), 2u);
  // Meanwhile, known keys are still answered from the cache at once.
  keys.lookup(kAlice, "a1", ans.slot());
  EXPECT_TRUE(is_key(ans.at(3), *a1_));
  // And unknown ones wait for the fetch under way instead of starting another.
  keys.lookup(kAlice, "zzz", ans.slot());
  EXPECT_FALSE(ans.answered(4));
  fake_.complete(ok(me_body(kAlice, {{"a1", a1_}, {"a2", a2_}})));
  EXPECT_TRUE(is_key(ans.at(2), *a2_));
  EXPECT_EQ(ans.at(4).code(), ErrorCode::token_unknown_key);

  keys.lookup(kAlice, "zzz", ans.slot());
  EXPECT_EQ(ans.at(5).code(), ErrorCode::token_unknown_key);
  EXPECT_EQ(keys.fetches_started(), 2u);
}

TEST_F(RemoteKeysTest, FailedRefetchKeepsTheFreshDocument) {
  RemoteKeys keys(config_, clock_, fake_.fetcher());
  Answers ans;
  keys.lookup(kAlice, "a1", ans.slot());
  fake_.complete(ok(me_body(kAlice, {{"a1", a1_}})));
  clock_.advance_ms(61'000);
  keys.lookup(kAlice, "a2", ans.slot());
  fake_.complete(transport("connection refused"));
  EXPECT_EQ(ans.at(1).code(), ErrorCode::unavailable);
  keys.lookup(kAlice, "a1", ans.slot());
  EXPECT_TRUE(is_key(ans.at(2), *a1_));
  keys.lookup(kAlice, "a2", ans.slot());  // rate limited: the refetch just failed
  EXPECT_EQ(ans.at(3).code(), ErrorCode::token_unknown_key);
  EXPECT_EQ(keys.fetches_started(), 2u);
}

TEST_F(RemoteKeysTest, RefetchAfterFailedVerifyIsRateLimited) {
  config_.refetch_min_interval_s = 60;
  RemoteKeys keys(config_, clock_, fake_.fetcher());
  Answers ans;
  keys.lookup(kAlice, "k", ans.slot());
  fake_.complete(ok(me_body(kAlice, {{"k", a1_}})));
  EXPECT_TRUE(is_key(ans.at(0), *a1_));
  EXPECT_FALSE(keys.invalidate_after_failed_verify(kBob));  // nothing cached

  // Within the interval after the fetch: no refetch; the cached key keeps being answered.
  clock_.advance_ms(30'000);
  EXPECT_FALSE(keys.invalidate_after_failed_verify(kAlice));
  keys.lookup(kAlice, "k", ans.slot());
  EXPECT_TRUE(is_key(ans.at(1), *a1_));

  // The issuer replaced the key material behind the same key id.
  clock_.advance_ms(30'000);
  EXPECT_TRUE(keys.invalidate_after_failed_verify(kAlice));
  EXPECT_TRUE(keys.invalidate_after_failed_verify(kAlice));  // still pending: true again
  EXPECT_EQ(keys.fetches_started(), 1u);                      // fetched on the next lookup
  keys.lookup(kAlice, "k", ans.slot());
  EXPECT_FALSE(ans.answered(2));
  EXPECT_EQ(keys.fetches_started(), 2u);
  // While that refetch is in flight, lookups wait for it rather than using the suspect key.
  keys.lookup(kAlice, "k", ans.slot());
  EXPECT_FALSE(ans.answered(3));
  EXPECT_TRUE(keys.invalidate_after_failed_verify(kAlice));
  fake_.complete(ok(me_body(kAlice, {{"k", a2_}})));
  EXPECT_TRUE(is_key(ans.at(2), *a2_));
  EXPECT_TRUE(is_key(ans.at(3), *a2_));

  // Right after a refetch, another failed verify does not cause one more.
  EXPECT_FALSE(keys.invalidate_after_failed_verify(kAlice));
  keys.lookup(kAlice, "k", ans.slot());
  EXPECT_TRUE(is_key(ans.at(4), *a2_));
  clock_.advance_ms(60'000);
  EXPECT_TRUE(keys.invalidate_after_failed_verify(kAlice));
  keys.lookup(kAlice, "k", ans.slot());
  EXPECT_EQ(keys.fetches_started(), 3u);
  fake_.complete(ok(me_body(kAlice, {{"k", a2_}})));
  EXPECT_TRUE(is_key(ans.at(5), *a2_));
}

TEST_F(RemoteKeysTest, EvictsLeastRecentlyUsedIssuerBeyondMax) {
  config_.max_issuers = 2;
  const std::string carol = "carol.example.net";
  for (const std::string& tag : {kAlice, kBob, carol}) fake_.auto_answer[tag] = ok(me_body(tag, {{"k", a1_}}));
  RemoteKeys keys(config_, clock_, fake_.fetcher());
  Answers ans;
  keys.lookup(kAlice, "k", ans.slot());
  keys.lookup(kBob, "k", ans.slot());
  EXPECT_EQ(keys.size(), 2u);
  keys.lookup(kAlice, "k", ans.slot());  // alice is now more recently used than bob
  EXPECT_EQ(keys.fetches_started(), 2u);
  keys.lookup(carol, "k", ans.slot());  // evicts bob
  EXPECT_EQ(keys.size(), 2u);
  EXPECT_EQ(keys.fetches_started(), 3u);
  keys.lookup(kAlice, "k", ans.slot());
  EXPECT_EQ(keys.fetches_started(), 3u);  // still cached
  keys.lookup(kBob, "k", ans.slot());     // evicted: fetched again (evicts carol)
  EXPECT_EQ(keys.fetches_started(), 4u);
  EXPECT_EQ(keys.size(), 2u);
  EXPECT_EQ(ans.count(), 6u);
  for (std::size_t i = 0; i < 6; ++i) EXPECT_TRUE(ans.at(i).ok()) << i;
}

TEST_F(RemoteKeysTest, InFlightEntriesAreNotEvicted) {
  config_.max_issuers = 1;
  RemoteKeys keys(config_, clock_, fake_.fetcher());
  Answers ans;
  keys.lookup(kAlice, "k", ans.slot());
  keys.lookup(kBob, "k", ans.slot());  // the only entry is fetching: refused
  ASSERT_TRUE(ans.answered(1));
  EXPECT_EQ(ans.at(1).code(), ErrorCode::unavailable);
  fake_.complete(ok(me_body(kAlice, {{"k", a1_}})));
  EXPECT_TRUE(ans.at(0).ok());
  keys.lookup(kBob, "k", ans.slot());  // now alice can go
  EXPECT_EQ(keys.fetches_started(), 2u);
  fake_.complete(ok(me_body(kBob, {{"k", b1_}})));
  EXPECT_TRUE(is_key(ans.at(2), *b1_));
  EXPECT_EQ(keys.size(), 1u);
}

TEST_F(RemoteKeysTest, WaitersPerIssuerAreBounded) {
  config_.max_waiters_per_issuer = 3;
  RemoteKeys keys(config_, clock_, fake_.fetcher());
  Answers ans;
  for (int i = 0; i < 5; ++i) keys.lookup(kAlice, "k", ans.slot());
  EXPECT_EQ(ans.count(), 2u);
  EXPECT_EQ(ans.at(3).code(), ErrorCode::unavailable);
  EXPECT_EQ(ans.at(4).code(), ErrorCode::unavailable);
  fake_.complete(ok(me_body(kAlice, {{"k", a1_}})));
  EXPECT_EQ(ans.count(), 5u);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(ans.at(i).ok());
}

TEST_F(RemoteKeysTest, ConcurrentFetchesAreBounded) {
  config_.max_concurrent_fetches = 2;
  RemoteKeys keys(config_, clock_, fake_.fetcher());
  Answers ans;
  keys.lookup("a.example.net", "k", ans.slot());
  keys.lookup("b.example.net", "k", ans.slot());
  keys.lookup("c.example.net", "k", ans.slot());
  EXPECT_EQ(keys.fetches_started(), 2u);
  ASSERT_TRUE(ans.answered(2));
  EXPECT_EQ(ans.at(2).code(), ErrorCode::unavailable);
  fake_.complete(status(404));
  keys.lookup("c.example.net", "k", ans.slot());
  EXPECT_EQ(keys.fetches_started(), 3u);
}

TEST_F(RemoteKeysTest, NonCanonicalIssuerIsNeverFetched) {
  RemoteKeys keys(config_, clock_, fake_.fetcher());
  Answers ans;
  for (const char* tag : {"", "localhost", "Alice.Example.Net", "127.0.0.1", "a/b.example.net", "x.example.net:80"}) {
    keys.lookup(tag, "k", ans.slot());
  }
  EXPECT_EQ(ans.count(), 6u);
  for (std::size_t i = 0; i < 6; ++i) EXPECT_EQ(ans.at(i).code(), ErrorCode::token_unknown_key) << i;
  EXPECT_EQ(keys.fetches_started(), 0u);
  EXPECT_EQ(keys.size(), 0u);
}

TEST_F(RemoteKeysTest, ExtraAndLateCompletionsAreIgnored) {
  std::function<void(KeyFetchResult)> saved;
  Answers ans;
  {
    RemoteKeys keys(config_, clock_, [&](const std::string&, std::function<void(KeyFetchResult)> done) {
      saved = done;
      done(ok(me_body(kAlice, {{"k", a1_}})));
    });
    keys.lookup(kAlice, "k", ans.slot());
    EXPECT_TRUE(ans.at(0).ok());
    saved(status(500));  // a second call to done: ignored
    keys.lookup(kAlice, "k", ans.slot());
    EXPECT_TRUE(ans.at(1).ok());
    EXPECT_EQ(keys.fetches_in_flight(), 0u);
  }
  {
    RemoteKeys keys(config_, clock_, fake_.fetcher());
    keys.lookup(kAlice, "k", ans.slot());
  }
  // RemoteKeys is gone: completing its fetch must neither crash nor call the dropped lookup.
  fake_.complete(ok(me_body(kAlice, {{"k", a1_}})));
  EXPECT_FALSE(ans.answered(2));
}

}  // namespace
}  // namespace presd
