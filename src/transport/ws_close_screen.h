// Screens the bytes a WebSocket client sends for close frames that Boost.Beast 1.81 answers in a
// way RFC 6455 does not allow, and rewrites them in place before Beast parses them:
//   - a close code of 5000 or more (unassigned, RFC 6455 7.4.2) that Beast accepts and echoes:
//     rewritten to code 0, which Beast rejects with 1002 like every other invalid code;
//   - a close reason that is not valid UTF-8, which Beast fails with 1002: rewritten to code 1007
//     with a blank reason, which Beast echoes, so the client gets 1007 (invalid payload data).
// Only frame headers and close frames are looked at; data payloads pass untouched. Plain C++ so
// that it is unit-tested without sockets; server.cpp runs every read through it.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

namespace presd::transport {

class WsCloseScreen {
 public:
  // A whole masked close frame: 2 header bytes, 4 mask bytes, at most 125 payload bytes.
  static constexpr std::size_t kMaxHeld = 2 + 4 + 125;

  // Copies the bytes held back by the last screen() to the front of `out`; returns how many.
  // If they do not all fit, the rest stays held (holding() is true) and screening stops.
  std::size_t restore(std::span<std::uint8_t> out);
  bool holding() const { return held_size_ > 0; }

  // Screens `bytes` (the restored ones first, then newly read ones), rewriting close frames in
  // place. Returns how many of them may be handed to the WebSocket now; the rest (an unfinished
  // frame header or close frame) is held back for the next restore().
  std::size_t screen(std::span<std::uint8_t> bytes);

  std::size_t rewritten() const { return rewritten_; }

 private:
  void rewrite_close(std::uint8_t* mask_key, std::uint8_t* payload, std::size_t len);

  std::uint64_t payload_left_ = 0;  // bytes of the current (non-close) frame still to pass
  bool passthrough_ = false;        // screening stopped: what follows is Beast's alone to judge
  std::array<std::uint8_t, kMaxHeld> held_{};
  std::size_t held_size_ = 0;
  std::size_t rewritten_ = 0;
};

// Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing above U+10FFFF.
bool valid_utf8(std::span<const std::uint8_t> bytes);

}  // namespace presd::transport
