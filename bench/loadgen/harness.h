// Shared plumbing of the scenarios: the io_context, opening many connections with bounded
// concurrency over several source addresses, running until a condition, /proc sampling and the
// RESULT line.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "conn.h"
#include "wire.h"
#include "scenarios.h"

namespace loadgen {

using Clock = std::chrono::steady_clock;
inline double seconds_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

struct ProcSample {
  double cpu_s = 0;  // utime + stime (10 ms ticks)
  double run_s = 0;  // the threads' summed run time from schedstat (ns); 0 if unavailable
  // The main thread's alone: presd's I/O thread (signature checks run on other threads).
  double main_run_s = 0;
  long rss_kb = 0;
};
ProcSample sample_process(int pid);  // zeros when pid is 0 or gone
double self_cpu_s();

// Connections opened together; counters for the scenario's progress checks.
struct Fleet {
  std::vector<std::shared_ptr<Conn>> conns;
  std::size_t opened = 0, failed = 0, closed = 0;
  std::size_t done() const { return opened + failed; }
};

class Harness {
 public:
  explicit Harness(const Options& o);
  asio::io_context io{1};
  const Options& opt;

  // Opens n connections (at most opt.connect_parallel connecting at once); on_ready runs when
  // one is usable (WebSocket upgraded, or TCP connected for HTTP).
  void open(Fleet& fleet, std::size_t n, Conn::Mode mode, std::function<void(Conn&)> on_ready,
            Conn::OnMessage on_message);
  // Runs the event loop until pred() or timeout; false on timeout.
  bool run_until(const std::function<bool()>& pred, double timeout_s);
  void run_for(double seconds);
  std::vector<std::string> load_tokens() const;
  std::string handshake() const;  // the upgrade request for opt.proto

 private:
  tcp::endpoint server_;
};

// `RESULT scenario=... key=value ...`, one line, flushed.
class Result {
 public:
  Result(const std::string& scenario, const Options& o);
  template <class T>
  Result& add(const std::string& key, const T& value) {
    line_ << ' ' << key << '=' << value;
    return *this;
  }
  void print() const;

 private:
  std::ostringstream line_;
};

}  // namespace loadgen
