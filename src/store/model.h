// Rows presd keeps durably: hosted tenants, their signing keys, contexts and memberships.
// Presence itself is never stored.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace presd {

// PROTOCOL.md section 6: observer < member < moderator < admin.
enum class Role : std::uint8_t { observer = 1, member = 2, moderator = 3, admin = 4 };

std::string_view to_string(Role r);
std::optional<Role> parse_role(std::string_view s);

struct Context {
  std::string id;       // the PRES `sub`: "a1~..." or "@id_tag"
  std::string owner;    // id_tag of the instance-level owner (CONV aud if set, else its iss)
  std::string creator;  // the CONV issuer: always has access
  std::int64_t created_at_s = 0;
};

struct Member {
  std::string id_tag;
  Role role = Role::member;
  bool deleted = false;  // a revoked SUBS; kept so history is not lost
  std::int64_t updated_at_s = 0;
};

struct StoredKey {
  std::string id_tag;
  std::string key_id;       // "YYMMDD" (opaque to verifiers)
  std::string private_pem;  // PKCS#8
  std::string public_der;   // SubjectPublicKeyInfo
  std::int64_t created_at_s = 0;
  std::optional<std::int64_t> expires_at_s;
};

}  // namespace presd
