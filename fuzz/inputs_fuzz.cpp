// The other parsers of untrusted input, chosen by the first byte: strict JSON, HS256 access
// tokens, /api/me documents from peers, owner relay proofs, resolver overrides, addresses.
#include <cstdint>
#include <string_view>

#include "common/strict_json.h"
#include "federation/address_policy.h"
#include "federation/me_document.h"
#include "federation/relay_proof.h"
#include "federation/resolver_override.h"
#include "token/access_token.h"
#include "token/base64.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 7) {
    case 0: (void)presd::parse_strict_json(text); break;
    case 1: (void)presd::verify_access_token(text, "0123456789abcdef0123456789abcdef", 1'800'000'000); break;
    case 2: (void)presd::parse_me_document(text, "alice.example.net", 1'800'000'000); break;
    case 3: (void)presd::parse_relay_proof(text); break;
    case 4: (void)presd::parse_resolver_override(text); break;
    case 5: (void)presd::classify(text); break;
    case 6: (void)presd::b64::decode_url_strict(text); (void)presd::b64::decode_std(text); break;
  }
  return 0;
}
