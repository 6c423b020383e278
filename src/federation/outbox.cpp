#include "federation/outbox.h"

#include <boost/json/serialize.hpp>
#include <boost/json/string.hpp>
#include <spdlog/spdlog.h>

namespace presd {

Outbox::Outbox(OutboxConfig config, const Clock& clock, InboxPoster poster)
    : config_(config), clock_(clock), poster_(std::move(poster)) {}

Outbox::~Outbox() { *alive_ = false; }

bool Outbox::breaker_open(const std::string& peer) const {
  auto it = peers_.find(peer);
  return it != peers_.end() && it->second.open_until_ms > clock_.now_ms();
}

bool Outbox::send(const std::string& peer, const std::string& compact_token, std::int64_t expires_at_ms,
                  const std::string& relay_proof) {
  const std::int64_t now = clock_.now_ms();
  if (expires_at_ms <= now) {
    ++stats_.dropped_stale;
    return false;
  }
  auto it = peers_.find(peer);
  if (it == peers_.end()) {
    if (peers_.size() >= config_.max_peers) {
      // Forget idle peers (nothing queued or in flight, breaker closed) before refusing.
      std::erase_if(peers_, [now](const auto& kv) {
        return kv.second.queue.empty() && kv.second.in_flight == 0 && kv.second.open_until_ms <= now;
      });
      if (peers_.size() >= config_.max_peers) {
        ++stats_.dropped_full;
        return false;
      }
    }
    it = peers_.emplace(peer, Peer{}).first;
  }
  Peer& p = it->second;
  if (p.open_until_ms > now) {
    ++stats_.dropped_breaker;
    return false;
  }
  if (p.queue.size() >= config_.max_queue_per_peer) {
    ++stats_.dropped_full;
    return false;
  }
  std::string body = "{\"token\":" + boost::json::serialize(boost::json::string(compact_token));
  if (!relay_proof.empty()) body += ",\"relay\":" + boost::json::serialize(boost::json::string(relay_proof));
  body += '}';
  p.queue.push_back(Item{std::move(body), expires_at_ms});
  pump(peer);
  return true;
}

void Outbox::pump(const std::string& peer) {
  Peer& p = peers_.at(peer);
  while (p.in_flight < config_.max_in_flight_per_peer && !p.queue.empty()) {
    Item item = std::move(p.queue.front());
    p.queue.pop_front();
    if (item.expires_at_ms <= clock_.now_ms()) {  // went stale while queued: nobody wants it now
      ++stats_.dropped_stale;
      continue;
    }
    ++p.in_flight;
    poster_(peer, item.body, [this, alive = alive_, peer](bool ok, std::string detail) {
      if (*alive) on_done(peer, ok, detail);
    });
  }
}

void Outbox::on_done(const std::string& peer, bool ok, const std::string& detail) {
  auto it = peers_.find(peer);
  if (it == peers_.end()) return;
  Peer& p = it->second;
  --p.in_flight;
  if (ok) {
    ++stats_.sent;
    p.consecutive_failures = 0;
    if (p.tripped) {
      p.tripped = false;
      spdlog::warn("federation: {} answers again; sending to it resumed", peer);
    }
  } else {
    ++stats_.failed;
    spdlog::info("federation: PRES to {} failed: {}", peer, detail);
    const std::int64_t now = clock_.now_ms();
    // POSTs started before the breaker opened may still fail while it is open: no new trip.
    const bool open = p.open_until_ms > now;
    // Half-open (the open time is over, nothing succeeded since): one failure is enough.
    const bool trip = !open && (p.tripped || ++p.consecutive_failures >= config_.breaker_failures);
    if (trip) {
      p.open_until_ms = now + config_.breaker_open_s * 1000;
      p.consecutive_failures = 0;
      p.tripped = true;
      stats_.dropped_breaker += p.queue.size();
      p.queue.clear();
      spdlog::warn("federation: {} is failing ({}); not sending to it for {} s", peer, detail, config_.breaker_open_s);
      return;
    }
  }
  pump(peer);
}

std::size_t Outbox::queued() const {
  std::size_t n = 0;
  for (const auto& [peer, p] : peers_) n += p.queue.size();
  return n;
}

}  // namespace presd
