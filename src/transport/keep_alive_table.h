#pragma once
// Every open WebSocket with the time it was last heard from, in one dense array.
//
// The keep-alive sweep runs four times per ping interval over all connections. Walking a hash map
// of session objects spread over the heap cost about 0.3 µs per connection per sweep (two or three
// cache misses), a tenth of the whole keep-alive cost of idle connections; here a sweep reads 24
// contiguous bytes per connection and touches a session only to ping or drop it.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

namespace presd::transport {

// Session: any type with a public `std::uint32_t keep_alive_slot`, owned by the table's user; the
// table keeps it equal to the session's index while the session is in the table.
template <typename Session>
class KeepAliveTable {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr std::uint32_t kNoSlot = std::numeric_limits<std::uint32_t>::max();

  void add(Session* session, Clock::time_point now) {
    session->keep_alive_slot = static_cast<std::uint32_t>(entries_.size());
    entries_.push_back(Entry{now, session, false});
  }

  // O(1): the last entry takes the removed one's place.
  void remove(Session* session) {
    const std::uint32_t slot = session->keep_alive_slot;
    if (slot == kNoSlot) return;
    if (slot + 1 != entries_.size()) {
      entries_[slot] = entries_.back();
      entries_[slot].session->keep_alive_slot = slot;
    }
    entries_.pop_back();
    session->keep_alive_slot = kNoSlot;
  }

  bool contains(const Session* session) const { return session->keep_alive_slot != kNoSlot; }

  // Anything read from the peer (a pong, a message) counts as being heard.
  void heard(const Session* session, Clock::time_point now) {
    if (session->keep_alive_slot == kNoSlot) return;
    Entry& e = entries_[session->keep_alive_slot];
    e.last_heard = now;
    e.pinged = false;
  }

  // Sessions silent for `interval` and not pinged since they were last heard go to `ping` (once per
  // silence); sessions silent for two intervals go to `drop`. Acting on them is the caller's, after
  // the scan, because dropping a session removes it from the table.
  void sweep(Clock::time_point now, Clock::duration interval, std::vector<Session*>& ping,
             std::vector<Session*>& drop) {
    for (Entry& e : entries_) {
      const Clock::duration silent = now - e.last_heard;
      if (silent < interval) continue;
      if (silent >= 2 * interval) {
        drop.push_back(e.session);
      } else if (!e.pinged) {
        e.pinged = true;
        ping.push_back(e.session);
      }
    }
  }

  std::size_t size() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }
  template <typename F>
  void for_each(F&& f) const {
    for (const Entry& e : entries_) f(e.session);
  }

 private:
  struct Entry {
    Clock::time_point last_heard;
    Session* session;
    bool pinged;
  };
  std::vector<Entry> entries_;
};

}  // namespace presd::transport
