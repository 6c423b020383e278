// Helpers shared by the store tests: temp dirs and sample rows.
#pragma once

#include <stdlib.h>

#include <ctime>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>

#include "store/model.h"

namespace presd {

namespace fs = std::filesystem;

// A fresh directory per test, removed (after restoring permissions) at the end.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "presd-store-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::permissions(path_, fs::perms::owner_all, fs::perm_options::add, ec);
    for (const auto& e : fs::directory_iterator(path_, ec)) {
      fs::permissions(e.path(), fs::perms::owner_all, fs::perm_options::add, ec);
    }
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  fs::path path_;
};

inline Context make_context(std::string id, std::string owner, std::string creator, std::int64_t at) {
  Context c;
  c.id = std::move(id);
  c.owner = std::move(owner);
  c.creator = std::move(creator);
  c.created_at_s = at;
  return c;
}

inline StoredKey make_key(std::string id_tag, std::string key_id, std::int64_t created,
                   std::string der = "\x30\x59\x00\x13\xff\x01",
                   std::optional<std::int64_t> expires = std::nullopt) {
  StoredKey k;
  k.id_tag = std::move(id_tag);
  k.key_id = std::move(key_id);
  k.private_pem = "-----BEGIN PRIVATE KEY-----\nMIG2AgEA" + k.key_id + "\n-----END PRIVATE KEY-----\n";
  k.public_der = std::move(der);
  k.created_at_s = created;
  k.expires_at_s = expires;
  return k;
}

inline std::int64_t now_s() { return static_cast<std::int64_t>(std::time(nullptr)); }

}  // namespace presd
