// Outbound PRES to other instances' inboxes (PROTOCOL.md section 3): sent once, never retried,
// dropped once stale. One bounded queue per peer so a slow or dead peer delays nobody else:
// at most `max_in_flight` POSTs per peer at a time, and a circuit breaker that stops sending to a
// peer after `breaker_failures` consecutive failures for `breaker_open_s` (its PRES are dropped,
// and counted, instead of queueing behind timeouts). Once that time is over the breaker is
// half-open: the next POST probes the peer, a failure opens it again at once, a success closes
// it (both logged). Single-threaded like the hub; the HTTP POST is a callback so this stays
// plain C++.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>

#include "common/clock.h"

namespace presd {

struct OutboxConfig {
  std::size_t max_queue_per_peer = 256;
  std::size_t max_in_flight_per_peer = 4;
  std::size_t breaker_failures = 5;
  std::int64_t breaker_open_s = 30;
  std::size_t max_peers = 10'000;
};

// POST https://cl-o.<peer>/api/inbox {"token":...}; done(true) on a 2xx answer.
using InboxPoster = std::function<void(const std::string& peer, const std::string& body, std::function<void(bool ok, std::string detail)> done)>;

struct OutboxStats {
  std::uint64_t sent = 0, failed = 0, dropped_stale = 0, dropped_full = 0, dropped_breaker = 0;
};

class Outbox {
 public:
  Outbox(OutboxConfig config, const Clock& clock, InboxPoster poster);
  Outbox(const Outbox&) = delete;
  Outbox& operator=(const Outbox&) = delete;
  ~Outbox();

  // Queues the token for `peer`. Returns false (and counts why) when it is dropped at once:
  // already stale, the peer's queue is full, or the peer's breaker is open.
  // With relay_proof, the body is {"token":...,"relay":...} (an owner relaying to a member's home).
  bool send(const std::string& peer, const std::string& compact_token, std::int64_t expires_at_ms,
            const std::string& relay_proof = {});

  std::size_t queued() const;  // waiting, over all peers (not counting in-flight POSTs)
  const OutboxStats& stats() const { return stats_; }
  bool breaker_open(const std::string& peer) const;

 private:
  struct Item {
    std::string body;
    std::int64_t expires_at_ms;
  };
  struct Peer {
    std::deque<Item> queue;
    std::size_t in_flight = 0;
    std::size_t consecutive_failures = 0;
    std::int64_t open_until_ms = 0;
    bool tripped = false;  // the breaker opened and no POST has succeeded since
  };
  void pump(const std::string& peer);
  void on_done(const std::string& peer, bool ok, const std::string& detail);

  OutboxConfig config_;
  const Clock& clock_;
  InboxPoster poster_;
  std::unordered_map<std::string, Peer> peers_;
  OutboxStats stats_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace presd
