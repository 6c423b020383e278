// Client bytes into the plain HTTP request scanner (src/transport/http_plain.h) with Beast's
// parser as the oracle (tests/transport/http_plain_oracle.h): wherever the scanner reads a
// request as plain, Beast must read the same request from the same bytes, and every shorter
// prefix must scan as partial. A disagreement aborts with what differs.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "transport/http_plain_oracle.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  // Small limits reach their edges: the first byte picks them.
  const presd::transport::RequestLimits limits{64 + (data[0] & 0x0f) * 64u, 16u * (data[0] >> 4)};
  const std::string_view bytes(reinterpret_cast<const char*>(data + 1), size - 1);
  const std::string problem = presd::transport::testing::plain_scan_disagreement(bytes, limits);
  if (!problem.empty()) {
    std::fprintf(stderr, "http_plain: %s\n", problem.c_str());
    std::abort();
  }
  return 0;
}
