// Minimal client side of RFC 6455 and HTTP/1.1 for the load generator: just enough to speak
// /ws/bus, the Node peer and nats-server's WebSocket listener at low cost per frame, so that the
// generator core is not the bottleneck. Plain C++, no Asio.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace loadgen {

enum Opcode : std::uint8_t { kText = 1, kBinary = 2, kClose = 8, kPing = 9, kPong = 10 };

// Appends one final client frame. Clients must mask; the key is zero (XOR is a no-op), which
// servers accept and which keeps the generator's cost per byte at a memcpy.
void append_client_frame(std::string& out, Opcode op, std::string_view payload);

// One server frame parsed from the front of `in` (server frames are unmasked). `consumed` is 0
// when the frame is not complete yet; fragmented messages are not used by any server here.
struct ServerFrame {
  std::size_t consumed = 0;
  Opcode op = kText;
  std::string_view payload;
};
ServerFrame parse_server_frame(std::string_view in);

std::string upgrade_request(std::string_view host, std::string_view target);

// One HTTP/1.1 response parsed from the front of `in` (Content-Length bodies only).
struct HttpMessage {
  std::size_t consumed = 0;  // 0: incomplete
  int status = 0;
  std::string_view body;
};
HttpMessage parse_http_response(std::string_view in);

// The string value of "key":"..." in a flat JSON text, or empty (no unescaping: codes and
// commands are plain ASCII).
std::string_view json_string_field(std::string_view json, std::string_view key);
// The integer value of "key":123, or -1.
long long json_int_field(std::string_view json, std::string_view key);

}  // namespace loadgen
