// Tests of SessiondClient (node --test), at two depths:
//
// - against a fake server in this process (the `ws` package's WebSocketServer, speaking
//   frames made with the codec): request timeouts and late replies, several frames in one
//   message, unknown pushes and replies, a server that stops answering heartbeats, a text
//   message. These always run.
// - against a live sessiond, whose WebSocket URL and admin password come from the
//   environment (tests/web_client.rs starts the server and sets them):
//
//     SESSIOND_WS_URL           e.g. ws://127.0.0.1:PORT/ (default policies: one session
//                               per account, duplicate = reject; quick heartbeats)
//     SESSIOND_ADMIN_PASSWORD   the password of its `admin` account
//
//   Without SESSIOND_WS_URL the live tests are skipped, unless SESSIOND_REQUIRE_SERVER=1
//   (then they fail).
//
// Every wait is bounded. Run: cd examples/web && node --test test/client.test.js

import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { inspect } from 'node:util';
import WebSocket, { WebSocketServer } from 'ws';
import { concat } from './bytes.js';

import {
  ConnectionClosed,
  FrameReader,
  LoginFailed,
  MemoryStorage,
  Opcode,
  RegisterFailed,
  RequestTimeout,
  Role,
  SessiondClient,
  SessiondError,
  Flag,
  encodeFrame,
  tokenToHex,
} from '../sessiond.js';

const WS_URL = process.env.SESSIOND_WS_URL || '';
const ADMIN_PASSWORD = process.env.SESSIOND_ADMIN_PASSWORD || '';
const REQUIRE = process.env.SESSIOND_REQUIRE_SERVER === '1';
const PASSWORD = 'pa;ss word: 1';

// Whatever is printed while the tests run, checked at the end for secrets.
const printed = [];
const secrets = new Set([PASSWORD]);
if (ADMIN_PASSWORD) secrets.add(ADMIN_PASSWORD);
for (const level of ['log', 'info', 'warn', 'error', 'debug']) {
  const orig = console[level];
  console[level] = (...args) => {
    printed.push(args.map(String).join(' '));
    orig.apply(console, args);
  };
}

// ---- helpers ----

const clients = [];

/** A client whose sockets are kept (`c.sockets`) so a test can drop them. */
function makeClient({ url = WS_URL, storage = new MemoryStorage(), ...opts } = {}) {
  const sockets = [];
  class TrackedWebSocket extends WebSocket {
    constructor(...args) {
      super(...args);
      sockets.push(this);
    }
  }
  const c = new SessiondClient({
    url,
    WebSocket: TrackedWebSocket,
    storage,
    client: 'sessiond-web-test',
    platform: 'node-test',
    requestTimeoutMs: 5000,
    reconnect: { initialMs: 50, maxMs: 400 },
    ...opts,
  });
  c.sockets = sockets;
  c.events = [];
  for (const type of ['state', 'heartbeat', 'revoked', 'expired', 'duplicate', 'newLogin', 'shutdown', 'userInfo', 'attrs', 'disconnected', 'resumed', 'loggedIn', 'loggedOut', 'push']) {
    c.addEventListener(type, (e) => c.events.push({ type, detail: e.detail }));
  }
  clients.push(c);
  return c;
}

/** The next `type` event of `target` (matching `filter`), within `timeoutMs`. */
function waitFor(target, type, { timeoutMs = 5000, filter = () => true } = {}) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      target.removeEventListener(type, on);
      reject(new Error(`no ${type} event within ${timeoutMs} ms`));
    }, timeoutMs);
    const on = (e) => {
      if (!filter(e.detail)) return;
      clearTimeout(timer);
      target.removeEventListener(type, on);
      resolve(e.detail);
    };
    target.addEventListener(type, on);
  });
}

/** Waits until `pred()` holds, polling, within `timeoutMs`. */
async function until(pred, what, timeoutMs = 5000) {
  const end = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

let serial = 0;
/** A fresh username by 5.15's rules (3..=32 of a-z0-9._-). */
function newName(prefix) {
  serial += 1;
  return `${prefix}${Date.now().toString(36)}${process.pid.toString(36)}${serial}`.slice(0, 32);
}

async function newUser(prefix) {
  const name = newName(prefix);
  const c = makeClient();
  const r = await c.register(name, PASSWORD, `${name}@example.org`);
  assert.equal(r.username, name);
  await c.close();
  return name;
}

/** A rejection of `promise` that satisfies `check`, within `timeoutMs`. */
async function rejects(promise, check, timeoutMs = 8000) {
  let timer;
  const bounded = Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`not settled within ${timeoutMs} ms`)), timeoutMs);
    }),
  ]);
  try {
    await assert.rejects(bounded, check);
  } finally {
    clearTimeout(timer);
  }
}

function noSecretsIn(text, where) {
  for (const s of secrets) assert.ok(!String(text).includes(s), `${where} shows a secret`);
}

after(async () => {
  await Promise.allSettled(clients.map((c) => Promise.race([c.close(), new Promise((r) => setTimeout(r, 2000))])));
  for (const line of printed) noSecretsIn(line, 'console output');
});

// ---- a fake server ----

const TOKEN = Uint8Array.from({ length: 32 }, (_, i) => 100 + i);
const INFO = {
  sessionId: 7,
  userId: 2,
  role: Role.USER,
  username: 'alice',
  userCreated: 1,
  lastLogin: 0,
  sessionCreated: 2,
  sessionExpires: Date.now() + 86400_000,
  idleExpiryMs: 1800_000,
  heartbeatIntervalMs: 100,
  heartbeatTimeoutMs: 300,
};

/** A WebSocket server whose every frame goes to `await srv.next(opcode)`. */
async function fakeServer() {
  const wss = new WebSocketServer({
    host: '127.0.0.1',
    port: 0,
    handleProtocols: (offered) => (offered.has('sessiond') ? 'sessiond' : false),
  });
  await once(wss, 'listening');
  const queue = [];
  const waiters = [];
  const conns = [];
  wss.on('connection', (ws) => {
    const reader = new FrameReader();
    const conn = {
      ws,
      protocol: ws.protocol,
      send: (...frames) => ws.send(concat(...frames.map((f) => encodeFrame(f)))),
    };
    conns.push(conn);
    ws.on('message', (data) => {
      reader.push(data);
      for (let f = reader.pull(); f; f = reader.pull()) {
        const item = { conn, frame: f };
        const w = waiters.findIndex((x) => x.opcode === f.opcode);
        if (w >= 0) waiters.splice(w, 1)[0].resolve(item);
        else queue.push(item);
      }
    });
  });
  return {
    url: `ws://127.0.0.1:${wss.address().port}/`,
    conns,
    /** The next frame with `opcode` from any connection, within `timeoutMs`. */
    next(opcode, timeoutMs = 3000) {
      const i = queue.findIndex((x) => x.frame.opcode === opcode);
      if (i >= 0) return Promise.resolve(queue.splice(i, 1)[0]);
      return new Promise((resolve, reject) => {
        const waiter = { opcode, resolve: (v) => (clearTimeout(waiter.timer), resolve(v)) };
        waiter.timer = setTimeout(() => {
          waiters.splice(waiters.indexOf(waiter), 1);
          reject(new Error(`the fake server got no frame 0x${opcode.toString(16)} within ${timeoutMs} ms`));
        }, timeoutMs);
        waiters.push(waiter);
      });
    },
    async close() {
      for (const c of conns) c.ws.terminate();
      await new Promise((r) => wss.close(r));
    },
  };
}

describe('SessiondClient against a fake server', () => {
  it('times requests out, applies late replies, and reads several frames in one message', { timeout: 20000 }, async () => {
    const srv = await fakeServer();
    try {
      const storage = new MemoryStorage();
      const c = makeClient({ url: srv.url, storage, requestTimeoutMs: 300 });
      assert.equal(c.state, 'idle');
      assert.deepEqual(await c.connect(), { resumed: false });
      assert.equal(c.state, 'open');
      assert.equal(srv.conns[0].protocol, 'sessiond', 'the client offers the subprotocol');

      // REGISTER_SUCCESS behind an unknown push and a NEW_LOGIN, all in one message
      const reg = c.register('carol', PASSWORD, 'carol@example.org');
      const { conn, frame } = await srv.next(Opcode.REGISTER_REQUEST);
      assert.deepEqual(frame.message, { username: 'carol', password: PASSWORD, email: 'carol@example.org' });
      const pushes = c.events.length;
      conn.send(
        { opcode: 0x7e, flags: Flag.PUSH, payload: Uint8Array.of(1, 2) },
        { opcode: Opcode.NEW_LOGIN, flags: Flag.PUSH, message: { sessionId: 8, client: 'x', platform: 'y', address: 'z', at: 5 } },
        { opcode: Opcode.REGISTER_SUCCESS, requestId: frame.requestId, message: { userId: 3, username: 'carol' } },
      );
      assert.deepEqual(await reg, { userId: 3, username: 'carol' });
      const seen = c.events.slice(pushes).map((e) => e.type);
      assert.deepEqual(seen, ['push', 'push', 'newLogin']);
      assert.equal(c.events[pushes].detail.name, '0x7e');

      // a login the server answers late: the promise gives up, the reply still logs in
      const login = c.login('carol', PASSWORD);
      const lr = await srv.next(Opcode.LOGIN_REQUEST);
      await rejects(login, (e) => e instanceof RequestTimeout && e.codeName === 'REQUEST_TIMEOUT' && e instanceof SessiondError);
      const loggedIn = waitFor(c, 'loggedIn');
      lr.conn.send({ opcode: Opcode.LOGIN_SUCCESS, requestId: lr.frame.requestId, message: { token: TOKEN, ...INFO } });
      assert.equal((await loggedIn).sessionId, 7);
      assert.equal(c.state, 'active');
      assert.equal(storage.getItem('sessiond.token'), tokenToHex(TOKEN));
      assert.equal(c.session.token, undefined, 'the token is kept off client.session');

      // a reply with an opcode this client does not know fails its request
      const stats = c.request(Opcode.ADMIN_STATS);
      const st = await srv.next(Opcode.ADMIN_STATS);
      assert.deepEqual(st.frame.message.token, TOKEN, 'request() fills in the token');
      st.conn.send({ opcode: 0x7d, requestId: st.frame.requestId, payload: new Uint8Array(0) });
      await rejects(stats, (e) => e instanceof SessiondError && e.codeName === 'UNEXPECTED_REPLY');

      // heartbeats, at the advertised interval; one unanswered for heartbeatTimeoutMs: the
      // server is dead, the client reconnects and resumes (never logs out)
      const hb = await srv.next(Opcode.HEARTBEAT);
      assert.deepEqual(hb.frame.message.token, TOKEN);
      const gotAck = waitFor(c, 'heartbeat');
      hb.conn.send({ opcode: Opcode.HEARTBEAT_ACK, requestId: hb.frame.requestId, message: { serverTime: 1234 } });
      const beat = await gotAck;
      assert.equal(beat.at, 1234);
      assert.ok(beat.rttMs >= 0);
      const dropped = waitFor(c, 'disconnected', { timeoutMs: 3000 });
      assert.equal((await dropped).willReconnect, true);
      const verify = await srv.next(Opcode.VERIFY_SESSION);
      assert.deepEqual(verify.frame.message, { token: TOKEN, client: 'sessiond-web-test', platform: 'node-test' });
      assert.equal(c.state, 'reconnecting');
      const resumed = waitFor(c, 'resumed');
      verify.conn.send(
        // slow heartbeats from now on: the next drop is the text message's
        { opcode: Opcode.SESSION_VALID, requestId: verify.frame.requestId, message: { ...INFO, heartbeatIntervalMs: 5000, heartbeatTimeoutMs: 15000 } },
        { opcode: Opcode.ATTRS, flags: Flag.PUSH, message: { sessionId: 7, attrs: [{ key: 'game', value: '456' }] } },
      );
      await resumed;
      assert.equal(c.state, 'active');
      await until(() => c.events.some((e) => e.type === 'attrs'), 'the attrs event');

      // a text message is not the protocol: the connection is given up, then resumed
      const dropped2 = waitFor(c, 'disconnected');
      verify.conn.ws.send('hello');
      assert.equal((await dropped2).willReconnect, true);
      const again = await srv.next(Opcode.VERIFY_SESSION);
      // this time the session is gone: the token is deleted, the client logged out
      const out = waitFor(c, 'loggedOut');
      again.conn.send({ opcode: Opcode.SESSION_INVALID, requestId: again.frame.requestId, message: { reason: 3, message: 'revoked' } });
      assert.equal((await out).reason, 'REVOKED');
      assert.equal(storage.getItem('sessiond.token'), null);
      await until(() => c.state === 'open', 'state open');
      assert.equal(c.session, null);
      await c.close();
      assert.equal(c.state, 'closed');
    } finally {
      await srv.close();
    }
  });

  it('reports a server it cannot reach, and backs off while reconnecting', { timeout: 20000 }, async () => {
    const srv = await fakeServer();
    const url = srv.url;
    const c = makeClient({ url, requestTimeoutMs: 2000, reconnect: { initialMs: 100, maxMs: 400 } });
    await c.connect();
    const login = c.login('alice', PASSWORD);
    const lr = await srv.next(Opcode.LOGIN_REQUEST);
    lr.conn.send({ opcode: Opcode.LOGIN_SUCCESS, requestId: lr.frame.requestId, message: { token: TOKEN, ...INFO, heartbeatIntervalMs: 5000, heartbeatTimeoutMs: 15000 } });
    await login;
    // the server goes away: every attempt fails, spaced out
    const pending = c.listSessions();
    await srv.close();
    await rejects(pending, (e) => e instanceof ConnectionClosed && e.codeName === 'CONNECTION_CLOSED');
    assert.equal(c.state, 'reconnecting');
    const before = c.sockets.length;
    await new Promise((r) => setTimeout(r, 1500));
    // delays of 50..100, 100..200, then 200..400 ms: 4 to 9 attempts in 1.5 s, not hundreds
    const attempts = c.sockets.length - before;
    assert.ok(attempts >= 3 && attempts <= 10, `${attempts} attempts in 1.5 s`);
    assert.equal(c.state, 'reconnecting', 'still trying, never logged out');
    assert.ok(c.session, 'the session is kept while reconnecting');
    await c.close();
    assert.equal(c.state, 'closed');
    // nothing listens there any more
    const d = makeClient({ url });
    await rejects(d.connect(), (e) => e instanceof ConnectionClosed);
    assert.equal(d.state, 'closed');
  });
});

// ---- the live server ----

const liveSkip = WS_URL ? false : 'SESSIOND_WS_URL is not set: no live sessiond to test against (tests/web_client.rs sets it)';
if (!WS_URL && REQUIRE) {
  it('SESSIOND_REQUIRE_SERVER=1 needs SESSIOND_WS_URL', () => {
    assert.fail('SESSIOND_WS_URL is not set');
  });
}

describe('SessiondClient against a live sessiond', { skip: liveSkip }, () => {
  it('registers and logs in, and refuses what it must', { timeout: 20000 }, async () => {
    const name = newName('reg');
    const storage = new MemoryStorage();
    const c = makeClient({ storage });
    const r = await c.register(name, PASSWORD, `${name}@example.org`);
    assert.equal(r.username, name);
    assert.ok(r.userId > 0);
    assert.equal(c.sockets[0].protocol, 'sessiond', 'the server selects the subprotocol');
    await rejects(c.register(name, PASSWORD, `${name}@example.org`), (e) => {
      assert.ok(e instanceof RegisterFailed);
      assert.equal(e.reasonName, 'USERNAME_TAKEN');
      noSecretsIn(e.message, 'RegisterFailed');
      return true;
    });
    await rejects(c.login(name, 'wrong password'), (e) => {
      assert.ok(e instanceof LoginFailed && e instanceof SessiondError);
      assert.equal(e.reasonName, 'INVALID_CREDENTIALS');
      assert.equal(e.codeName, 'INVALID_CREDENTIALS');
      assert.equal(e.code, null);
      assert.ok(!e.message.includes('wrong password'));
      return true;
    });
    const loggedIn = waitFor(c, 'loggedIn');
    const s = await c.login(name, PASSWORD);
    assert.equal(s.username, name);
    assert.equal(s.role, Role.USER);
    assert.equal(s.heartbeatIntervalMs, 250);
    assert.equal(s.heartbeatTimeoutMs, 1500);
    assert.equal(s.token.length, 32);
    assert.ok(!Object.keys(s).includes('token') && !inspect(s).includes('token'), 'the token does not print');
    assert.ok(!inspect(c.session).includes('token'));
    assert.equal((await loggedIn).sessionId, s.sessionId);
    assert.equal(c.state, 'active');
    assert.equal(c.username, name);
    assert.equal(c.session.sessionId, s.sessionId);
    assert.equal(storage.getItem('sessiond.token'), tokenToHex(s.token));
    secrets.add(tokenToHex(s.token));
    // already logged in: refused locally
    await rejects(c.login(name, PASSWORD), (e) => e.codeName === 'LOGGED_IN');
    // a refusal of the server carries its code and name
    await rejects(c.adminStats(), (e) => e instanceof SessiondError && e.code === 0x10 && e.codeName === 'FORBIDDEN');
    await rejects(c.revokeSession(987654321), (e) => e.codeName === 'FORBIDDEN');
    assert.equal(c.state, 'active', 'refusals are not fatal');
    await c.close();
  });

  it('sends heartbeats at the advertised interval', { timeout: 20000 }, async () => {
    const name = await newUser('hb');
    const c = makeClient();
    await c.login(name, PASSWORD);
    const t0 = Date.now();
    const beats = [];
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`only ${beats.length} heartbeats in 5 s`)), 5000);
      c.addEventListener('heartbeat', (e) => {
        beats.push(e.detail);
        if (beats.length === 4) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    const elapsed = Date.now() - t0;
    assert.ok(elapsed >= 4 * 250 - 50, `4 heartbeats in ${elapsed} ms: too fast for 250 ms`);
    for (const b of beats) {
      assert.ok(b.rttMs >= 0 && b.rttMs < 1500);
      assert.ok(Math.abs(b.at - Date.now()) < 60_000, 'the server time is now');
    }
    await c.close();
  });

  it('lists its sessions', { timeout: 20000 }, async () => {
    const name = await newUser('ls');
    const c = makeClient();
    const s = await c.login(name, PASSWORD);
    const list = await c.listSessions();
    assert.equal(list.total, 1);
    assert.equal(list.length, 1);
    const [e] = list;
    assert.equal(e.sessionId, s.sessionId);
    assert.equal(e.username, name);
    assert.equal(e.current, true);
    assert.equal(e.connected, true);
    assert.equal(e.client, 'sessiond-web-test');
    assert.equal(e.platform, 'node-test');
    assert.match(e.address, /^127\.0\.0\.1:\d+$/);
    assert.equal(e.loginAtMs, e.created);
    assert.ok(e.expires > e.created);
    await c.close();
  });

  it('resumes on a new client with the stored token', { timeout: 20000 }, async () => {
    const name = await newUser('res');
    const storage = new MemoryStorage();
    const a = makeClient({ storage });
    const s = await a.login(name, PASSWORD);
    await a.close(); // DISCONNECT_REQUEST: the session survives, the token stays
    assert.equal(a.state, 'closed');
    assert.equal(storage.getItem('sessiond.token'), tokenToHex(s.token));
    const b = makeClient({ storage });
    const resumed = waitFor(b, 'resumed');
    const r = await b.connect();
    assert.equal(r.resumed, true);
    assert.equal(r.session.sessionId, s.sessionId);
    assert.equal((await resumed).sessionId, s.sessionId);
    assert.equal(b.state, 'active');
    assert.equal(b.username, name);
    await waitFor(b, 'heartbeat');
    const [e] = await b.listSessions();
    assert.equal(e.sessionId, s.sessionId);
    assert.equal(e.current, true);
    await b.close();
  });

  it('a second login of the same user revokes the first, naming its device', { timeout: 20000 }, async () => {
    const name = await newUser('rev');
    const storageA = new MemoryStorage();
    const a = makeClient({ storage: storageA });
    const first = await a.login(name, PASSWORD);
    const revoked = waitFor(a, 'revoked');
    const closed = waitFor(a, 'disconnected');
    const b = makeClient({ client: 'second-device', platform: 'other-os' });
    const second = await b.login(name, PASSWORD);
    const d = await revoked;
    assert.equal(d.reasonName, 'NEW_LOGIN');
    assert.equal(d.sessionId, first.sessionId);
    assert.equal(d.client, 'second-device');
    assert.equal(d.byClient, 'second-device');
    assert.equal(d.platform, 'other-os');
    assert.match(d.address, /^127\.0\.0\.1:\d+$/);
    assert.ok(d.atMs > 0);
    assert.equal((await closed).willReconnect, false);
    await until(() => a.state === 'closed', 'the revoked client closed');
    assert.equal(a.session, null);
    assert.equal(storageA.getItem('sessiond.token'), null, 'the revoked token is deleted');
    // the old token resumes as SESSION_INVALID REVOKED
    const old = new MemoryStorage();
    old.setItem('sessiond.token', tokenToHex(first.token));
    const c = makeClient({ storage: old });
    assert.deepEqual(await c.connect(), { resumed: false, reason: 'REVOKED' });
    assert.equal(old.getItem('sessiond.token'), null);
    assert.equal(c.state, 'open');
    await c.close();
    assert.equal(b.state, 'active');
    assert.notEqual(second.sessionId, first.sessionId);
    await b.close();
  });

  it('a second client with the same token gets duplicate', { timeout: 20000 }, async () => {
    const name = await newUser('dup');
    const storage = new MemoryStorage();
    const a = makeClient({ storage });
    const s = await a.login(name, PASSWORD);
    const b = makeClient({ storage });
    const dup = waitFor(b, 'duplicate');
    assert.deepEqual(await b.connect(), { resumed: false, duplicate: true });
    assert.equal((await dup).sessionId, s.sessionId);
    await until(() => b.state === 'closed', 'the duplicate closed');
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(b.state, 'closed', 'a duplicate does not reconnect');
    assert.equal(storage.getItem('sessiond.token'), tokenToHex(s.token), 'the token is kept');
    assert.equal(a.state, 'active');
    await waitFor(a, 'heartbeat');
    await a.close();
  });

  it('reconnects after the socket drops and resumes the same session', { timeout: 20000 }, async () => {
    const name = await newUser('rec');
    const storage = new MemoryStorage();
    const c = makeClient({ storage });
    const s = await c.login(name, PASSWORD);
    for (let round = 0; round < 2; round++) {
      const dropped = waitFor(c, 'disconnected');
      const resumed = waitFor(c, 'resumed', { timeoutMs: 8000 });
      c.sockets.at(-1).terminate(); // the TCP connection dies, no close frame
      const d = await dropped;
      assert.equal(d.willReconnect, true);
      assert.equal(c.state, 'reconnecting');
      assert.equal((await resumed).sessionId, s.sessionId);
      assert.equal(c.state, 'active');
      assert.equal(c.session.sessionId, s.sessionId);
      await waitFor(c, 'heartbeat');
    }
    assert.equal(c.sockets.length, 3);
    assert.ok(!c.events.some((e) => e.type === 'loggedOut'), 'never logged out');
    assert.equal(storage.getItem('sessiond.token'), tokenToHex(s.token));
    const [e] = await c.listSessions();
    assert.equal(e.sessionId, s.sessionId);
    await c.close();
  });

  it('an administrator suspending a user revokes that user\'s session', { timeout: 30000 }, async (t) => {
    if (!ADMIN_PASSWORD) {
      t.skip('SESSIOND_ADMIN_PASSWORD is not set');
      return;
    }
    const name = await newUser('sus');
    const admin = makeClient({ client: 'admin-console' });
    const as = await admin.login('admin', ADMIN_PASSWORD);
    assert.equal(as.role, Role.ADMIN);
    const userStorage = new MemoryStorage();
    const u = makeClient({ storage: userStorage });
    const us = await u.login(name, PASSWORD);
    const theirs = await admin.adminListSessions(name);
    assert.deepEqual(theirs.map((e) => e.sessionId), [us.sessionId]);
    assert.equal(theirs[0].current, false);
    const revoked = waitFor(u, 'revoked');
    assert.equal(await admin.adminSuspendUser(name), 1);
    const d = await revoked;
    assert.equal(d.reasonName, 'ACCOUNT_SUSPENDED');
    assert.equal(d.sessionId, us.sessionId);
    assert.equal(d.client, 'admin-console');
    await until(() => u.state === 'closed', 'the suspended user closed');
    assert.equal(userStorage.getItem('sessiond.token'), null);
    const users = await admin.adminListUsers();
    assert.ok(users.total >= 2);
    assert.equal(users.find((x) => x.username === name)?.suspended, true);
    await rejects(u.login(name, PASSWORD), (e) => e instanceof LoginFailed && e.reasonName === 'SUSPENDED');
    assert.equal(await admin.adminUnsuspendUser(name), 0);
    const again = await u.login(name, PASSWORD);
    assert.ok(again.sessionId !== us.sessionId);
    // the administrator ends that session too
    const revoked2 = waitFor(u, 'revoked');
    assert.equal(await admin.adminRevokeSession(again.sessionId), 1);
    assert.equal((await revoked2).reasonName, 'REVOKED_BY_ADMIN');
    await rejects(admin.adminSuspendUser(newName('nobody')), (e) => e.codeName === 'NOT_FOUND');
    assert.ok((await admin.adminStats()).sessions_live >= 1);
    await admin.close();
  });

  it('logs out: the token is deleted and never works again', { timeout: 20000 }, async () => {
    const name = await newUser('out');
    const storage = new MemoryStorage();
    const c = makeClient({ storage });
    const s = await c.login(name, PASSWORD);
    const token = storage.getItem('sessiond.token');
    const out = waitFor(c, 'loggedOut');
    const r = await c.logout();
    assert.equal(r.sessionId, s.sessionId);
    assert.deepEqual(await out, { sessionId: s.sessionId, reason: 'LOGOUT' });
    assert.equal(c.state, 'open');
    assert.equal(c.session, null);
    assert.equal(storage.getItem('sessiond.token'), null);
    await rejects(c.listSessions(), (e) => e.codeName === 'NOT_LOGGED_IN');
    // the same connection may log in again
    const s2 = await c.login(name, PASSWORD);
    assert.notEqual(s2.sessionId, s.sessionId);
    // the old token: SESSION_INVALID LOGGED_OUT
    const old = new MemoryStorage();
    old.setItem('sessiond.token', token);
    const d = makeClient({ storage: old });
    assert.deepEqual(await d.connect(), { resumed: false, reason: 'LOGGED_OUT' });
    await d.close();
    // logoutAll('ALL') is a logout too
    const out2 = waitFor(c, 'loggedOut');
    assert.equal(await c.logoutAll('ALL'), 1);
    assert.equal((await out2).reason, 'LOGOUT_ALL');
    assert.equal(c.state, 'open');
    await c.close();
    assert.equal(c.state, 'closed');
    assert.ok(!c.events.some((e) => e.type === 'disconnected' && e.detail.willReconnect));
  });
});
