// Cross-implementation checks: ES384 PRES tokens signed by presd verify in npm jose, and tokens
// signed by jose verify in presd (CLI and a running server).
import { after, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import * as jose from 'jose';
import { e2e, presdCli, makeDataDir, startPresd, stopAll, makeContext, isAction } from './harness.mjs';

after(stopAll);

const CTX = 'a1~' + Buffer.alloc(32, 7).toString('base64url');
const IAT = 1700000000;
const REF_HEADER_B64 = 'eyJ0eXAiOiJKV1QiLCJhbGciOiJFUzM4NCJ9';

const derToPem = (b64) => `-----BEGIN PUBLIC KEY-----\n${b64.match(/.{1,64}/g).join('\n')}\n-----END PUBLIC KEY-----\n`;
const pemToDerB64 = (pem) => pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, '');
const b64u = (x) => Buffer.from(typeof x === 'string' ? x : JSON.stringify(x)).toString('base64url');
const claimsOf = (jwt) => JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url'));

// Runs `presd token verify`; resolves {ok, json} or {ok:false, status, code, stderr}.
function presdVerify(token, args) {
  try {
    return { ok: true, json: JSON.parse(presdCli(['token', 'verify', token, ...args])) };
  } catch (e) {
    const m = /\b(token_[a-z0-9_]+|bad_request|internal)\b/.exec(e.stderr || '');
    return { ok: false, status: e.status, code: m ? m[1] : null, stderr: e.stderr };
  }
}

// presd token verify must refuse the token with this code ("error: <code>: <message>" on stderr).
function assertRefused(r, code, what = '') {
  assert.equal(r.ok, false, `${what} must be refused`);
  assert.notEqual(r.status, 0);
  assert.equal(r.code, code, `${what}: ${r.stderr}`);
}

let keyFile, presdPubB64, presdPubKey;  // a `presd keygen` key pair
let joseKeys, joseSpkiB64;              // a jose ES384 key pair

before(async () => {
  const dir = makeDataDir();
  keyFile = path.join(dir, 'k.pem');
  presdPubB64 = presdCli(['keygen', '--out', keyFile]);
  assert.equal((fs.statSync(keyFile).mode & 0o777).toString(8), '600');
  presdPubKey = await jose.importSPKI(derToPem(presdPubB64), 'ES384');
  joseKeys = await jose.generateKeyPair('ES384', { extractable: true });
  joseSpkiB64 = pemToDerB64(await jose.exportSPKI(joseKeys.publicKey));
});

function presdSign(extra = []) {
  return presdCli(['token', 'sign', '--key', keyFile, '--kid', '231114', '--iss', 'alice.example.net', '--sub', CTX,
    '--iat', String(IAT), ...extra]);
}

function joseSign(payload, { header = { typ: 'JWT', alg: 'ES384' }, key = joseKeys.privateKey } = {}) {
  return new jose.SignJWT(payload).setProtectedHeader(header).sign(key);
}

const basePayload = () => ({ iss: 'alice.example.net', k: '231114', t: 'PRES:TYPING', sub: CTX, iat: IAT });

e2e('presd keygen prints the public key as standard base64 SPKI DER (120 bytes)', () => {
  const der = Buffer.from(presdPubB64, 'base64');
  assert.equal(der.length, 120);
  assert.equal(der.toString('base64'), presdPubB64);
  assert.match(fs.readFileSync(keyFile, 'utf8'), /-----BEGIN PRIVATE KEY-----/);
});

e2e('a presd-signed token verifies in jose (ES384) with the reference header and claims', async () => {
  const jwt = presdSign(['--type', 'ONLINE', '--aud', 'bob.example.org', '--content', '{"x":[1,"two"]}', '--exp', String(IAT + 20)]);
  assert.equal(jwt.split('.')[0], REF_HEADER_B64);
  assert.equal(Buffer.from(jwt.split('.')[2], 'base64url').length, 96, 'raw r||s signature');
  const { payload, protectedHeader } = await jose.jwtVerify(jwt, presdPubKey, {
    algorithms: ['ES384'], currentDate: new Date((IAT + 1) * 1000),
  });
  assert.deepEqual(protectedHeader, { typ: 'JWT', alg: 'ES384' });
  assert.deepEqual(payload, {
    iss: 'alice.example.net', k: '231114', t: 'PRES:ONLINE', c: { x: [1, 'two'] }, aud: 'bob.example.org', sub: CTX,
    iat: IAT, exp: IAT + 20,
  });
  assert.deepEqual(Object.keys(payload), ['iss', 'k', 't', 'c', 'aud', 'sub', 'iat', 'exp'], 'reference claim order');
  // jose's compactVerify agrees too, and ES256 is not an acceptable algorithm for it.
  await jose.compactVerify(jwt, presdPubKey, { algorithms: ['ES384'] });
  await assert.rejects(jose.compactVerify(jwt, presdPubKey, { algorithms: ['ES256'] }));
});

// presd signs with deterministic ECDSA (RFC 6979, Botan): the same claims and key give the same
// token, which jose (whose own ES384 signatures are randomized) verifies like any other.
e2e('presd signatures are deterministic (RFC 6979) and verify in jose', async () => {
  const a = presdSign();
  const b = presdSign();
  assert.equal(a, b);
  const c = presdSign(['--type', 'ONLINE']);
  assert.notEqual(c.split('.')[2], a.split('.')[2]);
  for (const t of [a, c]) await jose.compactVerify(t, presdPubKey, { algorithms: ['ES384'] });
});

e2e('a tampered presd token fails in jose', async () => {
  const jwt = presdSign();
  const [h, , s] = jwt.split('.');
  const forged = `${h}.${b64u({ ...claimsOf(jwt), sub: '@mallory.example.net' })}.${s}`;
  await assert.rejects(jose.compactVerify(forged, presdPubKey, { algorithms: ['ES384'] }), { code: 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED' });
  const sig = Buffer.from(s, 'base64url');
  sig[95] ^= 1;
  await assert.rejects(jose.compactVerify(`${jwt.split('.').slice(0, 2).join('.')}.${sig.toString('base64url')}`, presdPubKey, { algorithms: ['ES384'] }));
  // and in presd itself.
  assertRefused(presdVerify(forged, ['--public-key', presdPubB64, '--ignore-time']), 'token_bad_signature');
});

e2e('a jose-signed token verifies in presd token verify --public-key', async () => {
  const jwt = await joseSign({ ...basePayload(), c: { draft: true }, aud: 'bob.example.org' });
  assert.equal(jwt.split('.')[0], REF_HEADER_B64, 'jose serializes the header as given');
  const r = presdVerify(jwt, ['--public-key', joseSpkiB64, '--ignore-time']);
  assert.ok(r.ok, r.stderr);
  assert.deepEqual(r.json, {
    valid: true, iss: 'alice.example.net', k: '231114', t: 'PRES:TYPING', sub: CTX, iat: IAT, aud: 'bob.example.org',
    c: { draft: true },
  });
  // Freshness with --now: fresh within the TTL, expired after it, not yet valid beyond the skew.
  assert.ok(presdVerify(jwt, ['--public-key', joseSpkiB64, '--now', String(IAT + 10)]).ok);
  assertRefused(presdVerify(jwt, ['--public-key', joseSpkiB64, '--now', String(IAT + 30)]), 'token_expired');
  assertRefused(presdVerify(jwt, ['--public-key', joseSpkiB64, '--now', String(IAT - 60)]), 'token_not_yet_valid');
  assertRefused(presdVerify(jwt, ['--public-key', joseSpkiB64]), 'token_expired', 'iat 2023 is stale now');
  // The PEM form of the same key works as well.
  const dir = makeDataDir();
  const pubFile = path.join(dir, 'pub.pem');
  fs.writeFileSync(pubFile, await jose.exportSPKI(joseKeys.publicKey));
  assert.ok(presdVerify(jwt, ['--public-key-file', pubFile, '--ignore-time']).ok);
  // Header member order does not matter; only alg ES384 and typ JWT are allowed.
  const swapped = await joseSign(basePayload(), { header: { alg: 'ES384', typ: 'JWT' } });
  assert.ok(presdVerify(swapped, ['--public-key', joseSpkiB64, '--ignore-time']).ok);
  const withKid = await joseSign(basePayload(), { header: { typ: 'JWT', alg: 'ES384', kid: '231114' } });
  assertRefused(presdVerify(withKid, ['--public-key', joseSpkiB64, '--ignore-time']), 'token_bad_header');
});

e2e('a jose token signed with the presd keygen private key verifies against the keygen public key', async () => {
  const priv = await jose.importPKCS8(fs.readFileSync(keyFile, 'utf8'), 'ES384');
  const jwt = await joseSign(basePayload(), { key: priv });
  assert.ok(presdVerify(jwt, ['--public-key', presdPubB64, '--ignore-time']).ok);
  assertRefused(presdVerify(jwt, ['--public-key', joseSpkiB64, '--ignore-time']), 'token_bad_signature');
});

e2e('tampered jose tokens fail in presd', async () => {
  const jwt = await joseSign(basePayload());
  const [h, p, s] = jwt.split('.');
  const args = ['--public-key', joseSpkiB64, '--ignore-time'];
  const forged = `${h}.${b64u({ ...basePayload(), t: 'PRES:ONLINE' })}.${s}`;
  assertRefused(presdVerify(forged, args), 'token_bad_signature');
  const sig = Buffer.from(s, 'base64url');
  sig[0] ^= 0x01;
  assertRefused(presdVerify(`${h}.${p}.${sig.toString('base64url')}`, args), 'token_bad_signature');
  // A DER-encoded signature (what OpenSSL would emit) is not raw r||s: malformed.
  assertRefused(presdVerify(`${h}.${p}.${Buffer.alloc(103, 1).toString('base64url')}`, args), 'token_malformed');
  assertRefused(presdVerify(`${h}.${p}`, args), 'token_malformed');
  assertRefused(presdVerify(`${h}.${p}.${s}=`, args), 'token_bad_base64');
  assertRefused(presdVerify(`${h}.${p}.${s.slice(0, -1)}+`, args), 'token_bad_base64');
});

e2e('jose tokens with alg ES256, HS384 or none are token_bad_header in presd', async () => {
  const p256 = await jose.generateKeyPair('ES256');
  const es256 = await joseSign(basePayload(), { header: { typ: 'JWT', alg: 'ES256' }, key: p256.privateKey });
  const hs384 = await joseSign(basePayload(), { header: { typ: 'JWT', alg: 'HS384' }, key: new Uint8Array(48).fill(3) });
  const none = new jose.UnsecuredJWT(basePayload()).encode();
  // ES384 header but ES256-sized (64-byte) signature spliced in.
  const spliced = `${REF_HEADER_B64}.${es256.split('.')[1]}.${es256.split('.')[2]}`;
  for (const [name, t] of [['ES256', es256], ['HS384', hs384], ['none', none]]) {
    assertRefused(presdVerify(t, ['--public-key', joseSpkiB64, '--ignore-time']), 'token_bad_header', name);
  }
  assert.notEqual(presdVerify(spliced, ['--public-key', joseSpkiB64, '--ignore-time']).ok, true);
});

e2e('a running presd: jose tokens with the tenant key are accepted; other keys and algs refused', async (t) => {
  const S = await startPresd({ name: 'interop', tenants: ['alice.test', 'bob.test'] });
  const ctx = makeContext(S, 'bob.test', { 'alice.test': 'member' });
  const bob = await S.ws(S.accessToken('bob.test'), { label: 'bob' });
  await bob.ok('subscribe', { context: ctx });

  const me = await S.http('GET', '/api/me', { host: 'cl-o.alice.test' });
  const { keyId, publicKey } = me.json.data.keys[0];
  const now = Math.floor(Date.now() / 1000);
  const payload = (type) => ({ iss: 'alice.test', k: keyId, t: `PRES:${type}`, sub: ctx, iat: now });

  // Signed by jose with a key presd does not know for (iss, k): bad signature.
  const foreign = await joseSign(payload('TYPING'));
  let r = await S.http('POST', '/api/inbox', { body: { token: foreign } });
  assert.equal(r.status, 401, r.text);
  assert.equal(r.json.error.code, 'token_bad_signature');
  // Unknown key id.
  r = await S.http('POST', '/api/inbox', { body: { token: await joseSign({ ...payload('TYPING'), k: 'nokey' }) } });
  assert.equal(r.json.error.code, 'token_unknown_key');
  // Wrong algorithms never get as far as a key.
  const p256 = await jose.generateKeyPair('ES256');
  r = await S.http('POST', '/api/inbox', { body: { token: await joseSign(payload('TYPING'), { header: { typ: 'JWT', alg: 'ES256' }, key: p256.privateKey }) } });
  assert.equal(r.status, 400);
  assert.equal(r.json.error.code, 'token_bad_header');
  r = await S.http('POST', '/api/inbox', { body: { token: await joseSign(payload('TYPING'), { header: { typ: 'JWT', alg: 'HS384' }, key: new Uint8Array(48) }) } });
  assert.equal(r.json.error.code, 'token_bad_header');
  r = await S.http('POST', '/api/inbox', { body: { token: new jose.UnsecuredJWT(payload('TYPING')).encode() } });
  assert.equal(r.json.error.code, 'token_bad_header');
  // A jose token with a kid header member is refused too (presd pins the header).
  r = await S.http('POST', '/api/inbox', { body: { token: await joseSign(payload('TYPING'), { header: { typ: 'JWT', alg: 'ES384', kid: keyId } }) } });
  assert.equal(r.json.error.code, 'token_bad_header');

  // A presd-signed token from the running server verifies in jose with the /api/me key.
  const act = await S.http('POST', '/api/actions', { token: S.accessToken('alice.test'), body: { type: 'PRES', subType: 'AWAY', subject: ctx } });
  assert.equal(act.status, 201, act.text);
  await jose.compactVerify(act.json.data.token, await jose.importSPKI(derToPem(publicKey), 'ES384'), { algorithms: ['ES384'] });

  // With the tenant's private key (read from the store), jose-signed tokens are accepted.
  let pem;
  try {
    pem = execFileSync('sqlite3', [path.join(S.dataDir, 'presd.db'),
      `SELECT private_pem FROM keys WHERE id_tag='alice.test' AND key_id='${keyId}'`], { encoding: 'utf8' });
  } catch {
    t.skip('sqlite3 CLI not available to read the tenant key');
    return;
  }
  const tenantKey = await jose.importPKCS8(pem.trim(), 'ES384');
  const good = await joseSign({ ...payload('TYPING'), c: { via: 'jose' } }, { key: tenantKey });
  r = await S.http('POST', '/api/inbox', { body: { token: good } });
  assert.equal(r.status, 201, r.text);
  const f = await bob.next(isAction(ctx, 'alice.test', 'TYPING'));
  assert.deepEqual(f.data.content, { via: 'jose' });
  // Same token over the WebSocket: a replay.
  assert.equal((await bob.fail('pres', { token: good })).code, 'token_duplicate');
  bob.close();
});

// BUG: every CLI failure raised as CLI::RuntimeError("<code>: <message>", 1) is swallowed by
// CLI11's App::exit(), which prints nothing for RuntimeError: the CLI exits 1 with empty stderr.
e2e('presd token verify prints the error code on stderr when it refuses a token', async () => {
  const jwt = await joseSign(basePayload());
  const forged = `${jwt.split('.')[0]}.${b64u({ ...basePayload(), t: 'PRES:AWAY' })}.${jwt.split('.')[2]}`;
  const r = presdVerify(forged, ['--public-key', joseSpkiB64, '--ignore-time']);
  assert.equal(r.ok, false);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /token_bad_signature/, `stderr was ${JSON.stringify(r.stderr)}`);
  const es256 = await joseSign(basePayload(), { header: { typ: 'JWT', alg: 'ES256' }, key: (await jose.generateKeyPair('ES256')).privateKey });
  assert.match(presdVerify(es256, ['--public-key', joseSpkiB64, '--ignore-time']).stderr, /token_bad_header/);
  assert.match(presdVerify(jwt, ['--public-key', joseSpkiB64, '--now', String(IAT + 31)]).stderr, /token_expired/);
});
