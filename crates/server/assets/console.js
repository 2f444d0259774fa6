/*
 * Concierge agent console — front end for human support agents.
 *
 * Plain ES2020, no dependencies, no build step; one IIFE, nothing on `window`.
 * Server text never goes through innerHTML: text nodes only, links only for http(s).
 *
 *   1. Config & utilities   4. Session (sign-in, heartbeat)   7. Case file rendering
 *   2. api()                5. Queue                          8. Actions & composers
 *   3. EventStream (SSE)    6. Conversation (open, live)      9. Wiring & boot
 */
(() => {
  'use strict';

  /* ============================================ 1. Config & utilities */

  const PLACEHOLDER_RE = /^\{\{\s*[A-Z_]+\s*\}\}$/;
  function readMeta(name) {
    const el = document.querySelector(`meta[name="${name}"]`);
    const value = el ? (el.getAttribute('content') || '').trim() : '';
    return PLACEHOLDER_RE.test(value) ? '' : value;
  }
  const config = { title: readMeta('concierge-title') || 'Support', workspace: readMeta('concierge-workspace') };

  const STORAGE_KEY = 'concierge:console:v1';
  const HEARTBEAT_MS = 30000;
  /** Without input for this long the person counts as idle: leases are no longer renewed. */
  const IDLE_MS = 5 * 60 * 1000;
  const REFRESH_DEBOUNCE_MS = 150;
  const TICK_MS = 15000;
  const TYPING_TIMEOUT_MS = 20000;
  const LONG_WAIT_S = 600;
  const STREAM_IDLE_TIMEOUT_MS = 60000; // keep-alives come every ~15 s
  const FATAL_STATUSES = new Set([401, 403, 404]);
  const RETRYABLE_STATUSES = new Set([408, 425, 429, 502, 503, 504]);
  const PRIORITY_RANK = { urgent: 0, high: 1, normal: 2, low: 3 };
  const STATUS_LABELS = {
    ai_active: 'AI active', pending_human: 'Waiting for an agent', human_active: 'With an agent', resolved: 'Resolved', closed: 'Closed',
  };
  const TRIGGER_LABELS = {
    routing_policy: 'Routing rule', customer: 'Customer asked', agent: 'AI escalated', human: 'Agent took over', api: 'API',
  };

  /** RFC 4122 v4; crypto.randomUUID() exists only in secure contexts. */
  function uuid() {
    try { return window.crypto.randomUUID(); } catch (_) { /* insecure context or missing */ }
    const b = window.crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const x = Array.from(b, (n) => n.toString(16).padStart(2, '0')).join('');
    return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
  }

  /** Resolves after `ms`, early when `signal` aborts or the function given to `onWake` is called. */
  function sleep(ms, signal, onWake) {
    return new Promise((resolve) => {
      const done = () => { clearTimeout(timer); if (signal) signal.removeEventListener('abort', done); resolve(); };
      const timer = setTimeout(done, ms);
      if (signal) signal.addEventListener('abort', done, { once: true });
      if (onWake) onWake(done);
    });
  }

  /** Exponential backoff with jitter. */
  const backoffDelay = (attempt, base = 500, max = 15000) =>
    Math.round(Math.min(max, base * 2 ** Math.max(0, attempt - 1)) * (0.5 + Math.random() * 0.5));

  /** DOM builder: `class`, `dataset`, `on<event>`, other keys → attributes; strings become text nodes. */
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (key === 'class') el.className = value;
      else if (key === 'dataset') Object.assign(el.dataset, value);
      else if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
      else el.setAttribute(key, value === true ? '' : String(value));
    }
    for (const child of children.flat(Infinity)) {
      if (child !== undefined && child !== null && child !== false) el.append(child instanceof Node ? child : String(child));
    }
    return el;
  }

  /** A link for http(s) URLs only (blocks javascript:, data:, …), plain text otherwise. */
  function link(raw, text) {
    let href = null;
    try {
      const url = new URL(raw, window.location.href);
      if (typeof raw === 'string' && raw.trim() && (url.protocol === 'http:' || url.protocol === 'https:')) href = url.href;
    } catch (_) { /* not a URL */ }
    return href ? h('a', { href, target: '_blank', rel: 'noopener noreferrer' }, text) : h('span', null, text);
  }

  function parseDate(iso) {
    const d = iso ? new Date(iso) : null;
    return d && !Number.isNaN(d.getTime()) ? d : null;
  }

  function relText(date) {
    const s = Math.round((Date.now() - date.getTime()) / 1000);
    const a = Math.abs(s);
    if (a < 45) return s < 0 ? 'in a moment' : 'just now';
    const t = a < 3600 ? `${Math.max(1, Math.round(a / 60))} min` : a < 86400 ? `${Math.round(a / 3600)} h` : `${Math.round(a / 86400)} d`;
    return s < 0 ? `in ${t}` : `${t} ago`;
  }

  /** <time> with relative text (kept fresh by the ticker) and the absolute time as its title. */
  function relTime(iso) {
    const d = parseDate(iso);
    return d && h('time', { datetime: d.toISOString(), title: d.toLocaleString(), dataset: { rel: d.toISOString() } }, relText(d));
  }

  function duration(seconds) {
    const s = Math.max(0, Math.floor(seconds));
    if (s < 60) return '<1 min';
    if (s < 3600) return `${Math.floor(s / 60)} min`;
    if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
    return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
  }

  function refreshTimes() {
    for (const el of document.querySelectorAll('time[data-rel]')) el.textContent = relText(new Date(el.dataset.rel));
    for (const el of document.querySelectorAll('[data-since]')) {
      const s = (Date.now() - Number(el.dataset.since)) / 1000;
      el.textContent = duration(s);
      el.dataset.long = String(s >= LONG_WAIT_S);
    }
  }

  const capitalize = (s) => (s ? s.charAt(0).toUpperCase() + s.slice(1) : '');

  function money(total, currency) {
    if (Number.isFinite(Number(total)) && currency) {
      try { return new Intl.NumberFormat(undefined, { style: 'currency', currency }).format(Number(total)); } catch (_) { /* unknown currency */ }
    }
    return [total, currency].filter((x) => x !== null && x !== undefined && x !== '').join(' ');
  }

  /* ========================================================== 2. api */

  /** Non-2xx answer; the body is application/problem+json {type,title,status,detail,code,request_id}. */
  class ApiError extends Error {
    constructor(status, problem) {
      super((problem && (problem.detail || problem.title)) || `Request failed (HTTP ${status}).`);
      this.name = 'ApiError';
      this.status = status;
      this.detail = this.message;
      this.code = problem && problem.code;
      this.requestId = problem && problem.request_id;
    }
  }

  class NetworkError extends Error {
    constructor(message) { super(message || 'Network error'); this.name = 'NetworkError'; }
  }

  /** `gen` is bumped on every sign-out, so answers to an older session are dropped. */
  const session = { gen: 0, token: null, expiresAt: null, agent: null, workspace: '' };

  /** JSON request; a 401 on an authenticated call ends the session (the error gets `sessionEnded`). */
  async function api(method, path, { body, idempotencyKey, auth = true } = {}) {
    const gen = session.gen;
    const headers = { Accept: 'application/json, application/problem+json' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (auth && session.token) headers.Authorization = `Bearer ${session.token}`;
    if (idempotencyKey) headers['Idempotency-Key'] = idempotencyKey;
    let response;
    let text;
    try {
      response = await fetch(path, {
        method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: 'omit', cache: 'no-store',
      });
      text = await response.text();
    } catch (err) {
      throw new NetworkError(err && err.message);
    }
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (_) { /* not JSON */ }
    if (!response.ok) {
      const err = new ApiError(response.status, data);
      if (auth && response.status === 401) {
        err.sessionEnded = true;
        if (gen === session.gen && session.token) sessionEnded(err.detail);
      }
      throw err;
    }
    if (auth && gen !== session.gen) throw Object.assign(new Error('stale session'), { sessionEnded: true });
    return data;
  }

  const isRetryable = (err) => err instanceof NetworkError || (err instanceof ApiError && RETRYABLE_STATUSES.has(err.status));

  /** Retries retryable failures; `fn` must reuse the same Idempotency-Key on every attempt. */
  async function withRetry(fn, attempts = 3) {
    for (let attempt = 1; ; attempt += 1) {
      try { return await fn(); } catch (err) {
        if (attempt >= attempts || !isRetryable(err)) throw err;
        await sleep(backoffDelay(attempt, 600, 4000));
      }
    }
  }

  const enc = encodeURIComponent;
  const paths = {
    session: '/v1/console/session',
    heartbeat: '/v1/console/heartbeat',
    queue: '/v1/console/queue',
    stream: '/v1/console/stream',
    teams: '/v1/teams',
    conversation: (id) => `/v1/console/conversations/${enc(id)}`,
    action: (id, action) => `/v1/console/conversations/${enc(id)}/${action}`,
    events: (id) => `/v1/conversations/${enc(id)}/events`,
  };

  /* ================================================ 3. EventStream */

  /**
   * Server-Sent Events over fetch() (EventSource cannot send Authorization), as in chat.js:
   * `event:` / `data:` / `id:` lines (CR, LF or CRLF), a blank line dispatches, `:` lines are
   * keep-alives. Reconnects with backoff, resuming with Last-Event-ID, until stop();
   * 401/403/404 are final (onFatal). An idle watchdog drops silent connections.
   *
   * options: url, getLastEventId(), onEvent({type,data,id}), onState('connected'|'reconnecting'), onFatal(status)
   */
  class EventStream {
    constructor(options) {
      this.options = options;
      this.controller = new AbortController();
      this.wakeFn = null;
      this.run();
    }

    stop() { this.controller.abort(); }

    /** Skips the rest of the backoff delay (e.g. when the browser is back online). */
    wake() { if (this.wakeFn) this.wakeFn(); }

    async run() {
      const { signal } = this.controller;
      let attempt = 0;
      while (!signal.aborted) {
        try {
          await this.connectOnce(() => { attempt = 0; });
        } catch (err) {
          if (!signal.aborted && err && err.fatalStatus) { this.options.onFatal(err.fatalStatus); return; }
        }
        if (signal.aborted) return;
        this.options.onState('reconnecting');
        attempt += 1;
        await sleep(backoffDelay(attempt), signal, (wake) => { this.wakeFn = wake; });
        this.wakeFn = null;
      }
    }

    async connectOnce(onActivity) {
      const local = new AbortController(); // per connection, so the watchdog drops only this one
      const abortLocal = () => local.abort();
      this.controller.signal.addEventListener('abort', abortLocal, { once: true });
      let idleTimer = 0;
      const armWatchdog = () => { clearTimeout(idleTimer); idleTimer = setTimeout(abortLocal, STREAM_IDLE_TIMEOUT_MS); };
      try {
        const headers = { Accept: 'text/event-stream', Authorization: `Bearer ${session.token}` };
        const lastEventId = this.options.getLastEventId();
        if (lastEventId !== null && lastEventId !== undefined) headers['Last-Event-ID'] = String(lastEventId);
        armWatchdog();
        const response = await fetch(this.options.url, { headers, credentials: 'omit', cache: 'no-store', signal: local.signal });
        if (FATAL_STATUSES.has(response.status)) throw Object.assign(new Error(`HTTP ${response.status}`), { fatalStatus: response.status });
        if (!response.ok || !response.body || !(response.headers.get('Content-Type') || '').includes('text/event-stream')) {
          throw new Error(`Unexpected event stream response (HTTP ${response.status})`);
        }
        this.options.onState('connected');
        await this.read(response.body, () => { armWatchdog(); onActivity(); });
      } finally {
        clearTimeout(idleTimer);
        this.controller.signal.removeEventListener('abort', abortLocal);
        local.abort(); // release the connection if still open
      }
    }

    async read(body, onChunk) {
      const reader = body.getReader();
      const decoder = new TextDecoder('utf-8');
      let buffer = '';
      let pending = { type: '', data: [], id: null };
      const processLine = (line) => {
        if (line === '') { // blank line: dispatch
          const ev = pending;
          pending = { type: '', data: [], id: null };
          if (ev.data.length) this.options.onEvent({ type: ev.type || 'message', data: ev.data.join('\n'), id: ev.id });
          return;
        }
        if (line.charCodeAt(0) === 58 /* ':' */) return; // comment / keep-alive
        const colon = line.indexOf(':');
        const field = colon === -1 ? line : line.slice(0, colon);
        let value = colon === -1 ? '' : line.slice(colon + 1);
        if (value.charCodeAt(0) === 32) value = value.slice(1);
        if (field === 'event') pending.type = value;
        else if (field === 'data') pending.data.push(value);
        else if (field === 'id' && !value.includes('\0')) pending.id = value;
      };
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break; // an incomplete trailing event is discarded, per the spec
          onChunk();
          buffer += decoder.decode(value, { stream: true });
          // A trailing CR may be half of a CRLF: keep it for the next chunk.
          const end = buffer.endsWith('\r') ? buffer.length - 1 : buffer.length;
          const lines = buffer.slice(0, end).split(/\r\n|\r|\n/);
          buffer = lines.pop() + buffer.slice(end);
          lines.forEach(processLine);
        }
      } finally {
        reader.cancel().catch(() => {});
      }
    }
  }

  /* ================================================== DOM & state */

  const ui = {};
  for (const id of [
    'brand-title', 'session-bar', 'live-status', 'live-status-text', 'available', 'me-name', 'me-role', 'signout',
    'console-error', 'console-error-text', 'console-error-dismiss',
    'signin-view', 'signin-form', 'signin-workspace', 'signin-email', 'signin-password', 'signin-submit',
    'workspace', 'queue-filter', 'queue', 'queue-count', 'queue-empty',
    'conversation', 'conv-placeholder', 'conv-body', 'conv-title', 'conv-status', 'conv-status-label', 'conv-priority', 'conv-meta',
    'claim', 'release', 'handback', 'transfer', 'resolve',
    'handback-form', 'handback-note', 'handback-confirm', 'transfer-form', 'transfer-team', 'transfer-note', 'transfer-confirm',
    'conv-connection', 'conv-scroller', 'transcript', 'typing',
    'reply-form', 'reply-text', 'reply-send', 'reply-hint', 'note-form', 'note-text', 'note-send',
    'context-empty', 'context-body', 'ctx-handoff', 'ctx-suggestions', 'ctx-customer', 'ctx-orders', 'ctx-tickets', 'ctx-sources',
  ]) ui[id.replace(/-([a-z])/g, (_, c) => c.toUpperCase())] = document.getElementById(id);

  const state = {
    items: [], // queue items, each with `since` (ms epoch it started waiting, or null)
    teams: [],
    filter: '*all', // '*all' | '*mine' | '*none' | team name
    queueStream: null,
    liveState: 'connecting',
    heartbeatTimer: 0,
    lastActivity: Date.now(),
    heartbeatBusy: false,
    /** conversation id → { reply, note, replyKey, replyKeyText } for conversations not on screen. */
    drafts: new Map(),
  };

  /** The open conversation or null; a new object per open, so async work compares identity. */
  let cur = null;

  const store = {
    load() {
      try {
        const v = JSON.parse(window.sessionStorage.getItem(STORAGE_KEY) || 'null');
        if (v && typeof v.token === 'string' && v.agent && typeof v.agent.id === 'string') return v;
      } catch (_) { /* unavailable or corrupt */ }
      return null;
    },
    save() {
      const { token, expiresAt, agent, workspace } = session;
      try { window.sessionStorage.setItem(STORAGE_KEY, JSON.stringify({ token, expiresAt, agent, workspace })); } catch (_) { /* ignore */ }
    },
    clear() { try { window.sessionStorage.removeItem(STORAGE_KEY); } catch (_) { /* ignore */ } },
  };

  function showError(text, requestId) {
    ui.consoleErrorText.textContent = text;
    ui.consoleError.title = requestId ? `Request ID: ${requestId}` : '';
    ui.consoleError.hidden = false;
    document.documentElement.classList.add('has-error');
  }

  function clearError() {
    ui.consoleError.hidden = true;
    ui.consoleErrorText.textContent = '';
    document.documentElement.classList.remove('has-error');
  }

  function handleError(err, fallback) {
    if (!err || err.sessionEnded) return; // the sign-in form is already back
    if (err instanceof ApiError) showError(err.detail, err.requestId);
    else if (err instanceof NetworkError) showError('Could not reach the server. Check your connection and try again.');
    else showError(fallback);
  }

  const me = () => session.agent || {};
  const isMine = (conv) => Boolean(conv && conv.owner && conv.owner.kind === 'agent' && conv.owner.agent_id === me().id);
  const customerName = (c) => (c && (c.name || c.email)) || 'Anonymous customer';

  /* ==================================================== 4. Session */

  function showSignin() {
    document.body.dataset.auth = 'out';
    ui.sessionBar.hidden = true;
    ui.workspace.hidden = true;
    ui.signinView.hidden = false;
    if (!ui.signinWorkspace.value) ui.signinWorkspace.value = session.workspace || config.workspace;
    (ui.signinEmail.value ? ui.signinPassword : ui.signinEmail).focus();
  }

  function beginSession(saved) {
    Object.assign(session, { token: saved.token, expiresAt: saved.expiresAt || null, agent: saved.agent, workspace: saved.workspace || '' });
    store.save();
    document.body.dataset.auth = 'in';
    ui.signinView.hidden = true;
    ui.sessionBar.hidden = false;
    ui.workspace.hidden = false;
    renderMe();
    heartbeat();
    loadTeams();
    loadQueue();
    openQueueStream();
    clearInterval(state.heartbeatTimer);
    state.heartbeatTimer = setInterval(() => {
      heartbeat();
      if (state.liveState !== 'connected') loadQueue(); // fallback while the live stream is down
    }, HEARTBEAT_MS);
  }

  /** Forgets everything about the signed-in agent: token, streams, timers, drafts. */
  function clearSession() {
    session.gen += 1;
    if (state.queueStream) state.queueStream.stop();
    state.queueStream = null;
    clearInterval(state.heartbeatTimer);
    closeConversation();
    store.clear();
    if (session.agent && !ui.signinEmail.value) ui.signinEmail.value = session.agent.email || '';
    ui.meName.textContent = '';
    Object.assign(session, { token: null, expiresAt: null, agent: null });
    state.items = [];
    state.drafts.clear();
    renderQueue();
  }

  function sessionEnded(detail) {
    clearSession();
    showSignin();
    showError(detail && !detail.startsWith('Request failed') ? `${detail} Please sign in again.` : 'Your session has ended. Please sign in again.');
  }

  async function signIn(event) {
    event.preventDefault();
    const workspace = ui.signinWorkspace.value.trim();
    const email = ui.signinEmail.value.trim();
    const password = ui.signinPassword.value;
    if (!workspace || !email || !password) {
      showError('Enter the workspace, your email and your password.');
      (!workspace ? ui.signinWorkspace : !email ? ui.signinEmail : ui.signinPassword).focus();
      return;
    }
    clearError();
    ui.signinSubmit.disabled = true;
    ui.signinSubmit.setAttribute('aria-busy', 'true');
    try {
      const data = await api('POST', paths.session, { body: { workspace, email, password }, auth: false });
      if (!data || typeof data.token !== 'string' || !data.agent) throw new ApiError(500, { detail: 'The server returned an unexpected response.' });
      ui.signinPassword.value = '';
      beginSession({ token: data.token, expiresAt: data.expires_at, agent: data.agent, workspace });
      ui.queueFilter.focus();
    } catch (err) {
      handleError(err, 'Could not sign in.');
      ui.signinPassword.focus();
    } finally {
      ui.signinSubmit.disabled = false;
      ui.signinSubmit.removeAttribute('aria-busy');
    }
  }

  async function signOut() {
    ui.signout.disabled = true;
    try { await api('DELETE', paths.session); } catch (_) { /* signed out locally either way */ }
    ui.signout.disabled = false;
    if (!session.token) return; // a 401 already ended it
    clearSession();
    clearError();
    showSignin();
  }

  /** Renews the agent's ownership leases; with `available`, also changes availability. */
  async function heartbeat(available) {
    if (!session.token) return;
    const expires = parseDate(session.expiresAt);
    if (expires && expires.getTime() <= Date.now()) { sessionEnded(null); return; }
    if (state.heartbeatBusy && available === undefined) return;
    state.heartbeatBusy = true;
    try {
      // Leases are renewed only while the person is at the console (recent input), so a
      // conversation held by someone who walked away returns to its queue.
      const body = { active: Date.now() - state.lastActivity < IDLE_MS };
      if (available !== undefined) body.available = available;
      const data = await api('POST', paths.heartbeat, { body });
      if (data && data.agent) { session.agent = data.agent; store.save(); }
      renderMe();
    } catch (err) {
      if (available !== undefined) { handleError(err, 'Could not change your availability.'); renderMe(); }
    } finally {
      state.heartbeatBusy = false;
    }
  }

  function renderMe() {
    const a = me();
    ui.meName.textContent = a.name || a.email || '';
    ui.meRole.hidden = a.role !== 'admin';
    ui.available.checked = Boolean(a.available);
    ui.available.disabled = false;
  }

  async function loadTeams() {
    try {
      const data = await api('GET', paths.teams);
      state.teams = data && Array.isArray(data.teams) ? data.teams : [];
      renderTeamSelect();
      renderQueueFilter();
      updateActions();
    } catch (err) {
      handleError(err, 'Could not load the teams.');
    }
  }

  function teamLabel(name) {
    if (name === null || name === undefined) return 'No team';
    const t = state.teams.find((x) => x.name === name);
    return (t && t.title) || name;
  }

  function renderTeamSelect() {
    const sel = ui.transferTeam;
    const prev = sel.value;
    const current = cur && cur.caseFile ? cur.caseFile.conversation.team : null;
    sel.replaceChildren(...state.teams.map((t) => {
      const label = t.title ? `${t.title} (${t.name})` : t.name;
      return h('option', { value: t.name }, t.name === current ? `${label} — current` : label);
    }));
    if (state.teams.length === 0) sel.append(h('option', { value: '', disabled: true }, 'No teams configured'));
    const other = state.teams.find((t) => t.name !== current);
    if (prev && state.teams.some((t) => t.name === prev)) sel.value = prev;
    else if (other) sel.value = other.name;
  }

  /* ====================================================== 5. Queue */

  async function loadQueue() {
    try {
      const data = await api('GET', paths.queue);
      setQueue(data && data.items);
    } catch (err) {
      handleError(err, 'Could not load the queue.');
    }
  }

  function openQueueStream() {
    if (state.queueStream) state.queueStream.stop();
    const gen = session.gen;
    let lastId = null;
    setLive('connecting');
    state.queueStream = new EventStream({
      url: paths.stream,
      getLastEventId: () => lastId,
      onEvent: (ev) => {
        if (gen !== session.gen) return;
        if (ev.id) lastId = ev.id;
        if (ev.type === 'queue') {
          try { setQueue(JSON.parse(ev.data).items); } catch (_) { /* malformed: ignore */ }
        }
      },
      onState: (s) => { if (gen === session.gen) setLive(s); },
      onFatal: (status) => {
        if (gen !== session.gen) return;
        if (status === 401) sessionEnded(null);
        else { setLive('reconnecting'); showError(`Live queue updates are unavailable (HTTP ${status}).`); }
      },
    });
  }

  function setLive(s) {
    state.liveState = s;
    ui.liveStatus.dataset.state = s;
    ui.liveStatusText.textContent = s === 'connected' ? 'Live' : s === 'connecting' ? 'Connecting…' : 'Reconnecting…';
  }

  const itemTeam = (item) => item.conversation.team || (item.handoff && item.handoff.team) || null;
  const itemPriority = (item) => item.conversation.priority || (item.handoff && item.handoff.priority) || 'normal';

  function setQueue(items) {
    const now = Date.now();
    const valid = (Array.isArray(items) ? items : []).filter((i) => i && i.conversation && typeof i.conversation.id === 'string');
    state.items = valid.map((i) => {
      // The server's waiting_seconds is anchored to our clock on arrival (no clock-skew issues).
      const queuedAt = i.conversation.status === 'pending_human' ? parseDate(i.conversation.queued_at) : null;
      const since = Number.isFinite(i.waiting_seconds) ? now - i.waiting_seconds * 1000 : queuedAt ? queuedAt.getTime() : null;
      return Object.assign({}, i, { since });
    });
    renderQueueFilter();
    renderQueue();
    // The open conversation changed but its live stream has not said so (yet): re-read it.
    const open = cur && cur.caseFile && state.items.find((i) => i.conversation.id === cur.id);
    if (open && (open.conversation.updated_at !== cur.caseFile.conversation.updated_at
      || open.conversation.status !== cur.caseFile.conversation.status)) scheduleRefresh();
  }

  function renderQueueFilter() {
    const sel = ui.queueFilter;
    const names = new Set(state.items.map(itemTeam));
    if (!state.filter.startsWith('*')) names.add(state.filter); // keep the chosen team even when empty
    if (state.filter === '*none') names.add(null);
    const teams = Array.from(names).filter((n) => n !== null).sort((a, b) => teamLabel(a).localeCompare(teamLabel(b)));
    while (sel.options.length > 2) sel.remove(2); // keep "All teams" and "Mine"
    for (const name of teams) sel.append(h('option', { value: name }, teamLabel(name)));
    if (names.has(null)) sel.append(h('option', { value: '*none' }, 'No team'));
    sel.value = state.filter;
  }

  /** Filtered; by priority (urgent first), then longest waiting first. */
  function visibleItems() {
    const f = state.filter;
    const rank = (i) => PRIORITY_RANK[itemPriority(i)] ?? 2;
    const since = (i) => (i.since === null ? Number.POSITIVE_INFINITY : i.since);
    return state.items
      .filter((i) => f === '*all' || (f === '*mine' ? isMine(i.conversation) : itemTeam(i) === (f === '*none' ? null : f)))
      .sort((a, b) => rank(a) - rank(b) || (since(a) === since(b) ? 0 : since(a) < since(b) ? -1 : 1));
  }

  function queueRow(item) {
    const conv = item.conversation;
    const hf = item.handoff;
    const priority = itemPriority(item);
    const meta = [h('span', null, teamLabel(itemTeam(item)))];
    if (item.since !== null) {
      const s = (Date.now() - item.since) / 1000;
      meta.push(h('span', { class: 'dot-sep' }, h('span', { class: 'visually-hidden' }, 'waiting '),
        h('span', { class: 'queue-item__wait', dataset: { since: String(item.since), long: String(s >= LONG_WAIT_S) } }, duration(s))));
    }
    if (conv.status === 'human_active') {
      const owner = isMine(conv) ? 'You' : item.owner_name || (conv.owner && conv.owner.name) || 'An agent';
      meta.push(h('span', { class: 'dot-sep queue-item__owner' }, owner));
    } else if (conv.status !== 'pending_human') {
      meta.push(h('span', { class: 'dot-sep' }, STATUS_LABELS[conv.status] || conv.status));
    }
    if (Number.isFinite(item.position)) meta.push(h('span', { class: 'dot-sep' }, `#${item.position}`));
    const reason = (hf && hf.reason) || conv.subject || '';
    return h('li', null, h('button', {
      type: 'button',
      class: 'queue-item',
      dataset: { conversationId: conv.id, status: conv.status },
      'aria-current': cur && cur.id === conv.id ? 'true' : null,
      onclick: () => openConversation(conv.id, true),
    },
    h('span', { class: 'queue-item__top' },
      h('span', { class: 'queue-item__name' }, customerName(item.customer)),
      hf && hf.suggested_agent && hf.suggested_agent.id === me().id ? h('span', { class: 'badge badge--suggested' }, 'Suggested for you') : null,
      h('span', { class: 'badge', dataset: { priority } }, priority)),
    h('span', { class: 'queue-item__meta' }, meta),
    reason ? h('span', { class: 'queue-item__reason', title: reason }, reason) : null));
  }

  function renderQueue() {
    const active = document.activeElement;
    const focusedId = active && active.classList.contains('queue-item') ? active.dataset.conversationId : null;
    const items = visibleItems();
    // Rows keep their element across updates (by conversation id): focus, hover and references survive.
    const existing = new Map(Array.from(ui.queue.children, (li) => [li.firstChild.dataset.conversationId, li]));
    const rows = items.map((item) => {
      const fresh = queueRow(item);
      const old = existing.get(item.conversation.id);
      if (!old) return fresh;
      const [btn, next] = [old.firstChild, fresh.firstChild];
      btn.replaceChildren(...next.childNodes);
      btn.dataset.status = next.dataset.status;
      if (next.hasAttribute('aria-current')) btn.setAttribute('aria-current', 'true');
      else btn.removeAttribute('aria-current');
      return old;
    });
    if (rows.length !== ui.queue.children.length || rows.some((li, i) => ui.queue.children[i] !== li)) ui.queue.replaceChildren(...rows);
    ui.queueCount.textContent = `(${items.length})`;
    ui.queueEmpty.hidden = items.length > 0;
    ui.queueEmpty.textContent = state.items.length ? 'Nothing matches this filter.' : 'No conversations waiting.';
    if (focusedId) { // keep keyboard focus on the same row across re-renders
      const row = ui.queue.querySelector(`.queue-item[data-conversation-id="${CSS.escape(focusedId)}"]`);
      if (row) row.focus();
    }
  }

  /* =============================================== 6. Conversation */

  function draftOf(id) {
    if (!state.drafts.has(id)) state.drafts.set(id, { reply: '', note: '', replyKey: null, replyKeyText: null });
    return state.drafts.get(id);
  }

  function openConversation(id, fromQueue) {
    if (!id) return;
    if (cur && cur.id === id) { scheduleRefresh(); return; }
    closeConversation();
    cur = {
      id, caseFile: null, stream: null, lastEventId: null, inflight: null, again: false,
      refreshTimer: 0, typingTimer: 0, busy: false, replyBusy: false, noteBusy: false,
    };
    ui.conversation.dataset.conversationId = id;
    ui.convPlaceholder.hidden = true;
    ui.convBody.hidden = false;
    ui.convTitle.textContent = 'Loading…';
    ui.convMeta.textContent = '';
    ui.transcript.textContent = '';
    const d = draftOf(id);
    ui.replyText.value = d.reply;
    ui.noteText.value = d.note;
    autoGrow(ui.replyText);
    autoGrow(ui.noteText);
    for (const row of ui.queue.querySelectorAll('.queue-item')) {
      if (row.dataset.conversationId === id) row.setAttribute('aria-current', 'true');
      else row.removeAttribute('aria-current');
    }
    updateActions();
    loadCase();
    openConversationStream(cur);
    if (fromQueue && window.matchMedia('(max-width: 999px)').matches) ui.conversation.scrollIntoView({ block: 'start' });
  }

  function closeConversation() {
    if (!cur) return;
    const d = draftOf(cur.id);
    d.reply = ui.replyText.value;
    d.note = ui.noteText.value;
    if (cur.stream) cur.stream.stop();
    clearTimeout(cur.refreshTimer);
    clearTimeout(cur.typingTimer);
    cur = null;
    delete ui.conversation.dataset.conversationId;
    delete ui.conversation.dataset.status;
    ui.convBody.hidden = true;
    ui.convPlaceholder.hidden = false;
    ui.contextBody.hidden = true;
    ui.contextEmpty.hidden = false;
    ui.typing.hidden = true;
    ui.convConnection.hidden = true;
    hideInlineForms();
    for (const row of ui.queue.querySelectorAll('.queue-item[aria-current]')) row.removeAttribute('aria-current');
  }

  /** Fetches the case file; calls made while one is in flight coalesce into one more fetch. */
  function loadCase() {
    const c = cur;
    if (!c) return Promise.resolve();
    if (c.inflight) { c.again = true; return c.inflight; }
    c.inflight = (async () => {
      try {
        const data = await api('GET', paths.conversation(c.id));
        if (c === cur && data && data.conversation) renderCase(data);
      } catch (err) {
        if (c !== cur) return;
        if (err instanceof ApiError && (err.status === 404 || err.status === 403)) {
          closeConversation();
          showError(err.detail, err.requestId);
        } else handleError(err, 'Could not load the conversation.');
      } finally {
        c.inflight = null;
        if (c.again && c === cur) { c.again = false; loadCase(); }
      }
    })();
    return c.inflight;
  }

  function scheduleRefresh() {
    const c = cur;
    if (!c) return;
    clearTimeout(c.refreshTimer);
    c.refreshTimer = setTimeout(() => { if (c === cur) loadCase(); }, REFRESH_DEBOUNCE_MS);
  }

  /** Staff see every stored event; any of them means the case file changed. */
  function openConversationStream(c) {
    c.stream = new EventStream({
      url: paths.events(c.id),
      getLastEventId: () => c.lastEventId,
      onEvent: (ev) => {
        if (c !== cur) return;
        let type = ev.type;
        if (type === 'message') { try { type = JSON.parse(ev.data).type || type; } catch (_) { /* keep */ } }
        if (type === 'typing' || type === 'message.delta') { showTyping(c); return; } // live only, no id
        if (ev.id && /^\d+$/.test(ev.id)) c.lastEventId = ev.id; // the server accepts only sequence numbers
        if (type === 'message.created') hideTyping(c);
        scheduleRefresh();
      },
      onState: (s) => { if (c === cur) ui.convConnection.hidden = s !== 'reconnecting'; },
      onFatal: (status) => {
        if (c !== cur) return;
        if (status === 401) sessionEnded(null);
        else showError(`Live updates for this conversation are unavailable (HTTP ${status}).`);
      },
    });
  }

  const nearBottom = () => ui.convScroller.scrollHeight - ui.convScroller.scrollTop - ui.convScroller.clientHeight < 120;
  const scrollToBottom = () => { ui.convScroller.scrollTop = ui.convScroller.scrollHeight; };

  function showTyping(c) {
    const stick = nearBottom();
    ui.typing.hidden = false;
    if (stick) scrollToBottom();
    clearTimeout(c.typingTimer);
    c.typingTimer = setTimeout(() => hideTyping(c), TYPING_TIMEOUT_MS);
  }

  function hideTyping(c) {
    clearTimeout(c.typingTimer);
    if (c === cur) ui.typing.hidden = true;
  }

  /* ============================================ 7. Case file rendering */

  function renderCase(cf) {
    const first = !cur.caseFile;
    cur.caseFile = cf;
    const conv = cf.conversation;
    const priority = conv.priority || 'normal';
    ui.conversation.dataset.status = conv.status;
    ui.convTitle.textContent = customerName(cf.customer);
    ui.convStatus.dataset.status = conv.status;
    ui.convStatusLabel.textContent = STATUS_LABELS[conv.status] || conv.status;
    ui.convPriority.dataset.priority = priority;
    ui.convPriority.textContent = priority;

    const owner = conv.owner || {};
    const meta = [conv.subject, conv.channel && `via ${conv.channel}`, `team: ${teamLabel(conv.team)}`,
      owner.kind === 'agent' ? (isMine(conv) ? 'owned by you' : `owned by ${cf.owner_name || owner.name || 'another agent'}`)
        : owner.kind === 'queue' ? `in the ${teamLabel(owner.team || conv.team)} queue` : 'handled by the AI'];
    ui.convMeta.replaceChildren(meta.filter(Boolean).join(' · '), ' · opened ', relTime(conv.created_at) || '');
    if (isMine(conv) && parseDate(conv.lease_until)) ui.convMeta.append(' · lease ends ', relTime(conv.lease_until));

    renderTranscript(cf, first);
    renderContext(cf);
    renderTeamSelect();
    updateActions();
  }

  function buildMessage(m, key, cf) {
    const author = ['customer', 'ai', 'agent', 'system'].includes(m.author) ? m.author : 'system';
    let label = 'System';
    if (author === 'customer') label = customerName(cf.customer);
    else if (author === 'ai') label = 'AI';
    else if (author === 'agent') {
      label = `${(m.sender && m.sender.name) || 'Agent'}${m.sender && m.sender.agent_id === me().id ? ' (you)' : ''}`;
    }
    const cites = Array.isArray(m.citations) ? m.citations : [];
    const sources = cites.length > 0 && h('ol', { class: 'msg__sources', 'aria-label': 'Sources' },
      cites.map((c) => h('li', { value: Number.isInteger(c.n) ? c.n : null }, link(c.url, c.title || c.document_id || 'Source'))));
    return h('div', { class: `msg msg--${author}`, dataset: { author, key, messageId: m.id } },
      author === 'system' ? null : h('div', { class: 'msg__author', 'aria-hidden': 'true' }, label),
      h('div', { class: 'msg__bubble' }, h('span', { class: 'visually-hidden' }, `${label}: `), m.text || '', sources),
      h('div', { class: 'msg__meta' }, relTime(m.created_at)));
  }

  function buildNote(n, key) {
    const name = (n.author && n.author.name) || 'Agent';
    return h('div', { class: 'note', dataset: { author: 'note', key } },
      h('div', { class: 'msg__author', 'aria-hidden': 'true' }, `Internal note · ${name}`),
      h('div', { class: 'msg__bubble' }, h('span', { class: 'visually-hidden' }, `Internal note by ${name}: `), n.text || ''),
      h('div', { class: 'msg__meta' }, relTime(n.created_at)));
  }

  /** Messages and notes by time. Appends only what is new while the shown list is a prefix of
   *  the new one (screen readers then announce just the additions); otherwise rebuilds. */
  function renderTranscript(cf, first) {
    const entries = [];
    (Array.isArray(cf.messages) ? cf.messages : []).forEach((m, i) => {
      entries.push({ key: `m:${m.id}`, at: Date.parse(m.created_at) || 0, i, build: (k) => buildMessage(m, k, cf) });
    });
    (Array.isArray(cf.notes) ? cf.notes : []).forEach((n, i) => {
      const key = `n:${n.created_at}:${(n.author && n.author.agent_id) || ''}:${(n.text || '').length}`;
      entries.push({ key, at: Date.parse(n.created_at) || 0, i: 1e6 + i, build: (k) => buildNote(n, k) });
    });
    entries.sort((a, b) => a.at - b.at || a.i - b.i);
    const shown = Array.from(ui.transcript.children, (el) => el.dataset.key);
    const isPrefix = shown.length <= entries.length && shown.every((k, i) => k === entries[i].key);
    const stick = first || nearBottom();
    if (!isPrefix) ui.transcript.replaceChildren();
    for (const e of entries.slice(isPrefix ? shown.length : 0)) ui.transcript.append(e.build(e.key));
    if (stick) scrollToBottom();
  }

  function kv(pairs) {
    return h('dl', { class: 'kv' }, pairs.filter(([, v]) => v !== null && v !== undefined && v !== '')
      .map(([k, v]) => [h('dt', null, k), h('dd', null, v)]));
  }

  const muted = (text) => h('p', { class: 'muted' }, text);

  function collapsible(title, lines) {
    if (!Array.isArray(lines) || lines.length === 0) return null;
    return h('details', null, h('summary', null, `${title} (${lines.length})`), h('ul', null, lines.map((l) => h('li', null, String(l)))));
  }

  function table(list, empty, heads, row) {
    if (!Array.isArray(list) || list.length === 0) return muted(empty);
    return h('table', { class: 'table' },
      h('thead', null, h('tr', null, heads.map((x) => h('th', { scope: 'col', class: x === 'Total' ? 'num' : null }, x)))),
      h('tbody', null, list.map((item) => h('tr', null,
        row(item).map((cell, i) => h('td', { class: heads[i] === 'Total' ? 'num' : null }, cell))))));
  }

  /** Rebuilds a context section only when its data changed: open <details>, scroll
   *  positions and focused buttons survive the refreshes that every live event causes. */
  const sectionData = new WeakMap();
  function section(el, data, build) {
    const sig = JSON.stringify([data, me().id, state.teams]);
    if (sectionData.get(el) === sig) return;
    sectionData.set(el, sig);
    el.replaceChildren(...[build()].flat());
  }

  function renderContext(cf) {
    ui.contextEmpty.hidden = true;
    ui.contextBody.hidden = false;
    const hf = cf.handoff;
    section(ui.ctxHandoff, hf, () => {
      if (!hf) return muted('No handoff for this conversation.');
      const s = hf.summary || {};
      const sa = hf.suggested_agent;
      return [
        kv([['Reason', hf.reason], ['Trigger', TRIGGER_LABELS[hf.trigger] || hf.trigger], ['Team', teamLabel(hf.team)],
          ['Priority', capitalize(hf.priority)], ['Suggested', sa && `${sa.name || 'An agent'}${sa.id === me().id ? ' (you)' : ''}`],
          ['Requested', relTime(hf.created_at)]]),
        s.text ? h('pre', { class: 'summary-text', tabindex: '0', 'aria-label': 'Handoff summary' }, s.text) : null,
        s.wants ? h('p', null, h('strong', null, 'Wants: '), s.wants) : null,
        collapsible('What was tried', s.tried),
        collapsible('Routing', hf.routing),
        collapsible('Customer facts', s.customer),
        s.generated_by ? muted(`Summary: ${s.generated_by}`) : null,
      ];
    });

    const suggestions = Array.isArray(cf.suggestions) ? cf.suggestions : [];
    section(ui.ctxSuggestions, suggestions, () => (suggestions.length === 0 ? muted('No suggestions.') : suggestions.map((sg, i) => {
      const n = Array.isArray(sg.citations) ? sg.citations.length : 0;
      return h('div', { class: 'suggestion' },
        h('p', { class: 'suggestion__text' }, sg.text || ''),
        h('div', { class: 'suggestion__foot' },
          h('span', null, n ? `${n} source${n === 1 ? '' : 's'}` : ''),
          h('button', {
            type: 'button', class: 'secondary-button', 'aria-label': `Use suggested reply ${i + 1}`, onclick: () => useSuggestion(sg.text || ''),
          }, 'Use')));
    })));

    const c = cf.customer;
    section(ui.ctxCustomer, c, () => (c ? kv([['Name', c.name], ['Email', c.email], ['Phone', c.phone], ['Tier', c.tier]])
      : muted('No customer profile.')));
    section(ui.ctxOrders, cf.orders, () => table(cf.orders, 'No orders.', ['Order', 'Status', 'Total', 'Placed'],
      (o) => [String(o.number ?? ''), o.status || '', money(o.total, o.currency), relTime(o.placed_at)]));
    section(ui.ctxTickets, cf.tickets, () => table(cf.tickets, 'No tickets.', ['Ticket', 'Subject', 'Status', 'Priority'],
      (t) => [String(t.number ?? ''), t.subject || '', t.status || '', t.priority || '']));

    const seen = new Set();
    const sources = [...(Array.isArray(cf.sources) ? cf.sources : []), ...((hf && hf.summary && hf.summary.sources) || [])]
      .filter((s) => s && !seen.has(s.document_id) && seen.add(s.document_id));
    section(ui.ctxSources, sources, () => (sources.length === 0 ? muted('No sources cited.')
      : h('ul', null, sources.map((s) => h('li', null, link(s.url, s.title || s.document_id))))));
  }

  /* ========================================= 8. Actions & composers */

  /** Claim: pending_human / ai_active. Reply, hand back, transfer, release, resolve: owner only. Notes: always. */
  function updateActions() {
    const conv = cur && cur.caseFile ? cur.caseFile.conversation : null;
    const busy = !cur || Boolean(cur.busy);
    const mine = isMine(conv);
    ui.claim.disabled = busy || !conv || !(conv.status === 'pending_human' || conv.status === 'ai_active');
    for (const b of [ui.release, ui.resolve, ui.handback, ui.transfer, ui.handbackConfirm]) b.disabled = busy || !mine;
    ui.transferConfirm.disabled = busy || !mine || state.teams.length === 0;
    ui.replySend.disabled = !cur || cur.replyBusy || !mine;
    ui.noteSend.disabled = !cur || cur.noteBusy;
    for (const b of [ui.claim, ui.release, ui.resolve, ui.handbackConfirm, ui.transferConfirm]) {
      if (cur && cur.busy === b.id) b.setAttribute('aria-busy', 'true');
      else b.removeAttribute('aria-busy');
    }
    ui.replyHint.textContent = mine ? 'Enter to send · Shift+Enter for a new line'
      : !ui.claim.disabled ? 'Claim the conversation to reply.' : 'Only the owner can reply.';
    if (!mine && conv) hideInlineForms();
  }

  /** Runs one conversation action, then re-reads the case file and the queue (also after errors:
   *  a 409 usually means someone else acted first). */
  async function runAction(action, body, button) {
    const c = cur;
    if (!c || c.busy) return;
    c.busy = button.id;
    updateActions();
    clearError();
    try {
      await api('POST', paths.action(c.id, action), body === undefined ? {} : { body });
      if (c !== cur) return;
      hideInlineForms();
      ui.handbackNote.value = '';
      ui.transferNote.value = '';
      if (action === 'claim') ui.replyText.focus();
    } catch (err) {
      handleError(err, 'The action failed.');
    } finally {
      c.busy = false;
      if (c === cur) { updateActions(); loadCase(); }
      if (session.token) loadQueue();
    }
  }

  function hideInlineForms() {
    for (const [form, toggle] of [[ui.handbackForm, ui.handback], [ui.transferForm, ui.transfer]]) {
      form.hidden = true;
      toggle.setAttribute('aria-expanded', 'false');
    }
  }

  function toggleInlineForm(form, toggle, focusEl) {
    const show = form.hidden;
    hideInlineForms();
    if (!show) return;
    form.hidden = false;
    toggle.setAttribute('aria-expanded', 'true');
    if (form === ui.transferForm) {
      ui.transferTeam.selectedIndex = -1; // preselect a team other than the current one
      renderTeamSelect();
      loadTeams();
    }
    focusEl.focus();
  }

  async function sendReply() {
    const c = cur;
    if (!c || ui.replySend.disabled) return;
    const text = ui.replyText.value.trim();
    if (!text) { ui.replyText.focus(); return; }
    const d = draftOf(c.id);
    // One Idempotency-Key per draft: retrying the same text never posts it twice.
    if (!d.replyKey || d.replyKeyText !== text) { d.replyKey = uuid(); d.replyKeyText = text; }
    const key = d.replyKey;
    c.replyBusy = true;
    updateActions();
    clearError();
    try {
      await withRetry(() => api('POST', paths.action(c.id, 'reply'), { body: { text }, idempotencyKey: key }));
      d.replyKey = null;
      d.replyKeyText = null;
      if (c === cur && ui.replyText.value.trim() === text) { ui.replyText.value = ''; autoGrow(ui.replyText); }
      else if (c !== cur && d.reply.trim() === text) d.reply = '';
      if (c === cur) loadCase();
    } catch (err) {
      handleError(err, 'Could not send the reply.');
    } finally {
      c.replyBusy = false;
      if (c === cur) updateActions();
    }
  }

  async function sendNote() {
    const c = cur;
    if (!c || ui.noteSend.disabled) return;
    const text = ui.noteText.value.trim();
    if (!text) { ui.noteText.focus(); return; }
    c.noteBusy = true;
    updateActions();
    clearError();
    try {
      await api('POST', paths.action(c.id, 'notes'), { body: { text } });
      if (c === cur && ui.noteText.value.trim() === text) { ui.noteText.value = ''; autoGrow(ui.noteText); }
      else if (c !== cur) draftOf(c.id).note = '';
      if (c === cur) loadCase();
    } catch (err) {
      handleError(err, 'Could not add the note.');
    } finally {
      c.noteBusy = false;
      if (c === cur) updateActions();
    }
  }

  function useSuggestion(text) {
    ui.replyText.value = text;
    autoGrow(ui.replyText);
    ui.replyText.focus();
    ui.replyText.setSelectionRange(text.length, text.length);
  }

  function autoGrow(el) {
    el.style.height = 'auto';
    el.style.height = `${Math.min(el.scrollHeight + 2, 200)}px`;
  }

  /** Enter sends, Shift+Enter is a newline; never mid-IME composition. */
  function enterSends(textarea, send) {
    textarea.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing && e.keyCode !== 229) { e.preventDefault(); send(); }
    });
    textarea.addEventListener('input', () => autoGrow(textarea));
  }

  /* =================================================== 9. Wiring & boot */

  function bindEvents() {
    ui.signinForm.addEventListener('submit', signIn);
    ui.signout.addEventListener('click', signOut);
    ui.consoleErrorDismiss.addEventListener('click', clearError);
    ui.available.addEventListener('change', () => { ui.available.disabled = true; heartbeat(ui.available.checked); });
    ui.queueFilter.addEventListener('change', () => { state.filter = ui.queueFilter.value; renderQueue(); });
    ui.queue.addEventListener('keydown', (e) => { // arrow keys move between rows
      if (e.key !== 'ArrowDown' && e.key !== 'ArrowUp') return;
      const rows = Array.from(ui.queue.querySelectorAll('.queue-item'));
      const i = rows.indexOf(document.activeElement);
      if (i < 0) return;
      e.preventDefault();
      rows[Math.max(0, Math.min(rows.length - 1, i + (e.key === 'ArrowDown' ? 1 : -1)))].focus();
    });

    ui.claim.addEventListener('click', () => runAction('claim', undefined, ui.claim));
    ui.release.addEventListener('click', () => runAction('release', undefined, ui.release));
    ui.resolve.addEventListener('click', () => runAction('resolve', undefined, ui.resolve));
    ui.handback.addEventListener('click', () => toggleInlineForm(ui.handbackForm, ui.handback, ui.handbackNote));
    ui.transfer.addEventListener('click', () => toggleInlineForm(ui.transferForm, ui.transfer, ui.transferTeam));
    ui.handbackForm.addEventListener('submit', (e) => {
      e.preventDefault();
      if (!ui.handbackConfirm.disabled) runAction('hand-back', { note: ui.handbackNote.value.trim() || null }, ui.handbackConfirm);
    });
    ui.transferForm.addEventListener('submit', (e) => {
      e.preventDefault();
      if (ui.transferConfirm.disabled) return;
      const team = ui.transferTeam.value;
      if (!team) { showError('Choose a team to transfer to.'); ui.transferTeam.focus(); return; }
      runAction('transfer', { team, note: ui.transferNote.value.trim() || null }, ui.transferConfirm);
    });
    for (const [form, toggle] of [[ui.handbackForm, ui.handback], [ui.transferForm, ui.transfer]]) {
      const close = () => { hideInlineForms(); toggle.focus(); };
      form.querySelector('[data-cancel]').addEventListener('click', close);
      form.addEventListener('keydown', (e) => { if (e.key === 'Escape') { e.preventDefault(); close(); } });
    }

    ui.replyForm.addEventListener('submit', (e) => { e.preventDefault(); sendReply(); });
    ui.noteForm.addEventListener('submit', (e) => { e.preventDefault(); sendNote(); });
    enterSends(ui.replyText, sendReply);
    enterSends(ui.noteText, sendNote);

    window.addEventListener('online', () => {
      if (state.queueStream) state.queueStream.wake();
      if (cur && cur.stream) cur.stream.wake();
    });
    // Background tabs throttle timers: renew the leases as soon as the tab is visible again.
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState === 'visible' && session.token) {
        state.lastActivity = Date.now();
        heartbeat();
      }
    });
    // Any input counts as activity (see IDLE_MS).
    for (const type of ['keydown', 'pointerdown', 'pointermove', 'wheel', 'focusin']) {
      document.addEventListener(type, () => { state.lastActivity = Date.now(); }, { passive: true, capture: true });
    }
  }

  function boot() {
    ui.brandTitle.textContent = config.title;
    if (document.title.includes('{{')) document.title = `${config.title} — Console`;
    ui.signinWorkspace.value = config.workspace;
    bindEvents();
    setInterval(refreshTimes, TICK_MS);
    const saved = store.load();
    const expires = saved && parseDate(saved.expiresAt);
    if (saved && !(expires && expires.getTime() <= Date.now())) {
      ui.signinWorkspace.value = saved.workspace || config.workspace;
      beginSession(saved);
    } else {
      store.clear();
      showSignin();
    }
  }

  boot();
})();
