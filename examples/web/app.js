// The sessiond session page: sign in or register, then the live session (heartbeat,
// devices, and for an administrator every session and account). Plain ES module, no
// build step; it talks to the server only through ./sessiond.js (SessiondClient).
//
// The server URL is `ws://<this page's host>:7451/` unless the query string says
// `?server=URL` (the browser tests use that).

import * as sd from './sessiond.js';

const $ = (id) => document.getElementById(id);

const el = {
  serverForm: $('server-form'),
  serverUrl: $('server-url'),
  connState: $('conn-state'),
  main: $('main'),
  notice: $('notice'),
  noticeTitle: $('notice-title'),
  noticeBody: $('notice-body'),
  noticeRetry: $('notice-retry'),
  noticeDismiss: $('notice-dismiss'),
  info: $('info'),
  loading: $('loading'),
  authView: $('auth-view'),
  authTitle: $('auth-title'),
  authError: $('auth-error'),
  loginForm: $('login-form'),
  registerForm: $('register-form'),
  sessionView: $('session-view'),
  sessionTitle: $('session-title'),
  heartbeat: $('heartbeat'),
  heartbeatRtt: $('heartbeat-rtt'),
  heartbeatAt: $('heartbeat-at'),
  sessionUsername: $('session-username'),
  sessionId: $('session-id'),
  sessionRole: $('session-role'),
  sessionAppRoleRow: $('session-app-role-row'),
  sessionAppRole: $('session-app-role'),
  sessionExpires: $('session-expires'),
  logout: $('logout'),
  devicesRefresh: $('devices-refresh'),
  logoutAll: $('logout-all'),
  devicesStatus: $('devices-status'),
  devicesBody: $('devices-body'),
  adminPanel: $('admin-panel'),
  adminRefresh: $('admin-refresh'),
  adminStatus: $('admin-status'),
  adminSessionsBody: $('admin-sessions-body'),
  adminUsersBody: $('admin-users-body'),
};

// ---------------------------------------------------------------------------------------
// Small helpers: values from the module may be numbers, BigInts (u64) or Dates.

function toNumber(v) {
  if (v == null) return 0;
  if (typeof v === 'bigint') return Number(v);
  if (v instanceof Date) return v.getTime();
  return Number(v);
}

/** A session id as the other clients print it: 16 hex digits. */
function idText(v) {
  if (v == null) return '';
  if (typeof v === 'bigint') return v.toString(16).padStart(16, '0');
  if (typeof v === 'number' && Number.isInteger(v) && v >= 0) {
    return BigInt(v).toString(16).padStart(16, '0');
  }
  return String(v);
}

/** The first of `names` that `obj` has (camelCase names differ between spellings). */
function pick(obj, ...names) {
  if (!obj) return undefined;
  for (const n of names) {
    if (obj[n] !== undefined && obj[n] !== null) return obj[n];
  }
  return undefined;
}

/** A <time>; `compact`: today's times without the date (for tables). */
function timeEl(v, { compact = false } = {}) {
  const ms = toNumber(v);
  if (!ms) {
    const span = document.createElement('span');
    span.textContent = 'never';
    return span;
  }
  const d = new Date(ms);
  const t = document.createElement('time');
  t.dateTime = d.toISOString();
  const now = new Date();
  const thisYear = d.getFullYear() === now.getFullYear();
  const today = thisYear && d.getMonth() === now.getMonth() && d.getDate() === now.getDate();
  t.textContent = compact && today
    ? d.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' })
    : d.toLocaleString(undefined, {
      year: thisYear ? undefined : 'numeric', month: 'short', day: 'numeric',
      hour: '2-digit', minute: '2-digit', second: compact ? undefined : '2-digit',
    });
  t.title = d.toISOString();
  return t;
}

function timeText(v) {
  return timeEl(v).textContent;
}

function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') node.className = v;
    else if (k === 'text') node.textContent = v;
    else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c == null || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

/** The name of `n` in one of the module's enums, or the number. */
function enumName(enumObj, n) {
  if (typeof n === 'string') return n;
  if (enumObj && typeof sd.nameOf === 'function') {
    try {
      const name = sd.nameOf(enumObj, n);
      if (name) return name;
    } catch {
      // fall through
    }
  }
  return n == null ? '' : String(n);
}

function isAdminRole(role) {
  if (role === 'admin' || role === 'ADMIN') return true;
  const admin = sd.Role && (sd.Role.ADMIN ?? sd.Role.admin);
  return role === (admin ?? 1) || toNumber(role) === 1;
}

function deviceText(client, platform) {
  const c = client || 'unknown client';
  return platform ? `${c} on ${platform}` : c;
}

/** At most `max` bytes of UTF-8 (the protocol's limit for device strings). */
function clip(s, max = 64) {
  const enc = new TextEncoder();
  let out = String(s || '');
  while (enc.encode(out).length > max) out = out.slice(0, -1);
  return out;
}

// ---------------------------------------------------------------------------------------
// This device, as the server (and the user's other devices) will see it.

function browserName() {
  const ua = navigator.userAgent || '';
  const rules = [
    [/Edg\/(\d+)/, 'Edge'],
    [/OPR\/(\d+)/, 'Opera'],
    [/Firefox\/(\d+)/, 'Firefox'],
    [/Chrom(?:e|ium)\/(\d+)/, 'Chrome'],
    [/Version\/(\d+).*Safari\//, 'Safari'],
  ];
  for (const [re, name] of rules) {
    const m = re.exec(ua);
    if (m) return `${name} ${m[1]}`;
  }
  return 'browser';
}

const DEVICE_CLIENT = clip(`sessiond-web (${browserName()})`);
const DEVICE_PLATFORM = clip(
  (navigator.userAgentData && navigator.userAgentData.platform) || navigator.platform || '',
);

// ---------------------------------------------------------------------------------------
// Server URL

function defaultServerUrl() {
  const host = location.hostname || '127.0.0.1';
  const bracketed = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  return `ws://${bracketed}:7451/`;
}

let serverUrl = new URLSearchParams(location.search).get('server') || defaultServerUrl();
el.serverUrl.value = serverUrl;

function storageKey(url) {
  // One token per server, so that pointing the page at another server does not send it
  // this one's token.
  return `sessiond.token ${url}`;
}

// ---------------------------------------------------------------------------------------
// The client and its events

let client = null;
let listeners = null;
let view = 'loading';
let noticeKind = '';
let heartbeats = 0;
let reconnecting = false;
let shutdownAt = 0;

function discardClient() {
  if (!client) return;
  listeners.abort();
  const old = client;
  client = null;
  try {
    Promise.resolve(old.close()).catch(() => {});
  } catch {
    // already closed
  }
}

function newClient() {
  discardClient();
  listeners = new AbortController();
  const c = new sd.SessiondClient({
    url: serverUrl,
    storageKey: storageKey(serverUrl),
    client: DEVICE_CLIENT,
    platform: DEVICE_PLATFORM,
  });
  const on = (name, fn) =>
    c.addEventListener(name, (ev) => {
      if (c === client) fn(ev.detail || {}, ev);
    }, { signal: listeners.signal });
  on('state', (d) => showState(d.state || c.state));
  on('heartbeat', onHeartbeat);
  on('revoked', onRevoked);
  on('expired', onExpired);
  on('duplicate', () => showDuplicate());
  on('newLogin', onNewLogin);
  on('shutdown', onShutdown);
  on('userInfo', onUserInfo);
  on('resumed', () => {
    if (reconnecting) say('Reconnected: the session carried on.');
    reconnecting = false;
    showSession();
  });
  on('disconnected', onDisconnected);
  on('loggedOut', onLoggedOut);
  client = c;
  showState(c.state || 'idle');
  return c;
}

const STATE_TEXT = {
  idle: 'Not connected',
  connecting: 'Connecting…',
  open: 'Connected',
  active: 'Connected, signed in',
  reconnecting: 'Connection lost, reconnecting…',
  closed: 'Not connected',
};

function showState(state) {
  el.connState.dataset.state = state;
  el.connState.textContent = state === 'closed' && view !== 'session' && view !== 'loading'
    ? 'Not connected (connects when you sign in)'
    : STATE_TEXT[state] || state;
  el.heartbeat.dataset.state = state === 'active' ? 'live' : 'offline';
  if (state === 'reconnecting') {
    el.heartbeatRtt.textContent = 'reconnecting';
  }
}

function onHeartbeat(d) {
  heartbeats += 1;
  el.heartbeat.dataset.count = String(heartbeats);
  el.heartbeat.dataset.state = 'live';
  const rtt = toNumber(d.rttMs);
  el.heartbeatRtt.textContent = `${rtt < 10 ? rtt.toFixed(1) : Math.round(rtt)} ms`;
  el.heartbeatAt.replaceChildren('at ', timeEl(d.at ?? Date.now()));
  // Restart the pulse.
  el.heartbeat.classList.remove('beat');
  void el.heartbeat.offsetWidth;
  el.heartbeat.classList.add('beat');
}

const REVOKED_TITLE = {
  NEW_LOGIN: 'You were signed out: your account signed in on another device',
  TAKEN_OVER: 'This session moved to another window',
  REVOKED_BY_USER: 'This session was ended from another of your devices',
  PASSWORD_CHANGED: 'You were signed out: your password was changed on another device',
  REVOKED_BY_ADMIN: 'An administrator ended this session',
  ACCOUNT_SUSPENDED: 'Your account has been suspended',
  PASSWORD_RESET: 'An administrator reset your password',
};

const REVOKED_TEXT = {
  NEW_LOGIN: 'Only one session per account is allowed, and a new sign-in took its place. ' +
    'If that was not you, sign in again and change your password.',
  TAKEN_OVER: 'The session is now in use in another tab or window.',
  REVOKED_BY_USER: 'Sign in again to continue here.',
  PASSWORD_CHANGED: 'Sign in again with the new password.',
  REVOKED_BY_ADMIN: 'Sign in again to continue.',
  ACCOUNT_SUSPENDED: 'You cannot sign in until an administrator lifts the suspension.',
  PASSWORD_RESET: 'The password you know no longer works: ask the administrator for the new one.',
};

function onRevoked(d) {
  const reason = d.reasonName || enumName(sd.RevokeReason, d.reason);
  const byClient = pick(d, 'byClient', 'client');
  const byPlatform = pick(d, 'byPlatform', 'platform');
  const byAddress = pick(d, 'byAddress', 'address');
  const at = pick(d, 'at', 'atMs');
  const who = reason === 'REVOKED_BY_ADMIN' || reason === 'ACCOUNT_SUSPENDED' ||
    reason === 'PASSWORD_RESET' ? 'By the administrator’s device' : 'By';
  showNotice('revoked', reason, REVOKED_TITLE[reason] || 'This session has ended', [
    h('p', { text: REVOKED_TEXT[reason] || `Reason: ${reason}.` }),
    h('dl', { class: 'notice-facts' },
      h('div', {}, h('dt', { text: `${who}` }),
        h('dd', { 'data-testid': 'notice-device' }, deviceText(byClient, byPlatform))),
      h('div', {}, h('dt', { text: 'From address' }),
        h('dd', { 'data-testid': 'notice-address' }, byAddress || 'unknown')),
      h('div', {}, h('dt', { text: 'At' }),
        h('dd', { 'data-testid': 'notice-time' }, timeEl(at)))),
  ]);
  endSession();
}

function onExpired(d) {
  const reason = d.reasonName || enumName(sd.ExpiredReason, d.reason);
  const why = reason === 'IDLE'
    ? 'It was not used for too long.'
    : reason === 'ABSOLUTE' ? 'It reached its maximum lifetime.' : `Reason: ${reason}.`;
  showNotice('expired', reason, 'Your session expired', [
    h('p', { text: `${why} Sign in again to continue.` }),
  ]);
  endSession();
}

function showDuplicate() {
  if (noticeKind === 'duplicate' && view === 'ended') return;
  showNotice('duplicate', 'DUPLICATE_SESSION', 'This session is open in another tab', [
    h('p', {
      text: 'Your session is in use in another tab or window of this browser, and the ' +
        'server lets one connection use a session at a time. Carry on there, or close ' +
        'it and try again here.',
    }),
  ], { retry: true });
  showView('ended');
}

function onNewLogin(d) {
  const at = pick(d, 'at', 'atMs');
  say(`New sign-in to your account: ${deviceText(d.client, d.platform)}, from ` +
    `${d.address || 'an unknown address'}, at ${timeText(at)}.`);
  refreshDevices();
}

function onShutdown(d) {
  shutdownAt = Date.now();
  const after = toNumber(pick(d, 'reconnectAfterMs', 'reconnectAfter'));
  say(`The server is restarting; this page reconnects by itself${after ? ` in about ${Math.ceil(after / 1000)} s` : ''}.`);
}

function onUserInfo(d) {
  const appRole = pick(d, 'appRole');
  el.sessionAppRoleRow.hidden = !appRole;
  el.sessionAppRole.textContent = appRole || '';
}

/** The session ended without a push: a resume after a reconnect found it gone. */
function onLoggedOut(d) {
  if (d.reason === 'LOGOUT' || d.reason === 'LOGOUT_ALL' || view !== 'session') return;
  showNotice('invalid', d.reason, 'Please sign in again', [
    h('p', { text: INVALID_TEXT[d.reason] || `Your session is no longer valid (${d.reason}).` }),
  ]);
  endSession();
}

function onDisconnected(d) {
  if (d.willReconnect) {
    reconnecting = true;
    // After SERVER_SHUTDOWN its notice says it better.
    if (Date.now() - shutdownAt > 5000) say('Connection lost; reconnecting…');
    return;
  }
  reconnecting = false;
  // A session that ended said why before the socket closed (the notice is up). A close
  // while signed in that nobody explained:
  if (view === 'session') {
    showNotice('closed', String(d.code ?? ''), 'The connection to the server closed', [
      h('p', { text: 'Your session may still be valid: try again to resume it.' }),
    ], { retry: true });
    showView('ended');
  }
}

// ---------------------------------------------------------------------------------------
// Views

function showView(name, { focus = true } = {}) {
  const changed = view !== name;
  view = name;
  el.loading.hidden = name !== 'loading';
  el.authView.hidden = !(name === 'auth' || (name === 'ended' && noticeKind !== 'duplicate'));
  el.sessionView.hidden = name !== 'session';
  document.body.dataset.view = name;
  if (!focus || !changed) return;
  if (!el.notice.hidden) el.noticeTitle.focus();
  else if (name === 'session') el.sessionTitle.focus();
  else if (name === 'auth' || name === 'ended') el.authTitle.focus();
}

/** The alert box: `kind` and `reason` also go to data attributes for the tests. */
function showNotice(kind, reason, title, body, { retry = false } = {}) {
  noticeKind = kind;
  el.notice.dataset.kind = kind;
  el.notice.dataset.reason = reason || '';
  el.notice.classList.toggle('notice-info', kind === 'signed-out' || kind === 'invalid');
  el.noticeTitle.textContent = title;
  el.noticeBody.replaceChildren(...body);
  el.noticeRetry.hidden = !retry;
  el.notice.hidden = false;
  el.noticeTitle.focus();
}

function hideNotice() {
  noticeKind = '';
  el.notice.hidden = true;
  delete el.notice.dataset.kind;
  delete el.notice.dataset.reason;
}

function say(text) {
  el.info.textContent = text;
}

function setAuthError(text, reason = '') {
  el.authError.textContent = text;
  el.authError.dataset.reason = reason;
}

/** After the session ended: back to the sign-in forms (the notice stays). */
function endSession() {
  el.devicesBody.replaceChildren();
  el.adminSessionsBody.replaceChildren();
  el.adminUsersBody.replaceChildren();
  showView('ended');
}

function showSession(data) {
  const s = (client && client.session) || data || {};
  el.sessionUsername.textContent = pick(s, 'username') || (client && client.username) || '';
  el.sessionId.textContent = idText(pick(s, 'sessionId'));
  const admin = isAdminRole(pick(s, 'role'));
  el.sessionRole.textContent = admin ? 'administrator' : 'user';
  el.sessionRole.dataset.role = admin ? 'admin' : 'user';
  el.sessionExpires.replaceChildren(timeEl(pick(s, 'sessionExpires', 'sessionExpiresMs')));
  const info = client && client.user;
  if (info) onUserInfo(info);
  el.adminPanel.hidden = !admin;
  el.heartbeat.dataset.state = 'live';
  if (view !== 'session') {
    hideNotice();
    setAuthError('');
    showView('session');
  }
  refreshDevices();
  if (admin) refreshAdmin();
}

function showAuth() {
  el.adminPanel.hidden = true;
  showView('auth');
}

// ---------------------------------------------------------------------------------------
// Connecting, signing in

function connectError(e) {
  const why = (e && e.message) || String(e);
  const detail = why.includes(serverUrl) ? '' : ` (${why})`;
  return `Cannot reach the server at ${serverUrl}${detail}. Check the address, or try again later.`;
}

async function start() {
  hideNotice();
  say('');
  setAuthError('');
  showView('loading', { focus: false });
  const c = newClient();
  try {
    handleConnect(await c.connect());
  } catch (e) {
    if (c !== client) return;
    showAuth();
    setAuthError(connectError(e), 'CONNECT');
  }
}

const INVALID_TEXT = {
  REVOKED: 'Your saved session was ended (revoked): sign in again.',
  EXPIRED: 'Your saved session expired: sign in again.',
  LOGGED_OUT: 'Your saved session was signed out: sign in again.',
  UNKNOWN: 'The server does not know your saved session: sign in again.',
};

function handleConnect(r) {
  if (r && r.resumed) {
    showSession(r.session);
  } else if (r && r.duplicate) {
    showDuplicate();
  } else {
    if (r && r.reason != null) {
      const reason = typeof r.reason === 'string' ? r.reason : enumName(sd.InvalidReason, r.reason);
      showNotice('invalid', reason, 'Please sign in again', [
        h('p', { text: INVALID_TEXT[reason] || `Your saved session is no longer valid (${reason}).` }),
      ]);
    }
    showAuth();
  }
}

/**
 * The client to sign in with: login() and register() open a connection themselves when
 * there is none (the server closes an idle one after its login deadline, and a session
 * that ended closes its one).
 */
function authClient() {
  return client || newClient();
}

const LOGIN_TEXT = {
  INVALID_CREDENTIALS: 'Wrong username or password.',
  SUSPENDED: 'This account is suspended: ask an administrator.',
  SESSION_LIMIT: 'This account has as many sessions as it may: sign out on another device first.',
  DAILY_LIMIT: 'This account has used its sign-ins for today.',
  THROTTLED: 'Too many attempts.',
  SERVER_BUSY: 'The server is busy.',
  STORAGE_UNAVAILABLE: 'The server cannot save sessions right now.',
};

const REGISTER_TEXT = {
  USERNAME_TAKEN: 'That username is taken.',
  INVALID_USERNAME: 'That username is not allowed: 3 to 32 of a-z, 0-9, ".", "_", "-", starting with a letter or digit.',
  PASSWORD_TOO_SHORT: 'That password is too short.',
  INVALID_EMAIL: 'That email address is not valid.',
  REGISTRATION_CLOSED: 'This server does not take new accounts.',
  SERVER_BUSY: 'The server is busy: try again in a moment.',
  STORAGE_UNAVAILABLE: 'The server cannot save accounts right now: try again in a moment.',
};

function failureText(e, table) {
  const reason = e && (e.reasonName || e.codeName);
  let text = (reason && table[reason]) || (e && e.message) || String(e);
  const retry = toNumber(e && e.retryAfterMs);
  if (retry) text += ` Try again in ${Math.ceil(retry / 1000)} s.`;
  return { text, reason: reason || (e && e.name) || 'ERROR' };
}

async function busy(button, fn) {
  button.disabled = true;
  button.setAttribute('aria-busy', 'true');
  try {
    return await fn();
  } finally {
    button.disabled = false;
    button.removeAttribute('aria-busy');
  }
}

el.loginForm.addEventListener('submit', (ev) => {
  ev.preventDefault();
  const form = ev.currentTarget;
  const username = form.elements.username.value.trim();
  const password = form.elements.password.value;
  if (!username) {
    setAuthError('Enter your username.', 'EMPTY');
    form.elements.username.focus();
    return;
  }
  busy(form.querySelector('button[type=submit]'), async () => {
    setAuthError('');
    try {
      const s = await authClient().login(username, password);
      form.elements.password.value = '';
      hideNotice();
      showSession(s);
    } catch (e) {
      const { text, reason } = failureText(e, LOGIN_TEXT);
      setAuthError(text, reason);
      form.elements.password.focus();
    }
  });
});

el.registerForm.addEventListener('submit', (ev) => {
  ev.preventDefault();
  const form = ev.currentTarget;
  const username = form.elements.username.value.trim();
  const password = form.elements.password.value;
  const email = form.elements.email.value.trim();
  busy(form.querySelector('button[type=submit]'), async () => {
    setAuthError('');
    let stage = 'register';
    try {
      const c = authClient();
      await c.register(username, password, email);
      stage = 'login';
      const s = await c.login(username, password);
      form.reset();
      hideNotice();
      showSession(s);
    } catch (e) {
      const { text, reason } = failureText(e, stage === 'register' ? REGISTER_TEXT : LOGIN_TEXT);
      setAuthError(stage === 'login' ? `Account created, but signing in failed: ${text}` : text, reason);
      form.elements.username.focus();
    }
  });
});

el.logout.addEventListener('click', () => busy(el.logout, async () => {
  try {
    await client.logout();
  } catch (e) {
    // The session is gone either way from this page's point of view.
    say(`Signing out: ${(e && e.message) || e}`);
  }
  showNotice('signed-out', '', 'You are signed out', [
    h('p', { text: 'Your session on this device has ended.' }),
  ]);
  endSession();
}));

el.serverForm.addEventListener('submit', (ev) => {
  ev.preventDefault();
  const url = el.serverUrl.value.trim();
  if (!/^wss?:\/\/[^/\s]+/i.test(url)) {
    el.connState.dataset.state = 'error';
    el.connState.textContent = 'Give a ws:// or wss:// URL';
    el.serverUrl.focus();
    return;
  }
  serverUrl = url;
  const q = new URLSearchParams(location.search);
  if (url === defaultServerUrl()) q.delete('server');
  else q.set('server', url);
  const qs = q.toString();
  history.replaceState(null, '', `${location.pathname}${qs ? `?${qs}` : ''}${location.hash}`);
  start();
});

el.noticeRetry.addEventListener('click', () => start());
el.noticeDismiss.addEventListener('click', () => {
  hideNotice();
  if (view === 'ended' && el.authView.hidden) showAuth();
  else (view === 'session' ? el.sessionTitle : el.authTitle).focus();
});

// Leaving the page: end the connection properly (the session stays valid), so that this
// tab reloaded is not told its session is in use by the connection it just left.
window.addEventListener('pagehide', () => discardClient());

// ---------------------------------------------------------------------------------------
// Devices: this account's sessions

function entriesOf(r) {
  if (Array.isArray(r)) return r;
  return (r && (r.entries || r.sessions || r.users)) || [];
}

function isCurrent(e) {
  if (e.current !== undefined) return Boolean(e.current);
  return (toNumber(e.flags) & 1) !== 0;
}

function isConnected(e) {
  if (e.connected !== undefined) return Boolean(e.connected);
  return (toNumber(e.flags) & 2) !== 0;
}

let devicesSeq = 0;

/** Reloads the device list; `note` (what was just done) is said with the count. */
async function refreshDevices(note = '') {
  if (!client || view !== 'session') return;
  const seq = ++devicesSeq;
  el.devicesStatus.textContent = 'Loading…';
  el.devicesStatus.dataset.state = 'loading';
  try {
    const list = entriesOf(await client.listSessions());
    if (seq !== devicesSeq) return;
    el.devicesBody.replaceChildren(...list.map(deviceRow));
    el.devicesStatus.textContent = `${note ? `${note} ` : ''}${list.length} session${list.length === 1 ? '' : 's'}, as of ${timeText(Date.now())}.`;
    el.devicesStatus.dataset.state = 'ready';
    el.logoutAll.disabled = !list.some((e) => !isCurrent(e));
  } catch (e) {
    if (seq !== devicesSeq) return;
    el.devicesStatus.textContent = `Could not list your sessions: ${(e && e.message) || e}`;
    el.devicesStatus.dataset.state = 'error';
  }
}

function deviceRow(e) {
  const id = idText(pick(e, 'sessionId'));
  const current = isCurrent(e);
  const device = deviceText(e.client, e.platform);
  let action;
  if (current) {
    action = h('span', { class: 'badge badge-current', text: 'This device' });
  } else {
    const btn = h('button', {
      type: 'button',
      class: 'danger small',
      'data-testid': 'device-revoke',
      'aria-label': `Sign out ${device}, from ${e.address || 'an unknown address'}`,
      text: 'Sign out',
    });
    btn.addEventListener('click', () => busy(btn, async () => {
      try {
        await client.revokeSession(e.sessionId);
      } catch (err) {
        el.devicesStatus.textContent = `Could not sign out ${device}: ${(err && err.message) || err}`;
        el.devicesStatus.dataset.state = 'error';
        return;
      }
      await refreshDevices(`Signed out ${device}.`);
      $('devices-title').focus();
    }));
    action = btn;
  }
  return h('tr', {
    'data-testid': 'device-row',
    'data-session-id': id,
    'data-current': current ? 'true' : 'false',
    class: current ? 'current' : '',
  },
  h('td', { 'data-label': 'Device' }, h('span', { 'data-testid': 'device-name' }, device)),
  h('td', { 'data-label': 'Address', 'data-testid': 'device-address', class: 'nowrap' }, e.address || ''),
  h('td', { 'data-label': 'Signed in', class: 'nowrap' }, timeEl(pick(e, 'created', 'createdMs', 'loginAtMs'), { compact: true })),
  h('td', { 'data-label': 'Last active', class: 'nowrap' }, timeEl(pick(e, 'lastActive', 'lastActiveMs'), { compact: true })),
  h('td', { 'data-label': 'Status' }, isConnected(e)
    ? h('span', { class: 'badge badge-live', text: 'Connected' })
    : h('span', { class: 'badge', text: 'Away' })),
  h('td', { class: 'actions' }, action));
}

el.devicesRefresh.addEventListener('click', () => busy(el.devicesRefresh, () => refreshDevices()));

el.logoutAll.addEventListener('click', () => busy(el.logoutAll, async () => {
  let note;
  try {
    const r = await client.logoutAll('OTHERS');
    const n = toNumber(pick(r, 'affected') ?? r);
    note = Number.isFinite(n)
      ? `Signed out ${n} other session${n === 1 ? '' : 's'}.`
      : 'Signed out the other sessions.';
  } catch (e) {
    el.devicesStatus.textContent = `Could not sign out the other sessions: ${(e && e.message) || e}`;
    el.devicesStatus.dataset.state = 'error';
    return;
  }
  if (client.state !== 'active') {
    showNotice('signed-out', '', 'You are signed out', [
      h('p', { text: 'Every session of your account has ended.' }),
    ]);
    endSession();
    return;
  }
  await refreshDevices(note);
  if (!el.adminPanel.hidden) refreshAdmin();
}));

// ---------------------------------------------------------------------------------------
// Administration (role admin): every session, every account

let adminSeq = 0;

async function refreshAdmin(note = '') {
  if (!client || view !== 'session' || el.adminPanel.hidden) return;
  const seq = ++adminSeq;
  el.adminStatus.textContent = 'Loading…';
  el.adminStatus.dataset.state = 'loading';
  try {
    const [sessions, users] = await Promise.all([
      client.adminListSessions(),
      client.adminListUsers(),
    ]);
    if (seq !== adminSeq) return;
    const ss = entriesOf(sessions);
    const us = entriesOf(users);
    el.adminSessionsBody.replaceChildren(...ss.map(adminSessionRow));
    el.adminUsersBody.replaceChildren(...us.map(adminUserRow));
    el.adminStatus.textContent = `${note ? `${note} ` : ''}${ss.length} session${ss.length === 1 ? '' : 's'}, ` +
      `${us.length} account${us.length === 1 ? '' : 's'}, as of ${timeText(Date.now())}.`;
    el.adminStatus.dataset.state = 'ready';
  } catch (e) {
    if (seq !== adminSeq) return;
    el.adminStatus.textContent = `Could not load the administration lists: ${(e && e.message) || e}`;
    el.adminStatus.dataset.state = 'error';
  }
}

function myUsername() {
  return el.sessionUsername.textContent;
}

/** A button that runs an admin request, reports it and refreshes the lists. */
function adminButton(testid, label, ariaLabel, cls, run, done) {
  const btn = h('button', {
    type: 'button', class: `${cls} small`, 'data-testid': testid, 'aria-label': ariaLabel, text: label,
  });
  btn.addEventListener('click', () => busy(btn, async () => {
    let note;
    try {
      const r = await run();
      note = done(toNumber(pick(r, 'affected') ?? r));
    } catch (e) {
      el.adminStatus.textContent = `${ariaLabel} failed: ${(e && e.message) || e}`;
      el.adminStatus.dataset.state = 'error';
      return;
    }
    if (view !== 'session') return;
    await Promise.all([refreshAdmin(note), refreshDevices()]);
    $('admin-title').focus();
  }));
  return btn;
}

const plural = (n, one) => `${Number.isFinite(n) ? n : 'the'} ${one}${n === 1 ? '' : 's'}`;

function adminSessionRow(e) {
  const id = idText(pick(e, 'sessionId'));
  const user = e.username || '';
  const current = isCurrent(e);
  const mine = user === myUsername();
  const device = deviceText(e.client, e.platform);
  const actions = [];
  if (!current) {
    actions.push(adminButton('admin-revoke-session', 'End session', `End session ${id} of ${user}`,
      'danger', () => client.adminRevokeSession(e.sessionId), () => `Ended session ${id} of ${user}.`));
  }
  if (!mine) {
    actions.push(adminButton('admin-logout-user', 'Log out user', `Log out user ${user} everywhere`,
      'danger', () => client.adminLogoutUser(user), (n) => `Logged out ${user}: ${plural(n, 'session')} ended.`));
    actions.push(adminButton('admin-suspend', 'Suspend', `Suspend ${user}`,
      'danger', () => client.adminSuspendUser(user), (n) => `Suspended ${user}: ${plural(n, 'session')} ended.`));
  }
  return h('tr', {
    'data-testid': 'admin-session-row', 'data-session-id': id, 'data-username': user,
    'data-current': current ? 'true' : 'false', class: current ? 'current' : '',
  },
  h('td', { 'data-label': 'User', class: 'nowrap' }, user),
  h('td', { 'data-label': 'Session' }, h('code', { text: id })),
  h('td', { 'data-label': 'Device' }, device),
  h('td', { 'data-label': 'Address', class: 'nowrap' }, e.address || ''),
  h('td', { 'data-label': 'Last active', class: 'nowrap' }, timeEl(pick(e, 'lastActive', 'lastActiveMs'), { compact: true })),
  h('td', { 'data-label': 'Status' }, current
    ? h('span', { class: 'badge badge-current', text: 'You, here' })
    : isConnected(e) ? h('span', { class: 'badge badge-live', text: 'Connected' })
      : h('span', { class: 'badge', text: 'Away' })),
  h('td', { class: 'actions' }, ...actions));
}

function adminUserRow(u) {
  const user = u.username || '';
  const suspended = Boolean(toNumber(u.suspended));
  const mine = user === myUsername();
  const actions = [];
  if (mine) {
    actions.push(h('span', { class: 'badge badge-current', text: 'You' }));
  } else {
    actions.push(adminButton('admin-logout-user', 'Log out everywhere', `Log out everywhere: ${user}`,
      'danger', () => client.adminLogoutUser(user), (n) => `Logged out ${user}: ${plural(n, 'session')} ended.`));
    actions.push(suspended
      ? adminButton('admin-unsuspend', 'Unsuspend', `Unsuspend ${user}`, 'secondary',
        () => client.adminUnsuspendUser(user), () => `${user} may sign in again.`)
      : adminButton('admin-suspend', 'Suspend', `Suspend ${user}`, 'danger',
        () => client.adminSuspendUser(user), (n) => `Suspended ${user}: ${plural(n, 'session')} ended.`));
  }
  const role = isAdminRole(u.role) ? 'administrator' : 'user';
  const appRole = pick(u, 'appRole');
  return h('tr', {
    'data-testid': 'admin-user-row', 'data-username': user, 'data-suspended': suspended ? 'true' : 'false',
  },
  h('td', { 'data-label': 'User', class: 'nowrap' }, user),
  h('td', { 'data-label': 'Role' }, appRole ? `${role} (${appRole})` : role),
  h('td', { 'data-label': 'State' }, suspended
    ? h('span', { class: 'badge badge-warn', 'data-testid': 'admin-user-state', text: 'Suspended' })
    : h('span', { class: 'badge', 'data-testid': 'admin-user-state', text: 'Active' })),
  h('td', { 'data-label': 'Last sign-in', class: 'nowrap' }, timeEl(pick(u, 'lastLogin', 'lastLoginMs'), { compact: true })),
  h('td', { class: 'actions' }, ...actions));
}

el.adminRefresh.addEventListener('click', () => busy(el.adminRefresh, () => refreshAdmin()));

// ---------------------------------------------------------------------------------------

start();
