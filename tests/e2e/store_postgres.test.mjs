// `presd serve --store postgres://...`: membership and keys live in PostgreSQL (a private server
// started here, tests/e2e/postgres.mjs). The CLI works on the same database from anywhere, every
// node notices other processes' commits within about a second, PRES delivery works, and an
// outage gives `unavailable` until the database is back.
import { after, before } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { e2e, startPresd, stopAll, makeDataDir, presdCli, presdCliAsync, isAction, waitFor } from './harness.mjs';
import { startPostgres } from './postgres.mjs';

let pg;
before(async () => { pg = await startPostgres(); });
after(async () => { await stopAll(); await pg?.stop(); });

// Polls fn() until it returns a truthy value; resolves {value, ms} or throws after timeoutMs.
const hosts = async (S, tag) => (await S.http('GET', '/api/me', { host: `cl-o.${tag}` })).status === 200;

e2e('CLI edits on the database reach a running server within ~1 s, and PRES is delivered', async (t) => {
  const db = await pg.createDatabase();
  // Trust auth ignores the password: it is there to prove it never reaches a log.
  const url = db.replace('postgresql://presd@', 'postgresql://presd:Pw-n0t-for-logs@');
  const S = await startPresd({ tenants: ['alice.test'], args: ['--store', url] });
  assert.equal(fs.existsSync(path.join(S.dataDir, 'presd.db')), false, 'no SQLite file next to a PostgreSQL store');
  await waitFor('the start-up line', () => /presd listening on/.test(S.logs()), 5000);
  assert.match(S.logs(), /store postgresql:\/\/presd:\*\*\*@127\.0\.0\.1:\d+\/presd_e2e_\d+/);
  assert.doesNotMatch(S.logs(), /Pw-n0t-for-logs/);
  assert.equal(await pg.sql('SELECT id_tag FROM presd_tenants', db.split('/').pop()), 'alice.test');

  // The CLI runs without the server's data dir: the URL is all it needs.
  assert.equal(await hosts(S, 'bob.test'), false);
  await presdCliAsync(['tenant', 'add', 'bob.test', '--store', url]);
  const t0 = Date.now();
  await waitFor('bob.test to be served', () => hosts(S, 'bob.test'), 4000);
  const ms = Date.now() - t0;
  assert.ok(ms < 2500, `the server took ${ms} ms to see a new tenant`);
  t.diagnostic(`new tenant served ${ms} ms after the CLI commit`);
  assert.match(presdCli(['tenant', 'list', '--store', url]), /alice\.test\s+bob\.test|alice\.test[\s\S]*bob\.test/);

  const ctx = await presdCliAsync(['context', 'create', '--owner', 'bob.test', '--store', url]);
  await presdCliAsync(['context', 'grant', ctx, 'alice.test', '--store', url]);
  const bob = await S.ws(S.accessToken('bob.test'), { label: 'bob' });
  const alice = await S.ws(S.accessToken('alice.test'), { label: 'alice' });
  await bob.ok('subscribe', { context: ctx });
  await alice.ok('subscribe', { context: ctx });
  await alice.ok('pres', { subType: 'TYPING', subject: ctx });
  const action = await bob.next(isAction(ctx, 'alice.test', 'TYPING'), 5000, 'alice TYPING');
  assert.equal(action.data.issuer.idTag, 'alice.test');

  // A revocation through the CLI ends alice's live subscription within about a second.
  const revokedAt = Date.now();
  await presdCliAsync(['context', 'revoke', ctx, 'alice.test', '--store', url]);
  const notice = await alice.next((f) => f.cmd === 'UNSUBSCRIBED', 4000, 'UNSUBSCRIBED');
  assert.deepEqual(notice.data, { context: ctx, reason: 'access_revoked' });
  const revokeMs = Date.now() - revokedAt;
  assert.ok(revokeMs < 2500, `revocation took ${revokeMs} ms`);
  t.diagnostic(`live subscription ended ${revokeMs} ms after the CLI revoke started`);
  bob.close(); alice.close();
});

e2e('two nodes on one database: an admin API edit on one is seen by the other', async (t) => {
  const url = await pg.createDatabase();
  // Started together on an empty database with the same tenants: one migrates, one creates
  // each first key, the other takes it.
  const [A, B] = await Promise.all([
    startPresd({ name: 'node-a', tenants: ['alice.test', 'bob.test'], args: ['--store', url] }),
    startPresd({ name: 'node-b', tenants: ['alice.test', 'bob.test'], args: ['--store', url] }),
  ]);
  assert.equal(await pg.sql("SELECT count(*) FROM presd_keys WHERE id_tag = 'alice.test'", url.split('/').pop()), '1');
  const keyOf = async (S) => (await S.http('GET', '/api/me', { host: 'cl-o.alice.test' })).json.data.keys;
  assert.deepEqual(await keyOf(A), await keyOf(B), 'both nodes publish the same key');

  const created = await A.http('POST', '/api/admin/contexts', { token: A.adminToken(), body: { owner: 'bob.test' } });
  assert.equal(created.status, 201, created.text);
  const ctx = created.json.data.id;
  const grant = await A.http('PUT', `/api/admin/contexts/${ctx}/members/alice.test`, { token: A.adminToken(), body: { role: 'member' } });
  assert.ok(grant.status < 300, grant.text);

  // B checks access against the shared database: alice (via B) reaches bob (via B).
  const bob = await B.ws(B.accessToken('bob.test'), { label: 'bob@B' });
  const alice = await B.ws(B.accessToken('alice.test'), { label: 'alice@B' });
  await bob.ok('subscribe', { context: ctx });
  await alice.ok('subscribe', { context: ctx });
  await alice.ok('pres', { subType: 'ONLINE', subject: ctx });
  await bob.next(isAction(ctx, 'alice.test', 'ONLINE'), 5000, 'alice ONLINE');

  // Revoked on A: B ends the live subscription on its own within about a second.
  const revokedAt = Date.now();
  const revoked = await A.http('DELETE', `/api/admin/contexts/${ctx}/members/alice.test`, { token: A.adminToken() });
  assert.ok(revoked.status < 300, revoked.text);
  const notice = await alice.next((f) => f.cmd === 'UNSUBSCRIBED', 4000, 'UNSUBSCRIBED on node B');
  assert.equal(notice.data.reason, 'access_revoked');
  t.diagnostic(`node B ended the subscription ${Date.now() - revokedAt} ms after node A's revoke`);
  bob.close(); alice.close();
});

e2e('database down: store work is `unavailable`, the server stays up and recovers by itself', async () => {
  const url = await pg.createDatabase();
  const S = await startPresd({ tenants: ['alice.test', 'bob.test'], args: ['--store', url] });
  const ctx = await presdCliAsync(['context', 'create', '--owner', 'bob.test', '--store', url]);
  await presdCliAsync(['context', 'grant', ctx, 'alice.test', '--store', url]);
  const bob = await S.ws(S.accessToken('bob.test'), { label: 'bob' });
  await bob.ok('subscribe', { context: ctx });

  await pg.pause();
  try {
    const alice = await S.ws(S.accessToken('alice.test'), { label: 'alice' });
    const err = await alice.fail('subscribe', { context: ctx });
    assert.equal(err.code, 'unavailable', JSON.stringify(err));
    alice.close();
    // The CLI says so too, with a coded message and without crashing.
    await assert.rejects(presdCliAsync(['context', 'list', '--store', url]), (e) => e.status === 1 && /unavailable/.test(e.stderr));
    await waitFor('the outage warning', () => /store: store unavailable/.test(S.logs()), 4000);
    assert.equal((await S.http('GET', '/healthz')).status, 200);
    assert.ok(bob.isOpen, 'a store outage is no reason to drop subscribers');
  } finally {
    await pg.resume();
  }
  const alice = await S.ws(S.accessToken('alice.test'), { label: 'alice' });
  await alice.ok('subscribe', { context: ctx });
  await alice.ok('pres', { subType: 'TYPING', subject: ctx });
  await bob.next(isAction(ctx, 'alice.test', 'TYPING'), 5000, 'alice TYPING after the outage');
  bob.close(); alice.close();
});

e2e('--store refuses what it does not understand, with the password redacted', async () => {
  await assert.rejects(presdCliAsync(['context', 'list', '--store', 'mysql://u:Sekrit1@h/db']), (e) =>
    e.status === 1 && /bad_request/.test(e.stderr) && /mysql:\/\/u:\*\*\*@h\/db/.test(e.stderr) && !/Sekrit1/.test(e.stderr));
  const dir = path.join(makeDataDir(), 'never-created');
  await assert.rejects(presdCliAsync(['serve', '--data-dir', dir, '--listen', '127.0.0.1:0', '--store', 'mysql://u:Sekrit1@h/db']),
    (e) => e.status !== 0 && /not a store URL/.test(e.stderr) && !/Sekrit1/.test(e.stderr));
  assert.equal(fs.existsSync(dir), false, 'a refused --store creates no data dir');
});
