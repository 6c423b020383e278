#include "broker/in_process_broker.h"

#include <algorithm>

namespace presd {

void InProcessBus::attach(InProcessBroker* b) {
  std::lock_guard lock(mu_);
  brokers_.push_back(b);
}

void InProcessBus::detach(InProcessBroker* b) {
  std::lock_guard lock(mu_);
  std::erase(brokers_, b);
}

std::size_t InProcessBus::deliver(const InProcessBroker& from, const BusMessage& message, const std::string* to) {
  std::lock_guard lock(mu_);
  std::string payload;
  std::size_t sent = 0;
  for (InProcessBroker* b : brokers_) {
    // As with NATS no_echo, the sender's own copy is not even sent.
    if (b == &from || (to && b->node_id() != *to)) continue;
    if (payload.empty()) payload = encode_bus_message(message);
    b->inbound_.on_payload(payload);
    ++sent;
  }
  return sent;
}

InProcessBroker::InProcessBroker(std::shared_ptr<InProcessBus> bus, std::string node_id, std::size_t max_pending,
                                 Inbound::Post home)
    : bus_(std::move(bus)), inbound_(std::move(node_id), max_pending, std::move(home)) {}

InProcessBroker::~InProcessBroker() { stop(); }

// On the bus from start() to stop(), as a NATS node is from subscribing to closing.
void InProcessBroker::start(Receive receive) {
  inbound_.start(std::move(receive));
  bus_->attach(this);
  send(BusMessage{BusMessage::Kind::sync, node_id(), {}}, nullptr);
}

void InProcessBroker::stop() {
  bus_->detach(this);
  inbound_.stop();
}

void InProcessBroker::publish_pres(const std::string& token) {
  send(BusMessage{BusMessage::Kind::pres, node_id(), token}, nullptr);
}

void InProcessBroker::send_pres_to(const std::string& node, const std::string& token) {
  send(BusMessage{BusMessage::Kind::pres, node_id(), token}, &node);
}

void InProcessBroker::send(BusMessage m, const std::string* to) {
  if (bus_->deliver(*this, m, to) > 0) ++published_;
}

BrokerStats InProcessBroker::stats() const {
  BrokerStats s;
  s.published = published_;
  s.connected = true;
  inbound_.add_to(s);
  return s;
}

}  // namespace presd
