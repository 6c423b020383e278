#include "federation/resolver_override.h"

#include <arpa/inet.h>

#include <array>
#include <charconv>

#include "common/ascii.h"

namespace presd {
namespace {

Error bad(std::string_view entry, std::string_view why) {
  return Error(ErrorCode::bad_request, "resolver override '" + std::string(entry) + "': " + std::string(why));
}

// Lowercase LDH host name: at least two labels of 1..63 chars, no leading/trailing '-',
// at most 253 chars.
bool valid_host(std::string_view h) {
  if (h.empty() || h.size() > 253) return false;
  std::size_t labels = 0;
  std::size_t start = 0;
  while (true) {
    const std::size_t dot = h.find('.', start);
    const std::string_view label = h.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') return false;
    for (char ch : label) {
      const bool ok = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-';
      if (!ok) return false;
    }
    ++labels;
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return labels >= 2;
}

bool valid_ipv4(const std::string& s) {
  std::array<unsigned char, 4> buf{};
  return inet_pton(AF_INET, s.c_str(), buf.data()) == 1;
}

bool valid_ipv6(const std::string& s) {
  std::array<unsigned char, 16> buf{};
  return inet_pton(AF_INET6, s.c_str(), buf.data()) == 1;
}

}  // namespace

Result<ResolverOverrideEntry> parse_resolver_override(std::string_view entry) {
  if (entry.size() > 512) return bad(entry.substr(0, 64), "too long");
  const auto eq = entry.find('=');
  if (eq == std::string_view::npos) return bad(entry, "expected host=ip[:port]");
  ResolverOverrideEntry out;
  out.host = ascii_lowercase(entry.substr(0, eq));
  if (!valid_host(out.host)) return bad(entry, "host must be a DNS name with at least two labels");

  std::string_view rest = entry.substr(eq + 1);
  if (rest.empty()) return bad(entry, "missing address");
  std::string_view addr, port;
  if (rest.front() == '[') {
    const auto close = rest.find(']');
    if (close == std::string_view::npos) return bad(entry, "unterminated '[' in IPv6 address");
    addr = rest.substr(1, close - 1);
    const std::string_view after = rest.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return bad(entry, "expected ':port' after ']'");
      port = after.substr(1);
      if (port.empty()) return bad(entry, "empty port");
    }
    out.target.ip = std::string(addr);
    if (!valid_ipv6(out.target.ip)) return bad(entry, "not an IPv6 address inside [...]");
  } else {
    const auto colon = rest.find(':');
    if (colon != std::string_view::npos && rest.find(':', colon + 1) != std::string_view::npos)
      return bad(entry, "IPv6 addresses must be written in brackets, e.g. [::1]:8443");
    addr = rest.substr(0, colon);
    if (colon != std::string_view::npos) {
      port = rest.substr(colon + 1);
      if (port.empty()) return bad(entry, "empty port");
    }
    out.target.ip = std::string(addr);
    if (!valid_ipv4(out.target.ip)) return bad(entry, "not an IPv4 address (host names are not allowed)");
  }
  if (!port.empty()) {
    unsigned value = 0;
    const auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (ec != std::errc() || ptr != port.data() + port.size() || port.size() > 5 || value == 0 || value > 65535)
      return bad(entry, "port must be 1..65535");
    out.target.port = static_cast<std::uint16_t>(value);
  }
  return out;
}

Result<ResolverOverrides> ResolverOverrides::parse(const std::vector<std::string>& entries) {
  ResolverOverrides out;
  for (const std::string& e : entries) {
    Status s = out.add(e);
    if (!s) return s.error();
  }
  return out;
}

Status ResolverOverrides::add(std::string_view entry) {
  auto parsed = parse_resolver_override(entry);
  if (!parsed) return parsed.error();
  auto [it, inserted] = map_.emplace(parsed->host, parsed->target);
  if (!inserted) return bad(entry, "host '" + parsed->host + "' is overridden twice");
  return Status::Ok();
}

std::optional<ResolvedTarget> ResolverOverrides::lookup(std::string_view host) const {
  std::string key = ascii_lowercase(host);
  if (!key.empty() && key.back() == '.') key.pop_back();  // absolute form "cl-o.alice.test."
  const auto it = map_.find(key);
  if (it == map_.end()) return std::nullopt;
  return it->second;
}

}  // namespace presd
