// presd answers the common shapes of its input (plain-JSON frames and tokens, docs/performance.md
// "Fast paths") with specialised code and falls back to the general parsers for everything else.
// Tests and fuzzers switch the fast paths off to check that both give the same answer; presd
// never does.
#pragma once

namespace presd::fast_path {

namespace detail {
inline bool enabled = true;
}

inline bool enabled() { return detail::enabled; }
// For tests and fuzzers only: not thread-safe, set it before the code under test runs.
inline void set_enabled(bool on) { detail::enabled = on; }

}  // namespace presd::fast_path
