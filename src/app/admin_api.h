// /api/admin: tenants, key rotation, contexts, memberships and access tokens, behind the admin
// bearer token (docs/protocol.md, "Admin API"). Writes go to the store at once; a revoked member
// is also dropped from the context's live subscriptions.
#pragma once

#include <string>

#include "common/clock.h"
#include "hub/hub.h"
#include "keys/key_ring.h"
#include "store/store.h"
#include "transport/http_types.h"

namespace presd::app {

class AdminApi {
 public:
  AdminApi(Hub& hub, MembershipStore& store, KeyStore& key_store, KeyRing& keys, const Clock& clock,
           std::string admin_token, std::string access_secret);
  // req.path starts with /api/admin.
  transport::HttpResponse handle(const transport::HttpRequest& req);

 private:
  transport::HttpResponse tenants(const transport::HttpRequest& req, std::string_view rest);
  transport::HttpResponse contexts(const transport::HttpRequest& req, std::string_view rest);
  transport::HttpResponse access_tokens(const transport::HttpRequest& req);

  Hub& hub_;
  MembershipStore& store_;
  KeyStore& key_store_;
  KeyRing& keys_;
  const Clock& clock_;
  std::string admin_token_;
  std::string access_secret_;
};

// Shared response helpers.
transport::HttpResponse json_response(int status, std::string body);
transport::HttpResponse error_response(const Error& error);
// A bearer token from "Authorization: Bearer <t>", empty if absent.
std::string bearer_token(const transport::HttpRequest& req);
// Constant-time string comparison for secrets.
bool secret_equals(std::string_view a, std::string_view b);

}  // namespace presd::app
