#include "membership/access.h"

#include <string>

#include "common/identifiers.h"

namespace presd {
namespace {

std::string_view verb(Access access) {
  switch (access) {
    case Access::subscribe: return "subscribe to";
    case Access::send: return "send in";
    case Access::receive: return "receive from";
  }
  return "access";
}

}  // namespace

std::optional<Role> effective_role(const Context& ctx, const std::optional<Member>& membership,
                                   std::string_view user) {
  if (!user.empty() && user == ctx.creator) return Role::admin;
  if (membership && !membership->deleted) return membership->role;
  return std::nullopt;
}

bool role_allows(std::optional<Role> role, Access access) {
  if (!role) return false;
  switch (access) {
    case Access::subscribe:
    case Access::receive:
      return *role >= Role::observer;
    case Access::send:
      return *role >= Role::member;
  }
  return false;
}

Result<Context> AccessChecker::context(std::string_view context_id) {
  auto found = store_.find_context(context_id);
  if (!found) return found.error();
  if (found->has_value()) return std::move(**found);
  std::string_view owner = profile_context_owner(context_id);
  if (!owner.empty()) {
    Context implicit;
    implicit.id = std::string(context_id);
    implicit.owner = std::string(owner);
    implicit.creator = std::string(owner);
    return implicit;
  }
  return Error(ErrorCode::context_unknown, "unknown context '" + std::string(context_id) + "'");
}

Result<std::optional<Role>> AccessChecker::role_of(std::string_view context_id,
                                                   std::string_view user) {
  auto ctx = context(context_id);
  if (!ctx) return ctx.error();
  // The creator is admin whatever the membership rows say: skip the lookup.
  if (!user.empty() && user == ctx->creator) return std::optional<Role>(Role::admin);
  auto member = store_.find_member(ctx->id, user);
  if (!member) return member.error();
  return effective_role(*ctx, *member, user);
}

Status AccessChecker::check(std::string_view context_id, std::string_view user, Access access) {
  auto role = role_of(context_id, user);
  if (!role) return role.error();
  if (role_allows(*role, access)) return Status::Ok();

  std::string message = "user '" + std::string(user) + "' ";
  if (access == Access::receive) {
    message += "has no access to context '" + std::string(context_id) + "'";
    return Error(ErrorCode::audience_no_access, std::move(message));
  }
  message += "may not " + std::string(verb(access)) + " context '" + std::string(context_id) + "'";
  if (*role) {
    message += " (role " + std::string(to_string(**role)) + ")";
  } else {
    message += " (not a member)";
  }
  return Error(ErrorCode::access_denied, std::move(message));
}

Result<std::vector<std::string>> AccessChecker::receivers(std::string_view context_id) {
  auto ctx = context(context_id);
  if (!ctx) return ctx.error();
  std::vector<std::string> out{ctx->creator};
  auto members = store_.list_members(context_id);
  if (!members) return members.error();
  for (const Member& m : *members)
    if (!m.deleted && m.id_tag != ctx->creator && role_allows(m.role, Access::receive)) out.push_back(m.id_tag);
  return out;
}

}  // namespace presd
