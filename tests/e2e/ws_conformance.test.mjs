// RFC 6455 conformance of presd's /ws/bus, modelled on the Autobahn testsuite sections 1-7 and
// run against a real `presd serve` with a raw client (ws_raw.mjs) that can send what a normal
// client never would. Every connection is authenticated and subscribed to a real context; "still
// works" is a `subscribe` round trip through the hub. docs/protocol.md, "WebSocket conformance".
import { after, before } from 'node:test';
import assert from 'node:assert/strict';
import { e2e, startPresd, stopAll, makeContext, isAction } from './harness.mjs';
import { RawWs, OP, encodeFrame, closePayload } from './ws_raw.mjs';

const LIMIT = 70000;  // --max-ws-message-bytes: room for the 65536-byte case of section 1
let S;
let CTX;
const tok = {};
const raws = [];
const buses = [];

before(async () => {
  S = await startPresd({
    name: 'conformance',
    tenants: ['alice.test', 'bob.test'],
    args: ['--max-ws-message-bytes', String(LIMIT), '--issuer-rate', '1000', '--issuer-burst', '1000'],
  });
  tok.alice = S.accessToken('alice.test');
  tok.bob = S.accessToken('bob.test');
  CTX = makeContext(S, 'alice.test', { 'bob.test': 'member' });
});
after(async () => {
  for (const c of raws) c.destroy();
  for (const b of buses) b.terminate();
  await stopAll();
});

// A raw connection of alice, subscribed to CTX.
async function open(label = 'raw') {
  const c = await RawWs.connect(S.port, `/ws/bus?token=${encodeURIComponent(tok.alice)}`, { label });
  raws.push(c);
  const r = await c.request('subscribe', { context: CTX });
  assert.equal(r.cmd, 'ack', JSON.stringify(r));
  return c;
}

async function assertAlive(c) {
  const r = await c.request('subscribe', { context: CTX });
  assert.equal(r.cmd, 'ack', `${c.label}: ${JSON.stringify(r)}`);
  assert.equal(r.data.status, 'subscribed');
  assert.equal(c.protocolError, null);
}

// The server fails the connection: a close frame with `code`, then it closes TCP itself.
async function assertClosedWith(c, code, what) {
  const info = await c.closed();
  assert.equal(info.code, code, `${what}: close code ${info.code} (${info.reason.toString('utf8')})`);
  assert.ok(info.tcpClosed, `${what}: the server did not close the TCP connection`);
  assert.equal(info.framesAfterClose, 0, `${what}: frames after the close frame`);
}

// A `ping` command padded with JSON whitespace to exactly `size` bytes.
function pingOfSize(id, size) {
  const core = JSON.stringify({ id, cmd: 'ping' });
  assert.ok(size >= core.length);
  return core.slice(0, -1) + ' '.repeat(size - core.length) + '}';
}

const isAckOf = (id) => (j) => j.id === id;

// ---- 1.x framing: payload lengths and length encodings ---------------------------------------

e2e('1.1 text messages of 0-65536 bytes with 7, 16 and 64-bit lengths are each one command', async () => {
  const c = await open('1.1');
  // Empty: a coded error for the frame, not a close.
  c.text('');
  const empty = await c.nextJson((j) => j.cmd === 'error');
  assert.equal(empty.id, null);
  assert.equal(empty.data.code, 'bad_request');
  for (const [size, width] of [[125, 7], [126, 16], [127, 16], [65535, 16], [65536, 64]]) {
    const id = `len${size}`;
    c.text(pingOfSize(id, size), { lengthEncoding: width });
    const r = await c.nextJson(isAckOf(id), 10000, `ack of ${size} bytes`);
    assert.deepEqual(r, { id, cmd: 'ack', data: { status: 'pong' } });
  }
  // A 65536-byte frame written to TCP in 1000-byte pieces is still one frame.
  const frame = encodeFrame({ opcode: OP.TEXT, payload: pingOfSize('chopped', 65536) });
  for (let i = 0; i < frame.length; i += 1000) c.sendRaw(frame.subarray(i, i + 1000));
  await c.nextJson(isAckOf('chopped'), 10000);
  await assertAlive(c);
});

e2e('1.1 a length not in its minimal encoding is a protocol error (1002)', async () => {
  for (const [size, width] of [[5, 16], [125, 64], [200, 64]]) {
    const c = await open(`1.1-nonminimal-${size}`);
    c.text(' '.repeat(size), { lengthEncoding: width });
    await assertClosedWith(c, 1002, `length ${size} in ${width} bits`);
  }
});

e2e('1.2 binary messages (any length) close with 1003: /ws/bus is a text protocol', async () => {
  for (const size of [0, 125, 65536]) {
    const c = await open(`1.2-${size}`);
    c.send({ opcode: OP.BINARY, payload: Buffer.alloc(size, 0xfe) });
    await assertClosedWith(c, 1003, `binary of ${size} bytes`);
  }
});

// ---- 2.x pings and pongs ---------------------------------------------------------------------

e2e('2.x ping is answered with a pong carrying the same payload; pongs in order', async () => {
  const c = await open('2.x');
  const payloads = [Buffer.alloc(0), Buffer.from('Hello, world!'), Buffer.from([0, 0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0, 0xff]),
    Buffer.from(Array.from({ length: 125 }, (_, i) => (i * 7) & 0xff))];
  for (const p of payloads) {
    c.send({ opcode: OP.PING, payload: p });
    const pong = await c.next((f) => f.opcode === OP.PONG, 5000, `pong of ${p.length} bytes`);
    assert.ok(pong.fin);
    assert.deepEqual(pong.payload, p);
  }
  // A ping written one byte at a time.
  const chopped = encodeFrame({ opcode: OP.PING, payload: 'chopped ping' });
  for (let i = 0; i < chopped.length; i++) {
    c.sendRaw(chopped.subarray(i, i + 1));
    await new Promise((r) => setImmediate(r));
  }
  assert.equal((await c.next((f) => f.opcode === OP.PONG)).payload.toString(), 'chopped ping');
  // Ten pings in one write: ten pongs, in order.
  c.sendRaw(Buffer.concat(Array.from({ length: 10 }, (_, i) => encodeFrame({ opcode: OP.PING, payload: `ping-${i}` }))));
  for (let i = 0; i < 10; i++) assert.equal((await c.next((f) => f.opcode === OP.PONG)).payload.toString(), `ping-${i}`);
  // Unsolicited pongs are ignored: no answer, no close.
  c.send({ opcode: OP.PONG, payload: 'unsolicited' });
  c.send({ opcode: OP.PONG });
  await assertAlive(c);
  assert.equal(c.unconsumed().length, 0, `unexpected frames: ${c.describe()}`);
});

e2e('2.5 a ping with more than 125 bytes is a protocol error (1002)', async () => {
  const c = await open('2.5');
  c.send({ opcode: OP.PING, payload: Buffer.alloc(126, 0x61) });
  await assertClosedWith(c, 1002, 'ping of 126 bytes');
  assert.equal(c.frames.filter((f) => f.opcode === OP.PONG).length, 0);
});

// ---- 3.x reserved bits -----------------------------------------------------------------------

e2e('3.x any RSV bit set closes with 1002 (no extension is negotiated), after earlier messages', async () => {
  for (const [rsv, opcode] of [[1, OP.TEXT], [2, OP.TEXT], [3, OP.TEXT], [4, OP.TEXT], [5, OP.BINARY], [6, OP.PING], [7, OP.CLOSE]]) {
    const c = await open(`3.x-rsv${rsv}`);
    assert.equal(c.handshakeHeaders['sec-websocket-extensions'], undefined, 'permessage-deflate must not be negotiated');
    const payload = opcode === OP.CLOSE ? closePayload(1000) : '{"id":"x","cmd":"ping"}';
    c.sendRaw(Buffer.concat([
      encodeFrame({ opcode: OP.TEXT, payload: '{"id":"before","cmd":"ping"}' }),
      encodeFrame({ opcode, payload, rsv }),
      encodeFrame({ opcode: OP.PING, payload: 'after' }),
    ]));
    await c.nextJson(isAckOf('before'));
    await assertClosedWith(c, 1002, `RSV ${rsv} on opcode ${opcode}`);
    assert.equal(c.frames.filter((f) => f.opcode === OP.PONG).length, 0, 'a frame after the bad one was processed');
  }
});

// ---- 4.x reserved opcodes ----------------------------------------------------------------------

e2e('4.x reserved opcodes 3-7 and 11-15 close with 1002', async () => {
  for (const opcode of [3, 4, 5, 6, 7, 11, 12, 13, 14, 15]) {
    const c = await open(`4.x-op${opcode}`);
    c.sendRaw(Buffer.concat([
      encodeFrame({ opcode: OP.TEXT, payload: '{"id":"before","cmd":"ping"}' }),
      encodeFrame({ opcode, payload: opcode < 8 ? 'reserved data' : Buffer.from('reserved control') }),
    ]));
    await c.nextJson(isAckOf('before'));
    await assertClosedWith(c, 1002, `opcode ${opcode}`);
  }
});

// ---- 5.x fragmentation -----------------------------------------------------------------------

// `text` as a sequence of frames of `size` bytes: TEXT (fin=0), CONT..., CONT (fin=1).
function fragments(text, size, extra = () => []) {
  const data = Buffer.from(text, 'utf8');
  const out = [];
  for (let i = 0; i < data.length; i += size) {
    const last = i + size >= data.length;
    out.push(encodeFrame({ opcode: i === 0 ? OP.TEXT : OP.CONT, payload: data.subarray(i, i + size), fin: last }));
    if (!last) out.push(...extra(i));
  }
  return Buffer.concat(out);
}

e2e('5.x a fragmented text message (also in 1-byte fragments) is one command', async () => {
  const c = await open('5.x');
  const bob = await S.ws(tok.bob, { label: 'bob' });
  buses.push(bob);
  await bob.ok('subscribe', { context: CTX });

  c.sendRaw(fragments(JSON.stringify({ id: 'two', cmd: 'ping' }), 12));
  assert.equal((await c.nextJson(isAckOf('two'))).data.status, 'pong');

  // A `pres` in 1-byte fragments is signed, accepted and delivered to the other subscriber.
  c.sendRaw(fragments(JSON.stringify({ id: 'bytes', cmd: 'pres', data: { subType: 'TYPING', subject: CTX } }), 1));
  const ack = await c.nextJson(isAckOf('bytes'));
  assert.equal(ack.cmd, 'ack', JSON.stringify(ack));
  assert.equal(ack.data.status, 'accepted');
  await bob.next(isAction(CTX, 'alice.test', 'TYPING'), 5000, 'ACTION from the fragmented pres');

  // Empty fragments in between change nothing.
  const parts = ['{"id":"empty",', '', '"cmd":"ping"', '', '}'];
  c.sendRaw(Buffer.concat(parts.map((p, i) =>
    encodeFrame({ opcode: i === 0 ? OP.TEXT : OP.CONT, payload: p, fin: i === parts.length - 1 }))));
  await c.nextJson(isAckOf('empty'));
  await assertAlive(c);
});

e2e('5.x pings between fragments are answered at once, the message is still one command', async () => {
  const c = await open('5.x-ping');
  const text = JSON.stringify({ id: 'interleaved', cmd: 'ping' });
  const data = Buffer.from(text);
  // First fragment and a ping; the pong must come before the message is finished.
  c.sendRaw(Buffer.concat([
    encodeFrame({ opcode: OP.TEXT, payload: data.subarray(0, 5), fin: false }),
    encodeFrame({ opcode: OP.PING, payload: 'mid-1' }),
  ]));
  assert.equal((await c.next((f) => f.opcode === OP.PONG)).payload.toString(), 'mid-1');
  c.sendRaw(Buffer.concat([
    encodeFrame({ opcode: OP.CONT, payload: data.subarray(5, 10), fin: false }),
    encodeFrame({ opcode: OP.PONG, payload: 'unsolicited' }),
    encodeFrame({ opcode: OP.PING, payload: 'mid-2' }),
    encodeFrame({ opcode: OP.CONT, payload: data.subarray(10), fin: true }),
  ]));
  assert.equal((await c.next((f) => f.opcode === OP.PONG)).payload.toString(), 'mid-2');
  assert.equal((await c.nextJson(isAckOf('interleaved'))).data.status, 'pong');
  await assertAlive(c);
});

e2e('5.x continuation without a start, a new message before the last ended, fragmented control frames: 1002', async () => {
  const cases = {
    'continuation (fin) without a start': [encodeFrame({ opcode: OP.CONT, payload: 'orphan', fin: true })],
    'continuation (no fin) without a start': [encodeFrame({ opcode: OP.CONT, payload: 'orphan', fin: false })],
    'text while a text is unfinished': [
      encodeFrame({ opcode: OP.TEXT, payload: '{"id":', fin: false }),
      encodeFrame({ opcode: OP.TEXT, payload: '{"id":"x","cmd":"ping"}', fin: true }),
    ],
    'binary while a text is unfinished': [
      encodeFrame({ opcode: OP.TEXT, payload: '{"id":', fin: false }),
      encodeFrame({ opcode: OP.BINARY, payload: 'x', fin: true }),
    ],
    'fragmented ping': [
      encodeFrame({ opcode: OP.PING, payload: 'frag', fin: false }),
      encodeFrame({ opcode: OP.CONT, payload: 'ment', fin: true }),
    ],
    'fragmented pong': [
      encodeFrame({ opcode: OP.PONG, payload: 'frag', fin: false }),
      encodeFrame({ opcode: OP.CONT, payload: 'ment', fin: true }),
    ],
    'fragmented close': [
      encodeFrame({ opcode: OP.CLOSE, payload: closePayload(1000), fin: false }),
      encodeFrame({ opcode: OP.CONT, payload: '', fin: true }),
    ],
  };
  for (const [what, frames] of Object.entries(cases)) {
    const c = await open(`5.x ${what}`);
    c.sendRaw(Buffer.concat(frames));
    await assertClosedWith(c, 1002, what);
    assert.equal(c.unconsumed((f) => f.opcode === OP.TEXT).length, 0, `${what}: a message was processed`);
  }
});

// ---- 6.x UTF-8 -------------------------------------------------------------------------------

e2e('6.x valid multi-byte UTF-8 is accepted whole and in 1-byte fragments (every split point)', async () => {
  const c = await open('6.x-valid');
  const id = 'κόσμε €𝄞 \u0080\u07ff\u0800\uffff\u{10000}\u{10ffff} 中文';
  c.text(JSON.stringify({ id, cmd: 'ping' }));
  assert.equal((await c.nextJson((j) => j.id === id)).cmd, 'ack');
  c.sendRaw(fragments(JSON.stringify({ id: `${id}-frag`, cmd: 'ping' }), 1));
  assert.equal((await c.nextJson((j) => j.id === `${id}-frag`)).cmd, 'ack');
  await assertAlive(c);
});

const INVALID_UTF8 = {
  'overlong 2-byte /': [0xc0, 0xaf],
  'overlong 3-byte /': [0xe0, 0x80, 0xaf],
  'overlong 4-byte /': [0xf0, 0x80, 0x80, 0xaf],
  'overlong U+007F': [0xc1, 0xbf],
  'surrogate U+D800': [0xed, 0xa0, 0x80],
  'surrogate U+DFFF': [0xed, 0xbf, 0xbf],
  'surrogate pair (CESU-8)': [0xed, 0xa0, 0x80, 0xed, 0xb0, 0x80],
  'U+110000': [0xf4, 0x90, 0x80, 0x80],
  '5-byte sequence': [0xf8, 0x88, 0x80, 0x80, 0x80],
  'byte 0xFE': [0xfe],
  'byte 0xFF': [0xff],
  'lone continuation byte': [0x80],
  'truncated 3-byte at the end': [0xe2, 0x82],
  'truncated 2-byte at the end': [0xce],
  'truncated 4-byte followed by ASCII': [0xf0, 0x9d, 0x84, 0x41],
};

e2e('6.x invalid UTF-8 in a text message closes with 1007', async () => {
  for (const [what, bytes] of Object.entries(INVALID_UTF8)) {
    const c = await open(`6.x ${what}`);
    c.text(Buffer.concat([Buffer.from('{"id":"x","cmd":"ping","v":"'), Buffer.from(bytes)]));
    await assertClosedWith(c, 1007, what);
    assert.equal(c.unconsumed((f) => f.opcode === OP.TEXT).length, 0, `${what}: the message was processed`);
  }
});

e2e('6.x invalid UTF-8 across fragments closes with 1007, without waiting for the last fragment', async () => {
  const cases = {
    // U+110000 split after its lead byte.
    'split above U+10FFFF': [[0x7b, 0xf4], [0x90, 0x80, 0x80, 0x7d]],
    // a surrogate split in the middle.
    'split surrogate': [[0x7b, 0xed, 0xa0], [0x80, 0x7d]],
    // valid fragments, then a truncated sequence ends the message.
    'truncated at the end of the message': [[0x7b, 0x22], [0x61, 0x22, 0xe2, 0x82]],
  };
  for (const [what, parts] of Object.entries(cases)) {
    const c = await open(`6.x ${what}`);
    c.sendRaw(Buffer.concat(parts.map((p, i) =>
      encodeFrame({ opcode: i === 0 ? OP.TEXT : OP.CONT, payload: Buffer.from(p), fin: i === parts.length - 1 }))));
    await assertClosedWith(c, 1007, what);
  }
  // Fail fast: an invalid first fragment is enough, the message never ends.
  const c = await open('6.x fail fast');
  c.send({ opcode: OP.TEXT, payload: Buffer.from([0x7b, 0x22, 0xc0, 0xaf]), fin: false });
  await assertClosedWith(c, 1007, 'invalid first fragment');
});

// ---- 7.x closing handshake -----------------------------------------------------------------

e2e('7.x a close with a valid code is answered with a close, then the server closes TCP', async () => {
  for (const code of [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999]) {
    const c = await open(`7.7 ${code}`);
    c.send({ opcode: OP.CLOSE, payload: closePayload(code, 'bye') });
    const info = await c.closed();
    assert.equal(info.code, code, `code ${code} answered with ${info.code}`);
    assert.ok(info.tcpClosed, `code ${code}: the server did not close TCP`);
  }
  // Empty close payload, and a 125-byte payload with a multi-byte reason.
  const empty = await open('7.3.1');
  empty.send({ opcode: OP.CLOSE });
  const e = await empty.closed();
  assert.ok([1000, 1005].includes(e.code), `empty close answered with ${e.code}`);
  assert.ok(e.tcpClosed);
  const long = await open('7.3.4');
  const reason = Buffer.from('€'.repeat(41));
  assert.equal(reason.length, 123);
  long.send({ opcode: OP.CLOSE, payload: closePayload(1000, reason) });
  const l = await long.closed();
  assert.equal(l.code, 1000);
  assert.ok(l.tcpClosed);
});

e2e('7.x frames after a close are ignored', async () => {
  const c = await open('7.1');
  c.sendRaw(Buffer.concat([
    encodeFrame({ opcode: OP.CLOSE, payload: closePayload(1000) }),
    encodeFrame({ opcode: OP.TEXT, payload: '{"id":"after-close","cmd":"ping"}' }),
    encodeFrame({ opcode: OP.PING, payload: 'after-close' }),
    encodeFrame({ opcode: OP.CLOSE, payload: closePayload(1000) }),
  ]));
  const info = await c.closed();
  assert.equal(info.code, 1000);
  assert.ok(info.tcpClosed);
  assert.equal(info.framesAfterClose, 0);
  assert.deepEqual(c.unconsumed(), [], `frames after close were answered: ${c.describe()}`);
});

e2e('7.x invalid close codes and a 1-byte close payload close with 1002', async () => {
  for (const code of [0, 999, 1004, 1005, 1006, 1014, 1015, 1016, 1100, 2000, 2999, 5000, 5001, 65535]) {
    const c = await open(`7.9 ${code}`);
    c.send({ opcode: OP.CLOSE, payload: closePayload(code) });
    await assertClosedWith(c, 1002, `close code ${code}`);
  }
  const one = await open('7.3.2');
  one.send({ opcode: OP.CLOSE, payload: Buffer.from([0x03]) });
  await assertClosedWith(one, 1002, '1-byte close payload');
  const big = await open('7.3.6');
  big.send({ opcode: OP.CLOSE, payload: closePayload(1000, 'x'.repeat(124)) });
  await assertClosedWith(big, 1002, 'close payload of 126 bytes');
});

e2e('7.5 a close reason that is not UTF-8 closes with 1007', async () => {
  for (const [what, bytes] of Object.entries(INVALID_UTF8)) {
    const c = await open(`7.5 ${what}`);
    c.send({ opcode: OP.CLOSE, payload: closePayload(1000, Buffer.concat([Buffer.from('reason '), Buffer.from(bytes)])) });
    await assertClosedWith(c, 1007, `close reason with ${what}`);
  }
});

// ---- masking ---------------------------------------------------------------------------------

e2e('unmasked client frames close with 1002', async () => {
  for (const opcode of [OP.TEXT, OP.PING, OP.CLOSE]) {
    const c = await open(`unmasked op${opcode}`);
    const payload = opcode === OP.CLOSE ? closePayload(1000) : '{"id":"x","cmd":"ping"}';
    c.send({ opcode, payload, mask: false });
    await assertClosedWith(c, 1002, `unmasked opcode ${opcode}`);
    assert.equal(c.unconsumed((f) => f.opcode !== OP.CLOSE).length, 0);
  }
});

// ---- size limits -----------------------------------------------------------------------------

e2e('a message over --max-ws-message-bytes closes with 1009; other clients are served on', async () => {
  const bystander = await open('bystander');
  // Exactly at the limit: accepted.
  const at = await open('at-limit');
  at.text(pingOfSize('at-limit', LIMIT));
  await at.nextJson(isAckOf('at-limit'), 10000);

  const single = await open('single frame');
  single.text(pingOfSize('over', LIMIT + 1));
  await assertClosedWith(single, 1009, 'one frame of LIMIT+1 bytes');

  // The declared length alone is enough: the server does not wait for the payload.
  const declared = await open('declared');
  declared.sendRaw(encodeFrame({ opcode: OP.TEXT, payload: Buffer.alloc(LIMIT + 1, 0x20) }).subarray(0, 14));
  await assertClosedWith(declared, 1009, 'header declaring LIMIT+1 bytes');
  const huge = await open('huge');
  const header = Buffer.from([0x81, 0xff, 0, 0, 0x01, 0, 0, 0, 0, 0, 1, 2, 3, 4]);  // 2^40 bytes, masked
  huge.sendRaw(header);
  await assertClosedWith(huge, 1009, 'header declaring 2^40 bytes');

  // Reassembled from 1000-byte fragments: the fragment that crosses the limit closes.
  const frag = await open('fragments');
  frag.sendRaw(fragments(pingOfSize('frag-over', LIMIT + 1), 1000));
  await assertClosedWith(frag, 1009, 'LIMIT+1 bytes in 1000-byte fragments');

  await assertAlive(bystander);
  await assertAlive(at);
  await assertAlive(await open('after'));
});
