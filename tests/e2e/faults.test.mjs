// Fault injection against real presd processes: a peer instance that is down or slow, a key
// server that is slow, broken or resets, a SQLite store that turns read-only or full while
// serving, and SIGTERM under load. Each case checks: no crash, a coded error (or log line)
// where a request is affected, local delivery goes on, no membership data is lost, and
// presd recovers by itself once the fault ends.
import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { e2e, startPresd, stopAll, makeContext, makeDataDir, sleep, isAction, PRESD_BIN, metric } from './harness.mjs';
import { makeTestCa, tlsFront, keyServer } from './tls_net.mjs';

let tls;
const closers = [];
before(() => { tls = makeTestCa(['alice', 'bob', 'kim', 'dora']); });
after(async () => {
  for (const c of closers) c.close();
  await stopAll();
});

// Polls fn until it returns a truthy value; fails with `what` after timeoutMs.
async function waitFor(fn, what, timeoutMs = 15000, everyMs = 100) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

const alive = (s) => s.proc.exitCode === null && s.proc.signalCode === null;

// ---- peer instance down or slow -------------------------------------------------------------

const PEER_TIMEOUT_MS = 2000;
const BREAKER_OPEN_S = 2;
// Local delivery must not wait for the peer: well under one peer timeout even on a busy machine.
const LOCAL_BOUND_MS = 1500;

// A hosts alice.test; B hosts bob.test and owns ctx; A forwards alice's PRES to B's inbox
// through frontB, the TLS front the faults are injected into.
async function twoInstances() {
  const frontB = await tlsFront(tls);
  closers.push(frontB);
  const fast = ['--conn-rate', '1000', '--conn-burst', '1000', '--issuer-rate', '1000', '--issuer-burst', '1000',
    '--same-state-interval-ms', '0', '--peer-ca-file', tls.ca, '--allow-loopback-peers'];
  const A = await startPresd({
    name: 'A', tenants: ['alice.test'],
    args: [...fast, '--peer-resolve', `cl-o.bob.test=127.0.0.1:${frontB.port}`,
      '--peer-timeout-ms', String(PEER_TIMEOUT_MS), '--peer-breaker-open-s', String(BREAKER_OPEN_S)],
  });
  const frontA = await tlsFront(tls, A.port);
  closers.push(frontA);
  const B = await startPresd({ name: 'B', tenants: ['bob.test'], args: [...fast, '--peer-resolve', `cl-o.alice.test=127.0.0.1:${frontA.port}`] });
  frontB.targetPort = B.port;
  const ctx = makeContext(B, 'bob.test', { 'alice.test': 'member' });
  A.cli(['context', 'create', '--id', ctx, '--owner', 'bob.test']);
  A.cli(['context', 'grant', ctx, 'alice.test']);
  const alice = await A.ws(A.accessToken('alice.test'), { label: 'alice@A' });
  const watcher = await A.ws(A.accessToken('alice.test'), { label: 'watcher@A' });
  await watcher.ok('subscribe', { context: ctx });
  const bob = await B.ws(B.accessToken('bob.test'), { label: 'bob@B' });
  await bob.ok('subscribe', { context: ctx });
  let n = 0;
  // Sends one PRES from alice on A; resolves how long until A's own subscriber had it.
  const localPres = async (prefix) => {
    const subType = `${prefix}_${n++}`;
    const t0 = Date.now();
    await alice.ok('pres', { subType, subject: ctx });
    await watcher.next(isAction(ctx, 'alice.test', subType), 5000, subType);
    return { subType, ms: Date.now() - t0 };
  };
  // Sends PRES every 300 ms until bob on B receives one (the breaker drops them while open).
  const untilBobReceives = async (prefix) => waitFor(async () => {
    const { subType } = await localPres(prefix);
    try {
      return await bob.next(isAction(ctx, 'alice.test', subType), 300, subType);
    } catch {
      return null;
    }
  }, `bob to receive a ${prefix} PRES through B`, 20000, 0);
  const membership = () => [A, B].map((s) => JSON.parse(s.cli(['context', 'show', ctx, '--json'])).members);
  const clients = [alice, watcher, bob];
  return { A, B, frontB, ctx, alice, watcher, bob, localPres, untilBobReceives, membership, clients };
}

e2e('peer down (connection refused): local delivery on time, PRES dropped not queued, the breaker opens and closes when the peer is back', async () => {
  const t = await twoInstances();
  const members = t.membership();
  await t.untilBobReceives('APP_HEALTHY');

  await t.frontB.down();
  for (let i = 0; i < 12; i++) {
    const { ms } = await t.localPres('APP_DOWN');
    assert.ok(ms < LOCAL_BOUND_MS, `local delivery took ${ms} ms while the peer was down`);
  }
  await waitFor(() => /federation: bob\.test is failing \([^)]*\); not sending to it for 2 s/.test(t.A.logs()),
    'the breaker to open');
  assert.match(t.A.logs(), /federation: PRES to bob\.test failed: connect/);
  // While open, PRES for the peer are dropped at once (and said so), never queued.
  await t.localPres('APP_OPEN');
  await waitFor(() => /PRES for bob\.test dropped/.test(t.A.logs()), 'the drop to be logged');
  assert.equal(await metric(t.A, 'presd_federation_queue_depth'), 0);

  await t.frontB.up();
  await t.untilBobReceives('APP_BACK');
  await waitFor(() => /federation: bob\.test answers again; sending to it resumed/.test(t.A.logs()), 'the breaker to close');
  assert.ok(alive(t.A) && alive(t.B));
  assert.deepEqual(t.membership(), members);
  for (const c of t.clients) c.close();
  assert.equal(await t.A.stop(), 0);
  assert.equal(await t.B.stop(), 0);
});

for (const mode of ['hang', 'slow']) {
  const what = mode === 'hang' ? 'accepts and never answers' : `answers after ${PEER_TIMEOUT_MS + 1500} ms, past the timeout`;
  e2e(`peer slow (its TLS front ${what}): local delivery on time, the outbox stays bounded, the breaker opens and closes`, async () => {
    const t = await twoInstances();
    const members = t.membership();
    await t.untilBobReceives('APP_HEALTHY');

    t.frontB.mode = mode;
    t.frontB.delayMs = PEER_TIMEOUT_MS + 1500;
    // A burst from three connections: more than the per-peer queue (256) can hold.
    const senders = [t.alice, await t.A.ws(t.A.accessToken('alice.test')), await t.A.ws(t.A.accessToken('alice.test'))];
    t.clients.push(...senders.slice(1));
    const subTypes = [];
    let maxQueue = 0;
    const t0 = Date.now();
    const acks = [];
    senders.forEach((s, c) => {
      for (let i = 0; i < 120; i++) {
        const subType = `APP_BURST_${c}_${i}`;
        subTypes.push(subType);
        acks.push(s.ok('pres', { subType, subject: t.ctx }, 15000));
      }
    });
    const sampler = setInterval(async () => {
      const q = await metric(t.A, 'presd_federation_queue_depth').catch(() => 0);
      maxQueue = Math.max(maxQueue, q);
    }, 100);
    try {
      await Promise.all(acks);
      for (const subType of subTypes) await t.watcher.next(isAction(t.ctx, 'alice.test', subType), 10000, subType);
      const ms = Date.now() - t0;
      // 360 server-signed PRES; the bound is about signing on a loaded machine, not the peer.
      assert.ok(ms < 10000, `local delivery of the burst took ${ms} ms`);
      const single = await t.localPres('APP_SINGLE');
      assert.ok(single.ms < LOCAL_BOUND_MS, `one PRES took ${single.ms} ms locally while the peer hung`);
      await waitFor(() => /federation: bob\.test is failing \(timeout: [^)]*\); not sending to it for 2 s/.test(t.A.logs()),
        'the breaker to open on timeouts', 30000);
    } finally {
      clearInterval(sampler);
    }
    assert.ok(maxQueue > 0 && maxQueue <= 256, `queue depth reached ${maxQueue}`);  // it queued, boundedly
    assert.equal(await metric(t.A, 'presd_federation_queue_depth'), 0);  // dropped when the breaker opened
    assert.match(t.A.logs(), /PRES for bob\.test dropped/);

    t.frontB.mode = 'proxy';
    await t.untilBobReceives('APP_BACK');
    await waitFor(() => /federation: bob\.test answers again/.test(t.A.logs()), 'the breaker to close');
    assert.ok(alive(t.A) && alive(t.B));
    assert.deepEqual(t.membership(), members);
    for (const c of t.clients) c.close();
    assert.equal(await t.A.stop(), 0);
    assert.equal(await t.B.stop(), 0);
  });
}

// ---- key server faults ------------------------------------------------------------------------

e2e('key server slow, resetting or answering garbage: its issuer is refused with a code, others are not, and it recovers', async () => {
  const kim = await keyServer(tls, 'kim.test');
  const dora = await keyServer(tls, 'dora.test');
  closers.push(kim, dora);
  const B = await startPresd({
    name: 'B', tenants: ['bob.test'],
    args: ['--peer-ca-file', tls.ca, '--allow-loopback-peers',
      '--peer-resolve', `cl-o.kim.test=127.0.0.1:${kim.port}`, '--peer-resolve', `cl-o.dora.test=127.0.0.1:${dora.port}`,
      '--peer-timeout-ms', '1000', '--key-rejected-cache-s', '1', '--key-unavailable-cache-s', '1',
      '--key-refetch-interval-s', '0', '--bad-signature-strikes', '0',
      '--issuer-rate', '1000', '--issuer-burst', '1000', '--same-state-interval-ms', '0'],
  });
  const ctx = makeContext(B, 'bob.test', { 'kim.test': 'member', 'dora.test': 'member' });
  const bob = await B.ws(B.accessToken('bob.test'), { label: 'bob@B' });
  await bob.ok('subscribe', { context: ctx });
  let n = 0;
  const send = async (ks) => {
    const subType = `APP_${ks.idTag.split('.')[0].toUpperCase()}_${n++}`;
    const t0 = Date.now();
    const r = await B.http('POST', '/api/inbox', { body: { token: await ks.sign({ t: `PRES:${subType}`, sub: ctx }) } });
    return { ...r, subType, ms: Date.now() - t0 };
  };
  // Sends kim tokens until one made B fetch the key document again (the previous answer is
  // cached for --key-*-cache-s), and returns B's answer to that one.
  const freshAnswer = () => waitFor(async () => {
    const before = kim.stats.me;
    const r = await send(kim);
    return kim.stats.me > before ? r : null;
  }, 'B to refetch kim\'s keys', 15000, 200);
  const doraStillWorks = async () => {
    const r = await send(dora);
    assert.equal(r.status, 201, r.text);
    await bob.next(isAction(ctx, 'dora.test', r.subType), 5000, r.subType);
    return r;
  };
  await doraStillWorks();

  const faults = [
    ['slow', 503, 'unavailable', /timed out/],
    ['reset', 503, 'unavailable', /cl-o\.kim\.test/],
    ['huge', 503, 'unavailable', /too_large|exceeds/],
    ['nonjson', 401, 'token_unknown_key', /not JSON/],
    ['html', 401, 'token_unknown_key', /not JSON/],
    ['wrong-shape', 401, 'token_unknown_key', /data/],
    ['wrong-idtag', 401, 'token_unknown_key', /idTag/],
    ['p256-key', 401, 'token_unknown_key', /P-384/],
    ['wrong-key', 401, 'token_bad_signature', /./],
  ];
  for (const [mode, status, code, message] of faults) {
    kim.mode = mode;
    kim.delayMs = 2500;
    if (mode === 'slow') {
      // While B waits for kim's key server, dora's tokens go through at once.
      let kimAnswered = false;
      const kimReq = freshAnswer().then((r) => { kimAnswered = true; return r; });
      await waitFor(() => kim.held.size > 0, 'B to ask kim\'s key server', 5000, 20);
      const d = await doraStillWorks();
      assert.ok(!kimAnswered, `dora's token (${d.ms} ms) waited for kim's key server`);
      const r = await kimReq;
      assert.equal(r.status, status, `${mode}: ${r.text}`);
      assert.equal(r.json.error.code, code, mode);
      assert.match(r.json.error.message, message, mode);
      continue;
    }
    const r = await freshAnswer();
    assert.equal(r.status, status, `${mode}: ${r.text}`);
    assert.equal(r.json.error.code, code, mode);
    assert.match(r.json.error.message, message, mode);
    await doraStillWorks();
  }
  assert.match(B.logs(), /GET https:\/\/cl-o\.kim\.test\/api\/me failed: timeout/);
  assert.equal((await bob.collect(200, (f) => f.cmd === 'ACTION' && f.data?.issuer?.idTag === 'kim.test')).length, 0);

  // Healthy again: the next fetch (after a failed verify, or once the failure cache expired)
  // gives the right key and kim's tokens are delivered.
  kim.mode = 'ok';
  const ok = await waitFor(async () => {
    const r = await send(kim);
    return r.status === 201 ? r : null;
  }, 'kim\'s tokens to be accepted again', 15000, 300);
  await bob.next(isAction(ctx, 'kim.test', ok.subType), 5000, ok.subType);
  assert.ok(alive(B));
  bob.close();
  assert.equal(await B.stop(), 0);
});

// ---- SQLite read-only or full while serving ---------------------------------------------------

const NOBODY = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'];

e2e('SQLite read-only or full while serving: writes fail with unavailable, PRES keeps flowing, writes work again without a restart', async () => {
  // Root ignores file modes: presd and its CLI run as nobody on a data dir nobody owns.
  const dir = makeDataDir();
  fs.chownSync(dir, 65534, 65534);
  const S = await startPresd({ name: 'S', dataDir: dir, wrap: NOBODY, tenants: ['alice.test', 'bob.test', 'carol.test'] });
  const db = path.join(dir, 'presd.db');
  // The CLI as nobody; `limit` runs it under prlimit. Returns {status, stdout, stderr}.
  const cli = (args, limit = []) => {
    const r = spawnSync(limit.length ? 'prlimit' : NOBODY[0],
      [...limit, ...(limit.length ? NOBODY : NOBODY.slice(1)), PRESD_BIN, ...args, '--data-dir', dir],
      { encoding: 'utf8', timeout: 30000 });
    return { status: r.status, signal: r.signal, stdout: r.stdout.trim(), stderr: r.stderr.trim() };
  };
  const must = (args) => {
    const r = cli(args);
    assert.equal(r.status, 0, `presd ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  const members = () => JSON.parse(must(['context', 'show', ctx, '--json'])).members.filter((m) => !m.deleted).map((m) => m.idTag).sort();
  const admin = (method, p, body) => S.http(method, p, { token: S.adminToken(), body });

  const ctx = must(['context', 'create', '--owner', 'alice.test']);
  must(['context', 'grant', ctx, 'bob.test']);
  const alice = await S.ws(S.accessToken('alice.test'), { label: 'alice' });
  const bob = await S.ws(S.accessToken('bob.test'), { label: 'bob' });
  await bob.ok('subscribe', { context: ctx });
  let n = 0;
  const delivered = async (to = [bob]) => {
    const subType = `APP_${n++}`;
    await alice.ok('pres', { subType, subject: ctx });
    for (const c of to) await c.next(isAction(ctx, 'alice.test', subType), 5000, subType);
  };
  await delivered();
  const base = members();
  assert.ok(base.includes('bob.test'), JSON.stringify(base));

  // Read-only database file: the CLI's writes are refused with a coded error, reads work.
  fs.chmodSync(db, 0o444);
  const ro = cli(['context', 'grant', ctx, 'carol.test']);
  assert.equal(ro.status, 1, JSON.stringify(ro));
  assert.match(ro.stderr, /^error: unavailable: store unavailable \(grant\): .*readonly/m);
  assert.deepEqual(members(), base);
  await delivered();
  assert.equal((await admin('GET', `/api/admin/contexts/${ctx}`)).status, 200);
  fs.chmodSync(db, 0o644);
  must(['context', 'grant', ctx, 'carol.test']);
  const carol = await S.ws(S.accessToken('carol.test'), { label: 'carol' });
  await carol.ok('subscribe', { context: ctx });
  await delivered([bob, carol]);

  // Full disk (a file size limit on the running server, and on the CLI): writes through the
  // admin API and the CLI are `unavailable`; PRES for the existing context keeps flowing.
  // prlimit of another process needs the same uid (the container lacks CAP_SYS_RESOURCE).
  const limitServer = (v) => execFileSync(NOBODY[0], [...NOBODY.slice(1), 'prlimit', '--pid', String(S.proc.pid), `--fsize=${v}`]);
  limitServer('1:unlimited');
  const put = await admin('PUT', `/api/admin/contexts/${ctx}/members/dave.test`, { role: 'member' });
  assert.equal(put.status, 503, put.text);
  assert.equal(put.json.error.code, 'unavailable');
  const post = await admin('POST', '/api/admin/contexts', { owner: 'alice.test' });
  assert.equal(post.status, 503, post.text);
  assert.equal(post.json.error.code, 'unavailable');
  const full = cli(['context', 'grant', ctx, 'erin.test'], ['--fsize=1']);
  assert.equal(full.status, 1, JSON.stringify(full));
  assert.match(full.stderr, /^error: unavailable: store unavailable \(grant\)/m);
  await delivered([bob, carol]);
  assert.equal((await admin('GET', `/api/admin/contexts/${ctx}`)).status, 200);
  assert.ok(alive(S), 'presd died on the file size limit');

  limitServer('unlimited:unlimited');
  const again = await admin('PUT', `/api/admin/contexts/${ctx}/members/dave.test`, { role: 'member' });
  assert.ok(again.status === 200 || again.status === 201, again.text);
  assert.deepEqual(members(), [...base, 'carol.test', 'dave.test'].sort());
  await delivered([bob, carol]);
  for (const c of [alice, bob, carol]) c.close();
  assert.equal(await S.stop(), 0);
});

// ---- SIGTERM under load -----------------------------------------------------------------------

e2e('SIGTERM during load: exit 0 within the grace time, every client gets 1001, membership intact after a restart', async () => {
  const GRACE_MS = 3000;
  const users = Array.from({ length: 8 }, (_, i) => `u${i}.test`);
  const args = ['--shutdown-grace-ms', String(GRACE_MS), '--conn-rate', '1000', '--conn-burst', '1000',
    '--issuer-rate', '10000', '--issuer-burst', '10000', '--same-state-interval-ms', '0'];
  const S = await startPresd({ name: 'S', tenants: users, args, logLevel: 'info' });
  const ctxs = [0, 1, 2].map((i) => makeContext(S, users[i], Object.fromEntries(users.map((u) => [u, 'member']))));
  const admin = (method, p, body) => S.http(method, p, { token: S.adminToken(), body });
  const snapshot = (srv) => ctxs.map((c) => JSON.parse(srv.cli(['context', 'show', c, '--json'])));

  // 48 subscribers (6 per user, each on every context) and 4 senders at 40 PRES/s each (the
  // fixed /ws/bus limit is 50 frames per second per connection).
  const subscribers = [];
  for (const u of users) {
    for (let k = 0; k < 6; k++) {
      const c = await S.ws(S.accessToken(u), { label: `${u}#${k}` });
      for (const ctx of ctxs) await c.ok('subscribe', { context: ctx });
      subscribers.push(c);
    }
  }
  const senders = await Promise.all(users.slice(0, 4).map((u) => S.ws(S.accessToken(u), { label: `send ${u}` })));
  let sent = 0;
  const timers = senders.map((s, i) => setInterval(() => {
    if (s.isOpen) s.send({ id: `p${sent}`, cmd: 'pres', data: { subType: `APP_${i}_${sent++}`, subject: ctxs[sent % 3] } });
  }, 25));
  // Admin writes go on too; every one that was acknowledged must survive.
  const granted = [];
  let stopGrants = false;
  const grants = (async () => {
    for (let i = 0; !stopGrants; i++) {
      const tag = `g${i}.test`;
      const r = await admin('PUT', `/api/admin/contexts/${ctxs[i % 3]}/members/${tag}`, { role: 'member' }).catch(() => null);
      if (r && (r.status === 200 || r.status === 201)) granted.push([ctxs[i % 3], tag]);
      else if (r) assert.equal(r.json?.error?.code, 'unavailable', r.text);  // refused while draining
      await sleep(20);
    }
  })();
  try {
    await waitFor(async () => (await metric(S, 'presd_frames_delivered_total')) > 2000, 'load to build up', 30000, 200);
    const t0 = Date.now();
    S.proc.kill('SIGTERM');
    const { code, signal } = await S.exited;
    const ms = Date.now() - t0;
    assert.equal(signal, null, `presd died of ${signal}`);
    assert.equal(code, 0);
    assert.ok(ms < GRACE_MS + 2000, `exit took ${ms} ms (grace ${GRACE_MS} ms)`);
  } finally {
    for (const t of timers) clearInterval(t);
    stopGrants = true;
    await grants;
  }
  for (const c of [...subscribers, ...senders]) {
    const info = await Promise.race([c.closed, sleep(5000).then(() => ({ code: 'none' }))]);
    assert.equal(info.code, 1001, `${c.label} closed with ${info.code}`);
  }
  assert.doesNotMatch(S.logs(), /unhandled exception|\[error\]|\[critical\]/);
  assert.ok(granted.length > 0, 'no admin write went through during the load');

  const before = JSON.stringify(snapshot(S));
  const R = await startPresd({ name: 'restarted', dataDir: S.dataDir, args });
  assert.equal(JSON.stringify(snapshot(R)), before);
  for (const [ctx, tag] of granted) {
    const show = JSON.parse(R.cli(['context', 'show', ctx, '--json']));
    assert.ok(show.members.some((m) => m.idTag === tag && !m.deleted), `${tag} lost from ${ctx}`);
  }
  const listener = await R.ws(R.accessToken(users[1]));
  await listener.ok('subscribe', { context: ctxs[0] });
  const talker = await R.ws(R.accessToken(users[0]));
  await talker.ok('pres', { subType: 'TYPING', subject: ctxs[0] });
  await listener.next(isAction(ctxs[0], users[0], 'TYPING'), 5000);
  listener.close();
  talker.close();
  assert.equal(await R.stop(), 0);
});
