// Federation, the part that is built: presd verifies PRES of issuers hosted elsewhere with keys
// fetched over real TLS from https://cl-o.<iss>/api/me (test CA made here with the openssl CLI,
// names mapped to loopback with --peer-resolve). Instance A (alice.test) sits behind a small TLS
// terminator, as a production deployment would; carol.test's keys are served by a node HTTPS
// server from a key pair made with npm jose (another implementation).
import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import * as jose from 'jose';
import { e2e, startPresd, stopAll, makeContext, makeDataDir, presdCli, sleep } from './harness.mjs';

let tls;               // { dir, ca, key, cert }
let A, B, C;           // presd instances: A hosts alice.test, B bob.test (owner of ctx), C chris.test
let proxyA, proxyAforC, proxyB, proxyC, carolSrv;  // TLS fronts of A, B, C; carol.test's key server
let ctx, bob, chris;
const carol = {};      // jose key pair and kid

function makeTestCa() {
  const dir = makeDataDir();
  const run = (args) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  run(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key',
    '-out', 'ca.pem', '-days', '2', '-subj', '/CN=presd test CA']);
  run(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'srv.key', '-out', 'srv.csr',
    '-subj', '/CN=cl-o.test']);
  fs.writeFileSync(path.join(dir, 'ext.cnf'),
    'basicConstraints=CA:FALSE\nsubjectAltName=DNS:cl-o.alice.test,DNS:cl-o.bob.test,DNS:cl-o.carol.test,DNS:cl-o.chris.test,DNS:cl-o.dave.test\n');
  run(['x509', '-req', '-in', 'srv.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'srv.pem',
    '-days', '2', '-extfile', 'ext.cnf']);
  return { dir, ca: path.join(dir, 'ca.pem'), key: fs.readFileSync(path.join(dir, 'srv.key')), cert: fs.readFileSync(path.join(dir, 'srv.pem')) };
}

function listen(server) {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server.address().port)));
}

// TLS in front of a presd HTTP port, passing Host through (it selects the tenant of /api/me).
// The target port can be set after the proxy listens (instances point at each other).
async function tlsFront(targetPort = 0) {
  const stats = { requests: 0, inbox: 0, me: 0 };
  const front = { stats, targetPort };
  const server = https.createServer({ key: tls.key, cert: tls.cert }, (req, res) => {
    stats.requests++;
    if (req.url === '/api/inbox') stats.inbox++;
    if (req.url === '/api/me') stats.me++;
    const up = http.request({ host: '127.0.0.1', port: front.targetPort, method: req.method, path: req.url, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode, r.headers);
      r.pipe(res);
    });
    up.on('error', () => { res.writeHead(502); res.end(); });
    req.pipe(up);
  });
  front.server = server;
  front.port = await listen(server);
  return front;
}

function startB(extra = []) {
  return startPresd({
    name: 'B', tenants: ['bob.test'],
    args: ['--peer-ca-file', tls.ca, '--peer-resolve', `cl-o.alice.test=127.0.0.1:${proxyA.port}`,
      '--peer-resolve', `cl-o.carol.test=127.0.0.1:${carolSrv.port}`, '--peer-resolve', `cl-o.chris.test=127.0.0.1:${proxyC.port}`,
      '--key-refetch-interval-s', '0',
      '--issuer-rate', '1000', '--issuer-burst', '1000', ...extra],
  });
}

before(async () => {
  tls = makeTestCa();
  proxyA = await tlsFront();
  proxyB = await tlsFront();
  proxyC = await tlsFront();
  A = await startPresd({
    name: 'A', tenants: ['alice.test'],
    args: ['--peer-ca-file', tls.ca, '--peer-resolve', `cl-o.bob.test=127.0.0.1:${proxyB.port}`, '--allow-loopback-peers',
      // dead.test: nothing listens there (a dead peer).
      '--peer-resolve', 'cl-o.dead.test=127.0.0.1:9', '--peer-timeout-ms', '1000'],
  });
  proxyA.targetPort = A.port;
  proxyAforC = await tlsFront(A.port);

  const { publicKey, privateKey } = await jose.generateKeyPair('ES384', { extractable: true });
  const spkiPem = await jose.exportSPKI(publicKey);
  const spkiB64 = spkiPem.replace(/-----[^-]+-----|\s/g, '');
  Object.assign(carol, { privateKey, kid: '261126', requests: 0 });
  const me = JSON.stringify({ data: { idTag: 'carol.test', name: 'Carol', type: 'person',
    keys: [{ keyId: carol.kid, publicKey: spkiB64, expiresAt: '2099-01-01T00:00:00Z' }] }, time: new Date().toISOString() });
  carolSrv = { stats: { requests: 0 } };
  carolSrv.server = https.createServer({ key: tls.key, cert: tls.cert }, (req, res) => {
    if (req.url === '/api/me') carolSrv.stats.requests++;  // (B also relays PRES to carol's inbox: not counted)
    if (req.url === '/api/me' && req.headers.host === 'cl-o.carol.test') {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(me);
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  carolSrv.port = await listen(carolSrv.server);

  B = await startB(['--allow-loopback-peers']);
  proxyB.targetPort = B.port;
  ctx = makeContext(B, 'bob.test', { 'alice.test': 'member', 'carol.test': 'member', 'chris.test': 'member' });
  // A's copy of the conversation (as its CONV/SUBS actions would give it): owned by bob.test.
  A.cli(['context', 'create', '--id', ctx, '--owner', 'bob.test']);
  A.cli(['context', 'grant', ctx, 'alice.test']);
  C = await startPresd({
    name: 'C', tenants: ['chris.test'],
    args: ['--peer-ca-file', tls.ca, '--peer-resolve', `cl-o.bob.test=127.0.0.1:${proxyB.port}`,
      // Its own front to A, so the fetch counts of B's front stay B's.
      '--peer-resolve', `cl-o.alice.test=127.0.0.1:${proxyAforC.port}`, '--allow-loopback-peers',
      '--key-refetch-interval-s', '0'],  // alice rotates her key during the run
  });
  proxyC.targetPort = C.port;
  C.cli(['context', 'create', '--id', ctx, '--owner', 'bob.test']);
  for (const m of ['alice.test', 'chris.test']) C.cli(['context', 'grant', ctx, m]);
  chris = await C.ws(C.accessToken('chris.test'));
  await chris.request('subscribe', { context: ctx });
  bob = await B.ws(B.accessToken('bob.test'));
  await bob.request('subscribe', { context: ctx });
});

after(async () => {
  bob?.terminate?.();
  proxyA?.server.close();
  proxyB?.server.close();
  proxyC?.server.close();
  proxyAforC?.server.close();
  chris?.terminate?.();
  carolSrv?.server.close();
  await stopAll();
});

const signAtA = (type, extra = []) => A.cli(['token', 'sign', '--iss', 'alice.test', '--sub', ctx, '--type', type, ...extra]);
const inbox = (server, token) => server.http('POST', '/api/inbox', { body: { token } });

e2e('a token signed by instance A verifies at B with the key fetched over TLS, and is delivered', async () => {
  const r = await inbox(B, signAtA('TYPING'));
  assert.equal(r.status, 201, r.text);
  const frame = await bob.next((f) => f.cmd === 'ACTION' && f.data.issuer.idTag === 'alice.test');
  assert.equal(frame.data.subType, 'TYPING');
  assert.equal(proxyA.stats.me, 1);
});

e2e('keys are cached: more tokens from the same issuer cause no new fetch', async () => {
  const before = proxyA.stats.me;
  for (const type of ['ONLINE', 'APP_X', 'APP_Y']) assert.equal((await inbox(B, signAtA(type))).status, 201);
  assert.equal(proxyA.stats.me, before);
});

e2e('a token forged in alice\'s name is refused after at most one refetch', async () => {
  const dir = makeDataDir();
  presdCli(['keygen', '--out', path.join(dir, 'k.pem')]);
  const kid = JSON.parse((await A.http('GET', '/api/me', { host: 'cl-o.alice.test' })).text).data.keys[0].keyId;
  const forged = presdCli(['token', 'sign', '--key', path.join(dir, 'k.pem'), '--kid', kid, '--iss', 'alice.test',
    '--sub', ctx, '--type', 'APP_FORGED']);
  const before = proxyA.stats.me;
  const r = await inbox(B, forged);
  assert.equal(r.status, 401, r.text);
  assert.equal(r.json.error.code, 'token_bad_signature');
  assert.ok(proxyA.stats.me - before <= 1);
  assert.equal((await bob.collect(300, (f) => f.data?.subType === 'APP_FORGED')).length, 0);
});

e2e('a jose-signed token with a key served by another implementation is accepted', async () => {
  const jwt = await new jose.SignJWT({ iss: 'carol.test', k: carol.kid, t: 'PRES:TYPING', sub: ctx, iat: Math.floor(Date.now() / 1000) })
    .setProtectedHeader({ typ: 'JWT', alg: 'ES384' })
    .sign(carol.privateKey);
  const r = await inbox(B, jwt);
  assert.equal(r.status, 201, r.text);
  await bob.next((f) => f.cmd === 'ACTION' && f.data.issuer.idTag === 'carol.test');
  assert.equal(carolSrv.stats.requests, 1);
});

e2e('an outsider is refused before any key is fetched', async () => {
  const jwt = await new jose.SignJWT({ iss: 'dave.test', k: 'x', t: 'PRES:TYPING', sub: ctx, iat: Math.floor(Date.now() / 1000) })
    .setProtectedHeader({ typ: 'JWT', alg: 'ES384' })
    .sign(carol.privateKey);
  const before = carolSrv.stats.requests + proxyA.stats.me;
  const r = await inbox(B, jwt);
  assert.equal(r.status, 403, r.text);
  assert.equal(r.json.error.code, 'access_denied');
  assert.equal(carolSrv.stats.requests + proxyA.stats.me, before);
});

e2e('key rotation at A: tokens with the new key id verify at B (refetch on unknown kid)', async () => {
  const newKid = A.cli(['keys', 'rotate', 'alice.test']);
  // A serves keys from memory; it reloads within a second of the CLI's commit.
  let served = false;
  for (let i = 0; i < 40 && !served; i++) {
    served = (await A.http('GET', '/api/me', { host: 'cl-o.alice.test' })).text.includes(newKid);
    if (!served) await sleep(100);
  }
  assert.ok(served, 'A did not pick up the rotated key');
  const token = signAtA('APP_ROTATED');
  assert.ok(token.includes('.'));
  const before = proxyA.stats.me;
  const r = await inbox(B, token);
  assert.equal(r.status, 201, r.text);
  assert.equal(proxyA.stats.me, before + 1);
  // The old key still verifies (rotation keeps it).
  assert.equal((await inbox(B, signAtA('APP_OLDKEY', ['--kid', JSON.parse((await A.http('GET', '/api/me', { host: 'cl-o.alice.test' })).text).data.keys[1].keyId]))).status, 201);
});

e2e('SSRF guard: without --allow-loopback-peers the fetch never connects', async () => {
  const guarded = await startB();
  const c = makeContext(guarded, 'bob.test', { 'alice.test': 'member' });
  const before = proxyA.stats.me;
  const r = await inbox(guarded, A.cli(['token', 'sign', '--iss', 'alice.test', '--sub', c, '--type', 'TYPING']));
  assert.equal(r.status, 503, r.text);
  assert.equal(r.json.error.code, 'unavailable');
  assert.equal(proxyA.stats.me, before);
  await guarded.stop();
});

e2e('certificates are verified: an instance without the test CA cannot fetch keys', async () => {
  const noCa = await startPresd({
    name: 'noCA', tenants: ['bob.test'],
    args: ['--peer-resolve', `cl-o.alice.test=127.0.0.1:${proxyA.port}`, '--allow-loopback-peers'],
  });
  const c = makeContext(noCa, 'bob.test', { 'alice.test': 'member' });
  const r = await inbox(noCa, A.cli(['token', 'sign', '--iss', 'alice.test', '--sub', c, '--type', 'TYPING']));
  assert.equal(r.status, 503, r.text);
  assert.match(r.json.error.message, /tls/);
  await noCa.stop();
});

e2e('alice types on her own instance A: A delivers locally and posts once to the owner B, whose subscriber sees it', async () => {
  const alice = await A.ws(A.accessToken('alice.test'));
  const aliceAgain = await A.ws(A.accessToken('alice.test'));
  await aliceAgain.request('subscribe', { context: ctx });
  const before = proxyB.stats.inbox;
  const ack = await alice.request('pres', { subType: 'APP_FORWARDED', subject: ctx });
  assert.equal(ack.cmd, 'ack', JSON.stringify(ack));
  await aliceAgain.next((f) => f.cmd === 'ACTION' && f.data.subType === 'APP_FORWARDED');  // local, on A
  const frame = await bob.next((f) => f.cmd === 'ACTION' && f.data.subType === 'APP_FORWARDED', 5000);  // on B
  assert.equal(frame.data.issuer.idTag, 'alice.test');
  assert.equal(proxyB.stats.inbox, before + 1);  // once, no retries
  alice.close(); aliceAgain.close();
});

e2e('a dead owner instance does not delay local delivery, and nothing is retried', async () => {
  const deadCtx = A.cli(['context', 'create', '--owner', 'dead.test']);
  A.cli(['context', 'grant', deadCtx, 'alice.test']);
  const alice = await A.ws(A.accessToken('alice.test'));
  const watcher = await A.ws(A.accessToken('alice.test'));
  await watcher.request('subscribe', { context: deadCtx });
  const started = Date.now();
  const ack = await alice.request('pres', { subType: 'TYPING', subject: deadCtx });
  assert.equal(ack.cmd, 'ack');
  await watcher.next((f) => f.cmd === 'ACTION' && f.data.subject === deadCtx, 2000);
  assert.ok(Date.now() - started < 1000, `local delivery took ${Date.now() - started} ms`);
  // The failed POST is logged, not retried.
  let failed = false;
  for (let i = 0; i < 30 && !failed; i++) { failed = /PRES to dead.test failed/.test(A.logs()); if (!failed) await sleep(100); }
  assert.ok(failed, A.logs().slice(-2000));
  await sleep(300);
  assert.equal((A.logs().match(/PRES to dead.test failed/g) || []).length, 1);
  alice.close(); watcher.close();
});

e2e('owner relay: alice types on A, the owner B relays to C, and chris on C sees it', async () => {
  const alice = await A.ws(A.accessToken('alice.test'));
  const ack = await alice.request('pres', { subType: 'APP_RELAYED', subject: ctx });
  assert.equal(ack.cmd, 'ack', JSON.stringify(ack));
  const atBob = await bob.next((f) => f.cmd === 'ACTION' && f.data.subType === 'APP_RELAYED', 5000);
  const atChris = await chris.next((f) => f.cmd === 'ACTION' && f.data.subType === 'APP_RELAYED', 5000);
  assert.equal(atChris.data.issuer.idTag, 'alice.test');
  assert.equal(atChris.data.createdAt, atBob.data.createdAt);
  alice.close();
});

e2e('C refuses a PRES injected directly by a non-owner, and a relay proof not signed by the owner', async () => {
  const token = signAtA('APP_INJECTED');
  const direct = await inbox(C, token);
  assert.equal(direct.status, 403, direct.text);
  assert.equal(direct.json.error.code, 'relay_required');

  // A proof that claims to come from bob.test but is signed with another key.
  const { privateKey } = await jose.generateKeyPair('ES384');
  const bobKid = JSON.parse((await B.http('GET', '/api/me', { host: 'cl-o.bob.test' })).text).data.keys[0].keyId;
  const h = (await import('node:crypto')).createHash('sha256').update(token).digest('base64url');
  const forgedProof = await new jose.SignJWT({ iss: 'bob.test', k: bobKid, t: 'PRES-RELAY', sub: ctx, h, iat: Math.floor(Date.now() / 1000) })
    .setProtectedHeader({ typ: 'JWT', alg: 'ES384' }).sign(privateKey);
  const forged = await C.http('POST', '/api/inbox', { body: { token, relay: forgedProof } });
  assert.equal(forged.status, 401, forged.text);
  assert.equal(forged.json.error.code, 'relay_invalid');
  assert.equal((await chris.collect(300, (f) => f.data?.subType === 'APP_INJECTED')).length, 0);
});

e2e('a relay of a non-member\'s token is refused at C even with a genuine owner proof', async () => {
  // dave.test is a member at B only through a tampered copy? No: B itself refuses outsiders, so
  // C's own membership check is what matters. Give C a context copy where alice is not a member.
  const other = C.cli(['context', 'create', '--owner', 'bob.test']);
  const token = A.cli(['token', 'sign', '--iss', 'alice.test', '--sub', other, '--type', 'TYPING']);
  const r = await inbox(C, token);
  assert.equal(r.status, 403, r.text);
  assert.equal(r.json.error.code, 'access_denied');  // membership is checked before anything else
});
