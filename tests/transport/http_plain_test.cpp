#include "transport/http_plain.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "transport/http_plain_oracle.h"

namespace presd::transport {
namespace {

constexpr RequestLimits kLimits{1024, 4096};

RequestScan scan(std::string_view bytes, PlainRequest& out) { return scan_request(bytes, kLimits, out); }

RequestScan scan(std::string_view bytes) {
  PlainRequest ignored;
  return scan_request(bytes, kLimits, ignored);
}

TEST(HttpPlain, ReadsAPeersInboxPost) {
  const std::string body = R"({"token":"a.b.c"})";
  const std::string raw = "POST /api/inbox HTTP/1.1\r\nHost: CL-O.Bob.Example:443\r\nContent-Type: application/json\r\n"
                          "Authorization:  Bearer x \r\nContent-Length: " +
                          std::to_string(body.size()) + "\r\n\r\n" + body + "GET /next";
  PlainRequest r;
  ASSERT_EQ(scan(raw, r), RequestScan::plain);
  EXPECT_EQ(r.method, "POST");
  EXPECT_EQ(r.target, "/api/inbox");
  EXPECT_EQ(r.host, "CL-O.Bob.Example:443");  // raw: the server strips the port and lowercases
  EXPECT_EQ(r.content_type, "application/json");
  EXPECT_EQ(r.authorization, "Bearer x");
  EXPECT_EQ(r.body, body);
  EXPECT_TRUE(r.keep_alive);
  EXPECT_EQ(r.size, raw.size() - std::string_view("GET /next").size());
  EXPECT_EQ(testing::plain_scan_disagreement(raw, kLimits), "");
}

TEST(HttpPlain, ConnectionCloseAndNoBody) {
  PlainRequest r;
  ASSERT_EQ(scan("GET /healthz?x=1 HTTP/1.1\r\nconnection: Close\r\n\r\n", r), RequestScan::plain);
  EXPECT_FALSE(r.keep_alive);
  EXPECT_EQ(r.target, "/healthz?x=1");
  EXPECT_TRUE(r.body.empty());
  EXPECT_TRUE(r.host.empty());
}

TEST(HttpPlain, IncompleteIsPartial) {
  EXPECT_EQ(scan("GET / HTTP/1.1\r\nHost: x\r\n"), RequestScan::partial);
  EXPECT_EQ(scan("POST / HTTP/1.1\r\nContent-Length: 4\r\n\r\nabc"), RequestScan::partial);
  EXPECT_EQ(scan(""), RequestScan::partial);
  EXPECT_EQ(scan(std::string_view()), RequestScan::partial);  // an empty buffer's data may be null
  // Over the body limit: the reading path, where Beast answers 413 before the body arrives.
  EXPECT_EQ(scan("POST / HTTP/1.1\r\nContent-Length: 4097\r\n\r\n"), RequestScan::partial);
}

// Whole but outside the subset: Beast parses it (and words any refusal).
TEST(HttpPlain, WholeButUnusualIsLeftToBeast) {
  for (const char* raw : {
           "GET / HTTP/1.0\r\n\r\n",                                     // not 1.1
           "get / HTTP/1.1\r\n\r\n",                                     // lowercase method
           "GET /a b HTTP/1.1\r\n\r\n",                                  // space in the target
           "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",               // a field twice
           "GET / HTTP/1.1\r\nConnection: keep-alive, Upgrade\r\n\r\n",  // a list
           "GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\n",               // an upgrade
           "GET / HTTP/1.1\r\nExpect: 100-continue\r\n\r\n",             // expect
           "POST / HTTP/1.1\r\nContent-Encoding: gzip\r\n\r\n",          // a coding
           "POST / HTTP/1.1\r\nContent-Length: 03\r\n\r\nabc",           // two spellings of 3
           "GET / HTTP/1.1\r\nX-A: caf\xc3\xa9\r\n\r\n",                 // obs-text
           "GET / HTTP/1.1\r\nX-A: a\r\n b\r\n\r\n",                     // obs-fold
           "GET / HTTP/1.1\r\nX_A: a\r\n\r\n",                           // a name outside the subset
           "GET / HTTP/1.1\r\nX-A: a\nX-B: b\r\n\r\n",                   // a bare LF
           "GARBAGE\r\n\r\n",
       }) {
    EXPECT_EQ(scan(raw), RequestScan::whole) << raw;
    EXPECT_EQ(testing::plain_scan_disagreement(raw, kLimits), "") << raw;
  }
}

// The header limit: under it plain, at it Beast's (which answers 431).
TEST(HttpPlain, HeaderAtTheLimitIsLeftToBeast) {
  const std::string start = "GET / HTTP/1.1\r\nX-Pad: ";
  const std::size_t pad = kLimits.max_header_bytes - start.size() - 4;  // "\r\n\r\n"
  const std::string at_limit = start + std::string(pad, 'p') + "\r\n\r\n";
  ASSERT_EQ(at_limit.size(), kLimits.max_header_bytes);
  EXPECT_EQ(scan(at_limit), RequestScan::whole);
  const std::string under = start + std::string(pad - 1, 'p') + "\r\n\r\n";
  EXPECT_EQ(scan(under), RequestScan::plain);
  EXPECT_EQ(testing::plain_scan_disagreement(under, kLimits), "");
}

TEST(HoldsWholeRequest, OnlyWhenNothingMoreMustBeRead) {
  EXPECT_TRUE(holds_whole_request("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_FALSE(holds_whole_request("GET / HTTP/1.1\r\nHost: x\r\n"));
  EXPECT_TRUE(holds_whole_request("POST / HTTP/1.1\r\ncontent-LENGTH:  3 \r\n\r\nabcGET"));
  EXPECT_FALSE(holds_whole_request("POST / HTTP/1.1\r\nContent-Length: 4\r\n\r\nabc"));
  EXPECT_FALSE(holds_whole_request("POST / HTTP/1.1\r\nContent-Length: 3x\r\n\r\nabc"));
  EXPECT_FALSE(holds_whole_request("POST / HTTP/1.1\r\nContent-Length: 9999999999\r\n\r\n"));
  EXPECT_FALSE(holds_whole_request("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"));
}

// Requests built from plain and unusual pieces, then sometimes mutated: wherever the scan says
// plain, Beast must read the same request (tests/transport/http_plain_oracle.h). The counts make
// sure both sides of the subset were exercised.
TEST(HttpPlain, AgreesWithBeastOnGeneratedRequests) {
  std::mt19937 rng(20261127);
  // One piece in five from the unusual list, so that both sides of the subset are common.
  auto pick = [&](const std::vector<std::string>& plain, const std::vector<std::string>& odd) {
    return rng() % 5 ? plain[rng() % plain.size()] : odd[rng() % odd.size()];
  };
  const std::vector<std::string> methods = {"GET", "POST", "PUT", "DELETE"};
  const std::vector<std::string> odd_methods = {"get", "P0ST", "", "ABCDEFGHIJKLMNOPQ", "M-SEARCH"};
  const std::vector<std::string> targets = {"/api/inbox", "/a?b=c&d", "/%41%2f", "*", "http://h/p"};
  const std::vector<std::string> odd_targets = {"/a b", "", "/\x7f", "/caf\xc3\xa9", std::string(2100, 'a')};
  const std::vector<std::string> versions = {"HTTP/1.1"};
  const std::vector<std::string> odd_versions = {"HTTP/1.0", "HTTP/2.0", "http/1.1", "HTTP/1.1 ", "HTTP/1.11"};
  const std::vector<std::string> fields = {
      "Host: cl-o.alice.example", "host:127.0.0.1:8080", "Content-Type: application/json", "Authorization: Bearer t",
      "Connection: keep-alive", "Connection: close", "CONNECTION: Keep-Alive", "X-Empty:", "X-Tab:\tv\t",
      "User-Agent: loadgen/1", "Accept: */*"};
  const std::vector<std::string> odd_fields = {
      "Connection: upgrade", "Connection: keep-alive, close", "Upgrade: websocket", "Transfer-Encoding: chunked",
      "Expect: 100-continue", "Content-Encoding: identity", "Proxy-Connection: close", "X-Obs: caf\xc3\xa9",
      "X-Ctl: a\x01", "Bad Name: v", "X_Under: v", ": v", " folded", "Content-Length: 1, 1"};
  const std::string body = R"({"token":"eyJ0eXAiOiJKV1QiLCJhbGciOiJFUzM4NCJ9.e30.sig"})";
  std::size_t plain = 0, whole = 0, partial = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string raw = pick(methods, odd_methods) + " " + pick(targets, odd_targets) + " " +
                      pick(versions, odd_versions) + "\r\n";
    const int n_fields = static_cast<int>(rng() % 4);
    for (int f = 0; f < n_fields; ++f) raw += pick(fields, odd_fields) + (rng() % 50 ? "\r\n" : "\n");
    const int body_kind = static_cast<int>(rng() % 5);
    if (body_kind == 0)
      raw += "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
    else if (body_kind == 1)
      raw += "Content-Length: " + std::to_string(body.size() + 5) + "\r\n\r\n" + body;
    else if (body_kind == 2)
      raw += "content-length:0" + std::to_string(body.size()) + "\r\n\r\n" + body;
    else
      raw += "\r\n";
    if (rng() % 3 == 0) raw += "GET / HTTP/1.1\r\n\r\n";  // a pipelined follower
    for (int m = static_cast<int>(rng() % 4) - 1; m > 0; --m) {  // mostly none, sometimes one or two
      const std::size_t at = rng() % raw.size();
      switch (rng() % 3) {
        case 0: raw[at] = static_cast<char>(rng() % 256); break;
        case 1: raw.insert(raw.begin() + static_cast<std::ptrdiff_t>(at), static_cast<char>(rng() % 256)); break;
        default: raw.erase(at, 1);
      }
    }
    ASSERT_EQ(testing::plain_scan_disagreement(raw, kLimits), "") << "case " << i << ": " << raw;
    switch (scan(raw)) {
      case RequestScan::plain: ++plain; break;
      case RequestScan::whole: ++whole; break;
      case RequestScan::partial: ++partial; break;
    }
  }
  EXPECT_GT(plain, 2000u);
  EXPECT_GT(whole, 2000u);
  EXPECT_GT(partial, 500u);
}

}  // namespace
}  // namespace presd::transport
