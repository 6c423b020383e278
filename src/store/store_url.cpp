#include "store/store_url.h"

namespace presd {
namespace {

bool starts_with(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

// Replaces the value of every `password=` parameter in the query part.
void redact_query(std::string& url) {
  std::size_t pos = url.find('?');
  while (pos != std::string::npos) {
    const std::size_t key = pos + 1;
    std::size_t end = url.find('&', key);
    if (end == std::string::npos) end = url.find('#', key);
    if (end == std::string::npos) end = url.size();
    const std::string_view param(url.data() + key, end - key);
    if (starts_with(param, "password=")) {
      const std::size_t value = key + 9;
      url.replace(value, end - value, "***");
      end = value + 3;
    }
    pos = end < url.size() && url[end] == '&' ? end : std::string::npos;
  }
}

}  // namespace

std::string redact_store_url(std::string_view url) {
  std::string out(url);
  const std::size_t scheme = out.find("://");
  if (scheme != std::string::npos) {
    const std::size_t auth_begin = scheme + 3;
    std::size_t auth_end = out.find_first_of("/?#", auth_begin);
    if (auth_end == std::string::npos) auth_end = out.size();
    // userinfo ends at the last '@' of the authority (an unencoded '@' may sit in the password).
    const std::string_view authority(out.data() + auth_begin, auth_end - auth_begin);
    const std::size_t at = authority.rfind('@');
    if (at != std::string_view::npos) {
      const std::size_t colon = authority.find(':');
      if (colon != std::string_view::npos && colon < at)
        out.replace(auth_begin + colon + 1, at - colon - 1, "***");
    }
  }
  redact_query(out);
  return out;
}

Result<StoreLocation> parse_store_url(std::string_view url, std::string_view default_sqlite_path) {
  if (url.empty()) return StoreLocation{StoreBackend::sqlite, std::string(default_sqlite_path)};
  if (starts_with(url, "postgres://") || starts_with(url, "postgresql://"))
    return StoreLocation{StoreBackend::postgres, std::string(url)};
  if (starts_with(url, "sqlite:")) {
    std::string_view path = url.substr(7);
    if (starts_with(path, "//")) path.remove_prefix(2);  // sqlite:///abs/path as well as sqlite:/abs/path
    if (path.empty()) return Error(ErrorCode::bad_request, "--store sqlite: needs a file path (sqlite:/path/presd.db)");
    return StoreLocation{StoreBackend::sqlite, std::string(path)};
  }
  return Error(ErrorCode::bad_request, "--store '" + redact_store_url(url) +
                                           "' is not a store URL: use postgres://..., postgresql://... or sqlite:PATH");
}

}  // namespace presd
