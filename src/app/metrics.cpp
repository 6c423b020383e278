#include "app/metrics.h"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

namespace presd::app {
namespace prom = prometheus;

Metrics::Metrics(const Hub& hub, std::function<std::size_t()> transport_connections,
                 std::function<std::size_t()> federation_queued)
    : hub_(hub),
      transport_connections_(std::move(transport_connections)),
      federation_queued_(std::move(federation_queued)),
      registry_(std::make_shared<prom::Registry>()) {
  auto& r = *registry_;
  accepted_ = &prom::BuildCounter().Name("presd_pres_accepted_total").Help("PRES tokens accepted and delivered").Register(r).Add({});
  rejected_ = &prom::BuildCounter().Name("presd_pres_rejected_total").Help("PRES refused, by error code").Register(r);
  // Every code gets its series up front so rate() sees a zero before the first refusal.
  for (int i = 0; i < kErrorCodeCount; ++i)
    rejected_by_code_[i] = &rejected_->Add({{"code", std::string(to_string(static_cast<ErrorCode>(i)))}});
  verify_seconds_ = &prom::BuildHistogram()
                         .Name("presd_es384_verify_seconds")
                         .Help("Time of one ES384 signature verification on the crypto pool")
                         .Register(r)
                         .Add({}, prom::Histogram::BucketBoundaries{0.0002, 0.0004, 0.0006, 0.0008, 0.001, 0.002, 0.005, 0.01});
  delivered_ = &prom::BuildCounter().Name("presd_frames_delivered_total").Help("ACTION and PRES_EXPIRED frames queued to WebSockets").Register(r).Add({});
  expired_ = &prom::BuildCounter().Name("presd_presence_expired_total").Help("Presence states that reached iat + TTL").Register(r).Add({});
  connections_ = &prom::BuildGauge().Name("presd_connections").Help("Open HTTP and WebSocket connections").Register(r).Add({});
  ws_connections_ = &prom::BuildGauge().Name("presd_websocket_connections").Help("Authenticated /ws/bus connections").Register(r).Add({});
  subscriptions_ = &prom::BuildGauge().Name("presd_subscriptions").Help("Context subscriptions over all connections").Register(r).Add({});
  presence_states_ = &prom::BuildGauge().Name("presd_presence_states").Help("Live presence states held in memory").Register(r).Add({});
  federation_queue_ = &prom::BuildGauge().Name("presd_federation_queue_depth").Help("PRES waiting to be sent to other instances").Register(r).Add({});
}

Metrics::~Metrics() = default;

void Metrics::on_accepted() { accepted_->Increment(); }
void Metrics::on_rejected(ErrorCode code) { rejected_by_code_[static_cast<int>(code)]->Increment(); }
void Metrics::on_verified(double seconds) { verify_seconds_->Observe(seconds); }
void Metrics::on_delivered(std::size_t frames) { delivered_->Increment(static_cast<double>(frames)); }
void Metrics::on_expired() { expired_->Increment(); }

std::string Metrics::scrape() {
  const HubStats s = hub_.stats();
  connections_->Set(static_cast<double>(transport_connections_()));
  ws_connections_->Set(static_cast<double>(s.connections));
  subscriptions_->Set(static_cast<double>(s.subscriptions));
  presence_states_->Set(static_cast<double>(s.presence_states));
  federation_queue_->Set(static_cast<double>(federation_queued_()));
  return prom::TextSerializer().Serialize(registry_->Collect());
}

}  // namespace presd::app
