// New conversation context ids in the reference action-id form: "a1~" + 43 base64url chars
// (32 random bytes), so they are indistinguishable from CONV action ids.
#pragma once

#include <string>

namespace presd {

std::string generate_context_id();

}  // namespace presd
