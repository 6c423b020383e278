// RFC 6455 framing for the server side of /ws/bus, in plain C++ (no sockets) so that every rule
// is unit-tested byte by byte. presd owns the framing after the opening handshake: its writer
// gathers whole pre-framed queues into one sendmsg (server.cpp), which Beast's one-message-per-
// write stream cannot do.
//
// WsFrameReader parses what a client sends: masked frames, fragmentation, interleaved control
// frames, strict UTF-8 (checked as bytes arrive, so a bad fragment fails at once), size limits
// checked on the declared length before the payload is read. Any violation "fails the
// connection" with the close code RFC 6455 asks for: 1002 protocol, 1003 binary (a text-only
// protocol), 1007 bad UTF-8, 1009 too big.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace presd::transport {

enum class WsOpcode : std::uint8_t { continuation = 0, text = 1, binary = 2, close = 8, ping = 9, pong = 10 };

// Incremental strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing above U+10FFFF.
class Utf8Validator {
 public:
  // False as soon as `bytes` cannot continue any valid sequence.
  bool feed(std::span<const std::uint8_t> bytes);
  // True if the bytes so far end on a character boundary.
  bool complete() const { return need_ == 0; }
  void reset() { need_ = 0; }

 private:
  std::uint8_t need_ = 0;  // continuation bytes still expected
  std::uint8_t lo_ = 0x80, hi_ = 0xbf;  // allowed range of the next continuation byte
};

bool valid_utf8(std::span<const std::uint8_t> bytes);

// What the reader reports; the views are valid only during the call.
class WsFrameSink {
 public:
  virtual ~WsFrameSink() = default;
  virtual void on_ws_text(std::string_view message) = 0;
  virtual void on_ws_ping(std::string_view payload) = 0;
  virtual void on_ws_pong() = 0;
  // A valid close frame; code 0 means the frame had no payload (no status code).
  virtual void on_ws_close(std::uint16_t code) = 0;
};

struct WsFailure {
  std::uint16_t code = 0;  // close code to send: 1002, 1003, 1007 or 1009
  const char* reason = "";
};

class WsFrameReader {
 public:
  explicit WsFrameReader(std::size_t max_message_bytes) : max_message_(max_message_bytes) {}

  // Consumes client bytes (unmasking them in place) and reports complete messages and control
  // frames to `sink`, in order. After a close frame or a failure nothing more is consumed:
  // done() turns true and the rest of `bytes` is ignored, as RFC 6455 asks.
  void feed(std::span<std::uint8_t> bytes, WsFrameSink& sink);

  bool done() const { return failed_ || closed_; }
  bool failed() const { return failed_; }
  const WsFailure& failure() const { return failure_; }
  // Bytes held for an unfinished message (0 when idle): the connection's only read memory.
  std::size_t buffered() const { return message_.capacity(); }

 private:
  // Header length once `n` bytes of it validate; 0 if more are needed or it failed (done()).
  std::size_t parse_header(const std::uint8_t* h, std::size_t n);
  void payload(std::uint8_t* data, std::size_t take, WsFrameSink& sink);
  void finish_control(std::string_view payload, WsFrameSink& sink);
  void fail(std::uint16_t code, const char* reason);

  const std::size_t max_message_;
  // The frame being read.
  std::array<std::uint8_t, 14> header_{};
  std::size_t header_size_ = 0;
  WsOpcode opcode_ = WsOpcode::continuation;
  bool fin_ = false;
  bool in_frame_ = false;          // header parsed, payload_left_ bytes to come
  std::uint64_t frame_size_ = 0;
  std::uint64_t payload_left_ = 0;
  std::array<std::uint8_t, 4> mask_{};
  std::size_t mask_phase_ = 0;
  // Control frame payloads split across reads (at most 125 bytes).
  std::array<std::uint8_t, 125> control_{};
  std::size_t control_size_ = 0;
  // A text message that spans frames or reads.
  bool in_message_ = false;  // a text message started and not finished
  std::uint64_t message_bytes_ = 0;  // declared so far, checked against max_message_
  std::string message_;
  Utf8Validator utf8_;
  bool failed_ = false;
  bool closed_ = false;
  WsFailure failure_;
};

// Close codes a client may send (RFC 6455 7.4.1, IANA 1012-1013, the 3000-4999 private range).
bool valid_received_close_code(std::uint16_t code);
// Close codes this server may send.
bool sendable_close_code(std::uint16_t code);

// Server frame header (unmasked, FIN set) for a payload of `size` bytes: 2, 4 or 10 bytes.
struct WsFrameHeader {
  std::array<std::uint8_t, 10> bytes{};
  std::uint8_t size = 0;
};
WsFrameHeader ws_frame_header(WsOpcode opcode, std::size_t payload_size);

// A close frame's payload: the code, then the reason cut to 123 bytes at a UTF-8 boundary.
std::string ws_close_payload(std::uint16_t code, std::string_view reason);

}  // namespace presd::transport
