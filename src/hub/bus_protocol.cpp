#include "hub/bus_protocol.h"
#include "common/strict_json.h"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

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

void fail(const ConnPtr& conn, const std::string& id, Error error) {
  reply(conn, frames::error_frame(id, error));
}

const json::string* string_field(const json::object& o, std::string_view key) {
  auto it = o.find(key);
  return it != o.end() && it->value().is_string() ? &it->value().get_string() : nullptr;
}

// `context` must be a string; the hub validates its syntax.
Result<std::string> context_field(const json::object* data) {
  const json::string* ctx = data ? string_field(*data, "context") : nullptr;
  if (!ctx) return Error(ErrorCode::bad_request, "data.context (string) is required");
  return std::string(*ctx);
}

std::string accepted_ack(const Accepted& a, bool with_token) {
  std::string data = std::string("{\"status\":") + (a.superseded ? "\"superseded\"" : "\"accepted\"");
  if (with_token) data += ",\"token\":" + frames::quote(a.token);
  data += ",\"expiresAt\":\"" + iso8601_utc(a.expires_at_ms / 1000) + "\"}";
  return data;
}

}  // namespace

void BusProtocol::on_message(const ConnPtr& conn, std::string_view text) {
  StrictJson frame = parse_strict_json(text);
  if (frame.problem == JsonProblem::duplicate_key)
    return fail(conn, "null", Error(ErrorCode::bad_request, "duplicate key '" + frame.detail + "' in frame"));
  if (!frame.ok() || !frame.value.is_object())
    return fail(conn, "null", Error(ErrorCode::bad_request, "frame is not a JSON object"));
  const json::object& obj = frame.value.get_object();

  // Echo the id as sent (string or number); anything else answers with null.
  std::string id = "null";
  if (auto it = obj.find("id"); it != obj.end() && (it->value().is_string() || it->value().is_number()))
    id = json::serialize(it->value());

  if (std::int64_t wait = hub_.take_command_quota(*conn); wait > 0)
    return fail(conn, id, Error(ErrorCode::rate_limited, "too many frames on this connection", wait));

  const json::string* cmd = string_field(obj, "cmd");
  if (!cmd) return fail(conn, id, Error(ErrorCode::bad_request, "cmd (string) is required"));
  const json::object* data = nullptr;
  if (auto it = obj.find("data"); it != obj.end() && !it->value().is_null()) {
    if (!it->value().is_object()) return fail(conn, id, Error(ErrorCode::bad_request, "data must be an object"));
    data = &it->value().get_object();
  }

  if (*cmd == "ping") return reply(conn, frames::ack(id, "{\"status\":\"pong\"}"));

  if (*cmd == "subscribe") {
    auto ctx = context_field(data);
    if (!ctx) return fail(conn, id, ctx.error());
    auto snapshot = hub_.subscribe(*conn, *ctx);
    if (!snapshot) return fail(conn, id, snapshot.error());
    std::string ack = "{\"status\":\"subscribed\",\"context\":" + frames::quote(*ctx) + ",\"presence\":[";
    for (std::size_t i = 0; i < snapshot->size(); ++i) {
      if (i) ack += ',';
      ack += *(*snapshot)[i];
    }
    ack += "]}";
    return reply(conn, frames::ack(id, ack));
  }

  if (*cmd == "unsubscribe") {
    auto ctx = context_field(data);
    if (!ctx) return fail(conn, id, ctx.error());
    if (Status s = hub_.unsubscribe(*conn, *ctx); !s) return fail(conn, id, s.error());
    return reply(conn, frames::ack(id, "{\"status\":\"unsubscribed\",\"context\":" + frames::quote(*ctx) + "}"));
  }

  if (*cmd == "pres") {
    if (!data) return fail(conn, id, Error(ErrorCode::bad_request, "data is required"));
    if (std::int64_t wait = hub_.take_pres_quota(*conn); wait > 0)
      return fail(conn, id, Error(ErrorCode::rate_limited, "too many PRES on this connection", wait));
    std::weak_ptr<transport::WsConnection> weak = conn;
    const json::string* token = string_field(*data, "token");
    auto done = [weak, id, with_token = token == nullptr](Result<Accepted> r) {
      auto c = weak.lock();
      if (!c) return;
      if (!r) return fail(c, id, r.error());
      reply(c, frames::ack(id, accepted_ack(*r, with_token)));
    };
    if (token) return hub_.submit_token(std::string(*token), std::move(done));
    auto req = pres_request_from_json(*data);
    if (!req) return fail(conn, id, req.error());
    const std::string* user = hub_.user_of(*conn);
    if (!user) return fail(conn, id, Error(ErrorCode::internal, "connection not attached"));
    return hub_.submit_request(*user, std::move(*req), std::move(done));
  }

  fail(conn, id, Error(ErrorCode::unknown_command, "unknown cmd \"" + std::string(*cmd) + "\""));
}

}  // namespace presd
