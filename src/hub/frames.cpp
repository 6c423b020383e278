#include "hub/frames.h"

#include "common/time_format.h"

namespace presd::frames {

// boost::json::serialize's escaping: '"' and '\\' by a backslash, \b \t \n \f \r by name, the
// other control bytes as \u00XX, every other byte (UTF-8 included) as it is.
void append_quoted(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += '"';
  std::size_t run = 0;  // bytes that need no escape, appended in one go
  for (std::size_t i = 0; i < s.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out.append(s.data() + run, i - run);
    run = i + 1;
    out += '\\';
    switch (c) {
      case '"': out += '"'; break;
      case '\\': out += '\\'; break;
      case '\b': out += 'b'; break;
      case '\t': out += 't'; break;
      case '\n': out += 'n'; break;
      case '\f': out += 'f'; break;
      case '\r': out += 'r'; break;
      default:
        out += "u00";
        out += kHex[c >> 4];
        out += kHex[c & 15];
    }
  }
  out.append(s.data() + run, s.size() - run);
  out += '"';
}

std::string quote(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  append_quoted(out, s);
  return out;
}

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
// {"code":..,"message":..,"retryAfter"?:..}
void append_error_object(std::string& out, const Error& e) {
  out += "{\"code\":\"";
  out += to_string(e.code);
  out += "\",\"message\":";
  append_quoted(out, e.message.empty() ? describe(e.code) : std::string_view(e.message));
  if (e.code == ErrorCode::rate_limited) {
    out += ",\"retryAfter\":";
    out += std::to_string(e.retry_after_ms);
  }
  out += '}';
}

std::size_t error_object_size(const Error& e) {
  return 64 + to_string(e.code).size() + (e.message.empty() ? describe(e.code).size() : e.message.size());
}
}  // namespace

// Built in one buffer sized once: refusals are the most frequent frames under a flood.
std::string error_frame(std::string_view request_id_json, const Error& error) {
  std::string out;
  out.reserve(32 + request_id_json.size() + error_object_size(error));
  out += "{\"id\":";
  out += request_id_json;
  out += ",\"cmd\":\"error\",\"data\":";
  append_error_object(out, error);
  out += '}';
  return out;
}

std::string http_error_body(const Error& error) {
  std::string out;
  out.reserve(16 + error_object_size(error));
  out += "{\"error\":";
  append_error_object(out, error);
  out += '}';
  return out;
}

std::string envelope(std::string_view data_json, std::int64_t now_s) {
  return "{\"data\":" + std::string(data_json) + ",\"time\":\"" + iso8601_utc(now_s) + "\"}";
}

}  // namespace presd::frames
