// loadgen: the socket-level load generator of bench/compare (docs/performance.md).
//   loadgen sign ...       pre-sign PRES tokens from a presd data directory
//   loadgen fanout|submit|idle|latency|snapshot --port P [--server-pid PID] ...
#include <CLI/CLI.hpp>

#include <cstdio>
#include <exception>

#include "scenarios.h"
#include "sign.h"

int main(int argc, char** argv) {
  CLI::App app{"presd load generator (bench/compare drives it)"};
  app.require_subcommand(1);

  loadgen::SignOptions s;
  CLI::App* sign = app.add_subcommand("sign", "Pre-sign PRES tokens with a tenant's key from a data dir");
  sign->add_option("--data-dir", s.data_dir)->required();
  sign->add_option("--tenant", s.tenant)->required();
  sign->add_option("--context", s.context)->required();
  sign->add_option("--out", s.out)->required();
  sign->add_option("--count", s.count)->capture_default_str();
  sign->add_option("--pad", s.pad, "filler bytes in c (frame size)")->capture_default_str();
  sign->add_option("--subtypes", s.subtypes, "0: TYPING; N: S0..S(N-1), one presence slot each")->capture_default_str();
  sign->add_option("--iat", s.iat, "0: now")->capture_default_str();
  sign->add_option("--threads", s.threads)->capture_default_str();
  sign->add_flag("--reject-set", s.reject_set, "write the 4-token rejection mix instead");

  loadgen::Options o;
  auto common = [&o](CLI::App* c) {
    c->add_option("--host", o.host)->capture_default_str();
    c->add_option("--port", o.port)->required();
    c->add_option("--proto", o.proto, "presd (also the Node peer) or nats")->capture_default_str();
    c->add_option("--label", o.label);
    c->add_option("--server-pid", o.server_pid, "read CPU and RSS of this process");
    c->add_option("--access-token", o.access_token);
    c->add_option("--context", o.context);
    c->add_option("--tokens", o.tokens_file);
    c->add_option("--mode", o.mode, "submit: ws or inbox")->capture_default_str();
    c->add_option("--subs", o.subs)->capture_default_str();
    c->add_option("--conns", o.conns)->capture_default_str();
    c->add_option("--window", o.window)->capture_default_str();
    c->add_option("--frame-bytes", o.frame_bytes)->capture_default_str();
    c->add_option("--src-ips", o.src_ips, "connect from 127.0.0.2 .. 127.0.0.(1+N)")->capture_default_str();
    c->add_option("--connect-parallel", o.connect_parallel)->capture_default_str();
    c->add_option("--repeats", o.repeats)->capture_default_str();
    c->add_option("--duration", o.duration_s)->capture_default_str();
    c->add_option("--warmup", o.warmup_s)->capture_default_str();
    c->add_option("--rate", o.rate)->capture_default_str();
    c->add_flag("--cycle", o.cycle, "reuse tokens in a cycle");
    c->add_flag("--busy-poll", o.busy_poll, "poll without sleeping (no wake-ups charged to the server)");
    c->add_option("--samples-out", o.samples_out, "latency: write every delivery (n, sent ms, latency ms)");
  };
  int rc = 0;
  struct Scenario {
    const char* name;
    const char* help;
    int (*run)(const loadgen::Options&);
  };
  for (const Scenario& sc : {Scenario{"fanout", "one context, --subs subscribers, PRES kept in flight", loadgen::run_fanout},
                             Scenario{"submit", "PRES over WebSocket or /api/inbox, --window in flight per conn", loadgen::run_submit},
                             Scenario{"idle", "--conns authenticated idle WebSockets: memory, keep-alive CPU", loadgen::run_idle},
                             Scenario{"latency", "PRES at --rate, send-to-receive percentiles", loadgen::run_latency},
                             Scenario{"snapshot", "preload states, then time subscribe round trips", loadgen::run_snapshot}}) {
    CLI::App* c = app.add_subcommand(sc.name, sc.help);
    common(c);
    c->callback([&rc, &o, sc] { rc = sc.run(o); });
  }
  sign->callback([&rc, &s] { rc = loadgen::sign_tokens(s); });
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "loadgen: %s\n", e.what());
    return 1;
  }
  return rc;
}
