// Outbound HTTPS: one coroutine per request on the client's io_context.
//
//   request()  posts the call; run() resolves (or applies resolve_override), filters addresses
//              through the SSRF guard, connects and handshakes (connect_timeout), writes the
//              request and reads the response (request_timeout for the whole call), then puts
//              the connection back into the per host:port pool when both sides keep it alive.
//   Call       one request: arguments, callback, watchdog timer (request_timeout), and what is in
//              progress (resolver, connection) so that the watchdog and shutdown() can abort it.
//   Conn       one TLS connection with its read buffer; pooled while idle.
#include "transport/https_client.h"

#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <deque>
#include <system_error>
#include <unordered_map>
#include <vector>

#include "common/ascii.h"

namespace presd::transport {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using Clock = std::chrono::steady_clock;
using Result = std::variant<HttpsResponse, HttpsError>;

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
constexpr std::uint32_t kMaxResponseHeaderBytes = 16 * 1024;
constexpr const char* kUserAgent = "presd";

void log_exception(std::exception_ptr e, const char* what) {
  if (!e) return;
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    spdlog::error("https_client: {} ended with exception: {}", what, ex.what());
  } catch (...) {
    spdlog::error("https_client: {} ended with an unknown exception", what);
  }
}

std::string ip_string(const asio::ip::address& address) {
  asio::ip::address a = address;
  if (a.is_v6() && a.to_v6().is_v4_mapped()) a = asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6());
  return a.to_string();
}

// A DNS name (or IP literal) usable as SNI / verification name: letters, digits, '-', '.', no
// leading dot, bounded length.
bool valid_host(const std::string& h) {
  if (h.empty() || h.size() > 253 || h.front() == '.' || h.front() == '-') return false;
  return std::all_of(h.begin(), h.end(), [](unsigned char c) { return std::isalnum(c) || c == '-' || c == '.'; });
}

bool valid_token(const std::string& s) {  // HTTP method
  if (s.empty() || s.size() > 32) return false;
  return std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isalnum(c) || c == '-' || c == '_'; });
}

bool no_ctl(const std::string& s) {
  return std::none_of(s.begin(), s.end(), [](unsigned char c) { return c < 0x20 || c == 0x7f; });
}

HttpsError err(std::string code, std::string message) { return HttpsError{std::move(code), std::move(message)}; }

struct Conn {
  Conn(asio::io_context& io, ssl::context& ctx, std::uint64_t id_, std::string key_)
      : stream(io, ctx), id(id_), key(std::move(key_)) {}

  beast::ssl_stream<beast::tcp_stream> stream;
  beast::flat_buffer buffer;
  std::uint64_t id;
  std::string key;  // host:port
  Clock::time_point idle_deadline{};
  unsigned requests = 0;

  void close() {
    error_code ec;
    beast::get_lowest_layer(stream).socket().close(ec);
  }

  // An idle HTTP connection receives nothing: EOF, a TLS alert (close_notify) or any other byte
  // means the server is done with it.
  bool looks_alive() {
    auto& sock = beast::get_lowest_layer(stream).socket();
    if (!sock.is_open() || buffer.size() != 0) return false;
    char b;
    const auto n = ::recv(sock.native_handle(), &b, 1, MSG_PEEK | MSG_DONTWAIT);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
  }
};
using ConnPtr = std::shared_ptr<Conn>;

struct Call {
  Call(asio::io_context& io) : watchdog(io) {}

  std::uint64_t id = 0;
  std::string method, host, target, body, content_type;
  std::function<void(Result)> done;
  Clock::time_point deadline{};
  asio::steady_timer watchdog;
  tcp::resolver* resolver = nullptr;  // while resolving
  ConnPtr conn;                       // while connecting / exchanging
  bool timed_out = false;
  bool cancelled = false;
  bool completed = false;

  void abort_io() {
    if (resolver) resolver->cancel();
    if (conn) conn->close();
  }
};
using CallPtr = std::shared_ptr<Call>;

// What one exchange (write request, read response) gave.
struct Exchange {
  error_code ec;
  const char* phase = "";
  bool got_some = false;  // response bytes arrived before the error
  HttpsResponse response;
  bool keep_alive = false;
};

}  // namespace

struct HttpsClient::Impl : std::enable_shared_from_this<HttpsClient::Impl> {
  Impl(asio::io_context& io_, HttpsClientConfig cfg_)
      : io(io_), cfg(std::move(cfg_)), ssl_ctx(ssl::context::tls_client), purge_timer(io_) {
    std::map<std::string, std::pair<std::string, std::uint16_t>> overrides;
    for (auto& [k, v] : cfg.resolve_override) overrides[ascii_lowercase(k)] = v;
    cfg.resolve_override = std::move(overrides);

    ssl_ctx.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                        ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 | ssl::context::no_compression);
    if (SSL_CTX_set_min_proto_version(ssl_ctx.native_handle(), TLS1_2_VERSION) != 1)
      throw std::system_error(std::make_error_code(std::errc::protocol_error), "TLS 1.2 minimum");
    ssl_ctx.set_verify_mode(ssl::verify_peer);
    if (!cfg.ca_file.empty()) {
      error_code ec;
      ssl_ctx.load_verify_file(cfg.ca_file, ec);
      if (ec) throw std::system_error(std::error_code(ec), "load CA file " + cfg.ca_file);
    } else {
      ssl_ctx.set_default_verify_paths();
    }
  }

  asio::io_context& io;
  HttpsClientConfig cfg;
  ssl::context ssl_ctx;
  std::unordered_map<std::string, std::deque<ConnPtr>> idle;  // host:port -> idle connections (oldest first)
  std::atomic<std::size_t> idle_count{0};
  asio::steady_timer purge_timer;
  bool purge_armed = false;
  std::unordered_map<std::uint64_t, CallPtr> active;
  bool stopped = false;
  std::atomic<bool> destroyed{false};  // the HttpsClient is gone: callbacks are dropped
  std::uint64_t next_call_id = 1;
  std::uint64_t next_conn_id = 1;

  void start(CallPtr call);
  static asio::awaitable<void> run(std::shared_ptr<Impl> self, CallPtr call);
  asio::awaitable<std::variant<ConnPtr, HttpsError>> connect(Call& call, const std::string& key);
  asio::awaitable<Exchange> exchange(Call& call, Conn& conn);
  void complete(Call& call, Result result);
  HttpsError io_error(const Call& call, error_code ec, const char* phase, Clock::time_point phase_deadline) const;

  ConnPtr take_idle(const std::string& key);
  void put_idle(ConnPtr conn);
  void arm_purge();
  void purge();
  void close_all_idle();
  void stop(bool drop_callbacks);
};

void HttpsClient::Impl::start(CallPtr call) {
  if (stopped) {
    complete(*call, err("cancelled", "client is shut down"));
    return;
  }
  call->id = next_call_id++;
  call->deadline = Clock::now() + cfg.request_timeout;
  active.emplace(call->id, call);
  call->watchdog.expires_at(call->deadline);
  // request_timeout: the call completes now; the coroutine sees timed_out and only cleans up. (A
  // cancelled resolve completes only when the blocking getaddrinfo returns, hence not waiting.)
  call->watchdog.async_wait([weak = weak_from_this(), weak_call = std::weak_ptr<Call>(call)](error_code ec) {
    if (ec) return;
    auto self = weak.lock();
    auto c = weak_call.lock();
    if (!self || !c || c->completed) return;
    c->timed_out = true;
    c->abort_io();
    self->complete(*c, err("timeout", "request timed out"));
  });
  asio::co_spawn(io, run(shared_from_this(), call), [self = shared_from_this(), call](std::exception_ptr e) {
    if (!e) return;
    log_exception(e, "request");
    self->complete(*call, err("protocol", "internal error"));
  });
}

void HttpsClient::Impl::complete(Call& call, Result result) {
  if (call.completed) return;
  call.completed = true;
  call.watchdog.cancel();
  active.erase(call.id);
  auto done = std::move(call.done);
  call.done = nullptr;
  if (auto* e = std::get_if<HttpsError>(&result))
    spdlog::debug("https_client: call {} {} https://{}{} failed: {} ({})", call.id, call.method, call.host,
                  call.target, e->code, e->message);
  if (destroyed || !done) return;
  try {
    done(std::move(result));
  } catch (const std::exception& ex) {
    spdlog::error("https_client: request callback threw: {}", ex.what());
  }
}

HttpsError HttpsClient::Impl::io_error(const Call& call, error_code ec, const char* phase,
                                        Clock::time_point phase_deadline) const {
  const std::string what = std::string(phase) + ": " + ec.message();
  if (call.cancelled) return err("cancelled", "client is shut down");
  if (call.timed_out || ec == beast::error::timeout || Clock::now() >= phase_deadline)
    return err("timeout", std::string(phase) + " timed out");
  if (ec == http::error::body_limit)
    return err("too_large", "response body exceeds " + std::to_string(cfg.max_response_bytes) + " bytes");
  const std::string_view p = phase;
  if (p == "connect") return err("connect", what);
  if (p == "handshake") return err("tls", what);
  if (ec.category() == asio::error::get_ssl_category()) return err("tls", what);
  return err("protocol", what);
}

asio::awaitable<void> HttpsClient::Impl::run(std::shared_ptr<Impl> self, CallPtr call) {
  Impl& impl = *self;
  Call& c = *call;
  const auto ov = impl.cfg.resolve_override.find(c.host);
  const std::uint16_t port = ov != impl.cfg.resolve_override.end() ? ov->second.second : 443;
  const std::string key = c.host + ":" + std::to_string(port);

  for (int attempt = 0; attempt < 2; ++attempt) {
    ConnPtr conn = attempt == 0 ? impl.take_idle(key) : nullptr;
    const bool reused = conn != nullptr;
    if (!conn) {
      auto connected = co_await impl.connect(c, key);
      if (auto* e = std::get_if<HttpsError>(&connected)) {
        impl.complete(c, std::move(*e));
        co_return;
      }
      conn = std::get<ConnPtr>(std::move(connected));
    } else {
      spdlog::debug("https_client: call {} reuses connection {} to {}", c.id, conn->id, key);
    }
    if (c.cancelled || c.timed_out) {
      conn->close();
      impl.complete(c, c.cancelled ? err("cancelled", "client is shut down") : err("timeout", "request timed out"));
      co_return;
    }

    c.conn = conn;
    Exchange x = co_await impl.exchange(c, *conn);
    c.conn.reset();
    if (!x.ec) {
      if (x.keep_alive && !c.cancelled && !c.timed_out) {
        impl.put_idle(std::move(conn));
      } else {
        spdlog::debug("https_client: closing connection {} to {}", conn->id, key);
        conn->close();
      }
      impl.complete(c, std::move(x.response));
      co_return;
    }
    conn->close();
    if (reused && !x.got_some && attempt == 0 && c.method == "GET" && !c.cancelled && !c.timed_out &&
        x.ec != beast::error::timeout && x.ec != http::error::body_limit) {
      spdlog::debug("https_client: call {}: pooled connection {} to {} failed at {} ({}), retrying on a new one",
                    c.id, conn->id, key, x.phase, x.ec.message());
      continue;
    }
    impl.complete(c, impl.io_error(c, x.ec, x.phase, c.deadline));
    co_return;
  }
}

asio::awaitable<std::variant<ConnPtr, HttpsError>> HttpsClient::Impl::connect(Call& c, const std::string& key) {
  const auto ov = cfg.resolve_override.find(c.host);
  const bool overridden = ov != cfg.resolve_override.end();
  const std::string name = overridden ? ov->second.first : c.host;
  const std::uint16_t port = overridden ? ov->second.second : 443;

  // Resolve (an IP literal resolves without DNS). The watchdog cancels it on request_timeout.
  tcp::resolver resolver(io);
  c.resolver = &resolver;
  auto [rec, results] = co_await resolver.async_resolve(name, std::to_string(port),
                                                        tcp::resolver::numeric_service, use_tuple);
  c.resolver = nullptr;
  if (c.cancelled) co_return err("cancelled", "client is shut down");
  if (c.timed_out) co_return err("timeout", "resolve timed out");
  if (rec) co_return err("resolve", "resolve " + name + ": " + rec.message());

  // The SSRF guard sees every address, after resolution.
  std::vector<tcp::endpoint> allowed;
  std::string refused;
  for (const auto& entry : results) {
    const tcp::endpoint ep = entry.endpoint();
    const std::string ip = ip_string(ep.address());
    if (cfg.address_allowed && !cfg.address_allowed(ip)) {
      spdlog::debug("https_client: call {}: address {} of {} refused by the address guard", c.id, ip, c.host);
      if (!refused.empty()) refused += ", ";
      refused += ip;
      continue;
    }
    allowed.push_back(ep);
  }
  if (allowed.empty()) {
    if (refused.empty()) co_return err("resolve", "resolve " + name + ": no address");
    co_return err("forbidden_address", c.host + " resolves to a forbidden address (" + refused + ")");
  }

  auto conn = std::make_shared<Conn>(io, ssl_ctx, next_conn_id++, key);
  c.conn = conn;
  auto& stream = beast::get_lowest_layer(conn->stream);
  const auto connect_deadline = std::min(Clock::now() + cfg.connect_timeout, c.deadline);
  stream.expires_at(connect_deadline);
  auto [cec, ep] = co_await stream.async_connect(allowed, use_tuple);
  if (cec) {
    c.conn.reset();
    conn->close();
    co_return io_error(c, cec, "connect", connect_deadline);
  }
  error_code ignored;
  stream.socket().set_option(tcp::no_delay(true), ignored);
  spdlog::debug("https_client: call {}: connection {} to {} ({}:{})", c.id, conn->id, c.host,
                ip_string(ep.address()), ep.port());

  // SNI + host name verification against the requested name (not the overridden address).
  SSL* ssl = conn->stream.native_handle();
  if (SSL_set_tlsext_host_name(ssl, c.host.c_str()) != 1 || SSL_set1_host(ssl, c.host.c_str()) != 1) {
    c.conn.reset();
    conn->close();
    co_return err("tls", "cannot set the TLS host name");
  }
  SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  conn->stream.set_verify_mode(ssl::verify_peer);
  auto [hec] = co_await conn->stream.async_handshake(ssl::stream_base::client, use_tuple);
  if (hec) {
    c.conn.reset();
    HttpsError e = io_error(c, hec, "handshake", connect_deadline);
    const long verify = SSL_get_verify_result(ssl);
    if (e.code == "tls" && verify != X509_V_OK)
      e.message = std::string("certificate verification failed: ") + X509_verify_cert_error_string(verify);
    conn->close();
    co_return e;
  }
  c.conn.reset();
  co_return conn;
}

asio::awaitable<Exchange> HttpsClient::Impl::exchange(Call& c, Conn& conn) {
  Exchange x;
  http::request<http::string_body> req;
  const http::verb verb = http::string_to_verb(c.method);
  if (verb == http::verb::unknown)
    req.method_string(c.method);
  else
    req.method(verb);
  req.target(c.target);
  req.version(11);
  // The override stands in for DNS: the URL is still https://<host>/, so Host carries no port.
  req.set(http::field::host, c.host);
  req.set(http::field::user_agent, kUserAgent);
  if (!c.content_type.empty()) req.set(http::field::content_type, c.content_type);
  req.body() = c.body;
  req.keep_alive(true);
  req.prepare_payload();

  auto& stream = beast::get_lowest_layer(conn.stream);
  stream.expires_at(c.deadline);
  ++conn.requests;
  auto [wec, wn] = co_await http::async_write(conn.stream, req, use_tuple);
  if (wec) {
    x.ec = wec;
    x.phase = "write";
    co_return x;
  }

  http::response_parser<http::string_body> parser;
  parser.header_limit(kMaxResponseHeaderBytes);
  parser.body_limit(cfg.max_response_bytes);
  if (verb == http::verb::head) parser.skip(true);
  auto [rec, rn] = co_await http::async_read(conn.stream, conn.buffer, parser, use_tuple);
  if (rec) {
    x.ec = rec;
    x.phase = "read";
    x.got_some = parser.got_some();
    co_return x;
  }
  stream.expires_never();
  auto& res = parser.get();
  x.response.status = static_cast<int>(res.result_int());
  x.response.content_type = std::string(res[http::field::content_type]);
  x.keep_alive = res.keep_alive() && parser.is_done() && conn.buffer.size() == 0;
  x.response.body = std::move(res.body());
  spdlog::debug("https_client: call {} {} https://{}{} -> {} ({} bytes, connection {}{})", c.id, c.method, c.host,
                c.target, x.response.status, x.response.body.size(), conn.id, x.keep_alive ? ", keep-alive" : ", close");
  co_return x;
}

// ---------------------------------------------------------------------------------------------
// Pool
// ---------------------------------------------------------------------------------------------

ConnPtr HttpsClient::Impl::take_idle(const std::string& key) {
  auto it = idle.find(key);
  if (it == idle.end()) return nullptr;
  auto& q = it->second;
  ConnPtr found;
  const auto now = Clock::now();
  while (!q.empty() && !found) {
    ConnPtr c = std::move(q.back());  // most recently used first
    q.pop_back();
    --idle_count;
    if (c->idle_deadline > now && c->looks_alive()) {
      found = std::move(c);
    } else {
      spdlog::debug("https_client: dropping stale pooled connection {} to {}", c->id, key);
      c->close();
    }
  }
  if (q.empty()) idle.erase(it);
  return found;
}

void HttpsClient::Impl::put_idle(ConnPtr conn) {
  if (stopped || cfg.max_idle_per_host == 0) {
    conn->close();
    return;
  }
  beast::get_lowest_layer(conn->stream).expires_never();
  conn->idle_deadline = Clock::now() + cfg.idle_keepalive;
  auto& q = idle[conn->key];
  while (q.size() >= cfg.max_idle_per_host) {
    spdlog::debug("https_client: pool for {} full, closing connection {}", conn->key, q.front()->id);
    q.front()->close();
    q.pop_front();
    --idle_count;
  }
  q.push_back(std::move(conn));
  ++idle_count;
  arm_purge();
}

void HttpsClient::Impl::arm_purge() {
  if (purge_armed || stopped || idle_count.load() == 0) return;
  Clock::time_point earliest = Clock::time_point::max();
  for (auto& [key, q] : idle)
    for (auto& c : q) earliest = std::min(earliest, c->idle_deadline);
  purge_armed = true;
  purge_timer.expires_at(earliest);
  purge_timer.async_wait([weak = weak_from_this()](error_code ec) {
    auto self = weak.lock();
    if (!self) return;
    self->purge_armed = false;
    if (ec || self->stopped) return;
    self->purge();
  });
}

void HttpsClient::Impl::purge() {
  const auto now = Clock::now();
  for (auto it = idle.begin(); it != idle.end();) {
    auto& q = it->second;
    for (auto ci = q.begin(); ci != q.end();) {
      if ((*ci)->idle_deadline <= now || !(*ci)->looks_alive()) {
        spdlog::debug("https_client: closing idle connection {} to {}", (*ci)->id, it->first);
        (*ci)->close();
        ci = q.erase(ci);
        --idle_count;
      } else {
        ++ci;
      }
    }
    it = q.empty() ? idle.erase(it) : std::next(it);
  }
  arm_purge();
}

void HttpsClient::Impl::close_all_idle() {
  for (auto& [key, q] : idle)
    for (auto& c : q) c->close();
  idle.clear();
  idle_count = 0;
}

void HttpsClient::Impl::stop(bool drop_callbacks) {
  if (drop_callbacks) destroyed = true;
  if (!stopped) spdlog::debug("https_client: shutdown, {} in flight, {} pooled", active.size(), idle_count.load());
  stopped = true;
  purge_timer.cancel();
  close_all_idle();
  std::vector<CallPtr> calls;
  calls.reserve(active.size());
  for (auto& [id, c] : active) calls.push_back(c);
  for (auto& c : calls) {
    c->cancelled = true;
    c->abort_io();
    // Completed right away (the coroutine's own completion is then a no-op), from a later turn so
    // that no callback runs inside shutdown().
    asio::post(io, [self = shared_from_this(), c] { self->complete(*c, err("cancelled", "client is shut down")); });
  }
}

// ---------------------------------------------------------------------------------------------
// HttpsClient
// ---------------------------------------------------------------------------------------------

HttpsClient::HttpsClient(boost::asio::io_context& io, HttpsClientConfig cfg)
    : impl_(std::make_shared<Impl>(io, std::move(cfg))) {}

HttpsClient::~HttpsClient() {
  auto impl = impl_;
  impl->destroyed = true;
  if (impl->io.get_executor().running_in_this_thread()) {
    impl->stop(true);
  } else {
    // Callbacks are dropped from now on; the rest is done on the io thread.
    asio::dispatch(impl->io, [impl] { impl->stop(true); });
  }
}

void HttpsClient::request(std::string method, std::string host, std::string target, std::string body,
                          std::string content_type, std::function<void(std::variant<HttpsResponse, HttpsError>)> done) {
  auto call = std::make_shared<Call>(impl_->io);
  call->method = std::move(method);
  ascii_lowercase_in_place(host);
  call->host = std::move(host);
  call->target = std::move(target);
  call->body = std::move(body);
  call->content_type = std::move(content_type);
  call->done = std::move(done);
  std::string invalid;
  if (!valid_token(call->method))
    invalid = "invalid method";
  else if (!valid_host(call->host))
    invalid = "invalid host";
  else if (call->target.empty() || call->target.front() != '/' || !no_ctl(call->target) ||
           call->target.find(' ') != std::string::npos)
    invalid = "invalid target";
  else if (!no_ctl(call->content_type))
    invalid = "invalid content type";
  asio::post(impl_->io, [impl = impl_, call, invalid = std::move(invalid)]() mutable {
    if (!invalid.empty()) {
      impl->complete(*call, err("protocol", invalid));
      return;
    }
    impl->start(std::move(call));
  });
}

void HttpsClient::shutdown() {
  asio::dispatch(impl_->io, [impl = impl_] { impl->stop(false); });
}

std::size_t HttpsClient::pooled_connections() const { return impl_->idle_count.load(); }

}  // namespace presd::transport
