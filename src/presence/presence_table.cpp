#include "presence/presence_table.h"

#include <algorithm>
#include <deque>
#include <functional>
#include <stdexcept>
#include <unordered_map>

// Layout
// ------
// States live in a slab (std::deque<Slot>, so a PresenceState never moves while it is stored and
// snapshot() can hand out pointers). Three indexes point into the slab by slot number:
//   * by_key:     (context, issuer, slot, audience) -> slot number, for upsert;
//   * by_context: context -> slot numbers, for snapshot (O(states in the context));
//   * wheel:      a hashed timing wheel of N = ceil(horizon / tick) + 1 buckets; a state expiring
//                 at time t is filed under bucket (t / tick) mod N as (slot, generation, t).
//
// Lazy deletion
// -------------
// Every upsert stamps the slot with a fresh generation from a table-wide counter (never reused,
// and 0 marks a free slot) and files a new wheel entry. The previous entry is not searched for;
// it stays in its bucket and is dropped when that bucket is next visited because its generation
// no longer matches. A replaced state therefore never fires at the old time, and a slot reused by
// another key cannot be hit by a stale entry either.
//
// Cost of expire()
// ----------------
// expire(now) visits the buckets of the ticks from the cursor (the tick of the previous call) up
// to tick(now), but at most N buckets however far time jumped, since N consecutive ticks cover
// every bucket. Inside a visited bucket each entry is one of:
//   * due (expires_at <= now), current generation: removed and returned - charged to its upsert;
//   * stale (old generation): dropped - charged to the upsert that made it stale;
//   * not yet due: kept. That happens when it is a later round (lifetime > N ticks: visited once
//     per round, so ceil(lifetime / (N * tick)) visits, i.e. 1 for lifetimes within the horizon),
//     or when it belongs to the current tick and expires later within it (the current tick's
//     bucket is visited again by the next call, so expiry is exact to the millisecond).
// Every wheel entry is thus touched O(1 + extra rounds) times: O(1) amortized per state when
// lifetimes stay within the horizon, and no call ever scans the table.

namespace presd {

std::string_view presence_slot(std::string_view subtype) {
  if (subtype == "ONLINE" || subtype == "AWAY" || subtype == "OFFLINE") return "status";
  return subtype;
}

namespace {

// The audience is part of the key: a broadcast TYPING and a TYPING aimed at one user have
// different recipients, so replacing one by the other would leave the first one's recipients
// without an expiry event (a stuck indicator). They are separate states, each expiring.
struct KeyView {
  std::string_view context, issuer, slot, audience;
  bool operator==(const KeyView&) const = default;
};

struct Key {
  std::string context, issuer, slot, audience;
  KeyView view() const { return {context, issuer, slot, audience}; }
};

KeyView key_of(const PresenceState& s) {
  return {s.context, s.issuer, presence_slot(s.subtype), s.audience ? std::string_view(*s.audience) : std::string_view{}};
}

inline KeyView as_view(const KeyView& k) { return k; }
inline KeyView as_view(const Key& k) { return k.view(); }

// Deliberately not noexcept: libstdc++ then caches each node's hash, so walking a bucket chain
// compares cached hashes instead of rehashing three strings per node.
struct KeyHash {
  using is_transparent = void;
  std::size_t operator()(const KeyView& k) const {
    std::hash<std::string_view> h;
    std::size_t seed = h(k.context);
    for (std::string_view part : {k.issuer, k.slot, k.audience})
      seed ^= h(part) + 0x9e3779b97f4a7c15ULL + (seed << 6) + (seed >> 2);
    return seed;
  }
  std::size_t operator()(const Key& k) const { return (*this)(k.view()); }
};

struct KeyEq {
  using is_transparent = void;
  template <class A, class B>
  bool operator()(const A& a, const B& b) const noexcept {
    return as_view(a) == as_view(b);
  }
};

struct StringHash {  // not noexcept: see KeyHash
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

std::int64_t floor_div(std::int64_t a, std::int64_t b) {
  std::int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

}  // namespace

struct PresenceTable::Impl {
  struct Slot {
    PresenceState state;
    std::uint64_t gen = 0;         // 0: free
    std::uint32_t ctx_pos = 0;     // position in by_context[state.context]
  };
  struct WheelEntry {
    std::uint32_t slot;
    std::uint64_t gen;
    std::int64_t expires_at_ms;
  };

  std::int64_t tick_ms;
  std::size_t n;  // buckets
  std::vector<std::vector<WheelEntry>> wheel;
  std::int64_t cursor = 0;  // tick of the last expire(); buckets before it are done
  bool started = false;

  std::deque<Slot> slots;
  std::vector<std::uint32_t> free_slots;
  std::uint64_t last_gen = 0;

  std::unordered_map<Key, std::uint32_t, KeyHash, KeyEq> by_key;
  std::unordered_map<std::string, std::vector<std::uint32_t>, StringHash, std::equal_to<>> by_context;

  Impl(std::int64_t tick, std::int64_t horizon) : tick_ms(tick) {
    if (tick_ms <= 0) throw std::invalid_argument("PresenceTable: tick_ms must be positive");
    if (horizon < 0) horizon = 0;
    n = static_cast<std::size_t>((horizon + tick_ms - 1) / tick_ms) + 1;
    wheel.resize(n);
  }

  std::int64_t tick_of(std::int64_t t) const { return floor_div(t, tick_ms); }
  std::vector<WheelEntry>& bucket(std::int64_t tick) {
    return wheel[static_cast<std::size_t>(((tick % static_cast<std::int64_t>(n)) + static_cast<std::int64_t>(n)) %
                                          static_cast<std::int64_t>(n))];
  }

  void start(std::int64_t now_ms) {
    if (started) return;
    started = true;
    cursor = tick_of(now_ms);
  }

  void schedule(std::uint32_t slot, std::uint64_t gen, std::int64_t expires_at_ms) {
    // A tick before the cursor would not be visited until a full round later (only possible
    // if upsert's clock runs behind expire's): file it under the cursor, checked next call.
    const std::int64_t t = std::max(tick_of(expires_at_ms), cursor);
    bucket(t).push_back({slot, gen, expires_at_ms});
  }

  std::uint32_t alloc_slot() {
    if (!free_slots.empty()) {
      std::uint32_t s = free_slots.back();
      free_slots.pop_back();
      return s;
    }
    slots.emplace_back();
    return static_cast<std::uint32_t>(slots.size() - 1);
  }

  void index_context(std::uint32_t idx) {
    Slot& s = slots[idx];
    auto it = by_context.find(std::string_view(s.state.context));
    if (it == by_context.end()) it = by_context.emplace(s.state.context, std::vector<std::uint32_t>{}).first;
    s.ctx_pos = static_cast<std::uint32_t>(it->second.size());
    it->second.push_back(idx);
  }

  // Unlinks a stored state from every index and returns it; the slot becomes free.
  PresenceState remove(std::uint32_t idx) {
    Slot& s = slots[idx];
    by_key.erase(by_key.find(key_of(s.state)));
    auto ctx = by_context.find(std::string_view(s.state.context));
    std::vector<std::uint32_t>& members = ctx->second;
    const std::uint32_t moved = members.back();
    members[s.ctx_pos] = moved;
    slots[moved].ctx_pos = s.ctx_pos;
    members.pop_back();
    if (members.empty()) by_context.erase(ctx);
    PresenceState out = std::move(s.state);
    s.state = PresenceState{};
    s.gen = 0;
    free_slots.push_back(idx);
    return out;
  }
};

PresenceTable::PresenceTable(std::int64_t tick_ms, std::int64_t horizon_ms)
    : impl_(std::make_unique<Impl>(tick_ms, horizon_ms)) {}

PresenceTable::~PresenceTable() = default;

bool PresenceTable::upsert(PresenceState state, std::int64_t now_ms) {
  if (state.expires_at_ms <= now_ms) return false;
  Impl& m = *impl_;
  m.start(now_ms);

  auto it = m.by_key.find(key_of(state));
  if (it != m.by_key.end()) {
    const std::uint32_t idx = it->second;
    Impl::Slot& s = m.slots[idx];
    // A stored state that is already past its expiry (awaiting the next expire()) does not
    // block a replacement.
    if (s.state.expires_at_ms > now_ms && s.state.iat_s > state.iat_s) return false;
    // Same context, issuer, slot and audience: the key and the context index stay as they are.
    s.state = std::move(state);
    s.gen = ++m.last_gen;  // the old wheel entry goes stale
    m.schedule(idx, s.gen, s.state.expires_at_ms);
    return true;
  }

  const std::uint32_t idx = m.alloc_slot();
  Impl::Slot& s = m.slots[idx];
  s.state = std::move(state);
  s.gen = ++m.last_gen;
  const KeyView k = key_of(s.state);
  m.by_key.emplace(Key{std::string(k.context), std::string(k.issuer), std::string(k.slot), std::string(k.audience)}, idx);
  m.index_context(idx);
  m.schedule(idx, s.gen, s.state.expires_at_ms);
  return true;
}

std::vector<PresenceState> PresenceTable::expire(std::int64_t now_ms) {
  Impl& m = *impl_;
  std::vector<PresenceState> out;
  if (!m.started) {  // nothing was ever stored
    m.start(now_ms);
    return out;
  }
  const std::int64_t cur = m.tick_of(now_ms);
  // Ticks cursor..cur, but never more than the N buckets of the wheel.
  const std::int64_t span = cur >= m.cursor ? cur - m.cursor + 1 : 1;
  const std::int64_t visits = std::min<std::int64_t>(span, static_cast<std::int64_t>(m.n));

  for (std::int64_t t = m.cursor; t < m.cursor + visits; ++t) {
    std::vector<Impl::WheelEntry>& b = m.bucket(t);
    std::size_t i = 0;
    while (i < b.size()) {
      const Impl::WheelEntry e = b[i];
      const bool stale = m.slots[e.slot].gen != e.gen;
      if (stale || e.expires_at_ms <= now_ms) {
        if (!stale) out.push_back(m.remove(e.slot));
        b[i] = b.back();
        b.pop_back();
      } else {
        ++i;  // later in this tick, or a later round
      }
    }
  }
  m.cursor = std::max(m.cursor, cur);  // the current tick's bucket is visited again next time

  // Buckets are visited in tick order, but entries within a bucket are not ordered, and after
  // a jump past a whole round one bucket can hold several due ticks: order by expiry.
  auto by_expiry = [](const PresenceState& a, const PresenceState& b) { return a.expires_at_ms < b.expires_at_ms; };
  if (!std::is_sorted(out.begin(), out.end(), by_expiry)) std::stable_sort(out.begin(), out.end(), by_expiry);
  return out;
}

std::vector<const PresenceState*> PresenceTable::snapshot(std::string_view context, std::string_view viewer,
                                                          std::int64_t now_ms) const {
  std::vector<const PresenceState*> out;
  auto it = impl_->by_context.find(context);
  if (it == impl_->by_context.end()) return out;
  out.reserve(it->second.size());
  for (std::uint32_t idx : it->second) {
    const PresenceState& s = impl_->slots[idx].state;
    if (s.expires_at_ms <= now_ms) continue;
    // Audience-targeted states are seen by their audience and by the issuer who sent them.
    if (s.audience && *s.audience != viewer && s.issuer != viewer) continue;
    out.push_back(&s);
  }
  return out;
}

std::vector<const PresenceState*> PresenceTable::live(std::int64_t now_ms) const {
  std::vector<const PresenceState*> out;
  out.reserve(impl_->by_key.size());
  for (const auto& [key, idx] : impl_->by_key) {
    const PresenceState& s = impl_->slots[idx].state;
    if (s.expires_at_ms > now_ms) out.push_back(&s);
  }
  return out;
}

std::size_t PresenceTable::size() const { return impl_->by_key.size(); }

}  // namespace presd
