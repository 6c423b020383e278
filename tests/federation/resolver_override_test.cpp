#include "federation/resolver_override.h"

#include <gtest/gtest.h>

namespace presd {
namespace {

TEST(ResolverOverride, ParsesIpv4WithPort) {
  auto e = parse_resolver_override("cl-o.alice.test=127.0.0.1:8443");
  ASSERT_TRUE(e) << e.error().message;
  EXPECT_EQ(e->host, "cl-o.alice.test");
  EXPECT_EQ(e->target.ip, "127.0.0.1");
  EXPECT_EQ(e->target.port, 8443);
}

TEST(ResolverOverride, PortDefaultsTo443AndHostIsLowercased) {
  auto e = parse_resolver_override("CL-O.Alice.Test=10.0.0.7");
  ASSERT_TRUE(e) << e.error().message;
  EXPECT_EQ(e->host, "cl-o.alice.test");
  EXPECT_EQ(e->target, (ResolvedTarget{"10.0.0.7", 443}));
}

TEST(ResolverOverride, Ipv6NeedsBrackets) {
  auto e = parse_resolver_override("cl-o.bob.test=[::1]:9443");
  ASSERT_TRUE(e) << e.error().message;
  EXPECT_EQ(e->target, (ResolvedTarget{"::1", 9443}));
  auto no_port = parse_resolver_override("cl-o.bob.test=[2001:db8::5]");
  ASSERT_TRUE(no_port);
  EXPECT_EQ(no_port->target, (ResolvedTarget{"2001:db8::5", 443}));

  auto bare = parse_resolver_override("cl-o.bob.test=::1");
  ASSERT_FALSE(bare);
  EXPECT_EQ(bare.code(), ErrorCode::bad_request);
  EXPECT_NE(bare.error().message.find("brackets"), std::string::npos);
}

TEST(ResolverOverride, RejectsMalformedEntries) {
  for (const char* bad : {"", "cl-o.alice.test", "=127.0.0.1:1", "cl-o.alice.test=", "cl-o.alice.test=127.0.0.1:",
                          "cl-o.alice.test=127.0.0.1:0", "cl-o.alice.test=127.0.0.1:65536",
                          "cl-o.alice.test=127.0.0.1:99999999", "cl-o.alice.test=127.0.0.1:-1",
                          "cl-o.alice.test=127.0.0.1:80a", "cl-o.alice.test=127.0.0.1:+80",
                          "cl-o.alice.test=localhost:8443", "cl-o.alice.test=127.1:8443", "cl-o.alice.test=256.0.0.1",
                          "single=127.0.0.1", "bad_host.test=127.0.0.1", "-a.test=127.0.0.1", "a..test=127.0.0.1",
                          "a.test.=127.0.0.1", "a test.x=127.0.0.1", "cl-o.bob.test=[::1", "cl-o.bob.test=[::1]8443",
                          "cl-o.bob.test=[127.0.0.1]:1", "cl-o.bob.test=[::1]:", "cl-o.bob.test=[nope]:1"}) {
    auto e = parse_resolver_override(bad);
    EXPECT_FALSE(e) << bad;
    if (!e) {
      EXPECT_EQ(e.code(), ErrorCode::bad_request) << bad;
      EXPECT_NE(e.error().message.find("resolver override"), std::string::npos) << bad;
    }
  }
  EXPECT_FALSE(parse_resolver_override(std::string(600, 'a')));
}

TEST(ResolverOverrides, LookupIsCaseInsensitiveAndExact) {
  auto o = ResolverOverrides::parse({"cl-o.alice.test=127.0.0.1:8443", "cl-o.bob.test=[::1]:8444"});
  ASSERT_TRUE(o) << o.error().message;
  EXPECT_EQ(o->size(), 2u);
  EXPECT_EQ(o->lookup("cl-o.alice.test"), (ResolvedTarget{"127.0.0.1", 8443}));
  EXPECT_EQ(o->lookup("CL-O.ALICE.TEST"), (ResolvedTarget{"127.0.0.1", 8443}));
  EXPECT_EQ(o->lookup("cl-o.alice.test."), (ResolvedTarget{"127.0.0.1", 8443}));
  EXPECT_EQ(o->lookup("cl-o.bob.test"), (ResolvedTarget{"::1", 8444}));
  EXPECT_FALSE(o->lookup("alice.test"));
  EXPECT_FALSE(o->lookup("x.cl-o.alice.test"));
  EXPECT_FALSE(o->lookup("cl-o.carol.test"));
  EXPECT_FALSE(o->lookup(""));
}

TEST(ResolverOverrides, DuplicateHostAndBadEntryFailTheList) {
  auto dup = ResolverOverrides::parse({"cl-o.alice.test=127.0.0.1:1", "CL-O.alice.test=127.0.0.1:2"});
  ASSERT_FALSE(dup);
  EXPECT_EQ(dup.code(), ErrorCode::bad_request);
  EXPECT_NE(dup.error().message.find("twice"), std::string::npos);

  auto bad = ResolverOverrides::parse({"cl-o.alice.test=127.0.0.1:1", "nonsense"});
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("nonsense"), std::string::npos);

  ResolverOverrides empty;
  EXPECT_TRUE(empty.empty());
  EXPECT_TRUE(empty.add("cl-o.carol.test=192.0.2.1:443"));
  EXPECT_FALSE(empty.add("cl-o.carol.test=192.0.2.2:443"));
  EXPECT_EQ(empty.lookup("cl-o.carol.test"), (ResolvedTarget{"192.0.2.1", 443}));
}

}  // namespace
}  // namespace presd
