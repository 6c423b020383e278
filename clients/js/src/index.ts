// @presd/client: the JavaScript client of presd's /ws/bus presence protocol (docs/protocol.md).
//
// One self-contained ES module with no imports, so the compiled dist/index.js loads in a browser
// without a bundler as well as in Node >= 20 (pass the `ws` package as `WebSocket` there).

export type ConnectionState = 'connecting' | 'open' | 'closed';

export interface PresenceEntry {
  context: string;
  issuer: string;
  subType: string;
  audience: string | null;
  content: unknown;
  /** ms since the epoch (the token's iat). */
  createdAt: number;
  /** ms since the epoch: min(createdAt + ttlMs, the server's expiresAt). */
  expiresAt: number;
}

export interface PresdClientOptions {
  /** ws(s)://host:port/ws/bus; the token is appended as ?token=. */
  url: string;
  /** The access token, or a function returning it (called before every connection attempt). */
  token: string | (() => string | Promise<string>);
  /** WebSocket constructor; default globalThis.WebSocket (pass `ws` in Node 20). */
  WebSocket?: any;
  /** Local expiry of entries from their createdAt, even if the server goes silent. Default 30000. */
  ttlMs?: number;
  /** Minimum interval between two PRES:TYPING sent by typing() for one context. Default 5000. */
  typingRefreshMs?: number;
  /** Reconnect backoff: exponential from initialMs (500) up to maxMs (30000), with jitter. */
  backoff?: { initialMs?: number; maxMs?: number };
  /** How long a request waits for its answer. Default 10000. */
  requestTimeoutMs?: number;
  /** Clock (ms since the epoch), for tests. Default Date.now. */
  now?: () => number;
}

export interface SendResult {
  token: string;
  expiresAt: string;
}

/**
 * Every failure the client reports: server error frames (code as in docs/errors.md, retryAfter
 * in ms for rate_limited), 'unavailable' (no connection, or it was lost before the answer),
 * 'timeout' (no answer within requestTimeoutMs) and the close reason of a 4401 close.
 */
export class PresdError extends Error {
  code: string;
  retryAfter?: number;
  constructor(code: string, message: string, retryAfter?: number) {
    super(message);
    this.name = 'PresdError';
    this.code = code;
    if (retryAfter !== undefined) this.retryAfter = retryAfter;
  }
}

type Events = {
  presence: (context: string, entries: PresenceEntry[]) => void;
  state: (s: ConnectionState) => void;
  error: (e: PresdError) => void;
  unsubscribed: (context: string, reason: string) => void;
};

interface Stored extends PresenceEntry {
  serverExpiresAt: number;
  conn: number; // connection generation it arrived on
  seq: number; // arrival order
}

interface Request {
  id: string;
  frame: string;
  sent: boolean;
  resolve: (data: any) => void;
  reject: (e: PresdError) => void;
  timer: ReturnType<typeof setTimeout>;
}

const STATUS = new Set(['ONLINE', 'AWAY', 'OFFLINE']);
const slotOf = (subType: string) => (STATUS.has(subType) ? 'status' : subType);
const keyOf = (issuer: string, subType: string, audience: string | null) =>
  `${issuer}\u0000${slotOf(subType)}\u0000${audience ?? ''}`;
const MAX_DELAY = 0x7fffffff;
const WS_OPEN = 1;

export class PresdClient {
  private readonly opts: PresdClientOptions;
  private readonly ttlMs: number;
  private readonly typingRefreshMs: number;
  private readonly backoffInitial: number;
  private readonly backoffMax: number;
  private readonly requestTimeoutMs: number;
  private readonly now: () => number;

  private _state: ConnectionState = 'closed';
  private ws: any = null;
  private wsOpen = false;
  private openedAt = 0;
  private gotFrame = false; // the current connection delivered a frame
  private gen = 0; // bumped for each connection attempt and by close()
  private attempt = 0;
  private reconnectTimer: ReturnType<typeof setTimeout> | null = null;
  private seq = 0;
  private arrivals = 0;
  private readonly requests = new Map<string, Request>();
  private readonly wanted = new Set<string>();
  private readonly map = new Map<string, Map<string, Stored>>();
  private readonly lastTyping = new Map<string, number>();
  private expiryTimer: ReturnType<typeof setTimeout> | null = null;
  private readonly listeners: { [K in keyof Events]: Set<Events[K]> } = {
    presence: new Set(),
    state: new Set(),
    error: new Set(),
    unsubscribed: new Set(),
  };

  constructor(opts: PresdClientOptions) {
    if (!opts || typeof opts.url !== 'string') throw new TypeError('PresdClient: opts.url is required');
    this.opts = opts;
    this.ttlMs = opts.ttlMs ?? 30000;
    this.typingRefreshMs = opts.typingRefreshMs ?? 5000;
    this.backoffInitial = opts.backoff?.initialMs ?? 500;
    this.backoffMax = opts.backoff?.maxMs ?? 30000;
    this.requestTimeoutMs = opts.requestTimeoutMs ?? 10000;
    this.now = opts.now ?? Date.now;
  }

  get state(): ConnectionState { return this._state; } // prettier-ignore

  // ---- events -------------------------------------------------------------------------------

  on(event: 'presence', fn: (context: string, entries: PresenceEntry[]) => void): () => void;
  on(event: 'state', fn: (s: ConnectionState) => void): () => void;
  on(event: 'error', fn: (e: PresdError) => void): () => void;
  on(event: 'unsubscribed', fn: (context: string, reason: string) => void): () => void;
  on(event: keyof Events, fn: (...args: any[]) => void): () => void {
    const set = this.listeners[event] as Set<(...args: any[]) => void> | undefined;
    if (!set) throw new TypeError(`PresdClient: unknown event ${String(event)}`);
    set.add(fn);
    return () => {
      set.delete(fn);
    };
  }

  private emit<K extends keyof Events>(event: K, ...args: Parameters<Events[K]>): void {
    for (const fn of [...this.listeners[event]]) {
      try {
        (fn as (...a: unknown[]) => void)(...args);
      } catch (e) {
        queueMicrotask(() => {
          throw e;
        }); // a listener's bug must not break the client; report it as uncaught
      }
    }
  }

  private setState(s: ConnectionState): void {
    if (this._state === s) return;
    this._state = s;
    this.emit('state', s);
  }

  // ---- connection ---------------------------------------------------------------------------

  connect(): void {
    if (this._state !== 'closed') return;
    const Ctor = this.opts.WebSocket ?? (globalThis as any).WebSocket;
    if (typeof Ctor !== 'function') {
      throw new TypeError('PresdClient: no WebSocket implementation; pass opts.WebSocket (e.g. the `ws` package)');
    }
    this.attempt = 0;
    this.setState('connecting');
    this.scheduleExpiry();
    void this.open();
  }

  close(): void {
    this.gen++;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    if (this.expiryTimer) clearTimeout(this.expiryTimer);
    this.expiryTimer = null;
    this.lastTyping.clear();
    const ws = this.ws;
    this.dropSocket();
    try {
      ws?.close(1000);
    } catch {} // already closing
    this.failRequests();
    this.setState('closed');
  }

  private async open(): Promise<void> {
    const gen = ++this.gen;
    let token: string;
    try {
      const t = this.opts.token;
      token = typeof t === 'function' ? await t() : t;
    } catch (e) {
      if (gen !== this.gen) return;
      this.emit('error', new PresdError('unavailable', `token provider failed: ${(e as Error)?.message ?? e}`));
      this.failRequests();
      this.scheduleReconnect();
      return;
    }
    if (gen !== this.gen) return;
    const url = this.opts.url + (this.opts.url.includes('?') ? '&' : '?') + 'token=' + encodeURIComponent(token);
    let ws: any;
    try {
      ws = new (this.opts.WebSocket ?? (globalThis as any).WebSocket)(url);
    } catch (e) {
      this.emit('error', new PresdError('unavailable', `cannot open ${this.opts.url}: ${(e as Error)?.message ?? e}`));
      this.failRequests();
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    this.wsOpen = false;
    ws.onopen = () => {
      if (gen !== this.gen) return;
      this.wsOpen = true;
      this.openedAt = Date.now();
      this.gotFrame = false;
      this.setState('open');
      this.onOpen(gen);
    };
    ws.onmessage = (ev: { data: unknown }) => {
      if (gen !== this.gen) return;
      this.onMessage(ev.data);
    };
    ws.onerror = () => {}; // a close event follows
    ws.onclose = (ev: { code?: number; reason?: string }) => {
      if (gen !== this.gen) return;
      const wasOpen = this.wsOpen;
      this.dropSocket();
      if (ev?.code === 4401) {
        this.emit('error', new PresdError(ev.reason || 'auth_invalid', `authentication failed (${ev.reason || 4401})`));
      } else if (wasOpen && (this.gotFrame || Date.now() - this.openedAt >= 5000)) {
        this.attempt = 0; // a working connection dropped: retry quickly (not one closed at once)
      }
      this.failRequests();
      this.setState('connecting');
      this.scheduleReconnect();
    };
  }

  private dropSocket(): void {
    const ws = this.ws;
    this.ws = null;
    this.wsOpen = false;
    if (ws) ws.onopen = ws.onmessage = ws.onclose = null; // onerror stays: `ws` throws on unhandled errors
  }

  private scheduleReconnect(): void {
    if (this._state === 'closed' || this.reconnectTimer) return;
    const base = Math.min(this.backoffMax, this.backoffInitial * 2 ** Math.min(this.attempt, 30));
    const delay = base / 2 + Math.random() * (base / 2); // "equal jitter": never below half
    this.attempt++;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      if (this._state !== 'closed') void this.open();
    }, delay);
  }

  private onOpen(gen: number): void {
    const queuedSubs = new Set<string>();
    for (const r of this.requests.values()) {
      if (r.sent) continue;
      const f = JSON.parse(r.frame);
      if (f.cmd === 'subscribe') queuedSubs.add(f.data.context);
    }
    // Re-subscribe what the app wants (unless a subscribe() for it is waiting to go out).
    for (const ctx of this.wanted) if (!queuedSubs.has(ctx)) this.doSubscribe(ctx).catch(() => {});
    for (const r of this.requests.values()) {
      if (gen !== this.gen) return;
      if (!r.sent) this.transmit(r);
    }
  }

  private transmit(r: Request): void {
    try {
      this.ws.send(r.frame);
      r.sent = true;
    } catch {
      /* the close handler fails the request */
    }
  }

  // Rejects every open request with 'unavailable': they were waiting on the connection (or
  // connection attempt) that just failed. Requests made later wait for the next attempt.
  private failRequests(): void {
    const reqs = [...this.requests.values()];
    this.requests.clear();
    for (const r of reqs) {
      clearTimeout(r.timer);
      r.reject(new PresdError('unavailable', 'connection to presd not available'));
    }
  }

  private request(cmd: string, data?: object): Promise<any> {
    if (this._state === 'closed') {
      return Promise.reject(new PresdError('unavailable', 'client is closed; call connect()'));
    }
    const id = String(++this.seq);
    const frame = JSON.stringify(data === undefined ? { id, cmd } : { id, cmd, data });
    return new Promise((resolve, reject) => {
      const r: Request = {
        id,
        frame,
        sent: false,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.requests.delete(id);
          reject(
            r.sent
              ? new PresdError('timeout', `no answer to ${cmd} within ${this.requestTimeoutMs} ms`)
              : new PresdError('unavailable', `not connected within ${this.requestTimeoutMs} ms`),
          );
        }, this.requestTimeoutMs),
      };
      this.requests.set(id, r);
      if (this.wsOpen) this.transmit(r);
    });
  }

  private onMessage(raw: unknown): void {
    let f: any;
    try {
      f = JSON.parse(typeof raw === 'string' ? raw : new TextDecoder().decode(raw as ArrayBuffer));
    } catch {
      return;
    }
    if (!f || typeof f !== 'object') return;
    this.gotFrame = true;
    const d = f.data ?? {};
    switch (f.cmd) {
      case 'ack':
      case 'error': {
        const r = typeof f.id === 'string' ? this.requests.get(f.id) : undefined;
        if (f.cmd === 'error') {
          const e = new PresdError(String(d.code ?? 'internal'), String(d.message ?? ''), typeof d.retryAfter === 'number' ? d.retryAfter : undefined);
          if (r) this.settle(r, () => r.reject(e));
          else this.emit('error', e);
        } else if (r) {
          this.settle(r, () => r.resolve(d));
        }
        return;
      }
      case 'ACTION': {
        const e = this.toEntry(d);
        if (e && this.put(e)) this.changed(e.context);
        return;
      }
      case 'PRES_EXPIRED':
        return this.expired(d);
      case 'UNSUBSCRIBED': {
        if (typeof d.context !== 'string') return;
        this.wanted.delete(d.context);
        this.drop(d.context);
        this.emit('unsubscribed', d.context, String(d.reason ?? ''));
        return;
      }
    }
  }

  private settle(r: Request, fn: () => void): void {
    clearTimeout(r.timer);
    this.requests.delete(r.id);
    fn();
  }

  // ---- commands -----------------------------------------------------------------------------

  /**
   * Subscribes to a context and resolves with its snapshot. The context is remembered and
   * re-subscribed after every reconnect until unsubscribe(), an error frame refusing it, or an
   * UNSUBSCRIBED frame; a connection failure rejects with 'unavailable' but keeps it remembered.
   */
  subscribe(context: string): Promise<PresenceEntry[]> {
    this.wanted.add(context);
    return this.doSubscribe(context);
  }

  private async doSubscribe(context: string): Promise<PresenceEntry[]> {
    const conn = this.gen;
    const since = this.arrivals;
    let ack: any;
    try {
      ack = await this.request('subscribe', { context });
    } catch (e) {
      const err = e as PresdError;
      if (err.code === 'access_denied' || err.code === 'context_unknown') {
        if (this.wanted.delete(context)) {
          this.drop(context);
          this.emit('unsubscribed', context, err.code);
        }
      }
      throw err;
    }
    if (!this.wanted.has(context)) return []; // unsubscribed meanwhile
    // The snapshot replaces what we held, except states that arrived on this connection after
    // the subscribe went out (they may be newer than the snapshot).
    const old = this.map.get(context);
    const next = new Map<string, Stored>();
    if (old) {
      for (const [k, s] of old) if (s.conn === conn && s.seq > since) next.set(k, s);
    }
    this.map.set(context, next);
    for (const d of Array.isArray(ack?.presence) ? ack.presence : []) {
      const e = this.toEntry(d);
      if (e && e.context === context) this.put(e);
    }
    this.changed(context);
    return this.presence(context);
  }

  /** Stops receiving a context; resolves at once when not connected. */
  async unsubscribe(context: string): Promise<void> {
    const had = this.wanted.delete(context);
    this.lastTyping.delete(context);
    if (had || this.map.has(context)) this.drop(context);
    if (!this.wsOpen) return;
    try {
      await this.request('unsubscribe', { context });
    } catch (e) {
      if ((e as PresdError).code !== 'not_found' && (e as PresdError).code !== 'unavailable') throw e;
    }
  }

  /** Sends a server-signed PRES:<subType> about a context. */
  async send(subType: string, context: string, opts: { audience?: string; content?: object } = {}): Promise<SendResult> {
    const data: Record<string, unknown> = { subType, subject: context };
    if (opts.audience !== undefined) data.audienceTag = opts.audience;
    if (opts.content !== undefined) data.content = opts.content;
    const ack = await this.request('pres', data);
    return { token: String(ack?.token ?? ''), expiresAt: String(ack?.expiresAt ?? '') };
  }

  /**
   * Call on every keystroke: sends PRES:TYPING at once unless one was sent for this context in
   * the last typingRefreshMs; does nothing while not connected. Errors go to the 'error' event.
   */
  typing(context: string): void {
    if (!this.wsOpen) return;
    const t = this.now();
    const last = this.lastTyping.get(context);
    if (last !== undefined && t - last < this.typingRefreshMs) return;
    this.lastTyping.set(context, t);
    this.send('TYPING', context).catch((e: PresdError) => {
      if (this.lastTyping.get(context) === t) {
        if (e.code === 'rate_limited' && e.retryAfter !== undefined) {
          // next attempt once the server allows it (not before the usual refresh either)
          this.lastTyping.set(context, t + Math.max(0, e.retryAfter - this.typingRefreshMs));
        } else if (e.code === 'unavailable' || e.code === 'timeout') {
          this.lastTyping.delete(context); // the next keystroke may try again
        }
      }
      this.emit('error', e);
    });
  }

  online(context: string): Promise<SendResult> { return this.send('ONLINE', context); } // prettier-ignore
  away(context: string): Promise<SendResult> { return this.send('AWAY', context); } // prettier-ignore
  offline(context: string): Promise<SendResult> { return this.send('OFFLINE', context); } // prettier-ignore

  // ---- presence map -------------------------------------------------------------------------

  /** Live entries of a context (expiresAt > now), newest first. */
  presence(context: string): PresenceEntry[] {
    const m = this.map.get(context);
    if (!m) return [];
    const t = this.now();
    const out: PresenceEntry[] = [];
    for (const s of m.values()) {
      if (s.expiresAt > t) {
        const { context: c, issuer, subType, audience, content, createdAt, expiresAt } = s;
        out.push({ context: c, issuer, subType, audience, content, createdAt, expiresAt });
      }
    }
    return out.sort((a, b) => b.createdAt - a.createdAt || (a.issuer < b.issuer ? -1 : a.issuer > b.issuer ? 1 : 0));
  }

  private toEntry(d: any): Stored | null {
    if (!d || typeof d !== 'object' || (d.type !== undefined && d.type !== 'PRES')) return null;
    const issuer = d.issuer?.idTag;
    if (typeof d.subType !== 'string' || typeof d.subject !== 'string' || typeof issuer !== 'string') return null;
    const audience = typeof d.audience?.idTag === 'string' ? d.audience.idTag : null;
    let createdAt = Date.parse(d.createdAt);
    if (!Number.isFinite(createdAt)) createdAt = this.now();
    let serverExpiresAt = Date.parse(d.expiresAt);
    if (!Number.isFinite(serverExpiresAt)) serverExpiresAt = createdAt + this.ttlMs;
    return {
      context: d.subject,
      issuer,
      subType: d.subType,
      audience,
      content: d.content ?? null,
      createdAt,
      expiresAt: Math.min(createdAt + this.ttlMs, serverExpiresAt),
      serverExpiresAt,
      conn: this.gen,
      seq: ++this.arrivals,
    };
  }

  // Stores a state unless an older one; returns whether the map changed.
  private put(e: Stored): boolean {
    let m = this.map.get(e.context);
    if (!m) this.map.set(e.context, (m = new Map()));
    const k = keyOf(e.issuer, e.subType, e.audience);
    const cur = m.get(k);
    if (cur && cur.createdAt > e.createdAt) return false;
    m.set(k, e);
    this.scheduleExpiry();
    return true;
  }

  private expired(d: any): void {
    const issuer = d?.issuer?.idTag;
    if (typeof d?.subject !== 'string' || typeof d.subType !== 'string' || typeof issuer !== 'string') return;
    const m = this.map.get(d.subject);
    const k = keyOf(issuer, d.subType, typeof d.audience?.idTag === 'string' ? d.audience.idTag : null);
    const cur = m?.get(k);
    if (!m || !cur) return;
    // PRES_EXPIRED does not name the state it ends: keep ours if it is a newer one, i.e. the
    // server gave it a later expiry than the one that just passed.
    const at = Date.parse(d.expiredAt);
    if (Number.isFinite(at) && cur.serverExpiresAt > at) return;
    m.delete(k);
    this.changed(d.subject);
  }

  private drop(context: string): void {
    this.map.delete(context);
    this.emit('presence', context, []);
  }

  private changed(context: string): void {
    this.emit('presence', context, this.presence(context));
  }

  // One timer for the earliest local expiry across all contexts.
  private scheduleExpiry(): void {
    if (this.expiryTimer) clearTimeout(this.expiryTimer);
    this.expiryTimer = null;
    let next = Infinity;
    for (const m of this.map.values()) for (const s of m.values()) if (s.expiresAt < next) next = s.expiresAt;
    if (next === Infinity) return;
    const delay = Math.min(MAX_DELAY, Math.max(0, next - this.now()) + 1);
    this.expiryTimer = setTimeout(() => {
      this.expiryTimer = null;
      this.sweep();
    }, delay);
  }

  private sweep(): void {
    const t = this.now();
    const touched: string[] = [];
    for (const [ctx, m] of this.map) {
      let any = false;
      for (const [k, s] of m) {
        if (s.expiresAt <= t) {
          m.delete(k);
          any = true;
        }
      }
      if (any) touched.push(ctx);
    }
    for (const ctx of touched) this.changed(ctx);
    this.scheduleExpiry();
  }
}

export default PresdClient;
