/*
 * Concierge web chat — customer front end.
 *
 * Plain ES2020, no dependencies, no build step. Everything lives in one IIFE;
 * nothing is added to `window`.
 *
 * Sections:
 *   1. Config        — title / workspace / embed mode from meta tags + URL
 *   2. Utilities     — uuid, sleep, backoff, DOM builder
 *   3. store         — localStorage persistence of {conversationId, token, lastEventId}
 *   4. api()         — JSON fetch wrapper with problem+json errors and retries
 *   5. EventStream   — fetch()-based Server-Sent Events reader with reconnect
 *   6. Rendering     — safe DOM building for messages, citations, sources
 *   7. Conversation  — create / resume / reset, status, handoff
 *   8. Sending       — optimistic bubbles, idempotent retries
 *   9. Event handling— message.created / message.delta / status.changed / typing
 *  10. UI wiring     — composer, buttons, embed messaging, boot
 *
 * Server text is NEVER assigned to innerHTML: all text goes through text
 * nodes, and links are only created for http(s) URLs.
 */
(() => {
  'use strict';

  /* ====================================================== 1. Config */

  /** Unsubstituted template placeholders such as "{{TITLE}}" count as empty. */
  const PLACEHOLDER_RE = /^\{\{\s*[A-Z_]+\s*\}\}$/;

  function readMeta(name) {
    const el = document.querySelector(`meta[name="${name}"]`);
    const value = el ? (el.getAttribute('content') || '').trim() : '';
    return PLACEHOLDER_RE.test(value) ? '' : value;
  }

  const params = new URLSearchParams(window.location.search);

  const config = {
    title: readMeta('concierge-title') || 'Support',
    // ?workspace=slug overrides the meta tag (used by the embeddable widget).
    workspace: (params.get('workspace') || '').trim() || readMeta('concierge-workspace'),
    embed: params.get('embed') === '1',
  };

  const STATUS_LABELS = {
    ai_active: 'AI assistant',
    pending_human: 'Waiting for a person',
    human_active: 'With an agent',
    resolved: 'Resolved',
    closed: 'Closed',
  };

  const AUTHOR_LABELS = {
    customer: 'You',
    ai: 'Assistant',
    agent: 'Support agent',
    system: 'Notice',
  };

  /** HTTP statuses meaning "this conversation/token is gone": start afresh. */
  const LOST_STATUSES = new Set([401, 403, 404]);
  /** Statuses worth retrying with the same Idempotency-Key. */
  const RETRYABLE_STATUSES = new Set([408, 425, 429, 502, 503, 504]);

  const SEND_ATTEMPTS = 3;
  const STREAM_BACKOFF_MIN_MS = 500;
  const STREAM_BACKOFF_MAX_MS = 10000;
  /** Keep-alives arrive every ~15 s; after this much silence assume a dead link. */
  const STREAM_IDLE_TIMEOUT_MS = 45000;
  /** Safety net: hide the typing indicator if no reply shows up. */
  const TYPING_TIMEOUT_MS = 60000;

  /* =================================================== 2. Utilities */

  /** RFC 4122 v4 UUID. crypto.randomUUID() only exists in secure contexts
   *  (https / localhost); self-hosted installs are often plain http. */
  function uuid() {
    if (window.crypto && typeof window.crypto.randomUUID === 'function') {
      try { return window.crypto.randomUUID(); } catch (_) { /* insecure context */ }
    }
    const b = new Uint8Array(16);
    window.crypto.getRandomValues(b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const hex = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  }

  /** Resolves after `ms`, or early when `signal` aborts. Returns a cancel/wake fn via `onWake`. */
  function sleep(ms, signal, onWake) {
    return new Promise((resolve) => {
      let timer = 0;
      const done = () => {
        clearTimeout(timer);
        if (signal) signal.removeEventListener('abort', done);
        resolve();
      };
      timer = setTimeout(done, ms);
      if (signal) signal.addEventListener('abort', done, { once: true });
      if (onWake) onWake(done);
    });
  }

  /** Exponential backoff with jitter: base·2^(attempt-1), capped, scaled by [0.5, 1). */
  function backoffDelay(attempt, base = STREAM_BACKOFF_MIN_MS, max = STREAM_BACKOFF_MAX_MS) {
    const exp = Math.min(max, base * 2 ** Math.max(0, attempt - 1));
    return Math.round(exp * (0.5 + Math.random() * 0.5));
  }

  /**
   * Tiny DOM builder. `attrs` keys: `class`, `dataset` (object), `on<event>`
   * (listener), anything else → setAttribute. Children: nodes or strings
   * (strings become text nodes — never parsed as HTML).
   */
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    if (attrs) {
      for (const [key, value] of Object.entries(attrs)) {
        if (value === undefined || value === null || value === false) continue;
        if (key === 'class') el.className = value;
        else if (key === 'dataset') Object.assign(el.dataset, value);
        else if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
        else el.setAttribute(key, value === true ? '' : String(value));
      }
    }
    for (const child of children.flat()) {
      if (child === undefined || child === null || child === false) continue;
      el.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return el;
  }

  /** Only http(s) URLs become links (blocks javascript:, data:, …). */
  function safeUrl(raw) {
    if (typeof raw !== 'string' || raw.trim() === '') return null;
    try {
      const url = new URL(raw, window.location.href);
      return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : null;
    } catch (_) {
      return null;
    }
  }

  const timeFormat = (() => {
    try { return new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' }); } catch (_) { return null; }
  })();

  function timeElement(iso) {
    const date = iso ? new Date(iso) : new Date();
    if (Number.isNaN(date.getTime())) return null;
    const label = timeFormat ? timeFormat.format(date) : date.toLocaleTimeString();
    return h('time', { datetime: date.toISOString(), title: date.toLocaleString() }, label);
  }

  /** Compare SSE ids: numeric when both are numbers, otherwise "newer wins". */
  function isNewerEventId(candidate, current) {
    if (current === null || current === undefined) return true;
    const a = Number(candidate);
    const b = Number(current);
    if (Number.isFinite(a) && Number.isFinite(b)) return a > b;
    return true;
  }

  /* ======================================================= 3. store */

  /** Persists the active conversation per origin + workspace. Storage can be
   *  unavailable (privacy modes, sandboxed iframes): then we just don't persist. */
  const store = {
    key: `concierge:v1:${window.location.origin}:${config.workspace || '_default'}`,

    load() {
      try {
        const value = JSON.parse(window.localStorage.getItem(this.key) || 'null');
        if (value && typeof value.conversationId === 'string' && typeof value.token === 'string') {
          return {
            conversationId: value.conversationId,
            token: value.token,
            lastEventId: value.lastEventId === undefined ? null : value.lastEventId,
          };
        }
      } catch (_) { /* corrupt or unavailable */ }
      return null;
    },

    save(value) {
      try { window.localStorage.setItem(this.key, JSON.stringify(value)); } catch (_) { /* ignore */ }
    },

    clear() {
      try { window.localStorage.removeItem(this.key); } catch (_) { /* ignore */ }
    },
  };

  /* ========================================================= 4. api */

  /** The server answered with a non-2xx status (body usually problem+json). */
  class ApiError extends Error {
    constructor(status, problem) {
      const detail = (problem && (problem.detail || problem.title)) || `Request failed (HTTP ${status}).`;
      super(detail);
      this.name = 'ApiError';
      this.status = status;
      this.problem = problem || null;
      this.detail = detail;
      this.code = problem && problem.code;
    }
  }

  /** The request never got a complete answer (offline, reset, timeout). */
  class NetworkError extends Error {
    constructor(message) {
      super(message || 'Network error');
      this.name = 'NetworkError';
    }
  }

  /** Thrown when work belongs to a conversation that has since been reset. */
  class StaleError extends Error {
    constructor() { super('stale'); this.name = 'StaleError'; }
  }

  /**
   * JSON request against the same-origin API.
   * @returns parsed JSON body (or null for empty bodies)
   * @throws ApiError | NetworkError
   */
  async function api(method, path, { body, token, idempotencyKey, signal } = {}) {
    const headers = { Accept: 'application/json, application/problem+json' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (token) headers.Authorization = `Bearer ${token}`;
    if (idempotencyKey) headers['Idempotency-Key'] = idempotencyKey;

    let response;
    let text;
    try {
      response = await fetch(path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        credentials: 'omit',
        cache: 'no-store',
        signal,
      });
      text = await response.text();
    } catch (err) {
      if (err && err.name === 'AbortError') throw err;
      throw new NetworkError(err && err.message);
    }

    let data = null;
    if (text) {
      try { data = JSON.parse(text); } catch (_) { data = null; }
    }
    if (!response.ok) throw new ApiError(response.status, data);
    return data;
  }

  function isRetryable(err) {
    return err instanceof NetworkError || (err instanceof ApiError && RETRYABLE_STATUSES.has(err.status));
  }

  /** Runs `fn` up to `attempts` times, backing off between retryable failures.
   *  Callers must reuse the same Idempotency-Key inside `fn`. `isDone()` lets
   *  the caller stop retrying early (resolves to null then). */
  async function withRetry(fn, { attempts = SEND_ATTEMPTS, isDone = () => false } = {}) {
    for (let attempt = 1; ; attempt += 1) {
      try {
        return await fn();
      } catch (err) {
        if (attempt >= attempts || !isRetryable(err)) throw err;
        await sleep(backoffDelay(attempt, 600, 4000));
        if (isDone()) return null;
      }
    }
  }

  const paths = {
    conversations: () => '/v1/conversations',
    conversation: (id) => `/v1/conversations/${encodeURIComponent(id)}`,
    messages: (id) => `/v1/conversations/${encodeURIComponent(id)}/messages`,
    handoff: (id) => `/v1/conversations/${encodeURIComponent(id)}/handoff`,
    resolve: (id) => `/v1/conversations/${encodeURIComponent(id)}/resolve`,
    events: (id) => `/v1/conversations/${encodeURIComponent(id)}/events`,
  };

  /* ================================================= 5. EventStream */

  /**
   * Server-Sent Events over fetch() (EventSource cannot send Authorization).
   * Parses the text/event-stream format per the WHATWG spec (CR, LF or CRLF
   * line endings, comments, multi-line data) and reconnects forever with
   * exponential backoff until stop() is called.
   *
   * options:
   *   url, token                 — request target
   *   getLastEventId()           — id to send as Last-Event-ID (or null)
   *   onEvent({type,data,id})    — one dispatched event
   *   onState('connected'|'reconnecting')
   *   onFatal(status)            — 401/403/404: stream will not be retried
   */
  class EventStream {
    constructor(options) {
      this.options = options;
      this.controller = new AbortController();
      this.wakeFn = null;
      this.run();
    }

    stop() {
      this.controller.abort();
    }

    /** Skip the remaining backoff delay (e.g. when the browser comes back online). */
    wake() {
      if (this.wakeFn) this.wakeFn();
    }

    async run() {
      const { signal } = this.controller;
      let attempt = 0;
      while (!signal.aborted) {
        try {
          await this.connectOnce(() => { attempt = 0; });
        } catch (err) {
          if (signal.aborted) return;
          if (err && err.fatalStatus) {
            this.options.onFatal(err.fatalStatus);
            return;
          }
        }
        if (signal.aborted) return;
        // The stream ended or failed: show the indicator and back off.
        this.options.onState('reconnecting');
        attempt += 1;
        await sleep(backoffDelay(attempt), signal, (wake) => { this.wakeFn = wake; });
        this.wakeFn = null;
      }
    }

    /** One HTTP request; resolves when the stream ends, rejects on error. */
    async connectOnce(onActivity) {
      const { url, token, getLastEventId } = this.options;
      // Per-connection controller so the idle watchdog can drop just this request.
      const local = new AbortController();
      const abortLocal = () => local.abort();
      this.controller.signal.addEventListener('abort', abortLocal, { once: true });
      let idleTimer = 0;
      const armWatchdog = () => {
        clearTimeout(idleTimer);
        idleTimer = setTimeout(abortLocal, STREAM_IDLE_TIMEOUT_MS);
      };

      try {
        const headers = { Accept: 'text/event-stream', Authorization: `Bearer ${token}` };
        const lastEventId = getLastEventId();
        if (lastEventId !== null && lastEventId !== undefined) headers['Last-Event-ID'] = String(lastEventId);

        armWatchdog();
        const response = await fetch(url, {
          headers,
          credentials: 'omit',
          cache: 'no-store',
          signal: local.signal,
        });

        if (LOST_STATUSES.has(response.status)) {
          const err = new Error(`HTTP ${response.status}`);
          err.fatalStatus = response.status;
          throw err;
        }
        const type = response.headers.get('Content-Type') || '';
        if (!response.ok || !response.body || !type.includes('text/event-stream')) {
          throw new Error(`Unexpected event stream response (HTTP ${response.status})`);
        }

        this.options.onState('connected');
        await this.read(response.body, () => {
          armWatchdog();
          onActivity();
        });
      } finally {
        clearTimeout(idleTimer);
        this.controller.signal.removeEventListener('abort', abortLocal);
        local.abort(); // release the connection if still open
      }
    }

    /** Reads and parses the byte stream, dispatching events as they complete. */
    async read(body, onChunk) {
      const reader = body.getReader();
      const decoder = new TextDecoder('utf-8'); // strips a leading BOM
      let buffer = '';
      let pending = { type: '', data: [], id: null };

      const dispatch = () => {
        const event = pending;
        pending = { type: '', data: [], id: null };
        if (event.data.length === 0) return; // nothing to dispatch
        this.options.onEvent({
          type: event.type || 'message',
          data: event.data.join('\n'),
          id: event.id,
        });
      };

      const processLine = (line) => {
        if (line === '') { dispatch(); return; }
        if (line.charCodeAt(0) === 58 /* ':' */) return; // comment / keep-alive
        const colon = line.indexOf(':');
        const field = colon === -1 ? line : line.slice(0, colon);
        let value = colon === -1 ? '' : line.slice(colon + 1);
        if (value.charCodeAt(0) === 32 /* ' ' */) value = value.slice(1);
        switch (field) {
          case 'event': pending.type = value; break;
          case 'data': pending.data.push(value); break;
          case 'id': if (!value.includes('\0')) pending.id = value; break;
          default: break; // "retry" and unknown fields: we use our own backoff
        }
      };

      /** Splits complete lines off the buffer; a trailing lone CR waits for more input. */
      const drainLines = () => {
        let start = 0;
        let i = 0;
        while (i < buffer.length) {
          const c = buffer.charCodeAt(i);
          if (c === 10 /* \n */) {
            processLine(buffer.slice(start, i));
            i += 1;
            start = i;
          } else if (c === 13 /* \r */) {
            if (i + 1 === buffer.length) break; // might be half of CRLF
            processLine(buffer.slice(start, i));
            i += buffer.charCodeAt(i + 1) === 10 ? 2 : 1;
            start = i;
          } else {
            i += 1;
          }
        }
        buffer = buffer.slice(start);
      };

      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          onChunk();
          buffer += decoder.decode(value, { stream: true });
          drainLines();
        }
        // An incomplete event at end-of-stream is discarded, per the SSE spec.
      } finally {
        reader.cancel().catch(() => {});
      }
    }
  }

  /* ======================================================= DOM refs */

  const $ = (id) => document.getElementById(id);
  const ui = {
    title: $('chat-title'),
    status: $('status'),
    statusLabel: $('status-label'),
    newConversation: $('new-conversation'),
    embedClose: $('embed-close'),
    connection: $('connection'),
    connectionText: $('connection-text'),
    scroller: $('scroller'),
    welcome: $('welcome'),
    transcript: $('transcript'),
    typing: $('typing'),
    typingLabel: $('typing-label'),
    error: $('error'),
    errorText: $('error-text'),
    errorDismiss: $('error-dismiss'),
    closedNotice: $('closed-notice'),
    closedNewConversation: $('closed-new-conversation'),
    composer: $('composer'),
    input: $('message-input'),
    send: $('send-button'),
    handoff: $('handoff-button'),
    resolve: $('resolve-button'),
    rating: $('rating'),
    ratingLabel: $('rating-label'),
  };

  /* ========================================================= state */

  const state = {
    /** Bumped on every reset; async work started under an older value is dropped. */
    generation: 0,
    conversationId: null,
    token: null,
    status: null,
    /** id of the last SSE event (with an id) that we processed. */
    lastEventId: null,
    /** In-flight conversation creation (shared by concurrent callers). */
    creating: null,
    /** Idempotency-Key for creating the conversation, reused across retries. */
    createKey: null,
    /** server message id → rendered element (dedupe). */
    rendered: new Map(),
    /** message id → { el, body, text } for AI replies still streaming. */
    provisional: new Map(),
    /** Optimistic customer messages not yet confirmed by the server. */
    outbox: [],
    /** Serialises sends (and handoff) so messages keep their order. */
    queue: Promise.resolve(),
    stream: null,
    handoffBusy: false,
    resolveBusy: false,
    /** The customer rated this conversation (the stars are then hidden). */
    rated: false,
    typingTimer: 0,
    renderSeq: 0,
  };

  /* =================================================== 6. Rendering */

  /** True when the transcript is scrolled (nearly) to the bottom. */
  function isNearBottom() {
    const s = ui.scroller;
    return s.scrollHeight - s.scrollTop - s.clientHeight < 120;
  }

  /** Runs a DOM mutation and keeps the view pinned to the bottom if it was. */
  function withAutoScroll(mutate, force = false) {
    const stick = force || isNearBottom();
    mutate();
    if (stick) ui.scroller.scrollTop = ui.scroller.scrollHeight;
  }

  function updateChrome() {
    const hasMessages = ui.transcript.childElementCount > 0;
    ui.welcome.hidden = hasMessages;
    ui.newConversation.hidden = !(hasMessages || state.conversationId);
  }

  /**
   * Appends inline text to `parent`, turning `[n]` markers into superscript
   * links for known citations and `**bold**` into <strong>.
   */
  function appendInline(parent, text, citationMap, anchorPrefix) {
    const re = /\[(\d{1,3})\]|\*\*([^*\n]+?)\*\*/g;
    let last = 0;
    let match;
    while ((match = re.exec(text)) !== null) {
      if (match.index > last) parent.append(document.createTextNode(text.slice(last, match.index)));
      if (match[2] !== undefined) {
        parent.append(h('strong', null, match[2]));
      } else {
        const n = Number(match[1]);
        const citation = citationMap.get(n);
        if (citation) {
          const url = safeUrl(citation.url);
          const title = citation.title || `Source ${n}`;
          const link = url
            ? h('a', { href: url, target: '_blank', rel: 'noopener noreferrer', title, 'aria-label': `Source ${n}: ${title}` }, String(n))
            : h('a', { href: `#${anchorPrefix}-${n}`, title, 'aria-label': `Source ${n}: ${title}` }, String(n));
          parent.append(h('sup', { class: 'citation-ref' }, link));
        } else {
          parent.append(document.createTextNode(match[0]));
        }
      }
      last = re.lastIndex;
    }
    if (last < text.length) parent.append(document.createTextNode(text.slice(last)));
  }

  /**
   * Renders message text into `container`: blank lines separate paragraphs,
   * single newlines become <br>, and lines starting with "- " (or "* ", "• ")
   * become list items.
   */
  function renderRichText(container, text, citationMap, anchorPrefix) {
    container.textContent = '';
    const lines = String(text || '').split(/\r\n|\r|\n/);
    let paragraph = null;
    let list = null;
    for (const line of lines) {
      const bullet = /^\s*[-*•]\s+(.*)$/.exec(line);
      if (bullet) {
        paragraph = null;
        if (!list) { list = h('ul'); container.append(list); }
        const item = h('li');
        appendInline(item, bullet[1], citationMap, anchorPrefix);
        list.append(item);
        continue;
      }
      list = null;
      if (line.trim() === '') { paragraph = null; continue; }
      if (paragraph) paragraph.append(h('br'));
      else { paragraph = h('p'); container.append(paragraph); }
      appendInline(paragraph, line, citationMap, anchorPrefix);
    }
  }

  function citationMapOf(message) {
    const map = new Map();
    const list = Array.isArray(message.citations) ? message.citations : [];
    for (const c of list) {
      if (c && Number.isInteger(c.n) && !map.has(c.n)) map.set(c.n, c);
    }
    return map;
  }

  /** The "Sources" block under an answer. */
  function renderSources(citationMap, anchorPrefix) {
    if (citationMap.size === 0) return null;
    const headingId = `${anchorPrefix}-title`;
    const list = h('ol', { class: 'citations', 'aria-labelledby': headingId });
    const ordered = Array.from(citationMap.values()).sort((a, b) => a.n - b.n);
    for (const c of ordered) {
      const title = c.title || `Source ${c.n}`;
      const url = safeUrl(c.url);
      list.append(h('li', { id: `${anchorPrefix}-${c.n}`, value: c.n },
        url ? h('a', { href: url, target: '_blank', rel: 'noopener noreferrer' }, title) : h('span', null, title)));
    }
    return h('div', { class: 'sources' },
      h('p', { class: 'sources__title', id: headingId }, 'Sources'),
      list);
  }

  /** Builds the element for a confirmed server message. */
  function buildMessage(message) {
    const author = AUTHOR_LABELS[message.author] ? message.author : 'system';
    const anchorPrefix = `m${(state.renderSeq += 1)}-src`;
    const body = h('div', { class: 'message__body' });

    let sources = null;
    if (author === 'customer') {
      body.textContent = message.text || ''; // pre-wrap keeps the line breaks
    } else {
      const citations = citationMapOf(message);
      renderRichText(body, message.text, citations, anchorPrefix);
      sources = renderSources(citations, anchorPrefix);
    }

    // A person's reply carries their name ("Ana · Support agent").
    const label = author === 'agent' && message.sender && message.sender.name
      ? `${message.sender.name} · ${AUTHOR_LABELS.agent}`
      : AUTHOR_LABELS[author];
    return h('div', {
      class: `message message--${author}`,
      dataset: { messageId: message.id, author },
    },
    author === 'system' ? null : h('div', { class: 'message__author', 'aria-hidden': 'true' }, label),
    h('div', { class: 'message__bubble' },
      h('span', { class: 'visually-hidden' }, `${label}: `),
      body,
      sources),
    h('div', { class: 'message__meta' }, timeElement(message.created_at)));
  }

  /** Adds a confirmed message, deduplicating by id. */
  function addMessage(message) {
    if (!message || typeof message.id !== 'string') return;
    if (state.rendered.has(message.id)) return;

    // Our own message echoed back before the POST answered: adopt the bubble.
    if (message.author === 'customer') {
      const entry = state.outbox.find((e) => !e.serverId && e.text.trim() === String(message.text || '').trim());
      if (entry) { confirmOutbox(entry, message); return; }
    }

    if (message.author === 'ai' || message.author === 'agent') hideTyping();

    const el = buildMessage(message);
    state.rendered.set(message.id, el);
    const provisional = state.provisional.get(message.id);
    withAutoScroll(() => {
      if (provisional) {
        provisional.el.replaceWith(el);
        state.provisional.delete(message.id);
      } else {
        ui.transcript.append(el);
      }
    });
    updateChrome();
  }

  /** Streams a reply piece into a provisional bubble (hidden from screen
   *  readers until the final message replaces it, to avoid chatty output). */
  function addDelta(messageId, delta) {
    if (typeof messageId !== 'string' || typeof delta !== 'string') return;
    if (state.rendered.has(messageId)) return; // final message already shown
    hideTyping();

    let p = state.provisional.get(messageId);
    if (!p) {
      const body = h('div', { class: 'message__body' });
      const el = h('div', {
        class: 'message message--ai is-streaming',
        'aria-hidden': 'true',
        dataset: { provisional: 'true', streamId: messageId },
      },
      h('div', { class: 'message__author' }, AUTHOR_LABELS.ai),
      h('div', { class: 'message__bubble' }, body));
      p = { el, body, text: '', frame: 0 };
      state.provisional.set(messageId, p);
      withAutoScroll(() => ui.transcript.append(el));
      updateChrome();
    }
    p.text += delta;

    // Coalesce re-renders to one per animation frame.
    if (!p.frame) {
      p.frame = window.requestAnimationFrame(() => {
        p.frame = 0;
        if (!p.el.isConnected) return;
        withAutoScroll(() => renderRichText(p.body, p.text, new Map(), ''));
      });
    }
  }

  function showTyping(author) {
    const who = author === 'agent' ? 'A support agent' : 'The assistant';
    ui.typingLabel.textContent = `${who} is typing…`;
    withAutoScroll(() => { ui.typing.hidden = false; });
    clearTimeout(state.typingTimer);
    state.typingTimer = setTimeout(hideTyping, TYPING_TIMEOUT_MS);
  }

  function hideTyping() {
    clearTimeout(state.typingTimer);
    ui.typing.hidden = true;
    ui.typingLabel.textContent = '';
  }

  function setConnection(connState) {
    ui.connection.dataset.state = connState;
    ui.connectionText.textContent = connState === 'reconnecting' ? 'Reconnecting…' : '';
  }

  function showError(text) {
    ui.errorText.textContent = text;
    ui.error.hidden = false;
  }

  function clearError() {
    ui.error.hidden = true;
    ui.errorText.textContent = '';
  }

  function errorText(err, fallback) {
    if (err instanceof ApiError) return err.detail;
    if (err instanceof NetworkError) return 'We could not reach the server. Please check your connection and try again.';
    return fallback;
  }

  /* ================================================= 7. Conversation */

  function setStatus(status) {
    if (!STATUS_LABELS[status]) return; // ignore unknown values
    state.status = status;
    ui.status.dataset.status = status;
    ui.statusLabel.textContent = STATUS_LABELS[status];
    updateControls();
  }

  /** Enables/disables buttons and composer based on status and activity. */
  function updateControls() {
    const status = state.status || 'ai_active';
    const closed = status === 'closed';
    ui.handoff.disabled = state.handoffBusy || status !== 'ai_active';
    ui.handoff.setAttribute('aria-busy', state.handoffBusy ? 'true' : 'false');
    ui.input.disabled = closed;
    ui.send.disabled = closed;
    ui.closedNotice.hidden = !closed;
    // "Solved" ends the conversation (writing again reopens it); then the customer may rate it.
    ui.resolve.disabled = state.resolveBusy || !state.conversationId
      || status === 'resolved' || closed;
    ui.rating.hidden = status !== 'resolved';
    for (const star of ui.rating.querySelectorAll('.rating__star')) star.hidden = state.rated;
  }

  function resolveConversation() {
    if (ui.resolve.disabled) return;
    state.resolveBusy = true;
    state.rated = false;
    ui.ratingLabel.textContent = 'Glad it is solved. How did we do?';
    updateControls();
    clearError();
    const generation = state.generation;
    enqueue(async () => {
      try {
        const conversation = await withRetry(() => api('POST', paths.resolve(state.conversationId), {
          token: state.token,
        }));
        if (generation !== state.generation) return;
        if (conversation && conversation.status) setStatus(conversation.status);
      } catch (err) {
        if (generation !== state.generation || err instanceof StaleError) return;
        showError(errorText(err, 'Could not mark the conversation as solved. Please try again.'));
      } finally {
        if (generation === state.generation) {
          state.resolveBusy = false;
          updateControls();
        }
      }
    });
  }

  async function rate(stars) {
    if (!state.conversationId || state.rated) return;
    const generation = state.generation;
    try {
      await withRetry(() => api('POST', paths.resolve(state.conversationId), {
        body: { rating: stars },
        token: state.token,
      }));
      if (generation !== state.generation) return;
      state.rated = true;
      ui.ratingLabel.textContent = 'Thank you for your feedback!';
      updateControls();
    } catch (err) {
      if (generation !== state.generation || err instanceof StaleError) return;
      showError(errorText(err, 'Could not send your rating. Please try again.'));
    }
  }

  function persist() {
    if (!state.conversationId || !state.token) return;
    store.save({ conversationId: state.conversationId, token: state.token, lastEventId: state.lastEventId });
  }

  function rememberEventId(id) {
    if (id === null || id === undefined || id === '') return;
    if (!isNewerEventId(id, state.lastEventId)) return;
    state.lastEventId = String(id);
    persist();
  }

  function openStream() {
    if (state.stream) state.stream.stop();
    const generation = state.generation;
    state.stream = new EventStream({
      url: paths.events(state.conversationId),
      token: state.token,
      // "0" for a brand-new conversation = replay everything (dedupe makes it safe).
      getLastEventId: () => (state.lastEventId === null ? '0' : state.lastEventId),
      onEvent: (event) => { if (generation === state.generation) handleEvent(event); },
      onState: (s) => { if (generation === state.generation) setConnection(s); },
      onFatal: () => {
        if (generation !== state.generation) return;
        resetConversation('This conversation is no longer available. Send a message to start a new one.');
      },
    });
  }

  /** Creates the conversation on first use; concurrent callers share one request. */
  function ensureConversation() {
    if (state.conversationId) return Promise.resolve();
    if (state.creating) return state.creating;

    const generation = state.generation;
    if (!state.createKey) state.createKey = uuid();
    const body = { channel: 'web' };
    if (config.workspace) body.workspace = config.workspace;

    state.creating = withRetry(() => api('POST', paths.conversations(), { body, idempotencyKey: state.createKey }))
      .then((data) => {
        if (generation !== state.generation) throw new StaleError();
        if (!data || !data.conversation || !data.token) throw new ApiError(500, { detail: 'The server returned an unexpected response.' });
        state.createKey = null;
        state.conversationId = data.conversation.id;
        state.token = data.token;
        state.lastEventId = null;
        persist();
        setStatus(data.conversation.status);
        updateChrome();
        openStream();
      })
      .finally(() => {
        if (generation === state.generation) state.creating = null;
      });
    return state.creating;
  }

  /** Restores a stored conversation: status + history, then the live stream. */
  async function resume(saved) {
    const generation = state.generation;
    state.conversationId = saved.conversationId;
    state.token = saved.token;
    state.lastEventId = saved.lastEventId;
    updateChrome();

    for (let attempt = 1; ; attempt += 1) {
      try {
        const [conversation, page] = await Promise.all([
          api('GET', paths.conversation(state.conversationId), { token: state.token }),
          api('GET', paths.messages(state.conversationId), { token: state.token }),
        ]);
        if (generation !== state.generation) return;
        setConnection('connected');
        if (conversation) setStatus(conversation.status);
        const items = page && Array.isArray(page.items) ? page.items : [];
        withAutoScroll(() => items.forEach(addMessage), true);
        openStream();
        return;
      } catch (err) {
        if (generation !== state.generation) return;
        if (err instanceof ApiError && LOST_STATUSES.has(err.status)) {
          resetConversation(null); // token expired / conversation gone: start fresh silently
          return;
        }
        // Server unreachable or failing: keep trying in the background.
        setConnection('reconnecting');
        await sleep(backoffDelay(attempt));
        if (generation !== state.generation) return;
      }
    }
  }

  /** Forgets the current conversation and returns to the empty state. */
  function resetConversation(notice) {
    state.generation += 1;
    if (state.stream) state.stream.stop();
    for (const p of state.provisional.values()) if (p.frame) cancelAnimationFrame(p.frame);
    store.clear();
    Object.assign(state, {
      conversationId: null,
      token: null,
      status: null,
      lastEventId: null,
      creating: null,
      createKey: null,
      stream: null,
      handoffBusy: false,
      resolveBusy: false,
      rated: false,
      queue: Promise.resolve(),
    });
    state.rendered.clear();
    state.provisional.clear();
    state.outbox = [];
    ui.transcript.textContent = '';
    hideTyping();
    setConnection('connected');
    setStatus('ai_active');
    clearError();
    if (notice) showError(notice);
    updateChrome();
  }

  function requestHandoff() {
    if (ui.handoff.disabled) return;
    state.handoffBusy = true;
    updateControls();
    clearError();
    const generation = state.generation;
    const key = uuid();
    // Queued behind pending sends so the agent sees the messages first.
    enqueue(async () => {
      try {
        await ensureConversation();
        if (generation !== state.generation) return;
        const conversation = await withRetry(() => api('POST', paths.handoff(state.conversationId), {
          body: { reason: 'customer_request' },
          token: state.token,
          idempotencyKey: key,
        }));
        if (generation !== state.generation) return;
        if (conversation && conversation.status) setStatus(conversation.status);
      } catch (err) {
        if (generation !== state.generation || err instanceof StaleError) return;
        showError(errorText(err, 'Could not reach a person right now. Please try again.'));
      } finally {
        if (generation === state.generation) {
          state.handoffBusy = false;
          updateControls();
        }
      }
    });
  }

  /* ===================================================== 8. Sending */

  function enqueue(task) {
    const run = () => task().catch(() => {});
    state.queue = state.queue.then(run, run);
    return state.queue;
  }

  /** Optimistic customer bubble; returns its outbox entry. */
  function createOutboxEntry(text) {
    const meta = h('div', { class: 'message__meta' });
    const el = h('div', {
      class: 'message message--customer',
      dataset: { author: 'customer', state: 'pending', localId: uuid() },
    },
    h('div', { class: 'message__author', 'aria-hidden': 'true' }, AUTHOR_LABELS.customer),
    h('div', { class: 'message__bubble' },
      h('span', { class: 'visually-hidden' }, `${AUTHOR_LABELS.customer}: `),
      h('div', { class: 'message__body' }, text)),
    meta);
    return { text, key: uuid(), el, meta, serverId: null };
  }

  /** Updates the bubble's state line: pending | sent | failed | rejected. */
  function setOutboxState(entry, outboxState, detail) {
    entry.el.dataset.state = outboxState;
    entry.meta.textContent = '';
    if (outboxState === 'pending') {
      entry.meta.append(h('span', null, 'Sending…'));
    } else if (outboxState === 'sent') {
      const t = timeElement(entry.createdAt);
      if (t) entry.meta.append(t);
    } else if (outboxState === 'failed') {
      entry.meta.append(
        h('span', { class: 'message__error' }, 'Not sent —'),
        h('button', {
          type: 'button',
          class: 'message__retry',
          onclick: () => retryOutbox(entry),
        }, 'Retry'));
    } else if (outboxState === 'rejected') {
      entry.meta.append(h('span', { class: 'message__error' }, `Not sent: ${detail}`));
    }
  }

  function confirmOutbox(entry, message) {
    state.outbox = state.outbox.filter((e) => e !== entry);
    const existing = state.rendered.get(message.id);
    if (existing && existing !== entry.el) {
      entry.el.remove(); // already rendered from the event stream
      return;
    }
    entry.serverId = message.id;
    entry.createdAt = message.created_at;
    entry.el.dataset.messageId = message.id;
    state.rendered.set(message.id, entry.el);
    setOutboxState(entry, 'sent');
  }

  async function deliver(entry, generation) {
    if (generation !== state.generation || entry.serverId) return;
    setOutboxState(entry, 'pending');
    try {
      await ensureConversation();
      if (generation !== state.generation) return;
      const data = await withRetry(() => api('POST', paths.messages(state.conversationId), {
        body: { text: entry.text },
        token: state.token,
        idempotencyKey: entry.key,
      }), {
        // Stop retrying once the event stream has already confirmed it.
        isDone: () => Boolean(entry.serverId) || generation !== state.generation,
      });
      if (generation !== state.generation || entry.serverId) return;
      if (data && data.message && data.message.id) confirmOutbox(entry, data.message);
      else setOutboxState(entry, 'sent');
    } catch (err) {
      if (generation !== state.generation || err instanceof StaleError) return;
      if (entry.serverId) return; // echoed via the event stream: it was stored
      if (err instanceof ApiError && LOST_STATUSES.has(err.status) && state.conversationId) {
        // Token/conversation no longer valid: start over, keep the text for the user.
        resetConversation('Your previous conversation has expired. Please send your message again.');
        if (!ui.input.value) ui.input.value = entry.text;
        autoGrow();
        return;
      }
      if (err instanceof ApiError && !isRetryable(err)) {
        setOutboxState(entry, 'rejected', err.detail);
        // Give the text back so it can be edited and re-sent.
        if (!ui.input.value) { ui.input.value = entry.text; autoGrow(); }
        state.outbox = state.outbox.filter((e) => e !== entry);
        return;
      }
      setOutboxState(entry, 'failed');
    }
  }

  function retryOutbox(entry) {
    // Same entry → same Idempotency-Key, so the server stores it at most once.
    const generation = state.generation;
    setOutboxState(entry, 'pending');
    enqueue(() => deliver(entry, generation));
  }

  function sendMessage(text) {
    const entry = createOutboxEntry(text);
    state.outbox.push(entry);
    setOutboxState(entry, 'pending');
    withAutoScroll(() => ui.transcript.append(entry.el), true);
    updateChrome();
    clearError();
    const generation = state.generation;
    enqueue(() => deliver(entry, generation));
  }

  /* ============================================ 9. Event handling */

  function handleEvent(event) {
    let payload;
    try { payload = JSON.parse(event.data); } catch (_) { return; }
    if (!payload || typeof payload !== 'object') return;
    const type = event.type && event.type !== 'message' ? event.type : payload.type;

    switch (type) {
      case 'message.created':
        addMessage(payload.message);
        break;
      case 'message.delta':
        addDelta(payload.message_id, payload.delta);
        break;
      case 'status.changed':
        setStatus(payload.to);
        break;
      case 'typing':
        if (payload.author !== 'customer') showTyping(payload.author);
        break;
      default:
        break; // unknown event types are ignored
    }
    // Only events carrying an id advance the resume point (payload.seq as a fallback).
    const seq = Number.isFinite(payload.seq) ? String(payload.seq) : null;
    rememberEventId(event.id !== null ? event.id : seq);
  }

  /* ================================================= 10. UI wiring */

  function autoGrow() {
    ui.input.style.height = 'auto';
    ui.input.style.height = `${Math.min(ui.input.scrollHeight + 2, 160)}px`;
  }

  function submitComposer() {
    if (ui.input.disabled) return;
    const text = ui.input.value.trim();
    if (!text) { ui.input.focus(); return; }
    ui.input.value = '';
    autoGrow();
    sendMessage(text);
    ui.input.focus();
  }

  function startNewConversation() {
    resetConversation(null);
    ui.input.value = '';
    autoGrow();
    ui.input.focus();
  }

  /** Talks to widget.js in the parent page (embed mode only). */
  function setupEmbed() {
    document.body.classList.add('is-embed');
    if (window.parent === window) return;
    const requestClose = () => window.parent.postMessage({ source: 'concierge-chat', type: 'close' }, '*');
    ui.embedClose.hidden = false;
    ui.embedClose.addEventListener('click', requestClose);
    document.addEventListener('keydown', (e) => {
      if (e.key === 'Escape' && !e.defaultPrevented) requestClose();
    });
    window.addEventListener('message', (e) => {
      if (e.source !== window.parent || !e.data || e.data.source !== 'concierge-widget') return;
      if (e.data.type === 'focus' && !ui.input.disabled) ui.input.focus();
    });
  }

  function bindEvents() {
    ui.composer.addEventListener('submit', (e) => {
      e.preventDefault();
      submitComposer();
    });
    ui.input.addEventListener('keydown', (e) => {
      // Enter sends, Shift+Enter inserts a newline; never send mid-IME composition.
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing && e.keyCode !== 229) {
        e.preventDefault();
        submitComposer();
      }
    });
    ui.input.addEventListener('input', autoGrow);
    ui.handoff.addEventListener('click', requestHandoff);
    ui.resolve.addEventListener('click', resolveConversation);
    ui.rating.addEventListener('click', (e) => {
      const star = e.target.closest('.rating__star');
      if (star) rate(Number(star.dataset.rating));
    });
    ui.newConversation.addEventListener('click', startNewConversation);
    ui.closedNewConversation.addEventListener('click', startNewConversation);
    ui.errorDismiss.addEventListener('click', clearError);
    // Reconnect immediately when the network comes back instead of waiting out the backoff.
    window.addEventListener('online', () => { if (state.stream) state.stream.wake(); });
  }

  function boot() {
    ui.title.textContent = config.title;
    document.title = config.title;
    if (config.embed) setupEmbed();
    bindEvents();
    setStatus('ai_active');
    setConnection('connected');
    updateChrome();

    const saved = store.load();
    if (saved) resume(saved);
    // Otherwise: nothing to do until the first message (lazy creation).
  }

  boot();
})();
