#include "hub/frames.h"

#include <boost/json/serialize.hpp>
#include <boost/json/string.hpp>

#include "common/time_format.h"

namespace presd::frames {

std::string quote(std::string_view s) { return boost::json::serialize(boost::json::string_view(s.data(), s.size())); }

namespace {

std::string iso_ms(std::int64_t ms) { return iso8601_utc(ms / 1000); }

std::string id_tag_object(const std::optional<std::string>& tag) {
  return tag ? "{\"idTag\":" + quote(*tag) + "}" : "null";
}

}  // namespace

std::string action_data(const PresClaims& c, std::int64_t expires_at_ms) {
  std::string out;
  out.reserve(256 + (c.content_json ? c.content_json->size() : 0));
  out += "{\"actionId\":null,\"type\":\"PRES\",\"subType\":";
  out += quote(c.subtype);
  out += ",\"issuer\":{\"idTag\":";
  out += quote(c.iss);
  out += "},\"audience\":";
  out += id_tag_object(c.aud);
  out += ",\"content\":";
  out += c.content_json ? *c.content_json : "null";
  out += ",\"subject\":";
  out += quote(c.sub);
  out += ",\"createdAt\":\"";
  out += iso8601_utc(c.iat);
  out += "\",\"expiresAt\":\"";
  out += iso_ms(expires_at_ms);
  out += "\"}";
  return out;
}

std::string action_frame(std::string_view id, std::string_view data) {
  std::string out;
  out.reserve(data.size() + id.size() + 40);
  out += "{\"id\":";
  out += quote(id);
  out += ",\"cmd\":\"ACTION\",\"data\":";
  out += data;
  out += '}';
  return out;
}

std::string expired_frame(std::string_view id, const PresenceState& s) {
  return "{\"id\":" + quote(id) + ",\"cmd\":\"PRES_EXPIRED\",\"data\":{\"type\":\"PRES\",\"subType\":" +
         quote(s.subtype) + ",\"issuer\":{\"idTag\":" + quote(s.issuer) + "},\"audience\":" +
         id_tag_object(s.audience) + ",\"subject\":" + quote(s.context) + ",\"expiredAt\":\"" +
         iso_ms(s.expires_at_ms) + "\"}}";
}

std::string unsubscribed_frame(std::string_view id, std::string_view context, std::string_view reason) {
  return "{\"id\":" + quote(id) + ",\"cmd\":\"UNSUBSCRIBED\",\"data\":{\"context\":" + quote(context) +
         ",\"reason\":" + quote(reason) + "}}";
}

std::string ack(std::string_view request_id_json, std::string_view data_json) {
  std::string out;
  out.reserve(request_id_json.size() + data_json.size() + 32);
  out += "{\"id\":";
  out += request_id_json;
  out += ",\"cmd\":\"ack\",\"data\":";
  out += data_json;
  out += '}';
  return out;
}

namespace {
std::string error_object(const Error& e) {
  std::string out = "{\"code\":\"" + std::string(to_string(e.code)) + "\",\"message\":" +
                    quote(e.message.empty() ? describe(e.code) : std::string_view(e.message));
  if (e.code == ErrorCode::rate_limited) out += ",\"retryAfter\":" + std::to_string(e.retry_after_ms);
  out += '}';
  return out;
}
}  // namespace

std::string error_frame(std::string_view request_id_json, const Error& error) {
  return "{\"id\":" + std::string(request_id_json) + ",\"cmd\":\"error\",\"data\":" + error_object(error) + "}";
}

std::string http_error_body(const Error& error) { return "{\"error\":" + error_object(error) + "}"; }

std::string envelope(std::string_view data_json, std::int64_t now_s) {
  return "{\"data\":" + std::string(data_json) + ",\"time\":\"" + iso8601_utc(now_s) + "\"}";
}

}  // namespace presd::frames
