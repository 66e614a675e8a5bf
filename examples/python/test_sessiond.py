#!/usr/bin/env python3
"""Tests of sessiond.py (unittest, standard library only).

Three depths, like the server's own tests:

- the codec against protocol.md's hex examples (parsed from protocol.md itself, so the
  test follows the spec), and the sans-IO ClientCore with made-up times;
- the Client against small fake servers in this process (timeouts, a dead server);
- the Client against live sessiond servers, whose addresses come from the environment
  (tests/python_client.rs starts them and sets these):

  SESSIOND_ADDR, SESSIOND_ADMIN_PASSWORD      default policies (one session per account),
                                              heartbeat 250 ms / timeout 1500 ms
  SESSIOND_MULTI_ADDR, ..._MULTI_ADMIN_PASSWORD  --max-sessions-per-user 0, --role educator
  SESSIOND_TLS_ADDR, ..._TLS_ADMIN_PASSWORD,  TLS (--tls-cert/--tls-key), registration
  SESSIOND_TLS_CA, SESSIOND_TLS_OTHER_CA      closed; the CA that signed it, and another
  SESSIOND_SHORT_ADDR, ..._SHORT_ADMIN_PASSWORD, --session-lifetime 1s; the test stops it
  SESSIOND_SHORT_PID                          with SIGTERM at the end

  Without them the live tests are skipped, unless SESSIOND_REQUIRE_SERVERS=1 (then they
  fail). Run: ``python3 examples/python/test_sessiond.py`` (from anywhere).
"""

from __future__ import annotations

import os
import signal
import socket
import ssl
import stat
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from typing import Callable, Dict, Iterator, List, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # no __pycache__ left in the source tree

import sessiond as sd  # noqa: E402

PROTOCOL_MD = os.path.join(HERE, "..", "..", "protocol.md")
PASSWORD = "pa;ss word: 1"


def spec_examples() -> Dict[str, bytes]:
    """Every ```hex example=NAME block of protocol.md, by name."""
    out: Dict[str, bytes] = {}
    with open(PROTOCOL_MD, encoding="utf-8") as f:
        lines = iter(f.read().splitlines())
    for line in lines:
        if not line.startswith("```hex example="):
            continue
        name = line[len("```hex example="):].strip()
        data = bytearray()
        for body in lines:
            if body.startswith("```"):
                break
            data += bytes(int(tok, 16) for tok in body.split())
        assert name not in out, f"duplicate example {name}"
        out[name] = bytes(data)
    return out


ALL_EXAMPLES = spec_examples()
# protocol.md "WebSocket transport": `ws_NAME` is the frame example NAME in a WebSocket
# frame (this client speaks TCP; the framing is checked on its own below).
WS_EXAMPLES = {n: b for n, b in ALL_EXAMPLES.items() if n.startswith("ws_")}
EXAMPLES = {n: b for n, b in ALL_EXAMPLES.items() if not n.startswith("ws_")}
# The spec's example values (protocol.md 5, before 5.1).
T0 = 1767225600000  # 2026-01-01T00:00:00Z
T1 = T0 + 3600_000  # 01:00
TOKEN = sd.Token(bytes(range(32)))


def frame_of(name: str) -> sd.Frame:
    got = sd.decode_frame(EXAMPLES[name])
    assert got is not None, name
    frame, n = got
    assert n == len(EXAMPLES[name]), name
    return frame


class CodecTest(unittest.TestCase):
    """The codec against protocol.md's hex examples."""

    def test_every_spec_example_decodes_and_encodes_back_to_the_same_bytes(self) -> None:
        self.assertGreater(len(EXAMPLES), 30)
        for name, data in EXAMPLES.items():
            with self.subTest(example=name):
                frame = frame_of(name)
                self.assertNotIsInstance(frame.message, sd.UnknownMessage,
                                         f"{name}: opcode unknown")
                again = sd.encode_frame(frame.request_id, frame.message, frame.flags)
                self.assertEqual(again.hex(" "), data.hex(" "))

    def test_websocket_examples_carry_the_frame_examples(self) -> None:
        self.assertEqual(sorted(WS_EXAMPLES), ["ws_heartbeat", "ws_heartbeat_ack"])
        for name, data in WS_EXAMPLES.items():
            with self.subTest(example=name):
                self.assertEqual(data[0], 0x82)  # final, binary
                masked, length = data[1] & 0x80, data[1] & 0x7F
                if masked:
                    mask, body = data[2:6], data[6:]
                    body = bytes(b ^ mask[i % 4] for i, b in enumerate(body))
                else:
                    body = data[2:]
                self.assertEqual(length, len(body))
                self.assertEqual(body, EXAMPLES[name[len("ws_"):]])
                # The client's HEARTBEAT is masked, the server's answer is not.
                self.assertEqual(bool(masked), name == "ws_heartbeat")

    def test_every_message_of_the_client_has_a_spec_example(self) -> None:
        seen = {frame_of(n).opcode for n in EXAMPLES}
        missing = [sd.Opcode(op).name for op in sd.MESSAGES if op not in seen]
        self.assertEqual(missing, [])

    def test_spec_examples_decode_to_the_documented_values(self) -> None:
        info = sd.SessionInfo(7, 2, sd.Role.USER, "alice", T0, 0, T0, T0 + 86400_000,
                              1800_000, 5000, 15000)
        cases = {
            "login_request": (1, 0, sd.LoginRequest("alice", "pa;ss", "cli", "linux")),
            "login_success": (1, 0, sd.LoginSuccess(TOKEN, info)),
            "login_failure_throttled": (1, 0, sd.LoginFailure(
                sd.LoginFailureReason.THROTTLED, 2000, "too many attempts; retry later")),
            "heartbeat": (2, 0, sd.Heartbeat(TOKEN)),
            "heartbeat_ack": (2, 0, sd.HeartbeatAck(T0 + 5000)),
            "logout_success": (3, 0, sd.LogoutSuccess(7)),
            "disconnect_request": (4, 0, sd.DisconnectRequest()),
            "disconnect_ack": (4, 1, sd.DisconnectAck(sd.DisconnectReason.CLIENT_REQUEST)),
            "disconnect_ack_idle": (0, 3, sd.DisconnectAck(sd.DisconnectReason.IDLE_TIMEOUT)),
            "general_failure": (5, 0, sd.GeneralFailure(sd.ErrorCode.INVALID_TOKEN,
                                                        "unknown token")),
            "general_failure_too_large": (1, 1, sd.GeneralFailure(
                sd.ErrorCode.FRAME_TOO_LARGE, "frame too large")),
            "verify_session": (1, 0, sd.VerifySession(TOKEN, "cli", "linux")),
            "session_invalid": (1, 0, sd.SessionInvalidReply(sd.InvalidReason.REVOKED,
                                                             "session revoked")),
            "register_request": (1, 0, sd.RegisterRequest("carol", "s3cret;pass",
                                                          "carol@example.org")),
            "register_success": (1, 0, sd.RegisterSuccess(3, "carol")),
            "session_revoked": (0, 3, sd.SessionRevoked(7, sd.RevokeReason.NEW_LOGIN, "phone",
                                                        "android", "192.0.2.7:51000", T1)),
            "session_expired": (0, 3, sd.SessionExpired(7, sd.ExpiredReason.IDLE)),
            "new_login": (0, 2, sd.NewLogin(8, "phone", "android", "192.0.2.7:51000", T1)),
            "list_sessions": (1, 0, sd.ListSessions(TOKEN, 0, 20)),
            "revoke_session": (1, 0, sd.RevokeSession(TOKEN, 8)),
            "logout_all": (1, 0, sd.LogoutAll(TOKEN, sd.LogoutScope.OTHERS)),
            "change_password": (1, 0, sd.ChangePassword(TOKEN, "pa;ss", "new pass;word")),
            "done": (1, 0, sd.Done(2)),
            "admin_list_sessions": (1, 0, sd.AdminListSessions(TOKEN, "alice", 0, 0)),
            "admin_revoke_session": (1, 0, sd.AdminRevokeSession(TOKEN, 7)),
            "admin_suspend_user": (1, 0, sd.AdminSuspendUser(TOKEN, "alice")),
            "admin_set_role": (1, 0, sd.AdminSetRole(TOKEN, "alice", sd.Role.ADMIN)),
            "admin_set_password": (1, 0, sd.AdminSetPassword(TOKEN, "alice", "n3w;pass wd")),
            "admin_stats": (1, 0, sd.AdminStats(TOKEN)),
            "attr_set": (1, 0, sd.AttrSet(TOKEN, "game", b"456")),
            "general_failure_limit": (1, 0, sd.GeneralFailure(
                sd.ErrorCode.LIMIT_EXCEEDED, "a session holds at most 64 attributes")),
            "attr_remove": (1, 0, sd.AttrRemove(TOKEN, "game")),
            "attr_get": (1, 0, sd.AttrGet(TOKEN, "")),
            "attrs_push": (0, 2, sd.Attrs(7, [sd.Attr("game", b"456")])),
            "admin_set_attr": (1, 0, sd.AdminSetAttr(TOKEN, 7, "game", False, b"457")),
            "profile_set": (1, 0, sd.ProfileSet(TOKEN, "display_name", False, b"Alice A.")),
            "profile_get": (1, 0, sd.ProfileGet(TOKEN, "")),
            "user_info_push": (0, 2, sd.UserInfo(2, "educator",
                                                 [sd.Attr("display_name", b"Alice A.")])),
            "admin_set_profile": (1, 0, sd.AdminSetProfile(TOKEN, "alice", "display_name",
                                                           False, b"Alice A.")),
            "admin_set_app_role": (1, 0, sd.AdminSetAppRole(TOKEN, "alice", "educator")),
            "stats": (1, 0, sd.Stats([sd.StatCounter("connections", 12),
                                      sd.StatCounter("sessions_live", 40)])),
            "audit_query": (1, 0, sd.AuditQuery(TOKEN, "", 0, T0, 0, 0, 50)),
            "audit_page": (1, 0, sd.AuditPage(0, [sd.AuditEntry(
                1, T0, sd.AuditKind.SESSION_CREATED, 2, "alice", 7, "192.0.2.1:40000",
                "cli linux")])),
            "audit_search": (1, 0, sd.AuditSearch(TOKEN, "", 0, 0, 0, 0, 10,
                                                  sd.AuditOrder.NEWEST_FIRST)),
            "audit_records": (1, 0, sd.AuditRecords(12, [sd.AuditRecord(
                12, T1, sd.AuditKind.REVOKED, 1, 2, "alice", 7, "192.0.2.1:40000", "cli",
                "linux", sd.AuditActor(2, "alice", 8, "192.0.2.7:51000", "phone", "android"),
                "NEW_LOGIN")])),
        }
        for name, (rid, flags, message) in cases.items():
            with self.subTest(example=name):
                f = frame_of(name)
                self.assertEqual((f.request_id, f.flags, f.message), (rid, flags, message))
        entry = frame_of("session_list").message
        assert isinstance(entry, sd.SessionList)
        self.assertEqual(entry.total, 1)
        e = entry.sessions[0]
        self.assertEqual((e.session_id, e.current, e.connected, e.username, e.address),
                         (7, True, True, "alice", "192.0.2.1:40000"))
        self.assertEqual((e.created, e.last_active, e.expires),
                         (T0, T0 + 60_000, T0 + 86400_000))
        self.assertTrue(frame_of("server_busy").is_push and frame_of("server_busy").is_fatal)

    def test_audit_kinds_and_reasons_are_named_by_the_spec_tables(self) -> None:
        [r] = frame_of("audit_records").message.records  # type: ignore[attr-defined]
        self.assertIs(r.typed_reason, sd.RevokeReason.NEW_LOGIN)
        self.assertEqual((sd.audit_kind_name(r.kind), r.reason_name), ("revoked", "NEW_LOGIN"))
        self.assertTrue(r.actor)
        self.assertFalse(sd.AuditActor())
        self.assertEqual(sd.describe_record(r),
                         "#12 2026-01-01 01:00:00Z revoked NEW_LOGIN: alice session 7 "
                         "192.0.2.1:40000 cli linux; by alice session 8 192.0.2.7:51000 phone "
                         "android (NEW_LOGIN)")
        K = sd.AuditKind
        self.assertEqual((K(15), sd.audit_kind_name(K(15))),
                         (K.PASSWORD_CHANGE_FAILED, "password_change_failed"))
        self.assertEqual(sd.audit_kind_name(99), "kind 99")
        cases = [  # kind, reason, what it names (protocol.md 5.37)
            (K.REVOKED, 1, sd.RevokeReason.NEW_LOGIN),
            (K.REVOKED, 5, sd.RevokeReason.REVOKED_BY_ADMIN),
            (K.EXPIRED_IDLE, 1, sd.ExpiredReason.IDLE),
            (K.EXPIRED_ABSOLUTE, 2, sd.ExpiredReason.ABSOLUTE),
            (K.LOGIN_FAILED, 4, sd.LoginFailureReason.SUSPENDED),
            (K.PASSWORD_CHANGE_FAILED, 1, sd.LoginFailureReason.INVALID_CREDENTIALS),
            (K.PASSWORD_CHANGE_FAILED, 6, sd.LoginFailureReason.THROTTLED),
            (K.ROLE_CHANGED, 0, sd.Role.USER),  # 0 is a role here, not "none"
            (K.USER_CREATED, 1, sd.Role.ADMIN),
            (K.REVOKED, 0, None),  # a record from before records were typed
            (K.SESSION_CREATED, 0, None),
            (K.REVOKED, 0x77, 0x77),  # a code this client does not know
            (99, 3, 3),  # a kind it does not know
        ]
        for kind, reason, named in cases:
            with self.subTest(kind=kind, reason=reason):
                got = sd.audit_reason(kind, reason)
                self.assertEqual((type(got), got), (type(named), named))
        self.assertEqual(sd.audit_reason_name(K.PASSWORD_CHANGE_FAILED, 1), "INVALID_CREDENTIALS")
        self.assertEqual(sd.audit_reason_name(K.REVOKED, 0x77), "0x0077")
        self.assertEqual(sd.audit_reason_name(K.LOGGED_OUT, 0), "")

    def test_audit_messages_keep_unknown_kinds_and_check_their_limits(self) -> None:
        data = bytearray(EXAMPLES["audit_records"])
        kind_at = 14 + 8 + 2 + 16  # header, next_cursor, count, seq and at
        self.assertEqual(data[kind_at], 7)
        data[kind_at] = 99  # a kind from a later server: kept as its int
        got = sd.decode_frame(bytes(data))
        assert got is not None
        [r] = got[0].message.records  # type: ignore[attr-defined]
        self.assertEqual((r.kind, r.reason_name), (99, "0x0001"))
        self.assertNotIsInstance(r.kind, sd.AuditKind)
        # at most 50 records in AUDIT_RECORDS (100 entries in AUDIT_PAGE)
        [rec] = frame_of("audit_records").message.records  # type: ignore[attr-defined]
        with self.assertRaises(ValueError):
            sd.encode_frame(1, sd.AuditRecords(0, [rec] * 51))
        fifty_one = sd.encode_frame(1, sd.UnknownMessage(0x49, bytes(8) + (51).to_bytes(2, "big")))
        with self.assertRaises(sd.DecodeError) as e:
            sd.decode_frame(fifty_one)
        self.assertEqual(e.exception.code, sd.ErrorCode.MALFORMED_FRAME)
        # order is 0 or 1 (5.36)
        two: sd.AuditOrder = 2  # type: ignore[assignment]
        with self.assertRaises(ValueError):
            sd.encode_frame(1, sd.AuditSearch(TOKEN, order=two))
        search = bytearray(EXAMPLES["audit_search"])
        search[-1] = 2
        with self.assertRaises(sd.DecodeError):
            sd.decode_frame(bytes(search))

    def test_incomplete_input_is_not_an_error_and_a_stream_splits_anywhere(self) -> None:
        stream = b"".join(EXAMPLES[n] for n in ("login_success", "new_login", "heartbeat_ack",
                                                "session_revoked"))
        for n in range(len(EXAMPLES["login_success"])):
            self.assertIsNone(sd.decode_frame(stream[:n]))
        for split in range(0, len(stream) + 1, 7):
            d = sd.FrameDecoder()
            got: List[int] = []
            for chunk in (stream[:split], stream[split:]):
                d.feed(chunk)
                for _ in range(10):
                    f = d.next()
                    if f is None:
                        break
                    got.append(f.opcode)
            self.assertEqual(got, [0x02, 0x32, 0x05, 0x30], f"split at {split}")
            self.assertEqual(d.buffered, 0)

    def test_header_errors_are_found_before_the_payload_arrives(self) -> None:
        # protocol.md 2: the client that announces a 1 MiB heartbeat payload.
        huge = bytes.fromhex("53 44 01 04 00 00 00 00 00 01 00 10 00 00")
        with self.assertRaises(sd.DecodeError) as e:
            sd.decode_frame(huge)
        self.assertEqual(e.exception.code, sd.ErrorCode.FRAME_TOO_LARGE)
        self.assertTrue(e.exception.breaks_framing)
        # the largest frame a client must accept, and one byte more
        ok = sd.encode_frame(1, sd.UnknownMessage(0x7e, bytes(65_536 - 14)))
        self.assertIsNotNone(sd.decode_frame(ok))
        with self.assertRaises(sd.DecodeError):
            sd.decode_frame(sd.encode_frame(1, sd.UnknownMessage(0x7e, bytes(65_536 - 13))))
        for data, code in ((b"GE", sd.ErrorCode.BAD_MAGIC),
                           (b"SD\x02", sd.ErrorCode.UNSUPPORTED_VERSION)):
            with self.assertRaises(sd.DecodeError) as e:
                sd.decode_frame(data)
            self.assertEqual(e.exception.code, code)

    def test_payload_errors_skip_their_frame_and_keep_the_stream(self) -> None:
        def with_payload(opcode: int, payload: bytes) -> bytes:
            return sd.encode_frame(9, sd.UnknownMessage(opcode, payload))

        valid, listed = EXAMPLES["session_valid"], EXAMPLES["session_list"]
        bad = {  # name: (frame, error, its request id)
            "trailing byte": (with_payload(0x05, bytes(9)), sd.ErrorCode.MALFORMED_FRAME, 9),
            "too short": (with_payload(0x05, bytes(7)), sd.ErrorCode.MALFORMED_FRAME, 9),
            "string too long": (with_payload(0x0F, b"\x00\x01\x01\x01" + bytes(257)),
                                sd.ErrorCode.FIELD_TOO_LONG, 9),
            "invalid utf-8": (with_payload(0x0F, b"\x00\x01\x00\x02\xc3\x28"),
                              sd.ErrorCode.INVALID_UTF8, 9),
            "101 stats": (with_payload(0x58, (101).to_bytes(2, "big")),
                          sd.ErrorCode.MALFORMED_FRAME, 9),
            "role 2": (valid[:30] + b"\x02" + valid[31:], sd.ErrorCode.MALFORMED_FRAME, 1),
            "session flag 4": (listed[:28] + b"\x07" + listed[29:],
                               sd.ErrorCode.MALFORMED_FRAME, 1),
        }
        for name, (data, code, rid) in bad.items():
            with self.subTest(name):
                d = sd.FrameDecoder()
                d.feed(data + EXAMPLES["done"])
                with self.assertRaises(sd.DecodeError) as e:
                    d.next()
                self.assertEqual(e.exception.code, code)
                self.assertFalse(e.exception.breaks_framing)
                self.assertEqual(e.exception.request_id, rid)
                f = d.next()
                assert f is not None
                self.assertEqual(f.message, sd.Done(2))

    def test_unknown_codes_are_kept_and_encoding_checks_the_limits(self) -> None:
        unknown_code: sd.ErrorCode = 0x77  # type: ignore[assignment]
        f = sd.decode_frame(sd.encode_frame(3, sd.GeneralFailure(unknown_code, "new")))
        assert f is not None
        msg = f[0].message
        assert isinstance(msg, sd.GeneralFailure)
        self.assertEqual(msg.code, 0x77)
        self.assertNotIsInstance(msg.code, sd.ErrorCode)  # kept as the int it was
        self.assertEqual(sd.name_of(0x77), "0x0077")
        self.assertEqual(sd.name_of(sd.ErrorCode.NOT_FOUND), "NOT_FOUND")
        two: sd.Role = 2  # type: ignore[assignment]
        three: sd.LogoutScope = 3  # type: ignore[assignment]
        for bad in (sd.LoginRequest("", "pw"), sd.LoginRequest("x" * 65, "pw"),
                    sd.LoginRequest("ü" * 33, "pw"), sd.LoginRequest("u", "p" * 1025),
                    sd.AdminSetRole(TOKEN, "alice", two), sd.LogoutAll(TOKEN, three),
                    sd.ListSessions(TOKEN, -1, 0), sd.ListSessions(TOKEN, 0, 1 << 16)):
            with self.subTest(repr(bad)):
                with self.assertRaises(ValueError):
                    sd.encode_frame(1, bad)
        # strings may hold any character of valid UTF-8 (protocol.md 3)
        odd = sd.LoginRequest("a;b:c d\x00é", "\x00;:", "", "")
        got = sd.decode_frame(sd.encode_frame(1, odd))
        assert got is not None
        self.assertEqual(got[0].message, odd)

    def test_attribute_values_are_any_bytes_within_their_limits(self) -> None:
        odd = sd.AttrSet(TOKEN, "k;=é", b"\x00\xff\x00" + b"v" * (sd.MAX_ATTR_VALUE - 3))
        got = sd.decode_frame(sd.encode_frame(1, odd))
        assert got is not None
        self.assertEqual(got[0].message, odd)
        pushed = sd.Attrs(7, [sd.Attr("a", b""), sd.Attr("b", b"\x00")])
        got = sd.decode_frame(sd.encode_frame(0, pushed, flags=sd.Flag.PUSH))
        assert got is not None
        self.assertEqual(got[0].message.as_dict(), {"a": b"", "b": b"\x00"})  # type: ignore
        for bad in (sd.AttrSet(TOKEN, "", b"x"), sd.AttrSet(TOKEN, "k" * 65, b""),
                    sd.AttrSet(TOKEN, "k", b"v" * (sd.MAX_ATTR_VALUE + 1)),
                    sd.AttrSet(TOKEN, "k", "text"),  # type: ignore[arg-type]
                    sd.AttrRemove(TOKEN, ""), sd.AttrGet(TOKEN, "k" * 65),
                    sd.Attrs(7, [sd.Attr(f"k{i}", b"") for i in range(sd.MAX_ATTRS + 1)])):
            with self.subTest(repr(bad)[:60]):
                with self.assertRaises(ValueError):
                    sd.encode_frame(1, bad)
        # protocol.md 5.43: "other values MALFORMED_FRAME"; a bytes field over its maximum
        # is FIELD_TOO_LONG, as a str's is (3)
        data = bytearray(EXAMPLES["admin_set_attr"])
        data[14 + 32 + 8 + 2 + 4] = 2
        with self.assertRaises(sd.DecodeError) as e:
            sd.decode_frame(bytes(data))
        self.assertEqual(e.exception.code, sd.ErrorCode.MALFORMED_FRAME)
        over = sd.MAX_ATTR_VALUE + 1
        payload = (7).to_bytes(8, "big") + b"\x00\x01\x00\x01k" + over.to_bytes(2, "big")
        head = struct.pack(">HBBHII", sd.MAGIC, 1, sd.Opcode.ATTRS, 0, 1, len(payload) + over)
        with self.assertRaises(sd.DecodeError) as e:
            sd.decode_frame(head + payload + b"v" * over)
        self.assertEqual(e.exception.code, sd.ErrorCode.FIELD_TOO_LONG)

    def test_profile_messages_check_their_limits_and_the_removal_rule(self) -> None:
        info = sd.UserInfo(9, "r" * sd.MAX_ROLE_NAME, [sd.Attr("a", b"\x00"), sd.Attr("b", b"")])
        got = sd.decode_frame(sd.encode_frame(0, info, flags=sd.Flag.PUSH))
        assert got is not None
        self.assertEqual(got[0].message, info)
        self.assertEqual(info.as_dict(), {"a": b"\x00", "b": b""})
        removal = sd.ProfileSet(TOKEN, "display_name", True)
        got = sd.decode_frame(sd.encode_frame(1, removal))
        assert got is not None
        self.assertEqual(got[0].message, removal)
        for bad in (sd.ProfileSet(TOKEN, "", False, b"x"),
                    sd.ProfileSet(TOKEN, "k", True, b"x"),  # a removal carries no value
                    sd.ProfileSet(TOKEN, "k", False, b"v" * (sd.MAX_ATTR_VALUE + 1)),
                    sd.ProfileGet(TOKEN, "k" * 65),
                    sd.AdminSetProfile(TOKEN, "", "k", False, b""),
                    sd.AdminSetProfile(TOKEN, "alice", "k", True, b"x"),
                    sd.AdminSetAppRole(TOKEN, "alice", "r" * (sd.MAX_ROLE_NAME + 1)),
                    sd.AdminSetAppRole(TOKEN, "", "educator"),
                    sd.UserInfo(9, "", [sd.Attr(f"k{i}", b"") for i in range(sd.MAX_ATTRS + 1)])):
            with self.subTest(repr(bad)[:60]):
                with self.assertRaises(ValueError):
                    sd.encode_frame(1, bad)
        # protocol.md 5.44: `remove` 1 means "`value` MUST then be empty"; 2 is no bool
        base = EXAMPLES["profile_set"]
        at = 14 + 32 + 2 + len("display_name")
        for flag, code in ((1, sd.ErrorCode.MALFORMED_FRAME), (2, sd.ErrorCode.MALFORMED_FRAME)):
            data = bytearray(base)
            data[at] = flag
            with self.subTest(remove=flag):
                with self.assertRaises(sd.DecodeError) as e:
                    sd.decode_frame(bytes(data))
                self.assertEqual(e.exception.code, code)
        # an application role over 32 bytes is FIELD_TOO_LONG (protocol.md 3)
        payload = (2).to_bytes(8, "big") + (33).to_bytes(2, "big") + b"r" * 33 + b"\x00\x00"
        head = struct.pack(">HBBHII", sd.MAGIC, 1, sd.Opcode.USER_INFO, 2, 0, len(payload))
        with self.assertRaises(sd.DecodeError) as e:
            sd.decode_frame(head + payload)
        self.assertEqual(e.exception.code, sd.ErrorCode.FIELD_TOO_LONG)
        self.assertEqual(sd.describe_user_info(frame_of("user_info_push").message),  # type: ignore
                         "role: educator; profile: display_name=Alice A.")
        self.assertEqual(sd.describe_user_info(sd.UserInfo(2, "", [])),
                         "role: (none); profile: (empty)")

    def test_secrets_never_show_in_a_repr(self) -> None:
        shown = " ".join(repr(x) for x in (
            TOKEN, frame_of("login_success"), frame_of("login_request"),
            frame_of("change_password"), frame_of("register_request")))
        self.assertNotIn(TOKEN.hex()[:16], shown)
        self.assertNotIn("000102030405", shown)
        for secret in ("pa;ss", "new pass;word", "s3cret;pass"):
            self.assertNotIn(secret, shown)
        self.assertIn("redacted", shown)

    def test_the_token_file_is_readable_by_its_owner_only(self) -> None:
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "token")
            with open(path, "w") as f:
                f.write("old")
            os.chmod(path, 0o644)
            tf = sd.TokenFile(path)
            self.assertIsNone(tf.load())  # not a token: ignored
            tf.save(TOKEN)
            self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
            self.assertEqual(tf.load(), TOKEN)
            tf.delete(only=sd.Token(bytes(32)))  # holds another token: kept
            self.assertEqual(tf.load(), TOKEN)
            tf.delete(only=TOKEN)
            self.assertFalse(os.path.exists(path))
            self.assertEqual(os.listdir(d), [])


def login_success(interval_ms: int = 5000, timeout_ms: int = 15000) -> sd.LoginSuccess:
    return sd.LoginSuccess(TOKEN, sd.SessionInfo(7, 2, sd.Role.USER, "alice", T0, 0, T0,
                                                 T0 + 86400_000, 1800_000, interval_ms,
                                                 timeout_ms))


def frames_in(data: bytes) -> List[sd.Frame]:
    d = sd.FrameDecoder()
    d.feed(data)
    out = []
    for _ in range(100):
        f = d.next()
        if f is None:
            break
        out.append(f)
    return out


def events(core: sd.ClientCore) -> Iterator[sd.Event]:
    for _ in range(100):
        ev = core.poll_event()
        if ev is None:
            return
        yield ev


class CoreTest(unittest.TestCase):
    """The sans-IO core with made-up times: no sockets, no clock."""

    def logged_in(self, now: float = 100.0) -> sd.ClientCore:
        core = sd.ClientCore()
        rid = core.start_request(sd.LoginRequest("alice", "pw"), now)
        self.assertEqual(rid, 1)
        self.assertEqual(core.state, sd.State.AUTHENTICATING)
        self.assertIsNone(core.poll_timeout(), "no heartbeat before the login succeeds")
        core.take_output()
        core.receive(sd.encode_frame(rid, login_success()), now)
        self.assertEqual(core.state, sd.State.ACTIVE)
        self.assertEqual(core.token, TOKEN)
        list(events(core))
        return core

    def test_heartbeats_follow_the_server_interval_and_stop_with_the_logout(self) -> None:
        core = self.logged_in(100.0)
        self.assertEqual(core.poll_timeout(), 105.0)
        core.handle_timeout(104.9)
        self.assertEqual(core.take_output(), b"")
        core.handle_timeout(105.0)
        [hb] = frames_in(core.take_output())
        self.assertEqual(hb.message, sd.Heartbeat(TOKEN))
        self.assertEqual((hb.request_id, hb.flags), (2, 0))
        self.assertEqual(core.poll_timeout(), 110.0)
        core.receive(sd.encode_frame(2, sd.HeartbeatAck(T0)), 105.1)
        self.assertEqual(list(events(core)), [], "an internal ack is not an event")
        self.assertEqual(core.heartbeats_acked, 1)
        rid = core.start_request(sd.LogoutRequest(TOKEN), 106.0)
        core.take_output()
        self.assertIsNone(core.poll_timeout())
        core.handle_timeout(200.0)
        self.assertEqual(core.take_output(), b"", "no heartbeat after LOGOUT_REQUEST")
        core.receive(sd.encode_frame(rid, sd.LogoutSuccess(7)), 200.0)
        self.assertEqual((core.state, core.token), (sd.State.AWAITING_AUTH, None))
        [ev] = list(events(core))
        self.assertIsInstance(ev, sd.Reply)

    def test_a_missing_heartbeat_ack_closes_the_connection_after_the_timeout(self) -> None:
        core = self.logged_in(0.0)
        core.handle_timeout(5.0)
        core.take_output()
        core.handle_timeout(10.0)  # a second heartbeat; the first is still unanswered
        self.assertEqual(len(frames_in(core.take_output())), 1)
        self.assertEqual(core.poll_timeout(), 15.0)
        core.handle_timeout(15.0)
        core.take_output()
        self.assertEqual(core.poll_timeout(), 20.0, "the first heartbeat's timeout")
        core.handle_timeout(19.99)
        self.assertEqual(core.state, sd.State.ACTIVE)
        core.handle_timeout(20.0)
        self.assertEqual(core.state, sd.State.CLOSED)
        [ev] = list(events(core))
        assert isinstance(ev, sd.Closed)
        self.assertIn("HEARTBEAT_ACK", ev.reason)

    def test_requests_the_state_does_not_allow_are_refused_before_sending(self) -> None:
        core = sd.ClientCore()
        with self.assertRaises(sd.StateError):
            core.start_request(sd.ListSessions(TOKEN), 0.0)
        with self.assertRaises(ValueError):
            core.start_request(sd.Done(1), 0.0)
        core.start_request(sd.LoginRequest("alice", "pw"), 0.0)
        with self.assertRaises(sd.StateError):
            core.start_request(sd.LoginRequest("alice", "pw"), 0.0)
        self.assertEqual(len(frames_in(core.take_output())), 1)
        core.receive(sd.encode_frame(1, sd.LoginFailure(
            sd.LoginFailureReason.INVALID_CREDENTIALS, 0, "no")), 0.1)
        self.assertEqual(core.state, sd.State.AWAITING_AUTH)

    def test_a_fatal_push_ends_the_connection_and_names_the_ended_token(self) -> None:
        core = self.logged_in()
        rid = core.start_request(sd.ListSessions(TOKEN), 101.0)
        core.receive(EXAMPLES["session_revoked"], 101.0)
        push, closed = list(events(core))
        assert isinstance(push, sd.Push) and isinstance(closed, sd.Closed)
        self.assertIsInstance(push.frame.message, sd.SessionRevoked)
        self.assertEqual(closed.ended_token, TOKEN)
        self.assertIn("NEW_LOGIN", closed.reason)
        self.assertEqual(core.state, sd.State.CLOSED)
        with self.assertRaises(sd.ConnectionClosed):
            core.start_request(sd.Heartbeat(TOKEN), 102.0)
        self.assertGreater(rid, 0)

    def test_unknown_pushes_are_ignored_and_unknown_replies_fail_the_request(self) -> None:
        core = self.logged_in()
        rid = core.start_request(sd.ListSessions(TOKEN), 101.0)
        core.receive(sd.encode_frame(0, sd.UnknownMessage(0xF3, b"x"), flags=2), 101.0)
        self.assertEqual(list(events(core)), [])
        core.receive(sd.encode_frame(rid, sd.UnknownMessage(0xF3, b"")), 101.0)
        [ev] = list(events(core))
        assert isinstance(ev, sd.Reply) and ev.frame is not None
        self.assertIsInstance(ev.frame.message, sd.UnknownMessage)


    def test_the_attrs_push_after_a_resume_is_kept_and_changes_follow(self) -> None:
        core = sd.ClientCore()
        rid = core.start_request(sd.VerifySession(TOKEN), 0.0)
        core.take_output()
        valid = sd.SessionValid(login_success().session)
        # one read: SESSION_VALID, then the ATTRS push right behind it (protocol.md 5.42)
        core.receive(sd.encode_frame(rid, valid) + EXAMPLES["attrs_push"], 0.1)
        reply, push = list(events(core))
        self.assertIsInstance(reply, sd.Reply)
        assert isinstance(push, sd.Push)
        self.assertEqual(core.attrs, {"game": b"456"})
        rid = core.start_request(sd.AttrSet(TOKEN, "cart", b"\x00\x01"), 1.0)
        core.receive(sd.encode_frame(rid, sd.Done(1)), 1.1)
        rid = core.start_request(sd.AttrRemove(TOKEN, "game"), 2.0)
        core.receive(sd.encode_frame(rid, sd.Done(1)), 2.1)
        self.assertEqual(core.attrs, {"cart": b"\x00\x01"})
        # a refused change changes nothing
        rid = core.start_request(sd.AttrSet(TOKEN, "x", b""), 3.0)
        core.receive(EXAMPLES["general_failure_limit"][:6] + rid.to_bytes(4, "big")
                     + EXAMPLES["general_failure_limit"][10:], 3.1)
        self.assertEqual(core.attrs, {"cart": b"\x00\x01"})
        # ATTR_GET of all replaces what was known (an administrator may have changed it)
        rid = core.start_request(sd.AttrGet(TOKEN), 4.0)
        core.receive(sd.encode_frame(rid, sd.Attrs(7, [sd.Attr("admin", b"1")])), 4.1)
        self.assertEqual(core.attrs, {"admin": b"1"})
        # another session's ATTRS is not this one's
        core.receive(sd.encode_frame(0, sd.Attrs(8, [sd.Attr("z", b"")]), flags=2), 5.0)
        self.assertEqual(core.attrs, {"admin": b"1"})
        rid = core.start_request(sd.LogoutRequest(TOKEN), 6.0)
        core.receive(sd.encode_frame(rid, sd.LogoutSuccess(7)), 6.1)
        self.assertEqual(core.attrs, {}, "they end with the session")

    def test_the_user_info_push_after_a_login_is_kept_and_changes_follow(self) -> None:
        core = sd.ClientCore()
        rid = core.start_request(sd.LoginRequest("alice", "pw"), 0.0)
        core.take_output()
        # one read: LOGIN_SUCCESS, then the USER_INFO push right behind it (protocol.md 5.46)
        core.receive(sd.encode_frame(rid, login_success()) + EXAMPLES["user_info_push"], 0.1)
        reply, push = list(events(core))
        self.assertIsInstance(reply, sd.Reply)
        assert isinstance(push, sd.Push)
        self.assertEqual(core.user_info, push.frame.message)
        rid = core.start_request(sd.ProfileSet(TOKEN, "a", False, b"1"), 1.0)
        core.receive(sd.encode_frame(rid, sd.Done(1)), 1.1)
        rid = core.start_request(sd.ProfileSet(TOKEN, "display_name", True), 2.0)
        core.receive(sd.encode_frame(rid, sd.Done(1)), 2.1)
        self.assertEqual(core.user_info, sd.UserInfo(2, "educator", [sd.Attr("a", b"1")]))
        # an administrator changing their own account: the role follows
        rid = core.start_request(sd.AdminSetAppRole(TOKEN, "alice", ""), 3.0)
        core.receive(sd.encode_frame(rid, sd.Done(1)), 3.1)
        rid = core.start_request(sd.AdminSetAppRole(TOKEN, "bob", "finance"), 3.2)
        core.receive(sd.encode_frame(rid, sd.Done(1)), 3.3)
        self.assertEqual(core.user_info, sd.UserInfo(2, "", [sd.Attr("a", b"1")]))
        # PROFILE_GET of one key updates that key and the role; of all replaces everything
        rid = core.start_request(sd.ProfileGet(TOKEN, "b"), 4.0)
        core.receive(sd.encode_frame(rid, sd.UserInfo(2, "finance", [sd.Attr("b", b"2")])), 4.1)
        self.assertEqual(core.user_info, sd.UserInfo(2, "finance", [sd.Attr("a", b"1"),
                                                                    sd.Attr("b", b"2")]))
        rid = core.start_request(sd.ProfileGet(TOKEN), 5.0)
        core.receive(sd.encode_frame(rid, sd.UserInfo(2, "", [])), 5.1)
        self.assertEqual(core.user_info, sd.UserInfo(2, "", []))
        # another account's USER_INFO is not this one's
        core.receive(sd.encode_frame(0, sd.UserInfo(3, "x", []), flags=2), 6.0)
        self.assertEqual(core.user_info, sd.UserInfo(2, "", []))
        rid = core.start_request(sd.LogoutRequest(TOKEN), 7.0)
        core.receive(sd.encode_frame(rid, sd.LogoutSuccess(7)), 7.1)
        self.assertIsNone(core.user_info, "cleared with the logout")


class FakeServer:
    """A listening socket on 127.0.0.1 whose one connection is handled by ``script(conn,
    decoder)`` on a thread; every socket operation has a timeout."""

    def __init__(self, script: Callable[[socket.socket, sd.FrameDecoder], None]):
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(1)
        self.listener.settimeout(5.0)
        self.addr = "127.0.0.1:%d" % self.listener.getsockname()[1]
        self.received: List[sd.Frame] = []
        self._script = script
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            conn, _ = self.listener.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(5.0)
            try:
                self._script(conn, sd.FrameDecoder())
            except OSError:
                pass

    def read_frame(self, conn: socket.socket, d: sd.FrameDecoder) -> Optional[sd.Frame]:
        for _ in range(1000):
            f = d.next()
            if f is not None:
                self.received.append(f)
                return f
            data = conn.recv(4096)
            if not data:
                return None
            d.feed(data)
        return None

    def close(self) -> None:
        self.listener.close()
        self._thread.join(5.0)


class FakeServerTest(unittest.TestCase):
    """The client's waits against servers that misbehave: every wait ends."""

    def test_a_silent_server_gives_request_timeout_not_a_hang(self) -> None:
        def silent(conn: socket.socket, d: sd.FrameDecoder) -> None:
            server.read_frame(conn, d)
            time.sleep(1.0)

        server = FakeServer(silent)
        c = sd.Client.connect(server.addr)
        start = time.monotonic()
        with self.assertRaises(sd.RequestTimeout):
            c.login("alice", "pw", timeout=0.3)
        self.assertLess(time.monotonic() - start, 2.0)
        self.assertIsNotNone(c.wait_closed(2.0), "the connection is closed after a timeout")
        with self.assertRaises(sd.ConnectionClosed):
            c.login("alice", "pw")
        c.close()
        server.close()

    def test_a_server_that_stops_acknowledging_heartbeats_is_declared_dead(self) -> None:
        def deaf(conn: socket.socket, d: sd.FrameDecoder) -> None:
            f = server.read_frame(conn, d)
            assert f is not None
            conn.sendall(sd.encode_frame(f.request_id, login_success(50, 300)))
            for _ in range(100):  # reads the heartbeats, answers none
                if server.read_frame(conn, d) is None:
                    return

        server = FakeServer(deaf)
        c = sd.Client.connect(server.addr)
        start = time.monotonic()
        c.login("alice", "pw")
        closed = c.wait_closed(3.0)
        elapsed = time.monotonic() - start
        assert closed is not None
        self.assertIn("HEARTBEAT_ACK", closed.reason)
        # first heartbeat at 50 ms, dead 300 ms after it (plus scheduling)
        self.assertGreaterEqual(elapsed, 0.33)
        self.assertLess(elapsed, 2.0)
        self.assertTrue(all(isinstance(f.message, sd.Heartbeat) for f in server.received[1:]))
        self.assertGreaterEqual(len(server.received), 2)
        with self.assertRaises(sd.ConnectionClosed):
            c.heartbeat()
        c.close()
        server.close()

    def test_a_fatal_error_is_a_server_error_then_the_connection_is_closed(self) -> None:
        def fatal(conn: socket.socket, d: sd.FrameDecoder) -> None:
            f = server.read_frame(conn, d)
            assert f is not None
            conn.sendall(sd.encode_frame(f.request_id, sd.GeneralFailure(
                sd.ErrorCode.AUTH_REQUIRED, "log in first"), flags=sd.Flag.FATAL))

        server = FakeServer(fatal)
        c = sd.Client.connect(server.addr)
        with self.assertRaises(sd.ServerError) as e:
            c.login("alice", "pw")
        self.assertEqual((e.exception.code, e.exception.fatal), (sd.ErrorCode.AUTH_REQUIRED, True))
        closed = c.wait_closed(2.0)
        assert closed is not None
        self.assertIn("AUTH_REQUIRED", closed.reason)
        c.close()
        server.close()


def live(prefix: str) -> Dict[str, str]:
    """The environment of the live server ``prefix`` (e.g. SESSIOND_MULTI), or skip."""
    addr = os.environ.get(f"{prefix}_ADDR")
    if not addr:
        if os.environ.get("SESSIOND_REQUIRE_SERVERS") == "1":
            raise AssertionError(f"{prefix}_ADDR is not set")
        raise unittest.SkipTest(f"{prefix}_ADDR not set (tests/python_client.rs sets it)")
    return {k[len(prefix) + 1:]: v for k, v in os.environ.items() if k.startswith(prefix + "_")}


_names = iter(range(1, 10_000))


def new_name(tag: str) -> str:
    """A fresh valid username (5.15: 3 to 32 bytes of a-z 0-9 . _ -)."""
    return f"{tag}-{next(_names):04d}"


class LiveBase(unittest.TestCase):
    PREFIX = "SESSIOND"
    env: Dict[str, str]

    @classmethod
    def setUpClass(cls) -> None:
        cls.env = live(cls.PREFIX)

    def setUp(self) -> None:
        self.clients: List[sd.Client] = []
        self.dir = tempfile.TemporaryDirectory()
        self.addCleanup(self.dir.cleanup)
        self.addCleanup(self._close_all)

    def _close_all(self) -> None:
        for c in self.clients:
            c.close()

    def connect(self, **kw: object) -> sd.Client:
        kw.setdefault("request_timeout", 5.0)
        c = sd.Client.connect(self.env["ADDR"], **kw)  # type: ignore[arg-type]
        self.clients.append(c)
        return c

    def token_path(self, name: str = "token") -> str:
        return os.path.join(self.dir.name, name)

    def user(self, tag: str = "u") -> str:
        """A new account (registration is open on this server)."""
        name = new_name(tag)
        c = self.connect()
        r = c.register(name, PASSWORD, f"{name}@example.org")
        self.assertEqual(r.username, name)
        c.disconnect()
        return name

    def login(self, name: str, password: str = PASSWORD, **kw: object) -> sd.Client:
        c = self.connect(**kw)
        c.login(name, password)
        return c

    def admin(self) -> sd.Client:
        return self.login("admin", self.env["ADMIN_PASSWORD"])

    def revoked(self, c: sd.Client) -> sd.SessionRevoked:
        """The SESSION_REVOKED push ``c`` receives."""
        m = self.push(c, sd.SessionRevoked).message
        assert isinstance(m, sd.SessionRevoked)
        return m

    def push(self, c: sd.Client, *types: type, timeout: float = 5.0) -> sd.Frame:
        f = c.wait_push(*types, timeout=timeout)
        self.assertIsNotNone(f, f"no {[t.__name__ for t in types]} push in {timeout} s")
        assert f is not None
        return f


class LiveTest(LiveBase):
    """The default server: one session per account, registration open, quick heartbeats."""

    def test_login_heartbeat_logout(self) -> None:
        name = self.user()
        c = self.connect(client_name="hb-test")
        ok = c.login(name, PASSWORD)
        s = ok.session
        self.assertEqual((s.username, s.role), (name, sd.Role.USER))
        self.assertEqual((s.heartbeat_interval_ms, s.heartbeat_timeout_ms), (250, 1500))
        self.assertGreater(s.session_expires, s.session_created)
        self.assertEqual(c.state, sd.State.ACTIVE)
        self.assertLess(abs(c.heartbeat() - time.time() * 1000), 60_000)
        # Background heartbeats hold the connection past the server's 1.5 s timeout.
        time.sleep(2.0)
        self.assertIsNone(c.closed)
        self.assertGreaterEqual(c.heartbeats_acked, 5)
        [entry] = c.list_sessions().sessions
        self.assertEqual((entry.session_id, entry.current, entry.client),
                         (s.session_id, True, "hb-test"))
        self.assertEqual(c.logout(), s.session_id)
        self.assertEqual(c.state, sd.State.AWAITING_AUTH)
        with self.assertRaises(sd.StateError):
            c.list_sessions()  # refused here: the server would close the connection for it
        with self.assertRaises(sd.SessionInvalid) as e:
            c.resume(ok.token)
        self.assertEqual(e.exception.reason, sd.InvalidReason.LOGGED_OUT)
        c.login(name, PASSWORD)  # the same connection may log in again
        c.disconnect()
        closed = c.closed
        assert closed is not None and closed.frame is not None
        self.assertEqual(closed.frame.message,
                         sd.DisconnectAck(sd.DisconnectReason.CLIENT_REQUEST))

    def test_resume_on_a_new_connection_with_the_token_file(self) -> None:
        name = self.user()
        path = self.token_path()
        c = self.connect(token_file=path)
        sid = c.login(name, PASSWORD).session.session_id
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
        c.disconnect()
        c2 = self.connect(token_file=path)
        info = c2.resume_from_file()
        assert info is not None
        self.assertEqual((info.session_id, info.username), (sid, name))
        c2.heartbeat()
        # start_session prefers the stored session and never asks for the password then
        c2.disconnect()
        c3 = self.connect(token_file=path)
        info = c3.start_session(name, lambda: self.fail("password asked"))
        self.assertEqual(info.session_id, sid)
        self.assertEqual(c3.logout(), sid)
        self.assertFalse(os.path.exists(path), "logout deletes the token file")

    def test_a_resume_of_a_session_in_use_is_a_duplicate_and_keeps_the_token(self) -> None:
        name = self.user()
        path = self.token_path()
        c = self.connect(token_file=path)
        c.login(name, PASSWORD)
        c2 = self.connect(token_file=path)
        with self.assertRaises(sd.DuplicateSession) as e:
            c2.resume_from_file()
        self.assertEqual(e.exception.session_id, c.session.session_id)  # type: ignore[union-attr]
        self.assertIsNotNone(c2.wait_closed(2.0))
        self.assertTrue(os.path.exists(path))
        c.heartbeat()

    def test_a_second_login_revokes_the_first_which_is_told_why(self) -> None:
        name = self.user()
        first_path = self.token_path("first")
        pushes: List[sd.Frame] = []
        c1 = self.connect(token_file=first_path, on_push=pushes.append, client_name="one")
        t1 = c1.login(name, PASSWORD).token
        c2 = self.connect(client_name="two", platform="phone")
        s2 = c2.login(name, PASSWORD).session
        f = self.push(c1, sd.SessionRevoked)
        m = f.message
        assert isinstance(m, sd.SessionRevoked)
        self.assertTrue(f.is_push and f.is_fatal)
        self.assertEqual((m.reason, m.by_client, m.by_platform), (sd.RevokeReason.NEW_LOGIN,
                                                                  "two", "phone"))
        self.assertTrue(m.by_address.startswith("127.0.0.1:"), m.by_address)
        closed = c1.wait_closed(2.0)
        self.assertIsInstance(closed, sd.SessionEnded)
        self.assertEqual(pushes, [f], "the callback saw the same push")
        with self.assertRaises(sd.SessionEnded):
            c1.list_sessions()
        self.assertFalse(os.path.exists(first_path), "a revoked token is deleted")
        # the revoked token now resumes as SESSION_INVALID REVOKED
        c3 = self.connect()
        with self.assertRaises(sd.SessionInvalid) as e:
            c3.resume(t1)
        self.assertEqual(e.exception.reason, sd.InvalidReason.REVOKED)
        [entry] = c2.list_sessions().sessions
        self.assertEqual(entry.session_id, s2.session_id)

    def test_the_audit_trail_names_the_new_login_that_revoked_a_session(self) -> None:
        name = self.user()
        c1 = self.connect(client_name="one", platform="desk")
        s1 = c1.login(name, PASSWORD).session
        c2 = self.connect(client_name="two", platform="phone")
        s2 = c2.login(name, PASSWORD).session
        self.revoked(c1)
        page = c2.audit_search(newest_first=True)
        seqs = [r.seq for r in page.records]
        self.assertEqual(seqs, sorted(seqs, reverse=True), "newest first")
        self.assertTrue(all(r.user_id == s2.user_id for r in page.records), "only mine")
        [r] = [r for r in page.records if r.kind == sd.AuditKind.REVOKED]
        self.assertIs(r.typed_reason, sd.RevokeReason.NEW_LOGIN)
        self.assertEqual(r.reason_name, "NEW_LOGIN")
        self.assertEqual((r.session_id, r.username, r.client, r.platform),
                         (s1.session_id, name, "one", "desk"))
        a = r.actor
        self.assertEqual((a.session_id, a.username, a.client, a.platform),
                         (s2.session_id, name, "two", "phone"))
        self.assertTrue(a.address.startswith("127.0.0.1:"), a.address)
        self.assertNotEqual(a.address, r.address, "two connections, two ports")
        # the same record through the kind filter, and in AUDIT_QUERY's text form
        [again] = c2.audit_search(kind=sd.AuditKind.REVOKED).records
        self.assertEqual(again, r)
        [entry] = c2.audit_query(kind=sd.AuditKind.REVOKED).entries
        self.assertEqual((entry.seq, entry.kind, entry.session_id),
                         (r.seq, sd.AuditKind.REVOKED, s1.session_id))

    def test_a_wrong_old_password_is_audited_as_password_change_failed(self) -> None:
        name = self.user()
        c = self.connect()
        s = c.login(name, PASSWORD).session
        with self.assertRaises(sd.ServerError) as e:
            c.change_password("not it", "whatever long")
        self.assertEqual(e.exception.code, sd.ErrorCode.WRONG_PASSWORD)
        [r] = c.audit_search(newest_first=True, limit=1).records
        self.assertEqual(r.kind, sd.AuditKind.PASSWORD_CHANGE_FAILED)
        self.assertEqual(sd.audit_kind_name(r.kind), "password_change_failed")
        self.assertIs(r.typed_reason, sd.LoginFailureReason.INVALID_CREDENTIALS)
        self.assertEqual(r.reason_name, "INVALID_CREDENTIALS")
        self.assertEqual((r.user_id, r.username), (s.user_id, name))
        self.assertFalse(r.actor, "the subject's own request: no actor")
        [only] = c.audit_search(kind=sd.AuditKind.PASSWORD_CHANGE_FAILED).records
        self.assertEqual(only.seq, r.seq)
        c.heartbeat()

    def test_a_bad_password_is_login_failed_and_the_connection_stays(self) -> None:
        name = self.user()
        c = self.connect()
        for pw in ("wrong", ""):
            with self.assertRaises(sd.LoginFailed) as e:
                c.login(name, pw)
            self.assertEqual(e.exception.reason, sd.LoginFailureReason.INVALID_CREDENTIALS)
        with self.assertRaises(sd.LoginFailed) as e:
            c.login("nobody-" + name, PASSWORD)
        self.assertEqual(e.exception.reason, sd.LoginFailureReason.INVALID_CREDENTIALS)
        self.assertEqual(c.state, sd.State.AWAITING_AUTH)
        c.login(name, PASSWORD)

    def test_dead_tokens_resume_with_their_reason(self) -> None:
        c = self.connect()
        with self.assertRaises(sd.SessionInvalid) as e:
            c.resume(sd.Token(os.urandom(32)))
        self.assertEqual(e.exception.reason, sd.InvalidReason.UNKNOWN)
        # a token file holding a dead token is deleted, and start_session logs in instead
        name = self.user()
        path = self.token_path()
        sd.TokenFile(path).save(sd.Token(os.urandom(32)))
        c2 = self.connect(token_file=path)
        info = c2.start_session(name, lambda: PASSWORD)
        self.assertEqual(info.username, name)
        self.assertNotEqual(sd.TokenFile(path).load(), None)
        self.assertEqual(c.state, sd.State.AWAITING_AUTH)

    def test_register_and_its_refusals(self) -> None:
        name = new_name("reg")
        c = self.connect()
        r = c.register(name, PASSWORD, "someone@example.org")
        self.assertGreater(r.user_id, 1)
        cases = [
            (name, PASSWORD, "a@example.org", sd.RegisterFailureReason.USERNAME_TAKEN),
            ("Upper", PASSWORD, "a@example.org", sd.RegisterFailureReason.INVALID_USERNAME),
            ("ab", PASSWORD, "a@example.org", sd.RegisterFailureReason.INVALID_USERNAME),
            (new_name("reg"), "short", "a@example.org",
             sd.RegisterFailureReason.PASSWORD_TOO_SHORT),
            (new_name("reg"), PASSWORD, "no-at.example.org",
             sd.RegisterFailureReason.INVALID_EMAIL),
        ]
        for user, pw, email, reason in cases:
            with self.subTest(reason.name):
                with self.assertRaises(sd.RegisterFailed) as e:
                    c.register(user, pw, email)
                self.assertEqual(e.exception.reason, reason)
        c.login(name, PASSWORD)
        self.assertEqual(c.session.username, name)  # type: ignore[union-attr]


class MultiTest(LiveBase):
    """A server with no session limit: several sessions per account."""

    PREFIX = "SESSIOND_MULTI"

    def test_a_new_login_is_announced_to_the_other_sessions(self) -> None:
        name = self.user()
        c1 = self.login(name)
        c2 = self.login(name, client_name="laptop")
        s2 = c2.session
        assert s2 is not None
        f = self.push(c1, sd.NewLogin)
        m = f.message
        assert isinstance(m, sd.NewLogin)
        self.assertTrue(f.is_push)
        self.assertFalse(f.is_fatal)
        self.assertEqual((m.session_id, m.client), (s2.session_id, "laptop"))
        c1.heartbeat()  # nothing changes for the receiving connection

    def test_list_sessions_and_revoke_one(self) -> None:
        name = self.user()
        c1, c2 = self.login(name), self.login(name)
        s1, s2 = c1.session, c2.session
        assert s1 is not None and s2 is not None
        lst = c1.list_sessions()
        self.assertEqual(lst.total, 2)
        self.assertEqual([e.session_id for e in lst.sessions], [s1.session_id, s2.session_id])
        self.assertEqual([(e.current, e.connected) for e in lst.sessions],
                         [(True, True), (False, True)])
        self.assertEqual(len(c1.list_sessions(offset=1, limit=1).sessions), 1)
        self.assertEqual(c1.revoke_session(s2.session_id), 1)
        self.assertEqual(self.revoked(c2).reason, sd.RevokeReason.REVOKED_BY_USER)
        self.assertIsInstance(c2.wait_closed(2.0), sd.SessionEnded)
        # someone else's session (here the admin's), existing or not: FORBIDDEN, not fatal
        a = self.admin()
        for sid in (a.session.session_id, 1 << 60):  # type: ignore[union-attr]
            with self.assertRaises(sd.ServerError) as e:
                c1.revoke_session(sid)
            self.assertEqual((e.exception.code, e.exception.fatal),
                             (sd.ErrorCode.FORBIDDEN, False))
        self.assertEqual(c1.list_sessions().total, 1)

    def test_logout_all(self) -> None:
        name = self.user()
        c1, c2, c3 = self.login(name), self.login(name), self.login(name)
        self.assertEqual(c1.logout_all(sd.LogoutScope.OTHERS), 2)
        for c in (c2, c3):
            self.assertEqual(self.revoked(c).reason, sd.RevokeReason.REVOKED_BY_USER)
        c4 = self.login(name)
        self.assertEqual(c1.logout_all(sd.LogoutScope.ALL), 2)
        self.assertEqual(c1.state, sd.State.AWAITING_AUTH)
        self.assertIsInstance(c4.wait_closed(3.0), sd.SessionEnded)
        c1.login(name, PASSWORD)  # back in AWAITING_AUTH: may log in again
        self.assertEqual(c1.list_sessions().total, 1)

    def test_change_password(self) -> None:
        name = self.user()
        c1, c2 = self.login(name), self.login(name)
        with self.assertRaises(sd.ServerError) as e:
            c1.change_password("not it", "whatever long")
        self.assertEqual(e.exception.code, sd.ErrorCode.WRONG_PASSWORD)
        with self.assertRaises(sd.ServerError) as e:
            c1.change_password(PASSWORD, "short")
        self.assertEqual(e.exception.code, sd.ErrorCode.INVALID_ARGUMENT)
        new = "a new; longer password"
        self.assertEqual(c1.change_password(PASSWORD, new), 1)
        self.assertEqual(self.revoked(c2).reason, sd.RevokeReason.PASSWORD_CHANGED)
        c1.heartbeat()  # this session stays
        c3 = self.connect()
        with self.assertRaises(sd.LoginFailed):
            c3.login(name, PASSWORD)
        c3.login(name, new)

    def test_admin_calls(self) -> None:
        name = self.user()
        a = self.admin()
        u = self.login(name)
        sid = u.session.session_id  # type: ignore[union-attr]
        stats = a.admin_stats()
        for counter in ("connections", "sessions_live", "users", "logins_ok", "uptime_ms"):
            self.assertIn(counter, stats)
        self.assertGreaterEqual(stats["sessions_live"], 2)
        mine = a.admin_list_sessions(name)
        self.assertEqual([e.session_id for e in mine.sessions], [sid])
        self.assertGreaterEqual(a.admin_list_sessions().total, 2)
        self.assertTrue(any(e.current and e.username == "admin"
                            for e in a.admin_list_sessions(limit=100).sessions))
        # a user may not do any of this
        for call in (u.admin_stats, lambda: u.admin_list_sessions(),
                     lambda: u.admin_logout_user("admin")):
            with self.assertRaises(sd.ServerError) as e:
                call()
            self.assertEqual(e.exception.code, sd.ErrorCode.FORBIDDEN)
        self.assertEqual(a.admin_revoke_session(sid), 1)
        self.assertEqual(self.revoked(u).reason, sd.RevokeReason.REVOKED_BY_ADMIN)
        with self.assertRaises(sd.ServerError) as e:
            a.admin_revoke_session(sid)
        self.assertEqual(e.exception.code, sd.ErrorCode.NOT_FOUND)
        u1, u2 = self.login(name), self.login(name)
        self.assertEqual(a.admin_logout_user(name), 2)
        for c in (u1, u2):
            self.assertIsInstance(c.wait_closed(3.0), sd.SessionEnded)
        u3 = self.login(name)
        self.assertEqual(a.admin_suspend_user(name), 1)
        self.assertEqual(self.revoked(u3).reason, sd.RevokeReason.ACCOUNT_SUSPENDED)
        c = self.connect()
        with self.assertRaises(sd.LoginFailed) as e2:
            c.login(name, PASSWORD)
        self.assertEqual(e2.exception.reason, sd.LoginFailureReason.SUSPENDED)
        self.assertEqual(a.admin_unsuspend_user(name), 0)
        c.login(name, PASSWORD)
        self.assertEqual(a.admin_set_role(name, sd.Role.ADMIN), 1)
        self.assertEqual(a.admin_set_role(name, sd.Role.ADMIN), 0)
        self.assertIn("users", c.admin_stats(), "the new role counts at the next request")
        self.assertEqual(a.admin_set_role(name, sd.Role.USER), 1)
        for call in (lambda: a.admin_logout_user("nobody"), lambda: a.admin_suspend_user("nobody"),
                     lambda: a.admin_set_role("nobody", sd.Role.USER)):
            with self.assertRaises(sd.ServerError) as e:
                call()
            self.assertEqual((e.exception.code, e.exception.fatal),
                             (sd.ErrorCode.NOT_FOUND, False))
        a.heartbeat()

    def test_an_admin_sets_a_password_and_the_users_sessions_end(self) -> None:
        name = self.user()
        a = self.admin()
        u = self.login(name)
        new = "set by the admin; new"
        self.assertEqual(a.admin_set_password(name, new), 1)
        self.assertEqual(self.revoked(u).reason, sd.RevokeReason.PASSWORD_RESET)
        with self.assertRaises(sd.LoginFailed):
            self.connect().login(name, PASSWORD)
        self.login(name, new)
        for args, code in (((name, "short"), sd.ErrorCode.INVALID_ARGUMENT),
                           (("nobody", new), sd.ErrorCode.NOT_FOUND)):
            with self.assertRaises(sd.ServerError) as e:
                a.admin_set_password(*args)
            self.assertEqual(e.exception.code, code)
        self.assertNotIn(new, repr(sd.AdminSetPassword(sd.Token(bytes(32)), name, new)))

    def test_audit_pages_newest_first_follow_next_cursor_to_the_end(self) -> None:
        name = self.user()
        c = self.connect()
        for _ in range(3):
            c.login(name, PASSWORD)
            c.logout()
        c.login(name, PASSWORD)
        K = sd.AuditKind
        everything = c.audit_search()  # one full page, oldest first
        # (Design: session_detached is left out of the comparison: this server also
        # records one when a logout unbinds the session from its connection.)
        self.assertEqual([r.kind for r in everything.records if r.kind != K.SESSION_DETACHED],
                         [K.REGISTERED] + [K.SESSION_CREATED, K.LOGGED_OUT] * 3
                         + [K.SESSION_CREATED])
        oldest_first = [r.seq for r in everything.records]
        newest_first: List[int] = []
        cursor, pages = 0, 0
        for _ in range(40):  # 8 to 11 records: at most 6 pages, 7 if the last one is empty
            page = c.audit_search(newest_first=True, cursor=cursor, limit=2)
            pages += 1
            self.assertLessEqual(len(page.records), 2)
            newest_first += [r.seq for r in page.records]
            if page.next_cursor == 0:
                break
            self.assertTrue(cursor == 0 or page.next_cursor < cursor, "the cursor moves down")
            cursor = page.next_cursor
        else:
            self.fail(f"next_cursor never came to 0: {newest_first}")
        self.assertGreaterEqual(pages, (len(oldest_first) + 1) // 2)
        self.assertEqual(len(set(newest_first)), len(newest_first), "no record twice")
        self.assertEqual(newest_first, oldest_first[::-1], "every record, newest first")
        # AUDIT_QUERY pages the same records oldest first, with their meaning in text
        entries: List[sd.AuditEntry] = []
        cursor = 0
        for _ in range(20):
            q = c.audit_query(cursor=cursor, limit=3)
            entries += q.entries
            if q.next_cursor == 0:
                break
            cursor = q.next_cursor
        self.assertEqual([e.seq for e in entries], oldest_first)
        self.assertEqual(entries[1].detail, f"{sd.CLIENT_NAME} {c.platform}")  # the device

    def test_audit_records_are_the_callers_own_unless_an_admin_asks(self) -> None:
        mine, theirs = self.user(), self.user()
        u = self.login(mine)
        for call in (lambda: u.audit_search(username=theirs),
                     lambda: u.audit_search(newest_first=True, username="admin"),
                     lambda: u.audit_search(username="nobody-at-all"),
                     lambda: u.audit_query(username=theirs)):
            with self.assertRaises(sd.ServerError) as e:
                call()
            self.assertEqual((e.exception.code, e.exception.fatal),
                             (sd.ErrorCode.FORBIDDEN, False))
        self.assertTrue(u.audit_search(username=mine).records, "naming oneself is fine")
        with self.assertRaises(sd.ServerError) as e:
            u.audit_search(kind=99)
        self.assertEqual(e.exception.code, sd.ErrorCode.INVALID_ARGUMENT)
        a = self.admin()
        recs = a.audit_search(newest_first=True, username=theirs).records
        self.assertEqual({r.username for r in recs}, {theirs})
        self.assertIn(sd.AuditKind.REGISTERED, [r.kind for r in recs])
        with self.assertRaises(sd.ServerError) as e:
            a.audit_search(username="nobody-at-all")
        self.assertEqual(e.exception.code, sd.ErrorCode.NOT_FOUND)
        u.heartbeat()  # refusals are not fatal

    def test_session_attributes_come_back_in_the_push_after_a_resume(self) -> None:
        name = self.user("attr")
        path = self.token_path()
        c = self.connect(token_file=path)
        c.login(name, PASSWORD)
        self.assertEqual(c.get_attrs(), {})
        c.set_attr("game", b"456")
        c.set_attr("blob", b"\x00\xff\x00")
        c.set_attr("game", b"457")
        self.assertEqual(c.get_attrs("game"), {"game": b"457"})
        self.assertEqual(c.get_attrs("nothing"), {})
        self.assertFalse(c.remove_attr("nothing"))
        self.assertEqual(c.attrs, {"game": b"457", "blob": b"\x00\xff\x00"})
        # 4096 bytes of keys and values at most: game and blob hold 14, big 3907
        c.set_attr("big", b"v" * sd.MAX_ATTR_VALUE)
        with self.assertRaises(sd.ServerError) as e:
            c.set_attr("pad", b"v" * 173)
        self.assertEqual((e.exception.code, e.exception.fatal),
                         (sd.ErrorCode.LIMIT_EXCEEDED, False))
        self.assertTrue(c.remove_attr("big"))
        sid = c.session.session_id  # type: ignore[union-attr]
        c.disconnect()
        # a new connection resumes the session: the push brings them, unasked
        pushes: List[sd.Frame] = []
        c2 = self.connect(token_file=path, on_push=pushes.append)
        c2.resume_from_file()
        f = self.push(c2, sd.Attrs)
        self.assertEqual((f.is_push, f.request_id), (True, 0))
        self.assertEqual(f.message, sd.Attrs(sid, [sd.Attr("blob", b"\x00\xff\x00"),
                                                   sd.Attr("game", b"457")]))
        self.assertEqual(c2.attrs, {"blob": b"\x00\xff\x00", "game": b"457"})
        self.assertEqual([p.message for p in pushes], [f.message])
        self.assertTrue(c2.remove_attr("game"))
        self.assertEqual(c2.attrs, {"blob": b"\x00\xff\x00"})
        # an administrator changes it; this connection is not told, but finds it
        a = self.admin()
        self.assertEqual(a.admin_set_attr(sid, "by", b"admin"), 1)
        self.assertEqual(a.admin_set_attr(sid, "nothing", None), 0)
        with self.assertRaises(sd.ServerError) as e:
            c2.admin_set_attr(sid, "by", None)
        self.assertEqual(e.exception.code, sd.ErrorCode.FORBIDDEN)
        self.assertEqual(c2.get_attrs(), {"blob": b"\x00\xff\x00", "by": b"admin"})
        self.assertEqual(c2.attrs, c2.get_attrs())
        # they end with the session
        c2.logout()
        c2.login(name, PASSWORD)
        self.assertEqual((c2.get_attrs(), c2.attrs), ({}, {}))

    def test_an_application_role_and_a_profile_come_in_the_push_after_a_login(self) -> None:
        # This server declares one application role: --role educator.
        name = self.user("prof")
        c = self.login(name)
        self.assertIsNone(c.wait_push(sd.UserInfo, timeout=0.3), "neither: no push")
        self.assertIsNone(c.user_info)
        uid = c.session.user_id  # type: ignore[union-attr]
        self.assertEqual(c.get_profile(), sd.UserInfo(uid, "", []))
        c.disconnect()
        a = self.admin()
        self.assertEqual(a.admin_set_app_role(name, "educator"), 1)
        self.assertEqual(a.admin_set_app_role(name, "educator"), 0)
        self.assertEqual(a.admin_set_profile(name, "display_name", b"Alice A."), 1)
        # a role the server does not declare: INVALID_ARGUMENT, "its message lists them"
        with self.assertRaises(sd.ServerError) as e:
            a.admin_set_app_role(name, "finance")
        self.assertEqual((e.exception.code, e.exception.fatal),
                         (sd.ErrorCode.INVALID_ARGUMENT, False))
        self.assertIn("educator", e.exception.message)
        # ADMIN_LIST_USERS shows both roles
        listed = a.admin_list_users(limit=100)
        mine = [u for u in listed.users if u.username == name]
        self.assertEqual(len(mine), 1)
        self.assertEqual((mine[0].role, mine[0].app_role), (sd.Role.USER, "educator"))
        self.assertEqual(listed.total, len(listed.users))
        for call in (lambda: a.admin_set_app_role("nobody", "educator"),
                     lambda: a.admin_set_profile("nobody", "k", b"")):
            with self.assertRaises(sd.ServerError) as e:
                call()
            self.assertEqual(e.exception.code, sd.ErrorCode.NOT_FOUND)
        # the user logs in: USER_INFO follows LOGIN_SUCCESS, unasked
        path = self.token_path()
        pushes: List[sd.Frame] = []
        u = self.connect(token_file=path, on_push=pushes.append)
        u.login(name, PASSWORD)
        f = self.push(u, sd.UserInfo)
        want = sd.UserInfo(uid, "educator", [sd.Attr("display_name", b"Alice A.")])
        self.assertEqual((f.is_push, f.request_id, f.message), (True, 0, want))
        self.assertEqual(u.user_info, want)
        self.assertEqual([p.message for p in pushes], [want])
        self.assertEqual(u.get_profile(), want)
        # the user's own changes, durable and kept on the client
        self.assertTrue(u.set_profile("theme", b"\x00dark"))
        self.assertFalse(u.remove_profile("nothing"))
        self.assertEqual(u.get_profile("theme").as_dict(), {"theme": b"\x00dark"})
        self.assertEqual(u.get_profile("nothing").as_dict(), {})
        both = {"display_name": b"Alice A.", "theme": b"\x00dark"}
        self.assertEqual(u.user_info.as_dict(), both)  # type: ignore[union-attr]
        self.assertEqual(u.get_profile().as_dict(), both)
        # a user may not do an administrator's part
        for call in (lambda: u.admin_set_app_role(name, ""),
                     lambda: u.admin_set_profile(name, "k", b"v")):
            with self.assertRaises(sd.ServerError) as e:
                call()
            self.assertEqual(e.exception.code, sd.ErrorCode.FORBIDDEN)
        u.disconnect()
        # a resume on a new connection: USER_INFO follows SESSION_VALID
        u2 = self.connect(token_file=path)
        u2.resume_from_file()
        f = self.push(u2, sd.UserInfo)
        self.assertEqual(f.message, sd.UserInfo(uid, "educator", [
            sd.Attr("display_name", b"Alice A."), sd.Attr("theme", b"\x00dark")]))
        # the role taken away shows at the next PROFILE_GET; the logout clears it here
        self.assertEqual(a.admin_set_app_role(name, ""), 1)
        self.assertEqual(u2.get_profile().app_role, "")
        u2.logout()
        self.assertIsNone(u2.user_info)

    def test_reconnect_and_resume_after_a_lost_connection(self) -> None:
        name = self.user()
        path = self.token_path()
        c = self.connect(token_file=path)
        sid = c.login(name, PASSWORD).session.session_id
        c.close()  # the network goes away: no logout, no disconnect
        c2, info = sd.connect_and_resume(self.env["ADDR"], path, attempts=3, first_delay=0.1)
        self.clients.append(c2)
        self.assertEqual(info.session_id, sid)
        c2.heartbeat()


class CommandLineTest(LiveBase):
    """``python3 sessiond.py ...`` as a person runs it (passwords on stdin instead of a
    terminal)."""

    PREFIX = "SESSIOND_MULTI"

    def run_cli(self, *args: str, stdin: str = "") -> "subprocess.CompletedProcess[str]":
        r = subprocess.run(
            [sys.executable, os.path.join(HERE, "sessiond.py"), "--addr", self.env["ADDR"],
             "--token-file", self.token_path(), "--timeout", "5", *args],
            input=stdin, capture_output=True, text=True, timeout=30)
        self.printed.append(r.stdout + r.stderr)
        return r

    def test_login_whoami_sessions_logout(self) -> None:
        self.printed: List[str] = []
        r = self.run_cli("--password-stdin", "register", "cli-user", "cli@example.org",
                         stdin=PASSWORD + "\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        r = self.run_cli("--password-stdin", "login", "cli-user", stdin="wrong\n")
        self.assertEqual(r.returncode, 1)
        self.assertIn("INVALID_CREDENTIALS", r.stderr)
        r = self.run_cli("--password-stdin", "login", "cli-user", stdin=PASSWORD + "\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("logged in as cli-user", r.stdout)
        token = sd.TokenFile(self.token_path()).load()
        assert token is not None
        self.assertEqual(stat.S_IMODE(os.stat(self.token_path()).st_mode), 0o600)
        r = self.run_cli("whoami")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("of cli-user (user)", r.stdout)
        r = self.run_cli("sessions")
        self.assertIn("1 of 1 session(s)", r.stdout)
        r = self.run_cli("stats")
        self.assertEqual(r.returncode, 1)
        self.assertIn("FORBIDDEN", r.stderr)
        r = self.run_cli("logout")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertFalse(os.path.exists(self.token_path()))
        r = self.run_cli("whoami")
        self.assertEqual(r.returncode, 2)
        # neither the token nor the password ever shows
        for out in self.printed:
            self.assertNotIn(token.hex(), out)
            self.assertNotIn(PASSWORD, out)


    def test_audit_prints_the_newest_records_oldest_first(self) -> None:
        self.printed = []
        name = new_name("cli")
        r = self.run_cli("--password-stdin", "register", name, f"{name}@example.org",
                         stdin=PASSWORD + "\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        r = self.run_cli("--password-stdin", "login", name, stdin=PASSWORD + "\n")
        self.assertEqual(r.returncode, 0, r.stderr)

        def records(r: "subprocess.CompletedProcess[str]") -> List[str]:
            self.assertEqual(r.returncode, 0, r.stderr)
            lines = r.stdout.splitlines()
            self.assertEqual(lines[-1], f"{len(lines) - 1} record(s)")
            seqs = [int(line.split()[0][1:]) for line in lines[:-1]]
            self.assertEqual(seqs, sorted(seqs), "printed oldest first")
            return lines[:-1]

        every = records(self.run_cli("audit", "--limit", "60"))
        self.assertIn(" registered: " + name, every[0])
        self.assertIn(" session_created: " + name, every[1])
        self.assertEqual(len(every), len(set(every)))
        newest = records(self.run_cli("audit", "--limit", "2"))
        self.assertEqual(len(newest), 2)
        def seq(line: str) -> int:
            return int(line.split()[0][1:])

        # each run resumes the session (session_resumed): the newest is past the listing
        self.assertGreaterEqual(seq(newest[0]), seq(every[-1]))
        self.assertGreater(seq(newest[1]), seq(every[-1]))
        [reg] = records(self.run_cli("audit", "--kind", "registered"))
        self.assertEqual(reg, every[0])
        self.assertEqual(records(self.run_cli("audit", "--kind", "9")), [reg])
        r = self.run_cli("audit", "--kind", "nonsense")
        self.assertEqual(r.returncode, 2)
        self.assertIn("not an audit kind", r.stderr)
        token = sd.TokenFile(self.token_path()).load()
        assert token is not None
        for out in self.printed:
            self.assertNotIn(token.hex(), out)
            self.assertNotIn(PASSWORD, out)


class TlsTest(LiveBase):
    """A server with --tls-cert/--tls-key (and registration closed)."""

    PREFIX = "SESSIOND_TLS"

    def test_tls_with_the_server_verified_against_the_ca(self) -> None:
        c = self.connect(tls_ca=self.env["CA"])
        with self.assertRaises(sd.RegisterFailed) as e:
            c.register("newcomer", PASSWORD, "n@example.org")
        self.assertEqual(e.exception.reason, sd.RegisterFailureReason.REGISTRATION_CLOSED)
        s = c.login("admin", self.env["ADMIN_PASSWORD"]).session
        self.assertEqual(s.role, sd.Role.ADMIN)
        self.assertIn("connections", c.admin_stats())
        c.disconnect()

    def test_a_certificate_from_another_ca_is_refused(self) -> None:
        with self.assertRaises(ssl.SSLCertVerificationError):
            self.connect(tls_ca=self.env["OTHER_CA"])
        with self.assertRaises(ssl.SSLError):  # not a TLS server at all: plain sessiond
            sd.Client.connect(os.environ["SESSIOND_ADDR"], tls_ca=self.env["CA"], timeout=2.0)


class ShortTest(LiveBase):
    """A server whose sessions last 1 s, stopped with SIGTERM at the end."""

    PREFIX = "SESSIOND_SHORT"

    def test_expiry_then_server_shutdown(self) -> None:
        path = self.token_path()
        c = self.connect(token_file=path)
        ok = c.login("admin", self.env["ADMIN_PASSWORD"])
        self.assertLessEqual(ok.session.session_expires - ok.session.session_created, 1000)
        f = self.push(c, sd.SessionExpired, timeout=5.0)
        self.assertEqual(f.message, sd.SessionExpired(ok.session.session_id,
                                                      sd.ExpiredReason.ABSOLUTE))
        self.assertIsInstance(c.wait_closed(2.0), sd.SessionEnded)
        self.assertFalse(os.path.exists(path), "an expired token is deleted")
        c2 = self.connect()
        with self.assertRaises(sd.SessionInvalid) as e:
            c2.resume(ok.token)
        self.assertEqual(e.exception.reason, sd.InvalidReason.EXPIRED)
        # SIGTERM: every connection, logged in or not, hears SERVER_SHUTDOWN, then the
        # DISCONNECT_ACK push closes it.
        os.kill(int(self.env["PID"]), signal.SIGTERM)
        f = self.push(c2, sd.ServerShutdown, timeout=5.0)
        self.assertFalse(f.is_fatal)
        closed = c2.wait_closed(5.0)
        assert closed is not None and closed.frame is not None
        self.assertEqual(closed.frame.message,
                         sd.DisconnectAck(sd.DisconnectReason.SERVER_SHUTDOWN))
        self.assertTrue(closed.frame.is_push and closed.frame.is_fatal)


if __name__ == "__main__":
    unittest.main(verbosity=2)
