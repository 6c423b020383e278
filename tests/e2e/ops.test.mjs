// End-to-end tests of the operations surface: /metrics, JSON-lines logs, config file and
// environment precedence, the members API the demo uses, secret files, --help everywhere.
import { after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { e2e, startPresd, stopAll, makeContext, makeDataDir, presdCli, sleep } from './harness.mjs';

after(stopAll);

// One sample's value from the Prometheus text format; undefined when absent.
function metric(text, name, labels = '') {
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels} `));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

e2e('/metrics counts accepted, rejected by code, verify time, deliveries and connections', async () => {
  const S = await startPresd({ tenants: ['alice.test', 'bob.test'] });
  const ctx = makeContext(S, 'bob.test', { 'alice.test': 'member' });
  const bob = await S.ws(S.accessToken('bob.test'));
  await bob.request('subscribe', { context: ctx });

  const before = (await S.http('GET', '/metrics')).text;
  assert.equal(metric(before, 'presd_pres_accepted_total'), 0);
  assert.equal(metric(before, 'presd_pres_rejected_total', '{code="token_malformed"}'), 0);
  assert.equal(metric(before, 'presd_websocket_connections'), 1);
  assert.equal(metric(before, 'presd_subscriptions'), 1);

  const token = S.cli(['token', 'sign', '--iss', 'alice.test', '--sub', ctx, '--type', 'TYPING']);
  assert.equal((await S.http('POST', '/api/inbox', { body: { token } })).status, 201);
  assert.equal((await S.http('POST', '/api/inbox', { body: { token } })).status, 409);  // replay
  assert.equal((await S.http('POST', '/api/inbox', { body: { token: 'a.b' } })).status, 400);
  await bob.next((f) => f.cmd === 'ACTION');

  const res = await S.http('GET', '/metrics');
  assert.equal(res.status, 200);
  assert.match(res.headers['content-type'], /^text\/plain/);
  const m = res.text;
  assert.equal(metric(m, 'presd_pres_accepted_total'), 1);
  assert.equal(metric(m, 'presd_pres_rejected_total', '{code="token_duplicate"}'), 1);
  assert.equal(metric(m, 'presd_pres_rejected_total', '{code="token_malformed"}'), 1);
  assert.equal(metric(m, 'presd_es384_verify_seconds_count'), 1);  // the replay never reached ES384
  assert.ok(metric(m, 'presd_es384_verify_seconds_sum') > 0);
  assert.equal(metric(m, 'presd_frames_delivered_total'), 1);
  const frames = metric(m, 'presd_ws_frames_sent_total');
  assert.ok(frames >= 2, `frames sent: ${frames}`);  // bob's subscribe ack and the ACTION at least
  const writes = metric(m, 'presd_ws_write_calls_total');
  assert.ok(writes >= 1 && writes <= frames, `${writes} writes for ${frames} frames`);
  assert.ok(metric(m, 'presd_ws_bytes_sent_total') > 100);
  const answers = metric(m, 'presd_http_answers_total');  // this test's REST calls before /metrics
  const httpWrites = metric(m, 'presd_http_write_calls_total');
  assert.ok(answers >= 1 && httpWrites >= 1 && httpWrites <= answers, `${httpWrites} HTTP writes for ${answers} answers`);
  assert.equal(metric(m, 'presd_presence_states'), 1);
  assert.ok(metric(m, 'presd_connections') >= 1);
  bob.close();
});

e2e('--log-format json writes one JSON object per line', async () => {
  const S = await startPresd({ tenants: ['alice.test'], args: ['--log-format', 'json'] });
  await S.http('GET', '/healthz');
  assert.equal(await S.stop(), 0);
  const lines = S.logs().split('\n').filter((l) => l.trim());
  assert.ok(lines.length >= 3, S.logs());
  for (const line of lines) {
    const entry = JSON.parse(line);
    assert.match(entry.time, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
    assert.ok(['trace', 'debug', 'info', 'warning', 'error', 'critical'].includes(entry.level), line);
    assert.equal(typeof entry.msg, 'string');
  }
  assert.ok(lines.some((l) => JSON.parse(l).msg.startsWith('presd listening on 127.0.0.1:')));
});

e2e('a bad --log-format is refused with a clear message', () => {
  assert.throws(() => presdCli(['serve', '--data-dir', makeDataDir(), '--listen', '127.0.0.1:0', '--log-format', 'xml']),
    (e) => /--log-format must be text or json/.test(e.stderr));
});

e2e('config file, then environment, then command line: each overrides the one before', async () => {
  const dir = makeDataDir();
  const config = path.join(dir, 'presd.toml');
  fs.writeFileSync(config, '[serve]\npres-ttl = 7\ntenant = ["alice.test", "bob.test"]\nissuer-burst = 3\n');
  // The start-up line can reach us a moment after the port file that startPresd waits for.
  const ttlOf = async (S) => {
    for (let i = 0; i < 50; i++) {
      const m = /ttl (\d+)s/.exec(S.logs());
      if (m) return m[1];
      await sleep(20);
    }
    throw new Error(`no start-up line:\n${S.logs()}`);
  };

  let S = await startPresd({ dataDir: dir, args: ['--config', config] });
  assert.equal(await ttlOf(S), '7');
  assert.equal((await S.http('GET', '/api/me', { host: 'cl-o.bob.test' })).status, 200);  // tenant from the file
  await S.stop();

  S = await startPresd({ dataDir: dir, args: ['--config', config], env: { PRESD_PRES_TTL: '9' } });
  assert.equal(await ttlOf(S), '9');
  await S.stop();

  S = await startPresd({ dataDir: dir, args: ['--config', config, '--pres-ttl', '11'], env: { PRESD_PRES_TTL: '9' } });
  assert.equal(await ttlOf(S), '11');
  await S.stop();

  // A list from the environment: comma-separated.
  S = await startPresd({ dataDir: makeDataDir(), env: { PRESD_TENANT: 'carol.test,dave.test' } });
  assert.equal((await S.http('GET', '/api/me', { host: 'cl-o.dave.test' })).status, 200);
  await S.stop();
});

e2e('GET /api/contexts/<id>/members lists active members for users with access', async () => {
  const S = await startPresd({ tenants: ['alice.test', 'bob.test', 'carol.test', 'eve.test'] });
  const ctx = makeContext(S, 'bob.test', { 'alice.test': 'member', 'carol.test': 'observer' });
  S.cli(['context', 'grant', ctx, 'eve.test']);
  S.cli(['context', 'revoke', ctx, 'eve.test']);

  const res = await S.http('GET', `/api/contexts/${ctx}/members`, { token: S.accessToken('carol.test') });
  assert.equal(res.status, 200, res.text);
  assert.equal(res.json.data.id, ctx);
  assert.deepEqual(res.json.data.members, [
    { idTag: 'bob.test', role: 'admin' },  // the creator
    { idTag: 'alice.test', role: 'member' },
    { idTag: 'carol.test', role: 'observer' },
  ]);
  const denied = await S.http('GET', `/api/contexts/${ctx}/members`, { token: S.accessToken('eve.test') });
  assert.equal(denied.status, 403);
  assert.equal(denied.json.error.code, 'access_denied');
  assert.equal((await S.http('GET', `/api/contexts/${ctx}/members`)).status, 401);
  const unknown = await S.http('GET', '/api/contexts/room:none/members', { token: S.accessToken('bob.test') });
  assert.equal(unknown.json.error.code, 'context_unknown');
});

e2e('--access-secret-file: tokens minted with that secret connect, others get 4401', async () => {
  const dir = makeDataDir();
  const secret = path.join(dir, 'shared.secret');
  fs.writeFileSync(secret, 'a-secret-shared-with-a-reference-node\n');
  const S = await startPresd({ dataDir: dir, tenants: ['alice.test'], args: ['--access-secret-file', secret] });
  const good = presdCli(['token', 'issue', '--user', 'alice.test', '--access-secret-file', secret]);
  const c = await S.ws(good);
  assert.equal((await c.request('ping')).cmd, 'ack');
  c.close();
  const other = await S.ws(S.accessToken('alice.test'));  // signed with <data-dir>/access.secret
  const closed = await other.closed;
  assert.equal(closed.code, 4401);

  fs.writeFileSync(path.join(dir, 'short.secret'), 'short\n');
  assert.throws(() => presdCli(['token', 'issue', '--user', 'alice.test', '--access-secret-file', path.join(dir, 'short.secret')]),
    (e) => /fewer than 16 bytes/.test(e.stderr));
});

e2e('every subcommand has --help', () => {
  const commands = [[], ['serve'], ['keygen'], ['token'], ['token', 'sign'], ['token', 'verify'], ['token', 'issue'],
    ['tenant'], ['tenant', 'add'], ['tenant', 'list'], ['keys'], ['keys', 'rotate'], ['keys', 'list'],
    ['context'], ['context', 'create'], ['context', 'delete'], ['context', 'grant'], ['context', 'revoke'],
    ['context', 'list'], ['context', 'show']];
  for (const c of commands) {
    const out = presdCli([...c, '--help']);
    assert.match(out, /Usage:/, c.join(' '));
  }
});

e2e('docs/configuration.md lists every serve option with its environment variable', () => {
  const here = path.dirname(new URL(import.meta.url).pathname);
  const doc = fs.readFileSync(path.join(here, '../../docs/configuration.md'), 'utf8');
  const help = presdCli(['serve', '--help']);
  const options = [...help.matchAll(/^\s+(?:-\w,)?--([a-z][a-z-]*)/gm)].map((m) => m[1]).filter((o) => o !== 'help');
  assert.ok(options.length > 20, help);
  for (const o of options) {
    assert.ok(doc.includes(`\`--${o}\``), `--${o} is not documented`);
    if (o !== 'config') assert.ok(doc.includes(`\`PRESD_${o.toUpperCase().replaceAll('-', '_')}\``), `PRESD_ env of --${o} missing`);
  }
});

e2e('the sample config in deploy/ is accepted and applied', async () => {
  const here = path.dirname(new URL(import.meta.url).pathname);
  const S = await startPresd({ args: ['--config', path.join(here, '../../deploy/presd.toml')] });
  assert.equal((await S.http('GET', '/api/me', { host: 'cl-o.alice.example.net' })).status, 200);
  await S.stop();
  assert.match(S.logs(), /ttl 30s/);
});
