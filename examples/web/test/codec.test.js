// Unit tests of the codec of sessiond.js against protocol.md (node --test; no server).
//
// Every ```hex example=NAME block of protocol.md is read from the file at test time (as
// tests/common/spec.rs and examples/python/test_sessiond.py do), decoded and encoded back
// to the same bytes. Examples named `ws_*` are WebSocket-level bytes (protocol.md,
// "WebSocket transport"): a small WebSocket frame parser here checks their framing,
// unmasks them, and requires each binary message to be whole sessiond frames, which the
// codec then decodes and encodes back. A final test fails if any example was left
// unchecked.
//
// Run: cd examples/web && node --test test/codec.test.js

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { concat } from './bytes.js';

import {
  AuditKind,
  AuditOrder,
  DecodeError,
  DisconnectReason,
  ErrorCode,
  ExpiredReason,
  Flag,
  FrameReader,
  HEADER_LENGTH,
  InvalidReason,
  LoginFailureReason,
  LogoutScope,
  MAX_FRAME,
  Opcode,
  RegisterFailureReason,
  RevokeReason,
  Role,
  SessiondError,
  decodeFrame,
  encodeFrame,
  fieldsOf,
  nameOf,
  senderOf,
  tokenFromHex,
  tokenToHex,
} from '../sessiond.js';

const PROTOCOL_MD = new URL('../../../protocol.md', import.meta.url);
const SPEC = readFileSync(PROTOCOL_MD, 'utf8');

/** Every ```hex example=NAME block of protocol.md, by name (in the file's order). */
function specExamples() {
  const out = new Map();
  const lines = SPEC.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].replace(/\r$/, '');
    if (!line.startsWith('```hex example=')) continue;
    const name = line.slice('```hex example='.length).trim();
    const bytes = [];
    for (i += 1; i < lines.length && !lines[i].startsWith('```'); i++) {
      for (const tok of lines[i].split(/\s+/).filter(Boolean)) {
        assert.match(tok, /^[0-9a-fA-F]{2}$/, `example ${name}: not a hex byte: ${tok}`);
        bytes.push(parseInt(tok, 16));
      }
    }
    assert.ok(!out.has(name), `duplicate example ${name}`);
    out.set(name, Uint8Array.from(bytes));
  }
  return out;
}

const EXAMPLES = specExamples();
const checked = new Set();

const hex = (b) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join(' ');
const fromHex = (s) => Uint8Array.from(s.split(/\s+/).filter(Boolean), (t) => parseInt(t, 16));

// The spec's example values (protocol.md 5, before 5.1).
const T0 = 1767225600000; // 2026-01-01T00:00:00Z
const T1 = T0 + 3600_000;
const TOKEN = Uint8Array.from({ length: 32 }, (_, i) => i);

/** Decodes one whole sessiond frame, encodes it back and requires the same bytes. */
function roundTrip(bytes, where) {
  const f = decodeFrame(bytes);
  assert.equal(f.size, bytes.length, `${where}: frame length`);
  assert.ok(f.known, `${where}: opcode ${nameOf(Opcode, f.opcode)} unknown to the codec`);
  const again = encodeFrame({ opcode: f.opcode, requestId: f.requestId, flags: f.flags, message: f.message });
  assert.equal(hex(again), hex(bytes), `${where}: encoded again`);
  return f;
}

function frameOf(name) {
  return decodeFrame(EXAMPLES.get(name));
}

// ---- a tiny WebSocket frame parser (RFC 6455 5.2) for the ws_* examples ----

/** The WebSocket frames of `bytes`: {fin, opcode, masked, mask, payload (unmasked)}. */
function parseWsFrames(bytes, where) {
  const frames = [];
  let i = 0;
  while (i < bytes.length) {
    assert.ok(i + 2 <= bytes.length, `${where}: a WebSocket header cut short at byte ${i}`);
    const b0 = bytes[i];
    const b1 = bytes[i + 1];
    i += 2;
    assert.equal(b0 & 0x70, 0, `${where}: RSV bits set (no extension is negotiated)`);
    let len = b1 & 0x7f;
    if (len === 126) {
      assert.ok(i + 2 <= bytes.length, `${where}: 16-bit length cut short`);
      len = (bytes[i] << 8) | bytes[i + 1];
      i += 2;
      assert.ok(len >= 126, `${where}: a 16-bit length of ${len} is not minimal`);
    } else if (len === 127) {
      assert.ok(i + 8 <= bytes.length, `${where}: 64-bit length cut short`);
      const big = new DataView(bytes.buffer, bytes.byteOffset + i, 8).getBigUint64(0);
      assert.ok(big < 2n ** 63n && big > 0xffffn, `${where}: 64-bit length ${big} is invalid or not minimal`);
      len = Number(big);
      i += 8;
    }
    const masked = (b1 & 0x80) !== 0;
    let mask = null;
    if (masked) {
      assert.ok(i + 4 <= bytes.length, `${where}: masking key cut short`);
      mask = bytes.slice(i, i + 4);
      i += 4;
    }
    assert.ok(i + len <= bytes.length, `${where}: payload of ${len} bytes cut short (${bytes.length - i} left)`);
    const payload = bytes.slice(i, i + len);
    if (mask) for (let k = 0; k < payload.length; k++) payload[k] ^= mask[k % 4];
    i += len;
    const opcode = b0 & 0x0f;
    if (opcode >= 0x8) {
      assert.ok(b0 & 0x80, `${where}: a fragmented control frame`);
      assert.ok(len <= 125, `${where}: a control frame over 125 bytes`);
    }
    frames.push({ fin: (b0 & 0x80) !== 0, opcode, masked, mask, payload, rawLength: len });
  }
  return frames;
}

/** The WebSocket frame again, from its parts (minimal length, same masking key). */
function encodeWsFrame({ fin, opcode, mask, payload }) {
  const head = [(fin ? 0x80 : 0) | opcode];
  const m = mask ? 0x80 : 0;
  if (payload.length < 126) head.push(m | payload.length);
  else if (payload.length < 0x10000) head.push(m | 126, payload.length >> 8, payload.length & 0xff);
  else {
    head.push(m | 127);
    const v = new DataView(new ArrayBuffer(8));
    v.setBigUint64(0, BigInt(payload.length));
    head.push(...new Uint8Array(v.buffer));
  }
  const body = payload.slice();
  if (mask) {
    head.push(...mask);
    for (let k = 0; k < body.length; k++) body[k] ^= mask[k % 4];
  }
  return concat(Uint8Array.from(head), body);
}

/**
 * Checks a WebSocket-level example: every frame parses and encodes back the same; a
 * client's frames are masked and a server's are not; every binary message is one or more
 * whole sessiond frames sent by that side, each of which round-trips through the codec; a
 * close frame carries a valid code. Returns what it found.
 */
function checkWsExample(bytes, where) {
  const frames = parseWsFrames(bytes, where);
  assert.ok(frames.length > 0, `${where}: no WebSocket frame`);
  assert.equal(hex(concat(...frames.map(encodeWsFrame))), hex(bytes), `${where}: WebSocket frames encoded again`);
  const found = { messages: [], sessiondFrames: [], closes: [], masked: frames[0].masked };
  let message = null; // a fragmented message being reassembled
  for (const [n, f] of frames.entries()) {
    const at = `${where}, WebSocket frame ${n}`;
    assert.equal(f.masked, found.masked, `${at}: masked and unmasked frames mixed in one direction`);
    if (f.opcode === 0x0) {
      assert.ok(message, `${at}: a continuation with no message`);
      message.parts.push(f.payload);
    } else if (f.opcode === 0x1 || f.opcode === 0x2) {
      assert.equal(message, null, `${at}: a new message inside a fragmented one`);
      message = { opcode: f.opcode, parts: [f.payload] };
    } else if (f.opcode === 0x8) {
      if (f.payload.length > 0) {
        assert.ok(f.payload.length >= 2, `${at}: a close payload of 1 byte`);
        const code = (f.payload[0] << 8) | f.payload[1];
        assert.ok(
          (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999),
          `${at}: close code ${code} may not be sent`,
        );
        new TextDecoder('utf-8', { fatal: true }).decode(f.payload.subarray(2));
        found.closes.push(code);
      } else {
        found.closes.push(null);
      }
      continue;
    } else {
      assert.ok(f.opcode === 0x9 || f.opcode === 0xa, `${at}: reserved WebSocket opcode ${f.opcode}`);
      continue;
    }
    if (!f.fin) continue;
    const data = concat(...message.parts);
    found.messages.push({ opcode: message.opcode, data });
    if (message.opcode === 0x2) {
      // The payload is whole sessiond frames (one or more), nothing cut.
      let off = 0;
      assert.ok(data.length > 0, `${at}: an empty binary message`);
      while (off < data.length) {
        const first = decodeFrame(data.subarray(off)); // throws if cut
        const f2 = roundTrip(data.subarray(off, off + first.size), `${at}, sessiond frame at ${off}`);
        const from = senderOf(f2.opcode);
        assert.equal(from, found.masked ? 'client' : 'server', `${at}: ${nameOf(Opcode, f2.opcode)} sent by the wrong side`);
        found.sessiondFrames.push(f2);
        off += f2.size;
      }
    } else {
      new TextDecoder('utf-8', { fatal: true }).decode(data);
    }
    message = null;
  }
  assert.equal(message, null, `${where}: a fragmented message that never ends`);
  return found;
}

// ---- the examples ----

test('protocol.md has its hex examples', () => {
  assert.ok(EXAMPLES.size > 40, `only ${EXAMPLES.size} examples found`);
});

test('every frame example decodes and encodes back to the same bytes', async (t) => {
  for (const [name, bytes] of EXAMPLES) {
    if (name.startsWith('ws_')) continue;
    await t.test(name, () => {
      roundTrip(bytes, name);
      // the reader gets the same frame, whole, and holds nothing after it
      const r = new FrameReader();
      r.push(bytes);
      const f = r.pull();
      assert.equal(f.size, bytes.length);
      assert.equal(r.pull(), null);
      assert.equal(r.buffered, 0);
      checked.add(name);
    });
  }
});

test('every ws_ example is WebSocket framing around whole sessiond frames', async (t) => {
  const ws = [...EXAMPLES.keys()].filter((n) => n.startsWith('ws_'));
  if (ws.length === 0) t.diagnostic('protocol.md has no ws_ examples yet');
  for (const name of ws) {
    await t.test(name, () => {
      const found = checkWsExample(EXAMPLES.get(name), name);
      assert.ok(
        found.sessiondFrames.length > 0 || found.closes.length > 0 || found.messages.length > 0,
        `${name}: nothing in it`,
      );
      // protocol.md: `ws_NAME` carries the frame example NAME, byte for byte.
      const inner = EXAMPLES.get(name.slice('ws_'.length));
      if (inner) {
        const data = concat(...found.messages.filter((m) => m.opcode === 2).map((m) => m.data));
        assert.equal(hex(data), hex(inner), `${name}: the payload is the example ${name.slice(3)}`);
      }
      checked.add(name);
    });
  }
});

test('the WebSocket checker itself: a masked client message and a server answer', () => {
  // Made here from frame examples, so the checker is tested before and besides the spec's.
  const login = EXAMPLES.get('login_request');
  const mask = Uint8Array.from([0x37, 0xfa, 0x21, 0x3d]);
  const client = encodeWsFrame({ fin: true, opcode: 2, mask, payload: login });
  const c = checkWsExample(client, 'client');
  assert.equal(c.masked, true);
  assert.deepEqual(c.sessiondFrames.map((f) => f.message.username), ['alice']);
  // two whole frames in one message, then a close 1000
  const two = concat(EXAMPLES.get('login_success'), EXAMPLES.get('user_info_push'));
  const server = concat(
    encodeWsFrame({ fin: true, opcode: 2, mask: null, payload: two }),
    encodeWsFrame({ fin: true, opcode: 8, mask: null, payload: Uint8Array.from([0x03, 0xe8]) }),
  );
  const s = checkWsExample(server, 'server');
  assert.deepEqual(
    s.sessiondFrames.map((f) => f.opcode),
    [Opcode.LOGIN_SUCCESS, Opcode.USER_INFO],
  );
  assert.deepEqual(s.closes, [1000]);
  // a 16-bit length (a frame over 125 bytes)
  const big = encodeWsFrame({ fin: true, opcode: 2, mask: null, payload: EXAMPLES.get('audit_records') });
  assert.equal(big[1], 126);
  assert.equal(checkWsExample(big, 'big').sessiondFrames.length, 1);
  // what it refuses
  const cut = server.slice(0, 10);
  assert.throws(() => checkWsExample(cut, 'cut'), /cut short/);
  const partial = encodeWsFrame({ fin: true, opcode: 2, mask: null, payload: EXAMPLES.get('done').slice(0, 10) });
  assert.throws(() => checkWsExample(partial, 'partial'), DecodeError);
  const wrongSide = encodeWsFrame({ fin: true, opcode: 2, mask: null, payload: login });
  assert.throws(() => checkWsExample(wrongSide, 'wrong side'), /wrong side/);
});

test('no example of protocol.md is left unchecked', () => {
  const missing = [...EXAMPLES.keys()].filter((n) => !checked.has(n));
  assert.deepEqual(missing, [], 'examples not checked');
});

test('every message of the codec has an example in protocol.md', () => {
  const seen = new Set();
  for (const [name, bytes] of EXAMPLES) {
    if (name.startsWith('ws_')) {
      for (const f of checkWsExample(bytes, name).sessiondFrames) seen.add(f.opcode);
    } else {
      seen.add(decodeFrame(bytes).opcode);
    }
  }
  const missing = Object.entries(Opcode)
    .filter(([, v]) => !seen.has(v))
    .map(([k]) => k);
  assert.deepEqual(missing, []);
});

test('the examples decode to the values protocol.md documents', () => {
  const info = {
    sessionId: 7,
    userId: 2,
    role: Role.USER,
    username: 'alice',
    userCreated: T0,
    lastLogin: 0,
    sessionCreated: T0,
    sessionExpires: T0 + 86400_000,
    idleExpiryMs: 1800_000,
    heartbeatIntervalMs: 5000,
    heartbeatTimeoutMs: 15000,
  };
  const cases = {
    login_request: [1, 0, { username: 'alice', password: 'pa;ss', client: 'cli', platform: 'linux' }],
    login_success: [1, 0, { token: TOKEN, ...info }],
    login_failure_throttled: [
      1,
      0,
      { reason: LoginFailureReason.THROTTLED, retryAfterMs: 2000, message: 'too many attempts; retry later' },
    ],
    heartbeat: [2, 0, { token: TOKEN }],
    heartbeat_ack: [2, 0, { serverTime: T0 + 5000 }],
    logout_success: [3, 0, { sessionId: 7 }],
    disconnect_request: [4, 0, {}],
    disconnect_ack: [4, Flag.FATAL, { reason: DisconnectReason.CLIENT_REQUEST }],
    disconnect_ack_idle: [0, Flag.FATAL | Flag.PUSH, { reason: DisconnectReason.IDLE_TIMEOUT }],
    general_failure: [5, 0, { code: ErrorCode.INVALID_TOKEN, message: 'unknown token' }],
    general_failure_too_large: [1, Flag.FATAL, { code: ErrorCode.FRAME_TOO_LARGE, message: 'frame too large' }],
    verify_session: [1, 0, { token: TOKEN, client: 'cli', platform: 'linux' }],
    session_valid: [
      1,
      0,
      { ...info, lastLogin: T1, sessionCreated: T1, sessionExpires: T1 + 86400_000 },
    ],
    session_invalid: [1, 0, { reason: InvalidReason.REVOKED, message: 'session revoked' }],
    duplicate_session: [1, Flag.FATAL, { sessionId: 7, message: 'session is in use on another connection' }],
    register_request: [1, 0, { username: 'carol', password: 's3cret;pass', email: 'carol@example.org' }],
    register_success: [1, 0, { userId: 3, username: 'carol' }],
    register_failure: [1, 0, { reason: RegisterFailureReason.USERNAME_TAKEN, message: 'username taken' }],
    session_revoked: [
      0,
      Flag.FATAL | Flag.PUSH,
      {
        sessionId: 7,
        reason: RevokeReason.NEW_LOGIN,
        byClient: 'phone',
        byPlatform: 'android',
        byAddress: '192.0.2.7:51000',
        at: T1,
      },
    ],
    session_expired: [0, Flag.FATAL | Flag.PUSH, { sessionId: 7, reason: ExpiredReason.IDLE }],
    new_login: [0, Flag.PUSH, { sessionId: 8, client: 'phone', platform: 'android', address: '192.0.2.7:51000', at: T1 }],
    server_shutdown: [
      0,
      Flag.PUSH,
      { reconnectAfterMs: 1000, message: 'server shutting down; sessions survive: reconnect and resume' },
    ],
    list_sessions: [1, 0, { token: TOKEN, offset: 0, limit: 20 }],
    revoke_session: [1, 0, { token: TOKEN, sessionId: 8 }],
    logout_all: [1, 0, { token: TOKEN, scope: LogoutScope.OTHERS }],
    change_password: [1, 0, { token: TOKEN, old: 'pa;ss', new: 'new pass;word' }],
    done: [1, 0, { affected: 2 }],
    audit_query: [1, 0, { token: TOKEN, username: '', kind: 0, from: T0, to: 0, cursor: 0, limit: 50 }],
    audit_search: [
      1,
      0,
      { token: TOKEN, username: '', kind: 0, from: 0, to: 0, cursor: 0, limit: 10, order: AuditOrder.NEWEST_FIRST },
    ],
    admin_list_sessions: [1, 0, { token: TOKEN, username: 'alice', offset: 0, limit: 0 }],
    admin_revoke_session: [1, 0, { token: TOKEN, sessionId: 7 }],
    admin_logout_user: [1, 0, { token: TOKEN, username: 'alice' }],
    admin_suspend_user: [1, 0, { token: TOKEN, username: 'alice' }],
    admin_unsuspend_user: [1, 0, { token: TOKEN, username: 'alice' }],
    admin_set_role: [1, 0, { token: TOKEN, username: 'alice', role: Role.ADMIN }],
    admin_set_password: [1, 0, { token: TOKEN, username: 'alice', password: 'n3w;pass wd' }],
    admin_stats: [1, 0, { token: TOKEN }],
    stats: [
      1,
      0,
      {
        counters: [
          { name: 'connections', value: 12 },
          { name: 'sessions_live', value: 40 },
        ],
      },
    ],
    attr_set: [1, 0, { token: TOKEN, key: 'game', value: new TextEncoder().encode('456') }],
    general_failure_limit: [
      1,
      0,
      { code: ErrorCode.LIMIT_EXCEEDED, message: 'a session holds at most 64 attributes' },
    ],
    attr_remove: [1, 0, { token: TOKEN, key: 'game' }],
    attr_get: [1, 0, { token: TOKEN, key: '' }],
    attrs_push: [0, Flag.PUSH, { sessionId: 7, attrs: [{ key: 'game', value: new TextEncoder().encode('456') }] }],
    admin_set_attr: [
      1,
      0,
      { token: TOKEN, sessionId: 7, key: 'game', remove: false, value: new TextEncoder().encode('457') },
    ],
    profile_set: [
      1,
      0,
      { token: TOKEN, key: 'display_name', remove: false, value: new TextEncoder().encode('Alice A.') },
    ],
    profile_get: [1, 0, { token: TOKEN, key: '' }],
    user_info_push: [
      0,
      Flag.PUSH,
      { userId: 2, appRole: 'educator', profile: [{ key: 'display_name', value: new TextEncoder().encode('Alice A.') }] },
    ],
    admin_set_profile: [
      1,
      0,
      {
        token: TOKEN,
        username: 'alice',
        key: 'display_name',
        remove: false,
        value: new TextEncoder().encode('Alice A.'),
      },
    ],
    admin_set_app_role: [1, 0, { token: TOKEN, username: 'alice', role: 'educator' }],
    admin_list_users: [1, 0, { token: TOKEN, offset: 0, limit: 0 }],
    user_list: [
      1,
      0,
      {
        total: 1,
        users: [
          {
            userId: 2,
            username: 'alice',
            role: Role.USER,
            appRole: 'educator',
            suspended: false,
            created: T0,
            lastLogin: T1,
          },
        ],
      },
    ],
    audit_page: [
      1,
      0,
      {
        nextCursor: 0,
        entries: [
          {
            seq: 1,
            at: T0,
            kind: AuditKind.SESSION_CREATED,
            userId: 2,
            username: 'alice',
            sessionId: 7,
            address: '192.0.2.1:40000',
            detail: 'cli linux',
          },
        ],
      },
    ],
    audit_records: [
      1,
      0,
      {
        nextCursor: 12,
        records: [
          {
            seq: 12,
            at: T1,
            kind: AuditKind.REVOKED,
            reason: RevokeReason.NEW_LOGIN,
            userId: 2,
            username: 'alice',
            sessionId: 7,
            address: '192.0.2.1:40000',
            client: 'cli',
            platform: 'linux',
            actorUserId: 2,
            actorUsername: 'alice',
            actorSessionId: 8,
            actorAddress: '192.0.2.7:51000',
            actorClient: 'phone',
            actorPlatform: 'android',
            note: 'NEW_LOGIN',
          },
        ],
      },
    ],
  };
  for (const [name, [requestId, flags, message]] of Object.entries(cases)) {
    assert.ok(EXAMPLES.has(name), `protocol.md has no example ${name}`);
    const f = frameOf(name);
    assert.deepEqual({ requestId: f.requestId, flags: f.flags, message: f.message }, { requestId, flags, message }, name);
  }
  const list = frameOf('session_list').message;
  assert.equal(list.total, 1);
  assert.deepEqual(list.sessions, [
    {
      sessionId: 7,
      flags: 3,
      current: true,
      connected: true,
      userId: 2,
      username: 'alice',
      client: 'cli',
      platform: 'linux',
      address: '192.0.2.1:40000',
      created: T0,
      lastActive: T0 + 60_000,
      expires: T0 + 86400_000,
    },
  ]);
  for (const name of ['server_busy', 'general_failure_bad_magic', 'general_failure_too_many_errors', 'general_failure_tls_required']) {
    const f = frameOf(name);
    assert.equal(f.flags, Flag.PUSH | Flag.FATAL, name);
    assert.equal(f.requestId, 0, name);
  }
  assert.equal(frameOf('general_failure_tls_required').message.code, ErrorCode.TLS_REQUIRED);
  assert.equal(frameOf('general_failure_storage').message.code, ErrorCode.STORAGE_UNAVAILABLE);
  assert.equal(frameOf('login_failure_storage').message.reason, LoginFailureReason.STORAGE_UNAVAILABLE);
  assert.equal(frameOf('login_failure').message.reason, LoginFailureReason.INVALID_CREDENTIALS);
});

// ---- the tables against the spec's ----

/** Rows `| `0x..` | NAME | ...` of the text between `start` and the next heading. */
function tableRows(start, { digits = 4 } = {}) {
  const at = SPEC.indexOf(start);
  assert.ok(at >= 0, `protocol.md has no "${start}"`);
  const rest = SPEC.slice(at + start.length);
  const section = rest.split(/\n#{2,3} /)[0];
  const rows = [];
  for (const line of section.split('\n')) {
    const cells = line.split('|').map((c) => c.trim());
    if (cells.length < 4) continue;
    const m = /^`0x([0-9a-fA-F]+)`$/.exec(cells[1]);
    if (!m || m[1].length !== digits) continue;
    const name = cells[2].replace(/`/g, '').split(/\s+/)[0];
    rows.push([name, parseInt(m[1], 16)]);
  }
  return rows;
}

test('the opcode table of protocol.md 5 is the codec\'s', () => {
  const rows = tableRows('## 5. Messages', { digits: 2 }).filter(([name]) => name !== '(never');
  assert.deepEqual(Object.fromEntries(rows), { ...Opcode });
  for (const [name, code] of rows) {
    const from = SPEC.includes(`| \`0x${code.toString(16).padStart(2, '0')}\` | ${name} | client -> server`) ? 'client' : 'server';
    assert.equal(senderOf(code), from, `${name}: direction`);
  }
});

test('the error codes and reason tables of protocol.md are the codec\'s', () => {
  assert.deepEqual(Object.fromEntries(tableRows('## 6. Error codes')), { ...ErrorCode });
  assert.deepEqual(Object.fromEntries(tableRows('### 5.3 LOGIN_FAILURE')), { ...LoginFailureReason });
  assert.deepEqual(Object.fromEntries(tableRows('### 5.9 DISCONNECT_ACK')), { ...DisconnectReason });
  assert.deepEqual(Object.fromEntries(tableRows('### 5.13 SESSION_INVALID')), { ...InvalidReason });
  assert.deepEqual(Object.fromEntries(tableRows('### 5.17 REGISTER_FAILURE')), { ...RegisterFailureReason });
  assert.deepEqual(Object.fromEntries(tableRows('### 5.18 SESSION_REVOKED')), { ...RevokeReason });
  // 5.27's kind table: `| 1  | `session_created` | ...`
  const kinds = {};
  const section = SPEC.slice(SPEC.indexOf('### 5.27 AUDIT_QUERY')).split('\n### ')[0];
  for (const line of section.split('\n')) {
    const m = /^\|\s*(\d+)\s*\|\s*`([a-z_]+)`\s*\|/.exec(line);
    if (m) kinds[m[2].toUpperCase()] = Number(m[1]);
  }
  assert.deepEqual(kinds, { ...AuditKind });
  assert.equal(nameOf(ErrorCode, 0x77), '0x0077');
  assert.equal(nameOf(Opcode, 0x7e), '0x7e');
  assert.equal(nameOf(ErrorCode, ErrorCode.NOT_FOUND), 'NOT_FOUND');
  assert.ok(Object.isFrozen(Opcode) && Object.isFrozen(ErrorCode) && Object.isFrozen(RevokeReason));
});

// ---- FrameReader ----

const STREAM_NAMES = ['login_success', 'user_info_push', 'new_login', 'heartbeat_ack', 'session_revoked'];
const STREAM = concat(...STREAM_NAMES.map((n) => EXAMPLES.get(n)));
const STREAM_OPS = [Opcode.LOGIN_SUCCESS, Opcode.USER_INFO, Opcode.NEW_LOGIN, Opcode.HEARTBEAT_ACK, Opcode.SESSION_REVOKED];

function drain(r) {
  const out = [];
  for (let f = r.pull(); f; f = r.pull()) out.push(f.opcode);
  return out;
}

test('FrameReader: concatenated frames in one push', () => {
  const r = new FrameReader();
  r.push(STREAM);
  assert.deepEqual(drain(r), STREAM_OPS);
  assert.equal(r.buffered, 0);
});

test('FrameReader: a stream split at every byte, and byte by byte', () => {
  for (let split = 0; split <= STREAM.length; split++) {
    const r = new FrameReader();
    const got = [];
    r.push(STREAM.subarray(0, split));
    got.push(...drain(r));
    r.push(STREAM.subarray(split));
    got.push(...drain(r));
    assert.deepEqual(got, STREAM_OPS, `split at ${split}`);
    assert.equal(r.buffered, 0);
  }
  const r = new FrameReader();
  const got = [];
  for (const b of STREAM) {
    r.push(Uint8Array.of(b));
    got.push(...drain(r));
  }
  assert.deepEqual(got, STREAM_OPS);
  // ArrayBuffer and Buffer input too
  const r2 = new FrameReader();
  r2.push(STREAM.slice().buffer);
  r2.push(Buffer.from(EXAMPLES.get('done')));
  assert.deepEqual(drain(r2), [...STREAM_OPS, Opcode.DONE]);
});

test('FrameReader and decodeFrame: truncated frames are incomplete, not errors of the stream', () => {
  const bytes = EXAMPLES.get('login_success');
  for (let n = 0; n < bytes.length; n++) {
    const r = new FrameReader();
    r.push(bytes.subarray(0, n));
    assert.equal(r.pull(), null, `prefix of ${n}`);
    assert.equal(r.buffered, n);
    assert.throws(
      () => decodeFrame(bytes.subarray(0, n)),
      (e) => e instanceof DecodeError && e.incomplete && e.code === ErrorCode.MALFORMED_FRAME,
      `decodeFrame of a prefix of ${n}`,
    );
  }
});

test('FrameReader: an oversized length is refused from the header alone', () => {
  // protocol.md 2: a client announces a 1 MiB heartbeat payload.
  const huge = fromHex('53 44 01 04 00 00 00 00 00 01 00 10 00 00');
  const r = new FrameReader();
  r.push(huge);
  assert.throws(
    () => r.pull(),
    (e) => e instanceof DecodeError && e.code === ErrorCode.FRAME_TOO_LARGE && e.breaksFraming && e.requestId === 1,
  );
  // the stream is unreadable from then on
  r.push(EXAMPLES.get('done'));
  assert.throws(() => r.pull(), (e) => e.code === ErrorCode.FRAME_TOO_LARGE);
  // the largest frame a client must accept, and one byte more
  const ok = encodeFrame({ opcode: 0x7e, requestId: 1, payload: new Uint8Array(MAX_FRAME - HEADER_LENGTH) });
  assert.equal(decodeFrame(ok).size, MAX_FRAME);
  const over = encodeFrame({ opcode: 0x7e, requestId: 1, payload: new Uint8Array(MAX_FRAME - HEADER_LENGTH + 1) });
  assert.throws(() => decodeFrame(over.subarray(0, HEADER_LENGTH)), (e) => e.code === ErrorCode.FRAME_TOO_LARGE);
  const small = new FrameReader({ maxFrame: 4096 });
  small.push(encodeFrame({ opcode: 0x7e, payload: new Uint8Array(4096 - 13) }).subarray(0, 14));
  assert.throws(() => small.pull(), (e) => e.code === ErrorCode.FRAME_TOO_LARGE);
});

test('FrameReader: bad magic and version are seen before a whole header', () => {
  for (const [data, code] of [
    [new TextEncoder().encode('GE'), ErrorCode.BAD_MAGIC],
    [new TextEncoder().encode('GET / HTTP/1.1\r\n'), ErrorCode.BAD_MAGIC],
    [fromHex('53 44 02'), ErrorCode.UNSUPPORTED_VERSION],
    [fromHex('53 44 00 01 00 00'), ErrorCode.UNSUPPORTED_VERSION],
  ]) {
    const r = new FrameReader();
    r.push(data);
    assert.throws(() => r.pull(), (e) => e instanceof DecodeError && e.code === code && e.breaksFraming);
    assert.throws(() => decodeFrame(data), (e) => e.code === code);
  }
  // one byte is not enough to tell
  const r = new FrameReader();
  r.push(fromHex('47'));
  assert.equal(r.pull(), null);
  // bad magic after good frames: the good ones come out first
  const r2 = new FrameReader();
  r2.push(concat(EXAMPLES.get('done'), new TextEncoder().encode('GET /')));
  assert.equal(r2.pull().opcode, Opcode.DONE);
  assert.throws(() => r2.pull(), (e) => e.code === ErrorCode.BAD_MAGIC);
});

// ---- payload errors ----

const withPayload = (opcode, payload, requestId = 9) => encodeFrame({ opcode, requestId, payload: Uint8Array.from(payload) });
const u16 = (n) => [n >> 8, n & 0xff];

test('payload errors have their code, skip their frame and keep the stream', () => {
  const valid = EXAMPLES.get('session_valid');
  const listed = EXAMPLES.get('session_list');
  const patch = (bytes, at, value) => {
    const b = bytes.slice();
    b[at] = value;
    return b;
  };
  const search = EXAMPLES.get('audit_search');
  const logoutAll = EXAMPLES.get('logout_all');
  const profileSet = EXAMPLES.get('profile_set');
  const removeAt = 14 + 32 + 2 + 'display_name'.length;
  const adminSetAttr = EXAMPLES.get('admin_set_attr');
  const userList = EXAMPLES.get('user_list');
  const bad = {
    'trailing byte': [withPayload(Opcode.HEARTBEAT_ACK, new Array(9).fill(0)), ErrorCode.MALFORMED_FRAME, 9],
    'too short': [withPayload(Opcode.HEARTBEAT_ACK, new Array(7).fill(0)), ErrorCode.MALFORMED_FRAME, 9],
    'string past the end': [withPayload(Opcode.GENERAL_FAILURE, [0, 1, 0, 5, 0x61]), ErrorCode.MALFORMED_FRAME, 9],
    'string too long': [
      withPayload(Opcode.GENERAL_FAILURE, [0, 1, ...u16(257), ...new Array(257).fill(0x61)]),
      ErrorCode.FIELD_TOO_LONG,
      9,
    ],
    'bytes too long': [
      withPayload(Opcode.ATTRS, [0, 0, 0, 0, 0, 0, 0, 7, 0, 1, 0, 1, 0x6b, ...u16(3905), ...new Array(3905).fill(0)]),
      ErrorCode.FIELD_TOO_LONG,
      9,
    ],
    'app role too long': [
      withPayload(Opcode.USER_INFO, [0, 0, 0, 0, 0, 0, 0, 2, ...u16(33), ...new Array(33).fill(0x72), 0, 0]),
      ErrorCode.FIELD_TOO_LONG,
      9,
    ],
    '101 stats': [withPayload(Opcode.STATS, u16(101)), ErrorCode.MALFORMED_FRAME, 9],
    '51 audit records': [withPayload(Opcode.AUDIT_RECORDS, [0, 0, 0, 0, 0, 0, 0, 0, ...u16(51)]), ErrorCode.MALFORMED_FRAME, 9],
    '65 attributes': [withPayload(Opcode.ATTRS, [0, 0, 0, 0, 0, 0, 0, 7, ...u16(65)]), ErrorCode.MALFORMED_FRAME, 9],
    'role 2': [patch(valid, 30, 2), ErrorCode.MALFORMED_FRAME, 1],
    'session flag 4': [patch(listed, 28, 7), ErrorCode.MALFORMED_FRAME, 1],
    'scope 3': [patch(logoutAll, logoutAll.length - 1, 3), ErrorCode.MALFORMED_FRAME, 1],
    'order 2': [patch(search, search.length - 1, 2), ErrorCode.MALFORMED_FRAME, 1],
    'remove 2': [patch(profileSet, removeAt, 2), ErrorCode.MALFORMED_FRAME, 1],
    'a removal with a value': [patch(profileSet, removeAt, 1), ErrorCode.MALFORMED_FRAME, 1],
    'an admin removal with a value': [patch(adminSetAttr, 14 + 32 + 8 + 2 + 4, 1), ErrorCode.MALFORMED_FRAME, 1],
    'suspended 2': [patch(userList, 14 + 4 + 2 + 8 + 2 + 5 + 1 + 2 + 8, 2), ErrorCode.MALFORMED_FRAME, 1],
  };
  for (const [name, [data, code, rid]] of Object.entries(bad)) {
    const r = new FrameReader();
    r.push(concat(data, EXAMPLES.get('done')));
    assert.throws(
      () => r.pull(),
      (e) => e instanceof DecodeError && e instanceof SessiondError && e.code === code && !e.breaksFraming && e.requestId === rid,
      name,
    );
    const f = r.pull();
    assert.deepEqual(f.message, { affected: 2 }, `${name}: the next frame`);
    assert.equal(r.buffered, 0);
  }
  // the patches above hit the fields they mean to: unpatched, they decode
  assert.equal(frameOf('user_list').message.users[0].suspended, false);
  assert.equal(decodeFrame(patch(userList, 14 + 4 + 2 + 8 + 2 + 5 + 1 + 2 + 8, 1)).message.users[0].suspended, true);
});

test('invalid UTF-8 is INVALID_UTF8, valid UTF-8 of any kind is kept', () => {
  const invalid = {
    'lone continuation': [0x80],
    'overlong NUL': [0xc0, 0x80],
    'overlong slash': [0xe0, 0x80, 0xaf],
    'truncated sequence': [0xe2, 0x82],
    'a surrogate': [0xed, 0xa0, 0x80],
    'above U+10FFFF': [0xf4, 0x90, 0x80, 0x80],
    'bad start byte': [0xff],
    'bad second byte': [0xc3, 0x28],
  };
  for (const [name, bytes] of Object.entries(invalid)) {
    const data = withPayload(Opcode.GENERAL_FAILURE, [0, 1, ...u16(bytes.length), ...bytes]);
    assert.throws(() => decodeFrame(data), (e) => e instanceof DecodeError && e.code === ErrorCode.INVALID_UTF8, name);
    // in a field of a longer message too: NEW_LOGIN's platform
    const nl = withPayload(Opcode.NEW_LOGIN, [0, 0, 0, 0, 0, 0, 0, 8, 0, 1, 0x61, ...u16(bytes.length), ...bytes, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert.throws(() => decodeFrame(nl), (e) => e.code === ErrorCode.INVALID_UTF8, `${name} in NEW_LOGIN`);
  }
  // protocol.md 3: any byte is allowed inside a str, NUL and a BOM included
  const odd = { username: 'a;b:c d\u0000é', password: '\u0000;:\ufeff', client: '\ufeffx', platform: '😀' };
  const f = decodeFrame(encodeFrame({ opcode: Opcode.LOGIN_REQUEST, requestId: 1, message: odd }));
  assert.deepEqual(f.message, odd);
  // an attribute value is bytes, not text: anything goes
  const value = Uint8Array.from([0xff, 0xfe, 0x00, 0xc0, 0x80]);
  const a = decodeFrame(encodeFrame({ opcode: Opcode.ATTR_SET, requestId: 1, message: { token: TOKEN, key: 'k', value } }));
  assert.deepEqual(a.message.value, value);
});

test('unknown opcodes decode as unknown, keep their payload and the stream', () => {
  for (const op of [0x00, 0x0a, 0x51, 0x7e, 0x80, 0xf0, 0xff]) {
    const data = withPayload(op, [1, 2, 3], 4);
    const f = decodeFrame(data);
    assert.equal(f.known, false);
    assert.equal(f.opcode, op);
    assert.deepEqual(f.message.payload, Uint8Array.of(1, 2, 3));
    assert.equal(hex(encodeFrame(f)), hex(data));
    assert.equal(senderOf(op), null);
    assert.equal(fieldsOf(op), null);
    const r = new FrameReader();
    r.push(concat(data, EXAMPLES.get('heartbeat_ack')));
    assert.equal(r.pull().known, false);
    assert.equal(r.pull().opcode, Opcode.HEARTBEAT_ACK);
  }
  assert.throws(() => encodeFrame({ opcode: 0x7e, message: {} }), TypeError);
});

// ---- encoding checks ----

test('encoding checks every limit and never shows a secret', () => {
  const secret = 'hunter2-secret';
  const bad = [
    [Opcode.LOGIN_REQUEST, { username: '', password: secret }],
    [Opcode.LOGIN_REQUEST, { username: 'x'.repeat(65), password: secret }],
    [Opcode.LOGIN_REQUEST, { username: 'ü'.repeat(33), password: secret }],
    [Opcode.LOGIN_REQUEST, { username: 'u', password: secret + 'p'.repeat(1025) }],
    [Opcode.LOGIN_REQUEST, { username: 'u', password: secret + '\ud800' }],
    [Opcode.LOGIN_REQUEST, { username: 'u', password: 42 }],
    [Opcode.LOGIN_REQUEST, { username: 'u', password: secret, client: 'c'.repeat(65) }],
    [Opcode.REGISTER_REQUEST, { username: 'carol', password: secret, email: 'e'.repeat(255) }],
    [Opcode.ADMIN_SET_ROLE, { token: TOKEN, username: 'alice', role: 2 }],
    [Opcode.LOGOUT_ALL, { token: TOKEN, scope: 3 }],
    [Opcode.LOGOUT_ALL, { token: TOKEN }],
    [Opcode.LIST_SESSIONS, { token: TOKEN, offset: -1 }],
    [Opcode.LIST_SESSIONS, { token: TOKEN, limit: 1 << 16 }],
    [Opcode.LIST_SESSIONS, { token: TOKEN, offset: 1.5 }],
    [Opcode.HEARTBEAT, {}],
    [Opcode.HEARTBEAT, { token: TOKEN.subarray(0, 31) }],
    [Opcode.HEARTBEAT, { token: 'aa'.repeat(32) }],
    [Opcode.REVOKE_SESSION, { token: TOKEN, sessionId: 2 ** 64 }],
    [Opcode.REVOKE_SESSION, { token: TOKEN, sessionId: 2n ** 64n }],
    [Opcode.ATTR_SET, { token: TOKEN, key: '', value: 'x' }],
    [Opcode.ATTR_SET, { token: TOKEN, key: 'k'.repeat(65) }],
    [Opcode.ATTR_SET, { token: TOKEN, key: 'k', value: new Uint8Array(3905) }],
    [Opcode.PROFILE_SET, { token: TOKEN, key: 'k', remove: true, value: 'x' }],
    [Opcode.ADMIN_SET_PROFILE, { token: TOKEN, username: '', key: 'k' }],
    [Opcode.ADMIN_SET_APP_ROLE, { token: TOKEN, username: 'alice', role: 'r'.repeat(33) }],
    [Opcode.CHANGE_PASSWORD, { token: TOKEN, old: secret, new: 'n'.repeat(1025) }],
    [Opcode.ATTRS, { sessionId: 7, attrs: Array.from({ length: 65 }, (_, i) => ({ key: `k${i}`, value: '' })) }],
    [Opcode.AUDIT_SEARCH, { token: TOKEN, order: 2 }],
  ];
  for (const [opcode, message] of bad) {
    let err = null;
    try {
      encodeFrame({ opcode, requestId: 1, message });
    } catch (e) {
      err = e;
    }
    const what = `${nameOf(Opcode, opcode)} ${JSON.stringify(Object.keys(message))}`;
    assert.ok(err instanceof TypeError || err instanceof RangeError, `${what}: ${err}`);
    assert.ok(!err.message.includes(secret), `${what}: the message shows the password`);
    assert.ok(!err.message.includes(tokenToHex(TOKEN)) && !err.message.includes('0,1,2,3'), `${what}: shows the token`);
  }
  assert.throws(() => encodeFrame({ opcode: Opcode.DONE, requestId: 2 ** 32, message: { affected: 1 } }), RangeError);
  assert.throws(() => encodeFrame({ opcode: 256 }), RangeError);
});

test('defaults, large integers and the direction of each message', () => {
  // left-out optional fields take their defaults
  const f = decodeFrame(encodeFrame({ opcode: Opcode.LOGIN_REQUEST, requestId: 1, message: { username: 'u', password: '' } }));
  assert.deepEqual(f.message, { username: 'u', password: '', client: '', platform: '' });
  // a u64 above 2^53 is a BigInt; below, a number
  const big = 2n ** 60n + 1n;
  const r = decodeFrame(encodeFrame({ opcode: Opcode.REVOKE_SESSION, requestId: 1, message: { token: TOKEN, sessionId: big } }));
  assert.equal(r.message.sessionId, big);
  const max = decodeFrame(encodeFrame({ opcode: Opcode.LOGOUT_SUCCESS, message: { sessionId: 2n ** 64n - 1n } }));
  assert.equal(max.message.sessionId, 2n ** 64n - 1n);
  const small = decodeFrame(encodeFrame({ opcode: Opcode.LOGOUT_SUCCESS, message: { sessionId: 5n } }));
  assert.equal(small.message.sessionId, 5);
  // a session entry from current/connected when flags are left out
  const entry = { sessionId: 1, userId: 2, username: 'u', created: 0, lastActive: 0, expires: 0, current: false, connected: true };
  const l = decodeFrame(encodeFrame({ opcode: Opcode.SESSION_LIST, message: { total: 1, sessions: [entry] } }));
  assert.equal(l.message.sessions[0].flags, 2);
  assert.equal(l.message.sessions[0].connected, true);
  // the request or the answer
  assert.equal(senderOf(Opcode.LOGIN_REQUEST), 'client');
  assert.equal(senderOf(Opcode.LOGIN_SUCCESS), 'server');
  assert.deepEqual(fieldsOf(Opcode.VERIFY_SESSION), ['token', 'client', 'platform']);
});

test('tokens to and from hex', () => {
  const h = tokenToHex(TOKEN);
  assert.equal(h, '000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f');
  assert.deepEqual(tokenFromHex(h), TOKEN);
  assert.deepEqual(tokenFromHex(h.toUpperCase()), TOKEN);
  for (const bad of ['', 'zz'.repeat(32), h.slice(2), h + '00']) {
    assert.throws(() => tokenFromHex(bad), RangeError);
  }
  assert.throws(() => tokenToHex(TOKEN.subarray(1)), RangeError);
});
