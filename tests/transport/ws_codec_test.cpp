// WsFrameReader on hand-made client byte streams, fed whole and split at every byte, and the
// server-side frame encoding. The e2e conformance suite (tests/e2e/ws_conformance.test.mjs)
// checks the same rules through a real socket.
#include "transport/ws_codec.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace presd::transport {
namespace {

using Bytes = std::vector<std::uint8_t>;
constexpr std::uint8_t kKey[4] = {0x37, 0xfa, 0x21, 0x3d};

enum class Len { minimal, l16, l64 };

// A client frame, masked unless told otherwise.
Bytes frame(std::uint8_t opcode, const Bytes& payload, bool fin = true, Len enc = Len::minimal, bool mask = true,
            std::uint8_t rsv = 0) {
  Bytes out{static_cast<std::uint8_t>((fin ? 0x80 : 0) | (rsv << 4) | opcode)};
  const std::size_t n = payload.size();
  const std::uint8_t m = mask ? 0x80 : 0;
  if (enc == Len::minimal && n < 126) {
    out.push_back(static_cast<std::uint8_t>(m | n));
  } else if (enc == Len::l16 || (enc == Len::minimal && n < 65536)) {
    out.insert(out.end(), {static_cast<std::uint8_t>(m | 126), static_cast<std::uint8_t>(n >> 8), static_cast<std::uint8_t>(n)});
  } else {
    out.push_back(static_cast<std::uint8_t>(m | 127));
    for (int s = 56; s >= 0; s -= 8) out.push_back(static_cast<std::uint8_t>(static_cast<std::uint64_t>(n) >> s));
  }
  if (mask) out.insert(out.end(), kKey, kKey + 4);
  for (std::size_t i = 0; i < n; ++i) out.push_back(mask ? payload[i] ^ kKey[i & 3] : payload[i]);
  return out;
}

Bytes text(const std::string& s) { return Bytes(s.begin(), s.end()); }

Bytes close_payload(std::uint16_t code, const Bytes& reason = {}) {
  Bytes p{static_cast<std::uint8_t>(code >> 8), static_cast<std::uint8_t>(code)};
  p.insert(p.end(), reason.begin(), reason.end());
  return p;
}

Bytes cat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

// Records every event as a line: "text:<msg>", "ping:<payload>", "pong", "close:<code>".
struct Recorder : WsFrameSink {
  std::vector<std::string> events;
  void on_ws_text(std::string_view m) override { events.push_back("text:" + std::string(m)); }
  void on_ws_ping(std::string_view p) override { events.push_back("ping:" + std::string(p)); }
  void on_ws_pong() override { events.push_back("pong"); }
  void on_ws_close(std::uint16_t code) override { events.push_back("close:" + std::to_string(code)); }
};

struct Outcome {
  std::vector<std::string> events;
  std::uint16_t failure = 0;  // 0 = none
};

// Feeds `stream` in pieces of `chunk` bytes (each piece its own buffer, as separate reads are).
Outcome run(const Bytes& stream, std::size_t chunk, std::size_t max = 1 << 20) {
  WsFrameReader reader(max);
  Recorder rec;
  for (std::size_t pos = 0; pos < stream.size() && !reader.done(); pos += chunk) {
    Bytes piece(stream.begin() + static_cast<std::ptrdiff_t>(pos),
                stream.begin() + static_cast<std::ptrdiff_t>(std::min(stream.size(), pos + chunk)));
    reader.feed(piece, rec);
  }
  return {rec.events, reader.failed() ? reader.failure().code : std::uint16_t{0}};
}

// The same stream whole and split at every size from 1 byte up must give the same outcome.
Outcome run_every_split(const Bytes& stream, std::size_t max = 1 << 20) {
  const Outcome whole = run(stream, stream.size() + 1, max);
  for (std::size_t chunk = 1; chunk <= std::min<std::size_t>(stream.size(), 40); ++chunk) {
    const Outcome split = run(stream, chunk, max);
    EXPECT_EQ(split.events, whole.events) << "chunk " << chunk;
    EXPECT_EQ(split.failure, whole.failure) << "chunk " << chunk;
  }
  return whole;
}

TEST(WsFrameReader, MessagesOfEveryLengthEncoding) {
  for (std::size_t n : {0u, 1u, 125u, 126u, 127u, 65535u, 65536u, 70000u}) {
    const std::string msg(n, 'x');
    const Outcome o = run(frame(1, text(msg)), 4096);
    ASSERT_EQ(o.failure, 0) << n;
    ASSERT_EQ(o.events.size(), 1u) << n;
    EXPECT_EQ(o.events[0], "text:" + msg) << n;
  }
}

TEST(WsFrameReader, FragmentsAndInterleavedControlFramesInAnySplit) {
  const Bytes stream = cat({
      frame(1, text("{\"id\":"), false),
      frame(9, text("mid")),
      frame(0, text(""), false),
      frame(10, text("unsolicited")),
      frame(0, text("1}"), true),
      frame(1, text("second")),
      frame(9, {}),
      frame(8, close_payload(1000, text("bye"))),
      frame(1, text("after close is ignored")),
  });
  const Outcome o = run_every_split(stream);
  EXPECT_EQ(o.failure, 0);
  EXPECT_EQ(o.events, (std::vector<std::string>{"ping:mid", "pong", "text:{\"id\":1}", "text:second", "ping:",
                                                "close:1000"}));
}

TEST(WsFrameReader, ProtocolViolationsFailWith1002) {
  const Bytes ok = frame(1, text("before"));
  const std::vector<std::pair<const char*, Bytes>> cases = {
      {"rsv1", frame(1, text("x"), true, Len::minimal, true, 4)},
      {"rsv3", frame(1, text("x"), true, Len::minimal, true, 1)},
      {"rsv on close", frame(8, close_payload(1000), true, Len::minimal, true, 7)},
      {"opcode 3", frame(3, text("x"))},
      {"opcode 11", frame(11, text("x"))},
      {"fragmented ping", frame(9, text("x"), false)},
      {"ping of 126 bytes", frame(9, Bytes(126, 'p'), true, Len::l16)},
      {"unmasked text", frame(1, text("x"), true, Len::minimal, false)},
      {"unmasked close", frame(8, close_payload(1000), true, Len::minimal, false)},
      {"5 in 16 bits", frame(1, Bytes(5, ' '), true, Len::l16)},
      {"125 in 64 bits", frame(1, Bytes(125, ' '), true, Len::l64)},
      {"200 in 64 bits", frame(1, Bytes(200, ' '), true, Len::l64)},
      {"orphan continuation", frame(0, text("x"))},
      {"text inside text", cat({frame(1, text("a"), false), frame(1, text("b"))})},
      {"binary inside text", cat({frame(1, text("a"), false), frame(2, text("b"))})},
      {"close with 1 byte", frame(8, Bytes{0x03})},
      {"close code 1005", frame(8, close_payload(1005))},
      {"close code 5000", frame(8, close_payload(5000))},
  };
  for (const auto& [what, bad] : cases) {
    const Outcome o = run_every_split(cat({ok, bad, frame(9, text("after"))}));
    EXPECT_EQ(o.failure, 1002) << what;
    EXPECT_EQ(o.events, std::vector<std::string>{"text:before"}) << what;  // nothing after the bad frame
  }
  // The most significant bit of a 64-bit length.
  Bytes msb{0x81, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4};
  EXPECT_EQ(run(msb, 100).failure, 1002);
}

TEST(WsFrameReader, CloseCodes) {
  for (std::uint16_t code : {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 3000, 3999, 4000, 4999}) {
    const Outcome o = run(frame(8, close_payload(code, text("reason"))), 100);
    EXPECT_EQ(o.failure, 0) << code;
    EXPECT_EQ(o.events, std::vector<std::string>{"close:" + std::to_string(code)});
  }
  for (std::uint16_t code : {0, 999, 1004, 1005, 1006, 1014, 1015, 1016, 1100, 2000, 2999, 5000, 5001, 65535})
    EXPECT_EQ(run(frame(8, close_payload(code)), 100).failure, 1002) << code;
  EXPECT_EQ(run(frame(8, {}), 100).events, std::vector<std::string>{"close:0"});
  EXPECT_EQ(run(frame(8, close_payload(1000, {0xc0, 0xaf})), 100).failure, 1007);
}

TEST(WsFrameReader, BinaryIs1003AndOversizeIs1009BeforeThePayload) {
  EXPECT_EQ(run(frame(2, Bytes(10, 1)), 100).failure, 1003);
  EXPECT_EQ(run(frame(1, Bytes(100, ' ')), 1000, 100).failure, 0);
  EXPECT_EQ(run(frame(1, Bytes(101, ' ')), 1000, 100).failure, 1009);
  // The declared length alone fails: only the header is sent.
  Bytes header = frame(1, Bytes(101, ' '));
  header.resize(2 + 4);
  EXPECT_EQ(run(header, 1, 100).failure, 1009);
  // Fragments: the one that crosses the limit fails.
  const Outcome o = run(cat({frame(1, Bytes(60, ' '), false), frame(0, Bytes(41, ' '))}), 1000, 100);
  EXPECT_EQ(o.failure, 1009);
}

TEST(WsFrameReader, Utf8IsCheckedAsBytesArrive) {
  // Valid multi-byte text split at every byte.
  const std::string valid = "\xce\xba\xe2\x82\xac\xf0\x9d\x84\x9e \xf4\x8f\xbf\xbf";
  EXPECT_EQ(run_every_split(frame(1, text(valid))).events, std::vector<std::string>{"text:" + valid});
  // A fragmented message with a character split between fragments.
  EXPECT_EQ(run(cat({frame(1, text("\xe2\x82"), false), frame(0, text("\xac"))}), 100).events,
            std::vector<std::string>{"text:\xe2\x82\xac"});
  // An invalid first fragment fails without waiting for the rest.
  EXPECT_EQ(run(frame(1, {0x7b, 0xc0, 0xaf}, false), 100).failure, 1007);
  // Truncated at the end of the message.
  EXPECT_EQ(run(cat({frame(1, text("a"), false), frame(0, {0xe2, 0x82})}), 100).failure, 1007);
}

TEST(Utf8, StrictRules) {
  auto ok = [](Bytes b) { return valid_utf8(b); };
  EXPECT_TRUE(ok(text("plain ascii, longer than eight bytes")));
  EXPECT_TRUE(ok({0xc2, 0x80, 0xdf, 0xbf, 0xe0, 0xa0, 0x80, 0xef, 0xbf, 0xbf, 0xf0, 0x90, 0x80, 0x80, 0xf4, 0x8f, 0xbf, 0xbf}));
  EXPECT_FALSE(ok({0xc0, 0xaf}));              // overlong
  EXPECT_FALSE(ok({0xc1, 0xbf}));              // overlong
  EXPECT_FALSE(ok({0xe0, 0x80, 0xaf}));        // overlong
  EXPECT_FALSE(ok({0xf0, 0x80, 0x80, 0xaf}));  // overlong
  EXPECT_FALSE(ok({0xed, 0xa0, 0x80}));        // surrogate
  EXPECT_FALSE(ok({0xf4, 0x90, 0x80, 0x80}));  // above U+10FFFF
  EXPECT_FALSE(ok({0xf5, 0x80, 0x80, 0x80}));
  EXPECT_FALSE(ok({0xfe}));
  EXPECT_FALSE(ok({0x80}));
  EXPECT_FALSE(ok({0xe2, 0x82}));              // truncated
  EXPECT_FALSE(ok({0xf0, 0x9d, 0x84, 0x41}));  // truncated, then ASCII
  EXPECT_FALSE(ok(text("eight ok\xff")));      // after an ASCII run
}

TEST(WsFrameEncoding, HeadersAndClosePayloads) {
  auto h = ws_frame_header(WsOpcode::text, 5);
  EXPECT_EQ(Bytes(h.bytes.begin(), h.bytes.begin() + h.size), (Bytes{0x81, 5}));
  h = ws_frame_header(WsOpcode::text, 126);
  EXPECT_EQ(Bytes(h.bytes.begin(), h.bytes.begin() + h.size), (Bytes{0x81, 126, 0, 126}));
  h = ws_frame_header(WsOpcode::pong, 0);
  EXPECT_EQ(Bytes(h.bytes.begin(), h.bytes.begin() + h.size), (Bytes{0x8a, 0}));
  h = ws_frame_header(WsOpcode::text, 65536);
  EXPECT_EQ(Bytes(h.bytes.begin(), h.bytes.begin() + h.size), (Bytes{0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0}));

  EXPECT_EQ(ws_close_payload(1008, "slow"), std::string("\x03\xf0slow"));
  // 41 three-byte characters = 123 bytes fit; 42 are cut at a character boundary.
  std::string euros;
  for (int i = 0; i < 42; ++i) euros += "\xe2\x82\xac";
  const std::string p = ws_close_payload(1000, euros);
  EXPECT_EQ(p.size(), 2u + 123u);
  EXPECT_TRUE(valid_utf8({reinterpret_cast<const std::uint8_t*>(p.data()) + 2, p.size() - 2}));
  std::string cut_inside(122, 'a');
  cut_inside += "\xe2\x82\xac";
  EXPECT_EQ(ws_close_payload(1000, cut_inside).size(), 2u + 122u);
}

}  // namespace
}  // namespace presd::transport
