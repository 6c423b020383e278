// Rate limits: token buckets keyed by a string (issuer, connection, IP), a minimum interval per
// key (typing: one per issuer+context+subtype per 3 s), and a replay filter. All plain
// single-threaded C++ driven by an explicit clock, so they are exact under test.
// A refusal is a positive retry-after in milliseconds; 0 means allowed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace presd {

// Transparent hash so the maps below are searched with a string_view key without building a
// std::string (C++20 heterogeneous lookup: needs is_transparent on both hash and equality).
// Not noexcept on purpose: libstdc++ then caches each node's hash (as for std::hash<string>),
// so a lookup does not rehash the stored keys it walks past.
namespace limits_detail {
struct TransparentStringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
template <class V>
using StringKeyedMap = std::unordered_map<std::string, V, TransparentStringHash, std::equal_to<>>;
}  // namespace limits_detail

class TokenBucket {
 public:
  TokenBucket(double rate_per_s, double burst, std::int64_t now_ms);
  // Takes `cost` tokens if available: 0. Otherwise ms until they will be.
  std::int64_t try_take(std::int64_t now_ms, double cost = 1.0);
  // Takes `cost` even if it is not there: the bucket goes into debt, down to -burst at most.
  // For spends decided elsewhere (another cluster node accepted the request).
  void spend(std::int64_t now_ms, double cost = 1.0);
  bool full(std::int64_t now_ms) const;

 private:
  double rate_per_ms_;
  double burst_;
  double tokens_;
  std::int64_t last_ms_;
};

class KeyedRateLimiter {
 public:
  // max_keys bounds memory: when reached, full (idle) buckets are swept; if still full, the
  // request is refused with a 1 s retry (fail closed under a key flood).
  KeyedRateLimiter(double rate_per_s, double burst, std::size_t max_keys = 1'000'000);
  std::int64_t try_take(std::string_view key, std::int64_t now_ms, double cost = 1.0);
  // Non-mutating: 0 if one token is available now, else ms until it will be. An unknown key
  // counts as a full bucket, unless the limiter is at max_keys (then 1000, fail closed).
  std::int64_t check(std::string_view key, std::int64_t now_ms) const;
  // TokenBucket::spend on the key's bucket (skipped only when at max_keys after a sweep).
  void spend(std::string_view key, std::int64_t now_ms, double cost = 1.0);
  void sweep(std::int64_t now_ms);  // drops buckets that refilled completely
  std::size_t size() const { return buckets_.size(); }

 private:
  double rate_, burst_;
  std::size_t max_keys_;
  limits_detail::StringKeyedMap<TokenBucket> buckets_;
};

class MinIntervalLimiter {
 public:
  explicit MinIntervalLimiter(std::int64_t interval_ms, std::size_t max_keys = 1'000'000);
  std::int64_t try_take(std::string_view key, std::int64_t now_ms);
  // Non-mutating: 0 if a try_take now would succeed, else ms remaining (1000 for an unknown
  // key while at max_keys, fail closed).
  std::int64_t check(std::string_view key, std::int64_t now_ms) const;
  // Records a use at now_ms that was allowed elsewhere (another cluster node): the interval
  // restarts from the later of the stored use and now_ms.
  void record(std::string_view key, std::int64_t now_ms);
  void sweep(std::int64_t now_ms);  // drops keys whose interval has passed
  std::size_t size() const { return last_.size(); }

 private:
  std::int64_t interval_ms_;
  std::size_t max_keys_;
  limits_detail::StringKeyedMap<std::int64_t> last_;
};

// Remembers accepted tokens (by their raw signature, unique per ECDSA signature) until they
// expire, so a replay is dropped before any signature work.
class ReplayFilter {
 public:
  explicit ReplayFilter(std::size_t max_entries = 1'000'000);
  bool seen(std::string_view signature) const;
  // false if the filter is full even after sweeping (caller decides; presd refuses with 503).
  bool remember(std::string_view signature, std::int64_t expires_at_ms, std::int64_t now_ms);
  void sweep(std::int64_t now_ms);
  std::size_t size() const { return expiry_.size(); }

 private:
  std::size_t max_entries_;
  limits_detail::StringKeyedMap<std::int64_t> expiry_;
};

// Bans a key (a source IP) after `strikes` offences within `window_ms`, for `ban_ms`: the
// reference inbox bans an IP for an hour after 3 bad signatures, each of which cost a verify.
class StrikeBan {
 public:
  StrikeBan(std::size_t strikes, std::int64_t window_ms, std::int64_t ban_ms, std::size_t max_keys = 100'000);
  // ms left of the key's ban, 0 if not banned.
  std::int64_t banned_for(std::string_view key, std::int64_t now_ms) const;
  // Records an offence; true if it started a ban. strikes == 0 disables banning.
  bool strike(std::string_view key, std::int64_t now_ms);
  void sweep(std::int64_t now_ms);
  std::size_t size() const { return keys_.size(); }

 private:
  struct Record {
    std::size_t strikes = 0;
    std::int64_t window_start_ms = 0;
    std::int64_t banned_until_ms = 0;
  };
  std::size_t strikes_;
  std::int64_t window_ms_, ban_ms_;
  std::size_t max_keys_;
  limits_detail::StringKeyedMap<Record> keys_;
};

// Defaults documented in docs/configuration.md (and `presd serve --help`).
struct RateLimitConfig {
  double issuer_rate_per_s = 10, issuer_burst = 20;          // PRES per issuer id_tag
  double connection_rate_per_s = 5, connection_burst = 20;   // frames per WebSocket connection
  double ip_rate_per_s = 100, ip_burst = 200;                // inbox / REST per source IP
  std::int64_t same_state_interval_ms = 3000;  // same (issuer, context, subtype) forwarded at most this often
};

}  // namespace presd
