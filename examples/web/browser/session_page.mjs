// Browser tests of the session page (examples/web/index.html) against a live sessiond,
// in Debian's chromium driven by playwright-core. Run by tests/browser.rs; by hand:
//
//   SESSIOND_WS_URL=ws://127.0.0.1:7451/ SESSIOND_ADMIN_PASSWORD=... \
//   SESSIOND_MULTI_WS_URL=ws://127.0.0.1:7461/ SESSIOND_ARTIFACTS=/tmp/shots \
//   node examples/web/browser/session_page.mjs
//
// Environment:
//   SESSIOND_WS_URL          the server, with the default policies (one session per
//                            account, a new login revokes the old one; duplicate = reject),
//                            allowing any Origin (--ws-allowed-origin '*')
//   SESSIOND_ADMIN_PASSWORD  the password of its `admin` account
//   SESSIOND_MULTI_WS_URL    a server without a session limit (--max-sessions-per-user 0),
//                            for scenario 4; without it scenario 4 is skipped (said so)
//   SESSIOND_WSS_URL         the same server over TLS (wss://, a certificate the test made),
//                            for scenario 5; without it scenario 5 is skipped (said so)
// Scenario 6 runs axe-core (a dev dependency) on four views and fails on any serious or
// critical WCAG 2 A/AA finding.
//   SESSIOND_ARTIFACTS       where the screenshots go (each scenario's key moment, and one per page
//                            of a scenario that failed); default: a temporary directory
//   SESSIOND_CHROMIUM        the browser (default /usr/bin/chromium)
//   SESSIOND_SCENARIOS       comma-separated scenario numbers to run (default: all)
//
// The page is served from this script's own HTTP server on 127.0.0.1:0. Exit status 0
// when every scenario passed, 1 when one failed, 2 when the environment is unusable.

import http from 'node:http';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

/** axe-core, injected into the page for the accessibility checks (scenario 6). */
const AXE = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'node_modules', 'axe-core', 'axe.min.js');

const WEB_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const WS_URL = process.env.SESSIOND_WS_URL;
const MULTI_WS_URL = process.env.SESSIOND_MULTI_WS_URL;
const WSS_URL = process.env.SESSIOND_WSS_URL;
const ADMIN_PASSWORD = process.env.SESSIOND_ADMIN_PASSWORD;
const ARTIFACTS = process.env.SESSIOND_ARTIFACTS ||
  fs.mkdtempSync(path.join(os.tmpdir(), 'sessiond-browser-'));
const CHROMIUM = process.env.SESSIOND_CHROMIUM || '/usr/bin/chromium';
const ONLY = (process.env.SESSIOND_SCENARIOS || '').split(',').map((s) => s.trim()).filter(Boolean);

/** Bounds: one Playwright action or wait, one scenario. */
const STEP_MS = 10_000;
const SCENARIO_MS = 60_000;
/** "At once": a push reaches the other page within this. */
const PUSH_MS = 3_000;

/** A second browser, as another device: its user agent names another version. */
const OTHER_UA = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) ' +
  'Chrome/999.0.0.0 Safari/537.36';

const PASSWORD = 'correct horse battery';

function die(msg) {
  console.error(`session_page: ${msg}`);
  process.exit(2);
}

if (!WS_URL) die('SESSIOND_WS_URL is not set (the WebSocket URL of a running sessiond)');
if (!ADMIN_PASSWORD) die('SESSIOND_ADMIN_PASSWORD is not set (the password of its admin account)');
if (!fs.existsSync(CHROMIUM)) die(`no browser at ${CHROMIUM}`);
fs.mkdirSync(ARTIFACTS, { recursive: true });

// ---------------------------------------------------------------------------------------
// The page's files, over HTTP

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
};

function serve(root) {
  const server = http.createServer((req, res) => {
    let rel;
    try {
      rel = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    } catch {
      res.writeHead(400).end();
      return;
    }
    if (rel.endsWith('/')) rel += 'index.html';
    const file = path.join(root, path.normalize(rel));
    if (!file.startsWith(root + path.sep) || file.includes(`${path.sep}node_modules${path.sep}`)) {
      res.writeHead(404).end();
      return;
    }
    fs.readFile(file, (err, body) => {
      if (err) {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
        return;
      }
      res.writeHead(200, {
        'content-type': TYPES[path.extname(file)] || 'application/octet-stream',
        'cache-control': 'no-store',
      });
      res.end(body);
    });
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
}

// ---------------------------------------------------------------------------------------
// Helpers on pages

let base = '';

function pageUrl(ws) {
  return `${base}index.html?server=${encodeURIComponent(ws)}`;
}

const stamp = Date.now().toString(36).slice(-6);
let userCount = 0;
function newUsername(tag) {
  userCount += 1;
  return `${tag}-${stamp}-${userCount}`;
}

class Failure extends Error {}

function check(cond, msg) {
  if (!cond) throw new Failure(msg);
}

/** The scenario's bookkeeping: contexts to close, pages to screenshot on failure. */
class Run {
  constructor(browser, name) {
    this.browser = browser;
    this.name = name;
    this.contexts = [];
    this.pages = [];
    this.errors = [];
  }

  async context(options = {}) {
    const ctx = await this.browser.newContext({ viewport: { width: 1100, height: 900 }, ...options });
    ctx.setDefaultTimeout(STEP_MS);
    this.contexts.push(ctx);
    return ctx;
  }

  /** A new page of `ctx` showing the session page for server `ws`. */
  async open(ctx, ws, label) {
    const page = await ctx.newPage();
    page.label = label;
    this.pages.push(page);
    page.on('pageerror', (e) => this.errors.push(`${label}: uncaught ${e.message}`));
    page.on('console', (m) => {
      if (m.type() === 'error') this.errors.push(`${label}: console error: ${m.text()}`);
    });
    await page.goto(pageUrl(ws));
    await settled(page);
    return page;
  }

  async shot(page, what) {
    const file = path.join(ARTIFACTS, `${this.name}-${what}.png`);
    await page.screenshot({ path: file, fullPage: true });
    return file;
  }

  async close() {
    for (const ctx of this.contexts) await ctx.close().catch(() => {});
  }
}

/** Waits until the page shows something other than "Connecting". */
async function settled(page) {
  await page.waitForFunction(
    () => document.body.dataset.view && document.body.dataset.view !== 'loading',
    null,
    { timeout: STEP_MS },
  );
}

const tid = (page, id) => page.locator(`[data-testid="${id}"]`);

async function viewOf(page) {
  return page.evaluate(() => document.body.dataset.view);
}

async function expectSession(page, who) {
  await tid(page, 'session-view').waitFor({ state: 'visible' }).catch(async () => {
    const err = await tid(page, 'auth-error').textContent().catch(() => '');
    const notice = await tid(page, 'notice').textContent().catch(() => '');
    throw new Failure(`${page.label}: the session view did not appear for ${who} ` +
      `(view ${await viewOf(page)}; error ${JSON.stringify(err)}; notice ${JSON.stringify(notice.trim())})`);
  });
}

async function register(page, username, password = PASSWORD) {
  await tid(page, 'register-username').fill(username);
  await tid(page, 'register-password').fill(password);
  await tid(page, 'register-email').fill(`${username}@example.org`);
  await tid(page, 'register-submit').click();
  await expectSession(page, username);
  check((await tid(page, 'session-username').textContent()) === username,
    `${page.label}: the session view names ${await tid(page, 'session-username').textContent()}, not ${username}`);
}

/** Signs in, by the keyboard: Enter in the password field submits the form. */
async function login(page, username, password = PASSWORD) {
  await tid(page, 'login-username').fill(username);
  await tid(page, 'login-password').fill(password);
  await tid(page, 'login-password').press('Enter');
  await expectSession(page, username);
  const focused = await page.evaluate(() => document.activeElement && document.activeElement.id);
  check(focused === 'session-title', `${page.label}: after signing in focus is on ${focused}, not on the heading`);
}

/** Waits for the notice of `kind` (and `reason`); its text. */
async function expectNotice(page, kind, reason, timeout = STEP_MS) {
  const sel = `[data-testid="notice"][data-kind="${kind}"]${reason ? `[data-reason="${reason}"]` : ''}`;
  try {
    await page.locator(sel).waitFor({ state: 'visible', timeout });
  } catch {
    const n = tid(page, 'notice');
    const shown = await n.isVisible() ? `${await n.getAttribute('data-kind')}/${await n.getAttribute('data-reason')}: ` +
      JSON.stringify((await n.textContent()).trim()) : 'none';
    throw new Failure(`${page.label}: no ${kind}${reason ? ` (${reason})` : ''} notice within ${timeout} ms; ` +
      `view ${await viewOf(page)}, notice shown: ${shown}`);
  }
  check(await page.locator(sel).getAttribute('role') === 'alert', `${page.label}: the notice is not role=alert`);
  const focused = await page.evaluate(() => document.activeElement && document.activeElement.dataset.testid);
  check(focused === 'notice-title', `${page.label}: focus is on ${focused}, not on the notice's title`);
  return (await page.locator(sel).textContent()).replace(/\s+/g, ' ').trim();
}

/** The heartbeats the page has counted. */
async function heartbeats(page) {
  return Number(await tid(page, 'heartbeat').getAttribute('data-count'));
}

async function expectHeartbeats(page, more = 1) {
  const from = await heartbeats(page);
  try {
    await page.waitForFunction(
      ([n]) => Number(document.querySelector('[data-testid="heartbeat"]').dataset.count) >= n,
      [from + more],
      { timeout: STEP_MS },
    );
  } catch {
    throw new Failure(`${page.label}: no heartbeat answered within ${STEP_MS} ms (count stays ${from})`);
  }
  const rtt = await tid(page, 'heartbeat-rtt').textContent();
  check(/\d+(\.\d+)? ms/.test(rtt), `${page.label}: heartbeat indicator says ${JSON.stringify(rtt)}`);
}

/** The page's stored tokens: {key: value}. */
async function storedTokens(page) {
  return page.evaluate(() => {
    const out = {};
    for (let i = 0; i < localStorage.length; i += 1) {
      const k = localStorage.key(i);
      if (k.startsWith('sessiond.token')) out[k] = localStorage.getItem(k);
    }
    return out;
  });
}

/** This page's own row in its device list: {id, address, device}. */
async function ownDevice(page) {
  const row = page.locator('[data-testid="device-row"][data-current="true"]');
  await row.waitFor({ state: 'visible' }).catch(() => {
    throw new Failure(`${page.label}: its device list shows no current session`);
  });
  return {
    id: await row.getAttribute('data-session-id'),
    address: (await row.locator('[data-testid="device-address"]').textContent()).trim(),
    device: (await row.locator('[data-testid="device-name"]').textContent()).trim(),
  };
}

async function deviceRows(page, n) {
  try {
    await page.waitForFunction(
      ([want]) => document.querySelectorAll('[data-testid="device-row"]').length === want,
      [n],
      { timeout: STEP_MS },
    );
  } catch {
    const have = await page.locator('[data-testid="device-row"]').count();
    throw new Failure(`${page.label}: the device list has ${have} rows, not ${n}`);
  }
}

// ---------------------------------------------------------------------------------------
// Scenarios

const scenarios = [];
function scenario(num, name, fn, needs) {
  scenarios.push({ num: String(num), name: `${num}-${name}`, fn, needs });
}

scenario(1, 'new-login-revokes', async (run) => {
  const user = newUsername('one');
  const ctxA = await run.context();
  const ctxB = await run.context({ userAgent: OTHER_UA });
  const a = await run.open(ctxA, WS_URL, 'first browser');
  check(await tid(a, 'login-form').isVisible(), 'first browser: no login form on a fresh start');
  await register(a, user);
  await expectHeartbeats(a);
  const tokenA = await storedTokens(a);
  check(Object.keys(tokenA).length === 1, `first browser: ${Object.keys(tokenA).length} stored tokens after login, not 1`);
  const idA = (await tid(a, 'session-id').textContent()).trim();

  const b = await run.open(ctxB, WS_URL, 'second browser');
  await login(b, user);
  const devB = await ownDevice(b);
  check(devB.device.includes('Chrome 999'), `second browser: its device is ${JSON.stringify(devB.device)}`);
  check(devB.id !== idA, 'second browser: the new login has the old session id');

  const text = await expectNotice(a, 'revoked', 'NEW_LOGIN', PUSH_MS);
  const device = await tid(a, 'notice-device').textContent();
  const address = (await tid(a, 'notice-address').textContent()).trim();
  const when = await tid(a, 'notice-time').locator('time').getAttribute('datetime').catch(() => null);
  check(device.includes('Chrome 999'), `first browser: the notice names device ${JSON.stringify(device)}, not the second browser's`);
  check(address === devB.address, `first browser: the notice names address ${address}, the second browser is ${devB.address}`);
  check(when && Math.abs(Date.parse(when) - Date.now()) < 60_000, `first browser: the notice's time is ${when}`);
  check(await tid(a, 'login-form').isVisible(), 'first browser: no login form under the notice');
  check(!(await tid(a, 'session-view').isVisible()), 'first browser: still shows the session');
  const shot = await run.shot(a, 'revoked-notice');

  const left = await storedTokens(a);
  check(Object.keys(left).length === 0, 'first browser: the revoked token is still stored');
  check(await b.locator('[data-testid="session-view"]').isVisible(), 'second browser: lost its session');

  // Reloaded with its old token put back: the server refuses it as revoked.
  await a.evaluate((t) => { for (const [k, v] of Object.entries(t)) localStorage.setItem(k, v); }, tokenA);
  await a.reload();
  await settled(a);
  await tid(a, 'login-form').waitFor({ state: 'visible' });
  await expectNotice(a, 'invalid', 'REVOKED');
  check(!(await tid(a, 'session-view').isVisible()), 'first browser: resumed a revoked session');
  check(Object.keys(await storedTokens(a)).length === 0, 'first browser: kept the refused token');
  await expectHeartbeats(b);
  return `notice "${text.slice(0, 90)}..."; screenshot ${shot}`;
});

scenario(2, 'second-tab-duplicate', async (run) => {
  const user = newUsername('two');
  const ctx = await run.context();
  const first = await run.open(ctx, WS_URL, 'first tab');
  await register(first, user);
  await expectHeartbeats(first);
  const id = (await tid(first, 'session-id').textContent()).trim();
  check(Object.keys(await storedTokens(first)).length === 1, 'first tab: no stored token');

  const second = await run.open(ctx, WS_URL, 'second tab');
  await expectNotice(second, 'duplicate', null);
  check(!(await tid(second, 'session-view').isVisible()), 'second tab: shows the session too');
  check(await tid(second, 'notice-retry').isVisible(), 'second tab: no "try again" button');
  const shot = await run.shot(second, 'duplicate-notice');
  check(Object.keys(await storedTokens(second)).length === 1, 'second tab: the shared token was removed');
  // The first tab carries on.
  await expectHeartbeats(first);
  check(await tid(first, 'session-view').isVisible(), 'first tab: lost its session');

  // The first tab closed: the second takes the session up when asked to try again.
  await first.close({ runBeforeUnload: true });
  const deadline = Date.now() + STEP_MS;
  for (;;) {
    await tid(second, 'notice-retry').click();
    await settled(second);
    if (await tid(second, 'session-view').isVisible()) break;
    check(Date.now() < deadline, 'second tab: "try again" never resumed the session after the first tab closed');
    await second.waitForTimeout(300);
  }
  const id2 = (await tid(second, 'session-id').textContent()).trim();
  check(id2 === id, `second tab: resumed session ${id2}, not ${id}`);
  await expectHeartbeats(second);
  return `screenshot ${shot}`;
});

scenario(3, 'admin-suspends', async (run) => {
  const user = newUsername('three');
  const ctxAdmin = await run.context();
  const ctxUser = await run.context({ userAgent: OTHER_UA });
  const admin = await run.open(ctxAdmin, WS_URL, 'administrator');
  await login(admin, 'admin', ADMIN_PASSWORD);
  check((await tid(admin, 'session-role').getAttribute('data-role')) === 'admin', 'administrator: role not shown as admin');
  await tid(admin, 'admin-panel').waitFor({ state: 'visible' });

  const u = await run.open(ctxUser, WS_URL, 'user');
  await register(u, user);
  check(await tid(u, 'admin-panel').isHidden(), 'user: sees the admin panel');
  await expectHeartbeats(u);

  await tid(admin, 'admin-refresh').click();
  const sessionRow = admin.locator(`[data-testid="admin-session-row"][data-username="${user}"]`);
  await sessionRow.waitFor({ state: 'visible' }).catch(() => {
    throw new Failure(`administrator: ${user}'s session is not in the list of every session`);
  });
  const userRow = admin.locator(`[data-testid="admin-user-row"][data-username="${user}"]`);
  await userRow.waitFor({ state: 'visible' });
  const t0 = Date.now();
  await userRow.locator('[data-testid="admin-suspend"]').click();
  await expectNotice(u, 'revoked', 'ACCOUNT_SUSPENDED', PUSH_MS);
  const took = Date.now() - t0;
  const shot = await run.shot(u, 'suspended-notice');
  check(!(await tid(u, 'session-view').isVisible()), 'user: still shows the session');
  await admin.locator(`[data-testid="admin-user-row"][data-username="${user}"][data-suspended="true"]`)
    .waitFor({ state: 'visible' }).catch(() => {
      throw new Failure('administrator: the account is not shown as suspended');
    });
  check(await sessionRow.count() === 0, 'administrator: the suspended user\'s session is still listed');
  const adminShot = await run.shot(admin, 'admin-panel');

  // A correct login is refused while suspended; unsuspended, it works again.
  await tid(u, 'login-username').fill(user);
  await tid(u, 'login-password').fill(PASSWORD);
  await tid(u, 'login-submit').click();
  await u.locator('[data-testid="auth-error"][data-reason="SUSPENDED"]').waitFor({ state: 'visible' }).catch(async () => {
    throw new Failure(`user: login while suspended said ${JSON.stringify(await tid(u, 'auth-error').textContent())}`);
  });
  await admin.locator(`[data-testid="admin-user-row"][data-username="${user}"] [data-testid="admin-unsuspend"]`).click();
  await admin.locator(`[data-testid="admin-user-row"][data-username="${user}"][data-suspended="false"]`)
    .waitFor({ state: 'visible' });
  await login(u, user);
  await expectHeartbeats(admin);
  return `the suspended user's page showed it ${took} ms after the click; screenshots ${shot}, ${adminShot}`;
}, () => true);

scenario(4, 'revoke-from-device-list', async (run) => {
  const user = newUsername('four');
  const ctxA = await run.context();
  const ctxB = await run.context({ userAgent: OTHER_UA });
  const a = await run.open(ctxA, MULTI_WS_URL, 'first browser');
  await register(a, user);
  const devA = await ownDevice(a);
  await deviceRows(a, 1);
  const b = await run.open(ctxB, MULTI_WS_URL, 'second browser');
  await login(b, user);
  const devB = await ownDevice(b);
  await expectHeartbeats(b);
  // The first browser is told of the new login and lists it (or on demand).
  await tid(a, 'devices-refresh').click();
  await deviceRows(a, 2);
  check(await tid(a, 'session-view').isVisible(), 'first browser: a second login ended its session (is the session limit off?)');

  const other = a.locator(`[data-testid="device-row"][data-session-id="${devB.id}"]`);
  check(await other.count() === 1, `first browser: the device list does not show session ${devB.id}`);
  check((await other.locator('[data-testid="device-address"]').textContent()).trim() === devB.address,
    'first browser: the other session\'s address differs from what the second browser lists');
  const listShot = await run.shot(a, 'device-list');
  // By the keyboard: the revoke button is focusable and Enter presses it.
  await other.locator('[data-testid="device-revoke"]').focus();
  await a.keyboard.press('Enter');

  await expectNotice(b, 'revoked', 'REVOKED_BY_USER', PUSH_MS);
  const by = await tid(b, 'notice-device').textContent();
  const address = (await tid(b, 'notice-address').textContent()).trim();
  check(by.includes(devA.device), `second browser: the notice names ${JSON.stringify(by)}, not ${JSON.stringify(devA.device)}`);
  check(address === devA.address, `second browser: the notice names ${address}, the first browser is ${devA.address}`);
  const shot = await run.shot(b, 'revoked-by-user-notice');
  await deviceRows(a, 1);
  check(await tid(a, 'session-view').isVisible(), 'first browser: lost its own session');
  await expectHeartbeats(a);
  return `screenshots ${listShot}, ${shot}`;
}, () => (MULTI_WS_URL ? true : 'SESSIOND_MULTI_WS_URL is not set (a server with --max-sessions-per-user 0)'));

// ---------------------------------------------------------------------------------------

function bounded(promise, ms, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Failure(`${what} took over ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

scenario(5, 'wss', async (run) => {
  // The server's certificate is the test's own: this context ignores that no CA it knows
  // signed it (a real deployment has a real one).
  const user = newUsername('five');
  const ctxA = await run.context({ ignoreHTTPSErrors: true });
  const ctxB = await run.context({ ignoreHTTPSErrors: true, userAgent: OTHER_UA });
  const a = await run.open(ctxA, WSS_URL, 'first browser, wss');
  check(await tid(a, 'login-form').isVisible(), 'wss: no login form on a fresh start');
  await register(a, user);
  await expectHeartbeats(a, 2);
  const b = await run.open(ctxB, WSS_URL, 'second browser, wss');
  await login(b, user);
  await expectNotice(a, 'revoked', 'NEW_LOGIN', PUSH_MS);
  const shot = await run.shot(a, 'revoked-notice');
  await expectHeartbeats(b);
  return `over ${WSS_URL}; screenshot ${shot}`;
}, () => (WSS_URL ? true : 'SESSIOND_WSS_URL is not set'));

/** axe-core's serious and critical findings on the page as it is now (WCAG 2 A and AA). */
async function accessibilityProblems(page) {
  await page.addScriptTag({ path: AXE });
  const found = await page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const r = await axe.run(document, { runOnly: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] });
    return r.violations
      .filter((v) => v.impact === 'serious' || v.impact === 'critical')
      .map((v) => `${v.id} (${v.impact}): ${v.help} at ${v.nodes.map((n) => n.target.join(' ')).slice(0, 3).join(', ')}`);
  });
  return found;
}

scenario(6, 'accessibility', async (run) => {
  // The login view, the live session with its device list, a revocation notice, and an
  // administrator's panel: no serious or critical WCAG 2 A/AA finding by axe-core.
  const user = newUsername('six');
  const ctxA = await run.context();
  const ctxB = await run.context({ userAgent: OTHER_UA });
  const a = await run.open(ctxA, WS_URL, 'first browser');
  const views = [];
  const checkView = async (page, what) => {
    const problems = await accessibilityProblems(page);
    check(problems.length === 0, `${what}: ${problems.join('; ')}`);
    views.push(what);
  };
  await checkView(a, 'login view');
  await register(a, user);
  await expectHeartbeats(a);
  await checkView(a, 'session view');
  const b = await run.open(ctxB, WS_URL, 'second browser');
  await login(b, user);
  await expectNotice(a, 'revoked', 'NEW_LOGIN', PUSH_MS);
  await checkView(a, 'revocation notice');
  const adminCtx = await run.context();
  const admin = await run.open(adminCtx, WS_URL, 'administrator');
  await login(admin, 'admin', ADMIN_PASSWORD);
  await tid(admin, 'admin-panel').waitFor({ state: 'visible' });
  await checkView(admin, 'administration panel');
  return `no serious or critical finding in: ${views.join(', ')}`;
}, () => (fs.existsSync(AXE) ? true : `${AXE} is missing (npm ci)`));

async function main() {
  const server = await serve(WEB_ROOT);
  base = `http://127.0.0.1:${server.address().port}/`;
  console.log(`session_page: page at ${base}, server ${WS_URL}${MULTI_WS_URL ? `, multi-session server ${MULTI_WS_URL}` : ''}`);
  console.log(`session_page: screenshots in ${ARTIFACTS}`);
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    timeout: 30_000,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  console.log(`session_page: chromium ${browser.version()}`);
  const results = [];
  try {
    for (const s of scenarios) {
      if (ONLY.length && !ONLY.includes(s.num)) continue;
      const ready = s.needs ? s.needs() : true;
      if (ready !== true) {
        console.log(`SKIP ${s.name}: ${ready}`);
        results.push({ name: s.name, skipped: true });
        continue;
      }
      const run = new Run(browser, s.name);
      const started = Date.now();
      try {
        const note = await bounded(s.fn(run), SCENARIO_MS, `scenario ${s.name}`);
        check(run.errors.length === 0, `errors in the page:\n  ${run.errors.join('\n  ')}`);
        console.log(`ok   ${s.name} (${Date.now() - started} ms): ${note || ''}`);
        results.push({ name: s.name, ok: true });
      } catch (e) {
        const msg = e instanceof Failure ? e.message : (e && e.stack) || String(e);
        const shots = [];
        for (const [i, page] of run.pages.entries()) {
          if (page.isClosed()) continue;
          shots.push(await run.shot(page, `FAILED-${i + 1}`).catch((err) => `(no screenshot: ${err.message})`));
        }
        console.log(`FAIL ${s.name} (${Date.now() - started} ms): ${msg}`);
        if (run.errors.length) console.log(`     page errors:\n       ${run.errors.join('\n       ')}`);
        if (shots.length) console.log(`     screenshots: ${shots.join(', ')}`);
        results.push({ name: s.name, ok: false });
      } finally {
        await run.close();
      }
    }
  } finally {
    await browser.close().catch(() => {});
    server.close();
  }
  const failed = results.filter((r) => r.ok === false);
  const passed = results.filter((r) => r.ok);
  const skipped = results.filter((r) => r.skipped);
  console.log(`session_page: ${passed.length} passed, ${failed.length} failed, ${skipped.length} skipped`);
  if (results.length === 0) {
    console.log('session_page: no scenario ran');
    return 1;
  }
  return failed.length ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    console.error(`session_page: ${(e && e.stack) || e}`);
    process.exit(1);
  },
);
