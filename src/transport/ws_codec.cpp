#include "transport/ws_codec.h"

#include <algorithm>
#include <cstring>

namespace presd::transport {
namespace {

constexpr std::uint8_t kFin = 0x80;
constexpr std::uint8_t kRsv = 0x70;
constexpr std::uint8_t kMask = 0x80;

bool is_control(WsOpcode op) { return static_cast<std::uint8_t>(op) >= 8; }

bool known_opcode(std::uint8_t op) { return op <= 2 || (op >= 8 && op <= 10); }

// Header length from its first two bytes: 2, plus 2 or 8 for an extended length, plus 4 for a
// mask key (the mask bit is checked separately).
std::size_t header_length(const std::uint8_t* h) {
  const std::uint8_t len7 = h[1] & 0x7f;
  return 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + ((h[1] & kMask) ? 4 : 0);
}

// XORs with the 4-byte key starting at key phase `phase`; returns the phase after.
std::size_t unmask(std::uint8_t* d, std::size_t n, const std::array<std::uint8_t, 4>& key, std::size_t phase) {
  std::size_t i = 0;
  for (; i < n && (phase & 3) != 0; ++i, ++phase) d[i] ^= key[phase & 3];
  std::uint32_t k4;
  std::memcpy(&k4, key.data(), 4);
  const std::uint64_t k8 = (static_cast<std::uint64_t>(k4) << 32) | k4;
  for (; i + 8 <= n; i += 8) {
    std::uint64_t v;
    std::memcpy(&v, d + i, 8);
    v ^= k8;
    std::memcpy(d + i, &v, 8);
  }
  for (; i < n; ++i, ++phase) d[i] ^= key[phase & 3];
  return phase & 3;
}

}  // namespace

// ---- UTF-8 -------------------------------------------------------------------------------------

bool Utf8Validator::feed(std::span<const std::uint8_t> bytes) {
  const std::uint8_t* p = bytes.data();
  const std::uint8_t* const end = p + bytes.size();
  while (p < end) {
    if (need_ == 0) {
      // ASCII runs, eight bytes at a time: the common case for JSON.
      while (end - p >= 8) {
        std::uint64_t v;
        std::memcpy(&v, p, 8);
        if (v & 0x8080808080808080ull) break;
        p += 8;
      }
      if (p == end) break;
      const std::uint8_t b = *p++;
      if (b < 0x80) continue;
      lo_ = 0x80;
      hi_ = 0xbf;
      if (b >= 0xc2 && b <= 0xdf) {
        need_ = 1;
      } else if (b >= 0xe0 && b <= 0xef) {
        need_ = 2;
        if (b == 0xe0) lo_ = 0xa0;   // overlong
        if (b == 0xed) hi_ = 0x9f;   // surrogates
      } else if (b >= 0xf0 && b <= 0xf4) {
        need_ = 3;
        if (b == 0xf0) lo_ = 0x90;   // overlong
        if (b == 0xf4) hi_ = 0x8f;   // above U+10FFFF
      } else {
        return false;  // continuation byte, C0/C1 overlong leads, F5-FF
      }
    } else {
      const std::uint8_t b = *p++;
      if (b < lo_ || b > hi_) return false;
      --need_;
      lo_ = 0x80;
      hi_ = 0xbf;
    }
  }
  return true;
}

bool valid_utf8(std::span<const std::uint8_t> bytes) {
  Utf8Validator v;
  return v.feed(bytes) && v.complete();
}

// ---- close codes and server frames -------------------------------------------------------------

bool valid_received_close_code(std::uint16_t code) {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1013) || (code >= 3000 && code <= 4999);
}

bool sendable_close_code(std::uint16_t code) {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999);
}

WsFrameHeader ws_frame_header(WsOpcode opcode, std::size_t size) {
  WsFrameHeader h;
  h.bytes[0] = static_cast<std::uint8_t>(kFin | static_cast<std::uint8_t>(opcode));
  if (size < 126) {
    h.bytes[1] = static_cast<std::uint8_t>(size);
    h.size = 2;
  } else if (size <= 0xffff) {
    h.bytes[1] = 126;
    h.bytes[2] = static_cast<std::uint8_t>(size >> 8);
    h.bytes[3] = static_cast<std::uint8_t>(size);
    h.size = 4;
  } else {
    h.bytes[1] = 127;
    for (int i = 0; i < 8; ++i) h.bytes[2 + i] = static_cast<std::uint8_t>(static_cast<std::uint64_t>(size) >> (56 - 8 * i));
    h.size = 10;
  }
  return h;
}

std::string ws_close_payload(std::uint16_t code, std::string_view reason) {
  constexpr std::size_t kMaxReason = 123;  // a control frame carries at most 125 bytes
  if (reason.size() > kMaxReason) {
    std::size_t cut = kMaxReason;
    while (cut > 0 && (static_cast<std::uint8_t>(reason[cut]) & 0xc0) == 0x80) --cut;  // not inside a character
    reason = reason.substr(0, cut);
  }
  std::string out;
  out.reserve(2 + reason.size());
  out += static_cast<char>(code >> 8);
  out += static_cast<char>(code & 0xff);
  out += reason;
  return out;
}

// ---- reader ------------------------------------------------------------------------------------

void WsFrameReader::fail(std::uint16_t code, const char* reason) {
  failed_ = true;
  failure_ = WsFailure{code, reason};
  std::string().swap(message_);
}

// Validates a complete header in header_; on success the frame's payload comes next.
std::size_t WsFrameReader::parse_header(const std::uint8_t* h, std::size_t n) {
  const std::uint8_t b0 = h[0], b1 = h[1];
  const std::uint8_t op = b0 & 0x0f;
  // Everything the first two bytes decide, before waiting for the rest of the header.
  if (b0 & kRsv) return fail(1002, "reserved bits set"), 0;
  if (!known_opcode(op)) return fail(1002, "reserved opcode"), 0;
  const auto opcode = static_cast<WsOpcode>(op);
  const bool fin = (b0 & kFin) != 0;
  const std::uint8_t len7 = b1 & 0x7f;
  if (is_control(opcode)) {
    if (!fin) return fail(1002, "fragmented control frame"), 0;
    if (len7 > 125) return fail(1002, "control frame over 125 bytes"), 0;
  }
  if (!(b1 & kMask)) return fail(1002, "unmasked client frame"), 0;
  const std::size_t size = header_length(h);
  if (n < size) return 0;

  std::uint64_t len = len7;
  if (len7 == 126) {
    len = (std::uint64_t{h[2]} << 8) | h[3];
    if (len < 126) return fail(1002, "length not minimally encoded"), 0;
  } else if (len7 == 127) {
    len = 0;
    for (int i = 0; i < 8; ++i) len = (len << 8) | h[2 + i];
    if (len >> 63) return fail(1002, "length with the most significant bit set"), 0;
    if (len <= 0xffff) return fail(1002, "length not minimally encoded"), 0;
  }
  if (opcode == WsOpcode::continuation && !in_message_) return fail(1002, "continuation without a message"), 0;
  if ((opcode == WsOpcode::text || opcode == WsOpcode::binary) && in_message_)
    return fail(1002, "new message inside a fragmented one"), 0;
  if (opcode == WsOpcode::binary) return fail(1003, "binary messages are not supported"), 0;
  if (!is_control(opcode)) {
    const std::uint64_t so_far = opcode == WsOpcode::text ? 0 : message_bytes_;
    if (len > max_message_ || so_far + len > max_message_) return fail(1009, "message too big"), 0;
    if (opcode == WsOpcode::text) {
      in_message_ = true;
      message_bytes_ = 0;
      utf8_.reset();
    }
    message_bytes_ += len;
  }
  opcode_ = opcode;
  fin_ = fin;
  frame_size_ = len;
  payload_left_ = len;
  std::memcpy(mask_.data(), h + size - 4, 4);
  mask_phase_ = 0;
  control_size_ = 0;
  in_frame_ = true;
  return size;
}

void WsFrameReader::finish_control(std::string_view payload, WsFrameSink& sink) {
  switch (opcode_) {
    case WsOpcode::ping:
      sink.on_ws_ping(payload);
      return;
    case WsOpcode::pong:
      sink.on_ws_pong();
      return;
    default:
      break;
  }
  if (payload.empty()) {
    closed_ = true;
    sink.on_ws_close(0);
    return;
  }
  if (payload.size() == 1) return fail(1002, "close frame with a 1-byte payload");
  const auto* p = reinterpret_cast<const std::uint8_t*>(payload.data());
  const auto code = static_cast<std::uint16_t>((p[0] << 8) | p[1]);
  if (!valid_received_close_code(code)) return fail(1002, "invalid close code");
  if (!valid_utf8({p + 2, payload.size() - 2})) return fail(1007, "close reason is not UTF-8");
  closed_ = true;
  sink.on_ws_close(code);
}

void WsFrameReader::payload(std::uint8_t* data, std::size_t take, WsFrameSink& sink) {
  mask_phase_ = unmask(data, take, mask_, mask_phase_);
  payload_left_ -= take;
  const bool frame_end = payload_left_ == 0;
  if (frame_end) in_frame_ = false;

  if (is_control(opcode_)) {
    if (frame_end && control_size_ == 0) return finish_control({reinterpret_cast<char*>(data), take}, sink);
    std::memcpy(control_.data() + control_size_, data, take);
    control_size_ += take;
    if (frame_end) finish_control({reinterpret_cast<char*>(control_.data()), control_size_}, sink);
    return;
  }

  if (!utf8_.feed({data, take})) return fail(1007, "invalid UTF-8 in a text message");
  if (!(frame_end && fin_)) {
    message_.append(reinterpret_cast<char*>(data), take);
    return;
  }
  if (!utf8_.complete()) return fail(1007, "invalid UTF-8 in a text message");
  in_message_ = false;
  if (opcode_ == WsOpcode::text && take == frame_size_) {
    // The whole message is this one frame, read at once: hand it over without a copy.
    sink.on_ws_text({reinterpret_cast<char*>(data), take});
    return;
  }
  message_.append(reinterpret_cast<char*>(data), take);
  sink.on_ws_text(message_);
  // An idle connection keeps no message buffer; a small one is reused.
  if (message_.capacity() > 1024)
    std::string().swap(message_);
  else
    message_.clear();
}

void WsFrameReader::feed(std::span<std::uint8_t> bytes, WsFrameSink& sink) {
  std::uint8_t* p = bytes.data();
  std::size_t n = bytes.size();
  while (!done()) {
    if (!in_frame_) {
      if (n == 0) return;
      std::size_t used;
      if (header_size_ == 0 && n >= 2 && n >= header_length(p)) {
        used = parse_header(p, n);  // the whole header is in the input: no copy
      } else {
        // Gather the header across reads: 2 bytes tell how long it is.
        const std::size_t want = header_size_ < 2 ? 2 : header_length(header_.data());
        const std::size_t take = std::min(want - header_size_, n);
        std::memcpy(header_.data() + header_size_, p, take);
        header_size_ += take;
        p += take;
        n -= take;
        if (header_size_ < 2) return;
        used = parse_header(header_.data(), header_size_);
        if (used == 0) {
          if (done()) return;
          continue;  // more header bytes to take
        }
        header_size_ = 0;
        used = 0;  // already consumed from the input
      }
      if (done()) return;
      p += used;
      n -= used;
      if (payload_left_ != 0) continue;
      payload(p, 0, sink);  // an empty frame
      continue;
    }
    if (n == 0) return;
    const auto take = static_cast<std::size_t>(std::min<std::uint64_t>(payload_left_, n));
    payload(p, take, sink);
    p += take;
    n -= take;
  }
}

}  // namespace presd::transport
