// Layout of the data directory (`--data-dir`, default ./data), shared by `serve` and the admin
// subcommands so they find the same files:
//   presd.db       SQLite store (tenants, keys, contexts, members)
//   access.secret  HS256 secret for client access tokens (created on first use, mode 0600)
//   admin.token    bearer token of the admin HTTP API (created on first use, mode 0600)
#pragma once

#include <string>

namespace presd::app {

struct DataDir {
  std::string path;

  std::string db_path() const { return path + "/presd.db"; }
  // Creates the directory (mode 0700) if needed. Throws std::runtime_error on failure.
  void ensure() const;
  // Reads the file, or writes `bytes` random bytes hex-encoded to it (0600) and returns them.
  std::string load_or_create_secret(const std::string& name, std::size_t bytes = 32) const;
  std::string access_secret() const { return load_or_create_secret("access.secret"); }
  std::string admin_token() const { return load_or_create_secret("admin.token"); }
};

// A secret from an operator-provided file (e.g. the access secret shared with a reference node),
// trimmed of trailing whitespace. Throws std::runtime_error if missing, empty or shorter than
// 16 bytes (a short HS256 secret can be brute-forced offline from any access token).
std::string read_secret_file(const std::string& path);

}  // namespace presd::app
