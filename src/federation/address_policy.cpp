#include "federation/address_policy.h"

#include <arpa/inet.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <string>

namespace presd {
namespace {

using V4 = std::array<std::uint8_t, 4>;
using V6 = std::array<std::uint8_t, 16>;

bool in_v4(const V4& a, std::uint8_t b0, std::uint8_t b1, std::uint8_t b2, std::uint8_t b3, int prefix) {
  const std::uint32_t addr = (std::uint32_t{a[0]} << 24) | (std::uint32_t{a[1]} << 16) | (std::uint32_t{a[2]} << 8) | a[3];
  const std::uint32_t net = (std::uint32_t{b0} << 24) | (std::uint32_t{b1} << 16) | (std::uint32_t{b2} << 8) | b3;
  const std::uint32_t mask = prefix == 0 ? 0 : ~std::uint32_t{0} << (32 - prefix);
  return (addr & mask) == (net & mask);
}

AddressClass classify_v4(const V4& a) {
  if (in_v4(a, 0, 0, 0, 0, 8)) return AddressClass::unspecified;      // "this network"
  if (in_v4(a, 127, 0, 0, 0, 8)) return AddressClass::loopback;
  if (in_v4(a, 10, 0, 0, 0, 8)) return AddressClass::private_net;
  if (in_v4(a, 172, 16, 0, 0, 12)) return AddressClass::private_net;
  if (in_v4(a, 192, 168, 0, 0, 16)) return AddressClass::private_net;
  if (in_v4(a, 100, 64, 0, 0, 10)) return AddressClass::private_net;  // CGNAT, RFC 6598
  if (in_v4(a, 169, 254, 0, 0, 16)) return AddressClass::link_local;
  if (in_v4(a, 224, 0, 0, 0, 4)) return AddressClass::multicast;
  if (in_v4(a, 240, 0, 0, 0, 4)) return AddressClass::reserved;       // includes 255.255.255.255
  if (in_v4(a, 192, 0, 0, 0, 24)) return AddressClass::reserved;      // IETF protocol assignments
  if (in_v4(a, 192, 0, 2, 0, 24)) return AddressClass::reserved;      // TEST-NET-1
  if (in_v4(a, 198, 51, 100, 0, 24)) return AddressClass::reserved;   // TEST-NET-2
  if (in_v4(a, 203, 0, 113, 0, 24)) return AddressClass::reserved;    // TEST-NET-3
  if (in_v4(a, 198, 18, 0, 0, 15)) return AddressClass::reserved;     // benchmarking
  if (in_v4(a, 192, 88, 99, 0, 24)) return AddressClass::reserved;    // 6to4 relay anycast
  return AddressClass::public_net;
}

bool prefix_is(const V6& a, std::initializer_list<std::uint8_t> bytes) {
  std::size_t i = 0;
  for (std::uint8_t b : bytes) {
    if (a[i++] != b) return false;
  }
  return true;
}

bool all_zero(const V6& a, std::size_t from, std::size_t to) {
  for (std::size_t i = from; i < to; ++i) {
    if (a[i] != 0) return false;
  }
  return true;
}

V4 v4_at(const V6& a, std::size_t off) { return {a[off], a[off + 1], a[off + 2], a[off + 3]}; }

AddressClass classify_v6(const V6& a) {
  if (all_zero(a, 0, 16)) return AddressClass::unspecified;
  if (all_zero(a, 0, 15) && a[15] == 1) return AddressClass::loopback;
  // ::ffff:a.b.c.d (IPv4-mapped) and ::ffff:0:a.b.c.d (SIIT).
  if (all_zero(a, 0, 10) && a[10] == 0xff && a[11] == 0xff) return classify_v4(v4_at(a, 12));
  if (all_zero(a, 0, 8) && a[8] == 0xff && a[9] == 0xff && a[10] == 0 && a[11] == 0) return classify_v4(v4_at(a, 12));
  // 64:ff9b::/96 well-known NAT64 prefix.
  if (prefix_is(a, {0x00, 0x64, 0xff, 0x9b}) && all_zero(a, 4, 12)) return classify_v4(v4_at(a, 12));
  // 64:ff9b:1::/48 local-use NAT64: translates to whatever the local operator chose.
  if (prefix_is(a, {0x00, 0x64, 0xff, 0x9b, 0x00, 0x01})) return AddressClass::private_net;
  if (a[0] == 0xff) return AddressClass::multicast;                    // ff00::/8
  if (a[0] == 0xfe && (a[1] & 0xc0) == 0x80) return AddressClass::link_local;  // fe80::/10
  if (a[0] == 0xfe && (a[1] & 0xc0) == 0xc0) return AddressClass::reserved;    // fec0::/10 site-local (deprecated)
  if ((a[0] & 0xfe) == 0xfc) return AddressClass::private_net;         // fc00::/7 ULA
  if (prefix_is(a, {0x20, 0x01, 0x0d, 0xb8})) return AddressClass::reserved;  // 2001:db8::/32 documentation
  // 2001::/23 IETF protocol assignments (Teredo 2001::/32, ORCHID, benchmarking 2001:2::/48...).
  if (a[0] == 0x20 && a[1] == 0x01 && a[2] < 0x02) return AddressClass::reserved;
  // 2002::/16 6to4: the embedded IPv4 decides (2002:7f00:1:: is loopback in disguise).
  if (a[0] == 0x20 && a[1] == 0x02) return classify_v4(v4_at(a, 2));
  if ((a[0] & 0xe0) == 0x20) return AddressClass::public_net;          // 2000::/3 global unicast
  // ::/96 IPv4-compatible (deprecated), 100::/64 discard, and everything unassigned.
  return AddressClass::reserved;
}

}  // namespace

std::string_view to_string(AddressClass c) {
  switch (c) {
    case AddressClass::loopback: return "loopback";
    case AddressClass::private_net: return "private";
    case AddressClass::link_local: return "link-local";
    case AddressClass::unspecified: return "unspecified";
    case AddressClass::multicast: return "multicast";
    case AddressClass::reserved: return "reserved";
    case AddressClass::public_net: return "public";
  }
  return "reserved";
}

AddressClass classify(std::string_view ip) {
  if (ip.empty() || ip.size() > 64) return AddressClass::reserved;
  if (ip.front() == '[') {
    if (ip.back() != ']') return AddressClass::reserved;
    ip = ip.substr(1, ip.size() - 2);
  }
  bool had_zone = false;
  if (const auto pct = ip.find('%'); pct != std::string_view::npos) {
    if (pct + 1 >= ip.size()) return AddressClass::reserved;
    ip = ip.substr(0, pct);
    had_zone = true;
  }
  const std::string text(ip);  // inet_pton wants a NUL-terminated string
  if (!had_zone) {
    V4 v4{};
    if (inet_pton(AF_INET, text.c_str(), v4.data()) == 1) return classify_v4(v4);
  }
  V6 v6{};
  if (text.find(':') != std::string::npos && inet_pton(AF_INET6, text.c_str(), v6.data()) == 1) {
    const AddressClass c = classify_v6(v6);
    // A zone only makes sense on scoped (link-local, multicast) addresses; never public.
    if (had_zone && c == AddressClass::public_net) return AddressClass::reserved;
    return c;
  }
  return AddressClass::reserved;
}

bool AddressPolicy::allows(AddressClass c) const {
  switch (c) {
    case AddressClass::public_net: return true;
    case AddressClass::loopback: return allow_loopback;
    case AddressClass::private_net: return allow_private;
    case AddressClass::link_local:
    case AddressClass::unspecified:
    case AddressClass::multicast:
    case AddressClass::reserved: return false;
  }
  return false;
}

}  // namespace presd
