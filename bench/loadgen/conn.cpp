#include "conn.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/write.hpp>

#include <netinet/in.h>

#include <vector>

#include "wire.h"

namespace loadgen {

using boost::system::error_code;

namespace {
std::vector<char>& scratch() {
  static std::vector<char> buf(256 * 1024);
  return buf;
}
#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif
// The port is chosen at connect(), per destination, instead of at bind() for the source alone.
using bind_no_port = asio::detail::socket_option::boolean<IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT>;
}  // namespace

void Conn::start(const tcp::endpoint& server, const asio::ip::address& source, std::string handshake,
                 OnEvent on_open, OnMessage on_message, OnEvent on_close) {
  on_open_ = std::move(on_open);
  on_message_ = std::move(on_message);
  on_close_ = std::move(on_close);
  error_code ec;
  sock_.open(tcp::v4(), ec);
  if (!ec) sock_.set_option(bind_no_port(true), ec);
  if (!ec) sock_.bind(tcp::endpoint(source, 0), ec);
  if (ec) {
    asio::post(sock_.get_executor(), [self = shared_from_this()] { self->fail(); });
    return;
  }
  sock_.async_connect(server, [self = shared_from_this(), hs = std::move(handshake)](error_code ec) {
    if (ec) return self->fail();
    error_code ignored;
    self->sock_.set_option(tcp::no_delay(true), ignored);
    self->sock_.non_blocking(true, ignored);
    if (self->mode_ == Mode::http) {
      self->open_ = true;
      self->on_open_(*self, true);
    } else {
      self->send_raw(hs);
    }
    self->wait_readable();
  });
}

void Conn::send_text(std::string_view payload) {
  if (closed_) return;
  append_client_frame(out_, kText, payload);
  if (!write_busy_) flush();
}

void Conn::send_raw(std::string_view bytes) {
  if (closed_) return;
  out_.append(bytes);
  if (!write_busy_) flush();
}

// Everything queued while a write is in flight goes out in the next single write (batching).
void Conn::flush() {
  if (out_.empty() || closed_) return;
  write_busy_ = true;
  writing_.swap(out_);
  out_.clear();
  asio::async_write(sock_, asio::buffer(writing_), [self = shared_from_this()](error_code ec, std::size_t) {
    self->write_busy_ = false;
    self->writing_.clear();
    if (ec) return self->fail();
    self->flush();
  });
}

void Conn::wait_readable() {
  sock_.async_wait(tcp::socket::wait_read, [self = shared_from_this()](error_code ec) {
    if (ec) return self->fail();
    self->on_readable();
  });
}

void Conn::on_readable() {
  auto& buf = scratch();
  for (;;) {
    error_code ec;
    const std::size_t n = sock_.read_some(asio::buffer(buf), ec);
    if (ec == asio::error::would_block) break;
    if (ec) return fail();
    feed(std::string_view(buf.data(), n));
    if (closed_) return;
    if (n < buf.size()) break;
  }
  wait_readable();
}

void Conn::feed(std::string_view data) {
  if (in_.empty()) {
    const std::size_t used = parse(data);
    if (!closed_ && used < data.size()) in_.assign(data.substr(used));
    return;
  }
  in_.append(data);
  const std::size_t used = parse(in_);
  if (!closed_) in_.erase(0, used);
}

std::size_t Conn::parse(std::string_view data) {
  std::size_t used = 0;
  if (mode_ == Mode::websocket && !upgraded_) {
    const auto end = data.find("\r\n\r\n");
    if (end == std::string_view::npos) return 0;
    if (data.substr(0, 12) != "HTTP/1.1 101") {
      fail();
      return data.size();
    }
    upgraded_ = true;
    open_ = true;
    used = end + 4;
    on_open_(*this, true);
    if (closed_) return data.size();
  }
  while (used < data.size() && !closed_) {
    const std::string_view rest = data.substr(used);
    if (mode_ == Mode::http) {
      const HttpMessage m = parse_http_response(rest);
      if (!m.consumed) break;
      used += m.consumed;
      on_message_(*this, m.status, m.body);
      continue;
    }
    const ServerFrame f = parse_server_frame(rest);
    if (!f.consumed) break;
    used += f.consumed;
    if (f.op == kPing) {
      std::string pong;
      append_client_frame(pong, kPong, f.payload);
      send_raw(pong);
      ++pings_answered;
    } else if (f.op == kClose) {
      on_message_(*this, kClose, f.payload);
      fail();
    } else if (f.op == kText || f.op == kBinary) {
      on_message_(*this, f.op, f.payload);
    }
  }
  return used;
}

void Conn::close() {
  if (closed_) return;
  closed_ = true;
  open_ = false;
  error_code ignored;
  sock_.close(ignored);
}

void Conn::fail() {
  if (closed_) return;
  const bool was_open = open_;
  close();
  if (!was_open && on_open_) on_open_(*this, false);
  else if (on_close_) on_close_(*this, false);
}

}  // namespace loadgen
