#include "broker/in_process_broker.h"

#include <gtest/gtest.h>

#include "task_queue.h"

namespace presd {
namespace {

struct Node {
  Node(std::shared_ptr<InProcessBus> bus, std::string id) : broker(std::move(bus), std::move(id), 100, home.poster()) {}
  void start() {
    broker.start([this](BusMessage m) { got.push_back(std::move(m)); });
  }
  test::TaskQueue home;
  InProcessBroker broker;
  std::vector<BusMessage> got;
};

TEST(InProcessBroker, PublishReachesEveryOtherNodeOnceAndNeverItself) {
  auto bus = std::make_shared<InProcessBus>();
  Node a(bus, "a"), b(bus, "b"), c(bus, "c");
  for (Node* n : {&a, &b, &c}) n->start();
  for (Node* n : {&a, &b, &c}) n->home.drain();
  for (Node* n : {&a, &b, &c}) n->got.clear();  // the sync requests of start()
  const auto published = a.broker.stats().published, received = b.broker.stats().received;

  a.broker.publish_pres("tok");
  for (Node* n : {&a, &b, &c}) n->home.drain();
  EXPECT_TRUE(a.got.empty());
  for (Node* n : {&b, &c}) {
    ASSERT_EQ(n->got.size(), 1u) << n->broker.node_id();
    EXPECT_EQ(n->got[0].kind, BusMessage::Kind::pres);
    EXPECT_EQ(n->got[0].origin, "a");
    EXPECT_EQ(n->got[0].token, "tok");
  }
  EXPECT_EQ(a.broker.stats().published, published + 1);
  EXPECT_EQ(b.broker.stats().received, received + 1);
}

TEST(InProcessBroker, StartAsksTheOthersForASyncAndAnswersGoToOneNode) {
  auto bus = std::make_shared<InProcessBus>();
  Node a(bus, "a"), b(bus, "b"), c(bus, "c");
  a.start();
  b.start();
  a.home.drain();
  ASSERT_EQ(a.got.size(), 1u);
  EXPECT_EQ(a.got[0].kind, BusMessage::Kind::sync);
  EXPECT_EQ(a.got[0].origin, "b");

  c.start();
  a.broker.send_pres_to("b", "only-for-b");
  for (Node* n : {&a, &b, &c}) n->home.drain();
  ASSERT_FALSE(b.got.empty());
  EXPECT_EQ(b.got.back().token, "only-for-b");
  for (const auto& m : c.got) EXPECT_NE(m.token, "only-for-b");
}

TEST(InProcessBroker, ALoneNodePublishesToNobody) {
  auto bus = std::make_shared<InProcessBus>();
  Node a(bus, "a");
  a.start();
  a.broker.publish_pres("tok");
  EXPECT_EQ(a.home.drain(), 0u);
  EXPECT_EQ(a.broker.stats().published, 0u);
  EXPECT_TRUE(a.broker.stats().connected);
}

TEST(InProcessBroker, ADetachedNodeGetsNothingMore) {
  auto bus = std::make_shared<InProcessBus>();
  Node a(bus, "a");
  auto b = std::make_unique<Node>(bus, "b");
  a.start();
  b->start();
  b.reset();
  const auto published = a.broker.stats().published;
  a.broker.publish_pres("tok");  // must not touch the destroyed node
  EXPECT_EQ(a.broker.stats().published, published);
}

}  // namespace
}  // namespace presd
