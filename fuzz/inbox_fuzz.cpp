// POST /api/inbox bodies from peers, against a real hub: the body parser, then the peer path of
// the admission pipeline (context owner, the owner's relay proof, remote key lookup, ES384).
// Every body must end in exactly one answer, as the HTTP handler promises its client, and the
// body parser's fast path (plain JSON) must read what the general path reads.
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string_view>

#include "common/fast_path.h"
#include "federation/inbox_body.h"
#include "hub/hub.h"
#include "store/sqlite_store.h"

namespace {

constexpr const char* kLocalContext = "a1~AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";   // owned here (alice)
constexpr const char* kRemoteContext = "a1~BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB";  // owned by bob's instance

// bob.test's instance, in-process: its keys answer the hub's remote lookups synchronously.
class PeerKeys final : public presd::RemoteKeySource {
 public:
  explicit PeerKeys(const presd::KeyRing& ring) : ring_(ring) {}
  void lookup(const std::string& iss, const std::string& key_id,
              std::function<void(presd::Result<presd::Es384PublicKey>)> done) override {
    if (const presd::TenantKey* key = ring_.find(iss, key_id)) return done(key->public_key);
    done(presd::Error(presd::ErrorCode::token_unknown_key, "no key " + key_id + " for " + iss));
  }
  bool invalidate_after_failed_verify(const std::string&) override { return ++refetches_ % 2 == 1; }

 private:
  const presd::KeyRing& ring_;
  int refetches_ = 0;
};

struct World {
  presd::ManualClock clock{1'800'000'000'000};
  presd::SqliteStore store{":memory:"};
  presd::KeyRing keys{store};
  presd::SqliteStore peer_store{":memory:"};
  presd::KeyRing peer_keys{peer_store};
  PeerKeys remote{peer_keys};
  std::unique_ptr<presd::Hub> hub;

  World() {
    (void)keys.ensure_tenant("alice.test", clock.now_s());
    (void)peer_keys.ensure_tenant("bob.test", clock.now_s());
    (void)store.create_context({kLocalContext, "alice.test", "alice.test", 1});
    (void)store.create_context({kRemoteContext, "bob.test", "bob.test", 1});
    presd::HubConfig cfg;
    cfg.rates.issuer_rate_per_s = 1e9;
    cfg.rates.issuer_burst = 1e9;
    hub = std::make_unique<presd::Hub>(cfg, clock, store, keys,
                                       presd::Executors{[](presd::Executors::Task t) { t(); }, [](presd::Executors::Task t) { t(); }});
    hub->set_remote_keys(&remote);
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static World w;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto body = presd::parse_inbox_body(text);
  presd::fast_path::set_enabled(false);
  auto general = presd::parse_inbox_body(text);
  presd::fast_path::set_enabled(true);
  if (body.ok() != general.ok()) std::abort();  // the fast path answered differently
  if (!body) {
    if (body.error().message != general.error().message) std::abort();
    return 0;
  }
  if (body->token != general->token || body->relay != general->relay) std::abort();
  int answers = 0;
  w.hub->submit_token(std::string(body->token), [&answers](presd::Result<presd::Accepted>) { ++answers; },
                      presd::Origin::peer, std::move(body->relay));
  if (answers != 1) std::abort();  // executors are inline: the answer is due now, and only once
  return 0;
}
