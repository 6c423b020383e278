// The network edge: one acceptor, an HTTP/1.1 session per TCP connection (keep-alive), and a
// WebSocket session once a connection upgrades. Everything runs on the single I/O thread of the
// io_context the Server was given; handler callbacks are therefore never concurrent.
//
// Structure
//   Core          shared state (config, handler, acceptor, registries for shutdown, counters).
//                 Server::Impl derives from it; sessions hold shared_ptr<Core>, so a Server that
//                 is destroyed while coroutines are suspended leaves no dangling pointer.
//   HttpSession   coroutine: read request (header + body limits, timeouts) -> handler.on_http ->
//                 wait for the Responder -> write -> loop (keep-alive) or upgrade.
//   WsSession     implements WsConnection: a read coroutine, a callback-driven writer over a
//                 queue of shared frames (the same buffer object is shared by every recipient),
//                 close with a code, slow-consumer cut-off.
#include "transport/server.h"

#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/compose.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <deque>
#include <optional>
#include <system_error>
#include <unordered_map>
#include <vector>

#include "common/error_code.h"
#include "transport/detail_url.h"
#include "transport/ws_close_screen.h"

namespace presd::transport {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using boost::system::error_code;

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
constexpr const char* kServerName = "presd";

// After an error response the connection is closed; the remaining request bytes are read and
// dropped for a short while first, so that the kernel does not answer them with a RST that
// could destroy the response before the client reads it.
constexpr std::chrono::milliseconds kLingerTime{1000};
constexpr std::size_t kLingerMaxBytes = 1 << 20;
// Connections refused over a connection cap that are being answered at once; beyond, closed.
constexpr std::size_t kMaxRefusing = 1024;

class HttpSession;
class WsSession;

void log_exception(std::exception_ptr e, const char* what) {
  if (!e) return;
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    spdlog::error("transport: {} ended with exception: {}", what, ex.what());
  } catch (...) {
    spdlog::error("transport: {} ended with an unknown exception", what);
  }
}

std::string error_json(std::string_view code, std::string_view message) {
  std::string out;
  out.reserve(48 + code.size() + message.size());
  out += R"({"error":{"code":")";
  out += code;
  out += R"(","message":")";
  out += message;  // only fixed ASCII messages from this file, nothing to escape
  out += R"("}})";
  return out;
}

std::string ip_string(const tcp::endpoint& ep) {
  asio::ip::address a = ep.address();
  if (a.is_v6() && a.to_v6().is_v4_mapped()) a = asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6());
  return a.to_string();
}

// Host header without port, lowercase. "[::1]:8080" -> "[::1]".
std::string host_without_port(std::string_view host) {
  std::string_view h = host;
  if (!h.empty() && h.front() == '[') {
    const auto close = h.find(']');
    if (close != std::string_view::npos) h = h.substr(0, close + 1);
  } else {
    const auto colon = h.rfind(':');
    if (colon != std::string_view::npos) h = h.substr(0, colon);
  }
  std::string out(h);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

HttpRequest to_request(http::request<http::string_body>& req, const std::string& remote_ip) {
  HttpRequest r;
  r.method = std::string(req.method_string());
  r.target = std::string(req.target());
  const std::string_view target = r.target;
  const auto q = target.find('?');
  r.path = detail::percent_decode(target.substr(0, q), false);
  if (q != std::string_view::npos) r.query = std::string(target.substr(q + 1));
  r.host = host_without_port(req[http::field::host]);
  r.authorization = std::string(req[http::field::authorization]);
  r.content_type = std::string(req[http::field::content_type]);
  r.body = std::move(req.body());
  r.remote_ip = remote_ip;
  return r;
}

// Close codes an endpoint may send (RFC 6455 7.4.1 and the 3000-4999 private range).
bool sendable_close_code(std::uint16_t code) {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999);
}

websocket::close_reason make_close_reason(std::uint16_t code, std::string_view reason) {
  if (!sendable_close_code(code)) {
    spdlog::warn("transport: close code {} cannot be sent, using 1011", code);
    code = 1011;
  }
  websocket::close_reason cr(code);
  // A close frame's payload is at most 125 bytes: 2 for the code, 123 for the reason.
  if (reason.size() > cr.reason.max_size()) reason = reason.substr(0, cr.reason.max_size());
  cr.reason.assign(reason.data(), reason.size());
  return cr;
}

// The WebSocket's next layer: a tcp_stream with a better closing teardown. Beast 1.81's TCP
// teardown (server role) drains at most one read after shutdown(send) before closing (it tests the
// wrong byte count), so a peer that is still sending, typically the rest of an oversize message,
// gets a RST that can destroy the close frame (1009, 1003...) before the peer reads it. This one
// drains until EOF, bounded in time and bytes, then closes. Found by ADL from Beast's close paths.
class WsTcpStream : public beast::tcp_stream {
 public:
  explicit WsTcpStream(beast::tcp_stream&& s) : beast::tcp_stream(std::move(s)) {}

  // Beast reads every frame through this: the bytes pass the close-frame screen first, so that
  // close codes 5000+ are answered 1002 and a reason that is not UTF-8 1007 (ws_close_screen.h).
  template <class MutableBuffers, class ReadHandler>
  void async_read_some(const MutableBuffers& buffers, ReadHandler&& handler);

  WsCloseScreen screen;
};

struct ScreenedReadOp {
  WsTcpStream& stream;
  asio::mutable_buffer out;
  std::size_t restored = 0;
  bool started = false;

  template <class Self>
  void operator()(Self& self, error_code ec = {}, std::size_t n = 0) {
    auto* data = static_cast<std::uint8_t*>(out.data());
    if (!started) {
      started = true;
      restored = stream.screen.restore({data, out.size()});
      // Held bytes that did not fit go first: read nothing new this time.
      const asio::mutable_buffer room = stream.screen.holding() ? asio::mutable_buffer{} : out + restored;
      stream.beast::tcp_stream::async_read_some(room, std::move(self));
      return;
    }
    if (ec) return self.complete(ec, 0);  // held bytes were an unfinished frame: the peer is gone
    self.complete(ec, stream.screen.screen({data, restored + n}));
  }
};

// Reads into the first buffer only (read_some may read less). The screen holds bytes only at a
// frame boundary, where Beast has consumed its (circular) read buffer, which then rewinds: the
// first buffer is its whole free space, so a held close frame always fits back.
template <class MutableBuffers, class ReadHandler>
void WsTcpStream::async_read_some(const MutableBuffers& buffers, ReadHandler&& handler) {
  asio::async_compose<ReadHandler, void(error_code, std::size_t)>(
      ScreenedReadOp{*this, *asio::buffer_sequence_begin(buffers)}, handler, *this);
}

constexpr std::chrono::milliseconds kTeardownTime{2000};
constexpr std::size_t kTeardownMaxBytes = 4 << 20;

struct TeardownOp {
  WsTcpStream& stream;
  std::unique_ptr<std::array<char, 2048>> buf = std::make_unique<std::array<char, 2048>>();
  std::size_t drained = 0;
  bool started = false;

  template <class Self>
  void operator()(Self& self, error_code ec = {}, std::size_t n = 0) {
    if (!started) {
      started = true;
      error_code ignored;
      stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
      stream.expires_after(kTeardownTime);  // covers every read below
      stream.beast::tcp_stream::async_read_some(asio::buffer(*buf), std::move(self));
      return;
    }
    drained += n;
    if (!ec && drained < kTeardownMaxBytes) {
      stream.beast::tcp_stream::async_read_some(asio::buffer(*buf), std::move(self));
      return;
    }
    stream.close();
    self.complete(error_code{});  // eof, timeout or limit: the connection is finished either way
  }
};

template <class TeardownHandler>
void async_teardown(beast::role_type, WsTcpStream& stream, TeardownHandler&& handler) {
  asio::async_compose<TeardownHandler, void(error_code)>(TeardownOp{stream}, handler, stream);
}

inline void teardown(beast::role_type, WsTcpStream& stream, error_code& ec) {
  stream.socket().shutdown(tcp::socket::shutdown_send, ec);
  stream.socket().close(ec);
}

}  // namespace

namespace detail {

struct Core;

// Decrements the connection counts (total and per IP) when the connection (HTTP, then possibly
// WebSocket) is gone.
class ConnGuard {
 public:
  ConnGuard() = default;
  ConnGuard(std::shared_ptr<Core> core, std::string ip) : core_(std::move(core)), ip_(std::move(ip)) {}
  ConnGuard(ConnGuard&& o) noexcept : core_(std::move(o.core_)), ip_(std::move(o.ip_)) {}
  ConnGuard& operator=(ConnGuard&& o) noexcept {
    if (this != &o) {
      release();
      core_ = std::move(o.core_);
      ip_ = std::move(o.ip_);
    }
    return *this;
  }
  ~ConnGuard() { release(); }
  void release();

 private:
  std::shared_ptr<Core> core_;
  std::string ip_;
};

struct Core : std::enable_shared_from_this<Core> {
  Core(asio::io_context& io_, ServerConfig cfg_, Handler& handler_)
      : io(io_), cfg(std::move(cfg_)), handler(handler_), acceptor(io_), grace_timer(io_) {}

  asio::io_context& io;
  const ServerConfig cfg;
  Handler& handler;
  tcp::acceptor acceptor;
  asio::steady_timer grace_timer;
  std::uint16_t bound_port = 0;
  bool started = false;
  bool stopping = false;
  bool destroyed = false;  // the Server object is gone: no more handler callbacks
  std::atomic<std::size_t> connections{0};
  std::unordered_map<std::string, std::size_t> connections_per_ip;
  std::size_t refusing = 0;  // refused connections still being answered (not in `connections`)
  std::uint64_t next_id = 1;
  std::unordered_map<std::uint64_t, HttpSession*> http_sessions;
  std::unordered_map<std::uint64_t, WsSession*> ws_sessions;  // open WebSockets (after on_ws_open)
  std::vector<std::function<void()>> on_drained;
  std::chrono::steady_clock::time_point last_refusal_log{};

  asio::awaitable<void> accept_loop();
  asio::awaitable<void> refuse(tcp::socket socket, http::status status, ErrorCode code, std::string message);
  void begin_shutdown(std::chrono::milliseconds grace, std::function<void()> done);
  void connection_closed(const std::string& ip);
  void finish_shutdown();
  void force_close_all();
};

void ConnGuard::release() {
  if (auto core = std::move(core_)) core->connection_closed(ip_);
}

}  // namespace detail

namespace {
using detail::ConnGuard;
using detail::Core;

// ---------------------------------------------------------------------------------------------
// WebSocket session
// ---------------------------------------------------------------------------------------------

class WsSession final : public WsConnection, public std::enable_shared_from_this<WsSession> {
 public:
  WsSession(std::shared_ptr<Core> core, beast::tcp_stream&& stream, std::uint64_t id, std::string ip,
            ConnGuard guard)
      : core_(std::move(core)), ws_(std::move(stream)), id_(id), ip_(std::move(ip)), guard_(std::move(guard)) {}

  ~WsSession() override {
    if (registered_) core_->ws_sessions.erase(id_);
  }

  static asio::awaitable<void> run(std::shared_ptr<WsSession> self, http::request<http::string_body> req,
                                   Handler::WsAccept accept);

  bool send(std::shared_ptr<const std::string> frame) override {
    if (!open_ || pending_close_ || !frame) return false;
    queued_bytes_ += frame->size();
    queue_.push_back(std::move(frame));
    if (queued_bytes_ > core_->cfg.max_ws_queue_bytes) {
      spdlog::warn("transport: ws {} ({}) slow consumer: {} bytes queued, closing", id_, ip_, queued_bytes_);
      // Drop everything not yet handed to the socket; the frame in flight must stay alive.
      const std::size_t keep = writing_ ? 1 : 0;
      while (queue_.size() > keep) {
        queued_bytes_ -= queue_.back()->size();
        queue_.pop_back();
      }
      close(1008, "slow consumer");
      return false;
    }
    if (!writing_) do_write();
    return true;
  }

  void close(std::uint16_t code, std::string reason) override {
    if (!open_ || pending_close_) return;
    spdlog::debug("transport: ws {} closing with {} {}", id_, code, reason);
    pending_close_ = make_close_reason(code, reason);
    arm_kill_timer();
    if (!writing_) start_close();  // otherwise after the queued frames are written
  }

  std::uint64_t id() const override { return id_; }
  const std::string& remote_ip() const override { return ip_; }

  // Closes the socket without a close handshake (grace expired, write failure, kill timer).
  void force_close() {
    error_code ec;
    beast::get_lowest_layer(ws_).socket().close(ec);
  }

 private:
  void do_write() {
    if (queue_.empty()) {
      writing_ = false;
      if (pending_close_ && !close_started_) start_close();
      return;
    }
    writing_ = true;
    const std::string& frame = *queue_.front();
    ws_.async_write(asio::buffer(frame.data(), frame.size()),
                    [self = shared_from_this()](error_code ec, std::size_t) {
                      if (!self->queue_.empty()) {
                        self->queued_bytes_ -= self->queue_.front()->size();
                        self->queue_.pop_front();
                      }
                      if (ec) {
                        spdlog::debug("transport: ws {} write failed: {}", self->id_, ec.message());
                        self->writing_ = false;
                        self->queue_.clear();
                        self->queued_bytes_ = 0;
                        self->force_close();  // ends the read loop
                        return;
                      }
                      self->do_write();
                    });
  }

  void start_close() {
    close_started_ = true;
    ws_.async_close(*pending_close_, [self = shared_from_this()](error_code ec) {
      if (ec) spdlog::debug("transport: ws {} close: {}", self->id_, ec.message());
    });
  }

  // A close handshake waits for the peer (and for a write the peer may never drain); after this
  // long the socket is closed regardless.
  void arm_kill_timer() {
    if (kill_timer_) return;
    kill_timer_ = std::make_unique<asio::steady_timer>(ws_.get_executor());
    kill_timer_->expires_after(std::max<std::chrono::steady_clock::duration>(core_->cfg.http_read_timeout,
                                                                              std::chrono::seconds(1)));
    kill_timer_->async_wait([self = shared_from_this()](error_code ec) {
      if (ec) return;
      spdlog::debug("transport: ws {} close handshake timed out", self->id_);
      self->force_close();
    });
  }

  void finish() {
    open_ = false;
    if (registered_) {
      core_->ws_sessions.erase(id_);
      registered_ = false;
    }
    if (kill_timer_) kill_timer_->cancel();
    // A frame handed to an in-flight write stays alive until its completion handler runs.
    while (queue_.size() > (writing_ ? 1u : 0u)) {
      queued_bytes_ -= queue_.back()->size();
      queue_.pop_back();
    }
    force_close();
    buffer_ = beast::flat_buffer{};
    guard_.release();
  }

  std::shared_ptr<Core> core_;
  websocket::stream<WsTcpStream> ws_;
  beast::flat_buffer buffer_;
  std::deque<std::shared_ptr<const std::string>> queue_;
  std::size_t queued_bytes_ = 0;
  std::uint64_t id_;
  std::string ip_;
  ConnGuard guard_;
  std::optional<websocket::close_reason> pending_close_;
  std::unique_ptr<asio::steady_timer> kill_timer_;
  bool open_ = false;  // between on_ws_open and on_ws_close
  bool registered_ = false;
  bool writing_ = false;
  bool close_started_ = false;
};

asio::awaitable<void> WsSession::run(std::shared_ptr<WsSession> self, http::request<http::string_body> req,
                                     Handler::WsAccept accept) {
  Core& core = *self->core_;
  auto& ws = self->ws_;
  // The websocket stream has its own timers; the tcp_stream's must be off.
  beast::get_lowest_layer(ws).expires_never();
  ws.set_option(websocket::permessage_deflate{});  // all disabled: compression costs memory per connection
  // Keep-alive mapping: Beast sends a ping after idle_timeout/2 without received data and drops
  // the connection after idle_timeout. With idle_timeout = 2 * ws_ping_interval the server pings
  // once every ws_ping_interval of silence and closes a peer that stays silent (no pong, nothing)
  // for two intervals. handshake_timeout bounds the opening and the closing handshakes.
  websocket::stream_base::timeout to{};
  to.handshake_timeout = core.cfg.http_read_timeout;
  to.idle_timeout = core.cfg.ws_ping_interval.count() > 0
                        ? std::chrono::steady_clock::duration(2 * core.cfg.ws_ping_interval)
                        : websocket::stream_base::none();
  to.keep_alive_pings = true;
  ws.set_option(to);
  ws.set_option(websocket::stream_base::decorator(
      [](websocket::response_type& res) { res.set(http::field::server, kServerName); }));
  ws.read_message_max(core.cfg.max_ws_message_bytes);
  ws.auto_fragment(false);
  ws.text(true);

  if (auto [ec] = co_await ws.async_accept(req, use_tuple); ec) {
    spdlog::debug("transport: ws {} ({}) handshake failed: {}", self->id_, self->ip_, ec.message());
    self->finish();
    co_return;
  }
  req = {};

  if (!accept.accept) {
    spdlog::debug("transport: ws {} ({}) refused: {} {}", self->id_, self->ip_, accept.close_code,
                  accept.close_reason);
    self->pending_close_ = make_close_reason(accept.close_code, accept.close_reason);
    self->close_started_ = true;
    self->arm_kill_timer();
    auto [ec] = co_await ws.async_close(*self->pending_close_, use_tuple);
    if (ec) spdlog::debug("transport: ws {} close: {}", self->id_, ec.message());
    self->finish();
    co_return;
  }

  self->open_ = true;
  self->registered_ = true;
  core.ws_sessions.emplace(self->id_, self.get());
  spdlog::debug("transport: ws {} ({}) open", self->id_, self->ip_);
  const std::shared_ptr<WsConnection> conn = self;
  if (!core.destroyed) {
    try {
      core.handler.on_ws_open(conn, std::move(accept.state));
    } catch (const std::exception& e) {
      spdlog::error("transport: on_ws_open threw: {}", e.what());
      self->close(1011, "internal error");
    }
  }
  if (core.stopping) self->close(1001, "going away");

  for (;;) {
    auto [ec, n] = co_await ws.async_read(self->buffer_, use_tuple);
    if (ec) {
      if (ec == websocket::error::message_too_big)
        spdlog::debug("transport: ws {} message over {} bytes, closed 1009", self->id_, core.cfg.max_ws_message_bytes);
      else
        spdlog::debug("transport: ws {} read ended: {}", self->id_, ec.message());
      break;
    }
    if (!ws.got_text()) {
      self->buffer_.consume(self->buffer_.size());
      self->close(1003, "binary messages are not supported");
      continue;
    }
    if (!self->pending_close_ && !core.destroyed) {
      const auto data = self->buffer_.cdata();
      const std::string_view text(static_cast<const char*>(data.data()), data.size());
      try {
        core.handler.on_ws_message(conn, text);
      } catch (const std::exception& e) {
        spdlog::error("transport: on_ws_message threw: {}", e.what());
        self->close(1011, "internal error");
      }
    }
    self->buffer_.consume(self->buffer_.size());
    // An idle connection keeps no read buffer (~1.5 KiB each, bench/compare idle); a free and a
    // malloc per message cost far less than the message's syscalls.
    self->buffer_.shrink_to_fit();
  }

  self->finish();
  spdlog::debug("transport: ws {} ({}) closed", self->id_, self->ip_);
  if (!core.destroyed) {
    try {
      core.handler.on_ws_close(conn);
    } catch (const std::exception& e) {
      spdlog::error("transport: on_ws_close threw: {}", e.what());
    }
  }
}

// ---------------------------------------------------------------------------------------------
// HTTP session
// ---------------------------------------------------------------------------------------------

// Where a Responder leaves its answer; the session coroutine waits on the timer.
struct ResponseSlot {
  explicit ResponseSlot(const asio::any_io_executor& ex) : timer(ex) {}
  asio::steady_timer timer;
  std::optional<HttpResponse> response;
  bool answered = false;
};

// Shared by every copy of one Responder. Runs on the I/O thread (dispatch is inline there); a
// Responder dropped without being called answers 500, so the connection never hangs.
class ResponderState {
 public:
  ResponderState(std::shared_ptr<ResponseSlot> slot, asio::any_io_executor ex)
      : slot_(std::move(slot)), ex_(std::move(ex)) {}
  ResponderState(const ResponderState&) = delete;
  ResponderState& operator=(const ResponderState&) = delete;
  ~ResponderState() {
    if (called_.load(std::memory_order_relaxed)) return;
    asio::dispatch(ex_, [slot = slot_] {
      if (slot->answered) return;
      spdlog::error("transport: HTTP handler dropped its responder without answering");
      slot->answered = true;
      slot->response = HttpResponse{500, "application/json", error_json("internal", "no response"), {}};
      slot->timer.cancel();
    });
  }
  void respond(HttpResponse r) {
    called_.store(true, std::memory_order_relaxed);
    asio::dispatch(ex_, [slot = slot_, r = std::move(r)]() mutable {
      if (slot->answered) {
        spdlog::warn("transport: HTTP responder called more than once; ignored");
        return;
      }
      slot->answered = true;
      slot->response = std::move(r);
      slot->timer.cancel();
    });
  }

 private:
  std::shared_ptr<ResponseSlot> slot_;
  asio::any_io_executor ex_;
  std::atomic<bool> called_{false};
};

class HttpSession : public std::enable_shared_from_this<HttpSession> {
 public:
  HttpSession(std::shared_ptr<Core> core, tcp::socket socket, std::uint64_t id, std::string ip, ConnGuard guard)
      : core_(std::move(core)), stream_(std::move(socket)), id_(id), ip_(std::move(ip)), guard_(std::move(guard)) {
    core_->http_sessions.emplace(id_, this);
  }
  ~HttpSession() { unregister(); }

  static asio::awaitable<void> run(std::shared_ptr<HttpSession> self);

  // Shutdown: a connection waiting for its next request is closed now; one with a request in
  // flight finishes it (with Connection: close).
  void close_if_idle() {
    if (idle_) stream_.close();
  }
  void force_close() {
    stream_.close();
    if (slot_) slot_->timer.cancel();
  }

 private:
  void unregister() {
    if (registered_) {
      core_->http_sessions.erase(id_);
      registered_ = false;
    }
  }
  asio::awaitable<void> write_error_and_close(http::status status, std::string_view code, std::string message,
                                              unsigned version);
  asio::awaitable<void> linger_close();
  asio::awaitable<void> upgrade(http::request<http::string_body> req);
  friend class RequestDeadline;

  std::shared_ptr<Core> core_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::uint64_t id_;
  std::string ip_;
  ConnGuard guard_;
  std::shared_ptr<ResponseSlot> slot_;
  bool idle_ = false;
  bool registered_ = true;
};

// Bounds the read of one request: on expiry it cancels the pending read (the socket stays open
// for the 408 answer). Cancelled when the request is read.
class RequestDeadline {
 public:
  RequestDeadline(const std::shared_ptr<HttpSession>& session, std::chrono::milliseconds timeout)
      : timer_(std::make_shared<asio::steady_timer>(session->stream_.get_executor(), timeout)),
        expired_(std::make_shared<bool>(false)) {
    timer_->async_wait([weak = std::weak_ptr<HttpSession>(session), expired = expired_](error_code ec) {
      if (ec) return;
      *expired = true;
      if (auto s = weak.lock()) {
        error_code ignored;
        s->stream_.socket().cancel(ignored);
      }
    });
  }
  ~RequestDeadline() { cancel(); }
  RequestDeadline(const RequestDeadline&) = delete;
  RequestDeadline& operator=(const RequestDeadline&) = delete;
  bool expired() const { return *expired_; }
  void cancel() { timer_->cancel(); }

 private:
  std::shared_ptr<asio::steady_timer> timer_;
  std::shared_ptr<bool> expired_;
};

// presd never decompresses a request body (no compression bombs): any Content-Encoding but
// identity, and any Transfer-Encoding but chunked, is refused before the body is read.
bool accepted_encoding(const http::request_header<>& h) {
  const auto ce = h[http::field::content_encoding];
  if (!ce.empty() && !beast::iequals(ce, "identity")) return false;
  const auto te = h[http::field::transfer_encoding];
  return te.empty() || beast::iequals(te, "chunked");
}

asio::awaitable<void> HttpSession::linger_close() {
  error_code ec;
  stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
  if (ec) co_return;
  stream_.expires_after(kLingerTime);
  std::size_t drained = 0;
  std::array<char, 1024> sink{};
  while (drained < kLingerMaxBytes) {
    auto [rec, n] = co_await stream_.async_read_some(asio::buffer(sink), use_tuple);
    if (rec) break;
    drained += n;
  }
  stream_.close();
}

asio::awaitable<void> HttpSession::write_error_and_close(http::status status, std::string_view code,
                                                         std::string message, unsigned version) {
  http::response<http::string_body> res{status, version ? version : 11};
  res.set(http::field::server, kServerName);
  res.set(http::field::content_type, "application/json");
  res.body() = error_json(code, message);
  res.keep_alive(false);
  res.prepare_payload();
  stream_.expires_after(core_->cfg.http_read_timeout);
  auto [ec, n] = co_await http::async_write(stream_, res, use_tuple);
  if (ec) {
    stream_.close();
    co_return;
  }
  co_await linger_close();
}

asio::awaitable<void> HttpSession::upgrade(http::request<http::string_body> req) {
  Core& core = *core_;
  HttpRequest hr = to_request(req, ip_);
  Handler::WsAccept accept;
  if (core.destroyed) {
    accept.accept = false;
    accept.close_code = 1001;
    accept.close_reason = "going away";
  } else {
    try {
      accept = core.handler.on_ws_upgrade(hr);
    } catch (const std::exception& e) {
      spdlog::error("transport: on_ws_upgrade threw: {}", e.what());
      accept = Handler::WsAccept{false, 1011, "internal error", nullptr};
    }
  }
  if (accept.accept && core.stopping) accept = Handler::WsAccept{false, 1001, "going away", nullptr};
  unregister();
  // The WebSocket runs in its own coroutine so that this session (and its buffer) is freed.
  auto ws = std::make_shared<WsSession>(core_, std::move(stream_), id_, ip_, std::move(guard_));
  asio::co_spawn(core.io, WsSession::run(std::move(ws), std::move(req), std::move(accept)),
                 [](std::exception_ptr e) { log_exception(e, "websocket session"); });
  co_return;
}

asio::awaitable<void> HttpSession::run(std::shared_ptr<HttpSession> self) {
  Core& core = *self->core_;
  const ServerConfig& cfg = core.cfg;
  auto& stream = self->stream_;
  auto& buffer = self->buffer_;
  bool first = true;

  for (;;) {
    // Wait for the first byte of the next request: http_read_timeout for a new connection,
    // http_idle_timeout between keep-alive requests.
    if (buffer.size() == 0) {
      if (core.stopping && !first) break;
      self->idle_ = true;
      stream.expires_after(first ? cfg.http_read_timeout : cfg.http_idle_timeout);
      auto [ec, n] = co_await stream.async_read_some(buffer.prepare(512), use_tuple);
      self->idle_ = false;
      if (ec) {
        spdlog::debug("transport: http {} ({}) {}: {}", self->id_, self->ip_, first ? "no request" : "idle end",
                      ec.message());
        break;
      }
      buffer.commit(n);
    }
    first = false;

    // The whole request (header and body) must arrive within http_read_timeout (slowloris).
    // A deadline timer cancels the read instead of the stream's own timeout, which would close
    // the socket: the client still gets a coded 408.
    stream.expires_never();
    RequestDeadline deadline(self, cfg.http_read_timeout);
    http::request_parser<http::string_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(std::min<std::size_t>(cfg.max_header_bytes, UINT32_MAX)));
    parser.body_limit(cfg.max_body_bytes);
    auto [ec, n] = co_await http::async_read_header(stream, buffer, parser, use_tuple);
    if (!ec && !parser.is_done() && !accepted_encoding(parser.get())) {
      spdlog::debug("transport: http {} ({}) body with a content or transfer coding", self->id_, self->ip_);
      co_await self->write_error_and_close(http::status::unsupported_media_type, "unsupported_encoding",
                                           "compressed or encoded request bodies are not accepted",
                                           parser.get().version());
      break;
    }
    if (!ec && !parser.is_done()) {
      auto expect = parser.get()[http::field::expect];
      if (beast::iequals(expect, "100-continue")) {
        static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
        auto [wec, wn] = co_await asio::async_write(stream, asio::buffer(kContinue), use_tuple);
        ec = wec;
      }
      if (!ec) {
        auto [rec, rn] = co_await http::async_read(stream, buffer, parser, use_tuple);
        ec = rec;
      }
    }
    const bool timed_out = deadline.expired();
    deadline.cancel();
    if (ec) {
      const unsigned version = parser.is_header_done() ? parser.get().version() : 11;
      if (timed_out) {
        spdlog::debug("transport: http {} ({}) request not complete within {} ms", self->id_, self->ip_,
                      cfg.http_read_timeout.count());
        co_await self->write_error_and_close(http::status::request_timeout, "request_timeout",
                                             "request not complete within the read timeout", version);
      } else if (ec == http::error::body_limit) {
        spdlog::debug("transport: http {} ({}) body over {} bytes", self->id_, self->ip_, cfg.max_body_bytes);
        co_await self->write_error_and_close(http::status::payload_too_large, "payload_too_large",
                                             "request body exceeds " + std::to_string(cfg.max_body_bytes) + " bytes",
                                             version);
      } else if (ec == http::error::header_limit) {
        spdlog::debug("transport: http {} ({}) header over {} bytes", self->id_, self->ip_, cfg.max_header_bytes);
        co_await self->write_error_and_close(http::status::request_header_fields_too_large, "header_too_large",
                                             "request header exceeds " + std::to_string(cfg.max_header_bytes) + " bytes",
                                             version);
      } else if (ec == http::error::end_of_stream || ec == http::error::partial_message) {
        spdlog::debug("transport: http {} ({}) closed mid-request", self->id_, self->ip_);
      } else if (ec.category() == http::make_error_code(http::error::bad_method).category()) {
        spdlog::debug("transport: http {} ({}) malformed request: {}", self->id_, self->ip_, ec.message());
        co_await self->write_error_and_close(http::status::bad_request, "bad_request", "malformed HTTP request",
                                             version);
      } else {
        spdlog::debug("transport: http {} ({}) read failed: {}", self->id_, self->ip_, ec.message());
      }
      break;
    }

    http::request<http::string_body> req = parser.release();
    if (websocket::is_upgrade(req)) {
      co_await self->upgrade(std::move(req));
      co_return;
    }

    const unsigned version = req.version();
    const bool client_keep_alive = req.keep_alive();
    auto slot = std::make_shared<ResponseSlot>(stream.get_executor());
    self->slot_ = slot;
    {
      auto state = std::make_shared<ResponderState>(slot, stream.get_executor());
      Responder respond = [state](HttpResponse r) { state->respond(std::move(r)); };
      HttpRequest hr = to_request(req, self->ip_);
      req = {};
      if (core.destroyed) {
        respond(HttpResponse{503, "application/json", error_json("unavailable", "server stopping"), {}});
      } else {
        try {
          core.handler.on_http(std::move(hr), std::move(respond));
        } catch (const std::exception& e) {
          spdlog::error("transport: on_http threw: {}", e.what());
          if (!slot->answered) {
            slot->answered = true;
            slot->response = HttpResponse{500, "application/json", error_json("internal", "internal error"), {}};
          }
        }
      }
    }  // our copies of the responder are gone; a dropped responder answers 500
    if (!slot->response) {
      slot->timer.expires_at(std::chrono::steady_clock::time_point::max());
      co_await slot->timer.async_wait(use_tuple);
    }
    self->slot_.reset();
    if (!slot->response) break;  // force-closed while waiting

    HttpResponse& out = *slot->response;
    const unsigned status = out.status >= 100 && out.status <= 999 ? static_cast<unsigned>(out.status) : 500u;
    http::response<http::string_body> res{static_cast<http::status>(status), version};
    res.set(http::field::server, kServerName);
    if (!out.content_type.empty()) res.set(http::field::content_type, out.content_type);
    for (const auto& [name, value] : out.headers) {
      if (name.empty() || name.find_first_of("\r\n:") != std::string::npos ||
          value.find_first_of("\r\n") != std::string::npos) {
        spdlog::warn("transport: dropped an invalid response header");
        continue;
      }
      res.set(name, value);
    }
    res.body() = std::move(out.body);
    const bool keep_alive = client_keep_alive && !core.stopping;
    res.keep_alive(keep_alive);
    res.prepare_payload();
    stream.expires_after(cfg.http_read_timeout);
    auto [wec, wn] = co_await http::async_write(stream, res, use_tuple);
    if (wec) {
      spdlog::debug("transport: http {} ({}) write failed: {}", self->id_, self->ip_, wec.message());
      break;
    }
    if (!keep_alive) {
      error_code sec;
      stream.socket().shutdown(tcp::socket::shutdown_send, sec);
      break;
    }
    // Keep an idle keep-alive connection small.
    if (buffer.size() == 0 && buffer.capacity() > 4096) buffer.shrink_to_fit();
  }
  stream.close();
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Core
// ---------------------------------------------------------------------------------------------

namespace detail {

asio::awaitable<void> Core::accept_loop() {
  auto self = shared_from_this();
  for (;;) {
    auto [ec, socket] = co_await acceptor.async_accept(use_tuple);
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor.is_open() || stopping) break;
      spdlog::warn("transport: accept failed: {}", ec.message());
      // Out of descriptors or similar: back off briefly instead of spinning.
      asio::steady_timer backoff(io, std::chrono::milliseconds(50));
      co_await backoff.async_wait(use_tuple);
      continue;
    }
    if (stopping) break;
    error_code opt_ec;
    socket.set_option(tcp::no_delay(true), opt_ec);
    tcp::endpoint remote = socket.remote_endpoint(opt_ec);
    if (opt_ec) {  // already disconnected
      socket.close(opt_ec);
      continue;
    }
    std::string ip = ip_string(remote);
    // Over a cap the connection is answered with a coded error at once, without reading the
    // request: a flood costs one small write per connection and nothing stays open.
    const bool server_full = connections.load() >= cfg.max_connections;
    const bool ip_full = cfg.max_connections_per_ip > 0 && connections_per_ip[ip] >= cfg.max_connections_per_ip;
    if (server_full || ip_full) {
      const auto now = std::chrono::steady_clock::now();
      if (now - last_refusal_log > std::chrono::seconds(1)) {
        last_refusal_log = now;
        if (server_full)
          spdlog::warn("transport: max_connections ({}) reached, refusing connections", cfg.max_connections);
        else
          spdlog::warn("transport: {} holds {} connections, refusing more", ip, cfg.max_connections_per_ip);
      }
      if (connections_per_ip[ip] == 0) connections_per_ip.erase(ip);
      if (refusing >= kMaxRefusing) {  // refusals themselves are bounded: beyond, just close
        socket.close(opt_ec);
        continue;
      }
      if (server_full)
        asio::co_spawn(io, refuse(std::move(socket), http::status::service_unavailable, ErrorCode::unavailable,
                                  "server at its connection limit"),
                       [](std::exception_ptr e) { log_exception(e, "refusal"); });
      else
        asio::co_spawn(io, refuse(std::move(socket), http::status::too_many_requests, ErrorCode::too_many_connections,
                                  "too many connections from " + ip),
                       [](std::exception_ptr e) { log_exception(e, "refusal"); });
      continue;
    }
    ++connections;
    ++connections_per_ip[ip];
    const std::uint64_t id = next_id++;
    spdlog::debug("transport: connection {} from {}", id, ip);
    ConnGuard guard(self, ip);
    auto session = std::make_shared<HttpSession>(self, std::move(socket), id, std::move(ip), std::move(guard));
    asio::co_spawn(io, HttpSession::run(std::move(session)),
                   [](std::exception_ptr e) { log_exception(e, "http session"); });
  }
  spdlog::debug("transport: accept loop ended");
}

asio::awaitable<void> Core::refuse(tcp::socket socket, http::status status, ErrorCode code, std::string message) {
  auto self = shared_from_this();
  ++refusing;
  beast::tcp_stream stream(std::move(socket));
  http::response<http::string_body> res{status, 11};
  res.set(http::field::server, kServerName);
  res.set(http::field::content_type, "application/json");
  res.body() = error_json(to_string(code), message);
  res.keep_alive(false);
  res.prepare_payload();
  stream.expires_after(kLingerTime);
  auto [ec, n] = co_await http::async_write(stream, res, use_tuple);
  if (!ec) {
    // As linger_close: read and drop the request the client sent meanwhile, so that closing does
    // not answer it with a RST that could destroy the response before the client reads it.
    stream.socket().shutdown(tcp::socket::shutdown_send, ec);
    std::array<char, 1024> sink{};
    for (std::size_t drained = 0; !ec && drained < kLingerMaxBytes; drained += n)
      std::tie(ec, n) = co_await stream.async_read_some(asio::buffer(sink), use_tuple);
  }
  stream.close();
  --refusing;
}

void Core::connection_closed(const std::string& ip) {
  --connections;
  if (auto it = connections_per_ip.find(ip); it != connections_per_ip.end() && --it->second == 0)
    connections_per_ip.erase(it);
  if (stopping && connections.load() == 0 && !on_drained.empty()) finish_shutdown();
}

void Core::finish_shutdown() {
  auto callbacks = std::move(on_drained);
  on_drained.clear();
  grace_timer.cancel();
  if (destroyed) return;
  spdlog::info("transport: shutdown complete ({} connections left)", connections.load());
  // Posted: connection_closed may run inside a session's teardown.
  for (auto& cb : callbacks)
    if (cb) asio::post(io, std::move(cb));
}

void Core::force_close_all() {
  std::vector<std::shared_ptr<WsSession>> ws;
  for (auto& [id, s] : ws_sessions) ws.push_back(s->shared_from_this());
  std::vector<std::shared_ptr<HttpSession>> hs;
  for (auto& [id, s] : http_sessions) hs.push_back(s->shared_from_this());
  for (auto& s : ws) s->force_close();
  for (auto& s : hs) s->force_close();
}

void Core::begin_shutdown(std::chrono::milliseconds grace, std::function<void()> done) {
  on_drained.push_back(std::move(done));
  if (stopping) return;  // a second call only adds its callback
  stopping = true;
  error_code ec;
  acceptor.close(ec);
  spdlog::info("transport: shutting down, {} connections ({} WebSockets), grace {} ms", connections.load(),
               ws_sessions.size(), grace.count());

  std::vector<std::shared_ptr<WsSession>> ws;
  for (auto& [id, s] : ws_sessions) ws.push_back(s->shared_from_this());
  std::vector<std::shared_ptr<HttpSession>> hs;
  for (auto& [id, s] : http_sessions) hs.push_back(s->shared_from_this());
  for (auto& s : ws) s->close(1001, "going away");
  for (auto& s : hs) s->close_if_idle();

  if (connections.load() == 0) {
    finish_shutdown();
    return;
  }
  grace_timer.expires_after(grace);
  grace_timer.async_wait([self = shared_from_this()](error_code ec) {
    if (ec || self->on_drained.empty()) return;
    spdlog::warn("transport: shutdown grace expired with {} connections; closing them", self->connections.load());
    self->force_close_all();
    self->finish_shutdown();
  });
}

}  // namespace detail

// ---------------------------------------------------------------------------------------------
// Server
// ---------------------------------------------------------------------------------------------

struct Server::Impl : detail::Core {
  using detail::Core::Core;
};

Server::Server(boost::asio::io_context& io, ServerConfig config, Handler& handler)
    : impl_(std::make_shared<Impl>(io, std::move(config), handler)) {}

Server::~Server() {
  impl_->destroyed = true;
  impl_->on_drained.clear();
  error_code ec;
  impl_->acceptor.close(ec);
  impl_->grace_timer.cancel();
}

void Server::start() {
  Impl& core = *impl_;
  if (core.started) return;
  error_code ec;
  asio::ip::address address = asio::ip::make_address(core.cfg.bind_address, ec);
  tcp::endpoint endpoint;
  if (ec) {
    tcp::resolver resolver(core.io);
    auto results = resolver.resolve(core.cfg.bind_address, std::to_string(core.cfg.port), ec);
    if (ec || results.empty())
      throw std::system_error(ec ? std::error_code(ec) : std::make_error_code(std::errc::invalid_argument),
                              "resolve " + core.cfg.bind_address);
    endpoint = results.begin()->endpoint();
  } else {
    endpoint = tcp::endpoint(address, core.cfg.port);
  }
  const std::string where = core.cfg.bind_address + ":" + std::to_string(core.cfg.port);
  core.acceptor.open(endpoint.protocol(), ec);
  if (ec) throw std::system_error(std::error_code(ec), "open " + where);
  core.acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (ec) throw std::system_error(std::error_code(ec), "SO_REUSEADDR " + where);
  core.acceptor.bind(endpoint, ec);
  if (ec) {
    error_code ignored;
    core.acceptor.close(ignored);
    throw std::system_error(std::error_code(ec), "bind " + where);
  }
  core.acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    error_code ignored;
    core.acceptor.close(ignored);
    throw std::system_error(std::error_code(ec), "listen " + where);
  }
  core.bound_port = core.acceptor.local_endpoint(ec).port();
  core.started = true;
  spdlog::debug("transport: listening on {}:{}", endpoint.address().to_string(), core.bound_port);
  std::shared_ptr<detail::Core> sp = impl_;
  asio::co_spawn(core.io, sp->accept_loop(), [](std::exception_ptr e) { log_exception(e, "accept loop"); });
}

std::uint16_t Server::port() const { return impl_->bound_port; }

void Server::shutdown(std::chrono::milliseconds grace, std::function<void()> done) {
  std::shared_ptr<detail::Core> sp = impl_;
  asio::dispatch(impl_->io, [sp, grace, done = std::move(done)]() mutable { sp->begin_shutdown(grace, std::move(done)); });
}

std::size_t Server::connection_count() const { return impl_->connections.load(); }

}  // namespace presd::transport
