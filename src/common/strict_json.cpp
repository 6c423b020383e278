#include "common/strict_json.h"

#include <boost/json/basic_parser_impl.hpp>
#include <boost/json/parse.hpp>

#include <unordered_set>
#include <vector>

namespace presd {
namespace json = boost::json;
namespace {

// SAX pass that only tracks object keys per nesting level.
struct DuplicateKeyFinder {
  static constexpr std::size_t max_array_size = -1;
  static constexpr std::size_t max_object_size = -1;
  static constexpr std::size_t max_string_size = -1;
  static constexpr std::size_t max_key_size = -1;

  std::vector<std::unordered_set<std::string>> levels;
  std::string key;
  std::string duplicate;

  bool on_document_begin(json::error_code&) { return true; }
  bool on_document_end(json::error_code&) { return true; }
  bool on_array_begin(json::error_code&) { return true; }
  bool on_array_end(std::size_t, json::error_code&) { return true; }
  bool on_object_begin(json::error_code&) {
    levels.emplace_back();
    return true;
  }
  bool on_object_end(std::size_t, json::error_code&) {
    levels.pop_back();
    return true;
  }
  bool on_string_part(json::string_view, std::size_t, json::error_code&) { return true; }
  bool on_string(json::string_view, std::size_t, json::error_code&) { return true; }
  bool on_key_part(json::string_view s, std::size_t, json::error_code&) {
    key.append(s.data(), s.size());
    return true;
  }
  bool on_key(json::string_view s, std::size_t, json::error_code& ec) {
    key.append(s.data(), s.size());
    bool inserted = levels.back().insert(key).second;
    if (!inserted) {
      duplicate = key;
      ec = json::make_error_code(json::error::syntax);
      return false;
    }
    key.clear();
    return true;
  }
  bool on_number_part(json::string_view, json::error_code&) { return true; }
  bool on_int64(std::int64_t, json::string_view, json::error_code&) { return true; }
  bool on_uint64(std::uint64_t, json::string_view, json::error_code&) { return true; }
  bool on_double(double, json::string_view, json::error_code&) { return true; }
  bool on_bool(bool, json::error_code&) { return true; }
  bool on_null(json::error_code&) { return true; }
  bool on_comment_part(json::string_view, json::error_code&) { return true; }
  bool on_comment(json::string_view, json::error_code&) { return true; }
};

}  // namespace

StrictJson parse_strict_json(std::string_view text, std::size_t max_depth) {
  StrictJson out;
  json::parse_options opt;
  opt.max_depth = max_depth;

  json::basic_parser<DuplicateKeyFinder> sax(opt);
  json::error_code ec;
  sax.write_some(false, text.data(), text.size(), ec);
  if (ec) {
    if (!sax.handler().duplicate.empty()) {
      out.problem = JsonProblem::duplicate_key;
      out.detail = sax.handler().duplicate;
    } else if (ec == json::error::too_deep) {
      out.problem = JsonProblem::too_deep;
      out.detail = "nesting deeper than " + std::to_string(max_depth);
    } else {
      out.problem = JsonProblem::syntax;
      out.detail = ec.message();
    }
    return out;
  }
  out.value = json::parse(text, ec, {}, opt);
  if (ec) {
    out.problem = JsonProblem::syntax;
    out.detail = ec.message();
  }
  return out;
}

}  // namespace presd
