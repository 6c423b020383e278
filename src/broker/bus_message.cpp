#include "broker/bus_message.h"

#include <openssl/rand.h>

#include <boost/json.hpp>

#include "common/strict_json.h"

namespace presd {
namespace json = boost::json;

namespace {
// A PRES token is at most 4096 bytes; the envelope adds well under 200.
constexpr std::size_t kMaxPayloadBytes = 8192;

std::string_view kind_name(BusMessage::Kind k) { return k == BusMessage::Kind::pres ? "pres" : "sync"; }

Error bad(std::string message) { return Error(ErrorCode::bus_bad_message, std::move(message)); }
}  // namespace

std::string encode_bus_message(const BusMessage& m) {
  json::object o;
  o["v"] = BusMessage::kVersion;
  o["kind"] = kind_name(m.kind);
  o["node"] = m.origin;
  if (m.kind == BusMessage::Kind::pres) o["token"] = m.token;
  return json::serialize(o);
}

Result<BusMessage> decode_bus_message(std::string_view payload) {
  if (payload.size() > kMaxPayloadBytes) return bad("bus message over " + std::to_string(kMaxPayloadBytes) + " bytes");
  StrictJson parsed = parse_strict_json(payload, 2);
  if (!parsed.ok()) return bad("bus message is not JSON: " + parsed.detail);
  const json::object* o = parsed.value.if_object();
  if (!o) return bad("bus message is not a JSON object");
  const json::value* v = o->if_contains("v");
  if (!v || !v->is_int64()) return bad("bus message has no integer version");
  if (v->as_int64() != BusMessage::kVersion)
    return bad("bus message version " + std::to_string(v->as_int64()) + " is not supported (this node speaks " +
               std::to_string(BusMessage::kVersion) + ")");
  auto string_field = [&](const char* name) -> const json::string* {
    const json::value* f = o->if_contains(name);
    return f ? f->if_string() : nullptr;
  };
  const json::string* kind = string_field("kind");
  const json::string* node = string_field("node");
  if (!kind) return bad("bus message has no kind");
  if (!node || !is_valid_node_id(*node)) return bad("bus message has no valid node id");

  BusMessage m;
  m.origin = std::string(*node);
  if (*kind == "sync") {
    m.kind = BusMessage::Kind::sync;
    if (o->size() != 3) return bad("sync message has unknown members");
    return m;
  }
  if (*kind != "pres") return bad("bus message kind '" + std::string(*kind) + "' is unknown");
  const json::string* token = string_field("token");
  if (!token || token->empty()) return bad("pres message has no token");
  if (o->size() != 4) return bad("pres message has unknown members");
  m.kind = BusMessage::Kind::pres;
  m.token = std::string(*token);
  return m;
}

bool is_valid_node_id(std::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
      return false;
  return true;
}

std::string random_node_id() {
  unsigned char b[4];
  RAND_bytes(b, sizeof b);
  static const char* hex = "0123456789abcdef";
  std::string id = "n-";
  for (unsigned char c : b) {
    id += hex[c >> 4];
    id += hex[c & 15];
  }
  return id;
}

}  // namespace presd
