#include "broker/nats_broker.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <vector>

namespace presd {

namespace {
bool worth_logging(std::uint64_t n) { return n <= 10 || n % 1000 == 0; }

Error nats_error(const std::string& what, natsStatus s) {
  return Error(ErrorCode::unavailable, what + ": " + natsStatus_GetText(s));
}

bool valid_subject_prefix(const std::string& p) {
  if (p.empty() || p.size() > 128 || p.front() == '.' || p.back() == '.') return false;
  for (char c : p)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
          c == '.'))
      return false;
  return p.find("..") == std::string::npos;
}
}  // namespace

NatsBroker::NatsBroker(NatsBrokerConfig config, Inbound::Post home)
    : config_(std::move(config)),
      all_subject_(config_.subject_prefix + ".all"),
      own_subject_(config_.subject_prefix + ".node." + config_.node_id),
      inbound_(config_.node_id, static_cast<std::size_t>(config_.pending_msgs), std::move(home)) {}

Result<std::unique_ptr<NatsBroker>> NatsBroker::create(NatsBrokerConfig config, Inbound::Post home) {
  if (!is_valid_node_id(config.node_id))
    return Error(ErrorCode::bad_request, "node id '" + config.node_id + "' must be 1-64 of [A-Za-z0-9_-]");
  if (!valid_subject_prefix(config.subject_prefix))
    return Error(ErrorCode::bad_request, "subject prefix '" + config.subject_prefix + "' must be dot-separated [A-Za-z0-9_-] tokens");
  if (config.pending_msgs < 1 || config.pending_bytes < 1024)
    return Error(ErrorCode::bad_request, "pending limits must be at least 1 message and 1024 bytes");
  std::unique_ptr<NatsBroker> b(new NatsBroker(std::move(config), std::move(home)));
  const NatsBrokerConfig& c = b->config_;
  natsOptions* o = nullptr;
  if (natsStatus s = natsOptions_Create(&o); s != NATS_OK) return nats_error("NATS options", s);
  b->opts_ = o;
  const std::string name = "presd " + c.node_id;
  // The servers of a NATS cluster, comma-separated: each is tried in turn, at start and on
  // every reconnect.
  std::vector<std::string> urls;
  for (std::size_t start = 0; start <= c.url.size();) {
    const std::size_t end = std::min(c.url.find(',', start), c.url.size());
    if (end > start) urls.push_back(c.url.substr(start, end - start));
    start = end + 1;
  }
  if (urls.empty()) return Error(ErrorCode::bad_request, "no NATS server URL");
  std::vector<const char*> servers;
  for (const std::string& u : urls) servers.push_back(u.c_str());
  natsStatus s = natsOptions_SetServers(o, servers.data(), static_cast<int>(servers.size()));
  if (s == NATS_OK) s = natsOptions_SetName(o, name.c_str());
  if (s == NATS_OK) s = natsOptions_SetNoEcho(o, true);
  if (s == NATS_OK) s = natsOptions_SetAllowReconnect(o, true);
  if (s == NATS_OK) s = natsOptions_SetMaxReconnect(o, -1);
  if (s == NATS_OK) s = natsOptions_SetReconnectWait(o, c.reconnect_wait_ms);
  if (s == NATS_OK) s = natsOptions_SetReconnectBufSize(o, c.reconnect_buffer_bytes);
  if (s == NATS_OK) s = natsOptions_SetRetryOnFailedConnect(o, true, &NatsBroker::on_connected_cb, b.get());
  if (s == NATS_OK) s = natsOptions_SetReconnectedCB(o, &NatsBroker::on_reconnected_cb, b.get());
  if (s == NATS_OK) s = natsOptions_SetDisconnectedCB(o, &NatsBroker::on_disconnected_cb, b.get());
  if (s == NATS_OK) s = natsOptions_SetClosedCB(o, &NatsBroker::on_closed_cb, b.get());
  if (s == NATS_OK) s = natsOptions_SetErrorHandler(o, &NatsBroker::on_error_cb, b.get());
  if (s == NATS_OK && !c.creds_file.empty()) s = natsOptions_SetUserCredentialsFromFiles(o, c.creds_file.c_str(), nullptr);
  if (s != NATS_OK) return nats_error("NATS options for " + c.url, s);
  return b;
}

NatsBroker::~NatsBroker() {
  stop();
  if (sub_all_) natsSubscription_Destroy(sub_all_);
  if (sub_own_) natsSubscription_Destroy(sub_own_);
  if (conn_) natsConnection_Destroy(conn_);
  if (opts_) natsOptions_Destroy(opts_);
}

void NatsBroker::start(Receive receive) {
  inbound_.start(std::move(receive));
  natsStatus s = natsConnection_Connect(&conn_, opts_);
  if (s == NATS_NOT_YET_CONNECTED) {
    spdlog::warn("bus: NATS at {} is not reachable yet; serving locally and retrying every {} ms", config_.url,
                 config_.reconnect_wait_ms);
  } else if (s != NATS_OK) {
    throw std::runtime_error("connecting to NATS at " + config_.url + ": " + natsStatus_GetText(s));
  }
  for (auto [sub, subject] : {std::pair{&sub_all_, &all_subject_}, std::pair{&sub_own_, &own_subject_}}) {
    s = natsConnection_Subscribe(sub, conn_, subject->c_str(), &NatsBroker::on_message, this);
    if (s == NATS_OK) s = natsSubscription_SetPendingLimits(*sub, config_.pending_msgs, config_.pending_bytes);
    if (s == NATS_OK) s = natsSubscription_SetOnCompleteCB(*sub, &NatsBroker::on_sub_complete_cb, this);
    if (s != NATS_OK) throw std::runtime_error("subscribing to " + *subject + ": " + natsStatus_GetText(s));
  }
  bool resync = false;
  {
    std::lock_guard lock(mu_);
    subscribed_ = true;
    if (natsConnection_Status(conn_) == NATS_CONN_STATUS_CONNECTED) connected_once_ = true;
    resync = connected_once_;
  }
  if (resync) {
    // One round trip: our subscriptions are registered on the server before we announce
    // ourselves, so answers and messages from nodes that start after us are not missed.
    if (natsStatus f = natsConnection_FlushTimeout(conn_, 5000); f != NATS_OK)
      spdlog::warn("bus: flushing the subscriptions to NATS: {}", natsStatus_GetText(f));
    connected_ = true;
    spdlog::info("bus: node {} connected to NATS at {}", node_id(), config_.url);
    publish(all_subject_, BusMessage{BusMessage::Kind::sync, node_id(), {}});
  }
}

void NatsBroker::on_connected() {
  connected_ = true;
  bool resync = false;
  {
    std::lock_guard lock(mu_);
    connected_once_ = true;
    resync = subscribed_ && !stopped_;
  }
  // After a reconnect libnats has already re-sent our subscriptions, so answers reach us.
  if (resync) publish(all_subject_, BusMessage{BusMessage::Kind::sync, node_id(), {}});
}

void NatsBroker::stop() {
  {
    std::lock_guard lock(mu_);
    if (stopped_) return;
    stopped_ = true;
  }
  inbound_.stop();
  if (!conn_) return;
  natsConnection_Close(conn_);
  // libnats calls back on its own threads: wait until the last callback that may touch `this`
  // (the closed callback, each subscription's completion) has run.
  std::unique_lock lock(mu_);
  const int subs = (sub_all_ ? 1 : 0) + (sub_own_ ? 1 : 0);
  if (!cv_.wait_for(lock, std::chrono::seconds(10), [&] { return closed_ && subs_complete_ >= subs; }))
    spdlog::error("bus: NATS callbacks did not finish within 10 s of closing");
}

void NatsBroker::publish(const std::string& subject, const BusMessage& m) {
  const std::string payload = encode_bus_message(m);
  const natsStatus s = natsConnection_Publish(conn_, subject.c_str(), payload.data(), static_cast<int>(payload.size()));
  if (s == NATS_OK) {
    ++published_;
    return;
  }
  const auto n = ++publish_failed_;
  if (worth_logging(n)) spdlog::warn("bus: publish to {} failed ({} so far): {}", subject, n, natsStatus_GetText(s));
}

void NatsBroker::publish_pres(const std::string& token) {
  if (conn_) publish(all_subject_, BusMessage{BusMessage::Kind::pres, node_id(), token});
}

void NatsBroker::send_pres_to(const std::string& node, const std::string& token) {
  if (conn_ && is_valid_node_id(node))
    publish(config_.subject_prefix + ".node." + node, BusMessage{BusMessage::Kind::pres, node_id(), token});
}

BrokerStats NatsBroker::stats() const {
  BrokerStats s;
  s.published = published_;
  s.publish_failed = publish_failed_;
  s.reconnects = reconnects_;
  s.connected = connected_;
  inbound_.add_to(s);
  for (natsSubscription* sub : {sub_all_, sub_own_}) {
    int64_t dropped = 0;
    if (sub && natsSubscription_GetDropped(sub, &dropped) == NATS_OK) s.dropped_slow_consumer += static_cast<std::uint64_t>(dropped);
  }
  return s;
}

// ---- libnats callbacks (libnats threads: nothing here touches the hub) ----------------------

void NatsBroker::on_message(natsConnection*, natsSubscription*, natsMsg* msg, void* self) {
  auto* b = static_cast<NatsBroker*>(self);
  b->inbound_.on_payload(std::string_view(natsMsg_GetData(msg), static_cast<std::size_t>(natsMsg_GetDataLength(msg))));
  natsMsg_Destroy(msg);
}

void NatsBroker::on_connected_cb(natsConnection*, void* self) {
  auto* b = static_cast<NatsBroker*>(self);
  spdlog::info("bus: node {} connected to NATS at {}", b->node_id(), b->config_.url);
  b->on_connected();
}

void NatsBroker::on_reconnected_cb(natsConnection*, void* self) {
  auto* b = static_cast<NatsBroker*>(self);
  ++b->reconnects_;
  spdlog::info("bus: node {} reconnected to NATS; asking the other nodes for a resync", b->node_id());
  b->on_connected();
}

void NatsBroker::on_disconnected_cb(natsConnection*, void* self) {
  auto* b = static_cast<NatsBroker*>(self);
  if (!b->connected_.exchange(false)) return;  // also called for each failed reconnect attempt
  {
    std::lock_guard lock(b->mu_);
    if (b->stopped_) return;  // our own close
  }
  spdlog::warn("bus: node {} lost NATS; local delivery continues, reconnecting every {} ms", b->node_id(),
               b->config_.reconnect_wait_ms);
}

void NatsBroker::on_closed_cb(natsConnection*, void* self) {
  auto* b = static_cast<NatsBroker*>(self);
  b->connected_ = false;
  std::lock_guard lock(b->mu_);
  b->closed_ = true;
  b->cv_.notify_all();
}

void NatsBroker::on_error_cb(natsConnection*, natsSubscription*, natsStatus status, void* self) {
  auto* b = static_cast<NatsBroker*>(self);
  if (status == NATS_SLOW_CONSUMER) {
    const auto n = ++b->slow_consumer_events_;
    if (worth_logging(n))
      spdlog::warn("bus: node {} is a slow consumer: libnats dropped messages over the pending limits ({} msgs, {} bytes)",
                   b->node_id(), b->config_.pending_msgs, b->config_.pending_bytes);
    return;
  }
  spdlog::warn("bus: NATS error: {}", natsStatus_GetText(status));
}

void NatsBroker::on_sub_complete_cb(void* self) {
  auto* b = static_cast<NatsBroker*>(self);
  std::lock_guard lock(b->mu_);
  ++b->subs_complete_;
  b->cv_.notify_all();
}

}  // namespace presd
