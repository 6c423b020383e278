// Shared helpers for the presd end-to-end tests: start real presd processes on port 0 with a
// private temp data dir, run the CLI against that data dir, speak HTTP and /ws/bus.
//
// Every process started here is tracked; stopAll() (call it from test.after) stops them and
// removes their data dirs. e2e(name, fn) wraps node:test's test() and prints the logs of the
// running presd processes when the test fails.
import { spawn, execFileSync, execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import http from 'node:http';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import WebSocket from 'ws';

const here = path.dirname(fileURLToPath(import.meta.url));
export const PRESD_BIN = process.env.PRESD_BIN || path.resolve(here, '../../build/presd');

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---- processes -------------------------------------------------------------------------------

const live = new Set();      // running (or not yet reaped) servers
const dataDirs = new Set();  // temp dirs to remove at the end

export function makeDataDir() {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'presd-e2e-'));
  dataDirs.add(d);
  return d;
}

function runSync(args) {
  try {
    return execFileSync(PRESD_BIN, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 30000 }).trim();
  } catch (e) {
    const err = new Error(`presd ${args.join(' ')} failed (status ${e.status}): ${String(e.stderr || e.message).trim()}`);
    err.status = e.status;
    err.stderr = String(e.stderr || '');
    err.stdout = String(e.stdout || '');
    throw err;
  }
}

function runAsync(args) {
  return new Promise((resolve, reject) => {
    execFile(PRESD_BIN, args, { encoding: 'utf8', timeout: 30000 }, (e, stdout, stderr) => {
      if (e) {
        const err = new Error(`presd ${args.join(' ')} failed (status ${e.code}): ${String(stderr).trim()}`);
        err.status = e.code;
        err.stderr = String(stderr);
        err.stdout = String(stdout);
        return reject(err);
      }
      resolve(String(stdout).trim());
    });
  });
}

// The presd CLI without a data dir (keygen, token sign --key, token verify --public-key).
export const presdCli = runSync;
export const presdCliAsync = runAsync;

// Adds `--data-dir D` to the subcommands that work on a data dir, unless the caller chose a key.
function withDataDir(args, dataDir) {
  if (args.includes('--data-dir')) return args;
  const [a, b] = args;
  const usesDir =
    ['context', 'tenant', 'keys'].includes(a) ||
    (a === 'token' && b === 'issue') ||
    (a === 'token' && b === 'sign' && !args.includes('--key')) ||
    (a === 'token' && b === 'verify' && !args.includes('--public-key') && !args.includes('--public-key-file'));
  return usesDir ? [...args, '--data-dir', dataDir] : args;
}

async function waitForFile(file, proc, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null || proc.signalCode !== null) return false;
    try {
      const s = fs.readFileSync(file, 'utf8').trim();
      if (/^\d+$/.test(s)) return Number(s);
    } catch {}
    await sleep(20);
  }
  return false;
}

/**
 * Starts `presd serve` on 127.0.0.1:0.
 * opts.tenants: id_tags to host; opts.args: extra serve options; opts.dataDir: reuse a data dir
 * (restart); opts.name: label for the logs; opts.wrap: a command that execs presd (e.g.
 * ['setpriv', '--reuid=nobody', ...]: the pid stays presd's).
 */
export async function startPresd({ tenants = [], args = [], dataDir, name = 'presd', env = {}, logLevel = 'debug', wrap = [] } = {}) {
  const dir = dataDir || makeDataDir();
  const portFile = path.join(dir, 'port');
  try { fs.unlinkSync(portFile); } catch {}
  const argv = ['serve', '--data-dir', dir, '--listen', '127.0.0.1:0', '--port-file', portFile, '--log-level', logLevel];
  for (const t of tenants) argv.push('--tenant', t);
  argv.push(...args);

  const [cmd, ...pre] = [...wrap, PRESD_BIN];
  const proc = spawn(cmd, [...pre, ...argv], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  const out = [];
  const onData = (buf) => out.push(buf.toString('utf8'));
  proc.stdout.on('data', onData);
  proc.stderr.on('data', onData);
  // 'close', not 'exit': it fires after stdout/stderr ended, so logs() is complete then.
  const exited = new Promise((resolve) => proc.on('close', (code, signal) => resolve({ code, signal })));

  const server = {
    name,
    proc,
    dataDir: dir,
    port: 0,
    url: '',
    exited,
    logs: () => out.join(''),
    cli: (a) => runSync(withDataDir(a, dir)),
    cliAsync: (a) => runAsync(withDataDir(a, dir)),
    accessToken: (user, { tenant, ttl } = {}) => {
      const a = ['token', 'issue', '--user', user];
      if (tenant) a.push('--tenant', tenant);
      if (ttl) a.push('--ttl', String(ttl));
      return runSync(withDataDir(a, dir));
    },
    adminToken: () => fs.readFileSync(path.join(dir, 'admin.token'), 'utf8').trim(),
    // SIGTERM, wait for exit; resolves with the exit code (null if killed by a signal).
    async stop(timeoutMs = 15000) {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
      const { code } = await exited;
      clearTimeout(timer);
      live.delete(server);
      return code;
    },
    async kill() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
      await exited;
      live.delete(server);
    },
    http: (method, p, opts) => httpRequest(server.port, method, p, opts),
    ws: (token, opts) => connectBus(server.port, token, opts),
  };
  live.add(server);

  const port = await waitForFile(portFile, proc, 15000);
  if (!port) {
    await server.kill();
    throw new Error(`presd did not start (exit ${proc.exitCode}):\n${server.logs()}`);
  }
  server.port = port;
  server.url = `http://127.0.0.1:${port}`;
  return server;
}

export async function stopAll() {
  await Promise.all([...live].map((s) => s.stop().catch(() => s.kill())));
  for (const d of dataDirs) fs.rmSync(d, { recursive: true, force: true });
  dataDirs.clear();
}

function dumpLogs(err) {
  for (const s of live) {
    const lines = s.logs().split('\n');
    const tail = lines.slice(-150).join('\n');
    process.stderr.write(`\n----- ${s.name} logs (port ${s.port}, last ${Math.min(150, lines.length)} lines) -----\n${tail}\n-----\n`);
  }
  return err;
}

// test() that prints the presd logs when the test fails.
export function e2e(name, opts, fn) {
  if (typeof opts === 'function') [opts, fn] = [{}, opts];
  return test(name, opts, async (t) => {
    try {
      await fn(t);
    } catch (e) {
      if (!opts.todo) dumpLogs(e);
      throw e;
    }
  });
}

// ---- HTTP ----------------------------------------------------------------------------------

/**
 * One HTTP request; resolves {status, headers, text, json}. opts: headers, body (string, Buffer
 * or object -> JSON), token (Bearer), host (Host header).
 */
export function httpRequest(port, method, p, { headers = {}, body, token, host } = {}) {
  return new Promise((resolve, reject) => {
    const h = { ...headers };
    let payload;
    if (body !== undefined) {
      payload = typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body);
      if (!Object.keys(h).some((k) => k.toLowerCase() === 'content-type')) h['Content-Type'] = 'application/json';
      h['Content-Length'] = Buffer.byteLength(payload);
    }
    if (token) h.Authorization = `Bearer ${token}`;
    if (host) h.Host = host;
    const req = http.request({ host: '127.0.0.1', port, method, path: p, headers: h, agent: false }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json;
        try { json = JSON.parse(text); } catch {}
        resolve({ status: res.statusCode, headers: res.headers, text, json });
      });
      res.on('error', reject);
    });
    req.setTimeout(10000, () => req.destroy(new Error(`HTTP ${method} ${p} timed out`)));
    req.on('error', reject);
    if (payload !== undefined) req.write(payload);
    req.end();
  });
}

// ---- /ws/bus ---------------------------------------------------------------------------------

let nextId = 1;

export class BusClient {
  constructor(ws, label) {
    this.ws = ws;
    this.label = label;
    this.frames = [];    // every frame received, in order (parsed; {raw} for non-JSON)
    this.pending = [];   // frames not yet consumed by next()/request()
    this.waiters = [];
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => {
        this.closeInfo = { code, reason: reason.toString('utf8') };
        resolve(this.closeInfo);
        for (const w of this.waiters.splice(0)) w.fail(new Error(`${label}: connection closed (${code} ${this.closeInfo.reason}) while waiting for ${w.what}`));
      });
    });
    ws.on('message', (data, isBinary) => {
      const text = isBinary ? data : data.toString('utf8');
      let frame;
      try { frame = JSON.parse(text); } catch { frame = { raw: text }; }
      this.frames.push(frame);
      this.pending.push(frame);
      this.#match();
    });
    ws.on('error', () => {});
  }

  #match() {
    for (const w of [...this.waiters]) {
      const i = this.pending.findIndex(w.pred);
      if (i >= 0) {
        const [f] = this.pending.splice(i, 1);
        this.waiters.splice(this.waiters.indexOf(w), 1);
        w.ok(f);
      }
    }
  }

  get isOpen() { return this.ws.readyState === WebSocket.OPEN; }

  send(obj) { this.ws.send(typeof obj === 'string' || Buffer.isBuffer(obj) ? obj : JSON.stringify(obj)); }

  // Waits for (and consumes) the first frame matching pred, including ones already received.
  next(pred = () => true, timeoutMs = 3000, what = 'a frame') {
    const i = this.pending.findIndex(pred);
    if (i >= 0) return Promise.resolve(this.pending.splice(i, 1)[0]);
    if (this.closeInfo) return Promise.reject(new Error(`${this.label}: closed (${this.closeInfo.code}) before ${what}`));
    return new Promise((ok, fail) => {
      const w = { pred, what };
      const timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        fail(new Error(`${this.label}: timed out after ${timeoutMs} ms waiting for ${what}; unconsumed frames: ${JSON.stringify(this.pending)}`));
      }, timeoutMs);
      w.ok = (f) => { clearTimeout(timer); ok(f); };
      w.fail = (e) => { clearTimeout(timer); fail(e); };
      this.waiters.push(w);
    });
  }

  nextCmd(cmd, timeoutMs = 3000, extra = () => true) {
    return this.next((f) => f.cmd === cmd && extra(f), timeoutMs, `cmd ${cmd}`);
  }

  // Sends {id, cmd, data} and resolves the reply (ack or error) with the same id.
  request(cmd, data, timeoutMs = 5000) {
    const id = `r${nextId++}`;
    const frame = { id, cmd };
    if (data !== undefined) frame.data = data;
    this.send(frame);
    return this.next((f) => f.id === id, timeoutMs, `reply to ${cmd} ${id}`);
  }

  // request() that asserts an ack and returns its data.
  async ok(cmd, data, timeoutMs) {
    const r = await this.request(cmd, data, timeoutMs);
    if (r.cmd !== 'ack') throw new Error(`${this.label}: ${cmd} ${JSON.stringify(data)} failed: ${JSON.stringify(r)}`);
    return r.data;
  }

  // request() that expects an error frame; returns its data ({code, message, ...}).
  async fail(cmd, data, timeoutMs) {
    const r = await this.request(cmd, data, timeoutMs);
    if (r.cmd !== 'error') throw new Error(`${this.label}: ${cmd} ${JSON.stringify(data)} expected an error, got ${JSON.stringify(r)}`);
    return r.data;
  }

  // Resolves the unconsumed frames matching pred that arrive within ms (for "receives nothing").
  async collect(ms, pred = () => true) {
    await sleep(ms);
    const got = this.pending.filter(pred);
    this.pending = this.pending.filter((f) => !pred(f));
    return got;
  }

  close() {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) this.ws.close();
    return this.closed;
  }

  terminate() { this.ws.terminate(); }
}

/**
 * Connects to ws://127.0.0.1:PORT/ws/bus. token goes in the query unless opts.header is set
 * (then Authorization: Bearer). Resolves once open (a refused client is open, then closed with
 * 4401: await client.closed). opts.path overrides /ws/bus.
 */
export function connectBus(port, token, { header = false, path: p = '/ws/bus', label = 'ws', headers = {} } = {}) {
  const q = token !== undefined && token !== null && !header ? `?token=${encodeURIComponent(token)}` : '';
  const h = { ...headers };
  if (header && token) h.Authorization = `Bearer ${token}`;
  const ws = new WebSocket(`ws://127.0.0.1:${port}${p}${q}`, { headers: h });
  const client = new BusClient(ws, label);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { ws.terminate(); reject(new Error(`${label}: connect timed out`)); }, 5000);
    ws.once('open', () => { clearTimeout(timer); resolve(client); });
    ws.once('unexpected-response', (req, res) => { clearTimeout(timer); reject(new Error(`${label}: upgrade refused with HTTP ${res.statusCode}`)); });
    ws.once('error', (e) => { clearTimeout(timer); reject(e); });
  });
}

// ---- fixtures ----------------------------------------------------------------------------------

/** Creates a context owned by `owner` (creator too unless given) and grants members {idTag: role}. */
// Polls fn until it returns something truthy (returned), or throws after timeoutMs naming what.
export async function waitFor(what, fn, timeoutMs = 20000, everyMs = 50) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

// The value of one sample on a server's /metrics (name with its labels, e.g. `x{a="b"}`), or
// NaN when absent.
export async function metric(server, name) {
  const r = await server.http('GET', '/metrics');
  const escaped = name.replace(/[{}]/g, (c) => `\\${c}`);
  const m = new RegExp(`^${escaped} (\\S+)$`, 'm').exec(r.text);
  return m ? Number(m[1]) : NaN;
}

export function makeContext(server, owner, members = {}, { creator } = {}) {
  const args = ['context', 'create', '--owner', owner];
  if (creator) args.push('--creator', creator);
  const id = server.cli(args);
  for (const [tag, role] of Object.entries(members)) server.cli(['context', 'grant', id, tag, '--role', role]);
  return id;
}

// A syntactically valid context id no store knows.
export function randomContextId() {
  const b = Buffer.alloc(32);
  for (let i = 0; i < 32; i++) b[i] = Math.floor(Math.random() * 256);
  return 'a1~' + b.toString('base64url');
}

export const isAction = (ctx, issuer, subType) => (f) =>
  f.cmd === 'ACTION' && (!ctx || f.data?.subject === ctx) && (!issuer || f.data?.issuer?.idTag === issuer) &&
  (!subType || f.data?.subType === subType);

export const isExpired = (ctx, issuer, subType) => (f) =>
  f.cmd === 'PRES_EXPIRED' && (!ctx || f.data?.subject === ctx) && (!issuer || f.data?.issuer?.idTag === issuer) &&
  (!subType || f.data?.subType === subType);

export const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/;

// Waits until just after a wall-clock second boundary, so that a token's iat (whole seconds)
// is within ~100 ms of the send time and TTL arithmetic in the tests is not off by up to 1 s.
export async function alignToSecond() {
  const ms = Date.now() % 1000;
  if (ms > 100) await sleep(1000 - ms + 10);
}
