// Base64 codecs. The url-safe decoder is strict as JWS requires: no padding, no characters
// outside the alphabet, no non-zero trailing bits, no length % 4 == 1.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace presd::b64 {

std::string encode_url(std::string_view bytes);  // unpadded
std::optional<std::string> decode_url_strict(std::string_view text);
// The same into `out`, reusing its buffer; false (out unspecified) where decode_url_strict gives nullopt.
bool decode_url_strict_into(std::string_view text, std::string& out);

std::string encode_std(std::string_view bytes);  // padded, standard alphabet (keys in /api/me)
std::optional<std::string> decode_std(std::string_view text);  // padded, standard alphabet

}  // namespace presd::b64
