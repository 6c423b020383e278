// The HTTP + WebSocket listener (Boost.Beast over Asio). Owns sockets, parsing, size limits,
// timeouts, keep-alive pings and graceful close; everything else goes to a transport::Handler.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "transport/http_types.h"

namespace boost::asio { class io_context; }

namespace presd::transport {

struct ServerConfig {
  std::string bind_address = "127.0.0.1";
  std::uint16_t port = 8080;             // 0 = pick a free port (see Server::port())
  std::size_t max_body_bytes = 64 * 1024;       // 413 payload_too_large beyond
  std::size_t max_header_bytes = 8 * 1024;
  std::size_t max_ws_message_bytes = 16 * 1024;  // close 1009 beyond
  std::size_t max_ws_queue_bytes = 1 << 20;      // per connection; slow consumer closed beyond
  std::chrono::milliseconds http_read_timeout{10'000};  // slowloris guard for headers + body (408 beyond)
  std::chrono::seconds http_idle_timeout{30};     // keep-alive
  std::chrono::seconds ws_ping_interval{30};
  std::size_t max_connections = 200'000;        // 503 unavailable beyond, answered at accept
  std::size_t max_connections_per_ip = 1024;     // 429 too_many_connections beyond; 0 = no cap
};

// Write counters: frames_sent / write_calls is how many frames one WebSocket gather write
// carries; http_answers / http_write_calls how many pipelined HTTP answers share one write.
struct TransportStats {
  std::uint64_t ws_frames_sent = 0;
  std::uint64_t ws_write_calls = 0;
  std::uint64_t ws_bytes_sent = 0;
  std::uint64_t http_answers = 0;
  std::uint64_t http_write_calls = 0;
  std::uint64_t ws_keepalive_pings = 0;  // pings sent to WebSockets silent for one ping interval
  std::uint64_t ws_silent_drops = 0;     // WebSockets closed after two silent intervals
};

class Server {
 public:
  Server(boost::asio::io_context& io, ServerConfig config, Handler& handler);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds and starts accepting. Throws std::system_error on bind failure (an edge).
  void start();
  std::uint16_t port() const;  // the bound port
  // Graceful: stop accepting, close WebSockets with 1001 "going away", let in-flight HTTP
  // responses finish; `done` runs (on the I/O thread) when every connection is gone or after
  // `grace`, whichever is first.
  void shutdown(std::chrono::milliseconds grace, std::function<void()> done);
  std::size_t connection_count() const;
  TransportStats stats() const;  // any thread

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace presd::transport
