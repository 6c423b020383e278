#!/usr/bin/env node
// Delivery rate of a presd cluster on this machine: NATS plus 1, 2 and 3 nodes sharing one data
// dir; senders and subscribers spread round-robin over the nodes (as a load balancer would);
// every sender's PRES must reach every subscriber. Rate = ACTION frames received / wall time
// from the first send to the last frame.
//   node bench/cluster_bench.mjs [--nodes 1,2,3] [--pres 1000] [--subscribers 30] [--senders 20]
// Needs the built binary (build/presd or PRESD_BIN) and nats-server; see docs/performance.md.
import { startPresd, stopAll, makeContext, makeDataDir } from '../tests/e2e/harness.mjs';
import { startNats, stopAllNats } from '../tests/e2e/nats.mjs';

const arg = (name, def) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : def;
};
const NODES = arg('nodes', '1,2,3').split(',').map(Number);
const PRES = Number(arg('pres', '1000'));
const SUBSCRIBERS = Number(arg('subscribers', '30'));
const SENDERS = Number(arg('senders', '20'));

async function run(nodeCount) {
  const nats = await startNats();
  const dir = makeDataDir();
  // A few users with many connections each: tenant key generation is what makes start-up slow.
  const USERS = 4;
  const tenants = ['owner.test', ...Array.from({ length: USERS }, (_, i) => `s${i}.test`),
    ...Array.from({ length: USERS }, (_, i) => `r${i}.test`)];
  const args = ['--broker', nats.url, '--issuer-rate', '1e9', '--issuer-burst', '1e9', '--conn-rate', '1e9',
    '--conn-burst', '1e9', '--same-state-interval-ms', '0', '--pres-ttl', '60'];
  const nodes = [];
  for (let i = 0; i < nodeCount; i++)
    nodes.push(await startPresd({ name: `node${i + 1}`, tenants, dataDir: dir, logLevel: 'warn', args: [...args, '--node-id', `node${i + 1}`] }));
  const members = Object.fromEntries(tenants.slice(1).map((t) => [t, 'member']));
  const ctx = makeContext(nodes[0], 'owner.test', members);
  // Tokens issued once with the CLI (shared secret), connections spread round-robin.
  const tokens = Object.fromEntries(tenants.map((t) => [t, nodes[0].accessToken(t)]));
  const access = (t) => tokens[t];
  const subs = [];
  for (let i = 0; i < SUBSCRIBERS; i++) {
    const c = await nodes[i % nodeCount].ws(access(`r${i % USERS}.test`), { label: `r${i}` });
    await c.ok('subscribe', { context: ctx });
    subs.push(c);
  }
  const senders = [];
  for (let i = 0; i < SENDERS; i++) senders.push(await nodes[i % nodeCount].ws(access(`s${i % USERS}.test`), { label: `s${i}` }));
  await new Promise((r) => setTimeout(r, 500));  // nodes have exchanged their start-up syncs

  const expected = PRES * SUBSCRIBERS;
  let received = 0, last = 0;
  const done = new Promise((resolve) => {
    for (const c of subs)
      c.ws.on('message', (d) => {
        if (d.toString().includes('"cmd":"ACTION"')) {
          received++;
          last = performance.now();
          if (received === expected) resolve();
        }
      });
  });
  const t0 = performance.now();
  // Within the per-connection frame burst (200): every sender sends its share at once.
  for (let i = 0; i < PRES; i++)
    senders[i % SENDERS].send({ id: `p${i}`, cmd: 'pres', data: { subType: `B${i}`, subject: ctx } });
  const timeout = new Promise((r) => setTimeout(r, 120000, 'timeout'));
  const outcome = await Promise.race([done, timeout]);
  const seconds = ((outcome === 'timeout' ? performance.now() : last) - t0) / 1000;
  for (const c of [...subs, ...senders]) c.terminate();
  await stopAll();
  await nats.stop();
  return { nodes: nodeCount, pres: PRES, subscribers: SUBSCRIBERS, received, expected, seconds: +seconds.toFixed(3),
    deliveries_per_s: Math.round(received / seconds), pres_per_s: Math.round(received / SUBSCRIBERS / seconds),
    complete: received === expected };
}

const results = [];
for (const n of NODES) results.push(await run(n));
console.table(results);
await stopAllNats();
