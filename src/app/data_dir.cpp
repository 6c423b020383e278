#include "app/data_dir.h"

#include <openssl/rand.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <stdexcept>

namespace presd::app {

namespace fs = std::filesystem;

void DataDir::ensure() const {
  std::error_code ec;
  fs::create_directories(path, ec);
  if (ec) throw std::runtime_error("cannot create data dir " + path + ": " + ec.message());
  ::chmod(path.c_str(), 0700);
}

namespace {

// The file's contents without trailing whitespace; nullopt if it cannot be opened.
std::optional<std::string> read_trimmed(const std::string& path) {
  std::ifstream in{path};
  if (!in) return std::nullopt;
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

}  // namespace

std::string read_secret_file(const std::string& path) {
  auto contents = read_trimmed(path);
  if (!contents) throw std::runtime_error("cannot read secret file " + path);
  std::string s = std::move(*contents);
  if (s.size() < 16) throw std::runtime_error("secret file " + path + " holds fewer than 16 bytes");
  return s;
}

std::string DataDir::load_or_create_secret(const std::string& name, std::size_t bytes) const {
  const std::string file = path + "/" + name;
  if (auto s = read_trimmed(file)) {
    if (s->empty()) throw std::runtime_error(file + " is empty");
    return *s;
  }
  ensure();
  std::string raw(bytes, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), static_cast<int>(bytes)) != 1)
    throw std::runtime_error("RAND_bytes failed");
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned char c : raw) {
    out += hex[c >> 4];
    out += hex[c & 15];
  }
  {
    std::ofstream f{file, std::ios::trunc};
    if (!f) throw std::runtime_error("cannot write " + file);
    f << out << '\n';
  }
  fs::permissions(file, fs::perms::owner_read | fs::perms::owner_write);
  return out;
}

}  // namespace presd::app
