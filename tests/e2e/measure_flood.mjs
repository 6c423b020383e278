// Measures what a connection flood from one IP costs a running presd: N WebSocket upgrades from
// 127.0.0.2 against --max-connections-per-ip CAP, then the server's RSS and connection gauge, and
// the PRES latency of a healthy client on 127.0.0.1 during the flood (the flood and the healthy
// client share this node process, so that latency includes the client's own load; the server's
// CPU time is the cost presd pays). Not a ctest; run by hand:
//   cd tests && node e2e/measure_flood.mjs [N=2000] [CAP=64]
import fs from 'node:fs';
import WebSocket from 'ws';
import { startPresd, stopAll, makeContext, isAction } from './harness.mjs';

const N = Number(process.argv[2] || 2000);
const CAP = Number(process.argv[3] || 64);
const S = await startPresd({ tenants: ['alice.test', 'bob.test'], logLevel: 'warn',
  args: ['--max-connections-per-ip', String(CAP), '--issuer-rate', '1000', '--issuer-burst', '1000'] });
const rssKb = () => Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${S.proc.pid}/status`, 'utf8'))[1]);
const gauge = async () => Number(/^presd_connections (\d+)/m.exec((await S.http('GET', '/metrics')).text)[1]);
const ctx = makeContext(S, 'bob.test', { 'alice.test': 'member' });
const alice = await S.ws(S.accessToken('alice.test'));
const bob = await S.ws(S.accessToken('bob.test'));
await bob.ok('subscribe', { context: ctx });
const token = S.accessToken('bob.test');
const cpuMs = () => {  // utime + stime of presd, in ms (clock ticks of 10 ms)
  const f = fs.readFileSync(`/proc/${S.proc.pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) * 10;
};
const rss0 = rssKb();
const cpu0 = cpuMs();

const upgrade = () => new Promise((resolve) => {
  const ws = new WebSocket(`ws://127.0.0.1:${S.port}/ws/bus?token=${token}`, { localAddress: '127.0.0.2' });
  ws.once('open', () => resolve({ ws }));
  ws.once('unexpected-response', (req, res) => { res.resume(); res.on('end', () => resolve({ status: res.statusCode })); });
  ws.once('error', (e) => resolve({ error: e.code }));
});

const t0 = performance.now();
const flood = Promise.all(Array.from({ length: N }, upgrade));
// A healthy client's round trip while the flood is answered.
const lat = [];
for (let i = 0; i < 20; i++) {
  const t = performance.now();
  await alice.ok('pres', { subType: `M${i}`, subject: ctx }, 30000);
  await bob.next(isAction(ctx, 'alice.test', `M${i}`), 30000);
  lat.push(performance.now() - t);
}
const results = await flood;
const ms = performance.now() - t0;
const serverCpuMs = cpuMs() - cpu0;
const open = results.filter((r) => r.ws).length;
const refused = results.filter((r) => r.status === 429).length;
const failed = results.filter((r) => r.error).length;
lat.sort((a, b) => a - b);
console.log(JSON.stringify({
  upgrades: N, cap: CAP, open, refused429: refused, failedWithoutAnswer: failed,
  floodMs: Math.round(ms), serverCpuMs, serverCpuUsPerUpgrade: Math.round((serverCpuMs * 1000) / N),
  connectionsGauge: await gauge(), rssKbBefore: rss0, rssKbAfter: rssKb(),
  healthyPresMsP50: +lat[10].toFixed(1), healthyPresMsMax: +lat.at(-1).toFixed(1),
}));
for (const r of results) r.ws?.terminate();
alice.terminate();
bob.terminate();
await stopAll();
