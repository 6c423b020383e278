// Client bytes into the WebSocket frame reader (src/transport/ws_codec.h), fed twice: whole and
// cut into reads at sizes taken from the input. Both must report the same events and the same
// failure, whatever the bytes: a reader whose answer depends on how TCP split the stream would
// be a bug even where it does not crash.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "transport/ws_codec.h"

namespace {

using presd::transport::WsFrameReader;

struct Log final : presd::transport::WsFrameSink {
  std::string events;
  void on_ws_text(std::string_view m) override { events.append("T").append(std::to_string(m.size())).append(m); }
  void on_ws_ping(std::string_view p) override { events.append("P").append(std::to_string(p.size())).append(p); }
  void on_ws_pong() override { events.append("O"); }
  void on_ws_close(std::uint16_t code) override { events.append("C").append(std::to_string(code)); }
};

constexpr std::size_t kMaxMessage = 4096;

std::string outcome(const WsFrameReader& r, const Log& log) {
  return log.events + (r.failed() ? "F" + std::to_string(r.failure().code) : std::string(r.done() ? "D" : "-"));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::uint8_t cut = data[0];  // read sizes: 1 + (cut & 31), varying by (cut >> 5)
  std::vector<std::uint8_t> whole(data + 1, data + size);
  std::vector<std::uint8_t> split = whole;

  WsFrameReader a(kMaxMessage), b(kMaxMessage);
  Log la, lb;
  a.feed(whole, la);
  for (std::size_t pos = 0, i = 0; pos < split.size(); ++i) {
    const std::size_t n = std::min(split.size() - pos, 1 + ((cut & 31u) + i * (cut >> 5)) % 64);
    std::vector<std::uint8_t> piece(split.begin() + static_cast<std::ptrdiff_t>(pos),
                                    split.begin() + static_cast<std::ptrdiff_t>(pos + n));
    b.feed(piece, lb);
    pos += n;
  }
  if (outcome(a, la) != outcome(b, lb)) std::abort();
  if (a.failed() && a.failure().code != 1002 && a.failure().code != 1003 && a.failure().code != 1007 &&
      a.failure().code != 1009)
    std::abort();
  return 0;
}
