#include "broker/inbound.h"

#include <spdlog/spdlog.h>

namespace presd {

namespace {
// Logs the first few of a kind of drop and then every 1000th, so a flood cannot flood the log
// (the metrics count every one).
bool worth_logging(std::uint64_t n) { return n <= 10 || n % 1000 == 0; }
}  // namespace

Inbound::Inbound(std::string self, std::size_t max_pending, Post home)
    : self_(std::move(self)), max_pending_(max_pending), home_(std::move(home)) {}

void Inbound::start(Broker::Receive receive) {
  std::lock_guard lock(shared_->mu);
  shared_->receive = std::move(receive);
}

void Inbound::stop() {
  std::lock_guard lock(shared_->mu);
  shared_->receive = nullptr;
}

void Inbound::on_payload(std::string_view payload) {
  auto decoded = decode_bus_message(payload);
  if (!decoded) {
    const auto n = ++invalid_;
    if (worth_logging(n)) spdlog::warn("bus: message dropped ({}): {}", to_string(decoded.code()), decoded.error().message);
    return;
  }
  if (decoded->origin == self_) {
    ++echo_;  // NATS no_echo makes this rare; another node with our id would show up here too
    return;
  }
  {
    std::lock_guard lock(shared_->mu);
    const bool running = static_cast<bool>(shared_->receive);
    if (!running || shared_->pending.load() >= max_pending_) {
      const auto n = ++overflow_;
      if (worth_logging(n))
        spdlog::warn("bus: message from {} dropped ({}): {}", decoded->origin, to_string(ErrorCode::bus_overflow),
                     running ? "the hub is " + std::to_string(max_pending_) + " messages behind" : "not started");
      return;
    }
    ++shared_->pending;
  }
  ++received_;
  home_([shared = shared_, message = std::move(decoded).value()]() mutable {
    Broker::Receive receive;
    {
      std::lock_guard lock(shared->mu);
      --shared->pending;
      receive = shared->receive;
    }
    if (receive) receive(std::move(message));
  });
}

void Inbound::add_to(BrokerStats& s) const {
  s.received += received_;
  s.dropped_invalid += invalid_;
  s.dropped_echo += echo_;
  s.dropped_overflow += overflow_;
}

}  // namespace presd
