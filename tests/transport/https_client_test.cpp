// transport::HttpsClient over real loopback TLS. The suite generates a throwaway CA and a server
// certificate for cl-o.alice.test and cl-o.bob.test with the openssl CLI, and runs a small
// Beast/Asio SSL server on a background thread (port 0) that counts accepted TCP connections.
// The client runs on an io_context driven by the test thread.
#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unistd.h>

#include "transport/https_client.h"

namespace presd::transport {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
namespace fs = std::filesystem;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;
using Result = std::variant<HttpsResponse, HttpsError>;

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

// ---------------------------------------------------------------------------------------------
// Certificates (openssl CLI)
// ---------------------------------------------------------------------------------------------

struct Certs {
  fs::path dir;
  std::string ca_pem, server_pem, server_key;
  std::string error;
};

bool run(const std::string& cmd, const fs::path& log) {
  const std::string full = cmd + " >>" + log.string() + " 2>&1";
  return std::system(full.c_str()) == 0;
}

Certs make_certs() {
  Certs c;
  std::string tmpl = (fs::temp_directory_path() / "presd-https-XXXXXX").string();
  if (!::mkdtemp(tmpl.data())) {
    c.error = "mkdtemp failed";
    return c;
  }
  c.dir = tmpl;
  const fs::path log = c.dir / "openssl.log";
  const std::string d = c.dir.string();
  c.ca_pem = d + "/ca.pem";
  c.server_pem = d + "/server.pem";
  c.server_key = d + "/server.key";
  {
    std::ofstream ext(c.dir / "server.ext");
    ext << "subjectAltName=DNS:cl-o.alice.test,DNS:cl-o.bob.test\n"
           "basicConstraints=critical,CA:FALSE\n"
           "keyUsage=critical,digitalSignature\n"
           "extendedKeyUsage=serverAuth\n";
  }
  const std::string ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
  const bool ok =
      run("openssl req -x509 " + ec + " -keyout " + d + "/ca.key -out " + c.ca_pem +
              " -days 2 -subj '/CN=presd test CA' -addext basicConstraints=critical,CA:TRUE"
              " -addext keyUsage=critical,keyCertSign,cRLSign",
          log) &&
      run("openssl req " + ec + " -keyout " + c.server_key + " -out " + d +
              "/server.csr -subj '/CN=cl-o.alice.test'",
          log) &&
      run("openssl x509 -req -in " + d + "/server.csr -CA " + c.ca_pem + " -CAkey " + d +
              "/ca.key -set_serial 2 -days 2 -out " + c.server_pem + " -extfile " + d + "/server.ext",
          log);
  if (!ok) {
    std::ifstream in(log);
    c.error = "openssl failed: " + std::string(std::istreambuf_iterator<char>(in), {});
  }
  return c;
}

// ---------------------------------------------------------------------------------------------
// Test server
// ---------------------------------------------------------------------------------------------

class TlsTestServer {
 public:
  struct Seen {
    std::string method, target, content_type, body;
  };

  TlsTestServer(const Certs& certs) : ctx_(ssl::context::tls_server), acceptor_(io_) {
    ctx_.use_certificate_chain_file(certs.server_pem);
    ctx_.use_private_key_file(certs.server_key, ssl::context::pem);
    acceptor_.open(tcp::v4());
    acceptor_.set_option(asio::socket_base::reuse_address(true));
    acceptor_.bind(tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    acceptor_.listen();
    port_ = acceptor_.local_endpoint().port();
    asio::co_spawn(io_, accept_loop(), asio::detached);
    thread_ = std::thread([this] { io_.run(); });
  }

  ~TlsTestServer() {
    io_.stop();
    thread_.join();
  }

  std::uint16_t port() const { return port_; }
  int accepted() const { return accepted_.load(); }
  int slow_requests() const { return slow_.load(); }
  std::vector<Seen> seen() const {
    std::lock_guard lock(mu_);
    return seen_;
  }

 private:
  asio::awaitable<void> accept_loop() {
    for (;;) {
      auto [ec, sock] = co_await acceptor_.async_accept(use_tuple);
      if (ec) co_return;
      ++accepted_;
      asio::co_spawn(io_, session(std::move(sock)), asio::detached);
    }
  }

  asio::awaitable<void> session(tcp::socket sock) {
    beast::ssl_stream<beast::tcp_stream> stream(std::move(sock), ctx_);
    beast::get_lowest_layer(stream).expires_after(10s);
    auto [hec] = co_await stream.async_handshake(ssl::stream_base::server, use_tuple);
    if (hec) co_return;
    beast::flat_buffer buffer;
    bool drop_next = false;
    for (;;) {
      beast::get_lowest_layer(stream).expires_after(30s);
      http::request<http::string_body> req;
      auto [rec, rn] = co_await http::async_read(stream, buffer, req, use_tuple);
      if (rec) co_return;
      {
        std::lock_guard lock(mu_);
        seen_.push_back(Seen{std::string(req.method_string()), std::string(req.target()),
                             std::string(req[http::field::content_type]), req.body()});
      }
      if (drop_next) co_return;  // the client's request is read and the connection dropped
      const std::string target(req.target());
      http::response<http::string_body> res{http::status::ok, req.version()};
      res.set(http::field::content_type, "application/json");
      bool keep_alive = req.keep_alive();
      if (target == "/api/me") {
        res.body() = R"({"issuer":"alice.test"})";
      } else if (target == "/big") {
        res.set(http::field::content_type, "application/octet-stream");
        res.body() = std::string(100 * 1024, 'x');
      } else if (target == "/slow") {
        ++slow_;
        beast::get_lowest_layer(stream).expires_never();
        asio::steady_timer t(co_await asio::this_coro::executor, 60s);
        co_await t.async_wait(use_tuple);
        co_return;
      } else if (target == "/close") {
        res.body() = R"({"closing":true})";
        keep_alive = false;
      } else if (target == "/drop-next") {
        res.body() = R"({"drop":"next"})";
        drop_next = true;
      } else if (target == "/echo") {
        res.set(http::field::content_type, "text/plain");
        res.body() = std::string(req.method_string()) + " " + std::string(req[http::field::content_type]) + " " +
                     req.body() + " host=" + std::string(req[http::field::host]);
      } else {
        res.result(http::status::not_found);
        res.body() = R"({"error":"not_found"})";
      }
      res.keep_alive(keep_alive);
      res.prepare_payload();
      auto [wec, wn] = co_await http::async_write(stream, res, use_tuple);
      if (wec || !keep_alive) co_return;
    }
  }

  ssl::context ctx_;
  asio::io_context io_;
  tcp::acceptor acceptor_;
  std::uint16_t port_ = 0;
  std::thread thread_;
  std::atomic<int> accepted_{0};
  std::atomic<int> slow_{0};
  mutable std::mutex mu_;
  std::vector<Seen> seen_;
};

// ---------------------------------------------------------------------------------------------
// Fixture
// ---------------------------------------------------------------------------------------------

class HttpsClientTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (std::getenv("PRESD_TEST_DEBUG")) spdlog::set_level(spdlog::level::debug);
    certs_ = new Certs(make_certs());
  }
  static void TearDownTestSuite() {
    std::error_code ec;
    if (!certs_->dir.empty()) fs::remove_all(certs_->dir, ec);
    delete certs_;
    certs_ = nullptr;
  }

  void SetUp() override {
    ASSERT_TRUE(certs_->error.empty()) << certs_->error;
    server_ = std::make_unique<TlsTestServer>(*certs_);
  }

  HttpsClientConfig config() const {
    HttpsClientConfig cfg;
    cfg.ca_file = certs_->ca_pem;
    cfg.resolve_override["cl-o.alice.test"] = {"127.0.0.1", server_->port()};
    cfg.resolve_override["cl-o.bob.test"] = {"127.0.0.1", server_->port()};
    cfg.resolve_override["cl-o.mallory.test"] = {"127.0.0.1", server_->port()};
    return cfg;
  }

  // Runs the client's io_context on this thread until the callback ran (or `limit`).
  Result call(HttpsClient& client, std::string method, std::string host, std::string target, std::string body = {},
              std::string content_type = {}, std::chrono::milliseconds limit = 10s) {
    std::optional<Result> out;
    int calls = 0;
    client.request(std::move(method), std::move(host), std::move(target), std::move(body), std::move(content_type),
                   [&](Result r) {
                     ++calls;
                     out = std::move(r);
                   });
    run_until([&] { return out.has_value(); }, limit);
    EXPECT_TRUE(out.has_value()) << "no callback";
    // Exactly once: a little more running produces no second call.
    run_for(20ms);
    EXPECT_EQ(calls, 1);
    return out ? std::move(*out) : Result{HttpsError{"test", "no callback"}};
  }

  template <class Pred>
  void run_until(Pred pred, std::chrono::milliseconds limit) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (!pred() && std::chrono::steady_clock::now() < end) {
      if (io_.stopped()) io_.restart();
      io_.run_one_for(20ms);
    }
  }
  void run_for(std::chrono::milliseconds d) {
    run_until([] { return false; }, d);
  }

  static Certs* certs_;
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_{io_.get_executor()};
  std::unique_ptr<TlsTestServer> server_;
};
Certs* HttpsClientTest::certs_ = nullptr;

const HttpsResponse& ok(const Result& r) {
  static const HttpsResponse empty;
  if (auto* e = std::get_if<HttpsError>(&r)) {
    ADD_FAILURE() << "error " << e->code << ": " << e->message;
    return empty;
  }
  return std::get<HttpsResponse>(r);
}

std::string error_code_of(const Result& r) {
  if (auto* e = std::get_if<HttpsError>(&r)) return e->code;
  return "ok(" + std::to_string(std::get<HttpsResponse>(r).status) + ")";
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

TEST_F(HttpsClientTest, GetThroughOverrideWithCaFile) {
  HttpsClient client(io_, config());
  auto r = call(client, "GET", "cl-o.alice.test", "/api/me");
  const auto& res = ok(r);
  EXPECT_EQ(res.status, 200);
  EXPECT_EQ(res.content_type, "application/json");
  EXPECT_EQ(res.body, R"({"issuer":"alice.test"})");
  // The second SAN works too, and host names are case-insensitive.
  auto r2 = call(client, "GET", "CL-O.Bob.Test", "/api/me");
  EXPECT_EQ(ok(r2).status, 200);
  auto r3 = call(client, "GET", "cl-o.alice.test", "/nope");
  EXPECT_EQ(ok(r3).status, 404);
}

TEST_F(HttpsClientTest, SystemTrustStoreRejectsTestCa) {
  auto cfg = config();
  cfg.ca_file.clear();
  HttpsClient client(io_, cfg);
  auto r = call(client, "GET", "cl-o.alice.test", "/api/me");
  EXPECT_EQ(error_code_of(r), "tls");
  EXPECT_EQ(client.pooled_connections(), 0u);
}

TEST_F(HttpsClientTest, WrongHostNameFailsVerification) {
  HttpsClient client(io_, config());
  auto r = call(client, "GET", "cl-o.mallory.test", "/api/me");
  EXPECT_EQ(error_code_of(r), "tls");
  if (auto* e = std::get_if<HttpsError>(&r)) {
    EXPECT_NE(e->message.find("hostname"), std::string::npos) << e->message;
  }
  EXPECT_EQ(client.pooled_connections(), 0u);
}

TEST_F(HttpsClientTest, MissingCaFileThrows) {
  auto cfg = config();
  cfg.ca_file = certs_->dir.string() + "/does-not-exist.pem";
  EXPECT_THROW(HttpsClient(io_, cfg), std::system_error);
}

TEST_F(HttpsClientTest, AddressGuardRefusesBeforeConnect) {
  auto cfg = config();
  std::vector<std::string> asked;
  cfg.address_allowed = [&](const std::string& ip) {
    asked.push_back(ip);
    return false;
  };
  HttpsClient client(io_, cfg);
  auto r = call(client, "GET", "cl-o.alice.test", "/api/me");
  EXPECT_EQ(error_code_of(r), "forbidden_address");
  EXPECT_EQ(asked, std::vector<std::string>{"127.0.0.1"});
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(server_->accepted(), 0);
}

TEST_F(HttpsClientTest, AddressGuardAppliesAfterDnsResolution) {
  // No override: "localhost" is resolved, and its loopback addresses are refused.
  auto cfg = config();
  std::vector<std::string> asked;
  cfg.address_allowed = [&](const std::string& ip) {
    asked.push_back(ip);
    return !(ip == "127.0.0.1" || ip == "::1");
  };
  HttpsClient client(io_, cfg);
  auto r = call(client, "GET", "localhost", "/api/me");
  EXPECT_EQ(error_code_of(r), "forbidden_address");
  EXPECT_FALSE(asked.empty());
  EXPECT_EQ(server_->accepted(), 0);
}

TEST_F(HttpsClientTest, ResolveFailure) {
  auto cfg = config();
  HttpsClient client(io_, cfg);
  auto r = call(client, "GET", "no-such-host.invalid", "/api/me");
  // ".invalid" never resolves; a resolver that cannot reach any DNS server may hang instead.
  const std::string code = error_code_of(r);
  EXPECT_TRUE(code == "resolve" || code == "timeout") << code;
}

TEST_F(HttpsClientTest, ConnectRefused) {
  // A port with nothing listening: bind one, note it, close it.
  std::uint16_t dead_port;
  {
    tcp::acceptor a(io_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    dead_port = a.local_endpoint().port();
  }
  auto cfg = config();
  cfg.resolve_override["cl-o.alice.test"] = {"127.0.0.1", dead_port};
  HttpsClient client(io_, cfg);
  auto r = call(client, "GET", "cl-o.alice.test", "/api/me");
  EXPECT_EQ(error_code_of(r), "connect");
}

TEST_F(HttpsClientTest, SlowServerTimesOut) {
  auto cfg = config();
  cfg.request_timeout = 300ms;
  HttpsClient client(io_, cfg);
  const auto start = std::chrono::steady_clock::now();
  auto r = call(client, "GET", "cl-o.alice.test", "/slow");
  const auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(error_code_of(r), "timeout");
  EXPECT_GE(elapsed, 250ms);
  EXPECT_LT(elapsed, 1500ms);
  EXPECT_EQ(server_->slow_requests(), 1);
  EXPECT_EQ(client.pooled_connections(), 0u);
}

TEST_F(HttpsClientTest, ConnectTimeoutCoversTheHandshake) {
  // A TCP listener that accepts and never speaks TLS.
  tcp::acceptor mute(io_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  tcp::socket held(io_);
  mute.async_accept(held, [](boost::system::error_code) {});
  auto cfg = config();
  cfg.resolve_override["cl-o.alice.test"] = {"127.0.0.1", mute.local_endpoint().port()};
  cfg.connect_timeout = 200ms;
  cfg.request_timeout = 5s;
  HttpsClient client(io_, cfg);
  const auto start = std::chrono::steady_clock::now();
  auto r = call(client, "GET", "cl-o.alice.test", "/api/me");
  const auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(error_code_of(r), "timeout");
  EXPECT_LT(elapsed, 1500ms);
}

TEST_F(HttpsClientTest, BodyOverLimitIsTooLarge) {
  auto cfg = config();
  cfg.max_response_bytes = 64 * 1024;
  HttpsClient client(io_, cfg);
  auto r = call(client, "GET", "cl-o.alice.test", "/big");
  EXPECT_EQ(error_code_of(r), "too_large");
  EXPECT_EQ(client.pooled_connections(), 0u);
  // With a larger limit it arrives whole.
  cfg.max_response_bytes = 200 * 1024;
  HttpsClient big(io_, cfg);
  auto r2 = call(big, "GET", "cl-o.alice.test", "/big");
  EXPECT_EQ(ok(r2).body.size(), 100u * 1024);
}

TEST_F(HttpsClientTest, KeepAliveReusesOneConnection) {
  HttpsClient client(io_, config());
  EXPECT_EQ(ok(call(client, "GET", "cl-o.alice.test", "/api/me")).status, 200);
  EXPECT_EQ(client.pooled_connections(), 1u);
  EXPECT_EQ(ok(call(client, "GET", "cl-o.alice.test", "/api/me")).status, 200);
  EXPECT_EQ(ok(call(client, "POST", "cl-o.alice.test", "/echo", "{}", "application/json")).status, 200);
  EXPECT_EQ(server_->accepted(), 1);
  EXPECT_EQ(client.pooled_connections(), 1u);
  // Another host name is another pool entry (host:port), even at the same address.
  EXPECT_EQ(ok(call(client, "GET", "cl-o.bob.test", "/api/me")).status, 200);
  EXPECT_EQ(server_->accepted(), 2);
  EXPECT_EQ(client.pooled_connections(), 2u);
}

TEST_F(HttpsClientTest, ConnectionCloseIsNotPooled) {
  HttpsClient client(io_, config());
  EXPECT_EQ(ok(call(client, "GET", "cl-o.alice.test", "/close")).status, 200);
  EXPECT_EQ(client.pooled_connections(), 0u);
  EXPECT_EQ(ok(call(client, "GET", "cl-o.alice.test", "/api/me")).status, 200);
  EXPECT_EQ(server_->accepted(), 2);
  EXPECT_EQ(client.pooled_connections(), 1u);
}

TEST_F(HttpsClientTest, IdleConnectionsExpire) {
  auto cfg = config();
  cfg.idle_keepalive = 1s;
  HttpsClient client(io_, cfg);
  EXPECT_EQ(ok(call(client, "GET", "cl-o.alice.test", "/api/me")).status, 200);
  EXPECT_EQ(client.pooled_connections(), 1u);
  run_until([&] { return client.pooled_connections() == 0; }, 3s);
  EXPECT_EQ(client.pooled_connections(), 0u);
}

TEST_F(HttpsClientTest, StalePooledConnectionIsRetriedForGet) {
  HttpsClient client(io_, config());
  // The server answers this, then reads the next request on the connection and drops it.
  EXPECT_EQ(ok(call(client, "GET", "cl-o.alice.test", "/drop-next")).status, 200);
  EXPECT_EQ(client.pooled_connections(), 1u);
  auto r = call(client, "GET", "cl-o.alice.test", "/api/me");
  EXPECT_EQ(ok(r).status, 200);
  EXPECT_EQ(server_->accepted(), 2);
  const auto seen = server_->seen();
  ASSERT_EQ(seen.size(), 3u);  // /drop-next, /api/me (dropped), /api/me (retried)
  EXPECT_EQ(seen[1].target, "/api/me");
  EXPECT_EQ(seen[2].target, "/api/me");
}

TEST_F(HttpsClientTest, StalePooledConnectionIsNotRetriedForPost) {
  HttpsClient client(io_, config());
  EXPECT_EQ(ok(call(client, "GET", "cl-o.alice.test", "/drop-next")).status, 200);
  auto r = call(client, "POST", "cl-o.alice.test", "/echo", R"({"a":1})", "application/json");
  EXPECT_EQ(error_code_of(r), "protocol");
  EXPECT_EQ(server_->accepted(), 1);
  EXPECT_EQ(server_->seen().size(), 2u);  // delivered once, never twice
}

TEST_F(HttpsClientTest, PostSendsBodyAndContentType) {
  HttpsClient client(io_, config());
  const std::string body = R"({"token":"abc.def.ghi"})";
  auto r = call(client, "POST", "cl-o.bob.test", "/echo", body, "application/json");
  const auto& res = ok(r);
  EXPECT_EQ(res.status, 200);
  EXPECT_EQ(res.content_type, "text/plain");
  EXPECT_EQ(res.body, "POST application/json " + body + " host=cl-o.bob.test");  // no port: the override is DNS
  const auto seen = server_->seen();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].method, "POST");
  EXPECT_EQ(seen[0].content_type, "application/json");
  EXPECT_EQ(seen[0].body, body);
}

TEST_F(HttpsClientTest, InvalidArgumentsFailWithoutConnecting) {
  HttpsClient client(io_, config());
  EXPECT_EQ(error_code_of(call(client, "GET", "cl-o.alice.test", "api/me")), "protocol");
  EXPECT_EQ(error_code_of(call(client, "GET", "cl-o.alice.test", "/a\r\nX: y")), "protocol");
  EXPECT_EQ(error_code_of(call(client, "GET", "bad host", "/api/me")), "protocol");
  EXPECT_EQ(error_code_of(call(client, "G ET", "cl-o.alice.test", "/api/me")), "protocol");
  EXPECT_EQ(server_->accepted(), 0);
}

TEST_F(HttpsClientTest, ShutdownCancelsInFlightRequests) {
  HttpsClient client(io_, config());
  EXPECT_EQ(ok(call(client, "GET", "cl-o.alice.test", "/api/me")).status, 200);
  EXPECT_EQ(client.pooled_connections(), 1u);

  std::vector<Result> results;
  for (int i = 0; i < 2; ++i)
    client.request("GET", "cl-o.alice.test", "/slow", "", "", [&](Result r) { results.push_back(std::move(r)); });
  run_until([&] { return server_->slow_requests() == 2; }, 5s);
  ASSERT_EQ(server_->slow_requests(), 2);
  EXPECT_TRUE(results.empty());

  const auto start = std::chrono::steady_clock::now();
  client.shutdown();  // on the io thread (this one): runs inline, callbacks come later
  EXPECT_TRUE(results.empty());
  EXPECT_EQ(client.pooled_connections(), 0u);
  run_until([&] { return results.size() == 2; }, 3s);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
  run_for(50ms);
  ASSERT_EQ(results.size(), 2u);
  for (auto& r : results) EXPECT_EQ(error_code_of(r), "cancelled");

  // After shutdown every request fails at once.
  EXPECT_EQ(error_code_of(call(client, "GET", "cl-o.alice.test", "/api/me")), "cancelled");
}

TEST_F(HttpsClientTest, DestroyingTheClientDropsPendingCallbacks) {
  int calls = 0;
  {
    HttpsClient client(io_, config());
    client.request("GET", "cl-o.alice.test", "/slow", "", "", [&](Result) { ++calls; });
    run_until([&] { return server_->slow_requests() == 1; }, 5s);
  }
  run_for(200ms);
  EXPECT_EQ(calls, 0);
}

}  // namespace
}  // namespace presd::transport
