// Hub costs without sockets: rejection before any signature work, and fan-out to N subscribers
// (one serialized frame shared by all). Per-delivery cost = slope across the subscriber counts.
#include <benchmark/benchmark.h>

#include "hub/hub.h"
#include "store/sqlite_store.h"

namespace presd {
namespace {

class CountingConnection final : public transport::WsConnection {
 public:
  explicit CountingConnection(std::uint64_t id) : id_(id) {}
  bool send(std::shared_ptr<const std::string> frame) override {
    bytes += frame->size();
    return true;
  }
  void close(std::uint16_t, std::string) override {}
  std::uint64_t id() const override { return id_; }
  const std::string& remote_ip() const override { return ip_; }
  std::uint64_t bytes = 0;

 private:
  std::uint64_t id_;
  std::string ip_ = "127.0.0.1";
};

constexpr const char* kConv = "a1~AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

struct Fixture {
  ManualClock clock{1'800'000'000'000};
  SqliteStore store{":memory:"};
  KeyRing keys{store};
  std::unique_ptr<Hub> hub;
  std::vector<std::shared_ptr<CountingConnection>> conns;

  explicit Fixture(int subscribers) {
    keys.ensure_tenant("alice.test", clock.now_s());
    store.create_context(Context{kConv, "alice.test", "alice.test", clock.now_s()});
    HubConfig cfg;
    cfg.rates.issuer_rate_per_s = 1e9;
    cfg.rates.issuer_burst = 1e9;
    cfg.rates.same_state_interval_ms = 0;
    hub = std::make_unique<Hub>(cfg, clock, store, keys,
                                Executors{[](Executors::Task t) { t(); }, [](Executors::Task t) { t(); }});
    for (int i = 0; i < subscribers; ++i) {
      const std::string user = "u" + std::to_string(i) + ".test";
      store.grant(kConv, user, Role::member);
      auto c = std::make_shared<CountingConnection>(i + 1);
      hub->attach(c, user);
      hub->subscribe(*c, kConv);
      conns.push_back(std::move(c));
    }
  }

  std::string token(int n) {
    PresClaims c;
    c.iss = "alice.test";
    c.k = keys.signing_key(c.iss)->key_id;
    c.subtype = "S" + std::to_string(n);  // a slot per token: none supersedes another
    c.sub = kConv;
    c.iat = clock.now_s();
    return sign_pres_token(c, keys.signing_key(c.iss)->private_key);
  }
};

void BM_RejectReplay(benchmark::State& state) {
  Fixture f(0);
  const std::string t = f.token(0);
  f.hub->submit_token(t, [](Result<Accepted>) {});
  for (auto _ : state) f.hub->submit_token(t, [](Result<Accepted> r) { benchmark::DoNotOptimize(r); });
}
BENCHMARK(BM_RejectReplay);

void BM_VerifyAndFanOut(benchmark::State& state) {
  Fixture f(static_cast<int>(state.range(0)));
  std::vector<std::string> tokens;
  for (int i = 0; i < 256; ++i) tokens.push_back(f.token(i));
  std::size_t next = 0;
  for (auto _ : state) {
    if (next == tokens.size()) {
      state.PauseTiming();
      f.clock.advance_ms(1);  // new slots' iat stay fresh; replay filter holds the old ones
      for (int i = 0; i < 256; ++i) tokens[i] = f.token(static_cast<int>(1000 + next + i));
      next = 0;
      state.ResumeTiming();
    }
    f.hub->submit_token(tokens[next++], [](Result<Accepted> r) { benchmark::DoNotOptimize(r); });
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));  // deliveries
}
BENCHMARK(BM_VerifyAndFanOut)->Arg(10)->Arg(1000)->Arg(10000)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace presd
