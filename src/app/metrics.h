// Prometheus metrics for `GET /metrics` (prometheus-cpp core, text exposition format).
// Event counts arrive through HubObserver; levels (connections, subscriptions, states) are read
// from the hub and the transport at scrape time.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>

#include "hub/hub.h"
#include "transport/server.h"

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
  void on_bus_accepted() override;
  void on_bus_rejected(ErrorCode code) override;
  // The cluster bus whose counters are exported (read at scrape time); nullptr to detach.
  void set_broker(const Broker* broker) { broker_ = broker; }
  // The transport whose WebSocket write counters are exported (read at scrape time).
  void set_transport_stats(std::function<transport::TransportStats()> read) { transport_stats_ = std::move(read); }

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
  // Cluster bus: counters mirror BrokerStats (advanced by the difference at each scrape).
  void mirror_broker();
  void mirror_transport();
  std::function<transport::TransportStats()> transport_stats_;
  transport::TransportStats last_transport_;
  prometheus::Counter* ws_frames_sent_;
  prometheus::Counter* ws_write_calls_;
  prometheus::Counter* http_answers_;
  prometheus::Counter* http_write_calls_;
  prometheus::Counter* ws_bytes_sent_;
  prometheus::Counter* ws_keepalive_pings_;
  prometheus::Counter* ws_silent_drops_;
  const Broker* broker_ = nullptr;
  BrokerStats last_broker_;
  prometheus::Counter* bus_out_;
  prometheus::Counter* bus_in_;
  prometheus::Counter* bus_reconnects_;
  prometheus::Gauge* bus_connected_;
  prometheus::Family<prometheus::Counter>* bus_dropped_;
  std::map<std::string, prometheus::Counter*> bus_dropped_by_reason_;
  prometheus::Counter* bus_pres_accepted_;
  prometheus::Family<prometheus::Counter>* bus_pres_dropped_;
  prometheus::Counter* bus_pres_dropped_by_code_[kErrorCodeCount] = {};
};

}  // namespace presd::app
