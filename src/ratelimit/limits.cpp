#include "ratelimit/limits.h"

#include <algorithm>
#include <cmath>

namespace presd {

namespace {

// Token counts are doubles refilled by elapsed_ms * rate_per_ms; rate_per_ms (e.g. 10/s ->
// 0.01) is rarely exact in binary, so a level that should be exactly 1.0 may come out as
// 0.9999999999999999. Comparisons allow this much slack so explicit-clock arithmetic is exact.
constexpr double kEps = 1e-9;

// Retry-after when a request can never succeed (cost above the burst, or a zero refill rate).
constexpr std::int64_t kNeverMs = 3'600'000;

// Retry-after when a limiter holds max_keys keys and none can be swept (fail closed).
constexpr std::int64_t kFullMs = 1000;

double level_at(double tokens, std::int64_t last_ms, double rate_per_ms, double burst,
                std::int64_t now_ms) {
  if (now_ms <= last_ms) return tokens;  // clock went backwards: no refill, never a debt
  return std::min(burst, tokens + static_cast<double>(now_ms - last_ms) * rate_per_ms);
}

std::int64_t wait_for(double tokens, double cost, double rate_per_ms, double burst) {
  if (tokens + kEps >= cost) return 0;
  if (rate_per_ms <= 0 || cost > burst + kEps) return kNeverMs;
  const double ms = std::ceil((cost - tokens - kEps) / rate_per_ms);
  return std::max<std::int64_t>(1, static_cast<std::int64_t>(ms));
}

}  // namespace

// ---- TokenBucket ---------------------------------------------------------------------------

TokenBucket::TokenBucket(double rate_per_s, double burst, std::int64_t now_ms)
    : rate_per_ms_(rate_per_s / 1000.0), burst_(burst), tokens_(burst), last_ms_(now_ms) {}

std::int64_t TokenBucket::try_take(std::int64_t now_ms, double cost) {
  if (now_ms > last_ms_) {
    tokens_ = level_at(tokens_, last_ms_, rate_per_ms_, burst_, now_ms);
    last_ms_ = now_ms;
  }
  const std::int64_t wait = wait_for(tokens_, cost, rate_per_ms_, burst_);
  if (wait == 0) tokens_ = std::max(0.0, tokens_ - cost);
  return wait;
}

void TokenBucket::spend(std::int64_t now_ms, double cost) {
  if (now_ms > last_ms_) {
    tokens_ = level_at(tokens_, last_ms_, rate_per_ms_, burst_, now_ms);
    last_ms_ = now_ms;
  }
  tokens_ = std::max(-burst_, tokens_ - cost);
}

bool TokenBucket::full(std::int64_t now_ms) const {
  return level_at(tokens_, last_ms_, rate_per_ms_, burst_, now_ms) + kEps >= burst_;
}

// ---- KeyedRateLimiter ----------------------------------------------------------------------

KeyedRateLimiter::KeyedRateLimiter(double rate_per_s, double burst, std::size_t max_keys)
    : rate_(rate_per_s), burst_(burst), max_keys_(max_keys) {}

std::int64_t KeyedRateLimiter::try_take(std::string_view key, std::int64_t now_ms, double cost) {
  auto it = buckets_.find(key);  // heterogeneous: no std::string built for a known key
  if (it == buckets_.end()) {
    if (buckets_.size() >= max_keys_) {
      sweep(now_ms);
      if (buckets_.size() >= max_keys_) return kFullMs;
    }
    it = buckets_.emplace(std::string(key), TokenBucket(rate_, burst_, now_ms)).first;
  }
  return it->second.try_take(now_ms, cost);
}

std::int64_t KeyedRateLimiter::check(std::string_view key, std::int64_t now_ms) const {
  auto it = buckets_.find(key);
  if (it == buckets_.end()) {
    if (buckets_.size() >= max_keys_) return kFullMs;
    return wait_for(burst_, 1.0, rate_ / 1000.0, burst_);  // a new bucket starts full
  }
  TokenBucket probe = it->second;  // four scalars: take on a copy, the stored bucket is untouched
  return probe.try_take(now_ms, 1.0);
}

void KeyedRateLimiter::spend(std::string_view key, std::int64_t now_ms, double cost) {
  auto it = buckets_.find(key);
  if (it == buckets_.end()) {
    if (buckets_.size() >= max_keys_) {
      sweep(now_ms);
      if (buckets_.size() >= max_keys_) return;
    }
    it = buckets_.emplace(std::string(key), TokenBucket(rate_, burst_, now_ms)).first;
  }
  it->second.spend(now_ms, cost);
}

void KeyedRateLimiter::sweep(std::int64_t now_ms) {
  std::erase_if(buckets_, [now_ms](const auto& kv) { return kv.second.full(now_ms); });
}

// ---- MinIntervalLimiter --------------------------------------------------------------------

MinIntervalLimiter::MinIntervalLimiter(std::int64_t interval_ms, std::size_t max_keys)
    : interval_ms_(interval_ms), max_keys_(max_keys) {}

std::int64_t MinIntervalLimiter::try_take(std::string_view key, std::int64_t now_ms) {
  auto it = last_.find(key);
  if (it != last_.end()) {
    const std::int64_t next = it->second + interval_ms_;
    if (now_ms < next) return next - now_ms;  // refused: the window is not reset
    it->second = now_ms;
    return 0;
  }
  if (last_.size() >= max_keys_) {
    sweep(now_ms);
    if (last_.size() >= max_keys_) return kFullMs;
  }
  last_.emplace(std::string(key), now_ms);
  return 0;
}

void MinIntervalLimiter::record(std::string_view key, std::int64_t now_ms) {
  auto it = last_.find(key);
  if (it != last_.end()) {
    it->second = std::max(it->second, now_ms);
    return;
  }
  if (last_.size() >= max_keys_) {
    sweep(now_ms);
    if (last_.size() >= max_keys_) return;
  }
  last_.emplace(std::string(key), now_ms);
}

std::int64_t MinIntervalLimiter::check(std::string_view key, std::int64_t now_ms) const {
  auto it = last_.find(key);
  if (it == last_.end()) return last_.size() >= max_keys_ ? kFullMs : 0;
  const std::int64_t next = it->second + interval_ms_;
  return now_ms < next ? next - now_ms : 0;
}

void MinIntervalLimiter::sweep(std::int64_t now_ms) {
  std::erase_if(last_, [&](const auto& kv) { return now_ms >= kv.second + interval_ms_; });
}

// ---- ReplayFilter --------------------------------------------------------------------------

ReplayFilter::ReplayFilter(std::size_t max_entries) : max_entries_(max_entries) {}

bool ReplayFilter::seen(std::string_view signature) const { return expiry_.contains(signature); }

bool ReplayFilter::remember(std::string_view signature, std::int64_t expires_at_ms, std::int64_t now_ms) {
  if (auto it = expiry_.find(signature); it != expiry_.end()) {
    it->second = std::max(it->second, expires_at_ms);
    return true;
  }
  if (expiry_.size() >= max_entries_) {
    sweep(now_ms);
    if (expiry_.size() >= max_entries_) return false;
  }
  expiry_.emplace(std::string(signature), expires_at_ms);
  return true;
}

void ReplayFilter::sweep(std::int64_t now_ms) {
  std::erase_if(expiry_, [now_ms](const auto& kv) { return kv.second <= now_ms; });
}

StrikeBan::StrikeBan(std::size_t strikes, std::int64_t window_ms, std::int64_t ban_ms, std::size_t max_keys)
    : strikes_(strikes), window_ms_(window_ms), ban_ms_(ban_ms), max_keys_(max_keys) {}

std::int64_t StrikeBan::banned_for(std::string_view key, std::int64_t now_ms) const {
  auto it = keys_.find(key);
  if (it == keys_.end() || it->second.banned_until_ms <= now_ms) return 0;
  return it->second.banned_until_ms - now_ms;
}

bool StrikeBan::strike(std::string_view key, std::int64_t now_ms) {
  if (strikes_ == 0) return false;
  auto it = keys_.find(key);
  if (it == keys_.end()) {
    if (keys_.size() >= max_keys_) sweep(now_ms);
    if (keys_.size() >= max_keys_) return false;  // memory bound: forget offenders, never innocents
    it = keys_.emplace(std::string(key), Record{}).first;
  }
  Record& r = it->second;
  if (now_ms - r.window_start_ms >= window_ms_) {
    r.strikes = 0;
    r.window_start_ms = now_ms;
  }
  if (++r.strikes < strikes_) return false;
  r.strikes = 0;
  r.window_start_ms = now_ms;
  r.banned_until_ms = now_ms + ban_ms_;
  return true;
}

void StrikeBan::sweep(std::int64_t now_ms) {
  std::erase_if(keys_, [&](const auto& kv) {
    return kv.second.banned_until_ms <= now_ms && now_ms - kv.second.window_start_ms >= window_ms_;
  });
}

}  // namespace presd
