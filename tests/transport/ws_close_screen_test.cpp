// WsCloseScreen on hand-made client byte streams: which close frames are rewritten, that data
// passes untouched, and that frames split anywhere across reads are screened the same way.
#include "transport/ws_close_screen.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace presd::transport {
namespace {

using Bytes = std::vector<std::uint8_t>;
constexpr std::uint8_t kKey[4] = {0x37, 0xfa, 0x21, 0x3d};

// A masked client frame (minimal length encoding).
Bytes frame(std::uint8_t opcode, const Bytes& payload, bool fin = true) {
  Bytes out{static_cast<std::uint8_t>((fin ? 0x80 : 0) | opcode)};
  const std::size_t n = payload.size();
  if (n < 126) {
    out.push_back(static_cast<std::uint8_t>(0x80 | n));
  } else if (n < 65536) {
    out.insert(out.end(), {0xfe, static_cast<std::uint8_t>(n >> 8), static_cast<std::uint8_t>(n)});
  } else {
    out.push_back(0xff);
    for (int s = 56; s >= 0; s -= 8) out.push_back(static_cast<std::uint8_t>(static_cast<std::uint64_t>(n) >> s));
  }
  out.insert(out.end(), kKey, kKey + 4);
  for (std::size_t i = 0; i < n; ++i) out.push_back(payload[i] ^ kKey[i & 3]);
  return out;
}

Bytes close_payload(std::uint16_t code, const Bytes& reason = {}) {
  Bytes p{static_cast<std::uint8_t>(code >> 8), static_cast<std::uint8_t>(code)};
  p.insert(p.end(), reason.begin(), reason.end());
  return p;
}

Bytes text(const std::string& s) { return Bytes(s.begin(), s.end()); }

Bytes cat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

// Feeds `stream` in reads of `chunk` bytes through a buffer of `room` bytes, like server.cpp
// does, and returns every byte delivered.
Bytes run(WsCloseScreen& s, const Bytes& stream, std::size_t chunk, std::size_t room = 4096) {
  Bytes delivered;
  std::size_t pos = 0;
  std::vector<std::uint8_t> buf(room);
  for (int guard = 0; guard < 100000; ++guard) {
    const std::size_t restored = s.restore(buf);
    std::size_t n = 0;
    if (!s.holding()) {
      n = std::min({chunk, room - restored, stream.size() - pos});
      std::copy_n(stream.begin() + static_cast<std::ptrdiff_t>(pos), n, buf.begin() + static_cast<std::ptrdiff_t>(restored));
      pos += n;
    }
    const std::size_t ready = s.screen({buf.data(), restored + n});
    delivered.insert(delivered.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(ready));
    if (pos == stream.size() && !s.holding() && restored + n == ready) break;
    if (pos == stream.size() && n == 0 && ready == 0) break;  // an unfinished frame stays held
  }
  return delivered;
}

// The close code Beast will see in the (single) close frame at the end of `delivered`.
std::uint16_t close_code_at(const Bytes& delivered, std::size_t at) {
  const std::uint8_t* key = &delivered[at + 2];
  return static_cast<std::uint16_t>(((delivered[at + 6] ^ key[0]) << 8) | (delivered[at + 7] ^ key[1]));
}

TEST(WsCloseScreen, PassesDataAndValidClosesUntouchedInAnySplit) {
  const Bytes stream = cat({frame(0x1, text(std::string(300, 'a')), false), frame(0x9, text("ping")),
                            frame(0x0, text(std::string(70000, 'b'))), frame(0x2, {}),
                            frame(0x8, close_payload(1000, text("bye \xe2\x82\xac")))});
  for (std::size_t chunk : {1u, 2u, 3u, 7u, 13u, 100u, 4096u}) {
    WsCloseScreen s;
    EXPECT_EQ(run(s, stream, chunk), stream) << "chunk " << chunk;
    EXPECT_EQ(s.rewritten(), 0u);
  }
}

TEST(WsCloseScreen, UnassignedCodesBecomeInvalidSoBeastAnswers1002) {
  for (std::uint16_t code : {5000, 5001, 65535}) {
    const Bytes data = frame(0x1, text("{}"));
    const Bytes stream = cat({data, frame(0x8, close_payload(code, text("r")))});
    for (std::size_t chunk : {1u, 5u, 4096u}) {
      WsCloseScreen s;
      const Bytes out = run(s, stream, chunk);
      ASSERT_EQ(out.size(), stream.size());
      EXPECT_EQ(close_code_at(out, data.size()), 0) << code << " chunk " << chunk;
      EXPECT_EQ(s.rewritten(), 1u);
    }
  }
  // Codes Beast already judges correctly are left to it.
  for (std::uint16_t code : {0, 999, 1004, 1015, 2999, 3000, 4999}) {
    WsCloseScreen s;
    const Bytes stream = frame(0x8, close_payload(code));
    EXPECT_EQ(run(s, stream, 3), stream) << code;
  }
}

TEST(WsCloseScreen, ReasonThatIsNotUtf8Becomes1007WithABlankReason) {
  const Bytes reason{'o', 'k', 0xed, 0xa0, 0x80};  // a surrogate
  const Bytes stream = frame(0x8, close_payload(1000, reason));
  for (std::size_t chunk : {1u, 4u, 4096u}) {
    WsCloseScreen s;
    const Bytes out = run(s, stream, chunk);
    ASSERT_EQ(out.size(), stream.size());
    EXPECT_EQ(close_code_at(out, 0), 1007);
    for (std::size_t i = 2; i < reason.size() + 2; ++i) EXPECT_EQ(out[6 + i] ^ kKey[i & 3], ' ');
  }
}

TEST(WsCloseScreen, MalformedCloseFramesAreLeftToBeast) {
  // Unmasked, fragmented, or longer than 125 bytes: Beast fails them with 1002 on its own.
  Bytes unmasked{0x88, 0x02, 0x13, 0x88};
  Bytes fragmented = frame(0x8, close_payload(5000), false);
  Bytes too_long = frame(0x8, close_payload(5000, Bytes(124, 'x')));
  for (const Bytes& f : {unmasked, fragmented, too_long}) {
    WsCloseScreen s;
    EXPECT_EQ(run(s, f, 4096), f);
    EXPECT_EQ(s.rewritten(), 0u);
  }
}

TEST(WsCloseScreen, AnUnfinishedCloseFrameIsHeldUntilWhole) {
  WsCloseScreen s;
  Bytes f = frame(0x8, close_payload(5000));
  std::vector<std::uint8_t> buf(f.begin(), f.begin() + 5);
  EXPECT_EQ(s.screen(buf), 0u);
  EXPECT_TRUE(s.holding());
  std::vector<std::uint8_t> next(64);
  EXPECT_EQ(s.restore(next), 5u);
  std::copy(f.begin() + 5, f.end(), next.begin() + 5);
  EXPECT_EQ(s.screen({next.data(), f.size()}), f.size());
  EXPECT_EQ(s.rewritten(), 1u);
}

TEST(WsCloseScreen, TooLittleRoomToRestoreStopsScreening) {
  WsCloseScreen s;
  Bytes f = frame(0x8, close_payload(5000, text("reason")));
  std::vector<std::uint8_t> head(f.begin(), f.begin() + 8);
  EXPECT_EQ(s.screen(head), 0u);
  // Only 3 bytes of room: the held frame is handed out unscreened, in order.
  Bytes out(3);
  EXPECT_EQ(s.restore(out), 3u);
  EXPECT_TRUE(s.holding());
  EXPECT_EQ(s.screen(out), 3u);
  Bytes rest(64);
  EXPECT_EQ(s.restore(rest), 5u);
  EXPECT_EQ(s.screen({rest.data(), 5}), 5u);
  EXPECT_EQ(Bytes(f.begin(), f.begin() + 3), out);
  EXPECT_EQ(s.rewritten(), 0u);
}

TEST(WsCloseScreen, Utf8Validation) {
  auto ok = [](Bytes b) { return valid_utf8(b); };
  EXPECT_TRUE(ok(text("plain ascii")));
  EXPECT_TRUE(ok({0xc2, 0x80, 0xdf, 0xbf, 0xe0, 0xa0, 0x80, 0xef, 0xbf, 0xbf, 0xf0, 0x90, 0x80, 0x80, 0xf4, 0x8f, 0xbf, 0xbf}));
  EXPECT_FALSE(ok({0xc0, 0xaf}));              // overlong
  EXPECT_FALSE(ok({0xe0, 0x80, 0xaf}));        // overlong
  EXPECT_FALSE(ok({0xf0, 0x80, 0x80, 0xaf}));  // overlong
  EXPECT_FALSE(ok({0xed, 0xa0, 0x80}));        // surrogate
  EXPECT_FALSE(ok({0xf4, 0x90, 0x80, 0x80}));  // above U+10FFFF
  EXPECT_FALSE(ok({0xf5, 0x80, 0x80, 0x80}));
  EXPECT_FALSE(ok({0x80}));
  EXPECT_FALSE(ok({0xe2, 0x82}));              // truncated
  EXPECT_FALSE(ok({0xe2, 0x41, 0x82}));
}

}  // namespace
}  // namespace presd::transport
