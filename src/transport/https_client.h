// Outbound HTTPS client (Boost.Beast over Asio SSL) for federation: key fetches from remote
// instances (GET https://cl-o.<iss>/api/me) and PRES delivery to remote inboxes.
//
// - Certificate verification is always on (peer chain + host name), TLS >= 1.2, SNI is sent.
// - Host names are resolved with the resolver unless `resolve_override` maps them; every address
//   (resolved or overridden) goes through `address_allowed` before any connect (SSRF guard).
// - Keep-alive pool per host:port; a GET that fails on a stale pooled connection before any
//   response byte arrived is retried once on a fresh connection (never a non-GET).
// - Threads: every method may be called from any thread; the work runs on the io_context given
//   to the constructor and callbacks run there, exactly once per request (with one exception:
//   requests still pending when the HttpsClient is destroyed are dropped without a callback, so
//   that no callback runs into an owner that is being destroyed).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <variant>

namespace boost::asio { class io_context; }

namespace presd::transport {

struct HttpsClientConfig {
  // PEM bundle of trusted CAs; empty = the system default paths (SSL_CTX_set_default_verify_paths).
  std::string ca_file;
  // "cl-o.alice.test" -> {"127.0.0.1", 8443}: skip DNS for that host (the first element may also be
  // a name, which is then resolved), connect there, and still verify the certificate for the
  // original host name (and send it as Host, without the port). Keys are matched
  // case-insensitively (write them in lowercase).
  std::map<std::string, std::pair<std::string, std::uint16_t>> resolve_override;
  // SSRF guard applied to every resolved / overridden address (as a string, "127.0.0.1", "::1";
  // IPv4-mapped IPv6 addresses are given in IPv4 form) before connect. Addresses it refuses are
  // skipped; if none is left the request fails with "forbidden_address". Empty = allow all.
  std::function<bool(const std::string& ip)> address_allowed;
  std::chrono::milliseconds connect_timeout{3000};  // TCP connect + TLS handshake
  std::chrono::milliseconds request_timeout{5000};  // whole request, from request() to the response
  std::size_t max_response_bytes = 64 * 1024;       // response body limit -> "too_large"
  std::size_t max_idle_per_host = 4;                // keep-alive pool per host:port (0 = no reuse)
  std::chrono::seconds idle_keepalive{30};          // an idle pooled connection is closed after this
};

struct HttpsResponse {
  int status = 0;
  std::string body;
  std::string content_type;
};

struct HttpsError {
  // "timeout", "tls", "connect", "resolve", "forbidden_address", "too_large", "protocol"
  // (malformed or truncated response, connection lost after the handshake, invalid request
  // arguments), "cancelled" (shutdown() or a request made after it).
  std::string code;
  std::string message;
};

class HttpsClient {
 public:
  // Throws std::system_error if `ca_file` cannot be loaded.
  HttpsClient(boost::asio::io_context& io, HttpsClientConfig cfg);
  ~HttpsClient();
  HttpsClient(const HttpsClient&) = delete;
  HttpsClient& operator=(const HttpsClient&) = delete;

  // `host` is a DNS name: SNI and certificate verification use it; port 443 unless overridden.
  // `target` is the request target ("/api/me"). `content_type` is sent when not empty. `done` runs
  // on the io thread, exactly once, never from inside request().
  void request(std::string method, std::string host, std::string target, std::string body,
               std::string content_type, std::function<void(std::variant<HttpsResponse, HttpsError>)> done);

  // Cancels in-flight requests (they complete with "cancelled") and closes pooled connections.
  // Later requests complete with "cancelled". Runs inline when called on the io thread.
  void shutdown();

  std::size_t pooled_connections() const;  // idle connections currently in the pool

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace presd::transport
