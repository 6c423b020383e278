// What the network edge hands to the application and gets back. No Beast types here, so the
// application (src/hub, src/app) compiles without Asio.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace presd::transport {

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string target;  // path + query, as received
  std::string path;    // decoded path without query
  std::string query;   // raw query string without '?'
  std::string host;    // Host header without port, lowercase
  std::string authorization;  // Authorization header value, if any
  std::string content_type;
  std::string body;
  std::string remote_ip;

  // Value of a query parameter (percent-decoded), empty if absent.
  std::string query_param(std::string_view name) const;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

using Responder = std::function<void(HttpResponse)>;

// One accepted WebSocket connection, seen from the application. All methods must be called on
// the I/O thread. Frames are shared, immutable buffers: a broadcast serializes once and every
// connection queues the same buffer.
class WsConnection {
 public:
  virtual ~WsConnection() = default;
  // Queues a text frame. Returns false (and closes the connection with 1008 "slow consumer")
  // if its send queue is over the limit.
  virtual bool send(std::shared_ptr<const std::string> frame) = 0;
  // Sends a close frame with this code and reason, then shuts down.
  virtual void close(std::uint16_t code, std::string reason) = 0;
  virtual std::uint64_t id() const = 0;
  virtual const std::string& remote_ip() const = 0;
};

// Implemented by the application.
class Handler {
 public:
  virtual ~Handler() = default;
  // Any HTTP request that is not a WebSocket upgrade. respond() may be called later, from the
  // I/O thread, exactly once. `request` is only valid during the call: the transport reuses it
  // (and its strings' capacity) for the connection's next request; copy what is kept.
  virtual void on_http(const HttpRequest& request, Responder respond) = 0;

  // A WebSocket upgrade request on `path`. Return true to accept. The connection is always
  // upgraded first (so a refusal can carry a close code, e.g. 4401); on false the transport
  // closes it with close_code/close_reason.
  struct WsAccept {
    bool accept = false;
    std::uint16_t close_code = 4401;
    std::string close_reason;
    std::shared_ptr<void> state;  // opaque per-connection state, given back in the callbacks
  };
  virtual WsAccept on_ws_upgrade(const HttpRequest& request) = 0;
  virtual void on_ws_open(const std::shared_ptr<WsConnection>& conn, std::shared_ptr<void> state) = 0;
  virtual void on_ws_message(const std::shared_ptr<WsConnection>& conn, std::string_view text) = 0;
  virtual void on_ws_close(const std::shared_ptr<WsConnection>& conn) = 0;
};

}  // namespace presd::transport
