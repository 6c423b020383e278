// The default broker: nodes in one process share an InProcessBus. presd without --broker has a
// bus of its own with one node on it, so publishing reaches nobody and a single node behaves
// exactly as before. Tests put several hubs on one bus to check cluster behaviour without
// sockets; messages still go through the wire format and the bounded inbound queue.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "broker/broker.h"
#include "broker/inbound.h"

namespace presd {

class InProcessBroker;

class InProcessBus {
 public:
  // To every broker attached to the bus except `from`; to the node `to` only, if given. Returns
  // how many received it (0 for a lone node, which then skips encoding altogether).
  std::size_t deliver(const InProcessBroker& from, const BusMessage& message, const std::string* to = nullptr);

 private:
  friend class InProcessBroker;
  void attach(InProcessBroker* b);
  void detach(InProcessBroker* b);

  // Recursive: with an inline home executor a delivery may publish again (a sync answer).
  std::recursive_mutex mu_;
  std::vector<InProcessBroker*> brokers_;
};

class InProcessBroker final : public Broker {
 public:
  InProcessBroker(std::shared_ptr<InProcessBus> bus, std::string node_id, std::size_t max_pending, Inbound::Post home);
  ~InProcessBroker() override;

  void start(Receive receive) override;
  void publish_pres(const std::string& token) override;
  void send_pres_to(const std::string& node, const std::string& token) override;
  void stop() override;
  const std::string& node_id() const override { return inbound_.self(); }
  BrokerStats stats() const override;

 private:
  friend class InProcessBus;
  void send(BusMessage m, const std::string* to);

  std::shared_ptr<InProcessBus> bus_;
  Inbound inbound_;
  std::atomic<std::uint64_t> published_{0};
};

}  // namespace presd
