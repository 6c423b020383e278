// Wires federation (src/federation) to the HTTPS client (src/transport) for the hub:
//  - RemoteKeySource: tokens of issuers this instance does not host verify with keys from
//    https://cl-o.<iss>/api/me (cached);
//  - PresForwarder: a PRES for a context owned elsewhere is POSTed once to the owner's inbox
//    through a per-peer bounded outbox.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "federation/address_policy.h"
#include "federation/outbox.h"
#include "federation/remote_keys.h"
#include "federation/resolver_override.h"
#include "hub/hub.h"

namespace boost::asio { class io_context; }
namespace presd::transport { class HttpsClient; }

namespace presd::app {

struct FederationOptions {
  std::string ca_file;               // trusted CAs for peers; empty = system store
  std::vector<std::string> resolve;  // "cl-o.alice.test=127.0.0.1:8443" (tests, split horizon)
  bool allow_loopback = false;       // SSRF guard: off in production
  bool allow_private = false;
  std::int64_t key_refetch_interval_s = 60;
  std::int64_t key_rejected_cache_s = 300;     // how long a bad /api/me answer is remembered
  std::int64_t key_unavailable_cache_s = 30;   // how long an unreachable key server is remembered
  std::int64_t fetch_timeout_ms = 5000;
  std::int64_t breaker_open_s = 30;            // a failing peer gets no PRES for this long
};

class Federation final : public RemoteKeySource, public PresForwarder {
 public:
  // Throws std::runtime_error on a bad option (an edge: start-up).
  Federation(boost::asio::io_context& io, const FederationOptions& options, const Clock& clock);
  ~Federation() override;

  void lookup(const std::string& iss, const std::string& key_id,
              std::function<void(Result<Es384PublicKey>)> done) override;
  bool invalidate_after_failed_verify(const std::string& iss) override;
  void forward(const std::string& owner, const std::string& compact_token, std::int64_t expires_at_ms) override;
  void relay(const std::string& home, const std::string& compact_token, const std::string& relay_proof,
             std::int64_t expires_at_ms) override;
  std::size_t outbox_queued() const { return outbox_->queued(); }
  void shutdown();  // cancels fetches and POSTs in flight

 private:
  AddressPolicy policy_;
  std::unique_ptr<transport::HttpsClient> https_;
  std::unique_ptr<RemoteKeys> keys_;
  std::unique_ptr<Outbox> outbox_;
};

}  // namespace presd::app
