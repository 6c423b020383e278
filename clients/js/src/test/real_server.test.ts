// Against the real presd binary: runs only when PRESD_BIN names it, e.g.
//   PRESD_BIN=/work/main/build/presd npm test
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import { PresdClient, type PresenceEntry } from '../index.js';

const BIN = process.env.PRESD_BIN;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function cli(args: string[]): string {
  return execFileSync(BIN!, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 30000 }).trim();
}

async function waitUntil(what: string, pred: () => boolean, timeoutMs: number): Promise<number> {
  const start = Date.now();
  while (!pred()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
  return Date.now() - start;
}

test('real presd: alice.typing() shows in bob.presence() and expires after the server TTL', { skip: !BIN && 'PRESD_BIN not set', timeout: 60000 }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'presd-js-client-'));
  const portFile = path.join(dir, 'port');
  let proc: ChildProcess | undefined;
  const clients: PresdClient[] = [];
  let logs = '';
  try {
    proc = spawn(BIN!, ['serve', '--data-dir', dir, '--listen', '127.0.0.1:0', '--port-file', portFile, '--tenant', 'alice.test', '--tenant', 'bob.test', '--pres-ttl', '2'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let spawnError: Error | undefined;
    proc.on('error', (e) => (spawnError = e)); // e.g. EACCES while the binary is being rebuilt
    proc.stdout!.on('data', (b) => (logs += b));
    proc.stderr!.on('data', (b) => (logs += b));
    let port = 0;
    await waitUntil('the port file', () => {
      if (spawnError) throw new Error(`cannot start ${BIN}: ${spawnError.message}`);
      if (proc!.exitCode !== null) throw new Error(`presd exited (${proc!.exitCode}):\n${logs}`);
      try {
        port = Number(fs.readFileSync(portFile, 'utf8').trim());
      } catch {
        /* not yet */
      }
      return port > 0;
    }, 15000);

    const ctx = cli(['context', 'create', '--data-dir', dir, '--owner', 'bob.test']);
    cli(['context', 'grant', '--data-dir', dir, ctx, 'alice.test']);
    const aliceToken = cli(['token', 'issue', '--data-dir', dir, '--user', 'alice.test']);
    const bobToken = () => cli(['token', 'issue', '--data-dir', dir, '--user', 'bob.test']);
    const url = `ws://127.0.0.1:${port}/ws/bus`;

    const alice = new PresdClient({ url, token: aliceToken, WebSocket });
    const bob = new PresdClient({ url, token: bobToken, WebSocket });
    // A second bob whose clock lags 20 s: its local expiry cannot fire within this test, so the
    // entry can only go away through the server's PRES_EXPIRED frame.
    const bobLagging = new PresdClient({ url, token: bobToken, WebSocket, now: () => Date.now() - 20000 });
    clients.push(alice, bob, bobLagging);
    for (const c of clients) c.connect();

    assert.deepEqual(await bob.subscribe(ctx), []);
    await bobLagging.subscribe(ctx);
    const events: PresenceEntry[][] = [];
    bob.on('presence', (c, es) => c === ctx && events.push(es));
    await waitUntil('alice open', () => alice.state === 'open', 5000);

    const aliceTyping = (c: PresdClient) => c.presence(ctx).some((e) => e.issuer === 'alice.test' && e.subType === 'TYPING');
    alice.typing(ctx);
    alice.typing(ctx); // throttled: the server would refuse a second TYPING within 3 s
    await waitUntil('alice typing at bob', () => aliceTyping(bob), 5000);
    await waitUntil('alice typing at lagging bob', () => aliceTyping(bobLagging), 5000);
    const entry = bob.presence(ctx).find((e) => e.issuer === 'alice.test')!;
    assert.equal(entry.context, ctx);
    assert.equal(entry.audience, null);
    assert.ok(entry.expiresAt - entry.createdAt <= 2000, `server TTL respected: ${entry.expiresAt - entry.createdAt}`);

    // A late subscriber gets it in the snapshot.
    const carolLike = new PresdClient({ url, token: bobToken, WebSocket });
    clients.push(carolLike);
    carolLike.connect();
    const snap = await carolLike.subscribe(ctx);
    assert.ok(snap.some((e) => e.issuer === 'alice.test' && e.subType === 'TYPING'));

    // --pres-ttl 2 (iat has 1 s resolution): gone within ~2 s, without any further keystroke.
    const gone = await waitUntil('alice typing to expire at bob', () => !aliceTyping(bob), 5000);
    assert.ok(gone <= 3500, `expired after ${gone} ms`);
    await waitUntil('PRES_EXPIRED at lagging bob', () => !aliceTyping(bobLagging), 5000);
    assert.deepEqual(events.at(-1), bob.presence(ctx));

    // Status slot through the real server: AWAY replaces ONLINE.
    await alice.online(ctx);
    await waitUntil('alice online', () => bob.presence(ctx).some((e) => e.subType === 'ONLINE'), 5000);
    await alice.away(ctx);
    await waitUntil('alice away', () => bob.presence(ctx).some((e) => e.subType === 'AWAY'), 5000);
    assert.deepEqual(bob.presence(ctx).filter((e) => e.issuer === 'alice.test').map((e) => e.subType), ['AWAY']);

    // A server error reaches the caller with its code.
    await assert.rejects(alice.away(ctx), (e: any) => e.code === 'rate_limited' && typeof e.retryAfter === 'number');
    await assert.rejects(alice.subscribe('a1~doesnotexist'), (e: any) => typeof e.code === 'string' && e.code !== 'unavailable');
  } catch (e) {
    process.stderr.write(`\n----- presd logs -----\n${logs.split('\n').slice(-80).join('\n')}\n`);
    throw e;
  } finally {
    for (const c of clients) c.close();
    if (proc && proc.pid !== undefined && proc.exitCode === null && proc.signalCode === null) {
      const exited = new Promise((r) => proc!.once('exit', r));
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc!.kill('SIGKILL'), 10000);
      await exited;
      clearTimeout(t);
    }
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
