// The Node `ws` peer of bench/compare: the /ws/bus subscribe/pres/ACTION protocol of presd
// without verification, membership or presence state, i.e. the plain broadcast server a Node
// developer would write. Each ACTION frame is serialized once into a Buffer and sent to every
// subscriber of the token's context (`sub`), the usual ws broadcast idiom.
// Usage: node bench/peers/ws_peer.mjs [port-file]   (listens on 127.0.0.1, port 0)
import { createRequire } from 'node:module';
import fs from 'node:fs';

const require = createRequire(new URL('../../tests/package.json', import.meta.url));
const { WebSocketServer } = require('ws');

const subscribers = new Map();  // context -> Set<WebSocket>
let frameSeq = 0;

function reply(ws, id, cmd, data) {
  ws.send(JSON.stringify({ id, cmd, data }));
}

function actionFrame(token) {
  const claims = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString('utf8'));
  const createdAt = new Date(claims.iat * 1000).toISOString().replace(/\.\d+Z$/, 'Z');
  const expiresAt = new Date((claims.iat + 30) * 1000).toISOString().replace(/\.\d+Z$/, 'Z');
  const data = {
    actionId: null, type: 'PRES', subType: claims.t.slice(5), issuer: { idTag: claims.iss },
    audience: claims.aud ? { idTag: claims.aud } : null, content: claims.c ?? null, subject: claims.sub,
    createdAt, expiresAt,
  };
  return { context: claims.sub, frame: Buffer.from(JSON.stringify({ id: `n${++frameSeq}`, cmd: 'ACTION', data })) };
}

const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, path: '/ws/bus', perMessageDeflate: false });
wss.on('connection', (ws) => {
  const mine = new Set();
  ws.on('message', (raw) => {
    let msg;
    try { msg = JSON.parse(raw); } catch { return reply(ws, null, 'error', { code: 'bad_request', message: 'not JSON' }); }
    const { id = null, cmd, data = {} } = msg;
    if (cmd === 'ping') return reply(ws, id, 'ack', { status: 'pong' });
    if (cmd === 'subscribe' || cmd === 'unsubscribe') {
      const ctx = String(data.context);
      if (cmd === 'subscribe') {
        if (!subscribers.has(ctx)) subscribers.set(ctx, new Set());
        subscribers.get(ctx).add(ws);
        mine.add(ctx);
        return reply(ws, id, 'ack', { status: 'subscribed', context: ctx, presence: [] });
      }
      subscribers.get(ctx)?.delete(ws);
      mine.delete(ctx);
      return reply(ws, id, 'ack', { status: 'unsubscribed', context: ctx });
    }
    if (cmd === 'pres' && typeof data.token === 'string') {
      let out;
      try { out = actionFrame(data.token); } catch { return reply(ws, id, 'error', { code: 'token_malformed', message: 'bad token' }); }
      for (const s of subscribers.get(out.context) ?? []) s.send(out.frame, { binary: false });
      return reply(ws, id, 'ack', { status: 'accepted' });
    }
    reply(ws, id, 'error', { code: 'bad_request', message: 'unknown command' });
  });
  ws.on('close', () => { for (const ctx of mine) subscribers.get(ctx)?.delete(ws); });
});
wss.on('listening', () => {
  const port = wss.address().port;
  if (process.argv[2]) fs.writeFileSync(process.argv[2], `${port}\n`);
  else console.log(`PORT ${port}`);
});
