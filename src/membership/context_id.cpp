#include "membership/context_id.h"

#include <openssl/rand.h>

#include <stdexcept>

#include "token/base64.h"

namespace presd {

std::string generate_context_id() {
  unsigned char raw[32];
  if (RAND_bytes(raw, sizeof raw) != 1) throw std::runtime_error("RAND_bytes failed");
  return "a1~" + b64::encode_url(std::string_view(reinterpret_cast<const char*>(raw), sizeof raw));
}

}  // namespace presd
