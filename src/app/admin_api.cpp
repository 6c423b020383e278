#include "app/admin_api.h"
#include "common/strict_json.h"

#include <openssl/crypto.h>
#include <spdlog/spdlog.h>

#include <boost/json.hpp>

#include "common/identifiers.h"
#include "common/time_format.h"
#include "hub/frames.h"
#include "membership/context_id.h"
#include "token/access_token.h"

namespace presd::app {
namespace json = boost::json;
using transport::HttpRequest;
using transport::HttpResponse;

HttpResponse json_response(int status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

HttpResponse error_response(const Error& error) {
  HttpResponse r = json_response(http_status(error.code), frames::http_error_body(error));
  if (error.code == ErrorCode::rate_limited)
    r.headers.emplace_back("Retry-After", std::to_string((error.retry_after_ms + 999) / 1000));
  if (error.code == ErrorCode::auth_required || error.code == ErrorCode::auth_invalid)
    r.headers.emplace_back("WWW-Authenticate", "Bearer");
  return r;
}

std::string bearer_token(const HttpRequest& req) {
  constexpr std::string_view prefix = "Bearer ";
  std::string_view h = req.authorization;
  if (h.size() <= prefix.size() || h.substr(0, prefix.size()) != prefix) return {};
  return std::string(h.substr(prefix.size()));
}

bool secret_equals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

namespace {

HttpResponse ok(int status, const json::value& data, const Clock& clock) {
  return json_response(status, frames::envelope(json::serialize(data), clock.now_s()));
}

HttpResponse fail(ErrorCode code, std::string message) { return error_response(Error(code, std::move(message))); }

Result<json::object> body_object(const HttpRequest& req) {
  StrictJson v = parse_strict_json(req.body);
  if (!v.ok() || !v.value.is_object())
    return Error(ErrorCode::bad_request, "body must be a JSON object without duplicate keys");
  return std::move(v.value.get_object());
}

std::optional<std::string> string_member(const json::object& o, std::string_view key) {
  auto it = o.find(key);
  if (it == o.end() || !it->value().is_string()) return std::nullopt;
  return std::string(it->value().get_string());
}

json::object context_json(const Context& c) {
  return {{"id", c.id}, {"owner", c.owner}, {"creator", c.creator}, {"createdAt", iso8601_utc(c.created_at_s)}};
}

json::object member_json(const Member& m) {
  return {{"idTag", m.id_tag}, {"role", to_string(m.role)}, {"deleted", m.deleted},
          {"updatedAt", iso8601_utc(m.updated_at_s)}};
}

// "a/b/c" -> first segment and the rest.
std::pair<std::string_view, std::string_view> split_first(std::string_view s) {
  auto slash = s.find('/');
  if (slash == std::string_view::npos) return {s, {}};
  return {s.substr(0, slash), s.substr(slash + 1)};
}

}  // namespace

AdminApi::AdminApi(Hub& hub, MembershipStore& store, KeyStore& key_store, KeyRing& keys, const Clock& clock,
                   std::string admin_token, std::string access_secret)
    : hub_(hub),
      store_(store),
      key_store_(key_store),
      keys_(keys),
      clock_(clock),
      admin_token_(std::move(admin_token)),
      access_secret_(std::move(access_secret)) {}

HttpResponse AdminApi::handle(const HttpRequest& req) {
  const std::string token = bearer_token(req);
  if (token.empty()) return fail(ErrorCode::auth_required, "admin bearer token required");
  if (!secret_equals(token, admin_token_)) return fail(ErrorCode::auth_invalid, "wrong admin token");

  std::string_view rest = std::string_view(req.path).substr(std::string_view("/api/admin").size());
  if (!rest.empty() && rest.front() == '/') rest.remove_prefix(1);
  auto [head, tail] = split_first(rest);
  if (head == "tenants") return tenants(req, tail);
  if (head == "contexts") return contexts(req, tail);
  if (head == "access-tokens" && tail.empty()) return access_tokens(req);
  return fail(ErrorCode::not_found, "no admin route " + req.path);
}

HttpResponse AdminApi::tenants(const HttpRequest& req, std::string_view rest) {
  if (rest.empty()) {
    if (req.method == "GET") {
      json::array out;
      for (const std::string& tag : keys_.tenants()) {
        json::array ids;
        if (auto* ks = keys_.keys(tag))
          for (const TenantKey& k : *ks) ids.emplace_back(k.key_id);
        out.emplace_back(json::object{{"idTag", tag}, {"keys", std::move(ids)}});
      }
      return ok(200, out, clock_);
    }
    if (req.method != "POST") return fail(ErrorCode::method_not_allowed, "GET or POST");
    auto body = body_object(req);
    if (!body) return error_response(body.error());
    auto tag = string_member(*body, "idTag");
    if (!tag || !is_canonical_id_tag(*tag)) return fail(ErrorCode::bad_request, "idTag must be a canonical id_tag");
    const bool existed = keys_.hosts(*tag);
    if (Status s = keys_.ensure_tenant(*tag, clock_.now_s()); !s) return error_response(s.error());
    if (!existed) spdlog::info("admin: tenant {} added", *tag);
    json::array ids;
    for (const TenantKey& k : *keys_.keys(*tag)) ids.emplace_back(k.key_id);
    return ok(existed ? 200 : 201, json::object{{"idTag", *tag}, {"keys", std::move(ids)}}, clock_);
  }
  auto [tag, sub] = split_first(rest);
  if (sub != "keys") return fail(ErrorCode::not_found, "no admin route " + req.path);
  if (req.method != "POST") return fail(ErrorCode::method_not_allowed, "POST");
  if (!keys_.hosts(tag)) return fail(ErrorCode::not_found, std::string(tag) + " is not hosted here");
  auto id = keys_.rotate(tag, clock_.now_s());
  if (!id) return error_response(id.error());
  spdlog::info("admin: tenant {} rotated to key {}", tag, *id);
  return ok(201, json::object{{"keyId", *id}}, clock_);
}

HttpResponse AdminApi::contexts(const HttpRequest& req, std::string_view rest) {
  if (rest.empty()) {
    if (req.method == "GET") {
      auto list = store_.list_contexts();
      if (!list) return error_response(list.error());
      json::array out;
      for (const Context& c : *list) out.emplace_back(context_json(c));
      return ok(200, out, clock_);
    }
    if (req.method != "POST") return fail(ErrorCode::method_not_allowed, "GET or POST");
    auto body = body_object(req);
    if (!body) return error_response(body.error());
    Context c;
    c.id = string_member(*body, "id").value_or(generate_context_id());
    c.owner = string_member(*body, "owner").value_or("");
    c.creator = string_member(*body, "creator").value_or(c.owner);
    c.created_at_s = clock_.now_s();
    if (!is_valid_context_id(c.id)) return fail(ErrorCode::bad_request, "id is not a valid context id");
    if (!is_canonical_id_tag(c.owner) || !is_canonical_id_tag(c.creator))
      return fail(ErrorCode::bad_request, "owner and creator must be canonical id_tags");
    if (Status s = store_.create_context(c); !s) return error_response(s.error());
    spdlog::info("admin: context {} created (owner {}, creator {})", c.id, c.owner, c.creator);
    return ok(201, context_json(c), clock_);
  }

  auto [ctx_id, sub] = split_first(rest);
  const std::string id(ctx_id);
  if (sub.empty()) {
    if (req.method == "DELETE") {
      if (Status s = store_.delete_context(id); !s) return error_response(s.error());
      spdlog::info("admin: context {} deleted", id);
      return ok(200, json::object{{"id", id}}, clock_);
    }
    if (req.method != "GET") return fail(ErrorCode::method_not_allowed, "GET or DELETE");
    auto c = store_.find_context(id);
    if (!c) return error_response(c.error());
    if (!c->has_value()) return fail(ErrorCode::context_unknown, "no context " + id);
    auto members = store_.list_members(id);
    if (!members) return error_response(members.error());
    json::object out = context_json(**c);
    json::array ms;
    for (const Member& m : *members) ms.emplace_back(member_json(m));
    out["members"] = std::move(ms);
    return ok(200, out, clock_);
  }

  auto [kind, tag_sv] = split_first(sub);
  const std::string tag(tag_sv);
  if (kind != "members" || tag.empty() || tag.find('/') != std::string::npos)
    return fail(ErrorCode::not_found, "no admin route " + req.path);
  if (!is_canonical_id_tag(tag)) return fail(ErrorCode::bad_request, "member must be a canonical id_tag");
  if (req.method == "PUT") {
    auto body = body_object(req);
    if (!body) return error_response(body.error());
    auto role = parse_role(string_member(*body, "role").value_or("member"));
    if (!role) return fail(ErrorCode::bad_request, "role must be observer, member, moderator or admin");
    if (Status s = store_.grant(id, tag, *role); !s) return error_response(s.error());
    spdlog::info("admin: {} granted {} in {}", tag, to_string(*role), id);
    auto m = store_.find_member(id, tag);
    if (!m || !m->has_value()) return fail(ErrorCode::internal, "member vanished after grant");
    return ok(200, member_json(**m), clock_);
  }
  if (req.method == "DELETE") {
    if (Status s = store_.revoke(id, tag); !s) return error_response(s.error());
    hub_.on_access_revoked(id, tag);
    spdlog::info("admin: {} revoked from {}", tag, id);
    return ok(200, json::object{{"id", id}, {"idTag", tag}, {"deleted", true}}, clock_);
  }
  return fail(ErrorCode::method_not_allowed, "PUT or DELETE");
}

HttpResponse AdminApi::access_tokens(const HttpRequest& req) {
  if (req.method != "POST") return fail(ErrorCode::method_not_allowed, "POST");
  auto body = body_object(req);
  if (!body) return error_response(body.error());
  auto user = string_member(*body, "user");
  if (!user || !is_canonical_id_tag(*user)) return fail(ErrorCode::bad_request, "user must be a canonical id_tag");
  const std::string tenant = string_member(*body, "tenant").value_or(*user);
  if (!is_canonical_id_tag(tenant)) return fail(ErrorCode::bad_request, "tenant must be a canonical id_tag");
  std::int64_t ttl = 86400;
  if (auto it = body->find("ttl"); it != body->end()) {
    if (!it->value().is_int64() || it->value().get_int64() <= 0 || it->value().get_int64() > 365 * 86400)
      return fail(ErrorCode::bad_request, "ttl must be an integer of seconds in 1..31536000");
    ttl = it->value().get_int64();
  }
  AccessClaims claims{tenant, *user, clock_.now_s() + ttl};
  return ok(201, json::object{{"token", issue_access_token(claims, access_secret_)},
                              {"expiresAt", iso8601_utc(claims.exp)}},
            clock_);
}

}  // namespace presd::app
