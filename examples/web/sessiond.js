/**
 * sessiond.js: a sessiond client for browsers and Node 20, written from protocol.md.
 *
 * One ES module, no build step, no dependencies. It has two layers:
 *
 * **The codec** (protocol.md sections 2, 3, 5 and 6), with no I/O and no clock:
 *
 * - `Opcode`, `Flag`, `ErrorCode` and the reason tables (`LoginFailureReason`,
 *   `DisconnectReason`, `InvalidReason`, `RegisterFailureReason`, `RevokeReason`,
 *   `ExpiredReason`, `Role`, `LogoutScope`, `AuditKind`, `AuditOrder`, `SessionFlag`): frozen
 *   objects NAME -> number, one per table of protocol.md. `nameOf(table, n)` is the name of
 *   a value, or its hex form (`'0x0077'`) for a value this client does not know. Audit kinds
 *   are spelled in upper case here (`AuditKind.SESSION_CREATED`); protocol.md 5.27 writes
 *   them in lower case.
 * - `encodeFrame({opcode, requestId = 0, flags = 0, message = {}}) -> Uint8Array` and
 *   `decodeFrame(bytes) -> {opcode, requestId, flags, message, size, known}`, where `size` is
 *   the frame's length in bytes (header included) and `known` is false for an opcode this
 *   client does not know (its `message` is then `{payload: Uint8Array}`, and `encodeFrame`
 *   writes such a message back as it is). `encodeFrame` also takes `{opcode, payload}` to
 *   write any payload (for tests). `decodeFrame` throws `DecodeError` (also for a frame that
 *   is not complete yet: its `incomplete` is then true).
 * - `FrameReader`: `push(bytes)` what arrives, then `pull()` until it returns null. A
 *   `DecodeError` whose `breaksFraming` is false has already skipped its frame, so the
 *   reader goes on; one whose `breaksFraming` is true (bad magic, version or length) leaves
 *   the stream unreadable.
 * - Messages are plain objects whose fields are protocol.md's, in camelCase: LOGIN_SUCCESS is
 *   `{token, sessionId, userId, role, username, userCreated, lastLogin, sessionCreated,
 *   sessionExpires, idleExpiryMs, heartbeatIntervalMs, heartbeatTimeoutMs}`. Fields of type
 *   `millis` carry an `Ms` suffix (`retry_after` is `retryAfterMs`); `time` fields are
 *   milliseconds since the epoch under their own name (`at`, `created`, `serverTime`).
 *   Integers are numbers; a `u64` above `Number.MAX_SAFE_INTEGER` decodes as a BigInt, and
 *   either is accepted when encoding. `str` fields are strings, `bytes` fields Uint8Arrays
 *   (a string is accepted when encoding, as UTF-8), `token` fields 32-byte Uint8Arrays,
 *   `remove` and `suspended` booleans. A counted list is an array named for what it holds:
 *   SESSION_LIST `sessions`, AUDIT_PAGE `entries`, AUDIT_RECORDS `records`, ATTRS `attrs`,
 *   USER_INFO `profile` (both `[{key, value}]`), STATS `counters` (`[{name, value}]`),
 *   USER_LIST `users`. A SESSION_LIST entry also has `current` and `connected` (its flag
 *   bits). Encoding checks every limit of protocol.md and throws TypeError or RangeError.
 * - `tokenToHex(token)`, `tokenFromHex(text)`; `senderOf(opcode)` (`'client'`, `'server'` or
 *   null) and `fieldsOf(opcode)` (the message's field names in wire order); `MemoryStorage`
 *   (the in-memory token store); `MAX_FRAME`, `HEADER_LENGTH`, `TOKEN_LENGTH`.
 *
 * **The client**, `class SessiondClient extends EventTarget`, over a WebSocket (the server's
 * `--ws-listen`; protocol.md, "WebSocket transport"):
 *
 *     const c = new SessiondClient({url: 'ws://127.0.0.1:7451/'});
 *     c.addEventListener('revoked', (e) => show(`signed in elsewhere: ${e.detail.client}`));
 *     const {resumed} = await c.connect();        // resumes the stored token if there is one
 *     if (!resumed) await c.login('alice', password);
 *
 * Options of `new SessiondClient({...})`:
 * - `url`: the server's `ws://` or `wss://` URL.
 * - `WebSocket`: the constructor, default `globalThis.WebSocket` (in Node 20, pass the `ws`
 *   package's). The client offers the subprotocol `sessiond`.
 * - `storage` (default `globalThis.localStorage` if there is one, else a store in memory:
 *   any object with getItem/setItem/removeItem) and `storageKey` (default
 *   `'sessiond.token'`): where the session token is kept, as hex. A client removes the stored
 *   token only when it is its own, so clients (tabs) sharing a storage do not erase each
 *   other's.
 * - `client` (default `'sessiond-web'`) and `platform` (default: the browser's or Node's
 *   platform): the device, as LOGIN_REQUEST and VERIFY_SESSION send it (64 bytes at most).
 * - `requestTimeoutMs` (default 10000): a request not answered by then rejects with
 *   `RequestTimeout`. The connection stays up; a late reply still takes effect (a late
 *   LOGIN_SUCCESS still logs in), only the promise has given up.
 * - `reconnect` (default `{initialMs: 250, maxMs: 10000}`) and `autoReconnect` (default true).
 *
 * Methods (every one returns a promise; a refusal rejects with a `SessiondError`):
 * - `connect()`: opens the socket; with a stored token sends VERIFY_SESSION first and
 *   resolves `{resumed: true, session}`, or `{resumed: false, reason}` when the token is
 *   refused (SESSION_INVALID: the stored token is removed; `reason` is the InvalidReason
 *   name), or `{resumed: false, duplicate: true}` when the session is in use on another
 *   connection (DUPLICATE_SESSION: `duplicate` is emitted, the token kept, no reconnect);
 *   without a token `{resumed: false}`.
 * - `login(username, password)` -> LOGIN_SUCCESS's fields (stores the token);
 *   `register(username, password, email = '')` -> REGISTER_SUCCESS's fields. Both open the
 *   socket first if it is not open.
 * - `logout()` -> LOGOUT_SUCCESS's fields; the stored token is removed, the connection stays
 *   open for another login (until the server's login deadline closes it).
 * - `listSessions({offset, limit})` -> the SESSION_LIST entries (an array, with `total`);
 *   `revokeSession(sessionId)` -> DONE's `affected`; `logoutAll(scope = 'ALL')` (`'OTHERS'`
 *   or `'ALL'`, or a `LogoutScope` value) -> `affected`; `changePassword(oldPw, newPw)` ->
 *   `affected`; `getAttrs(key = '')`, `setAttr(key, value)`, `removeAttr(key)`,
 *   `getProfile(key = '')`, `setProfile(key, value)`.
 * - administrators: `adminListSessions(username = '', {offset, limit})`,
 *   `adminRevokeSession(sessionId)`, `adminLogoutUser(username)`,
 *   `adminSuspendUser(username)`, `adminUnsuspendUser(username)`,
 *   `adminListUsers({offset, limit})` (an array with `total`), `adminStats()` (an object
 *   name -> value).
 * - `request(opcode, message)` -> the reply frame, for anything else (the session's token
 *   is filled in when the message has a `token` field and none is given).
 * - `close()`: DISCONNECT_REQUEST, then the socket is closed; no reconnect. The session
 *   survives on the server (detached); the token stays stored.
 *
 * Properties: `state`, one of `'idle' | 'connecting' | 'open' | 'active' | 'reconnecting' |
 * 'closed'` ('open': connected, not logged in; 'active': in a session); `session` (the
 * session info of LOGIN_SUCCESS or SESSION_VALID, without the token, or null); `user` (the
 * last USER_INFO, or null); `username`.
 *
 * While active the client sends a HEARTBEAT every `heartbeatIntervalMs` the server advertised
 * and treats a HEARTBEAT_ACK missing for `heartbeatTimeoutMs` as a dead server. When the
 * socket drops while a session is active (not after a FATAL frame that ended the session,
 * not after `close()`), it reconnects with jittered exponential backoff (`initialMs` doubling
 * up to `maxMs`; after SERVER_SHUTDOWN, `reconnectAfterMs` plus up to as much again) and
 * resumes with VERIFY_SESSION: it never logs out on its own.
 *
 * Events (CustomEvent; the data is `event.detail`): `state` `{state, previous}`; `heartbeat`
 * `{rttMs, at}` (`at`: the server's time); `loggedIn` (LOGIN_SUCCESS's fields without the
 * token); `resumed` (SESSION_VALID's fields); `loggedOut` `{sessionId, reason}` (`'LOGOUT'`,
 * `'LOGOUT_ALL'`, or the InvalidReason name when a resume found the session gone);
 * `revoked` (SESSION_REVOKED's fields, `reasonName`, and the device that caused it also as
 * `client`, `platform`, `address` and `atMs`; the stored token is removed unless the reason
 * is TAKEN_OVER); `expired` (SESSION_EXPIRED's fields and `reasonName`; token removed);
 * `duplicate` (DUPLICATE_SESSION's fields: the session is in use on another connection,
 * another tab); `newLogin` (NEW_LOGIN's fields, and `atMs`); `shutdown` (SERVER_SHUTDOWN's
 * fields); `userInfo` (USER_INFO's); `attrs` (ATTRS's); `disconnected` `{code, reason,
 * willReconnect}` (`code`: the WebSocket close code); `push` (every push frame, decoded:
 * `{opcode, name, requestId, flags, message}`).
 *
 * Errors: `SessiondError` has `code` (the GENERAL_FAILURE code, or null when the error is
 * not one) and `codeName` (the protocol's name of what went wrong: the error code's name, or
 * the reason's for `LoginFailed` (`reason`, `reasonName`, `retryAfterMs`), `RegisterFailed`
 * (`reason`, `reasonName`) and `SessionInvalid` (`reason`, `reasonName`); or this client's
 * own: `CONNECTION_CLOSED`, `REQUEST_TIMEOUT`, `NOT_LOGGED_IN`, `LOGGED_IN`,
 * `UNEXPECTED_REPLY`). `ConnectionClosed` carries the FATAL `frame` that ended the
 * connection, if one did. `DecodeError` (a frame that does not decode) has the ErrorCode a
 * server would answer with. No error message and no console output of this module ever
 * holds a password or a token; the session's token is also kept off `session`, and is a
 * non-enumerable property of `login()`'s result, so printing either does not show it.
 */

// ---------------------------------------------------------------------------------------
// Constants and tables (protocol.md 2, 3, 5, 6)
// ---------------------------------------------------------------------------------------

export const MAGIC = 0x5344;
export const VERSION = 1;
export const HEADER_LENGTH = 14;
export const TOKEN_LENGTH = 32;
/** protocol.md 2: "a client MUST accept frames up to 65,536 bytes" (header included). */
export const MAX_FRAME = 65536;

const MAX_USERNAME = 64;
const MAX_PASSWORD = 1024;
const MAX_DEVICE = 64;
const MAX_ADDRESS = 64;
const MAX_MESSAGE = 256;
const MAX_EMAIL = 254;
const MAX_PAGE = 100;
const MAX_RECORDS = 50;
const MAX_ATTR_KEY = 64;
const MAX_ATTR_VALUE = 3904;
const MAX_ATTRS = 64;
const MAX_ROLE_NAME = 32;

/** Message types (protocol.md 5). */
export const Opcode = Object.freeze({
  LOGIN_REQUEST: 0x01,
  LOGIN_SUCCESS: 0x02,
  LOGIN_FAILURE: 0x03,
  HEARTBEAT: 0x04,
  HEARTBEAT_ACK: 0x05,
  LOGOUT_REQUEST: 0x06,
  LOGOUT_SUCCESS: 0x07,
  DISCONNECT_REQUEST: 0x08,
  DISCONNECT_ACK: 0x09,
  GENERAL_FAILURE: 0x0f,
  VERIFY_SESSION: 0x10,
  SESSION_VALID: 0x11,
  SESSION_INVALID: 0x12,
  DUPLICATE_SESSION: 0x13,
  REGISTER_REQUEST: 0x20,
  REGISTER_SUCCESS: 0x21,
  REGISTER_FAILURE: 0x22,
  SESSION_REVOKED: 0x30,
  SESSION_EXPIRED: 0x31,
  NEW_LOGIN: 0x32,
  SERVER_SHUTDOWN: 0x33,
  USER_INFO: 0x34,
  LIST_SESSIONS: 0x40,
  SESSION_LIST: 0x41,
  REVOKE_SESSION: 0x42,
  LOGOUT_ALL: 0x43,
  CHANGE_PASSWORD: 0x44,
  DONE: 0x45,
  AUDIT_QUERY: 0x46,
  AUDIT_PAGE: 0x47,
  AUDIT_SEARCH: 0x48,
  AUDIT_RECORDS: 0x49,
  ATTR_SET: 0x4a,
  ATTR_REMOVE: 0x4b,
  ATTR_GET: 0x4c,
  ATTRS: 0x4d,
  PROFILE_SET: 0x4e,
  PROFILE_GET: 0x4f,
  ADMIN_LIST_SESSIONS: 0x50,
  ADMIN_REVOKE_SESSION: 0x52,
  ADMIN_LOGOUT_USER: 0x53,
  ADMIN_SUSPEND_USER: 0x54,
  ADMIN_UNSUSPEND_USER: 0x55,
  ADMIN_SET_ROLE: 0x56,
  ADMIN_STATS: 0x57,
  STATS: 0x58,
  ADMIN_SET_PASSWORD: 0x59,
  ADMIN_SET_ATTR: 0x5a,
  ADMIN_SET_PROFILE: 0x5b,
  ADMIN_SET_APP_ROLE: 0x5c,
  ADMIN_LIST_USERS: 0x5d,
  USER_LIST: 0x5e,
});

/** Header flags (protocol.md 2). A client always sends 0. */
export const Flag = Object.freeze({ FATAL: 0x0001, PUSH: 0x0002 });

/** GENERAL_FAILURE codes (protocol.md 6). Unknown codes are kept as the numbers they are. */
export const ErrorCode = Object.freeze({
  MALFORMED_FRAME: 0x0001,
  FRAME_TOO_LARGE: 0x0002,
  BAD_MAGIC: 0x0003,
  UNSUPPORTED_VERSION: 0x0004,
  UNKNOWN_OPCODE: 0x0005,
  INVALID_UTF8: 0x0006,
  FIELD_TOO_LONG: 0x0007,
  BAD_FLAGS: 0x0008,
  UNEXPECTED_FRAME: 0x0009,
  AUTH_REQUIRED: 0x000a,
  INVALID_TOKEN: 0x000b,
  TOKEN_MISMATCH: 0x000d,
  TOO_MANY_ERRORS: 0x000e,
  INTERNAL_ERROR: 0x000f,
  FORBIDDEN: 0x0010,
  NOT_FOUND: 0x0011,
  INVALID_ARGUMENT: 0x0012,
  WRONG_PASSWORD: 0x0013,
  THROTTLED: 0x0014,
  SERVER_BUSY: 0x0015,
  STORAGE_UNAVAILABLE: 0x0016,
  TLS_REQUIRED: 0x0017,
  LIMIT_EXCEEDED: 0x0018,
});

/** LOGIN_FAILURE reasons (protocol.md 5.3). */
export const LoginFailureReason = Object.freeze({
  INVALID_CREDENTIALS: 0x0001,
  SERVER_BUSY: 0x0002,
  SESSION_LIMIT: 0x0003,
  SUSPENDED: 0x0004,
  DAILY_LIMIT: 0x0005,
  THROTTLED: 0x0006,
  STORAGE_UNAVAILABLE: 0x0007,
});

/** DISCONNECT_ACK reasons (protocol.md 5.9). */
export const DisconnectReason = Object.freeze({
  CLIENT_REQUEST: 0x0000,
  IDLE_TIMEOUT: 0x0001,
  LOGIN_TIMEOUT: 0x0002,
  SERVER_SHUTDOWN: 0x0003,
});

/** SESSION_INVALID reasons (protocol.md 5.13). */
export const InvalidReason = Object.freeze({
  UNKNOWN: 0x0001,
  EXPIRED: 0x0002,
  REVOKED: 0x0003,
  LOGGED_OUT: 0x0004,
});

/** REGISTER_FAILURE reasons (protocol.md 5.17). */
export const RegisterFailureReason = Object.freeze({
  USERNAME_TAKEN: 0x0001,
  INVALID_USERNAME: 0x0002,
  PASSWORD_TOO_SHORT: 0x0003,
  INVALID_EMAIL: 0x0004,
  REGISTRATION_CLOSED: 0x0005,
  SERVER_BUSY: 0x0006,
  STORAGE_UNAVAILABLE: 0x0007,
});

/** SESSION_REVOKED reasons (protocol.md 5.18). */
export const RevokeReason = Object.freeze({
  NEW_LOGIN: 0x0001,
  TAKEN_OVER: 0x0002,
  REVOKED_BY_USER: 0x0003,
  PASSWORD_CHANGED: 0x0004,
  REVOKED_BY_ADMIN: 0x0005,
  ACCOUNT_SUSPENDED: 0x0006,
  PASSWORD_RESET: 0x0007,
});

/** SESSION_EXPIRED reasons (protocol.md 5.19). */
export const ExpiredReason = Object.freeze({ IDLE: 0x0001, ABSOLUTE: 0x0002 });

/** Protocol roles (protocol.md 5.2); any other value is a malformed frame. */
export const Role = Object.freeze({ USER: 0, ADMIN: 1 });

/** LOGOUT_ALL scopes (protocol.md 5.24). */
export const LogoutScope = Object.freeze({ OTHERS: 1, ALL: 2 });

/** AUDIT_SEARCH orders (protocol.md 5.36). */
export const AuditOrder = Object.freeze({ OLDEST_FIRST: 0, NEWEST_FIRST: 1 });

/** SESSION_LIST entry flag bits (protocol.md 5.23). */
export const SessionFlag = Object.freeze({ CURRENT: 0x01, CONNECTED: 0x02 });

/** Audit event kinds (protocol.md 5.27, whose names are these in lower case). */
export const AuditKind = Object.freeze({
  SESSION_CREATED: 1,
  SESSION_RESUMED: 2,
  SESSION_DETACHED: 3,
  EXPIRED_IDLE: 4,
  EXPIRED_ABSOLUTE: 5,
  LOGGED_OUT: 6,
  REVOKED: 7,
  LOGIN_FAILED: 8,
  REGISTERED: 9,
  SUSPENDED: 10,
  UNSUSPENDED: 11,
  ROLE_CHANGED: 12,
  PASSWORD_CHANGED: 13,
  USER_CREATED: 14,
  PASSWORD_CHANGE_FAILED: 15,
  PASSWORD_RESET: 16,
  USER_DELETED: 17,
});

const reverseTables = new WeakMap();

/**
 * The name of `value` in `table` (one of the enums above), or its hex form when this client
 * does not know it (`'0x0077'`; two digits for an opcode).
 * @param {Readonly<Record<string, number>>} table
 * @param {number} value
 * @returns {string}
 */
export function nameOf(table, value) {
  let rev = reverseTables.get(table);
  if (!rev) {
    rev = new Map(Object.entries(table).map(([k, v]) => [v, k]));
    reverseTables.set(table, rev);
  }
  const name = rev.get(value);
  if (name !== undefined) return name;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) return String(value);
  return '0x' + n.toString(16).padStart(table === Opcode ? 2 : 4, '0');
}

// ---------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------

/** Every error of this module: `code` (a GENERAL_FAILURE code, or null) and `codeName`. */
export class SessiondError extends Error {
  /**
   * @param {string} message
   * @param {{code?: number|null, codeName?: string|null, frame?: object|null, fatal?: boolean,
   *   serverMessage?: string}} [info]
   */
  constructor(message, { code = null, codeName = null, frame = null, fatal = false, serverMessage } = {}) {
    super(message);
    this.name = new.target.name;
    this.code = code;
    this.codeName = codeName ?? (code === null ? null : nameOf(ErrorCode, code));
    this.frame = frame;
    this.fatal = fatal;
    if (serverMessage !== undefined) this.serverMessage = serverMessage;
  }

  /** The error a GENERAL_FAILURE frame stands for. */
  static fromFailure(frame) {
    const { code, message } = frame.message;
    const fatal = (frame.flags & Flag.FATAL) !== 0;
    const name = nameOf(ErrorCode, code);
    return new SessiondError(`${name}: ${message}${fatal ? ' (fatal)' : ''}`, {
      code,
      codeName: name,
      frame,
      fatal,
      serverMessage: message,
    });
  }
}

/** A frame that does not decode (protocol.md 2, "Header checks"; 3). */
export class DecodeError extends SessiondError {
  constructor(code, detail, { requestId = 0, opcode = 0, breaksFraming = false, size = 0, incomplete = false } = {}) {
    super(`${nameOf(ErrorCode, code)}: ${detail}`, { code });
    this.detail = detail;
    this.requestId = requestId;
    this.opcode = opcode;
    /** True when the frame boundary is lost (bad magic, version or length). */
    this.breaksFraming = breaksFraming;
    /** The frame's length, when known (a reader skips that many bytes). */
    this.size = size;
    /** True when the input ends before the frame does (not an error for a stream). */
    this.incomplete = incomplete;
  }
}

/**
 * A refusal that carries a reason from one of protocol.md's tables: `reason`, `reasonName`
 * and `serverMessage`. The three below differ only in the table and the words.
 */
class ReasonRefusal extends SessiondError {
  constructor(what, table, m, frame, detail = '') {
    const reasonName = nameOf(table, m.reason);
    super(`${what}: ${reasonName}${detail}: ${m.message}`, { codeName: reasonName, frame, serverMessage: m.message });
    this.reason = m.reason;
    this.reasonName = reasonName;
  }
}

/** LOGIN_FAILURE: `reason`, `reasonName`, `retryAfterMs`, `serverMessage`. */
export class LoginFailed extends ReasonRefusal {
  constructor(m, frame) {
    const wait = m.retryAfterMs ? ` (retry after ${m.retryAfterMs} ms)` : '';
    super('login failed', LoginFailureReason, m, frame, wait);
    this.retryAfterMs = m.retryAfterMs;
  }
}

/** REGISTER_FAILURE: `reason`, `reasonName`, `serverMessage`. */
export class RegisterFailed extends ReasonRefusal {
  constructor(m, frame) {
    super('registration failed', RegisterFailureReason, m, frame);
  }
}

/** SESSION_INVALID: the token will never work again (`reason`, `reasonName`). */
export class SessionInvalid extends ReasonRefusal {
  constructor(m, frame) {
    super('session invalid', InvalidReason, m, frame);
  }
}

/** The connection closed (or was not open). `frame`: the FATAL frame that ended it, if any. */
export class ConnectionClosed extends SessiondError {
  constructor(message, { frame = null, wsCode = null } = {}) {
    super(message, { codeName: 'CONNECTION_CLOSED', frame, fatal: frame !== null });
    this.wsCode = wsCode;
  }
}

/** No reply within `requestTimeoutMs`. */
export class RequestTimeout extends SessiondError {
  constructor(message) {
    super(message, { codeName: 'REQUEST_TIMEOUT' });
  }
}

// ---------------------------------------------------------------------------------------
// Field encodings (protocol.md 3)
// ---------------------------------------------------------------------------------------

const utf8Encoder = new TextEncoder();
// fatal: invalid UTF-8 is an error (INVALID_UTF8); ignoreBOM: a leading U+FEFF is content.
const utf8Decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function toBytes(data, what = 'data') {
  if (data instanceof Uint8Array) return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  throw new TypeError(`${what}: bytes (a Uint8Array or ArrayBuffer) are needed`);
}

function wellFormed(s) {
  if (typeof s.isWellFormed === 'function') return s.isWellFormed();
  return !/[\ud800-\udbff](?![\udc00-\udfff])|(?:^|[^\ud800-\udbff])[\udc00-\udfff]/.test(s);
}

class Writer {
  constructor() {
    this.buf = new Uint8Array(128);
    this.view = new DataView(this.buf.buffer);
    this.length = 0;
  }

  reserve(n) {
    if (this.length + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.length + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  uint(size, v) {
    this.reserve(size);
    const at = this.length;
    if (size === 1) this.view.setUint8(at, v);
    else if (size === 2) this.view.setUint16(at, v);
    else if (size === 4) this.view.setUint32(at, v);
    else this.view.setBigUint64(at, BigInt(v));
    this.length += size;
  }

  raw(bytes) {
    this.reserve(bytes.length);
    this.buf.set(bytes, this.length);
    this.length += bytes.length;
  }

  bytes() {
    return this.buf.slice(0, this.length);
  }
}

class Reader {
  constructor(bytes) {
    this.bytes = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.pos = 0;
  }

  need(n) {
    if (this.pos + n > this.bytes.length) {
      throw new DecodeError(ErrorCode.MALFORMED_FRAME, 'payload shorter than its layout');
    }
  }

  uint(size) {
    this.need(size);
    const at = this.pos;
    this.pos += size;
    if (size === 1) return this.view.getUint8(at);
    if (size === 2) return this.view.getUint16(at);
    if (size === 4) return this.view.getUint32(at);
    const big = this.view.getBigUint64(at);
    return big <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(big) : big;
  }

  take(n) {
    this.need(n);
    const out = this.bytes.slice(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  finish() {
    // protocol.md 2, step 7: "a payload MUST be consumed exactly".
    if (this.pos !== this.bytes.length) {
      throw new DecodeError(ErrorCode.MALFORMED_FRAME, 'bytes left over after the last field');
    }
  }
}

function checkUint(v, size, name) {
  const bits = size * 8;
  if (typeof v === 'bigint') {
    if (v < 0n || v >= 1n << BigInt(bits)) throw new RangeError(`${name}: ${v} does not fit in u${bits}`);
    return size === 8 ? v : Number(v);
  }
  if (typeof v !== 'number' || !Number.isInteger(v)) throw new TypeError(`${name}: an integer is needed`);
  if (v < 0 || (size < 8 && v >= 2 ** bits) || (size === 8 && !Number.isSafeInteger(v))) {
    throw new RangeError(`${name}: ${v} does not fit in u${bits}${size === 8 ? ' (use a BigInt above 2^53)' : ''}`);
  }
  return v;
}

// A codec: {def, enc(writer, value, name), dec(reader)}. `def` is the value of a field the
// message leaves out when encoding (undefined: the field is required).
const uint = (size) => ({
  def: 0,
  enc: (w, v, name) => w.uint(size, checkUint(v, size, name)),
  dec: (r) => r.uint(size),
});
const U8 = uint(1);
const U16 = uint(2);
const U32 = uint(4);
const U64 = uint(8);
const TIME = U64; // ms since the Unix epoch; 0: never / not set
const MILLIS = U32;

function str(lo, hi) {
  return {
    def: '',
    enc(w, v, name) {
      if (typeof v !== 'string') throw new TypeError(`${name}: a string is needed`);
      if (!wellFormed(v)) throw new TypeError(`${name}: not valid Unicode (a lone surrogate)`);
      const b = utf8Encoder.encode(v);
      if (b.length < lo || b.length > hi) throw new RangeError(`${name}: ${b.length} bytes, must be ${lo}..=${hi}`);
      w.uint(2, b.length);
      w.raw(b);
    },
    // Design: minimum lengths are checked when encoding only, as the server's decoder does.
    dec(r) {
      const n = r.uint(2);
      // protocol.md 3: a prefix over the field's maximum is FIELD_TOO_LONG (checked before
      // the bounds); bytes that are not UTF-8 are INVALID_UTF8.
      if (n > hi) throw new DecodeError(ErrorCode.FIELD_TOO_LONG, `string of ${n} bytes, at most ${hi}`);
      const b = r.take(n);
      try {
        return utf8Decoder.decode(b);
      } catch {
        throw new DecodeError(ErrorCode.INVALID_UTF8, 'string field is not valid UTF-8');
      }
    },
  };
}

function bytes(hi) {
  return {
    def: new Uint8Array(0),
    enc(w, v, name) {
      const b = typeof v === 'string' ? utf8Encoder.encode(v) : toBytes(v, name);
      if (b.length > hi) throw new RangeError(`${name}: ${b.length} bytes, at most ${hi}`);
      w.uint(2, b.length);
      w.raw(b);
    },
    dec(r) {
      const n = r.uint(2);
      if (n > hi) throw new DecodeError(ErrorCode.FIELD_TOO_LONG, `${n} bytes, at most ${hi}`);
      return r.take(n);
    },
  };
}

const BOOL = {
  def: false,
  enc(w, v, name) {
    if (v !== true && v !== false && v !== 0 && v !== 1) throw new TypeError(`${name}: a boolean is needed`);
    w.uint(1, v ? 1 : 0);
  },
  dec(r) {
    const v = r.uint(1);
    if (v > 1) throw new DecodeError(ErrorCode.MALFORMED_FRAME, `${v} is not 0 or 1`);
    return v === 1;
  },
};

const TOKEN = {
  def: undefined,
  enc(w, v, name) {
    const b = toBytes(v, name);
    if (b.length !== TOKEN_LENGTH) throw new RangeError(`${name}: a token is ${TOKEN_LENGTH} bytes, not ${b.length}`);
    w.raw(b);
  },
  dec: (r) => r.take(TOKEN_LENGTH),
};

/** A value from a closed table: others are MALFORMED_FRAME (role, scope, order). */
function closed(table, size, def = undefined) {
  const values = new Set(Object.values(table));
  return {
    def,
    enc(w, v, name) {
      if (!values.has(v)) throw new RangeError(`${name}: ${v} is not one of ${Object.keys(table).join(', ')}`);
      w.uint(size, v);
    },
    dec(r) {
      const v = r.uint(size);
      if (!values.has(v)) throw new DecodeError(ErrorCode.MALFORMED_FRAME, `${v} is not a valid value here`);
      return v;
    },
  };
}

// protocol.md 5.23: bit 0 CURRENT, bit 1 CONNECTED, "other bits 0".
const SESSION_FLAGS = {
  def: 0,
  enc(w, v, name) {
    const n = checkUint(v, 1, name);
    if (n & ~0x03) throw new RangeError(`${name}: unknown flag bits in 0x${n.toString(16)}`);
    w.uint(1, n);
  },
  dec(r) {
    const v = r.uint(1);
    if (v & ~0x03) throw new DecodeError(ErrorCode.MALFORMED_FRAME, `session flags 0x${v.toString(16)}`);
    return v;
  },
};

/** A struct: fields in wire order, with optional `pre` (before encoding) and `post` hooks. */
function struct(fields, { pre, post } = {}) {
  return {
    fields,
    def: undefined,
    enc(w, v, name) {
      if (v === null || typeof v !== 'object') throw new TypeError(`${name}: an object is needed`);
      encodeFields(w, pre ? pre(v) : v, fields, name);
    },
    dec(r) {
      const v = decodeFields(r, fields);
      return post ? post(v) : v;
    },
  };
}

/** `u16` count (at most `most`), then the items. */
function list(item, most) {
  return {
    def: [],
    enc(w, v, name) {
      if (!Array.isArray(v)) throw new TypeError(`${name}: an array is needed`);
      if (v.length > most) throw new RangeError(`${name}: ${v.length} entries, at most ${most}`);
      w.uint(2, v.length);
      v.forEach((x, i) => item.enc(w, x, `${name}[${i}]`));
    },
    dec(r) {
      const n = r.uint(2);
      if (n > most) throw new DecodeError(ErrorCode.MALFORMED_FRAME, `${n} entries, at most ${most}`);
      const out = [];
      for (let i = 0; i < n; i++) out.push(item.dec(r));
      return out;
    },
  };
}

function encodeFields(w, obj, fields, where) {
  for (const [name, codec] of fields) {
    let v = obj[name];
    if (v === undefined) {
      if (codec.def === undefined) throw new TypeError(`${where}: field ${name} is missing`);
      v = codec.def;
    }
    codec.enc(w, v, `${where}.${name}`);
  }
}

function decodeFields(r, fields) {
  const out = {};
  for (const [name, codec] of fields) out[name] = codec.dec(r);
  return out;
}

// ---------------------------------------------------------------------------------------
// Messages (protocol.md 5): the fields of each opcode, in wire order
// ---------------------------------------------------------------------------------------

const DEVICE = str(0, MAX_DEVICE);
const ADDRESS = str(0, MAX_ADDRESS);
const MESSAGE = str(0, MAX_MESSAGE);
const USERNAME = str(1, MAX_USERNAME);
const ANY_USERNAME = str(0, MAX_USERNAME);
const PASSWORD = str(0, MAX_PASSWORD);
const DETAIL = str(0, 256);
const ATTR = struct([
  ['key', str(1, MAX_ATTR_KEY)],
  ['value', bytes(MAX_ATTR_VALUE)],
]);

/** The session info block of LOGIN_SUCCESS and SESSION_VALID (protocol.md 5.2). */
const SESSION_INFO = [
  ['sessionId', U64],
  ['userId', U64],
  ['role', closed(Role, 1)],
  ['username', USERNAME],
  ['userCreated', TIME],
  ['lastLogin', TIME],
  ['sessionCreated', TIME],
  ['sessionExpires', TIME],
  ['idleExpiryMs', MILLIS],
  ['heartbeatIntervalMs', MILLIS],
  ['heartbeatTimeoutMs', MILLIS],
];

const SESSION_ENTRY = struct(
  [
    ['sessionId', U64],
    ['flags', SESSION_FLAGS],
    ['userId', U64],
    ['username', USERNAME],
    ['client', DEVICE],
    ['platform', DEVICE],
    ['address', ADDRESS],
    ['created', TIME],
    ['lastActive', TIME],
    ['expires', TIME],
  ],
  {
    pre: (e) =>
      e.flags !== undefined
        ? e
        : { ...e, flags: (e.current ? SessionFlag.CURRENT : 0) | (e.connected ? SessionFlag.CONNECTED : 0) },
    post: (e) => ({
      ...e,
      current: (e.flags & SessionFlag.CURRENT) !== 0,
      connected: (e.flags & SessionFlag.CONNECTED) !== 0,
    }),
  },
);

const AUDIT_QUERY = [
  ['token', TOKEN],
  ['username', ANY_USERNAME],
  ['kind', U8],
  ['from', TIME],
  ['to', TIME],
  ['cursor', U64],
  ['limit', U16],
];

const AUDIT_ENTRY = struct([
  ['seq', U64],
  ['at', TIME],
  ['kind', U8],
  ['userId', U64],
  ['username', ANY_USERNAME],
  ['sessionId', U64],
  ['address', ADDRESS],
  ['detail', DETAIL],
]);

const AUDIT_RECORD = struct([
  ['seq', U64],
  ['at', TIME],
  ['kind', U8],
  ['reason', U16],
  ['userId', U64],
  ['username', ANY_USERNAME],
  ['sessionId', U64],
  ['address', ADDRESS],
  ['client', DEVICE],
  ['platform', DEVICE],
  ['actorUserId', U64],
  ['actorUsername', ANY_USERNAME],
  ['actorSessionId', U64],
  ['actorAddress', ADDRESS],
  ['actorClient', DEVICE],
  ['actorPlatform', DEVICE],
  ['note', DETAIL],
]);

const USER_ENTRY = struct([
  ['userId', U64],
  ['username', USERNAME],
  ['role', closed(Role, 1)],
  ['appRole', str(0, MAX_ROLE_NAME)],
  ['suspended', BOOL],
  ['created', TIME],
  ['lastLogin', TIME],
]);

const STAT = struct([
  ['name', str(1, 64)],
  ['value', U64],
]);

/** `remove u8, value bytes`: "`1`: remove it (`value` MUST then be empty)" (5.43, 5.44). */
function removalCarriesNoValue(m, decoding) {
  const n = typeof m.value === 'string' ? m.value.length : m.value ? toBytes(m.value, 'value').length : 0;
  if (m.remove && n > 0) {
    if (decoding) throw new DecodeError(ErrorCode.MALFORMED_FRAME, 'a removal that carries a value');
    throw new RangeError('value: must be empty when removing');
  }
}

const C = 'client';
const S = 'server';
const T = (name) => [name, TOKEN];

/** opcode -> {from, fields, check?}. `from`: who sends it. */
const MESSAGES = new Map([
  [Opcode.LOGIN_REQUEST, { from: C, fields: [['username', USERNAME], ['password', PASSWORD], ['client', DEVICE], ['platform', DEVICE]] }],
  [Opcode.LOGIN_SUCCESS, { from: S, fields: [T('token'), ...SESSION_INFO] }],
  [Opcode.LOGIN_FAILURE, { from: S, fields: [['reason', U16], ['retryAfterMs', MILLIS], ['message', MESSAGE]] }],
  [Opcode.HEARTBEAT, { from: C, fields: [T('token')] }],
  [Opcode.HEARTBEAT_ACK, { from: S, fields: [['serverTime', TIME]] }],
  [Opcode.LOGOUT_REQUEST, { from: C, fields: [T('token')] }],
  [Opcode.LOGOUT_SUCCESS, { from: S, fields: [['sessionId', U64]] }],
  [Opcode.DISCONNECT_REQUEST, { from: C, fields: [] }],
  [Opcode.DISCONNECT_ACK, { from: S, fields: [['reason', U16]] }],
  [Opcode.GENERAL_FAILURE, { from: S, fields: [['code', U16], ['message', MESSAGE]] }],
  [Opcode.VERIFY_SESSION, { from: C, fields: [T('token'), ['client', DEVICE], ['platform', DEVICE]] }],
  [Opcode.SESSION_VALID, { from: S, fields: SESSION_INFO }],
  [Opcode.SESSION_INVALID, { from: S, fields: [['reason', U16], ['message', MESSAGE]] }],
  [Opcode.DUPLICATE_SESSION, { from: S, fields: [['sessionId', U64], ['message', MESSAGE]] }],
  [Opcode.REGISTER_REQUEST, { from: C, fields: [['username', ANY_USERNAME], ['password', PASSWORD], ['email', str(0, MAX_EMAIL)]] }],
  [Opcode.REGISTER_SUCCESS, { from: S, fields: [['userId', U64], ['username', str(3, 32)]] }],
  [Opcode.REGISTER_FAILURE, { from: S, fields: [['reason', U16], ['message', MESSAGE]] }],
  [
    Opcode.SESSION_REVOKED,
    {
      from: S,
      fields: [['sessionId', U64], ['reason', U16], ['byClient', DEVICE], ['byPlatform', DEVICE], ['byAddress', ADDRESS], ['at', TIME]],
    },
  ],
  [Opcode.SESSION_EXPIRED, { from: S, fields: [['sessionId', U64], ['reason', U16]] }],
  [Opcode.NEW_LOGIN, { from: S, fields: [['sessionId', U64], ['client', DEVICE], ['platform', DEVICE], ['address', ADDRESS], ['at', TIME]] }],
  [Opcode.SERVER_SHUTDOWN, { from: S, fields: [['reconnectAfterMs', MILLIS], ['message', MESSAGE]] }],
  [Opcode.USER_INFO, { from: S, fields: [['userId', U64], ['appRole', str(0, MAX_ROLE_NAME)], ['profile', list(ATTR, MAX_ATTRS)]] }],
  [Opcode.LIST_SESSIONS, { from: C, fields: [T('token'), ['offset', U32], ['limit', U16]] }],
  [Opcode.SESSION_LIST, { from: S, fields: [['total', U32], ['sessions', list(SESSION_ENTRY, MAX_PAGE)]] }],
  [Opcode.REVOKE_SESSION, { from: C, fields: [T('token'), ['sessionId', U64]] }],
  [Opcode.LOGOUT_ALL, { from: C, fields: [T('token'), ['scope', closed(LogoutScope, 1)]] }],
  [Opcode.CHANGE_PASSWORD, { from: C, fields: [T('token'), ['old', PASSWORD], ['new', PASSWORD]] }],
  [Opcode.DONE, { from: S, fields: [['affected', U32]] }],
  [Opcode.AUDIT_QUERY, { from: C, fields: AUDIT_QUERY }],
  [Opcode.AUDIT_PAGE, { from: S, fields: [['nextCursor', U64], ['entries', list(AUDIT_ENTRY, MAX_PAGE)]] }],
  [Opcode.AUDIT_SEARCH, { from: C, fields: [...AUDIT_QUERY, ['order', closed(AuditOrder, 1, AuditOrder.OLDEST_FIRST)]] }],
  [Opcode.AUDIT_RECORDS, { from: S, fields: [['nextCursor', U64], ['records', list(AUDIT_RECORD, MAX_RECORDS)]] }],
  [Opcode.ATTR_SET, { from: C, fields: [T('token'), ['key', str(1, MAX_ATTR_KEY)], ['value', bytes(MAX_ATTR_VALUE)]] }],
  [Opcode.ATTR_REMOVE, { from: C, fields: [T('token'), ['key', str(1, MAX_ATTR_KEY)]] }],
  [Opcode.ATTR_GET, { from: C, fields: [T('token'), ['key', str(0, MAX_ATTR_KEY)]] }],
  [Opcode.ATTRS, { from: S, fields: [['sessionId', U64], ['attrs', list(ATTR, MAX_ATTRS)]] }],
  [
    Opcode.PROFILE_SET,
    { from: C, fields: [T('token'), ['key', str(1, MAX_ATTR_KEY)], ['remove', BOOL], ['value', bytes(MAX_ATTR_VALUE)]], check: removalCarriesNoValue },
  ],
  [Opcode.PROFILE_GET, { from: C, fields: [T('token'), ['key', str(0, MAX_ATTR_KEY)]] }],
  [Opcode.ADMIN_LIST_SESSIONS, { from: C, fields: [T('token'), ['username', ANY_USERNAME], ['offset', U32], ['limit', U16]] }],
  [Opcode.ADMIN_REVOKE_SESSION, { from: C, fields: [T('token'), ['sessionId', U64]] }],
  [Opcode.ADMIN_LOGOUT_USER, { from: C, fields: [T('token'), ['username', USERNAME]] }],
  [Opcode.ADMIN_SUSPEND_USER, { from: C, fields: [T('token'), ['username', USERNAME]] }],
  [Opcode.ADMIN_UNSUSPEND_USER, { from: C, fields: [T('token'), ['username', USERNAME]] }],
  [Opcode.ADMIN_SET_ROLE, { from: C, fields: [T('token'), ['username', USERNAME], ['role', closed(Role, 1)]] }],
  [Opcode.ADMIN_STATS, { from: C, fields: [T('token')] }],
  [Opcode.STATS, { from: S, fields: [['counters', list(STAT, MAX_PAGE)]] }],
  [Opcode.ADMIN_SET_PASSWORD, { from: C, fields: [T('token'), ['username', USERNAME], ['password', PASSWORD]] }],
  [
    Opcode.ADMIN_SET_ATTR,
    {
      from: C,
      fields: [T('token'), ['sessionId', U64], ['key', str(1, MAX_ATTR_KEY)], ['remove', BOOL], ['value', bytes(MAX_ATTR_VALUE)]],
      check: removalCarriesNoValue,
    },
  ],
  [
    Opcode.ADMIN_SET_PROFILE,
    {
      from: C,
      fields: [T('token'), ['username', USERNAME], ['key', str(1, MAX_ATTR_KEY)], ['remove', BOOL], ['value', bytes(MAX_ATTR_VALUE)]],
      check: removalCarriesNoValue,
    },
  ],
  [Opcode.ADMIN_SET_APP_ROLE, { from: C, fields: [T('token'), ['username', USERNAME], ['role', str(0, MAX_ROLE_NAME)]] }],
  [Opcode.ADMIN_LIST_USERS, { from: C, fields: [T('token'), ['offset', U32], ['limit', U16]] }],
  [Opcode.USER_LIST, { from: S, fields: [['total', U32], ['users', list(USER_ENTRY, MAX_PAGE)]] }],
]);

/**
 * Who sends a message with this opcode: `'client'`, `'server'`, or null for an opcode this
 * client does not know.
 * @param {number} opcode
 * @returns {'client'|'server'|null}
 */
export function senderOf(opcode) {
  return MESSAGES.get(opcode)?.from ?? null;
}

/**
 * The field names of an opcode's message, in wire order (null for an unknown opcode).
 * @param {number} opcode
 * @returns {string[]|null}
 */
export function fieldsOf(opcode) {
  const spec = MESSAGES.get(opcode);
  return spec ? spec.fields.map(([name]) => name) : null;
}

// ---------------------------------------------------------------------------------------
// Frames (protocol.md 2)
// ---------------------------------------------------------------------------------------

/**
 * One frame: the 14-byte header, then the message's payload.
 * @param {{opcode: number, requestId?: number, flags?: number, message?: object,
 *   payload?: Uint8Array}} frame
 * @returns {Uint8Array}
 */
export function encodeFrame({ opcode, requestId = 0, flags = 0, message = {}, payload } = {}) {
  checkUint(opcode, 1, 'opcode');
  checkUint(requestId, 4, 'requestId');
  checkUint(flags, 2, 'flags');
  let body;
  if (payload !== undefined) {
    body = toBytes(payload, 'payload');
  } else {
    const spec = MESSAGES.get(opcode);
    if (!spec) {
      if (message.payload === undefined) throw new TypeError(`opcode ${nameOf(Opcode, opcode)}: unknown, give its payload`);
      body = toBytes(message.payload, 'payload');
    } else {
      spec.check?.(message, false);
      const w = new Writer();
      encodeFields(w, message, spec.fields, nameOf(Opcode, opcode));
      body = w.bytes();
    }
  }
  const out = new Uint8Array(HEADER_LENGTH + body.length);
  const v = new DataView(out.buffer);
  v.setUint16(0, MAGIC);
  v.setUint8(2, VERSION);
  v.setUint8(3, opcode);
  v.setUint16(4, flags);
  v.setUint32(6, requestId);
  v.setUint32(10, body.length);
  out.set(body, HEADER_LENGTH);
  return out;
}

/**
 * The header checks of protocol.md 2, in order, on the bytes at hand: null when more bytes
 * are needed for the header, else the header. Throws a DecodeError that breaks framing.
 */
function readHeader(b, maxFrame) {
  // 1. magic, as soon as two bytes show it; 2. version, as soon as the third does.
  if (b.length >= 2 && (b[0] << 8 | b[1]) !== MAGIC) {
    throw new DecodeError(ErrorCode.BAD_MAGIC, 'not a sessiond frame', { breaksFraming: true });
  }
  if (b.length >= 3 && b[2] !== VERSION) {
    throw new DecodeError(ErrorCode.UNSUPPORTED_VERSION, `version ${b[2]}`, { breaksFraming: true });
  }
  if (b.length < HEADER_LENGTH) return null;
  const v = new DataView(b.buffer, b.byteOffset, HEADER_LENGTH);
  const h = { opcode: v.getUint8(3), flags: v.getUint16(4), requestId: v.getUint32(6), length: v.getUint32(10) };
  // 3. "A frame whose 14 + length exceeds the maximum frame size MUST be rejected", before
  // any of its payload is read.
  const size = HEADER_LENGTH + h.length;
  if (size > maxFrame) {
    throw new DecodeError(ErrorCode.FRAME_TOO_LARGE, `${size} bytes, at most ${maxFrame}`, {
      requestId: h.requestId,
      opcode: h.opcode,
      breaksFraming: true,
    });
  }
  h.size = size;
  return h;
}

function decodeBody(b, h) {
  const payload = b.subarray(HEADER_LENGTH, h.size);
  const base = { opcode: h.opcode, requestId: h.requestId, flags: h.flags, size: h.size };
  const spec = MESSAGES.get(h.opcode);
  if (!spec) return { ...base, message: { payload: payload.slice() }, known: false };
  try {
    const r = new Reader(payload);
    const message = decodeFields(r, spec.fields);
    r.finish();
    spec.check?.(message, true);
    return { ...base, message, known: true };
  } catch (e) {
    if (e instanceof DecodeError) {
      e.requestId = h.requestId;
      e.opcode = h.opcode;
      e.size = h.size;
    }
    throw e;
  }
}

/**
 * The first frame of `bytes`: `{opcode, requestId, flags, message, size, known}`. Throws
 * DecodeError (with `incomplete` true when `bytes` ends before the frame does).
 * @param {Uint8Array|ArrayBuffer} data
 * @param {{maxFrame?: number}} [options]
 */
export function decodeFrame(data, { maxFrame = MAX_FRAME } = {}) {
  const b = toBytes(data);
  const h = readHeader(b, maxFrame);
  if (!h || b.length < h.size) {
    const need = h ? h.size : HEADER_LENGTH;
    throw new DecodeError(ErrorCode.MALFORMED_FRAME, `truncated frame: ${b.length} of ${need} bytes`, {
      requestId: h?.requestId ?? 0,
      opcode: h?.opcode ?? 0,
      incomplete: true,
    });
  }
  return decodeBody(b, h);
}

/**
 * Frames from a byte stream: `push(bytes)` what arrives, then `pull()` until it returns
 * null (a frame is returned only whole).
 */
export class FrameReader {
  #buf = new Uint8Array(0);
  #start = 0;
  #end = 0;
  #maxFrame;
  #broken = null;

  /** @param {{maxFrame?: number}} [options] */
  constructor({ maxFrame = MAX_FRAME } = {}) {
    this.#maxFrame = maxFrame;
  }

  /** Appends bytes. */
  push(data) {
    const b = toBytes(data);
    if (this.#end + b.length > this.#buf.length) {
      const live = this.#end - this.#start;
      const size = Math.max(live + b.length, this.#buf.length * 2, 1024);
      const next = new Uint8Array(size);
      next.set(this.#buf.subarray(this.#start, this.#end));
      this.#buf = next;
      this.#start = 0;
      this.#end = live;
    }
    this.#buf.set(b, this.#end);
    this.#end += b.length;
  }

  /**
   * The next whole frame, or null when there is none yet. Throws DecodeError: one with
   * `breaksFraming` false has skipped its frame (call again); one with `breaksFraming` true
   * leaves the stream unreadable (every later call throws it again).
   */
  pull() {
    if (this.#broken) throw this.#broken;
    const b = this.#buf.subarray(this.#start, this.#end);
    let h;
    try {
      h = readHeader(b, this.#maxFrame);
    } catch (e) {
      this.#broken = e;
      throw e;
    }
    if (!h || b.length < h.size) return null;
    this.#start += h.size;
    if (this.#start === this.#end) this.#start = this.#end = 0;
    return decodeBody(b, h);
  }

  /** Bytes held that are not a whole frame yet. */
  get buffered() {
    return this.#end - this.#start;
  }
}

/** A token as 64 hex digits. */
export function tokenToHex(token) {
  const b = toBytes(token, 'token');
  if (b.length !== TOKEN_LENGTH) throw new RangeError(`a token is ${TOKEN_LENGTH} bytes, not ${b.length}`);
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

/** A token from 64 hex digits. */
export function tokenFromHex(text) {
  const t = String(text).trim();
  if (!/^[0-9a-fA-F]{64}$/.test(t)) throw new RangeError('a token is 64 hex digits');
  const out = new Uint8Array(TOKEN_LENGTH);
  for (let i = 0; i < TOKEN_LENGTH; i++) out[i] = parseInt(t.slice(2 * i, 2 * i + 2), 16);
  return out;
}

// ---------------------------------------------------------------------------------------
// The client
// ---------------------------------------------------------------------------------------

/** A storage in memory, for when there is no localStorage (Node) or none is given. */
export class MemoryStorage {
  #map = new Map();
  getItem(k) {
    return this.#map.has(k) ? this.#map.get(k) : null;
  }
  setItem(k, v) {
    this.#map.set(k, String(v));
  }
  removeItem(k) {
    this.#map.delete(k);
  }
}

function defaultPlatform() {
  const nav = globalThis.navigator;
  const p = nav?.userAgentData?.platform || nav?.platform;
  if (p) return String(p);
  const proc = globalThis.process;
  if (proc?.platform) return `${proc.platform} node ${proc.versions?.node ?? ''}`.trim();
  return '';
}

/** `s` cut to at most `max` bytes of UTF-8, on a character boundary. */
function clip(s, max) {
  let out = '';
  let n = 0;
  for (const ch of String(s)) {
    const len = utf8Encoder.encode(ch).length;
    if (n + len > max) break;
    out += ch;
    n += len;
  }
  return out;
}

function makeEvent(type, detail) {
  if (typeof CustomEvent === 'function') return new CustomEvent(type, { detail });
  const e = new Event(type);
  Object.defineProperty(e, 'detail', { value: detail });
  return e;
}

function sameBytes(a, b) {
  if (!a || !b || a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i] ^ b[i];
  return d === 0;
}

/** The session info of a LOGIN_SUCCESS or SESSION_VALID message, without its token. */
function sessionInfo(m) {
  const out = {};
  for (const [name] of SESSION_INFO) out[name] = m[name];
  return out;
}

function describeFrame(frame) {
  const m = frame.message;
  const name = nameOf(Opcode, frame.opcode);
  switch (frame.opcode) {
    case Opcode.GENERAL_FAILURE:
      return `${nameOf(ErrorCode, m.code)}: ${m.message}`;
    case Opcode.DISCONNECT_ACK:
      return `${name} ${nameOf(DisconnectReason, m.reason)}`;
    case Opcode.SESSION_REVOKED:
      return `${name} ${nameOf(RevokeReason, m.reason)}`;
    case Opcode.SESSION_EXPIRED:
      return `${name} ${nameOf(ExpiredReason, m.reason)}`;
    default:
      return name;
  }
}

const AUTH_OPCODES = new Set([Opcode.LOGIN_REQUEST, Opcode.REGISTER_REQUEST, Opcode.VERIFY_SESSION]);

/**
 * A sessiond client over WebSocket. See the top of this file for its options, methods,
 * properties and events.
 */
export class SessiondClient extends EventTarget {
  #url;
  #WebSocket;
  #storage;
  #storageKey;
  #client;
  #platform;
  #requestTimeoutMs;
  #backoff;
  #autoReconnect;

  #state = 'idle';
  #conn = null; // the current connection: {ws, reader, pending, opened, fatal, ...}
  #nextId = 1;
  #token = null; // the session's token (Uint8Array), while there is a session to keep
  #session = null;
  #user = null;
  #keep = false; // a session is active or being resumed: reconnect when the socket drops
  #closing = false; // close() was called
  #noReconnect = false; // this connection ended in a way that must not be retried
  #loggingOut = false;
  #hbTimer = null;
  #reconnectTimer = null;
  #attempt = 0;
  #shutdownHintMs = 0;
  #connecting = null;

  /**
   * @param {{url: string, WebSocket?: any, storage?: {getItem(k: string): string|null,
   *   setItem(k: string, v: string): void, removeItem(k: string): void}, storageKey?: string,
   *   client?: string, platform?: string, requestTimeoutMs?: number,
   *   reconnect?: {initialMs?: number, maxMs?: number}, autoReconnect?: boolean}} options
   */
  constructor({
    url,
    WebSocket = globalThis.WebSocket,
    storage,
    storageKey = 'sessiond.token',
    client = 'sessiond-web',
    platform,
    requestTimeoutMs = 10000,
    reconnect = {},
    autoReconnect = true,
  } = {}) {
    super();
    if (!url) throw new TypeError('url is needed');
    if (typeof WebSocket !== 'function') {
      throw new TypeError('no WebSocket: pass one (in Node 20: the ws package\'s) as the WebSocket option');
    }
    this.#url = url;
    this.#WebSocket = WebSocket;
    this.#storage = storage ?? globalThis.localStorage ?? new MemoryStorage();
    this.#storageKey = storageKey;
    this.#client = clip(client, MAX_DEVICE);
    this.#platform = clip(platform ?? defaultPlatform(), MAX_DEVICE);
    this.#requestTimeoutMs = requestTimeoutMs;
    this.#backoff = { initialMs: reconnect.initialMs ?? 250, maxMs: reconnect.maxMs ?? 10000 };
    this.#autoReconnect = autoReconnect;
  }

  /** `'idle' | 'connecting' | 'open' | 'active' | 'reconnecting' | 'closed'`. */
  get state() {
    return this.#state;
  }

  /** The session info (LOGIN_SUCCESS or SESSION_VALID, without the token), or null. */
  get session() {
    return this.#session;
  }

  /** The account's last USER_INFO (application role and profile), or null. */
  get user() {
    return this.#user;
  }

  /** The session's username, or null. */
  get username() {
    return this.#session?.username ?? null;
  }

  // ---- public API ----

  /**
   * Opens the socket and, with a stored token, resumes its session (VERIFY_SESSION).
   * @returns {Promise<{resumed: boolean, session?: object, reason?: string, duplicate?: boolean}>}
   */
  connect() {
    if (this.#connecting) return this.#connecting;
    if (this.#state === 'active') return Promise.resolve({ resumed: true, session: this.#session });
    if (this.#state === 'open') return Promise.resolve({ resumed: false });
    this.#closing = false;
    clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = null;
    this.#connecting = (async () => {
      this.#setState('connecting');
      try {
        await this.#dial();
      } catch (e) {
        this.#setState('closed');
        throw e;
      }
      const token = this.#token ?? this.#loadToken();
      if (!token) {
        this.#setState('open');
        return { resumed: false };
      }
      try {
        return await this.#resume(token);
      } finally {
        if (this.#state === 'connecting') this.#setState(this.#conn && !this.#conn.fatal ? 'open' : 'closed');
      }
    })().finally(() => {
      this.#connecting = null;
    });
    return this.#connecting;
  }

  /**
   * LOGIN_REQUEST: resolves LOGIN_SUCCESS's fields (its `token` not enumerable), rejects
   * `LoginFailed`. Stores the token.
   */
  async login(username, password) {
    await this.#ensureLoggedOut();
    const frame = await this.#request(Opcode.LOGIN_REQUEST, {
      username,
      password,
      client: this.#client,
      platform: this.#platform,
    });
    const m = this.#expect(frame, Opcode.LOGIN_SUCCESS);
    const out = sessionInfo(m);
    Object.defineProperty(out, 'token', { value: m.token, enumerable: false });
    return out;
  }

  /** REGISTER_REQUEST: resolves REGISTER_SUCCESS's fields, rejects `RegisterFailed`. */
  async register(username, password, email = '') {
    await this.#ensureLoggedOut();
    const frame = await this.#request(Opcode.REGISTER_REQUEST, { username, password, email });
    return this.#expect(frame, Opcode.REGISTER_SUCCESS);
  }

  /** LOGOUT_REQUEST: ends the session for good; resolves LOGOUT_SUCCESS's fields. */
  async logout() {
    this.#requireSession();
    const frame = await this.#request(Opcode.LOGOUT_REQUEST, { token: this.#token });
    return this.#expect(frame, Opcode.LOGOUT_SUCCESS);
  }

  /** LIST_SESSIONS: the caller's live sessions, oldest first (an array with `total`). */
  async listSessions({ offset = 0, limit = 0 } = {}) {
    this.#requireSession();
    const frame = await this.#request(Opcode.LIST_SESSIONS, { token: this.#token, offset, limit });
    return sessionEntries(this.#expect(frame, Opcode.SESSION_LIST));
  }

  /** REVOKE_SESSION: ends one of the caller's sessions; DONE's `affected`. */
  async revokeSession(sessionId) {
    return this.#done(Opcode.REVOKE_SESSION, { sessionId });
  }

  /** LOGOUT_ALL, scope `'ALL'` (this session too) or `'OTHERS'`; DONE's `affected`. */
  async logoutAll(scope = 'ALL') {
    const s = typeof scope === 'string' ? LogoutScope[scope.toUpperCase()] : scope;
    if (s === undefined) throw new RangeError(`scope: ${scope} is not OTHERS or ALL`);
    return this.#done(Opcode.LOGOUT_ALL, { scope: s });
  }

  /** CHANGE_PASSWORD; DONE's `affected` (the other sessions it ended). */
  async changePassword(oldPassword, newPassword) {
    return this.#done(Opcode.CHANGE_PASSWORD, { old: oldPassword, new: newPassword });
  }

  /** ATTR_GET: the session's attributes (all, or the one named), as ATTRS's `attrs`. */
  async getAttrs(key = '') {
    this.#requireSession();
    const frame = await this.#request(Opcode.ATTR_GET, { token: this.#token, key });
    return this.#expect(frame, Opcode.ATTRS).attrs;
  }

  /** ATTR_SET (`value`: bytes, or a string stored as UTF-8). */
  async setAttr(key, value) {
    return this.#done(Opcode.ATTR_SET, { key, value });
  }

  /** ATTR_REMOVE; `affected` 1 if the key was set. */
  async removeAttr(key) {
    return this.#done(Opcode.ATTR_REMOVE, { key });
  }

  /** PROFILE_GET: the account's USER_INFO. */
  async getProfile(key = '') {
    this.#requireSession();
    const frame = await this.#request(Opcode.PROFILE_GET, { token: this.#token, key });
    return this.#expect(frame, Opcode.USER_INFO);
  }

  /** PROFILE_SET (`value` null removes the key). */
  async setProfile(key, value) {
    const remove = value === null || value === undefined;
    return this.#done(Opcode.PROFILE_SET, { key, remove, value: remove ? new Uint8Array(0) : value });
  }

  /** ADMIN_LIST_SESSIONS: every session, or one user's (an array with `total`). */
  async adminListSessions(username = '', { offset = 0, limit = 0 } = {}) {
    this.#requireSession();
    const frame = await this.#request(Opcode.ADMIN_LIST_SESSIONS, { token: this.#token, username, offset, limit });
    return sessionEntries(this.#expect(frame, Opcode.SESSION_LIST));
  }

  /** ADMIN_REVOKE_SESSION; DONE's `affected`. */
  async adminRevokeSession(sessionId) {
    return this.#done(Opcode.ADMIN_REVOKE_SESSION, { sessionId });
  }

  /** ADMIN_LOGOUT_USER; DONE's `affected`. */
  async adminLogoutUser(username) {
    return this.#done(Opcode.ADMIN_LOGOUT_USER, { username });
  }

  /** ADMIN_SUSPEND_USER; DONE's `affected` (the sessions it ended). */
  async adminSuspendUser(username) {
    return this.#done(Opcode.ADMIN_SUSPEND_USER, { username });
  }

  /** ADMIN_UNSUSPEND_USER; DONE's `affected` (0). */
  async adminUnsuspendUser(username) {
    return this.#done(Opcode.ADMIN_UNSUSPEND_USER, { username });
  }

  /** ADMIN_LIST_USERS: the accounts by id (an array with `total`). */
  async adminListUsers({ offset = 0, limit = 0 } = {}) {
    this.#requireSession();
    const frame = await this.#request(Opcode.ADMIN_LIST_USERS, { token: this.#token, offset, limit });
    const m = this.#expect(frame, Opcode.USER_LIST);
    return Object.assign(m.users, { total: m.total });
  }

  /** ADMIN_STATS: the server's counters, name -> value. */
  async adminStats() {
    this.#requireSession();
    const frame = await this.#request(Opcode.ADMIN_STATS, { token: this.#token });
    return Object.fromEntries(this.#expect(frame, Opcode.STATS).counters.map((c) => [c.name, c.value]));
  }

  /**
   * Any request: resolves the reply frame, rejects a GENERAL_FAILURE (SessiondError), a
   * reply with an opcode this client does not know, a closed connection or a timeout. The
   * token is filled in when the message has a `token` field and none is given.
   * @param {number} opcode
   * @param {object} [message]
   */
  async request(opcode, message = {}) {
    if (senderOf(opcode) !== C) throw new TypeError(`${nameOf(Opcode, opcode)} is not a client request`);
    let msg = message;
    if (fieldsOf(opcode).includes('token') && msg.token === undefined) {
      this.#requireSession();
      msg = { ...msg, token: this.#token };
    }
    if (AUTH_OPCODES.has(opcode)) await this.#ensureLoggedOut();
    const frame = await this.#request(opcode, msg);
    this.#expect(frame, null);
    return frame;
  }

  /**
   * DISCONNECT_REQUEST, then closes the socket; no reconnect. The session survives on the
   * server, detached, and its token stays stored.
   */
  async close() {
    this.#closing = true;
    clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = null;
    this.#stopHeartbeats();
    const conn = this.#conn;
    if (conn && conn.opened && !conn.fatal && !conn.ended) {
      try {
        const timeoutMs = Math.min(this.#requestTimeoutMs, 2000);
        const frame = await this.#request(Opcode.DISCONNECT_REQUEST, {}, { timeoutMs });
        this.#expect(frame, Opcode.DISCONNECT_ACK);
      } catch {
        // closing anyway
      }
    }
    if (this.#conn) {
      const c = this.#conn;
      try {
        c.ws.close(1000);
      } catch {
        // already closing
      }
      // The server answers the close at once; a dead one is given up after a second.
      await Promise.race([c.closed, new Promise((r) => setTimeout(r, 1000))]);
      if (this.#conn === c) this.#lost(c, 1006, 'closed by the client');
    }
    this.#keep = false;
    this.#session = null;
    this.#token = null;
    this.#setState('closed');
  }

  // ---- state ----

  #setState(state) {
    if (state === this.#state) return;
    const previous = this.#state;
    this.#state = state;
    this.#emit('state', { state, previous });
  }

  #emit(type, detail) {
    this.dispatchEvent(makeEvent(type, detail));
  }

  #loadToken() {
    let hex = null;
    try {
      hex = this.#storage.getItem(this.#storageKey);
    } catch {
      return null;
    }
    if (!hex) return null;
    try {
      return tokenFromHex(hex);
    } catch {
      return null; // not a token: ignored
    }
  }

  #storeToken(token) {
    try {
      this.#storage.setItem(this.#storageKey, tokenToHex(token));
    } catch {
      // a full or refused storage: the session still works, it just cannot be resumed
    }
  }

  /** Removes the stored token if it is `token` (another client's is left alone). */
  #forgetToken(token) {
    if (!token) return;
    const stored = this.#loadToken();
    if (stored && sameBytes(stored, token)) {
      try {
        this.#storage.removeItem(this.#storageKey);
      } catch {
        // nothing to do
      }
    }
  }

  #requireSession() {
    if (!this.#session || !this.#token || this.#state !== 'active') {
      throw new SessiondError('not logged in', { codeName: 'NOT_LOGGED_IN' });
    }
  }

  async #ensureLoggedOut() {
    if (this.#connecting) {
      try {
        await this.#connecting;
      } catch {
        // dialled again below
      }
    }
    if (this.#state === 'active' || this.#state === 'reconnecting' || this.#keep) {
      throw new SessiondError('already logged in: log out first', { codeName: 'LOGGED_IN' });
    }
    if (!this.#conn || !this.#conn.opened || this.#conn.fatal || this.#conn.ended) {
      this.#closing = false;
      this.#setState('connecting');
      try {
        await this.#dial();
      } catch (e) {
        this.#setState('closed');
        throw e;
      }
      this.#setState('open');
    }
  }

  // ---- the socket ----

  /** Opens a new socket; resolves once it is open. */
  #dial() {
    return new Promise((resolve, reject) => {
      let ws;
      try {
        ws = new this.#WebSocket(this.#url, ['sessiond']);
      } catch (e) {
        reject(new ConnectionClosed(`cannot open ${this.#url}: ${e.message}`));
        return;
      }
      try {
        ws.binaryType = 'arraybuffer';
      } catch {
        // not settable: Blobs are refused below
      }
      let markClosed;
      const conn = {
        ws,
        reader: new FrameReader(),
        pending: new Map(),
        opened: false,
        fatal: null, // the FATAL frame, once one came
        ended: false, // the session ended on this connection
        closed: new Promise((r) => {
          markClosed = r;
        }),
      };
      const on = (type, fn) => {
        if (typeof ws.addEventListener === 'function') ws.addEventListener(type, fn);
        else ws[`on${type}`] = fn;
      };
      on('open', () => {
        if (this.#closing && this.#conn !== conn) {
          ws.close();
          return;
        }
        conn.opened = true;
        this.#conn = conn;
        resolve(conn);
      });
      on('message', (ev) => {
        if (this.#conn === conn) this.#onMessage(conn, ev.data);
      });
      on('close', (ev) => {
        markClosed();
        if (!conn.opened) {
          reject(new ConnectionClosed(`cannot connect to ${this.#url} (WebSocket close ${ev.code})`, { wsCode: ev.code }));
          return;
        }
        if (this.#conn === conn) this.#lost(conn, ev.code, ev.reason || '');
      });
      on('error', () => {
        // a close event follows
      });
    });
  }

  #onMessage(conn, data) {
    if (typeof data === 'string' || !(data instanceof ArrayBuffer || ArrayBuffer.isView(data))) {
      // protocol.md: binary messages only.
      this.#abandon(conn, 'the server sent a message that is not binary');
      return;
    }
    conn.reader.push(data);
    for (;;) {
      if (this.#conn !== conn) return;
      let frame;
      try {
        frame = conn.reader.pull();
      } catch (e) {
        if (!(e instanceof DecodeError) || e.breaksFraming) {
          this.#abandon(conn, `unreadable data from the server: ${e.message}`);
          return;
        }
        // The frame was skipped: it fails its request, if it answers one.
        const entry = conn.pending.get(e.requestId);
        if (entry && e.requestId !== 0) {
          conn.pending.delete(e.requestId);
          entry.fail(e);
        }
        continue;
      }
      if (!frame) return;
      this.#onFrame(conn, frame);
    }
  }

  /** Gives a connection up at once (dead or misbehaving server) as if it had dropped. */
  #abandon(conn, reason) {
    try {
      if (typeof conn.ws.terminate === 'function') conn.ws.terminate();
      else conn.ws.close(4000, 'client gave up');
    } catch {
      // nothing more to do
    }
    if (this.#conn === conn) this.#lost(conn, 1006, reason);
  }

  /** The current connection is over: decide between reconnecting and closing. */
  #lost(conn, code, reason) {
    this.#conn = null;
    this.#stopHeartbeats();
    const why = conn.fatal ? describeFrame(conn.fatal) : reason || `WebSocket closed (${code})`;
    const err = new ConnectionClosed(`connection closed: ${why}`, { frame: conn.fatal, wsCode: code });
    for (const entry of conn.pending.values()) entry.fail(err);
    conn.pending.clear();
    this.#loggingOut = false;
    const willReconnect = this.#keep && this.#autoReconnect && !this.#closing && !this.#noReconnect && !conn.ended;
    if (!willReconnect) {
      this.#keep = false;
      this.#session = null;
    }
    this.#noReconnect = false;
    this.#emit('disconnected', { code, reason: why, willReconnect });
    if (willReconnect) {
      this.#setState('reconnecting');
      this.#scheduleReconnect();
    } else {
      this.#setState('closed');
    }
  }

  #scheduleReconnect() {
    clearTimeout(this.#reconnectTimer);
    let delay;
    if (this.#shutdownHintMs > 0) {
      // protocol.md 5.35: wait reconnect_after_ms, plus a random part of up to as much again.
      delay = this.#shutdownHintMs * (1 + Math.random());
      this.#shutdownHintMs = 0;
    } else {
      const { initialMs, maxMs } = this.#backoff;
      const base = Math.min(maxMs, initialMs * 2 ** Math.min(this.#attempt, 30));
      delay = base / 2 + (Math.random() * base) / 2; // jitter: half to all of it
    }
    this.#attempt += 1;
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = null;
      this.#reconnect();
    }, delay);
  }

  async #reconnect() {
    if (this.#closing || !this.#keep || !this.#token) return;
    try {
      await this.#dial();
    } catch {
      if (!this.#closing && this.#keep) this.#scheduleReconnect();
      return;
    }
    if (this.#closing) return;
    let outcome;
    try {
      outcome = await this.#resume(this.#token);
    } catch {
      // a refusal (STORAGE_UNAVAILABLE), a timeout or a drop: try again later
      const conn = this.#conn;
      if (conn && this.#keep && !this.#closing) {
        this.#abandon(conn, 'resume failed');
      } else if (!this.#conn && this.#keep && !this.#closing && this.#state === 'reconnecting' && !this.#reconnectTimer) {
        this.#scheduleReconnect();
      }
      return;
    }
    if (!outcome.resumed && !outcome.duplicate) this.#setState('open');
  }

  // ---- requests ----

  /**
   * Sends a request; resolves its reply frame (whatever it is), rejects a closed
   * connection or a timeout.
   */
  #request(opcode, message, { timeoutMs = this.#requestTimeoutMs, internal = false } = {}) {
    const conn = this.#conn;
    if (!conn || !conn.opened || conn.fatal) {
      return Promise.reject(new ConnectionClosed('not connected'));
    }
    // encodeFrame checks the message before anything changes (it throws on bad fields).
    const requestId = this.#nextId;
    const bytes = encodeFrame({ opcode, requestId, message });
    // Non-zero ids, a counter (protocol.md 2, "Request ids").
    this.#nextId = (this.#nextId % 0xffffffff) + 1;
    return new Promise((resolve, reject) => {
      const entry = {
        opcode,
        message,
        internal,
        sentAt: Date.now(),
        done: false,
        timer: null,
        reply: (frame) => {
          clearTimeout(entry.timer);
          entry.done = true;
          resolve(frame);
        },
        fail: (err) => {
          clearTimeout(entry.timer);
          entry.done = true;
          reject(err);
        },
      };
      entry.timer = setTimeout(() => {
        // The entry stays: a late reply still takes effect, only the promise gives up.
        if (!entry.done) reject(new RequestTimeout(`${nameOf(Opcode, opcode)}: no reply within ${timeoutMs} ms`));
        entry.done = true;
        if (internal) this.#abandon(conn, `no HEARTBEAT_ACK within ${timeoutMs} ms: the server is not answering`);
      }, timeoutMs);
      conn.pending.set(requestId, entry);
      if (opcode === Opcode.LOGOUT_REQUEST || (opcode === Opcode.LOGOUT_ALL && message.scope === LogoutScope.ALL)) {
        // protocol.md 4: stop the heartbeats as soon as LOGOUT_REQUEST is sent.
        this.#loggingOut = true;
        this.#stopHeartbeats();
      }
      try {
        conn.ws.send(bytes);
      } catch (e) {
        conn.pending.delete(requestId);
        entry.fail(new ConnectionClosed(`cannot send: ${e.message}`));
      }
    });
  }

  /** The reply's message if it is `want` (any success when null); else throws. */
  #expect(frame, want) {
    const m = frame.message;
    if (!frame.known) {
      // protocol.md 8: "treat a reply with an unknown opcode as a failed request".
      throw new SessiondError(`a reply with an unknown opcode ${nameOf(Opcode, frame.opcode)}`, {
        codeName: 'UNEXPECTED_REPLY',
        frame,
      });
    }
    switch (frame.opcode) {
      case Opcode.GENERAL_FAILURE:
        throw SessiondError.fromFailure(frame);
      case Opcode.LOGIN_FAILURE:
        throw new LoginFailed(m, frame);
      case Opcode.REGISTER_FAILURE:
        throw new RegisterFailed(m, frame);
      case Opcode.SESSION_INVALID:
        throw new SessionInvalid(m, frame);
      case Opcode.SESSION_EXPIRED:
        throw new ConnectionClosed(`session expired: ${nameOf(ExpiredReason, m.reason)}`, { frame });
      case Opcode.DUPLICATE_SESSION:
        throw new ConnectionClosed(`session in use on another connection: ${m.message}`, { frame });
      default:
        break;
    }
    if (want !== null && frame.opcode !== want) {
      throw new SessiondError(`expected ${nameOf(Opcode, want)}, got ${nameOf(Opcode, frame.opcode)}`, {
        codeName: 'UNEXPECTED_REPLY',
        frame,
      });
    }
    return m;
  }

  async #done(opcode, fields) {
    this.#requireSession();
    const frame = await this.#request(opcode, { token: this.#token, ...fields });
    return this.#expect(frame, Opcode.DONE).affected;
  }

  /** VERIFY_SESSION on the open connection: the outcome `connect()` resolves. */
  async #resume(token) {
    const frame = await this.#request(Opcode.VERIFY_SESSION, { token, client: this.#client, platform: this.#platform });
    switch (frame.opcode) {
      case Opcode.SESSION_VALID:
        return { resumed: true, session: this.#session };
      case Opcode.SESSION_INVALID:
        return { resumed: false, reason: nameOf(InvalidReason, frame.message.reason) };
      case Opcode.DUPLICATE_SESSION:
        return { resumed: false, duplicate: true };
      default:
        this.#expect(frame, Opcode.SESSION_VALID);
        throw new SessiondError('unexpected reply', { codeName: 'UNEXPECTED_REPLY', frame });
    }
  }

  // ---- frames from the server ----

  #onFrame(conn, frame) {
    const push = (frame.flags & Flag.PUSH) !== 0;
    if (frame.flags & Flag.FATAL) {
      conn.fatal = frame; // "the last frame the server sends on this connection"
      this.#stopHeartbeats();
    }
    if (push) {
      this.#onPush(conn, frame);
    } else {
      const entry = conn.pending.get(frame.requestId);
      if (entry) {
        conn.pending.delete(frame.requestId);
        this.#onReply(conn, entry, frame);
      } else {
        // a reply to no request we know of: shown as a push
        this.#emitPush(frame);
        if (frame.known) this.#onNotice(conn, frame);
      }
    }
  }

  #emitPush(frame) {
    this.#emit('push', {
      opcode: frame.opcode,
      name: nameOf(Opcode, frame.opcode),
      requestId: frame.requestId,
      flags: frame.flags,
      message: frame.message,
    });
  }

  #onPush(conn, frame) {
    this.#emitPush(frame);
    // protocol.md 8: "Clients MUST ignore pushes with opcodes they do not know".
    if (frame.known) this.#onNotice(conn, frame);
  }

  /** What the server says on its own, or in a reply that also speaks of the session. */
  #onNotice(conn, frame) {
    const m = frame.message;
    switch (frame.opcode) {
      case Opcode.SESSION_REVOKED: {
        const takenOver = m.reason === RevokeReason.TAKEN_OVER;
        // For every reason but TAKEN_OVER the session is over: delete the token (5.18).
        this.#endSession(conn, !takenOver);
        this.#emit('revoked', {
          ...m,
          reasonName: nameOf(RevokeReason, m.reason),
          client: m.byClient,
          platform: m.byPlatform,
          address: m.byAddress,
          atMs: m.at,
        });
        break;
      }
      case Opcode.SESSION_EXPIRED:
        this.#endSession(conn, true);
        this.#emit('expired', { ...m, reasonName: nameOf(ExpiredReason, m.reason) });
        break;
      case Opcode.NEW_LOGIN:
        this.#emit('newLogin', { ...m, atMs: m.at });
        break;
      case Opcode.SERVER_SHUTDOWN:
        this.#shutdownHintMs = m.reconnectAfterMs;
        this.#emit('shutdown', { ...m });
        break;
      case Opcode.USER_INFO:
        if (!this.#session || this.#session.userId === m.userId) this.#user = m;
        this.#emit('userInfo', m);
        break;
      case Opcode.ATTRS:
        this.#emit('attrs', m);
        break;
      case Opcode.DISCONNECT_ACK:
        if (m.reason === DisconnectReason.LOGIN_TIMEOUT) this.#noReconnect = true;
        break;
      default:
        break;
    }
  }

  /** The session is over on this connection (revoked, expired): no reconnect. */
  #endSession(conn, forget) {
    conn.ended = true;
    if (forget) this.#forgetToken(this.#token);
    this.#stopHeartbeats();
    this.#keep = false;
    this.#token = null;
    this.#session = null;
    this.#user = null;
  }

  #onReply(conn, entry, frame) {
    const req = entry.message;
    const m = frame.message;
    const op = frame.opcode;
    if (frame.known) {
      if (entry.opcode === Opcode.LOGIN_REQUEST && op === Opcode.LOGIN_SUCCESS) {
        this.#activate(m.token, m);
        this.#storeToken(m.token);
        this.#emit('loggedIn', sessionInfo(m));
      } else if (entry.opcode === Opcode.VERIFY_SESSION && op === Opcode.SESSION_VALID) {
        this.#activate(req.token, m);
        this.#attempt = 0;
        this.#emit('resumed', sessionInfo(m));
      } else if (entry.opcode === Opcode.VERIFY_SESSION && op === Opcode.SESSION_INVALID) {
        // protocol.md 5.13: "The token will never work again: delete it."
        this.#forgetToken(req.token);
        const had = this.#keep;
        const sessionId = this.#session?.sessionId ?? null;
        this.#keep = false;
        this.#token = null;
        this.#session = null;
        this.#user = null;
        if (had) this.#emit('loggedOut', { sessionId, reason: nameOf(InvalidReason, m.reason) });
      } else if (op === Opcode.DUPLICATE_SESSION) {
        // The token is still valid: keep it; the server closes this connection.
        this.#noReconnect = true;
        this.#keep = false;
        this.#session = null;
        this.#emit('duplicate', { ...m });
      } else if (
        (entry.opcode === Opcode.LOGOUT_REQUEST && op === Opcode.LOGOUT_SUCCESS) ||
        (entry.opcode === Opcode.LOGOUT_ALL && req.scope === LogoutScope.ALL && op === Opcode.DONE)
      ) {
        const sessionId = this.#session?.sessionId ?? null;
        this.#forgetToken(this.#token);
        this.#keep = false;
        this.#token = null;
        this.#session = null;
        this.#user = null;
        this.#loggingOut = false;
        this.#setState('open');
        this.#emit('loggedOut', { sessionId, reason: entry.opcode === Opcode.LOGOUT_ALL ? 'LOGOUT_ALL' : 'LOGOUT' });
      } else if (
        this.#loggingOut &&
        op === Opcode.GENERAL_FAILURE &&
        !(frame.flags & Flag.FATAL) &&
        (entry.opcode === Opcode.LOGOUT_REQUEST || (entry.opcode === Opcode.LOGOUT_ALL && req.scope === LogoutScope.ALL))
      ) {
        // refused (e.g. STORAGE_UNAVAILABLE): still in the session
        this.#loggingOut = false;
        this.#startHeartbeats();
      } else if (entry.opcode === Opcode.HEARTBEAT && op === Opcode.HEARTBEAT_ACK) {
        this.#emit('heartbeat', { rttMs: Date.now() - entry.sentAt, at: m.serverTime });
      } else if (entry.opcode === Opcode.PROFILE_GET && op === Opcode.USER_INFO && req.key === '') {
        this.#user = m;
      } else if (op === Opcode.SESSION_REVOKED || op === Opcode.SESSION_EXPIRED) {
        this.#onNotice(conn, frame);
      }
    }
    if (entry.internal && !(frame.known && op === Opcode.HEARTBEAT_ACK)) {
      // an answer to a heartbeat that is not an ACK (SESSION_EXPIRED, an error): shown
      this.#emitPush(frame);
    }
    entry.reply(frame);
  }

  #activate(token, m) {
    this.#token = token;
    this.#session = sessionInfo(m);
    this.#user = null; // a USER_INFO push follows when the account has a role or profile
    this.#keep = true;
    this.#loggingOut = false;
    this.#setState('active');
    this.#startHeartbeats();
  }

  // ---- heartbeats (protocol.md 5.4, 7) ----

  #startHeartbeats() {
    this.#stopHeartbeats();
    if (!this.#session) return;
    const interval = Math.max(this.#session.heartbeatIntervalMs, 50);
    const timeout = Math.max(this.#session.heartbeatTimeoutMs, interval);
    const tick = () => {
      this.#hbTimer = null;
      const conn = this.#conn;
      if (this.#state !== 'active' || this.#loggingOut || !conn || conn.fatal || !this.#token) return;
      // A missing HEARTBEAT_ACK after heartbeat_timeout: a dead server (the request's
      // timeout abandons the connection).
      this.#request(Opcode.HEARTBEAT, { token: this.#token }, { timeoutMs: timeout, internal: true }).catch(() => {});
      this.#hbTimer = setTimeout(tick, interval);
    };
    this.#hbTimer = setTimeout(tick, interval);
  }

  #stopHeartbeats() {
    clearTimeout(this.#hbTimer);
    this.#hbTimer = null;
  }
}

function sessionEntries(m) {
  const entries = m.sessions.map((e) => ({ ...e, loginAtMs: e.created }));
  return Object.assign(entries, { total: m.total });
}
