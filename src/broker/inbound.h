// The receiving half every broker shares: decode on whatever thread the bus delivers on, drop
// echoes, and hand the rest to the hub's thread through a bounded queue. The bound is the
// "slow consumer" rule: when the hub is `max_pending` messages behind, new ones are dropped and
// counted (bus_overflow), never buffered without limit.
#pragma once

#include <atomic>
#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "broker/broker.h"

namespace presd {

class Inbound {
 public:
  using Post = std::function<void(Broker::Task)>;

  Inbound(std::string self, std::size_t max_pending, Post home);
  // Any thread. The receive callback is installed by start(); before it, messages are dropped
  // as overflow (nothing can take them yet).
  void on_payload(std::string_view payload);
  void start(Broker::Receive receive);
  void stop();

  const std::string& self() const { return self_; }
  void add_to(BrokerStats& s) const;

 private:
  struct Shared {
    std::mutex mu;
    Broker::Receive receive;  // empty once stopped
    std::atomic<std::size_t> pending{0};
  };

  std::string self_;
  std::size_t max_pending_;
  Post home_;
  std::shared_ptr<Shared> shared_ = std::make_shared<Shared>();
  std::atomic<std::uint64_t> received_{0}, invalid_{0}, echo_{0}, overflow_{0};
};

}  // namespace presd
