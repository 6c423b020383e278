// SSRF guard for outbound federation requests. An `iss` claim is attacker-chosen, so resolving
// cl-o.<iss> must never make presd connect to its own loopback, the private network, cloud
// metadata endpoints (169.254.169.254) and so on. The transport classifies every address the
// resolver (or a resolver override) returns and connects only to addresses the policy allows.
#pragma once

#include <string_view>

namespace presd {

enum class AddressClass {
  loopback,     // 127/8, ::1
  private_net,  // 10/8, 172.16/12, 192.168/16, 100.64/10 (CGNAT), fc00::/7 (ULA)
  link_local,   // 169.254/16, fe80::/10
  unspecified,  // 0/8, ::
  multicast,    // 224/4, ff00::/8
  reserved,     // documentation, benchmarking, 240/4, broadcast, deprecated or unassigned IPv6,
                // and anything that is not a plain IPv4 dotted quad or IPv6 text (fail closed)
  public_net,   // everything else (IPv6: inside 2000::/3 only)
};

std::string_view to_string(AddressClass c);

// Classifies IPv4 ("a.b.c.d", exactly as inet_pton(AF_INET) accepts: no octal/hex/short forms)
// and IPv6 text, optionally in brackets and with a zone ("fe80::1%eth0"). IPv4-mapped
// (::ffff:a.b.c.d), SIIT (::ffff:0:a.b.c.d), NAT64 (64:ff9b::/96) and 6to4 (2002:AABB:CCDD::/48)
// addresses are classified as the IPv4 address they embed, so ::ffff:127.0.0.1 is loopback.
// Unparseable text is `reserved`.
AddressClass classify(std::string_view ip);

struct AddressPolicy {
  bool allow_loopback = false;  // tests and single-machine set-ups only
  bool allow_private = false;   // federation inside a private network

  // public_net always; loopback / private_net when enabled; link_local, unspecified, multicast
  // and reserved never (no configuration makes the metadata endpoint reachable).
  bool allows(AddressClass c) const;
  bool allows(std::string_view ip) const { return allows(classify(ip)); }
};

}  // namespace presd
