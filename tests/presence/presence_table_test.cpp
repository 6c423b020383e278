#include "presence/presence_table.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <set>
#include <string>

namespace presd {
namespace {

constexpr std::int64_t T0 = 1'700'000'000'000;

PresenceState make(std::string context, std::string issuer, std::string subtype, std::int64_t iat_s,
                   std::int64_t expires_at_ms, std::optional<std::string> audience = std::nullopt) {
  PresenceState s;
  s.context = std::move(context);
  s.issuer = std::move(issuer);
  s.subtype = std::move(subtype);
  s.audience = std::move(audience);
  s.iat_s = iat_s;
  s.expires_at_ms = expires_at_ms;
  s.frame = std::make_shared<const std::string>(s.subtype);
  return s;
}

std::set<std::string> subtypes(const std::vector<const PresenceState*>& v) {
  std::set<std::string> out;
  for (const PresenceState* p : v) out.insert(p->issuer + ":" + p->subtype);
  return out;
}

TEST(PresenceSlot, StatusSubtypesShareOneSlot) {
  EXPECT_EQ(presence_slot("ONLINE"), "status");
  EXPECT_EQ(presence_slot("AWAY"), "status");
  EXPECT_EQ(presence_slot("OFFLINE"), "status");
  EXPECT_EQ(presence_slot("TYPING"), "TYPING");
  EXPECT_EQ(presence_slot("com.example.mood"), "com.example.mood");
  EXPECT_EQ(presence_slot("online"), "online");
}

TEST(PresenceTable, UpsertAndReplaceInSlot) {
  PresenceTable t;
  EXPECT_TRUE(t.upsert(make("c", "alice", "ONLINE", 100, T0 + 30'000), T0));
  EXPECT_EQ(t.size(), 1u);
  EXPECT_TRUE(t.upsert(make("c", "alice", "AWAY", 101, T0 + 31'000), T0 + 1000));
  EXPECT_EQ(t.size(), 1u);
  auto snap = t.snapshot("c", "bob", T0 + 1000);
  ASSERT_EQ(snap.size(), 1u);
  EXPECT_EQ(snap[0]->subtype, "AWAY");
  EXPECT_EQ(snap[0]->iat_s, 101);
  EXPECT_EQ(*snap[0]->frame, "AWAY");
  EXPECT_TRUE(t.upsert(make("c", "alice", "OFFLINE", 102, T0 + 32'000), T0 + 2000));
  EXPECT_EQ(t.size(), 1u);
  EXPECT_EQ(t.snapshot("c", "bob", T0 + 2000)[0]->subtype, "OFFLINE");
}

TEST(PresenceTable, LiveListsEveryUnexpiredStateOfEveryContext) {
  PresenceTable t;
  EXPECT_TRUE(t.upsert(make("c1", "alice", "ONLINE", 100, T0 + 30'000), T0));
  EXPECT_TRUE(t.upsert(make("c2", "bob", "TYPING", 100, T0 + 5'000), T0));
  EXPECT_TRUE(t.upsert(make("c2", "carol", "TYPING", 100, T0 + 10'000, "bob"), T0));
  EXPECT_EQ(subtypes(t.live(T0)), (std::set<std::string>{"alice:ONLINE", "bob:TYPING", "carol:TYPING"}));
  // Past its expiry but not yet expire()d: not live.
  EXPECT_EQ(subtypes(t.live(T0 + 5'000)), (std::set<std::string>{"alice:ONLINE", "carol:TYPING"}));
  EXPECT_TRUE(t.live(T0 + 30'000).empty());
}

TEST(PresenceTable, TypingAndCustomSubtypesHaveOwnSlots) {
  PresenceTable t;
  EXPECT_TRUE(t.upsert(make("c", "alice", "ONLINE", 100, T0 + 30'000), T0));
  EXPECT_TRUE(t.upsert(make("c", "alice", "TYPING", 100, T0 + 5'000), T0));
  EXPECT_TRUE(t.upsert(make("c", "alice", "x.mood", 100, T0 + 30'000), T0));
  EXPECT_TRUE(t.upsert(make("c", "bob", "ONLINE", 100, T0 + 30'000), T0));
  EXPECT_EQ(t.size(), 4u);
  EXPECT_EQ(subtypes(t.snapshot("c", "carol", T0)),
            (std::set<std::string>{"alice:ONLINE", "alice:TYPING", "alice:x.mood", "bob:ONLINE"}));
  // Replacing the status leaves TYPING alone.
  EXPECT_TRUE(t.upsert(make("c", "alice", "AWAY", 101, T0 + 31'000), T0 + 1000));
  EXPECT_EQ(t.size(), 4u);
  EXPECT_EQ(subtypes(t.snapshot("c", "carol", T0 + 1000)),
            (std::set<std::string>{"alice:AWAY", "alice:TYPING", "alice:x.mood", "bob:ONLINE"}));
}

TEST(PresenceTable, OlderIatRefusedEqualReplaces) {
  PresenceTable t;
  ASSERT_TRUE(t.upsert(make("c", "alice", "ONLINE", 100, T0 + 30'000), T0));
  EXPECT_FALSE(t.upsert(make("c", "alice", "AWAY", 99, T0 + 40'000), T0 + 1));
  EXPECT_EQ(t.snapshot("c", "x", T0 + 1)[0]->subtype, "ONLINE");
  EXPECT_EQ(t.snapshot("c", "x", T0 + 1)[0]->expires_at_ms, T0 + 30'000);
  EXPECT_TRUE(t.upsert(make("c", "alice", "AWAY", 100, T0 + 30'500), T0 + 2));
  EXPECT_EQ(t.snapshot("c", "x", T0 + 2)[0]->subtype, "AWAY");
  EXPECT_EQ(t.size(), 1u);
  // The refused state left no timer behind: nothing expires at its time.
  EXPECT_TRUE(t.expire(T0 + 30'499).empty());
  auto gone = t.expire(T0 + 30'500);
  ASSERT_EQ(gone.size(), 1u);
  EXPECT_EQ(gone[0].subtype, "AWAY");
  EXPECT_TRUE(t.expire(T0 + 100'000).empty());
}

TEST(PresenceTable, ExpiredStateRefused) {
  PresenceTable t;
  EXPECT_FALSE(t.upsert(make("c", "alice", "ONLINE", 100, T0), T0));
  EXPECT_FALSE(t.upsert(make("c", "alice", "ONLINE", 100, T0 - 1), T0));
  EXPECT_EQ(t.size(), 0u);
  ASSERT_TRUE(t.upsert(make("c", "alice", "ONLINE", 100, T0 + 1000), T0));
  // A refused (expired) newer state leaves the stored one as it was.
  EXPECT_FALSE(t.upsert(make("c", "alice", "AWAY", 200, T0 + 500), T0 + 500));
  EXPECT_EQ(t.snapshot("c", "x", T0 + 500)[0]->subtype, "ONLINE");
}

TEST(PresenceTable, ExpiresExactlyAtExpiresAt) {
  PresenceTable t(100, 32'000);
  ASSERT_TRUE(t.upsert(make("c", "alice", "ONLINE", 100, T0 + 1234), T0));
  EXPECT_TRUE(t.expire(T0 + 1000).empty());
  EXPECT_TRUE(t.expire(T0 + 1200).empty());  // same tick, not yet due
  EXPECT_TRUE(t.expire(T0 + 1233).empty());
  EXPECT_EQ(t.snapshot("c", "x", T0 + 1233).size(), 1u);
  EXPECT_TRUE(t.snapshot("c", "x", T0 + 1234).empty());  // not live at expires_at
  auto gone = t.expire(T0 + 1234);
  ASSERT_EQ(gone.size(), 1u);
  EXPECT_EQ(gone[0].issuer, "alice");
  EXPECT_EQ(gone[0].expires_at_ms, T0 + 1234);
  ASSERT_TRUE(gone[0].frame);
  EXPECT_EQ(t.size(), 0u);
  EXPECT_TRUE(t.expire(T0 + 1234).empty());
}

TEST(PresenceTable, ExpireReturnsOldestFirst) {
  PresenceTable t(100, 10'000);
  ASSERT_TRUE(t.upsert(make("c", "a", "ONLINE", 1, T0 + 900), T0));
  ASSERT_TRUE(t.upsert(make("c", "b", "ONLINE", 1, T0 + 150), T0));
  ASSERT_TRUE(t.upsert(make("c", "c", "ONLINE", 1, T0 + 520), T0));
  ASSERT_TRUE(t.upsert(make("c", "d", "ONLINE", 1, T0 + 510), T0));
  auto gone = t.expire(T0 + 1000);
  ASSERT_EQ(gone.size(), 4u);
  EXPECT_EQ(gone[0].issuer, "b");
  EXPECT_EQ(gone[1].issuer, "d");
  EXPECT_EQ(gone[2].issuer, "c");
  EXPECT_EQ(gone[3].issuer, "a");
}

TEST(PresenceTable, ReplacedStateDoesNotExpireAtOldTime) {
  PresenceTable t(100, 32'000);
  ASSERT_TRUE(t.upsert(make("c", "alice", "ONLINE", 100, T0 + 1000), T0));
  ASSERT_TRUE(t.upsert(make("c", "alice", "AWAY", 101, T0 + 5000), T0 + 500));
  for (std::int64_t now = T0; now < T0 + 5000; now += 50) {
    ASSERT_TRUE(t.expire(now).empty()) << now - T0;
    ASSERT_EQ(t.size(), 1u);
  }
  auto gone = t.expire(T0 + 5000);
  ASSERT_EQ(gone.size(), 1u);
  EXPECT_EQ(gone[0].subtype, "AWAY");
}

TEST(PresenceTable, ReplacementWithEarlierExpiryAndSlotReuse) {
  PresenceTable t(100, 32'000);
  // A newer token with a shorter lifetime replaces a longer one: it expires at its own time.
  ASSERT_TRUE(t.upsert(make("c", "alice", "ONLINE", 100, T0 + 5000), T0));
  ASSERT_TRUE(t.upsert(make("c", "alice", "ONLINE", 101, T0 + 1000), T0 + 10));
  auto gone = t.expire(T0 + 1000);
  ASSERT_EQ(gone.size(), 1u);
  EXPECT_EQ(gone[0].iat_s, 101);
  // A new key now reuses the freed storage; the stale entry at +5000 must not touch it.
  ASSERT_TRUE(t.upsert(make("c", "bob", "ONLINE", 200, T0 + 10'000), T0 + 1000));
  EXPECT_TRUE(t.expire(T0 + 5000).empty());
  EXPECT_EQ(t.size(), 1u);
  gone = t.expire(T0 + 10'000);
  ASSERT_EQ(gone.size(), 1u);
  EXPECT_EQ(gone[0].issuer, "bob");
}

TEST(PresenceTable, LargeJumpInTime) {
  PresenceTable t(100, 2'000);  // 21 buckets
  for (int i = 0; i < 50; ++i)
    ASSERT_TRUE(t.upsert(make("c", "u" + std::to_string(i), "ONLINE", 1, T0 + 100 + i * 137), T0));
  ASSERT_TRUE(t.upsert(make("c", "late", "ONLINE", 1, T0 + 10'000'000), T0));
  // Far past every expiry but one, in one call: everything due comes out, in order.
  auto gone = t.expire(T0 + 1'000'000);
  ASSERT_EQ(gone.size(), 50u);
  for (std::size_t i = 1; i < gone.size(); ++i) EXPECT_LE(gone[i - 1].expires_at_ms, gone[i].expires_at_ms);
  EXPECT_EQ(t.size(), 1u);
  // The wheel keeps working after the jump.
  ASSERT_TRUE(t.upsert(make("c", "again", "ONLINE", 1, T0 + 1'000'150), T0 + 1'000'000));
  EXPECT_TRUE(t.expire(T0 + 1'000'149).empty());
  ASSERT_EQ(t.expire(T0 + 1'000'150).size(), 1u);
  EXPECT_TRUE(t.expire(T0 + 9'999'999).empty());
  gone = t.expire(T0 + 10'000'000);
  ASSERT_EQ(gone.size(), 1u);
  EXPECT_EQ(gone[0].issuer, "late");
  EXPECT_EQ(t.size(), 0u);
}

TEST(PresenceTable, FirstExpireFarFromEpoch) {
  PresenceTable t(100, 1000);
  EXPECT_TRUE(t.expire(T0).empty());
  ASSERT_TRUE(t.upsert(make("c", "a", "ONLINE", 1, T0 + 500), T0));
  EXPECT_EQ(t.expire(T0 + 500).size(), 1u);
}

TEST(PresenceTable, ExpiryBeyondHorizon) {
  PresenceTable t(100, 1'000);  // 11 buckets = 1.1 s per round
  ASSERT_TRUE(t.upsert(make("c", "a", "ONLINE", 1, T0 + 5'432), T0));
  ASSERT_TRUE(t.upsert(make("c", "b", "ONLINE", 1, T0 + 300), T0));
  // Step every tick through several rounds: the long-lived state survives each visit.
  std::vector<std::string> order;
  for (std::int64_t now = T0; now <= T0 + 6'000; now += 100) {
    for (auto& s : t.expire(now)) {
      order.push_back(s.issuer);
      if (s.issuer == "a") {
        EXPECT_EQ(now, T0 + 5'500);  // first call at/after 5432
      }
      if (s.issuer == "b") {
        EXPECT_EQ(now, T0 + 300);
      }
    }
  }
  EXPECT_EQ(order, (std::vector<std::string>{"b", "a"}));
  EXPECT_EQ(t.size(), 0u);
}

TEST(PresenceTable, SnapshotVisibilityForAudience) {
  PresenceTable t;
  ASSERT_TRUE(t.upsert(make("c", "alice", "ONLINE", 1, T0 + 30'000), T0));
  ASSERT_TRUE(t.upsert(make("c", "alice", "TYPING", 1, T0 + 5'000, "bob"), T0));
  ASSERT_TRUE(t.upsert(make("c", "carol", "x.wave", 1, T0 + 5'000, "dave"), T0));
  EXPECT_EQ(subtypes(t.snapshot("c", "bob", T0)), (std::set<std::string>{"alice:ONLINE", "alice:TYPING"}));
  EXPECT_EQ(subtypes(t.snapshot("c", "dave", T0)), (std::set<std::string>{"alice:ONLINE", "carol:x.wave"}));
  EXPECT_EQ(subtypes(t.snapshot("c", "eve", T0)), (std::set<std::string>{"alice:ONLINE"}));
  // The issuer sees the states they targeted at someone.
  EXPECT_EQ(subtypes(t.snapshot("c", "alice", T0)), (std::set<std::string>{"alice:ONLINE", "alice:TYPING"}));
  EXPECT_EQ(subtypes(t.snapshot("c", "carol", T0)), (std::set<std::string>{"alice:ONLINE", "carol:x.wave"}));
  // Only live states, even before expire() ran.
  EXPECT_EQ(subtypes(t.snapshot("c", "bob", T0 + 5'000)), (std::set<std::string>{"alice:ONLINE"}));
}

TEST(PresenceTable, AudienceStatesDoNotReplaceBroadcastOnes) {
  PresenceTable t;
  ASSERT_TRUE(t.upsert(make("c", "alice", "TYPING", 1, T0 + 30'000), T0));
  ASSERT_TRUE(t.upsert(make("c", "alice", "TYPING", 2, T0 + 31'000, "bob"), T0 + 1'000));
  ASSERT_TRUE(t.upsert(make("c", "alice", "TYPING", 2, T0 + 31'000, "dave"), T0 + 1'000));
  EXPECT_EQ(t.size(), 3u);
  EXPECT_EQ(t.snapshot("c", "carol", T0 + 1'000).size(), 1u);  // the broadcast one
  EXPECT_EQ(t.snapshot("c", "bob", T0 + 1'000).size(), 2u);
  // Each expires on its own, so each one's recipients get their expiry.
  auto first = t.expire(T0 + 30'000);
  ASSERT_EQ(first.size(), 1u);
  EXPECT_FALSE(first[0].audience.has_value());
  EXPECT_EQ(t.expire(T0 + 31'000).size(), 2u);
  EXPECT_EQ(t.size(), 0u);
}

TEST(PresenceTable, ContextsAreIsolated) {
  PresenceTable t;
  ASSERT_TRUE(t.upsert(make("c1", "alice", "ONLINE", 1, T0 + 30'000), T0));
  ASSERT_TRUE(t.upsert(make("c2", "alice", "AWAY", 1, T0 + 20'000), T0));
  ASSERT_TRUE(t.upsert(make("c2", "bob", "ONLINE", 1, T0 + 20'000), T0));
  EXPECT_EQ(t.size(), 3u);  // same issuer and slot in two contexts: two states
  EXPECT_EQ(subtypes(t.snapshot("c1", "x", T0)), (std::set<std::string>{"alice:ONLINE"}));
  EXPECT_EQ(subtypes(t.snapshot("c2", "x", T0)), (std::set<std::string>{"alice:AWAY", "bob:ONLINE"}));
  EXPECT_TRUE(t.snapshot("c3", "x", T0).empty());
  auto gone = t.expire(T0 + 20'000);
  EXPECT_EQ(gone.size(), 2u);
  EXPECT_TRUE(t.snapshot("c2", "x", T0 + 20'000).empty());
  EXPECT_EQ(t.snapshot("c1", "x", T0 + 20'000).size(), 1u);
  // A context emptied by expiry can be filled again.
  ASSERT_TRUE(t.upsert(make("c2", "bob", "AWAY", 2, T0 + 40'000), T0 + 20'000));
  EXPECT_EQ(subtypes(t.snapshot("c2", "x", T0 + 20'000)), (std::set<std::string>{"bob:AWAY"}));
}

TEST(PresenceTable, KeyPartsDoNotRunTogether) {
  PresenceTable t;
  ASSERT_TRUE(t.upsert(make("ab", "c", "ONLINE", 1, T0 + 1000), T0));
  ASSERT_TRUE(t.upsert(make("a", "bc", "ONLINE", 1, T0 + 1000), T0));
  EXPECT_EQ(t.size(), 2u);
}

TEST(PresenceTable, HundredThousandStatesExpireCorrectlyAndQuickly) {
  PresenceTable t(100, 32'000);
  constexpr int kStates = 100'000;
  for (int i = 0; i < kStates; ++i) {
    // Spread over 100 contexts, lifetimes 1..40 s (some beyond the horizon), two slots each.
    const std::int64_t expires = T0 + 1'000 + (static_cast<std::int64_t>(i) * 7919) % 39'000;
    ASSERT_TRUE(t.upsert(make("ctx" + std::to_string(i % 100), "user" + std::to_string(i / 2),
                              i % 2 ? "TYPING" : "ONLINE", 1, expires),
                         T0));
  }
  ASSERT_EQ(t.size(), static_cast<std::size_t>(kStates));
  // Replace a tenth of them with later expiries: old timers must be ignored.
  for (int i = 0; i < kStates; i += 10)
    ASSERT_TRUE(t.upsert(make("ctx" + std::to_string(i % 100), "user" + std::to_string(i / 2), "AWAY", 2,
                              T0 + 45'000),
                         T0 + 500));
  ASSERT_EQ(t.size(), static_cast<std::size_t>(kStates));
  EXPECT_EQ(t.snapshot("ctx7", "nobody", T0 + 500).size(), static_cast<std::size_t>(kStates / 100));

  std::size_t expired = 0;
  std::int64_t last = 0;
  std::chrono::steady_clock::duration expire_time{};
  for (std::int64_t now = T0 + 500; now <= T0 + 50'000; now += 100) {
    const auto before = std::chrono::steady_clock::now();
    std::vector<PresenceState> gone = t.expire(now);
    expire_time += std::chrono::steady_clock::now() - before;
    for (const PresenceState& s : gone) {
      ASSERT_LE(s.expires_at_ms, now);
      ASSERT_GT(s.expires_at_ms, now - 100);  // never later than one tick
      ASSERT_GE(s.expires_at_ms, last);
      last = s.expires_at_ms;
      ++expired;
    }
    ASSERT_EQ(t.size(), kStates - expired);
  }
  EXPECT_EQ(expired, static_cast<std::size_t>(kStates));
  EXPECT_EQ(t.size(), 0u);
  // 496 expire() calls removing 100k states: a few hundred ms in a release build on a busy
  // machine; the bound only catches pathologies (IdleExpireCallsDoNotScanTheTable is the sharp one).
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(expire_time).count();
  EXPECT_LT(ms, 10'000) << "expiring 100k states took " << ms << " ms";
}

// A wheel visits only the buckets of the elapsed ticks; a table scan would visit all 100k states
// on each of the 2000 calls (200M visits). Timing-based, but the gap is several orders of magnitude.
TEST(PresenceTable, IdleExpireCallsDoNotScanTheTable) {
  PresenceTable t(100, 32'000);
  for (int i = 0; i < 100'000; ++i)
    ASSERT_TRUE(t.upsert(make("ctx" + std::to_string(i % 100), "user" + std::to_string(i), "ONLINE", 1,
                              T0 + 25'000 + (i % 50) * 100),
                         T0));
  const auto start = std::chrono::steady_clock::now();
  std::size_t expired = 0;
  for (std::int64_t now = T0; now < T0 + 20'000; now += 10) expired += t.expire(now).size();
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(expired, 0u);
  EXPECT_EQ(t.size(), 100'000u);
  EXPECT_LT(ms, 200) << "2000 idle expire() calls took " << ms << " ms";
}

}  // namespace
}  // namespace presd
