// The three segments of a compact JWS ("header.payload.signature"), shared by the PRES token,
// the HS256 access token and the owner's relay proof parsers.
#pragma once

#include <optional>
#include <string_view>

namespace presd {

// base64url of {"typ":"JWT","alg":"ES384"}: the header the reference emits and presd signs with.
inline constexpr std::string_view kEs384JwtHeader = "eyJ0eXAiOiJKV1QiLCJhbGciOiJFUzM4NCJ9";

struct JwsSegments {
  std::string_view header, payload, signature;
  std::string_view signing_input;  // "header.payload", what the signature covers
};

// nullopt unless there are exactly three dot-separated segments (segments may be empty).
inline std::optional<JwsSegments> split_compact_jws(std::string_view compact) {
  const std::size_t dot1 = compact.find('.');
  if (dot1 == std::string_view::npos) return std::nullopt;
  const std::size_t dot2 = compact.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos || compact.find('.', dot2 + 1) != std::string_view::npos) return std::nullopt;
  return JwsSegments{compact.substr(0, dot1), compact.substr(dot1 + 1, dot2 - dot1 - 1), compact.substr(dot2 + 1),
                     compact.substr(0, dot2)};
}

}  // namespace presd
