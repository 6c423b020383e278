#include "app/federation.h"

#include <spdlog/spdlog.h>

#include <stdexcept>

#include "federation/me_document.h"
#include "transport/https_client.h"

namespace presd::app {

Federation::Federation(boost::asio::io_context& io, const FederationOptions& o, const Clock& clock) {
  policy_.allow_loopback = o.allow_loopback;
  policy_.allow_private = o.allow_private;
  auto overrides = ResolverOverrides::parse(o.resolve);
  if (!overrides) throw std::runtime_error("--peer-resolve: " + overrides.error().message);

  transport::HttpsClientConfig cfg;
  cfg.ca_file = o.ca_file;
  for (const auto& [host, target] : overrides->entries()) cfg.resolve_override[host] = {target.ip, target.port};
  cfg.address_allowed = [policy = policy_](const std::string& ip) {
    const bool ok = policy.allows(ip);
    if (!ok) spdlog::warn("federation: refusing to connect to {} ({})", ip, "loopback/private/reserved address");
    return ok;
  };
  cfg.request_timeout = std::chrono::milliseconds(o.fetch_timeout_ms);
  cfg.max_response_bytes = kMaxMeDocumentBytes + 1;
  https_ = std::make_unique<transport::HttpsClient>(io, std::move(cfg));

  RemoteKeysConfig kc;
  kc.refetch_min_interval_s = o.key_refetch_interval_s;
  kc.negative_ttl_s = o.key_rejected_cache_s;
  kc.unavailable_ttl_s = o.key_unavailable_cache_s;
  auto* https = https_.get();
  keys_ = std::make_unique<RemoteKeys>(kc, clock, [https](const std::string& id_tag, std::function<void(KeyFetchResult)> done) {
    const std::string host = me_document_host(id_tag);
    https->request("GET", host, std::string(kMeDocumentPath), "", "",
                   [host, done = std::move(done)](std::variant<transport::HttpsResponse, transport::HttpsError> r) {
                     KeyFetchResult out;
                     if (auto* res = std::get_if<transport::HttpsResponse>(&r)) {
                       out.http_status = res->status;
                       out.body = std::move(res->body);
                       spdlog::debug("federation: GET https://{}/api/me -> {}", host, res->status);
                     } else {
                       const auto& err = std::get<transport::HttpsError>(r);
                       spdlog::info("federation: GET https://{}/api/me failed: {} {}", host, err.code, err.message);
                       out.transport_error = Error(ErrorCode::unavailable, host + ": " + err.code + ": " + err.message);
                     }
                     done(std::move(out));
                   });
  });

  OutboxConfig oc;
  oc.breaker_open_s = o.breaker_open_s;
  outbox_ = std::make_unique<Outbox>(oc, clock, [https](const std::string& peer, const std::string& body,
                                                                    std::function<void(bool, std::string)> done) {
    https->request("POST", me_document_host(peer), "/api/inbox", body, "application/json",
                   [done = std::move(done)](std::variant<transport::HttpsResponse, transport::HttpsError> r) {
                     if (auto* res = std::get_if<transport::HttpsResponse>(&r)) {
                       const bool ok = res->status >= 200 && res->status < 300;
                       return done(ok, ok ? "" : "HTTP " + std::to_string(res->status) + " " + res->body.substr(0, 200));
                     }
                     const auto& err = std::get<transport::HttpsError>(r);
                     done(false, err.code + ": " + err.message);
                   });
  });
}

void Federation::relay(const std::string& home, const std::string& compact_token, const std::string& relay_proof,
                       std::int64_t expires_at_ms) {
  if (!outbox_->send(home, compact_token, expires_at_ms, relay_proof))
    spdlog::debug("federation: relay to {} dropped (stale, queue full or peer failing)", home);
}

void Federation::forward(const std::string& owner, const std::string& compact_token, std::int64_t expires_at_ms) {
  if (!outbox_->send(owner, compact_token, expires_at_ms))
    spdlog::debug("federation: PRES for {} dropped (stale, queue full or peer failing)", owner);
}

Federation::~Federation() = default;

void Federation::lookup(const std::string& iss, const std::string& key_id,
                            std::function<void(Result<Es384PublicKey>)> done) {
  keys_->lookup(iss, key_id, std::move(done));
}

bool Federation::invalidate_after_failed_verify(const std::string& iss) {
  return keys_->invalidate_after_failed_verify(iss);
}

void Federation::shutdown() { https_->shutdown(); }

}  // namespace presd::app
