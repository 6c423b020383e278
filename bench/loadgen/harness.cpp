#include "harness.h"

#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <stdexcept>

namespace loadgen {

ProcSample sample_process(int pid) {
  ProcSample s;
  if (pid <= 0) return s;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  const auto paren = text.rfind(')');
  if (paren == std::string::npos) return s;
  std::istringstream fields(text.substr(paren + 2));
  std::string f;
  unsigned long long utime = 0, stime = 0;
  // Fields 3.. after "pid (comm)": state is field 3; utime and stime are fields 14 and 15.
  for (int i = 3; i <= 15 && fields >> f; ++i) {
    if (i == 14) utime = std::stoull(f);
    if (i == 15) stime = std::stoull(f);
  }
  s.cpu_s = static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(status, line);)
    if (line.rfind("VmRSS:", 0) == 0) s.rss_kb = std::stol(line.substr(6));
  // utime/stime come in 10 ms ticks: too coarse for an idle server's few hundred ms a minute.
  std::error_code ec;
  for (const auto& task : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec)) {
    std::ifstream sched(task.path() / "schedstat");
    unsigned long long ns = 0;
    if (!(sched >> ns)) continue;
    s.run_s += static_cast<double>(ns) / 1e9;
    if (task.path().filename() == std::to_string(pid)) s.main_run_s = static_cast<double>(ns) / 1e9;
  }
  return s;
}

double self_cpu_s() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_stime.tv_sec + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

Harness::Harness(const Options& o) : opt(o), server_(asio::ip::make_address(o.host), o.port) {}

void Harness::open(Fleet& fleet, std::size_t n, Conn::Mode mode, std::function<void(Conn&)> on_ready,
                   Conn::OnMessage on_message) {
  const std::size_t first = fleet.conns.size();
  const std::size_t target = first + n;
  auto start_next = std::make_shared<std::function<void()>>();
  *start_next = [this, &fleet, target, mode, on_ready, on_message, start_next] {
    if (fleet.conns.size() >= target) return;
    const std::size_t i = fleet.conns.size();
    const std::size_t ips = std::max<std::size_t>(1, opt.src_ips);
    const auto source = asio::ip::make_address_v4(static_cast<asio::ip::address_v4::uint_type>((127u << 24) + 2 + i % ips));
    auto c = std::make_shared<Conn>(io, mode, i);
    fleet.conns.push_back(c);
    c->start(
        server_, source, mode == Conn::Mode::websocket ? handshake() : std::string(),
        [&fleet, on_ready, start_next](Conn& conn, bool ok) {
          ok ? ++fleet.opened : ++fleet.failed;
          if (ok) on_ready(conn);
          (*start_next)();
        },
        on_message, [&fleet](Conn&, bool) { ++fleet.closed; });
  };
  for (std::size_t k = 0; k < std::min(n, std::max<std::size_t>(1, opt.connect_parallel)); ++k) (*start_next)();
}

bool Harness::run_until(const std::function<bool()>& pred, double timeout_s) {
  const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(timeout_s));
  while (!pred()) {
    if (Clock::now() >= deadline) return false;
    if (io.stopped()) io.restart();
    if (opt.busy_poll) io.poll();
    else io.run_for(std::chrono::milliseconds(1));
  }
  return true;
}

void Harness::run_for(double seconds) {
  run_until([] { return false; }, seconds);
}

std::vector<std::string> Harness::load_tokens() const {
  std::vector<std::string> tokens;
  std::ifstream in(opt.tokens_file);
  if (!in) throw std::runtime_error("cannot read --tokens " + opt.tokens_file);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) tokens.push_back(line);
  if (tokens.empty()) throw std::runtime_error("no tokens in " + opt.tokens_file);
  return tokens;
}

std::string Harness::handshake() const {
  const std::string host = opt.host + ":" + std::to_string(opt.port);
  if (opt.proto == "nats") return upgrade_request(host, "/");
  return upgrade_request(host, "/ws/bus?token=" + opt.access_token);
}

Result::Result(const std::string& scenario, const Options& o) {
  line_ << std::fixed << std::setprecision(3) << "RESULT scenario=" << scenario << " proto=" << o.proto;
  if (!o.label.empty()) line_ << " label=" << o.label;
}

void Result::print() const {
  std::cout << line_.str() << std::endl;
}

}  // namespace loadgen
