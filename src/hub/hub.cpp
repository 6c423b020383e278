#include "hub/hub.h"

#include <openssl/rand.h>

#include <chrono>
#include <spdlog/spdlog.h>

#include "common/identifiers.h"
#include "federation/relay_proof.h"
#include "hub/frames.h"

namespace presd {

struct Hub::ConnState {
  std::shared_ptr<Connection> conn;
  std::string user;
  std::unordered_map<std::string, std::size_t> contexts;  // subscribed: the position in subscribers_
  TokenBucket pres_quota;
  TokenBucket command_quota;
};

Hub::Hub(HubConfig config, const Clock& clock, MembershipStore& store, KeyRing& keys, Executors exec)
    : config_(std::move(config)),
      clock_(clock),
      access_(store),
      keys_(keys),
      exec_(std::move(exec)),
      presence_(config_.expiry_tick_ms, config_.freshness.ttl_s * 1000 + 2 * config_.expiry_tick_ms),
      issuer_limiter_(config_.rates.issuer_rate_per_s, config_.rates.issuer_burst),
      same_state_limiter_(config_.rates.same_state_interval_ms) {
  unsigned char nonce[6];
  RAND_bytes(nonce, sizeof nonce);
  static const char* hex = "0123456789abcdef";
  for (unsigned char c : nonce) {
    frame_prefix_ += hex[c >> 4];
    frame_prefix_ += hex[c & 15];
  }
  frame_prefix_ += '-';
}

Hub::~Hub() { *alive_ = false; }

std::string Hub::next_frame_id() { return frame_prefix_ + std::to_string(++frame_seq_); }

namespace {
void build_interval_key(std::string& key, const PresClaims& c) {
  key.clear();
  key.reserve(c.iss.size() + c.sub.size() + c.subtype.size() + 2);
  key += c.iss;
  key += '\n';
  key += c.sub;
  key += '\n';
  key += c.subtype;
}
}  // namespace

std::string Hub::interval_key(const PresClaims& c) {
  std::string key;
  build_interval_key(key, c);
  return key;
}

std::string_view Hub::interval_key_view(const PresClaims& c) {
  build_interval_key(interval_key_buffer_, c);
  return interval_key_buffer_;
}

// ---- connections -------------------------------------------------------------------------

void Hub::attach(const std::shared_ptr<Connection>& conn, std::string user) {
  detach(*conn);  // attached twice: the first state goes with its subscriptions
  auto st = std::make_unique<ConnState>(ConnState{
      conn, std::move(user), {},
      TokenBucket(config_.rates.connection_rate_per_s, config_.rates.connection_burst, clock_.now_ms()),
      TokenBucket(config_.command_rate_per_s, config_.command_burst, clock_.now_ms())});
  users_[st->user].insert(st.get());
  conns_[conn.get()] = std::move(st);
}

void Hub::detach(const Connection& conn) {
  auto it = conns_.find(&conn);
  if (it == conns_.end()) return;
  ConnState& st = *it->second;
  for (const auto& [context, index] : st.contexts) unlink_subscriber(context, index);
  if (auto u = users_.find(st.user); u != users_.end()) {
    u->second.erase(&st);
    if (u->second.empty()) users_.erase(u);
  }
  if (delivering_ > 0) detached_while_delivering_.push_back(st.conn);
  conns_.erase(it);
}

void Hub::add_subscriber(ConnState& st, const std::string& context) {
  auto& subs = subscribers_[context];
  st.contexts.emplace(context, subs.size());
  subs.push_back(Subscriber{&st, st.conn.get()});
}

void Hub::unlink_subscriber(const std::string& context, std::size_t index) {
  auto s = subscribers_.find(context);
  if (s == subscribers_.end()) return;
  std::vector<Subscriber>& subs = s->second;
  if (index + 1 != subs.size()) {
    subs[index] = subs.back();
    subs[index].state->contexts.find(context)->second = index;
  }
  subs.pop_back();
  if (subs.empty()) subscribers_.erase(s);
}

const std::string* Hub::user_of(const Connection& conn) const {
  auto it = conns_.find(&conn);
  return it == conns_.end() ? nullptr : &it->second->user;
}

Result<std::vector<const std::string*>> Hub::subscribe(const Connection& conn, const std::string& context) {
  auto it = conns_.find(&conn);
  if (it == conns_.end()) return Error(ErrorCode::internal, "connection not attached");
  ConnState& st = *it->second;
  if (!is_valid_context_id(context)) return Error(ErrorCode::bad_request, "invalid context id");
  if (!st.contexts.contains(context) && st.contexts.size() >= config_.max_subscriptions_per_connection)
    return Error(ErrorCode::too_many_subscriptions,
                 "at most " + std::to_string(config_.max_subscriptions_per_connection) +
                     " subscriptions per connection");
  if (Status s = access_.check(context, st.user, Access::subscribe); !s) return s.error();
  if (!st.contexts.contains(context)) add_subscriber(st, context);

  const auto states = presence_.snapshot(context, st.user, clock_.now_ms());
  std::vector<const std::string*> snapshot;
  snapshot.reserve(states.size());
  for (const PresenceState* p : states) snapshot.push_back(p->frame.get());
  return snapshot;
}

Status Hub::unsubscribe(const Connection& conn, const std::string& context) {
  auto it = conns_.find(&conn);
  if (it == conns_.end()) return Error(ErrorCode::internal, "connection not attached");
  ConnState& st = *it->second;
  auto sub = st.contexts.find(context);
  if (sub == st.contexts.end()) return Error(ErrorCode::not_found, "not subscribed to this context");
  unlink_subscriber(context, sub->second);
  st.contexts.erase(sub);
  return {};
}

std::int64_t Hub::take_pres_quota(const Connection& conn) {
  auto it = conns_.find(&conn);
  return it == conns_.end() ? 1000 : it->second->pres_quota.try_take(clock_.now_ms());
}

std::int64_t Hub::take_command_quota(const Connection& conn) {
  auto it = conns_.find(&conn);
  return it == conns_.end() ? 1000 : it->second->command_quota.try_take(clock_.now_ms());
}

void Hub::on_access_revoked(const std::string& context, const std::string& user) {
  auto u = users_.find(user);
  if (u == users_.end()) return;
  std::vector<std::shared_ptr<Connection>> conns;
  for (const ConnState* st : u->second) conns.push_back(st->conn);
  for (const auto& c : conns) {
    if (!unsubscribe(*c, context)) continue;
    auto frame = std::make_shared<const std::string>(
        frames::unsubscribed_frame(next_frame_id(), context, "access_revoked"));
    c->send(frame);
  }
}

std::size_t Hub::revalidate_subscriptions() {
  std::vector<std::pair<const Connection*, std::string>> lost;
  for (const auto& [conn, st] : conns_)
    for (const auto& [context, index] : st->contexts)
      if (Status s = access_.check(context, st->user, Access::subscribe);
          !s && s.code() != ErrorCode::unavailable)  // a busy store is no reason to drop anyone
        lost.emplace_back(conn, context);
  for (const auto& [conn, context] : lost) {
    if (!unsubscribe(*conn, context)) continue;
    spdlog::info("hub: {} lost access to {}, subscription ended", conns_.at(conn)->user, context);
    conns_.at(conn)->conn->send(std::make_shared<const std::string>(
        frames::unsubscribed_frame(next_frame_id(), context, "access_revoked")));
  }
  return lost.size();
}

// ---- admission -----------------------------------------------------------------------------

// Every check that costs microseconds, in order of cost, before any signature work. Issuer
// quotas are only checked here; they are consumed in commit() once the signature is proven,
// so forged tokens naming someone else cannot spend that someone's quota.
Result<Hub::Admission> Hub::admit(const PresClaims& c, const std::string* signature) {
  const std::int64_t now = clock_.now_ms();
  if (Status s = check_freshness(c, now, config_.freshness); !s) return s.error();
  if (signature && replay_.seen(*signature))
    return Error(ErrorCode::token_duplicate, "this token was already accepted");
  if (std::int64_t wait = issuer_limiter_.check(c.iss, now); wait > 0)
    return Error(ErrorCode::rate_limited, "too many PRES from " + c.iss, wait);
  if (std::int64_t wait = same_state_limiter_.check(interval_key_view(c), now); wait > 0)
    return Error(ErrorCode::rate_limited, "same state repeated too soon", wait);
  if (Status s = access_.check(c.sub, c.iss, Access::send); !s) return s.error();
  if (c.aud) {
    Status s = access_.check(c.sub, *c.aud, Access::receive);
    if (!s) {
      if (s.code() == ErrorCode::access_denied)
        return Error(ErrorCode::audience_no_access, *c.aud + " has no access to " + c.sub);
      return s.error();
    }
  }
  return Admission{expires_at_ms(c, config_.freshness)};
}

Error Hub::rejected(Error error) {
  ++stats_.rejected;
  observer_->on_rejected(error.code);
  SPDLOG_DEBUG("PRES rejected: {} {}", to_string(error.code), error.message);
  return error;
}

void Hub::reject(const Done& done, Error error) { done(rejected(std::move(error))); }

void Hub::submit_token(std::string compact, Done done, Origin origin, std::optional<std::string> relay_proof) {
  auto token = admit_token(compact);
  if (!token) return done(token.error());  // counted by admit_token
  submit_admitted(std::move(token).value(), std::move(done), origin, std::move(relay_proof));
}

Result<std::shared_ptr<PresToken>> Hub::admit_token(std::string_view compact) {
  if (Status s = parse_pres_token_into(compact, config_.token_limits, scratch_); !s)
    return rejected(std::move(s).error());
  if (auto adm = admit(scratch_.claims, &scratch_.signature); !adm) return rejected(std::move(adm).error());
  auto token = std::make_shared<PresToken>(scratch_);  // kept: copied only now
  token->compact = std::string(compact);
  return token;
}

void Hub::submit_admitted(std::shared_ptr<PresToken> token, Done done, Origin origin,
                          std::optional<std::string> relay_proof) {
  if (origin == Origin::peer) {
    // A peer may hand us a PRES for a context we own; for one owned elsewhere only the owner may.
    auto ctx = access_.context(token->claims.sub);
    if (!ctx) return reject(done, ctx.error());
    if (!keys_.hosts(ctx->owner)) {
      if (!relay_proof)
        return reject(done, Error(ErrorCode::relay_required, token->claims.sub + " is owned by " + ctx->owner +
                                                                 ": only its owner's relay is accepted"));
      return check_relay_then_verify(std::move(token), ctx->owner, std::move(*relay_proof), std::move(done));
    }
  }
  resolve_key_and_verify(std::move(token), origin, std::move(done));
}

void Hub::resolve_key_and_verify(std::shared_ptr<PresToken> token, Origin origin, Done done) {
  const PresClaims& claims = token->claims;
  if (const TenantKey* key = keys_.find(claims.iss, claims.k))
    return verify_and_commit(std::move(token), key->public_key, origin, false, false, std::move(done));
  if (keys_.hosts(claims.iss) || !remote_keys_)
    return reject(done, Error(ErrorCode::token_unknown_key, "no key " + claims.k + " for " + claims.iss));
  fetch_remote_key_and_verify(std::move(token), origin, false, std::move(done));
}

// The relay proof: cheap checks, the owner's key, its signature (crypto pool), then the inner
// token as usual. Both signatures are checked; the proof only vouches that the owner relayed it.
void Hub::check_relay_then_verify(std::shared_ptr<PresToken> token, std::string owner, std::string proof_text, Done done,
                                  bool retried) {
  auto parsed = parse_relay_proof(proof_text);
  if (!parsed) return reject(done, parsed.error());
  auto proof = std::make_shared<RelayProof>(std::move(parsed.value()));
  const RelayClaims& r = proof->claims;
  const std::int64_t now = clock_.now_ms();
  if (r.owner != owner) return reject(done, Error(ErrorCode::relay_invalid, "relay proof is not from the context's owner " + owner));
  if (r.context != token->claims.sub) return reject(done, Error(ErrorCode::relay_invalid, "relay proof is for another context"));
  if (r.token_hash != token_hash(token->compact)) return reject(done, Error(ErrorCode::relay_invalid, "relay proof is for another token"));
  if (r.iat * 1000 + config_.freshness.ttl_s * 1000 <= now || r.iat * 1000 > now + config_.freshness.max_skew_s * 1000)
    return reject(done, Error(ErrorCode::relay_invalid, "relay proof is stale or from the future"));
  if (!remote_keys_) return reject(done, Error(ErrorCode::token_unknown_key, "remote keys are not configured"));
  remote_keys_->lookup(owner, r.key_id, [this, alive = alive_, token = std::move(token), proof = std::move(proof),
                                         owner, retried, done = std::move(done)](Result<Es384PublicKey> key) mutable {
    if (!*alive) return;
    if (!key) return reject(done, key.error());
    exec_.crypto([this, alive = alive_, token = std::move(token), proof = std::move(proof), pub = std::move(key).value(),
                  owner = std::move(owner), retried, done = std::move(done)]() mutable {
      const bool valid = pub.verify(proof->signing_input(), proof->signature);
      exec_.home([this, alive = std::move(alive), token = std::move(token), proof = std::move(proof), valid,
                  owner = std::move(owner), retried, done = std::move(done)]() mutable {
        if (!*alive) return;
        if (!valid) {
          // The owner may have rotated its key: refetch its document once, as for tokens.
          if (!retried && remote_keys_ && remote_keys_->invalidate_after_failed_verify(owner))
            return check_relay_then_verify(std::move(token), std::move(owner), proof->compact, std::move(done), true);
          return reject(done, Error(ErrorCode::relay_invalid, "relay proof signature does not verify"));
        }
        resolve_key_and_verify(std::move(token), Origin::peer, std::move(done));
      });
    });
  });
}

void Hub::fetch_remote_key_and_verify(std::shared_ptr<PresToken> token, Origin origin, bool retried, Done done) {
  const std::string iss = token->claims.iss, kid = token->claims.k;
  remote_keys_->lookup(iss, kid, [this, alive = alive_, token = std::move(token), origin, retried,
                                  done = std::move(done)](Result<Es384PublicKey> key) mutable {
    if (!*alive) return;
    if (!key) return reject(done, key.error());
    verify_and_commit(std::move(token), std::move(key).value(), origin, true, retried, std::move(done));
  });
}

// ES384 on the crypto pool, then back on the hub thread to commit. A remote key that fails
// may be stale (the issuer rotated): its document is refetched once.
void Hub::verify_and_commit(std::shared_ptr<PresToken> token, Es384PublicKey key, Origin origin, bool remote,
                            bool retried, Done done) {
  exec_.crypto([this, alive = alive_, token, pub = std::move(key), origin, remote, retried,
                done = std::move(done)]() mutable {
    const auto started = std::chrono::steady_clock::now();
    const bool valid = pub.verify(token->signing_input(), token->signature);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    exec_.home([this, alive = std::move(alive), token, valid, seconds, origin, remote, retried,
                done = std::move(done)]() mutable {
      if (!*alive) return;
      observer_->on_verified(seconds);
      if (!valid) {
        if (remote && !retried && remote_keys_ && remote_keys_->invalidate_after_failed_verify(token->claims.iss))
          return fetch_remote_key_and_verify(std::move(token), origin, true, std::move(done));
        return reject(done, Error(ErrorCode::token_bad_signature, "ES384 signature does not verify"));
      }
      auto result = commit(std::move(*token), origin);
      if (!result) return reject(done, result.error());
      done(std::move(result));
    });
  });
}

void Hub::submit_request(const std::string& user, PresRequest req, Done done) {
  const TenantKey* key = keys_.signing_key(user);
  if (!key) return reject(done, Error(ErrorCode::issuer_not_hosted, user + " is not hosted here"));
  PresClaims c;
  c.iss = user;
  c.k = key->key_id;
  c.subtype = std::move(req.subtype);
  c.sub = std::move(req.subject);
  c.aud = std::move(req.audience);
  c.content_json = std::move(req.content_json);
  c.iat = clock_.now_s();
  // Reject bad fields before paying for a signature: sign, then parse, would waste ~0.5 ms.
  if (Status s = validate_pres_claims(c, config_.token_limits); !s) return reject(done, s.error());
  if (auto adm = admit(c, nullptr); !adm) return reject(done, adm.error());

  exec_.crypto([this, alive = alive_, c = std::move(c), priv = key->private_key, done = std::move(done)]() mutable {
    std::string jwt = sign_pres_token(c, priv);
    exec_.home([this, alive = std::move(alive), jwt = std::move(jwt), done = std::move(done)]() mutable {
      if (!*alive) return;
      auto parsed = parse_pres_token(jwt, config_.token_limits);
      if (!parsed) return reject(done, Error(ErrorCode::internal, "signed token does not parse"));
      auto result = commit(std::move(parsed.value()), Origin::local);
      if (!result) return reject(done, result.error());
      done(std::move(result));
    });
  });
}

// Back on the hub thread with a proven signature: state that changed while the signature was
// checked (a concurrent copy, spent quota) is checked again, then the state is stored and sent.
Result<Accepted> Hub::commit(PresToken token, Origin origin) {
  const PresClaims& c = token.claims;
  const std::int64_t now = clock_.now_ms();
  const std::int64_t expires = expires_at_ms(c, config_.freshness);
  if (replay_.seen(token.signature)) return Error(ErrorCode::token_duplicate, "this token was already accepted");
  if (std::int64_t wait = issuer_limiter_.try_take(c.iss, now); wait > 0)
    return Error(ErrorCode::rate_limited, "too many PRES from " + c.iss, wait);
  if (std::int64_t wait = same_state_limiter_.try_take(interval_key(c), now); wait > 0)
    return Error(ErrorCode::rate_limited, "same state repeated too soon", wait);
  if (!replay_.remember(token.signature, expires, now))
    return Error(ErrorCode::unavailable, "replay filter full");
  // Published even when superseded here: the other nodes spend the same quota and remember the
  // same token, so limits and duplicate detection hold across the cluster.
  if (broker_) broker_->publish_pres(token.compact);

  Accepted accepted{std::move(token.compact), c, expires, false};
  if (!store_and_deliver(c, accepted.token, expires, now)) {
    accepted.superseded = true;
    return accepted;
  }
  ++stats_.accepted;
  observer_->on_accepted();
  SPDLOG_DEBUG("PRES {} from {} in {} accepted", c.subtype, c.iss, c.sub);
  federate(accepted, origin);
  return accepted;
}

// Stores the state and sends it to this node's recipients; false if a newer state is held.
bool Hub::store_and_deliver(const PresClaims& c, const std::string& compact, std::int64_t expires, std::int64_t now) {
  auto data = std::make_shared<const std::string>(frames::action_data(c, expires));
  PresenceState state{c.sub, c.iss, c.subtype, c.aud, c.iat, expires, data,
                      broker_ ? std::make_shared<const std::string>(compact) : nullptr};
  if (!presence_.upsert(std::move(state), now)) return false;
  deliver(std::make_shared<const std::string>(frames::action_frame(next_frame_id(), *data)), c.sub, c.aud);
  return true;
}

// ---- cluster bus ---------------------------------------------------------------------------

void Hub::receive_from_bus(BusMessage message) {
  if (message.kind == BusMessage::Kind::sync) return resync(message.origin);
  Status s = accept_from_bus(message.token);
  if (s) {
    ++stats_.bus_accepted;
    observer_->on_bus_accepted();
    return;
  }
  ++stats_.bus_rejected;
  observer_->on_bus_rejected(s.code());
  // Duplicates are routine (resync answers, one token sent to two nodes), and so are stale
  // states after a reconnect; anything else means nodes disagree (configuration, version).
  if (s.code() == ErrorCode::token_duplicate || s.code() == ErrorCode::token_expired)
    SPDLOG_DEBUG("bus: PRES from {} dropped: {} {}", message.origin, to_string(s.code()), s.error().message);
  else
    spdlog::warn("bus: PRES from node {} dropped: {} {}", message.origin, to_string(s.code()), s.error().message);
}

// The node that published the token admitted it (membership, signature, quotas) and the bus is
// trusted infrastructure (docs/cluster.md), so only what depends on this node's own state or on
// time is checked again: syntax, freshness (a message may have waited in a reconnect buffer),
// and the replay filter (exactly once per connection, however often it arrives).
Status Hub::accept_from_bus(const std::string& compact) {
  auto parsed = parse_pres_token(compact, config_.token_limits);
  if (!parsed) return parsed.error();
  const PresClaims& c = parsed->claims;
  const std::int64_t now = clock_.now_ms();
  if (Status s = check_freshness(c, now, config_.freshness); !s) return s;
  if (replay_.seen(parsed->signature)) return Error(ErrorCode::token_duplicate, "this token was already accepted");
  const std::int64_t expires = expires_at_ms(c, config_.freshness);
  if (!replay_.remember(parsed->signature, expires, now)) return Error(ErrorCode::unavailable, "replay filter full");
  // Spent here too, into debt if need be, so the issuer's quota holds across the cluster.
  issuer_limiter_.spend(c.iss, now);
  same_state_limiter_.record(interval_key(c), now);
  store_and_deliver(c, compact, expires, now);
  return {};
}

// Another node (re)joined the bus: it gets every state live here, each once; its replay filter
// drops those it already has, and freshness is checked again on its side.
void Hub::resync(const std::string& node) {
  if (!broker_) return;
  std::size_t sent = 0;
  for (const PresenceState* s : presence_.live(clock_.now_ms()))
    if (s->token) {
      broker_->send_pres_to(node, *s->token);
      ++sent;
    }
  spdlog::info("bus: node {} asked for a resync: {} live states sent", node, sent);
}

// PROTOCOL.md section 3. As the owner: relay to the other members' homes. Otherwise, for a PRES
// from a local client: send it once to the owner's inbox (never a peer's PRES: no loops).
void Hub::federate(const Accepted& accepted, Origin origin) {
  if (!forwarder_) return;  // single instance: no store lookup on the hot path
  auto ctx = access_.context(accepted.claims.sub);
  if (!ctx || ctx->owner.empty()) return;
  if (keys_.hosts(ctx->owner))
    relay_to_member_homes(accepted, ctx->owner);
  else if (origin == Origin::local)
    forwarder_->forward(ctx->owner, accepted.token, accepted.expires_at_ms);
}

// As the owner: the members whose home is another instance get the same signed token, with a
// proof signed by the owner (one signature per PRES, shared by every home).
void Hub::relay_to_member_homes(const Accepted& accepted, const std::string& owner) {
  const PresClaims& c = accepted.claims;
  std::vector<std::string> homes;
  if (c.aud) {
    homes.push_back(*c.aud);
  } else {
    auto receivers = access_.receivers(c.sub);
    if (!receivers) return;
    homes = std::move(*receivers);
  }
  // The issuer's home has it already; hosted members got it above.
  std::erase_if(homes, [&](const std::string& h) { return h == c.iss || keys_.hosts(h); });
  const TenantKey* key = keys_.signing_key(owner);
  if (homes.empty() || !key) return;
  RelayClaims rc{owner, key->key_id, c.sub, token_hash(accepted.token), clock_.now_s()};
  exec_.crypto([this, alive = alive_, rc = std::move(rc), priv = key->private_key, token = accepted.token,
                expires = accepted.expires_at_ms, homes = std::move(homes)]() mutable {
    std::string proof = sign_relay_proof(rc, priv);
    exec_.home([this, alive = std::move(alive), proof = std::move(proof), token = std::move(token), expires,
                homes = std::move(homes)] {
      if (!*alive || !forwarder_) return;
      for (const std::string& home : homes) forwarder_->relay(home, token, proof, expires);
    });
  });
}


void Hub::deliver(const std::shared_ptr<const std::string>& frame, const std::string& context,
                  const std::optional<std::string>& audience) {
  // The targets first: a send may close a slow connection and re-enter detach(), which changes the
  // arrays and frees the state; the connection itself stays alive until the loop is over, and a
  // closed connection's send() does nothing and returns false.
  std::vector<Connection*> targets;
  if (audience) {
    auto u = users_.find(*audience);
    if (u == users_.end()) return;
    for (const ConnState* st : u->second) targets.push_back(st->conn.get());
  } else {
    auto s = subscribers_.find(context);
    if (s == subscribers_.end()) return;
    targets.reserve(s->second.size());
    for (const Subscriber& sub : s->second) targets.push_back(sub.conn);
  }
  struct Delivering {
    Hub& hub;
    explicit Delivering(Hub& h) : hub(h) { ++hub.delivering_; }
    ~Delivering() {
      if (--hub.delivering_ > 0) return;
      const auto released = std::move(hub.detached_while_delivering_);  // destroyed after the reset
      hub.detached_while_delivering_.clear();
    }
  } delivering(*this);
  std::size_t sent = 0;
  for (Connection* c : targets)
    if (c->send(frame)) ++sent;
  stats_.delivered_frames += sent;
  observer_->on_delivered(sent);
}

void Hub::tick() {
  const std::int64_t now = clock_.now_ms();
  for (PresenceState& s : presence_.expire(now)) {
    ++stats_.expired;
    observer_->on_expired();
    deliver(std::make_shared<const std::string>(frames::expired_frame(next_frame_id(), s)), s.context, s.audience);
  }
  if (now - last_sweep_ms_ >= 1000) {
    last_sweep_ms_ = now;
    issuer_limiter_.sweep(now);
    same_state_limiter_.sweep(now);
    replay_.sweep(now);
  }
}

HubStats Hub::stats() const {
  HubStats s = stats_;
  s.connections = conns_.size();
  for (const auto& [ctx, subs] : subscribers_) s.subscriptions += subs.size();
  s.presence_states = presence_.size();
  return s;
}

}  // namespace presd
