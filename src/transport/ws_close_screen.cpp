#include "transport/ws_close_screen.h"

#include <algorithm>
#include <cstring>

namespace presd::transport {
namespace {

constexpr std::uint8_t kOpClose = 0x8;
constexpr std::uint16_t kInvalidPayload = 1007;
constexpr std::uint16_t kFirstUnassigned = 5000;

}  // namespace

bool valid_utf8(std::span<const std::uint8_t> b) {
  std::size_t i = 0;
  while (i < b.size()) {
    const std::uint8_t c = b[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t n;
    std::uint8_t lo = 0x80, hi = 0xbf;  // allowed range of the second byte
    if (c >= 0xc2 && c <= 0xdf) {
      n = 1;
    } else if (c >= 0xe0 && c <= 0xef) {
      n = 2;
      if (c == 0xe0) lo = 0xa0;  // overlong
      if (c == 0xed) hi = 0x9f;  // surrogates
    } else if (c >= 0xf0 && c <= 0xf4) {
      n = 3;
      if (c == 0xf0) lo = 0x90;  // overlong
      if (c == 0xf4) hi = 0x8f;  // above U+10FFFF
    } else {
      return false;  // continuation byte, overlong C0/C1, or F5..FF
    }
    if (b.size() - i <= n) return false;  // truncated
    if (b[i + 1] < lo || b[i + 1] > hi) return false;
    for (std::size_t k = 2; k <= n; ++k)
      if (b[i + k] < 0x80 || b[i + k] > 0xbf) return false;
    i += n + 1;
  }
  return true;
}

std::size_t WsCloseScreen::restore(std::span<std::uint8_t> out) {
  const std::size_t n = std::min(out.size(), held_size_);
  std::memcpy(out.data(), held_.data(), n);
  std::memmove(held_.data(), held_.data() + n, held_size_ - n);
  held_size_ -= n;
  if (held_size_ > 0) passthrough_ = true;  // the frame cannot be seen whole any more
  return n;
}

std::size_t WsCloseScreen::screen(std::span<std::uint8_t> bytes) {
  const std::size_t n = bytes.size();
  if (passthrough_) return n;
  std::size_t pos = 0;
  while (pos < n) {
    if (payload_left_ > 0) {
      const std::size_t skip = static_cast<std::size_t>(std::min<std::uint64_t>(payload_left_, n - pos));
      pos += skip;
      payload_left_ -= skip;
      continue;
    }
    // At a frame header: parse it only when it is complete (at most 14 bytes are held for it).
    std::uint8_t* h = bytes.data() + pos;
    const std::size_t avail = n - pos;
    if (avail < 2) break;
    const bool fin = (h[0] & 0x80) != 0;
    const std::uint8_t opcode = h[0] & 0x0f;
    const bool masked = (h[1] & 0x80) != 0;
    std::uint64_t len = h[1] & 0x7f;
    const std::size_t len_bytes = len == 126 ? 2 : len == 127 ? 8 : 0;
    const std::size_t header = 2 + len_bytes + (masked ? 4 : 0);
    if (avail < header) break;
    if (len_bytes) {
      len = 0;
      for (std::size_t k = 0; k < len_bytes; ++k) len = (len << 8) | h[2 + k];
    }
    if (opcode == kOpClose) {
      // Beast fails these itself with 1002; nothing after them matters.
      if (!fin || !masked || len > 125 || len_bytes) {
        passthrough_ = true;
        return n;
      }
      if (avail < header + len) break;  // hold the close frame until it is whole
      rewrite_close(h + 2, h + header, static_cast<std::size_t>(len));
      pos += header + len;
      continue;
    }
    pos += header;
    payload_left_ = len;
  }
  held_size_ = n - pos;
  std::memcpy(held_.data(), bytes.data() + pos, held_size_);
  return pos;
}

void WsCloseScreen::rewrite_close(std::uint8_t* key, std::uint8_t* p, std::size_t len) {
  if (len < 2) return;  // no code (fine) or a 1-byte payload (Beast: 1002)
  const std::uint16_t code = static_cast<std::uint16_t>(((p[0] ^ key[0]) << 8) | (p[1] ^ key[1]));
  auto set_code = [&](std::uint16_t c) {
    p[0] = static_cast<std::uint8_t>((c >> 8) ^ key[0]);
    p[1] = static_cast<std::uint8_t>((c & 0xff) ^ key[1]);
  };
  if (code >= kFirstUnassigned) {
    set_code(0);
    ++rewritten_;
    return;
  }
  std::array<std::uint8_t, 123> reason{};
  for (std::size_t i = 2; i < len; ++i) reason[i - 2] = p[i] ^ key[i & 3];
  if (valid_utf8({reason.data(), len - 2})) return;
  set_code(kInvalidPayload);
  for (std::size_t i = 2; i < len; ++i) p[i] = static_cast<std::uint8_t>(' ' ^ key[i & 3]);
  ++rewritten_;
}

}  // namespace presd::transport
