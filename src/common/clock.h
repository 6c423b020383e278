// Wall-clock time in milliseconds since the Unix epoch. Token freshness and presence expiry
// compare against `iat` (wall time), so this is system_clock, not steady_clock. Tests inject
// a ManualClock instead of sleeping.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace presd {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual std::int64_t now_ms() const = 0;
  std::int64_t now_s() const { return now_ms() / 1000; }
};

class SystemClock final : public Clock {
 public:
  std::int64_t now_ms() const override {
    using namespace std::chrono;
    return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
  }
};

class ManualClock final : public Clock {
 public:
  explicit ManualClock(std::int64_t start_ms = 1'700'000'000'000) : now_(start_ms) {}
  std::int64_t now_ms() const override { return now_.load(); }
  void set_ms(std::int64_t t) { now_.store(t); }
  void advance_ms(std::int64_t d) { now_.fetch_add(d); }

 private:
  std::atomic<std::int64_t> now_;
};

}  // namespace presd
