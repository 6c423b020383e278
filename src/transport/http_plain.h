// The plain shape of an HTTP/1.1 request, read straight from a connection's buffer: the fast
// path in front of Beast's request parser, as common/plain_json.h is in front of the JSON
// parser. It never refuses anything: a request outside the subset is Beast's to parse, and to
// answer with a coded error if it is bad. Peers' `POST /api/inbox` and clients' requests are
// plain; a request is plain when
//   - its request line is "METHOD SP target SP HTTP/1.1 CRLF", METHOD 1..16 of A-Z, the target
//     1..kMaxPlainTarget bytes of printable ASCII (0x21..0x7e);
//   - every header line is "name:value CRLF", the name of A-Z a-z 0-9 '-', the value of
//     printable ASCII, space and tab (leading and trailing blanks are not part of it); no
//     continuation line (obs-fold);
//   - Host, Authorization, Content-Type, Content-Length and Connection appear at most once;
//     Connection is "keep-alive" or "close"; Content-Length is 1..9 digits without a leading
//     zero (or "0") and within the body limit;
//   - it has no Transfer-Encoding, Content-Encoding, Upgrade, Expect or Proxy-Connection field;
//   - the header (request line to the empty line) is shorter than the header limit.
// For such a request Beast reads the same method, target, fields, body and keep-alive;
// tests/transport/http_plain_test.cpp and fuzz/http_plain_fuzz.cpp check that against Beast.
#pragma once

#include <cstddef>
#include <string_view>

namespace presd::transport {

inline constexpr std::size_t kMaxPlainTarget = 2048;

// Views into the scanned buffer: valid while it is neither consumed nor reallocated.
struct PlainRequest {
  std::string_view method, target;
  std::string_view host, authorization, content_type;  // raw field values, empty if absent
  std::string_view body;
  bool keep_alive = true;
  std::size_t size = 0;  // bytes from the request line to the end of the body
};

struct RequestLimits {
  std::size_t max_header_bytes = 0;
  std::size_t max_body_bytes = 0;
};

enum class RequestScan {
  partial,  // no whole request yet: reading more is needed (and may end in any of these)
  whole,    // a whole request outside the plain subset: Beast parses it without reading more
  plain,    // a whole plain request, described in `out`
};

RequestScan scan_request(std::string_view buffer, const RequestLimits& limits, PlainRequest& out);

// True if `b` starts with a whole request (header, and a Content-Length body if any), plain or
// not: reading it cannot wait on the client. Anything unusual (chunked, a malformed length) says
// no, and the reading path takes it.
bool holds_whole_request(std::string_view b);

}  // namespace presd::transport
