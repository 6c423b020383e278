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
//   WsSession     implements WsConnection on the bare socket after Beast's handshake: readiness
//                 from the FdPoller (fd_poller.h), reads into a shared scratch buffer, a writer
//                 over a queue of shared frames (the same buffer object is shared by every
//                 recipient), close with a code, slow-consumer cut-off.
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

#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <deque>
#include <optional>
#include <span>
#include <utility>
#include <system_error>
#include <unordered_map>
#include <vector>

#include "common/ascii.h"
#include "common/error_code.h"
#include "transport/detail_url.h"
#include "transport/fd_poller.h"
#include "transport/http_plain.h"
#include "transport/keep_alive_table.h"
#include "transport/ws_codec.h"

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
// Read buffer of an HTTP connection while it has requests to read.
constexpr std::size_t kHttpBusyBufferBytes = 16 * 1024;
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

// r.host: the Host header without port, lowercase ("[::1]:8080" -> "[::1]"), in place: the
// session's reused request keeps the string's capacity.
void set_host(HttpRequest& r, std::string_view host) {
  std::string_view h = host;
  if (!h.empty() && h.front() == '[') {
    const auto close = h.find(']');
    if (close != std::string_view::npos) h = h.substr(0, close + 1);
  } else {
    const auto colon = h.rfind(':');
    if (colon != std::string_view::npos) h = h.substr(0, colon);
  }
  r.host.assign(h);
  ascii_lowercase_in_place(r.host);
}

// Empties a reused request; the strings keep their capacity.
void clear_request(HttpRequest& r) {
  for (std::string* s : {&r.method, &r.target, &r.path, &r.query, &r.host, &r.authorization, &r.content_type, &r.body,
                         &r.remote_ip})
    s->clear();
}

void set_target(HttpRequest& r, std::string_view target) {
  r.target.assign(target);
  const auto q = target.find('?');
  r.path = detail::percent_decode(target.substr(0, q), false);
  if (q != std::string_view::npos) r.query.assign(target.substr(q + 1));
}

// Fills an empty HttpRequest (clear_request: the session reuses one).
void to_request(http::request<http::string_body>& req, const std::string& remote_ip, HttpRequest& r) {
  r.method.assign(req.method_string());
  set_target(r, req.target());
  // One pass over the fields, taking the first of each as req[field] would (three lookups in
  // Beast's case-insensitive field tree cost more).
  bool host = false, authorization = false, content_type = false;
  for (const auto& f : req) {
    if (f.name() == http::field::host && !std::exchange(host, true)) {
      set_host(r, f.value());
    } else if (f.name() == http::field::authorization && !std::exchange(authorization, true)) {
      r.authorization.assign(f.value());
    } else if (f.name() == http::field::content_type && !std::exchange(content_type, true)) {
      r.content_type.assign(f.value());
    }
  }
  r.body = std::move(req.body());
  r.remote_ip = remote_ip;
}

// The same from a plain request scanned in the read buffer (http_plain.h): its fields appear
// at most once, so "the first of each" is the one there is.
void to_request(const PlainRequest& p, const std::string& remote_ip, HttpRequest& r) {
  r.method.assign(p.method);
  set_target(r, p.target);
  set_host(r, p.host);
  r.authorization.assign(p.authorization);
  r.content_type.assign(p.content_type);
  r.body.assign(p.body);
  r.remote_ip = remote_ip;
}

// Only the teardown after a closing handshake reads this much more before closing the socket.
constexpr std::chrono::milliseconds kTeardownTime{2000};
constexpr std::size_t kTeardownMaxBytes = 4 << 20;
// One read syscall fills at most this much; a connection yields to others after kReadBurst reads.
constexpr std::size_t kReadScratchBytes = 64 * 1024;
constexpr int kReadBurst = 16;
// One gather write hands the kernel at most this many buffers.
constexpr std::size_t kWriteBuffers = 64;
// Connections written per flush handler before the I/O thread runs other ready work (a PRES
// verified meanwhile joins the queues not yet written). Same-time A/B on the fan-out scenario
// (bench/ab MODE=fanout, docs/performance.md): 16 gave 1.07-1.09x the frames per CPU-second of
// 64, and 32 1.04-1.06x; 128 0.91-0.93x, 256 0.79-0.80x; 8 and 4 within 2% of 16.
constexpr std::size_t kFlushChunk = 16;

// Every WebSocket's reads land here first (the reader keeps only an unfinished message), so an
// idle connection holds no read buffer. One I/O thread, so one buffer.
std::uint8_t* read_scratch() {
  static thread_local std::unique_ptr<std::uint8_t[]> buf(new std::uint8_t[kReadScratchBytes]);
  return buf.get();
}

const std::shared_ptr<const std::string>& empty_payload() {
  static const auto empty = std::make_shared<const std::string>();
  return empty;
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
      : io(io_),
        cfg(std::move(cfg_)),
        handler(handler_),
        acceptor(io_),
        grace_timer(io_),
        poller(FdPoller::create(io_)),
        keep_alive_timer(io_) {}

  asio::io_context& io;
  const ServerConfig cfg;
  Handler& handler;
  tcp::acceptor acceptor;
  asio::steady_timer grace_timer;
  // WebSockets after the handshake; holds them until they finish (or ~Server closes it).
  std::shared_ptr<FdPoller> poller;
  std::uint16_t bound_port = 0;
  bool started = false;
  bool stopping = false;
  bool destroyed = false;  // the Server object is gone: no more handler callbacks
  std::atomic<std::size_t> connections{0};
  // Written by the I/O thread only (load + store, no locked add), read by stats() anywhere.
  std::atomic<std::uint64_t> ws_frames_sent{0}, ws_write_calls{0}, ws_bytes_sent{0};
  std::atomic<std::uint64_t> http_answers{0}, http_write_calls{0};
  std::atomic<std::uint64_t> ws_keepalive_pings{0}, ws_silent_drops{0};
  static void add(std::atomic<std::uint64_t>& c, std::uint64_t n) {
    c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  std::unordered_map<std::string, std::size_t> connections_per_ip;
  std::size_t refusing = 0;  // refused connections still being answered (not in `connections`)
  std::uint64_t next_id = 1;
  std::unordered_map<std::uint64_t, HttpSession*> http_sessions;
  KeepAliveTable<WsSession> ws_sessions;  // open WebSockets (after on_ws_open), last heard from
  std::vector<std::shared_ptr<WsSession>> dirty;  // WebSockets with frames queued since the last flush
  std::vector<std::shared_ptr<WsSession>> flushing;  // the round being written, from flush_next on
  std::size_t flush_next = 0;
  bool flush_posted = false;
  asio::steady_timer keep_alive_timer;
  std::vector<std::function<void()>> on_drained;
  std::chrono::steady_clock::time_point last_refusal_log{};

  asio::awaitable<void> accept_loop();
  asio::awaitable<void> refuse(tcp::socket socket, http::status status, ErrorCode code, std::string message);
  void begin_shutdown(std::chrono::milliseconds grace, std::function<void()> done);
  void connection_closed(const std::string& ip);
  void finish_shutdown();
  void force_close_all();
  void flush_dirty();
  void start_keep_alive();
  void keep_alive_sweep();
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

// After the opening handshake (Beast's) presd owns the socket and the framing: readiness comes from
// the FdPoller (edge-triggered, registered once), reads land in the shared scratch buffer
// (WsFrameReader keeps only an unfinished message); writes gather
// every queued frame, the shared payload buffers and a header per frame, into as few sendmsg
// calls as the kernel takes. Replies to a batch of pipelined frames go out together, and a
// broadcast queued to many connections is flushed once per turn of the event loop
// (Core::flush_dirty), so frames that arrive together leave together.
class WsSession final : public WsConnection,
                        private WsFrameSink,
                        public FdPoller::Target,
                        public std::enable_shared_from_this<WsSession> {
 public:
  // Takes the socket's descriptor out of Asio (readiness comes from core->poller).
  WsSession(std::shared_ptr<Core> core, int fd, std::uint64_t id, std::string ip, ConnGuard guard);
  ~WsSession() override;

  // The opening handshake (Beast), then start() on the bare socket.
  static asio::awaitable<void> handshake(std::shared_ptr<Core> core, beast::tcp_stream stream, std::uint64_t id,
                                         std::string ip, ConnGuard guard, http::request<http::string_body> req,
                                         Handler::WsAccept accept);

  bool send(std::shared_ptr<const std::string> frame) override;
  void close(std::uint16_t code, std::string reason) override;
  std::uint64_t id() const override { return id_; }
  const std::string& remote_ip() const override { return ip_; }

  // Closes the socket without a closing handshake (grace expired, dead peer, kill timer).
  void force_close() { finish(); }
  // Called by the keep-alive sweep for a connection silent for one interval; false if it was not
  // pinged. Closing connections are neither pinged nor dropped: their kill timer ends them.
  bool ping();
  bool is_open() const { return state_ == State::open; }
  void flush();

  std::uint32_t keep_alive_slot = KeepAliveTable<WsSession>::kNoSlot;  // see Core::ws_sessions

  bool flush_scheduled = false;  // in Core::dirty

 private:
  enum class State : std::uint8_t {
    open,      // messages flow
    closing,   // our close frame is queued or sent; waiting for the peer's
    draining,  // handshake over: shutdown(send) done, reading to EOF before closing the socket
    done,      // socket closed
  };
  struct Outgoing {
    std::shared_ptr<const std::string> payload;  // shared by every recipient of a broadcast
    WsFrameHeader header;
  };

  void start(Handler::WsAccept accept);
  void on_ready(std::uint32_t events) override;  // FdPoller::Target
  void on_readable();
  void enqueue(WsOpcode opcode, std::shared_ptr<const std::string> payload);
  void schedule_flush();
  void consume_written(std::size_t n);
  void send_close(std::uint16_t code, std::string_view reason);
  void begin_teardown();
  void arm_kill_timer(std::chrono::steady_clock::duration after);
  void finish();

  // WsFrameSink
  void on_ws_text(std::string_view message) override;
  void on_ws_ping(std::string_view payload) override;
  void on_ws_pong() override {}
  void on_ws_close(std::uint16_t code) override;

  std::shared_ptr<Core> core_;
  int fd_;  // non-blocking; closed by finish() or the destructor
  FdPoller::Key poll_key_ = 0;
  bool polled_ = false;  // registered with core_->poller
  WsFrameReader reader_;
  std::vector<Outgoing> queue_;  // [head_, end) not yet fully written
  std::size_t head_ = 0;
  std::size_t front_written_ = 0;  // bytes of queue_[head_] already written
  std::size_t queued_bytes_ = 0;   // payload bytes in the queue
  std::uint64_t id_;
  std::string ip_;
  ConnGuard guard_;
  std::unique_ptr<asio::steady_timer> kill_timer_;
  std::size_t drained_ = 0;
  State state_ = State::open;
  bool open_ = false;        // between on_ws_open and on_ws_close
  bool waiting_writable_ = false;
  bool in_read_batch_ = false;  // replies are flushed when the batch ends
  bool teardown_after_flush_ = false;
};

WsSession::WsSession(std::shared_ptr<Core> core, int fd, std::uint64_t id, std::string ip, ConnGuard guard)
    : core_(std::move(core)),
      fd_(fd),
      reader_(core_->cfg.max_ws_message_bytes),
      id_(id),
      ip_(std::move(ip)),
      guard_(std::move(guard)) {}

// Without finish(): the poller let go of it (~Server) or it never started. Closing the descriptor
// also takes it out of the epoll set.
WsSession::~WsSession() {
  core_->ws_sessions.remove(this);
  if (fd_ >= 0) ::close(fd_);
}

asio::awaitable<void> WsSession::handshake(std::shared_ptr<Core> core, beast::tcp_stream stream, std::uint64_t id,
                                           std::string ip, ConnGuard guard, http::request<http::string_body> req,
                                           Handler::WsAccept accept) {
  websocket::stream<beast::tcp_stream> ws(std::move(stream));
  beast::get_lowest_layer(ws).expires_never();
  ws.set_option(websocket::permessage_deflate{});  // all disabled: no compression is negotiated
  websocket::stream_base::timeout to{};
  to.handshake_timeout = core->cfg.http_read_timeout;
  to.idle_timeout = websocket::stream_base::none();
  to.keep_alive_pings = false;
  ws.set_option(to);
  ws.set_option(websocket::stream_base::decorator(
      [](websocket::response_type& res) { res.set(http::field::server, kServerName); }));
  if (auto [ec] = co_await ws.async_accept(req, use_tuple); ec) {
    spdlog::debug("transport: ws {} ({}) handshake failed: {}", id, ip, ec.message());
    co_return;  // the guard releases the connection
  }
  tcp::socket socket = beast::get_lowest_layer(ws).release_socket();
  error_code ec;
  socket.non_blocking(true, ec);
  // Out of Asio's reactor: core->poller watches it from here.
  const int fd = ec ? -1 : socket.release(ec);
  if (ec) {
    spdlog::warn("transport: ws {} ({}) could not take the socket: {}", id, ip, ec.message());
    co_return;
  }
  auto self = std::make_shared<WsSession>(core, fd, id, std::move(ip), std::move(guard));
  self->start(std::move(accept));
}

void WsSession::start(Handler::WsAccept accept) {
  Core& core = *core_;
  std::error_code ec;
  poll_key_ = core.poller->add(fd_, shared_from_this(), ec);
  if (ec) {
    spdlog::warn("transport: ws {} ({}) cannot be watched: {}", id_, ip_, ec.message());
    return finish();
  }
  polled_ = true;
  if (accept.accept && core.stopping) accept = Handler::WsAccept{false, 1001, "going away", nullptr};
  if (!accept.accept) {
    spdlog::debug("transport: ws {} ({}) refused: {} {}", id_, ip_, accept.close_code, accept.close_reason);
    send_close(accept.close_code, accept.close_reason);
    return;
  }
  open_ = true;
  core.ws_sessions.add(this, std::chrono::steady_clock::now());
  spdlog::debug("transport: ws {} ({}) open", id_, ip_);
  if (!core.destroyed) {
    try {
      core.handler.on_ws_open(shared_from_this(), std::move(accept.state));
    } catch (const std::exception& e) {
      spdlog::error("transport: on_ws_open threw: {}", e.what());
      close(1011, "internal error");
    }
  }
  if (core.stopping) close(1001, "going away");
}

bool WsSession::send(std::shared_ptr<const std::string> frame) {
  if (state_ != State::open || !open_ || !frame) return false;
  if (queued_bytes_ + frame->size() > core_->cfg.max_ws_queue_bytes) {
    spdlog::warn("transport: ws {} ({}) slow consumer: {} bytes queued, closing", id_, ip_,
                 queued_bytes_ + frame->size());
    // Drop what the peer has not started to receive; a partly written frame must be completed.
    const std::size_t keep = head_ + (front_written_ > 0 ? 1 : 0);
    for (std::size_t i = keep; i < queue_.size(); ++i) queued_bytes_ -= queue_[i].payload->size();
    queue_.resize(std::max(keep, head_));
    close(1008, "slow consumer");
    return false;
  }
  enqueue(WsOpcode::text, std::move(frame));
  return true;
}

void WsSession::close(std::uint16_t code, std::string reason) {
  if (state_ != State::open) return;
  spdlog::debug("transport: ws {} closing with {} {}", id_, code, reason);
  send_close(code, reason);
}

// Our close frame: nothing is sent after it; the socket closes when the peer answers (or the
// kill timer fires).
void WsSession::send_close(std::uint16_t code, std::string_view reason) {
  if (!sendable_close_code(code)) {
    spdlog::warn("transport: close code {} cannot be sent, using 1011", code);
    code = 1011;
  }
  enqueue(WsOpcode::close, std::make_shared<const std::string>(ws_close_payload(code, reason)));
  state_ = State::closing;
  arm_kill_timer(std::max<std::chrono::steady_clock::duration>(core_->cfg.http_read_timeout, std::chrono::seconds(1)));
}

void WsSession::enqueue(WsOpcode opcode, std::shared_ptr<const std::string> payload) {
  const WsFrameHeader header = ws_frame_header(opcode, payload->size());
  queued_bytes_ += payload->size();
  queue_.push_back(Outgoing{std::move(payload), header});
  if (!in_read_batch_) schedule_flush();
}

void WsSession::schedule_flush() {
  if (flush_scheduled || waiting_writable_) return;
  flush_scheduled = true;
  core_->dirty.push_back(shared_from_this());
  if (!core_->flush_posted) {
    core_->flush_posted = true;
    asio::post(core_->io, [core = core_] { core->flush_dirty(); });
  }
}

void WsSession::flush() {
  if (waiting_writable_ || state_ == State::done) return;
  while (head_ < queue_.size()) {
    iovec bufs[kWriteBuffers];  // not zeroed: a ping would pay for 1 KiB of stores
    std::size_t count = 0;
    std::size_t skip = front_written_;
    for (std::size_t i = head_; i < queue_.size() && count + 2 <= kWriteBuffers; ++i) {
      const Outgoing& o = queue_[i];
      if (skip < o.header.size) {
        bufs[count++] = iovec{const_cast<std::uint8_t*>(o.header.bytes.data()) + skip, o.header.size - skip};
        skip = 0;
      } else {
        skip -= o.header.size;
      }
      if (o.payload->size() > skip) {
        bufs[count++] = iovec{const_cast<char*>(o.payload->data()) + skip, o.payload->size() - skip};
      }
      skip = 0;
    }
    msghdr msg{};
    msg.msg_iov = bufs;
    msg.msg_iovlen = count;
    const ssize_t n = ::sendmsg(fd_, &msg, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      // The poller reports EPOLLOUT once the kernel has room again (edge-triggered: this EAGAIN
      // is what makes the next edge come).
      if (errno == EAGAIN || errno == EWOULDBLOCK) return void(waiting_writable_ = true);
      spdlog::debug("transport: ws {} write failed: {}", id_, std::strerror(errno));
      return finish();
    }
    Core::add(core_->ws_write_calls, 1);
    Core::add(core_->ws_bytes_sent, static_cast<std::uint64_t>(n));
    consume_written(static_cast<std::size_t>(n));
    // A short write means the socket buffer is full: the next sendmsg gets the EAGAIN.
  }
  queue_.clear();
  if (queue_.capacity() > 16) std::vector<Outgoing>().swap(queue_);
  head_ = 0;
  front_written_ = 0;
  if (teardown_after_flush_) begin_teardown();
}

void WsSession::consume_written(std::size_t n) {
  while (n > 0) {
    Outgoing& o = queue_[head_];
    const std::size_t left = o.header.size + o.payload->size() - front_written_;
    if (n < left) {
      front_written_ += n;
      return;
    }
    n -= left;
    Core::add(core_->ws_frames_sent, 1);
    queued_bytes_ -= o.payload->size();
    o.payload.reset();
    ++head_;
    front_written_ = 0;
  }
}

void WsSession::on_ready(std::uint32_t events) {
  if (state_ == State::done) return;
  const bool failed = events & (EPOLLERR | EPOLLHUP);
  if (waiting_writable_ && (failed || (events & EPOLLOUT))) {
    waiting_writable_ = false;
    flush();  // a failed socket's sendmsg reports the error and finishes
    if (state_ == State::done) return;
  }
  if (failed || (events & (EPOLLIN | EPOLLRDHUP))) on_readable();
}

void WsSession::on_readable() {
  if (state_ == State::done) return;
  std::uint8_t* buf = read_scratch();
  const auto now = std::chrono::steady_clock::now();
  in_read_batch_ = true;
  bool drained = false;  // a read found the socket empty
  for (int i = 0; i < kReadBurst && state_ != State::done; ++i) {
    const ssize_t got = ::recv(fd_, buf, kReadScratchBytes, 0);
    if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      drained = true;
      break;
    }
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) {
      if (got < 0) spdlog::debug("transport: ws {} read ended: {}", id_, std::strerror(errno));
      in_read_batch_ = false;
      return finish();
    }
    const auto n = static_cast<std::size_t>(got);
    core_->ws_sessions.heard(this, now);
    if (state_ == State::draining) {
      drained_ += n;
      if (drained_ > kTeardownMaxBytes) {
        in_read_batch_ = false;
        return finish();
      }
    } else if (!reader_.done()) {
      reader_.feed({buf, n}, *this);
      if (reader_.failed() && state_ != State::draining) {
        const WsFailure& f = reader_.failure();
        spdlog::debug("transport: ws {} ({}) failed: {} ({})", id_, ip_, f.reason, f.code);
        if (state_ == State::open) {
          enqueue(WsOpcode::close, std::make_shared<const std::string>(ws_close_payload(f.code, f.reason)));
          state_ = State::closing;
        }
        // Failing the connection (RFC 6455 7.1.7): no waiting for the peer's close.
        teardown_after_flush_ = true;
        arm_kill_timer(kTeardownTime);
      }
    }
    if (n < kReadScratchBytes) {  // the socket is empty: spare the EAGAIN read
      drained = true;
      break;
    }
  }
  in_read_batch_ = false;
  if (state_ == State::done) return;
  flush();
  if (state_ == State::done) return;
  if (drained) return;  // the next bytes raise a new edge
  // Burst limit with bytes still waiting: the readiness edge is spent, so come back after the
  // others.
  asio::post(core_->io, [self = shared_from_this()] { self->on_readable(); });
}

void WsSession::on_ws_text(std::string_view message) {
  Core& core = *core_;
  if (state_ != State::open || !open_ || core.destroyed) return;  // closing: messages are ignored
  try {
    core.handler.on_ws_message(shared_from_this(), message);
  } catch (const std::exception& e) {
    spdlog::error("transport: on_ws_message threw: {}", e.what());
    close(1011, "internal error");
  }
}

void WsSession::on_ws_ping(std::string_view payload) {
  if (state_ != State::open) return;  // nothing follows our close frame
  enqueue(WsOpcode::pong, payload.empty() ? empty_payload() : std::make_shared<const std::string>(payload));
}

void WsSession::on_ws_close(std::uint16_t code) {
  if (state_ == State::open) {
    spdlog::debug("transport: ws {} peer closed with {}", id_, code);
    // Echo the code (none if the peer sent none), then close TCP from this side.
    enqueue(WsOpcode::close, code ? std::make_shared<const std::string>(ws_close_payload(code, {})) : empty_payload());
    state_ = State::closing;
  }
  teardown_after_flush_ = true;
  arm_kill_timer(kTeardownTime);
}

// The closing handshake is over (or the connection failed): stop sending, read what the peer
// still sends until its EOF so that our close frame is not destroyed by a RST, then close.
void WsSession::begin_teardown() {
  if (state_ == State::draining || state_ == State::done) return;
  state_ = State::draining;
  teardown_after_flush_ = false;
  if (::shutdown(fd_, SHUT_WR) != 0) return finish();
}

void WsSession::arm_kill_timer(std::chrono::steady_clock::duration after) {
  if (kill_timer_) return;
  kill_timer_ = std::make_unique<asio::steady_timer>(core_->io, after);
  kill_timer_->async_wait([self = shared_from_this()](error_code ec) {
    if (ec || self->state_ == State::done) return;
    spdlog::debug("transport: ws {} close handshake timed out", self->id_);
    self->finish();
  });
}

bool WsSession::ping() {
  if (state_ != State::open) return false;
  enqueue(WsOpcode::ping, empty_payload());
  return true;
}

void WsSession::finish() {
  if (state_ == State::done) return;
  state_ = State::done;
  const bool was_open = open_;
  open_ = false;
  core_->ws_sessions.remove(this);
  if (kill_timer_) kill_timer_->cancel();
  queue_.clear();
  head_ = front_written_ = queued_bytes_ = 0;
  if (polled_) core_->poller->remove(poll_key_, fd_);  // releases the poller's reference later
  polled_ = false;
  ::close(fd_);
  fd_ = -1;
  guard_.release();
  spdlog::debug("transport: ws {} ({}) closed", id_, ip_);
  if (was_open && !core_->destroyed) {
    try {
      core_->handler.on_ws_close(shared_from_this());
    } catch (const std::exception& e) {
      spdlog::error("transport: on_ws_close threw: {}", e.what());
    }
  }
}

// ---------------------------------------------------------------------------------------------
// HTTP session
// ---------------------------------------------------------------------------------------------

// Where a Responder leaves its answer. The session coroutine waits on the timer, made only for
// an answer that comes later (most answers are given before on_http returns).
struct ResponseSlot {
  std::optional<asio::steady_timer> timer;
  std::optional<HttpResponse> response;
  bool answered = false;
  void wake() {
    if (timer) timer->cancel();
  }
};

// Shared by every copy of one Responder. Runs on the I/O thread (inline when called there, posted
// from any other); a Responder dropped without being called answers 500, so the connection never
// hangs.
class ResponderState {
 public:
  ResponderState(std::shared_ptr<ResponseSlot> slot, asio::io_context& io) : slot_(std::move(slot)), io_(io) {}
  ResponderState(const ResponderState&) = delete;
  ResponderState& operator=(const ResponderState&) = delete;
  ~ResponderState() {
    if (called_.load(std::memory_order_relaxed)) return;
    on_io_thread([slot = slot_] {
      if (slot->answered) return;
      spdlog::error("transport: HTTP handler dropped its responder without answering");
      slot->answered = true;
      slot->response = HttpResponse{500, "application/json", error_json("internal", "no response"), {}};
      slot->wake();
    });
  }
  void respond(HttpResponse r) {
    called_.store(true, std::memory_order_relaxed);
    on_io_thread([slot = slot_, r = std::move(r)]() mutable {
      if (slot->answered) {
        spdlog::warn("transport: HTTP responder called more than once; ignored");
        return;
      }
      slot->answered = true;
      slot->response = std::move(r);
      slot->wake();
    });
  }

 private:
  template <class F>
  void on_io_thread(F&& f) {
    if (io_.get_executor().running_in_this_thread()) {
      f();
    } else {
      asio::post(io_, std::forward<F>(f));
    }
  }

  std::shared_ptr<ResponseSlot> slot_;
  asio::io_context& io_;
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
    if (slot_) slot_->wake();
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
  // 415 and close: presd never decodes a request body (accepted_encoding).
  asio::awaitable<void> refuse_encoded_body(unsigned version);
  asio::awaitable<void> upgrade(http::request<http::string_body> req);
  // Writes the answers held back for a pipelined batch; false if the write failed.
  asio::awaitable<bool> flush_answers();
  friend class RequestDeadline;

  std::shared_ptr<Core> core_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::uint64_t id_;
  std::string ip_;
  ConnGuard guard_;
  std::shared_ptr<ResponseSlot> slot_;
  std::string answers_;  // serialized responses not yet written (pipelined requests)
  HttpRequest request_;  // refilled for each request: its strings keep their capacity
  bool idle_ = false;
  bool registered_ = true;
};

// Answers of pipelined requests are written together up to this many bytes.
constexpr std::size_t kMaxHeldAnswers = 64 * 1024;

// The response as HTTP/1.x bytes, appended to `out` (what Beast's serializer would write).
void append_response(std::string& out, const HttpResponse& r, unsigned status, unsigned version, bool keep_alive) {
  out += version == 10 ? "HTTP/1.0 " : "HTTP/1.1 ";
  out += std::to_string(status);
  out += ' ';
  out += http::obsolete_reason(static_cast<http::status>(status));
  out += "\r\nServer: ";
  out += kServerName;
  if (!r.content_type.empty()) {
    out += "\r\nContent-Type: ";
    out += r.content_type;
  }
  for (const auto& [name, value] : r.headers) {
    if (name.empty() || name.find_first_of("\r\n:") != std::string::npos || value.find_first_of("\r\n") != std::string::npos ||
        beast::iequals(name, "content-length") || beast::iequals(name, "connection")) {
      spdlog::warn("transport: dropped an invalid response header");
      continue;
    }
    out += "\r\n";
    out += name;
    out += ": ";
    out += value;
  }
  const bool no_body = status < 200 || status == 204 || status == 304;
  if (!no_body) {
    out += "\r\nContent-Length: ";
    out += std::to_string(r.body.size());
  }
  if (!keep_alive)
    out += "\r\nConnection: close";
  else if (version == 10)
    out += "\r\nConnection: keep-alive";
  out += "\r\n\r\n";
  if (!no_body) out += r.body;
}

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

// A request already whole in `buffer` (scan_request said `whole`: a pipelined one, or one that
// arrived in one segment, outside the plain subset) is parsed in place: true if it was, with
// `ec` set for a malformed or over-limit request. False leaves the rest to the reading path.
bool parse_buffered_request(http::request_parser<http::string_body>& parser, beast::flat_buffer& buffer,
                            error_code& ec) {
  parser.eager(true);
  while (!parser.is_done()) {
    const std::size_t used = parser.put(buffer.cdata(), ec);
    buffer.consume(used);
    if (ec == http::error::need_more) {
      ec = {};
      return false;
    }
    if (ec) return true;
    if (used == 0) return false;
  }
  return true;
}

std::string_view buffered(const beast::flat_buffer& buffer) {
  const auto data = buffer.cdata();
  return {static_cast<const char*>(data.data()), data.size()};
}

asio::awaitable<void> HttpSession::refuse_encoded_body(unsigned version) {
  spdlog::debug("transport: http {} ({}) body with a content or transfer coding", id_, ip_);
  co_await write_error_and_close(http::status::unsupported_media_type, "unsupported_encoding",
                                 "compressed or encoded request bodies are not accepted", version);
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

asio::awaitable<bool> HttpSession::flush_answers() {
  if (answers_.empty()) co_return true;
  stream_.expires_after(core_->cfg.http_read_timeout);
  Core::add(core_->http_write_calls, 1);
  auto [ec, n] = co_await asio::async_write(stream_, asio::buffer(answers_), use_tuple);
  answers_.clear();
  if (answers_.capacity() > kMaxHeldAnswers) std::string().swap(answers_);
  if (ec) spdlog::debug("transport: http {} ({}) write failed: {}", id_, ip_, ec.message());
  co_return !ec;
}

asio::awaitable<void> HttpSession::write_error_and_close(http::status status, std::string_view code,
                                                         std::string message, unsigned version) {
  if (!co_await flush_answers()) {
    stream_.close();
    co_return;
  }
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
  HttpRequest hr;
  to_request(req, ip_, hr);
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
  unregister();
  // The WebSocket runs in its own coroutine so that this session (and its buffer) is freed.
  asio::co_spawn(core.io,
                 WsSession::handshake(core_, std::move(stream_), id_, ip_, std::move(guard_), std::move(req),
                                      std::move(accept)),
                 [](std::exception_ptr e) { log_exception(e, "websocket handshake"); });
  co_return;
}

asio::awaitable<void> HttpSession::run(std::shared_ptr<HttpSession> self) {
  Core& core = *self->core_;
  const ServerConfig& cfg = core.cfg;
  auto& stream = self->stream_;
  auto& buffer = self->buffer_;
  bool first = true;
  const RequestLimits limits{cfg.max_header_bytes, cfg.max_body_bytes};
  // The scan of the next request made for the batch decision below, reused at the top of the
  // loop unless the buffer moved since (reserve() may reallocate it).
  struct Scanned {
    const char* at = nullptr;
    RequestScan scan = RequestScan::partial;
    PlainRequest plain;
  };
  Scanned next;

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
    // Beast reads max(512, free capacity) at a time: room for many requests lets one read take
    // a pipelined batch, whose answers then share one write (an idle connection shrinks below).
    buffer.reserve(kHttpBusyBufferBytes);

    const std::string_view pending = buffered(buffer);
    Scanned current = std::exchange(next, {});
    if (current.at != pending.data()) {
      current.at = pending.data();
      current.scan = scan_request(pending, limits, current.plain);
    }
    stream.expires_never();

    HttpRequest& hr = self->request_;
    clear_request(hr);
    unsigned version = 11;
    bool client_keep_alive = true;
    if (current.scan == RequestScan::plain) {
      // The usual request, read from the buffer without Beast's parser: no field map, no
      // deadline timer, no turn of the event loop.
      to_request(current.plain, self->ip_, hr);
      client_keep_alive = current.plain.keep_alive;
      buffer.consume(current.plain.size);
    } else {
      // The whole request (header and body) must arrive within http_read_timeout (slowloris).
      // A deadline timer cancels the read instead of the stream's own timeout, which would close
      // the socket: the client still gets a coded 408.
      http::request_parser<http::string_body> parser;
      parser.header_limit(static_cast<std::uint32_t>(std::min<std::size_t>(cfg.max_header_bytes, UINT32_MAX)));
      parser.body_limit(cfg.max_body_bytes);
      error_code ec;
      bool timed_out = false;
      if (current.scan == RequestScan::whole && parse_buffered_request(parser, buffer, ec)) {
        // Parsed from what was already read: no deadline, no read, no turn of the event loop.
        if (!ec && parser.get().has_content_length() && parser.content_length().value_or(0) > 0 &&
            !accepted_encoding(parser.get())) {
          co_await self->refuse_encoded_body(parser.get().version());
          break;
        }
      } else {
        RequestDeadline deadline(self, cfg.http_read_timeout);
        std::tie(ec, std::ignore) = co_await http::async_read_header(stream, buffer, parser, use_tuple);
        if (!ec && !parser.is_done() && !accepted_encoding(parser.get())) {
          co_await self->refuse_encoded_body(parser.get().version());
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
        timed_out = deadline.expired();
        deadline.cancel();
      }
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
        if (!co_await self->flush_answers()) break;
        co_await self->upgrade(std::move(req));
        co_return;
      }

      version = req.version();
      client_keep_alive = req.keep_alive();
      to_request(req, self->ip_, hr);
    }
    auto slot = std::make_shared<ResponseSlot>();
    self->slot_ = slot;
    {
      auto state = std::make_shared<ResponderState>(slot, core.io);
      Responder respond = [state](HttpResponse r) { state->respond(std::move(r)); };
      if (core.destroyed) {
        respond(HttpResponse{503, "application/json", error_json("unavailable", "server stopping"), {}});
      } else {
        try {
          core.handler.on_http(hr, std::move(respond));
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
      // Answered later (a signature check): what is held for earlier requests goes out now.
      if (!co_await self->flush_answers()) break;
      if (!slot->response) {  // the answer may have come while that write was under way
        slot->timer.emplace(stream.get_executor(), std::chrono::steady_clock::time_point::max());
        co_await slot->timer->async_wait(use_tuple);
      }
    }
    self->slot_.reset();
    if (!slot->response) break;  // force-closed while waiting

    const HttpResponse& out = *slot->response;
    const unsigned status = out.status >= 100 && out.status <= 999 ? static_cast<unsigned>(out.status) : 500u;
    const bool keep_alive = client_keep_alive && !core.stopping;
    append_response(self->answers_, out, status, version, keep_alive);
    Core::add(core.http_answers, 1);
    // Pipelined requests already here are answered first; all their answers share one write.
    Scanned following;
    if (keep_alive && self->answers_.size() < kMaxHeldAnswers) {
      const std::string_view rest = buffered(buffer);
      following.at = rest.data();
      following.scan = scan_request(rest, limits, following.plain);
    }
    const bool batch = following.scan != RequestScan::partial;
    if (batch) next = following;  // only then is the buffer left as it is until the next turn
    if (!batch && !co_await self->flush_answers()) break;
    if (!keep_alive) {
      error_code sec;
      stream.socket().shutdown(tcp::socket::shutdown_send, sec);
      break;
    }
    // Keep an idle keep-alive connection small.
    if (buffer.size() == 0 && buffer.capacity() > 4096) {
      buffer.shrink_to_fit();
      if (hr.body.capacity() > 4096) std::string().swap(hr.body);
    }
  }
  co_await self->flush_answers();  // a loop that ended mid-batch still owes those answers
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
  keep_alive_timer.cancel();
  if (destroyed) return;
  spdlog::info("transport: shutdown complete ({} connections left)", connections.load());
  // Posted: connection_closed may run inside a session's teardown.
  for (auto& cb : callbacks)
    if (cb) asio::post(io, std::move(cb));
}

// A flush round writes every connection that had frames queued, kFlushChunk connections per
// handler: between chunks the I/O thread runs what is ready (verified PRES, reads), so under load
// frames broadcast meanwhile join the queues of connections not yet written this round and leave
// in the same gather write. An idle server flushes a small broadcast in one handler, as before.
void Core::flush_dirty() {
  flush_posted = false;
  if (flush_next >= flushing.size()) {
    flushing.clear();
    flushing.swap(dirty);  // `dirty` keeps the old round's capacity
    flush_next = 0;
  }
  const std::size_t end = std::min(flushing.size(), flush_next + kFlushChunk);
  for (; flush_next < end; ++flush_next) {
    auto& s = flushing[flush_next];
    s->flush_scheduled = false;
    s->flush();
    s.reset();
  }
  if ((flush_next < flushing.size() || !dirty.empty()) && !flush_posted) {
    flush_posted = true;
    asio::post(io, [core = shared_from_this()] { core->flush_dirty(); });
  }
}

// Keep-alive for every WebSocket with one timer: a sweep every quarter interval pings the
// connections silent for an interval and drops the ones silent for two (no pong, nothing).
void Core::start_keep_alive() {
  if (cfg.ws_ping_interval.count() <= 0) return;
  keep_alive_timer.expires_after(std::max<std::chrono::steady_clock::duration>(cfg.ws_ping_interval / 4,
                                                                                std::chrono::milliseconds(100)));
  keep_alive_timer.async_wait([self = shared_from_this()](error_code ec) {
    if (ec || self->destroyed) return;
    self->keep_alive_sweep();
    self->start_keep_alive();
  });
}

void Core::keep_alive_sweep() {
  std::vector<WsSession*> ping, drop;
  ws_sessions.sweep(std::chrono::steady_clock::now(), cfg.ws_ping_interval, ping, drop);
  std::size_t pinged = 0;
  for (WsSession* s : ping) pinged += s->ping() ? 1 : 0;  // queues a frame; the table is left as it is
  add(ws_keepalive_pings, pinged);
  std::vector<std::shared_ptr<WsSession>> silent;
  for (WsSession* s : drop)
    if (s->is_open()) silent.push_back(s->shared_from_this());
  add(ws_silent_drops, silent.size());
  for (auto& s : silent) {
    spdlog::debug("transport: ws {} ({}) silent for two ping intervals, closing", s->id(), s->remote_ip());
    s->force_close();
  }
}

void Core::force_close_all() {
  std::vector<std::shared_ptr<WsSession>> ws;
  ws_sessions.for_each([&](WsSession* s) { ws.push_back(s->shared_from_this()); });
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
  ws_sessions.for_each([&](WsSession* s) { ws.push_back(s->shared_from_this()); });
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
  impl_->keep_alive_timer.cancel();
  impl_->poller->close();  // the WebSockets still open go with it (sockets closed, no callbacks)
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
  sp->start_keep_alive();
}

std::uint16_t Server::port() const { return impl_->bound_port; }

void Server::shutdown(std::chrono::milliseconds grace, std::function<void()> done) {
  std::shared_ptr<detail::Core> sp = impl_;
  asio::dispatch(impl_->io, [sp, grace, done = std::move(done)]() mutable { sp->begin_shutdown(grace, std::move(done)); });
}

std::size_t Server::connection_count() const { return impl_->connections.load(); }

TransportStats Server::stats() const {
  return {impl_->ws_frames_sent.load(std::memory_order_relaxed), impl_->ws_write_calls.load(std::memory_order_relaxed),
          impl_->ws_bytes_sent.load(std::memory_order_relaxed), impl_->http_answers.load(std::memory_order_relaxed),
          impl_->http_write_calls.load(std::memory_order_relaxed), impl_->ws_keepalive_pings.load(std::memory_order_relaxed),
          impl_->ws_silent_drops.load(std::memory_order_relaxed)};
}

}  // namespace presd::transport
