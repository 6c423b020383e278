// The /ws/bus command layer on arbitrary frames, against a real hub (in-memory store, inline
// crypto): every frame must get an answer and never crash the server.
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string_view>

#include "hub/bus_protocol.h"
#include "hub/hub.h"
#include "store/sqlite_store.h"

namespace {

class Sink final : public presd::transport::WsConnection {
 public:
  bool send(std::shared_ptr<const std::string>) override {
    ++frames;
    return true;
  }
  void close(std::uint16_t, std::string) override {}
  std::uint64_t id() const override { return 1; }
  const std::string& remote_ip() const override { return ip_; }
  int frames = 0;

 private:
  std::string ip_ = "127.0.0.1";
};

struct World {
  presd::ManualClock clock{1'800'000'000'000};
  presd::SqliteStore store{":memory:"};
  presd::KeyRing keys{store};
  std::unique_ptr<presd::Hub> hub;
  std::unique_ptr<presd::BusProtocol> bus;
  std::shared_ptr<Sink> conn = std::make_shared<Sink>();

  World() {
    (void)keys.ensure_tenant("alice.test", clock.now_s());
    (void)store.create_context({"a1~AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "alice.test", "alice.test", 1});
    presd::HubConfig cfg;
    cfg.command_rate_per_s = 1e9;
    cfg.command_burst = 1e9;
    cfg.rates.connection_rate_per_s = 1e9;
    cfg.rates.connection_burst = 1e9;
    hub = std::make_unique<presd::Hub>(cfg, clock, store, keys,
                                       presd::Executors{[](presd::Executors::Task t) { t(); }, [](presd::Executors::Task t) { t(); }});
    bus = std::make_unique<presd::BusProtocol>(*hub);
    hub->attach(conn, "alice.test");
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static World w;
  const int before = w.conn->frames;
  w.bus->on_message(w.conn, std::string_view(reinterpret_cast<const char*>(data), size));
  if (w.conn->frames == before) std::abort();  // every frame gets an ack or an error
  w.clock.advance_ms(1000);
  w.hub->tick();
  return 0;
}
