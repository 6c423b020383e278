#include "scenarios.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <unordered_map>

#include "harness.h"
#include "wire.h"

namespace loadgen {
namespace {

constexpr std::string_view kNatsSubject = "pres.bench";

bool has(std::string_view text, std::string_view what) { return text.find(what) != std::string_view::npos; }

std::string subscribe_frame(const std::string& context, std::string_view id = "s") {
  return R"({"id":")" + std::string(id) + R"(","cmd":"subscribe","data":{"context":")" + context + R"("}})";
}

std::string pres_frame(const std::string& token, std::size_t id) {
  return R"({"id":")" + std::to_string(id) + R"(","cmd":"pres","data":{"token":")" + token + R"("}})";
}

std::string inbox_request(const Options& o, const std::string& token) {
  const std::string body = R"({"token":")" + token + R"("})";
  return "POST /api/inbox HTTP/1.1\r\nHost: " + o.host + "\r\nContent-Type: application/json\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\n\r\n" + body;
}

// NATS over WebSocket: the text protocol may split or batch messages across frames, so each
// connection keeps the remainder in Conn::side. Returns MSGs seen; answers PING; `pong` counts
// PONGs (our PING after SUB confirms the subscription is registered).
std::size_t feed_nats(Conn& c, std::string_view payload, std::size_t& pong) {
  c.side.append(payload);
  std::size_t msgs = 0, pos = 0;
  const std::string& s = c.side;
  for (;;) {
    const auto eol = s.find("\r\n", pos);
    if (eol == std::string::npos) break;
    const std::string_view line(s.data() + pos, eol - pos);
    if (line.rfind("MSG ", 0) == 0) {
      const auto sp = line.rfind(' ');
      const std::size_t len = std::stoul(std::string(line.substr(sp + 1)));
      if (s.size() < eol + 2 + len + 2) break;  // payload not complete yet
      ++msgs;
      pos = eol + 2 + len + 2;
      continue;
    }
    if (line == "PING") c.send_text("PONG\r\n"), ++c.pings_answered;
    else if (line == "PONG") ++pong;
    else if (line.rfind("-ERR", 0) == 0) std::fprintf(stderr, "nats: %.*s\n", int(line.size()), line.data());
    pos = eol + 2;
  }
  c.side.erase(0, pos);
  return msgs;
}

std::string nats_connect(bool subscribe) {
  std::string s = R"(CONNECT {"verbose":false,"pedantic":false,"protocol":1})" "\r\n";
  if (subscribe) s += "SUB " + std::string(kNatsSubject) + " 1\r\n";
  return s + "PING\r\n";
}

// A 500-byte ACTION frame for the NATS peer, which carries opaque payloads.
std::string synthetic_frame(std::size_t bytes) {
  std::string f = R"({"id":"x","cmd":"ACTION","data":{"type":"PRES","subType":"TYPING","content":{"p":")";
  const std::string tail = R"("}}})";
  if (bytes > f.size() + tail.size()) f.append(bytes - f.size() - tail.size(), 'x');
  return f + tail;
}

double percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  const std::size_t k = std::min(v.size() - 1, static_cast<std::size_t>(std::ceil(p * v.size())) - (p > 0 ? 1 : 0));
  std::nth_element(v.begin(), v.begin() + static_cast<long>(k), v.end());
  return v[k];
}

// Outcome of one submitted PRES: "accepted", "superseded" or the error code.
std::string outcome(int kind, std::string_view body, bool http) {
  if (http) {
    if (kind == 201) return "accepted";
    if (kind == 200) return "superseded";
  } else if (has(body, R"("cmd":"ack")")) {
    return std::string(json_string_field(body, "status"));
  }
  const auto code = json_string_field(body, "code");
  return code.empty() ? "http_" + std::to_string(kind) : std::string(code);
}

}  // namespace

// ---- fan-out: one context, `subs` subscribers, senders keep `window` PRES in flight ----------

int run_fanout(const Options& o) {
  Harness h(o);
  const bool nats = o.proto == "nats";
  const std::vector<std::string> tokens = nats ? std::vector<std::string>{} : h.load_tokens();
  const std::string nats_pub = [&] {
    const std::string f = synthetic_frame(o.frame_bytes);
    std::string m = "PUB " + std::string(kNatsSubject) + " " + std::to_string(f.size()) + "\r\n" + f + "\r\n";
    return m;
  }();

  std::size_t subscribed = 0, received = 0, sub_errors = 0, sent = 0, rejected = 0, pongs = 0, sender_pongs = 0;
  std::uint64_t bytes = 0;
  std::unordered_map<std::string, std::size_t> codes;
  Fleet subs, senders;
  std::vector<char> is_subscribed(o.subs, 0);

  auto pump = [&] {
    if (senders.opened == 0 || senders.done() < o.conns || subscribed < o.subs) return;
    while ((sent - rejected) * o.subs < received + o.window * o.subs) {
      if (!nats && sent >= tokens.size()) return;
      Conn& c = *senders.conns[sent % senders.conns.size()];
      if (nats) c.send_text(nats_pub);
      else c.send_text(pres_frame(tokens[sent], sent));
      ++sent;
    }
  };

  h.open(subs, o.subs, Conn::Mode::websocket,
         [&](Conn& c) { c.send_text(nats ? nats_connect(true) : subscribe_frame(o.context)); },
         [&](Conn& c, int kind, std::string_view p) {
           if (kind == kClose) return;
           if (nats) {
             std::size_t before = pongs;
             received += feed_nats(c, p, pongs);
             if (pongs > before && !is_subscribed[c.index()]) is_subscribed[c.index()] = 1, ++subscribed;
             bytes += p.size();
           } else if (!is_subscribed[c.index()]) {
             if (has(p, R"("cmd":"ack")")) is_subscribed[c.index()] = 1, ++subscribed;
             else if (sub_errors++ == 0) std::fprintf(stderr, "subscribe failed: %.*s\n", int(p.size()), p.data());
             return;
           } else {
             ++received;
             bytes += p.size();
           }
           pump();
         });
  if (!h.run_until([&] { return subscribed + subs.failed + sub_errors >= o.subs; }, 120)) {
    std::fprintf(stderr, "fanout: only %zu of %zu subscribed\n", subscribed, o.subs);
    return 1;
  }
  if (subscribed < o.subs) {
    std::fprintf(stderr, "fanout: %zu subscriptions failed\n", o.subs - subscribed);
    return 1;
  }
  h.open(senders, o.conns, Conn::Mode::websocket,
         [&](Conn& c) { if (nats) c.send_text(nats_connect(false)); },
         [&](Conn& c, int kind, std::string_view p) {
           if (kind == kClose) return;
           if (nats) {
             feed_nats(c, p, sender_pongs);
           } else if (!has(p, R"("cmd":"ack")")) {
             ++rejected;
             ++codes[std::string(json_string_field(p, "code"))];
           }
           pump();
         });
  h.run_until([&] { return senders.done() >= o.conns && (!nats || sender_pongs >= o.conns); }, 30);
  pump();

  h.run_for(o.warmup_s);
  const std::size_t r0 = received, s0 = sent;
  const std::uint64_t b0 = bytes;
  const ProcSample p0 = sample_process(o.server_pid);
  const double g0 = self_cpu_s();
  const auto t0 = Clock::now();
  auto last = received;
  auto t1 = t0;
  // Until the duration is over, or the tokens ran out and every frame of them arrived.
  h.run_until(
      [&] {
        if (received != last) last = received, t1 = Clock::now();
        return seconds_between(t0, Clock::now()) >= o.duration_s ||
               (!nats && sent >= tokens.size() && (sent - rejected) * o.subs <= received);
      },
      o.duration_s + 5);
  if (t1 == t0) t1 = Clock::now();
  const ProcSample p1 = sample_process(o.server_pid);
  const double secs = seconds_between(t0, t1);
  const double frames = static_cast<double>(received - r0);
  const double cpu = p1.cpu_s - p0.cpu_s;
  Result r("fanout", o);
  r.add("subs", o.subs).add("senders", o.conns).add("secs", secs).add("frames", received - r0)
      .add("frames_per_s", frames / secs).add("pres_per_s", double(sent - s0) / secs)
      .add("avg_frame_bytes", frames > 0 ? double(bytes - b0) / frames : 0.0)
      .add("server_cpu_s", cpu).add("frames_per_server_cpu_s", cpu > 0 ? frames / cpu : 0.0)
      .add("us_per_frame", frames > 0 ? cpu * 1e6 / frames : 0.0)
      .add("io_thread_cpu_s", p1.main_run_s - p0.main_run_s)
      .add("gen_cpu_s", self_cpu_s() - g0).add("rejected", rejected).add("closed", subs.closed + senders.closed);
  for (const auto& [code, n] : codes) r.add("err_" + code, n);
  r.print();
  return 0;
}

// ---- submit: verified ingest (unique tokens) or rejection (a cycled mix), WS or inbox ---------

int run_submit(const Options& o) {
  Harness h(o);
  const bool http = o.mode == "inbox";
  const std::vector<std::string> tokens = h.load_tokens();
  std::vector<std::string> requests;
  for (const auto& t : tokens) requests.push_back(http ? inbox_request(o, t) : std::string());
  std::size_t next = 0, answered = 0;
  std::unordered_map<std::string, std::size_t> outcomes;

  auto send_one = [&](Conn& c) {
    if (!o.cycle && next >= tokens.size()) return;
    const std::size_t i = next++ % tokens.size();
    if (http) c.send_raw(requests[i]);
    else c.send_text(pres_frame(tokens[i], i));
  };
  Fleet fleet;
  h.open(fleet, o.conns, http ? Conn::Mode::http : Conn::Mode::websocket,
         [&](Conn& c) { for (std::size_t k = 0; k < o.window; ++k) send_one(c); },
         [&](Conn& c, int kind, std::string_view body) {
           if (!http && kind == kClose) return;
           ++answered;
           ++outcomes[outcome(kind, body, http)];
           send_one(c);
         });
  h.run_until([&] { return fleet.done() >= o.conns; }, 60);
  h.run_for(o.warmup_s);
  const auto before = outcomes;
  const std::size_t a0 = answered;
  const ProcSample p0 = sample_process(o.server_pid);
  const double g0 = self_cpu_s();
  const auto t0 = Clock::now();
  h.run_until([&] { return seconds_between(t0, Clock::now()) >= o.duration_s || (!o.cycle && answered >= tokens.size()); },
              o.duration_s + 5);
  const double secs = seconds_between(t0, Clock::now());
  const ProcSample p1 = sample_process(o.server_pid);
  const double cpu = p1.cpu_s - p0.cpu_s;
  const double n = static_cast<double>(answered - a0);
  std::size_t accepted = 0;
  Result r("submit", o);
  r.add("mode", o.mode).add("conns", o.conns).add("window", o.window).add("secs", secs).add("answers", answered - a0)
      .add("answers_per_s", n / secs).add("server_cpu_s", cpu).add("answers_per_server_cpu_s", cpu > 0 ? n / cpu : 0.0)
      .add("gen_cpu_s", self_cpu_s() - g0);
  for (const auto& [what, count] : outcomes) {
    const auto it = before.find(what);
    const std::size_t d = count - (it == before.end() ? 0 : it->second);
    if (what == "accepted") accepted = d;
    r.add("n_" + what, d);
  }
  r.add("accepted_per_s", double(accepted) / secs).add("rejected_per_s", (n - double(accepted)) / secs);
  r.add("closed", fleet.closed);
  r.print();
  return 0;
}

// ---- idle: many authenticated connections, memory per connection, keep-alive cost -----------

int run_idle(const Options& o) {
  Harness h(o);
  // The server's own cost with no connection (its timers, the store poll), so that the keep-alive
  // cost of the connections is not charged with it: at 19000 connections scaled to 100k it would
  // count five times over.
  h.run_for(1);
  auto cpu_of = [](const ProcSample& p) { return p.run_s > 0 ? p.run_s : p.cpu_s; };  // schedstat if there
  const double base_window = std::min(5.0, std::max(1.0, o.duration_s / 4));
  const ProcSample b0 = sample_process(o.server_pid);
  h.run_for(base_window);
  const ProcSample base = sample_process(o.server_pid);
  const double base_cores = (cpu_of(base) - cpu_of(b0)) / base_window;
  Fleet fleet;
  std::size_t subscribed = 0;
  const auto t_open = Clock::now();
  const bool nats = o.proto == "nats";
  h.open(fleet, o.conns, Conn::Mode::websocket,
         [&](Conn& c) {
           if (nats) c.send_text(nats_connect(true));
           else if (!o.context.empty()) c.send_text(subscribe_frame(o.context));
         },
         [&](Conn& c, int kind, std::string_view p) {
           if (kind == kClose) return;
           if (nats) feed_nats(c, p, subscribed);
           else if (has(p, R"("cmd":"ack")")) ++subscribed;
         });
  h.run_until([&] { return fleet.done() >= o.conns && ((!nats && o.context.empty()) || subscribed + fleet.closed >= fleet.opened); },
              600);
  const double open_secs = seconds_between(t_open, Clock::now());
  h.run_for(1);  // let the server settle its allocations
  auto pings = [&] {
    std::size_t n = 0;
    for (const auto& c : fleet.conns) n += c->pings_answered;
    return n;
  };
  const ProcSample p0 = sample_process(o.server_pid);
  const std::size_t pings0 = pings();
  const auto t0 = Clock::now();
  h.run_for(o.duration_s);
  const ProcSample p1 = sample_process(o.server_pid);
  const std::size_t pinged = pings() - pings0;
  const double secs = seconds_between(t0, Clock::now());
  const double conns = static_cast<double>(fleet.opened);
  const double per_conn = fleet.opened ? (p0.rss_kb - base.rss_kb) * 1024.0 / conns : 0.0;
  const double cpu = cpu_of(p1) - cpu_of(p0);
  const double cpu_net = std::max(0.0, cpu - base_cores * secs);
  Result r("idle", o);
  r.add("conns", fleet.opened).add("failed", fleet.failed).add("subscribed", subscribed).add("open_secs", open_secs)
      .add("rss_base_kb", base.rss_kb).add("rss_kb", p0.rss_kb).add("bytes_per_conn", per_conn)
      .add("hold_secs", secs).add("server_cpu_s", cpu).add("base_cores", base_cores)
      .add("cores_per_100k", fleet.opened ? cpu / secs * 100000.0 / conns : 0.0)
      .add("keepalive_cores_per_100k", fleet.opened ? cpu_net / secs * 100000.0 / conns : 0.0)
      .add("pings", pinged).add("pings_per_conn", fleet.opened ? double(pinged) / conns : 0.0)
      .add("server_us_per_ping", pinged ? cpu_net * 1e6 / double(pinged) : 0.0)
      .add("closed_during_hold", fleet.closed);
  r.print();
  return 0;
}

// ---- latency: PRES at a fixed rate, send-to-receive at every subscriber ----------------------

int run_latency(const Options& o) {
  Harness h(o);
  const std::vector<std::string> tokens = h.load_tokens();
  std::vector<Clock::time_point> sent_at(tokens.size());
  std::vector<double> lat_ms;
  std::vector<long long> lat_n;  // the PRES each sample belongs to (--samples-out)
  std::size_t subscribed = 0, sent = 0, measure_from = tokens.size(), rejected = 0;
  Fleet subs, senders;
  h.open(subs, o.subs, Conn::Mode::websocket, [&](Conn& c) { c.send_text(subscribe_frame(o.context)); },
         [&](Conn&, int kind, std::string_view p) {
           if (kind == kClose) return;
           if (!has(p, R"("cmd":"ACTION")")) {
             if (has(p, R"("cmd":"ack")")) ++subscribed;
             return;
           }
           const long long n = json_int_field(p, "n");
           if (n >= static_cast<long long>(measure_from) && n < static_cast<long long>(sent)) {
             lat_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - sent_at[n]).count());
             lat_n.push_back(n);
           }
         });
  h.run_until([&] { return subscribed + subs.failed >= o.subs; }, 60);
  h.open(senders, o.conns, Conn::Mode::websocket, [](Conn&) {},
         [&](Conn&, int kind, std::string_view p) {
           if (kind != kClose && !has(p, R"("cmd":"ack")")) {
             if (rejected++ == 0) std::fprintf(stderr, "latency: PRES refused: %.*s\n", int(p.size()), p.data());
           }
         });
  h.run_until([&] { return senders.done() >= o.conns; }, 30);

  const auto start = Clock::now();
  ProcSample p0;
  auto t0 = start;
  bool measuring = false;
  const double total = o.warmup_s + o.duration_s;
  h.run_until(
      [&] {
        const auto now = Clock::now();
        const double elapsed = seconds_between(start, now);
        if (!measuring && elapsed >= o.warmup_s) {
          measuring = true, measure_from = sent, t0 = now, p0 = sample_process(o.server_pid);
        }
        const auto due = std::min(tokens.size(), static_cast<std::size_t>(elapsed * o.rate));
        while (sent < due) {
          sent_at[sent] = Clock::now();
          senders.conns[sent % senders.conns.size()]->send_text(pres_frame(tokens[sent], sent));
          ++sent;
        }
        return elapsed >= total || sent >= tokens.size();
      },
      total + 5);
  const double secs = seconds_between(t0, Clock::now());
  const ProcSample p1 = sample_process(o.server_pid);
  // The frames still in flight: a late delivery must count in the percentiles, not be dropped.
  const std::size_t expected = (sent - measure_from) * subscribed;
  h.run_until([&] { return lat_ms.size() >= expected; }, 10);
  const std::size_t samples = lat_ms.size();
  if (!o.samples_out.empty()) {
    std::ofstream f(o.samples_out);
    for (std::size_t i = 0; i < samples; ++i)
      f << lat_n[i] << ' ' << std::chrono::duration<double, std::milli>(sent_at[lat_n[i]] - start).count() << ' '
        << lat_ms[i] << '\n';
  }
  Result r("latency", o);
  r.add("subs", o.subs).add("rate", o.rate).add("pres_sent", sent - measure_from).add("deliveries", samples)
      .add("missing", expected > samples ? expected - samples : 0)
      .add("p50_ms", percentile(lat_ms, 0.50)).add("p90_ms", percentile(lat_ms, 0.90))
      .add("p99_ms", percentile(lat_ms, 0.99)).add("max_ms", percentile(lat_ms, 1.0))
      .add("server_cores", (p1.cpu_s - p0.cpu_s) / secs).add("io_thread_cpu_s", p1.main_run_s - p0.main_run_s)
      .add("rejected", rejected);
  r.print();
  return 0;
}

// ---- snapshot: subscribe round trip with N live states in the context ------------------------

int run_snapshot(const Options& o) {
  Harness h(o);
  const std::vector<std::string> tokens = h.load_tokens();
  std::size_t next = 0, answered = 0, accepted = 0;
  Fleet fleet;
  h.open(fleet, 1, Conn::Mode::websocket,
         [&](Conn& c) { for (std::size_t k = 0; k < o.window && next < tokens.size(); ++k, ++next) c.send_text(pres_frame(tokens[next], next)); },
         [&](Conn& c, int kind, std::string_view p) {
           if (kind == kClose) return;
           ++answered;
           if (has(p, R"("status":"accepted")")) ++accepted;
           else if (answered - accepted == 1) std::fprintf(stderr, "snapshot: preload refused: %.*s\n", int(p.size()), p.data());
           if (next < tokens.size()) c.send_text(pres_frame(tokens[next], next)), ++next;
         });
  h.run_until([&] { return answered >= tokens.size() || fleet.failed; }, 120);

  Fleet probe;
  std::vector<double> rtt_ms;
  std::size_t entries = 0, ack_bytes = 0;
  bool waiting = false;
  Clock::time_point asked;
  h.open(probe, 1, Conn::Mode::websocket, [](Conn&) {},
         [&](Conn&, int kind, std::string_view p) {
           if (kind == kClose || !has(p, R"("id":"s")")) return;
           rtt_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - asked).count());
           ack_bytes = p.size();
           entries = 0;
           for (auto pos = p.find(R"("type":"PRES")"); pos != std::string_view::npos; pos = p.find(R"("type":"PRES")", pos + 1)) ++entries;
           waiting = false;
         });
  h.run_until([&] { return probe.done() >= 1; }, 10);
  const ProcSample p0 = sample_process(o.server_pid);
  for (std::size_t i = 0; i < o.repeats; ++i) {
    waiting = true;
    asked = Clock::now();
    probe.conns[0]->send_text(subscribe_frame(o.context));  // re-subscribing returns a fresh snapshot
    if (!h.run_until([&] { return !waiting; }, 10)) break;
  }
  const ProcSample p1 = sample_process(o.server_pid);
  Result r("snapshot", o);
  r.add("preloaded", accepted).add("entries", entries).add("ack_bytes", ack_bytes).add("subscribes", rtt_ms.size())
      .add("p50_ms", percentile(rtt_ms, 0.5)).add("p90_ms", percentile(rtt_ms, 0.9))
      .add("p99_ms", percentile(rtt_ms, 0.99)).add("max_ms", percentile(rtt_ms, 1.0))
      .add("server_ms_per_subscribe", rtt_ms.empty() ? 0.0 : (p1.cpu_s - p0.cpu_s) * 1e3 / double(rtt_ms.size()));
  r.print();
  return 0;
}

}  // namespace loadgen
