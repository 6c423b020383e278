// presd live demo: one context, its members with a status dot each, who is typing, and your own
// status buttons. Plain DOM, no build step; the client is the compiled clients/js served by presd
// at /demo/client.js.
//
//   /demo?token=<access token>&context=<context id>[&ttl=<server --pres-ttl seconds>]
import * as presd from './client.js';

const PresdClient = presd.PresdClient ?? presd.default;

const $ = (sel) => document.querySelector(sel);
const STATUS_TYPES = { ONLINE: 'online', AWAY: 'away', OFFLINE: 'offline' };
const STATUS_ORDER = { online: 0, away: 1, offline: 2, unknown: 3 };
const STATUS_TEXT = { online: 'online', away: 'away', offline: 'offline', unknown: 'no status' };
const LOG_MAX = 60;

const params = new URLSearchParams(location.search);
const token = (params.get('token') || '').trim();
const ctx = (params.get('context') || '').trim();
const ttlHintMs = Number(params.get('ttl')) > 0 ? Number(params.get('ttl')) * 1000 : 30000;

if (!token || !ctx) showSetup();
else start();

// ---- setup form (no token or context in the address) --------------------------------------------

function showSetup() {
  $('#setup').hidden = false;
  $('#setup-token').value = token;
  $('#setup-context').value = ctx;
  ($('#setup-token').value ? $('#setup-context') : $('#setup-token')).focus();
  $('#setup-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const q = new URLSearchParams(params);
    q.set('token', $('#setup-token').value.trim());
    q.set('context', $('#setup-context').value.trim());
    location.assign(`${location.pathname}?${q}`);
  });
}

// ---- helpers ----------------------------------------------------------------------------------

// The user an access token names: `sub`, or `iss` when there is no `sub`. Not verified here
// (the server does); only used to tell "you" apart.
function tokenUser(jwt) {
  try {
    const b64 = jwt.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    const json = decodeURIComponent(
      [...atob(b64.padEnd(Math.ceil(b64.length / 4) * 4, '='))]
        .map((c) => '%' + c.charCodeAt(0).toString(16).padStart(2, '0')).join(''));
    const claims = JSON.parse(json);
    return claims.sub || claims.iss || '';
  } catch {
    return '';
  }
}

const idTagOf = (v) => (typeof v === 'string' ? v : v?.idTag ?? '');
const timeOf = (v) => {
  if (v == null) return NaN;
  if (typeof v === 'number') return v < 1e12 ? v * 1000 : v;
  if (v instanceof Date) return v.getTime();
  return Date.parse(v);
};

// A stable colour per id_tag for the avatars.
function hue(s) {
  let h = 0;
  for (const ch of s) h = (h * 31 + ch.codePointAt(0)) >>> 0;
  return h % 360;
}

function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k.startsWith('data-') || k.startsWith('aria-') || k === 'title' || k === 'id') e.setAttribute(k, v);
    else e[k] = v;
  }
  for (const c of children) if (c != null) e.append(c);
  return e;
}

function log(text, kind = 'info') {
  const list = $('#log');
  const now = new Date();
  const time = now.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
  list.append(el('li', { class: `log-${kind}` }, el('time', { text: time, dateTime: now.toISOString() }), el('span', { text })));
  while (list.children.length > LOG_MAX) list.firstElementChild.remove();
  list.scrollTop = list.scrollHeight;
}

const errText = (e) => {
  const code = e?.code ?? e?.data?.code;
  const msg = e?.message ?? e?.data?.message ?? String(e);
  return code && !String(msg).startsWith(code) ? `${code}: ${msg}` : msg;
};
const retryAfterOf = (e) => Number(e?.retryAfter ?? e?.data?.retryAfter) || 0;
const isRateLimited = (e) => (e?.code ?? e?.data?.code) === 'rate_limited';

// ---- the room ---------------------------------------------------------------------------------

function start() {
  const me = tokenUser(token);
  let skewMs = 0;                 // server clock - local clock, from the members answer's "time"
  const members = new Map();      // idTag -> {idTag, role, listed}
  let lastStatus = new Map();     // idTag -> status, for the activity log
  let lastTypers = new Set();
  let desired = 'online';         // the status this page keeps alive
  let heartbeat = null;
  let synced = false;
  let membersFetchedAt = 0;
  let readOnly = false;           // observers receive but may not send

  $('#room').hidden = false;
  $('#context-id').textContent = ctx;
  $('#context-id').title = ctx;
  if (me) {
    const meEl = $('#me');
    meEl.hidden = false;
    meEl.replaceChildren(el('span', { class: 'muted', text: 'signed in as ' }), el('strong', { text: me }));
  }
  if (me) members.set(me, { idTag: me, role: '', listed: false });

  if (typeof PresdClient !== 'function') {
    setState('error');
    log('client.js does not export PresdClient', 'error');
    return;
  }

  const wsUrl = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws/bus`;
  const client = new PresdClient({ url: wsUrl, token });
  window.presdDemo = { client, context: ctx, me };   // for poking around in the console

  // -- members (REST) --
  async function fetchMembers() {
    membersFetchedAt = Date.now();
    const note = $('#members-note');
    try {
      const res = await fetch(`/api/contexts/${encodeURIComponent(ctx)}/members`, {
        headers: { Authorization: `Bearer ${token}` },
        cache: 'no-store',
      });
      const body = await res.json().catch(() => null);
      if (!res.ok) {
        const err = body?.error ?? { message: `HTTP ${res.status}` };
        note.textContent = `Could not load the member list (${errText(err)}). Showing whoever sends presence.`;
        note.hidden = false;
        return;
      }
      const t = timeOf(body?.time);
      if (Number.isFinite(t)) skewMs = t - Date.now();
      const list = body?.data?.members ?? [];
      for (const m of members.values()) m.listed = false;
      for (const m of list) {
        const tag = idTagOf(m.idTag ?? m);
        if (!tag) continue;
        members.set(tag, { idTag: tag, role: m.role ?? '', listed: true });
      }
      // Drop people who are no longer members and have nothing live to show.
      for (const [tag, m] of members) if (!m.listed && tag !== me && !lastStatus.has(tag)) members.delete(tag);
      note.hidden = true;
      if (members.get(me)?.role === 'observer') setReadOnly('You are an observer in this context: you see presence but cannot send it.');
      render();
    } catch (e) {
      note.textContent = `Could not load the member list (${errText(e)}).`;
      note.hidden = false;
    }
  }

  // -- presence -> view --
  function liveEntries() {
    let entries = [];
    try { entries = client.presence(ctx) ?? []; } catch { entries = []; }
    const now = Date.now() + skewMs;
    return entries.filter((e) => {
      const exp = timeOf(e.expiresAt);
      return !Number.isFinite(exp) || exp > now;
    });
  }

  function computeView() {
    const status = new Map();   // idTag -> {status, at, entry}
    const typers = new Set();
    for (const e of liveEntries()) {
      const who = idTagOf(e.issuer);
      if (!who) continue;
      const kind = STATUS_TYPES[String(e.subType).toUpperCase()];
      if (kind) {
        const at = timeOf(e.createdAt);
        const prev = status.get(who);
        if (!prev || !(at < prev.at)) status.set(who, { status: kind, at, entry: e });
      } else if (String(e.subType).toUpperCase() === 'TYPING' && who !== me) {
        typers.add(who);
      }
    }
    return { status, typers };
  }

  function render() {
    const { status, typers } = computeView();

    // Someone we have not heard of (joined after the member list was loaded): show them, and
    // refresh the list now and then.
    let unknown = false;
    for (const who of [...status.keys(), ...typers]) {
      if (!members.has(who)) {
        members.set(who, { idTag: who, role: '', listed: false });
        unknown = true;
      }
    }
    if (unknown && Date.now() - membersFetchedAt > 10000) fetchMembers();

    // Members, most present first, then by name; you first among equals.
    const rows = [...members.values()].map((m) => ({ ...m, status: status.get(m.idTag)?.status ?? 'unknown', since: status.get(m.idTag)?.at }));
    rows.sort((a, b) => STATUS_ORDER[a.status] - STATUS_ORDER[b.status] ||
      (b.idTag === me) - (a.idTag === me) || a.idTag.localeCompare(b.idTag));
    const list = $('#members');
    const existing = new Map([...list.children].map((li) => [li.dataset.member, li]));
    const ordered = rows.map((r) => {
      const li = existing.get(r.idTag) ?? memberRow(r.idTag);
      existing.delete(r.idTag);
      updateRow(li, r, typers.has(r.idTag));
      return li;
    });
    for (const li of existing.values()) li.remove();
    ordered.forEach((li, i) => { if (list.children[i] !== li) list.insertBefore(li, list.children[i] ?? null); });
    const here = rows.filter((r) => r.status === 'online' || r.status === 'away').length;
    $('#member-count').textContent = `${here}/${rows.length}`;
    $('#member-count').title = `${here} present of ${rows.length}`;

    // Typing line: other people only.
    const names = [...typers].sort();
    const line = $('#typing');
    let text = '';
    if (names.length === 1) text = `${names[0]} is typing…`;
    else if (names.length === 2) text = `${names[0]} and ${names[1]} are typing…`;
    else if (names.length > 2) text = `${names.length} people are typing…`;
    if (line.textContent !== text) line.textContent = text;
    line.classList.toggle('active', names.length > 0);

    // Own buttons follow what the server has for you (falls back to what you asked for).
    const mine = status.get(me)?.status;
    for (const b of document.querySelectorAll('.status-btn')) b.setAttribute('aria-pressed', String(b.dataset.set === (mine ?? desired)));

    // Activity log from the differences.
    const nowStatus = new Map([...status].map(([k, v]) => [k, v.status]));
    for (const [who, s] of nowStatus) {
      if (lastStatus.get(who) !== s) log(`${who === me ? 'You are' : who + ' is'} ${STATUS_TEXT[s]}`, s);
    }
    for (const who of lastStatus.keys()) {
      if (!nowStatus.has(who)) log(`${who === me ? 'Your' : who + '’s'} status expired`, 'unknown');
    }
    for (const who of typers) if (!lastTypers.has(who)) log(`${who} started typing`, 'typing');
    for (const who of lastTypers) if (!typers.has(who)) log(`${who} stopped typing`, 'unknown');
    lastStatus = nowStatus;
    lastTypers = new Set(typers);
  }

  function memberRow(idTag) {
    const safeId = 'member-' + idTag.replace(/[^A-Za-z0-9_-]/g, '-');
    const li = el('li', { class: 'member', id: safeId, 'data-member': idTag, 'data-status': 'unknown' },
      el('span', { class: 'avatar', text: (idTag[0] || '?').toUpperCase(), 'aria-hidden': 'true' },
        el('span', { class: 'dot', 'data-status': 'unknown' })),
      el('span', { class: 'info' },
        el('span', { class: 'name' }, el('span', { class: 'tag', text: idTag })),
        el('span', { class: 'sub' },
          el('span', { class: 'status-text', text: STATUS_TEXT.unknown }),
          el('span', { class: 'role' }),
          el('span', { class: 'typing-badge', text: 'typing…' }))));
    li.querySelector('.avatar').style.setProperty('--hue', hue(idTag));
    if (idTag === me) {
      li.classList.add('self');
      li.querySelector('.name').append(el('span', { class: 'you', text: 'you' }));
    }
    return li;
  }

  function updateRow(li, r, typing) {
    if (li.dataset.status !== r.status) {
      li.dataset.status = r.status;
      li.querySelector('.dot').dataset.status = r.status;
    }
    li.dataset.typing = String(typing);
    const since = Number.isFinite(r.since) ? ` since ${new Date(r.since - skewMs).toLocaleTimeString()}` : '';
    const text = STATUS_TEXT[r.status];
    const st = li.querySelector('.status-text');
    if (st.textContent !== text) st.textContent = text;
    li.title = `${r.idTag}: ${text}${since}${r.listed ? '' : ' (not in the member list)'}`;
    const role = li.querySelector('.role');
    const roleText = r.role || (r.listed || r.idTag === me ? '' : 'guest');
    if (role.textContent !== roleText) role.textContent = roleText;
    role.hidden = !roleText;
  }

  // -- your own status, kept alive until you change it --
  function ownTtlMs(result) {
    const now = Date.now() + skewMs;
    const exp = timeOf(result?.expiresAt ?? result?.data?.expiresAt);
    if (Number.isFinite(exp) && exp > now) return exp - now;
    const mine = liveEntries().find((e) => idTagOf(e.issuer) === me && STATUS_TYPES[String(e.subType).toUpperCase()] === desired);
    const left = timeOf(mine?.expiresAt) - now;
    if (Number.isFinite(left) && left > 0) return left;
    return ttlHintMs;
  }

  function schedule(ms) {
    clearTimeout(heartbeat);
    heartbeat = setTimeout(() => send(desired, true), Math.max(500, ms));
  }

  async function send(kind, refresh = false) {
    clearTimeout(heartbeat);
    heartbeat = null;
    if (readOnly) return;
    try {
      const result = await client[kind](ctx);
      if (kind !== desired) return;           // changed meanwhile; that send takes over
      if (kind !== 'offline') schedule(ownTtlMs(result) * 0.5);
    } catch (e) {
      if (kind !== desired) return;
      if (isRateLimited(e)) {
        // The server forwards the same state at most every --same-state-interval-ms.
        schedule((retryAfterOf(e) || 1000) + 50);
        return;
      }
      log(`${refresh ? 'Refreshing' : 'Setting'} your status failed: ${errText(e)}`, 'error');
      const code = e?.code ?? e?.data?.code;
      if (code === 'access_denied' || code === 'issuer_not_hosted') {
        setReadOnly(code === 'access_denied'
          ? 'You may not send presence in this context (observer?): watching only.'
          : 'This server does not host your id_tag, so it cannot sign presence for you: watching only.');
      } else if (kind !== 'offline' && code !== 'unavailable') {
        schedule(Math.min(ttlHintMs / 2, 10000));
      }
    }
  }

  function setReadOnly(why) {
    if (readOnly) return;
    readOnly = true;
    clearTimeout(heartbeat);
    for (const b of document.querySelectorAll('.status-btn')) b.disabled = true;
    $('#message').disabled = true;
    $('#message').placeholder = 'Watching only';
    $('#composer button').disabled = true;
    const note = $('#readonly-note');
    note.textContent = why;
    note.hidden = false;
  }

  function setStatus(kind) {
    desired = kind;
    for (const b of document.querySelectorAll('.status-btn')) b.setAttribute('aria-pressed', String(b.dataset.set === kind));
    return send(kind);
  }

  for (const b of document.querySelectorAll('.status-btn')) {
    b.addEventListener('click', () => setStatus(b.dataset.set));
  }

  // -- typing --
  const input = $('#message');
  input.addEventListener('input', () => {
    if (!input.value || readOnly) return;
    try {
      const p = client.typing(ctx);
      if (p && typeof p.catch === 'function') p.catch((e) => { if (!isRateLimited(e)) log(`typing: ${errText(e)}`, 'error'); });
    } catch (e) {
      log(`typing: ${errText(e)}`, 'error');
    }
  });
  $('#composer').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    log(`You wrote “${text.length > 80 ? text.slice(0, 80) + '…' : text}” (kept on this page)`, 'self');
    input.value = '';
  });

  // -- connection --
  const isUp = (s) => /^(open|connected|ready|online|authenticated)$/i.test(String(s));
  function setState(s) {
    const node = $('#state');
    const label = { open: 'connected', connected: 'connected', ready: 'connected', connecting: 'connecting…',
      reconnecting: 'reconnecting…', closing: 'closing…', closed: 'disconnected', idle: 'not connected', error: 'error' }[s] ?? String(s);
    node.dataset.state = isUp(s) ? 'open' : String(s);
    node.textContent = label;
  }

  async function sync() {
    try {
      await client.subscribe(ctx);
      log('Subscribed to the context', 'info');
    } catch (e) {
      log(`Subscribe failed: ${errText(e)}`, 'error');
      synced = false;
      return;
    }
    render();
    send(desired);        // ONLINE on (re)connect, or whatever you chose before a reconnect
  }

  client.on('presence', (c) => { if (c === ctx) render(); });
  client.on('state', (s) => {
    setState(s);
    if (isUp(s)) {
      if (!synced) {
        synced = true;
        log('Connected', 'info');
        sync();
      }
    } else if (synced) {
      synced = false;
      clearTimeout(heartbeat);
      if (/clos|disconn|fail/i.test(String(s))) log('Disconnected', 'error');
    }
  });
  client.on('error', (e) => {
    if (isRateLimited(e) || (readOnly && (e?.code ?? e?.data?.code) === 'access_denied')) return;
    log(errText(e), 'error');
  });
  client.on('unsubscribed', (c, reason) => {
    if (c !== ctx) return;
    clearTimeout(heartbeat);
    log(`The server ended your subscription (${reason}); reload the page to try again`, 'error');
    render();
  });

  setState(client.state ?? 'connecting');
  fetchMembers();
  render();
  try {
    const p = client.connect();
    if (p && typeof p.catch === 'function') p.catch((e) => log(`Connect failed: ${errText(e)}`, 'error'));
  } catch (e) {
    log(`Connect failed: ${errText(e)}`, 'error');
  }
  if (isUp(client.state) && !synced) { synced = true; setState(client.state); sync(); }

  // Entries expire on the server (PRES_EXPIRED); redraw now and then anyway so a missed event
  // cannot leave an indicator stuck.
  setInterval(render, 1000);

  window.addEventListener('pagehide', () => {
    try { if (synced && desired !== 'offline') client.offline(ctx)?.catch?.(() => {}); } catch {}
    try { client.close(); } catch {}
  });
}
