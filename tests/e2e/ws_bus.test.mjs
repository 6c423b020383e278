// End-to-end tests of the /ws/bus command layer against a real presd process.
import { after, before } from 'node:test';
import assert from 'node:assert/strict';
import {
  e2e, startPresd, stopAll, makeContext, randomContextId, isAction, isExpired, sleep, ISO, connectBus, makeDataDir, alignToSecond,
} from './harness.mjs';

const TENANTS = ['alice.test', 'bob.test', 'carol.test', 'dave.test', 'erin.test'];
let S;        // the shared server: --pres-ttl 2
const tok = {};

before(async () => {
  S = await startPresd({
    name: 'shared',
    tenants: TENANTS,
    args: ['--pres-ttl', '2', '--same-state-interval-ms', '1000', '--issuer-rate', '1000', '--issuer-burst', '1000',
      '--expiry-tick-ms', '20'],
  });
  for (const t of TENANTS) tok[t.split('.')[0]] = S.accessToken(t);
});
after(stopAll);

const clients = [];
async function ws(user, opts = {}) {
  const c = await S.ws(tok[user], { label: opts.label || user, ...opts });
  clients.push(c);
  return c;
}
after(() => { for (const c of clients) c.terminate(); });

// A conversation owned (and created) by bob with alice and carol as members.
const conv = (extra = {}) => makeContext(S, 'bob.test', { 'alice.test': 'member', 'carol.test': 'member', ...extra });

e2e('ping is acknowledged with pong and the request id', async () => {
  const a = await ws('alice');
  const r = await a.request('ping');
  assert.equal(r.cmd, 'ack');
  assert.deepEqual(r.data, { status: 'pong' });
  // A numeric id is echoed as sent.
  a.send({ id: 42, cmd: 'ping' });
  const r2 = await a.next((f) => f.id === 42);
  assert.equal(r2.cmd, 'ack');
  a.close();
});

e2e('no token closes with 4401 auth_required; a bad token with 4401 auth_invalid', async () => {
  const none = await connectBus(S.port, undefined, { label: 'anon' });
  const c1 = await none.closed;
  assert.equal(c1.code, 4401);
  assert.equal(c1.reason, 'auth_required');

  const bad = await connectBus(S.port, tok.alice.slice(0, -3) + 'AAA', { label: 'bad' });
  const c2 = await bad.closed;
  assert.equal(c2.code, 4401);
  assert.equal(c2.reason, 'auth_invalid');

  const junk = await connectBus(S.port, 'not-a-jwt', { label: 'junk' });
  assert.equal((await junk.closed).code, 4401);

  // An access token signed with another server's secret is refused as well.
  const other = makeDataDir();
  const foreign = S.cli(['token', 'issue', '--user', 'alice.test', '--data-dir', other]);
  const f = await connectBus(S.port, foreign, { label: 'foreign' });
  assert.equal((await f.closed).code, 4401);
});

e2e('an Authorization: Bearer header authenticates too', async () => {
  const a = await connectBus(S.port, tok.alice, { header: true, label: 'alice-hdr' });
  clients.push(a);
  assert.deepEqual((await a.request('ping')).data, { status: 'pong' });
  a.close();
});

e2e('unknown WebSocket path closes with 4404', async () => {
  const c = await connectBus(S.port, tok.alice, { path: '/ws/nope', label: 'nopath' });
  assert.equal((await c.closed).code, 4404);
});

e2e('a member subscribes and gets an (empty) snapshot; subscribing twice is a no-op', async () => {
  const ctx = conv();
  const a = await ws('alice');
  const d = await a.ok('subscribe', { context: ctx });
  assert.deepEqual(d, { status: 'subscribed', context: ctx, presence: [] });
  const d2 = await a.ok('subscribe', { context: ctx });
  assert.equal(d2.status, 'subscribed');
  // The creator (bob, no membership row) may subscribe, and so may an observer.
  const b = await ws('bob');
  assert.equal((await b.ok('subscribe', { context: ctx })).status, 'subscribed');
  S.cli(['context', 'grant', ctx, 'erin.test', '--role', 'observer']);
  const e = await ws('erin');
  assert.equal((await e.ok('subscribe', { context: ctx })).status, 'subscribed');
  // Unsubscribe, then unsubscribing again is not_found.
  assert.deepEqual(await a.ok('unsubscribe', { context: ctx }), { status: 'unsubscribed', context: ctx });
  assert.equal((await a.fail('unsubscribe', { context: ctx })).code, 'not_found');
  for (const c of [a, b, e]) c.close();
});

e2e('a non-member cannot subscribe (access_denied); unknown context is context_unknown', async () => {
  const ctx = conv();
  const d = await ws('dave');
  const err = await d.fail('subscribe', { context: ctx });
  assert.equal(err.code, 'access_denied');
  assert.equal(typeof err.message, 'string');
  assert.equal((await d.fail('subscribe', { context: randomContextId() })).code, 'context_unknown');
  // A revoked (deleted) membership no longer grants access.
  const ctx2 = conv({ 'dave.test': 'member' });
  S.cli(['context', 'revoke', ctx2, 'dave.test']);
  assert.equal((await d.fail('subscribe', { context: ctx2 })).code, 'access_denied');
  d.close();
});

e2e('typing reaches every subscribed connection, not unsubscribed members or other contexts', async () => {
  const ctx = conv();
  const other = makeContext(S, 'dave.test', { 'bob.test': 'member' });
  const alice = await ws('alice');
  const bob1 = await ws('bob', { label: 'bob1' });
  const bob2 = await ws('bob', { label: 'bob2' });
  const carol = await ws('carol');            // a member, connected, not subscribed
  const dave = await ws('dave');              // subscribed to another context only
  const bob3 = await ws('bob', { label: 'bob3' });  // bob, subscribed to the other context only
  for (const c of [alice, bob1, bob2]) await c.ok('subscribe', { context: ctx });
  await dave.ok('subscribe', { context: other });
  await bob3.ok('subscribe', { context: other });

  const t0 = Date.now();
  const ack = await alice.ok('pres', { subType: 'TYPING', subject: ctx, content: { draft: 1 } });
  assert.equal(ack.status, 'accepted');
  assert.match(ack.token, /^eyJ0eXAiOiJKV1QiLCJhbGciOiJFUzM4NCJ9\.[\w-]+\.[\w-]+$/);
  assert.match(ack.expiresAt, ISO);

  for (const c of [bob1, bob2, alice]) {
    const f = await c.next(isAction(ctx, 'alice.test', 'TYPING'), 3000, 'ACTION');
    assert.equal(typeof f.id, 'string');
    assert.deepEqual(Object.keys(f.data).sort(),
      ['actionId', 'audience', 'content', 'createdAt', 'expiresAt', 'issuer', 'subType', 'subject', 'type'].sort());
    assert.equal(f.data.actionId, null);
    assert.equal(f.data.type, 'PRES');
    assert.equal(f.data.audience, null);
    assert.deepEqual(f.data.content, { draft: 1 });
    assert.deepEqual(f.data.issuer, { idTag: 'alice.test' });
    assert.match(f.data.createdAt, ISO);
    assert.equal(f.data.expiresAt, ack.expiresAt);
    const created = Date.parse(f.data.createdAt);
    assert.ok(Math.abs(created - t0) < 3000, `createdAt ${f.data.createdAt} near now`);
    assert.equal(Date.parse(f.data.expiresAt) - created, 2000, 'expiresAt = createdAt + ttl');
  }
  for (const c of [carol, dave, bob3]) {
    const got = await c.collect(400, (f) => f.cmd === 'ACTION');
    assert.deepEqual(got, [], `${c.label} must not receive the ACTION`);
  }
  for (const c of [alice, bob1, bob2, carol, dave, bob3]) c.close();
});

e2e('aud delivers only to that user (subscribed or not)', async () => {
  const ctx = conv();
  const alice = await ws('alice');
  const bobSub = await ws('bob', { label: 'bob-sub' });
  const bobIdle = await ws('bob', { label: 'bob-idle' });  // not subscribed
  const carol = await ws('carol');
  await bobSub.ok('subscribe', { context: ctx });
  await carol.ok('subscribe', { context: ctx });
  await alice.ok('subscribe', { context: ctx });

  await alignToSecond();
  const ack = await alice.ok('pres', { subType: 'TYPING', subject: ctx, audienceTag: 'bob.test' });
  assert.equal(ack.status, 'accepted');
  for (const c of [bobSub, bobIdle]) {
    const f = await c.next(isAction(ctx, 'alice.test'), 3000, 'ACTION with aud');
    assert.deepEqual(f.data.audience, { idTag: 'bob.test' });
  }
  assert.deepEqual(await carol.collect(400, (f) => f.cmd === 'ACTION'), [], 'carol is not the audience');

  // The snapshot shows an aud state to its audience and issuer only.
  const carolSnap = await carol.ok('subscribe', { context: ctx });
  assert.deepEqual(carolSnap.presence, []);
  const bobSnap = await bobIdle.ok('subscribe', { context: ctx });
  assert.equal(bobSnap.presence.length, 1);
  assert.deepEqual(bobSnap.presence[0].audience, { idTag: 'bob.test' });

  // Its expiry goes to the same recipients.
  for (const c of [bobSub, bobIdle]) await c.next(isExpired(ctx, 'alice.test'), 4000, 'PRES_EXPIRED (aud)');
  assert.deepEqual(await carol.collect(100, (f) => f.cmd === 'PRES_EXPIRED'), []);
  for (const c of [alice, bobSub, bobIdle, carol]) c.close();
});

e2e('aud without access is audience_no_access; non-member send is access_denied; unknown context', async () => {
  const ctx = conv({ 'erin.test': 'observer' });
  const alice = await ws('alice');
  assert.equal((await alice.fail('pres', { subType: 'TYPING', subject: ctx, audienceTag: 'dave.test' })).code,
    'audience_no_access');
  // An observer may be an audience.
  assert.equal((await alice.ok('pres', { subType: 'ONLINE', subject: ctx, audienceTag: 'erin.test' })).status, 'accepted');

  const dave = await ws('dave');
  assert.equal((await dave.fail('pres', { subType: 'TYPING', subject: ctx })).code, 'access_denied');
  // Observers listen but do not send.
  const erin = await ws('erin');
  assert.equal((await erin.fail('pres', { subType: 'TYPING', subject: ctx })).code, 'access_denied');

  assert.equal((await alice.fail('pres', { subType: 'TYPING', subject: randomContextId() })).code, 'context_unknown');
  // Field errors.
  assert.equal((await alice.fail('pres', { subject: ctx })).code, 'bad_request');
  assert.equal((await alice.fail('pres', { subType: 'TYP ING', subject: ctx })).code, 'token_bad_subtype');
  assert.equal((await alice.fail('pres', { subType: 'X', subject: ctx, content: 'str' })).code, 'bad_request');
  for (const c of [alice, dave, erin]) c.close();
});

e2e('a state expires with PRES_EXPIRED about TTL (2 s) after it was sent', async () => {
  const ctx = conv();
  const alice = await ws('alice');
  const bob = await ws('bob');
  await bob.ok('subscribe', { context: ctx });
  await alignToSecond();
  const t0 = Date.now();
  const ack = await alice.ok('pres', { subType: 'TYPING', subject: ctx });
  await bob.next(isAction(ctx, 'alice.test', 'TYPING'));
  const exp = await bob.next(isExpired(ctx, 'alice.test', 'TYPING'), 5000, 'PRES_EXPIRED');
  const dt = Date.now() - t0;
  assert.ok(dt >= 900 && dt <= 3200, `expired after ${dt} ms, expected 2 s +- 1 s`);
  assert.deepEqual(exp.data, {
    type: 'PRES', subType: 'TYPING', issuer: { idTag: 'alice.test' }, audience: null, subject: ctx,
    expiredAt: ack.expiresAt,
  });
  // Only once.
  assert.deepEqual(await bob.collect(500, (f) => f.cmd === 'PRES_EXPIRED'), []);
  alice.close(); bob.close();
});

e2e('a refreshed state does not expire at the old time', async () => {
  const ctx = conv();
  const alice = await ws('alice');
  const bob = await ws('bob');
  await bob.ok('subscribe', { context: ctx });
  await alignToSecond();
  const t0 = Date.now();
  const ack1 = await alice.ok('pres', { subType: 'TYPING', subject: ctx });
  await sleep(1100);  // past the same-state interval (1 s) and into the next second
  const ack2 = await alice.ok('pres', { subType: 'TYPING', subject: ctx });
  assert.ok(Date.parse(ack2.expiresAt) > Date.parse(ack1.expiresAt));
  const exp = await bob.next(isExpired(ctx, 'alice.test', 'TYPING'), 5000, 'PRES_EXPIRED');
  assert.equal(exp.data.expiredAt, ack2.expiresAt, 'the expiry is the refreshed one');
  assert.ok(Date.now() - t0 >= 2700, 'not at the first state\'s expiry (~2 s)');
  assert.deepEqual(await bob.collect(300, (f) => f.cmd === 'PRES_EXPIRED'), [], 'one PRES_EXPIRED only');
  alice.close(); bob.close();
});

e2e('a later subscriber gets the live state in the snapshot, and not after expiry', async () => {
  const ctx = conv();
  const alice = await ws('alice');
  const watcher = await ws('bob', { label: 'watcher' });
  await watcher.ok('subscribe', { context: ctx });
  await alignToSecond();
  const ack = await alice.ok('pres', { subType: 'TYPING', subject: ctx, content: { x: 'y' } });
  const action = await watcher.next(isAction(ctx, 'alice.test'));

  const carol = await ws('carol');
  const snap = await carol.ok('subscribe', { context: ctx });
  assert.equal(snap.presence.length, 1);
  assert.deepEqual(snap.presence[0], action.data, 'snapshot entry has the ACTION data shape');
  assert.equal(snap.presence[0].expiresAt, ack.expiresAt);

  await watcher.next(isExpired(ctx, 'alice.test'), 5000, 'PRES_EXPIRED');
  const late = await ws('carol', { label: 'carol-late' });
  assert.deepEqual((await late.ok('subscribe', { context: ctx })).presence, []);
  // The subscriber from before the expiry got the PRES_EXPIRED too.
  await carol.next(isExpired(ctx, 'alice.test'), 1000, 'PRES_EXPIRED for carol');
  for (const c of [alice, watcher, carol, late]) c.close();
});

e2e('ONLINE/AWAY share a slot; an older iat is superseded and not delivered', async () => {
  const ctx = conv();
  const alice = await ws('alice');
  const bob = await ws('bob');
  await bob.ok('subscribe', { context: ctx });
  await alignToSecond();
  const now = Math.floor(Date.now() / 1000);
  const tOnline = S.cli(['token', 'sign', '--iss', 'alice.test', '--sub', ctx, '--type', 'ONLINE', '--iat', String(now)]);
  const tAway = S.cli(['token', 'sign', '--iss', 'alice.test', '--sub', ctx, '--type', 'AWAY', '--iat', String(now - 1)]);
  assert.equal((await alice.ok('pres', { token: tOnline })).status, 'accepted');
  await bob.next(isAction(ctx, 'alice.test', 'ONLINE'));
  const sup = await alice.ok('pres', { token: tAway });
  assert.equal(sup.status, 'superseded');
  assert.deepEqual(await bob.collect(300, (f) => f.cmd === 'ACTION'), []);
  // A newer OFFLINE replaces ONLINE: the snapshot holds one status state.
  assert.equal((await alice.ok('pres', { subType: 'OFFLINE', subject: ctx })).status, 'accepted');
  const snap = await (await ws('carol')).ok('subscribe', { context: ctx });
  assert.deepEqual(snap.presence.map((p) => p.subType), ['OFFLINE']);
  alice.close(); bob.close();
});

e2e('the same state repeated too soon is rate_limited with retryAfter', async () => {
  const ctx = conv();
  const alice = await ws('alice');
  const bob = await ws('bob');
  await bob.ok('subscribe', { context: ctx });
  await alice.ok('pres', { subType: 'TYPING', subject: ctx });
  const err = await alice.fail('pres', { subType: 'TYPING', subject: ctx });
  assert.equal(err.code, 'rate_limited');
  assert.equal(typeof err.retryAfter, 'number');
  assert.ok(err.retryAfter > 0 && err.retryAfter <= 1000, `retryAfter ${err.retryAfter}`);
  // Another subtype in the same context is independent.
  assert.equal((await alice.ok('pres', { subType: 'ONLINE', subject: ctx })).status, 'accepted');
  // Only one TYPING was delivered.
  await sleep(200);
  assert.equal(bob.frames.filter(isAction(ctx, 'alice.test', 'TYPING')).length, 1);
  // After retryAfter it is accepted again.
  await sleep(err.retryAfter + 50);
  assert.equal((await alice.ok('pres', { subType: 'TYPING', subject: ctx })).status, 'accepted');
  alice.close(); bob.close();
});

e2e('a pre-signed token via pres {token} is accepted and delivered; a replay is token_duplicate', async () => {
  const ctx = conv();
  const token = S.cli(['token', 'sign', '--iss', 'alice.test', '--sub', ctx, '--type', 'TYPING', '--content', '{"n":7}']);
  const bob = await ws('bob');
  await bob.ok('subscribe', { context: ctx });
  // Relayed by another user's connection: the token authenticates itself.
  const carol = await ws('carol');
  const ack = await carol.ok('pres', { token });
  assert.equal(ack.status, 'accepted');
  assert.match(ack.expiresAt, ISO);
  assert.equal(ack.token, undefined, 'no token echoed for pre-signed PRES');
  const f = await bob.next(isAction(ctx, 'alice.test', 'TYPING'));
  assert.deepEqual(f.data.content, { n: 7 });

  const dup = await carol.fail('pres', { token });
  assert.equal(dup.code, 'token_duplicate');
  const alice = await ws('alice');
  assert.equal((await alice.fail('pres', { token })).code, 'token_duplicate');
  assert.deepEqual(await bob.collect(300, (x) => x.cmd === 'ACTION'), []);
  for (const c of [bob, carol, alice]) c.close();
});

e2e('bad pre-signed tokens get their token_* codes', async () => {
  const ctx = conv();
  const alice = await ws('alice');
  const good = S.cli(['token', 'sign', '--iss', 'alice.test', '--sub', ctx, '--type', 'AWAY']);
  const [h, p, s] = good.split('.');
  assert.equal((await alice.fail('pres', { token: `${h}.${p}` })).code, 'token_malformed');
  assert.equal((await alice.fail('pres', { token: `${h}=.${p}.${s}` })).code, 'token_bad_base64');
  // Flip a signature byte.
  const sig = Buffer.from(s, 'base64url');
  sig[10] ^= 1;
  assert.equal((await alice.fail('pres', { token: `${h}.${p}.${sig.toString('base64url')}` })).code, 'token_bad_signature');
  const old = S.cli(['token', 'sign', '--iss', 'alice.test', '--sub', ctx, '--iat', String(Math.floor(Date.now() / 1000) - 60)]);
  assert.equal((await alice.fail('pres', { token: old })).code, 'token_expired');
  const future = S.cli(['token', 'sign', '--iss', 'alice.test', '--sub', ctx, '--iat', String(Math.floor(Date.now() / 1000) + 600)]);
  assert.equal((await alice.fail('pres', { token: future })).code, 'token_not_yet_valid');
  const wrongKid = S.cli(['token', 'sign', '--iss', 'alice.test', '--sub', ctx]).split('.');
  const claims = JSON.parse(Buffer.from(wrongKid[1], 'base64url'));
  claims.k = '000000';
  const forged = `${wrongKid[0]}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${wrongKid[2]}`;
  assert.equal((await alice.fail('pres', { token: forged })).code, 'token_unknown_key');
  // The good one still works after all that.
  assert.equal((await alice.ok('pres', { token: good })).status, 'accepted');
  alice.close();
});

e2e('bad frames get coded errors and the connection keeps working', async () => {
  const a = await ws('alice');
  a.send('this is not json');
  let f = await a.next((x) => x.cmd === 'error');
  assert.equal(f.id, null);
  assert.equal(f.data.code, 'bad_request');

  a.send('[1,2,3]');
  f = await a.next((x) => x.cmd === 'error');
  assert.equal(f.data.code, 'bad_request');

  const u = await a.request('frobnicate', {});
  assert.equal(u.cmd, 'error');
  assert.equal(u.data.code, 'unknown_command');

  assert.equal((await a.fail('subscribe', {})).code, 'bad_request');
  assert.equal((await a.fail('subscribe', { context: 5 })).code, 'bad_request');
  assert.equal((await a.fail('subscribe', { context: 'not a context id' })).code, 'bad_request');
  assert.equal((await a.fail('subscribe', 'x')).code, 'bad_request');
  assert.equal((await a.fail('pres')).code, 'bad_request');

  a.send({ id: 'nocmd' });
  f = await a.next((x) => x.id === 'nocmd');
  assert.equal(f.data.code, 'bad_request');

  assert.deepEqual((await a.request('ping')).data, { status: 'pong' });
  assert.ok(a.isOpen);
  a.close();
});

e2e('an oversize frame (> 16 KiB) closes with 1009; others keep working', async () => {
  const bystander = await ws('bob', { label: 'bystander' });
  const a = await ws('alice');
  a.send(JSON.stringify({ id: 'big', cmd: 'ping', data: { pad: 'x'.repeat(17 * 1024) } }));
  const c = await a.closed;
  assert.equal(c.code, 1009);
  assert.deepEqual((await bystander.request('ping')).data, { status: 'pong' });
  // A frame just under the limit is fine.
  const b = await ws('alice', { label: 'alice-under' });
  const r = await b.request('ping', { pad: 'x'.repeat(15 * 1024) });
  assert.equal(r.cmd, 'ack');
  const h = await S.http('GET', '/healthz');
  assert.equal(h.status, 200);
  bystander.close(); b.close();
});

e2e('a binary frame closes with 1003', async () => {
  const a = await ws('alice');
  a.send(Buffer.from(JSON.stringify({ id: '1', cmd: 'ping' })));
  assert.equal((await a.closed).code, 1003);
});

e2e('a closed connection is detached: delivery to the others continues', async () => {
  const ctx = conv();
  const gone = await ws('bob', { label: 'gone' });
  const stay = await ws('bob', { label: 'stay' });
  await gone.ok('subscribe', { context: ctx });
  await stay.ok('subscribe', { context: ctx });
  gone.terminate();
  await gone.closed;
  await sleep(100);
  const alice = await ws('alice');
  await alice.ok('pres', { subType: 'TYPING', subject: ctx });
  await stay.next(isAction(ctx, 'alice.test'));
  alice.close(); stay.close();
});

e2e('a token exp shorter than the TTL ends the state at exp', async () => {
  const R = await startPresd({ name: 'exp', tenants: ['alice.test', 'bob.test'], args: ['--pres-ttl', '30', '--expiry-tick-ms', '20'] });
  const ctx = makeContext(R, 'bob.test', { 'alice.test': 'member' });
  const bob = await R.ws(R.accessToken('bob.test'), { label: 'bob' });
  clients.push(bob);
  await bob.ok('subscribe', { context: ctx });
  await alignToSecond();
  const iat = Math.floor(Date.now() / 1000);
  const jwt = R.cli(['token', 'sign', '--iss', 'alice.test', '--sub', ctx, '--iat', String(iat), '--exp', String(iat + 2)]);
  const ack = await bob.ok('pres', { token: jwt });
  assert.equal(Date.parse(ack.expiresAt), (iat + 2) * 1000);
  const t0 = Date.now();
  const f = await bob.next(isExpired(ctx, 'alice.test'), 5000, 'PRES_EXPIRED at exp');
  assert.ok(Date.now() - t0 < 2600, 'at exp, not at iat + 30 s');
  assert.equal(f.data.expiredAt, ack.expiresAt);
  // A token whose exp has passed is refused although iat is fresh.
  const stale = R.cli(['token', 'sign', '--iss', 'alice.test', '--sub', ctx, '--type', 'ONLINE', '--iat', String(iat), '--exp', String(iat)]);
  assert.equal((await bob.fail('pres', { token: stale })).code, 'token_expired');
  bob.close();
  assert.equal(await R.stop(), 0);
});

e2e('per-connection limits: subscriptions, PRES burst, frame burst', async () => {
  const R = await startPresd({
    name: 'limits', tenants: ['alice.test'],
    args: ['--max-subscriptions', '2', '--conn-burst', '3', '--conn-rate', '0.5', '--issuer-burst', '100'],
  });
  const ctxs = [0, 1, 2].map(() => makeContext(R, 'alice.test'));
  const a = await R.ws(R.accessToken('alice.test'), { label: 'alice' });
  clients.push(a);
  await a.ok('subscribe', { context: ctxs[0] });
  await a.ok('subscribe', { context: ctxs[1] });
  await a.ok('subscribe', { context: ctxs[1] });  // re-subscribing does not count twice
  assert.equal((await a.fail('subscribe', { context: ctxs[2] })).code, 'too_many_subscriptions');
  await a.ok('unsubscribe', { context: ctxs[0] });
  await a.ok('subscribe', { context: ctxs[2] });

  // PRES per connection: burst 3.
  for (const st of ['A1', 'A2', 'A3']) assert.equal((await a.ok('pres', { subType: st, subject: ctxs[0] })).status, 'accepted');
  const limited = await a.fail('pres', { subType: 'A4', subject: ctxs[0] });
  assert.equal(limited.code, 'rate_limited');
  assert.ok(limited.retryAfter > 0);
  // A second connection of the same user has its own bucket.
  const a2 = await R.ws(R.accessToken('alice.test'), { label: 'alice2' });
  clients.push(a2);
  assert.equal((await a2.ok('pres', { subType: 'A4', subject: ctxs[0] })).status, 'accepted');

  // Frames: 200 burst then 50/s per connection; the connection stays open.
  const a3 = await R.ws(R.accessToken('alice.test'), { label: 'alice3' });
  clients.push(a3);
  const n = 260;
  for (let i = 0; i < n; i++) a3.send({ id: `f${i}`, cmd: 'ping' });
  const replies = [];
  for (let i = 0; i < n; i++) replies.push(await a3.next((f) => f.id === `f${i}`, 5000, `reply f${i}`));
  const errs = replies.filter((r) => r.cmd === 'error');
  assert.ok(errs.length > 0, 'some frames are rate limited');
  assert.ok(errs.every((e) => e.data.code === 'rate_limited' && e.data.retryAfter > 0));
  const acks = replies.filter((r) => r.cmd === 'ack').length;
  assert.ok(acks >= 200, `${acks} of ${n} acknowledged, burst is 200`);
  assert.ok(a3.isOpen);
  a.close(); a2.close(); a3.close();
  assert.equal(await R.stop(), 0);
});

e2e('profile contexts @id_tag: the owner may send, others may not subscribe', async () => {
  const alice = await ws('alice');
  const bob = await ws('bob');
  const ack = await alice.ok('subscribe', { context: '@alice.test' });
  assert.equal(ack.status, 'subscribed');
  assert.equal((await alice.ok('pres', { subType: 'ONLINE', subject: '@alice.test' })).status, 'accepted');
  await alice.next(isAction('@alice.test', 'alice.test', 'ONLINE'));
  assert.equal((await bob.fail('subscribe', { context: '@alice.test' })).code, 'access_denied');
  assert.equal((await bob.fail('pres', { subType: 'ONLINE', subject: '@alice.test' })).code, 'access_denied');
  alice.close(); bob.close();
});

e2e('server-signed pres for a user this instance does not host is issuer_not_hosted', async () => {
  const ctx = makeContext(S, 'bob.test', { 'zed.example.org': 'member' });
  const z = await S.ws(S.accessToken('zed.example.org'), { label: 'zed' });
  clients.push(z);
  assert.equal((await z.ok('subscribe', { context: ctx })).status, 'subscribed');
  assert.equal((await z.fail('pres', { subType: 'TYPING', subject: ctx })).code, 'issuer_not_hosted');
  z.close();
});

// The presence slot is (context, issuer, subtype) whatever the audience. A broadcast TYPING
// replaced by a TYPING with aud moves the state's recipients to the aud user only: the other
// subscribers saw "alice is typing" and must still get a PRES_EXPIRED for it (docs/protocol.md:
// "Expiry events go to the same recipients as the state they end"; no stuck indicators).
e2e('a broadcast state replaced by an aud state still expires for the other subscribers', async () => {
  const ctx = conv();
  const alice = await ws('alice');
  const bob = await ws('bob');
  const carol = await ws('carol');
  await bob.ok('subscribe', { context: ctx });
  await carol.ok('subscribe', { context: ctx });
  await alignToSecond();
  await alice.ok('pres', { subType: 'TYPING', subject: ctx });
  await carol.next(isAction(ctx, 'alice.test', 'TYPING'));
  await sleep(1050);  // past the 1 s same-state interval
  await alice.ok('pres', { subType: 'TYPING', subject: ctx, audienceTag: 'bob.test' });
  await bob.next((f) => isAction(ctx, 'alice.test', 'TYPING')(f) && f.data.audience?.idTag === 'bob.test');
  // carol's "alice is typing" (live until ~2 s after the first send) must end for her.
  const exp = await carol.next(isExpired(ctx, 'alice.test', 'TYPING'), 4000, 'PRES_EXPIRED for the broadcast state')
    .catch((e) => e);
  alice.close(); bob.close(); carol.close();
  assert.ok(!(exp instanceof Error), 'carol never got PRES_EXPIRED for alice\'s TYPING: her indicator stays stuck');
});

e2e('a restart leaves no presence in the snapshot', async () => {
  const R = await startPresd({ name: 'restart', tenants: ['alice.test', 'bob.test'] });  // default 30 s TTL
  const ctx = makeContext(R, 'bob.test', { 'alice.test': 'member' });
  const aliceTok = R.accessToken('alice.test');
  const bobTok = R.accessToken('bob.test');
  const alice = await R.ws(aliceTok, { label: 'alice' });
  await alice.ok('pres', { subType: 'TYPING', subject: ctx });
  await alice.ok('pres', { subType: 'ONLINE', subject: ctx });
  const bob = await R.ws(bobTok, { label: 'bob' });
  const before = await bob.ok('subscribe', { context: ctx });
  assert.equal(before.presence.length, 2, 'live before the restart');
  assert.equal(await R.stop(), 0);
  await Promise.all([alice.closed, bob.closed]);

  const R2 = await startPresd({ name: 'restart-2', dataDir: R.dataDir });
  // Same data dir: the access secret, tenants and the context survive; presence does not.
  const bob2 = await R2.ws(bobTok, { label: 'bob-after' });
  const afterSnap = await bob2.ok('subscribe', { context: ctx });
  assert.deepEqual(afterSnap.presence, []);
  const alice2 = await R2.ws(aliceTok, { label: 'alice-after' });
  assert.equal((await alice2.ok('pres', { subType: 'TYPING', subject: ctx })).status, 'accepted');
  await bob2.next(isAction(ctx, 'alice.test'));
  alice2.close(); bob2.close();
  assert.equal(await R2.stop(), 0);
});

e2e('SIGTERM closes clients with 1001 and exits 0', async () => {
  const T = await startPresd({ name: 'sigterm', tenants: ['alice.test'], args: ['--shutdown-grace-ms', '2000'] });
  const t = T.accessToken('alice.test');
  const a = await T.ws(t, { label: 'a' });
  const b = await T.ws(t, { label: 'b' });
  await a.ok('ping');
  const t0 = Date.now();
  const code = await T.stop();
  assert.equal(code, 0);
  const [ca, cb] = await Promise.all([a.closed, b.closed]);
  assert.equal(ca.code, 1001);
  assert.equal(cb.code, 1001);
  assert.ok(Date.now() - t0 < 5000, 'exits within the grace period');
  assert.match(T.logs(), /draining/);
});

// docs/configuration.md: CLI membership changes are "seen by the running server at once (it
// reads the store per request)"; ../shared/PROTOCOL.md section 6: "Recipients of a broadcast are
// the subscribed connections of such users" (users with access). The hub checks access only at
// subscribe time, so a member revoked with `presd context revoke` keeps receiving the context's
// presence on a subscription made before the revoke. Only the admin HTTP API drops live
// subscriptions (a documented limitation in src/app/cmd_admin.cpp), hence todo, not a failure.
e2e('a member revoked with the CLI loses its live subscription within about a second', async () => {
  const ctx = conv();
  const carol = await ws('carol');
  await carol.ok('subscribe', { context: ctx });
  S.cli(['context', 'revoke', ctx, 'carol.test']);
  // The server polls SQLite's data_version once a second and re-checks live subscriptions.
  const notice = await carol.next((f) => f.cmd === 'UNSUBSCRIBED', 3000);
  assert.deepEqual(notice.data, { context: ctx, reason: 'access_revoked' });
  const alice = await ws('alice');
  await alice.ok('pres', { subType: 'TYPING', subject: ctx });
  const got = await carol.collect(500, (f) => f.cmd === 'ACTION');
  carol.close(); alice.close();
  assert.deepEqual(got, [], `revoked carol received ${JSON.stringify(got)}`);
});

