#include "transport/fd_poller.h"

#include <gtest/gtest.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <random>
#include <vector>

namespace presd::transport {
namespace {

using namespace std::chrono_literals;

// One end of a socketpair, watched by the poller; counts and drains what it is told about.
struct Watched final : FdPoller::Target {
  int fd = -1;    // the watched end (non-blocking)
  int peer = -1;  // the test writes here
  int input_events = 0;
  int all_events = 0;  // any report, also output space
  std::function<void()> on_input;  // runs after draining
  ~Watched() {
    if (fd >= 0) ::close(fd);
    if (peer >= 0) ::close(peer);
  }
  void on_ready(std::uint32_t events) override {
    ++all_events;
    if (!(events & EPOLLIN)) return;
    ++input_events;
    char buf[256];
    while (::recv(fd, buf, sizeof buf, MSG_DONTWAIT) > 0) {
    }
    if (on_input) on_input();
  }
};

std::shared_ptr<Watched> make_watched() {
  auto w = std::make_shared<Watched>();
  int sv[2];
  EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
  w->fd = sv[0];
  w->peer = sv[1];
  return w;
}

void say(const Watched& w) { ASSERT_EQ(::send(w.peer, "x", 1, MSG_NOSIGNAL), 1); }

class FdPollerTest : public ::testing::Test {
 protected:
  // Runs the loop until it has been idle for a moment.
  void settle() {
    for (int i = 0; i < 20; ++i) {
      io_.restart();
      io_.run_for(5ms);
    }
  }
  FdPoller::Key add(const std::shared_ptr<Watched>& w) {
    std::error_code ec;
    const auto key = poller_->add(w->fd, w, ec);
    EXPECT_FALSE(ec) << ec.message();
    return key;
  }

  boost::asio::io_context io_{1};
  std::shared_ptr<FdPoller> poller_ = FdPoller::create(io_);
};

TEST_F(FdPollerTest, InputIsReportedOncePerArrival) {
  auto w = make_watched();
  add(w);
  settle();
  EXPECT_EQ(w->input_events, 0);  // writable only: no input reported
  say(*w);
  settle();
  EXPECT_EQ(w->input_events, 1);
  settle();
  EXPECT_EQ(w->input_events, 1);  // edge-triggered: drained, nothing new, no second report
  say(*w);
  settle();
  EXPECT_EQ(w->input_events, 2);
  // Output space is reported on registration and along with input, not again and again while
  // the socket stays writable (level-triggered would spin the loop).
  EXPECT_LE(w->all_events, 3);
  EXPECT_EQ(poller_->size(), 1u);
}

TEST_F(FdPollerTest, InputWaitingAtRegistrationIsReported) {
  auto w = make_watched();
  say(*w);
  add(w);
  settle();
  EXPECT_EQ(w->input_events, 1);
}

TEST_F(FdPollerTest, ManyReadySocketsAreAllReported) {
  // More than one epoll_wait batch (128) ready at once.
  std::vector<std::shared_ptr<Watched>> ws;
  for (int i = 0; i < 300; ++i) {
    ws.push_back(make_watched());
    add(ws.back());
  }
  for (auto& w : ws) say(*w);
  settle();
  for (auto& w : ws) EXPECT_EQ(w->input_events, 1);
}

TEST_F(FdPollerTest, ATargetRemovedDuringDispatchIsNotCalledAndOutlivesTheCall) {
  auto a = make_watched();
  auto b = make_watched();
  const auto key_a = add(a);
  const auto key_b = add(b);
  std::weak_ptr<Watched> weak_a = a, weak_b = b;
  // Both are ready in one batch; whichever is reported first removes both. The other one's event
  // must be dropped, and the remover (whose std::function is running) must live to the end of
  // its call: the sanitized build reports a use-after-free otherwise.
  int calls = 0;
  auto remove_both = [this, &calls, key_a, key_b, fa = a->fd, fb = b->fd] {
    ++calls;
    poller_->remove(key_a, fa);
    poller_->remove(key_b, fb);
  };
  a->on_input = remove_both;
  b->on_input = remove_both;
  say(*a);
  say(*b);
  a.reset();
  b.reset();  // the poller holds them now
  settle();
  EXPECT_EQ(calls, 1);
  EXPECT_TRUE(weak_a.expired());
  EXPECT_TRUE(weak_b.expired());
  EXPECT_EQ(poller_->size(), 0u);
}

TEST_F(FdPollerTest, RemovedTargetIsReleasedAndHearsNothingMore) {
  auto w = make_watched();
  const auto key = add(w);
  int calls = 0;
  w->on_input = [&calls] { ++calls; };
  std::weak_ptr<Watched> weak = w;
  poller_->remove(key, w->fd);
  poller_->remove(key, w->fd);  // a second remove is a no-op
  EXPECT_EQ(poller_->size(), 0u);
  say(*w);
  w.reset();
  ASSERT_FALSE(weak.expired());  // released by a posted handler, not inside remove()
  settle();
  EXPECT_TRUE(weak.expired());
  EXPECT_EQ(calls, 0);
}

TEST_F(FdPollerTest, SlotsAreReusedWithANewGeneration) {
  auto a = make_watched();
  const auto key_a = add(a);
  poller_->remove(key_a, a->fd);
  auto b = make_watched();
  const auto key_b = add(b);
  EXPECT_EQ(static_cast<std::uint32_t>(key_a), static_cast<std::uint32_t>(key_b));  // same slot
  EXPECT_NE(key_a, key_b);
  poller_->remove(key_a, b->fd);  // the old key no longer names b
  EXPECT_EQ(poller_->size(), 1u);
  say(*b);
  settle();
  EXPECT_EQ(b->input_events, 1);
}

TEST_F(FdPollerTest, CloseReleasesEveryTargetAndRefusesNewOnes) {
  auto a = make_watched();
  add(a);
  std::weak_ptr<Watched> weak = a;
  auto keep = a;
  a.reset();
  keep.reset();
  poller_->close();
  EXPECT_TRUE(weak.expired());
  EXPECT_EQ(poller_->size(), 0u);
  auto b = make_watched();
  std::error_code ec;
  poller_->add(b->fd, b, ec);
  EXPECT_EQ(ec, std::errc::operation_canceled);
  say(*b);
  settle();
  EXPECT_EQ(b->input_events, 0);
}

TEST_F(FdPollerTest, EventsReachExactlyTheLiveTargetsThroughChurn) {
  // Random adds, removes (also from inside a dispatch) and writes: every live target hears of
  // each of its arrivals, none hears after its removal, however slots and generations are reused.
  std::mt19937 rng(7);
  struct Entry {
    std::shared_ptr<Watched> w;
    FdPoller::Key key = 0;
    int said = 0;
    bool live = false;
  };
  std::vector<Entry> entries;
  entries.reserve(700);  // the callbacks hold references into it
  int heard_after_removal = 0;
  for (int step = 0; step < 600; ++step) {
    const int op = static_cast<int>(rng() % 4);
    if (op == 0 || entries.empty()) {
      Entry e;
      e.w = make_watched();
      e.key = add(e.w);
      e.live = true;
      entries.push_back(std::move(e));
    } else {
      Entry& e = entries[rng() % entries.size()];
      if (op == 1 && e.live) {
        poller_->remove(e.key, e.w->fd);
        e.live = false;
        e.w->on_input = [&heard_after_removal] { ++heard_after_removal; };
      } else if (op == 2 && e.live) {
        // Removed by its own input: that report counts, later ones must not come.
        e.w->on_input = [this, &e, &heard_after_removal] {
          if (!e.live) ++heard_after_removal;
          poller_->remove(e.key, e.w->fd);
          e.live = false;
        };
      }
      say(*e.w);
      if (e.live || op == 2) ++e.said;
    }
    if (step % 40 == 0) settle();
  }
  settle();
  EXPECT_EQ(heard_after_removal, 0);
  std::size_t live = 0;
  for (const Entry& e : entries) {
    if (e.live) ++live;
    // Each write was drained before the next settle or together with later ones, so a live
    // target heard at least one report and at most one per write.
    if (e.live && e.said > 0) {
      EXPECT_GE(e.w->input_events, 1);
      EXPECT_LE(e.w->input_events, e.said);
    }
  }
  EXPECT_EQ(poller_->size(), live);
}

TEST_F(FdPollerTest, CloseAlsoLetsGoOfRemovedTargetsWithoutTheLoopRunning) {
  // A target removed while the loop is stopped waits for a posted release; close() (from
  // ~Server, after the loop stopped) must not leave it to a handler that never runs.
  auto w = make_watched();
  const auto key = add(w);
  std::weak_ptr<Watched> weak = w;
  poller_->remove(key, w->fd);
  w.reset();
  ASSERT_FALSE(weak.expired());
  poller_->close();
  EXPECT_TRUE(weak.expired());
}

}  // namespace
}  // namespace presd::transport
