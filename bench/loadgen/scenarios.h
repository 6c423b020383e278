// The socket-level scenarios of issue 4. Each prints one `RESULT key=value ...` line that
// bench/compare turns into the results table; server CPU and memory are read from
// /proc/<server-pid> at the start and end of the measured window.
#pragma once

#include <cstdint>
#include <string>

namespace loadgen {

struct Options {
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;
  std::string proto = "presd";  // presd (also the Node peer: same protocol) or nats
  std::string label;            // copied into the RESULT line
  int server_pid = 0;
  std::string access_token;     // /ws/bus?token=
  std::string context;          // subscribe target (presd) / subject (nats)
  std::string tokens_file;      // pre-signed PRES tokens, one per line (loadgen sign)
  std::string mode = "ws";      // submit: ws or inbox
  std::size_t subs = 1000;      // subscriber connections
  std::size_t conns = 1;        // sender / idle connections
  std::size_t window = 8;       // requests in flight per sender connection
  std::size_t frame_bytes = 500;  // nats: payload size of one published frame
  std::size_t src_ips = 4;      // 127.0.0.2 .. 127.0.0.(1+src_ips)
  std::size_t connect_parallel = 256;
  std::size_t repeats = 200;    // snapshot: subscribe round trips
  double duration_s = 5;
  double warmup_s = 1;
  double rate = 0;              // latency: PRES per second
  bool cycle = false;           // submit: reuse tokens in a cycle (rejection mixes)
  std::string samples_out;      // latency: every delivery as `n sent_ms latency_ms`, for plots
  // Poll the sockets without sleeping: on loopback a frame sent to a sleeping generator makes the
  // server's thread pay the generator's wake-up (an IPI, costly in this VM), which a server
  // writing to a network never pays.
  bool busy_poll = false;
};

int run_fanout(const Options& o);
int run_submit(const Options& o);
int run_idle(const Options& o);
int run_latency(const Options& o);
int run_snapshot(const Options& o);

}  // namespace loadgen
