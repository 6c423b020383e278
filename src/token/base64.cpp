#include "token/base64.h"

#include <array>
#include <bit>
#include <cstdint>
#include <cstring>

namespace presd::b64 {
namespace {

constexpr char kUrlAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
constexpr char kStdAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

constexpr std::array<std::int8_t, 256> make_table(const char* alphabet) {
  std::array<std::int8_t, 256> t{};
  for (auto& v : t) v = -1;
  for (int i = 0; i < 64; ++i) t[static_cast<unsigned char>(alphabet[i])] = static_cast<std::int8_t>(i);
  return t;
}

constexpr auto kUrlTable = make_table(kUrlAlphabet);
constexpr auto kStdTable = make_table(kStdAlphabet);
constexpr std::uint32_t kBadChar = 1u << 24;  // above the three bytes of a group

std::string encode(std::string_view in, const char* alphabet, bool pad) {
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  std::size_t i = 0;
  auto byte = [&](std::size_t k) { return static_cast<std::uint32_t>(static_cast<unsigned char>(in[k])); };
  for (; i + 3 <= in.size(); i += 3) {
    std::uint32_t v = byte(i) << 16 | byte(i + 1) << 8 | byte(i + 2);
    out += alphabet[v >> 18];
    out += alphabet[(v >> 12) & 63];
    out += alphabet[(v >> 6) & 63];
    out += alphabet[v & 63];
  }
  std::size_t rest = in.size() - i;
  if (rest == 1) {
    std::uint32_t v = byte(i) << 16;
    out += alphabet[v >> 18];
    out += alphabet[(v >> 12) & 63];
    if (pad) out += "==";
  } else if (rest == 2) {
    std::uint32_t v = byte(i) << 16 | byte(i + 1) << 8;
    out += alphabet[v >> 18];
    out += alphabet[(v >> 12) & 63];
    out += alphabet[(v >> 6) & 63];
    if (pad) out += '=';
  }
  return out;
}

// For each character, its six bits already placed where they land in the three output bytes of
// its group (little-endian), or bit 24 if it is not in the alphabet: a group of four decodes with
// four loads, three ORs and one 4-byte store, and one check of the accumulated bit 24 at the end.
struct GroupTables {
  std::array<std::uint32_t, 256> t[4];
};

constexpr GroupTables make_group_tables(const std::array<std::int8_t, 256>& table) {
  GroupTables g{};
  for (int c = 0; c < 256; ++c) {
    const int v = table[static_cast<std::size_t>(c)];
    if (v < 0) {
      for (auto& t : g.t) t[static_cast<std::size_t>(c)] = kBadChar;
      continue;
    }
    const auto u = static_cast<std::uint32_t>(v);
    g.t[0][static_cast<std::size_t>(c)] = u << 2;
    g.t[1][static_cast<std::size_t>(c)] = u >> 4 | (u & 0x0F) << 12;
    g.t[2][static_cast<std::size_t>(c)] = (u >> 2) << 8 | (u & 0x03) << 22;
    g.t[3][static_cast<std::size_t>(c)] = u << 16;
  }
  return g;
}

constexpr auto kUrlGroups = make_group_tables(kUrlTable);
constexpr auto kStdGroups = make_group_tables(kStdTable);

// Decodes unpadded text; rejects a length % 4 == 1 and non-zero trailing bits so that every
// byte string has exactly one accepted encoding (no signature malleability through encoding).
// Into a buffer sized once: a PRES payload is ~450 characters, decoded for every token received.
bool decode_unpadded(std::string_view in, const std::array<std::int8_t, 256>& table, const GroupTables& groups,
                     std::string& out) {
  const std::size_t n = in.size();
  const std::size_t rest = n % 4;
  if (rest == 1) return false;
  const std::size_t size = n / 4 * 3 + (rest ? rest - 1 : 0);
  out.resize(size + 1);  // the last group's 4-byte store writes one byte past it
  const auto* s = reinterpret_cast<const unsigned char*>(in.data());
  char* o = out.data();
  std::uint32_t bad = 0;
  std::size_t i = 0;
  if constexpr (std::endian::native == std::endian::little) {
    for (; i + 4 <= n; i += 4, o += 3) {
      const std::uint32_t w = groups.t[0][s[i]] | groups.t[1][s[i + 1]] | groups.t[2][s[i + 2]] | groups.t[3][s[i + 3]];
      bad |= w;
      std::memcpy(o, &w, 4);
    }
  } else {
    for (; i + 4 <= n; i += 4) {
      const int a = table[s[i]], b = table[s[i + 1]], c = table[s[i + 2]], d = table[s[i + 3]];
      if ((a | b | c | d) < 0) return false;
      const std::uint32_t w = static_cast<std::uint32_t>(a << 18 | b << 12 | c << 6 | d);
      *o++ = static_cast<char>(w >> 16);
      *o++ = static_cast<char>((w >> 8) & 0xFF);
      *o++ = static_cast<char>(w & 0xFF);
    }
  }
  out.resize(size);
  if (bad & kBadChar) return false;
  auto v = [&](std::size_t k) { return static_cast<int>(table[s[k]]); };  // -1: not in the alphabet
  if (rest == 2) {
    const int a = v(i), b = v(i + 1);
    if ((a | b) < 0 || (b & 0x0F) != 0) return false;  // 12 bits: the last 4 must be 0
    *o++ = static_cast<char>(a << 2 | b >> 4);
  } else if (rest == 3) {
    const int a = v(i), b = v(i + 1), c = v(i + 2);
    if ((a | b | c) < 0 || (c & 0x03) != 0) return false;  // 18 bits: the last 2 must be 0
    const std::uint32_t w = static_cast<std::uint32_t>(a << 18 | b << 12 | c << 6);
    *o++ = static_cast<char>(w >> 16);
    *o++ = static_cast<char>((w >> 8) & 0xFF);
  }
  return true;
}

std::optional<std::string> decode_unpadded(std::string_view in, const std::array<std::int8_t, 256>& table,
                                           const GroupTables& groups) {
  std::string out;
  if (!decode_unpadded(in, table, groups, out)) return std::nullopt;
  return out;
}

}  // namespace

std::string encode_url(std::string_view bytes) { return encode(bytes, kUrlAlphabet, false); }

std::optional<std::string> decode_url_strict(std::string_view text) {
  return decode_unpadded(text, kUrlTable, kUrlGroups);
}

bool decode_url_strict_into(std::string_view text, std::string& out) {
  return decode_unpadded(text, kUrlTable, kUrlGroups, out);
}

std::string encode_std(std::string_view bytes) { return encode(bytes, kStdAlphabet, true); }

std::optional<std::string> decode_std(std::string_view text) {
  if (text.size() % 4 != 0) return std::nullopt;
  std::size_t pad = 0;
  while (pad < 2 && pad < text.size() && text[text.size() - 1 - pad] == '=') ++pad;
  return decode_unpadded(text.substr(0, text.size() - pad), kStdTable, kStdGroups);
}

}  // namespace presd::b64
