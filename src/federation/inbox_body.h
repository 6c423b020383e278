// The body of POST /api/inbox (PROTOCOL.md section 3): {"token": "<compact PRES>"} from a peer,
// plus presd's optional owner relay proof {"relay": "<compact JWS>"} (federation/relay_proof.h).
// Kept apart from the HTTP handler so the fuzzer and the unit tests reach the same parser.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"

namespace presd {

struct InboxBody {
  // Into the body text it was read from (the usual, escape-free body: no copy), or into
  // `unescaped`: valid while that text lives.
  std::string_view token;
  std::optional<std::string> relay;
  std::unique_ptr<const std::string> unescaped;  // the token the general path decoded
};

// Strict JSON (no duplicate keys); unknown members are ignored. Every failure is bad_request.
// The result refers to `body` (InboxBody::token): keep the text while it is used.
Result<InboxBody> parse_inbox_body(std::string_view body);

}  // namespace presd
