// The fast paths of parse_pres_token (plain-JSON header and claims, common/plain_json.h) against
// the general path they shortcut: on every generated token both must give the same answer, the
// same claims when accepted and the same code and message when refused.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "common/fast_path.h"
#include "token/base64.h"
#include "token/pres_token.h"

namespace presd {
namespace {

const std::string kSignature = b64::encode_url(std::string(96, '\x5a'));

std::string describe(const Result<PresToken>& r) {
  if (!r) return std::string("error ") + std::string(to_string(r.code())) + ": " + r.error().message;
  const PresClaims& c = r->claims;
  std::string out = "ok iss=" + c.iss + " k=" + c.k + " st=" + c.subtype + " sub=" + c.sub +
                    " aud=" + (c.aud ? "[" + *c.aud + "]" : "-") +
                    " c=" + (c.content_json ? "[" + *c.content_json + "]" : "-") + " iat=" + std::to_string(c.iat) +
                    " exp=" + (c.exp ? std::to_string(*c.exp) : "-");
  out += " len=" + std::to_string(r->signing_input_len) + " sig=" + b64::encode_url(r->signature);
  if (r->compact.empty()) out += " no-compact";
  return out;
}

// parse_pres_token with the fast paths on and off; returns the fast answer.
std::string both_ways(const std::string& token, int* fast_ok = nullptr) {
  fast_path::set_enabled(true);
  const std::string fast = describe(parse_pres_token(token));
  fast_path::set_enabled(false);
  const std::string general = describe(parse_pres_token(token));
  fast_path::set_enabled(true);
  EXPECT_EQ(fast, general) << "token: " << token;
  if (fast_ok && fast.starts_with("ok")) ++*fast_ok;
  return fast;
}

std::string token_of(const std::string& header_json, const std::string& payload_json) {
  return b64::encode_url(header_json) + "." + b64::encode_url(payload_json) + "." + kSignature;
}

const std::string kCanonicalHeader = R"({"typ":"JWT","alg":"ES384"})";

// Claim members, valid and not, that the generator combines.
const std::vector<std::string> kMembers = {
    R"("iss":"alice.example.net")", R"("iss":"Alice.example.net")", R"("iss":42)", R"("iss":"al\u0069ce.example.net")",
    R"("iss":"bücher.test")", R"("k":"241124")", R"("k":"")", R"("k":"a b")", R"("k":["x"])",
    R"("t":"PRES:TYPING")", R"("t":"PRES:")", R"("t":"PRES:TYP ING")", R"("t":"ACTION:X")", R"("t":"PRES:ONLINE")",
    R"("t":null)", R"("sub":"a1~QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ")", R"("sub":"@bob.example.org")",
    R"("sub":"nope")", R"("sub":true)", R"("aud":"bob.example.org")", R"("aud":"BOB")", R"("aud":null)",
    R"("iat":1700000000)", R"("iat":1700000000.0)", R"("iat":1.7e9)", R"("iat":-1)", R"("iat":0)", R"("iat":-0)",
    R"("iat":"1700000000")", R"("iat":99999999999999999999)", R"("iat":253402300800)", R"("iat":017)",
    R"("exp":1700000010)", R"("exp":1)", R"("exp":12345678901234567890)", R"("a":[])", R"("a":null)",
    R"("c":{})", R"("c":{"draft":true,"n":-5,"s":"x y","z":null})", R"("c":{ "a" : [ 1 , { "b" : [ ] } ] })",
    R"("c":{"f":1.5})", R"("c":{"e":1e400})", R"("c":{"d":{"k":1,"k":2}})", R"("c":{"u":"\u00e9"})",
    R"("c":{"deep":[[[[[[[[[[1]]]]]]]]]]})", R"("c":[])", R"("c":"text")", R"("c":{"big":18446744073709551615})",
    R"("x":1)", R"("x":{"y":[true,false,null]})", R"("x":{"y":1,"y":2})", R"("x":"\ud800")", R"("iss":"alice.example.net")",
    R"("jti":"abc")", R"("x":[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]])",
};

const std::vector<std::string> kSpaces = {"", "", "", " ", "\n\t", "\r\n  "};

std::string random_payload(std::mt19937& rng) {
  // Mostly the five required claims plus extras, in a random order; sometimes a random subset.
  std::vector<std::string> members;
  const auto pick = [&](std::string_view prefix) {
    std::vector<std::string> options;
    for (const auto& m : kMembers)
      if (m.starts_with(prefix)) options.push_back(m);
    return options[rng() % options.size()];
  };
  const bool valid_core = rng() % 3 != 0;
  for (std::string_view name : {"\"iss\"", "\"k\"", "\"t\"", "\"sub\"", "\"iat\""}) {
    if (valid_core) {
      members.push_back(pick(name));
      if (rng() % 2) members.back() = kMembers[0];  // keep many tokens valid
    } else if (rng() % 4) {
      members.push_back(pick(name));
    }
  }
  if (valid_core) {
    members[1] = R"("k":"241124")";
    members[2] = rng() % 2 ? R"("t":"PRES:TYPING")" : members[2];
    members[3] = rng() % 2 ? R"("sub":"a1~QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ")" : members[3];
    members[4] = rng() % 2 ? R"("iat":1700000000)" : members[4];
  }
  for (int extra = static_cast<int>(rng() % 4); extra > 0; --extra) members.push_back(kMembers[rng() % kMembers.size()]);
  std::shuffle(members.begin(), members.end(), rng);
  const auto sp = [&] { return kSpaces[rng() % kSpaces.size()]; };
  std::string out = sp() + "{" + sp();
  for (std::size_t i = 0; i < members.size(); ++i) {
    std::string m = members[i];
    if (rng() % 5 == 0) m.insert(m.find(':'), sp()), m.insert(m.find(':') + 1, sp());
    out += (i ? "," + sp() : "") + m + sp();
  }
  out += "}" + sp();
  if (rng() % 40 == 0) out += "x";  // trailing garbage
  if (rng() % 40 == 0) out = "[" + out + "]";
  return out;
}

TEST(PresTokenFastPath, AgreesWithTheGeneralPathOnGeneratedPayloads) {
  std::mt19937 rng(20261126);
  int accepted = 0;
  for (int i = 0; i < 20000; ++i) both_ways(token_of(kCanonicalHeader, random_payload(rng)), &accepted);
  EXPECT_GT(accepted, 500);  // the generator reaches the accepting branch too
}

TEST(PresTokenFastPath, AgreesOnByteMutationsOfAValidPayload) {
  const std::string payload =
      R"({"iss":"alice.example.net","k":"241124","t":"PRES:TYPING","c":{"n":7,"p":"xx"},"aud":"bob.example.org",)"
      R"("sub":"a1~QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ","iat":1700000000,"exp":1700000020})";
  EXPECT_TRUE(both_ways(token_of(kCanonicalHeader, payload)).starts_with("ok"));
  std::mt19937 rng(4);
  const std::string bytes = "{}[]\",:\\ \t0123456789-+.eEtrufalsn\x7f\x80\xc3\xa9\x01aZ";
  for (int i = 0; i < 20000; ++i) {
    std::string p = payload;
    for (int m = 1 + static_cast<int>(rng() % 3); m > 0; --m) {
      const std::size_t at = rng() % p.size();
      switch (rng() % 3) {
        case 0: p[at] = bytes[rng() % bytes.size()]; break;
        case 1: p.insert(at, 1, bytes[rng() % bytes.size()]); break;
        default: p.erase(at, 1); break;
      }
    }
    both_ways(token_of(kCanonicalHeader, p));
  }
}

TEST(PresTokenFastPath, AgreesOnHeaders) {
  const std::string payload =
      R"({"iss":"alice.example.net","k":"241124","t":"PRES:TYPING","sub":"@bob.example.org","iat":1700000000})";
  const std::vector<std::string> headers = {
      kCanonicalHeader, R"({"alg":"ES384","typ":"JWT"})", R"({"alg":"ES384"})", R"( { "alg" : "ES384" } )",
      R"({"typ":"JWT","alg":"HS384"})", R"({"typ":"JWT","alg":"none"})", R"({"alg":"ES384","kid":"x"})",
      R"({"kid":"x","alg":"HS256"})", R"({"typ":"jwt","alg":"ES384"})", R"({"typ":"JWT"})", R"({})", R"([])",
      R"({"alg":"ES384","alg":"ES384"})", R"({"alg":"ES\u0033384"})", R"({"alg":"ES384","crit":["b64"]})",
      R"({"alg":"ES384","x":{"y":{}}})", R"({"alg":"ES384","typ":1})", R"({"alg":1})", R"({"alg":"ES384"} x)",
      R"({"alg":"ES384","jwk":{"kty":"EC"}})", R"({"alg":"ES384","typ":"JWT","cty":"JWT"})", "not json", "",
      R"({"alg":"ES384","b":"é"})", R"({"a":"1","b":"2","c":"3","alg":"ES384"})",
  };
  for (const auto& h : headers) both_ways(token_of(h, payload));
  // Not base64url, too long, the wrong number of segments: decided before any JSON.
  both_ways("eyJ=." + b64::encode_url(payload) + "." + kSignature);
  both_ways(b64::encode_url(std::string(300, ' ') + kCanonicalHeader) + "." + b64::encode_url(payload) + "." + kSignature);
  both_ways(b64::encode_url(kCanonicalHeader) + "." + b64::encode_url(payload));
}

}  // namespace
}  // namespace presd
