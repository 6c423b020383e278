#include "hub/bus_protocol.h"

#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <optional>

#include "common/fast_path.h"
#include "common/plain_json.h"
#include "common/strict_json.h"
#include "common/time_format.h"
#include "hub/frames.h"
#include "hub/pres_request.h"

namespace presd {
namespace json = boost::json;

namespace {

using ConnPtr = std::shared_ptr<transport::WsConnection>;

void reply(const ConnPtr& conn, std::string frame) {
  conn->send(std::make_shared<const std::string>(std::move(frame)));
}

void fail(const ConnPtr& conn, std::string_view id, const Error& error) {
  reply(conn, frames::error_frame(id, error));
}

std::optional<std::string_view> string_field(const json::object& o, std::string_view key) {
  auto it = o.find(key);
  if (it == o.end() || !it->value().is_string()) return std::nullopt;
  const json::string& s = it->value().get_string();
  return std::string_view(s.data(), s.size());
}

std::string accepted_ack(const Accepted& a, bool with_token) {
  std::string data = std::string("{\"status\":") + (a.superseded ? "\"superseded\"" : "\"accepted\"");
  if (with_token) data += ",\"token\":" + frames::quote(a.token);
  data += ",\"expiresAt\":\"" + iso8601_utc(a.expires_at_ms / 1000) + "\"}";
  return data;
}

// What on_message needs of a frame, read by the fast path or the general one. The views point
// into the frame's text or into the general path's DOM, both alive for the whole call.
struct Frame {
  std::string_view id = "null";  // echoed as the answer's id: a string literal, a number or null
  std::optional<std::string_view> cmd;  // when `cmd` is a string
  enum class Data { absent, object, other } data = Data::absent;  // absent: missing or null
  std::optional<std::string_view> token, context;                 // string members of `data`
  const json::object* data_object = nullptr;  // the general path's `data`, for `pres` with fields
};

// The fast path: a frame in plain JSON (common/plain_json.h), read without a DOM. False when it
// is anything else, and for `pres` with fields (pres_request_from_json reads those from a DOM);
// the general path then reads it. On true, f holds what the general path would have read:
// the id's text is what serialize() prints for a plain string or integer, and a member that
// is not a plain string is no string to the general path either.
bool read_plain_frame(std::string_view text, Frame& f) {
  plain_json::Scanner s(text);
  auto plain_string = [&s](std::optional<std::string_view>& out, int depth) {
    if (!s.peek('"')) return s.value(depth);  // not a string: skipped, left unset
    std::string_view v;
    if (!s.string(v)) return false;
    out = v;
    return true;
  };
  const bool plain = s.object([&](std::string_view key) {
    if (key == "id") {
      const char* start = s.pos();
      if (!s.value(2)) return false;
      if (*start == '"' || *start == '-' || (*start >= '0' && *start <= '9'))
        f.id = std::string_view(start, static_cast<std::size_t>(s.pos() - start));
      return true;
    }
    if (key == "cmd") return plain_string(f.cmd, 2);
    if (key == "data") {
      if (s.peek('{')) {
        f.data = Frame::Data::object;
        return s.object([&](std::string_view member) {
          if (member == "token") return plain_string(f.token, 3);
          if (member == "context") return plain_string(f.context, 3);
          return s.value(3);
        }, 2);
      }
      const bool null = s.peek('n');
      if (!s.value(2)) return false;
      f.data = null ? Frame::Data::absent : Frame::Data::other;
      return true;
    }
    return s.value(2);
  });
  if (!plain || !s.at_end()) return false;
  return !(f.cmd == "pres" && f.data == Frame::Data::object && !f.token);
}

// Answers a `pres` once the hub has decided (possibly later, after the signature work).
Hub::Done answer_pres(const ConnPtr& conn, std::string_view id, bool with_token) {
  return [weak = std::weak_ptr<transport::WsConnection>(conn), id = std::string(id), with_token](Result<Accepted> r) {
    auto c = weak.lock();
    if (!c) return;
    if (!r) return fail(c, id, r.error());
    reply(c, frames::ack(id, accepted_ack(*r, with_token)));
  };
}

}  // namespace

void BusProtocol::on_message(const ConnPtr& conn, std::string_view text) {
  Frame f;
  std::optional<StrictJson> parsed;  // the general path's DOM
  std::string id_json;
  if (!fast_path::enabled() || !read_plain_frame(text, f)) {
    f = Frame{};
    parsed = parse_strict_json(text);
    if (parsed->problem == JsonProblem::duplicate_key)
      return fail(conn, "null", Error(ErrorCode::bad_request, "duplicate key '" + parsed->detail + "' in frame"));
    if (!parsed->ok() || !parsed->value.is_object())
      return fail(conn, "null", Error(ErrorCode::bad_request, "frame is not a JSON object"));
    const json::object& obj = parsed->value.get_object();
    // Echo the id as sent (string or number); anything else answers with null.
    if (auto it = obj.find("id"); it != obj.end() && (it->value().is_string() || it->value().is_number())) {
      id_json = json::serialize(it->value());
      f.id = id_json;
    }
    f.cmd = string_field(obj, "cmd");
    if (auto it = obj.find("data"); it != obj.end() && !it->value().is_null()) {
      if (!it->value().is_object()) {
        f.data = Frame::Data::other;
      } else {
        f.data = Frame::Data::object;
        f.data_object = &it->value().get_object();
        f.token = string_field(*f.data_object, "token");
        f.context = string_field(*f.data_object, "context");
      }
    }
  }
  const std::string_view id = f.id;

  if (std::int64_t wait = hub_.take_command_quota(*conn); wait > 0)
    return fail(conn, id, Error(ErrorCode::rate_limited, "too many frames on this connection", wait));
  if (!f.cmd) return fail(conn, id, Error(ErrorCode::bad_request, "cmd (string) is required"));
  if (f.data == Frame::Data::other) return fail(conn, id, Error(ErrorCode::bad_request, "data must be an object"));
  const std::string_view cmd = *f.cmd;

  if (cmd == "ping") return reply(conn, frames::ack(id, "{\"status\":\"pong\"}"));

  // `context` must be a string; the hub validates its syntax.
  auto no_context = [] { return Error(ErrorCode::bad_request, "data.context (string) is required"); };
  if (cmd == "subscribe") {
    if (!f.context) return fail(conn, id, no_context());
    const std::string context(*f.context);
    auto snapshot = hub_.subscribe(*conn, context);
    if (!snapshot) return fail(conn, id, snapshot.error());
    // The ack is one buffer sized once: a snapshot of 1000 states is ~260 KB.
    static constexpr std::string_view head = ",\"cmd\":\"ack\",\"data\":{\"status\":\"subscribed\",\"context\":";
    std::size_t size = 16 + id.size() + head.size() + 2 * context.size() + 16;
    for (const std::string* state : *snapshot) size += state->size() + 1;
    std::string ack;
    ack.reserve(size);
    ack += "{\"id\":";
    ack += id;
    ack += head;
    frames::append_quoted(ack, context);
    ack += ",\"presence\":[";
    for (std::size_t i = 0; i < snapshot->size(); ++i) {
      if (i) ack += ',';
      ack += *(*snapshot)[i];
    }
    ack += "]}}";
    return reply(conn, std::move(ack));
  }

  if (cmd == "unsubscribe") {
    if (!f.context) return fail(conn, id, no_context());
    const std::string context(*f.context);
    if (Status s = hub_.unsubscribe(*conn, context); !s) return fail(conn, id, s.error());
    return reply(conn, frames::ack(id, "{\"status\":\"unsubscribed\",\"context\":" + frames::quote(context) + "}"));
  }

  if (cmd == "pres") {
    if (f.data != Frame::Data::object) return fail(conn, id, Error(ErrorCode::bad_request, "data is required"));
    if (std::int64_t wait = hub_.take_pres_quota(*conn); wait > 0)
      return fail(conn, id, Error(ErrorCode::rate_limited, "too many PRES on this connection", wait));
    if (f.token) {
      // The cheap checks answer here, synchronously: no callback is built for a refusal.
      auto admitted = hub_.admit_token(*f.token);
      if (!admitted) return fail(conn, id, admitted.error());
      return hub_.submit_admitted(std::move(*admitted), answer_pres(conn, id, false));
    }
    auto req = pres_request_from_json(*f.data_object);
    if (!req) return fail(conn, id, req.error());
    const std::string* user = hub_.user_of(*conn);
    if (!user) return fail(conn, id, Error(ErrorCode::internal, "connection not attached"));
    return hub_.submit_request(*user, std::move(*req), answer_pres(conn, id, true));
  }

  fail(conn, id, Error(ErrorCode::unknown_command, "unknown cmd \"" + std::string(cmd) + "\""));
}

}  // namespace presd
