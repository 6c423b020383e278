// One client connection of the load generator over Asio: WebSocket (after a hand-written
// upgrade) or plain HTTP/1.1 keep-alive. Reactor-style reads into one shared scratch buffer, so
// 100k idle connections cost a socket and this object, not a read buffer each.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace loadgen {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

class Conn : public std::enable_shared_from_this<Conn> {
 public:
  enum class Mode { websocket, http };
  // kind: the WebSocket opcode, or the HTTP status code.
  using OnMessage = std::function<void(Conn&, int kind, std::string_view payload)>;
  using OnEvent = std::function<void(Conn&, bool ok)>;

  Conn(asio::io_context& io, Mode mode, std::size_t index) : sock_(io), mode_(mode), index_(index) {}

  // Connects from `source` (a 127.0.0.x address spreads connections over more ephemeral ports),
  // sends `handshake` (the upgrade request; empty for HTTP), then calls on_open(ok).
  void start(const tcp::endpoint& server, const asio::ip::address& source, std::string handshake, OnEvent on_open,
             OnMessage on_message, OnEvent on_close);
  void send_text(std::string_view payload);
  void send_raw(std::string_view bytes);
  void close();

  bool is_open() const { return open_; }
  std::size_t index() const { return index_; }
  std::string side;  // per-connection parser state a scenario may keep (NATS stream remainder)
  std::size_t pings_answered = 0;  // server pings (WebSocket or NATS PING) this connection answered

 private:
  void wait_readable();
  void on_readable();
  void feed(std::string_view data);  // returns with unconsumed bytes kept in in_
  std::size_t parse(std::string_view data);
  void flush();
  void fail();

  tcp::socket sock_;
  Mode mode_;
  std::size_t index_;
  std::string in_;
  std::string out_, writing_;
  bool write_busy_ = false;
  bool upgraded_ = false;
  bool open_ = false;
  bool closed_ = false;
  OnEvent on_open_, on_close_;
  OnMessage on_message_;
};

}  // namespace loadgen
