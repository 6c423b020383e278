// Pre-signs PRES tokens with a hosted tenant's key from a presd data directory, so that signing
// (1.4 ms each) happens before a measurement and not on the generator core during it.
#pragma once

#include <cstdint>
#include <string>

namespace loadgen {

struct SignOptions {
  std::string data_dir;
  std::string tenant;
  std::string context;
  std::string out;
  std::size_t count = 1000;
  std::size_t pad = 0;       // bytes of filler in `c`, to size the delivered ACTION frame
  std::size_t subtypes = 0;  // 0: all TYPING; else "S<i % subtypes>", one presence slot each
  std::int64_t iat = 0;      // 0: now. One iat for all, so no token supersedes another
  unsigned threads = 2;
  bool reject_set = false;   // write the rejection mix instead (see sign.cpp)
};

// Writes one token per line; token i carries "n":i in `c` (latency probes). Returns 0 on success.
int sign_tokens(const SignOptions& o);

}  // namespace loadgen
