// The PRES token parser on arbitrary bytes: must never crash, whatever it accepts must satisfy
// the claim rules it promises, and its fast path (plain JSON) must give the general path's answer.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "common/fast_path.h"
#include "token/pres_token.h"

namespace {

bool same(const presd::Result<presd::PresToken>& a, const presd::Result<presd::PresToken>& b) {
  if (a.ok() != b.ok()) return false;
  if (!a) return a.code() == b.code() && a.error().message == b.error().message;
  const presd::PresClaims &x = a->claims, &y = b->claims;
  return x.iss == y.iss && x.k == y.k && x.subtype == y.subtype && x.sub == y.sub && x.aud == y.aud &&
         x.content_json == y.content_json && x.iat == y.iat && x.exp == y.exp && a->compact == b->compact &&
         a->signing_input_len == b->signing_input_len && a->signature == b->signature;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto token = presd::parse_pres_token(text);
  presd::fast_path::set_enabled(false);
  auto general = presd::parse_pres_token(text);
  presd::fast_path::set_enabled(true);
  if (!same(token, general)) std::abort();  // the fast path answered differently
  if (!token) return 0;
  if (!presd::validate_pres_claims(token->claims)) std::abort();  // accepted but invalid: a bug
  if (token->signature.size() != presd::kEs384SignatureBytes) std::abort();
  (void)presd::check_freshness(token->claims, 1'800'000'000'000);
  return 0;
}
