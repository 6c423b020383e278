// `serve` options of the cluster bus (docs/cluster.md) and the broker they select: the
// in-process one (a single node, the default) or NATS (`--broker nats://...`).
#pragma once

#include <memory>
#include <string>

#include "broker/broker.h"
#include "broker/inbound.h"

namespace CLI { class App; }

namespace presd::app {

struct ClusterOptions {
  std::string broker;   // empty: in-process (single node); nats://host:port[,nats://...]
  std::string node_id;  // empty: random
  std::string subject_prefix = "presd";
  std::string creds_file;
  int pending_msgs = 65536;
  int pending_bytes = 64 * 1024 * 1024;
  int reconnect_ms = 250;
};

void add_cluster_options(CLI::App& serve, ClusterOptions& o);
// Throws std::runtime_error on a bad option (start-up).
std::unique_ptr<Broker> make_broker(const ClusterOptions& o, Inbound::Post home);

}  // namespace presd::app
