// --ws-frame-rate / --ws-frame-burst: the per-connection /ws/bus frame budget is configurable
// (bench/compare raises it; operators may lower it), and the defaults stay 50/s burst 200.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { e2e, startPresd, stopAll } from './harness.mjs';

test.after(stopAll);

async function pingReplies(client, n) {
  for (let i = 0; i < n; i++) client.send({ id: `f${i}`, cmd: 'ping' });
  const replies = [];
  for (let i = 0; i < n; i++) replies.push(await client.next((f) => f.id === `f${i}`, 5000, `reply f${i}`));
  return replies;
}

e2e('a lowered frame burst refuses the frames beyond it with rate_limited', async () => {
  const S = await startPresd({ tenants: ['alice.test'], args: ['--ws-frame-burst', '3', '--ws-frame-rate', '0.01'] });
  const c = await S.ws(S.accessToken('alice.test'));
  const replies = await pingReplies(c, 5);
  assert.deepEqual(replies.map((r) => r.cmd), ['ack', 'ack', 'ack', 'error', 'error']);
  assert.equal(replies[3].data.code, 'rate_limited');
  assert.ok(replies[3].data.retryAfter > 0);
  assert.ok(c.isOpen);
  c.close();
  assert.equal(await S.stop(), 0);
});

e2e('a raised frame budget acknowledges a burst the default would refuse', async () => {
  const S = await startPresd({ tenants: ['alice.test'], args: ['--ws-frame-burst', '1000', '--ws-frame-rate', '1000'] });
  const c = await S.ws(S.accessToken('alice.test'));
  const replies = await pingReplies(c, 400);  // the default burst is 200
  assert.equal(replies.filter((r) => r.cmd === 'ack').length, 400);
  c.close();
  assert.equal(await S.stop(), 0);
});

// --ws-ping-interval-s: a silent connection is pinged after the interval (within a quarter of it)
// and dropped, without a close frame, after two; one that answers stays open.
e2e('a lowered ping interval pings silent connections and drops the ones that never answer', async () => {
  const { RawWs, OP } = await import('./ws_raw.mjs');
  const S = await startPresd({ tenants: ['alice.test'], args: ['--ws-ping-interval-s', '1'] });
  const path = `/ws/bus?token=${encodeURIComponent(S.accessToken('alice.test'))}`;
  const answering = await RawWs.connect(S.port, path, { label: 'answering' });
  const silent = await RawWs.connect(S.port, path, { label: 'silent' });
  const opened = Date.now();
  // The answering client pongs every ping (a pong counts as being heard).
  const pongs = (async () => {
    for (let i = 0; i < 3; i++) {
      const ping = await answering.next((f) => f.opcode === OP.PING, 5000, `ping ${i}`);
      answering.send({ opcode: OP.PONG, payload: ping.payload });
    }
  })();
  const firstPing = await silent.next((f) => f.opcode === OP.PING, 5000, 'the first ping');
  assert.ok(firstPing.fin);
  const pingedAfter = Date.now() - opened;
  assert.ok(pingedAfter >= 900 && pingedAfter < 2500, `pinged after ${pingedAfter} ms`);
  await silent.ended;
  const droppedAfter = Date.now() - opened;
  assert.ok(droppedAfter >= 1900 && droppedAfter < 4500, `dropped after ${droppedAfter} ms`);
  assert.ok(!silent.frames.some((f) => f.opcode === OP.CLOSE), 'dropped without a close frame');
  await pongs;
  assert.ok(!answering.isEnded, 'the answering client is still connected after three pings');
  // Operators see both in /metrics.
  const m = (await S.http('GET', '/metrics')).text;
  const value = (name) => Number((m.match(new RegExp(`^${name} (\\S+)$`, 'm')) || [])[1]);
  assert.equal(value('presd_ws_silent_drops_total'), 1);
  assert.ok(value('presd_ws_keepalive_pings_total') >= 4, m.match(/^presd_ws_keepalive_pings_total.*$/m)?.[0]);
  answering.socket.destroy();
  assert.equal(await S.stop(), 0);
});

e2e('the ping interval refuses values outside 1..3600 s at start', async () => {
  await assert.rejects(startPresd({ tenants: ['alice.test'], args: ['--ws-ping-interval-s', '0'] }),
    /ws-ping-interval-s: Value 0 not in range 1 to 3600/);
});
