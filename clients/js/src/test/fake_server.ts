// A small fake presd /ws/bus for the client's unit tests: it speaks the protocol of
// docs/protocol.md (acks, error frames, snapshots) and lets a test push server frames.
import { WebSocketServer, WebSocket } from 'ws';
import type { AddressInfo } from 'node:net';

export interface Received {
  conn: number;
  id: string;
  cmd: string;
  data: any;
}

export interface ActionSpec {
  subType?: string;
  issuer?: string;
  audience?: string | null;
  subject?: string;
  content?: unknown;
  createdAt?: number; // ms
  expiresAt?: number; // ms
}

export const iso = (ms: number) => new Date(ms).toISOString();

export function actionData(a: ActionSpec = {}): any {
  const createdAt = a.createdAt ?? Date.now();
  return {
    actionId: null,
    type: 'PRES',
    subType: a.subType ?? 'TYPING',
    issuer: { idTag: a.issuer ?? 'alice.test' },
    audience: a.audience ? { idTag: a.audience } : null,
    content: a.content ?? null,
    subject: a.subject ?? 'a1~ctx',
    createdAt: iso(createdAt),
    expiresAt: iso(a.expiresAt ?? createdAt + 30000),
  };
}

export function expiredData(a: ActionSpec & { expiredAt?: number } = {}): any {
  return {
    type: 'PRES',
    subType: a.subType ?? 'TYPING',
    issuer: { idTag: a.issuer ?? 'alice.test' },
    audience: a.audience ? { idTag: a.audience } : null,
    subject: a.subject ?? 'a1~ctx',
    expiredAt: iso(a.expiredAt ?? Date.now()),
  };
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class FakeServer {
  readonly wss: WebSocketServer;
  port = 0;
  readonly conns: WebSocket[] = [];
  readonly tokens: (string | null)[] = [];
  readonly received: Received[] = [];
  /** Snapshot answered to `subscribe`, per context (ACTION data objects). */
  readonly snapshots = new Map<string, any[]>();
  /** Return an error {code,message,retryAfter?} to refuse a command, 'silent' to not answer. */
  refuse: (f: Received) => { code: string; message?: string; retryAfter?: number } | 'silent' | null = () => null;
  /** Close code for new connections (e.g. 4401), or null to accept. */
  rejectWith: { code: number; reason: string } | null = null;
  private presCount = 0;
  private waiters: { pred: (f: Received) => boolean; resolve: (f: Received) => void }[] = [];

  private constructor(wss: WebSocketServer) {
    this.wss = wss;
    wss.on('connection', (ws, req) => {
      const conn = this.conns.length;
      this.conns.push(ws);
      this.tokens.push(new URL(req.url ?? '/', 'http://x').searchParams.get('token'));
      if (this.rejectWith) {
        ws.close(this.rejectWith.code, this.rejectWith.reason);
        return;
      }
      ws.on('message', (buf) => this.onFrame(ws, conn, String(buf)));
    });
  }

  static async start(): Promise<FakeServer> {
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, path: '/ws/bus' });
    await new Promise<void>((r) => wss.once('listening', () => r()));
    const s = new FakeServer(wss);
    s.port = (wss.address() as AddressInfo).port;
    return s;
  }

  get url(): string {
    return `ws://127.0.0.1:${this.port}/ws/bus`;
  }

  /** Frames received with this cmd (optionally on one connection). */
  frames(cmd: string, conn?: number): Received[] {
    return this.received.filter((f) => f.cmd === cmd && (conn === undefined || f.conn === conn));
  }

  waitFor(pred: (f: Received) => boolean, timeoutMs = 3000): Promise<Received> {
    const hit = this.received.find(pred);
    if (hit) return Promise.resolve(hit);
    return new Promise((resolve, reject) => {
      const w = { pred, resolve: (f: Received) => (clearTimeout(t), resolve(f)) };
      const t = setTimeout(() => {
        this.waiters = this.waiters.filter((x) => x !== w);
        reject(new Error('FakeServer.waitFor: timed out'));
      }, timeoutMs);
      this.waiters.push(w);
    });
  }

  async waitConnections(n: number, timeoutMs = 3000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.conns.length < n) {
      if (Date.now() > deadline) throw new Error(`FakeServer: expected ${n} connections, have ${this.conns.length}`);
      await sleep(5);
    }
  }

  /** Sends a server frame to every open connection. */
  push(cmd: string, data: unknown): void {
    const frame = JSON.stringify({ id: Math.random().toString(36).slice(2), cmd, data });
    for (const ws of this.conns) if (ws.readyState === WebSocket.OPEN) ws.send(frame);
  }

  /** Drops every connection abruptly (as a crashed server or a network cut would). */
  dropAll(): void {
    for (const ws of this.conns) ws.terminate();
  }

  async stop(): Promise<void> {
    this.dropAll();
    await new Promise<void>((r) => this.wss.close(() => r()));
  }

  private onFrame(ws: WebSocket, conn: number, text: string): void {
    const f = JSON.parse(text);
    const rec: Received = { conn, id: f.id, cmd: f.cmd, data: f.data };
    this.received.push(rec);
    for (const w of [...this.waiters]) {
      if (w.pred(rec)) {
        this.waiters = this.waiters.filter((x) => x !== w);
        w.resolve(rec);
      }
    }
    const refusal = this.refuse(rec);
    if (refusal === 'silent') return;
    const send = (cmd: string, data: unknown) => ws.send(JSON.stringify({ id: f.id ?? null, cmd, data }));
    if (refusal) {
      const data: any = { code: refusal.code, message: refusal.message ?? refusal.code };
      if (refusal.retryAfter !== undefined) data.retryAfter = refusal.retryAfter;
      return send('error', data);
    }
    switch (f.cmd) {
      case 'ping':
        return send('ack', { status: 'pong' });
      case 'subscribe':
        return send('ack', {
          status: 'subscribed',
          context: f.data.context,
          presence: this.snapshots.get(f.data.context) ?? [],
        });
      case 'unsubscribe':
        return send('ack', { status: 'unsubscribed', context: f.data.context });
      case 'pres':
        return send('ack', { status: 'accepted', token: `tok-${++this.presCount}`, expiresAt: iso(Date.now() + 30000) });
      default:
        return send('error', { code: 'unknown_command', message: `unknown command ${f.cmd}` });
    }
  }
}
