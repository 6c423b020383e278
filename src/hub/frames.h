// JSON frames of /ws/bus and the HTTP error body, built as strings once per event so a
// broadcast shares one buffer across every recipient (docs/protocol.md).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "common/result.h"
#include "presence/presence_table.h"
#include "token/pres_token.h"

namespace presd::frames {

// The `data` object of an ACTION frame (reference shape plus expiresAt).
std::string action_data(const PresClaims& claims, std::int64_t expires_at_ms);
// {"id":"<id>","cmd":"ACTION","data":<data>}
std::string action_frame(std::string_view id, std::string_view data);
std::string expired_frame(std::string_view id, const PresenceState& state);
std::string unsubscribed_frame(std::string_view id, std::string_view context, std::string_view reason);

// Acks: {"id":<request id>,"cmd":"ack","data":<data>}. request_id is raw JSON (a string literal,
// a number or null) as the client sent it.
std::string ack(std::string_view request_id_json, std::string_view data_json);
std::string error_frame(std::string_view request_id_json, const Error& error);

// {"error":{"code":..,"message":..,"retryAfter"?:..}}
std::string http_error_body(const Error& error);
// {"data":<data>,"time":"<now>"}
std::string envelope(std::string_view data_json, std::int64_t now_s);

// A JSON string literal with escapes, exactly as boost::json::serialize writes it.
std::string quote(std::string_view s);
void append_quoted(std::string& out, std::string_view s);

}  // namespace presd::frames
