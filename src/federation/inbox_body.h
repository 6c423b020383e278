// The body of POST /api/inbox (PROTOCOL.md section 3): {"token": "<compact PRES>"} from a peer,
// plus presd's optional owner relay proof {"relay": "<compact JWS>"} (federation/relay_proof.h).
// Kept apart from the HTTP handler so the fuzzer and the unit tests reach the same parser.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"

namespace presd {

struct InboxBody {
  std::string token;
  std::optional<std::string> relay;
};

// Strict JSON (no duplicate keys); unknown members are ignored. Every failure is bad_request.
Result<InboxBody> parse_inbox_body(std::string_view body);

}  // namespace presd
