// Three presd nodes serving the same tenants behind (imagined) load balancing act as one: they
// share a store and a NATS bus started here (docs/cluster.md).
// The store is one parameter, PRESD_CLUSTER_STORE: unset, the test starts its own PostgreSQL
// (tests/e2e/postgres.mjs) and the nodes share it; `sqlite` makes them share one SQLite data dir
// (WAL, several processes); a postgres:// URL uses that server.
import { after, before } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import net from 'node:net';
import { e2e, startPresd, stopAll, makeContext, makeDataDir, isAction, isExpired, sleep, metric, waitFor } from './harness.mjs';
import { startNats, stopAllNats } from './nats.mjs';
import { startPostgres } from './postgres.mjs';

const STORE_CHOICE = process.env.PRESD_CLUSTER_STORE || '';
const TENANTS = ['alice.test', 'bob.test', 'carol.test', 'dave.test'];
const TTL_S = 6;

let nats, pg, n1, n2, n3, ctx;
const tok = {};
const clients = [];

async function ws(node, user, label) {
  const c = await node.ws(tok[user], { label });
  clients.push(c);
  return c;
}

// Publishes raw payloads on a subject with the NATS text protocol (what a misbehaving or
// newer node could send).
function natsPublish(port, subject, payloads) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    let out = 'CONNECT {"verbose":false}\r\n';
    for (const p of payloads) out += `PUB ${subject} ${Buffer.byteLength(p)}\r\n${p}\r\n`;
    out += 'PING\r\n';
    sock.once('connect', () => sock.write(out));
    let got = '';
    sock.on('data', (d) => {
      got += d.toString();
      if (got.includes('PONG')) { sock.end(); resolve(); }
      if (got.includes('-ERR')) { sock.destroy(); reject(new Error(got)); }
    });
    sock.on('error', reject);
  });
}

// Every ACTION a client received, keyed by its data: a duplicate delivery shows up twice.
function assertNoDuplicates(c) {
  const seen = new Set();
  for (const f of c.frames.filter((f) => f.cmd === 'ACTION' || f.cmd === 'PRES_EXPIRED')) {
    const key = f.cmd + JSON.stringify(f.data);
    assert.ok(!seen.has(key), `${c.label} got ${key} twice`);
    seen.add(key);
  }
}

before(async () => {
  nats = await startNats();
  if (!STORE_CHOICE) pg = await startPostgres();
  const store = pg ? pg.url : STORE_CHOICE === 'sqlite' ? '' : STORE_CHOICE;
  // Through the environment, so the nodes, the CLI (makeContext) and the sample-config node
  // below all open the same store.
  if (store) process.env.PRESD_STORE = store;
  const dir = makeDataDir();
  const common = ['--broker', nats.url, '--broker-reconnect-ms', '100', '--pres-ttl', String(TTL_S),
    '--expiry-tick-ms', '20', '--same-state-interval-ms', '100', '--issuer-rate', '0.2', '--issuer-burst', '8'];
  // One after the other: the first creates the secrets and tenant keys the others then load.
  n1 = await startPresd({ name: 'node1', tenants: TENANTS, dataDir: dir, args: [...common, '--node-id', 'node1'] });
  n2 = await startPresd({ name: 'node2', tenants: TENANTS, dataDir: dir, args: [...common, '--node-id', 'node2'] });
  n3 = await startPresd({ name: 'node3', tenants: TENANTS, dataDir: dir, args: [...common, '--node-id', 'node3'] });
  for (const t of TENANTS) tok[t.split('.')[0]] = n1.accessToken(t);
  ctx = makeContext(n1, 'bob.test', { 'alice.test': 'member', 'carol.test': 'member', 'dave.test': 'member' });
  // The nodes really run on the chosen store (the start-up line names it, password redacted).
  // That line comes just after the port file the harness waits for, so it may not be there yet.
  if (pg) {
    for (const n of [n1, n2, n3])
      await waitFor(`${n.name}'s start-up line naming its store`, async () => /presd listening on/.test(n.logs()));
    for (const n of [n1, n2, n3]) assert.match(n.logs(), /store postgresql:\/\/[^ ]*127\.0\.0\.1/);
  }
  for (const n of [n1, n2, n3]) await waitFor(`${n.name} on the bus`, async () => (await metric(n, 'presd_bus_connected')) === 1);
});

after(async () => {
  for (const c of clients) c.terminate();
  await stopAll();
  await stopAllNats();
  if (pg) await pg.stop();
});

let sender, subs;

e2e('a PRES sent on node 1 reaches subscribers on nodes 1, 2 and 3 exactly once', async () => {
  sender = await ws(n1, 'alice', 'alice@1');
  subs = [await ws(n1, 'bob', 'bob@1'), await ws(n2, 'bob', 'bob@2'), await ws(n3, 'carol', 'carol@3'),
    await ws(n3, 'bob', 'bob@3')];
  for (const c of [sender, ...subs]) await c.ok('subscribe', { context: ctx });

  const subtypes = ['ONLINE', 'TYPING', 'CUSTOM_A', 'CUSTOM_B'];
  for (const st of subtypes) assert.equal((await sender.ok('pres', { subType: st, subject: ctx })).status, 'accepted');
  for (const c of [sender, ...subs])
    for (const st of subtypes) await c.next(isAction(ctx, 'alice.test', st), 10000, `${c.label}: ${st}`);
  // Nothing more arrives: no second copy through the bus, no echo back to node 1.
  for (const c of [sender, ...subs]) assert.deepEqual(await c.collect(500, (f) => f.cmd === 'ACTION'), [], c.label);
  for (const c of [sender, ...subs]) assertNoDuplicates(c);
});

e2e('a snapshot on node 3 includes the state sent on node 1', async () => {
  const carol = await ws(n3, 'carol', 'carol-late@3');
  const snap = await carol.ok('subscribe', { context: ctx });
  const online = snap.presence.filter((p) => p.issuer.idTag === 'alice.test' && p.subType === 'ONLINE');
  assert.equal(online.length, 1, JSON.stringify(snap.presence));
});

e2e('expiry reaches every subscriber on every node once', async () => {
  for (const c of [sender, ...subs]) await c.next(isExpired(ctx, 'alice.test', 'TYPING'), (TTL_S + 6) * 1000, `${c.label}: expiry`);
  for (const c of [sender, ...subs]) assertNoDuplicates(c);
});

e2e('a token accepted on node 1 is a duplicate on node 2; the issuer quota is shared', async () => {
  const dave1 = await ws(n1, 'dave', 'dave@1');
  const dave2 = await ws(n2, 'dave', 'dave@2');
  const bob2 = subs[1];
  // Burst 8 (rate 0.2/s): eight on node 1 are accepted...
  let first;
  for (let i = 0; i < 8; i++) {
    const ack = await dave1.ok('pres', { subType: `Q${i}`, subject: ctx });
    first ??= ack.token;
  }
  for (let i = 0; i < 8; i++) await bob2.next(isAction(ctx, 'dave.test', `Q${i}`), 10000, `Q${i} on node 2`);
  // ... and node 2, having seen them on the bus, has no quota left for dave and knows the token.
  const limited = await dave2.fail('pres', { subType: 'Q8', subject: ctx });
  assert.equal(limited.code, 'rate_limited');
  assert.ok(limited.retryAfter > 0);
  assert.equal((await dave2.fail('pres', { token: first })).code, 'token_duplicate');
});

e2e('bad bus messages are dropped with bus_bad_message and counted on every node', async () => {
  const before = await Promise.all([n1, n2, n3].map((n) => metric(n, 'presd_bus_dropped_total{reason="invalid"}')));
  await natsPublish(nats.port, 'presd.all', ['garbage', '{"v":2,"kind":"pres","node":"future","token":"x.y.z"}']);
  for (const [i, n] of [n1, n2, n3].entries())
    await waitFor(`${n.name} to count the bad messages`,
      async () => (await metric(n, 'presd_bus_dropped_total{reason="invalid"}')) === before[i] + 2);
  assert.match(n2.logs(), /bus: message dropped \(bus_bad_message\): bus message version 2 is not supported/);
  assert.ok((await metric(n1, 'presd_bus_messages_total{direction="out"}')) > 0);
  assert.ok((await metric(n2, 'presd_bus_messages_total{direction="in"}')) > 0);
  assert.ok((await metric(n2, 'presd_bus_pres_accepted_total')) > 0);
});

e2e('NATS down: local delivery goes on; back up: nodes reconnect, nothing stale, nothing twice', async () => {
  const [bob1, bob2, carol3, bob3] = subs;
  await nats.kill();
  await waitFor('node 1 to notice', async () => (await metric(n1, 'presd_bus_connected')) === 0);

  // Sent during the outage: delivered on node 1 at once; stale before NATS is back.
  await sender.ok('pres', { subType: 'TYPING', subject: ctx, content: { phase: 'early' } });
  await bob1.next((f) => isAction(ctx, 'alice.test', 'TYPING')(f) && f.data.content?.phase === 'early', 5000, 'early on node 1');
  await bob1.next(isExpired(ctx, 'alice.test', 'TYPING'), (TTL_S + 6) * 1000, 'early expiry on node 1');
  // Sent late in the outage: still live when NATS is back, so the other nodes get it then.
  await sender.ok('pres', { subType: 'AWAY', subject: ctx });
  await bob1.next(isAction(ctx, 'alice.test', 'AWAY'), 5000, 'AWAY on node 1');

  const reconnects = await Promise.all([n1, n2, n3].map((n) => metric(n, 'presd_bus_reconnects_total')));
  await nats.restart();
  for (const [i, n] of [n1, n2, n3].entries())
    await waitFor(`${n.name} to reconnect`, async () => (await metric(n, 'presd_bus_reconnects_total')) > reconnects[i]);

  for (const c of [bob2, carol3, bob3]) await c.next(isAction(ctx, 'alice.test', 'AWAY'), 10000, `${c.label}: AWAY after the outage`);
  // After the resync settles: a new PRES reaches everyone once, and nobody got the stale one.
  await sender.ok('pres', { subType: 'CUSTOM_C', subject: ctx });
  for (const c of subs) await c.next(isAction(ctx, 'alice.test', 'CUSTOM_C'), 10000, `${c.label}: after reconnect`);
  await sleep(1000);
  for (const c of [bob2, carol3, bob3]) {
    const stale = c.frames.filter((f) => f.cmd === 'ACTION' && f.data.content?.phase === 'early');
    assert.deepEqual(stale, [], `${c.label} must never get the stale TYPING`);
  }
  // Nothing stuck: the state that crossed the outage expires everywhere, once.
  for (const c of subs) await c.next(isExpired(ctx, 'alice.test', 'AWAY'), (TTL_S + 6) * 1000, `${c.label}: AWAY expiry`);
  for (const c of [sender, ...subs]) assertNoDuplicates(c);
  for (const n of [n1, n2, n3]) assert.equal(await metric(n, 'presd_bus_connected'), 1);
});

e2e('the sample cluster config in deploy/ is accepted and joins the bus', async () => {
  const here = path.dirname(new URL(import.meta.url).pathname);
  const dir = makeDataDir();
  const secret = path.join(dir, 'shared.secret');
  fs.writeFileSync(secret, crypto.randomBytes(24).toString('hex'), { mode: 0o600 });
  // The file's secrets, credentials and NATS hosts are production paths: point them here.
  const S = await startPresd({
    name: 'sample', dataDir: dir,
    args: ['--config', path.join(here, '../../deploy/presd-cluster.toml'), '--node-id', 'sample',
      '--access-secret-file', secret, '--admin-token-file', secret, '--broker', nats.url, '--broker-creds', ''],
  });
  await waitFor('the sample node on the bus', async () => (await metric(S, 'presd_bus_connected')) === 1);
  assert.equal((await S.http('GET', '/api/me', { host: 'cl-o.bob.example.net' })).status, 200);
  await S.stop();
  assert.match(S.logs(), /bus: node sample on NATS/);
});

e2e('PRESD_BROKER takes a NATS cluster as a comma-separated list; a bad URL stops start-up', async () => {
  // The second server does not exist: the client uses the one that answers.
  const S = await startPresd({ name: 'env', env: { PRESD_BROKER: `nats://127.0.0.1:1,${nats.url}`, PRESD_NODE_ID: 'env' } });
  await waitFor('the env node on the bus', async () => (await metric(S, 'presd_bus_connected')) === 1);
  await S.stop();
  await assert.rejects(startPresd({ name: 'bad', args: ['--broker', 'http://127.0.0.1:4222'] }), /not a nats:\/\/ or tls:\/\/ URL/);
  await assert.rejects(startPresd({ name: 'badid', args: ['--node-id', 'a b'] }), /--node-id must be/);
});
