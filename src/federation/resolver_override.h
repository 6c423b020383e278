// Static host -> address overrides (`--resolve cl-o.alice.test=127.0.0.1:8443`, repeatable), so
// several presd instances can federate on one machine without DNS. An override replaces DNS
// resolution and the port for that host only; TLS still verifies the certificate against the
// host name, and the AddressPolicy still applies to the overridden address (a loopback override
// needs allow_loopback).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace presd {

struct ResolvedTarget {
  std::string ip;          // IPv4 dotted quad or IPv6 text (no brackets)
  std::uint16_t port = 443;

  bool operator==(const ResolvedTarget&) const = default;
};

struct ResolverOverrideEntry {
  std::string host;  // lowercase
  ResolvedTarget target;
};

// "host=ip[:port]", IPv6 in brackets: "cl-o.bob.test=[::1]:8443". The port defaults to 443.
// The host is a lowercase-normalised LDH name of at least two labels. Errors: bad_request.
Result<ResolverOverrideEntry> parse_resolver_override(std::string_view entry);

class ResolverOverrides {
 public:
  // Parses every entry; the first bad one (or a host given twice) fails the whole list.
  static Result<ResolverOverrides> parse(const std::vector<std::string>& entries);

  Status add(std::string_view entry);  // bad_request on syntax error or duplicate host
  std::optional<ResolvedTarget> lookup(std::string_view host) const;  // case-insensitive
  std::size_t size() const { return map_.size(); }
  const std::map<std::string, ResolvedTarget, std::less<>>& entries() const { return map_; }
  bool empty() const { return map_.empty(); }

 private:
  std::map<std::string, ResolvedTarget, std::less<>> map_;
};

}  // namespace presd
