#include "wire.h"

#include <cstring>

namespace loadgen {

void append_client_frame(std::string& out, Opcode op, std::string_view payload) {
  const std::size_t n = payload.size();
  out.push_back(static_cast<char>(0x80 | op));
  if (n < 126) {
    out.push_back(static_cast<char>(0x80 | n));
  } else if (n <= 0xFFFF) {
    out.push_back(static_cast<char>(0x80 | 126));
    out.push_back(static_cast<char>(n >> 8));
    out.push_back(static_cast<char>(n & 0xFF));
  } else {
    out.push_back(static_cast<char>(0x80 | 127));
    for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<char>((n >> shift) & 0xFF));
  }
  out.append(4, '\0');  // masking key 0
  out.append(payload);
}

ServerFrame parse_server_frame(std::string_view in) {
  ServerFrame f;
  if (in.size() < 2) return f;
  const auto b0 = static_cast<std::uint8_t>(in[0]);
  const auto b1 = static_cast<std::uint8_t>(in[1]);
  std::size_t header = 2;
  std::uint64_t len = b1 & 0x7F;
  if (len == 126) {
    if (in.size() < 4) return f;
    len = (std::uint64_t(std::uint8_t(in[2])) << 8) | std::uint8_t(in[3]);
    header = 4;
  } else if (len == 127) {
    if (in.size() < 10) return f;
    len = 0;
    for (int i = 2; i < 10; ++i) len = (len << 8) | std::uint8_t(in[i]);
    header = 10;
  }
  if (b1 & 0x80) header += 4;  // a masked server frame is a protocol error; skip the key anyway
  if (in.size() < header + len) return f;
  f.consumed = header + len;
  f.op = static_cast<Opcode>(b0 & 0x0F);
  f.payload = in.substr(header, len);
  return f;
}

std::string upgrade_request(std::string_view host, std::string_view target) {
  std::string r;
  r.reserve(256 + target.size());
  r += "GET ";
  r += target;
  r += " HTTP/1.1\r\nHost: ";
  r += host;
  r += "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
       "Sec-WebSocket-Version: 13\r\n\r\n";
  return r;
}

HttpMessage parse_http_response(std::string_view in) {
  HttpMessage m;
  const auto end = in.find("\r\n\r\n");
  if (end == std::string_view::npos) return m;
  const std::string_view head = in.substr(0, end);
  if (head.size() < 12) return m;
  m.status = (head[9] - '0') * 100 + (head[10] - '0') * 10 + (head[11] - '0');
  std::size_t length = 0;
  // Header names are case-insensitive; Beast writes "Content-Length".
  for (std::string_view name : {"Content-Length: ", "content-length: "}) {
    const auto p = head.find(name);
    if (p == std::string_view::npos) continue;
    for (std::size_t i = p + name.size(); i < head.size() && head[i] >= '0' && head[i] <= '9'; ++i)
      length = length * 10 + static_cast<std::size_t>(head[i] - '0');
    break;
  }
  if (in.size() < end + 4 + length) return m;
  m.body = in.substr(end + 4, length);
  m.consumed = end + 4 + length;
  return m;
}

std::string_view json_string_field(std::string_view json, std::string_view key) {
  std::string pattern = "\"";
  pattern += key;
  pattern += "\":\"";
  const auto p = json.find(pattern);
  if (p == std::string_view::npos) return {};
  const auto start = p + pattern.size();
  const auto stop = json.find('"', start);
  if (stop == std::string_view::npos) return {};
  return json.substr(start, stop - start);
}

long long json_int_field(std::string_view json, std::string_view key) {
  std::string pattern = "\"";
  pattern += key;
  pattern += "\":";
  const auto p = json.find(pattern);
  if (p == std::string_view::npos) return -1;
  long long v = 0;
  std::size_t i = p + pattern.size();
  if (i >= json.size() || json[i] < '0' || json[i] > '9') return -1;
  for (; i < json.size() && json[i] >= '0' && json[i] <= '9'; ++i) v = v * 10 + (json[i] - '0');
  return v;
}

}  // namespace loadgen
