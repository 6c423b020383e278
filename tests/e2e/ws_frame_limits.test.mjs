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
