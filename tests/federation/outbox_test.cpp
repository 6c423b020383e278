#include "federation/outbox.h"

#include <gtest/gtest.h>

#include <vector>

namespace presd {
namespace {

struct Post {
  std::string peer, body;
  std::function<void(bool, std::string)> done;
};

class OutboxTest : public ::testing::Test {
 protected:
  OutboxTest() { make({}); }
  void make(OutboxConfig cfg) {
    outbox_ = std::make_unique<Outbox>(cfg, clock_, [this](const std::string& peer, const std::string& body, auto done) {
      posts_.push_back(Post{peer, body, std::move(done)});
    });
  }
  std::int64_t later(std::int64_t ms = 30'000) const { return clock_.now_ms() + ms; }
  ManualClock clock_;
  std::vector<Post> posts_;
  std::unique_ptr<Outbox> outbox_;
};

TEST_F(OutboxTest, PostsTheReferenceInboxBodyOnce) {
  ASSERT_TRUE(outbox_->send("bob.test", "a.b.c", later()));
  ASSERT_EQ(posts_.size(), 1u);
  EXPECT_EQ(posts_[0].peer, "bob.test");
  EXPECT_EQ(posts_[0].body, R"({"token":"a.b.c"})");
  posts_[0].done(false, "HTTP 500");
  EXPECT_EQ(posts_.size(), 1u);  // no retry
  EXPECT_EQ(outbox_->stats().failed, 1u);
}

TEST_F(OutboxTest, StaleTokensAreDropped) {
  EXPECT_FALSE(outbox_->send("bob.test", "t", clock_.now_ms()));
  EXPECT_EQ(outbox_->stats().dropped_stale, 1u);
  EXPECT_TRUE(posts_.empty());
}

TEST_F(OutboxTest, ASlowPeerQueuesBoundedlyAndDelaysNobodyElse) {
  OutboxConfig cfg;
  cfg.max_in_flight_per_peer = 2;
  cfg.max_queue_per_peer = 3;
  make(cfg);
  for (int i = 0; i < 6; ++i) outbox_->send("slow.test", "t" + std::to_string(i), later());
  EXPECT_EQ(posts_.size(), 2u);  // in flight
  EXPECT_EQ(outbox_->queued(), 3u);
  EXPECT_EQ(outbox_->stats().dropped_full, 1u);
  ASSERT_TRUE(outbox_->send("fast.test", "x", later()));
  EXPECT_EQ(posts_.back().peer, "fast.test");  // not behind slow.test's queue
  posts_[0].done(true, "");
  EXPECT_EQ(posts_.size(), 4u);  // the freed slot takes the next queued item
  EXPECT_EQ(outbox_->queued(), 2u);
}

TEST_F(OutboxTest, ItemsThatGoStaleInTheQueueAreNotSent) {
  OutboxConfig cfg;
  cfg.max_in_flight_per_peer = 1;
  make(cfg);
  outbox_->send("bob.test", "first", later(60'000));
  outbox_->send("bob.test", "second", later(1'000));
  clock_.advance_ms(2'000);
  posts_[0].done(true, "");
  EXPECT_EQ(posts_.size(), 1u);
  EXPECT_EQ(outbox_->stats().dropped_stale, 1u);
}

TEST_F(OutboxTest, BreakerOpensAfterConsecutiveFailuresAndClosesLater) {
  OutboxConfig cfg;
  cfg.breaker_failures = 3;
  cfg.breaker_open_s = 10;
  make(cfg);
  for (int i = 0; i < 3; ++i) {
    outbox_->send("dead.test", "t", later());
    posts_.back().done(false, "timeout");
  }
  EXPECT_TRUE(outbox_->breaker_open("dead.test"));
  EXPECT_FALSE(outbox_->send("dead.test", "t", later()));
  EXPECT_EQ(outbox_->stats().dropped_breaker, 1u);
  EXPECT_EQ(posts_.size(), 3u);
  clock_.advance_ms(10'001);
  EXPECT_FALSE(outbox_->breaker_open("dead.test"));
  EXPECT_TRUE(outbox_->send("dead.test", "t", later()));
  EXPECT_EQ(posts_.size(), 4u);
}

// Once the open time is over the next POST is a probe: one more failure opens the breaker
// again at once (a dead peer costs one timeout per open period, not breaker_failures).
TEST_F(OutboxTest, AFailedProbeAfterTheOpenTimeReopensAtOnce) {
  OutboxConfig cfg;
  cfg.breaker_failures = 3;
  cfg.breaker_open_s = 10;
  make(cfg);
  for (int i = 0; i < 3; ++i) {
    outbox_->send("dead.test", "t", later(60'000));
    posts_.back().done(false, "connect");
  }
  clock_.advance_ms(10'001);
  ASSERT_TRUE(outbox_->send("dead.test", "probe", later(60'000)));
  posts_.back().done(false, "connect");
  EXPECT_TRUE(outbox_->breaker_open("dead.test"));
  EXPECT_FALSE(outbox_->send("dead.test", "t", later(60'000)));
}

// A successful probe closes the breaker: the failure count starts from zero again.
TEST_F(OutboxTest, ASuccessfulProbeClosesTheBreaker) {
  OutboxConfig cfg;
  cfg.breaker_failures = 2;
  cfg.breaker_open_s = 10;
  make(cfg);
  for (int i = 0; i < 2; ++i) {
    outbox_->send("p.test", "t", later(60'000));
    posts_.back().done(false, "timeout");
  }
  clock_.advance_ms(10'001);
  outbox_->send("p.test", "probe", later(60'000));
  posts_.back().done(true, "");
  outbox_->send("p.test", "t", later(60'000));
  posts_.back().done(false, "timeout");
  EXPECT_FALSE(outbox_->breaker_open("p.test"));  // one failure after a success is not enough
  EXPECT_EQ(outbox_->stats().sent, 1u);
}

// POSTs already in flight when the breaker opens do not extend the open time when they fail.
TEST_F(OutboxTest, LateFailuresWhileOpenDoNotExtendIt) {
  OutboxConfig cfg;
  cfg.breaker_failures = 2;
  cfg.breaker_open_s = 10;
  cfg.max_in_flight_per_peer = 4;
  make(cfg);
  for (int i = 0; i < 3; ++i) outbox_->send("p.test", "t", later(60'000));
  ASSERT_EQ(posts_.size(), 3u);
  posts_[0].done(false, "timeout");
  posts_[1].done(false, "timeout");  // opens, until now + 10 s
  clock_.advance_ms(9'000);
  posts_[2].done(false, "timeout");  // late: must not reopen until now + 10 s
  clock_.advance_ms(1'001);
  EXPECT_FALSE(outbox_->breaker_open("p.test"));
}

TEST_F(OutboxTest, ASuccessResetsTheFailureCount) {
  OutboxConfig cfg;
  cfg.breaker_failures = 2;
  make(cfg);
  outbox_->send("p.test", "t", later());
  posts_.back().done(false, "x");
  outbox_->send("p.test", "t", later());
  posts_.back().done(true, "");
  outbox_->send("p.test", "t", later());
  posts_.back().done(false, "x");
  EXPECT_FALSE(outbox_->breaker_open("p.test"));
}

TEST_F(OutboxTest, LateCompletionsAfterDestructionAreIgnored) {
  outbox_->send("p.test", "t", later());
  auto done = posts_.back().done;
  outbox_.reset();
  done(true, "");  // must not touch the destroyed outbox
}

}  // namespace
}  // namespace presd
