// Prometheus metrics for `GET /metrics` (prometheus-cpp core, text exposition format).
// Event counts arrive through HubObserver; levels (connections, subscriptions, states) are read
// from the hub and the transport at scrape time.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "hub/hub.h"

namespace prometheus {
class Registry;
class Counter;
class Gauge;
class Histogram;
template <typename T>
class Family;
}  // namespace prometheus

namespace presd::app {

class Metrics final : public HubObserver {
 public:
  // Levels read at scrape time: open HTTP + WebSocket connections, PRES queued for peers.
  Metrics(const Hub& hub, std::function<std::size_t()> transport_connections,
          std::function<std::size_t()> federation_queued);
  ~Metrics() override;

  void on_accepted() override;
  void on_rejected(ErrorCode code) override;
  void on_verified(double seconds) override;
  void on_delivered(std::size_t frames) override;
  void on_expired() override;

  std::string scrape();

 private:
  const Hub& hub_;
  std::function<std::size_t()> transport_connections_;
  std::function<std::size_t()> federation_queued_;
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Counter* accepted_;
  prometheus::Family<prometheus::Counter>* rejected_;
  prometheus::Counter* rejected_by_code_[kErrorCodeCount];
  prometheus::Histogram* verify_seconds_;
  prometheus::Counter* delivered_;
  prometheus::Counter* expired_;
  prometheus::Gauge* connections_;
  prometheus::Gauge* ws_connections_;
  prometheus::Gauge* subscriptions_;
  prometheus::Gauge* presence_states_;
  prometheus::Gauge* federation_queue_;
};

}  // namespace presd::app
