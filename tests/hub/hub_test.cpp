// The hub without sockets: real store, keys and crypto; connections are recorders; the crypto
// and home executors run tasks inline so every call completes before it returns.
#include "hub/hub.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <random>

#include <boost/json.hpp>

#include "hub/bus_protocol.h"
#include "store/sqlite_store.h"

namespace presd {
namespace {

namespace json = boost::json;

class RecordingConnection final : public transport::WsConnection {
 public:
  explicit RecordingConnection(std::uint64_t id) : id_(id) {}
  bool send(std::shared_ptr<const std::string> frame) override {
    frames.push_back(json::parse(*frame).as_object());
    return true;
  }
  void close(std::uint16_t code, std::string) override { closed_with = code; }
  std::uint64_t id() const override { return id_; }
  const std::string& remote_ip() const override { return ip_; }

  // Frames with this cmd, removed from the record.
  std::vector<json::object> take(std::string_view cmd) {
    std::vector<json::object> out, rest;
    for (auto& f : frames) (f.at("cmd").as_string() == cmd ? out : rest).push_back(std::move(f));
    frames = std::move(rest);
    return out;
  }

  std::vector<json::object> frames;
  int closed_with = 0;

 private:
  std::uint64_t id_;
  std::string ip_ = "127.0.0.1";
};

constexpr const char* kConv = "a1~AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

class HubTest : public ::testing::Test {
 protected:
  HubTest() : store_(":memory:"), keys_(store_) {
    for (const char* t : {"alice.test", "bob.test", "carol.test", "dave.test", "eve.test"})
      EXPECT_TRUE(keys_.ensure_tenant(t, clock_.now_s()).ok());
    EXPECT_TRUE(store_.create_context(Context{kConv, "bob.test", "bob.test", clock_.now_s()}).ok());
    EXPECT_TRUE(store_.grant(kConv, "alice.test", Role::member).ok());
    EXPECT_TRUE(store_.grant(kConv, "carol.test", Role::member).ok());
    EXPECT_TRUE(store_.grant(kConv, "dave.test", Role::observer).ok());
    config_.freshness.ttl_s = 30;
    hub_ = std::make_unique<Hub>(config_, clock_, store_, keys_,
                                 Executors{[](Executors::Task t) { t(); }, [](Executors::Task t) { t(); }});
  }

  std::shared_ptr<RecordingConnection> connect(const std::string& user) {
    auto c = std::make_shared<RecordingConnection>(++next_id_);
    hub_->attach(c, user);
    return c;
  }

  PresClaims claims(const std::string& iss, const std::string& subtype, std::optional<std::string> aud = {}) {
    PresClaims c;
    c.iss = iss;
    c.k = keys_.signing_key(iss)->key_id;
    c.subtype = subtype;
    c.sub = kConv;
    c.aud = std::move(aud);
    c.iat = clock_.now_s();
    return c;
  }

  std::string sign(const PresClaims& c) { return sign_pres_token(c, keys_.signing_key(c.iss)->private_key); }

  Result<Accepted> submit(std::string token) {
    std::optional<Result<Accepted>> out;
    hub_->submit_token(std::move(token), [&](Result<Accepted> r) { out.emplace(std::move(r)); });
    EXPECT_TRUE(out.has_value());
    return std::move(*out);
  }

  Result<Accepted> request(const std::string& user, const std::string& subtype, std::optional<std::string> aud = {}) {
    std::optional<Result<Accepted>> out;
    hub_->submit_request(user, PresRequest{subtype, kConv, std::move(aud), std::nullopt},
                         [&](Result<Accepted> r) { out.emplace(std::move(r)); });
    EXPECT_TRUE(out.has_value());
    return std::move(*out);
  }

  ManualClock clock_{1'800'000'000'000};
  SqliteStore store_;
  KeyRing keys_;
  HubConfig config_;
  std::unique_ptr<Hub> hub_;
  std::uint64_t next_id_ = 0;
};

TEST_F(HubTest, TypingReachesEverySubscribedMemberAndOnlyThem) {
  auto bob1 = connect("bob.test"), bob2 = connect("bob.test"), carol = connect("carol.test");
  auto carol_unsubscribed = connect("carol.test"), eve = connect("eve.test");
  for (auto* c : {bob1.get(), bob2.get(), carol.get()}) ASSERT_TRUE(hub_->subscribe(*c, kConv).ok());

  auto r = request("alice.test", "TYPING");
  ASSERT_TRUE(r.ok()) << r.error().message;
  for (auto* c : {bob1.get(), bob2.get(), carol.get()}) {
    auto got = c->take("ACTION");
    ASSERT_EQ(got.size(), 1u);
    const auto& data = got[0].at("data").as_object();
    EXPECT_EQ(data.at("subType").as_string(), "TYPING");
    EXPECT_EQ(data.at("issuer").at("idTag").as_string(), "alice.test");
    EXPECT_EQ(data.at("subject").as_string(), kConv);
    EXPECT_TRUE(data.at("audience").is_null());
    EXPECT_TRUE(data.at("actionId").is_null());
  }
  EXPECT_TRUE(carol_unsubscribed->frames.empty());
  EXPECT_TRUE(eve->frames.empty());
  EXPECT_EQ(hub_->stats().delivered_frames, 3u);
}

TEST_F(HubTest, AudienceReachesOnlyThatUser) {
  auto bob = connect("bob.test"), carol = connect("carol.test"), carol_other = connect("carol.test");
  ASSERT_TRUE(hub_->subscribe(*bob, kConv).ok());
  ASSERT_TRUE(hub_->subscribe(*carol, kConv).ok());
  ASSERT_TRUE(request("alice.test", "TYPING", "carol.test").ok());
  EXPECT_TRUE(bob->frames.empty());
  auto got = carol->take("ACTION");
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].at("data").at("audience").at("idTag").as_string(), "carol.test");
  EXPECT_EQ(carol_other->take("ACTION").size(), 1u);  // every connection of the aud user
}

// The subscriber arrays (a swap with the last on removal) stay exact through any order of
// subscribe, unsubscribe, re-subscribe and detach: every PRES reaches exactly the subscribed set.
TEST_F(HubTest, SubscribersStayExactThroughChurn) {
  std::mt19937 rng(20261127);
  std::vector<std::shared_ptr<RecordingConnection>> conns;
  std::vector<bool> attached, subscribed;
  const char* users[] = {"bob.test", "carol.test", "alice.test"};
  for (int i = 0; i < 40; ++i) {
    conns.push_back(connect(users[i % 3]));
    attached.push_back(true);
    subscribed.push_back(false);
  }
  for (int round = 0; round < 60; ++round) {
    for (int op = 0; op < 15; ++op) {
      const std::size_t i = rng() % conns.size();
      const unsigned what = rng() % 10;
      if (!attached[i]) {
        if (what < 3) {  // a new connection takes its place
          conns[i] = connect(users[i % 3]);
          attached[i] = true;
          subscribed[i] = false;
        }
      } else if (what < 5) {
        ASSERT_TRUE(hub_->subscribe(*conns[i], kConv).ok());  // again: no second entry
        subscribed[i] = true;
      } else if (what < 8) {
        EXPECT_EQ(hub_->unsubscribe(*conns[i], kConv).ok(), subscribed[i]);
        subscribed[i] = false;
      } else {
        hub_->detach(*conns[i]);
        attached[i] = false;
        subscribed[i] = false;
      }
    }
    for (auto& c : conns) c->frames.clear();
    clock_.advance_ms(1000);  // the issuer's quota and the same-state interval
    ASSERT_TRUE(request("alice.test", "S" + std::to_string(round)).ok());
    for (std::size_t i = 0; i < conns.size(); ++i)
      ASSERT_EQ(conns[i]->take("ACTION").size(), subscribed[i] ? 1u : 0u) << "round " << round << ", connection " << i;
  }
  EXPECT_EQ(hub_->stats().subscriptions, static_cast<std::size_t>(std::count(subscribed.begin(), subscribed.end(), true)));
}

// A send that ends connections (a slow consumer closing re-enters detach()) neither breaks the
// delivery under way nor frees a connection it still has to visit (the sanitized build sees a
// use after free if it does).
class CallbackConnection final : public transport::WsConnection {
 public:
  CallbackConnection(std::function<void()> on_send, bool* destroyed) : on_send_(std::move(on_send)), destroyed_(destroyed) {}
  ~CallbackConnection() override {
    if (destroyed_) *destroyed_ = true;
  }
  bool send(std::shared_ptr<const std::string>) override {
    ++sends;
    if (auto f = std::exchange(on_send_, nullptr)) f();
    return true;
  }
  void close(std::uint16_t, std::string) override {}
  std::uint64_t id() const override { return 9999; }
  const std::string& remote_ip() const override { return ip_; }
  int sends = 0;

 private:
  std::function<void()> on_send_;
  bool* destroyed_;
  std::string ip_ = "127.0.0.1";
};

TEST_F(HubTest, ASendThatDetachesConnectionsLeavesTheDeliveryWhole) {
  auto before = connect("carol.test");
  ASSERT_TRUE(hub_->subscribe(*before, kConv).ok());
  CallbackConnection* later = nullptr;  // only the hub holds it
  bool later_destroyed = false;
  std::shared_ptr<CallbackConnection> detacher;
  detacher = std::make_shared<CallbackConnection>(
      [&] {
        hub_->detach(*detacher);
        hub_->detach(*later);
      },
      nullptr);
  hub_->attach(detacher, "bob.test");
  ASSERT_TRUE(hub_->subscribe(*detacher, kConv).ok());
  {
    auto c = std::make_shared<CallbackConnection>(nullptr, &later_destroyed);
    hub_->attach(c, "bob.test");
    ASSERT_TRUE(hub_->subscribe(*c, kConv).ok());
    later = c.get();
  }
  auto after = connect("carol.test");
  ASSERT_TRUE(hub_->subscribe(*after, kConv).ok());

  ASSERT_TRUE(request("alice.test", "TYPING").ok());
  EXPECT_EQ(before->take("ACTION").size(), 1u);
  EXPECT_EQ(after->take("ACTION").size(), 1u);
  EXPECT_TRUE(later_destroyed) << "released once the delivery is over";
  EXPECT_EQ(hub_->stats().subscriptions, 2u);

  clock_.advance_ms(1000);
  ASSERT_TRUE(request("alice.test", "ONLINE").ok());
  EXPECT_EQ(before->take("ACTION").size(), 1u);
  EXPECT_EQ(after->take("ACTION").size(), 1u);
}

TEST_F(HubTest, AudienceWithoutAccessIsRefused) {
  auto r = request("alice.test", "TYPING", "eve.test");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.code(), ErrorCode::audience_no_access);
}

TEST_F(HubTest, NonMembersAreRefusedBothWays) {
  auto eve = connect("eve.test");
  auto sub = hub_->subscribe(*eve, kConv);
  ASSERT_FALSE(sub.ok());
  EXPECT_EQ(sub.code(), ErrorCode::access_denied);
  auto r = request("eve.test", "TYPING");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.code(), ErrorCode::access_denied);
}

TEST_F(HubTest, ObserverMaySubscribeButNotSend) {
  auto dave = connect("dave.test");
  EXPECT_TRUE(hub_->subscribe(*dave, kConv).ok());
  auto r = request("dave.test", "TYPING");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.code(), ErrorCode::access_denied);
}

TEST_F(HubTest, UnknownContextIsRefused) {
  auto bob = connect("bob.test");
  auto sub = hub_->subscribe(*bob, "a1~BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB");
  ASSERT_FALSE(sub.ok());
  EXPECT_EQ(sub.code(), ErrorCode::context_unknown);
}

TEST_F(HubTest, ExpiryEventArrivesAtTtlAndSnapshotEmpties) {
  auto bob = connect("bob.test");
  ASSERT_TRUE(hub_->subscribe(*bob, kConv).ok());
  ASSERT_TRUE(request("alice.test", "TYPING").ok());
  bob->take("ACTION");

  clock_.advance_ms(29'000);
  hub_->tick();
  EXPECT_TRUE(bob->take("PRES_EXPIRED").empty());
  auto snap = hub_->subscribe(*bob, kConv);
  ASSERT_TRUE(snap.ok());
  EXPECT_EQ(snap->size(), 1u);

  clock_.advance_ms(1'000 + config_.expiry_tick_ms);
  hub_->tick();
  auto expired = bob->take("PRES_EXPIRED");
  ASSERT_EQ(expired.size(), 1u);
  const auto& data = expired[0].at("data").as_object();
  EXPECT_EQ(data.at("subType").as_string(), "TYPING");
  EXPECT_EQ(data.at("issuer").at("idTag").as_string(), "alice.test");
  EXPECT_EQ(data.at("subject").as_string(), kConv);
  snap = hub_->subscribe(*bob, kConv);
  ASSERT_TRUE(snap.ok());
  EXPECT_TRUE(snap->empty());
}

TEST_F(HubTest, SnapshotCarriesLiveStatesInActionShape) {
  ASSERT_TRUE(request("alice.test", "ONLINE").ok());
  ASSERT_TRUE(request("carol.test", "TYPING").ok());
  clock_.advance_ms(10);
  ASSERT_TRUE(request("alice.test", "AWAY").ok());  // replaces ONLINE: same status slot
  auto bob = connect("bob.test");
  auto snap = hub_->subscribe(*bob, kConv);
  ASSERT_TRUE(snap.ok());
  std::multiset<std::string> seen;
  for (const auto& d : *snap) {
    auto o = json::parse(*d).as_object();
    seen.insert(std::string(o.at("issuer").at("idTag").as_string()) + ":" + std::string(o.at("subType").as_string()));
  }
  EXPECT_EQ(seen, (std::multiset<std::string>{"alice.test:AWAY", "carol.test:TYPING"}));
}

TEST_F(HubTest, ReplayedTokenIsDuplicate) {
  const std::string token = sign(claims("alice.test", "TYPING"));
  ASSERT_TRUE(submit(token).ok());
  auto again = submit(token);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.code(), ErrorCode::token_duplicate);
}

TEST_F(HubTest, SameStateWithinIntervalIsRateLimited) {
  ASSERT_TRUE(request("alice.test", "TYPING").ok());
  clock_.advance_ms(1000);
  auto r = request("alice.test", "TYPING");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.code(), ErrorCode::rate_limited);
  EXPECT_GT(r.error().retry_after_ms, 0);
  EXPECT_LE(r.error().retry_after_ms, 2000);
  EXPECT_TRUE(request("alice.test", "ONLINE").ok());  // another subtype is another state
  clock_.advance_ms(2000);
  EXPECT_TRUE(request("alice.test", "TYPING").ok());
}

TEST_F(HubTest, ForgedTokensDoNotSpendTheIssuersQuota) {
  // Signed by carol's key but claiming alice's key id: a forgery of alice.
  PresClaims c = claims("alice.test", "TYPING");
  const std::string forged = sign_pres_token(c, keys_.signing_key("carol.test")->private_key);
  for (int i = 0; i < 5; ++i) {
    auto r = submit(forged);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.code(), ErrorCode::token_bad_signature);
  }
  EXPECT_TRUE(submit(sign(c)).ok());
}

TEST_F(HubTest, UnknownKeyIsRefused) {
  PresClaims c = claims("alice.test", "TYPING");
  c.k = "990101";
  auto r = submit(sign_pres_token(c, keys_.signing_key("alice.test")->private_key));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.code(), ErrorCode::token_unknown_key);
}

TEST_F(HubTest, StaleAndFutureTokensAreRefused) {
  PresClaims old = claims("alice.test", "TYPING");
  old.iat -= 31;
  auto r = submit(sign(old));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.code(), ErrorCode::token_expired);
  PresClaims future = claims("alice.test", "TYPING");
  future.iat += 60;
  r = submit(sign(future));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.code(), ErrorCode::token_not_yet_valid);
}

TEST_F(HubTest, OlderStateIsSupersededNotDelivered) {
  auto bob = connect("bob.test");
  ASSERT_TRUE(hub_->subscribe(*bob, kConv).ok());
  PresClaims older = claims("alice.test", "ONLINE");
  older.iat -= 5;
  ASSERT_TRUE(request("alice.test", "AWAY").ok());
  bob->take("ACTION");
  auto r = submit(sign(older));
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->superseded);
  EXPECT_TRUE(bob->take("ACTION").empty());
}

TEST_F(HubTest, RevokedMemberStopsReceiving) {
  auto carol = connect("carol.test");
  ASSERT_TRUE(hub_->subscribe(*carol, kConv).ok());
  ASSERT_TRUE(store_.revoke(kConv, "carol.test").ok());
  hub_->on_access_revoked(kConv, "carol.test");
  auto notice = carol->take("UNSUBSCRIBED");
  ASSERT_EQ(notice.size(), 1u);
  EXPECT_EQ(notice[0].at("data").at("reason").as_string(), "access_revoked");
  ASSERT_TRUE(request("alice.test", "TYPING").ok());
  EXPECT_TRUE(carol->take("ACTION").empty());
}

TEST_F(HubTest, RevalidationEndsSubscriptionsThatLostAccessElsewhere) {
  auto carol = connect("carol.test"), bob = connect("bob.test");
  ASSERT_TRUE(hub_->subscribe(*carol, kConv).ok());
  ASSERT_TRUE(hub_->subscribe(*bob, kConv).ok());
  ASSERT_TRUE(store_.revoke(kConv, "carol.test").ok());  // as the CLI would, without telling the hub
  EXPECT_EQ(hub_->revalidate_subscriptions(), 1u);
  ASSERT_EQ(carol->take("UNSUBSCRIBED").size(), 1u);
  EXPECT_TRUE(bob->take("UNSUBSCRIBED").empty());
  ASSERT_TRUE(request("alice.test", "TYPING").ok());
  EXPECT_TRUE(carol->take("ACTION").empty());
  EXPECT_EQ(bob->take("ACTION").size(), 1u);
  EXPECT_EQ(hub_->revalidate_subscriptions(), 0u);
}

TEST_F(HubTest, SubscriptionCapIsEnforced) {
  config_.max_subscriptions_per_connection = 1;
  hub_ = std::make_unique<Hub>(config_, clock_, store_, keys_,
                               Executors{[](Executors::Task t) { t(); }, [](Executors::Task t) { t(); }});
  auto bob = connect("bob.test");
  ASSERT_TRUE(hub_->subscribe(*bob, kConv).ok());
  ASSERT_TRUE(hub_->subscribe(*bob, kConv).ok());  // re-subscribing is not a new subscription
  auto r = hub_->subscribe(*bob, "@bob.test");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.code(), ErrorCode::too_many_subscriptions);
}

TEST_F(HubTest, DetachedConnectionsReceiveNothing) {
  auto bob = connect("bob.test");
  ASSERT_TRUE(hub_->subscribe(*bob, kConv).ok());
  hub_->detach(*bob);
  ASSERT_TRUE(request("alice.test", "TYPING").ok());
  EXPECT_TRUE(bob->frames.empty());
  EXPECT_EQ(hub_->stats().connections, 0u);
  EXPECT_EQ(hub_->stats().subscriptions, 0u);
}

// ---- the /ws/bus command layer -------------------------------------------------------------

class BusTest : public HubTest {
 protected:
  json::object call(const std::shared_ptr<RecordingConnection>& c, std::string_view text) {
    bus_.on_message(c, text);
    EXPECT_FALSE(c->frames.empty()) << "no answer to " << text;
    if (c->frames.empty()) return {};
    json::object last = c->frames.back();
    c->frames.pop_back();
    return last;
  }
  BusProtocol bus_{*hub_};
};

TEST_F(BusTest, PingIsAcked) {
  auto bob = connect("bob.test");
  auto r = call(bob, R"({"id":"1","cmd":"ping"})");
  EXPECT_EQ(json::serialize(r), R"({"id":"1","cmd":"ack","data":{"status":"pong"}})");
}

TEST_F(BusTest, BadFramesGetCodedErrorsAndTheConnectionKeepsWorking) {
  auto bob = connect("bob.test");
  struct Case { const char* frame; const char* code; } cases[] = {
      {"not json", "bad_request"},
      {"[1,2]", "bad_request"},
      {R"({"id":"2"})", "bad_request"},
      {R"({"id":"3","cmd":"fly"})", "unknown_command"},
      {R"({"id":"4","cmd":"subscribe"})", "bad_request"},
      {R"({"id":"5","cmd":"subscribe","data":{"context":"bad context"}})", "bad_request"},
      {R"({"id":"6","cmd":"pres","data":{"subType":"TYPING"}})", "bad_request"},
      {R"({"id":"7","cmd":"pres","data":{"token":"a.b.c"}})", "token_bad_base64"},
      {R"({"id":"8","cmd":"pres","data":{"subType":"TYP ING","subject":"a1~x"}})", "token_bad_subtype"},
      {R"({"id":"9","cmd":"unsubscribe","data":{"context":"@bob.test"}})", "not_found"},
  };
  for (const auto& c : cases) {
    auto r = call(bob, c.frame);
    EXPECT_EQ(r.at("cmd").as_string(), "error") << c.frame;
    EXPECT_EQ(r.at("data").at("code").as_string(), c.code) << c.frame;
    EXPECT_FALSE(r.at("data").at("message").as_string().empty());
  }
  EXPECT_EQ(call(bob, R"({"id":10,"cmd":"ping"})").at("id").as_int64(), 10);
}

TEST_F(BusTest, SubscribeThenPresDeliversAndAcks) {
  auto bob = connect("bob.test"), alice = connect("alice.test");
  auto sub = call(bob, std::string(R"({"id":"s","cmd":"subscribe","data":{"context":")") + kConv + "\"}}");
  EXPECT_EQ(sub.at("data").at("status").as_string(), "subscribed");
  EXPECT_TRUE(sub.at("data").at("presence").as_array().empty());
  auto ack = call(alice, std::string(R"({"id":"p","cmd":"pres","data":{"subType":"TYPING","subject":")") + kConv +
                             R"(","content":{"x":1}}})");
  ASSERT_EQ(ack.at("cmd").as_string(), "ack") << json::serialize(ack);
  EXPECT_EQ(ack.at("data").at("status").as_string(), "accepted");
  EXPECT_TRUE(ack.at("data").at("token").is_string());
  auto got = bob->take("ACTION");
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].at("data").at("content").at("x").as_int64(), 1);
}

TEST_F(BusTest, PerConnectionPresQuotaTriggers) {
  config_.rates.connection_burst = 2;
  config_.rates.connection_rate_per_s = 0.001;
  hub_ = std::make_unique<Hub>(config_, clock_, store_, keys_,
                               Executors{[](Executors::Task t) { t(); }, [](Executors::Task t) { t(); }});
  BusProtocol bus(*hub_);
  auto alice = connect("alice.test");
  auto frame = [](int n) {
    return std::string(R"({"id":"p","cmd":"pres","data":{"subType":"X)") + std::to_string(n) +
           R"(","subject":")" + kConv + "\"}}";
  };
  for (int n = 1; n <= 2; ++n) {
    bus.on_message(alice, frame(n));
    EXPECT_EQ(alice->frames.back().at("cmd").as_string(), "ack") << n;
  }
  bus.on_message(alice, frame(3));
  auto last = alice->frames.back();
  EXPECT_EQ(last.at("data").at("code").as_string(), "rate_limited");
  EXPECT_GT(last.at("data").at("retryAfter").as_int64(), 0);
}

}  // namespace
}  // namespace presd

namespace presd {
namespace {

struct CountingObserver final : HubObserver {
  int accepted = 0, verified = 0, expired = 0;
  std::size_t delivered = 0;
  std::vector<ErrorCode> rejected;
  void on_accepted() override { ++accepted; }
  void on_rejected(ErrorCode c) override { rejected.push_back(c); }
  void on_verified(double seconds) override {
    ++verified;
    EXPECT_GT(seconds, 0.0);
  }
  void on_delivered(std::size_t n) override { delivered += n; }
  void on_expired() override { ++expired; }
};

TEST_F(HubTest, ObserverSeesEveryOutcome) {
  CountingObserver obs;
  hub_->set_observer(&obs);
  auto bob = connect("bob.test"), carol = connect("carol.test");
  ASSERT_TRUE(hub_->subscribe(*bob, kConv).ok());
  ASSERT_TRUE(hub_->subscribe(*carol, kConv).ok());
  const std::string token = sign(claims("alice.test", "TYPING"));
  ASSERT_TRUE(submit(token).ok());
  EXPECT_EQ(submit(token).code(), ErrorCode::token_duplicate);
  EXPECT_EQ(submit("garbage").code(), ErrorCode::token_malformed);
  EXPECT_EQ(obs.accepted, 1);
  EXPECT_EQ(obs.verified, 1);  // the duplicate and the garbage never reached the crypto pool
  EXPECT_EQ(obs.delivered, 2u);
  EXPECT_EQ(obs.rejected, (std::vector<ErrorCode>{ErrorCode::token_duplicate, ErrorCode::token_malformed}));
  clock_.advance_ms(31'000);
  hub_->tick();
  EXPECT_EQ(obs.expired, 1);
  EXPECT_EQ(obs.delivered, 4u);  // PRES_EXPIRED to both
  hub_->set_observer(nullptr);
}

}  // namespace
}  // namespace presd

namespace presd {
namespace {

// Keys of an issuer hosted elsewhere, answered later (as a network fetch would be).
class FakeRemoteKeys final : public RemoteKeySource {
 public:
  std::vector<Result<Es384PublicKey>> answers;  // consumed in order, one per lookup
  std::vector<std::function<void()>> pending;
  int lookups = 0, invalidations = 0;

  void lookup(const std::string&, const std::string&, std::function<void(Result<Es384PublicKey>)> done) override {
    auto answer = answers.at(static_cast<std::size_t>(lookups++));
    pending.push_back([answer = std::move(answer), done = std::move(done)] { done(answer); });
  }
  bool invalidate_after_failed_verify(const std::string&) override {
    ++invalidations;
    return true;
  }
  void complete_all() {
    while (!pending.empty()) {
      auto next = std::move(pending.front());
      pending.erase(pending.begin());
      next();
    }
  }
};

class RemoteHubTest : public HubTest {
 protected:
  RemoteHubTest() {
    EXPECT_TRUE(store_.grant(kConv, "remote.example.net", Role::member).ok());
    hub_->set_remote_keys(&remote_);
  }
  std::string remote_token(const Es384PrivateKey& key) {
    PresClaims c;
    c.iss = "remote.example.net";
    c.k = "250101";
    c.subtype = "TYPING";
    c.sub = kConv;
    c.iat = clock_.now_s();
    return sign_pres_token(c, key);
  }
  std::optional<Result<Accepted>> submit_async(std::string token) {
    hub_->submit_token(std::move(token), [this](Result<Accepted> r) { outcome_.emplace(std::move(r)); });
    return std::move(outcome_);
  }
  FakeRemoteKeys remote_;
  std::optional<Result<Accepted>> outcome_;
};

TEST_F(RemoteHubTest, RemoteIssuerVerifiesWithFetchedKeyAndDelivers) {
  auto bob = connect("bob.test");
  ASSERT_TRUE(hub_->subscribe(*bob, kConv).ok());
  Es384PrivateKey key = Es384PrivateKey::generate();
  remote_.answers.push_back(key.public_key());
  EXPECT_FALSE(submit_async(remote_token(key)).has_value());  // waits for the key
  remote_.complete_all();
  ASSERT_TRUE(outcome_.has_value());
  ASSERT_TRUE(outcome_->ok()) << outcome_->error().message;
  EXPECT_EQ(bob->take("ACTION").size(), 1u);
}

TEST_F(RemoteHubTest, AStaleKeyIsRefetchedOnceThenTheTokenVerifies) {
  Es384PrivateKey old_key = Es384PrivateKey::generate(), new_key = Es384PrivateKey::generate();
  remote_.answers.push_back(old_key.public_key());
  remote_.answers.push_back(new_key.public_key());
  submit_async(remote_token(new_key));
  remote_.complete_all();
  ASSERT_TRUE(outcome_.has_value());
  EXPECT_TRUE(outcome_->ok());
  EXPECT_EQ(remote_.lookups, 2);
  EXPECT_EQ(remote_.invalidations, 1);
}

TEST_F(RemoteHubTest, AForgeryFailsAfterOneRefetch) {
  Es384PrivateKey real = Es384PrivateKey::generate(), forger = Es384PrivateKey::generate();
  remote_.answers.push_back(real.public_key());
  remote_.answers.push_back(real.public_key());
  submit_async(remote_token(forger));
  remote_.complete_all();
  ASSERT_TRUE(outcome_.has_value());
  EXPECT_EQ(outcome_->code(), ErrorCode::token_bad_signature);
  EXPECT_EQ(remote_.lookups, 2);  // never more than one refetch per token
}

TEST_F(RemoteHubTest, KeySourceErrorsAreReported) {
  remote_.answers.push_back(Error(ErrorCode::unavailable, "cl-o.remote.example.net timed out"));
  submit_async(remote_token(Es384PrivateKey::generate()));
  remote_.complete_all();
  ASSERT_TRUE(outcome_.has_value());
  EXPECT_EQ(outcome_->code(), ErrorCode::unavailable);
}

TEST_F(RemoteHubTest, CheapRejectionsNeverReachTheKeySource) {
  const std::string token = remote_token(Es384PrivateKey::generate());
  clock_.advance_ms(31'000);  // stale before any lookup
  submit_async(token);
  ASSERT_TRUE(outcome_.has_value());
  EXPECT_EQ(outcome_->code(), ErrorCode::token_expired);
  EXPECT_EQ(remote_.lookups, 0);
}

TEST_F(HubTest, HostedIssuerWithUnknownKeyIdIsNotLookedUpRemotely) {
  FakeRemoteKeys remote;
  hub_->set_remote_keys(&remote);
  PresClaims c = claims("alice.test", "TYPING");
  c.k = "999999";
  EXPECT_EQ(submit(sign_pres_token(c, keys_.signing_key("alice.test")->private_key)).code(),
            ErrorCode::token_unknown_key);
  EXPECT_EQ(remote.lookups, 0);
}

}  // namespace
}  // namespace presd

#include "federation/relay_proof.h"
#include "common/time_format.h"

#include <limits>

namespace presd {
namespace {

struct RecordingForwarder final : PresForwarder {
  struct Sent {
    std::string peer, token, proof;
  };
  std::vector<Sent> forwarded, relayed;
  void forward(const std::string& owner, const std::string& token, std::int64_t) override {
    forwarded.push_back({owner, token, ""});
  }
  void relay(const std::string& home, const std::string& token, const std::string& proof, std::int64_t) override {
    relayed.push_back({home, token, proof});
  }
};

constexpr const char* kFar = "room:far";  // owned by another instance

class RelayHubTest : public RemoteHubTest {
 protected:
  RelayHubTest() {
    EXPECT_TRUE(store_.create_context(Context{kFar, "owner.example.net", "owner.example.net", clock_.now_s()}).ok());
    EXPECT_TRUE(store_.grant(kFar, "alice.test", Role::member).ok());
    EXPECT_TRUE(store_.grant(kFar, "bob.test", Role::member).ok());
    hub_->set_forwarder(&forwarder_);
  }
  std::string alice_in_far() {
    PresClaims c = claims("alice.test", "TYPING");
    c.sub = kFar;
    return sign(c);
  }
  std::string proof_for(const std::string& token, const Es384PrivateKey& key, std::string owner = "owner.example.net") {
    return sign_relay_proof(RelayClaims{std::move(owner), "250101", kFar, token_hash(token), clock_.now_s()}, key);
  }
  std::optional<Result<Accepted>> submit_peer(std::string token, std::optional<std::string> proof) {
    hub_->submit_token(std::move(token), [this](Result<Accepted> r) { outcome_.emplace(std::move(r)); }, Origin::peer,
                       std::move(proof));
    remote_.complete_all();
    return std::move(outcome_);
  }
  Es384PrivateKey owner_key_ = Es384PrivateKey::generate();
  RecordingForwarder forwarder_;
};

TEST_F(RelayHubTest, PeersNeedTheOwnersRelayForContextsOwnedElsewhere) {
  auto r = submit_peer(alice_in_far(), std::nullopt);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->code(), ErrorCode::relay_required);
  EXPECT_EQ(remote_.lookups, 0);
}

TEST_F(RelayHubTest, AValidRelayIsAcceptedAndDeliveredButNotForwardedAgain) {
  auto bob = connect("bob.test");
  ASSERT_TRUE(hub_->subscribe(*bob, kFar).ok());
  const std::string token = alice_in_far();
  remote_.answers.push_back(owner_key_.public_key());
  auto r = submit_peer(token, proof_for(token, owner_key_));
  ASSERT_TRUE(r.has_value());
  ASSERT_TRUE(r->ok()) << r->error().message;
  EXPECT_EQ(bob->take("ACTION").size(), 1u);
  EXPECT_TRUE(forwarder_.forwarded.empty());
  EXPECT_TRUE(forwarder_.relayed.empty());
}

TEST_F(RelayHubTest, BadRelayProofsAreRefused) {
  const std::string token = alice_in_far();
  EXPECT_EQ(submit_peer(token, proof_for(alice_in_far() + "x", owner_key_))->code(), ErrorCode::relay_invalid);  // other token
  EXPECT_EQ(submit_peer(token, proof_for(token, owner_key_, "mallory.example.net"))->code(), ErrorCode::relay_invalid);
  EXPECT_EQ(submit_peer(token, "not.a.proof")->code(), ErrorCode::relay_invalid);
  remote_.answers.push_back(owner_key_.public_key());  // signed by someone else than the owner:
  remote_.answers.push_back(owner_key_.public_key());  // (one refetch, in case the owner rotated)
  EXPECT_EQ(submit_peer(token, proof_for(token, Es384PrivateKey::generate()))->code(), ErrorCode::relay_invalid);
  EXPECT_EQ(remote_.invalidations, 1);
  const std::string stale_proof = proof_for(token, owner_key_);
  clock_.advance_ms(31'000);
  EXPECT_EQ(submit_peer(alice_in_far(), stale_proof)->code(), ErrorCode::relay_invalid);
}

// iat * 1000 of such proofs overflowed std::int64_t (UBSan, inbox_fuzz); now a syntax error.
TEST_F(RelayHubTest, RelayProofsWithOutOfRangeIatAreRefusedBeforeAnyArithmetic) {
  const std::string token = alice_in_far();
  for (std::int64_t iat : {std::numeric_limits<std::int64_t>::max(), std::numeric_limits<std::int64_t>::min(),
                           std::int64_t{-1}, kMaxUnixSeconds + 1}) {
    const std::string proof = sign_relay_proof(RelayClaims{"owner.example.net", "250101", kFar, token_hash(token), iat}, owner_key_);
    EXPECT_EQ(submit_peer(token, proof)->code(), ErrorCode::relay_invalid) << iat;
  }
  EXPECT_EQ(remote_.lookups, 0);
}

TEST_F(RelayHubTest, ARotatedOwnerKeyIsRefetchedOnceForTheProof) {
  const std::string token = alice_in_far();
  remote_.answers.push_back(Es384PrivateKey::generate().public_key());  // the owner's old key, cached
  remote_.answers.push_back(owner_key_.public_key());                   // its new one
  auto r = submit_peer(token, proof_for(token, owner_key_));
  ASSERT_TRUE(r.has_value());
  EXPECT_TRUE(r->ok()) << r->error().message;
  EXPECT_EQ(remote_.lookups, 2);
}

TEST_F(RelayHubTest, LocalPresForARemoteOwnersContextIsForwardedOnce) {
  PresClaims c = claims("alice.test", "TYPING");
  c.sub = kFar;
  ASSERT_TRUE(submit(sign(c)).ok());
  ASSERT_EQ(forwarder_.forwarded.size(), 1u);
  EXPECT_EQ(forwarder_.forwarded[0].peer, "owner.example.net");
}

TEST_F(RelayHubTest, TheOwnerRelaysToRemoteMembersHomesWithAProof) {
  // kConv is owned by bob.test (hosted here); remote.example.net is a member living elsewhere.
  ASSERT_TRUE(request("alice.test", "TYPING").ok());
  ASSERT_EQ(forwarder_.relayed.size(), 1u);
  const auto& sent = forwarder_.relayed[0];
  EXPECT_EQ(sent.peer, "remote.example.net");
  auto proof = parse_relay_proof(sent.proof);
  ASSERT_TRUE(proof.ok());
  EXPECT_EQ(proof->claims.owner, "bob.test");
  EXPECT_EQ(proof->claims.context, kConv);
  EXPECT_EQ(proof->claims.token_hash, token_hash(sent.token));
  EXPECT_TRUE(keys_.signing_key("bob.test")->public_key.verify(proof->signing_input(), proof->signature));
  EXPECT_TRUE(forwarder_.forwarded.empty());  // the owner is here: nothing to forward
}

TEST_F(RelayHubTest, NoRelayBackToTheIssuersHome) {
  // remote.example.net (the only member living elsewhere) writes into bob's kConv via the inbox.
  Es384PrivateKey key = Es384PrivateKey::generate();
  remote_.answers.push_back(key.public_key());
  auto r = submit_peer(remote_token(key), std::nullopt);  // bob owns kConv: no relay proof needed
  ASSERT_TRUE(r.has_value());
  ASSERT_TRUE(r->ok()) << r->error().message;
  EXPECT_TRUE(forwarder_.relayed.empty());
  EXPECT_TRUE(forwarder_.forwarded.empty());
}

}  // namespace
}  // namespace presd
