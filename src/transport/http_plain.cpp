#include "transport/http_plain.h"

#include <cstring>
#include <utility>

#include "common/ascii.h"

namespace presd::transport {
namespace {

constexpr std::size_t kMaxPlainMethod = 16;
constexpr std::size_t kMaxLengthDigits = 9;

bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
}

bool is_value_char(char c) { return (c >= 0x20 && c <= 0x7e) || c == '\t'; }

std::string_view trim_blanks(std::string_view v) {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  return v;
}

// A Content-Length value of 1..9 digits (leading zeros allowed).
bool length_digits(std::string_view v, std::size_t& out) {
  if (v.empty() || v.size() > kMaxLengthDigits) return false;
  std::size_t n = 0;
  for (char c : v) {
    if (c < '0' || c > '9') return false;
    n = n * 10 + static_cast<std::size_t>(c - '0');
  }
  out = n;
  return true;
}

// The same without a leading zero but "0" itself: one spelling per number.
bool plain_length(std::string_view v, std::size_t& out) {
  return !(v.size() > 1 && v.front() == '0') && length_digits(v, out);
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

// Which of the fields that may appear only once were seen.
struct SeenFields {
  bool host = false, authorization = false, content_type = false, length = false, connection = false;
};

// One header line without its CRLF. Fills r and the body length.
bool parse_field(std::string_view line, const RequestLimits& limits, PlainRequest& r, SeenFields& seen,
                 std::size_t& body_bytes) {
  std::size_t colon = 0;
  while (colon < line.size() && is_name_char(line[colon])) ++colon;
  if (colon == 0 || colon == line.size() || line[colon] != ':') return false;
  const std::string_view name = line.substr(0, colon);
  std::string_view value = line.substr(colon + 1);
  for (char c : value)
    if (!is_value_char(c)) return false;
  value = trim_blanks(value);
  auto once = [](bool& flag) { return !std::exchange(flag, true); };
  if (ascii_iequals(name, "host")) {
    if (!once(seen.host)) return false;
    r.host = value;
  } else if (ascii_iequals(name, "authorization")) {
    if (!once(seen.authorization)) return false;
    r.authorization = value;
  } else if (ascii_iequals(name, "content-type")) {
    if (!once(seen.content_type)) return false;
    r.content_type = value;
  } else if (ascii_iequals(name, "content-length")) {
    if (!once(seen.length) || !plain_length(value, body_bytes) || body_bytes > limits.max_body_bytes) return false;
  } else if (ascii_iequals(name, "connection")) {
    if (!once(seen.connection)) return false;
    if (ascii_iequals(value, "close"))
      r.keep_alive = false;
    else if (!ascii_iequals(value, "keep-alive"))
      return false;
  } else if (ascii_iequals(name, "transfer-encoding") || ascii_iequals(name, "content-encoding") ||
             ascii_iequals(name, "upgrade") || ascii_iequals(name, "expect") || ascii_iequals(name, "proxy-connection")) {
    return false;
  }
  return true;
}

}  // namespace

// One pass, a line at a time: a plain line never holds a bare CR or LF, so the first empty line
// is where the first CRLFCRLF is.
RequestScan scan_request(std::string_view b, const RequestLimits& limits, PlainRequest& out) {
  auto not_plain = [b] { return holds_whole_request(b) ? RequestScan::whole : RequestScan::partial; };
  PlainRequest r;
  SeenFields seen;
  std::size_t body_bytes = 0;
  std::size_t pos = 0;  // start of the next line
  bool request_line = true;
  for (;;) {
    // Every line so far was plain and none ended the header.
    if (pos == b.size()) return RequestScan::partial;  // (memchr must not see an empty view's null)
    const void* lf = std::memchr(b.data() + pos, '\n', b.size() - pos);
    if (!lf) return RequestScan::partial;
    const std::size_t eol = static_cast<std::size_t>(static_cast<const char*>(lf) - b.data());
    if (eol == pos || b[eol - 1] != '\r') return not_plain();  // a bare LF
    const std::string_view line = b.substr(pos, eol - 1 - pos);
    pos = eol + 1;
    if (pos >= limits.max_header_bytes) return not_plain();  // Beast's to refuse (431)
    if (line.empty()) break;
    if (request_line ? !parse_request_line(line, r) : !parse_field(line, limits, r, seen, body_bytes))
      return not_plain();
    request_line = false;
  }
  if (request_line) return not_plain();  // an empty line where the request line should be
  if (b.size() - pos < body_bytes) return RequestScan::partial;
  r.body = b.substr(pos, body_bytes);
  r.size = pos + body_bytes;
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
    if (ascii_iequals(name, "transfer-encoding")) return false;
    if (!ascii_iequals(name, "content-length")) continue;
    if (!length_digits(trim_blanks(line.substr(colon + 1)), body)) return false;
  }
  return b.size() >= end + 4 + body;
}

}  // namespace presd::transport
