// `presd serve`: wires the store, keys, hub and HTTP API to the network and runs until SIGTERM.
// Threads: one I/O thread owns all state; a small pool does ES384 signing and verification.
#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>

#include <fstream>
#include <thread>

#include "app/cluster.h"
#include "app/commands.h"
#include "app/data_dir.h"
#include "app/http_api.h"
#include "app/federation.h"
#include "app/logging.h"
#include "app/metrics.h"
#include "common/identifiers.h"
#include "hub/hub.h"
#include "keys/key_ring.h"
#include "store/open_store.h"
#include "transport/server.h"

namespace presd::app {
namespace net = boost::asio;

namespace {

struct ServeOptions {
  std::string data_dir = "./data";
  std::string store_url;  // empty: <data-dir>/presd.db
  std::string listen = "127.0.0.1:8080";
  std::string port_file;
  std::string access_secret_file;  // default: <data-dir>/access.secret
  std::string admin_token_file;    // default: <data-dir>/admin.token
  std::vector<std::string> tenants;
  std::string log_level = "info";
  std::string log_format = "text";
  unsigned crypto_threads = 0;  // 0 = hardware concurrency
  int shutdown_grace_ms = 5000;
  HubConfig hub;
  transport::ServerConfig server;
  FederationOptions federation;
  InboxBanConfig inbox_ban;
  ClusterOptions cluster;
};

void parse_listen(const std::string& listen, transport::ServerConfig& cfg) {
  auto colon = listen.rfind(':');
  if (colon == std::string::npos) throw std::runtime_error("--listen must be ADDRESS:PORT");
  cfg.bind_address = listen.substr(0, colon);
  const int port = std::stoi(listen.substr(colon + 1));
  if (port < 0 || port > 65535) throw std::runtime_error("--listen port out of range");
  cfg.port = static_cast<std::uint16_t>(port);
}

// Expires presence and sweeps limiters every tick, on the I/O thread.
void schedule_tick(net::steady_timer& timer, std::chrono::milliseconds every, std::function<void()> work) {
  timer.expires_after(every);
  timer.async_wait([&timer, every, work = std::move(work)](boost::system::error_code ec) {
    if (ec) return;
    work();
    schedule_tick(timer, every, work);
  });
}

int run(ServeOptions& o) {
  configure_logging(o.log_level, o.log_format);
  parse_listen(o.listen, o.server);

  DataDir dir{o.data_dir};
  auto where = parse_store_url(o.store_url, dir.db_path());
  if (!where) throw std::runtime_error(where.error().message);  // before creating anything
  dir.ensure();
  const std::string store_name = where->backend == StoreBackend::postgres ? redact_store_url(where->target) : where->target;
  std::unique_ptr<Store> store_ptr = open_store(*where);
  Store& store = *store_ptr;
  KeyRing keys(store);
  SystemClock clock;
  for (const std::string& tag : o.tenants) {
    if (!is_canonical_id_tag(tag)) throw std::runtime_error("--tenant " + tag + " is not a canonical id_tag");
    if (Status s = keys.ensure_tenant(tag, clock.now_s()); !s)
      throw std::runtime_error("tenant " + tag + ": " + s.error().message);
  }
  if (Status s = keys.load(); !s) throw std::runtime_error("loading keys: " + s.error().message);
  if (keys.tenants().empty())
    spdlog::warn("no tenants hosted yet: add one with --tenant ID, `presd tenant add ID` or POST /api/admin/tenants");
  ApiSecrets secrets{o.access_secret_file.empty() ? dir.access_secret() : read_secret_file(o.access_secret_file),
                     o.admin_token_file.empty() ? dir.admin_token() : read_secret_file(o.admin_token_file)};

  // Owned through a pointer so that shutdown can leave it to process exit (see the end).
  auto io_owner = std::make_unique<net::io_context>(1);
  net::io_context& io = *io_owner;
  const unsigned threads = o.crypto_threads ? o.crypto_threads : std::max(1u, std::thread::hardware_concurrency());
  net::thread_pool crypto(threads);
  Executors exec{[&crypto](Executors::Task t) { net::post(crypto, std::move(t)); },
                 [&io](Executors::Task t) { net::post(io, std::move(t)); }};

  Hub hub(o.hub, clock, store, keys, exec);
  HttpApi api(hub, store, store, keys, clock, secrets, o.inbox_ban);
  transport::Server server(io, o.server, api);
  Federation federation(io, o.federation, clock);
  hub.set_remote_keys(&federation);
  hub.set_forwarder(&federation);
  Metrics metrics(hub, [&server] { return server.connection_count(); },
                  [&federation] { return federation.outbox_queued(); });
  hub.set_observer(&metrics);
  metrics.set_transport_stats([&server] { return server.stats(); });
  api.set_metrics([&metrics] { return metrics.scrape(); });
  // Bus messages arrive on libnats threads; only the hub's (I/O) thread touches the hub.
  std::unique_ptr<Broker> broker = make_broker(o.cluster, [&io](Broker::Task t) { net::post(io, std::move(t)); });
  hub.set_broker(broker.get());
  metrics.set_broker(broker.get());
  broker->start([&hub](BusMessage m) { hub.receive_from_bus(std::move(m)); });
  server.start();

  if (!o.port_file.empty()) {
    std::ofstream(o.port_file + ".tmp") << server.port() << '\n';
    std::rename((o.port_file + ".tmp").c_str(), o.port_file.c_str());
  }
  spdlog::info("presd listening on {}:{} (data {}, store {}, {} tenants, {} crypto threads, ttl {}s)",
               o.server.bind_address, server.port(), o.data_dir, store_name, keys.tenants().size(), threads,
               o.hub.freshness.ttl_s);

  // The admin CLI (and, on PostgreSQL, other nodes) write to the same store; its change counter
  // tells us when, so their revocations end live subscriptions and new tenants are served
  // without a restart. A store that is down is retried on the next tick.
  std::int64_t seen_version = store.external_change_counter().ok() ? *store.external_change_counter() : 0;
  bool store_down = false;  // log an outage once, not every second
  auto pick_up_external_changes = [&] {
    auto version = store.external_change_counter();
    if (!version) {
      if (!store_down) spdlog::warn("store: {} (retrying every second)", version.error().message);
      store_down = true;
      return;
    }
    if (store_down) spdlog::info("store {} is reachable again", store_name);
    store_down = false;
    if (*version == seen_version) return;
    seen_version = *version;
    if (Status s = keys.load(); !s) spdlog::warn("reloading keys after an external change: {}", s.error().message);
    const std::size_t ended = hub.revalidate_subscriptions();
    spdlog::info("store changed outside this process: {} tenants, {} subscriptions ended", keys.tenants().size(), ended);
  };

  net::steady_timer ticker(io);
  std::int64_t last_api_tick = 0;
  schedule_tick(ticker, std::chrono::milliseconds(o.hub.expiry_tick_ms), [&] {
    hub.tick();
    if (clock.now_ms() - last_api_tick >= 1000) {
      last_api_tick = clock.now_ms();
      api.tick();
      pick_up_external_changes();
    }
  });

  net::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](boost::system::error_code ec, int sig) {
    if (ec) return;
    spdlog::info("signal {}: draining (grace {} ms)", sig, o.shutdown_grace_ms);
    api.set_draining();
    federation.shutdown();
    server.shutdown(std::chrono::milliseconds(o.shutdown_grace_ms), [&] {
      ticker.cancel();
      io.stop();
    });
  });

  // A handler that throws is a bug; log it and keep serving the other connections.
  for (;;) {
    try {
      io.run();
      break;
    } catch (const std::exception& e) {
      spdlog::error("unhandled exception on the I/O thread: {}", e.what());
    }
  }
  crypto.join();
  broker->stop();
  hub.set_broker(nullptr);
  metrics.set_broker(nullptr);
  hub.set_observer(nullptr);  // metrics and federation go out of scope first
  hub.set_remote_keys(nullptr);
  hub.set_forwarder(nullptr);
  const HubStats st = hub.stats();
  spdlog::info("presd stopped ({} accepted, {} rejected, {} frames delivered)", st.accepted, st.rejected,
               st.delivered_frames);
  // Asio resolves names with a blocking getaddrinfo on a helper thread that cancel() cannot
  // interrupt, and io_context's destructor joins it: a lookup in flight would hold the exit for
  // the resolver's timeout (5 s by default). Everything else has shut down, so skip that join
  // (kept reachable from a static so that LeakSanitizer does not call it a leak).
  static net::io_context* const left_to_exit = io_owner.release();
  (void)left_to_exit;
  return 0;
}

}  // namespace

void add_serve_command(CLI::App& root) {
  auto o = std::make_shared<ServeOptions>();
  CLI::App* cmd = root.add_subcommand("serve", "Run the presd server (HTTP + /ws/bus) until SIGTERM");
  cmd->add_option("--data-dir", o->data_dir, "Data directory (SQLite store, secrets)")->capture_default_str();
  cmd->add_option("--store", o->store_url,
                  "postgres://USER:PASS@HOST:PORT/DB for PostgreSQL, or sqlite:PATH (default: <data-dir>/presd.db)");
  cmd->add_option("--listen", o->listen, "Address and port to listen on (port 0 picks one)")->capture_default_str();
  cmd->add_option("--port-file", o->port_file, "Write the bound port to this file once listening");
  cmd->add_option("--access-secret-file", o->access_secret_file,
                  "HS256 secret for client access tokens (default: <data-dir>/access.secret, generated)");
  cmd->add_option("--admin-token-file", o->admin_token_file,
                  "Bearer token of the admin API (default: <data-dir>/admin.token, generated)");
  cmd->add_option("--tenant", o->tenants, "Host this id_tag (repeatable); a key is generated if it has none");
  cmd->add_option("--log-level", o->log_level, "trace, debug, info, warn, error")->capture_default_str();
  cmd->add_option("--log-format", o->log_format, "text, or json (one JSON object per line)")->capture_default_str();
  cmd->add_option("--crypto-threads", o->crypto_threads, "Threads for ES384 work (0 = one per core)")->capture_default_str();
  cmd->add_option("--shutdown-grace-ms", o->shutdown_grace_ms, "How long SIGTERM waits for connections")->capture_default_str();
  cmd->add_option("--pres-ttl", o->hub.freshness.ttl_s, "Seconds a PRES stays live after its iat")->capture_default_str()->check(CLI::Range(1, 3600));
  cmd->add_option("--max-skew", o->hub.freshness.max_skew_s, "Seconds an iat may lie in the future")->capture_default_str()->check(CLI::Range(0, 300));
  cmd->add_option("--expiry-tick-ms", o->hub.expiry_tick_ms, "Resolution of presence expiry")->capture_default_str()->check(CLI::Range(10, 1000));
  cmd->add_option("--max-subscriptions", o->hub.max_subscriptions_per_connection, "Subscriptions per connection")->capture_default_str();
  auto& r = o->hub.rates;
  cmd->add_option("--issuer-rate", r.issuer_rate_per_s, "PRES per second per issuer")->capture_default_str();
  cmd->add_option("--issuer-burst", r.issuer_burst, "PRES burst per issuer")->capture_default_str();
  cmd->add_option("--conn-rate", r.connection_rate_per_s, "PRES per second per connection")->capture_default_str();
  cmd->add_option("--conn-burst", r.connection_burst, "PRES burst per connection")->capture_default_str();
  cmd->add_option("--ip-rate", r.ip_rate_per_s, "HTTP PRES requests per second per source IP")->capture_default_str();
  cmd->add_option("--ip-burst", r.ip_burst, "HTTP PRES burst per source IP")->capture_default_str();
  cmd->add_option("--ws-frame-rate", o->hub.command_rate_per_s, "/ws/bus frames (any command) per second per connection")->capture_default_str();
  cmd->add_option("--ws-frame-burst", o->hub.command_burst, "/ws/bus frame burst per connection")->capture_default_str();
  cmd->add_option("--same-state-interval-ms", r.same_state_interval_ms,
                  "Minimum ms between two PRES with the same issuer, context and subtype")->capture_default_str();
  auto& f = o->federation;
  cmd->add_option("--peer-ca-file", f.ca_file, "PEM CAs trusted for peers' HTTPS (default: the system store)");
  cmd->add_option("--peer-resolve", f.resolve, "HOST=IP[:PORT]: reach a peer there instead of via DNS (repeatable)");
  cmd->add_flag("--allow-loopback-peers", f.allow_loopback, "Let key fetches connect to loopback addresses (tests only)");
  cmd->add_flag("--allow-private-peers", f.allow_private, "Let key fetches connect to private networks (10/8, 192.168/16, fc00::/7...)");
  cmd->add_option("--key-refetch-interval-s", f.key_refetch_interval_s,
                  "Minimum seconds between two refetches of an issuer's keys (unknown kid, failed verify)")->capture_default_str()->check(CLI::Range(0, 86400));
  cmd->add_option("--key-rejected-cache-s", f.key_rejected_cache_s,
                  "Seconds an issuer whose /api/me answer was unusable (HTTP 4xx, not a key document) is refused without refetching")->capture_default_str()->check(CLI::Range(0, 86400));
  cmd->add_option("--key-unavailable-cache-s", f.key_unavailable_cache_s,
                  "Seconds an issuer whose key server could not be reached (timeout, reset, TLS, 5xx) is refused without refetching")->capture_default_str()->check(CLI::Range(0, 86400));
  cmd->add_option("--peer-timeout-ms", f.fetch_timeout_ms, "Timeout of one key fetch or inbox POST")->capture_default_str()->check(CLI::Range(100, 60000));
  cmd->add_option("--peer-breaker-open-s", f.breaker_open_s,
                  "Seconds no PRES is sent to a peer after 5 failed POSTs in a row (then one probe)")->capture_default_str()->check(CLI::Range(1, 3600));
  cmd->add_option("--bad-signature-strikes", o->inbox_ban.strikes,
                  "Bad inbox signatures from one IP within an hour that ban it for an hour (0: never ban)")->capture_default_str();
  add_cluster_options(*cmd, o->cluster);
  cmd->add_option("--max-body-bytes", o->server.max_body_bytes, "HTTP body limit")->capture_default_str();
  cmd->add_option("--max-ws-message-bytes", o->server.max_ws_message_bytes, "WebSocket message limit (close 1009)")->capture_default_str();
  cmd->add_option("--max-connections-per-ip", o->server.max_connections_per_ip,
                  "Open connections per source IP; more are answered 429 too_many_connections (0: no cap)")->capture_default_str();
  cmd->add_option_function<std::int64_t>(
         "--http-read-timeout-ms",
         [o](std::int64_t ms) { o->server.http_read_timeout = std::chrono::milliseconds(ms); },
         "Time a request's header and body have to arrive after its first byte (408 request_timeout)")
      ->default_str(std::to_string(o->server.http_read_timeout.count()))
      ->check(CLI::Range(100, 600'000));
  cmd->add_option_function<std::int64_t>(
         "--ws-ping-interval-s",
         [o](std::int64_t s) { o->server.ws_ping_interval = std::chrono::seconds(s); },
         "Seconds of silence after which a WebSocket is pinged (within a quarter of it); silent for two "
         "intervals, it is dropped. Keep 1.25 times it under the idle timeout of proxies in front")
      ->default_str(std::to_string(o->server.ws_ping_interval.count()))
      ->check(CLI::Range(1, 3600));
  // --config belongs to the root command (CLI11 reads config files there); fallthrough lets it
  // follow `serve` on the command line. The file's [serve] section holds these options.
  // PRESD_<OPTION> environment variables are turned into options by main() (app/env_options.h).
  cmd->fallthrough();
  cmd->callback([o] {
    const int rc = run(*o);
    if (rc != 0) throw CLI::RuntimeError(rc);
  });
}

}  // namespace presd::app
