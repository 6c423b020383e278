// Beast's request parser as the oracle for scan_request (src/transport/http_plain.h): used by
// tests/transport/http_plain_test.cpp and fuzz/http_plain_fuzz.cpp.
#pragma once

#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/http.hpp>

#include <string>
#include <string_view>

#include "transport/http_plain.h"

namespace presd::transport::testing {

// "" when scan_request reads `bytes` as Beast does, else what differs. For a plain request Beast
// (with the same limits) must read exactly its bytes, with the same method, target, fields,
// body and keep-alive, version 1.1 and nothing that would take it off the plain path (an
// upgrade, a coding); every shorter prefix must scan as partial. In every case scan_request's
// whole/partial verdict must be holds_whole_request's.
inline std::string plain_scan_disagreement(std::string_view bytes, const RequestLimits& limits) {
  namespace http = boost::beast::http;
  PlainRequest plain;
  const RequestScan scan = scan_request(bytes, limits, plain);
  if ((scan != RequestScan::partial) != holds_whole_request(bytes)) return "scan and holds_whole_request disagree";
  if (scan != RequestScan::plain) return {};

  http::request_parser<http::string_body> parser;
  parser.header_limit(static_cast<std::uint32_t>(limits.max_header_bytes));
  parser.body_limit(limits.max_body_bytes);
  parser.eager(true);
  boost::beast::error_code ec;
  std::size_t used = 0;
  while (!parser.is_done()) {
    const std::size_t n = parser.put(boost::asio::buffer(bytes.data() + used, bytes.size() - used), ec);
    used += n;
    if (ec || n == 0) break;
  }
  if (ec || !parser.is_done()) return "Beast refuses a plain request: " + ec.message();
  if (used != plain.size) return "Beast read " + std::to_string(used) + " bytes, the scan " + std::to_string(plain.size);
  const auto& req = parser.get();
  auto field = [&](http::field f) {
    auto it = req.find(f);
    return it == req.end() ? std::string() : std::string(it->value());
  };
  if (req.method_string() != plain.method) return "method differs";
  if (req.target() != plain.target) return "target differs";
  if (req.version() != 11) return "version is not 1.1";
  if (req.keep_alive() != plain.keep_alive) return "keep-alive differs";
  if (req.body() != plain.body) return "body differs";
  if (field(http::field::host) != plain.host) return "host differs";
  if (field(http::field::authorization) != plain.authorization) return "authorization differs";
  if (field(http::field::content_type) != plain.content_type) return "content-type differs";
  for (http::field f : {http::field::upgrade, http::field::content_encoding, http::field::transfer_encoding,
                        http::field::expect})
    if (req.find(f) != req.end()) return "a plain request with " + std::string(http::to_string(f));

  PlainRequest ignored;
  for (std::size_t cut = 0; cut < plain.size; ++cut)
    if (scan_request(bytes.substr(0, cut), limits, ignored) != RequestScan::partial)
      return "the prefix of " + std::to_string(cut) + " bytes is not partial";
  return {};
}

}  // namespace presd::transport::testing
