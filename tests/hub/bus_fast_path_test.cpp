// The /ws/bus and inbox fast paths (plain-JSON frames and bodies, the synchronous admission
// answer, the one-buffer error and snapshot frames) against the general path: two hubs over the
// same store, keys and clock get the same frames, one with the fast paths on and one with them
// off, and must answer with the same bytes.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <random>

#include "common/fast_path.h"
#include "federation/inbox_body.h"
#include "hub/bus_protocol.h"
#include "hub/frames.h"
#include "hub/hub.h"
#include "store/sqlite_store.h"
#include "token/base64.h"

namespace presd {
namespace {

class TextRecorder final : public transport::WsConnection {
 public:
  bool send(std::shared_ptr<const std::string> frame) override {
    frames.push_back(*frame);
    return true;
  }
  void close(std::uint16_t, std::string) override {}
  std::uint64_t id() const override { return 1; }
  const std::string& remote_ip() const override { return ip_; }
  std::vector<std::string> frames;

 private:
  std::string ip_ = "127.0.0.1";
};

constexpr const char* kConv = "a1~AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

struct Side {
  std::unique_ptr<Hub> hub;
  std::unique_ptr<BusProtocol> bus;
  std::shared_ptr<TextRecorder> conn = std::make_shared<TextRecorder>();
};

class BusFastPathTest : public ::testing::Test {
 protected:
  BusFastPathTest() : store_(":memory:"), keys_(store_) {
    for (const char* t : {"alice.test", "bob.test"}) EXPECT_TRUE(keys_.ensure_tenant(t, clock_.now_s()).ok());
    EXPECT_TRUE(store_.create_context(Context{kConv, "bob.test", "bob.test", clock_.now_s()}).ok());
    EXPECT_TRUE(store_.grant(kConv, "alice.test", Role::member).ok());
    config_.rates.issuer_rate_per_s = 1;
    config_.rates.issuer_burst = 3;  // some tokens are over the issuer's quota
    config_.command_rate_per_s = config_.command_burst = 1e9;
    config_.rates.connection_rate_per_s = config_.rates.connection_burst = 1e9;
    make_sides();
  }
  ~BusFastPathTest() override { fast_path::set_enabled(true); }

  void make_sides() {
    for (Side* s : {&fast_, &general_}) {
      *s = Side{};
      s->hub = std::make_unique<Hub>(config_, clock_, store_, keys_,
                                     Executors{[](Executors::Task t) { t(); }, [](Executors::Task t) { t(); }});
      s->bus = std::make_unique<BusProtocol>(*s->hub);
      s->hub->attach(s->conn, "alice.test");
    }
  }

  std::string sign(const std::string& subtype, std::int64_t iat, std::optional<std::string> content = {}) {
    PresClaims c;
    c.iss = "alice.test";
    c.k = keys_.signing_key(c.iss)->key_id;
    c.subtype = subtype;
    c.sub = kConv;
    c.iat = iat;
    c.content_json = std::move(content);
    return sign_pres_token(c, keys_.signing_key(c.iss)->private_key);
  }

  // One frame through both sides; returns the fast side's answers.
  std::vector<std::string> both(const std::string& frame) {
    fast_.conn->frames.clear();
    general_.conn->frames.clear();
    fast_path::set_enabled(true);
    fast_.bus->on_message(fast_.conn, frame);
    fast_path::set_enabled(false);
    general_.bus->on_message(general_.conn, frame);
    fast_path::set_enabled(true);
    // Deliveries carry the hub's random frame-id prefix ("<12 hex>-<n>"): compare without it.
    for (Side* s : {&fast_, &general_})
      for (std::string& f : s->conn->frames)
        if (f.find("\"cmd\":\"ACTION\"") != std::string::npos) f.replace(7, 12, "<prefix>");
    EXPECT_EQ(fast_.conn->frames, general_.conn->frames) << "frame: " << frame;
    EXPECT_FALSE(fast_.conn->frames.empty()) << "no answer to " << frame;
    return fast_.conn->frames;
  }

  ManualClock clock_{1'800'000'000'000};
  SqliteStore store_;
  KeyRing keys_;
  HubConfig config_;
  Side fast_, general_;
};

TEST_F(BusFastPathTest, GeneratedFramesGetTheSameAnswersBothWays) {
  const std::int64_t now = clock_.now_s();
  // Tokens: valid ones (accepted once, then duplicates; later ones over the issuer quota),
  // stale, mis-headed, malformed, and ones whose text in the frame needs JSON escapes.
  std::vector<std::string> tokens;
  for (int i = 0; i < 6; ++i) tokens.push_back(sign("S" + std::to_string(i), now, "{\"n\":" + std::to_string(i) + "}"));
  tokens.push_back(sign("TYPING", now - 7200));
  std::string hs384 = tokens[0];
  hs384.replace(0, hs384.find('.'), b64::encode_url(R"({"typ":"JWT","alg":"HS384"})"));
  tokens.push_back(hs384);
  tokens.push_back("a.b.c");
  tokens.push_back("");
  tokens.push_back(std::string(5000, 'A'));
  std::vector<std::string> token_texts;  // as they appear inside a JSON string
  for (const auto& t : tokens) token_texts.push_back(t);
  token_texts.push_back(tokens[0].substr(0, 10) + "\\u0041" + tokens[0].substr(11));  // escaped: general path
  token_texts.push_back(tokens[1].substr(0, 20) + "\\/" + tokens[1].substr(21));
  token_texts.push_back("tok\xc3\xa9n");

  const std::vector<std::string> ids = {R"("1")", R"("abc def")", "7", "-3", "0", "-0", "1.5", "1e3", "null", "true",
                                        "{}", "[1]", R"("a\"b")", R"("\u00e9")", "\"\xc3\xa9\"", "12345678901234567890",
                                        "999999999999999999"};
  const std::vector<std::string> cmds = {R"("pres")", R"("ping")", R"("subscribe")", R"("unsubscribe")", R"("fly")",
                                         "1", "null", R"("pr\u0065s")", R"("PING")"};
  std::vector<std::string> datas = {"null", "[]", R"("x")", "{}", R"({"context":")" + std::string(kConv) + "\"}",
                                    R"({"context":"@alice.test"})", R"({"context":"bad context"})", R"({"context":5})",
                                    R"({"subType":"TYP ING","subject":"a1~x"})", R"({"subType":"TYPING"})",
                                    R"({"token":5})", R"({"token":null,"context":"@alice.test"})"};
  for (const auto& t : token_texts) {
    datas.push_back(R"({"token":")" + t + "\"}");
    datas.push_back(R"({ "token" : ")" + t + R"(" , "extra" : [1, {"x": null}] })");
    datas.push_back(R"({"token":")" + t + R"(","token":"x"})");  // duplicate key
  }
  const std::vector<std::string> spaces = {"", "", " ", "\n", "\t "};

  std::mt19937 rng(1126);
  const auto sp = [&] { return spaces[rng() % spaces.size()]; };
  for (int i = 0; i < 4000; ++i) {
    std::vector<std::string> members;
    if (rng() % 8) members.push_back("\"id\":" + sp() + ids[rng() % ids.size()]);
    if (rng() % 10) members.push_back("\"cmd\":" + sp() + cmds[rng() % cmds.size()]);
    if (rng() % 6) members.push_back("\"data\":" + sp() + datas[rng() % datas.size()]);
    if (rng() % 10 == 0) members.push_back(R"("other":{"a":[true,false]})");
    if (rng() % 25 == 0) members.push_back(R"("id":"again")");
    std::shuffle(members.begin(), members.end(), rng);
    std::string frame = sp() + "{";
    for (std::size_t m = 0; m < members.size(); ++m) frame += (m ? "," + sp() : sp()) + members[m];
    frame += sp() + "}" + sp();
    if (rng() % 50 == 0) frame += "x";
    if (rng() % 50 == 0) frame = "[" + frame + "]";
    if (rng() % 50 == 0) frame = frame.substr(0, rng() % (frame.size() + 1));
    both(frame);
    if (i % 500 == 499) clock_.advance_ms(700);  // quotas refill a little; nothing goes stale
  }
  for (Side* s : {&fast_, &general_}) EXPECT_EQ(s->hub->stats().accepted, general_.hub->stats().accepted);
  EXPECT_GE(fast_.hub->stats().accepted, 3u);
  EXPECT_EQ(fast_.hub->stats().rejected, general_.hub->stats().rejected);
}

TEST_F(BusFastPathTest, TheRejectMixAndASnapshotAnswerTheSameBytes) {
  const std::int64_t now = clock_.now_s();
  std::vector<std::string> states;
  for (int i = 0; i < 50; ++i) states.push_back(sign("S" + std::to_string(i), now, R"({"p":"a\"b\u00e9"})"));
  config_.rates.issuer_burst = 60;
  make_sides();
  for (const auto& t : states)
    for (Side* s : {&fast_, &general_}) s->hub->submit_token(t, [](Result<Accepted> r) { ASSERT_TRUE(r.ok()); });
  auto snapshot = both(R"({"id":"s","cmd":"subscribe","data":{"context":")" + std::string(kConv) + "\"}}");
  ASSERT_EQ(snapshot.size(), 1u);
  EXPECT_EQ(boost::json::parse(snapshot[0]).at("data").at("presence").as_array().size(), 50u);
  for (int i = 0; i < 3; ++i)
    for (const auto& t : states)  // duplicates, then over the quota
      both(R"({"id":")" + std::to_string(i) + R"(","cmd":"pres","data":{"token":")" + t + "\"}}");
}

TEST(InboxBodyFastPath, AgreesWithTheGeneralPath) {
  const std::vector<std::string> bodies = {
      R"({"token":"a.b.c"})", R"( { "token" : "a.b.c" , "relay" : "x.y.z" } )", R"({"relay":"x","token":"t"})",
      R"({"token":"t","other":[1,{"a":null}]})", R"({"token":5})", R"({"token":"t","relay":5})", R"({})", R"([])",
      R"({"token":"t","token":"u"})", R"({"token":"a\/b"})", R"({"token":"t"} x)", R"({"token":"\u00e9"})", "",
      R"({"relay":"x"})", R"({"token":"t","x":1.5})", "{\"token\":\"t\xc3\xa9\"}",
  };
  auto describe = [](const Result<InboxBody>& r) {
    if (!r) return std::string(to_string(r.code())) + ": " + r.error().message;
    return "token=" + std::string(r->token) + " relay=" + (r->relay ? *r->relay : "-");
  };
  for (const auto& b : bodies) {
    fast_path::set_enabled(true);
    const std::string fast = describe(parse_inbox_body(b));
    fast_path::set_enabled(false);
    const std::string general = describe(parse_inbox_body(b));
    fast_path::set_enabled(true);
    EXPECT_EQ(fast, general) << b;
  }
}

TEST(Frames, QuoteEscapesExactlyAsBoostJsonSerializes) {
  std::string all;
  for (int c = 0; c < 256; ++c) all += static_cast<char>(c);
  EXPECT_EQ(frames::quote(all), boost::json::serialize(boost::json::string(all)));
  std::mt19937 rng(3);
  for (int i = 0; i < 2000; ++i) {
    std::string s(rng() % 40, ' ');
    for (char& c : s) c = static_cast<char>(rng() % 4 ? 'a' + rng() % 26 : rng() % 256);
    ASSERT_EQ(frames::quote(s), boost::json::serialize(boost::json::string(s))) << s;
  }
}

}  // namespace
}  // namespace presd
