// The cluster bus: every PRES a node accepts goes to every other node serving the same id_tags,
// so several presd nodes behind a load balancer act as one (docs/cluster.md).
//
// Threading: publish()/send_to()/stats() are called on the hub's thread and never wait on the
// network. Messages from other nodes may arrive on any thread (NATS delivery threads); a broker
// only decodes them there and hands them to `receive` through the home executor, so the hub's
// state is only ever touched on the hub's thread.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "broker/bus_message.h"

namespace presd {

struct BrokerStats {
  std::uint64_t published = 0;         // messages handed to the bus (pres, sync answers, sync requests)
  std::uint64_t publish_failed = 0;    // refused by the bus client (e.g. its reconnect buffer is full)
  std::uint64_t received = 0;          // decoded messages from other nodes handed to the hub
  std::uint64_t dropped_invalid = 0;   // undecodable or of an unknown version (bus_bad_message)
  std::uint64_t dropped_echo = 0;      // our own messages coming back
  std::uint64_t dropped_overflow = 0;  // the hub's queue from the bus was full (bus_overflow)
  std::uint64_t dropped_slow_consumer = 0;  // dropped by the bus client's pending limits
  std::uint64_t reconnects = 0;
  bool connected = false;
};

class Broker {
 public:
  using Task = std::function<void()>;
  using Receive = std::function<void(BusMessage)>;

  virtual ~Broker() = default;
  // Starts delivery; `receive` runs on the home executor given at construction. On every
  // (re)connect the broker asks the other nodes for their live states (a sync message), so a
  // node that joins or comes back is resynchronised.
  virtual void start(Receive receive) = 0;
  // An accepted PRES, to every other node.
  virtual void publish_pres(const std::string& token) = 0;
  // A live state to one node (the answer to its sync message).
  virtual void send_pres_to(const std::string& node, const std::string& token) = 0;
  // Stops delivery; no `receive` runs after this returns (queued home tasks are dropped).
  virtual void stop() = 0;
  virtual const std::string& node_id() const = 0;
  virtual BrokerStats stats() const = 0;
};

}  // namespace presd
