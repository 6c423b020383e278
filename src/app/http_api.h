// Everything presd answers over HTTP and the WebSocket upgrade decision: routes, auth, per-IP
// limits and the admin API. Beast-free: the transport hands in parsed requests.
#pragma once

#include <functional>

#include <memory>
#include <string>

#include "common/clock.h"
#include "hub/bus_protocol.h"
#include "hub/hub.h"
#include "keys/key_ring.h"
#include "ratelimit/limits.h"
#include "store/store.h"
#include "token/access_token.h"
#include "app/admin_api.h"
#include "transport/http_types.h"

namespace presd::app {

// Source IPs that send bad signatures to the inbox are banned (each one cost an ES384 verify).
struct InboxBanConfig {
  std::size_t strikes = 3;            // 0 disables
  std::int64_t window_s = 3600;
  std::int64_t ban_s = 3600;
};

struct ApiSecrets {
  std::string access_secret;  // HS256 secret of client access tokens
  std::string admin_token;    // bearer token of /api/admin
};

class HttpApi final : public transport::Handler {
 public:
  HttpApi(Hub& hub, MembershipStore& store, KeyStore& key_store, KeyRing& keys, const Clock& clock,
          ApiSecrets secrets, InboxBanConfig ban = {});

  void on_http(const transport::HttpRequest& request, transport::Responder respond) override;
  WsAccept on_ws_upgrade(const transport::HttpRequest& request) override;
  void on_ws_open(const std::shared_ptr<transport::WsConnection>& conn, std::shared_ptr<void> state) override;
  void on_ws_message(const std::shared_ptr<transport::WsConnection>& conn, std::string_view text) override;
  void on_ws_close(const std::shared_ptr<transport::WsConnection>& conn) override;

  // Serves GET /metrics from this source (Prometheus text format) when set.
  void set_metrics(std::function<std::string()> scrape) { metrics_ = std::move(scrape); }
  // Sweeps per-IP limiter memory; call about once a second.
  void tick();
  // While draining, new work is refused with 503 and /readyz reports not ready.
  void set_draining() { draining_ = true; }

 private:
  void route(const transport::HttpRequest& req, transport::Responder& respond);
  void handle_actions(const transport::HttpRequest& req, transport::Responder respond);
  void handle_inbox(const transport::HttpRequest& req, std::int64_t now_ms, transport::Responder respond);
  transport::HttpResponse handle_members(const transport::HttpRequest& req, std::string_view context);
  Result<AccessClaims> authenticate(const transport::HttpRequest& req, bool allow_query) const;

  Hub& hub_;
  MembershipStore& store_;
  BusProtocol bus_;
  AdminApi admin_;
  KeyRing& keys_;
  const Clock& clock_;
  ApiSecrets secrets_;
  KeyedRateLimiter ip_limiter_;
  StrikeBan bad_signature_bans_;
  bool draining_ = false;
  std::function<std::string()> metrics_;
};

}  // namespace presd::app
