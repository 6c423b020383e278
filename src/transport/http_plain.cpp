#include "transport/http_plain.h"

#include <utility>

namespace presd::transport {
namespace {

constexpr std::size_t kMaxPlainMethod = 16;
constexpr std::size_t kMaxLengthDigits = 9;

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

// `lowercase` is a lowercase literal.
bool iequals(std::string_view s, std::string_view lowercase) {
  if (s.size() != lowercase.size()) return false;
  for (std::size_t i = 0; i < s.size(); ++i)
    if (lower(s[i]) != lowercase[i]) return false;
  return true;
}

bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
}

bool is_value_char(char c) { return (c >= 0x20 && c <= 0x7e) || c == '\t'; }

std::string_view trim_blanks(std::string_view v) {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  return v;
}

// 1..9 digits, no leading zero but "0" itself: one spelling per number.
bool plain_length(std::string_view v, std::size_t& out) {
  if (v.empty() || v.size() > kMaxLengthDigits || (v.size() > 1 && v.front() == '0')) return false;
  std::size_t n = 0;
  for (char c : v) {
    if (c < '0' || c > '9') return false;
    n = n * 10 + static_cast<std::size_t>(c - '0');
  }
  out = n;
  return true;
}

// Cuts the first CRLF-terminated line off `rest` (which ends with a CRLF).
std::string_view next_line(std::string_view& rest) {
  const auto eol = rest.find("\r\n");
  const std::string_view line = rest.substr(0, eol);
  rest.remove_prefix(eol + 2);
  return line;
}

bool parse_request_line(std::string_view line, PlainRequest& r) {
  std::size_t m = 0;
  while (m < line.size() && line[m] >= 'A' && line[m] <= 'Z') ++m;
  if (m == 0 || m > kMaxPlainMethod || m == line.size() || line[m] != ' ') return false;
  r.method = line.substr(0, m);
  constexpr std::string_view kVersion = " HTTP/1.1";
  const std::string_view rest = line.substr(m + 1);
  if (!rest.ends_with(kVersion)) return false;
  r.target = rest.substr(0, rest.size() - kVersion.size());
  if (r.target.empty() || r.target.size() > kMaxPlainTarget) return false;
  for (char c : r.target)
    if (c < 0x21 || c > 0x7e) return false;
  return true;
}

// The header lines after the request line (each with its CRLF). Fills r and the body length.
bool parse_fields(std::string_view fields, const RequestLimits& limits, PlainRequest& r, std::size_t& body_bytes) {
  bool host = false, authorization = false, content_type = false, length = false, connection = false;
  auto once = [](bool& seen) { return !std::exchange(seen, true); };
  while (!fields.empty()) {
    const std::string_view line = next_line(fields);
    const auto colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) return false;
    const std::string_view name = line.substr(0, colon);
    for (char c : name)
      if (!is_name_char(c)) return false;
    std::string_view value = line.substr(colon + 1);
    for (char c : value)
      if (!is_value_char(c)) return false;
    value = trim_blanks(value);
    if (iequals(name, "host")) {
      if (!once(host)) return false;
      r.host = value;
    } else if (iequals(name, "authorization")) {
      if (!once(authorization)) return false;
      r.authorization = value;
    } else if (iequals(name, "content-type")) {
      if (!once(content_type)) return false;
      r.content_type = value;
    } else if (iequals(name, "content-length")) {
      if (!once(length) || !plain_length(value, body_bytes) || body_bytes > limits.max_body_bytes) return false;
    } else if (iequals(name, "connection")) {
      if (!once(connection)) return false;
      if (iequals(value, "close"))
        r.keep_alive = false;
      else if (!iequals(value, "keep-alive"))
        return false;
    } else if (iequals(name, "transfer-encoding") || iequals(name, "content-encoding") || iequals(name, "upgrade") ||
               iequals(name, "expect") || iequals(name, "proxy-connection")) {
      return false;
    }
  }
  return true;
}

}  // namespace

RequestScan scan_request(std::string_view b, const RequestLimits& limits, PlainRequest& out) {
  const auto end = b.find("\r\n\r\n");
  if (end == std::string_view::npos) return RequestScan::partial;
  const std::size_t header_bytes = end + 4;
  PlainRequest r;
  std::size_t body_bytes = 0;
  std::string_view head = b.substr(0, end + 2);  // every line with its CRLF
  const bool plain = header_bytes < limits.max_header_bytes && parse_request_line(next_line(head), r) &&
                     parse_fields(head, limits, r, body_bytes);
  if (!plain) return holds_whole_request(b) ? RequestScan::whole : RequestScan::partial;
  if (b.size() - header_bytes < body_bytes) return RequestScan::partial;
  r.body = b.substr(header_bytes, body_bytes);
  r.size = header_bytes + body_bytes;
  out = r;
  return RequestScan::plain;
}

bool holds_whole_request(std::string_view b) {
  const auto end = b.find("\r\n\r\n");
  if (end == std::string_view::npos) return false;
  std::size_t body = 0;
  std::string_view head = b.substr(0, end + 2);
  while (!head.empty()) {
    const std::string_view line = next_line(head);
    const auto colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    const std::string_view name = line.substr(0, colon);
    if (iequals(name, "transfer-encoding")) return false;
    if (!iequals(name, "content-length")) continue;
    const std::string_view value = trim_blanks(line.substr(colon + 1));
    if (value.empty() || value.size() > kMaxLengthDigits) return false;
    body = 0;
    for (char c : value) {
      if (c < '0' || c > '9') return false;
      body = body * 10 + static_cast<std::size_t>(c - '0');
    }
  }
  return b.size() >= end + 4 + body;
}

}  // namespace presd::transport
