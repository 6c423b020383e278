// The `/api/me` document a remote instance serves for an id_tag (PROTOCOL.md section 2):
//   {"data":{"idTag":"alice.example.net","name":"Alice","type":"person",
//            "keys":[{"keyId":"250205","publicKey":"<std base64 SPKI DER>","expiresAt":...}]},
//    "time":"2026-11-24T10:00:00Z"}
// Parsed strictly: the body is untrusted input from whoever answers for cl-o.<iss>.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "token/es384.h"

namespace presd {

inline constexpr std::size_t kMaxMeDocumentBytes = 64 * 1024;
inline constexpr std::size_t kMaxMeDocumentKeys = 32;
inline constexpr std::size_t kMaxRemoteKeyIdBytes = 64;  // as TokenLimits::max_key_id_bytes

struct RemoteKey {
  std::string key_id;
  Es384PublicKey key;
  std::optional<std::int64_t> expires_at_s;
};

// A key entry that was well-formed JSON but could not be used (not base64, not a P-384 SPKI,
// already expired). Kept for logs; never an error on its own.
struct SkippedKey {
  std::string key_id;
  std::string reason;
};

struct MeDocument {
  std::string id_tag;
  std::vector<RemoteKey> keys;      // usable ES384 keys, in document order, not expired at now_s
  std::vector<SkippedKey> skipped;  // diagnostics

  const RemoteKey* find(std::string_view key_id) const;
};

// Every failure is token_unknown_key ("could not obtain the key") with a message saying why.
//
// Rejected as a whole: body over 64 KiB; not JSON, or a JSON object with a duplicated member at
// any depth; no "data" object; data.idTag not a string equal to expected_id_tag; data.keys not
// an array, or more than 32 entries; an entry that is not an object, whose keyId is not a
// 1..64-char printable-ASCII string, whose publicKey is not a string, whose expiresAt is not
// absent/null, an ISO-8601 UTC string or an integer (seconds); the same keyId twice (a token
// naming it could be read two ways).
// Skipped (see MeDocument::skipped): publicKey not standard padded base64, not a DER SPKI of a
// P-384 EC key (e.g. P-256, RSA), expiresAt <= now_s. A document left with no usable key is
// rejected. Other members (name, type, time, unknown ones) are ignored.
Result<MeDocument> parse_me_document(std::string_view body, std::string_view expected_id_tag, std::int64_t now_s);

}  // namespace presd
