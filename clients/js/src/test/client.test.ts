import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { PresdClient, PresdError, type PresdClientOptions, type PresenceEntry, type ConnectionState } from '../index.js';
import { FakeServer, actionData, expiredData, sleep } from './fake_server.js';

const CTX = 'a1~ctx';
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function setup(opts: Partial<PresdClientOptions> = {}) {
  const server = await FakeServer.start();
  cleanups.push(() => server.stop());
  const client = new PresdClient({ url: server.url, token: 'tok', WebSocket, backoff: { initialMs: 20, maxMs: 100 }, ...opts });
  cleanups.push(() => client.close());
  return { server, client };
}

function waitEvent<A extends unknown[]>(
  client: PresdClient,
  event: 'presence' | 'state' | 'error' | 'unsubscribed',
  pred: (...a: A) => boolean = () => true,
  timeoutMs = 3000,
): Promise<A> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => (off(), reject(new Error(`no '${event}' event`))), timeoutMs);
    const off = client.on(event as any, (...a: any[]) => {
      if (pred(...(a as A))) {
        clearTimeout(t);
        off();
        resolve(a as A);
      }
    });
  });
}

const waitOpen = (c: PresdClient) => (c.state === 'open' ? Promise.resolve() : waitEvent<[ConnectionState]>(c, 'state', (s) => s === 'open').then(() => {}));
const brief = (es: PresenceEntry[]) => es.map((e) => `${e.issuer}:${e.subType}${e.audience ? '>' + e.audience : ''}`);

test('connect, subscribe: snapshot fills the map, token in the URL, increasing string ids', async () => {
  const { server, client } = await setup({ token: 'a b&c' });
  const states: ConnectionState[] = [];
  client.on('state', (s) => states.push(s));
  const events: [string, PresenceEntry[]][] = [];
  client.on('presence', (c, es) => events.push([c, es]));
  const t0 = Date.now();
  server.snapshots.set(CTX, [
    actionData({ issuer: 'bob.test', subType: 'ONLINE', createdAt: t0 - 2000, content: { x: 1 } }),
    actionData({ issuer: 'carol.test', subType: 'TYPING', createdAt: t0 - 1000 }),
  ]);
  assert.equal(client.state, 'closed');
  client.connect();
  client.connect(); // idempotent
  assert.equal(client.state, 'connecting');
  const snap = await client.subscribe(CTX); // queued until the socket opens
  assert.equal(client.state, 'open');
  assert.deepEqual(states, ['connecting', 'open']);
  assert.equal(server.conns.length, 1);
  assert.equal(server.tokens[0], 'a b&c');
  assert.deepEqual(brief(snap), ['carol.test:TYPING', 'bob.test:ONLINE']); // newest first
  const bob = snap[1]!;
  assert.equal(bob.context, CTX);
  assert.deepEqual(bob.content, { x: 1 });
  assert.equal(bob.audience, null);
  assert.equal(bob.createdAt, t0 - 2000);
  assert.equal(bob.expiresAt, bob.createdAt + 30000);
  assert.deepEqual(client.presence(CTX), snap);
  assert.deepEqual(events.at(-1), [CTX, snap]);
  await client.subscribe('a1~other');
  const ids = server.received.map((f) => f.id);
  assert.deepEqual(ids, ['1', '2']);
  assert.ok(ids.every((id) => typeof id === 'string'));
});

test('ACTION adds and replaces by createdAt; older states are ignored', async () => {
  const { server, client } = await setup();
  client.connect();
  await client.subscribe(CTX);
  const t0 = Date.now();
  let ev = waitEvent<[string, PresenceEntry[]]>(client, 'presence');
  server.push('ACTION', actionData({ issuer: 'bob.test', subType: 'TYPING', createdAt: t0, content: { n: 1 } }));
  let [ctx, es] = await ev;
  assert.equal(ctx, CTX);
  assert.deepEqual(brief(es), ['bob.test:TYPING']);
  assert.deepEqual(es[0]!.content, { n: 1 });

  server.push('ACTION', actionData({ issuer: 'bob.test', subType: 'TYPING', createdAt: t0 - 5000, content: { n: 0 } }));
  ev = waitEvent(client, 'presence');
  server.push('ACTION', actionData({ issuer: 'bob.test', subType: 'TYPING', createdAt: t0 + 1000, content: { n: 2 } }));
  [, es] = await ev;
  assert.equal(es.length, 1);
  assert.deepEqual(es[0]!.content, { n: 2 });
  assert.equal(es[0]!.createdAt, t0 + 1000);
});

test('PRES_EXPIRED removes the matching entry only', async () => {
  const { server, client } = await setup();
  client.connect();
  const t0 = Date.now();
  server.snapshots.set(CTX, [
    actionData({ issuer: 'bob.test', subType: 'TYPING', createdAt: t0 }),
    actionData({ issuer: 'carol.test', subType: 'TYPING', createdAt: t0 }),
  ]);
  await client.subscribe(CTX);
  const ev = waitEvent<[string, PresenceEntry[]]>(client, 'presence');
  server.push('PRES_EXPIRED', expiredData({ issuer: 'bob.test', subType: 'TYPING', expiredAt: t0 + 30000 }));
  const [, es] = await ev;
  assert.deepEqual(brief(es), ['carol.test:TYPING']);
  assert.deepEqual(brief(client.presence(CTX)), ['carol.test:TYPING']);
});

test('PRES_EXPIRED of an older state keeps a newer one already received', async () => {
  const { server, client } = await setup();
  client.connect();
  await client.subscribe(CTX);
  const t0 = Date.now();
  server.push('ACTION', actionData({ issuer: 'bob.test', createdAt: t0, expiresAt: t0 + 30000 }));
  server.push('PRES_EXPIRED', expiredData({ issuer: 'bob.test', expiredAt: t0 - 1000 }));
  server.push('ACTION', actionData({ issuer: 'zed.test', createdAt: t0 }));
  await waitEvent<[string, PresenceEntry[]]>(client, 'presence', (_c, es) => es.some((e) => e.issuer === 'zed.test'));
  assert.deepEqual(brief(client.presence(CTX)).sort(), ['bob.test:TYPING', 'zed.test:TYPING']);
});

test('local expiry: entries vanish at min(createdAt + ttlMs, expiresAt) while the server is silent', async () => {
  const { server, client } = await setup({ ttlMs: 150 });
  client.connect();
  await client.subscribe(CTX);
  const t0 = Date.now();
  server.push('ACTION', actionData({ issuer: 'bob.test', createdAt: t0, expiresAt: t0 + 30000 }));
  server.push('ACTION', actionData({ issuer: 'carol.test', subType: 'ONLINE', createdAt: t0, expiresAt: t0 + 60 }));
  await waitEvent<[string, PresenceEntry[]]>(client, 'presence', (_c, es) => es.length === 2);
  const entries = client.presence(CTX);
  assert.equal(entries.find((e) => e.issuer === 'bob.test')!.expiresAt, t0 + 150);
  assert.equal(entries.find((e) => e.issuer === 'carol.test')!.expiresAt, t0 + 60);
  const [, afterCarol] = await waitEvent<[string, PresenceEntry[]]>(client, 'presence', (_c, es) => es.length === 1);
  assert.deepEqual(brief(afterCarol), ['bob.test:TYPING']);
  assert.ok(Date.now() >= t0 + 60);
  await waitEvent<[string, PresenceEntry[]]>(client, 'presence', (_c, es) => es.length === 0);
  assert.ok(Date.now() >= t0 + 150);
  assert.deepEqual(client.presence(CTX), []);
});

test('presence() filters by the injected clock', async () => {
  let now = Date.now();
  const { server, client } = await setup({ now: () => now, ttlMs: 30000 });
  client.connect();
  const t0 = now;
  server.snapshots.set(CTX, [actionData({ issuer: 'bob.test', createdAt: t0, expiresAt: t0 + 10000 })]);
  await client.subscribe(CTX);
  assert.equal(client.presence(CTX).length, 1);
  now = t0 + 9999;
  assert.equal(client.presence(CTX).length, 1);
  now = t0 + 10000;
  assert.deepEqual(client.presence(CTX), []);
});

test('typing(): first call sends, calls within typingRefreshMs do not, later calls do, idle sends nothing', async () => {
  let now = 1_000_000;
  const { server, client } = await setup({ now: () => now });
  client.typing(CTX); // not connected: nothing
  client.connect();
  await waitOpen(client);
  client.typing(CTX);
  const first = await server.waitFor((f) => f.cmd === 'pres');
  assert.deepEqual(first.data, { subType: 'TYPING', subject: CTX });
  for (const dt of [1, 1000, 2500, 4999]) {
    now = 1_000_000 + dt;
    client.typing(CTX);
  }
  client.typing('a1~other'); // another context has its own throttle
  await server.waitFor((f) => f.cmd === 'pres' && f.data.subject === 'a1~other');
  await sleep(50);
  assert.equal(server.frames('pres').filter((f) => f.data.subject === CTX).length, 1);
  now = 1_000_000 + 5000;
  client.typing(CTX);
  client.typing(CTX);
  await sleep(50);
  assert.equal(server.frames('pres').filter((f) => f.data.subject === CTX).length, 2);
  // idle: no keystrokes, no frames (the client has no refresh timer of its own)
  const before = server.received.length;
  now += 60000;
  await sleep(100);
  assert.equal(server.received.length, before);
});

test('typing() reports errors through the error event and honours retryAfter', async () => {
  let now = 1_000_000;
  const { server, client } = await setup({ now: () => now });
  server.refuse = (f) => (f.cmd === 'pres' ? { code: 'rate_limited', message: 'slow down', retryAfter: 8000 } : null);
  client.connect();
  await waitOpen(client);
  const err = waitEvent<[PresdError]>(client, 'error');
  client.typing(CTX); // must not throw or reject unhandled
  const [e] = await err;
  assert.ok(e instanceof PresdError);
  assert.equal(e.code, 'rate_limited');
  assert.equal(e.retryAfter, 8000);
  now += 5000; // the refresh interval passed, but the server asked for 8 s
  client.typing(CTX);
  await sleep(30);
  assert.equal(server.frames('pres').length, 1);
  now += 3000;
  server.refuse = () => null;
  client.typing(CTX);
  await server.waitFor((f) => f.cmd === 'pres' && f.id !== server.frames('pres')[0]!.id);
});

test('error frames reject the matching request with code, message and retryAfter', async () => {
  const { server, client } = await setup();
  server.refuse = (f) => {
    if (f.cmd === 'pres') return { code: 'rate_limited', message: 'too fast', retryAfter: 1234 };
    if (f.cmd === 'subscribe' && f.data.context === 'a1~nope') return { code: 'access_denied', message: 'no role' };
    return null;
  };
  client.connect();
  await assert.rejects(client.send('TYPING', CTX), (e: PresdError) => {
    assert.ok(e instanceof PresdError && e instanceof Error);
    assert.equal(e.code, 'rate_limited');
    assert.equal(e.message, 'too fast');
    assert.equal(e.retryAfter, 1234);
    return true;
  });
  const unsub = waitEvent<[string, string]>(client, 'unsubscribed');
  await assert.rejects(client.subscribe('a1~nope'), (e: PresdError) => e.code === 'access_denied' && e.retryAfter === undefined);
  assert.deepEqual(await unsub, ['a1~nope', 'access_denied']);
  // an error frame without a matching request goes to the error event
  const ev = waitEvent<[PresdError]>(client, 'error');
  server.push('error', { code: 'internal', message: 'oops' });
  const [e] = await ev;
  assert.equal(e.code, 'internal');
});

test('send(), online(), away(), offline() frames and results', async () => {
  const { server, client } = await setup();
  client.connect();
  const r = await client.send('DRAFT', CTX, { audience: 'bob.test', content: { len: 3 } });
  assert.equal(r.token, 'tok-1');
  assert.match(r.expiresAt, /^\d{4}-\d\d-\d\dT/);
  await client.online(CTX);
  await client.away(CTX);
  await client.offline(CTX);
  assert.deepEqual(
    server.frames('pres').map((f) => f.data),
    [
      { subType: 'DRAFT', subject: CTX, audienceTag: 'bob.test', content: { len: 3 } },
      { subType: 'ONLINE', subject: CTX },
      { subType: 'AWAY', subject: CTX },
      { subType: 'OFFLINE', subject: CTX },
    ],
  );
});

test('status slot: AWAY replaces ONLINE of the same issuer; TYPING keeps its own slot', async () => {
  const { server, client } = await setup();
  client.connect();
  await client.subscribe(CTX);
  const t0 = Date.now();
  server.push('ACTION', actionData({ issuer: 'bob.test', subType: 'ONLINE', createdAt: t0 }));
  server.push('ACTION', actionData({ issuer: 'bob.test', subType: 'TYPING', createdAt: t0 + 500 }));
  server.push('ACTION', actionData({ issuer: 'carol.test', subType: 'ONLINE', createdAt: t0 }));
  server.push('ACTION', actionData({ issuer: 'bob.test', subType: 'AWAY', createdAt: t0 + 1000 }));
  await waitEvent<[string, PresenceEntry[]]>(client, 'presence', (_c, es) => es.some((e) => e.subType === 'AWAY'));
  assert.deepEqual(brief(client.presence(CTX)), ['bob.test:AWAY', 'bob.test:TYPING', 'carol.test:ONLINE']);
  // PRES_EXPIRED names the subtype that expired; it ends the status slot
  server.push('PRES_EXPIRED', expiredData({ issuer: 'bob.test', subType: 'AWAY', expiredAt: t0 + 31000 }));
  await waitEvent<[string, PresenceEntry[]]>(client, 'presence', (_c, es) => es.length === 2);
  assert.deepEqual(brief(client.presence(CTX)), ['bob.test:TYPING', 'carol.test:ONLINE']);
});

test('audience entries are kept apart from broadcast ones and expire separately', async () => {
  const { server, client } = await setup();
  client.connect();
  await client.subscribe(CTX);
  const t0 = Date.now();
  server.push('ACTION', actionData({ issuer: 'alice.test', createdAt: t0 }));
  server.push('ACTION', actionData({ issuer: 'alice.test', audience: 'bob.test', createdAt: t0 + 1000 }));
  server.push('ACTION', actionData({ issuer: 'alice.test', audience: 'carol.test', createdAt: t0 + 2000 }));
  await waitEvent<[string, PresenceEntry[]]>(client, 'presence', (_c, es) => es.length === 3);
  assert.deepEqual(brief(client.presence(CTX)), ['alice.test:TYPING>carol.test', 'alice.test:TYPING>bob.test', 'alice.test:TYPING']);
  server.push('PRES_EXPIRED', expiredData({ issuer: 'alice.test', audience: 'bob.test', expiredAt: t0 + 31000 }));
  await waitEvent<[string, PresenceEntry[]]>(client, 'presence', (_c, es) => es.length === 2);
  assert.deepEqual(brief(client.presence(CTX)), ['alice.test:TYPING>carol.test', 'alice.test:TYPING']);
});

test('reconnect with backoff: pending requests fail, contexts are re-subscribed and the snapshot refreshes the map', async () => {
  const { server, client } = await setup({ token: (() => { let n = 0; return () => `t${++n}`; })() });
  const states: ConnectionState[] = [];
  client.on('state', (s) => states.push(s));
  const t0 = Date.now();
  server.snapshots.set(CTX, [actionData({ issuer: 'bob.test', subType: 'ONLINE', createdAt: t0 })]);
  client.connect();
  await client.subscribe(CTX);
  assert.deepEqual(brief(client.presence(CTX)), ['bob.test:ONLINE']);

  server.refuse = (f) => (f.cmd === 'pres' ? 'silent' : null);
  const pending = client.send('TYPING', CTX);
  server.snapshots.set(CTX, [actionData({ issuer: 'carol.test', subType: 'TYPING', createdAt: t0 + 1000 })]);
  const refreshed = waitEvent<[string, PresenceEntry[]]>(client, 'presence', (_c, es) => es.some((e) => e.issuer === 'carol.test'));
  await server.waitFor((f) => f.cmd === 'pres');
  server.dropAll();
  await assert.rejects(pending, (e: PresdError) => e.code === 'unavailable');
  const [, es] = await refreshed;
  assert.deepEqual(brief(es), ['carol.test:TYPING']); // bob's state, gone while we were away, is dropped
  assert.equal(server.conns.length, 2);
  assert.deepEqual(server.tokens, ['t1', 't2']); // the token provider is asked again
  assert.equal(server.frames('subscribe', 1).length, 1);
  assert.equal(server.frames('subscribe', 1)[0]!.data.context, CTX);
  assert.deepEqual(states, ['connecting', 'open', 'connecting', 'open']);
});

test('backoff grows while the server is down and the client recovers when it returns', async () => {
  const { server, client } = await setup({ backoff: { initialMs: 30, maxMs: 200 } });
  server.rejectWith = { code: 1011, reason: 'down' };
  client.connect();
  await sleep(600);
  const attempts = server.conns.length;
  // 30, 60, 120, 200, 200 ... with jitter in [half, full]: a handful of attempts, not hundreds
  assert.ok(attempts >= 3 && attempts <= 12, `attempts: ${attempts}`);
  // Still trying: the fake server accepts each attempt and then closes it, so at any instant the
  // client may be in an attempt's brief 'open'; it is back to 'connecting' right after.
  if (client.state !== 'connecting') await waitEvent<[ConnectionState]>(client, 'state', (s) => s === 'connecting');
  assert.equal(client.state, 'connecting');
  server.rejectWith = null;
  await waitOpen(client);
});

test('4401 close reports the auth error code', async () => {
  const { server, client } = await setup();
  server.rejectWith = { code: 4401, reason: 'auth_invalid' };
  const ev = waitEvent<[PresdError]>(client, 'error');
  client.connect();
  const [e] = await ev;
  assert.equal(e.code, 'auth_invalid');
  client.close();
});

test('close() stops reconnecting and rejects requests with unavailable', async () => {
  const { server, client } = await setup();
  client.connect();
  await client.subscribe(CTX);
  server.refuse = () => 'silent';
  const pending = client.send('TYPING', CTX);
  await server.waitFor((f) => f.cmd === 'pres');
  client.close();
  assert.equal(client.state, 'closed');
  await assert.rejects(pending, (e: PresdError) => e.code === 'unavailable');
  await assert.rejects(client.subscribe('a1~x'), (e: PresdError) => e.code === 'unavailable');
  await sleep(300); // several backoff periods
  assert.equal(server.conns.length, 1);
  assert.equal(client.state, 'closed');
});

test('a failed connection rejects requests with unavailable', async () => {
  const server = await FakeServer.start();
  const url = server.url;
  await server.stop(); // nothing listens there any more
  const client = new PresdClient({ url, token: 't', WebSocket, backoff: { initialMs: 1000, maxMs: 1000 } });
  cleanups.push(() => client.close());
  client.connect();
  await assert.rejects(client.subscribe(CTX), (e: PresdError) => e instanceof PresdError && e.code === 'unavailable');
  assert.equal(client.state, 'connecting');
});

test('requests time out with code timeout', async () => {
  const { server, client } = await setup({ requestTimeoutMs: 100 });
  server.refuse = () => 'silent';
  client.connect();
  await assert.rejects(client.send('TYPING', CTX), (e: PresdError) => e.code === 'timeout');
});

test('unsubscribe() and UNSUBSCRIBED clear the context and stop re-subscribing it', async () => {
  const { server, client } = await setup();
  const t0 = Date.now();
  server.snapshots.set(CTX, [actionData({ issuer: 'bob.test', createdAt: t0 })]);
  server.snapshots.set('a1~b', [actionData({ issuer: 'bob.test', subject: 'a1~b', createdAt: t0 })]);
  client.connect();
  await client.subscribe(CTX);
  await client.subscribe('a1~b');
  await client.subscribe('a1~c');

  const cleared = waitEvent<[string, PresenceEntry[]]>(client, 'presence', (c) => c === CTX);
  await client.unsubscribe(CTX);
  assert.deepEqual(await cleared, [CTX, []]);
  assert.deepEqual(client.presence(CTX), []);
  assert.equal(server.frames('unsubscribe')[0]!.data.context, CTX);

  const unsub = waitEvent<[string, string]>(client, 'unsubscribed');
  const cleared2 = waitEvent<[string, PresenceEntry[]]>(client, 'presence', (c) => c === 'a1~b');
  server.push('UNSUBSCRIBED', { context: 'a1~b', reason: 'access_revoked' });
  assert.deepEqual(await unsub, ['a1~b', 'access_revoked']);
  assert.deepEqual(await cleared2, ['a1~b', []]);

  server.dropAll();
  await server.waitFor((f) => f.conn === 1 && f.cmd === 'subscribe');
  await sleep(50);
  assert.deepEqual(server.frames('subscribe', 1).map((f) => f.data.context), ['a1~c']);
});

test('listeners can be removed', async () => {
  const { client } = await setup();
  let calls = 0;
  const off = client.on('presence', () => calls++);
  client.connect();
  await client.subscribe(CTX);
  assert.equal(calls, 1);
  off();
  await client.subscribe(CTX);
  assert.equal(calls, 1);
});
