// Current presence per (context, issuer, slot, audience), held in memory only and dropped at its expiry
// (iat + TTL): nothing is persisted, so a restart leaves no ghosts. Expiry is a hashed timing
// wheel: O(1) to schedule, O(1) amortized per expired state, no scans of the table.
//
// Slots: ONLINE, AWAY and OFFLINE share the "status" slot (a user has one status per context);
// TYPING and every app-defined subtype have a slot of their own. A state aimed at one user (aud)
// never replaces a broadcast one or one aimed at someone else: each has its own recipients, who
// must each get the expiry.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace presd {

struct PresenceState {
  std::string context;
  std::string issuer;
  std::string subtype;
  std::optional<std::string> audience;  // only this user may see the state
  std::int64_t iat_s = 0;
  std::int64_t expires_at_ms = 0;
  std::shared_ptr<const std::string> frame;  // the ACTION frame, serialized once, for snapshots
  std::shared_ptr<const std::string> token;  // the compact PRES, to resync other cluster nodes
};

// "status" for ONLINE/AWAY/OFFLINE, otherwise the subtype itself.
std::string_view presence_slot(std::string_view subtype);

class PresenceTable {
 public:
  // tick_ms: wheel resolution (expiry may fire up to one tick late); horizon_ms: the longest
  // lifetime expected (TTL); longer ones still work, with extra wheel rounds.
  explicit PresenceTable(std::int64_t tick_ms = 100, std::int64_t horizon_ms = 32'000);
  ~PresenceTable();
  PresenceTable(const PresenceTable&) = delete;
  PresenceTable& operator=(const PresenceTable&) = delete;

  // Stores the state, replacing the one in the same slot. Refused (returns false, table
  // unchanged) when the stored state has a newer iat, or when the state is already expired.
  bool upsert(PresenceState state, std::int64_t now_ms);

  // Removes and returns every state whose expires_at_ms <= now_ms, oldest tick first.
  std::vector<PresenceState> expire(std::int64_t now_ms);

  // Live states of a context that `viewer` may see (audience unset or == viewer).
  std::vector<const PresenceState*> snapshot(std::string_view context, std::string_view viewer,
                                             std::int64_t now_ms) const;

  // Every live state (expires_at_ms > now_ms), in no particular order.
  std::vector<const PresenceState*> live(std::int64_t now_ms) const;

  std::size_t size() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace presd
