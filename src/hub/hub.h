// The PRES core of one instance: admits tokens (cheap checks first, the ES384 work off the I/O
// thread), keeps the presence table, and fans frames out to subscribed connections.
// Single-threaded like Redis' pubsub.c: every method runs on the hub's (I/O) thread; only the
// signature work is posted to the crypto executor and comes back through the home executor.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "broker/broker.h"
#include "common/clock.h"
#include "common/result.h"
#include "keys/key_ring.h"
#include "membership/access.h"
#include "presence/presence_table.h"
#include "ratelimit/limits.h"
#include "token/pres_token.h"
#include "transport/http_types.h"

namespace presd {

struct HubConfig {
  Freshness freshness;
  TokenLimits token_limits;
  RateLimitConfig rates;
  std::size_t max_subscriptions_per_connection = 256;
  // Every /ws/bus frame (any command) spends from this per-connection bucket; `pres` also
  // spends from RateLimitConfig::connection_*.
  double command_rate_per_s = 50, command_burst = 200;
  std::int64_t expiry_tick_ms = 100;
};

struct Executors {
  using Task = std::function<void()>;
  std::function<void(Task)> crypto;  // runs CPU-heavy signing/verification (a thread pool)
  std::function<void(Task)> home;    // back onto the hub's thread
};

// A PRES the server signs for a hosted user (WebSocket `pres` with fields, POST /api/actions).
struct PresRequest {
  std::string subtype;
  std::string subject;
  std::optional<std::string> audience;
  std::optional<std::string> content_json;  // a JSON object, serialized
};

struct Accepted {
  std::string token;
  PresClaims claims;
  std::int64_t expires_at_ms = 0;
  bool superseded = false;  // valid, but an equal-or-newer state is held: not delivered
};

struct HubStats {
  std::size_t connections = 0, subscriptions = 0, presence_states = 0;
  std::uint64_t accepted = 0, rejected = 0, delivered_frames = 0, expired = 0;
  std::uint64_t bus_accepted = 0, bus_rejected = 0;  // PRES from other cluster nodes
};

// Hooks for metrics; the hub stays free of any metrics library. Called on the hub's thread.
class HubObserver {
 public:
  virtual ~HubObserver() = default;
  virtual void on_accepted() {}
  virtual void on_rejected(ErrorCode) {}
  virtual void on_verified(double /*seconds*/) {}  // one ES384 verification, timed on the crypto pool
  virtual void on_delivered(std::size_t /*frames*/) {}
  virtual void on_expired() {}
  // A PRES from another cluster node was stored (or found superseded) / was dropped.
  virtual void on_bus_accepted() {}
  virtual void on_bus_rejected(ErrorCode) {}
};

// Public keys of issuers this instance does not host (federation: `GET https://cl-o.<iss>/api/me`,
// cached). Called on the hub's thread; `done` must also run there, exactly once.
class RemoteKeySource {
 public:
  virtual ~RemoteKeySource() = default;
  virtual void lookup(const std::string& iss, const std::string& key_id,
                      std::function<void(Result<Es384PublicKey>)> done) = 0;
  // A signature failed under a key from this source: true if the next lookup refetches.
  virtual bool invalidate_after_failed_verify(const std::string& iss) = 0;
};

// Sends an accepted PRES to the instance that owns its context (federation outbox). Called on
// the hub's thread; must not block.
class PresForwarder {
 public:
  virtual ~PresForwarder() = default;
  virtual void forward(const std::string& owner, const std::string& compact_token, std::int64_t expires_at_ms) = 0;
  // The owner relays a member's PRES to another member's home instance, with its relay proof.
  virtual void relay(const std::string& home, const std::string& compact_token, const std::string& relay_proof,
                     std::int64_t expires_at_ms) = 0;
};

// Where a token came from: tokens from local clients go on to a context's remote owner; tokens
// from peers (the inbox) never travel further, so nothing loops between instances.
enum class Origin { local, peer };

class Hub {
 public:
  using Done = std::function<void(Result<Accepted>)>;
  using Connection = transport::WsConnection;

  Hub(HubConfig config, const Clock& clock, MembershipStore& store, KeyRing& keys, Executors exec);
  ~Hub();
  Hub(const Hub&) = delete;
  Hub& operator=(const Hub&) = delete;

  // Connections. `user` is the authenticated id_tag.
  void attach(const std::shared_ptr<Connection>& conn, std::string user);
  void detach(const Connection& conn);
  const std::string* user_of(const Connection& conn) const;

  // Access-checked; on success returns the snapshot: ACTION `data` objects, JSON-serialized,
  // owned by the presence table: valid until the hub's next call.
  Result<std::vector<const std::string*>> subscribe(const Connection& conn, const std::string& context);
  Status unsubscribe(const Connection& conn, const std::string& context);
  // Per-connection limits: 0 if allowed, else the retry-after in ms.
  std::int64_t take_pres_quota(const Connection& conn);
  std::int64_t take_command_quota(const Connection& conn);

  // A token signed elsewhere (WebSocket `pres` {token}, POST /api/inbox).
  // From a peer (the inbox) for a context owned elsewhere, `relay_proof` is required: the
  // owner's signed proof (federation/relay_proof.h); relay_required / relay_invalid otherwise.
  void submit_token(std::string compact, Done done, Origin origin = Origin::local,
                    std::optional<std::string> relay_proof = std::nullopt);
  // submit_token in two steps, so that a caller needs no callback for the common refusals.
  // admit_token runs the synchronous cheap stages (syntax, freshness, replay, quotas,
  // membership: docs/security.md, stages 4 to 6); a refusal is counted like any other and
  // returned. submit_admitted runs the rest (owner and relay proof for peers, key, signature,
  // commit) for a token admit_token passed, now, on the hub's thread.
  Result<std::shared_ptr<PresToken>> admit_token(std::string_view compact);
  void submit_admitted(std::shared_ptr<PresToken> token, Done done, Origin origin = Origin::local,
                       std::optional<std::string> relay_proof = std::nullopt);
  // Signed here with `user`'s newest key.
  void submit_request(const std::string& user, PresRequest request, Done done);

  // A message from another cluster node (the broker hands it over on the hub's thread): a PRES
  // that node accepted, or its request for our live states (answered through the broker).
  void receive_from_bus(BusMessage message);

  // Expires due presence (sending PRES_EXPIRED) and sweeps limiter memory. Call every tick.
  void tick();
  // A membership was revoked: the user's connections stop receiving the context.
  void on_access_revoked(const std::string& context, const std::string& user);
  // Re-checks every live subscription against the store (after another process, e.g. the
  // `presd context revoke` CLI, changed it) and ends those that lost access. Returns how many.
  std::size_t revalidate_subscriptions();

  HubStats stats() const;
  void set_observer(HubObserver* observer) { observer_ = observer ? observer : &null_observer_; }
  // Without a source, tokens of issuers not hosted here are refused with token_unknown_key.
  void set_remote_keys(RemoteKeySource* source) { remote_keys_ = source; }
  // Without a forwarder, PRES for contexts owned elsewhere are delivered locally only.
  void set_forwarder(PresForwarder* forwarder) { forwarder_ = forwarder; }
  // Every PRES accepted here is published to the other nodes through it (docs/cluster.md).
  void set_broker(Broker* broker) { broker_ = broker; }
  const HubConfig& config() const { return config_; }

 private:
  struct ConnState;
  struct Subscriber {
    ConnState* state;
    Connection* conn;  // state->conn, read by deliver() without touching the state
  };
  struct Admission {
    std::int64_t expires_at_ms;
  };

  Result<Admission> admit(const PresClaims& claims, const std::string* signature);
  Result<Accepted> commit(PresToken token, Origin origin);
  Status accept_from_bus(const std::string& compact);
  void resync(const std::string& node);
  bool store_and_deliver(const PresClaims& c, const std::string& compact, std::int64_t expires, std::int64_t now);
  void federate(const Accepted& accepted, Origin origin);
  void relay_to_member_homes(const Accepted& accepted, const std::string& owner);
  void check_relay_then_verify(std::shared_ptr<PresToken> token, std::string owner, std::string proof, Done done,
                               bool retried = false);
  void resolve_key_and_verify(std::shared_ptr<PresToken> token, Origin origin, Done done);
  void deliver(const std::shared_ptr<const std::string>& frame, const std::string& context,
               const std::optional<std::string>& audience);
  void add_subscriber(ConnState& st, const std::string& context);
  // Takes the subscriber at `index` out of the context's array, without touching its contexts;
  // the subscriber moved into its place learns its new position.
  void unlink_subscriber(const std::string& context, std::size_t index);
  void reject(const Done& done, Error error);
  Error rejected(Error error);  // counts a refusal (stats, observer, debug log)
  void fetch_remote_key_and_verify(std::shared_ptr<PresToken> token, Origin origin, bool retried, Done done);
  void verify_and_commit(std::shared_ptr<PresToken> token, Es384PublicKey key, Origin origin, bool remote, bool retried,
                         Done done);
  std::string next_frame_id();
  static std::string interval_key(const PresClaims& c);
  // interval_key in a buffer reused across calls, for the lookups on the admission path.
  std::string_view interval_key_view(const PresClaims& c);

  HubConfig config_;
  const Clock& clock_;
  AccessChecker access_;
  KeyRing& keys_;
  Executors exec_;
  PresenceTable presence_;
  KeyedRateLimiter issuer_limiter_;
  MinIntervalLimiter same_state_limiter_;
  ReplayFilter replay_;

  std::unordered_map<const Connection*, std::unique_ptr<ConnState>> conns_;
  std::unordered_map<std::string, std::unordered_set<ConnState*>> users_;
  // By context, one dense array a delivery walks (a hash node and a conns_ lookup per target cost
  // about 10% of a 1000-subscriber fan-out); each ConnState keeps its position in every array it
  // is in, so that a removal is a swap with the last.
  std::unordered_map<std::string, std::vector<Subscriber>> subscribers_;
  int delivering_ = 0;  // deliver() in progress: a connection detached meanwhile is kept alive here
  std::vector<std::shared_ptr<Connection>> detached_while_delivering_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);  // guards callbacks after ~Hub
  std::uint64_t frame_seq_ = 0;
  std::string frame_prefix_;
  std::string interval_key_buffer_;
  PresToken scratch_;  // admit_token parses into it: its strings are reused, not reallocated
  std::int64_t last_sweep_ms_ = 0;
  HubStats stats_;
  HubObserver null_observer_;
  HubObserver* observer_ = &null_observer_;
  RemoteKeySource* remote_keys_ = nullptr;
  PresForwarder* forwarder_ = nullptr;
  Broker* broker_ = nullptr;
};

}  // namespace presd
