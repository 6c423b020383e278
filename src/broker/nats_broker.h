// The cluster bus over NATS (libnats, Debian's libnats-dev). Subjects, with the default prefix:
//   presd.all          every accepted PRES and every sync request, to all nodes
//   presd.node.<id>    answers to one node's sync request
// The connection has no_echo set, reconnects forever (every `reconnect_wait_ms`), keeps
// publishing into a bounded reconnect buffer meanwhile, and asks for a resync (a sync message)
// after every (re)connect. Received messages pass through Inbound (bounded, on the hub's thread);
// the subscriptions' own pending limits bound what libnats holds before that (slow consumer).
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>

#include <nats/nats.h>

#include "broker/broker.h"
#include "broker/inbound.h"

namespace presd {

struct NatsBrokerConfig {
  std::string url;  // nats://host:port, or several separated by commas (a NATS cluster)
  std::string node_id;
  std::string subject_prefix = "presd";
  std::string creds_file;  // NATS user credentials (JWT + NKey seed), optional
  int pending_msgs = 65536;               // per subscription in libnats, and the hub's queue
  int pending_bytes = 64 * 1024 * 1024;   // per subscription in libnats
  int reconnect_wait_ms = 250;
  int reconnect_buffer_bytes = 8 * 1024 * 1024;  // publishes kept while disconnected
};

class NatsBroker final : public Broker {
 public:
  // Checks the configuration and prepares the client; nothing connects before start().
  static Result<std::unique_ptr<NatsBroker>> create(NatsBrokerConfig config, Inbound::Post home);
  ~NatsBroker() override;

  // Connects (or keeps trying in the background if the server is not up yet) and subscribes.
  void start(Receive receive) override;
  void publish_pres(const std::string& token) override;
  void send_pres_to(const std::string& node, const std::string& token) override;
  void stop() override;
  const std::string& node_id() const override { return inbound_.self(); }
  BrokerStats stats() const override;

  const std::string& all_subject() const { return all_subject_; }

 private:
  NatsBroker(NatsBrokerConfig config, Inbound::Post home);
  void publish(const std::string& subject, const BusMessage& m);
  void on_connected();  // first connect (async) or reconnect: resync once subscribed

  static void on_message(natsConnection*, natsSubscription*, natsMsg* msg, void* self);
  static void on_connected_cb(natsConnection*, void* self);
  static void on_reconnected_cb(natsConnection*, void* self);
  static void on_disconnected_cb(natsConnection*, void* self);
  static void on_closed_cb(natsConnection*, void* self);
  static void on_error_cb(natsConnection*, natsSubscription*, natsStatus status, void* self);
  static void on_sub_complete_cb(void* self);

  NatsBrokerConfig config_;
  std::string all_subject_, own_subject_;
  Inbound inbound_;
  natsOptions* opts_ = nullptr;
  natsConnection* conn_ = nullptr;
  natsSubscription* sub_all_ = nullptr;
  natsSubscription* sub_own_ = nullptr;

  std::mutex mu_;  // guards the fields below, and the teardown handshake
  std::condition_variable cv_;
  bool subscribed_ = false, connected_once_ = false, closed_ = false, stopped_ = false;
  int subs_complete_ = 0;

  std::atomic<bool> connected_{false};
  std::atomic<std::uint64_t> published_{0}, publish_failed_{0}, reconnects_{0}, slow_consumer_events_{0};
};

}  // namespace presd
