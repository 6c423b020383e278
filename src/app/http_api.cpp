#include "app/http_api.h"

#include <spdlog/spdlog.h>

#include <boost/json.hpp>

#include "common/identifiers.h"
#include "common/strict_json.h"
#include "app/demo_assets.h"
#include "common/time_format.h"
#include "federation/inbox_body.h"
#include "membership/access.h"
#include "hub/frames.h"
#include "hub/pres_request.h"

namespace presd::app {
namespace json = boost::json;
using transport::HttpRequest;
using transport::HttpResponse;
using transport::Responder;

namespace {

struct WsUser {
  std::string user;
};

// "cl-o.alice.example.net" -> "alice.example.net"; empty for other hosts (plain IPs, localhost).
std::string_view tenant_of_host(std::string_view host) {
  constexpr std::string_view prefix = "cl-o.";
  return host.substr(0, prefix.size()) == prefix ? host.substr(prefix.size()) : std::string_view{};
}

std::string action_json(const Accepted& a) {
  json::object data{{"token", a.token},
                    {"actionId", nullptr},
                    {"type", "PRES"},
                    {"subType", a.claims.subtype},
                    {"subject", a.claims.sub},
                    {"issuer", json::object{{"idTag", a.claims.iss}}},
                    {"createdAt", iso8601_utc(a.claims.iat)},
                    {"expiresAt", iso8601_utc(a.expires_at_ms / 1000)}};
  if (a.claims.aud) data["audience"] = json::object{{"idTag", *a.claims.aud}};
  if (a.superseded) data["status"] = "superseded";
  return json::serialize(data);
}

}  // namespace

HttpApi::HttpApi(Hub& hub, MembershipStore& store, KeyStore& key_store, KeyRing& keys, const Clock& clock,
                 ApiSecrets secrets, InboxBanConfig ban)
    : hub_(hub),
      store_(store),
      bus_(hub),
      admin_(hub, store, key_store, keys, clock, secrets.admin_token, secrets.access_secret),
      keys_(keys),
      clock_(clock),
      secrets_(std::move(secrets)),
      ip_limiter_(hub.config().rates.ip_rate_per_s, hub.config().rates.ip_burst),
      bad_signature_bans_(ban.strikes, ban.window_s * 1000, ban.ban_s * 1000) {}

Result<AccessClaims> HttpApi::authenticate(const HttpRequest& req, bool allow_query) const {
  std::string token = bearer_token(req);
  if (token.empty() && allow_query) token = req.query_param("token");
  if (token.empty()) return Error(ErrorCode::auth_required, "access token required");
  auto claims = verify_access_token(token, secrets_.access_secret, clock_.now_s());
  if (!claims) return claims;
  // Connecting to cl-o.<tenant> with another tenant's token is refused.
  if (auto host_tenant = tenant_of_host(req.host); !host_tenant.empty() && host_tenant != claims->iss)
    return Error(ErrorCode::auth_invalid, "token is for another tenant");
  return claims;
}

void HttpApi::on_http(const HttpRequest& req, Responder respond) { route(req, respond); }

void HttpApi::route(const HttpRequest& req, Responder& respond) {
  const std::string_view path = req.path;  // compared with literals: no strlen per comparison
  if (path == "/healthz") return respond(json_response(200, "{\"status\":\"ok\"}"));
  if (path == "/readyz")
    return respond(draining_ ? json_response(503, "{\"status\":\"draining\"}") : json_response(200, "{\"status\":\"ready\"}"));

  if (path == "/metrics" && metrics_) {
    if (req.method != "GET") return respond(error_response(Error(ErrorCode::method_not_allowed, "GET")));
    return respond(HttpResponse{200, "text/plain; version=0.0.4; charset=utf-8", metrics_(), {}});
  }
  if (path == "/api/me") {
    if (req.method != "GET") return respond(error_response(Error(ErrorCode::method_not_allowed, "GET")));
    const std::string_view tenant = tenant_of_host(req.host);
    auto me = tenant.empty() ? std::nullopt : keys_.me_json(tenant, clock_.now_s());
    if (!me) return respond(error_response(Error(ErrorCode::not_found, "no tenant for host " + req.host)));
    return respond(json_response(200, std::move(*me)));
  }
  if (path.starts_with("/api/admin")) return respond(admin_.handle(req));
  if (path == "/demo" || path == "/demo/" || path.starts_with("/demo/")) {
    const std::string_view want = path == "/demo/" ? std::string_view("/demo") : std::string_view(path);
    for (const DemoAsset& a : demo_assets()) {
      if (a.path != want) continue;
      if (req.method != "GET") return respond(error_response(Error(ErrorCode::method_not_allowed, "GET")));
      HttpResponse r{200, std::string(a.content_type) + "; charset=utf-8", std::string(a.body), {}};
      r.headers.emplace_back("Cache-Control", "no-cache");
      return respond(std::move(r));
    }
  }
  if (constexpr std::string_view prefix = "/api/contexts/"; path.starts_with(prefix) && path.ends_with("/members")) {
    if (req.method != "GET") return respond(error_response(Error(ErrorCode::method_not_allowed, "GET")));
    const std::string_view rest = std::string_view(path).substr(prefix.size());
    return respond(handle_members(req, rest.substr(0, rest.size() - std::string_view("/members").size())));
  }

  if (draining_) return respond(error_response(Error(ErrorCode::unavailable, "server is shutting down")));
  if (path == "/api/actions" || path == "/api/inbox") {
    if (req.method != "POST") return respond(error_response(Error(ErrorCode::method_not_allowed, "POST")));
    const std::int64_t now_ms = clock_.now_ms();
    if (std::int64_t wait = ip_limiter_.try_take(req.remote_ip, now_ms); wait > 0)
      return respond(error_response(Error(ErrorCode::rate_limited, "too many requests from " + req.remote_ip, wait)));
    if (path == "/api/actions") return handle_actions(req, std::move(respond));
    return handle_inbox(req, now_ms, std::move(respond));
  }
  respond(error_response(Error(ErrorCode::not_found, "no route " + req.method + " " + req.path)));
}

void HttpApi::handle_actions(const HttpRequest& req, Responder respond) {
  auto claims = authenticate(req, false);
  if (!claims) return respond(error_response(claims.error()));
  StrictJson parsed = parse_strict_json(req.body);
  if (!parsed.ok() || !parsed.value.is_object())
    return respond(error_response(Error(ErrorCode::bad_request, "body must be a JSON object without duplicate keys")));
  const json::value& body = parsed.value;
  const json::object& obj = body.get_object();
  auto type = obj.find("type");
  if (type == obj.end() || !type->value().is_string() || type->value().get_string() != "PRES")
    return respond(error_response(Error(ErrorCode::bad_request, "presd serves type PRES only")));
  auto request = pres_request_from_json(obj);
  if (!request) return respond(error_response(request.error()));
  hub_.submit_request(claims->sub, std::move(*request), [this, respond = std::move(respond)](Result<Accepted> r) {
    if (!r) return respond(error_response(r.error()));
    respond(json_response(r->superseded ? 200 : 201, frames::envelope(action_json(*r), clock_.now_s())));
  });
}

void HttpApi::handle_inbox(const HttpRequest& req, std::int64_t now_ms, Responder respond) {
  auto body = parse_inbox_body(req.body);
  if (!body) return respond(error_response(body.error()));
  const std::string& ip = req.remote_ip;
  if (std::int64_t left = bad_signature_bans_.banned_for(ip, now_ms); left > 0)
    return respond(error_response(Error(ErrorCode::rate_limited, ip + " is banned after repeated bad signatures", left)));
  // The cheap checks answer at once; only an admitted token needs the callback.
  auto token = hub_.admit_token(body->token);
  if (!token) {
    spdlog::debug("inbox from {} refused: {}", ip, to_string(token.code()));
    return respond(error_response(token.error()));
  }
  hub_.submit_admitted(std::move(token).value(), [this, ip, respond = std::move(respond)](Result<Accepted> r) {
    if (!r) {
      spdlog::debug("inbox from {} refused: {}", ip, to_string(r.code()));
      if (r.code() == ErrorCode::token_bad_signature && bad_signature_bans_.strike(ip, clock_.now_ms()))
        spdlog::warn("inbox: {} banned for repeated bad signatures", ip);
      return respond(error_response(r.error()));
    }
    const char* status = r->superseded ? "{\"status\":\"superseded\"}" : "{\"status\":\"accepted\"}";
    respond(json_response(r->superseded ? 200 : 201, frames::envelope(status, clock_.now_s())));
  }, Origin::peer, std::move(body->relay));
}

// The member list of a context, for clients (the demo page) of users who may subscribe to it.
HttpResponse HttpApi::handle_members(const HttpRequest& req, std::string_view context_id) {
  auto claims = authenticate(req, false);
  if (!claims) return error_response(claims.error());
  if (!is_valid_context_id(context_id)) return error_response(Error(ErrorCode::bad_request, "not a valid context id"));
  AccessChecker access(store_);
  if (Status s = access.check(context_id, claims->sub, Access::subscribe); !s) return error_response(s.error());
  auto ctx = access.context(context_id);
  if (!ctx) return error_response(ctx.error());
  auto members = store_.list_members(context_id);
  if (!members) return error_response(members.error());
  json::array list;
  bool creator_listed = false;
  for (const Member& m : *members) {
    if (m.deleted) continue;
    creator_listed = creator_listed || m.id_tag == ctx->creator;
    list.push_back(json::object{{"idTag", m.id_tag}, {"role", to_string(m.role)}});
  }
  if (!creator_listed) list.insert(list.begin(), json::object{{"idTag", ctx->creator}, {"role", "admin"}});
  json::object data{{"id", ctx->id}, {"owner", ctx->owner}, {"creator", ctx->creator}, {"members", std::move(list)}};
  return json_response(200, frames::envelope(json::serialize(data), clock_.now_s()));
}

HttpApi::WsAccept HttpApi::on_ws_upgrade(const HttpRequest& req) {
  WsAccept out;
  if (req.path != "/ws/bus") {
    out.close_code = 4404;
    out.close_reason = "not_found";
    return out;
  }
  if (draining_) {
    out.close_code = 1001;
    out.close_reason = "going away";
    return out;
  }
  auto claims = authenticate(req, true);
  if (!claims) {
    out.close_code = 4401;
    out.close_reason = std::string(to_string(claims.code()));
    spdlog::debug("ws refused from {}: {}", req.remote_ip, claims.error().message);
    return out;
  }
  out.accept = true;
  out.state = std::make_shared<WsUser>(WsUser{claims->sub});
  return out;
}

void HttpApi::on_ws_open(const std::shared_ptr<transport::WsConnection>& conn, std::shared_ptr<void> state) {
  auto user = std::static_pointer_cast<WsUser>(state);
  spdlog::debug("ws {} open for {} from {}", conn->id(), user->user, conn->remote_ip());
  hub_.attach(conn, user->user);
}

void HttpApi::on_ws_message(const std::shared_ptr<transport::WsConnection>& conn, std::string_view text) {
  bus_.on_message(conn, text);
}

void HttpApi::on_ws_close(const std::shared_ptr<transport::WsConnection>& conn) {
  spdlog::debug("ws {} closed", conn->id());
  hub_.detach(*conn);
}

void HttpApi::tick() {
  ip_limiter_.sweep(clock_.now_ms());
  bad_signature_bans_.sweep(clock_.now_ms());
}

}  // namespace presd::app
