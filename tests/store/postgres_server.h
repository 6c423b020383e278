// A throw-away PostgreSQL server for the store tests and benchmarks: initdb into a temp dir,
// `pg_ctl start` on 127.0.0.1 at a free port (unix socket in the temp dir), stopped and removed
// at the end (postgres_environment.h for gtest). Started on first use, so SQLite-only runs never
// pay for it. initdb refuses to run as root: as root, the server runs as `nobody` and owns the
// temp dir.
#pragma once

#include <arpa/inet.h>
#include <grp.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace presd::testing {

namespace fs = std::filesystem;

// PRESD_PG_BINDIR, else the newest /usr/lib/postgresql/<version>/bin (Debian's layout; what is
// on PATH may be something else).
inline fs::path postgres_bin_dir() {
  if (const char* env = std::getenv("PRESD_PG_BINDIR"); env && *env) return env;
  fs::path best;
  int best_version = -1;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/usr/lib/postgresql", ec)) {
    const std::string name = e.path().filename().string();
    if (name.empty() || !std::all_of(name.begin(), name.end(), ::isdigit)) continue;
    if (!fs::exists(e.path() / "bin" / "initdb")) continue;
    if (std::stoi(name) > best_version) {
      best_version = std::stoi(name);
      best = e.path() / "bin";
    }
  }
  if (best.empty()) throw std::runtime_error("no PostgreSQL server found in /usr/lib/postgresql (scripts/install-deps installs it)");
  return best;
}

inline int free_loopback_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    if (fd >= 0) ::close(fd);
    throw std::runtime_error("cannot find a free port");
  }
  ::close(fd);
  return ntohs(a.sin_port);
}

class PostgresServer {
 public:
  ~PostgresServer() { destroy(); }

  bool running() const { return running_; }
  int port() const { return port_; }
  std::string url(const std::string& db) const {
    return "postgresql://presd@127.0.0.1:" + std::to_string(port_) + "/" + db;
  }

  // initdb (once), then start the server; a no-op when it runs.
  void start() {
    if (running_) return;
    if (base_.empty()) init();
    for (int attempt = 0;; ++attempt) {
      if (port_ == 0) port_ = free_loopback_port();
      const std::string opts = "-c listen_addresses=127.0.0.1 -p " + std::to_string(port_) + " -k " + base_.string() +
                               " -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=60";
      if (run({"pg_ctl", "-D", data().string(), "-l", (base_ / "server.log").string(), "-w", "-t", "60", "-o", opts,
               "start"}) == 0) {
        running_ = true;
        return;
      }
      if (attempt == 2 || started_once_) throw std::runtime_error("pg_ctl start failed:\n" + log());
      port_ = 0;  // another process took the port between the probe and the start
    }
  }

  // `pg_ctl stop -m fast`: connected clients are disconnected, as in a real outage.
  void stop() {
    if (!running_) return;
    run({"pg_ctl", "-D", data().string(), "-m", "fast", "-w", "-t", "60", "stop"});
    running_ = false;
    started_once_ = true;  // restart on the same port: clients keep their URL
  }

  void destroy() {
    if (running_) {
      run({"pg_ctl", "-D", data().string(), "-m", "immediate", "-w", "-t", "60", "stop"});
      running_ = false;
    }
    if (!base_.empty()) {
      std::error_code ec;
      fs::remove_all(base_, ec);
      base_.clear();
    }
  }

  // A new empty database for one test; returns its URL.
  std::string fresh_database() {
    start();
    const std::string name = "presd_t" + std::to_string(++databases_);
    sql("postgres", "CREATE DATABASE " + name);
    return url(name);
  }

  // Runs SQL (no parameters) in `db`; throws with the server's message on failure.
  void sql(const std::string& db, const std::string& statement) {
    PGconn* c = PQconnectdb(url(db).c_str());
    std::string error;
    if (PQstatus(c) != CONNECTION_OK) {
      error = PQerrorMessage(c);
    } else {
      PGresult* r = PQexec(c, statement.c_str());
      const auto st = PQresultStatus(r);
      if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) error = PQresultErrorMessage(r);
      PQclear(r);
    }
    PQfinish(c);
    if (!error.empty()) throw std::runtime_error(statement + ": " + error);
  }

  // The first column of the first row, as text ("" when there is none).
  std::string query_value(const std::string& db, const std::string& statement) {
    PGconn* c = PQconnectdb(url(db).c_str());
    std::string out, error;
    if (PQstatus(c) != CONNECTION_OK) {
      error = PQerrorMessage(c);
    } else {
      PGresult* r = PQexec(c, statement.c_str());
      if (PQresultStatus(r) != PGRES_TUPLES_OK) error = PQresultErrorMessage(r);
      else if (PQntuples(r) > 0) out = PQgetvalue(r, 0, 0);
      PQclear(r);
    }
    PQfinish(c);
    if (!error.empty()) throw std::runtime_error(statement + ": " + error);
    return out;
  }

 private:
  fs::path data() const { return base_ / "data"; }

  std::string log() const {
    std::ifstream in(base_ / "server.log");
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  void init() {
    bin_ = postgres_bin_dir();
    std::string tmpl = (fs::temp_directory_path() / "presd-pg-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    base_ = tmpl;
    if (::geteuid() == 0) {
      const passwd* nobody = ::getpwnam("nobody");
      if (nobody == nullptr) throw std::runtime_error("no user `nobody` to run PostgreSQL as");
      uid_ = nobody->pw_uid;
      gid_ = nobody->pw_gid;
      if (::chown(base_.c_str(), uid_, gid_) != 0) throw std::runtime_error("cannot chown " + base_.string());
    }
    if (run({"initdb", "-D", data().string(), "-U", "presd", "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8",
             "--no-sync"}) != 0)
      throw std::runtime_error("initdb failed:\n" + log());
  }

  // Runs a PostgreSQL program (as `nobody` when root) with its output appended to server.log.
  int run(const std::vector<std::string>& args) {
    const std::string program = (bin_ / args[0]).string();
    const std::string log_file = (base_ / "server.log").string();
    const pid_t pid = ::fork();
    if (pid < 0) return -1;
    if (pid == 0) {
      (void)!::chdir("/");  // `nobody` may not be able to enter the test's working directory
      if (uid_ != 0 && (::setgroups(0, nullptr) != 0 || ::setgid(gid_) != 0 || ::setuid(uid_) != 0)) ::_exit(126);
      if (FILE* f = std::fopen(log_file.c_str(), "a")) {
        ::dup2(::fileno(f), 1);
        ::dup2(::fileno(f), 2);
      }
      std::vector<char*> argv;
      for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
      argv[0] = const_cast<char*>(program.c_str());
      argv.push_back(nullptr);
      ::execv(program.c_str(), argv.data());
      ::_exit(127);
    }
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

  fs::path bin_;
  fs::path base_;
  uid_t uid_ = 0;
  gid_t gid_ = 0;
  int port_ = 0;
  int databases_ = 0;
  bool running_ = false;
  bool started_once_ = false;
};

// The process-wide server; stopped and removed when the program ends.
inline PostgresServer& postgres_server() {
  static PostgresServer server;
  return server;
}

}  // namespace presd::testing
