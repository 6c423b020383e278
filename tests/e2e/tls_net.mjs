// TLS network pieces for the federation and fault e2e tests: a throwaway CA with one server
// certificate for every cl-o.<id_tag> the tests use (made with the openssl CLI), TLS fronts
// before presd instances, and jose-backed key servers for issuers presd does not host. Fronts
// and key servers can be switched into a fault mode while running (down, hanging, slow,
// garbage answers, connection resets).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import * as jose from 'jose';
import { makeDataDir } from './harness.mjs';

const DEFAULT_NAMES = ['alice', 'bob', 'josie', 'carol', 'dave'];

/** Makes a CA and a server certificate for cl-o.<name>.test of every name. */
export function makeTestCa(names = DEFAULT_NAMES) {
  return makeTestCaForHosts(names.map((n) => `cl-o.${n}.test`));
}

/** Makes a CA and one server certificate for all the given host names. */
export function makeTestCaForHosts(hosts) {
  const dir = makeDataDir();
  const run = (args) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  run(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key',
    '-out', 'ca.pem', '-days', '2', '-subj', '/CN=presd test CA']);
  run(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'srv.key', '-out', 'srv.csr',
    '-subj', '/CN=cl-o.test']);
  const san = hosts.map((h) => `DNS:${h}`).join(',');
  fs.writeFileSync(path.join(dir, 'ext.cnf'), `basicConstraints=CA:FALSE\nsubjectAltName=${san}\n`);
  run(['x509', '-req', '-in', 'srv.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'srv.pem',
    '-days', '2', '-extfile', 'ext.cnf']);
  return { dir, ca: path.join(dir, 'ca.pem'), key: fs.readFileSync(path.join(dir, 'srv.key')), cert: fs.readFileSync(path.join(dir, 'srv.pem')) };
}

export function listen(server, port = 0) {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve(server.address().port);
    });
  });
}

// Common fault switches of an HTTPS server: down() closes the listener and every open
// connection (peers then get "connection refused"), up() listens on the same port again;
// requests that are held (hang, slow) are tracked so close() can end them.
function faultable(server, port) {
  const held = new Set();
  const ctl = {
    server,
    port,
    held,
    async down() {
      await new Promise((resolve) => { server.close(() => resolve()); server.closeAllConnections(); });
      for (const res of held) res.destroy();
      held.clear();
    },
    async up() { await listen(server, port); },
    close() {
      for (const res of held) res.destroy();
      held.clear();
      server.closeAllConnections();
      server.close();
    },
  };
  return ctl;
}

/**
 * TLS in front of a presd HTTP port, passing Host through (it selects the tenant of /api/me).
 * front.targetPort may be set after it listens (instances point at each other). front.mode:
 * 'proxy' (default), 'hang' (accept the request and never answer), 'slow' (answer after
 * front.delayMs). front.stats counts requests, /api/inbox and /api/me.
 */
export async function tlsFront(tls, targetPort = 0) {
  const stats = { requests: 0, inbox: 0, me: 0 };
  let front;
  const forward = (req, body, res) => {
    const up = http.request({ host: '127.0.0.1', port: front.targetPort, method: req.method, path: req.url, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode, r.headers);
      r.pipe(res);
    });
    up.on('error', () => { if (!res.headersSent) res.writeHead(502); res.end(); });
    up.end(body);
  };
  const server = https.createServer({ key: tls.key, cert: tls.cert }, (req, res) => {
    stats.requests++;
    if (req.url === '/api/inbox') stats.inbox++;
    if (req.url === '/api/me') stats.me++;
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      if (front.mode === 'hang') {
        front.held.add(res);
        res.on('close', () => front.held.delete(res));
        return;
      }
      if (front.mode === 'slow') {
        front.held.add(res);
        res.on('close', () => front.held.delete(res));
        setTimeout(() => { front.held.delete(res); if (!res.destroyed) forward(req, body, res); }, front.delayMs);
        return;
      }
      forward(req, body, res);
    });
  });
  const port = await listen(server);
  front = Object.assign(faultable(server, port), { stats, targetPort, mode: 'proxy', delayMs: 0 });
  return front;
}

/**
 * An HTTPS key server for an issuer presd does not host, with a jose ES384 key pair: serves
 * GET /api/me for Host cl-o.<idTag> (404 otherwise). ks.sign(claims) signs a PRES token.
 * ks.mode selects a fault: 'ok', 'slow' (answers after ks.delayMs), 'reset' (destroys the
 * connection), 'nonjson', 'html', 'wrong-shape', 'huge' (a body over presd's 64 KiB limit),
 * 'wrong-idtag', 'p256-key' (a key of the wrong curve), 'wrong-key' (a valid P-384 key that
 * is not the signing key). ks.stats.me counts /api/me requests.
 */
export async function keyServer(tls, idTag, { kid = '261126' } = {}) {
  const spki = async (publicKey) => (await jose.exportSPKI(publicKey)).replace(/-----[^-]+-----|\s/g, '');
  const { publicKey, privateKey } = await jose.generateKeyPair('ES384', { extractable: true });
  const other = await jose.generateKeyPair('ES384', { extractable: true });
  const p256 = await jose.generateKeyPair('ES256', { extractable: true });
  const doc = (tag, pk) => JSON.stringify({ data: { idTag: tag, name: idTag, type: 'person',
    keys: [{ keyId: kid, publicKey: pk, expiresAt: '2099-01-01T00:00:00Z' }] }, time: new Date().toISOString() });
  const bodies = {
    ok: doc(idTag, await spki(publicKey)),
    nonjson: 'this is not JSON {',
    html: '<!DOCTYPE html><html><body><h1>Welcome to nginx!</h1></body></html>',
    'wrong-shape': JSON.stringify({ data: [{ idTag, keys: 'none' }] }),
    huge: JSON.stringify({ data: { idTag, keys: [], pad: 'x'.repeat(200 * 1024) } }),
    'wrong-idtag': doc('mallory.test', await spki(publicKey)),
    'p256-key': doc(idTag, await spki(p256.publicKey)),
    'wrong-key': doc(idTag, await spki(other.publicKey)),
  };
  const stats = { me: 0 };
  let ks;
  const server = https.createServer({ key: tls.key, cert: tls.cert }, (req, res) => {
    if (req.url !== '/api/me' || req.headers.host !== `cl-o.${idTag}`) {
      res.writeHead(404);
      res.end();
      return;
    }
    stats.me++;
    const answer = (mode) => {
      const body = bodies[mode];
      res.writeHead(200, { 'Content-Type': mode === 'html' ? 'text/html' : 'application/json' });
      res.end(body);
    };
    switch (ks.mode) {
      case 'reset': req.socket.destroy(); return;
      case 'slow':
        ks.held.add(res);
        res.on('close', () => ks.held.delete(res));
        setTimeout(() => { ks.held.delete(res); if (!res.destroyed) answer('ok'); }, ks.delayMs);
        return;
      default: answer(ks.mode);
    }
  });
  const port = await listen(server);
  ks = Object.assign(faultable(server, port), {
    idTag, kid, stats, mode: 'ok', delayMs: 0,
    sign: (claims) => new jose.SignJWT({ iss: idTag, k: kid, iat: Math.floor(Date.now() / 1000), ...claims })
      .setProtectedHeader({ typ: 'JWT', alg: 'ES384' }).sign(privateKey),
  });
  return ks;
}
