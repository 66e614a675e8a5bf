#!/usr/bin/env python3
"""A sessiond client in Python (standard library only, Python 3.9+), written from protocol.md.

The module has three layers, in the order of the file:

- **codec** (protocol.md sections 2, 3, 5, 6): the wire enums (one IntEnum per table), the
  message classes (one dataclass per opcode, its fields declared once with their wire type),
  ``encode_frame`` / ``decode_frame`` and a streaming ``FrameDecoder``. No sockets, no clock.
- **ClientCore**: the connection's state machine (protocol.md section 4), request ids and
  the heartbeat schedule. Sans-IO like the server's engine: bytes and ``now`` go in, bytes to
  send, events and the next deadline come out. It never touches a socket or the clock.
- **Client**: the thin shell. It owns the socket (TCP, or TLS through ``ssl`` with the
  server's certificate verified against a CA file) and one background I/O thread that does
  every read and write, sends the heartbeats and enforces the heartbeat timeout. Calls from
  other threads queue a request, wake the I/O thread and wait, always with a timeout, for
  the reply matched to their request id. Pushes go to a callback and to a queue.

The session token is a secret like a password: ``Token`` never shows its bytes in a repr,
the token file is created readable by its owner only (0600), and nothing here logs it.

Run as a script for a small command-line client: ``python3 sessiond.py --help``.
"""

from __future__ import annotations

import argparse
import dataclasses
import enum
import getpass
import hmac
import logging
import os
import platform as _platform
import random
import selectors
import socket
import ssl
import struct
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Deque, Dict, List, Optional, Tuple, Type, TypeVar, Union

__all__ = [
    "Attr",
    "Attrs",
    "Client",
    "ClientCore",
    "ConnectionClosed",
    "DecodeError",
    "DuplicateSession",
    "ErrorCode",
    "Frame",
    "FrameDecoder",
    "LoginFailed",
    "Opcode",
    "ProtocolError",
    "RegisterFailed",
    "RequestTimeout",
    "ServerError",
    "SessionEnded",
    "SessionInvalid",
    "SessiondError",
    "StateError",
    "Token",
    "TokenFile",
    "UserInfo",
    "decode_frame",
    "encode_frame",
]

log = logging.getLogger("sessiond")

CLIENT_NAME = "sessiond.py/1"

# --------------------------------------------------------------------------------------
# Constants (protocol.md sections 2 and 3, and the limits given with each message)
# --------------------------------------------------------------------------------------

MAGIC = 0x5344
VERSION = 1
HEADER_LEN = 14
TOKEN_LEN = 32
MAX_USERNAME = 64
MAX_PASSWORD = 1024
MAX_DEVICE = 64
MAX_ADDRESS = 64
MAX_MESSAGE = 256
MAX_EMAIL = 254
MAX_STAT_NAME = 64
MAX_PAGE = 100
MAX_DETAIL = 256  # an audit entry's detail, a record's note (5.28, 5.37)
MAX_RECORDS = 50  # records in one AUDIT_RECORDS (5.37)
# Session attributes (5.39): a key, a value, and what one session holds.
MAX_ATTR_KEY = 64
MAX_ATTR_VALUE = 3904
MAX_ATTRS = 64
MAX_ATTR_BYTES = 4096  # keys and values together
# Profiles and application roles (5.44 to 5.48): a profile has the bounds of a session's
# attributes; an application role's name is 0..=32 bytes (empty: none).
MAX_ROLE_NAME = 32
# protocol.md 2, "Frame size": "no frame the server sends is larger than 65,536 bytes; a
# client MUST accept frames up to 65,536 bytes" (header included). Anything larger is
# refused before its payload is buffered, as the server does with its own limit.
MAX_SERVER_FRAME = 65_536

_HEADER = struct.Struct(">HBBHII")


# --------------------------------------------------------------------------------------
# Wire enums: one list each (protocol.md tables)
# --------------------------------------------------------------------------------------


class Opcode(enum.IntEnum):
    """Message types (protocol.md 5)."""

    LOGIN_REQUEST = 0x01
    LOGIN_SUCCESS = 0x02
    LOGIN_FAILURE = 0x03
    HEARTBEAT = 0x04
    HEARTBEAT_ACK = 0x05
    LOGOUT_REQUEST = 0x06
    LOGOUT_SUCCESS = 0x07
    DISCONNECT_REQUEST = 0x08
    DISCONNECT_ACK = 0x09
    GENERAL_FAILURE = 0x0F
    VERIFY_SESSION = 0x10
    SESSION_VALID = 0x11
    SESSION_INVALID = 0x12
    DUPLICATE_SESSION = 0x13
    REGISTER_REQUEST = 0x20
    REGISTER_SUCCESS = 0x21
    REGISTER_FAILURE = 0x22
    SESSION_REVOKED = 0x30
    SESSION_EXPIRED = 0x31
    NEW_LOGIN = 0x32
    SERVER_SHUTDOWN = 0x33
    USER_INFO = 0x34
    LIST_SESSIONS = 0x40
    SESSION_LIST = 0x41
    REVOKE_SESSION = 0x42
    LOGOUT_ALL = 0x43
    CHANGE_PASSWORD = 0x44
    DONE = 0x45
    AUDIT_QUERY = 0x46
    AUDIT_PAGE = 0x47
    AUDIT_SEARCH = 0x48
    AUDIT_RECORDS = 0x49
    ATTR_SET = 0x4A
    ATTR_REMOVE = 0x4B
    ATTR_GET = 0x4C
    ATTRS = 0x4D
    PROFILE_SET = 0x4E
    PROFILE_GET = 0x4F
    ADMIN_LIST_SESSIONS = 0x50
    ADMIN_REVOKE_SESSION = 0x52
    ADMIN_LOGOUT_USER = 0x53
    ADMIN_SUSPEND_USER = 0x54
    ADMIN_UNSUSPEND_USER = 0x55
    ADMIN_SET_ROLE = 0x56
    ADMIN_STATS = 0x57
    STATS = 0x58
    ADMIN_SET_PASSWORD = 0x59
    ADMIN_SET_ATTR = 0x5A
    ADMIN_SET_PROFILE = 0x5B
    ADMIN_SET_APP_ROLE = 0x5C
    ADMIN_LIST_USERS = 0x5D
    USER_LIST = 0x5E


class Flag(enum.IntFlag):
    """Header flags (protocol.md 2). A client always sends 0."""

    FATAL = 0x0001
    PUSH = 0x0002


class ErrorCode(enum.IntEnum):
    """GENERAL_FAILURE codes (protocol.md 6). Unknown codes are kept as plain ints."""

    MALFORMED_FRAME = 0x0001
    FRAME_TOO_LARGE = 0x0002
    BAD_MAGIC = 0x0003
    UNSUPPORTED_VERSION = 0x0004
    UNKNOWN_OPCODE = 0x0005
    INVALID_UTF8 = 0x0006
    FIELD_TOO_LONG = 0x0007
    BAD_FLAGS = 0x0008
    UNEXPECTED_FRAME = 0x0009
    AUTH_REQUIRED = 0x000A
    INVALID_TOKEN = 0x000B
    TOKEN_MISMATCH = 0x000D
    TOO_MANY_ERRORS = 0x000E
    INTERNAL_ERROR = 0x000F
    FORBIDDEN = 0x0010
    NOT_FOUND = 0x0011
    INVALID_ARGUMENT = 0x0012
    WRONG_PASSWORD = 0x0013
    THROTTLED = 0x0014
    SERVER_BUSY = 0x0015
    STORAGE_UNAVAILABLE = 0x0016
    TLS_REQUIRED = 0x0017
    LIMIT_EXCEEDED = 0x0018


class LoginFailureReason(enum.IntEnum):
    """LOGIN_FAILURE reasons (protocol.md 5.3)."""

    INVALID_CREDENTIALS = 0x0001
    SERVER_BUSY = 0x0002
    SESSION_LIMIT = 0x0003
    SUSPENDED = 0x0004
    DAILY_LIMIT = 0x0005
    THROTTLED = 0x0006
    STORAGE_UNAVAILABLE = 0x0007


class DisconnectReason(enum.IntEnum):
    """DISCONNECT_ACK reasons (protocol.md 5.9)."""

    CLIENT_REQUEST = 0x0000
    IDLE_TIMEOUT = 0x0001
    LOGIN_TIMEOUT = 0x0002
    SERVER_SHUTDOWN = 0x0003


class InvalidReason(enum.IntEnum):
    """SESSION_INVALID reasons (protocol.md 5.13)."""

    UNKNOWN = 0x0001
    EXPIRED = 0x0002
    REVOKED = 0x0003
    LOGGED_OUT = 0x0004


class RegisterFailureReason(enum.IntEnum):
    """REGISTER_FAILURE reasons (protocol.md 5.17)."""

    USERNAME_TAKEN = 0x0001
    INVALID_USERNAME = 0x0002
    PASSWORD_TOO_SHORT = 0x0003
    INVALID_EMAIL = 0x0004
    REGISTRATION_CLOSED = 0x0005
    SERVER_BUSY = 0x0006
    STORAGE_UNAVAILABLE = 0x0007


class RevokeReason(enum.IntEnum):
    """SESSION_REVOKED reasons (protocol.md 5.18)."""

    NEW_LOGIN = 0x0001
    TAKEN_OVER = 0x0002
    REVOKED_BY_USER = 0x0003
    PASSWORD_CHANGED = 0x0004
    REVOKED_BY_ADMIN = 0x0005
    ACCOUNT_SUSPENDED = 0x0006
    PASSWORD_RESET = 0x0007


class ExpiredReason(enum.IntEnum):
    """SESSION_EXPIRED reasons (protocol.md 5.19)."""

    IDLE = 0x0001
    ABSOLUTE = 0x0002


class Role(enum.IntEnum):
    """Account roles (protocol.md 5.2); other values are MALFORMED_FRAME."""

    USER = 0
    ADMIN = 1


class LogoutScope(enum.IntEnum):
    """LOGOUT_ALL scope (protocol.md 5.24); other values are MALFORMED_FRAME."""

    OTHERS = 1
    ALL = 2


class SessionFlag(enum.IntFlag):
    """SESSION_LIST entry flags (protocol.md 5.23); other bits are 0."""

    CURRENT = 0x01
    CONNECTED = 0x02


class AuditKind(enum.IntEnum):
    """Audit event kinds (protocol.md 5.27; the table's names are these, lower case:
    ``audit_kind_name``). A client MUST accept kinds it does not know: they stay ints."""

    SESSION_CREATED = 1
    SESSION_RESUMED = 2
    SESSION_DETACHED = 3
    EXPIRED_IDLE = 4
    EXPIRED_ABSOLUTE = 5
    LOGGED_OUT = 6
    REVOKED = 7
    LOGIN_FAILED = 8
    REGISTERED = 9
    SUSPENDED = 10
    UNSUSPENDED = 11
    ROLE_CHANGED = 12
    PASSWORD_CHANGED = 13
    USER_CREATED = 14
    PASSWORD_CHANGE_FAILED = 15
    PASSWORD_RESET = 16
    USER_DELETED = 17


class AuditOrder(enum.IntEnum):
    """AUDIT_SEARCH order (protocol.md 5.36); other values are MALFORMED_FRAME."""

    OLDEST_FIRST = 0
    NEWEST_FIRST = 1


def name_of(value: int) -> str:
    """The table name of a wire value, or its hex form when this client does not know it."""
    if isinstance(value, enum.Enum):
        return str(value.name)
    return f"0x{value:04x}"


def audit_kind_name(kind: int) -> str:
    """A kind's name as protocol.md 5.27 spells it (``revoked``), or ``kind N``."""
    if isinstance(kind, AuditKind):
        return kind.name.lower()
    return f"kind {kind}"


# protocol.md 5.37, "`reason`, by kind": the table each kind's reason comes from. Every
# other kind has reason 0.
_AUDIT_REASONS: Dict[int, Type[enum.IntEnum]] = {
    AuditKind.REVOKED: RevokeReason,
    AuditKind.EXPIRED_IDLE: ExpiredReason,
    AuditKind.EXPIRED_ABSOLUTE: ExpiredReason,
    AuditKind.LOGIN_FAILED: LoginFailureReason,
    AuditKind.PASSWORD_CHANGE_FAILED: LoginFailureReason,
    AuditKind.ROLE_CHANGED: Role,  # the new role
    AuditKind.USER_CREATED: Role,
}


def audit_reason(kind: int, reason: int) -> Optional[Union[enum.IntEnum, int]]:
    """A record's ``reason`` as a member of the table its ``kind`` names (protocol.md 5.37):
    ``RevokeReason.NEW_LOGIN`` for a ``revoked`` record with reason 1, ``LoginFailureReason
    .INVALID_CREDENTIALS`` for a ``password_change_failed`` one. None for "no reason" (0,
    where the table has no 0); the int itself for a code the table lacks or a kind this
    client does not know.

    For ``role_changed`` and ``user_created`` 0 is a role (``Role.USER``); the records
    journaled before records were typed also carry 0 there (their meaning is in ``note``)."""
    table = _AUDIT_REASONS.get(kind)
    if table is not None:
        try:
            return table(reason)
        except ValueError:
            pass
    return None if reason == 0 else reason


def audit_reason_name(kind: int, reason: int) -> str:
    """The name of a record's reason in its kind's table (``NEW_LOGIN``, ``INVALID_CREDENTIALS``,
    ``ADMIN``), its hex form if unknown, or "" when there is none."""
    r = audit_reason(kind, reason)
    return "" if r is None else name_of(r)


# --------------------------------------------------------------------------------------
# Exceptions
# --------------------------------------------------------------------------------------


class SessiondError(Exception):
    """Base class of every error this module raises (besides ValueError for bad arguments
    and OSError / ssl.SSLError from connecting)."""


class ProtocolError(SessiondError):
    """The server sent something protocol.md does not allow (or this client cannot read)."""


class DecodeError(ProtocolError):
    """A frame that does not decode. ``code`` is the ErrorCode a server would answer with;
    ``breaks_framing`` tells whether the frame boundary is lost (bad magic, version or
    length) or the frame can be skipped."""

    def __init__(self, code: ErrorCode, detail: str, *, request_id: int = 0, opcode: int = 0,
                 breaks_framing: bool = False, frame_len: int = 0):
        super().__init__(f"{code.name}: {detail}")
        self.code = code
        self.detail = detail
        self.request_id = request_id
        self.opcode = opcode
        self.breaks_framing = breaks_framing
        self.frame_len = frame_len


class StateError(SessiondError):
    """A request this connection's state does not allow (protocol.md 4), refused locally
    before it is sent (the server would answer it with a fatal error)."""


class RequestTimeout(SessiondError, TimeoutError):
    """No reply within the timeout. The connection is closed: its state is unknown."""


class ConnectionClosed(SessiondError):
    """The connection is closed. ``frame`` is the FATAL frame that ended it, if any
    (DISCONNECT_ACK, GENERAL_FAILURE, SESSION_REVOKED, ...)."""

    def __init__(self, reason: str, frame: Optional[Frame] = None):
        super().__init__(reason)
        self.reason = reason
        self.frame = frame


class SessionEnded(ConnectionClosed):
    """The session ended while this connection was bound to it (SESSION_REVOKED or
    SESSION_EXPIRED, as a push or as a reply), and the connection is closed.
    ``message`` is the SessionRevoked or SessionExpired."""

    @property
    def message(self) -> Message:
        assert self.frame is not None
        return self.frame.message


class ServerError(SessiondError):
    """A GENERAL_FAILURE reply: ``code`` (ErrorCode or an unknown int), the server's
    ``message`` and whether it was ``fatal`` (the server then closed the connection)."""

    def __init__(self, code: int, message: str, fatal: bool):
        super().__init__(f"{name_of(code)}: {message}" + (" (fatal)" if fatal else ""))
        self.code = code
        self.message = message
        self.fatal = fatal


class LoginFailed(SessiondError):
    """LOGIN_FAILURE: ``reason`` (LoginFailureReason), ``retry_after_ms`` and ``message``.
    The connection stays open, waiting for a login."""

    def __init__(self, reason: int, retry_after_ms: int, message: str):
        text = f"login failed: {name_of(reason)}"
        if retry_after_ms:
            text += f" (retry after {retry_after_ms} ms)"
        super().__init__(f"{text}: {message}")
        self.reason = reason
        self.retry_after_ms = retry_after_ms
        self.message = message


class RegisterFailed(SessiondError):
    """REGISTER_FAILURE: ``reason`` (RegisterFailureReason) and ``message``."""

    def __init__(self, reason: int, message: str):
        super().__init__(f"registration failed: {name_of(reason)}: {message}")
        self.reason = reason
        self.message = message


class SessionInvalid(SessiondError):
    """SESSION_INVALID: the token will never work again (``reason``: InvalidReason).
    The connection stays open, waiting for a login."""

    def __init__(self, reason: int, message: str):
        super().__init__(f"session invalid: {name_of(reason)}: {message}")
        self.reason = reason
        self.message = message


class DuplicateSession(ConnectionClosed):
    """DUPLICATE_SESSION: the session is in use on another connection; the token is still
    valid (keep it) and the server closed this connection."""

    def __init__(self, session_id: int, message: str, frame: Frame):
        super().__init__(f"session {session_id} is in use on another connection: {message}",
                         frame)
        self.session_id = session_id
        self.message = message


# --------------------------------------------------------------------------------------
# Field encodings (protocol.md 3)
# --------------------------------------------------------------------------------------


class Token:
    """A session token: 32 opaque bytes, a secret. Its repr never shows them."""

    __slots__ = ("_bytes",)

    def __init__(self, raw: bytes):
        raw = bytes(raw)
        if len(raw) != TOKEN_LEN:
            raise ValueError(f"a token is {TOKEN_LEN} bytes, not {len(raw)}")
        self._bytes = raw

    @classmethod
    def from_hex(cls, text: str) -> Token:
        text = text.strip()
        if len(text) != 2 * TOKEN_LEN:
            raise ValueError("a token is 64 hex digits")
        return cls(bytes.fromhex(text))

    def hex(self) -> str:
        return self._bytes.hex()

    def __bytes__(self) -> bytes:
        return self._bytes

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Token) and hmac.compare_digest(self._bytes, other._bytes)

    def __hash__(self) -> int:
        return hash(self._bytes)

    def __repr__(self) -> str:
        return "Token(<redacted>)"

    __str__ = __repr__


class _Reader:
    """Reads one payload; every read is bounds-checked (protocol.md 2, step 7)."""

    def __init__(self, payload: bytes):
        self._buf = payload
        self._pos = 0

    def take(self, n: int) -> bytes:
        if self._pos + n > len(self._buf):
            raise DecodeError(ErrorCode.MALFORMED_FRAME, "payload shorter than its layout")
        b = self._buf[self._pos:self._pos + n]
        self._pos += n
        return b

    def uint(self, size: int) -> int:
        return int.from_bytes(self.take(size), "big")

    def finish(self) -> None:
        # protocol.md 2: "a payload MUST be consumed exactly".
        if self._pos != len(self._buf):
            raise DecodeError(ErrorCode.MALFORMED_FRAME, "bytes left over after the last field")


class _Codec:
    """How one field is written and read."""

    def put(self, out: bytearray, value: object, name: str) -> None:
        raise NotImplementedError

    def get(self, r: _Reader) -> object:
        raise NotImplementedError


class _UInt(_Codec):
    def __init__(self, size: int):
        self.size = size

    def put(self, out: bytearray, value: object, name: str) -> None:
        v = int(value)  # type: ignore[call-overload]
        if not 0 <= v < 1 << (8 * self.size):
            raise ValueError(f"{name}: {v} does not fit in u{8 * self.size}")
        out += v.to_bytes(self.size, "big")

    def get(self, r: _Reader) -> object:
        return r.uint(self.size)


class _Str(_Codec):
    """``str``: u16 byte length, then UTF-8; ``lo..=hi`` bytes."""

    def __init__(self, lo: int, hi: int):
        self.lo, self.hi = lo, hi

    def put(self, out: bytearray, value: object, name: str) -> None:
        if not isinstance(value, str):
            raise ValueError(f"{name}: a str is needed")
        b = value.encode("utf-8")
        if not self.lo <= len(b) <= self.hi:
            raise ValueError(f"{name}: {len(b)} bytes, must be {self.lo}..={self.hi}")
        out += len(b).to_bytes(2, "big") + b

    # Design: minimum lengths are checked when encoding only; the server's decoder does the
    # same, and an empty name from the server harms nothing.
    def get(self, r: _Reader) -> object:
        n = r.uint(2)
        # protocol.md 3: "A str whose length prefix exceeds the field's maximum is rejected
        # with FIELD_TOO_LONG" (checked before the bounds, like the server).
        if n > self.hi:
            raise DecodeError(ErrorCode.FIELD_TOO_LONG, f"string of {n} bytes, at most {self.hi}")
        b = r.take(n)
        try:
            return b.decode("utf-8")
        except UnicodeDecodeError:
            raise DecodeError(ErrorCode.INVALID_UTF8, "string field is not valid UTF-8") from None


class _Bytes(_Codec):
    """``bytes`` (protocol.md 3): u16 length, then that many bytes of anything; at most
    ``hi``."""

    def __init__(self, hi: int):
        self.hi = hi

    def put(self, out: bytearray, value: object, name: str) -> None:
        if not isinstance(value, (bytes, bytearray)):
            raise ValueError(f"{name}: bytes are needed")
        if len(value) > self.hi:
            raise ValueError(f"{name}: {len(value)} bytes, at most {self.hi}")
        out += len(value).to_bytes(2, "big") + bytes(value)

    def get(self, r: _Reader) -> object:
        n = r.uint(2)
        if n > self.hi:
            raise DecodeError(ErrorCode.FIELD_TOO_LONG, f"{n} bytes, at most {self.hi}")
        return bytes(r.take(n))


class _Bool(_Codec):
    """A u8 that is 0 or 1; other values are MALFORMED_FRAME (5.43's and 5.44's
    ``remove``)."""

    def put(self, out: bytearray, value: object, name: str) -> None:
        if not isinstance(value, bool):
            raise ValueError(f"{name}: a bool is needed")
        out.append(int(value))

    def get(self, r: _Reader) -> object:
        v = r.uint(1)
        if v > 1:
            raise DecodeError(ErrorCode.MALFORMED_FRAME, f"{v} is not 0 or 1")
        return v == 1


class _TokenCodec(_Codec):
    def put(self, out: bytearray, value: object, name: str) -> None:
        if not isinstance(value, Token):
            raise ValueError(f"{name}: a Token is needed")
        out += bytes(value)

    def get(self, r: _Reader) -> object:
        return Token(r.take(TOKEN_LEN))


class _Enum(_Codec):
    """An integer from a table. Open tables keep unknown values as ints (protocol.md 6: "A
    client MUST treat an unknown code as a failure"); closed ones reject them."""

    def __init__(self, table: Type[enum.IntEnum], size: int, closed: bool = False):
        self.table, self.size, self.closed = table, size, closed

    def put(self, out: bytearray, value: object, name: str) -> None:
        if self.closed and value not in set(self.table):
            raise ValueError(f"{name}: {value!r} is not a {self.table.__name__}")
        _UInt(self.size).put(out, value, name)

    def get(self, r: _Reader) -> object:
        v = r.uint(self.size)
        try:
            return self.table(v)
        except ValueError:
            if self.closed:
                raise DecodeError(ErrorCode.MALFORMED_FRAME,
                                  f"{v} is not a {self.table.__name__}") from None
            return v


class _SessionFlags(_Codec):
    def put(self, out: bytearray, value: object, name: str) -> None:
        v = int(value)  # type: ignore[call-overload]
        if v & ~0x03:
            raise ValueError(f"{name}: unknown flag bits in {v:#x}")
        out.append(v)

    def get(self, r: _Reader) -> object:
        v = r.uint(1)
        # protocol.md 5.23: "other bits 0".
        if v & ~0x03:
            raise DecodeError(ErrorCode.MALFORMED_FRAME, f"session flags {v:#x}")
        return SessionFlag(v)


class _Struct(_Codec):
    def __init__(self, cls: type):
        self.cls = cls

    def put(self, out: bytearray, value: object, name: str) -> None:
        if not isinstance(value, self.cls):
            raise ValueError(f"{name}: a {self.cls.__name__} is needed")
        _encode_fields(value, out)

    def get(self, r: _Reader) -> object:
        return _decode_fields(self.cls, r)


class _List(_Codec):
    """u16 count (at most ``most``: MAX_PAGE, or MAX_RECORDS for AUDIT_RECORDS), then the
    entries."""

    def __init__(self, item: _Codec, most: int = MAX_PAGE):
        self.item, self.most = item, most

    def put(self, out: bytearray, value: object, name: str) -> None:
        items = list(value)  # type: ignore[call-overload]
        if len(items) > self.most:
            raise ValueError(f"{name}: {len(items)} entries, at most {self.most}")
        out += len(items).to_bytes(2, "big")
        for i, v in enumerate(items):
            self.item.put(out, v, f"{name}[{i}]")

    def get(self, r: _Reader) -> object:
        n = r.uint(2)
        if n > self.most:
            raise DecodeError(ErrorCode.MALFORMED_FRAME, f"{n} entries, at most {self.most}")
        return [self.item.get(r) for _ in range(n)]


U8, U16, U32, U64 = _UInt(1), _UInt(2), _UInt(4), _UInt(8)
TIME = U64  # ms since the Unix epoch, 0 = never
MILLIS = U32
TOKEN = _TokenCodec()


def _w(codec: _Codec, **kw: Any) -> Any:
    """A dataclass field with its wire type (the declaration order is the wire order)."""
    return field(metadata={"wire": codec}, **kw)


def _encode_fields(obj: object, out: bytearray) -> None:
    for f in dataclasses.fields(obj):  # type: ignore[arg-type]
        f.metadata["wire"].put(out, getattr(obj, f.name), f.name)


def _decode_fields(cls: type, r: _Reader) -> object:
    return cls(**{f.name: f.metadata["wire"].get(r) for f in dataclasses.fields(cls)})


# --------------------------------------------------------------------------------------
# Messages (protocol.md 5): one class per opcode
# --------------------------------------------------------------------------------------

MESSAGES: Dict[int, Type[Message]] = {}


class Message:
    """A message payload. ``OPCODE`` and ``FROM_SERVER`` are set by ``_message``."""

    OPCODE: ClassVar[Opcode]
    FROM_SERVER: ClassVar[bool]

    def encode_payload(self) -> bytes:
        out = bytearray()
        _encode_fields(self, out)
        return bytes(out)

    @classmethod
    def decode_payload(cls, payload: bytes) -> Message:
        r = _Reader(payload)
        m = _decode_fields(cls, r)
        r.finish()
        return m  # type: ignore[return-value]


_M = TypeVar("_M", bound=type)


def _message(opcode: Opcode, from_server: bool) -> Callable[[_M], _M]:
    def register(cls: _M) -> _M:
        assert dataclasses.is_dataclass(cls), cls
        cls.OPCODE = opcode  # type: ignore[attr-defined]
        cls.FROM_SERVER = from_server  # type: ignore[attr-defined]
        assert opcode not in MESSAGES, opcode
        MESSAGES[opcode] = cls  # type: ignore[assignment]
        return cls

    return register


@dataclass
class UnknownMessage(Message):
    """A frame with an opcode this client does not know (or does not implement)."""

    opcode: int
    payload: bytes

    def encode_payload(self) -> bytes:
        return self.payload


@dataclass
class SessionInfo:
    """The session info block of LOGIN_SUCCESS and SESSION_VALID (protocol.md 5.2)."""

    session_id: int = _w(U64)
    user_id: int = _w(U64)
    role: Role = _w(_Enum(Role, 1, closed=True))
    username: str = _w(_Str(1, MAX_USERNAME))
    user_created: int = _w(TIME)
    last_login: int = _w(TIME)
    session_created: int = _w(TIME)
    session_expires: int = _w(TIME)
    idle_expiry_ms: int = _w(MILLIS)
    heartbeat_interval_ms: int = _w(MILLIS)
    heartbeat_timeout_ms: int = _w(MILLIS)


@dataclass
class SessionEntry:
    """One SESSION_LIST entry (protocol.md 5.23)."""

    session_id: int = _w(U64)
    flags: SessionFlag = _w(_SessionFlags())
    user_id: int = _w(U64)
    username: str = _w(_Str(1, MAX_USERNAME))
    client: str = _w(_Str(0, MAX_DEVICE))
    platform: str = _w(_Str(0, MAX_DEVICE))
    address: str = _w(_Str(0, MAX_ADDRESS))
    created: int = _w(TIME)
    last_active: int = _w(TIME)
    expires: int = _w(TIME)

    @property
    def current(self) -> bool:
        return bool(self.flags & SessionFlag.CURRENT)

    @property
    def connected(self) -> bool:
        return bool(self.flags & SessionFlag.CONNECTED)


@dataclass
class StatCounter:
    """One STATS counter (protocol.md 5.34)."""

    name: str = _w(_Str(1, MAX_STAT_NAME))
    value: int = _w(U64)


@dataclass
class AuditEntry:
    """One AUDIT_PAGE entry (protocol.md 5.28): the meaning in ``detail`` text."""

    seq: int = _w(U64)
    at: int = _w(TIME)
    kind: AuditKind = _w(_Enum(AuditKind, 1))
    user_id: int = _w(U64)
    username: str = _w(_Str(0, MAX_USERNAME))
    session_id: int = _w(U64)
    address: str = _w(_Str(0, MAX_ADDRESS))
    detail: str = _w(_Str(0, MAX_DETAIL))


@dataclass
class Attr:
    """One session attribute (protocol.md 5.42): a key and its value, any bytes."""

    key: str = _w(_Str(1, MAX_ATTR_KEY))
    value: bytes = _w(_Bytes(MAX_ATTR_VALUE))


@dataclass
class AuditActor:
    """Who caused an audit record (protocol.md 5.37, the ``actor_*`` fields): all 0 and
    empty when nobody did but the subject itself, a timer or the operator."""

    user_id: int = _w(U64, default=0)
    username: str = _w(_Str(0, MAX_USERNAME), default="")
    session_id: int = _w(U64, default=0)  # for NEW_LOGIN: the new session
    address: str = _w(_Str(0, MAX_ADDRESS), default="")
    client: str = _w(_Str(0, MAX_DEVICE), default="")
    platform: str = _w(_Str(0, MAX_DEVICE), default="")

    def __bool__(self) -> bool:
        return bool(self.user_id or self.session_id or self.username or self.address
                    or self.client or self.platform)


@dataclass
class AuditRecord:
    """One AUDIT_RECORDS record (protocol.md 5.37): what happened to whom (the subject:
    account, session, address and device), why (``reason``, from the table ``kind``
    names: ``reason_name``) and who caused it (``actor``). ``note`` is for people."""

    seq: int = _w(U64)
    at: int = _w(TIME)
    kind: AuditKind = _w(_Enum(AuditKind, 1))
    reason: int = _w(U16)  # its table depends on kind: audit_reason()
    user_id: int = _w(U64)
    username: str = _w(_Str(0, MAX_USERNAME))
    session_id: int = _w(U64)
    address: str = _w(_Str(0, MAX_ADDRESS))
    client: str = _w(_Str(0, MAX_DEVICE))
    platform: str = _w(_Str(0, MAX_DEVICE))
    actor: AuditActor = _w(_Struct(AuditActor))  # actor_user_id ... actor_platform
    note: str = _w(_Str(0, MAX_DETAIL))

    @property
    def typed_reason(self) -> Optional[Union[enum.IntEnum, int]]:
        """``reason`` as a member of its kind's table (``audit_reason``)."""
        return audit_reason(self.kind, self.reason)

    @property
    def reason_name(self) -> str:
        return audit_reason_name(self.kind, self.reason)


@_message(Opcode.LOGIN_REQUEST, from_server=False)
@dataclass
class LoginRequest(Message):
    username: str = _w(_Str(1, MAX_USERNAME))
    password: str = _w(_Str(0, MAX_PASSWORD), repr=False)
    client: str = _w(_Str(0, MAX_DEVICE), default="")
    platform: str = _w(_Str(0, MAX_DEVICE), default="")


@_message(Opcode.LOGIN_SUCCESS, from_server=True)
@dataclass
class LoginSuccess(Message):
    token: Token = _w(TOKEN)
    session: SessionInfo = _w(_Struct(SessionInfo))


@_message(Opcode.LOGIN_FAILURE, from_server=True)
@dataclass
class LoginFailure(Message):
    reason: LoginFailureReason = _w(_Enum(LoginFailureReason, 2))
    retry_after_ms: int = _w(MILLIS)
    message: str = _w(_Str(0, MAX_MESSAGE))


@_message(Opcode.HEARTBEAT, from_server=False)
@dataclass
class Heartbeat(Message):
    token: Token = _w(TOKEN)


@_message(Opcode.HEARTBEAT_ACK, from_server=True)
@dataclass
class HeartbeatAck(Message):
    server_time: int = _w(TIME)


@_message(Opcode.LOGOUT_REQUEST, from_server=False)
@dataclass
class LogoutRequest(Message):
    token: Token = _w(TOKEN)


@_message(Opcode.LOGOUT_SUCCESS, from_server=True)
@dataclass
class LogoutSuccess(Message):
    session_id: int = _w(U64)


@_message(Opcode.DISCONNECT_REQUEST, from_server=False)
@dataclass
class DisconnectRequest(Message):
    pass


@_message(Opcode.DISCONNECT_ACK, from_server=True)
@dataclass
class DisconnectAck(Message):
    reason: DisconnectReason = _w(_Enum(DisconnectReason, 2))


@_message(Opcode.GENERAL_FAILURE, from_server=True)
@dataclass
class GeneralFailure(Message):
    code: ErrorCode = _w(_Enum(ErrorCode, 2))
    message: str = _w(_Str(0, MAX_MESSAGE))


@_message(Opcode.VERIFY_SESSION, from_server=False)
@dataclass
class VerifySession(Message):
    token: Token = _w(TOKEN)
    client: str = _w(_Str(0, MAX_DEVICE), default="")
    platform: str = _w(_Str(0, MAX_DEVICE), default="")


@_message(Opcode.SESSION_VALID, from_server=True)
@dataclass
class SessionValid(Message):
    session: SessionInfo = _w(_Struct(SessionInfo))


@_message(Opcode.SESSION_INVALID, from_server=True)
@dataclass
class SessionInvalidReply(Message):
    """SESSION_INVALID (the exception for it is ``SessionInvalid``)."""

    reason: InvalidReason = _w(_Enum(InvalidReason, 2))
    message: str = _w(_Str(0, MAX_MESSAGE))


@_message(Opcode.DUPLICATE_SESSION, from_server=True)
@dataclass
class DuplicateSessionReply(Message):
    """DUPLICATE_SESSION (the exception for it is ``DuplicateSession``)."""

    session_id: int = _w(U64)
    message: str = _w(_Str(0, MAX_MESSAGE))


@_message(Opcode.REGISTER_REQUEST, from_server=False)
@dataclass
class RegisterRequest(Message):
    username: str = _w(_Str(0, MAX_USERNAME))
    password: str = _w(_Str(0, MAX_PASSWORD), repr=False)
    email: str = _w(_Str(0, MAX_EMAIL))


@_message(Opcode.REGISTER_SUCCESS, from_server=True)
@dataclass
class RegisterSuccess(Message):
    user_id: int = _w(U64)
    username: str = _w(_Str(3, 32))  # 5.16: "3..=32 bytes: its name, exactly as requested"


@_message(Opcode.REGISTER_FAILURE, from_server=True)
@dataclass
class RegisterFailure(Message):
    reason: RegisterFailureReason = _w(_Enum(RegisterFailureReason, 2))
    message: str = _w(_Str(0, MAX_MESSAGE))


@_message(Opcode.SESSION_REVOKED, from_server=True)
@dataclass
class SessionRevoked(Message):
    session_id: int = _w(U64)
    reason: RevokeReason = _w(_Enum(RevokeReason, 2))
    by_client: str = _w(_Str(0, MAX_DEVICE))
    by_platform: str = _w(_Str(0, MAX_DEVICE))
    by_address: str = _w(_Str(0, MAX_ADDRESS))
    at: int = _w(TIME)


@_message(Opcode.SESSION_EXPIRED, from_server=True)
@dataclass
class SessionExpired(Message):
    session_id: int = _w(U64)
    reason: ExpiredReason = _w(_Enum(ExpiredReason, 2))


@_message(Opcode.NEW_LOGIN, from_server=True)
@dataclass
class NewLogin(Message):
    session_id: int = _w(U64)
    client: str = _w(_Str(0, MAX_DEVICE))
    platform: str = _w(_Str(0, MAX_DEVICE))
    address: str = _w(_Str(0, MAX_ADDRESS))
    at: int = _w(TIME)


@_message(Opcode.SERVER_SHUTDOWN, from_server=True)
@dataclass
class ServerShutdown(Message):
    reconnect_after_ms: int = _w(MILLIS)
    message: str = _w(_Str(0, MAX_MESSAGE))


@_message(Opcode.LIST_SESSIONS, from_server=False)
@dataclass
class ListSessions(Message):
    token: Token = _w(TOKEN)
    offset: int = _w(U32, default=0)
    limit: int = _w(U16, default=0)


@_message(Opcode.SESSION_LIST, from_server=True)
@dataclass
class SessionList(Message):
    total: int = _w(U32)
    sessions: List[SessionEntry] = _w(_List(_Struct(SessionEntry)))


@_message(Opcode.REVOKE_SESSION, from_server=False)
@dataclass
class RevokeSession(Message):
    token: Token = _w(TOKEN)
    session_id: int = _w(U64)


@_message(Opcode.LOGOUT_ALL, from_server=False)
@dataclass
class LogoutAll(Message):
    token: Token = _w(TOKEN)
    scope: LogoutScope = _w(_Enum(LogoutScope, 1, closed=True))


@_message(Opcode.CHANGE_PASSWORD, from_server=False)
@dataclass
class ChangePassword(Message):
    token: Token = _w(TOKEN)
    old: str = _w(_Str(0, MAX_PASSWORD), repr=False)
    new: str = _w(_Str(0, MAX_PASSWORD), repr=False)


@_message(Opcode.DONE, from_server=True)
@dataclass
class Done(Message):
    affected: int = _w(U32)


@_message(Opcode.AUDIT_QUERY, from_server=False)
@dataclass
class AuditQuery(Message):
    """AUDIT_QUERY (5.27). ``since`` and ``until`` are protocol.md's ``from`` and ``to``."""

    token: Token = _w(TOKEN)
    username: str = _w(_Str(0, MAX_USERNAME), default="")
    kind: int = _w(_Enum(AuditKind, 1), default=0)  # an AuditKind, or 0: all kinds
    since: int = _w(TIME, default=0)
    until: int = _w(TIME, default=0)
    cursor: int = _w(U64, default=0)
    limit: int = _w(U16, default=0)


@_message(Opcode.AUDIT_PAGE, from_server=True)
@dataclass
class AuditPage(Message):
    next_cursor: int = _w(U64)
    entries: List[AuditEntry] = _w(_List(_Struct(AuditEntry)))


@_message(Opcode.AUDIT_SEARCH, from_server=False)
@dataclass
class AuditSearch(AuditQuery):
    """AUDIT_SEARCH (5.36): "AUDIT_QUERY's fields (5.27), ..., then one more"."""

    order: AuditOrder = _w(_Enum(AuditOrder, 1, closed=True), default=AuditOrder.OLDEST_FIRST)


@_message(Opcode.AUDIT_RECORDS, from_server=True)
@dataclass
class AuditRecords(Message):
    next_cursor: int = _w(U64)
    records: List[AuditRecord] = _w(_List(_Struct(AuditRecord), most=MAX_RECORDS))


@_message(Opcode.ATTR_SET, from_server=False)
@dataclass
class AttrSet(Message):
    token: Token = _w(TOKEN)
    key: str = _w(_Str(1, MAX_ATTR_KEY))
    value: bytes = _w(_Bytes(MAX_ATTR_VALUE), default=b"")


@_message(Opcode.ATTR_REMOVE, from_server=False)
@dataclass
class AttrRemove(Message):
    token: Token = _w(TOKEN)
    key: str = _w(_Str(1, MAX_ATTR_KEY))


@_message(Opcode.ATTR_GET, from_server=False)
@dataclass
class AttrGet(Message):
    token: Token = _w(TOKEN)
    key: str = _w(_Str(0, MAX_ATTR_KEY), default="")  # empty: every attribute


@_message(Opcode.ATTRS, from_server=True)
@dataclass
class Attrs(Message):
    """The reply to ATTR_GET, or a push right after SESSION_VALID (5.42)."""

    session_id: int = _w(U64)
    attrs: List[Attr] = _w(_List(_Struct(Attr), most=MAX_ATTRS))

    def as_dict(self) -> Dict[str, bytes]:
        return {a.key: a.value for a in self.attrs}


@_message(Opcode.ADMIN_LIST_SESSIONS, from_server=False)
@dataclass
class AdminListSessions(Message):
    token: Token = _w(TOKEN)
    username: str = _w(_Str(0, MAX_USERNAME), default="")
    offset: int = _w(U32, default=0)
    limit: int = _w(U16, default=0)


@_message(Opcode.ADMIN_REVOKE_SESSION, from_server=False)
@dataclass
class AdminRevokeSession(Message):
    token: Token = _w(TOKEN)
    session_id: int = _w(U64)


@_message(Opcode.ADMIN_LOGOUT_USER, from_server=False)
@dataclass
class AdminLogoutUser(Message):
    token: Token = _w(TOKEN)
    username: str = _w(_Str(1, MAX_USERNAME))


@_message(Opcode.ADMIN_SUSPEND_USER, from_server=False)
@dataclass
class AdminSuspendUser(Message):
    token: Token = _w(TOKEN)
    username: str = _w(_Str(1, MAX_USERNAME))


@_message(Opcode.ADMIN_UNSUSPEND_USER, from_server=False)
@dataclass
class AdminUnsuspendUser(Message):
    token: Token = _w(TOKEN)
    username: str = _w(_Str(1, MAX_USERNAME))


@_message(Opcode.ADMIN_SET_ROLE, from_server=False)
@dataclass
class AdminSetRole(Message):
    token: Token = _w(TOKEN)
    username: str = _w(_Str(1, MAX_USERNAME))
    role: Role = _w(_Enum(Role, 1, closed=True))


@_message(Opcode.ADMIN_SET_PASSWORD, from_server=False)
@dataclass
class AdminSetPassword(Message):
    token: Token = _w(TOKEN)
    username: str = _w(_Str(1, MAX_USERNAME))
    password: str = _w(_Str(0, MAX_PASSWORD), repr=False)


@_message(Opcode.ADMIN_SET_ATTR, from_server=False)
@dataclass
class AdminSetAttr(Message):
    """ADMIN_SET_ATTR (5.43): ``remove`` False sets ``key`` to ``value``; True removes it
    (``value`` then MUST be empty)."""

    token: Token = _w(TOKEN)
    session_id: int = _w(U64)
    key: str = _w(_Str(1, MAX_ATTR_KEY))
    remove: bool = _w(_Bool(), default=False)
    value: bytes = _w(_Bytes(MAX_ATTR_VALUE), default=b"")


class _RemoveOrSet(Message):
    """A ``remove`` flag and a ``value`` (PROFILE_SET, ADMIN_SET_PROFILE): protocol.md 5.44,
    "`1`: remove it (`value` MUST then be empty)", checked both ways like the server."""

    remove: bool
    value: bytes

    def encode_payload(self) -> bytes:
        if self.remove and self.value:
            raise ValueError("value: must be empty when removing")
        return super().encode_payload()

    @classmethod
    def decode_payload(cls, payload: bytes) -> Message:
        m = super().decode_payload(payload)
        assert isinstance(m, _RemoveOrSet)
        if m.remove and m.value:
            raise DecodeError(ErrorCode.MALFORMED_FRAME, "a removal that carries a value")
        return m


@_message(Opcode.PROFILE_SET, from_server=False)
@dataclass
class ProfileSet(_RemoveOrSet):
    """PROFILE_SET (5.44): an attribute of the caller's own account's profile; ``remove``
    False sets ``key`` to ``value``, True removes it."""

    token: Token = _w(TOKEN)
    key: str = _w(_Str(1, MAX_ATTR_KEY))
    remove: bool = _w(_Bool(), default=False)
    value: bytes = _w(_Bytes(MAX_ATTR_VALUE), default=b"")


@_message(Opcode.PROFILE_GET, from_server=False)
@dataclass
class ProfileGet(Message):
    token: Token = _w(TOKEN)
    key: str = _w(_Str(0, MAX_ATTR_KEY), default="")  # empty: the whole profile


@_message(Opcode.USER_INFO, from_server=True)
@dataclass
class UserInfo(Message):
    """USER_INFO (5.46): an account's application role ("" for none) and profile, sorted
    by key; the reply to PROFILE_GET, or a push right after LOGIN_SUCCESS and
    SESSION_VALID when the account has either."""

    user_id: int = _w(U64)
    app_role: str = _w(_Str(0, MAX_ROLE_NAME))
    profile: List[Attr] = _w(_List(_Struct(Attr), most=MAX_ATTRS))

    def as_dict(self) -> Dict[str, bytes]:
        return {a.key: a.value for a in self.profile}


@_message(Opcode.ADMIN_SET_PROFILE, from_server=False)
@dataclass
class AdminSetProfile(_RemoveOrSet):
    """ADMIN_SET_PROFILE (5.47): PROFILE_SET for any account, by name."""

    token: Token = _w(TOKEN)
    username: str = _w(_Str(1, MAX_USERNAME))
    key: str = _w(_Str(1, MAX_ATTR_KEY))
    remove: bool = _w(_Bool(), default=False)
    value: bytes = _w(_Bytes(MAX_ATTR_VALUE), default=b"")


@_message(Opcode.ADMIN_SET_APP_ROLE, from_server=False)
@dataclass
class AdminSetAppRole(Message):
    """ADMIN_SET_APP_ROLE (5.48): one of the server's application roles, or "" for none."""

    token: Token = _w(TOKEN)
    username: str = _w(_Str(1, MAX_USERNAME))
    role: str = _w(_Str(0, MAX_ROLE_NAME), default="")


@_message(Opcode.ADMIN_LIST_USERS, from_server=False)
@dataclass
class AdminListUsers(Message):
    """ADMIN_LIST_USERS (5.49): the accounts, by id, a page."""

    token: Token = _w(TOKEN)
    offset: int = _w(U32, default=0)
    limit: int = _w(U16, default=0)


@dataclass
class UserEntry:
    """One USER_LIST entry (protocol.md 5.50)."""

    user_id: int = _w(U64)
    username: str = _w(_Str(1, MAX_USERNAME))
    role: Role = _w(_Enum(Role, 1, closed=True))
    app_role: str = _w(_Str(0, MAX_ROLE_NAME))
    suspended: bool = _w(_Bool())
    created: int = _w(TIME)
    last_login: int = _w(TIME)


@_message(Opcode.USER_LIST, from_server=True)
@dataclass
class UserList(Message):
    """USER_LIST (5.50): a page of accounts with both roles."""

    total: int = _w(U32)
    users: List[UserEntry] = _w(_List(_Struct(UserEntry)))


@_message(Opcode.ADMIN_STATS, from_server=False)
@dataclass
class AdminStats(Message):
    token: Token = _w(TOKEN)


@_message(Opcode.STATS, from_server=True)
@dataclass
class Stats(Message):
    counters: List[StatCounter] = _w(_List(_Struct(StatCounter)))

    def as_dict(self) -> Dict[str, int]:
        return {c.name: c.value for c in self.counters}


# --------------------------------------------------------------------------------------
# Frames (protocol.md 2)
# --------------------------------------------------------------------------------------


@dataclass
class Frame:
    """One decoded frame: header fields and the typed message."""

    request_id: int
    flags: int
    message: Message

    @property
    def opcode(self) -> int:
        if isinstance(self.message, UnknownMessage):
            return self.message.opcode
        return int(self.message.OPCODE)

    @property
    def is_push(self) -> bool:
        return bool(self.flags & Flag.PUSH)

    @property
    def is_fatal(self) -> bool:
        return bool(self.flags & Flag.FATAL)


def encode_frame(request_id: int, message: Message, flags: int = 0) -> bytes:
    """Header and payload of one frame. ValueError if a field breaks its limits."""
    payload = message.encode_payload()
    opcode = message.opcode if isinstance(message, UnknownMessage) else message.OPCODE
    if not 0 <= request_id <= 0xFFFFFFFF:
        raise ValueError(f"request id {request_id} does not fit in u32")
    return _HEADER.pack(MAGIC, VERSION, opcode, flags, request_id, len(payload)) + payload


def decode_frame(buf: Union[bytes, bytearray],
                 max_frame: int = MAX_SERVER_FRAME) -> Optional[Tuple[Frame, int]]:
    """The first frame of ``buf`` and its length, or None when it is not complete yet
    (protocol.md: incomplete input is not an error). Raises DecodeError."""
    # protocol.md 2, "Header checks, in order": magic, version, then length.
    if len(buf) >= 2 and int.from_bytes(buf[0:2], "big") != MAGIC:
        raise DecodeError(ErrorCode.BAD_MAGIC, "not a sessiond frame", breaks_framing=True)
    if len(buf) >= 3 and buf[2] != VERSION:
        raise DecodeError(ErrorCode.UNSUPPORTED_VERSION, f"version {buf[2]}",
                          breaks_framing=True)
    if len(buf) < HEADER_LEN:
        return None
    _magic, _version, opcode, flags, request_id, length = _HEADER.unpack_from(buf)
    # "A frame whose 14 + length exceeds the maximum frame size MUST be rejected", before
    # any payload is read.
    if HEADER_LEN + length > max_frame:
        raise DecodeError(ErrorCode.FRAME_TOO_LARGE, f"{HEADER_LEN + length} bytes",
                          request_id=request_id, opcode=opcode, breaks_framing=True)
    total = HEADER_LEN + length
    if len(buf) < total:
        return None
    payload = bytes(buf[HEADER_LEN:total])
    cls = MESSAGES.get(opcode)
    if cls is None:
        return Frame(request_id, flags, UnknownMessage(opcode, payload)), total
    try:
        message = cls.decode_payload(payload)
    except DecodeError as e:
        e.request_id, e.opcode, e.frame_len = request_id, opcode, total
        raise
    return Frame(request_id, flags, message), total


class FrameDecoder:
    """Frames from a byte stream: ``feed`` bytes, then ``next`` until it returns None."""

    def __init__(self, max_frame: int = MAX_SERVER_FRAME):
        self._buf = bytearray()
        self._max_frame = max_frame

    def feed(self, data: bytes) -> None:
        self._buf += data

    def next(self) -> Optional[Frame]:
        """The next complete frame, or None. A DecodeError that does not break the framing
        has already skipped its frame, so the caller may carry on."""
        try:
            got = decode_frame(self._buf, self._max_frame)
        except DecodeError as e:
            if not e.breaks_framing:
                del self._buf[:e.frame_len]
            raise
        if got is None:
            return None
        frame, n = got
        del self._buf[:n]
        return frame

    @property
    def buffered(self) -> int:
        return len(self._buf)


# --------------------------------------------------------------------------------------
# The connection's state machine (sans-IO)
# --------------------------------------------------------------------------------------


class State(enum.Enum):
    """The connection as this client sees it (protocol.md 4)::

        AWAITING_AUTH --LOGIN/REGISTER/VERIFY sent--> AUTHENTICATING
        AUTHENTICATING --LOGIN_SUCCESS, SESSION_VALID--> ACTIVE (heartbeats run)
        AUTHENTICATING --any other answer--> AWAITING_AUTH
        ACTIVE --LOGOUT_REQUEST or LOGOUT_ALL(ALL) sent--> LOGGING_OUT (heartbeats stop)
        LOGGING_OUT --LOGOUT_SUCCESS / DONE--> AWAITING_AUTH;  --failure--> ACTIVE
        any --DISCONNECT_REQUEST sent--> DISCONNECTING
        any --FATAL frame, EOF, error, heartbeat timeout--> CLOSED
    """

    AWAITING_AUTH = "awaiting auth"
    AUTHENTICATING = "authenticating"
    ACTIVE = "active"
    LOGGING_OUT = "logging out"
    DISCONNECTING = "disconnecting"
    CLOSED = "closed"


_AUTH_REQUESTS = (LoginRequest, RegisterRequest, VerifySession)


@dataclass
class Reply:
    """Event: the reply to request ``request_id`` (or the error that stands for it)."""

    request_id: int
    frame: Optional[Frame]
    error: Optional[SessiondError] = None


@dataclass
class Push:
    """Event: a frame the server sent on its own (or an answer to a heartbeat the core
    sent that is not HEARTBEAT_ACK, such as SESSION_EXPIRED)."""

    frame: Frame


@dataclass
class Closed:
    """Event: the connection is over. ``frame`` is the FATAL frame, if one ended it;
    ``token`` is the session's token when the session ended with it."""

    reason: str
    frame: Optional[Frame] = None
    ended_token: Optional[Token] = None


Event = Union[Reply, Push, Closed]


@dataclass
class _Sent:
    message: Message
    internal: bool  # a heartbeat the core sent by itself
    at: float


class ClientCore:
    """Request ids, the state machine and the heartbeat schedule of one connection.

    The contract, for the shell that drives it:

    - ``start_request(message, now)``: queue a request; returns its request id.
    - ``receive(data, now)`` with bytes read, ``connection_lost(reason)`` on EOF or error.
    - ``handle_timeout(now)`` whenever ``poll_timeout()`` (a deadline on the same clock as
      ``now``, or None) has passed: sends the heartbeats that are due and declares the
      server dead when a heartbeat went unanswered for ``heartbeat_timeout``.
    - after each of these: ``take_output()`` (bytes to send) and ``poll_event()`` until it
      returns None.
    """

    def __init__(self, max_frame: int = MAX_SERVER_FRAME):
        self.state = State.AWAITING_AUTH
        self.token: Optional[Token] = None
        self.session: Optional[SessionInfo] = None
        self.close_reason: Optional[str] = None
        self.close_frame: Optional[Frame] = None
        self.heartbeats_acked = 0
        self.last_server_time = 0
        # The session's attributes as last heard: the ATTRS push after a resume, ATTRS
        # replies, and the changes this connection made (an administrator's are not told).
        self.attrs: Dict[str, bytes] = {}
        # The account's application role and profile as last heard (protocol.md 5.46): the
        # USER_INFO push after LOGIN_SUCCESS or SESSION_VALID (none: the account has neither
        # a role nor a profile), USER_INFO replies, and this connection's own changes.
        self.user_info: Optional[UserInfo] = None
        self._decoder = FrameDecoder(max_frame)
        self._out = bytearray()
        self._events: Deque[Event] = deque()
        self._pending: Dict[int, _Sent] = {}
        self._next_id = 1
        self._hb_next: Optional[float] = None
        self._hb_interval = 0.0
        self._hb_timeout = 0.0

    # ---- in ----

    def start_request(self, message: Message, now: float) -> int:
        """Queues ``message``; returns its request id. StateError if this state does not
        allow it, ConnectionClosed after the end."""
        return self._send(message, now, internal=False)

    def receive(self, data: bytes, now: float) -> None:
        if self.state is State.CLOSED:
            return
        self._decoder.feed(data)
        while self.state is not State.CLOSED:
            try:
                frame = self._decoder.next()
            except DecodeError as e:
                if e.breaks_framing:
                    self._close(f"unreadable frame from the server: {e}")
                    return
                sent = self._pending.pop(e.request_id, None)
                if sent is not None and not sent.internal:
                    self._events.append(Reply(e.request_id, None, e))
                else:
                    log.warning("ignoring an unreadable frame from the server: %s", e)
                continue
            if frame is None:
                return
            self._handle_frame(frame, now)

    def connection_lost(self, reason: str) -> None:
        if self.state is not State.CLOSED:
            self._close(reason)

    def handle_timeout(self, now: float) -> None:
        if self.state is State.CLOSED:
            return
        oldest = self._oldest_heartbeat()
        # protocol.md 7: "treat a missing HEARTBEAT_ACK after heartbeat_timeout as a dead
        # server".
        if oldest is not None and now >= oldest + self._hb_timeout:
            self._close(f"no HEARTBEAT_ACK within heartbeat_timeout "
                        f"({self._hb_timeout * 1000:.0f} ms): the server is not answering")
            return
        if self.state is State.ACTIVE and self._hb_next is not None and now >= self._hb_next:
            self._send(Heartbeat(self._require_token()), now, internal=True)
            # Design: the next heartbeat is due one interval after this one was sent, not
            # after the missed deadline, so a stalled process does not send a burst.
            self._hb_next = now + self._hb_interval

    # ---- out ----

    def poll_timeout(self) -> Optional[float]:
        if self.state is State.CLOSED:
            return None
        deadlines = []
        oldest = self._oldest_heartbeat()
        if oldest is not None:
            deadlines.append(oldest + self._hb_timeout)
        if self.state is State.ACTIVE and self._hb_next is not None:
            deadlines.append(self._hb_next)
        return min(deadlines) if deadlines else None

    def take_output(self) -> bytes:
        out = bytes(self._out)
        self._out.clear()
        return out

    def poll_event(self) -> Optional[Event]:
        return self._events.popleft() if self._events else None

    # ---- inside ----

    def _require_token(self) -> Token:
        assert self.token is not None
        return self.token

    def _oldest_heartbeat(self) -> Optional[float]:
        times = [s.at for s in self._pending.values() if isinstance(s.message, Heartbeat)]
        return min(times) if times else None

    def _check_allowed(self, message: Message) -> None:
        if self.state is State.CLOSED:
            raise ConnectionClosed(self.close_reason or "closed", self.close_frame)
        if isinstance(message, UnknownMessage) or message.FROM_SERVER:
            raise ValueError(f"{type(message).__name__} is not a client request")
        if isinstance(message, DisconnectRequest):
            if self.state is State.DISCONNECTING:
                raise StateError("already disconnecting")
            return
        if isinstance(message, _AUTH_REQUESTS):
            if self.state is not State.AWAITING_AUTH:
                raise StateError(f"{message.OPCODE.name} needs a connection that is not "
                                 f"logged in (this one is {self.state.value})")
            return
        if self.state is not State.ACTIVE:
            raise StateError(f"{message.OPCODE.name} needs a logged-in connection "
                             f"(this one is {self.state.value})")

    def _send(self, message: Message, now: float, internal: bool) -> int:
        self._check_allowed(message)
        rid = self._next_id
        # Non-zero ids, a counter (protocol.md 2, "Request ids").
        self._next_id = self._next_id % 0xFFFFFFFF + 1
        self._out += encode_frame(rid, message)
        self._pending[rid] = _Sent(message, internal, now)
        if isinstance(message, _AUTH_REQUESTS):
            self.state = State.AUTHENTICATING
        elif isinstance(message, LogoutRequest) or (
                isinstance(message, LogoutAll) and message.scope == LogoutScope.ALL):
            # No heartbeat may follow: after the logout the server is in AWAITING_AUTH and
            # would close the connection for it (AUTH_REQUIRED).
            self.state = State.LOGGING_OUT
        elif isinstance(message, DisconnectRequest):
            self.state = State.DISCONNECTING
        return rid

    def _activate(self, token: Token, session: SessionInfo, now: float) -> None:
        self.state = State.ACTIVE
        self.token = token
        self.session = session
        # protocol.md 5.39: a new login starts with none; a resumed session's come in the
        # ATTRS push that follows SESSION_VALID (none if it holds none).
        self.attrs = {}
        # 5.46: the USER_INFO push follows LOGIN_SUCCESS and SESSION_VALID, so it is read
        # after this; an account with neither a role nor a profile gets none.
        self.user_info = None
        self._hb_interval = max(session.heartbeat_interval_ms, 1) / 1000.0
        self._hb_timeout = max(session.heartbeat_timeout_ms, 1) / 1000.0
        self._hb_next = now + self._hb_interval

    def _deactivate(self) -> None:
        self.token = None
        self.session = None
        self.attrs = {}
        self.user_info = None
        self._hb_next = None

    def _handle_frame(self, frame: Frame, now: float) -> None:
        m = frame.message
        if frame.is_push:
            if isinstance(m, UnknownMessage):
                # protocol.md 8: "Clients MUST ignore pushes with opcodes they do not know".
                log.debug("ignoring a push with unknown opcode 0x%02x", m.opcode)
            else:
                if isinstance(m, Attrs) and self._is_ours(m.session_id):
                    self.attrs = m.as_dict()
                if isinstance(m, UserInfo) and self._is_our_account(m.user_id):
                    self.user_info = m
                self._events.append(Push(frame))
        else:
            sent = self._pending.pop(frame.request_id, None)
            if sent is None:
                log.warning("a reply to no request (id %d, %s)", frame.request_id,
                            type(m).__name__)
                self._events.append(Push(frame))
            else:
                self._on_reply(sent, frame, now)
        if frame.is_fatal:
            # "this is the last frame the server sends on this connection".
            ended = None
            if isinstance(m, (SessionRevoked, SessionExpired)):
                ended = self.token
                if isinstance(m, SessionRevoked) and m.reason == RevokeReason.TAKEN_OVER:
                    ended = None  # the session lives on, on the other connection
            self._close(describe(frame), frame, ended)

    def _on_reply(self, sent: _Sent, frame: Frame, now: float) -> None:
        m = frame.message
        req = sent.message
        if isinstance(req, LoginRequest) and isinstance(m, LoginSuccess):
            self._activate(m.token, m.session, now)
        elif isinstance(req, VerifySession) and isinstance(m, SessionValid):
            self._activate(req.token, m.session, now)
        elif isinstance(req, _AUTH_REQUESTS):
            self.state = State.AWAITING_AUTH
        elif self.state is State.LOGGING_OUT and (isinstance(req, LogoutRequest) or (
                isinstance(req, LogoutAll) and req.scope == LogoutScope.ALL)):
            if isinstance(m, (LogoutSuccess, Done)):
                self._deactivate()
                self.state = State.AWAITING_AUTH
            elif not frame.is_fatal:
                self.state = State.ACTIVE  # refused (e.g. STORAGE_UNAVAILABLE): still in
        if isinstance(m, (Done, Attrs)):
            self._note_attrs(req, m)
        if isinstance(m, (Done, UserInfo)):
            self._note_user_info(req, m)
        if isinstance(req, Heartbeat) and isinstance(m, HeartbeatAck):
            self.heartbeats_acked += 1
            self.last_server_time = m.server_time
        if sent.internal:
            if not isinstance(m, HeartbeatAck):
                self._events.append(Push(frame))  # e.g. SESSION_EXPIRED: the user must know
            return
        self._events.append(Reply(frame.request_id, frame))

    def _is_ours(self, session_id: int) -> bool:
        return self.session is not None and self.session.session_id == session_id

    def _is_our_account(self, user_id: int) -> bool:
        return self.session is not None and self.session.user_id == user_id

    def _note_user_info(self, req: Message, m: Message) -> None:
        """Keeps ``user_info`` up to date with an answered profile or role request."""
        if self.session is None:
            return
        me = self.session
        if isinstance(req, ProfileGet) and isinstance(m, UserInfo):
            if not self._is_our_account(m.user_id):
                return
            if req.key == "" or self.user_info is None:
                self.user_info = m
                return
            profile = self.user_info.as_dict()
            got = m.as_dict()
            if req.key in got:
                profile[req.key] = got[req.key]
            else:
                profile.pop(req.key, None)
            self._set_user_info(m.app_role, profile)
            return
        if not isinstance(m, Done):
            return
        old = self.user_info or UserInfo(me.user_id, "", [])
        if isinstance(req, ProfileSet) or (isinstance(req, AdminSetProfile)
                                           and req.username == me.username):
            profile = old.as_dict()
            if req.remove:
                profile.pop(req.key, None)
            else:
                profile[req.key] = req.value
            self._set_user_info(old.app_role, profile)
        elif isinstance(req, AdminSetAppRole) and req.username == me.username:
            self._set_user_info(req.role, old.as_dict())

    def _set_user_info(self, app_role: str, profile: Dict[str, bytes]) -> None:
        assert self.session is not None
        # Sorted by key, bytewise, as the server sends it (5.46).
        keys = sorted(profile, key=lambda k: k.encode("utf-8"))
        self.user_info = UserInfo(self.session.user_id, app_role,
                                  [Attr(k, profile[k]) for k in keys])

    def _note_attrs(self, req: Message, m: Message) -> None:
        """Keeps ``attrs`` up to date with an answered attribute request."""
        if isinstance(req, AttrSet) and isinstance(m, Done):
            self.attrs[req.key] = req.value
        elif isinstance(req, AttrRemove) and isinstance(m, Done):
            self.attrs.pop(req.key, None)
        elif isinstance(req, AdminSetAttr) and isinstance(m, Done) and self._is_ours(
                req.session_id):
            if req.remove:
                self.attrs.pop(req.key, None)
            else:
                self.attrs[req.key] = req.value
        elif isinstance(req, AttrGet) and isinstance(m, Attrs) and self._is_ours(m.session_id):
            got = m.as_dict()
            if req.key == "":
                self.attrs = got
            elif req.key in got:
                self.attrs[req.key] = got[req.key]
            else:
                self.attrs.pop(req.key, None)

    def _close(self, reason: str, frame: Optional[Frame] = None,
               ended_token: Optional[Token] = None) -> None:
        self.state = State.CLOSED
        self.close_reason = reason
        self.close_frame = frame
        self._deactivate()
        self._out.clear()
        self._events.append(Closed(reason, frame, ended_token))


def describe(frame: Frame) -> str:
    """A one-line description of a server frame, for messages and logs (never a token)."""
    m = frame.message
    if isinstance(m, GeneralFailure):
        return f"GENERAL_FAILURE {name_of(m.code)}: {m.message}"
    if isinstance(m, DisconnectAck):
        return f"DISCONNECT_ACK {name_of(m.reason)}"
    if isinstance(m, SessionRevoked):
        who = " ".join(x for x in (m.by_client, m.by_platform, m.by_address) if x)
        return f"SESSION_REVOKED {name_of(m.reason)}" + (f" by {who}" if who else "")
    if isinstance(m, SessionExpired):
        return f"SESSION_EXPIRED {name_of(m.reason)}"
    if isinstance(m, DuplicateSessionReply):
        return f"DUPLICATE_SESSION {m.session_id}: {m.message}"
    if isinstance(m, UnknownMessage):
        return f"opcode 0x{m.opcode:02x}"
    return str(m.OPCODE.name)


def describe_user_info(m: UserInfo) -> str:
    """``role: educator; profile: display_name=Alice A.`` (values shown as text when they
    are UTF-8, as a bytes repr otherwise)."""

    def shown(v: bytes) -> str:
        try:
            return v.decode("utf-8")
        except UnicodeDecodeError:
            return repr(v)

    role = m.app_role or "(none)"
    profile = ", ".join(f"{a.key}={shown(a.value)}" for a in m.profile) or "(empty)"
    return f"role: {role}; profile: {profile}"


def describe_record(r: AuditRecord) -> str:
    """One line for an audit record: seq, time, kind and reason, the subject, the actor,
    the note (a record holds no secret: no token, no password)."""
    head = f"#{r.seq} {_fmt_time(r.at)} {audit_kind_name(r.kind)}"
    if r.reason_name:
        head += f" {r.reason_name}"

    def who(user_id: int, username: str, session_id: int, address: str, client: str,
            platform: str) -> str:
        parts = [username or (f"user {user_id}" if user_id else "")]
        if session_id:
            parts.append(f"session {session_id}")
        parts += [address, client, platform]
        return " ".join(x for x in parts if x)

    text = head
    subject = who(r.user_id, r.username, r.session_id, r.address, r.client, r.platform)
    if subject:
        text += f": {subject}"
    a = r.actor
    if a:
        text += f"; by {who(a.user_id, a.username, a.session_id, a.address, a.client, a.platform)}"
    if r.note:
        text += f" ({r.note})"
    return text


# --------------------------------------------------------------------------------------
# The token file
# --------------------------------------------------------------------------------------


class TokenFile:
    """A session token kept in a file readable only by its owner (0600), as 64 hex digits
    (the format examples/client.rs uses)."""

    def __init__(self, path: Union[str, os.PathLike]):
        self.path = os.fspath(path)

    def load(self) -> Optional[Token]:
        try:
            with open(self.path, encoding="ascii") as f:
                return Token.from_hex(f.read())
        except FileNotFoundError:
            return None
        except (ValueError, UnicodeDecodeError):
            log.warning("%s does not hold a token; ignoring it", self.path)
            return None

    def save(self, token: Token) -> None:
        """Writes the token atomically: a new file created with mode 0600, then renamed."""
        tmp = f"{self.path}.tmp{os.getpid()}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            # The umask cannot widen 0600, but an older file of that name kept its mode.
            if hasattr(os, "fchmod"):
                os.fchmod(fd, 0o600)
            os.write(fd, (token.hex() + "\n").encode("ascii"))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)

    def delete(self, only: Optional[Token] = None) -> None:
        """Removes the file; with ``only``, only if it still holds that token (another
        process may have stored a newer one)."""
        if only is not None and self.load() != only:
            return
        try:
            os.remove(self.path)
        except FileNotFoundError:
            pass


# --------------------------------------------------------------------------------------
# The client: socket, I/O thread, blocking calls with timeouts
# --------------------------------------------------------------------------------------


class _Waiter:
    __slots__ = ("done", "frame", "error")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.frame: Optional[Frame] = None
        self.error: Optional[BaseException] = None


def parse_addr(addr: str) -> Tuple[str, int]:
    """``host:port`` or ``[v6]:port``."""
    host, sep, port = addr.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"address {addr!r} is not host:port")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, int(port)


class Client:
    """One connection to sessiond. Every method that waits takes at most ``timeout``
    seconds (the constructor's ``request_timeout`` by default) and raises RequestTimeout
    after it. Methods may be called from any thread, except from the push callback.

    Pushes (SESSION_REVOKED, SESSION_EXPIRED, NEW_LOGIN, SERVER_SHUTDOWN, DISCONNECT_ACK
    pushes, ...) are passed to ``on_push(frame)`` on the I/O thread (it must return
    quickly and must not call this client's waiting methods) and kept for ``wait_push``.

    With ``token_file``, a login stores the token there (0600), a logout, SESSION_INVALID,
    SESSION_EXPIRED or SESSION_REVOKED (but ``TAKEN_OVER``) deletes it, and
    ``resume_from_file`` / ``start_session`` use it.
    """

    def __init__(self, sock: socket.socket, *, peer: str, request_timeout: float = 10.0,
                 on_push: Optional[Callable[[Frame], None]] = None,
                 token_file: Union[None, str, os.PathLike, TokenFile] = None,
                 client_name: str = CLIENT_NAME, platform: Optional[str] = None,
                 max_frame: int = MAX_SERVER_FRAME):
        self.peer = peer
        self.request_timeout = request_timeout
        self.client_name = client_name
        self.platform = platform if platform is not None else _default_platform()
        self.token_file = (token_file if isinstance(token_file, TokenFile) or token_file is None
                           else TokenFile(token_file))
        self._on_push = on_push
        self._sock = sock
        self._core = ClientCore(max_frame)
        self._lock = threading.Lock()
        self._waiters: Dict[int, _Waiter] = {}
        self._pushes: Deque[Frame] = deque(maxlen=1000)
        self._push_cv = threading.Condition()
        self._closed: Optional[ConnectionClosed] = None
        self._closed_event = threading.Event()
        self._stop_reason: Optional[str] = None
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        sock.setblocking(False)
        self._thread = threading.Thread(target=self._io_loop, name=f"sessiond-io {peer}",
                                        daemon=True)
        self._thread.start()

    # ---- connecting ----

    @classmethod
    def connect(cls, addr: str, *, timeout: float = 5.0, tls_ca: Optional[str] = None,
                tls_hostname: Optional[str] = None, **kw: Any) -> Client:
        """Connects to ``host:port``. With ``tls_ca`` (a PEM file), speaks TLS and verifies
        the server's certificate against that CA and ``tls_hostname`` (default: the host).
        Raises OSError (ssl.SSLError for TLS failures) when it cannot connect."""
        host, port = parse_addr(addr)
        sock = socket.create_connection((host, port), timeout=timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if tls_ca is not None:
                ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=tls_ca)
                ctx.minimum_version = ssl.TLSVersion.TLSv1_2
                sock = ctx.wrap_socket(sock, server_hostname=tls_hostname or host)
                # wrap_socket did the handshake, bounded by the socket's timeout.
        except BaseException:
            sock.close()
            raise
        return cls(sock, peer=addr, **kw)

    # ---- state ----

    @property
    def state(self) -> State:
        with self._lock:
            return self._core.state

    @property
    def session(self) -> Optional[SessionInfo]:
        """The session this connection is logged in to, or None."""
        with self._lock:
            return self._core.session

    @property
    def token(self) -> Optional[Token]:
        with self._lock:
            return self._core.token

    @property
    def attrs(self) -> Dict[str, bytes]:
        """The session's attributes as this connection last heard them (a copy): after a
        resume, those of the ATTRS push that follows SESSION_VALID (it comes before the
        reply to any later request; ``wait_push(Attrs, ...)`` waits for it), then kept up to
        date by ``set_attr``, ``remove_attr`` and ``get_attrs``. An administrator's change
        (ADMIN_SET_ATTR from another connection) is not told: ``get_attrs`` asks."""
        with self._lock:
            return dict(self._core.attrs)

    @property
    def user_info(self) -> Optional[UserInfo]:
        """The account's application role and profile as this connection last heard them:
        the USER_INFO push that follows LOGIN_SUCCESS and SESSION_VALID (it comes before
        the reply to any later request; ``wait_push(UserInfo, ...)`` waits for it), then
        kept up to date by ``set_profile``, ``remove_profile``, ``get_profile`` and this
        connection's own administrative changes to its account. None while logged out, and
        when the account has neither a role nor a profile (the server sends no push then).
        Another connection's change is not told: ``get_profile`` asks."""
        with self._lock:
            return self._core.user_info

    @property
    def heartbeats_acked(self) -> int:
        with self._lock:
            return self._core.heartbeats_acked

    @property
    def closed(self) -> Optional[ConnectionClosed]:
        """Why the connection closed (the exception that waits raise now), or None."""
        return self._closed

    def wait_closed(self, timeout: float) -> Optional[ConnectionClosed]:
        """Waits at most ``timeout`` seconds for the connection to close; why, or None."""
        self._closed_event.wait(timeout)
        return self._closed

    def wait_push(self, *types: Type[Message], timeout: float) -> Optional[Frame]:
        """The oldest push received (of one of ``types``, if given), removed from the queue;
        None if none comes within ``timeout`` seconds or the connection closed first."""
        deadline = time.monotonic() + timeout
        with self._push_cv:
            while True:
                for f in self._pushes:
                    if not types or isinstance(f.message, types):
                        self._pushes.remove(f)
                        return f
                left = deadline - time.monotonic()
                if left <= 0 or self._closed is not None:
                    return None
                self._push_cv.wait(left)

    # ---- authentication ----

    def login(self, username: str, password: str, *, timeout: Optional[float] = None
              ) -> LoginSuccess:
        """LOGIN_REQUEST. Returns LOGIN_SUCCESS (``.token``, ``.session``); raises
        LoginFailed. Heartbeats start at the interval the server gives."""
        f = self._request(LoginRequest(username, password, self.client_name, self.platform),
                          timeout)
        m = f.message
        if isinstance(m, LoginSuccess):
            if self.token_file is not None:
                self.token_file.save(m.token)
            return m
        if isinstance(m, LoginFailure):
            raise LoginFailed(m.reason, m.retry_after_ms, m.message)
        raise self._unexpected(f)

    def register(self, username: str, password: str, email: str, *,
                 timeout: Optional[float] = None) -> RegisterSuccess:
        """REGISTER_REQUEST; raises RegisterFailed. The connection stays logged out."""
        f = self._request(RegisterRequest(username, password, email), timeout)
        m = f.message
        if isinstance(m, RegisterSuccess):
            return m
        if isinstance(m, RegisterFailure):
            raise RegisterFailed(m.reason, m.message)
        raise self._unexpected(f)

    def resume(self, token: Token, *, timeout: Optional[float] = None) -> SessionInfo:
        """VERIFY_SESSION. Raises SessionInvalid (the token is dead; a token file holding
        it is deleted) or DuplicateSession (the connection is closed; keep the token)."""
        f = self._request(VerifySession(token, self.client_name, self.platform), timeout)
        m = f.message
        if isinstance(m, SessionValid):
            return m.session
        if isinstance(m, SessionInvalidReply):
            if self.token_file is not None:
                self.token_file.delete(only=token)
            raise SessionInvalid(m.reason, m.message)
        if isinstance(m, DuplicateSessionReply):
            raise DuplicateSession(m.session_id, m.message, f)
        raise self._unexpected(f)

    def resume_from_file(self, *, timeout: Optional[float] = None) -> Optional[SessionInfo]:
        """Resumes the session of the token file; None when it holds no token."""
        if self.token_file is None:
            raise ValueError("this client has no token file")
        token = self.token_file.load()
        if token is None:
            return None
        return self.resume(token, timeout=timeout)

    def start_session(self, username: str, password: Callable[[], str], *,
                      timeout: Optional[float] = None) -> SessionInfo:
        """Resumes the token file's session, or (no token, or a dead one) logs in with
        ``password()`` (called only then)."""
        try:
            info = self.resume_from_file(timeout=timeout)
        except SessionInvalid as e:
            log.info("stored session is gone (%s); logging in", name_of(e.reason))
            info = None
        if info is not None:
            return info
        return self.login(username, password(), timeout=timeout).session

    def logout(self, *, timeout: Optional[float] = None) -> int:
        """LOGOUT_REQUEST: ends the session for good; returns its id. The connection stays
        open, logged out (log in again or disconnect)."""
        token = self._token()
        f = self._request(LogoutRequest(token), timeout)
        if isinstance(f.message, LogoutSuccess):
            if self.token_file is not None:
                self.token_file.delete(only=token)
            return f.message.session_id
        raise self._unexpected(f)

    def heartbeat(self, *, timeout: Optional[float] = None) -> int:
        """An extra HEARTBEAT (the I/O thread sends them anyway); the server's time."""
        f = self._request(Heartbeat(self._token()), timeout)
        if isinstance(f.message, HeartbeatAck):
            return f.message.server_time
        raise self._unexpected(f)

    # ---- session management (protocol.md 5.21 to 5.26) ----

    def list_sessions(self, offset: int = 0, limit: int = 0, *,
                      timeout: Optional[float] = None) -> SessionList:
        """The caller's live sessions, oldest first (``limit`` 0: a full page)."""
        return self._list(ListSessions(self._token(), offset, limit), timeout)

    def revoke_session(self, session_id: int, *, timeout: Optional[float] = None) -> int:
        """Ends one of the caller's sessions (FORBIDDEN for any other id)."""
        return self._done(RevokeSession(self._token(), session_id), timeout)

    def logout_all(self, scope: LogoutScope = LogoutScope.OTHERS, *,
                   timeout: Optional[float] = None) -> int:
        """Ends every other session (OTHERS) or every one (ALL: this connection is then
        logged out, as after ``logout``); how many ended."""
        token = self._token()
        n = self._done(LogoutAll(token, LogoutScope(scope)), timeout)
        if scope == LogoutScope.ALL and self.token_file is not None:
            self.token_file.delete(only=token)
        return n

    def change_password(self, old: str, new: str, *, timeout: Optional[float] = None) -> int:
        """CHANGE_PASSWORD; how many other sessions it ended. ServerError WRONG_PASSWORD,
        INVALID_ARGUMENT (too short) or THROTTLED."""
        return self._done(ChangePassword(self._token(), old, new), timeout)

    # ---- the audit trail (protocol.md 5.27, 5.28, 5.36, 5.37) ----

    def audit_query(self, cursor: int = 0, limit: int = 0, username: str = "", kind: int = 0,
                    since: int = 0, until: int = 0, *,
                    timeout: Optional[float] = None) -> AuditPage:
        """AUDIT_QUERY: audit entries oldest first, their meaning in ``detail`` text (new
        code uses ``audit_search``). ``username`` "": your own (a user) or everyone's (an
        admin); ``kind`` 0: all kinds; ``since`` / ``until`` in Unix ms (``until`` 0: no
        bound); ``cursor``: 0 or the last page's ``next_cursor`` (0 there: nothing more).
        A page may be short or empty with a non-zero ``next_cursor`` (the server scans at
        most 20,000 records per query). ServerError FORBIDDEN (a user naming someone
        else), NOT_FOUND (an admin naming nobody), INVALID_ARGUMENT (an unknown kind)."""
        m = AuditQuery(self._token(), username, kind, since, until, cursor, limit)
        f = self._request(m, timeout)
        if isinstance(f.message, AuditPage):
            return f.message
        raise self._unexpected(f)

    def audit_search(self, newest_first: bool = False, cursor: int = 0, limit: int = 0,
                     username: str = "", kind: int = 0, since: int = 0, until: int = 0, *,
                     timeout: Optional[float] = None) -> AuditRecords:
        """AUDIT_SEARCH: typed records (``AuditRecord``: reason, device, actor), with the
        filters and errors of ``audit_query``. Oldest first from ``cursor`` on, or with
        ``newest_first`` the records below ``cursor`` (0: from the newest), so the newest N
        are ``audit_search(True, limit=N)``. ``limit`` 0 or at most 50 (MAX_RECORDS; the
        server gives no more). Continue with ``cursor=page.next_cursor`` and the same
        order until it is 0."""
        order = AuditOrder.NEWEST_FIRST if newest_first else AuditOrder.OLDEST_FIRST
        m = AuditSearch(self._token(), username, kind, since, until, cursor, limit, order)
        f = self._request(m, timeout)
        if isinstance(f.message, AuditRecords):
            return f.message
        raise self._unexpected(f)

    # ---- session attributes (protocol.md 5.39 to 5.43) ----

    def set_attr(self, key: str, value: bytes, *, timeout: Optional[float] = None) -> None:
        """ATTR_SET: sets ``key`` (1 to 64 bytes of UTF-8) to ``value`` (up to 3904 bytes
        of anything), durable when it returns. ServerError LIMIT_EXCEEDED when the session
        would hold more than 64 attributes or 4096 bytes of keys and values."""
        self._done(AttrSet(self._token(), key, bytes(value)), timeout)

    def remove_attr(self, key: str, *, timeout: Optional[float] = None) -> bool:
        """ATTR_REMOVE; whether ``key`` was set."""
        return self._done(AttrRemove(self._token(), key), timeout) > 0

    def get_attrs(self, key: str = "", *, timeout: Optional[float] = None) -> Dict[str, bytes]:
        """ATTR_GET: every attribute of the session (``key`` empty), or the one named
        (an empty dict when it is not set)."""
        f = self._request(AttrGet(self._token(), key), timeout)
        if isinstance(f.message, Attrs):
            return f.message.as_dict()
        raise self._unexpected(f)

    def admin_set_attr(self, session_id: int, key: str, value: Optional[bytes], *,
                       timeout: Optional[float] = None) -> int:
        """ADMIN_SET_ATTR: sets (``value`` bytes) or removes (None) an attribute of any
        session; how many changed (0: removing a key that was not set). ServerError
        NOT_FOUND, FORBIDDEN or LIMIT_EXCEEDED. A connection bound to it is not told."""
        m = AdminSetAttr(self._token(), session_id, key, value is None,
                         b"" if value is None else bytes(value))
        return self._done(m, timeout)

    # ---- profiles and application roles (protocol.md 5.44 to 5.48) ----

    def set_profile(self, key: str, value: bytes, *, timeout: Optional[float] = None) -> bool:
        """PROFILE_SET: sets ``key`` (1 to 64 bytes of UTF-8) of the caller's own profile to
        ``value`` (up to 3904 bytes of anything), durable when it returns; whether anything
        changed. ServerError LIMIT_EXCEEDED past 64 attributes or 4096 bytes."""
        return self._done(ProfileSet(self._token(), key, False, bytes(value)), timeout) > 0

    def remove_profile(self, key: str, *, timeout: Optional[float] = None) -> bool:
        """PROFILE_SET with ``remove``; whether ``key`` was set."""
        return self._done(ProfileSet(self._token(), key, True, b""), timeout) > 0

    def get_profile(self, key: str = "", *, timeout: Optional[float] = None) -> UserInfo:
        """PROFILE_GET: the caller's application role and whole profile (``key`` empty), or
        only the attribute named (none when it is not set)."""
        f = self._request(ProfileGet(self._token(), key), timeout)
        if isinstance(f.message, UserInfo):
            return f.message
        raise self._unexpected(f)

    def admin_set_profile(self, username: str, key: str, value: Optional[bytes], *,
                          timeout: Optional[float] = None) -> int:
        """ADMIN_SET_PROFILE: sets (``value`` bytes) or removes (None) an attribute of any
        account's profile; how many changed. ServerError NOT_FOUND, FORBIDDEN or
        LIMIT_EXCEEDED. Sessions of that account are not told."""
        m = AdminSetProfile(self._token(), username, key, value is None,
                            b"" if value is None else bytes(value))
        return self._done(m, timeout)

    def admin_set_app_role(self, username: str, role: str, *,
                           timeout: Optional[float] = None) -> int:
        """ADMIN_SET_APP_ROLE: gives the account one of the server's application roles
        (``--role``), or none (""); 1 if it changed, 0 if it already had it. ServerError
        INVALID_ARGUMENT for a role the server does not declare, NOT_FOUND, FORBIDDEN.
        Open sessions are not told; their next login or resume gets it in USER_INFO."""
        return self._done(AdminSetAppRole(self._token(), username, role), timeout)

    # ---- administration (protocol.md 5.29 to 5.34) ----

    def admin_list_users(self, offset: int = 0, limit: int = 0, *,
                         timeout: Optional[float] = None) -> UserList:
        """ADMIN_LIST_USERS: a page of the accounts, by id, with both roles."""
        f = self._request(AdminListUsers(self._token(), offset, limit), timeout)
        if isinstance(f.message, UserList):
            return f.message
        raise self._unexpected(f)

    def admin_list_sessions(self, username: str = "", offset: int = 0, limit: int = 0, *,
                            timeout: Optional[float] = None) -> SessionList:
        """Every session, or one user's (oldest first)."""
        return self._list(AdminListSessions(self._token(), username, offset, limit), timeout)

    def admin_revoke_session(self, session_id: int, *, timeout: Optional[float] = None) -> int:
        return self._done(AdminRevokeSession(self._token(), session_id), timeout)

    def admin_logout_user(self, username: str, *, timeout: Optional[float] = None) -> int:
        return self._done(AdminLogoutUser(self._token(), username), timeout)

    def admin_suspend_user(self, username: str, *, timeout: Optional[float] = None) -> int:
        return self._done(AdminSuspendUser(self._token(), username), timeout)

    def admin_unsuspend_user(self, username: str, *, timeout: Optional[float] = None) -> int:
        return self._done(AdminUnsuspendUser(self._token(), username), timeout)

    def admin_set_role(self, username: str, role: Role, *,
                       timeout: Optional[float] = None) -> int:
        """1 if the role changed, 0 if it already was ``role``."""
        return self._done(AdminSetRole(self._token(), username, Role(role)), timeout)

    def admin_set_password(self, username: str, password: str, *,
                           timeout: Optional[float] = None) -> int:
        """ADMIN_SET_PASSWORD: sets the account's password and ends every session of it
        (this one too, when it is your own: the reply comes first); how many ended.
        ServerError INVALID_ARGUMENT (too short), NOT_FOUND, FORBIDDEN or THROTTLED."""
        return self._done(AdminSetPassword(self._token(), username, password), timeout)

    def admin_stats(self, *, timeout: Optional[float] = None) -> Dict[str, int]:
        """The server's named counters (names it does not know are kept as they come)."""
        f = self._request(AdminStats(self._token()), timeout)
        if isinstance(f.message, Stats):
            return f.message.as_dict()
        raise self._unexpected(f)

    # ---- ending ----

    def disconnect(self, *, timeout: Optional[float] = None) -> None:
        """DISCONNECT_REQUEST, waits for DISCONNECT_ACK, closes. The session stays valid,
        detached, and can be resumed. Does nothing on a closed connection."""
        if self._closed is None:
            try:
                f = self._request(DisconnectRequest(), timeout)
                if not isinstance(f.message, DisconnectAck):
                    log.warning("DISCONNECT_REQUEST answered with %s", describe(f))
            except (ConnectionClosed, StateError):
                pass
            except RequestTimeout:
                log.warning("no DISCONNECT_ACK in time; closing anyway")
        self.close()

    def close(self) -> None:
        """Closes the connection at once (no DISCONNECT_REQUEST) and stops the I/O thread."""
        with self._lock:
            if self._stop_reason is None:
                self._stop_reason = "closed by the client"
        self._wake()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout=5.0)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.disconnect(timeout=min(self.request_timeout, 2.0))

    # ---- requests ----

    def _token(self) -> Token:
        with self._lock:
            if self._core.state is State.CLOSED:
                raise self._closed or ConnectionClosed(self._core.close_reason or "closed")
            if self._core.token is None or self._core.state is not State.ACTIVE:
                raise StateError(f"not logged in (the connection is {self._core.state.value})")
            return self._core.token

    def _request(self, message: Message, timeout: Optional[float]) -> Frame:
        """Sends ``message`` and waits for its reply. GENERAL_FAILURE and SESSION_EXPIRED
        replies are raised (ServerError, SessionEnded)."""
        if threading.current_thread() is self._thread:
            raise RuntimeError("a push callback cannot wait for a reply (it would deadlock)")
        waiter = _Waiter()
        with self._lock:
            if self._core.state is State.CLOSED and self._closed is not None:
                raise self._closed
            rid = self._core.start_request(message, time.monotonic())
            self._waiters[rid] = waiter
        self._wake()
        limit = self.request_timeout if timeout is None else timeout
        if not waiter.done.wait(limit):
            with self._lock:
                self._waiters.pop(rid, None)
            # The reply may still come, and change the connection's state (a login that
            # succeeds late): nothing can be trusted about it now.
            self._abort(f"no reply to {message.OPCODE.name} within {limit:g} s")
            raise RequestTimeout(f"no reply to {message.OPCODE.name} within {limit:g} s; "
                                 "the connection is closed")
        if waiter.error is not None:
            raise waiter.error
        frame = waiter.frame
        assert frame is not None
        m = frame.message
        if isinstance(m, GeneralFailure):
            raise ServerError(m.code, m.message, frame.is_fatal)
        if isinstance(m, SessionExpired):
            # protocol.md 6: an expired session is answered with SESSION_EXPIRED (FATAL).
            raise self._wait_closed_as(SessionEnded(describe(frame), frame))
        return frame

    def _wait_closed_as(self, fallback: ConnectionClosed) -> ConnectionClosed:
        self._closed_event.wait(1.0)
        return self._closed or fallback

    def _unexpected(self, frame: Frame) -> ProtocolError:
        # protocol.md 8: "treat a reply with an unknown opcode as a failed request".
        return ProtocolError(f"unexpected reply: {describe(frame)}")

    def _list(self, message: Message, timeout: Optional[float]) -> SessionList:
        f = self._request(message, timeout)
        if isinstance(f.message, SessionList):
            return f.message
        raise self._unexpected(f)

    def _done(self, message: Message, timeout: Optional[float]) -> int:
        f = self._request(message, timeout)
        if isinstance(f.message, Done):
            return f.message.affected
        raise self._unexpected(f)

    # ---- the I/O thread ----

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"\0")
        except (BlockingIOError, OSError):
            pass  # already awake, or shut down

    def _abort(self, reason: str) -> None:
        with self._lock:
            if self._stop_reason is None:
                self._stop_reason = reason
        self._wake()

    def _io_loop(self) -> None:
        sock = self._sock
        out = bytearray()
        sel = selectors.DefaultSelector()
        interest = selectors.EVENT_READ
        sel.register(sock, interest)
        sel.register(self._wake_r, selectors.EVENT_READ)
        try:
            while True:
                now = time.monotonic()
                with self._lock:
                    if self._stop_reason is not None:
                        self._core.connection_lost(self._stop_reason)
                    else:
                        self._core.handle_timeout(now)
                    out += self._core.take_output()
                    deadline = self._core.poll_timeout()
                    done = self._core.state is State.CLOSED
                self._dispatch()
                if done:
                    return
                if out:
                    self._write(sock, out)
                want = selectors.EVENT_READ | (selectors.EVENT_WRITE if out else 0)
                if want != interest:
                    sel.modify(sock, want)
                    interest = want
                wait = None if deadline is None else max(0.0, deadline - time.monotonic())
                if isinstance(sock, ssl.SSLSocket) and sock.pending():
                    wait = 0.0  # decrypted bytes the selector cannot see
                sel.select(wait)
                self._drain_wake()
                data, eof, error = self._read(sock)
                with self._lock:
                    if data:
                        self._core.receive(data, time.monotonic())
                    if eof or error:
                        self._core.connection_lost(
                            error or "the server closed the connection")
        except Exception as e:  # a bug here must not leave callers waiting
            log.exception("sessiond I/O thread failed")
            with self._lock:
                self._core.connection_lost(f"client I/O thread failed: {e!r}")
            self._dispatch()
        finally:
            sel.close()
            for s in (sock, self._wake_r, self._wake_w):
                try:
                    s.close()
                except OSError:
                    pass
            # Whatever happened, nobody may wait forever.
            self._finish(ConnectionClosed(self._core.close_reason or "closed"))

    def _write(self, sock: socket.socket, out: bytearray) -> None:
        while out:
            try:
                n = sock.send(out)
            except (BlockingIOError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
                return
            except InterruptedError:
                continue
            except OSError as e:
                with self._lock:
                    self._core.connection_lost(f"write failed: {e}")
                out.clear()
                return
            del out[:n]

    @staticmethod
    def _read(sock: socket.socket) -> Tuple[bytes, bool, Optional[str]]:
        chunks: List[bytes] = []
        for _ in range(64):  # bounded; the selector (or pending()) brings us back
            try:
                d = sock.recv(65536)
            except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
                break
            except InterruptedError:
                continue
            except ssl.SSLZeroReturnError:
                return b"".join(chunks), True, None
            except OSError as e:
                return b"".join(chunks), False, f"read failed: {e}"
            if not d:
                return b"".join(chunks), True, None
            chunks.append(d)
        return b"".join(chunks), False, None

    def _drain_wake(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except (BlockingIOError, OSError):
            pass

    def _dispatch(self) -> None:
        """Hands the core's events to waiters, the push queue and the callback, in order."""
        while True:
            with self._lock:
                ev = self._core.poll_event()
                waiter = self._waiters.pop(ev.request_id, None) if isinstance(ev, Reply) else None
            if ev is None:
                return
            if isinstance(ev, Reply):
                if waiter is not None:
                    waiter.frame, waiter.error = ev.frame, ev.error
                    waiter.done.set()
            elif isinstance(ev, Push):
                self._deliver_push(ev.frame)
            else:
                self._on_closed(ev)

    def _deliver_push(self, frame: Frame) -> None:
        log.debug("push: %s", describe(frame))
        with self._push_cv:
            self._pushes.append(frame)
            self._push_cv.notify_all()
        if self._on_push is not None:
            try:
                self._on_push(frame)
            except Exception:
                log.exception("the push callback failed")

    def _on_closed(self, ev: Closed) -> None:
        if ev.ended_token is not None and self.token_file is not None:
            # protocol.md 4, "What a client does": on SESSION_REVOKED or SESSION_EXPIRED
            # "delete the token".
            self.token_file.delete(only=ev.ended_token)
        m = ev.frame.message if ev.frame is not None else None
        if isinstance(m, (SessionRevoked, SessionExpired)):
            err: ConnectionClosed = SessionEnded(ev.reason, ev.frame)
        else:
            err = ConnectionClosed(ev.reason, ev.frame)
        log.debug("connection to %s closed: %s", self.peer, ev.reason)
        self._finish(err)

    def _finish(self, err: ConnectionClosed) -> None:
        with self._lock:
            if self._closed is None:
                self._closed = err
            waiters = list(self._waiters.values())
            self._waiters.clear()
        for w in waiters:
            w.error = self._closed
            w.done.set()
        self._closed_event.set()
        with self._push_cv:
            self._push_cv.notify_all()


def _default_platform() -> str:
    return f"{_platform.system().lower()} python{_platform.python_version()}"[:MAX_DEVICE]


def connect_and_resume(addr: str, token_file: Union[str, os.PathLike], *, attempts: int = 5,
                       first_delay: float = 0.5, max_delay: float = 10.0,
                       **kw: Any) -> Tuple[Client, SessionInfo]:
    """Reconnects with backoff and jitter (protocol.md 4: "On a network error do not log
    out: reconnect with backoff and resume") and resumes the token file's session.
    SessionInvalid if the session is gone; the last OSError after ``attempts`` tries."""
    delay = first_delay
    last: Optional[BaseException] = None
    for attempt in range(attempts):
        if attempt:
            time.sleep(delay + random.uniform(0, delay))
            delay = min(delay * 2, max_delay)
        try:
            c = Client.connect(addr, token_file=token_file, **kw)
        except OSError as e:
            last = e
            continue
        try:
            info = c.resume_from_file()
        except BaseException:
            c.close()
            raise
        if info is None:
            c.close()
            raise SessionInvalid(InvalidReason.UNKNOWN, "no token in the token file")
        return c, info
    assert last is not None
    raise last


# --------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------


def _fmt_time(ms: int) -> str:
    if ms == 0:
        return "never"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ms / 1000)) + "Z"


def _print_push(frame: Frame) -> None:
    m = frame.message
    if isinstance(m, NewLogin):
        print(f"! new login: session {m.session_id} from {m.client} {m.platform} "
              f"{m.address} at {_fmt_time(m.at)}", flush=True)
    elif isinstance(m, Attrs):
        shown = " ".join(f"{a.key}={a.value!r}" for a in m.attrs)
        print(f"! session attributes: {shown}", flush=True)
    elif isinstance(m, UserInfo):
        print(f"! {describe_user_info(m)}", flush=True)
    elif isinstance(m, ServerShutdown):
        print(f"! server shutting down: {m.message} (reconnect after "
              f"{m.reconnect_after_ms} ms)", flush=True)
    else:
        print(f"! {describe(frame)}", flush=True)


def _newest_records(c: Client, n: int, kind: int) -> List[AuditRecord]:
    """The newest ``n`` of the caller's records (everyone's for an admin), oldest first:
    pages newest first, following ``next_cursor``."""
    got: List[AuditRecord] = []
    cursor = 0
    # Bounded: full pages, plus the few short ones the server's scan limit can cause (it
    # holds 100,000 records and looks at 20,000 per query).
    for _ in range(n // MAX_RECORDS + 100):
        page = c.audit_search(True, cursor, min(n - len(got), MAX_RECORDS), kind=kind)
        got += page.records
        if len(got) >= n or page.next_cursor == 0:
            break
        if cursor and page.next_cursor >= cursor:
            raise ProtocolError(f"AUDIT_RECORDS cursor {page.next_cursor} is not below {cursor}")
        cursor = page.next_cursor
    return list(reversed(got[:n]))


def _audit_kind_arg(text: str) -> int:
    """``--kind``: a name of protocol.md 5.27 (``revoked``) or a number (0: all)."""
    if text.isdigit() and int(text) < 256:
        return int(text)
    try:
        return AuditKind[text.upper().replace("-", "_")]
    except KeyError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an audit kind (" + ", ".join(k.name.lower() for k in AuditKind)
            + ", or a number)") from None


def _positive(text: str) -> int:
    n = int(text)
    if n < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return n


def _print_sessions(lst: SessionList) -> None:
    for e in lst.sessions:
        marks = ",".join(n for n, on in (("current", e.current), ("connected", e.connected))
                         if on)
        print(f"session {e.session_id} {e.username} {e.client} {e.platform} {e.address} "
              f"created {_fmt_time(e.created)} active {_fmt_time(e.last_active)} "
              f"expires {_fmt_time(e.expires)}" + (f" ({marks})" if marks else ""))
    print(f"{len(lst.sessions)} of {lst.total} session(s)")


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description="sessiond client (protocol.md)")
    p.add_argument("--addr", default="127.0.0.1:7450", help="server host:port")
    p.add_argument("--tls-ca", metavar="PEM", help="speak TLS, verifying the server with this CA")
    p.add_argument("--tls-hostname", help="name the certificate must carry (default: the host)")
    p.add_argument("--token-file", default="sessiond.token",
                   help="where the session token is kept (mode 0600)")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for a reply")
    p.add_argument("--password-stdin", action="store_true",
                   help="read passwords from standard input, one a line, instead of prompting")
    p.add_argument("-v", "--verbose", action="store_true")
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("login", help="log in (password prompted) and keep the token")
    s.add_argument("user")
    s = sub.add_parser("register", help="create an account (password prompted)")
    s.add_argument("user")
    s.add_argument("email")
    sub.add_parser("whoami", help="resume the stored session and show it")
    s = sub.add_parser("watch", help="resume, heartbeat and print pushes")
    s.add_argument("--seconds", type=float, default=60.0)
    sub.add_parser("logout", help="end the stored session")
    sub.add_parser("sessions", help="list my sessions")
    s = sub.add_parser("revoke", help="end one of my sessions")
    s.add_argument("session_id", type=int)
    s = sub.add_parser("logout-all", help="end my other sessions (--all: this one too)")
    s.add_argument("--all", action="store_true")
    sub.add_parser("passwd", help="change my password (prompted)")
    s = sub.add_parser("audit", help="my newest audit records (an admin's: everyone's), "
                                     "printed oldest first")
    s.add_argument("--limit", type=_positive, default=20, metavar="N",
                   help="how many (default 20)")
    s.add_argument("--kind", type=_audit_kind_arg, default=0, metavar="K",
                   help="only this kind: a name (revoked, login_failed, ...) or a number")
    s = sub.add_parser("admin-sessions", help="admin: list sessions (of USER)")
    s.add_argument("user", nargs="?", default="")
    s = sub.add_parser("admin-revoke", help="admin: end any session")
    s.add_argument("session_id", type=int)
    for name in ("admin-logout", "suspend", "unsuspend"):
        s = sub.add_parser(name, help=f"admin: {name.replace('admin-', '')} a user")
        s.add_argument("user")
    s = sub.add_parser("set-role", help="admin: set a user's role")
    s.add_argument("user")
    s.add_argument("role", choices=["user", "admin"])
    sub.add_parser("stats", help="admin: server counters")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if a.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        c = Client.connect(a.addr, tls_ca=a.tls_ca, tls_hostname=a.tls_hostname,
                           token_file=a.token_file, request_timeout=a.timeout,
                           on_push=_print_push)
    except (OSError, ValueError) as e:
        print(f"cannot connect to {a.addr}: {e}", file=sys.stderr)
        return 3
    try:
        return _run_command(c, a)
    except (SessiondError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    finally:
        c.disconnect(timeout=2.0)


def _password(a: argparse.Namespace, prompt: str) -> str:
    if a.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return getpass.getpass(prompt)


def _run_command(c: Client, a: argparse.Namespace) -> int:
    if a.cmd == "login":
        s = c.login(a.user, _password(a, f"password for {a.user}: ")).session
        print(f"logged in as {s.username} ({s.role.name.lower()}), session {s.session_id}; "
              f"token saved to {a.token_file} (mode 0600)")
        return 0
    if a.cmd == "register":
        pw = _password(a, f"new password for {a.user}: ")
        if not a.password_stdin and getpass.getpass("again: ") != pw:
            print("the passwords differ", file=sys.stderr)
            return 2
        r = c.register(a.user, pw, a.email)
        print(f"registered {r.username} (user {r.user_id}); now: login {r.username}")
        return 0
    info = c.resume_from_file()
    if info is None:
        print(f"no session in {a.token_file}: log in first", file=sys.stderr)
        return 2
    if a.cmd == "whoami":
        print(f"session {info.session_id} of {info.username} ({info.role.name.lower()}), "
              f"expires {_fmt_time(info.session_expires)}")
    elif a.cmd == "watch":
        print(f"watching session {info.session_id}; Ctrl-C to stop", flush=True)
        closed = c.wait_closed(a.seconds)
        if closed is not None:
            print(f"connection closed: {closed}")
            return 1
    elif a.cmd == "logout":
        print(f"logged out of session {c.logout()}; token file removed")
    elif a.cmd == "sessions":
        _print_sessions(c.list_sessions())
    elif a.cmd == "revoke":
        print(f"{c.revoke_session(a.session_id)} session(s) ended")
    elif a.cmd == "logout-all":
        scope = LogoutScope.ALL if a.all else LogoutScope.OTHERS
        print(f"{c.logout_all(scope)} session(s) ended")
    elif a.cmd == "passwd":
        old = _password(a, "current password: ")
        new = _password(a, "new password: ")
        print(f"password changed; {c.change_password(old, new)} other session(s) ended")
    elif a.cmd == "audit":
        records = _newest_records(c, a.limit, a.kind)
        for r in records:
            print(describe_record(r))
        print(f"{len(records)} record(s)")
    elif a.cmd == "admin-sessions":
        _print_sessions(c.admin_list_sessions(a.user))
    elif a.cmd == "admin-revoke":
        print(f"{c.admin_revoke_session(a.session_id)} session(s) ended")
    elif a.cmd == "admin-logout":
        print(f"{c.admin_logout_user(a.user)} session(s) ended")
    elif a.cmd == "suspend":
        print(f"suspended; {c.admin_suspend_user(a.user)} session(s) ended")
    elif a.cmd == "unsuspend":
        c.admin_unsuspend_user(a.user)
        print("unsuspended")
    elif a.cmd == "set-role":
        changed = c.admin_set_role(a.user, Role.ADMIN if a.role == "admin" else Role.USER)
        print("role changed" if changed else "role unchanged")
    elif a.cmd == "stats":
        for k, v in c.admin_stats().items():
            print(f"{k} {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
