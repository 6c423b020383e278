#include "ratelimit/limits.h"

#include <gtest/gtest.h>

#include <string>

namespace presd {
namespace {

constexpr std::int64_t T0 = 1'700'000'000'000;

// ---- TokenBucket -----------------------------------------------------------------------------

TEST(TokenBucket, StartsFullAndAllowsBurst) {
  TokenBucket b(10, 20, T0);
  EXPECT_TRUE(b.full(T0));
  for (int i = 0; i < 20; ++i) EXPECT_EQ(b.try_take(T0), 0) << i;
  EXPECT_FALSE(b.full(T0));
  // Empty: one token at 10/s takes 100 ms.
  EXPECT_EQ(b.try_take(T0), 100);
}

TEST(TokenBucket, RefillMathIsExact) {
  TokenBucket b(10, 20, T0);
  for (int i = 0; i < 20; ++i) ASSERT_EQ(b.try_take(T0), 0);
  EXPECT_EQ(b.try_take(T0 + 99), 1);   // 0.99 tokens: 1 ms short
  EXPECT_EQ(b.try_take(T0 + 100), 0);  // exactly one token
  EXPECT_EQ(b.try_take(T0 + 100), 100);
  EXPECT_EQ(b.try_take(T0 + 150), 50);
  // 1 s later: 10 tokens, no more.
  for (int i = 0; i < 10; ++i) EXPECT_EQ(b.try_take(T0 + 1100), 0) << i;
  EXPECT_EQ(b.try_take(T0 + 1100), 100);
}

TEST(TokenBucket, RefillIsCappedAtBurst) {
  TokenBucket b(10, 5, T0);
  for (int i = 0; i < 5; ++i) ASSERT_EQ(b.try_take(T0), 0);
  EXPECT_TRUE(b.full(T0 + 500));
  EXPECT_FALSE(b.full(T0 + 499));
  // A long idle period still yields only `burst` tokens.
  for (int i = 0; i < 5; ++i) EXPECT_EQ(b.try_take(T0 + 3'600'000), 0) << i;
  EXPECT_EQ(b.try_take(T0 + 3'600'000), 100);
}

TEST(TokenBucket, RetryAfterForCostAndFractionalRates) {
  TokenBucket b(3, 3, T0);  // 3/s: one token per 333.33 ms
  for (int i = 0; i < 3; ++i) ASSERT_EQ(b.try_take(T0), 0);
  EXPECT_EQ(b.try_take(T0), 334);  // ceil(333.33)
  EXPECT_EQ(b.try_take(T0 + 333), 1);
  EXPECT_EQ(b.try_take(T0 + 334), 0);

  TokenBucket c(1, 5, T0);
  EXPECT_EQ(c.try_take(T0, 4), 0);
  EXPECT_EQ(c.try_take(T0, 2), 1000);  // 1 left, needs 2: 1 s
  EXPECT_EQ(c.try_take(T0 + 1000, 2), 0);
}

TEST(TokenBucket, RetryAfterIsAtLeastOneMs) {
  TokenBucket b(1000, 1, T0);  // one token per ms
  ASSERT_EQ(b.try_take(T0), 0);
  EXPECT_EQ(b.try_take(T0), 1);
  EXPECT_EQ(b.try_take(T0 + 1), 0);
  TokenBucket fast(1e6, 1, T0);  // a token every microsecond: still reports 1 ms, never 0
  ASSERT_EQ(fast.try_take(T0), 0);
  EXPECT_EQ(fast.try_take(T0), 1);
}

TEST(TokenBucket, ClockGoingBackwardsNeitherRefillsNorBreaks) {
  TokenBucket b(10, 1, T0);
  ASSERT_EQ(b.try_take(T0), 0);
  EXPECT_GT(b.try_take(T0 - 5000), 0);
  EXPECT_EQ(b.try_take(T0 + 100), 0);
}

// ---- KeyedRateLimiter ------------------------------------------------------------------------

TEST(KeyedRateLimiter, KeysAreIsolated) {
  KeyedRateLimiter l(10, 2);
  EXPECT_EQ(l.try_take("alice", T0), 0);
  EXPECT_EQ(l.try_take("alice", T0), 0);
  EXPECT_EQ(l.try_take("alice", T0), 100);
  EXPECT_EQ(l.try_take("bob", T0), 0);
  EXPECT_EQ(l.try_take("bob", T0), 0);
  EXPECT_EQ(l.try_take("bob", T0), 100);
  EXPECT_EQ(l.size(), 2u);
  EXPECT_EQ(l.try_take("alice", T0 + 100), 0);
}

TEST(KeyedRateLimiter, CheckDoesNotConsume) {
  KeyedRateLimiter l(10, 2);
  EXPECT_EQ(l.check("alice", T0), 0);
  EXPECT_EQ(l.size(), 0u);  // an unknown key is not stored by check
  for (int i = 0; i < 10; ++i) EXPECT_EQ(l.check("alice", T0), 0);
  EXPECT_EQ(l.try_take("alice", T0), 0);
  EXPECT_EQ(l.check("alice", T0), 0);
  EXPECT_EQ(l.check("alice", T0), 0);
  EXPECT_EQ(l.try_take("alice", T0), 0);
  EXPECT_EQ(l.check("alice", T0), 100);
  EXPECT_EQ(l.check("alice", T0 + 40), 60);
  EXPECT_EQ(l.check("alice", T0 + 100), 0);
  // check at a later time did not advance the bucket either.
  EXPECT_EQ(l.try_take("alice", T0 + 100), 0);
  EXPECT_EQ(l.try_take("alice", T0 + 100), 100);
}

TEST(KeyedRateLimiter, CheckMatchesTryTake) {
  KeyedRateLimiter l(7, 3);
  std::int64_t now = T0;
  for (int i = 0; i < 200; ++i) {
    now += (i * 37) % 120;
    const std::int64_t predicted = l.check("k", now);
    EXPECT_EQ(l.try_take("k", now), predicted) << i;
  }
}

TEST(KeyedRateLimiter, SweepDropsOnlyRefilledBuckets) {
  KeyedRateLimiter l(10, 2);
  ASSERT_EQ(l.try_take("a", T0), 0);  // 1 token left: full at T0+100
  ASSERT_EQ(l.try_take("b", T0), 0);
  ASSERT_EQ(l.try_take("b", T0), 0);  // empty: full at T0+200
  l.sweep(T0 + 99);
  EXPECT_EQ(l.size(), 2u);
  l.sweep(T0 + 100);
  EXPECT_EQ(l.size(), 1u);
  l.sweep(T0 + 200);
  EXPECT_EQ(l.size(), 0u);
}

TEST(KeyedRateLimiter, MaxKeysSweepsThenFailsClosed) {
  KeyedRateLimiter l(10, 1, 2);
  ASSERT_EQ(l.try_take("a", T0), 0);
  ASSERT_EQ(l.try_take("b", T0), 0);
  // Full of non-idle buckets: a new key is refused with 1 s, an existing one still works.
  EXPECT_EQ(l.try_take("c", T0 + 50), 1000);
  EXPECT_EQ(l.check("c", T0 + 50), 1000);
  EXPECT_EQ(l.size(), 2u);
  EXPECT_EQ(l.try_take("a", T0 + 100), 0);
  // b has refilled: the sweep on insert makes room.
  EXPECT_EQ(l.try_take("c", T0 + 100), 0);
  EXPECT_EQ(l.size(), 2u);  // a (just used) and c
  EXPECT_EQ(l.try_take("a", T0 + 100), 100);
}

TEST(KeyedRateLimiter, LongKeysLookedUpByView) {
  KeyedRateLimiter l(1, 1);
  const std::string key(200, 'x');
  ASSERT_EQ(l.try_take(std::string_view(key), T0), 0);
  EXPECT_EQ(l.try_take(std::string_view(key).substr(0, 200), T0), 1000);
  EXPECT_EQ(l.check(key, T0 + 500), 500);
}

// ---- MinIntervalLimiter ----------------------------------------------------------------------

TEST(MinIntervalLimiter, FirstAllowedThenInterval) {
  MinIntervalLimiter l(3000);
  EXPECT_EQ(l.try_take("k", T0), 0);
  EXPECT_EQ(l.try_take("k", T0 + 1), 2999);
  EXPECT_EQ(l.try_take("k", T0 + 2999), 1);
  EXPECT_EQ(l.try_take("k", T0 + 3000), 0);  // now >= last + interval
  EXPECT_EQ(l.try_take("k", T0 + 3000), 3000);
}

TEST(MinIntervalLimiter, RefusalsDoNotResetTheWindow) {
  MinIntervalLimiter l(3000);
  ASSERT_EQ(l.try_take("k", T0), 0);
  for (std::int64_t t = T0 + 100; t < T0 + 3000; t += 100) EXPECT_EQ(l.try_take("k", t), T0 + 3000 - t);
  EXPECT_EQ(l.try_take("k", T0 + 3000), 0);
}

TEST(MinIntervalLimiter, KeysAreIsolatedAndCheckDoesNotConsume) {
  MinIntervalLimiter l(1000);
  EXPECT_EQ(l.check("a", T0), 0);
  EXPECT_EQ(l.check("a", T0), 0);
  EXPECT_EQ(l.size(), 0u);
  EXPECT_EQ(l.try_take("a", T0), 0);
  EXPECT_EQ(l.check("a", T0 + 400), 600);
  EXPECT_EQ(l.check("b", T0 + 400), 0);
  EXPECT_EQ(l.try_take("b", T0 + 400), 0);
  EXPECT_EQ(l.check("a", T0 + 1000), 0);
  EXPECT_EQ(l.check("b", T0 + 1000), 400);
  EXPECT_EQ(l.try_take("a", T0 + 1000), 0);
}

TEST(MinIntervalLimiter, SweepAndMaxKeys) {
  MinIntervalLimiter l(1000, 2);
  ASSERT_EQ(l.try_take("a", T0), 0);
  ASSERT_EQ(l.try_take("b", T0 + 500), 0);
  EXPECT_EQ(l.try_take("c", T0 + 999), 1000);  // full, nothing sweepable: fail closed
  EXPECT_EQ(l.check("c", T0 + 999), 1000);
  EXPECT_EQ(l.try_take("c", T0 + 1000), 0);  // a swept on insert
  EXPECT_EQ(l.size(), 2u);
  EXPECT_EQ(l.try_take("a", T0 + 1000), 1000);  // b (until +1500) and c hold the two keys
  EXPECT_EQ(l.try_take("a", T0 + 1500), 0);     // b swept
  EXPECT_EQ(l.size(), 2u);
}

TEST(MinIntervalLimiter, Sweep) {
  MinIntervalLimiter l(1000);
  ASSERT_EQ(l.try_take("a", T0), 0);
  ASSERT_EQ(l.try_take("b", T0 + 500), 0);
  l.sweep(T0 + 999);
  EXPECT_EQ(l.size(), 2u);
  l.sweep(T0 + 1000);
  EXPECT_EQ(l.size(), 1u);
  l.sweep(T0 + 1500);
  EXPECT_EQ(l.size(), 0u);
}

// ---- ReplayFilter ----------------------------------------------------------------------------

TEST(ReplayFilter, RemembersUntilExpiry) {
  ReplayFilter f;
  EXPECT_FALSE(f.seen("sig1"));
  EXPECT_TRUE(f.remember("sig1", T0 + 1000, T0));
  EXPECT_TRUE(f.seen("sig1"));
  EXPECT_FALSE(f.seen("sig2"));
  f.sweep(T0 + 999);
  EXPECT_TRUE(f.seen("sig1"));
  f.sweep(T0 + 1000);
  EXPECT_FALSE(f.seen("sig1"));
  EXPECT_EQ(f.size(), 0u);
}

TEST(ReplayFilter, BinarySignatures) {
  ReplayFilter f;
  const std::string a("\x00\x01\x02", 3), b("\x00\x01\x03", 3);
  ASSERT_TRUE(f.remember(a, T0 + 10, T0));
  EXPECT_TRUE(f.seen(a));
  EXPECT_FALSE(f.seen(b));
  EXPECT_FALSE(f.seen(std::string_view(a).substr(0, 2)));
}

TEST(ReplayFilter, CapacitySweepsThenRefuses) {
  ReplayFilter f(2);
  ASSERT_TRUE(f.remember("a", T0 + 100, T0));
  ASSERT_TRUE(f.remember("b", T0 + 200, T0));
  EXPECT_TRUE(f.remember("a", T0 + 100, T0 + 50));  // already known: not a new entry
  EXPECT_FALSE(f.remember("c", T0 + 300, T0 + 50));  // full, nothing expired
  EXPECT_FALSE(f.seen("c"));
  EXPECT_TRUE(f.remember("c", T0 + 300, T0 + 100));  // a expired and is swept
  EXPECT_FALSE(f.seen("a"));
  EXPECT_TRUE(f.seen("b"));
  EXPECT_TRUE(f.seen("c"));
  EXPECT_EQ(f.size(), 2u);
}

}  // namespace
}  // namespace presd

namespace presd {
namespace {

TEST(StrikeBan, ThreeStrikesWithinTheWindowBanForTheBanTime) {
  StrikeBan ban(3, 3'600'000, 3'600'000);
  EXPECT_FALSE(ban.strike("1.2.3.4", 0));
  EXPECT_FALSE(ban.strike("1.2.3.4", 1'000));
  EXPECT_EQ(ban.banned_for("1.2.3.4", 1'000), 0);
  EXPECT_TRUE(ban.strike("1.2.3.4", 2'000));
  EXPECT_EQ(ban.banned_for("1.2.3.4", 2'000), 3'600'000);
  EXPECT_EQ(ban.banned_for("1.2.3.4", 3'602'000), 0);
  EXPECT_EQ(ban.banned_for("5.6.7.8", 2'000), 0);  // others unaffected
}

TEST(StrikeBan, StrikesOutsideTheWindowDoNotAddUp) {
  StrikeBan ban(3, 1'000, 5'000);
  ban.strike("ip", 0);
  ban.strike("ip", 500);
  EXPECT_FALSE(ban.strike("ip", 1'500));  // the window restarted
  EXPECT_EQ(ban.banned_for("ip", 1'500), 0);
}

// Spends decided on another cluster node: taken even from an empty bucket, into debt down to
// -burst, and the debt is paid back by refill before anything is allowed again.
TEST(TokenBucket, SpendGoesIntoBoundedDebt) {
  TokenBucket b(1, 3, 0);  // 1/s, burst 3
  for (int i = 0; i < 3; ++i) EXPECT_EQ(b.try_take(0), 0);
  b.spend(0, 2);
  EXPECT_EQ(b.try_take(0), 3000);  // from -2 to 1
  b.spend(0, 100);                  // floored at -3
  EXPECT_EQ(b.try_take(0), 4000);
  EXPECT_EQ(b.try_take(4000), 0);
  EXPECT_FALSE(b.full(4000));
}

TEST(KeyedRateLimiter, SpendCreatesAndDebitsTheKeysBucket) {
  KeyedRateLimiter l(1, 2);
  l.spend("alice", 0);
  l.spend("alice", 0);
  l.spend("alice", 0);
  EXPECT_EQ(l.check("alice", 0), 2000);
  EXPECT_EQ(l.try_take("alice", 0), 2000);
  EXPECT_EQ(l.try_take("bob", 0), 0);
  l.sweep(0);
  EXPECT_EQ(l.size(), 2u);  // a bucket in debt is not full: kept
}

TEST(MinIntervalLimiter, RecordRestartsTheIntervalFromTheLaterUse) {
  MinIntervalLimiter l(3000);
  l.record("k", 1000);
  EXPECT_EQ(l.try_take("k", 2000), 2000);
  l.record("k", 500);  // an older use elsewhere does not move it back
  EXPECT_EQ(l.check("k", 2000), 2000);
  EXPECT_EQ(l.try_take("k", 4000), 0);
}

TEST(StrikeBan, ZeroStrikesDisablesAndSweepForgets) {
  StrikeBan off(0, 1'000, 1'000);
  for (int i = 0; i < 10; ++i) EXPECT_FALSE(off.strike("ip", i));
  StrikeBan ban(2, 1'000, 1'000);
  ban.strike("a", 0);
  ban.sweep(5'000);
  EXPECT_EQ(ban.size(), 0u);
}

}  // namespace
}  // namespace presd
