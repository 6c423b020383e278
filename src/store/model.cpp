#include "store/model.h"

namespace presd {

std::string_view to_string(Role r) {
  switch (r) {
    case Role::observer: return "observer";
    case Role::member: return "member";
    case Role::moderator: return "moderator";
    case Role::admin: return "admin";
  }
  return "unknown";
}

std::optional<Role> parse_role(std::string_view s) {
  if (s == "observer") return Role::observer;
  if (s == "member") return Role::member;
  if (s == "moderator") return Role::moderator;
  if (s == "admin") return Role::admin;
  return std::nullopt;
}

}  // namespace presd
