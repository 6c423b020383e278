// The NATS broker against a real nats-server on a loopback port, started by the test.
#include "broker/nats_broker.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "nats_server.h"
#include "task_queue.h"

namespace presd {
namespace {

using namespace std::chrono_literals;

struct Node {
  Node(const std::string& url, const std::string& id, int pending_msgs = 1000) {
    NatsBrokerConfig c;
    c.url = url;
    c.node_id = id;
    c.subject_prefix = "test." + std::to_string(::getpid());
    c.pending_msgs = pending_msgs;
    c.reconnect_wait_ms = 50;
    auto made = NatsBroker::create(c, home.poster());
    if (!made) throw std::runtime_error(made.error().message);
    broker = std::move(made).value();
  }
  void start() {
    broker->start([this](BusMessage m) { got.push_back(std::move(m)); });
  }
  std::size_t count(BusMessage::Kind kind, const std::string& token = {}) const {
    std::size_t n = 0;
    for (const auto& m : got) n += m.kind == kind && (token.empty() || m.token == token);
    return n;
  }
  test::TaskQueue home;
  std::unique_ptr<NatsBroker> broker;
  std::vector<BusMessage> got;
};

// Polls (running the nodes' home queues) until pred holds; generous for a loaded machine.
template <class Pred>
bool eventually(std::initializer_list<Node*> nodes, Pred pred, std::chrono::milliseconds timeout = 20s) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    for (Node* n : nodes) n->home.drain();
    if (pred()) return true;
    std::this_thread::sleep_for(10ms);
  }
  for (Node* n : nodes) n->home.drain();
  return pred();
}

int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

TEST(NatsBroker, RefusesBadConfiguration) {
  NatsBrokerConfig c;
  c.url = "nats://127.0.0.1:1";
  c.node_id = "bad id";
  EXPECT_EQ(NatsBroker::create(c, [](Broker::Task) {}).code(), ErrorCode::bad_request);
  c.node_id = "ok";
  c.subject_prefix = "a..b";
  EXPECT_EQ(NatsBroker::create(c, [](Broker::Task) {}).code(), ErrorCode::bad_request);
}

TEST(NatsBroker, PresReachesTheOtherNodeOnceAndNeverComesBack) {
  test::NatsServer server;
  Node a(server.url(), "a"), b(server.url(), "b");
  a.start();
  b.start();
  // b's start-up sync request reaches a, which was already subscribed.
  ASSERT_TRUE(eventually({&a, &b}, [&] { return a.count(BusMessage::Kind::sync) >= 1; }));
  EXPECT_EQ(a.got.back().origin, "b");

  a.broker->publish_pres("t1");
  ASSERT_TRUE(eventually({&a, &b}, [&] { return b.count(BusMessage::Kind::pres, "t1") == 1; }));
  b.broker->send_pres_to("a", "direct");
  ASSERT_TRUE(eventually({&a, &b}, [&] { return a.count(BusMessage::Kind::pres, "direct") == 1; }));
  std::this_thread::sleep_for(200ms);
  a.home.drain();
  EXPECT_EQ(a.count(BusMessage::Kind::pres, "t1"), 0u);  // no echo
  EXPECT_EQ(b.count(BusMessage::Kind::pres, "t1"), 1u);  // once
  EXPECT_TRUE(a.broker->stats().connected);
  EXPECT_GE(a.broker->stats().published, 1u);
  EXPECT_GE(b.broker->stats().received, 1u);
}

TEST(NatsBroker, ReconnectsByItselfResyncsAndFlushesWhatWasPublishedMeanwhile) {
  test::NatsServer server;
  Node a(server.url(), "a"), b(server.url(), "b");
  a.start();
  b.start();
  ASSERT_TRUE(eventually({&a, &b}, [&] { return a.count(BusMessage::Kind::sync) >= 1; }));

  server.stop();
  ASSERT_TRUE(eventually({&a, &b}, [&] { return !a.broker->stats().connected && !b.broker->stats().connected; }));
  a.broker->publish_pres("during-outage");  // kept in the bounded reconnect buffer
  const std::size_t syncs_before = a.count(BusMessage::Kind::sync) + b.count(BusMessage::Kind::sync);
  server.restart();

  ASSERT_TRUE(eventually({&a, &b}, [&] {
    return a.broker->stats().reconnects >= 1 && b.broker->stats().reconnects >= 1 && a.broker->stats().connected &&
           b.broker->stats().connected;
  }));
  // Each asked the other for a resync after reconnecting (at least the later one was heard).
  ASSERT_TRUE(eventually({&a, &b}, [&] {
    return a.count(BusMessage::Kind::sync) + b.count(BusMessage::Kind::sync) > syncs_before;
  }));
  a.broker->publish_pres("after");
  ASSERT_TRUE(eventually({&a, &b}, [&] { return b.count(BusMessage::Kind::pres, "after") == 1; }));
  // The buffered publish arrives at most once (once if b resubscribed before a flushed).
  EXPECT_LE(b.count(BusMessage::Kind::pres, "during-outage"), 1u);
}

TEST(NatsBroker, StartsWithoutAServerAndJoinsWhenItComesUp) {
  const int port = free_port();
  const std::string url = "nats://127.0.0.1:" + std::to_string(port);
  Node a(url, "a");
  a.start();
  EXPECT_FALSE(a.broker->stats().connected);
  a.broker->publish_pres("early");  // buffered, not lost, not a crash
  test::NatsServer server(port);
  ASSERT_TRUE(eventually({&a}, [&] { return a.broker->stats().connected; }));
  Node b(url, "b");
  b.start();
  ASSERT_TRUE(eventually({&a, &b}, [&] { return a.count(BusMessage::Kind::sync) >= 1; }));
}

TEST(NatsBroker, ASlowConsumerDropsAndCountsInsteadOfBuffering) {
  test::NatsServer server;
  Node a(server.url(), "a"), b(server.url(), "b", /*pending_msgs=*/3);
  a.start();
  b.start();
  ASSERT_TRUE(eventually({&a, &b}, [&] { return a.count(BusMessage::Kind::sync) >= 1; }));
  constexpr int kSent = 50;
  const auto accounted = [&] {
    const BrokerStats s = b.broker->stats();
    return s.received + s.dropped_overflow + s.dropped_slow_consumer;
  };
  const auto before = accounted();  // a's start-up sync, if b was subscribed in time for it
  for (int i = 0; i < kSent; ++i) a.broker->publish_pres("t" + std::to_string(i));
  // b's hub never runs (its queue is not drained): at most 3 wait, the rest are dropped.
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (accounted() - before < kSent && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(accounted() - before, static_cast<std::uint64_t>(kSent));
  EXPECT_LE(b.home.size(), 3u);
  EXPECT_GE(b.broker->stats().dropped_overflow + b.broker->stats().dropped_slow_consumer, kSent - 3u);
}

}  // namespace
}  // namespace presd
