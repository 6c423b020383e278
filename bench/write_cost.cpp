// What one socket write costs on this machine, without presd: a syscall that does nothing, one
// 611-byte frame per `sendmsg` to each of N loopback TCP connections in turn (a small broadcast
// with no batching), and K frames per `sendmsg` (a large broadcast's queues). A receiver thread
// polls the other ends without sleeping, so no write pays a wake-up. CPU time of the writing
// thread. Run pinned: `taskset -c 1 build-bench/bench/write_cost` (the receiver pins itself to
// core 0). docs/performance.md uses it to explain presd's cost growth.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <stdexcept>
#include <thread>
#include <vector>

#include <benchmark/benchmark.h>

namespace {

constexpr std::size_t kFrameBytes = 611;  // presd's ACTION frame in the growth scenario

// N connected pairs on 127.0.0.1; a thread drains the client ends until destroyed.
class LoopbackPairs {
 public:
  explicit LoopbackPairs(int n) {
    const int listener = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (listener < 0 || ::bind(listener, reinterpret_cast<sockaddr*>(&addr), len) != 0 || ::listen(listener, n) != 0 ||
        ::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len) != 0)
      throw std::runtime_error("loopback listener");
    for (int i = 0; i < n; ++i) {
      const int client = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
      if (::connect(client, reinterpret_cast<sockaddr*>(&addr), len) != 0 && errno != EINPROGRESS)
        throw std::runtime_error("connect");
      const int server = ::accept(listener, nullptr, nullptr);
      if (server < 0) throw std::runtime_error("accept");
      const int one = 1;
      ::setsockopt(server, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);  // as presd's sockets
      clients_.push_back(client);
      servers_.push_back(server);
    }
    ::close(listener);
    drain_ = std::thread([this] {
      cpu_set_t cores;
      CPU_ZERO(&cores);
      CPU_SET(0, &cores);
      pthread_setaffinity_np(pthread_self(), sizeof cores, &cores);
      std::vector<char> buf(1 << 16);
      while (!stop_.load(std::memory_order_relaxed))
        for (int fd : clients_)
          while (::recv(fd, buf.data(), buf.size(), MSG_DONTWAIT) > 0) {
          }
    });
  }
  ~LoopbackPairs() {
    stop_ = true;
    drain_.join();
    for (int fd : clients_) ::close(fd);
    for (int fd : servers_) ::close(fd);
  }
  const std::vector<int>& servers() const { return servers_; }

 private:
  std::vector<int> clients_, servers_;
  std::atomic<bool> stop_{false};
  std::thread drain_;
};

void BM_EmptySyscall(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(::syscall(SYS_getppid));
}
BENCHMARK(BM_EmptySyscall);

// Arg 0: connections written in turn; arg 1: frames per sendmsg. Counted per frame.
void BM_WriteFrames(benchmark::State& state) {
  LoopbackPairs pairs(static_cast<int>(state.range(0)));
  const std::size_t per_write = static_cast<std::size_t>(state.range(1));
  static const std::vector<char> frame(kFrameBytes, 'x');
  std::vector<iovec> iov(per_write, iovec{const_cast<char*>(frame.data()), frame.size()});
  msghdr msg{};
  msg.msg_iov = iov.data();
  msg.msg_iovlen = iov.size();
  std::size_t next = 0;
  for (auto _ : state) {
    const int fd = pairs.servers()[next];
    next = next + 1 == pairs.servers().size() ? 0 : next + 1;
    if (::sendmsg(fd, &msg, MSG_NOSIGNAL) < 0 && errno != EAGAIN) {
      state.SkipWithError("sendmsg failed");
      break;
    }
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * per_write));
  state.counters["us_per_frame"] = benchmark::Counter(
      static_cast<double>(state.iterations() * per_write), benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_WriteFrames)->ArgNames({"conns", "frames"})->Args({10, 1})->Args({100, 1})->Args({1000, 1})
    ->Args({10, 2})->Args({100, 8})->Args({1000, 8});

}  // namespace
