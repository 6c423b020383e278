#!/usr/bin/env node
// Cross-instance latency (issue 4: "< 10 ms across two instances on loopback"). Two presd
// instances as in tests/e2e/federation.test.mjs: A hosts alice.test, B hosts bob.test, who owns
// the conversation; each sits behind a TLS front (a node HTTPS proxy, as a deployment would put
// nginx there) and resolves the other's cl-o.<id_tag> name to it through the test CA. alice asks
// A to sign a PRES over /ws/bus (`pres`); the conversation being B's, A POSTs the token to B's
// /api/inbox; B fetches alice's key once, verifies and delivers to bob's subscription on B.
// Latency = bob's ACTION receive time - alice's send time, per PRES, at a fixed rate.
//   node bench/federation_latency.mjs [--rate 100] [--count 2000] [--warmup 200]
// Needs the built binary (build/presd or PRESD_BIN); see docs/performance.md.
import { performance } from 'node:perf_hooks';
import { startPresd, stopAll, makeContext, sleep } from '../tests/e2e/harness.mjs';
import { makeTestCa, tlsFront } from '../tests/e2e/tls_net.mjs';

const arg = (name, def) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
};
const RATE = arg('rate', 100);
const COUNT = arg('count', 2000);
const WARMUP = arg('warmup', 200);

const percentile = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];

async function main() {
  const tls = makeTestCa();
  const frontA = await tlsFront(tls);
  const frontB = await tlsFront(tls);
  const open = ['--issuer-rate', '1e9', '--issuer-burst', '1e9', '--same-state-interval-ms', '0', '--conn-rate', '1e9',
    '--conn-burst', '1e9', '--ws-frame-rate', '1e9', '--ws-frame-burst', '1e9', '--ip-rate', '1e9', '--ip-burst', '1e9',
    '--peer-ca-file', tls.ca, '--allow-loopback-peers'];
  const A = await startPresd({ name: 'A', tenants: ['alice.test'], logLevel: 'warn',
    args: [...open, '--peer-resolve', `cl-o.bob.test=127.0.0.1:${frontB.port}`] });
  frontA.targetPort = A.port;
  const B = await startPresd({ name: 'B', tenants: ['bob.test'], logLevel: 'warn',
    args: [...open, '--peer-resolve', `cl-o.alice.test=127.0.0.1:${frontA.port}`] });
  frontB.targetPort = B.port;
  const ctx = makeContext(B, 'bob.test', { 'alice.test': 'member' });
  A.cli(['context', 'create', '--id', ctx, '--owner', 'bob.test']);
  A.cli(['context', 'grant', ctx, 'alice.test']);

  const bob = await B.ws(B.accessToken('bob.test'));
  await bob.request('subscribe', { context: ctx });
  const alice = await A.ws(A.accessToken('alice.test'));

  const sentAt = new Map();
  const latencies = [];
  let refused = 0;
  bob.ws.on('message', (data) => {
    const now = performance.now();
    const f = JSON.parse(data.toString());
    if (f.cmd !== 'ACTION') return;
    const n = f.data?.content?.n;
    const t = sentAt.get(n);
    if (t === undefined) return;
    sentAt.delete(n);
    if (n >= WARMUP) latencies.push(now - t);
  });
  alice.ws.on('message', (data) => {
    const f = JSON.parse(data.toString());
    if (f.cmd === 'ack' && f.data?.status !== 'accepted' && refused++ === 0) console.error('refused:', data.toString());
  });

  // The content differs per PRES: the same claims in the same second would be one token (ES384
  // signing is deterministic here) and the second a replay.
  const start = performance.now();
  for (let n = 0; n < COUNT; n++) {
    const due = start + (n * 1000) / RATE;
    const wait = due - performance.now();
    if (wait > 1) await sleep(wait);
    sentAt.set(n, performance.now());
    alice.ws.send(JSON.stringify({ cmd: 'pres', id: `p${n}`, data: { subType: 'TYPING', subject: ctx, content: { n } } }));
  }
  const deadline = performance.now() + 5000;
  while (latencies.length < COUNT - WARMUP && performance.now() < deadline) await sleep(20);

  const sorted = [...latencies].sort((a, b) => a - b);
  const f = (x) => (x === undefined ? 'nan' : x.toFixed(3));
  console.log(`RESULT scenario=federation_latency rate=${RATE} measured=${COUNT - WARMUP} delivered=${sorted.length} ` +
    `missing=${COUNT - WARMUP - sorted.length} refused=${refused} p50_ms=${f(percentile(sorted, 0.5))} ` +
    `p90_ms=${f(percentile(sorted, 0.9))} p99_ms=${f(percentile(sorted, 0.99))} max_ms=${f(sorted[sorted.length - 1])} ` +
    `inbox_posts=${frontB.stats.inbox}`);
  alice.terminate?.();
  bob.terminate?.();
  frontA.close();
  frontB.close();
  await stopAll();
}

main().catch(async (e) => {
  console.error(e);
  await stopAll();
  process.exit(1);
});
