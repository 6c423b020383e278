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
  ws_frames_sent_ = &prom::BuildCounter().Name("presd_ws_frames_sent_total").Help("WebSocket frames written (data and control)").Register(r).Add({});
  ws_write_calls_ = &prom::BuildCounter().Name("presd_ws_write_calls_total").Help("Gather writes to WebSocket sockets; frames_sent / write_calls = frames per syscall").Register(r).Add({});
  http_answers_ = &prom::BuildCounter().Name("presd_http_answers_total").Help("HTTP responses serialized for writing (errors answered before closing not counted)").Register(r).Add({});
  http_write_calls_ = &prom::BuildCounter().Name("presd_http_write_calls_total").Help("Writes of HTTP answers; answers / write_calls = pipelined answers per syscall").Register(r).Add({});
  ws_bytes_sent_ = &prom::BuildCounter().Name("presd_ws_bytes_sent_total").Help("Bytes written to WebSocket sockets").Register(r).Add({});
  ws_keepalive_pings_ = &prom::BuildCounter().Name("presd_ws_keepalive_pings_total").Help("Pings sent to WebSockets silent for one ping interval").Register(r).Add({});
  ws_silent_drops_ = &prom::BuildCounter().Name("presd_ws_silent_drops_total").Help("WebSockets closed after two silent ping intervals (no pong, nothing)").Register(r).Add({});
  auto& bus_messages = prom::BuildCounter().Name("presd_bus_messages_total").Help("Cluster bus messages sent to and received from other nodes").Register(r);
  bus_out_ = &bus_messages.Add({{"direction", "out"}});
  bus_in_ = &bus_messages.Add({{"direction", "in"}});
  bus_reconnects_ = &prom::BuildCounter().Name("presd_bus_reconnects_total").Help("Reconnections to the cluster bus").Register(r).Add({});
  bus_connected_ = &prom::BuildGauge().Name("presd_bus_connected").Help("1 while connected to the cluster bus").Register(r).Add({});
  bus_dropped_ = &prom::BuildCounter().Name("presd_bus_dropped_total").Help("Cluster bus messages dropped before the hub, by reason").Register(r);
  for (const char* reason : {"invalid", "echo", "overflow", "slow_consumer", "publish_failed"})
    bus_dropped_by_reason_[reason] = &bus_dropped_->Add({{"reason", reason}});
  bus_pres_accepted_ = &prom::BuildCounter().Name("presd_bus_pres_accepted_total").Help("PRES from other nodes stored here").Register(r).Add({});
  bus_pres_dropped_ = &prom::BuildCounter().Name("presd_bus_pres_dropped_total").Help("PRES from other nodes dropped by the hub, by error code (token_duplicate and token_expired are routine)").Register(r);
}

Metrics::~Metrics() = default;

void Metrics::on_accepted() { accepted_->Increment(); }
void Metrics::on_rejected(ErrorCode code) { rejected_by_code_[static_cast<int>(code)]->Increment(); }
void Metrics::on_verified(double seconds) { verify_seconds_->Observe(seconds); }
void Metrics::on_delivered(std::size_t frames) { delivered_->Increment(static_cast<double>(frames)); }
void Metrics::on_expired() { expired_->Increment(); }
void Metrics::on_bus_accepted() { bus_pres_accepted_->Increment(); }
void Metrics::on_bus_rejected(ErrorCode code) {
  auto& counter = bus_pres_dropped_by_code_[static_cast<int>(code)];
  if (!counter) counter = &bus_pres_dropped_->Add({{"code", std::string(to_string(code))}});
  counter->Increment();
}

void Metrics::mirror_broker() {
  if (!broker_) return;
  const BrokerStats now = broker_->stats();
  auto advance = [](prom::Counter* c, std::uint64_t cur, std::uint64_t last) {
    if (cur > last) c->Increment(static_cast<double>(cur - last));
  };
  const BrokerStats& was = last_broker_;
  advance(bus_out_, now.published, was.published);
  advance(bus_in_, now.received, was.received);
  advance(bus_reconnects_, now.reconnects, was.reconnects);
  advance(bus_dropped_by_reason_["invalid"], now.dropped_invalid, was.dropped_invalid);
  advance(bus_dropped_by_reason_["echo"], now.dropped_echo, was.dropped_echo);
  advance(bus_dropped_by_reason_["overflow"], now.dropped_overflow, was.dropped_overflow);
  advance(bus_dropped_by_reason_["slow_consumer"], now.dropped_slow_consumer, was.dropped_slow_consumer);
  advance(bus_dropped_by_reason_["publish_failed"], now.publish_failed, was.publish_failed);
  bus_connected_->Set(now.connected ? 1 : 0);
  last_broker_ = now;
}

void Metrics::mirror_transport() {
  if (!transport_stats_) return;
  const transport::TransportStats now = transport_stats_();
  auto advance = [](prom::Counter* c, std::uint64_t cur, std::uint64_t last) {
    if (cur > last) c->Increment(static_cast<double>(cur - last));
  };
  advance(ws_frames_sent_, now.ws_frames_sent, last_transport_.ws_frames_sent);
  advance(ws_write_calls_, now.ws_write_calls, last_transport_.ws_write_calls);
  advance(ws_bytes_sent_, now.ws_bytes_sent, last_transport_.ws_bytes_sent);
  advance(http_answers_, now.http_answers, last_transport_.http_answers);
  advance(http_write_calls_, now.http_write_calls, last_transport_.http_write_calls);
  advance(ws_keepalive_pings_, now.ws_keepalive_pings, last_transport_.ws_keepalive_pings);
  advance(ws_silent_drops_, now.ws_silent_drops, last_transport_.ws_silent_drops);
  last_transport_ = now;
}

std::string Metrics::scrape() {
  const HubStats s = hub_.stats();
  connections_->Set(static_cast<double>(transport_connections_()));
  ws_connections_->Set(static_cast<double>(s.connections));
  subscriptions_->Set(static_cast<double>(s.subscriptions));
  presence_states_->Set(static_cast<double>(s.presence_states));
  federation_queue_->Set(static_cast<double>(federation_queued_()));
  mirror_broker();
  mirror_transport();
  return prom::TextSerializer().Serialize(registry_->Collect());
}

}  // namespace presd::app
