// A raw RFC 6455 client for conformance tests: node `net`, hand-made frames. Unlike the `ws`
// package it lets a test send what a well-behaved client never would (RSV bits, reserved opcodes,
// unmasked or fragmented control frames, non-minimal length encodings, invalid UTF-8, bad close
// codes) and see exactly what the server answers, frame by frame, down to the TCP FIN.
import net from 'node:net';
import crypto from 'node:crypto';

export const OP = { CONT: 0x0, TEXT: 0x1, BINARY: 0x2, CLOSE: 0x8, PING: 0x9, PONG: 0xa };

const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/**
 * Encodes one frame. payload: Buffer or string (UTF-8). rsv: the 3 RSV bits as 0..7 (RSV1 = 4).
 * lengthEncoding: 7, 16 or 64 to force the length field's width (default: the minimal one).
 * mask: false sends the payload unmasked (a client MUST mask).
 */
export function encodeFrame({ opcode, payload = Buffer.alloc(0), fin = true, rsv = 0, mask = true, lengthEncoding } = {}) {
  const data = Buffer.isBuffer(payload) ? payload : Buffer.from(payload, 'utf8');
  const len = data.length;
  const width = lengthEncoding ?? (len < 126 ? 7 : len < 65536 ? 16 : 64);
  if (width === 7 && len > 125) throw new Error(`length ${len} does not fit 7 bits`);
  if (width === 16 && len > 65535) throw new Error(`length ${len} does not fit 16 bits`);
  const head = [((fin ? 0x80 : 0) | ((rsv & 7) << 4) | (opcode & 0xf))];
  const maskBit = mask ? 0x80 : 0;
  if (width === 7) head.push(maskBit | len);
  else if (width === 16) head.push(maskBit | 126, len >> 8, len & 0xff);
  else {
    const l = Buffer.alloc(8);
    l.writeBigUInt64BE(BigInt(len));
    head.push(maskBit | 127, ...l);
  }
  if (!mask) return Buffer.concat([Buffer.from(head), data]);
  const key = crypto.randomBytes(4);
  const masked = Buffer.alloc(len);
  for (let i = 0; i < len; i++) masked[i] = data[i] ^ key[i & 3];
  return Buffer.concat([Buffer.from(head), key, masked]);
}

/** A close frame payload: 2-byte code (if given) and a reason (string or raw Buffer). */
export function closePayload(code, reason = Buffer.alloc(0)) {
  if (code === undefined) return Buffer.alloc(0);
  const c = Buffer.alloc(2);
  c.writeUInt16BE(code);
  return Buffer.concat([c, Buffer.isBuffer(reason) ? reason : Buffer.from(reason, 'utf8')]);
}

export class RawWs {
  constructor(socket, label) {
    this.socket = socket;
    this.label = label;
    this.buf = Buffer.alloc(0);
    this.frames = [];       // every frame received: {fin, rsv, opcode, masked, payload}
    this.pending = [];      // not yet consumed by next()
    this.waiters = [];
    this.protocolError = null;  // the server sent something a client must reject
    this.sentClose = false;     // a close frame went out (ours, or the echo of the server's)
    this.autoEchoClose = true;  // answer the server's close like a well-behaved client
    this.ended = new Promise((resolve) => {
      // 'close' fires once the socket is fully closed: the server's FIN (or RST) arrived.
      socket.on('close', () => { this.isEnded = true; resolve(); this.#wake(); });
    });
    socket.on('error', () => {});
    socket.on('data', (d) => this.#onData(d));
  }

  /** Opens a TCP connection, performs the opening handshake for `path`, verifies the 101 answer. */
  static connect(port, path, { label = 'raw', timeoutMs = 10000 } = {}) {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: '127.0.0.1', port });
      const key = crypto.randomBytes(16).toString('base64');
      const expectAccept = crypto.createHash('sha1').update(key + WS_GUID).digest('base64');
      let head = Buffer.alloc(0);
      const timer = setTimeout(() => { socket.destroy(); reject(new Error(`${label}: handshake timed out`)); }, timeoutMs);
      const fail = (e) => { clearTimeout(timer); socket.destroy(); reject(e); };
      const onData = (d) => {
        head = Buffer.concat([head, d]);
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) return;
        socket.off('data', onData);
        clearTimeout(timer);
        const lines = head.subarray(0, end).toString('latin1').split('\r\n');
        if (!/^HTTP\/1\.1 101 /.test(lines[0])) return fail(new Error(`${label}: upgrade answered ${lines[0]}`));
        const headers = {};
        for (const l of lines.slice(1)) {
          const i = l.indexOf(':');
          headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
        }
        if (headers['sec-websocket-accept'] !== expectAccept) return fail(new Error(`${label}: bad Sec-WebSocket-Accept`));
        const client = new RawWs(socket, label);
        client.handshakeHeaders = headers;
        const rest = head.subarray(end + 4);
        if (rest.length) client.#onData(rest);
        resolve(client);
      };
      socket.on('data', onData);
      socket.once('error', fail);
      socket.once('connect', () => {
        socket.setNoDelay(true);
        socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n` +
          // Offered on purpose: presd must not negotiate it, so every RSV bit stays reserved.
          `Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n`);
      });
    });
  }

  #onData(d) {
    this.buf = Buffer.concat([this.buf, d]);
    for (;;) {
      const f = this.#parseFrame();
      if (!f) break;
      this.frames.push(f);
      this.pending.push(f);
      if (f.opcode === OP.CLOSE && this.autoEchoClose && !this.sentClose) {
        const { code } = closeInfo(f);
        this.send({ opcode: OP.CLOSE, payload: code === 1005 ? Buffer.alloc(0) : closePayload(code) });
      }
    }
    this.#wake();
  }

  #parseFrame() {
    const b = this.buf;
    if (b.length < 2) return null;
    let len = b[1] & 0x7f;
    let off = 2;
    if (len === 126) {
      if (b.length < 4) return null;
      len = b.readUInt16BE(2);
      off = 4;
    } else if (len === 127) {
      if (b.length < 10) return null;
      len = Number(b.readBigUInt64BE(2));
      off = 10;
    }
    const masked = (b[1] & 0x80) !== 0;
    if (masked) off += 4;
    if (b.length < off + len) return null;
    let payload = Buffer.from(b.subarray(off, off + len));
    if (masked) {
      const key = b.subarray(off - 4, off);
      for (let i = 0; i < len; i++) payload[i] ^= key[i & 3];
      this.protocolError = 'server frame is masked';
    }
    this.buf = b.subarray(off + len);
    return { fin: (b[0] & 0x80) !== 0, rsv: (b[0] >> 4) & 7, opcode: b[0] & 0xf, masked, payload };
  }

  #wake() {
    for (const w of [...this.waiters]) {
      const i = this.pending.findIndex(w.pred);
      if (i >= 0) {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        w.ok(this.pending.splice(i, 1)[0]);
      } else if (this.isEnded) {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        w.fail(new Error(`${this.label}: connection ended while waiting for ${w.what}; frames: ${this.describe()}`));
      }
    }
  }

  describe() {
    return this.frames.map((f) => `op${f.opcode}${f.fin ? '' : '(nofin)'}:${f.opcode === OP.CLOSE ? closeInfo(f).code : f.payload.length}`).join(' ');
  }

  /** Writes raw bytes (one or more frames, or a part of one). */
  sendRaw(bytes) { if (this.socket.writable) this.socket.write(bytes); }

  send(frame) {
    if (frame.opcode === OP.CLOSE) this.sentClose = true;
    if (!this.socket.destroyed && this.socket.writable) this.socket.write(encodeFrame(frame));
  }
  text(payload, extra = {}) { this.send({ opcode: OP.TEXT, payload, ...extra }); }

  /** Waits for (and consumes) the first frame matching pred. */
  next(pred = () => true, timeoutMs = 10000, what = 'a frame') {
    const i = this.pending.findIndex(pred);
    if (i >= 0) return Promise.resolve(this.pending.splice(i, 1)[0]);
    if (this.isEnded) return Promise.reject(new Error(`${this.label}: connection ended before ${what}; frames: ${this.describe()}`));
    return new Promise((ok, fail) => {
      const w = { pred, what };
      const timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        fail(new Error(`${this.label}: timed out after ${timeoutMs} ms waiting for ${what}; frames: ${this.describe()}`));
      }, timeoutMs);
      w.ok = (f) => { clearTimeout(timer); ok(f); };
      w.fail = (e) => { clearTimeout(timer); fail(e); };
      this.waiters.push(w);
    });
  }

  /** Sends a JSON command in one text frame; resolves the server's reply with the same id. */
  async request(cmd, data, timeoutMs = 10000) {
    const id = `raw${nextId++}`;
    this.text(JSON.stringify(data === undefined ? { id, cmd } : { id, cmd, data }));
    return this.nextJson((j) => j.id === id, timeoutMs, `reply to ${cmd}`);
  }

  /** Waits for a text frame whose JSON matches pred; resolves the parsed JSON. */
  async nextJson(pred = () => true, timeoutMs = 10000, what = 'a JSON text frame') {
    const f = await this.next((fr) => fr.opcode === OP.TEXT && pred(parseJson(fr.payload)), timeoutMs, what);
    return parseJson(f.payload);
  }

  /**
   * Waits for the server's close frame and then for the server to close the TCP connection.
   * Resolves {code, reason (Buffer), tcpClosed}. Frames after the close are a protocol error.
   */
  async closed(timeoutMs = 10000) {
    const f = await this.next((fr) => fr.opcode === OP.CLOSE, timeoutMs, 'a close frame');
    const info = closeInfo(f);
    let timer;
    const tcpClosed = await Promise.race([
      this.ended.then(() => true),
      new Promise((r) => { timer = setTimeout(() => r(false), timeoutMs); }),
    ]);
    clearTimeout(timer);
    const after = this.frames.slice(this.frames.indexOf(f) + 1);
    return { ...info, tcpClosed, framesAfterClose: after.length };
  }

  /** Frames received so far (and not consumed) that match pred. */
  unconsumed(pred = () => true) { return this.pending.filter(pred); }

  destroy() { this.socket.destroy(); }
}

let nextId = 1;

function parseJson(buf) {
  try { return JSON.parse(buf.toString('utf8')); } catch { return {}; }
}

/** Close code (1005 when the payload is empty, as RFC 6455 7.1.5 says) and raw reason. */
export function closeInfo(frame) {
  const p = frame.payload;
  if (p.length < 2) return { code: 1005, reason: Buffer.alloc(0) };
  return { code: p.readUInt16BE(0), reason: p.subarray(2) };
}
