// PROTOCOL.md section 6, "may access the context", as plain functions over the store.
//  - The context's creator has the admin role.
//  - Others need an active (not deleted) membership; its role decides.
//  - Subscribing and receiving need observer or higher; sending needs member or higher.
//  - A profile context "@x" exists implicitly: x is its creator and owner even without a row.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "store/store.h"

namespace presd {

enum class Access { subscribe, send, receive };

// The role `user` holds in `ctx` (nullopt: none). Pure: no I/O.
std::optional<Role> effective_role(const Context& ctx, const std::optional<Member>& membership,
                                   std::string_view user);
bool role_allows(std::optional<Role> role, Access access);

class AccessChecker {
 public:
  explicit AccessChecker(MembershipStore& store) : store_(store) {}

  // The context row, or the implicit one for "@id_tag". context_unknown otherwise.
  Result<Context> context(std::string_view context_id);
  Result<std::optional<Role>> role_of(std::string_view context_id, std::string_view user);
  // context_unknown, access_denied; for Access::receive of an aud target: audience_no_access.
  Status check(std::string_view context_id, std::string_view user, Access access);
  // Everyone who may receive the context's presence: its creator and its active members.
  Result<std::vector<std::string>> receivers(std::string_view context_id);

 private:
  MembershipStore& store_;
};

}  // namespace presd
