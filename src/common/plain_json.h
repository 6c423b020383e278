// A scanner for the plain subset of JSON that clients, peers and presd itself write PRES tokens
// and /ws/bus frames in: the fast path in front of parse_strict_json (a duplicate-key pass plus
// a Boost.JSON DOM, ~10 allocations per frame). It never decides that input is bad: whenever
// the text leaves the subset, it says so (false) and the caller runs the general parser, which
// decides and words the refusal. The subset:
//   - strings of printable ASCII (0x20..0x7e) without escapes (no '"' or '\' inside);
//   - integers -?(0|[1-9][0-9]{0,17}), except -0: they fit int64 and print back the same;
//   - true, false, null; objects and arrays of these nested at most kMaxDepth deep, an object
//     with at most kMaxMembers members and no duplicate key;
//   - JSON whitespace (space, tab, LF, CR) between tokens.
// parse_strict_json accepts every text of the subset, with the same values, and
// boost::json::serialize prints them back as compact() does; tests/common/plain_json_test.cpp
// checks both against the general parser.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace presd::plain_json {

inline constexpr int kMaxDepth = 8;
inline constexpr std::size_t kMaxMembers = 32;

class Scanner {
 public:
  explicit Scanner(std::string_view text) : p_(text.data()), end_(text.data() + text.size()) {}

  const char* pos() const { return p_; }

  void skip_ws() {
    while (p_ != end_ && (*p_ == ' ' || *p_ == '\n' || *p_ == '\r' || *p_ == '\t')) ++p_;
  }
  // Only whitespace is left.
  bool at_end() {
    skip_ws();
    return p_ == end_;
  }
  // The next token starts with c (not consumed).
  bool peek(char c) {
    skip_ws();
    return p_ != end_ && *p_ == c;
  }

  bool string(std::string_view& out) {
    if (!peek('"')) return false;
    const char* start = ++p_;
    // Sixteen (SSE2) or eight bytes at a time while none is special (a quote, a backslash, a
    // control or non-ASCII byte): the token inside a frame is ~600 such bytes.
#if defined(__SSE2__)
    while (end_ - p_ >= 16) {
      const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p_));
      // Signed compare: bytes 0x80..0xff are negative, so "below 0x20" catches them too.
      const __m128i special =
          _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')), _mm_cmpeq_epi8(v, _mm_set1_epi8('\\'))),
                       _mm_or_si128(_mm_cmplt_epi8(v, _mm_set1_epi8(0x20)), _mm_cmpeq_epi8(v, _mm_set1_epi8(0x7f))));
      if (const int mask = _mm_movemask_epi8(special)) {
        p_ += __builtin_ctz(static_cast<unsigned>(mask));  // the byte loop below judges it
        break;
      }
      p_ += 16;
    }
#endif
    while (end_ - p_ >= 8) {
      std::uint64_t v;
      std::memcpy(&v, p_, 8);
      if (has_special_byte(v)) break;
      p_ += 8;
    }
    for (; p_ != end_; ++p_) {
      const unsigned char c = static_cast<unsigned char>(*p_);
      if (c == '"') {
        out = std::string_view(start, static_cast<std::size_t>(p_ - start));
        ++p_;
        return true;
      }
      if (c < 0x20 || c > 0x7e || c == '\\') return false;
    }
    return false;
  }

  bool integer(std::int64_t& out) {
    skip_ws();
    bool negative = false;
    if (p_ != end_ && *p_ == '-') {
      negative = true;
      ++p_;
    }
    if (p_ == end_ || !is_digit(*p_)) return false;
    std::int64_t v = 0;
    if (*p_ == '0') {
      ++p_;
      if (negative) return false;  // -0: a double in some parsers
    } else {
      int digits = 0;
      while (p_ != end_ && is_digit(*p_)) {
        if (++digits > 18) return false;
        v = v * 10 + (*p_++ - '0');
      }
    }
    // A fraction, an exponent or more digits (a leading zero) leave the subset.
    if (p_ != end_ && (is_digit(*p_) || *p_ == '.' || *p_ == 'e' || *p_ == 'E')) return false;
    out = negative ? -v : v;
    return true;
  }

  // Any value of the subset, checked and skipped. `depth` is the nesting level a container
  // value would have (the top-level value is at 1).
  bool value(int depth) {
    skip_ws();
    if (p_ == end_) return false;
    switch (*p_) {
      case '"': {
        std::string_view s;
        return string(s);
      }
      case '{':
        return object([this, depth](std::string_view) { return value(depth + 1); }, depth);
      case '[':
        return array(depth);
      case 't':
        return literal("true");
      case 'f':
        return literal("false");
      case 'n':
        return literal("null");
      default: {
        std::int64_t i;
        return integer(i);
      }
    }
  }

  // An object at nesting level `depth`: on_member(key) is called with the scanner at the member's
  // value and must consume it (returning false leaves the subset). Duplicate keys leave it too.
  template <class OnMember>
  bool object(OnMember&& on_member, int depth = 1) {
    if (depth > kMaxDepth || !peek('{')) return false;
    ++p_;
    if (peek('}')) {
      ++p_;
      return true;
    }
    std::string_view keys[kMaxMembers];
    std::size_t n = 0;
    for (;;) {
      std::string_view key;
      if (n == kMaxMembers || !string(key)) return false;
      for (std::size_t i = 0; i < n; ++i)
        if (keys[i] == key) return false;
      keys[n++] = key;
      if (!peek(':')) return false;
      ++p_;
      skip_ws();
      if (!on_member(key)) return false;
      skip_ws();
      if (p_ == end_) return false;
      if (*p_ == '}') {
        ++p_;
        return true;
      }
      if (*p_++ != ',') return false;
    }
  }

  bool array(int depth) {
    if (depth > kMaxDepth || !peek('[')) return false;
    ++p_;
    if (peek(']')) {
      ++p_;
      return true;
    }
    for (;;) {
      if (!value(depth + 1)) return false;
      skip_ws();
      if (p_ == end_) return false;
      if (*p_ == ']') {
        ++p_;
        return true;
      }
      if (*p_++ != ',') return false;
    }
  }

 private:
  static bool is_digit(char c) { return c >= '0' && c <= '9'; }

  bool literal(std::string_view word) {
    if (static_cast<std::size_t>(end_ - p_) < word.size() || std::string_view(p_, word.size()) != word) return false;
    p_ += word.size();
    return true;
  }

  // Some byte of v is '"', '\', below 0x20 or above 0x7e. The classic has-zero/has-less word
  // tricks: exact as a yes/no answer for the whole word.
  static bool has_special_byte(std::uint64_t v) {
    constexpr std::uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    auto has_zero = [](std::uint64_t x) { return (x - ones) & ~x & highs; };
    const std::uint64_t below_space = (v - ones * 0x20) & ~v & highs;
    return ((v & highs) | below_space | has_zero(v ^ (ones * '"')) | has_zero(v ^ (ones * '\\')) |
            has_zero(v ^ (ones * 0x7f))) != 0;
  }

  const char* p_;
  const char* end_;
};

// A value of the subset as boost::json::serialize prints it: without whitespace between tokens
// (strings of the subset hold no quote to confuse this, and print as they are written).
inline std::string compact(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  bool in_string = false;
  for (char c : text) {
    if (c == '"') in_string = !in_string;
    if (!in_string && (c == ' ' || c == '\n' || c == '\r' || c == '\t')) continue;
    out += c;
  }
  return out;
}

}  // namespace presd::plain_json
