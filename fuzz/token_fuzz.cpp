// The PRES token parser on arbitrary bytes: must never crash, and whatever it accepts must
// satisfy the claim rules it promises.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "token/pres_token.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto token = presd::parse_pres_token(text);
  if (!token) return 0;
  if (!presd::validate_pres_claims(token->claims)) std::abort();  // accepted but invalid: a bug
  if (token->signature.size() != presd::kEs384SignatureBytes) std::abort();
  (void)presd::check_freshness(token->claims, 1'800'000'000'000);
  return 0;
}
