// A real nats-server (Debian's) for tests, on a loopback port it picks itself (-p -1, reported
// through --ports_file_dir), restartable on the same port to test reconnects.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace presd::test {

class NatsServer {
 public:
  // port 0: let nats-server pick a free one.
  explicit NatsServer(int port = 0) {
    dir_ = std::filesystem::temp_directory_path() / ("presd-nats-" + std::to_string(::getpid()) + "-" +
                                                     std::to_string(counter()++));
    std::filesystem::create_directories(dir_);
    start(port);
  }
  ~NatsServer() {
    stop();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  NatsServer(const NatsServer&) = delete;
  NatsServer& operator=(const NatsServer&) = delete;

  int port() const { return port_; }
  std::string url() const { return "nats://127.0.0.1:" + std::to_string(port_); }

  // Starts again on the same port (after stop()).
  void restart() { start(port_); }

  void stop(int sig = SIGKILL) {
    if (pid_ <= 0) return;
    ::kill(pid_, sig);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }

 private:
  static int& counter() {
    static int n = 0;
    return n;
  }

  void start(int port) {
    const std::string p = port ? std::to_string(port) : "-1";
    std::vector<std::string> args = {"nats-server", "-a", "127.0.0.1", "-p", p, "--ports_file_dir", dir_.string()};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, (dir_ / "server.log").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    const int rc = posix_spawnp(&pid_, "nats-server", &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) throw std::runtime_error("cannot start nats-server (is it installed?)");
    // The ports file appears once the server listens (a restart may wait for the old port).
    const auto file = dir_ / ("nats-server_" + std::to_string(pid_) + ".ports");
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (std::chrono::steady_clock::now() < deadline) {
      std::ifstream in(file);
      std::stringstream ss;
      ss << in.rdbuf();
      std::smatch m;
      const std::string text = ss.str();
      if (std::regex_search(text, m, std::regex(R"(127\.0\.0\.1:(\d+))"))) {
        port_ = std::stoi(m[1]);
        return;
      }
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        throw std::runtime_error("nats-server exited at start-up; see " + (dir_ / "server.log").string());
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    throw std::runtime_error("nats-server did not report its port within 20 s");
  }

  std::filesystem::path dir_;
  pid_t pid_ = -1;
  int port_ = 0;
};

}  // namespace presd::test
