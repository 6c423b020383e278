#include "federation/inbox_body.h"

#include "common/fast_path.h"
#include "common/plain_json.h"
#include "common/strict_json.h"

namespace presd {

namespace {

// The fast path: a body in plain JSON (common/plain_json.h) with a string token, read without
// a DOM. False for anything else; the general path then reads it (and words any refusal).
bool read_plain_inbox_body(std::string_view body, InboxBody& out) {
  plain_json::Scanner s(body);
  std::string_view token, relay;
  bool has_token = false, has_relay = false;
  const bool plain = s.object([&](std::string_view key) {
    if (key == "token") return has_token = s.string(token);
    if (key == "relay") return has_relay = s.string(relay);
    return s.value(2);
  });
  if (!plain || !s.at_end() || !has_token) return false;
  out.token = token;
  if (has_relay) out.relay.emplace(relay);
  return true;
}

}  // namespace

Result<InboxBody> parse_inbox_body(std::string_view body) {
  if (InboxBody out; fast_path::enabled() && read_plain_inbox_body(body, out)) return out;
  StrictJson parsed = parse_strict_json(body);
  if (!parsed.ok() || !parsed.value.is_object())
    return Error(ErrorCode::bad_request, "body must be a JSON object without duplicate keys");
  const boost::json::object& obj = parsed.value.get_object();
  InboxBody out;
  auto token = obj.find("token");
  if (token == obj.end() || !token->value().is_string())
    return Error(ErrorCode::bad_request, "token (string) is required");
  out.unescaped = std::make_unique<const std::string>(token->value().get_string());
  out.token = *out.unescaped;
  if (auto relay = obj.find("relay"); relay != obj.end()) {
    if (!relay->value().is_string()) return Error(ErrorCode::bad_request, "relay must be a string");
    out.relay = std::string(relay->value().get_string());
  }
  return out;
}

}  // namespace presd
