// Helpers of bad_input.test.mjs: hand-made JWTs (any header, any payload text, any key), raw
// HTTP over a socket (byte by byte, from another loopback address), a TLS key server.
import crypto from 'node:crypto';
import { execFileSync } from 'node:child_process';
import https from 'node:https';
import net from 'node:net';
import path from 'node:path';
import { sleep } from './harness.mjs';

export const ES384_HEADER = '{"typ":"JWT","alg":"ES384"}';
export const b64u = (x) => Buffer.from(typeof x === 'string' ? x : JSON.stringify(x)).toString('base64url');

// A compact JWS over the exact header and payload text given (objects are JSON-serialized), so
// tests can send duplicate members, floats and other things JSON.stringify would not produce.
// sign: (signingInput: Buffer) => Buffer signature.
export function makeJwt({ header = ES384_HEADER, payload, sign }) {
  const input = `${b64u(header)}.${b64u(payload)}`;
  return `${input}.${sign(Buffer.from(input)).toString('base64url')}`;
}

// ECDSA with raw r||s (JWS encoding), on any curve: sha384 for P-384, as a signer for makeJwt.
export const ecSigner = (privateKey, hash = 'sha384') => (data) =>
  crypto.sign(hash, data, { key: privateKey, dsaEncoding: 'ieee-p1363' });
export const hmacSigner = (hash, secret) => (data) => crypto.createHmac(hash, secret).update(data).digest();

export const newEcKey = (namedCurve) => crypto.generateKeyPairSync('ec', { namedCurve });
export const spkiB64 = (publicKey) => publicKey.export({ type: 'spki', format: 'der' }).toString('base64');

// The private key of a hosted tenant, read from the server's SQLite store with the sqlite3 CLI.
export function tenantPrivateKey(server, idTag, keyId) {
  const pem = execFileSync('sqlite3', [path.join(server.dataDir, 'presd.db'),
    `SELECT private_pem FROM keys WHERE id_tag='${idTag}' AND key_id='${keyId}'`], { encoding: 'utf8' });
  return crypto.createPrivateKey(pem.trim());
}

/**
 * Raw HTTP/1.1 over one TCP connection. `parts` are written in order, `gapMs` apart (a
 * slowloris sends headers a byte at a time this way); writing stops once the server answers or
 * closes. Resolves {status, headers, json, text, closedAfterMs} when the server closes.
 */
export function rawHttp(port, parts, { localAddress, gapMs = 0, timeoutMs = 15000 } = {}) {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: '127.0.0.1', port, localAddress });
    const t0 = Date.now();
    const chunks = [];
    let done = false;
    const timer = setTimeout(() => { sock.destroy(); reject(new Error(`raw HTTP: no close within ${timeoutMs} ms`)); }, timeoutMs);
    sock.on('data', (c) => chunks.push(c));
    sock.on('error', () => {});  // a reset after the answer is fine; the answer is what counts
    sock.on('close', () => {
      done = true;
      clearTimeout(timer);
      resolve({ ...parseResponse(Buffer.concat(chunks).toString('latin1')), closedAfterMs: Date.now() - t0 });
    });
    sock.on('connect', async () => {
      for (const p of parts) {
        if (done || chunks.length) break;
        sock.write(p);
        if (gapMs) await sleep(gapMs);
      }
    });
  });
}

function parseResponse(text) {
  const m = /^HTTP\/1\.[01] (\d{3})[^\r]*\r\n([\s\S]*?)\r\n\r\n([\s\S]*)$/.exec(text);
  if (!m) return { status: 0, headers: {}, text };
  const headers = {};
  for (const line of m[2].split('\r\n')) {
    const i = line.indexOf(':');
    if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
  }
  let json;
  try { json = JSON.parse(m[3]); } catch {}
  return { status: Number(m[1]), headers, text: m[3], json };
}

// A throw-away CA and a server certificate for the given host names (tls_net.mjs).
export { makeTestCaForHosts as makeTestCa } from './tls_net.mjs';

// An HTTPS server answering GET /api/me with documents[Host]; counts the requests per host.
export async function keyServer(tls, documents) {
  const hits = {};
  const server = https.createServer({ key: tls.key, cert: tls.cert }, (req, res) => {
    hits[req.headers.host] = (hits[req.headers.host] || 0) + 1;
    const doc = documents[req.headers.host];
    if (req.url !== '/api/me' || !doc) {
      res.writeHead(404);
      res.end();
      return;
    }
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify(doc));
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: server.address().port, hits };
}

// A plain TCP listener that only counts connections (an SSRF target that must never be reached).
export async function connectionCounter() {
  const counter = { connections: 0 };
  counter.server = net.createServer((s) => { counter.connections++; s.destroy(); });
  await new Promise((r) => counter.server.listen(0, '127.0.0.1', r));
  counter.port = counter.server.address().port;
  return counter;
}
