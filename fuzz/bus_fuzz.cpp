// The /ws/bus command layer on arbitrary frames, against a real hub (in-memory store, inline
// crypto): every frame must get an answer and never crash the server, and the fast paths
// (plain-JSON frames, synchronous refusals) must answer exactly as the general path does: a
// second hub over the same store and keys gets each frame with them switched off.
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/fast_path.h"
#include "hub/bus_protocol.h"
#include "hub/hub.h"
#include "store/sqlite_store.h"

namespace {

class Sink final : public presd::transport::WsConnection {
 public:
  bool send(std::shared_ptr<const std::string> frame) override {
    std::string f = *frame;
    // Deliveries carry the hub's random frame-id prefix ("<12 hex>-<n>"): compared without it.
    if (f.starts_with("{\"id\":\"") && f.size() > 19 && f[19] == '-') f.replace(7, 12, "<prefix>");
    // The ack of a server-signed PRES carries the new token, signed with each World's own key.
    if (auto at = f.find("\"token\":\""); at != std::string::npos) {
      const auto from = at + 9, to = f.find('"', from);
      if (to != std::string::npos) f.replace(from, to - from, "<token>");
    }
    frames.push_back(std::move(f));
    return true;
  }
  void close(std::uint16_t, std::string) override {}
  std::uint64_t id() const override { return 1; }
  const std::string& remote_ip() const override { return ip_; }
  std::vector<std::string> frames;

 private:
  std::string ip_ = "127.0.0.1";
};

struct Side {
  std::unique_ptr<presd::Hub> hub;
  std::unique_ptr<presd::BusProtocol> bus;
  std::shared_ptr<Sink> conn = std::make_shared<Sink>();
};

struct World {
  presd::ManualClock clock{1'800'000'000'000};
  presd::SqliteStore store{":memory:"};
  presd::KeyRing keys{store};
  Side fast, general;

  World() {
    (void)keys.ensure_tenant("alice.test", clock.now_s());
    (void)store.create_context({"a1~AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "alice.test", "alice.test", 1});
    presd::HubConfig cfg;
    cfg.command_rate_per_s = 1e9;
    cfg.command_burst = 1e9;
    cfg.rates.connection_rate_per_s = 1e9;
    cfg.rates.connection_burst = 1e9;
    for (Side* s : {&fast, &general}) {
      s->hub = std::make_unique<presd::Hub>(
          cfg, clock, store, keys,
          presd::Executors{[](presd::Executors::Task t) { t(); }, [](presd::Executors::Task t) { t(); }});
      s->bus = std::make_unique<presd::BusProtocol>(*s->hub);
      s->hub->attach(s->conn, "alice.test");
    }
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static World w;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  w.fast.conn->frames.clear();
  w.general.conn->frames.clear();
  presd::fast_path::set_enabled(true);
  w.fast.bus->on_message(w.fast.conn, text);
  presd::fast_path::set_enabled(false);
  w.general.bus->on_message(w.general.conn, text);
  presd::fast_path::set_enabled(true);
  if (w.fast.conn->frames.empty()) std::abort();  // every frame gets an ack or an error
  if (w.fast.conn->frames != w.general.conn->frames) std::abort();  // the fast path answered differently
  w.clock.advance_ms(1000);
  w.fast.hub->tick();
  w.general.hub->tick();
  return 0;
}
