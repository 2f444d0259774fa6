/*
 * Concierge embeddable chat widget.
 *
 * Usage on any page:
 *   <script src="https://support.example.com/widget.js"
 *           data-title="Help" data-workspace="acme" async></script>
 *
 * Adds a floating launcher button (bottom-right) that toggles a panel with an
 * <iframe> of `<script origin>/?embed=1&workspace=<slug>`. All markup lives in
 * a shadow root so host-page CSS cannot leak in or out. The only global is
 *   window.ConciergeWidget = { open(), close(), toggle() }.
 *
 * The chat iframe can ask to be closed via postMessage
 * ({source: "concierge-chat", type: "close"}); the widget asks it to focus its
 * input with ({source: "concierge-widget", type: "focus"}).
 */
(() => {
  'use strict';

  if (window.ConciergeWidget) return; // script included twice

  /* ------------------------------------------------------------ config */

  // document.currentScript is set for classic scripts, including async ones.
  const script = document.currentScript ||
    Array.from(document.querySelectorAll('script[src]'))
      .reverse()
      .find((s) => /\/widget\.js(?:[?#]|$)/.test(s.src));
  if (!script) return;

  const origin = new URL(script.src, window.location.href).origin;
  const title = (script.getAttribute('data-title') || '').trim() || 'Help';
  const workspace = (script.getAttribute('data-workspace') || '').trim();

  function chatUrl() {
    const url = new URL('/', origin);
    url.searchParams.set('embed', '1');
    if (workspace) url.searchParams.set('workspace', workspace);
    return url.href;
  }

  /* ------------------------------------------------------------ styles */

  const CSS = `
    :host { all: initial; }
    *, *::before, *::after { box-sizing: border-box; }
    [hidden] { display: none !important; }

    .launcher {
      position: fixed;
      right: 20px;
      bottom: 20px;
      z-index: 2147483000;
      display: grid;
      place-items: center;
      width: 58px;
      height: 58px;
      padding: 0;
      border: 0;
      border-radius: 50%;
      background: #2457c5;
      color: #fff;
      box-shadow: 0 6px 20px rgba(20, 32, 56, 0.28);
      cursor: pointer;
      transition: transform 0.15s ease, background 0.15s ease;
    }
    .launcher:hover { background: #1b4399; transform: scale(1.05); }
    .launcher:focus-visible { outline: 3px solid #fff; box-shadow: 0 0 0 6px #2457c5; }
    .launcher svg { width: 26px; height: 26px; }
    .launcher .icon-close { display: none; }
    .launcher[aria-expanded="true"] .icon-open { display: none; }
    .launcher[aria-expanded="true"] .icon-close { display: block; }

    .panel {
      position: fixed;
      right: 20px;
      bottom: 92px;
      z-index: 2147483000;
      width: 380px;
      height: min(640px, calc(100vh - 120px));
      border-radius: 16px;
      overflow: hidden;
      background: #fff;
      box-shadow: 0 16px 48px rgba(20, 32, 56, 0.28), 0 2px 8px rgba(20, 32, 56, 0.12);
      opacity: 0;
      transform: translateY(12px) scale(0.98);
      transform-origin: bottom right;
      visibility: hidden;
      transition: opacity 0.18s ease, transform 0.18s ease, visibility 0s linear 0.18s;
    }
    .panel[data-open="true"] {
      opacity: 1;
      transform: none;
      visibility: visible;
      transition: opacity 0.18s ease, transform 0.18s ease, visibility 0s;
    }
    .panel iframe { display: block; width: 100%; height: 100%; border: 0; }

    /* Phones: full-screen panel; the chat's own header has a close button. */
    @media (max-width: 480px) {
      .panel {
        inset: 0;
        width: 100%;
        height: 100%;
        border-radius: 0;
      }
      .launcher[aria-expanded="true"] { display: none; }
    }

    @media (prefers-reduced-motion: reduce) {
      .launcher, .panel, .panel[data-open="true"] { transition: none; }
    }
  `;

  const ICON_OPEN = '<svg class="icon-open" viewBox="0 0 24 24" aria-hidden="true" focusable="false"><path fill="currentColor" d="M4 4h16a2 2 0 0 1 2 2v9a2 2 0 0 1-2 2H9.4l-4.7 3.8A.5.5 0 0 1 4 20.4V17a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2Z"/></svg>';
  const ICON_CLOSE = '<svg class="icon-close" viewBox="0 0 24 24" aria-hidden="true" focusable="false"><path fill="none" stroke="currentColor" stroke-width="2.2" stroke-linecap="round" d="M6 6l12 12M18 6L6 18"/></svg>';

  /** Styles the shadow root. Constructable stylesheets are not subject to the
   *  host page's style-src CSP; fall back to a <style> element otherwise. */
  function applyStyles(root) {
    try {
      const sheet = new CSSStyleSheet();
      sheet.replaceSync(CSS);
      root.adoptedStyleSheets = [sheet];
    } catch (_) {
      const style = document.createElement('style');
      style.textContent = CSS;
      root.append(style);
    }
  }

  /* ------------------------------------------------------------- state */

  let launcher = null;
  let panel = null;
  let iframe = null;
  let isOpen = false;
  let wantOpen = false; // open() called before the DOM was ready

  /* -------------------------------------------------------------- build */

  function build() {
    if (launcher) return;
    const host = document.createElement('div');
    host.setAttribute('data-concierge-widget', '');
    const root = host.attachShadow({ mode: 'open' });
    applyStyles(root);

    panel = document.createElement('div');
    panel.className = 'panel';
    panel.id = 'concierge-panel';
    panel.setAttribute('role', 'dialog');
    panel.setAttribute('aria-label', `${title} chat`);
    panel.dataset.open = 'false';

    launcher = document.createElement('button');
    launcher.type = 'button';
    launcher.className = 'launcher';
    launcher.setAttribute('aria-controls', 'concierge-panel');
    launcher.setAttribute('aria-expanded', 'false');
    launcher.setAttribute('aria-label', `Open ${title} chat`);
    launcher.title = title;
    launcher.innerHTML = ICON_OPEN + ICON_CLOSE; // static markup only, no user data
    launcher.addEventListener('click', toggle);

    root.append(panel, launcher);
    document.body.append(host);

    // Escape closes the panel while focus is in the host page / launcher.
    root.addEventListener('keydown', (e) => {
      if (e.key === 'Escape' && isOpen) { e.stopPropagation(); close(); }
    });
    window.addEventListener('message', onMessage);

    if (wantOpen) open();
  }

  /** The iframe is created on first open, so merely visiting a page loads nothing. */
  function ensureIframe() {
    if (iframe) return;
    iframe = document.createElement('iframe');
    iframe.title = `${title} chat`;
    iframe.src = chatUrl();
    iframe.setAttribute('allow', 'clipboard-write');
    iframe.setAttribute('referrerpolicy', 'no-referrer');
    iframe.addEventListener('load', () => { if (isOpen) focusChat(); });
    panel.append(iframe);
  }

  function focusChat() {
    if (!iframe || !iframe.contentWindow) return;
    iframe.focus();
    iframe.contentWindow.postMessage({ source: 'concierge-widget', type: 'focus' }, origin);
  }

  /** Messages from the chat iframe (only from our frame and our origin). */
  function onMessage(e) {
    if (!iframe || e.source !== iframe.contentWindow || e.origin !== origin) return;
    const data = e.data;
    if (!data || data.source !== 'concierge-chat') return;
    if (data.type === 'close') close();
  }

  /* ---------------------------------------------------------- public API */

  function open() {
    if (!launcher) { wantOpen = true; return; }
    wantOpen = false;
    if (isOpen) return;
    isOpen = true;
    ensureIframe();
    panel.dataset.open = 'true';
    launcher.setAttribute('aria-expanded', 'true');
    launcher.setAttribute('aria-label', `Close ${title} chat`);
    focusChat();
  }

  function close() {
    wantOpen = false;
    if (!launcher || !isOpen) return;
    isOpen = false;
    panel.dataset.open = 'false';
    launcher.setAttribute('aria-expanded', 'false');
    launcher.setAttribute('aria-label', `Open ${title} chat`);
    launcher.focus();
  }

  function toggle() {
    if (isOpen || (!launcher && wantOpen)) close();
    else open();
  }

  window.ConciergeWidget = Object.freeze({ open, close, toggle });

  if (document.body) build();
  else document.addEventListener('DOMContentLoaded', build, { once: true });
})();
