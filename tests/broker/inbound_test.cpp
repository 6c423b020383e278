#include "broker/inbound.h"

#include <gtest/gtest.h>

#include "task_queue.h"

namespace presd {
namespace {

std::string pres_from(const std::string& node, const std::string& token = "h.p.s") {
  return encode_bus_message(BusMessage{BusMessage::Kind::pres, node, token});
}

class InboundTest : public ::testing::Test {
 protected:
  void make(std::size_t max_pending) {
    inbound_ = std::make_unique<Inbound>("self", max_pending, home_.poster());
    inbound_->start([this](BusMessage m) { got_.push_back(std::move(m)); });
  }
  BrokerStats stats() const {
    BrokerStats s;
    inbound_->add_to(s);
    return s;
  }
  test::TaskQueue home_;
  std::unique_ptr<Inbound> inbound_;
  std::vector<BusMessage> got_;
};

TEST_F(InboundTest, HandsMessagesOverOnlyThroughTheHomeExecutor) {
  make(10);
  inbound_->on_payload(pres_from("other", "t1"));
  EXPECT_TRUE(got_.empty());  // nothing runs on the delivering thread
  EXPECT_EQ(home_.drain(), 1u);
  ASSERT_EQ(got_.size(), 1u);
  EXPECT_EQ(got_[0].origin, "other");
  EXPECT_EQ(got_[0].token, "t1");
  EXPECT_EQ(stats().received, 1u);
}

TEST_F(InboundTest, DropsAndCountsItsOwnMessages) {
  make(10);
  inbound_->on_payload(pres_from("self"));
  EXPECT_EQ(home_.drain(), 0u);
  EXPECT_TRUE(got_.empty());
  EXPECT_EQ(stats().dropped_echo, 1u);
  EXPECT_EQ(stats().received, 0u);
}

TEST_F(InboundTest, DropsAndCountsUndecodableMessages) {
  make(10);
  inbound_->on_payload("{\"v\":9}");
  inbound_->on_payload("garbage");
  EXPECT_EQ(home_.drain(), 0u);
  EXPECT_EQ(stats().dropped_invalid, 2u);
}

TEST_F(InboundTest, ASlowHubDropsNewMessagesInsteadOfQueueingWithoutBound) {
  make(2);
  for (int i = 0; i < 5; ++i) inbound_->on_payload(pres_from("other", "t" + std::to_string(i)));
  EXPECT_EQ(home_.size(), 2u);
  EXPECT_EQ(stats().dropped_overflow, 3u);
  home_.drain();
  ASSERT_EQ(got_.size(), 2u);
  EXPECT_EQ(got_[1].token, "t1");
  // Caught up: room again.
  inbound_->on_payload(pres_from("other", "t9"));
  home_.drain();
  ASSERT_EQ(got_.size(), 3u);
  EXPECT_EQ(got_[2].token, "t9");
}

TEST_F(InboundTest, NothingIsHandedOverAfterStop) {
  make(10);
  inbound_->on_payload(pres_from("other"));
  inbound_->stop();
  home_.drain();  // the queued task finds the receiver gone
  EXPECT_TRUE(got_.empty());
  inbound_->on_payload(pres_from("other"));
  EXPECT_EQ(home_.size(), 0u);
  EXPECT_EQ(stats().dropped_overflow, 1u);
}

}  // namespace
}  // namespace presd
