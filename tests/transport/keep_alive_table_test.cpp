#include "transport/keep_alive_table.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <vector>

namespace presd::transport {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

struct FakeSession {
  int id = 0;
  std::uint32_t keep_alive_slot = KeepAliveTable<FakeSession>::kNoSlot;
};

struct Swept {
  std::vector<int> ping, drop;
};

Swept sweep(KeepAliveTable<FakeSession>& t, Clock::time_point now, Clock::duration interval = 30s) {
  std::vector<FakeSession*> ping, drop;
  t.sweep(now, interval, ping, drop);
  Swept out;
  for (auto* s : ping) out.ping.push_back(s->id);
  for (auto* s : drop) out.drop.push_back(s->id);
  std::sort(out.ping.begin(), out.ping.end());
  std::sort(out.drop.begin(), out.drop.end());
  return out;
}

TEST(KeepAliveTable, PingsOnceAfterOneSilentIntervalAndDropsAfterTwo) {
  KeepAliveTable<FakeSession> t;
  FakeSession a{1};
  const auto t0 = Clock::now();
  t.add(&a, t0);
  EXPECT_TRUE(sweep(t, t0 + 29s).ping.empty());
  EXPECT_EQ(sweep(t, t0 + 30s).ping, std::vector<int>{1});
  EXPECT_TRUE(sweep(t, t0 + 45s).ping.empty()) << "pinged once per silence, not once per sweep";
  EXPECT_TRUE(sweep(t, t0 + 59s).drop.empty());
  const Swept late = sweep(t, t0 + 60s);
  EXPECT_EQ(late.drop, std::vector<int>{1});
  EXPECT_TRUE(late.ping.empty());
}

TEST(KeepAliveTable, BeingHeardRestartsTheSilenceAndAllowsTheNextPing) {
  KeepAliveTable<FakeSession> t;
  FakeSession a{1};
  const auto t0 = Clock::now();
  t.add(&a, t0);
  EXPECT_EQ(sweep(t, t0 + 30s).ping, std::vector<int>{1});
  t.heard(&a, t0 + 31s);  // the pong
  EXPECT_TRUE(sweep(t, t0 + 60s).ping.empty());
  EXPECT_TRUE(sweep(t, t0 + 60s).drop.empty()) << "silence counts from the pong, not from the first add";
  EXPECT_EQ(sweep(t, t0 + 61s).ping, std::vector<int>{1});
}

TEST(KeepAliveTable, RemovalMovesTheLastEntryAndKeepsEverySlotTrue) {
  KeepAliveTable<FakeSession> t;
  std::vector<std::unique_ptr<FakeSession>> sessions;
  const auto t0 = Clock::now();
  for (int i = 0; i < 6; ++i) {
    sessions.push_back(std::make_unique<FakeSession>(FakeSession{i}));
    t.add(sessions.back().get(), t0 + std::chrono::seconds(i));  // session i silent 30 s at t0 + 30 + i
  }
  t.remove(sessions[1].get());
  t.remove(sessions[5].get());  // the last one
  t.remove(sessions[0].get());
  t.remove(sessions[0].get());  // twice: nothing happens
  EXPECT_EQ(t.size(), 3u);
  EXPECT_FALSE(t.contains(sessions[0].get()));
  EXPECT_TRUE(t.contains(sessions[3].get()));
  std::vector<int> seen;
  t.for_each([&](FakeSession* s) { seen.push_back(s->id); });
  std::sort(seen.begin(), seen.end());
  EXPECT_EQ(seen, (std::vector<int>{2, 3, 4}));
  // heard() must reach the moved entries: session 4 now sits where 1 was.
  t.heard(sessions[4].get(), t0 + 40s);
  EXPECT_EQ(sweep(t, t0 + 33s).ping, (std::vector<int>{2, 3}));
  t.heard(sessions[1].get(), t0 + 40s);  // removed: ignored
  EXPECT_EQ(sweep(t, t0 + 70s).ping, std::vector<int>{4});
}

TEST(KeepAliveTable, EmptiesCompletely) {
  KeepAliveTable<FakeSession> t;
  FakeSession a{1}, b{2};
  const auto t0 = Clock::now();
  t.add(&a, t0);
  t.add(&b, t0);
  t.remove(&a);
  t.remove(&b);
  EXPECT_TRUE(t.empty());
  const Swept s = sweep(t, t0 + 100s);
  EXPECT_TRUE(s.ping.empty());
  EXPECT_TRUE(s.drop.empty());
}

}  // namespace
}  // namespace presd::transport
