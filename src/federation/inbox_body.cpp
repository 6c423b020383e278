#include "federation/inbox_body.h"

#include "common/strict_json.h"

namespace presd {

Result<InboxBody> parse_inbox_body(std::string_view body) {
  StrictJson parsed = parse_strict_json(body);
  if (!parsed.ok() || !parsed.value.is_object())
    return Error(ErrorCode::bad_request, "body must be a JSON object without duplicate keys");
  const boost::json::object& obj = parsed.value.get_object();
  InboxBody out;
  auto token = obj.find("token");
  if (token == obj.end() || !token->value().is_string())
    return Error(ErrorCode::bad_request, "token (string) is required");
  out.token = std::string(token->value().get_string());
  if (auto relay = obj.find("relay"); relay != obj.end()) {
    if (!relay->value().is_string()) return Error(ErrorCode::bad_request, "relay must be a string");
    out.relay = std::string(relay->value().get_string());
  }
  return out;
}

}  // namespace presd
