#include "app/cluster.h"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <vector>
#include <spdlog/spdlog.h>

#include "broker/in_process_broker.h"
#include "broker/nats_broker.h"

namespace presd::app {

void add_cluster_options(CLI::App& cmd, ClusterOptions& o) {
  // A list, so PRESD_BROKER=a,b (split by the environment layer) and a TOML array work too;
  // libnats takes the servers of a NATS cluster as one comma-separated URL list.
  cmd.add_option_function<std::vector<std::string>>(
         "--broker",
         [&o](const std::vector<std::string>& urls) {
           o.broker.clear();
           for (const std::string& u : urls) o.broker += (o.broker.empty() ? "" : ",") + u;
         },
         "Cluster bus: nats://HOST:PORT (comma-separate a NATS cluster's servers); empty = this node alone")
      ->delimiter(',');
  cmd.add_option("--node-id", o.node_id, "This node's id on the bus, [A-Za-z0-9_-]{1,64} (default: random per start)");
  cmd.add_option("--broker-subject-prefix", o.subject_prefix, "NATS subject prefix; nodes that share it act as one")
      ->capture_default_str();
  cmd.add_option("--broker-creds", o.creds_file, "NATS user credentials file (JWT and NKey seed)");
  cmd.add_option("--broker-pending-msgs", o.pending_msgs,
                 "Bus messages a node may fall behind before dropping new ones (slow consumer)")
      ->capture_default_str()->check(CLI::Range(1, 10'000'000));
  cmd.add_option("--broker-pending-bytes", o.pending_bytes, "Bytes libnats may hold per subscription before dropping")
      ->capture_default_str()->check(CLI::Range(1024, 1 << 30));
  cmd.add_option("--broker-reconnect-ms", o.reconnect_ms, "Wait between NATS reconnect attempts")
      ->capture_default_str()->check(CLI::Range(10, 60'000));
}

std::unique_ptr<Broker> make_broker(const ClusterOptions& o, Inbound::Post home) {
  const std::string node = o.node_id.empty() ? random_node_id() : o.node_id;
  if (!is_valid_node_id(node)) throw std::runtime_error("--node-id must be 1-64 of [A-Za-z0-9_-]");
  if (o.broker.empty())
    return std::make_unique<InProcessBroker>(std::make_shared<InProcessBus>(), node,
                                             static_cast<std::size_t>(o.pending_msgs), std::move(home));
  for (std::size_t start = 0; start < o.broker.size();) {
    const std::size_t end = std::min(o.broker.find(',', start), o.broker.size());
    const std::string url = o.broker.substr(start, end - start);
    if (!url.starts_with("nats://") && !url.starts_with("tls://"))
      throw std::runtime_error("--broker: '" + url + "' is not a nats:// or tls:// URL");
    start = end + 1;
  }
  NatsBrokerConfig c;
  c.url = o.broker;
  c.node_id = node;
  c.subject_prefix = o.subject_prefix;
  c.creds_file = o.creds_file;
  c.pending_msgs = o.pending_msgs;
  c.pending_bytes = o.pending_bytes;
  c.reconnect_wait_ms = o.reconnect_ms;
  auto broker = NatsBroker::create(std::move(c), std::move(home));
  if (!broker) throw std::runtime_error("--broker: " + broker.error().message);
  spdlog::info("bus: node {} on NATS {} (subjects {}.*)", node, o.broker, o.subject_prefix);
  return std::move(broker).value();
}

}  // namespace presd::app
