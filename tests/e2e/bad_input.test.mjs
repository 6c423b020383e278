// The bad-input catalogue (docs/security.md): one test per class of hostile input, each sent to
// a real `presd serve`. Every test asserts the coded refusal (HTTP status + {code, message}, the
// /ws/bus error frame, or the close) and then that the server still serves others: a healthy
// subscriber on another connection gets a PRES delivered afterwards (stillServing()).
//
// Token classes go through both doors, POST /api/inbox and /ws/bus `pres {token}`, and must get
// the same code at each. Attackers that need their own source IP use 127.0.0.2 and up, so that
// the per-IP caps they trip never touch the healthy clients on 127.0.0.1.
import { after, before } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import zlib from 'node:zlib';
import WebSocket from 'ws';
import { e2e, startPresd, stopAll, makeContext, isAction, sleep } from './harness.mjs';
import {
  ES384_HEADER, b64u, makeJwt, ecSigner, hmacSigner, newEcKey, spkiB64, tenantPrivateKey, rawHttp,
  makeTestCa, keyServer, connectionCounter,
} from './bad_input_tools.mjs';

const PER_IP = 16;          // --max-connections-per-ip of the shared server
const READ_TIMEOUT_MS = 1500;
const MAX_SUBS = 4;

let S;                       // the shared server
let ctx;                     // owned by bob.test; alice.test and carol.test are members
let aliceKid, aliceKey;      // alice's hosted key (to sign hand-made tokens that verify)
let healthy;                 // { alice, bob }: the connections that must keep working
let attacker;                // carol's /ws/bus connection: sends the bad tokens
const toClose = [];

before(async () => {
  S = await startPresd({
    name: 'bad-input',
    tenants: ['alice.test', 'bob.test', 'carol.test', 'dave.test'],
    args: ['--issuer-rate', '1000', '--issuer-burst', '1000', '--conn-rate', '1000', '--conn-burst', '1000',
      '--ip-rate', '1000', '--ip-burst', '1000', '--bad-signature-strikes', '0',
      '--max-subscriptions', String(MAX_SUBS), '--max-connections-per-ip', String(PER_IP),
      '--http-read-timeout-ms', String(READ_TIMEOUT_MS)],
  });
  ctx = makeContext(S, 'bob.test', { 'alice.test': 'member', 'carol.test': 'member' });
  aliceKid = (await S.http('GET', '/api/me', { host: 'cl-o.alice.test' })).json.data.keys[0].keyId;
  aliceKey = tenantPrivateKey(S, 'alice.test', aliceKid);
  healthy = {
    alice: await S.ws(S.accessToken('alice.test'), { label: 'healthy-alice' }),
    bob: await S.ws(S.accessToken('bob.test'), { label: 'healthy-bob' }),
  };
  await healthy.bob.ok('subscribe', { context: ctx });
  attacker = await S.ws(S.accessToken('carol.test'), { label: 'attacker' });
  toClose.push(healthy.alice, healthy.bob, attacker);
});
after(async () => {
  for (const c of toClose) c.terminate();
  await stopAll();
});

// The healthy pair still works: a fresh PRES from alice reaches bob's subscription.
let probe = 0;
async function stillServing(server = S, pair = healthy, context = ctx) {
  const subType = `PROBE${++probe}`;
  assert.equal((await pair.alice.ok('pres', { subType, subject: context }, 10000)).status, 'accepted');
  await pair.bob.next(isAction(context, 'alice.test', subType), 10000, `healthy ${subType} delivery`);
}

const now = () => Math.floor(Date.now() / 1000);
const claims = (extra = {}) => ({ iss: 'alice.test', k: aliceKid, t: 'PRES:TYPING', sub: ctx, iat: now(), ...extra });
const aliceJwt = (payload, header = ES384_HEADER) => makeJwt({ header, payload, sign: ecSigner(aliceKey) });

// The token is refused with `code` (and `status`) at the inbox and on /ws/bus.
async function assertRefused(token, code, status, what = code) {
  const r = await S.http('POST', '/api/inbox', { body: { token } });
  assert.equal(r.status, status, `${what}: inbox ${r.text}`);
  assert.equal(r.json?.error?.code, code, `${what}: inbox ${r.text}`);
  assert.ok(r.json.error.message.length > 0, `${what}: a message`);
  const e = await attacker.fail('pres', { token });
  assert.equal(e.code, code, `${what}: /ws/bus ${JSON.stringify(e)}`);
  assert.ok(e.message.length > 0);
}

// ---- token syntax ----------------------------------------------------------------------------

e2e('malformed JWT: wrong segment count, garbage, whitespace, non-JSON header', async () => {
  const [h, p, s] = aliceJwt(claims()).split('.');
  for (const t of [`${h}.${p}`, `${h}.${p}.${s}.${s}`, `${h}`, 'garbage', '...', ''])
    await assertRefused(t, 'token_malformed', 400, `segments of ${JSON.stringify(t.slice(0, 20))}`);
  for (const t of [` ${h}.${p}.${s}`, `${h}.${p}.${s}\n`, `${h}. ${p}.${s}`, `${h}.${p}.${s.slice(0, 60)} ${s.slice(61)}`])
    await assertRefused(t, 'token_bad_base64', 400, `whitespace in ${JSON.stringify(t.slice(0, 12))}`);
  await assertRefused(aliceJwt(claims(), 'not json'), 'token_bad_header', 400, 'non-JSON header');
  await assertRefused(aliceJwt(claims(), '["JWT","ES384"]'), 'token_bad_header', 400, 'header not an object');
  await assertRefused(aliceJwt('not json'), 'token_bad_json', 400, 'non-JSON payload');
  await assertRefused(`${h}..${s}`, 'token_bad_json', 400, 'empty payload');
  await stillServing();
});

e2e('oversized JWT is token_too_large before anything else', async () => {
  const big = aliceJwt(claims({ c: { pad: 'x'.repeat(5000) } }));
  assert.ok(big.length > 4096);
  await assertRefused(big, 'token_too_large', 413);
  // Oversized garbage too: the size is checked first.
  await assertRefused('x'.repeat(5000), 'token_too_large', 413, 'oversized garbage');
  await stillServing();
});

e2e('alg none is token_bad_header', async () => {
  const payload = b64u(claims());
  // The header is judged first: no signature segment changes nothing.
  await assertRefused(`${b64u('{"alg":"none","typ":"JWT"}')}.${payload}.`, 'token_bad_header', 400, 'none, empty signature');
  await assertRefused(`${b64u('{"alg":"none","typ":"JWT"}')}.${payload}.${b64u(Buffer.alloc(96))}`, 'token_bad_header', 400);
  await assertRefused(`${b64u('{"typ":"JWT","alg":"none"}')}.${payload}.${b64u(Buffer.alloc(96))}`, 'token_bad_header', 400);
  await stillServing();
});

e2e('HS384/HS256 alg confusion (HMAC keyed with the public key) is token_bad_header', async () => {
  const spki = (await S.http('GET', '/api/me', { host: 'cl-o.alice.test' })).json.data.keys[0].publicKey;
  const pem = `-----BEGIN PUBLIC KEY-----\n${spki.match(/.{1,64}/g).join('\n')}\n-----END PUBLIC KEY-----\n`;
  for (const [alg, hash] of [['HS384', 'sha384'], ['HS256', 'sha256'], ['HS512', 'sha512']]) {
    for (const secret of [spki, Buffer.from(spki, 'base64'), pem]) {
      const t = makeJwt({ header: { typ: 'JWT', alg }, payload: claims(), sign: hmacSigner(hash, secret) });
      await assertRefused(t, 'token_bad_header', 400, `${alg} keyed with the public key`);
    }
  }
  // The same MAC under the ES384 header is not a 96-byte signature at all.
  const hs384 = makeJwt({ payload: claims(), sign: hmacSigner('sha384', spki) });
  await assertRefused(hs384, 'token_malformed', 400, 'HMAC under an ES384 header');
  await stillServing();
});

e2e('a token signed with a wrong-curve key (P-256, P-521) is refused', async () => {
  for (const [curve, alg, hash] of [['P-256', 'ES256', 'sha256'], ['P-521', 'ES512', 'sha512']]) {
    const { privateKey } = newEcKey(curve);
    // Honest header: not ES384.
    await assertRefused(makeJwt({ header: { typ: 'JWT', alg }, payload: claims(), sign: ecSigner(privateKey, hash) }),
      'token_bad_header', 400, `${curve} with alg ${alg}`);
    // Lying header: the signature is not 96 bytes (64 for P-256, 132 for P-521).
    await assertRefused(makeJwt({ payload: claims(), sign: ecSigner(privateKey, hash) }), 'token_malformed', 400,
      `${curve} under an ES384 header`);
  }
  // A foreign P-384 key of the right size is caught by the signature check.
  const other = newEcKey('P-384');
  await assertRefused(makeJwt({ payload: claims(), sign: ecSigner(other.privateKey) }), 'token_bad_signature', 401);
  await stillServing();
});

e2e('bad base64url (padding, +, /, invalid characters, non-canonical bits) is token_bad_base64', async () => {
  // Pick a payload whose base64url length leaves unused bits in its last character.
  let payload;
  for (let pad = 0; ; pad++) {
    payload = claims({ c: { p: 'x'.repeat(pad) } });
    if (b64u(payload).length % 4 === 2) break;
  }
  const [h, p, s] = aliceJwt(payload).split('.');
  const lastBits = '0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_';
  const swapLast = (x) => {
    const i = lastBits.indexOf(x.at(-1));
    return x.slice(0, -1) + lastBits[(i + 1) % 64];  // same value, nonzero unused bits (length % 4 == 2 keeps 4 bits)
  };
  const cases = {
    padding: `${h}.${p}==.${s}`,
    'padded header': `${b64u(ES384_HEADER)}=.${p}.${s}`,
    plus: `${h}.${p}.+${s.slice(1)}`,
    slash: `${h}.${p}.${s.slice(0, -1)}/`,
    'standard base64 payload': `${h}.${Buffer.from(JSON.stringify(payload)).toString('base64').replace(/=+$/, '')}x+.${s}`,
    star: `${h}.${p.slice(0, 5)}*${p.slice(6)}.${s}`,
    'non-ASCII': `${h}.${p}é.${s}`,
    'non-canonical trailing bits': `${h}.${swapLast(p)}.${s}`,
  };
  for (const [name, t] of Object.entries(cases)) await assertRefused(t, 'token_bad_base64', 400, name);
  await stillServing();
});

// ---- claims ----------------------------------------------------------------------------------

e2e('float iat is token_bad_claim', async () => {
  const payload = JSON.stringify(claims()).replace(/"iat":(\d+)/, '"iat":$1.5');
  assert.match(payload, /"iat":\d+\.5/);
  await assertRefused(aliceJwt(payload), 'token_bad_claim', 400);
  await assertRefused(aliceJwt(JSON.stringify(claims()).replace(/"iat":(\d+)/, '"iat":$1.0')), 'token_bad_claim', 400, 'iat 1.0');
  await assertRefused(aliceJwt(JSON.stringify(claims()).replace(/"iat":(\d+)/, '"iat":1.7e9')), 'token_bad_claim', 400, 'iat 1.7e9');
  await stillServing();
});

e2e('string iat is token_bad_claim', async () => {
  await assertRefused(aliceJwt(claims({ iat: String(now()) })), 'token_bad_claim', 400);
  await assertRefused(aliceJwt(claims({ iat: null })), 'token_bad_claim', 400, 'null iat');
  await assertRefused(aliceJwt(claims({ iat: -1 })), 'token_bad_claim', 400, 'negative iat');
  await stillServing();
});

e2e('future iat is token_not_yet_valid', async () => {
  await assertRefused(aliceJwt(claims({ iat: now() + 600 })), 'token_not_yet_valid', 400);
  await stillServing();
});

e2e('expired iat is token_expired', async () => {
  await assertRefused(aliceJwt(claims({ iat: now() - 600 })), 'token_expired', 400);
  await assertRefused(aliceJwt(claims({ iat: now() - 600, exp: now() + 600 })), 'token_expired', 400, 'exp cannot extend the TTL');
  await stillServing();
});

e2e('a replayed token is token_duplicate (409) at both doors', async () => {
  const t = aliceJwt(claims({ t: 'PRES:REPLAYED' }));
  const first = await S.http('POST', '/api/inbox', { body: { token: t } });
  assert.equal(first.status, 201, first.text);
  await healthy.bob.next(isAction(ctx, 'alice.test', 'REPLAYED'), 10000, 'the original');
  await assertRefused(t, 'token_duplicate', 409);
  assert.deepEqual(await healthy.bob.collect(300, isAction(ctx, 'alice.test', 'REPLAYED')), [], 'no second delivery');
  await stillServing();
});

e2e('a PRES carrying `a` is token_forbidden_claim', async () => {
  await assertRefused(aliceJwt(claims({ a: ['a1~x'] })), 'token_forbidden_claim', 400);
  await stillServing();
});

e2e('a PRES without `sub` is token_missing_claim', async () => {
  const { sub, ...noSub } = claims();
  assert.ok(sub);
  await assertRefused(aliceJwt(noSub), 'token_missing_claim', 400);
  await stillServing();
});

e2e('a non-canonical iss (case, trailing dot, spaces, IDN U-label, IP literal) is token_bad_claim', async () => {
  for (const iss of ['Alice.test', 'ALICE.TEST', 'alice.test.', ' alice.test', 'alice.test ', 'alice .test',
    'bücher.test', 'XN--BCHER-KVA.test', 'alice..test', '-alice.test', 'alice', '10.0.0.1', '[::1]', 'a.b']) {
    await assertRefused(aliceJwt(claims({ iss })), 'token_bad_claim', 400, `iss ${JSON.stringify(iss)}`);
  }
  // A lowercase A-label (punycode) is a canonical LDH id_tag: it passes the syntax and is judged
  // as any other issuer (here: not a member).
  await assertRefused(aliceJwt(claims({ iss: 'xn--bcher-kva.test' })), 'access_denied', 403, 'punycode issuer');
  // The same rules apply to aud.
  await assertRefused(aliceJwt(claims({ aud: 'Bob.test' })), 'token_bad_claim', 400, 'aud Bob.test');
  await stillServing();
});

e2e('an aud that is not a member is audience_no_access', async () => {
  await assertRefused(aliceJwt(claims({ aud: 'dave.test' })), 'audience_no_access', 403);
  await stillServing();
});

// ---- keys of other instances -----------------------------------------------------------------

e2e('SSRF: an iss whose cl-o.<iss> resolves to a non-public address is refused without connecting', async () => {
  const counter = await connectionCounter();  // where loopback resolutions point: must stay at 0
  const targets = {
    'loop4.test': `127.0.0.1:${counter.port}`,
    'loop6.test': `[::1]:${counter.port}`,
    'ten.test': '10.0.0.1',
    'rfc1918b.test': '172.16.0.1',
    'rfc1918b-top.test': '172.31.255.254',
    'rfc1918c.test': '192.168.1.1',
    'metadata.test': '169.254.169.254',
    'cgnat.test': '100.64.0.1',
    'zero.test': '0.0.0.0',
    'ula.test': '[fc00::1]',
    'ula-fd.test': '[fd12:3456::1]',
    'linklocal6.test': '[fe80::1]',
    'mapped.test': '[::ffff:127.0.0.1]',
  };
  const G = await startPresd({
    name: 'ssrf-guard', tenants: ['bob.test'],
    // A short peer timeout: a connection attempt would show up as "timeout", not as a refusal.
    args: ['--peer-timeout-ms', '2000', ...Object.entries(targets).flatMap(([tag, at]) => ['--peer-resolve', `cl-o.${tag}=${at}`])],
  });
  const members = Object.fromEntries(Object.keys(targets).map((t) => [t, 'member']));
  const gctx = makeContext(G, 'bob.test', { 'alice.test': 'member', ...members });
  const mallory = newEcKey('P-384');
  for (const tag of Object.keys(targets)) {
    const t = makeJwt({ payload: { iss: tag, k: '261126', t: 'PRES:TYPING', sub: gctx, iat: now() }, sign: ecSigner(mallory.privateKey) });
    const r = await G.http('POST', '/api/inbox', { body: { token: t } });
    assert.equal(r.status, 503, `${tag}: ${r.text}`);
    assert.equal(r.json.error.code, 'unavailable', tag);
    // A connection attempt would end as "timeout" or "connect" instead.
    assert.match(r.json.error.message, /forbidden address/, `${tag}: refused by the guard, not by a failed connect`);
  }
  assert.equal(counter.connections, 0, 'no connection reached the loopback target');
  counter.server.close();
  // G keeps serving: its own tenant's PRES is delivered.
  const gbob = await G.ws(G.accessToken('bob.test'), { label: 'g-bob' });
  toClose.push(gbob);
  await gbob.ok('subscribe', { context: gctx });
  assert.equal((await gbob.ok('pres', { subType: 'STILL', subject: gctx })).status, 'accepted');
  await gbob.next(isAction(gctx, 'bob.test', 'STILL'), 10000);
  await stillServing();
  await G.stop();
});

e2e('an off-curve public key in an /api/me document is never used: token_unknown_key', async () => {
  const tls = makeTestCa(['cl-o.mallory.test']);
  const good = newEcKey('P-384');
  const goodSpki = Buffer.from(spkiB64(good.publicKey), 'base64');
  const offCurve = Buffer.from(goodSpki);
  offCurve[offCurve.length - 1] ^= 0x01;  // y no longer matches x: the point is off the curve
  const doc = { data: { idTag: 'mallory.test', name: 'M', type: 'person', keys: [
    { keyId: 'offcurve', publicKey: offCurve.toString('base64') },
    { keyId: 'good', publicKey: goodSpki.toString('base64') },
  ] }, time: new Date().toISOString() };
  const ks = await keyServer(tls, { 'cl-o.mallory.test': doc });
  const F = await startPresd({
    name: 'key-fetcher', tenants: ['bob.test'],
    args: ['--peer-ca-file', tls.ca, '--peer-resolve', `cl-o.mallory.test=127.0.0.1:${ks.port}`, '--allow-loopback-peers',
      '--key-refetch-interval-s', '3600'],
  });
  const fctx = makeContext(F, 'bob.test', { 'mallory.test': 'member', 'alice.test': 'member' });
  const sign = (k, t) => makeJwt({ payload: { iss: 'mallory.test', k, t, sub: fctx, iat: now() }, sign: ecSigner(good.privateKey) });
  // Signed by the private key whose public point was tampered with: the tampered key is refused.
  let r = await F.http('POST', '/api/inbox', { body: { token: sign('offcurve', 'PRES:TYPING') } });
  assert.equal(r.status, 401, r.text);
  assert.equal(r.json.error.code, 'token_unknown_key');
  assert.equal(ks.hits['cl-o.mallory.test'], 1, 'the document was fetched once');
  // The same document's on-curve key works: the refusal above was the key, not the set-up.
  r = await F.http('POST', '/api/inbox', { body: { token: sign('good', 'PRES:ONLINE') } });
  assert.equal(r.status, 201, r.text);
  ks.server.close();
  await stillServing();
  await F.stop();
});

// ---- HTTP ------------------------------------------------------------------------------------

e2e('slowloris: headers a byte at a time and a body never finished are cut off with 408', async () => {
  const head = `POST /api/inbox HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 64\r\nX-Pad: ${'y'.repeat(40)}\r\n\r\n`;
  assert.ok(head.length * 100 > READ_TIMEOUT_MS * 3, 'the drip would take far longer than the timeout');
  const drip = rawHttp(S.port, [...head], { gapMs: 100, localAddress: '127.0.0.4' });
  const stalled = rawHttp(S.port, [head, '{"token":'], { localAddress: '127.0.0.4' });
  // While both hang, the server serves others.
  await stillServing();
  for (const [what, r] of [['byte-at-a-time headers', await drip], ['unfinished body', await stalled]]) {
    assert.equal(r.status, 408, `${what}: ${r.text}`);
    assert.equal(r.json?.error?.code, 'request_timeout', what);
    assert.ok(r.closedAfterMs >= READ_TIMEOUT_MS - 100, `${what}: closed after ${r.closedAfterMs} ms`);
    assert.ok(r.closedAfterMs < READ_TIMEOUT_MS + 5000, `${what}: closed after ${r.closedAfterMs} ms`);
  }
  await stillServing();
});

e2e('oversized HTTP headers are 431 header_too_large', async () => {
  const r = await rawHttp(S.port, [`GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'z'.repeat(9 * 1024)}\r\n\r\n`]);
  assert.equal(r.status, 431, r.text);
  assert.equal(r.json.error.code, 'header_too_large');
  await stillServing();
});

e2e('an HTTP body over the limit is 413 payload_too_large, a huge declared Content-Length before reading', async () => {
  const big = JSON.stringify({ token: 'x'.repeat(70 * 1024) });
  let r = await S.http('POST', '/api/inbox', { body: big });
  assert.equal(r.status, 413, r.text);
  assert.equal(r.json.error.code, 'payload_too_large');
  // Chunked, with no length up front: cut off at the limit.
  const chunk = 'a'.repeat(8192);
  const chunks = Array.from({ length: 10 }, () => `${chunk.length.toString(16)}\r\n${chunk}\r\n`);
  r = await rawHttp(S.port, ['POST /api/inbox HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n', ...chunks, '0\r\n\r\n']);
  assert.equal(r.status, 413, r.text);
  assert.equal(r.json.error.code, 'payload_too_large');
  // A terabyte announced and never sent: answered from the header alone, at once.
  r = await rawHttp(S.port, ['POST /api/inbox HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000000\r\n\r\n']);
  assert.equal(r.status, 413, r.text);
  // (A server waiting for that body would answer 408 request_timeout instead.)
  assert.equal(r.json.error.code, 'payload_too_large');
  await stillServing();
});

e2e('compression bombs: bodies with Content-Encoding are 415 unsupported_encoding, unread', async () => {
  const bomb = zlib.gzipSync(Buffer.alloc(16 << 20));  // 16 MiB of zeros in ~16 KiB
  for (const [encoding, body] of [['gzip', bomb], ['deflate', zlib.deflateSync(Buffer.alloc(1 << 20))], ['br', Buffer.from('x')], ['GZIP', bomb]]) {
    const r = await S.http('POST', '/api/inbox', { body, headers: { 'Content-Type': 'application/json', 'Content-Encoding': encoding } });
    assert.equal(r.status, 415, `${encoding}: ${r.text}`);
    assert.equal(r.json.error.code, 'unsupported_encoding', encoding);
  }
  // A transfer coding other than chunked is refused the same way.
  const r = await rawHttp(S.port, ['POST /api/inbox HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n', '5\r\nxxxxx\r\n0\r\n\r\n']);
  assert.equal(r.status, 415, r.text);
  assert.equal(r.json.error.code, 'unsupported_encoding');
  // identity is no encoding at all.
  const ok = await S.http('POST', '/api/inbox', { body: { token: 'garbage' }, headers: { 'Content-Encoding': 'identity' } });
  assert.equal(ok.json.error.code, 'token_malformed');
  await stillServing();
});

e2e('compression bombs: permessage-deflate is never negotiated, even when offered', async () => {
  const offers = [undefined, 'permessage-deflate; client_max_window_bits', 'permessage-deflate; server_no_context_takeover, x-webkit-deflate-frame'];
  for (const offer of offers) {
    const headers = offer ? { 'Sec-WebSocket-Extensions': offer } : {};
    // `ws` offers permessage-deflate by default; the explicit header replaces its offer.
    const ws = new WebSocket(`ws://127.0.0.1:${S.port}/ws/bus?token=${S.accessToken('dave.test')}`,
      { headers, perMessageDeflate: offer ? false : true });
    let upgrade;
    ws.once('upgrade', (res) => { upgrade = res; });
    // `ws` fails the connection itself if the server answers with an extension it did not offer.
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    assert.equal(upgrade.statusCode, 101);
    assert.equal(upgrade.headers['sec-websocket-extensions'], undefined, `offer ${offer}`);
    assert.equal(ws.extensions, '');
    ws.terminate();
  }
  await stillServing();
});

// ---- connections -----------------------------------------------------------------------------

// Opens a /ws/bus connection from `localAddress`; resolves {ws} when open, {status, body} when refused.
function upgradeFrom(localAddress, token) {
  return new Promise((resolve) => {
    const ws = new WebSocket(`ws://127.0.0.1:${S.port}/ws/bus?token=${token}`, { localAddress });
    ws.once('open', () => resolve({ ws }));
    ws.once('unexpected-response', (req, res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, body: JSON.parse(Buffer.concat(chunks).toString()) }));
    });
    ws.once('error', (e) => resolve({ error: e }));
  });
}

async function connectionGauge() {
  const m = await S.http('GET', '/metrics');
  return Number(/^presd_connections (\d+)/m.exec(m.text)[1]);
}

e2e('an upgrade flood from one IP: coded 429 refusals, at most the cap held open', async () => {
  const token = S.accessToken('dave.test');
  const before = await connectionGauge();
  const results = await Promise.all(Array.from({ length: 3 * PER_IP }, () => upgradeFrom('127.0.0.2', token)));
  const open = results.filter((r) => r.ws);
  const refused = results.filter((r) => r.status);
  assert.deepEqual(results.filter((r) => r.error), [], 'no connection failed without an answer');
  assert.equal(open.length, PER_IP, `${open.length} upgrades accepted`);
  assert.equal(refused.length, 2 * PER_IP);
  for (const r of refused) {
    assert.equal(r.status, 429);
    assert.equal(r.body.error.code, 'too_many_connections');
    assert.match(r.body.error.message, /127\.0\.0\.2/);
  }
  // Bounded: the flood holds the cap, nothing more (the gauge counts the /metrics request too).
  assert.ok(await connectionGauge() <= before + PER_IP, 'connections bounded by the per-IP cap');
  // Other IPs are untouched, during the flood.
  await stillServing();
  const fresh = await S.ws(S.accessToken('bob.test'), { label: 'fresh-during-flood' });
  assert.deepEqual((await fresh.request('ping')).data, { status: 'pong' });
  fresh.close();
  // When the flood ends its IP gets its slots back.
  for (const { ws } of open) ws.terminate();
  let again;
  for (let i = 0; i < 100 && !again?.ws; i++) {
    again = await upgradeFrom('127.0.0.2', token);
    if (!again.ws) await sleep(50);
  }
  assert.ok(again.ws, 'a new connection from the flooding IP is accepted once it closed its others');
  again.ws.terminate();
});

e2e('too many connections from one IP: plain HTTP is answered 429 too_many_connections', async () => {
  // Keep-alive connections held open after one request each (idle for up to 30 s).
  const idle = await Promise.all(Array.from({ length: PER_IP }, () => new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port: S.port, localAddress: '127.0.0.3' },
      () => s.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n'));
    s.once('data', () => resolve(s));
    s.on('error', reject);
  })));
  const get = () => new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: S.port, path: '/healthz', localAddress: '127.0.0.3', agent: false }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, json: JSON.parse(Buffer.concat(chunks).toString() || 'null') }));
    });
    req.on('error', reject);
    req.end();
  });
  const r = await get();
  assert.equal(r.status, 429);
  assert.equal(r.json.error.code, 'too_many_connections');
  await stillServing();
  for (const s of idle) s.destroy();
  let ok;
  for (let i = 0; i < 100 && ok?.status !== 200; i++) {
    ok = await get();
    if (ok.status !== 200) await sleep(50);
  }
  assert.equal(ok.status, 200, 'served again once its connections closed');
});

e2e('too many subscriptions on one connection is too_many_subscriptions', async () => {
  const c = await S.ws(S.accessToken('bob.test'), { label: 'subscriber' });
  toClose.push(c);
  const contexts = Array.from({ length: MAX_SUBS + 1 }, () => makeContext(S, 'bob.test'));
  for (const x of contexts.slice(0, MAX_SUBS)) await c.ok('subscribe', { context: x });
  const e = await c.fail('subscribe', { context: contexts[MAX_SUBS] });
  assert.equal(e.code, 'too_many_subscriptions');
  assert.ok(e.message.length > 0);
  // The connection stays usable, and its existing subscriptions work.
  assert.deepEqual((await c.request('ping')).data, { status: 'pong' });
  await stillServing();
  c.close();
});
