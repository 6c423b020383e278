#include "federation/address_policy.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace presd {
namespace {

struct Case {
  const char* ip;
  AddressClass expected;
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.ip; }

class Classify : public ::testing::TestWithParam<Case> {};

TEST_P(Classify, MatchesTable) {
  const Case& c = GetParam();
  EXPECT_EQ(to_string(classify(c.ip)), to_string(c.expected)) << c.ip;
}

using A = AddressClass;

INSTANTIATE_TEST_SUITE_P(IPv4, Classify, ::testing::Values(
    Case{"127.0.0.1", A::loopback}, Case{"127.255.255.254", A::loopback}, Case{"127.1.2.3", A::loopback},
    Case{"10.0.0.1", A::private_net}, Case{"10.255.255.255", A::private_net},
    Case{"172.16.0.1", A::private_net}, Case{"172.31.255.255", A::private_net},
    Case{"172.15.255.255", A::public_net}, Case{"172.32.0.0", A::public_net},
    Case{"192.168.0.1", A::private_net}, Case{"192.168.255.255", A::private_net},
    Case{"192.167.255.255", A::public_net}, Case{"192.169.0.0", A::public_net},
    Case{"100.64.0.1", A::private_net}, Case{"100.127.255.255", A::private_net},
    Case{"100.63.255.255", A::public_net}, Case{"100.128.0.0", A::public_net},
    Case{"169.254.169.254", A::link_local}, Case{"169.254.0.0", A::link_local}, Case{"169.255.0.1", A::public_net},
    Case{"0.0.0.0", A::unspecified}, Case{"0.1.2.3", A::unspecified},
    Case{"224.0.0.1", A::multicast}, Case{"239.255.255.250", A::multicast},
    Case{"240.0.0.1", A::reserved}, Case{"255.255.255.255", A::reserved}, Case{"250.1.1.1", A::reserved},
    Case{"192.0.2.10", A::reserved}, Case{"198.51.100.7", A::reserved}, Case{"203.0.113.255", A::reserved},
    Case{"198.18.0.1", A::reserved}, Case{"198.19.255.255", A::reserved}, Case{"192.0.0.8", A::reserved},
    Case{"8.8.8.8", A::public_net}, Case{"1.1.1.1", A::public_net}, Case{"93.184.216.34", A::public_net},
    Case{"203.0.114.1", A::public_net}, Case{"223.255.255.255", A::public_net}, Case{"11.0.0.1", A::public_net}));

INSTANTIATE_TEST_SUITE_P(IPv6, Classify, ::testing::Values(
    Case{"::1", A::loopback}, Case{"0:0:0:0:0:0:0:1", A::loopback}, Case{"[::1]", A::loopback},
    Case{"::", A::unspecified}, Case{"::2", A::reserved},
    Case{"fc00::1", A::private_net}, Case{"fd12:3456:789a::1", A::private_net}, Case{"FD00::1", A::private_net},
    Case{"fe80::1", A::link_local}, Case{"febf:ffff::1", A::link_local}, Case{"fe80::1%eth0", A::link_local},
    Case{"fec0::1", A::reserved},
    Case{"ff02::1", A::multicast}, Case{"ff0e::101", A::multicast},
    Case{"2001:db8::1", A::reserved}, Case{"2001:db8:ffff::1", A::reserved},
    Case{"2001::1", A::reserved}, Case{"2001:10::1", A::reserved}, Case{"100::1", A::reserved},
    Case{"2606:4700:4700::1111", A::public_net}, Case{"2a00:1450:4001:80b::200e", A::public_net},
    Case{"2001:4860:4860::8888", A::public_net}, Case{"3fff:ffff::1", A::public_net},
    Case{"4000::1", A::reserved}, Case{"2606:4700::1%eth0", A::reserved}));

INSTANTIATE_TEST_SUITE_P(Embedded, Classify, ::testing::Values(
    Case{"::ffff:127.0.0.1", A::loopback}, Case{"::ffff:7f00:1", A::loopback},
    Case{"::ffff:10.1.2.3", A::private_net}, Case{"::ffff:169.254.169.254", A::link_local},
    Case{"::ffff:8.8.8.8", A::public_net}, Case{"::ffff:0.0.0.0", A::unspecified},
    Case{"::ffff:0:127.0.0.1", A::loopback},
    Case{"64:ff9b::127.0.0.1", A::loopback}, Case{"64:ff9b::a9fe:a9fe", A::link_local},
    Case{"64:ff9b::192.168.1.1", A::private_net}, Case{"64:ff9b::8.8.8.8", A::public_net},
    Case{"64:ff9b:1::1.2.3.4", A::private_net},
    Case{"2002:7f00:1::", A::loopback}, Case{"2002:a00:1::1", A::private_net}, Case{"2002:808:808::1", A::public_net},
    Case{"::127.0.0.1", A::reserved}));

INSTANTIATE_TEST_SUITE_P(Garbage, Classify, ::testing::Values(
    Case{"", A::reserved}, Case{"localhost", A::reserved}, Case{"127.1", A::reserved},
    Case{"0x7f.0.0.1", A::reserved}, Case{"0177.0.0.1", A::reserved}, Case{"2130706433", A::reserved},
    Case{"127.0.0.1 ", A::reserved}, Case{"1.2.3.4.5", A::reserved}, Case{"256.1.1.1", A::reserved},
    Case{"[::1", A::reserved}, Case{"::1]", A::reserved}, Case{"fe80::1%", A::reserved},
    Case{"127.0.0.1%eth0", A::reserved}, Case{":::", A::reserved}, Case{"1:2:3:4:5:6:7:8:9", A::reserved},
    Case{"8.8.8.8:443", A::reserved}));

TEST(AddressPolicy, DefaultAllowsOnlyPublic) {
  AddressPolicy p;
  EXPECT_TRUE(p.allows("8.8.8.8"));
  EXPECT_TRUE(p.allows("2606:4700:4700::1111"));
  EXPECT_FALSE(p.allows("127.0.0.1"));
  EXPECT_FALSE(p.allows("::1"));
  EXPECT_FALSE(p.allows("::ffff:127.0.0.1"));
  EXPECT_FALSE(p.allows("10.0.0.1"));
  EXPECT_FALSE(p.allows("fd00::1"));
  EXPECT_FALSE(p.allows("169.254.169.254"));
  EXPECT_FALSE(p.allows("0.0.0.0"));
  EXPECT_FALSE(p.allows("not an ip"));
}

TEST(AddressPolicy, LoopbackAndPrivateAreSeparateSwitches) {
  AddressPolicy loop{.allow_loopback = true};
  EXPECT_TRUE(loop.allows("127.0.0.1"));
  EXPECT_TRUE(loop.allows("::1"));
  EXPECT_TRUE(loop.allows("::ffff:127.0.0.1"));
  EXPECT_FALSE(loop.allows("192.168.1.1"));
  EXPECT_TRUE(loop.allows("8.8.8.8"));

  AddressPolicy priv{.allow_private = true};
  EXPECT_FALSE(priv.allows("127.0.0.1"));
  EXPECT_TRUE(priv.allows("192.168.1.1"));
  EXPECT_TRUE(priv.allows("100.64.0.1"));
  EXPECT_TRUE(priv.allows("fd00::1"));
}

TEST(AddressPolicy, SomeClassesAreNeverAllowed) {
  AddressPolicy all{.allow_loopback = true, .allow_private = true};
  for (const char* ip : {"169.254.169.254", "fe80::1", "0.0.0.0", "::", "224.0.0.1", "ff02::1", "192.0.2.1",
                         "2001:db8::1", "255.255.255.255", "::ffff:169.254.169.254", "garbage"}) {
    EXPECT_FALSE(all.allows(ip)) << ip;
  }
  for (AddressClass c : {A::link_local, A::unspecified, A::multicast, A::reserved}) EXPECT_FALSE(all.allows(c));
  EXPECT_TRUE(all.allows(A::public_net));
}

}  // namespace
}  // namespace presd
