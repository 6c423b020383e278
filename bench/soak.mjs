// Soak benchmark (docs/performance.md, "Soak"): one presd under a steady mixed load for a long
// time, its RSS and open file descriptors sampled at a fixed interval, and a verdict on whether
// memory stays flat. Not a ctest test; run it as `bench/soak --seconds 600`.
//
// Load: `--users` hosted users with `--conns` connections each, spread over `--contexts`
// contexts every user is a member of. Every connection, about once per `--tick-ms`, does one
// random thing: refresh TYPING (most often), go ONLINE or AWAY, subscribe to or unsubscribe
// from a context, or (rarely) disconnect and reconnect. Presence expires by TTL as usual, so
// the states and subscriptions churn the whole time.
//
// Verdict (exit 1 when either bound is broken, or presd died):
//   growth = last RSS sample / the largest RSS sample of the warm-up (the first minute, or the
//            first third of a shorter run) - 1; must be <= --max-growth-pct (default 10 %);
//   slope  = least-squares slope of RSS over the second half of the run; must be
//            <= --max-slope-kib-min (default 256 KiB per minute);
//   fds    = the last fd count may exceed the warm-up maximum by at most 16.
// Exit 3 (whatever the memory verdict, unless presd crashed) when the run is not valid: this client fell behind (replies missing after 10 s, or
// presd closed a connection as a slow consumer, 1008). presd then holds up to 1 MiB of queued
// frames per connection and RSS measures the client, not a leak; lower --users / --conns.
import { parseArgs } from 'node:util';
import fs from 'node:fs';
import { startPresd, stopAll, makeContext, sleep } from '../tests/e2e/harness.mjs';

const { values: opt } = parseArgs({
  options: {
    seconds: { type: 'string', default: '600' },
    'sample-s': { type: 'string', default: '10' },
    users: { type: 'string', default: '10' },
    conns: { type: 'string', default: '10' },
    contexts: { type: 'string', default: '20' },
    'tick-ms': { type: 'string', default: '1000' },
    'max-growth-pct': { type: 'string', default: '10' },
    'max-slope-kib-min': { type: 'string', default: '256' },
    help: { type: 'boolean', default: false },
  },
});
if (opt.help) {
  process.stdout.write(fs.readFileSync(new URL(import.meta.url), 'utf8').split('\n').filter((l) => l.startsWith('//')).join('\n') + '\n');
  process.exit(0);
}
const num = (k) => {
  const v = Number(opt[k]);
  if (!Number.isFinite(v) || v <= 0) throw new Error(`--${k} must be a positive number`);
  return v;
};
const SECONDS = num('seconds'), SAMPLE_S = num('sample-s'), USERS = num('users'), CONNS = num('conns');
const CONTEXTS = num('contexts'), TICK_MS = num('tick-ms');
const MAX_GROWTH = num('max-growth-pct') / 100, MAX_SLOPE = num('max-slope-kib-min');

const users = Array.from({ length: USERS }, (_, i) => `soak${i}.test`);
const counts = { pres: 0, acks: 0, errors: {}, frames: 0, subscribes: 0, unsubscribes: 0, reconnects: 0, closes: {}, lost: {} };

function procSample(pid) {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const rssKiB = Number(status.match(/^VmRSS:\s+(\d+) kB$/m)[1]);
  const fds = fs.readdirSync(`/proc/${pid}/fd`).length;
  return { rssKiB, fds };
}

// Least-squares slope of y over x.
function slope(points) {
  const n = points.length;
  if (n < 2) return 0;
  const mx = points.reduce((a, p) => a + p.x, 0) / n;
  const my = points.reduce((a, p) => a + p.y, 0) / n;
  const num = points.reduce((a, p) => a + (p.x - mx) * (p.y - my), 0);
  const den = points.reduce((a, p) => a + (p.x - mx) ** 2, 0);
  return den === 0 ? 0 : num / den;
}

const pick = (arr) => arr[Math.floor(Math.random() * arr.length)];

// One simulated client: keeps a connection, acts about once per tick, reconnects sometimes.
async function session(server, user, token, ctxs, stopAt) {
  while (Date.now() < stopAt) {
    let c;
    try {
      c = await server.ws(token, { label: user });
    } catch {
      await sleep(500);
      continue;
    }
    const subscribed = new Set();
    c.ws.on('message', () => { counts.frames++; });
    const send = (cmd, data) => c.request(cmd, data, 10000).then((r) => {
      if (r.cmd === 'ack') counts.acks++;
      else counts.errors[r.data?.code] = (counts.errors[r.data?.code] || 0) + 1;
      return r;
    }).catch((e) => {
      const why = /timed out/.test(e.message) ? 'no_reply' : 'closed';
      counts.lost[why] = (counts.lost[why] || 0) + 1;
      return null;
    });
    const sub = async (ctx) => { counts.subscribes++; if ((await send('subscribe', { context: ctx }))?.cmd === 'ack') subscribed.add(ctx); };
    for (let i = 0; i < 2; i++) await sub(pick(ctxs));
    let reconnect = false;
    while (!reconnect && Date.now() < stopAt && c.isOpen) {
      await sleep(TICK_MS * (0.5 + Math.random()));
      c.pending.length = 0;  // frames are only counted; do not keep them
      c.frames.length = 0;
      const r = Math.random();
      const target = subscribed.size ? pick([...subscribed]) : pick(ctxs);
      if (r < 0.6) { counts.pres++; send('pres', { subType: 'TYPING', subject: target }); }
      else if (r < 0.75) { counts.pres++; send('pres', { subType: pick(['ONLINE', 'AWAY']), subject: target }); }
      else if (r < 0.85) await sub(pick(ctxs));
      else if (r < 0.95 && subscribed.size) {
        counts.unsubscribes++;
        subscribed.delete(target);
        await send('unsubscribe', { context: target });
      } else if (r >= 0.98) reconnect = true;
    }
    if (reconnect) counts.reconnects++;
    if (Math.random() < 0.5) c.close(); else c.terminate();  // clean close and abrupt drop
    const info = await Promise.race([c.closed, sleep(2000).then(() => ({ code: 'timeout' }))]);
    counts.closes[info.code] = (counts.closes[info.code] || 0) + 1;
  }
}

async function main() {
  const args = ['--same-state-interval-ms', '0', '--issuer-rate', '1000', '--issuer-burst', '1000', '--pres-ttl', '10'];
  const server = await startPresd({ name: 'soak', tenants: users, args, logLevel: 'warn' });
  const ctxs = Array.from({ length: CONTEXTS }, (_, i) =>
    makeContext(server, users[i % USERS], Object.fromEntries(users.map((u) => [u, 'member']))));
  const pid = server.proc.pid;
  const t0 = Date.now();
  const stopAt = t0 + SECONDS * 1000;
  console.log(`soak: presd pid ${pid}, ${USERS} users x ${CONNS} connections, ${CONTEXTS} contexts, ${SECONDS} s, sample every ${SAMPLE_S} s`);
  const sessions = [];
  const tokens = Object.fromEntries(users.map((u) => [u, server.accessToken(u, { ttl: 86400 })]));
  for (const u of users) for (let k = 0; k < CONNS; k++) sessions.push(session(server, u, tokens[u], ctxs, stopAt));

  const samples = [];
  // RSS and fds from /proc; the hub's own levels from /metrics (state that grows would show there).
  const level = (text, name) => Number(text.match(new RegExp(`^${name} (\\S+)$`, 'm'))?.[1] ?? NaN);
  const take = async () => {
    const s = { t: (Date.now() - t0) / 1000, ...procSample(pid), pres: counts.pres, frames: counts.frames };
    const m = (await server.http('GET', '/metrics').catch(() => ({ text: '' }))).text;
    for (const [k, name] of [['ws', 'presd_websocket_connections'], ['subs', 'presd_subscriptions'], ['states', 'presd_presence_states']])
      s[k] = level(m, name);
    samples.push(s);
    console.log(`  t=${s.t.toFixed(0).padStart(5)} s  rss=${(s.rssKiB / 1024).toFixed(1).padStart(7)} MiB  fds=${String(s.fds).padStart(5)}  ` +
      `ws=${s.ws} subs=${s.subs} states=${s.states}  pres=${s.pres}  frames=${s.frames}`);
  };
  let died = false;
  server.exited.then(() => { died = true; });
  while (Date.now() < stopAt && !died) {
    await take();
    await sleep(Math.min(SAMPLE_S * 1000, Math.max(0, stopAt - Date.now())));
  }
  if (!died) await take();
  await Promise.all(sessions);

  const warmupS = Math.min(60, SECONDS / 3);
  const warm = samples.filter((s) => s.t <= warmupS);
  const warmMax = Math.max(...warm.map((s) => s.rssKiB));
  const warmFds = Math.max(...warm.map((s) => s.fds));
  const last = samples[samples.length - 1];
  const half = samples.filter((s) => s.t >= SECONDS / 2);
  const slopeKiBMin = slope(half.map((s) => ({ x: s.t / 60, y: s.rssKiB })));
  const growth = last.rssKiB / warmMax - 1;
  const accepted = (await server.http('GET', '/metrics').catch(() => ({ text: '' }))).text.match(/^presd_pres_accepted_total (\S+)$/m)?.[1];

  console.log(`soak: ${counts.pres} PRES sent (${accepted ?? '?'} accepted), ${counts.acks} acks, errors ${JSON.stringify(counts.errors)}, ` +
    `${counts.frames} frames received, ${counts.subscribes} subscribes, ${counts.unsubscribes} unsubscribes, ` +
    `${counts.reconnects} reconnects, closes ${JSON.stringify(counts.closes)}, requests without reply ${JSON.stringify(counts.lost)}`);
  console.log(`soak: RSS warm-up max ${(warmMax / 1024).toFixed(1)} MiB (first ${warmupS.toFixed(0)} s), last ${(last.rssKiB / 1024).toFixed(1)} MiB, ` +
    `growth ${(growth * 100).toFixed(1)} % (bound ${(MAX_GROWTH * 100).toFixed(0)} %), second-half slope ${slopeKiBMin.toFixed(1)} KiB/min ` +
    `(bound ${MAX_SLOPE}), fds warm-up max ${warmFds}, last ${last.fds}`);

  const failures = [];
  if (died) failures.push('presd exited during the run');
  if (growth > MAX_GROWTH) failures.push(`RSS grew ${(growth * 100).toFixed(1)} %`);
  if (slopeKiBMin > MAX_SLOPE) failures.push(`RSS slope ${slopeKiBMin.toFixed(1)} KiB/min`);
  if (last.fds > warmFds + 16) failures.push(`fds grew from ${warmFds} to ${last.fds}`);
  const code = await server.stop();
  if (code !== 0) failures.push(`presd exit code ${code} on SIGTERM`);
  await stopAll();
  const behind = (counts.lost.no_reply || 0) + (counts.closes[1008] || 0);
  if (failures.length) console.log(`soak: FAIL: ${failures.join('; ')}`);
  if (behind) console.log(`soak: INVALID: the load generator fell behind (${counts.lost.no_reply || 0} replies missing, ` +
    `${counts.closes[1008] || 0} slow-consumer closes); lower --users or --conns`);
  if (!failures.length && !behind) console.log('soak: PASS (memory and fds flat)');
  // A crash or a bad exit is always a failure; a memory verdict from a lagging client is not one.
  const crashed = died || code !== 0;
  process.exit(crashed ? 1 : behind ? 3 : failures.length ? 1 : 0);
}

main().catch(async (e) => {
  console.error(`soak: error: ${e.stack || e}`);
  await stopAll().catch(() => {});
  process.exit(2);
});
